/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs the repairer's own changing steps on a real file, without poison:
 * the job is built as job_from_plan() builds it (the file's inode,
 * generation, size and times taken now; its page at --offset taken as
 * the "poisoned" block) and handed to ph_repair_debug_steps().  The
 * attack tests in tests/fs drive it as root while an unprivileged user
 * races it.
 *
 *   step-driver [--rounds N] [--create SIZE] [--canary FILE] [--offset N]
 *               MODE STEP[:OWNER][,...] MOUNT PATH...
 *
 * --create: before each round, make PATH (the first) afresh through a
 * directory fd opened once at the start, so that a user swapping that
 * directory's name cannot make the plan itself point elsewhere.
 * --canary: after each round, stop (exit 3) when FILE changed.
 * Exit 0 when every round's steps completed, 1 when a step stopped (its
 * reason on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "fiemap.h"
#include "planner.h"
#include "repair.h"

static int lookup(const char *what, const char *(*name)(int), int max, const char *s)
{
	for (int i = 0; i < max; i++)
		if (name(i) && strcmp(name(i), s) == 0)
			return i;
	fprintf(stderr, "unknown %s %s\n", what, s);
	exit(2);
}

static const char *mode_name(int i) { return ph_mode_to_string((enum ph_mode)i); }
static const char *step_name(int i) { return ph_step_to_string((enum ph_step_kind)i); }

static uint64_t sector_of(int fd, uint64_t off)
{
	uint64_t sector;

	return fiemap_sector(fd, off, &sector) < 0 ? 0 : sector;
}

static struct json_object *owner(int fd, const char *path, uint64_t off)
{
	struct json_object *w = json_object_new_object();
	struct stat st;
	uint64_t gen = 0;

	if (fstat(fd, &st) < 0) {
		perror(path);
		exit(2);
	}
	(void)ioctl(fd, FS_IOC_GETVERSION, &gen);
	json_object_object_add(w, "path", json_object_new_string(path));
	json_object_object_add(w, "dev", json_object_new_int64((int64_t)st.st_dev));
	json_object_object_add(w, "inode", json_object_new_int64((int64_t)st.st_ino));
	json_object_object_add(w, "gen", json_object_new_int64((int64_t)gen));
	json_object_object_add(w, "offset", json_object_new_int64((int64_t)off));
	json_object_object_add(w, "size", json_object_new_int64((int64_t)st.st_size));
	json_object_object_add(w, "mtime_ns", json_object_new_int64(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec));
	json_object_object_add(w, "ctime_ns", json_object_new_int64(st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec));
	json_object_object_add(w, "repair", json_object_new_boolean(1));
	json_object_object_add(w, "link", json_object_new_boolean(0));
	return w;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;

	*len = 0;
	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' }, { "create", required_argument, NULL, 'c' },
		{ "canary", required_argument, NULL, 'k' }, { "offset", required_argument, NULL, 'o' }, {}
	};
	unsigned long rounds = 1, create = 0, failed = 0;
	const char *canary = NULL;
	uint64_t off = 0;
	struct ph_ctx *ctx = NULL;
	uint8_t content[4096];
	char *canary_bytes = NULL;
	size_t canary_len = 0;
	struct stat canary_st = { 0 };
	int c, dirfd = -1, mode;
	const char *base = NULL;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
		switch (c) {
		case 'r': rounds = strtoul(optarg, NULL, 10); break;
		case 'c': create = strtoul(optarg, NULL, 10); break;
		case 'k': canary = optarg; break;
		case 'o': off = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	if (argc - optind < 4) {
		fprintf(stderr, "usage: %s [options] MODE STEPS MOUNT PATH...\n", argv[0]);
		return 2;
	}
	mode = lookup("mode", mode_name, 32, argv[optind]);
	memset(content, 'R', sizeof(content));
	if (ph_ctx_new(&ctx) < 0)
		return 2;
	if (canary) {
		canary_bytes = read_all(canary, &canary_len);
		if (!canary_bytes || lstat(canary, &canary_st) < 0) {
			perror(canary);
			return 2;
		}
	}
	if (create) {
		char *dir = strdup(argv[optind + 3]);

		*strrchr(dir, '/') = '\0';
		base = strrchr(argv[optind + 3], '/') + 1;
		/* A racing user may have swapped it for a link just now: only
		 * the real directory is opened, whenever it is there. */
		for (unsigned long tries = 0; tries < 10000000; tries++) {
			dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (dirfd >= 0 || (errno != ELOOP && errno != ENOTDIR))
				break;
		}
		if (dirfd < 0) {
			perror(dir);
			return 2;
		}
		free(dir);
	}
	for (unsigned long round = 1; round <= rounds; round++) {
		struct json_object *o = json_object_new_object(), *owners = json_object_new_array(),
				   *steps = json_object_new_array();
		char *pin = NULL, *tmp = NULL, *qname = NULL, *why = NULL, *steplist, *save = NULL;
		const char *path0 = argv[optind + 3], *mnt = argv[optind + 2];
		uint64_t page = 0;
		struct stat st;
		int k;

		for (int i = optind + 3; i < argc; i++) {
			int fd;

			if (create && i == optind + 3) {
				static char buf[65536];
				struct stat d;

				(void)unlinkat(dirfd, base, 0);
				fd = openat(dirfd, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (fd < 0 || fstat(dirfd, &d) < 0 || fchown(fd, d.st_uid, d.st_gid) < 0) {
					perror(path0);
					return 2;
				}
				memset(buf, 'u', sizeof(buf));
				for (unsigned long w = 0; w < create; w += sizeof(buf))
					(void)!write(fd, buf, create - w < sizeof(buf) ? create - w : sizeof(buf));
				fsync(fd);
			} else
				fd = open(argv[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				perror(argv[i]);
				return 2;
			}
			if (i == optind + 3)
				page = sector_of(fd, off);
			json_object_array_add(owners, owner(fd, argv[i], off));
			if (i == optind + 3 && fstat(fd, &st) == 0) {
				const char *b = strrchr(path0, '/') + 1;

				if (asprintf(&pin, "%s/.pmemheal/quarantine/test-%" PRIu64 ".pin",
					     strcmp(mnt, "/") ? mnt : "", page) < 0 ||
				    asprintf(&tmp, "%.*s/.pmemheal-%s.%" PRIu64 ".tmp", (int)(b - 1 - path0), path0, b,
					     page) < 0 ||
				    asprintf(&qname, "%" PRIu64 "-%s.%" PRIu64, (uint64_t)st.st_ino, b, page) < 0)
					return 2;
			}
			close(fd);
		}
		steplist = strdup(argv[optind + 1]);
		for (char *s = strtok_r(steplist, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
			struct json_object *a = json_object_new_array();
			char *colon = strchr(s, ':');

			if (colon)
				*colon++ = '\0';
			json_object_array_add(a, json_object_new_int(lookup("step", step_name, 32, s)));
			json_object_array_add(a, json_object_new_int(colon ? atoi(colon) : 0));
			json_object_array_add(steps, a);
		}
		free(steplist);
		json_object_object_add(o, "range_id", json_object_new_int64(1));
		json_object_object_add(o, "device", json_object_new_string("/dev/test-pmem"));
		json_object_object_add(o, "list", json_object_new_string("/dev/null"));
		json_object_object_add(o, "mount", json_object_new_string(mnt));
		json_object_object_add(o, "ns_id", json_object_new_string("test"));
		json_object_object_add(o, "page", json_object_new_int64((int64_t)page));
		json_object_object_add(o, "fs_page", json_object_new_int64((int64_t)page));
		json_object_object_add(o, "mode", json_object_new_int(mode));
		json_object_object_add(o, "can_clear", json_object_new_boolean(0));
		json_object_object_add(o, "hole", json_object_new_boolean(0));
		json_object_object_add(o, "pin", json_object_new_string(pin));
		json_object_object_add(o, "tmp", json_object_new_string(tmp));
		json_object_object_add(o, "qname", json_object_new_string(qname));
		json_object_object_add(o, "bytes_lost", json_object_new_int64(0));
		json_object_object_add(o, "owners", owners);
		json_object_object_add(o, "steps", steps);
		k = ph_repair_debug_steps(ctx, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), content, &why);
		if (k < 0) {
			failed++;
			if (rounds == 1)
				fprintf(stderr, "%s\n", why ? why : strerror(-k));
		}
		json_object_put(o);
		free(why);
		free(pin);
		free(tmp);
		free(qname);
		if (canary) {
			size_t len;
			char *now = read_all(canary, &len);

			if (!now || lstat(canary, &st) < 0 || st.st_ino != canary_st.st_ino || len != canary_len ||
			    memcmp(now, canary_bytes, len) != 0) {
				printf("round %lu: %s was changed or removed\n", round, canary);
				return 3;
			}
			free(now);
		}
	}
	if (rounds > 1)
		printf("%lu rounds, %lu stopped by a step\n", rounds, failed);
	free(canary_bytes);
	if (dirfd >= 0)
		close(dirfd);
	ph_ctx_unref(ctx);
	return failed ? 1 : 0;
}
