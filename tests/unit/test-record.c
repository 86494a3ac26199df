/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The recorder, through its capture sink: which fields an entry carries
 * (only those set), one distinct MESSAGE_ID per event with an entry in
 * catalog/pmemheal.catalog, priorities, the composed MESSAGE, a NULL
 * recorder, values that are not one line of text, and the events made from
 * ledger changes and mapper owners.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledger.h"
#include "mapper.h"
#include "record.h"

#ifndef CATALOG_PATH
#error "CATALOG_PATH must name catalog/pmemheal.catalog in the source tree"
#endif

#define MAX_ENTRY_FIELDS 64

/* One captured entry: copies of the iovecs, as sd_journal_sendv() gets them. */
struct captured {
	size_t n;
	char *data[MAX_ENTRY_FIELDS];
	size_t len[MAX_ENTRY_FIELDS];
	unsigned calls;
};

static void capture(void *userdata, const struct iovec *iov, size_t n)
{
	struct captured *c = userdata;

	assert_true(n <= MAX_ENTRY_FIELDS);
	for (size_t i = 0; i < c->n; i++)
		free(c->data[i]);
	c->n = n;
	c->calls++;
	for (size_t i = 0; i < n; i++) {
		c->data[i] = malloc(iov[i].iov_len + 1);
		assert_non_null(c->data[i]);
		memcpy(c->data[i], iov[i].iov_base, iov[i].iov_len);
		c->data[i][iov[i].iov_len] = '\0';
		c->len[i] = iov[i].iov_len;
	}
}

static void captured_done(struct captured *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->data[i]);
	c->n = 0;
}

/* The value of FIELD (its length in *len), or NULL; a field appears once. */
static const char *field(const struct captured *c, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *found = NULL;

	for (size_t i = 0; i < c->n; i++)
		if (c->len[i] > nl && strncmp(c->data[i], name, nl) == 0 && c->data[i][nl] == '=') {
			assert_null(found); /* never twice */
			found = c->data[i] + nl + 1;
			if (len)
				*len = c->len[i] - nl - 1;
		}
	return found;
}

static struct ph_recorder *recorder(struct captured *c)
{
	struct ph_recorder *rec;
	struct ph_ctx *ctx;

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_recorder_new(ctx, "pmemheal-test", &rec), 0);
	ph_ctx_unref(ctx); /* the recorder keeps its own reference */
	ph_recorder_set_sink(rec, capture, c);
	return rec;
}

static void record(enum ph_event e, const struct ph_event_fields *f, struct captured *c)
{
	_cleanup_(ph_recorder_freep) struct ph_recorder *rec = recorder(c);

	assert_int_equal(ph_record(rec, e, f), 0);
	assert_int_equal(ph_recorder_get_lost(rec), 0);
}

static void test_unset_fields_omitted(void **state)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	struct captured c = { 0 };
	static const char *const expected[] = {
		"MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "PMEMHEAL_EVENT",
		"PMEMHEAL_DEVICE", "PMEMHEAL_SECTOR", "PMEMHEAL_COUNT",
	};

	f.device = "pmem0";
	f.sector = 210;
	f.count = 2;
	f.path = ""; /* empty strings count as unset */
	f.range_id = 0;
	record(PH_EVENT_DETECTED, &f, &c);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.n, ELEMENTSOF(expected));
	for (size_t i = 0; i < ELEMENTSOF(expected); i++)
		assert_non_null(field(&c, expected[i], NULL));
	assert_string_equal(field(&c, "PMEMHEAL_EVENT", NULL), "detected");
	assert_string_equal(field(&c, "PMEMHEAL_DEVICE", NULL), "pmem0");
	assert_string_equal(field(&c, "PMEMHEAL_SECTOR", NULL), "210");
	assert_string_equal(field(&c, "PMEMHEAL_COUNT", NULL), "2");
	assert_string_equal(field(&c, "SYSLOG_IDENTIFIER", NULL), "pmemheal-test");
	assert_string_equal(field(&c, "MESSAGE_ID", NULL), "e661f52b84334704b9578a46e16da5b6");
	captured_done(&c);

	/* no fields at all (and NULL fields) */
	record(PH_EVENT_CONFIG_RELOADED, NULL, &c);
	assert_int_equal(c.n, 5);
	assert_string_equal(field(&c, "MESSAGE", NULL), "configuration reloaded");
	captured_done(&c);
}

static void test_all_fields(void **state)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	struct captured c = { 0 };
	static const struct {
		const char *name, *value;
	} expected[] = {
		{ "PMEMHEAL_DEVICE", "pmem1" },      { "PMEMHEAL_SECTOR", "18446744073709551614" },
		{ "PMEMHEAL_COUNT", "0" },           { "PMEMHEAL_PATH", "/mnt/db/t.dat" },
		{ "PMEMHEAL_INODE", "131" },         { "PMEMHEAL_OFFSET", "8192" },
		{ "PMEMHEAL_LENGTH", "4096" },       { "PMEMHEAL_ACTION", "salvage" },
		{ "PMEMHEAL_RESULT", "ok" },         { "PMEMHEAL_BYTES_LOST", "1024" },
		{ "PMEMHEAL_SHARED_OWNERS", "2" },   { "PMEMHEAL_RULE", "50-salvage.rule:3" },
		{ "PMEMHEAL_OWNER", "file" },        { "PMEMHEAL_RANGE_ID", "42" },
		{ "PMEMHEAL_NAMESPACE", "b1d6c8f2" }, { "PMEMHEAL_MOUNT", "/mnt" },
		{ "PMEMHEAL_DETAIL", "verified" },   { "PMEMHEAL_EVENT", "repaired" },
		{ "PRIORITY", "5" },
	};

	f.device = "pmem1";
	f.sector = UINT64_MAX - 1; /* only UINT64_MAX means unset */
	f.count = 0;
	f.path = "/mnt/db/t.dat";
	f.inode = 131;
	f.offset = 8192;
	f.length = 4096;
	f.action = "salvage";
	f.result = "ok";
	f.bytes_lost = 1024;
	f.shared_owners = 2;
	f.rule = "50-salvage.rule:3";
	f.owner = "file";
	f.range_id = 42;
	f.ns_id = "b1d6c8f2";
	f.mountpoint = "/mnt";
	f.detail = "verified";
	record(PH_EVENT_REPAIRED, &f, &c);
	/* MESSAGE, MESSAGE_ID, SYSLOG_IDENTIFIER and the list */
	assert_int_equal(c.n, ELEMENTSOF(expected) + 3);
	for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
		const char *v = field(&c, expected[i].name, NULL);

		if (!v)
			fail_msg("%s missing", expected[i].name);
		assert_string_equal(v, expected[i].value);
	}
	captured_done(&c);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Headers of the catalog entry for id, or NULL when it has none. */
struct catalog_entry {
	bool found, subject, defined_by, support, body;
};

static struct catalog_entry catalog_lookup(const char *catalog, const char *id)
{
	struct catalog_entry e = { 0 };
	char *copy = strdup(catalog), *save = NULL;
	bool in = false, headers = false;

	assert_non_null(copy);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* strtok_r skips empty lines: a header line is "Key: value" right
		 * after the "-- id" line, the body is anything else. */
		if (strncmp(line, "-- ", 3) == 0) {
			char *tok = line + 3, *end = strchr(tok, ' ');

			if (end)
				*end = '\0';
			in = strcmp(tok, id) == 0;
			headers = in;
			if (in) {
				assert_false(e.found); /* one entry per id */
				e.found = true;
			}
			continue;
		}
		if (!in)
			continue;
		if (headers && strncmp(line, "Subject: ", 9) == 0)
			e.subject = strlen(line) > 9;
		else if (headers && strcmp(line, "Defined-By: pmemheal") == 0)
			e.defined_by = true;
		else if (headers && strncmp(line, "Support: ", 9) == 0)
			e.support = strlen(line) > 9;
		else if (headers && strncmp(line, "Documentation: ", 15) == 0)
			;
		else {
			headers = false;
			if (line[0] != '#')
				e.body = true;
		}
	}
	free(copy);
	return e;
}

static void test_message_ids_and_catalog(void **state)
{
	_cleanup_free_ char *catalog = read_file(CATALOG_PATH);
	size_t n_ids = 0;

	for (int i = 0; i < _PH_EVENT_MAX; i++) {
		const char *id = ph_event_message_id(i), *name = ph_event_to_string(i);
		struct catalog_entry ce;
		enum ph_event back;

		assert_non_null(id);
		assert_non_null(name);
		assert_int_equal(strlen(id), 32);
		for (const char *p = id; *p; p++)
			assert_true(isxdigit((unsigned char)*p) && !isupper((unsigned char)*p));
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(id, ph_event_message_id(j));
			assert_string_not_equal(name, ph_event_to_string(j));
		}
		assert_int_equal(ph_event_from_string(name, &back), 0);
		assert_int_equal(back, i);
		assert_int_equal(ph_event_from_message_id(id, &back), 0);
		assert_int_equal(back, i);

		ce = catalog_lookup(catalog, id);
		if (!ce.found)
			fail_msg("event '%s' (MESSAGE_ID %s) has no entry in %s", name, id, CATALOG_PATH);
		if (!ce.subject || !ce.defined_by || !ce.support || !ce.body)
			fail_msg("catalog entry %s (%s) lacks Subject:, Defined-By: pmemheal, Support: or a body", id,
				 name);
	}
	/* and nothing stale: every entry in the catalog is one of ours */
	for (const char *p = catalog; (p = strstr(p, "\n-- ")); p += 4) {
		char id[33] = "";
		enum ph_event e;

		memcpy(id, p + 4, 32);
		if (ph_event_from_message_id(id, &e) < 0)
			fail_msg("catalog entry %s is no pmemheal event", id);
		n_ids++;
	}
	assert_int_equal(n_ids, _PH_EVENT_MAX);

	assert_null(ph_event_message_id(_PH_EVENT_MAX));
	assert_null(ph_event_to_string(_PH_EVENT_MAX));
	{
		enum ph_event e = PH_EVENT_MAPPED;

		assert_int_equal(ph_event_from_string("detected ", &e), -EINVAL);
		assert_int_equal(ph_event_from_string(NULL, &e), -EINVAL);
		assert_int_equal(ph_event_from_message_id("E661F52B84334704B9578A46E16DA5B6", &e), 0);
		assert_int_equal(e, PH_EVENT_DETECTED);
		assert_int_equal(ph_event_from_message_id("e661f52b", &e), -EINVAL);
	}
	/* the ids are the ones documented (enum order) */
	assert_string_equal(ph_event_message_id(PH_EVENT_METADATA_POISON), "05f3a23dd3394923ba118a67348365c2");
	assert_string_equal(ph_event_message_id(PH_EVENT_CONFIG_RELOADED), "aa877de6361345bc817ab7b88c26fccf");
}

static void test_priorities(void **state)
{
	static const int expected[_PH_EVENT_MAX] = {
		[PH_EVENT_DETECTED] = LOG_WARNING,      [PH_EVENT_MAPPED] = LOG_INFO,
		[PH_EVENT_PLANNED] = LOG_INFO,          [PH_EVENT_REPAIRED] = LOG_NOTICE,
		[PH_EVENT_CLEARED] = LOG_NOTICE,        [PH_EVENT_PINNED] = LOG_WARNING,
		[PH_EVENT_DATA_LOST] = LOG_ERR,         [PH_EVENT_FAILED] = LOG_ERR,
		[PH_EVENT_METADATA_POISON] = LOG_CRIT,  [PH_EVENT_DEVICE_ADDED] = LOG_INFO,
		[PH_EVENT_DEVICE_REMOVED] = LOG_INFO,   [PH_EVENT_CONFIG_RELOADED] = LOG_INFO,
	};
	struct ph_event_fields f = PH_EVENT_INIT;
	struct captured c = { 0 };

	for (int i = 0; i < _PH_EVENT_MAX; i++) {
		char want[4];

		assert_int_equal(ph_event_priority(i), expected[i]);
		record(i, &f, &c);
		snprintf(want, sizeof(want), "%d", expected[i]);
		assert_string_equal(field(&c, "PRIORITY", NULL), want);
		assert_string_equal(field(&c, "PMEMHEAL_EVENT", NULL), ph_event_to_string(i));
		assert_string_equal(field(&c, "MESSAGE_ID", NULL), ph_event_message_id(i));
		captured_done(&c);
	}
	assert_int_equal(ph_event_priority(_PH_EVENT_MAX), -EINVAL);

	/* a reload that failed is an error */
	f.result = "failed";
	f.detail = "/etc/pmemheal/rules.d/10-x.rule:3: unknown action 'zap'";
	record(PH_EVENT_CONFIG_RELOADED, &f, &c);
	assert_string_equal(field(&c, "PRIORITY", NULL), "3");
	assert_string_equal(field(&c, "PMEMHEAL_RESULT", NULL), "failed");
	assert_string_equal(field(&c, "MESSAGE", NULL),
			    "configuration reload failed: /etc/pmemheal/rules.d/10-x.rule:3: unknown action 'zap'");
	captured_done(&c);
	f.result = "ok";
	f.detail = NULL;
	record(PH_EVENT_CONFIG_RELOADED, &f, &c);
	assert_string_equal(field(&c, "PRIORITY", NULL), "6");
	assert_string_equal(field(&c, "MESSAGE", NULL), "configuration reloaded");
	captured_done(&c);
}

static void check_message(enum ph_event e, const struct ph_event_fields *f, const char *want)
{
	struct captured c = { 0 };

	record(e, f, &c);
	assert_string_equal(field(&c, "MESSAGE", NULL), want);
	captured_done(&c);
}

static void test_messages(void **state)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	f.device = "pmem0";
	f.sector = 210;
	f.count = 2;
	check_message(PH_EVENT_DETECTED, &f, "pmem0 sectors 210+2: poison detected");
	check_message(PH_EVENT_CLEARED, &f, "pmem0 sectors 210+2: poison cleared");
	f.detail = "grown from 210+1";
	check_message(PH_EVENT_DETECTED, &f, "pmem0 sectors 210+2: poison detected: grown from 210+1");
	f.detail = NULL;

	f.path = "/mnt/a";
	f.offset = 8192;
	f.action = "salvage";
	f.bytes_lost = 1024;
	check_message(PH_EVENT_REPAIRED, &f, "pmem0 sectors 210+2: /mnt/a offset 8192: salvaged, 1024 bytes lost");
	f.bytes_lost = 0;
	check_message(PH_EVENT_REPAIRED, &f, "pmem0 sectors 210+2: /mnt/a offset 8192: salvaged, nothing lost");
	f.action = "frobnicate";
	f.bytes_lost = PH_FIELD_UNSET;
	check_message(PH_EVENT_REPAIRED, &f, "pmem0 sectors 210+2: /mnt/a offset 8192: repaired (frobnicate)");
	f.action = "zero";
	f.bytes_lost = 4096;
	check_message(PH_EVENT_DATA_LOST, &f, "pmem0 sectors 210+2: /mnt/a offset 8192: 4096 bytes lost (zero)");
	f.rule = "50-salvage.rule:3";
	f.action = "salvage";
	check_message(PH_EVENT_PLANNED, &f,
		      "pmem0 sectors 210+2: /mnt/a offset 8192: salvage planned (rule 50-salvage.rule:3)");
	f.result = "ENOSPC";
	f.detail = "no space for the quarantine file";
	check_message(PH_EVENT_FAILED, &f,
		      "pmem0 sectors 210+2: /mnt/a offset 8192: salvage failed (ENOSPC): no space for the quarantine file");
	f.result = NULL;
	f.detail = NULL;

	f.length = 4096;
	f.shared_owners = 2;
	check_message(PH_EVENT_MAPPED, &f, "pmem0 sectors 210+2: /mnt/a offset 8192, 4096 bytes, shared by 2 files");

	f = PH_EVENT_INIT;
	f.device = "pmem0";
	f.sector = 64;
	f.count = 1;
	f.owner = "free";
	check_message(PH_EVENT_MAPPED, &f, "pmem0 sector 64+1: free space");
	f.owner = "inodes";
	check_message(PH_EVENT_MAPPED, &f, "pmem0 sector 64+1: filesystem metadata (inodes)");
	f.mountpoint = "/mnt";
	check_message(PH_EVENT_METADATA_POISON, &f,
		      "pmem0 sector 64+1: filesystem metadata (inodes) poisoned on /mnt; run the filesystem's repair tool");
	f.owner = "file";
	f.inode = 77;
	check_message(PH_EVENT_MAPPED, &f, "pmem0 sector 64+1: a file (inode 77)");
	f.owner = NULL;
	check_message(PH_EVENT_PINNED, &f, "pmem0 sector 64+1: poisoned block pinned (stays allocated, never reused)");

	f = PH_EVENT_INIT;
	f.device = "pmem1";
	f.ns_id = "5b2f";
	check_message(PH_EVENT_DEVICE_ADDED, &f, "pmem1 added (namespace 5b2f)");
	f.ns_id = NULL;
	check_message(PH_EVENT_DEVICE_REMOVED, &f, "pmem1 removed");
	f.device = NULL;
	check_message(PH_EVENT_DEVICE_REMOVED, &f, "pmem device removed");
}

static void test_null_recorder(void **state)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	struct captured c = { 0 };
	struct ph_recorder *rec;
	struct ph_ctx *ctx;

	for (int i = 0; i < _PH_EVENT_MAX; i++)
		assert_int_equal(ph_record(NULL, i, &f), 0);
	assert_int_equal(ph_record(NULL, PH_EVENT_DETECTED, NULL), 0);
	assert_int_equal(ph_recorder_get_lost(NULL), 0);
	assert_null(ph_recorder_free(NULL));

	assert_int_equal(ph_ctx_new(&ctx), 0);
	rec = (struct ph_recorder *)0x1;
	assert_int_equal(ph_recorder_new(ctx, "a\nb", &rec), -EINVAL);
	assert_int_equal(ph_recorder_new(ctx, "", &rec), -EINVAL);
	assert_ptr_equal(rec, (struct ph_recorder *)0x1); /* untouched on failure */
	ph_ctx_unref(ctx);

	rec = recorder(&c);
	assert_int_equal(ph_record(rec, _PH_EVENT_MAX, &f), -EINVAL);
	assert_int_equal(ph_record(rec, (enum ph_event)-1, &f), -EINVAL);
	assert_int_equal(c.calls, 0);
	ph_recorder_free(rec);
}

static void test_binary_safe(void **state)
{
	static const char path[] = "/mnt/we\nird\tname\x01\\x";
	struct ph_event_fields f = PH_EVENT_INIT;
	struct captured c = { 0 };
	const char *v;
	size_t len = 0;

	f.device = "pmem0";
	f.sector = 8;
	f.count = 8;
	f.path = path;
	f.offset = 0;
	f.detail = "line one\nline two";
	record(PH_EVENT_DATA_LOST, &f, &c);
	v = field(&c, "PMEMHEAL_PATH", &len);
	assert_non_null(v);
	assert_int_equal(len, strlen(path));
	assert_memory_equal(v, path, len);
	v = field(&c, "PMEMHEAL_DETAIL", &len);
	assert_int_equal(len, 17);
	assert_memory_equal(v, "line one\nline two", 17);
	/* MESSAGE stays one line: control characters (and backslashes) escaped */
	v = field(&c, "MESSAGE", NULL);
	assert_null(strchr(v, '\n'));
	assert_string_equal(v, "pmem0 sectors 8+8: /mnt/we\\nird\\tname\\x01\\\\x offset 0: data lost: "
			       "line one\\nline two");
	/* every iovec is FIELD=value without a trailing NUL */
	for (size_t i = 0; i < c.n; i++) {
		assert_non_null(memchr(c.data[i], '=', c.len[i]));
		assert_int_equal(strlen(c.data[i]), c.len[i]);
	}
	captured_done(&c);

	/* Terminal escapes, C1 controls, a bidirectional override and bytes
	 * that are not UTF-8: the field keeps them, MESSAGE shows them. */
	{
		static const char evil[] = "/mnt/\x1b[2J\xc2\x9b\xe2\x80\xae\xff.dat";
		struct captured c2 = { 0 };

		f.path = evil;
		f.detail = NULL;
		record(PH_EVENT_DATA_LOST, &f, &c2);
		v = field(&c2, "PMEMHEAL_PATH", &len);
		assert_int_equal(len, strlen(evil));
		assert_memory_equal(v, evil, len);
		v = field(&c2, "MESSAGE", NULL);
		assert_non_null(strstr(v, "/mnt/\\x1b[2J\\u009b\\u202e\\xff.dat"));
		captured_done(&c2);
	}
}

/* Several entries in a row. */
struct capture_log {
	struct captured e[8];
	size_t n;
};

static void capture_many(void *userdata, const struct iovec *iov, size_t n)
{
	struct capture_log *l = userdata;

	assert_true(l->n < ELEMENTSOF(l->e));
	capture(&l->e[l->n++], iov, n);
}

static void capture_log_done(struct capture_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		captured_done(&l->e[i]);
	l->n = 0;
}

static struct ph_recorder *recorder_many(struct capture_log *l)
{
	struct ph_recorder *rec = recorder(NULL);

	ph_recorder_set_sink(rec, capture_many, l);
	return rec;
}

/* "event sector+count detail" of entry i, for compact comparisons. */
static const char *summary(const struct capture_log *l, size_t i)
{
	static char buf[256];
	const struct captured *c = &l->e[i];
	const char *d = field(c, "PMEMHEAL_DETAIL", NULL);

	snprintf(buf, sizeof(buf), "%s %s+%s%s%s", field(c, "PMEMHEAL_EVENT", NULL), field(c, "PMEMHEAL_SECTOR", NULL),
		 field(c, "PMEMHEAL_COUNT", NULL), d ? " " : "", d ? d : "");
	return buf;
}

static void test_record_change(void **state)
{
	struct capture_log l = { .n = 0 };
	_cleanup_(ph_recorder_freep) struct ph_recorder *rec = recorder_many(&l);
	struct ph_change c = {
		.row = { .id = 7, .ns_id = "ns-uuid", .device = "pmem0", .start = 200, .count = 16 },
	};

	c.type = PH_CHANGE_NEW;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(summary(&l, 0), "detected 200+16 new");
	assert_string_equal(field(&l.e[0], "PMEMHEAL_RANGE_ID", NULL), "7");
	assert_string_equal(field(&l.e[0], "PMEMHEAL_NAMESPACE", NULL), "ns-uuid");
	assert_string_equal(field(&l.e[0], "PMEMHEAL_DEVICE", NULL), "pmem0");
	capture_log_done(&l);

	c.type = PH_CHANGE_GROWN;
	c.old_start = 208;
	c.old_count = 8;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_string_equal(summary(&l, 0), "detected 200+16 grown from 208+8");
	capture_log_done(&l);

	c.type = PH_CHANGE_RELISTED;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_string_equal(summary(&l, 0), "detected 200+16 listed again after a reboot");
	capture_log_done(&l);

	c.type = PH_CHANGE_CLEARED;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(summary(&l, 0), "cleared 200+16");
	capture_log_done(&l);

	/* shrunk from both ends: two cleared pieces */
	c.type = PH_CHANGE_SHRUNK;
	c.old_start = 192;
	c.old_count = 40;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(summary(&l, 0), "cleared 192+8 partly cleared: 200+16 still listed");
	assert_string_equal(summary(&l, 1), "cleared 216+16 partly cleared: 200+16 still listed");
	capture_log_done(&l);
	/* from the start only */
	c.old_start = 200;
	c.old_count = 24;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(summary(&l, 0), "cleared 216+8 partly cleared: 200+16 still listed");
	capture_log_done(&l);

	c.type = PH_CHANGE_FORGOTTEN;
	assert_int_equal(ph_record_change(rec, &c), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(ph_record_change(NULL, &c), 0);
}

static void test_record_owner(void **state)
{
	struct capture_log l = { .n = 0 };
	_cleanup_(ph_recorder_freep) struct ph_recorder *rec = recorder_many(&l);
	struct ph_range_row row = { .id = 3, .ns_id = "ns-uuid", .device = "pmem0", .start = 208, .count = 24 };
	char *pa[] = { "/mnt/a", "/mnt/hardlink" }, *pb[] = { "/mnt/b" };
	struct ph_owner owners[] = {
		{ .type = PH_OWNER_FILE, .sector = 208, .count = 8, .inode = 131, .offset = 8192, .length = 4096,
		  .shared = true, .paths = pa, .n_paths = 2 },
		{ .type = PH_OWNER_FILE, .sector = 208, .count = 8, .inode = 132, .offset = 0, .length = 4096,
		  .shared = true, .paths = pb, .n_paths = 1 },
		{ .type = PH_OWNER_METADATA, .sector = 216, .count = 8, .what = "inodes" },
		{ .type = PH_OWNER_FREE, .sector = 224, .count = 8 },
		{ .type = PH_OWNER_UNKNOWN, .sector = 224, .count = 8, .reason = "no such inode" },
	};
	struct ph_map_result res = { .range = { 208, 24 }, .owners = owners, .n_owners = ELEMENTSOF(owners) };
	const struct captured *e;

	assert_int_equal(ph_record_owner(rec, &row, &res, 0), 0);
	assert_int_equal(l.n, 1);
	e = &l.e[0];
	assert_string_equal(field(e, "PMEMHEAL_EVENT", NULL), "mapped");
	assert_string_equal(field(e, "PMEMHEAL_OWNER", NULL), "file");
	assert_string_equal(field(e, "PMEMHEAL_PATH", NULL), "/mnt/a");
	assert_string_equal(field(e, "PMEMHEAL_INODE", NULL), "131");
	assert_string_equal(field(e, "PMEMHEAL_OFFSET", NULL), "8192");
	assert_string_equal(field(e, "PMEMHEAL_LENGTH", NULL), "4096");
	assert_string_equal(field(e, "PMEMHEAL_SHARED_OWNERS", NULL), "2");
	assert_string_equal(field(e, "PMEMHEAL_DETAIL", NULL), "also /mnt/hardlink");
	assert_string_equal(field(e, "PMEMHEAL_RANGE_ID", NULL), "3");
	assert_null(field(e, "PMEMHEAL_MOUNT", NULL)); /* no filesystem in this fake result */
	assert_string_equal(field(e, "MESSAGE", NULL),
			    "pmem0 sectors 208+8: /mnt/a offset 8192, 4096 bytes, shared by 2 files: also /mnt/hardlink");
	capture_log_done(&l);

	assert_int_equal(ph_record_owner(rec, &row, &res, 2), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(summary(&l, 0), "mapped 216+8");
	assert_string_equal(field(&l.e[0], "PMEMHEAL_OWNER", NULL), "inodes");
	assert_string_equal(summary(&l, 1), "metadata-poison 216+8");
	assert_string_equal(field(&l.e[1], "PRIORITY", NULL), "2");
	assert_string_equal(field(&l.e[1], "PMEMHEAL_OWNER", NULL), "inodes");
	capture_log_done(&l);

	assert_int_equal(ph_record_owner(rec, &row, &res, 3), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(field(&l.e[0], "MESSAGE", NULL), "pmem0 sectors 224+8: free space");
	assert_null(field(&l.e[0], "PMEMHEAL_SHARED_OWNERS", NULL));
	capture_log_done(&l);

	assert_int_equal(ph_record_owner(rec, &row, &res, 4), 0);
	assert_string_equal(field(&l.e[0], "MESSAGE", NULL), "pmem0 sectors 224+8: unknown owner: no such inode");
	capture_log_done(&l);

	/* devdax: the whole range, owned by the device */
	assert_int_equal(ph_record_owner(rec, &row, NULL, 0), 0);
	assert_string_equal(field(&l.e[0], "MESSAGE", NULL), "pmem0 sectors 208+24: the device (no filesystem)");
	capture_log_done(&l);

	assert_int_equal(ph_record_owner(rec, &row, &res, ELEMENTSOF(owners)), -EINVAL);
	assert_int_equal(l.n, 0);
	assert_int_equal(ph_record_owner(NULL, &row, &res, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_fields_omitted),
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_message_ids_and_catalog),
		cmocka_unit_test(test_priorities),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_null_recorder),
		cmocka_unit_test(test_binary_safe),
		cmocka_unit_test(test_record_change),
		cmocka_unit_test(test_record_owner),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
