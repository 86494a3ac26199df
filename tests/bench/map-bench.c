/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Measurements for `make bench` (prints numbers, asserts nothing):
 *
 *   map-bench index MOUNT THREADS   build the FIEMAP index
 *   map-bench naive MOUNT           the baseline: single-threaded nftw()
 *                                   + FIEMAP of every file, same coverage
 *   map-bench query DEVICE METHOD N SECTOR
 *                                   latency of one range query, first and
 *                                   later ones, without paths; then the
 *                                   query of SECTOR (a file's) with paths
 *
 * Each prints one line of key=value pairs, with its peak RSS.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mapper-fiemap.h"
#include "mapper.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* ---- naive baseline ---------------------------------------------------- */

struct ext {
	uint64_t physical, logical, length, ino;
	uint32_t flags;
};
static struct ext *exts;
static size_t n_exts, cap_exts;
static uint64_t n_files;

static void naive_map(int fd, uint64_t ino, uint32_t flag)
{
	char buf[sizeof(struct fiemap) + 64 * sizeof(struct fiemap_extent)];
	struct fiemap *fm = (struct fiemap *)buf;
	uint64_t start = 0;

	for (;;) {
		unsigned last = 0;

		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = flag;
		fm->fm_extent_count = 64;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0 || fm->fm_mapped_extents == 0)
			return;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];

			if (n_exts == cap_exts) {
				cap_exts = cap_exts ? cap_exts * 2 : 4096;
				exts = realloc(exts, cap_exts * sizeof(*exts));
				if (!exts)
					abort();
			}
			exts[n_exts++] = (struct ext){ e->fe_physical, e->fe_logical, e->fe_length, ino,
						       e->fe_flags };
			start = e->fe_logical + e->fe_length;
			last |= e->fe_flags & FIEMAP_EXTENT_LAST;
		}
		if (last || fm->fm_mapped_extents < 64)
			return;
	}
}

static int naive_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int fd;

	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	naive_map(fd, st->st_ino, 0);
	naive_map(fd, st->st_ino, FIEMAP_FLAG_XATTR);
	close(fd);
	n_files++;
	return 0;
}

static int cmd_naive(const char *mount)
{
	double t0 = now(), t;

	if (nftw(mount, naive_one, 64, FTW_PHYS | FTW_MOUNT) < 0) {
		perror("nftw");
		return 1;
	}
	t = now() - t0;
	printf("files=%" PRIu64 " extents=%zu seconds=%.3f files_per_s=%.0f maxrss_kib=%ld\n", n_files,
	       n_exts, t, n_files / t, maxrss_kib());
	return 0;
}

/* ---- our index --------------------------------------------------------- */

static int cmd_index(const char *mount, unsigned threads)
{
	struct ph_ctx *ctx;
	struct ph_findex *idx;
	const struct ph_findex_stats *st;
	int fd, r;

	if (ph_ctx_new(&ctx) < 0)
		return 1;
	fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		perror(mount);
		return 1;
	}
	r = ph_findex_build(ctx, fd, threads, true, &idx);
	if (r < 0) {
		fprintf(stderr, "index: %s\n", strerror(-r));
		return 1;
	}
	st = ph_findex_get_stats(idx);
	printf("files=%" PRIu64 " extents=%" PRIu64 " seconds=%.3f files_per_s=%.0f index_bytes=%" PRIu64
	       " bytes_per_extent=%.1f maxrss_kib=%ld threads=%u\n",
	       st->inodes, st->extents, st->seconds, st->inodes / st->seconds, st->bytes,
	       st->extents ? (double)st->bytes / st->extents : 0.0, maxrss_kib(), threads);
	ph_findex_free(idx);
	close(fd);
	ph_ctx_unref(ctx);
	return 0;
}

/* ---- queries ----------------------------------------------------------- */

static double one_query(struct ph_mapper *m, const struct ph_range *q)
{
	struct ph_map_result *res = NULL;
	struct ph_error err;
	double t0 = now();

	if (ph_mapper_map(m, q, 1, &res, &err) < 0) {
		fprintf(stderr, "query: %s\n", err.message);
		exit(1);
	}
	t0 = now() - t0;
	ph_map_results_free(res, 1);
	return t0;
}

static int cmd_query(const char *device, const char *method, unsigned n, uint64_t file_sector)
{
	struct ph_ctx *ctx;
	struct ph_mapper *m;
	struct ph_error err;
	enum ph_map_method meth;
	uint64_t size;
	double first, later = 0, paths;
	struct ph_range q;

	if (ph_ctx_new(&ctx) < 0 || ph_map_method_from_string(method, &meth) < 0)
		return 1;
	if (ph_mapper_new(ctx, device, meth, &m, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	size = ph_mapper_get_size(m);
	srand(42);
	ph_mapper_set_resolve_paths(m, false);
	q = (struct ph_range){ .start = (uint64_t)rand() % (size / 2), .count = 8 };
	first = one_query(m, &q);
	for (unsigned i = 0; i < n; i++) {
		q.start = ((uint64_t)rand() * 4096 + rand()) % (size / 2) & ~7ULL;
		later += one_query(m, &q);
	}
	ph_mapper_set_resolve_paths(m, true);
	q = (struct ph_range){ .start = file_sector, .count = 8 };
	paths = one_query(m, &q);
	printf("method=%s first_query_s=%.6f later_query_avg_s=%.6f with_paths_s=%.6f maxrss_kib=%ld\n",
	       method, first, later / n, paths, maxrss_kib());
	ph_mapper_free(m);
	ph_ctx_unref(ctx);
	return 0;
}

int main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "index") == 0)
		return cmd_index(argv[2], (unsigned)atoi(argv[3]));
	if (argc == 3 && strcmp(argv[1], "naive") == 0)
		return cmd_naive(argv[2]);
	if (argc == 6 && strcmp(argv[1], "query") == 0)
		return cmd_query(argv[2], argv[3], (unsigned)atoi(argv[4]), strtoull(argv[5], NULL, 0));
	fprintf(stderr, "usage: map-bench index MOUNT THREADS | naive MOUNT | query DEVICE METHOD N SECTOR\n");
	return 2;
}
