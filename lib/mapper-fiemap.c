/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FIEMAP index.  Each walk thread opens the regular files and directories it
 * meets (O_NOFOLLOW, relative to their directory) and appends their extents
 * to its own vector; the vectors are concatenated, sorted by physical sector
 * and de-duplicated (a file with several hard links is met several times).
 *
 * Queries are a binary search: extents are sorted by start, and no extent is
 * longer than max_count, so every extent overlapping [s, e) starts in
 * [s - max_count, e).
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xfs/xfs.h>

#include "clock.h"
#include "mapper-fiemap.h"

/* Longest extent we store in one entry; longer ones are split. */
#define FEXT_MAX_COUNT (1u << 30)

struct fvec {
	struct ph_fext *v;
	size_t n, cap;
	uint64_t inodes;
	uint64_t failed;
	int failed_errno;
};

struct ph_findex {
	struct ph_fext *v;
	struct ph_fext **scratch; /* query results */
	size_t n, scratch_cap;
	uint32_t max_count;
	struct ph_findex_stats stats;
};

static int fvec_push(struct fvec *f, uint64_t physical, uint64_t logical, uint64_t ino,
		     uint32_t count, uint32_t flags)
{
	if (PH_GROW(f->v, f->cap, f->n + 1, 1024) < 0)
		return -ENOMEM;
	f->v[f->n++] = (struct ph_fext){
		.physical = physical, .logical = logical, .ino = ino, .count = count, .flags = flags
	};
	return 0;
}

#define FIEMAP_BATCH 64

_public_ int ph_fiemap_fd(int fd, bool xattr, ph_fiemap_fn fn, void *userdata)
{
	union {
		struct fiemap fm;
		char buf[sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent)];
	} u;
	uint64_t start = 0;

	for (;;) {
		struct fiemap *fm = &u.fm;
		bool last = false;

		/* the whole buffer: valgrind does not know that the kernel
		 * writes the extents, and would flag every read of them */
		memset(&u, 0, sizeof(u));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = xattr ? FIEMAP_FLAG_XATTR : 0;
		fm->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
			return negative_errno();
		if (fm->fm_mapped_extents == 0)
			return 0;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			uint32_t flags = 0;
			int r;

			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = true;
			start = e->fe_logical + e->fe_length;
			if (e->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
					   FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |
					   FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_ENCODED))
				continue;
			if ((e->fe_physical | e->fe_logical | e->fe_length) & (PH_SECTOR_SIZE - 1))
				continue;
			if (e->fe_flags & FIEMAP_EXTENT_SHARED)
				flags |= PH_FEXT_SHARED;
			if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN)
				flags |= PH_FEXT_UNWRITTEN;
			r = fn(userdata, e->fe_physical >> PH_SECTOR_SHIFT,
			       e->fe_logical >> PH_SECTOR_SHIFT, e->fe_length >> PH_SECTOR_SHIFT, flags);
			if (r < 0)
				return r;
		}
		if (last || fm->fm_mapped_extents < FIEMAP_BATCH)
			return 0;
	}
}

/*
 * XFS directories have no FIEMAP; XFS_IOC_GETBMAPX maps any inode.  Units
 * are 512-byte sectors already.
 */
#define BMAP_BATCH 64

static int getbmapx_fd(int fd, bool xattr, ph_fiemap_fn fn, void *userdata)
{
	struct getbmapx map[BMAP_BATCH + 1];
	int64_t next = 0;

	for (;;) {
		int n;

		memset(map, 0, sizeof(map));
		/* Not -1 ("to EOF"): directory leaf and free-index blocks live
		 * far beyond a directory's size, at 32 GiB and up. */
		map[0].bmv_offset = next;
		map[0].bmv_length = (INT64_C(1) << 53) - next;
		map[0].bmv_count = BMAP_BATCH + 1;
		map[0].bmv_iflags = BMV_IF_PREALLOC | BMV_IF_NO_HOLES | (xattr ? BMV_IF_ATTRFORK : 0);
		if (ioctl(fd, XFS_IOC_GETBMAPX, map) < 0)
			return negative_errno();
		n = map[0].bmv_entries;
		if (n <= 0)
			return 0;
		for (int i = 1; i <= n; i++) {
			const struct getbmapx *b = &map[i];
			uint32_t flags = 0;
			int r;

			next = b->bmv_offset + b->bmv_length;
			if (b->bmv_block < 0 || b->bmv_length <= 0 || (b->bmv_oflags & BMV_OF_DELALLOC))
				continue;
			if (b->bmv_oflags & BMV_OF_PREALLOC)
				flags |= PH_FEXT_UNWRITTEN;
			if (b->bmv_oflags & BMV_OF_SHARED)
				flags |= PH_FEXT_SHARED;
			r = fn(userdata, (uint64_t)b->bmv_block, (uint64_t)b->bmv_offset,
			       (uint64_t)b->bmv_length, flags);
			if (r < 0)
				return r;
		}
		if ((map[n].bmv_oflags & BMV_OF_LAST) || n < BMAP_BATCH)
			return 0;
	}
}

struct push_ctx {
	struct fvec *f;
	uint64_t ino;
	uint32_t extra;
	uint64_t sectors; /* mapped so far */
};

static int push_extent(void *userdata, uint64_t physical, uint64_t logical, uint64_t count,
		       uint32_t flags)
{
	struct push_ctx *p = userdata;

	p->sectors += count;
	while (count > 0) {
		uint32_t c = (uint32_t)MIN(count, (uint64_t)FEXT_MAX_COUNT);
		int r = fvec_push(p->f, physical, logical, p->ino, c, flags | p->extra);

		if (r < 0)
			return r;
		physical += c;
		logical += c;
		count -= c;
	}
	return 0;
}

struct build_state {
	struct fvec f;
	bool xattrs;
};

/*
 * st_blocks counts every block an inode owns: data, extended attributes and
 * block-map (btree) blocks, on XFS and ext4 alike.  When the data fork
 * accounts for all of them there is no attribute block to look for, which
 * saves the second FIEMAP for nearly every file.
 */
static int map_fd(struct build_state *s, int fd, uint64_t ino, bool dir, uint64_t st_blocks)
{
	struct push_ctx p = { .f = &s->f, .ino = ino, .extra = dir ? PH_FEXT_DIR : 0 };
	int r;

	r = ph_fiemap_fd(fd, false, push_extent, &p);
	if (r == -EOPNOTSUPP && dir)
		r = getbmapx_fd(fd, false, push_extent, &p);
	if (r == -ENOMEM)
		return r;
	if (r == 0 && s->xattrs && st_blocks > p.sectors) {
		p.extra |= PH_FEXT_ATTR;
		r = ph_fiemap_fd(fd, true, push_extent, &p);
		if (r == -EOPNOTSUPP && dir)
			r = getbmapx_fd(fd, true, push_extent, &p);
		if (r == -ENOMEM)
			return r;
		/* No xattr FIEMAP support is not a failure of the file. */
		if (r == -EOPNOTSUPP || r == -EBADR || r == -EINVAL)
			r = 0;
	}
	/* Directories of filesystems that cannot map them (ENOTTY: not XFS)
	 * hold blocks we simply cannot see; they are not failures of a file. */
	if (r < 0 && !(dir && (r == -EOPNOTSUPP || r == -ENOTTY))) {
		if (s->f.failed++ == 0)
			s->f.failed_errno = -r;
	}
	else
		s->f.inodes++;
	return 0;
}

static int build_dir(void *state, int dirfd, const char *relpath, const struct stat *st)
{
	return map_fd(state, dirfd, st->st_ino, true, (uint64_t)st->st_blocks);
}

static int build_entry(void *state, int dirfd, const char *dir_relpath, const char *name,
		       uint64_t ino, unsigned char d_type)
{
	struct build_state *s = state;
	struct stat st;
	int fd, r;

	if (d_type != DT_REG)
		return 0;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOMEM || errno == EMFILE || errno == ENFILE)
			return negative_errno();
		if (s->f.failed++ == 0)
			s->f.failed_errno = errno;
		return 0;
	}
	/* A file bind-mounted over this name belongs to another filesystem. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != ino) {
		close(fd);
		return 0;
	}
	r = map_fd(s, fd, st.st_ino, false, (uint64_t)st.st_blocks);
	close(fd);
	return r;
}

static int fext_cmp(const void *a, const void *b)
{
	const struct ph_fext *x = a, *y = b;

	if (x->physical != y->physical)
		return x->physical < y->physical ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->flags != y->flags)
		return x->flags < y->flags ? -1 : 1;
	if (x->logical != y->logical)
		return x->logical < y->logical ? -1 : 1;
	return x->count < y->count ? -1 : x->count > y->count;
}

_public_ struct ph_findex *ph_findex_free(struct ph_findex *idx)
{
	if (!idx)
		return NULL;
	ph_walk_stats_done(&idx->stats.walk);
	free(idx->v);
	free(idx->scratch);
	free(idx);
	return NULL;
}

static double now_seconds(void)
{
	return (double)ph_mono_usec() / 1e6;
}

_public_ int ph_findex_build(struct ph_ctx *ctx, int root_fd, unsigned nthreads, bool xattrs,
			     struct ph_findex **ret)
{
	static const struct ph_walk_ops ops = { .dir = build_dir, .entry = build_entry };
	_cleanup_(ph_findex_freep) struct ph_findex *idx = NULL;
	_cleanup_free_ struct build_state *states = NULL;
	_cleanup_free_ void **sp = NULL;
	size_t total = 0, o = 0;
	double t0 = now_seconds();
	int r;

	idx = calloc(1, sizeof(*idx));
	states = calloc(nthreads, sizeof(*states));
	sp = calloc(nthreads, sizeof(*sp));
	if (!idx || !states || !sp)
		return -ENOMEM;
	for (unsigned i = 0; i < nthreads; i++) {
		states[i].xattrs = xattrs;
		sp[i] = &states[i];
	}
	r = ph_walk(ctx, root_fd, nthreads, &ops, sp, &idx->stats.walk);
	if (r < 0)
		goto fail;

	for (unsigned i = 0; i < nthreads; i++) {
		total += states[i].f.n;
		idx->stats.inodes += states[i].f.inodes;
		idx->stats.failed += states[i].f.failed;
		if (!idx->stats.failed_errno)
			idx->stats.failed_errno = states[i].f.failed_errno;
	}
	idx->v = malloc(MAX(total, (size_t)1) * sizeof(*idx->v));
	if (!idx->v) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		if (states[i].f.n > 0) /* a thread that found nothing has no array */
			memcpy(idx->v + o, states[i].f.v, states[i].f.n * sizeof(*idx->v));
		o += states[i].f.n;
		free(states[i].f.v);
		states[i].f.v = NULL;
	}
	qsort(idx->v, total, sizeof(*idx->v), fext_cmp);
	/* Drop duplicates from files reached through several hard links. */
	idx->n = 0;
	for (size_t i = 0; i < total; i++) {
		if (idx->n > 0 && fext_cmp(&idx->v[idx->n - 1], &idx->v[i]) == 0)
			continue;
		idx->v[idx->n++] = idx->v[i];
		idx->max_count = MAX(idx->max_count, idx->v[i].count);
	}
	if (idx->n < total) {
		struct ph_fext *v = realloc(idx->v, MAX(idx->n, (size_t)1) * sizeof(*v));

		if (v)
			idx->v = v;
	}
	idx->stats.extents = idx->n;
	idx->stats.bytes = idx->n * sizeof(*idx->v) + sizeof(*idx);
	idx->stats.seconds = now_seconds() - t0;
	ph_dbg(ctx, "FIEMAP index: %" PRIu64 " inodes, %zu extents in %.3fs", idx->stats.inodes,
	       idx->n, idx->stats.seconds);
	*ret = TAKE_PTR(idx);
	return 0;
fail:
	for (unsigned i = 0; i < nthreads; i++)
		free(states[i].f.v);
	return r;
}

_public_ int ph_findex_query(struct ph_findex *idx, uint64_t start, uint64_t count,
			     struct ph_fext ***ret, size_t *ret_n)
{
	uint64_t end = start + count, lo_key = start > idx->max_count ? start - idx->max_count : 0;
	size_t lo = 0, hi = idx->n, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->v[mid].physical < lo_key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < idx->n && idx->v[i].physical < end; i++) {
		struct ph_fext *e = &idx->v[i];

		if (e->physical + e->count <= start)
			continue;
		if (PH_GROW(idx->scratch, idx->scratch_cap, n + 1, 64) < 0)
			return -ENOMEM;
		idx->scratch[n++] = e;
	}
	*ret = idx->scratch;
	*ret_n = n;
	return 0;
}

_public_ const struct ph_findex_stats *ph_findex_get_stats(struct ph_findex *idx)
{
	return &idx->stats;
}
