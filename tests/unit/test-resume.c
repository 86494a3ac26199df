/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Resuming the intent log with damaged intents.  An intent's plan is JSON
 * that the ledger stores; a damaged one (a wrong type, a missing field, a
 * number out of range, nested garbage) must never abort the process, which
 * resumes before it tells systemd it is ready.  Each bad intent is set
 * aside (marked failed, with a reason that names the intent and the field)
 * and the good ones around it are resumed.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "faketree.h"
#include "ledger.h"
#include "repair.h"

#define RANGE 7
#define PAGE 4096

/* A quarantine job whose one step (the rename) is done: resuming it only
 * verifies, which needs no file; so a good intent ends "done". */
static const char good_plan[] =
	"{\"range_id\":7,\"device\":\"/dev/pmem0\",\"list\":\"/sys/block/pmem0/badblocks\","
	"\"mount\":\"/mnt\",\"ns_id\":\"5e0ad2a4\",\"page\":4096,\"fs_page\":2048,\"mode\":4,"
	"\"can_clear\":false,\"hole\":false,\"pin\":\"/mnt/.pmemheal/quarantine/5e0ad2a4-4096.pin\","
	"\"tmp\":\"/mnt/.pmemheal-a.4096.tmp\",\"qname\":\"12-a.4096\",\"bytes_lost\":0,"
	"\"owners\":[{\"path\":\"/mnt/a\",\"inode\":12,\"gen\":3,\"offset\":8192,\"size\":65536,"
	"\"mtime_ns\":1700000000000000000,\"ctime_ns\":1700000000000000000,\"repair\":true,\"link\":false}],"
	"\"steps\":[[11,0]]}";

#define DELETE NULL

/* A field of the good plan (path like owners[0].inode or steps[0][1]) set
 * to a JSON value, or removed; field: what the reason must name. */
struct mutation {
	const char *path, *value, *field;
};

static const char nested[] = "{\"a\":[1,{\"b\":[[[{\"c\":null}]]]},\"x\"],\"d\":{\"e\":{}}}";

static const struct mutation mutations[] = {
	{ "range_id", "\"7\"", "range_id" },
	{ "range_id", "7.5", "range_id" },
	{ "range_id", "8", "range_id" }, /* not the intent's range */
	{ "range_id", DELETE, "range_id" },
	{ "device", "5", "device" },
	{ "device", "null", "device" },
	{ "device", DELETE, "device" },
	{ "device", "\"\"", "device" },
	{ "device", "\"pmem0\"", "device" },
	{ "device", "\"/dev/pm\\u0000em0\"", "device" },
	{ "device", nested, "device" },
	{ "list", "[]", "list" },
	{ "list", DELETE, "list" },
	{ "ns_id", "{}", "ns_id" },
	{ "ns_id", "\"\"", "ns_id" },
	{ "mount", "5", "mount" },
	{ "mount", "\"mnt\"", "mount" },
	{ "mount", "null", "mount" }, /* the rename into quarantine needs it */
	{ "page", "-8", "page" },
	{ "page", "\"4096\"", "page" },
	{ "page", "1e300", "page" },
	{ "page", "18446744073709551615", "page" },
	{ "page", "99999999999999999999999999", "page" },
	{ "page", "4104", "page" }, /* not the intent's page */
	{ "page", DELETE, "page" },
	{ "fs_page", "-1", "fs_page" },
	{ "fs_page", "true", "fs_page" },
	{ "fs_page", "8192", "fs_page" }, /* beyond the disk's sector */
	{ "mode", "99", "mode" },
	{ "mode", "-1", "mode" },
	{ "mode", "\"quarantine\"", "mode" },
	{ "mode", "4.0", "mode" },
	{ "mode", "2147483652", "mode" },
	{ "can_clear", "\"yes\"", "can_clear" },
	{ "can_clear", "2", "can_clear" },
	{ "hole", "[]", "hole" },
	{ "pin", "5", "pin" },
	{ "pin", "\"relative.pin\"", "pin" },
	{ "tmp", "{}", "tmp" },
	{ "qname", "\"a/b\"", "qname" },
	{ "qname", "\"..\"", "qname" },
	{ "qname", "7", "qname" },
	{ "bytes_lost", "-1", "bytes_lost" },
	{ "bytes_lost", "\"0\"", "bytes_lost" },
	{ "owners", "5", "owners" },
	{ "owners", "{}", "owners" },
	{ "owners", "\"x\"", "owners" },
	{ "owners", "null", "owners" },
	{ "owners", DELETE, "owners" },
	{ "owners", "[5]", "owners[0]" },
	{ "owners", "[[]]", "owners[0]" },
	{ "owners", "[{}]", "owners[0].path" },
	{ "owners", nested, "owners" },
	{ "owners[0].path", "5", "owners[0].path" },
	{ "owners[0].path", DELETE, "owners[0].path" },
	{ "owners[0].path", "\"a\"", "owners[0].path" },
	{ "owners[0].path", nested, "owners[0].path" },
	{ "owners[0].inode", "-1", "owners[0].inode" },
	{ "owners[0].inode", "\"12\"", "owners[0].inode" },
	{ "owners[0].inode", "1e300", "owners[0].inode" },
	{ "owners[0].inode", "18446744073709551615", "owners[0].inode" },
	{ "owners[0].gen", "-1", "owners[0].gen" },
	{ "owners[0].offset", "-4096", "owners[0].offset" },
	{ "owners[0].offset", "9223372036854775807", "owners[0].offset" },
	{ "owners[0].size", "[1]", "owners[0].size" },
	{ "owners[0].mtime_ns", "\"x\"", "owners[0].mtime_ns" },
	{ "owners[0].ctime_ns", "[]", "owners[0].ctime_ns" },
	{ "owners[0].repair", "1", "owners[0].repair" },
	{ "owners[0].link", "\"no\"", "owners[0].link" },
	{ "steps", "5", "steps" },
	{ "steps", "{}", "steps" },
	{ "steps", DELETE, "steps" },
	{ "steps", nested, "steps" },
	{ "steps", "[5]", "steps[0]" },
	{ "steps", "[{}]", "steps[0]" },
	{ "steps", "[[]]", "steps[0]" },
	{ "steps", "[[11]]", "steps[0]" },
	{ "steps", "[[11,0,0]]", "steps[0]" },
	{ "steps", "[[99,0]]", "steps[0][0]" },
	{ "steps", "[[-1,0]]", "steps[0][0]" },
	{ "steps", "[[\"rename\",0]]", "steps[0][0]" },
	{ "steps", "[[11.5,0]]", "steps[0][0]" },
	{ "steps", "[[11,1]]", "steps[0][1]" },
	{ "steps", "[[11,-1]]", "steps[0][1]" },
	{ "steps", "[[11,\"0\"]]", "steps[0][1]" },
	{ "steps", "[[11,4294967296]]", "steps[0][1]" },
	{ "steps", "[[11,null]]", "steps[0][1]" },
};

/* Whole plans that are no job at all. */
static const char *const garbage[] = {
	"not json", "", "{", "[]", "null", "42", "\"a string\"", "{}", "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
	"{\"owners\":[],\"steps\":[]}", "{\"owners\":{},\"steps\":{}}",
};

struct fixture {
	char *dir;
	struct ph_ctx *ctx;
	struct ph_ledger *l;
	uint8_t page[PAGE];
};

static void log_stderr(struct ph_ctx *ctx, int priority, const char *file, int line, const char *fn,
		       const char *format, va_list args)
{
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ph_error err = { { 0 } };

	f->dir = fake_root_new();
	assert_int_equal(ph_ctx_new(&f->ctx), 0);
	ph_ctx_set_log_fn(f->ctx, log_stderr, NULL); /* the reasons, in the test's log */ /* the set-aside errors are expected */
	assert_int_equal(ph_ledger_open(f->ctx, f->dir, 0, &f->l, &err), 0);
	memset(f->page, 0xa5, sizeof(f->page));
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

/* Walk "owners[0].inode" to the parent object or array and the last key
 * or index. */
static struct json_object *walk(struct json_object *o, const char *path, char *key, size_t key_len, int *idx)
{
	const char *p = path;

	for (;;) {
		size_t n = strcspn(p, ".[");

		*idx = -1;
		if (n > 0) {
			snprintf(key, key_len, "%.*s", (int)n, p);
			p += n;
		} else if (*p == '[') {
			*idx = atoi(p + 1);
			p = strchr(p, ']') + 1;
		}
		if (*p == '.')
			p++;
		if (!*p)
			return o;
		o = *idx >= 0 ? json_object_array_get_idx(o, (size_t)*idx) : json_object_object_get(o, key);
		assert_non_null(o);
	}
}

static char *mutate(const struct mutation *m)
{
	struct json_object *o = json_tokener_parse(good_plan), *parent, *v = NULL;
	char key[64];
	int idx;
	char *s;

	assert_non_null(o);
	parent = walk(o, m->path, key, sizeof(key), &idx);
	if (m->value) {
		v = json_tokener_parse(m->value);
		assert_true(v || strcmp(m->value, "null") == 0);
	}
	if (idx >= 0)
		assert_int_equal(json_object_array_put_idx(parent, (size_t)idx, v), 0);
	else if (m->value)
		json_object_object_add(parent, key, v);
	else
		json_object_object_del(parent, key);
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	assert_non_null(s);
	return s;
}

struct intent_row {
	char state[16];
	char detail[512];
};

static void intent_row(struct fixture *f, int64_t id, struct intent_row *ret)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open_v2(ph_ledger_get_path(f->l), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, detail FROM intents WHERE id = ?", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(ret->state, sizeof(ret->state), "%s", sqlite3_column_text(st, 0));
	snprintf(ret->detail, sizeof(ret->detail), "%s",
		 sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int64_t begin(struct fixture *f, const char *plan, const void *content, size_t len, int step)
{
	int64_t id;

	assert_int_equal(ph_ledger_intent_begin(f->l, RANGE, 4096, plan, content, len, 1, &id), 0);
	if (step)
		assert_int_equal(ph_ledger_intent_step(f->l, id, step, 2), 0);
	return id;
}

static int count_intent(void *userdata, const struct ph_intent *it)
{
	(*(size_t *)userdata)++;
	return 0;
}

static size_t running(struct fixture *f)
{
	size_t n = 0;

	assert_int_equal(ph_ledger_intents_running(f->l, count_intent, &n), 0);
	return n;
}

static void expect_set_aside(struct fixture *f, int64_t id, const char *field, const char *what)
{
	struct intent_row row;
	char name[32];

	intent_row(f, id, &row);
	snprintf(name, sizeof(name), "intent %" PRId64, id);
	if (strcmp(row.state, "failed") != 0 || !strstr(row.detail, name) || !strstr(row.detail, field))
		fail_msg("%s: %s: state %s, detail \"%s\"; expected failed, naming \"%s\" and \"%s\"", what, field,
			 row.state, row.detail, name, field);
}

static void test_malformed_intents(void **state)
{
	struct fixture *f = *state;
	struct ph_repairer *rep = NULL;
	int64_t good_first, good_last, bad_mut[ELEMENTSOF(mutations)], bad_garbage[ELEMENTSOF(garbage)];
	int64_t bad_step_neg, bad_step_big, bad_no_content, bad_short_content;
	struct intent_row row;

	good_first = begin(f, good_plan, f->page, PAGE, 1);
	for (size_t i = 0; i < ELEMENTSOF(mutations); i++) {
		char *plan = mutate(&mutations[i]);

		bad_mut[i] = begin(f, plan, f->page, PAGE, 1);
		free(plan);
	}
	for (size_t i = 0; i < ELEMENTSOF(garbage); i++)
		bad_garbage[i] = begin(f, garbage[i], f->page, PAGE, 0);
	bad_step_neg = begin(f, good_plan, f->page, PAGE, -1);
	bad_step_big = begin(f, good_plan, f->page, PAGE, 2);
	bad_no_content = begin(f, good_plan, NULL, 0, 1);
	bad_short_content = begin(f, good_plan, f->page, 100, 1);
	good_last = begin(f, good_plan, f->page, PAGE, 1);

	assert_int_equal(ph_repairer_new(f->ctx, f->l, NULL, NULL, &rep), 0);
	/* no abort, and both good intents resumed */
	assert_int_equal(ph_repairer_resume(rep), 2);
	ph_repairer_free(rep);

	intent_row(f, good_first, &row);
	assert_string_equal(row.state, "done");
	intent_row(f, good_last, &row);
	assert_string_equal(row.state, "done");
	for (size_t i = 0; i < ELEMENTSOF(mutations); i++)
		expect_set_aside(f, bad_mut[i], mutations[i].field, mutations[i].value ? mutations[i].value : "(removed)");
	for (size_t i = 0; i < ELEMENTSOF(garbage); i++)
		expect_set_aside(f, bad_garbage[i], "", garbage[i]);
	expect_set_aside(f, bad_step_neg, "step", "step -1");
	expect_set_aside(f, bad_step_big, "step", "step 2 of 1");
	expect_set_aside(f, bad_no_content, "content", "no content");
	expect_set_aside(f, bad_short_content, "content", "100 bytes of content");

	/* all settled: nothing is left running to trip the next start */
	assert_int_equal(running(f), 0);
}

/* A good plan cut short at every byte, and with every byte flipped: never
 * an abort, and every intent settled (set aside, or resumed when the flip
 * left a sound job, e.g. another file name). */
static void test_damaged_bytes(void **state)
{
	struct fixture *f = *state;
	struct ph_repairer *rep = NULL;
	size_t len = strlen(good_plan);
	char buf[sizeof(good_plan)];
	int k;

	for (size_t i = 0; i < len; i++) {
		snprintf(buf, sizeof(buf), "%.*s", (int)i, good_plan);
		(void)begin(f, buf, f->page, PAGE, 1);
		memcpy(buf, good_plan, sizeof(good_plan));
		buf[i] ^= 0x5a;
		(void)begin(f, buf, f->page, PAGE, 1);
	}
	assert_int_equal(ph_repairer_new(f->ctx, f->l, NULL, NULL, &rep), 0);
	k = ph_repairer_resume(rep);
	ph_repairer_free(rep);
	assert_true(k >= 0);
	assert_int_equal(running(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed_intents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_bytes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
