/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drives the repairer's own steps on a real filesystem, without pmem: it
 * writes a relocate-and-pin job into a ledger's intent log, as the
 * repairer does before it changes anything, and runs it through
 * ph_repairer_resume() (so the same code resumes it after a failure).
 * The "poisoned" page is whatever block the owners map now.
 *
 *   intent-run faults                      exit 0 if fault injection is built in
 *   intent-run run STATE MOUNT LEGACY OFFSET OWNER:SLOT... -- PAGEFILE...
 *        begin a job for the page at OFFSET of the owners (SLOT: which
 *        PAGEFILE is its repaired page, - for an owner reported only, D
 *        for one its rule deletes),
 *        then run it; LEGACY 1 writes the steps older versions planned
 *        (pin, punch, write, punch, reshare) with one page
 *   intent-run resume STATE                run what the log holds
 *   intent-run running STATE               print how many intents are running
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fiemap.h"
#include "ledger.h"
#include "planner.h"
#include "repair.h"

static int count_one(void *userdata, const struct ph_intent *it)
{
	(void)it;
	(*(unsigned *)userdata)++;
	return 0;
}

static struct ph_ledger *open_ledger(struct ph_ctx *ctx, const char *state)
{
	struct ph_error err = { { 0 } };
	struct ph_ledger *l = NULL;

	if (ph_ledger_open(ctx, state, 0, &l, &err) < 0) {
		fprintf(stderr, "ledger: %s\n", err.message);
		exit(2);
	}
	return l;
}

static uint64_t physical_sector(const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t sector;

	if (fd < 0 || fiemap_sector(fd, off, &sector) < 0) {
		fprintf(stderr, "%s: no block at %" PRIu64 "\n", path, off);
		exit(2);
	}
	close(fd);
	return sector;
}

static void add_step(struct json_object *steps, enum ph_step_kind k, size_t owner)
{
	struct json_object *s = json_object_new_array();

	json_object_array_add(s, json_object_new_int(k));
	json_object_array_add(s, json_object_new_int((int)owner));
	json_object_array_add(steps, s);
}

static int run(struct ph_ctx *ctx, int argc, char **argv)
{
	const char *state = argv[2], *mount = argv[3];
	bool legacy = atoi(argv[4]);
	uint64_t off = strtoull(argv[5], NULL, 0), fs_page;
	struct json_object *o = json_object_new_object(), *owners = json_object_new_array(),
			   *steps = json_object_new_array();
	struct ph_ledger *l;
	struct ph_repairer *rep = NULL;
	uint8_t *blob;
	size_t n_pages = 0, n_owners = 0;
	int i, sep, k;
	char pin[4096];
	int64_t id;

	for (sep = 6; sep < argc && strcmp(argv[sep], "--") != 0; sep++)
		n_owners++;
	n_pages = (size_t)(argc - sep - 1);
	if (sep >= argc || n_pages == 0 || n_owners == 0)
		return 2;
	blob = calloc(n_pages, 4096);
	for (size_t p = 0; p < n_pages; p++) {
		int fd = open(argv[sep + 1 + p], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || pread(fd, blob + p * 4096, 4096, 0) != 4096)
			return 2;
		close(fd);
	}
	{
		char *first = strdup(argv[6]);

		*strrchr(first, ':') = '\0';
		fs_page = physical_sector(first, off);
		free(first);
	}
	snprintf(pin, sizeof(pin), "%s/" PH_QUARANTINE_DIR "/test-%" PRIu64 ".pin", mount, fs_page);
	for (i = 6; i < sep; i++) {
		char *path = strdup(argv[i]), *colon = strrchr(path, ':');
		struct json_object *w = json_object_new_object();
		struct stat st;
		uint64_t gen = 0;
		int fd;

		*colon = '\0';
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			return 2;
		(void)ioctl(fd, FS_IOC_GETVERSION, &gen);
		close(fd);
		json_object_object_add(w, "path", json_object_new_string(path));
		json_object_object_add(w, "inode", json_object_new_int64((int64_t)st.st_ino));
		json_object_object_add(w, "gen", json_object_new_int64((int64_t)gen));
		json_object_object_add(w, "offset", json_object_new_int64((int64_t)off));
		json_object_object_add(w, "size", json_object_new_int64((int64_t)st.st_size));
		json_object_object_add(w, "mtime_ns", json_object_new_int64(st.st_mtim.tv_sec * 1000000000LL +
									      st.st_mtim.tv_nsec));
		json_object_object_add(w, "ctime_ns", json_object_new_int64(st.st_ctim.tv_sec * 1000000000LL +
									      st.st_ctim.tv_nsec));
		json_object_object_add(w, "repair", json_object_new_boolean(colon[1] != '-'));
		json_object_object_add(w, "link", json_object_new_boolean(false));
		if (!legacy)
			json_object_object_add(w, "slot", json_object_new_int(colon[1] == '-' || colon[1] == 'D' ? -1 :
									      atoi(colon + 1)));
		json_object_array_add(owners, w);
		free(path);
	}
	json_object_object_add(o, "range_id", json_object_new_int64(1));
	json_object_object_add(o, "device", json_object_new_string("/dev/null"));
	json_object_object_add(o, "list", json_object_new_string("/dev/null"));
	json_object_object_add(o, "mount", json_object_new_string(mount));
	json_object_object_add(o, "ns_id", json_object_new_string("test"));
	json_object_object_add(o, "page", json_object_new_int64((int64_t)fs_page));
	json_object_object_add(o, "fs_page", json_object_new_int64((int64_t)fs_page));
	json_object_object_add(o, "mode", json_object_new_int(PH_MODE_RELOCATE_PIN));
	json_object_object_add(o, "can_clear", json_object_new_boolean(false));
	json_object_object_add(o, "hole", json_object_new_boolean(false));
	json_object_object_add(o, "pin", json_object_new_string(pin));
	json_object_object_add(o, "bytes_lost", json_object_new_int64(0));
	if (!legacy)
		json_object_object_add(o, "slots", json_object_new_int64((int64_t)n_pages));
	if (legacy) {
		add_step(steps, PH_STEP_PIN, 0);
		for (size_t w = 0; w < n_owners; w++) {
			add_step(steps, PH_STEP_PUNCH, w);
			add_step(steps, w == 0 ? PH_STEP_WRITE : PH_STEP_RESHARE, w);
		}
	} else {
		add_step(steps, PH_STEP_STAGE, 0);
		add_step(steps, PH_STEP_PIN, 0);
		for (size_t w = 0; w < n_owners; w++) {
			char m = argv[6 + w][strlen(argv[6 + w]) - 1];

			if (m == 'D')
				add_step(steps, PH_STEP_UNLINK, w);
			else if (m != '-')
				add_step(steps, PH_STEP_SWAP, w);
		}
		add_step(steps, PH_STEP_UNSTAGE, 0);
	}
	json_object_object_add(o, "owners", owners);
	json_object_object_add(o, "steps", steps);

	l = open_ledger(ctx, state);
	k = ph_ledger_intent_begin(l, 1, fs_page, json_object_to_json_string(o), blob, n_pages * 4096, 1, &id);
	if (k == 0)
		k = ph_repairer_new(ctx, l, NULL, NULL, &rep);
	if (k == 0)
		k = ph_repairer_resume(rep);
	printf("resumed %d\n", k);
	ph_repairer_free(rep);
	ph_ledger_free(l);
	json_object_put(o);
	free(blob);
	return k < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct ph_ctx *ctx;
	int r = 2;

	if (argc >= 2 && strcmp(argv[1], "faults") == 0) {
#ifdef PH_FAULT_INJECTION
		return 0;
#else
		return 1;
#endif
	}
	if (ph_ctx_new(&ctx) < 0)
		return 2;
	if (argc >= 8 && strcmp(argv[1], "run") == 0)
		r = run(ctx, argc, argv);
	else if (argc == 3 && (strcmp(argv[1], "resume") == 0 || strcmp(argv[1], "running") == 0)) {
		struct ph_ledger *l = open_ledger(ctx, argv[2]);
		struct ph_repairer *rep = NULL;
		unsigned n = 0;

		if (strcmp(argv[1], "resume") == 0) {
			r = ph_repairer_new(ctx, l, NULL, NULL, &rep);
			if (r == 0)
				r = ph_repairer_resume(rep);
			printf("resumed %d\n", r);
			ph_repairer_free(rep);
		} else {
			r = ph_ledger_intents_running(l, count_one, &n);
			printf("%u\n", n);
		}
		ph_ledger_free(l);
		r = r < 0 ? 1 : 0;
	} else
		fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
	ph_ctx_unref(ctx);
	return r;
}
