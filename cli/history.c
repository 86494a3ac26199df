/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal history: what the recorder wrote to the journal, oldest first,
 * as a table or a JSON array.  Entries are found by their MESSAGE_IDs (one
 * per event type, lib/record.c) and narrowed by time, path and device
 * with journal matches, so the journal's indexes do the work.  It reads the
 * system journal, or a journal directory or files given on the command
 * line (tests and copies taken from other machines).  It writes nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-journal.h>

#include "cli.h"
#include "escape.h"
#include "ledger.h"
#include "range.h"
#include "record.h"
#include "timestamp.h"

/* The PMEMHEAL_* fields, in the order JSON prints them. */
enum {
	F_DEVICE, F_SECTOR, F_COUNT, F_PATH, F_INODE, F_OFFSET, F_LENGTH, F_OWNER, F_SHARED_OWNERS,
	F_ACTION, F_RESULT, F_BYTES_LOST, F_RULE, F_RANGE_ID, F_NAMESPACE, F_MOUNT, F_DETAIL, N_FIELDS,
};
static const struct {
	const char *field, *key;
	bool number;
} fields[N_FIELDS] = {
	[F_DEVICE] = { "PMEMHEAL_DEVICE", "device", false },
	[F_SECTOR] = { "PMEMHEAL_SECTOR", "sector", true },
	[F_COUNT] = { "PMEMHEAL_COUNT", "count", true },
	[F_PATH] = { "PMEMHEAL_PATH", "path", false },
	[F_INODE] = { "PMEMHEAL_INODE", "inode", true },
	[F_OFFSET] = { "PMEMHEAL_OFFSET", "offset", true },
	[F_LENGTH] = { "PMEMHEAL_LENGTH", "length", true },
	[F_OWNER] = { "PMEMHEAL_OWNER", "owner", false },
	[F_SHARED_OWNERS] = { "PMEMHEAL_SHARED_OWNERS", "shared_owners", true },
	[F_ACTION] = { "PMEMHEAL_ACTION", "action", false },
	[F_RESULT] = { "PMEMHEAL_RESULT", "result", false },
	[F_BYTES_LOST] = { "PMEMHEAL_BYTES_LOST", "bytes_lost", true },
	[F_RULE] = { "PMEMHEAL_RULE", "rule", false },
	[F_RANGE_ID] = { "PMEMHEAL_RANGE_ID", "range_id", true },
	[F_NAMESPACE] = { "PMEMHEAL_NAMESPACE", "namespace", false },
	[F_MOUNT] = { "PMEMHEAL_MOUNT", "mount", false },
	[F_DETAIL] = { "PMEMHEAL_DETAIL", "detail", false },
};

struct value {
	char *s; /* NUL-terminated copy; len counts embedded NULs too */
	size_t len;
};

struct row {
	uint64_t time;
	char *event, *message, *identifier, *boot_id;
	int priority;
	struct value v[N_FIELDS];
};

struct rows {
	struct row *v;
	size_t n, cap;
};

static void row_free(struct row *r)
{
	free(r->event);
	free(r->message);
	free(r->identifier);
	free(r->boot_id);
	for (size_t k = 0; k < N_FIELDS; k++)
		free(r->v[k].s);
}

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		row_free(&rs->v[i]);
	free(rs->v);
}

/* FIELD's value in the current entry; 0 and {NULL, 0} when it has none. */
static int get_field(sd_journal *j, const char *field, struct value *ret)
{
	const void *data;
	size_t len, fl = strlen(field);
	char *s;
	int r;

	r = sd_journal_get_data(j, field, &data, &len);
	if (r == -ENOENT) {
		*ret = (struct value){ NULL, 0 };
		return 0;
	}
	if (r < 0)
		return r;
	if (len < fl + 1)
		return -EBADMSG;
	len -= fl + 1;
	s = malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, (const char *)data + fl + 1, len);
	s[len] = '\0';
	*ret = (struct value){ s, len };
	return 0;
}

static int read_entry(sd_journal *j, struct row *row)
{
	struct value v;
	enum ph_event e;
	int r;

	r = sd_journal_get_realtime_usec(j, &row->time);
	if (r < 0)
		return r;
	for (size_t k = 0; k < N_FIELDS; k++) {
		r = get_field(j, fields[k].field, &row->v[k]);
		if (r < 0)
			return r;
	}
	if ((r = get_field(j, "MESSAGE", &v)) < 0)
		return r;
	row->message = v.s;
	if ((r = get_field(j, "SYSLOG_IDENTIFIER", &v)) < 0)
		return r;
	row->identifier = v.s;
	if ((r = get_field(j, "_BOOT_ID", &v)) < 0)
		return r;
	row->boot_id = v.s;
	if ((r = get_field(j, "PRIORITY", &v)) < 0)
		return r;
	row->priority = v.s && v.len == 1 && v.s[0] >= '0' && v.s[0] <= '7' ? v.s[0] - '0' : -1;
	free(v.s);
	/* PMEMHEAL_EVENT, else the name that goes with the MESSAGE_ID */
	if ((r = get_field(j, "PMEMHEAL_EVENT", &v)) < 0)
		return r;
	if (!v.s) {
		if ((r = get_field(j, "MESSAGE_ID", &v)) < 0)
			return r;
		if (v.s && ph_event_from_message_id(v.s, &e) == 0) {
			free(v.s);
			v.s = strdup(ph_event_to_string(e));
			if (!v.s)
				return -ENOMEM;
		}
	}
	row->event = v.s;
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void format_time(uint64_t usec, bool iso, char *buf, size_t size)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%S%z" : "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "@%" PRIu64, usec / 1000000);
}

static struct json_object *row_to_json(const struct row *r)
{
	struct json_object *o = json_object_new_object();
	char when[64];

	if (!o)
		return NULL;
	format_time(r->time, true, when, sizeof(when));
	json_object_object_add(o, "time", ph_json_string(when));
	json_object_object_add(o, "time_usec", json_object_new_int64((int64_t)r->time));
	json_object_object_add(o, "event", r->event ? ph_json_string(r->event) : NULL);
	json_object_object_add(o, "priority", r->priority >= 0 ? json_object_new_int(r->priority) : NULL);
	json_object_object_add(o, "message", r->message ? ph_json_string(r->message) : NULL);
	/* fields the entry does not have are left out */
	for (size_t k = 0; k < N_FIELDS; k++) {
		const struct value *v = &r->v[k];
		uint64_t n;

		if (!v->s)
			continue;
		if (fields[k].number && ph_parse_u64(v->s, &n) == 0 && n <= INT64_MAX)
			json_object_object_add(o, fields[k].key, json_object_new_int64((int64_t)n));
		else
			json_object_object_add(o, fields[k].key, ph_json_string_len(v->s, v->len));
	}
	if (r->identifier)
		json_object_object_add(o, "identifier", ph_json_string(r->identifier));
	if (r->boot_id)
		json_object_object_add(o, "boot_id", ph_json_string(r->boot_id));
	return o;
}

/* A value for the table: escaped as all text output is (lib/escape.h),
 * "-" when absent. */
static char *cell(const char *s, size_t len)
{
	if (!s || len == 0)
		return strdup("-");
	return ph_escape_text(s, len);
}

enum { C_TIME, C_EVENT, C_RANGE, C_ACTION, C_RESULT, C_LOST, C_PATH, _C_MAX };

static int row_cells(const struct row *r, char *c[_C_MAX])
{
	const struct value *dev = &r->v[F_DEVICE], *sec = &r->v[F_SECTOR], *cnt = &r->v[F_COUNT];
	const struct value *path = &r->v[F_PATH], *owner = &r->v[F_OWNER];
	char when[64];
	int n;

	format_time(r->time, false, when, sizeof(when));
	c[C_TIME] = strdup(when);
	c[C_EVENT] = cell(r->event, r->event ? strlen(r->event) : 0);
	if (!dev->s && !sec->s)
		c[C_RANGE] = strdup("-");
	else {
		_cleanup_free_ char *d = cell(dev->s, dev->len), *sc = cell(sec->s, sec->len),
				    *cc = cell(cnt->s, cnt->len);

		n = d && sc && cc ? asprintf(&c[C_RANGE], "%s%s%s%s%s", dev->s ? d : "",
					    sec->s ? (dev->s ? ":" : "sector ") : "", sec->s ? sc : "",
					    sec->s && cnt->s ? "+" : "", sec->s && cnt->s ? cc : "") : -1;
		if (n < 0)
			c[C_RANGE] = NULL;
	}
	c[C_ACTION] = cell(r->v[F_ACTION].s, r->v[F_ACTION].len);
	c[C_RESULT] = cell(r->v[F_RESULT].s, r->v[F_RESULT].len);
	c[C_LOST] = cell(r->v[F_BYTES_LOST].s, r->v[F_BYTES_LOST].len);
	if (path->s)
		c[C_PATH] = cell(path->s, path->len);
	else if (owner->s) {
		_cleanup_free_ char *o = cell(owner->s, owner->len);

		if (asprintf(&c[C_PATH], "[%s]", o ? o : "?") < 0)
			c[C_PATH] = NULL;
	} else
		c[C_PATH] = strdup("-");
	for (int i = 0; i < _C_MAX; i++)
		if (!c[i])
			return -ENOMEM;
	return 0;
}

/* Columns padded to their widths; the last (the path) is not padded. */
static void print_line(const char *const c[_C_MAX], const size_t width[_C_MAX])
{
	for (int i = 0; i < _C_MAX - 1; i++)
		printf("%-*s  ", (int)width[i], c[i]);
	printf("%s\n", c[_C_MAX - 1]);
}

static int print_table(const struct rows *rs)
{
	static const char *const headers[_C_MAX] = { "TIME", "EVENT", "RANGE", "ACTION", "RESULT", "LOST", "PATH" };
	char *(*cells)[_C_MAX];
	size_t width[_C_MAX];
	int r = 0;

	cells = calloc(rs->n ? rs->n : 1, sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	for (int i = 0; i < _C_MAX; i++)
		width[i] = strlen(headers[i]);
	for (size_t k = 0; k < rs->n && r == 0; k++) {
		r = row_cells(&rs->v[k], cells[k]);
		for (int i = 0; r == 0 && i < _C_MAX; i++)
			width[i] = MAX(width[i], strlen(cells[k][i]));
	}
	if (r == 0) {
		print_line(headers, width);
		for (size_t k = 0; k < rs->n; k++)
			print_line((const char *const *)cells[k], width);
	}
	for (size_t k = 0; k < rs->n; k++)
		for (int i = 0; i < _C_MAX; i++)
			free(cells[k][i]);
	free(cells);
	return r;
}

/* ---- arguments ---------------------------------------------------------- */

/* "/dev/pmem0" or "pmem0" -> "pmem0" (what PMEMHEAL_DEVICE holds). */
static const char *device_name(const char *arg)
{
	if (strncmp(arg, "/dev/", 5) == 0)
		arg += 5;
	return *arg && !strchr(arg, '/') ? arg : NULL;
}

/* An absolute path without "//", "/./" or a trailing slash: how the
 * mapper writes paths. */
static int normalize_path(const char *arg, char **ret)
{
	_cleanup_free_ char *cwd = NULL, *joined = NULL;
	char *out, *o;
	const char *p;

	if (!*arg)
		return -EINVAL;
	if (arg[0] != '/') {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return negative_errno();
		if (asprintf(&joined, "%s/%s", cwd, arg) < 0)
			return -ENOMEM;
		arg = joined;
	}
	out = malloc(strlen(arg) + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	for (p = arg; *p;) {
		if (p[0] == '/' && (p[1] == '/' || p[1] == '\0')) {
			p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '.' && (p[2] == '/' || p[2] == '\0')) {
			p += 2;
			continue;
		}
		*o++ = *p++;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	*ret = out;
	return 0;
}

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s history [--since TIME] [--until TIME] [--path PATH] [--device DEVICE]\n"
		"                        [--json] [--directory DIR | --file FILE...]\n\n"
		"What pmemheal recorded in the journal: poison detected, mapped, repaired,\n"
		"cleared, data lost... oldest first.\n\n"
		"  -S, --since TIME     entries at or after TIME\n"
		"  -U, --until TIME     entries at or before TIME\n"
		"                       TIME: 'YYYY-MM-DD [HH:MM[:SS]]' (local; ' UTC' for UTC),\n"
		"                       HH:MM, today, yesterday, now, -1h, '2h ago', @EPOCH\n"
		"  -p, --path PATH      entries about this file\n"
		"  -d, --device DEVICE  entries about this device (/dev/pmem0 or pmem0)\n"
		"      --json           a JSON array, one object per entry\n"
		"  -D, --directory DIR  read the journal files in DIR instead of the system's\n"
		"      --file FILE      read this journal file (may be repeated)\n",
		program_name);
}

static int open_journal(const char *dir, char **files, sd_journal **ret)
{
	if (files)
		return sd_journal_open_files(ret, (const char **)files, 0);
	if (dir)
		return sd_journal_open_directory(ret, dir, 0);
	return sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY);
}

static int add_matches(sd_journal *j, const char *device, const char *path)
{
	_cleanup_free_ char *m = NULL;
	int r;

	for (int e = 0; e < _PH_EVENT_MAX; e++) {
		char id[64];

		snprintf(id, sizeof(id), "MESSAGE_ID=%s", ph_event_message_id(e));
		r = sd_journal_add_match(j, id, 0);
		if (r < 0)
			return r;
	}
	/* other fields: AND with the MESSAGE_IDs (which OR among themselves) */
	if (device) {
		if (asprintf(&m, "PMEMHEAL_DEVICE=%s", device) < 0)
			return -ENOMEM;
		r = sd_journal_add_match(j, m, 0);
		if (r < 0)
			return r;
		free(TAKE_PTR(m));
	}
	if (path) {
		if (asprintf(&m, "PMEMHEAL_PATH=%s", path) < 0)
			return -ENOMEM;
		r = sd_journal_add_match(j, m, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Append the entries J's matches select within [SINCE, UNTIL] to RS, oldest
 * first; with KEEP, only those it accepts, given RS's first n_ref rows
 * (which are there before, and RS may move as it grows). */
static int collect(sd_journal *j, uint64_t since, uint64_t until,
		   bool (*keep)(const struct row *, const struct row *ref, size_t n_ref), struct rows *rs)
{
	const size_t n_ref = rs->n;
	int r;

	r = since ? sd_journal_seek_realtime_usec(j, since) : sd_journal_seek_head(j);
	if (r < 0)
		return r;
	for (;;) {
		uint64_t t;

		r = sd_journal_next(j);
		if (r < 0)
			return r;
		if (r == 0)
			return 0;
		r = sd_journal_get_realtime_usec(j, &t);
		if (r < 0)
			return r;
		if (t < since)
			continue;
		if (t > until)
			return 0;
		r = PH_GROW(rs->v, rs->cap, rs->n + 1, 64);
		if (r < 0)
			return r;
		memset(&rs->v[rs->n], 0, sizeof(rs->v[rs->n]));
		r = read_entry(j, &rs->v[rs->n++]);
		if (r < 0)
			return r;
		if (keep && !keep(&rs->v[rs->n - 1], rs->v, n_ref))
			row_free(&rs->v[--rs->n]);
	}
}

static bool same_value(const struct value *a, const struct value *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

/* A path-less entry (detected, cleared, ...) about a range one of the
 * path's entries names: same range id, and the same namespace where both
 * entries name one. */
static bool about_a_range_of(const struct row *row, const struct row *ref, size_t n_ref)
{
	const struct value *ns = &row->v[F_NAMESPACE];

	if (row->v[F_PATH].s || !row->v[F_RANGE_ID].s)
		return false;
	for (size_t i = 0; i < n_ref; i++)
		if (same_value(&row->v[F_RANGE_ID], &ref[i].v[F_RANGE_ID]) &&
		    (!ns->s || !ref[i].v[F_NAMESPACE].s || same_value(ns, &ref[i].v[F_NAMESPACE])))
			return true;
	return false;
}

static int by_time(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return x->time < y->time ? -1 : x->time > y->time;
}

/* With --path, a file's story also holds what happened to the ranges that
 * touched it as a whole: when each was detected, cleared or failed.  Those
 * entries carry the range id but no path. */
static int add_range_events(sd_journal *j, const char *device, uint64_t since, uint64_t until, struct rows *rs)
{
	size_t n = rs->n, ids = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		ids += rs->v[i].v[F_RANGE_ID].s != NULL;
	if (ids == 0)
		return 0;
	sd_journal_flush_matches(j);
	r = add_matches(j, device, NULL);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *m = NULL;
		const struct value *id = &rs->v[i].v[F_RANGE_ID];
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = same_value(id, &rs->v[k].v[F_RANGE_ID]);
		if (!id->s || seen)
			continue;
		if (asprintf(&m, "PMEMHEAL_RANGE_ID=%s", id->s) < 0)
			return -ENOMEM;
		r = sd_journal_add_match(j, m, 0);
		if (r < 0)
			return r;
	}
	r = collect(j, since, until, about_a_range_of, rs);
	if (r < 0)
		return r;
	/* both lists are oldest first; a stable merge keeps ties in order */
	if (rs->n > n) {
		struct row *merged = calloc(rs->n, sizeof(*merged));
		size_t a = 0, b = n, k = 0;

		if (!merged)
			return -ENOMEM;
		while (a < n || b < rs->n)
			merged[k++] = b >= rs->n || (a < n && by_time(&rs->v[a], &rs->v[b]) <= 0) ? rs->v[a++] : rs->v[b++];
		memcpy(rs->v, merged, rs->n * sizeof(*merged));
		free(merged);
	}
	return 0;
}

struct history_args {
	const char *device, *dir;
	char *path;   /* normalized --path */
	char **files; /* --file, NULL-terminated */
	size_t n_files;
	uint64_t since, until;
	bool json;
};

static void history_args_done(struct history_args *a)
{
	free(a->path);
	free(a->files);
}

/* Options into *a: EXIT_OK to go on, -1 after --help, or an exit status. */
static int history_parse(int argc, char *argv[], struct history_args *a)
{
	enum { OPT_JSON = 0x100, OPT_FILE };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "path", required_argument, NULL, 'p' },
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "directory", required_argument, NULL, 'D' },
		{ "file", required_argument, NULL, OPT_FILE },
		{},
	};
	uint64_t now = ph_now_usec();
	int c, r;

	a->since = 0;
	a->until = UINT64_MAX;
	optind = 0;
	while ((c = getopt_long(argc, argv, "hS:U:p:d:D:", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return -1;
		case 'S':
		case 'U':
			r = ph_parse_time(optarg, now, c == 'S' ? &a->since : &a->until);
			if (r < 0) {
				cli_error("invalid --%s '%s': %s", c == 'S' ? "since" : "until", optarg,
					  r == -ERANGE ? "out of range" :
					  "expected 'YYYY-MM-DD [HH:MM[:SS]]', HH:MM, today, yesterday, "
					  "-1h, '2h ago' or @EPOCH");
				return EXIT_USAGE;
			}
			break;
		case 'p':
			free(a->path);
			a->path = NULL;
			r = normalize_path(optarg, &a->path);
			if (r < 0) {
				cli_error("invalid --path '%s': %s", optarg, r == -EINVAL ? "empty" : strerror(-r));
				return EXIT_USAGE;
			}
			break;
		case 'd':
			a->device = device_name(optarg);
			if (!a->device) {
				cli_error("invalid --device '%s': expected a device name such as pmem0 or /dev/pmem0",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case 'D':
			a->dir = optarg;
			break;
		case OPT_FILE: {
			char **v = reallocarray(a->files, a->n_files + 2, sizeof(*a->files));

			if (!v)
				return EXIT_FAIL;
			a->files = v;
			a->files[a->n_files++] = optarg;
			a->files[a->n_files] = NULL;
			break;
		}
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("history takes no arguments; see '%s history --help'", program_name);
		return EXIT_USAGE;
	}
	if (a->dir && a->files) {
		cli_error("--directory and --file exclude each other");
		return EXIT_USAGE;
	}
	if (a->since > a->until) {
		cli_error("--since is after --until");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* The rows as a JSON array or a table ("no events" when there are none). */
static int history_print(const struct history_args *a, struct rows *rs)
{
	if (a->json) {
		struct json_object *arr = json_object_new_array();

		for (size_t k = 0; arr && k < rs->n; k++)
			json_object_array_add(arr, row_to_json(&rs->v[k]));
		if (!arr)
			return -ENOMEM;
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else if (rs->n == 0)
		printf("no events%s\n", a->device || a->path || a->since || a->until != UINT64_MAX ? " match" : " recorded");
	else {
		return print_table(rs);
	}
	return 0;
}

int verb_history(int argc, char *argv[])
{
	_cleanup_(sd_journal_closep) sd_journal *j = NULL;
	_cleanup_(history_args_done) struct history_args a = { 0 };
	struct rows rs = { NULL, 0, 0 };
	int r, ret = EXIT_FAIL;

	r = history_parse(argc, argv, &a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	r = open_journal(a.dir, a.files, &j);
	if (r < 0) {
		if (a.files)
			cli_error("cannot open journal file%s %s%s: %s", a.n_files > 1 ? "s" : "", a.files[0],
				  a.n_files > 1 ? ", ..." : "", strerror(-r));
		else
			cli_error("cannot open the journal%s%s: %s", a.dir ? " in " : "", a.dir ? a.dir : "", strerror(-r));
		return r == -EACCES || r == -EPERM ? EXIT_ACCESS : EXIT_FAIL;
	}
	(void)sd_journal_set_data_threshold(j, 0);
	r = add_matches(j, a.device, a.path);
	if (r >= 0)
		r = collect(j, a.since, a.until, NULL, &rs);
	if (r >= 0 && a.path && rs.n > 0)
		r = add_range_events(j, a.device, a.since, a.until, &rs);
	if (r >= 0)
		r = history_print(&a, &rs);
	if (r < 0)
		cli_error("cannot read the journal: %s", strerror(-r));
	else
		ret = EXIT_OK;
	rows_free(&rs);
	return ret;
}
