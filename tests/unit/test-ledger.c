/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ledger: diffing the kernel's lists (new, grown, partly cleared,
 * cleared, merged, forgotten after a reboot, reappeared), the state
 * machine, more ranges than the kernel can hold, and damaged databases
 * moved aside rather than lost.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

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
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_MAPPED, "mapped", "2 owners", ph_now_usec()), 0);

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

struct hist {
	char events[16][32];
	size_t n;
};

static int collect_history(void *userdata, const struct ph_history_row *h)
{
	struct hist *x = userdata;

	if (x->n < 16)
		snprintf(x->events[x->n++], 32, "%s", h->event);
	return 0;
}

static void test_merge(void **state)
{
	struct fixture *f = *state;
	struct ph_observation two[] = { OBS(100, 1), OBS(102, 1) }, one[] = { OBS(100, 3) };
	struct hist h = { 0 };
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
	/* both histories live on in the surviving range */
	assert_int_equal(ph_ledger_history(f->l, first, collect_history, &h), 0);
	assert_int_equal(h.n, 4);
	assert_string_equal(h.events[0], "detected");
	assert_string_equal(h.events[1], "detected");
	assert_string_equal(h.events[2], "merged");
	assert_string_equal(h.events[3], "grown");
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
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRED, NULL, NULL, 1), -EINVAL);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_MAPPED, NULL, NULL, 1), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_PLANNED, NULL, NULL, 1), 0);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRING, NULL, NULL, 1), 0);
	/* a range being repaired that the kernel drops is left to the repairer */
	apply(f, NULL, 0, "boot1");
	assert_int_equal(f->changes[0].row.state, PH_STATE_REPAIRING);
	assert_int_equal(ph_ledger_set_state(f->l, id, PH_STATE_REPAIRED, NULL, NULL, 1), 0);
	assert_int_equal(ph_ledger_set_state(f->l, 9999, PH_STATE_MAPPED, NULL, NULL, 1), -ENOENT);
}

/* A change callback may write to the ledger (scan maps a new range and
 * marks it mapped from its callback): changes come after the commit. */
static void mark_mapped(void *userdata, const struct ph_change *c)
{
	struct fixture *f = userdata;

	assert_int_equal(ph_ledger_set_state(f->l, c->row.id, PH_STATE_MAPPED, "mapped", "test", 1), 0);
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
	assert_int_equal(sqlite3_column_int(st, 0), 2);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_beyond_512, setup, teardown),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test(test_newer_schema),
		cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
		cmocka_unit_test(test_readonly_missing),
		cmocka_unit_test(test_migrate_v1),
		cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
