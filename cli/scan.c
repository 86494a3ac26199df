/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal scan: read every badblocks list now, record what changed in the
 * ledger, map the ranges that are new, and print the changes.  With
 * --watch it stays, woken by POLLPRI, udev and a rescan timer, and prints
 * each change as it happens (one JSON object per line with --json).
 * Every change and every owner found is also recorded in the journal
 * (detected, cleared, mapped, metadata-poison; device-added/removed while
 * watching), as the daemon would.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "escape.h"
#include "clock.h"
#include "ledger.h"
#include "lock.h"
#include "mapper-json.h"
#include "mapper.h"
#include "pipeline.h"
#include "record.h"
#include "watch.h"

#define SCAN_LOCK_WAIT_USEC (5 * 1000000ULL)

struct scan_state {
	struct ph_ctx *ctx;
	struct ph_ledger *ledger;
	const struct ph_topology *topo;
	struct ph_monitor *mon;
	struct ph_recorder *rec;
	bool json, map, watching;
	unsigned changes, errors;
	struct json_object *out; /* --json without --watch: one document */
};

/* The owners of a mapped range, as scan --json shows them. */
static struct json_object *owners_json(const struct ph_map_result *res)
{
	struct json_object *owners = json_object_new_array();

	for (size_t i = 0; owners && res && i < res->n_owners; i++) {
		struct json_object *oj;

		if (ph_owner_to_json(&res->owners[i], &oj) == 0)
			json_object_array_add(owners, oj);
	}
	return owners;
}

/* Write the ledger only under the repair lock, as pmemheal repair and the
 * daemon's repairs do, so a scan never changes a range they are working
 * on.  Each scan waits up to SCAN_LOCK_WAIT_USEC for it and lets go after
 * (so scan --watch, between scans, never keeps the daemon waiting).  When
 * the lock file cannot be opened at all (a read-only state directory),
 * nobody can repair from this state directory either: scan goes on. */
static int lock_scans(struct ph_monitor *mon, const char *state_dir)
{
	_cleanup_close_ int fd = -EBADF;
	int r = ph_repair_lock_open(state_dir, NULL, &fd);

	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;
	return ph_monitor_set_repair_lock(mon, state_dir, SCAN_LOCK_WAIT_USEC);
}

static void emit(struct scan_state *s, struct json_object *j)
{
	if (s->watching || !s->out) {
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		json_object_put(j);
	} else
		json_object_array_add(s->out, j);
}

static void on_change(void *userdata, const struct ph_change *c, const char *trigger)
{
	struct scan_state *s = userdata;
	const struct ph_namespace *ns = ph_topology_find_ns(ph_monitor_get_topology(s->mon), c->row.ns_id);
	struct json_object *owners = NULL;
	_cleanup_free_ char *summary = NULL;
	enum ph_state state = c->row.state;
	bool map = s->map && ns && (c->type == PH_CHANGE_NEW || c->type == PH_CHANGE_GROWN);
	uint64_t seen = ph_mono_usec(), mapped;

	s->changes++;
	ph_record_change(s->rec, c);
	if (map) {
		_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL; /* res points into it */
		struct ph_map_result *res = NULL;
		struct ph_error err = { { 0 } };
		int r = ph_pipeline_map_range(s->ctx, s->ledger, s->rec, ns, &c->row, &m, &res, &state, &summary,
					      &err);

		if (r < 0)
			cli_error("%s", err.message[0] ? err.message : strerror(-r));
		else if (res)
			owners = owners_json(&res[0]);
		if (res)
			ph_map_results_free(res, 1);
	}
	mapped = ph_mono_usec();
	if (s->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "event", ph_json_string("change"));
		json_object_object_add(j, "change", ph_json_string(ph_change_type_to_string(c->type)));
		json_object_object_add(j, "trigger", ph_json_string(trigger));
		json_object_object_add(j, "time_usec", json_object_new_int64((int64_t)ph_now_usec()));
		/* when the change was known, and when its owners were */
		json_object_object_add(j, "woke_mono_usec", json_object_new_int64((int64_t)ph_monitor_get_wake_usec(s->mon)));
		json_object_object_add(j, "mono_usec", json_object_new_int64((int64_t)seen));
		if (map)
			json_object_object_add(j, "mapped_mono_usec", json_object_new_int64((int64_t)mapped));
		json_object_object_add(j, "id", json_object_new_int64(c->row.id));
		json_object_object_add(j, "namespace", ph_json_string(ns ? ns->name : c->row.ns_id));
		json_object_object_add(j, "namespace_id", ph_json_string(c->row.ns_id));
		json_object_object_add(j, "device", ph_json_string(c->row.device ? c->row.device : ""));
		json_object_object_add(j, "sector", json_object_new_int64((int64_t)c->row.start));
		json_object_object_add(j, "count", json_object_new_int64((int64_t)c->row.count));
		if (c->type == PH_CHANGE_GROWN || c->type == PH_CHANGE_SHRUNK) {
			json_object_object_add(j, "old_sector", json_object_new_int64((int64_t)c->old_start));
			json_object_object_add(j, "old_count", json_object_new_int64((int64_t)c->old_count));
		}
		json_object_object_add(j, "state", ph_json_string(ph_state_to_string(state)));
		json_object_object_add(j, "origin", ph_json_string(c->row.origin ? c->row.origin : ""));
		if (owners)
			json_object_object_add(j, "owners", owners);
		emit(s, j);
		return;
	}
	printf("%-9s %-10s %s sectors %" PRIu64 "+%" PRIu64, ph_change_type_to_string(c->type),
	       c->row.device ? cli_text(c->row.device) : "?", cli_text(ns ? ns->name : c->row.ns_id), c->row.start,
	       c->row.count);
	if (c->type == PH_CHANGE_GROWN || c->type == PH_CHANGE_SHRUNK)
		printf(" (was %" PRIu64 "+%" PRIu64 ")", c->old_start, c->old_count);
	printf(", %s", ph_state_to_string(state));
	if (summary && *summary)
		printf(": %s", cli_text(summary));
	if (s->watching)
		printf("  [%s]", cli_text(trigger));
	printf("\n");
	json_object_put(owners);
	fflush(stdout);
}

static void on_event(void *userdata, enum ph_monitor_event ev, const char *name, const char *detail)
{
	struct scan_state *s = userdata;
	static const char *const names[] = {
		[PH_MONITOR_DEVICE_ADDED] = "device-added",
		[PH_MONITOR_DEVICE_REMOVED] = "device-removed",
		[PH_MONITOR_SOURCE_ERROR] = "source-error",
	};

	if (ev == PH_MONITOR_SOURCE_ERROR)
		s->errors++;
	else
		ph_record_device(s->rec, ev == PH_MONITOR_DEVICE_ADDED, name, detail);
	if (s->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "event", ph_json_string(names[ev]));
		json_object_object_add(j, "name", ph_json_string(name));
		json_object_object_add(j, "detail", detail ? ph_json_string(detail) : NULL);
		json_object_object_add(j, "mono_usec", json_object_new_int64((int64_t)ph_mono_usec()));
		emit(s, j);
	} else if (ev == PH_MONITOR_SOURCE_ERROR)
		cli_error("%s", detail);
	else {
		printf("%-9s %s (%s)\n", names[ev], cli_text(name), detail ? cli_text(detail) : "");
		fflush(stdout);
	}
}

static const struct ph_monitor_ops ops = { .change = on_change, .event = on_event };

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s scan [--json] [--state-dir DIR] [--no-map] [--watch [--interval SECONDS]]\n\n"
		"Read every badblocks list, record changes in the ledger, map new ranges.\n\n"
		"  --json            JSON (with --watch: one object per line)\n"
		"  --state-dir DIR   where the ledger lives (default %s)\n"
		"  --no-map          do not map new ranges to their owners\n"
		"  --watch           keep watching (POLLPRI, udev, rescans) until interrupted\n"
		"  --interval SEC    rescan period while watching (default 60, 0 for none)\n",
		program_name, PH_STATE_DIR);
}

struct scan_args {
	const char *state_dir;
	uint64_t interval;
	bool json, map, watch;
};

/* Options into *a: EXIT_OK to go on, -1 after --help, or an exit status. */
static int scan_parse(int argc, char *argv[], struct scan_args *a)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },     { "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' }, { "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' }, { "no-map", no_argument, NULL, 'n' },
		{},
	};
	int c;

	*a = (struct scan_args){ .state_dir = PH_STATE_DIR, .interval = 60, .map = true };
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return -1;
		case 's':
			a->state_dir = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'w':
			a->watch = true;
			break;
		case 'n':
			a->map = false;
			break;
		case 'i':
			if (ph_parse_u64(optarg, &a->interval) < 0 || a->interval > 86400) {
				cli_error("invalid --interval '%s': expected 0 to 86400 seconds", optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("scan takes no arguments; see '%s scan --help'", program_name);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* One scan; its changes were printed (or gathered in s->out) as they came. */
static int scan_once(struct scan_state *s)
{
	int r;

	if (s->json)
		s->out = json_object_new_array();
	r = ph_monitor_scan(s->mon, "scan");
	if (r < 0)
		return r;
	if (s->json) {
		struct json_object *doc = json_object_new_object();
		const char *aside = ph_ledger_get_moved_aside(s->ledger);

		json_object_object_add(doc, "ledger", ph_json_string(ph_ledger_get_path(s->ledger)));
		json_object_object_add(doc, "moved_aside", aside ? ph_json_string(aside) : NULL);
		json_object_object_add(doc, "namespaces",
				       json_object_new_int64((int64_t)ph_monitor_get_topology(s->mon)->n_namespaces));
		json_object_object_add(doc, "events", s->out);
		puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
		s->out = NULL;
	} else if (s->changes == 0)
		printf("no changes (%zu namespaces)\n", ph_monitor_get_topology(s->mon)->n_namespaces);
	return s->errors ? EXIT_PARTIAL : EXIT_OK;
}

/* --watch: scan on every wake-up until SIGINT or SIGTERM.  An exit status,
 * or -errno after saying what failed (the caller adds "scan failed"). */
static int scan_watch(struct scan_state *s, uint64_t interval)
{
	_cleanup_(sd_event_unrefp) sd_event *e = NULL;
	sigset_t mask;
	int r;

	s->watching = true;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_default(&e);
	if (r >= 0)
		r = sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = ph_monitor_attach(s->mon, e, interval * 1000000ULL);
	if (r < 0) {
		cli_error("cannot set up watching: %s", strerror(-r));
		return r;
	}
	r = ph_monitor_scan(s->mon, "start");
	if (r < 0)
		return r;
	/* Readiness: everything is armed; tests wait for this line. */
	if (s->json)
		printf("{\"event\":\"watching\",\"namespaces\":%zu,\"watches\":%zu,\"mono_usec\":%" PRIu64 "}\n",
		       ph_monitor_get_topology(s->mon)->n_namespaces, ph_monitor_n_watches(s->mon), ph_mono_usec());
	else
		printf("watching %zu namespaces (%zu lists); Ctrl-C to stop\n",
		       ph_monitor_get_topology(s->mon)->n_namespaces, ph_monitor_n_watches(s->mon));
	fflush(stdout);
	r = sd_event_loop(e);
	if (r < 0) {
		cli_error("event loop failed: %s", strerror(-r));
		return r;
	}
	return EXIT_OK;
}

int verb_scan(int argc, char *argv[])
{
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(ph_ledger_freep) struct ph_ledger *ledger = NULL;
	_cleanup_(ph_monitor_freep) struct ph_monitor *mon = NULL;
	_cleanup_(ph_recorder_freep) struct ph_recorder *rec = NULL;
	struct scan_state s = { 0 };
	struct ph_error err = { { 0 } };
	struct scan_args a;
	int r;

	r = scan_parse(argc, argv, &a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	s.json = a.json;
	s.map = a.map;
	if (cli_ctx_new(&ctx) < 0)
		return EXIT_FAIL;
	s.ctx = ctx;
	if (ph_recorder_new(ctx, "pmemheal", &rec) < 0)
		return EXIT_FAIL;
	s.rec = rec;
	r = ph_ledger_open(ctx, a.state_dir, 0, &ledger, &err);
	if (r < 0) {
		cli_error("%s", err.message);
		return r == -EACCES || r == -EPERM ? EXIT_ACCESS : EXIT_FAIL;
	}
	if (ph_ledger_get_moved_aside(ledger))
		cli_notice("the ledger was damaged; kept at %s and rebuilt from the kernel's lists",
			   ph_ledger_get_moved_aside(ledger));
	s.ledger = ledger;
	r = ph_monitor_new(ctx, ledger, &ops, &s, &mon);
	if (r < 0) {
		cli_error("cannot enumerate pmem devices: %s", strerror(-r));
		return EXIT_FAIL;
	}
	s.mon = mon;
	r = lock_scans(mon, a.state_dir);
	if (r >= 0)
		r = a.watch ? scan_watch(&s, a.interval) : scan_once(&s);
	json_object_put(s.out);
	if (r == -EWOULDBLOCK) {
		cli_error("%s/repair.lock: a repair is running (pmemheal or pmemheald); not scanning", a.state_dir);
		return EXIT_BUSY;
	}
	if (r < 0) {
		cli_error("scan failed: %s", strerror(-r));
		return EXIT_FAIL;
	}
	return r;
}
