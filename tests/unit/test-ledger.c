/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ledger: diffing the kernel's lists (new, grown, partly cleared,
 * cleared, merged, forgotten after a reboot, reappeared), the state
 * machine, more ranges than the kernel can hold, and damaged databases
 * moved aside rather than lost; and healthy ones never moved aside: not
 * on an I/O error, not on a full disk, not by a user who cannot write it.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include "faketree.h"
#include "ledger.h"

#define NS "5e0ad2a4-1f2f-4f4e-9d1a-3b1a61e2b9c2"
static const char *const ns_ids[] = { NS };

struct fixture {
	char *dir;
	struct ph_ctx *ctx;
	struct ph_ledger *l;
	struct ph_change changes[1024];
	size_t n;
};

static void record(void *userdata, const struct ph_change *c)
{
	struct fixture *f = userdata;

	assert_true(f->n < ELEMENTSOF(f->changes));
	f->changes[f->n] = *c;
	f->changes[f->n].row.ns_id = NULL; /* strings are only valid in the callback */
	f->changes[f->n].row.device = NULL;
	f->changes[f->n].row.origin = NULL;
	f->n++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ph_error err;

	f->dir = fake_root_new();
	assert_int_equal(ph_ctx_new(&f->ctx), 0);
	assert_int_equal(ph_ledger_open(f->ctx, f->dir, 0, &f->l, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ph_ledger_free(f->l);
	ph_ctx_unref(f->ctx);
	fake_root_free(f->dir);
	free(f);
	return 0;
}

static void apply(struct fixture *f, const struct ph_observation *obs, size_t n, const char *boot)
{
	f->n = 0;
	assert_int_equal(ph_ledger_apply(f->l, ns_ids, 1, obs, n, boot, ph_now_usec(), record, f), 0);
}

#define OBS(s, c) { .ns_id = NS, .device = "pmem0", .start = (s), .count = (c), .origin = PH_ORIGIN_DEVICE }

static int count_rows(void *userdata, const struct ph_range_row *row)
{
	(*(size_t *)userdata)++;
	return 0;
}

static size_t rows(struct fixture *f)
{
	size_t n = 0;

	assert_int_equal(ph_ledger_foreach(f->l, NULL, count_rows, &n), 0);
	return n;
}

static void test_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(208, 8) }, grown[] = { OBS(200, 16) }, shrunk[] = { OBS(204, 4) };

	apply(f, a, 1, "boot1");
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_NEW);
	assert_int_equal(f->changes[0].row.state, PH_STATE_NEW);
	assert_int_equal(f->changes[0].row.start, 208);

	apply(f, a, 1, "boot1"); /* nothing changed: nothing reported */
	assert_int_equal(f->n, 0);

	apply(f, grown, 1, "boot1");
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_GROWN);
	assert_int_equal(f->changes[0].row.start, 200);
	assert_int_equal(f->changes[0].old_start, 208);

	apply(f, shrunk, 1, "boot1");
	assert_int_equal(f->changes[0].type, PH_CHANGE_SHRUNK);
	assert_int_equal(f->changes[0].row.count, 4);

	apply(f, NULL, 0, "boot1"); /* gone, same boot: cleared */
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_CLEARED);
	assert_int_equal(f->changes[0].row.state, PH_STATE_CLEARED);
	assert_false(f->changes[0].row.in_kernel);

	apply(f, shrunk, 1, "boot1"); /* listed again after being healed */
	assert_int_equal(f->changes[0].type, PH_CHANGE_NEW);
	assert_int_equal(f->changes[0].row.state, PH_STATE_NEW);
	assert_int_equal(rows(f), 1);
}

static void test_reboot(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(208, 8) };
	int64_t id;

	apply(f, a, 1, "boot1");
	id = f->changes[0].row.id;
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_MAPPED), 0);

	/* After a reboot the kernel's list starts empty: remembered, state kept. */
	apply(f, NULL, 0, "boot2");
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_FORGOTTEN);
	assert_int_equal(f->changes[0].row.state, PH_STATE_MAPPED);
	apply(f, NULL, 0, "boot2");
	assert_int_equal(f->n, 0);
	assert_int_equal(rows(f), 1);

	/* ARS finds it again. */
	apply(f, a, 1, "boot2");
	assert_int_equal(f->changes[0].type, PH_CHANGE_RELISTED);
	assert_int_equal(f->changes[0].row.state, PH_STATE_MAPPED);
	assert_int_equal(f->changes[0].row.id, id);
}

static int get_extent(void *userdata, const struct ph_range_row *row)
{
	uint64_t *v = userdata;

	v[0] = row->start;
	v[1] = row->count;
	return 0;
}

static void test_merge(void **state)
{
	struct fixture *f = *state;
	struct ph_observation two[] = { OBS(100, 1), OBS(102, 1) }, one[] = { OBS(100, 3) };
	uint64_t extent[2] = { 0 };
	int64_t first;

	apply(f, two, 2, "boot1");
	assert_int_equal(f->n, 2);
	first = f->changes[0].row.id < f->changes[1].row.id ? f->changes[0].row.id : f->changes[1].row.id;
	assert_int_equal(rows(f), 2);
	/* the kernel merges 100 and 102 once 101 is poisoned too */
	apply(f, one, 1, "boot1");
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_GROWN);
	assert_int_equal(f->changes[0].row.id, first);
	assert_int_equal(rows(f), 1);
	/* the oldest row survives, holding the merged extent */
	assert_int_equal(ph_ledger_get_range(f->l, first, get_extent, extent), 0);
	assert_int_equal(extent[0], 100);
	assert_int_equal(extent[1], 3);
}

static void test_states(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(8, 8) };
	int64_t id;

	assert_true(ph_state_transition_ok(PH_STATE_NEW, PH_STATE_MAPPED));
	assert_true(ph_state_transition_ok(PH_STATE_REPAIRING, PH_STATE_PINNED));
	assert_false(ph_state_transition_ok(PH_STATE_NEW, PH_STATE_REPAIRED));
	assert_false(ph_state_transition_ok(PH_STATE_LOST, PH_STATE_MAPPED));
	assert_true(ph_state_transition_ok(PH_STATE_LOST, PH_STATE_NEW));

	apply(f, a, 1, "boot1");
	id = f->changes[0].row.id;
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRED), -EINVAL);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_MAPPED), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_PLANNED), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRING), 0);
	/* a range being repaired that the kernel drops is left to the
	 * repairer: no change, and it stays listed until it is settled */
	apply(f, NULL, 0, "boot1");
	assert_int_equal(f->n, 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRED), 0);
	/* settled (repaired, not verified cleared): the next scan says the
	 * kernel dropped it, once */
	apply(f, NULL, 0, "boot1");
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_CLEARED);
	assert_int_equal(f->changes[0].row.state, PH_STATE_REPAIRED);
	apply(f, NULL, 0, "boot1");
	assert_int_equal(f->n, 0);
	assert_int_equal(ph_ledger_set_state(f->l, 9999, PH_STATE_MAPPED), -ENOENT);
}

/* "cleared" is one fact: a range a repairer moved to cleared is not
 * reported cleared again by the scan that finds it gone from the list; a
 * range nobody repaired is, once. */
static void test_cleared_once(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(8, 8), OBS(64, 8) };
	struct ph_observation b[] = { OBS(64, 8) };
	uint64_t listed;
	int64_t id;

	apply(f, a, 2, "boot1");
	assert_int_equal(f->n, 2);
	id = f->changes[0].row.start == 8 ? f->changes[0].row.id : f->changes[1].row.id;
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_MAPPED), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_PLANNED), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRING), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_CLEARED), 0);
	apply(f, b, 1, "boot1"); /* 8+8 is gone: the repairer said so already */
	assert_int_equal(f->n, 0);
	assert_int_equal(ph_ledger_count_listed(f->l, &listed), 0);
	assert_int_equal(listed, 1); /* 64+8; 8+8 is cleared */
	apply(f, NULL, 0, "boot1"); /* 64+8 is gone: nobody said so yet */
	assert_int_equal(f->n, 1);
	assert_int_equal(f->changes[0].type, PH_CHANGE_CLEARED);
	assert_int_equal(f->changes[0].row.start, 64);
	assert_int_equal(f->changes[0].row.state, PH_STATE_CLEARED);
	apply(f, NULL, 0, "boot1");
	assert_int_equal(f->n, 0);
}

/* A change callback may write to the ledger (scan maps a new range and
 * marks it mapped from its callback): changes come after the commit. */
static void mark_mapped(void *userdata, const struct ph_change *c)
{
	struct fixture *f = userdata;

	assert_int_equal(ph_ledger_set_state(f->l, c->row.id, PH_STATE_MAPPED), 0);
	f->n++;
}

static int first_state(void *userdata, const struct ph_range_row *row)
{
	*(enum ph_state *)userdata = row->state;
	return 1;
}

static void test_callback_writes(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(64, 8) };
	enum ph_state st = PH_STATE_NEW;

	f->n = 0;
	assert_int_equal(ph_ledger_apply(f->l, ns_ids, 1, a, 1, "boot1", 1, mark_mapped, f), 0);
	assert_int_equal(f->n, 1);
	assert_int_equal(ph_ledger_foreach(f->l, NULL, first_state, &st), 0);
	assert_int_equal(st, PH_STATE_MAPPED);
}

/* Statements are kept and handed out again, one holder at a time: a
 * callback that runs the same query inside a loop over it gets its own,
 * and neither loop disturbs the other. */
struct nested {
	struct ph_ledger *l;
	unsigned outer, inner;
	uint64_t sum;
};

static int count_inner(void *userdata, const struct ph_range_row *row)
{
	struct nested *n = userdata;

	n->inner++;
	n->sum += row->start;
	return 0;
}

static int count_outer(void *userdata, const struct ph_range_row *row)
{
	struct nested *n = userdata;

	n->outer++;
	return ph_ledger_foreach(n->l, NULL, count_inner, n);
}

static void test_nested_queries(void **state)
{
	struct fixture *f = *state;
	struct ph_observation a[] = { OBS(64, 8), OBS(128, 8), OBS(256, 8) };
	struct nested n = { .l = f->l };

	apply(f, a, 3, "boot1");
	for (int round = 0; round < 3; round++) { /* fresh, then kept statements */
		n.outer = n.inner = 0;
		n.sum = 0;
		assert_int_equal(ph_ledger_foreach(f->l, NULL, count_outer, &n), 0);
		assert_int_equal(n.outer, 3);
		assert_int_equal(n.inner, 9);
		assert_int_equal(n.sum, 3 * (64 + 128 + 256));
	}
}

/* The kernel lists at most 512 ranges; the ledger keeps them all. */
static void test_beyond_512(void **state)
{
	struct fixture *f = *state;
	struct ph_observation batch[300];
	uint64_t counts[_PH_STATE_MAX];

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 300; i++)
			batch[i] = (struct ph_observation)OBS((uint64_t)(round * 300 + i) * 16, 8);
		apply(f, batch, 300, "boot1");
		assert_int_equal(f->n, 300);
		apply(f, NULL, 0, "boot1"); /* cleared by writes before the next batch */
	}
	assert_int_equal(rows(f), 600);
	assert_int_equal(ph_ledger_count(f->l, counts), 0);
	assert_int_equal(counts[PH_STATE_CLEARED], 600);
}

/* ---- damaged databases ------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "re");
	char *buf = malloc(1 << 20);

	assert_non_null(fp);
	*len = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	return buf;
}

static void expect_moved_aside(const char *dir, const char *garbage, size_t len)
{
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	char path[4096];
	char *kept;
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	fp = fopen(path, "we");
	assert_non_null(fp);
	assert_int_equal(fwrite(garbage, 1, len, fp), len);
	fclose(fp);

	assert_int_equal(ph_ctx_new(&ctx), 0);
	/* read-only: reports, never moves */
	assert_int_not_equal(ph_ledger_open(ctx, dir, PH_LEDGER_READONLY, &l, &err), 0);
	assert_true(strlen(err.message) > 0);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	assert_non_null(ph_ledger_get_moved_aside(l));
	kept = read_file(ph_ledger_get_moved_aside(l), &n);
	assert_int_equal(n, len);
	assert_memory_equal(kept, garbage, len); /* the damaged file, intact */
	free(kept);
	/* and the new ledger works */
	{
		struct ph_observation a[] = { OBS(1, 1) };

		assert_int_equal(ph_ledger_apply(l, ns_ids, 1, a, 1, "b", 1, NULL, NULL), 0);
	}
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
}

static void test_garbage(void **state)
{
	char *dir = fake_root_new();
	char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	expect_moved_aside(dir, junk, sizeof(junk));
	fake_root_free(dir);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct ph_observation batch[200];
	char path[4096], *data, *dir2 = fake_root_new();
	size_t len;

	/* a real ledger with content, checkpointed into the main file */
	for (int i = 0; i < 200; i++)
		batch[i] = (struct ph_observation)OBS((uint64_t)i * 16, 8);
	apply(f, batch, 200, "boot1");
	f->l = ph_ledger_free(f->l);
	snprintf(path, sizeof(path), "%s/ledger.db", f->dir);
	data = read_file(path, &len);
	assert_true(len > 8192);
	expect_moved_aside(dir2, data, len / 2);
	free(data);
	fake_root_free(dir2);
}

static void test_newer_schema(void **state)
{
	char *dir = fake_root_new(), path[4096];
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE x (y); PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), -EPROTO);
	assert_non_null(strstr(err.message, "newer pmemheal"));
	assert_int_equal(access(path, F_OK), 0); /* left untouched */
	ph_ctx_unref(ctx);
	fake_root_free(dir);
}

static void test_durability(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/ledger.db", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A version 1 ledger (before the intent log) is migrated, rows kept. */
static void test_migrate_v1(void **state)
{
	char *dir = fake_root_new(), path[4096];
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	sqlite3 *db;
	size_t n = 0;
	int64_t id;

	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"CREATE TABLE ranges (id INTEGER PRIMARY KEY, ns_id TEXT NOT NULL, start INTEGER NOT NULL, "
		"count INTEGER NOT NULL CHECK (count > 0), device TEXT, state TEXT NOT NULL, origin TEXT NOT NULL, "
		"in_kernel INTEGER NOT NULL DEFAULT 1, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, "
		"last_boot TEXT, UNIQUE (ns_id, start));"
		"CREATE TABLE history (id INTEGER PRIMARY KEY, range_id INTEGER NOT NULL, time INTEGER NOT NULL, "
		"event TEXT NOT NULL, state TEXT, detail TEXT);"
		"INSERT INTO ranges VALUES (1, '" NS "', 208, 8, 'pmem0', 'mapped', 'device', 1, 1, 1, 'b');"
		"PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	assert_null(ph_ledger_get_moved_aside(l));
	assert_int_equal(ph_ledger_foreach(l, NULL, count_rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ph_ledger_intent_begin(l, 1, 208, "{}", "x", 1, 5, &id), 0);
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
	fake_root_free(dir);
}

struct seen_intents {
	size_t n;
	int step;
	char content[8];
};

static int on_intent(void *userdata, const struct ph_intent *it);

static int count_history_tables(void *userdata, int n, char **v, char **names)
{
	(void)n;
	(void)v;
	(void)names;
	(*(int *)userdata)++;
	return 0;
}

/* A version 2 ledger (what the previous release wrote: ranges, history,
 * the intent log) becomes version 3: the history table and its index are
 * dropped; every range and every intent, a running one with its page's
 * bytes included, is kept as it was and still resumes.  Read-only opens
 * (pmemheal status) work on the result. */
static void test_migrate_v2(void **state)
{
	char *dir = fake_root_new(), path[4096];
	struct seen_intents s = { 0 };
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	uint64_t extent[2] = { 0 };
	sqlite3 *db;
	size_t n = 0;
	int tables = 0, version = 0;
	sqlite3_stmt *st;

	(void)state;
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* version 2's schema, as lib/ledger.c created it */
	assert_int_equal(sqlite3_exec(db,
		"CREATE TABLE ranges (id INTEGER PRIMARY KEY, ns_id TEXT NOT NULL, start INTEGER NOT NULL, "
		"count INTEGER NOT NULL CHECK (count > 0), device TEXT, state TEXT NOT NULL CHECK (state IN "
		"('new','mapped','planned','repairing','repaired','cleared','pinned','failed','lost')), "
		"origin TEXT NOT NULL, in_kernel INTEGER NOT NULL DEFAULT 1, first_seen INTEGER NOT NULL, "
		"last_seen INTEGER NOT NULL, last_boot TEXT, UNIQUE (ns_id, start));"
		"CREATE TABLE history (id INTEGER PRIMARY KEY, range_id INTEGER NOT NULL, time INTEGER NOT NULL, "
		"event TEXT NOT NULL, state TEXT, detail TEXT);"
		"CREATE INDEX history_range ON history (range_id);"
		"CREATE TABLE intents (id INTEGER PRIMARY KEY, range_id INTEGER NOT NULL, page INTEGER NOT NULL, "
		"plan TEXT NOT NULL, content BLOB, step INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL CHECK "
		"(state IN ('running','done','aborted','failed')), created INTEGER NOT NULL, "
		"updated INTEGER NOT NULL, detail TEXT);"
		"CREATE INDEX intents_state ON intents (state);"
		"INSERT INTO ranges VALUES (1, '" NS "', 208, 8, 'pmem0', 'repairing', 'device', 1, 1, 2, 'b');"
		"INSERT INTO ranges VALUES (2, '" NS "', 4096, 16, 'pmem0', 'pinned', 'device+region', 0, 1, 2, 'b');"
		"INSERT INTO history VALUES (1, 1, 1, 'detected', 'new', 'device');"
		"INSERT INTO history VALUES (2, 2, 1, 'pinned', 'pinned', 'page 4096');"
		"INSERT INTO intents VALUES (1, 1, 208, '{}', X'70616765', 3, 'running', 1, 2, NULL);"
		"INSERT INTO intents VALUES (2, 2, 4096, '{}', NULL, 5, 'done', 1, 2, 'ok');"
		"PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	assert_null(ph_ledger_get_moved_aside(l));
	assert_int_equal(ph_ledger_foreach(l, NULL, count_rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ph_ledger_get_range(l, 2, get_extent, extent), 0);
	assert_int_equal(extent[0], 4096);
	assert_int_equal(extent[1], 16);
	assert_int_equal(ph_ledger_intents_running(l, on_intent, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.step, 3);
	assert_memory_equal(s.content, "page", 4);
	/* a state still moves as the state machine says */
	assert_int_equal(ph_ledger_set_state(l, 1, PH_STATE_PINNED), 0);
	ph_ledger_free(l);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(version, 3);
	assert_int_equal(sqlite3_exec(db, "SELECT name FROM sqlite_master WHERE name LIKE 'history%'",
				      count_history_tables, &tables, NULL), SQLITE_OK);
	assert_int_equal(tables, 0);
	sqlite3_close(db);

	/* pmemheal status opens it read-only */
	n = 0;
	assert_int_equal(ph_ledger_open(ctx, dir, PH_LEDGER_READONLY, &l, &err), 0);
	assert_int_equal(ph_ledger_foreach(l, NULL, count_rows, &n), 0);
	assert_int_equal(n, 2);
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
	fake_root_free(dir);
}

static int on_intent(void *userdata, const struct ph_intent *it)
{
	struct seen_intents *s = userdata;

	s->n++;
	s->step = it->step;
	memcpy(s->content, it->content, MIN(it->content_len, sizeof(s->content)));
	return 0;
}

static void test_intents(void **state)
{
	struct fixture *f = *state;
	struct seen_intents s = { 0 };
	int64_t a, b;

	assert_int_equal(ph_ledger_intent_begin(f->l, 7, 800, "{\"mode\":\"in-place\"}", "page-a", 7, 1, &a), 0);
	assert_int_equal(ph_ledger_intent_begin(f->l, 7, 808, "{}", NULL, 0, 1, &b), 0);
	assert_int_equal(ph_ledger_intent_step(f->l, a, 2, 2), 0);
	assert_int_equal(ph_ledger_intent_finish(f->l, b, "done", NULL, 3), 0);
	/* a crash now: only a is left running, at step 2, with its bytes */
	assert_int_equal(ph_ledger_intents_running(f->l, on_intent, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.step, 2);
	assert_string_equal(s.content, "page-a");
	assert_int_equal(ph_ledger_intent_finish(f->l, a, "done", NULL, 4), 0);
	s.n = 0;
	assert_int_equal(ph_ledger_intents_running(f->l, on_intent, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(ph_ledger_intent_step(f->l, 999, 1, 5), -ENOENT);
}

static void test_readonly_missing(void **state)
{
	char *dir = fake_root_new();
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, PH_LEDGER_READONLY, &l, &err), -ENOENT);
	assert_non_null(strstr(err.message, "no ledger yet"));
	ph_ctx_unref(ctx);
	fake_root_free(dir);
}


/* ---- healthy ledgers that cannot be opened right now ------------------ */

/*
 * Faults between sqlite and the disk: a VFS that passes everything to the
 * default one, except that it fails reads (EIO) or the shared-memory index
 * (ENOSPC: on a full disk sqlite cannot size the -shm it creates at open,
 * and reports "disk I/O error") while a fault is armed.
 */
static struct {
	int read_errno;
	int shm_errno;
} fault;
static sqlite3_vfs *real_vfs;

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* lives right after this struct */
};

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;

	return rc;
}

static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	if (fault.read_errno) {
		errno = fault.read_errno;
		return SQLITE_IOERR_READ;
	}
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int shim_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int shim_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int shim_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int shim_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int shim_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	if (fault.shm_errno) {
		errno = fault.shm_errno;
		return SQLITE_IOERR_SHMSIZE;
	}
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods shim_methods = {
	.iVersion = 2,
	.xClose = shim_close,
	.xRead = shim_read,
	.xWrite = shim_write,
	.xTruncate = shim_truncate,
	.xSync = shim_sync,
	.xFileSize = shim_size,
	.xLock = shim_lock,
	.xUnlock = shim_unlock,
	.xCheckReservedLock = shim_reserved,
	.xFileControl = shim_control,
	.xSectorSize = shim_sector,
	.xDeviceCharacteristics = shim_chars,
	.xShmMap = shim_shm_map,
	.xShmLock = shim_shm_lock,
	.xShmBarrier = shim_shm_barrier,
	.xShmUnmap = shim_shm_unmap,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	sf->real = (sqlite3_file *)(sf + 1);
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	/* xClose is called even when xOpen fails, if pMethods is set */
	f->pMethods = rc == SQLITE_OK ? &shim_methods : NULL;
	return rc;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	return real_vfs->xDelete(real_vfs, name, sync);
}

static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int shim_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int shim_random(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int shim_sleep(sqlite3_vfs *vfs, int us)
{
	return real_vfs->xSleep(real_vfs, us);
}

static int shim_time(sqlite3_vfs *vfs, double *out)
{
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int shim_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static sqlite3_vfs shim_vfs = {
	.iVersion = 1,
	.zName = "pmemheal-test-faults",
	.xOpen = shim_open,
	.xDelete = shim_delete,
	.xAccess = shim_access,
	.xFullPathname = shim_full,
	.xRandomness = shim_random,
	.xSleep = shim_sleep,
	.xCurrentTime = shim_time,
	.xGetLastError = shim_last_error,
};

static void install_faults(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.mxPathname = real_vfs->mxPathname;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

/* A ledger with a range and a running intent (a repair a crash
 * interrupted), closed cleanly: its -wal and -shm are gone. */
static int64_t ledger_with_intent(const char *dir)
{
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	struct ph_observation a[] = { OBS(208, 8) };
	int64_t id;

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	assert_int_equal(ph_ledger_apply(l, ns_ids, 1, a, 1, "boot1", 1, NULL, NULL), 0);
	assert_int_equal(ph_ledger_intent_begin(l, 1, 208, "{}", "salvaged", 9, 2, &id), 0);
	assert_int_equal(ph_ledger_intent_step(l, id, 2, 3), 0);
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
	return id;
}

static bool nothing_moved_aside(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool ok = true;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".corrupt-"))
			ok = false;
	closedir(d);
	return ok;
}

/* The ledger in dir, unchanged since 'before', still has its intent. */
static void expect_kept(const char *dir, const char *before, size_t before_len, int64_t intent)
{
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	struct seen_intents s = { 0 };
	char path[4096], *now;
	size_t len;

	assert_true(nothing_moved_aside(dir));
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	now = read_file(path, &len);
	assert_int_equal(len, before_len);
	assert_memory_equal(now, before, len);
	free(now);

	/* and once the cause is gone, the same ledger opens, intent and all */
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	assert_null(ph_ledger_get_moved_aside(l));
	assert_int_equal(ph_ledger_intents_running(l, on_intent, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.step, 2);
	assert_string_equal(s.content, "salvaged");
	(void)intent;
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
}

static void expect_open_fails_kept(int *knob, int e, int expect)
{
	char *dir = fake_root_new(), path[4096], *before;
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	int64_t id;
	size_t len;
	int r;

	id = ledger_with_intent(dir);
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	before = read_file(path, &len);

	assert_int_equal(ph_ctx_new(&ctx), 0);
	*knob = e;
	r = ph_ledger_open(ctx, dir, 0, &l, &err);
	*knob = 0;
	if (r != expect)
		fail_msg("open with %s injected: %d (%s), expected %d; \"%s\"", strerror(e), r, strerror(-r), expect,
			 err.message);
	assert_null(l);
	assert_non_null(strstr(err.message, "left as it is"));
	/* the daemon and the CLI retry: a second failure moves nothing either */
	*knob = e;
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), expect);
	*knob = 0;
	ph_ctx_unref(ctx);
	expect_kept(dir, before, len, id);
	free(before);
	fake_root_free(dir);
}

static void test_io_error_kept(void **state)
{
	expect_open_fails_kept(&fault.read_errno, EIO, -EIO);
}

static void test_full_disk_kept(void **state)
{
	expect_open_fails_kept(&fault.shm_errno, ENOSPC, -ENOSPC);
}

/*
 * Someone who may not write the ledger (pmemheal scan as an ordinary
 * user) gets -EACCES and moves nothing.  Run as root, the opener drops to
 * nobody; run as a user, the modes take the rights away instead.
 *   dir_mode/file_mode: the state directory's and the ledger's modes.
 */
static void expect_not_writer(mode_t dir_mode, mode_t file_mode)
{
	char *parent = fake_root_new(), dir[4096], path[4200], *before;
	int64_t id;
	size_t len;
	pid_t pid;
	int status;

	/* nobody must reach the state directory to be refused by its mode */
	assert_int_equal(chmod(parent, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/state", parent);
	id = ledger_with_intent(dir);
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	before = read_file(path, &len);
	assert_int_equal(chmod(path, file_mode), 0);
	assert_int_equal(chmod(dir, dir_mode), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ph_ctx *ctx;
		struct ph_ledger *l = NULL;
		struct ph_error err = { { 0 } };
		int r;

		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(90);
		if (ph_ctx_new(&ctx) < 0)
			_exit(91);
		r = ph_ledger_open(ctx, dir, 0, &l, &err);
		if (r != -EACCES) {
			fprintf(stderr, "not a writer (dir %o, ledger %o): %d (%s), \"%s\"%s\n", dir_mode, file_mode, r,
				strerror(-r), err.message, l && ph_ledger_get_moved_aside(l) ? ", moved aside" : "");
			_exit(1);
		}
		if (!strstr(err.message, "root")) {
			fprintf(stderr, "unclear: \"%s\"\n", err.message);
			_exit(2);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* nor did it leave a -wal or -shm of its own behind */
	{
		char side[4300];

		snprintf(side, sizeof(side), "%s-wal", path);
		assert_int_equal(access(side, F_OK), -1);
		snprintf(side, sizeof(side), "%s-shm", path);
		assert_int_equal(access(side, F_OK), -1);
	}
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chmod(path, 0600), 0);
	expect_kept(dir, before, len, id);
	free(before);
	fake_root_free(parent);
}

static void test_not_writer(void **state)
{
	/* a state directory that is not the opener's to write */
	expect_not_writer(0555, 0644);
	/* ... nor to enter (the shipped StateDirectoryMode=0700) */
	if (geteuid() == 0)
		expect_not_writer(0700, 0644);
	/* a directory anyone may write, holding a ledger that is not theirs:
	 * sqlite would open it read-only, fail later, and the ledger was
	 * renamed away by whoever asked */
	expect_not_writer(0777, 0444);
}

/* Real damage in a real ledger (a b-tree page overwritten, not a cut or
 * an empty file) is still moved aside, byte for byte. */
static void test_damaged_btree(void **state)
{
	char *dir = fake_root_new(), *dir2 = fake_root_new(), path[4096], *data;
	struct ph_ctx *ctx;
	struct ph_ledger *l = NULL;
	struct ph_error err = { { 0 } };
	struct ph_observation batch[200];
	size_t len;

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ledger_open(ctx, dir, 0, &l, &err), 0);
	for (int i = 0; i < 200; i++)
		batch[i] = (struct ph_observation)OBS((uint64_t)i * 16, 8);
	assert_int_equal(ph_ledger_apply(l, ns_ids, 1, batch, 200, "b", 1, NULL, NULL), 0);
	ph_ledger_free(l);
	ph_ctx_unref(ctx);
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	data = read_file(path, &len);
	assert_true(len >= 3 * 4096);
	memset(data + 2 * 4096 + 8, 0xee, 4096 - 16); /* the third page's cells */
	expect_moved_aside(dir2, data, len);
	free(data);
	fake_root_free(dir);
	fake_root_free(dir2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleared_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_beyond_512, setup, teardown),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test(test_newer_schema),
		cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
		cmocka_unit_test(test_readonly_missing),
		cmocka_unit_test(test_migrate_v1),
		cmocka_unit_test(test_migrate_v2),
		cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
		cmocka_unit_test(test_io_error_kept),
		cmocka_unit_test(test_full_disk_kept),
		cmocka_unit_test(test_not_writer),
		cmocka_unit_test(test_damaged_btree),
	};

	install_faults();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
