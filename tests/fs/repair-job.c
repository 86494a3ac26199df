/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs one repair job on real files, without pmem: the job is written to
 * a scratch ledger's intent log and finished by ph_repairer_resume(), the
 * way a restart finishes a crashed repair, so the repairer's own steps and
 * verifier run on a loop-mounted filesystem.  The "poisoned" page is
 * synthetic: the job's badblocks list is a file the test writes.
 *
 *   repair-job STATE_DIR JOB.json CONTENT
 *   repair-job --read-source SOURCE FILE OFFSET OUT
 *                                      (Source= as a restore of FILE's page
 *                                       at OFFSET reads it, as root; the
 *                                       page into OUT; 1 and why if refused)
 *   repair-job --sector FILE OFFSET    (where FILE's page at OFFSET is, in
 *                                       512-byte sectors of its device)
 *
 * JOB.json is the job as the intent log stores it, with names for "mode"
 * and for each step's kind ("steps": [["pin",0],...]); an owner's inode,
 * size, mtime_ns and ctime_ns, and the job's fs_page (from owner 0's page),
 * are filled in from the files when absent.  CONTENT holds the page's new
 * 4096 bytes.  Prints "intent STATE: DETAIL"; exits 0 when STATE is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <linux/fs.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fiemap.h"
#include "ledger.h"
#include "repair.h"

static int by_name(const char *s, const char *(*to_string)(int), int max)
{
	for (int i = 0; i < max; i++)
		if (to_string(i) && strcmp(to_string(i), s) == 0)
			return i;
	fprintf(stderr, "unknown name %s\n", s);
	exit(2);
}

static const char *mode_str(int m)
{
	return ph_mode_to_string((enum ph_mode)m);
}

static const char *step_str(int k)
{
	return ph_step_to_string((enum ph_step_kind)k);
}

static int64_t phys_sector(const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t sector;

	if (fd < 0 || fiemap_sector(fd, off, &sector) < 0) {
		fprintf(stderr, "%s: no block at %" PRIu64 "\n", path, off);
		exit(2);
	}
	close(fd);
	return (int64_t)sector;
}

static void fill(struct json_object *job)
{
	struct json_object *owners, *steps, *v;

	if (json_object_object_get_ex(job, "mode", &v) && json_object_is_type(v, json_type_string))
		json_object_object_add(job, "mode",
				       json_object_new_int(by_name(json_object_get_string(v), mode_str,
								   PH_MODE_REFUSED + 1)));
	if (json_object_object_get_ex(job, "steps", &steps))
		for (size_t i = 0; i < json_object_array_length(steps); i++) {
			struct json_object *s = json_object_array_get_idx(steps, i), *k = json_object_array_get_idx(s, 0);

			if (json_object_is_type(k, json_type_string))
				json_object_array_put_idx(s, 0,
							  json_object_new_int(by_name(json_object_get_string(k), step_str,
										      PH_STEP_UNSTAGE + 1)));
		}
	if (!json_object_object_get_ex(job, "bytes_lost", &v))
		json_object_object_add(job, "bytes_lost", json_object_new_int64(0));
	if (!json_object_object_get_ex(job, "owners", &owners))
		return;
	for (size_t i = 0; i < json_object_array_length(owners); i++) {
		struct json_object *o = json_object_array_get_idx(owners, i), *p, *off;
		struct stat st;

		if (!json_object_object_get_ex(o, "path", &p) || json_object_object_get_ex(o, "inode", &v))
			continue;
		if (lstat(json_object_get_string(p), &st) < 0) {
			perror(json_object_get_string(p));
			exit(2);
		}
		json_object_object_add(o, "inode", json_object_new_int64((int64_t)st.st_ino));
		json_object_object_add(o, "dev", json_object_new_int64((int64_t)st.st_dev));
		json_object_object_add(o, "gen", json_object_new_int64(0)); /* 0: not compared */
		json_object_object_add(o, "size", json_object_new_int64((int64_t)st.st_size));
		json_object_object_add(o, "mtime_ns",
				       json_object_new_int64(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec));
		json_object_object_add(o, "ctime_ns",
				       json_object_new_int64(st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec));
		/* the names the repairer derives from the file's, as job_from_plan() does */
		if (i == 0 && !json_object_object_get_ex(job, "tmp", &v)) {
			const char *path = json_object_get_string(p), *base = strrchr(path, '/') + 1;
			char *tmp = NULL, *name = NULL, *prefix = NULL;
			uint64_t page = (uint64_t)json_object_get_int64(json_object_object_get(job, "page"));

			if (ph_repair_side_name(".pmemheal-", base, page, ".tmp", 0, &name) < 0 ||
			    asprintf(&tmp, "%.*s%s", (int)(base - path), path, name) < 0 ||
			    asprintf(&prefix, "%ju-", (uintmax_t)st.st_ino) < 0)
				exit(2);
			free(name);
			if (ph_repair_side_name(prefix, base, page, "", PH_QUARANTINE_RESERVE, &name) < 0)
				exit(2);
			json_object_object_add(job, "tmp", json_object_new_string(tmp));
			json_object_object_add(job, "qname", json_object_new_string(name));
			free(tmp);
			free(name);
			free(prefix);
		}
		if (i == 0 && !json_object_object_get_ex(job, "fs_page", &v) &&
		    json_object_object_get_ex(o, "offset", &off))
			json_object_object_add(job, "fs_page",
					       json_object_new_int64(phys_sector(json_object_get_string(p),
										 (uint64_t)json_object_get_int64(off))));
	}
}

int main(int argc, char **argv)
{
	struct ph_ctx *ctx = NULL;
	struct ph_ledger *ledger = NULL;
	struct ph_repairer *r = NULL;
	struct ph_error err = { { 0 } };
	struct json_object *job;
	static uint8_t content[16 * PH_PAGE_SIZE]; /* a page per slot */
	ssize_t content_len;
	int64_t intent;
	sqlite3 *db;
	sqlite3_stmt *st;
	char *dbpath;
	int fd, k, done = 0;

	if (argc == 4 && strcmp(argv[1], "--sector") == 0) {
		printf("%" PRId64 "\n", phys_sector(argv[2], strtoull(argv[3], NULL, 0)));
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "--read-source") == 0) {
		struct stat tgt;
		char *why = NULL;
		int out;

		if (stat(argv[3], &tgt) < 0) {
			perror(argv[3]);
			return 2;
		}
		k = ph_repair_read_source(argv[2], tgt.st_uid, tgt.st_gid, (uint64_t)tgt.st_size,
					  strtoull(argv[4], NULL, 0), content, &why, NULL, NULL);
		if (k < 0) {
			printf("refused (%s): %s\n", strerror(-k), why ? why : "?");
			free(why);
			return 1;
		}
		out = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0 || write(out, content, PH_PAGE_SIZE) != PH_PAGE_SIZE)
			return 2;
		close(out);
		printf("read\n");
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: repair-job STATE_DIR JOB.json CONTENT (a page per slot)\n");
		return 2;
	}
	job = json_object_from_file(argv[2]);
	fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	content_len = fd < 0 ? -1 : read(fd, content, sizeof(content));
	if (!job || content_len <= 0 || content_len % PH_PAGE_SIZE) {
		fprintf(stderr, "cannot read %s, or %s is not whole pages\n", argv[2], argv[3]);
		return 2;
	}
	close(fd);
	fill(job);
	if (ph_ctx_new(&ctx) < 0 || ph_ledger_open(ctx, argv[1], 0, &ledger, &err) < 0 ||
	    ph_repairer_new(ctx, ledger, NULL, NULL, &r) < 0) {
		fprintf(stderr, "setup failed: %s\n", err.message);
		return 2;
	}
	/* the intent row names the job's own range and page, as the planner's do */
	k = ph_ledger_intent_begin(ledger, json_object_get_int64(json_object_object_get(job, "range_id")),
				   (uint64_t)json_object_get_int64(json_object_object_get(job, "page")),
				   json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN),
				   content, (size_t)content_len, ph_now_usec(), &intent);
	if (k < 0) {
		fprintf(stderr, "intent: %s\n", strerror(-k));
		return 2;
	}
	k = ph_repairer_resume(r);
	if (k < 0) {
		fprintf(stderr, "resume: %s\n", strerror(-k));
		return 2;
	}
	ph_repairer_free(r);
	ph_ledger_free(ledger);
	ph_ctx_unref(ctx);
	json_object_put(job);

	if (asprintf(&dbpath, "%s/ledger.db", argv[1]) < 0 || sqlite3_open(dbpath, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT state, detail FROM intents WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return 2;
	sqlite3_bind_int64(st, 1, intent);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0), *detail = (const char *)sqlite3_column_text(st, 1);

		printf("intent %s: %s\n", state, detail ? detail : "");
		done = strcmp(state, "done") == 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(dbpath);
	return done ? 0 : 1;
}
