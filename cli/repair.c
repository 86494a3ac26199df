/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal repair: plan and repair poisoned ranges, once.
 *
 * Refuses to run with a configuration that has errors.  Takes the repair
 * lock (one repairer at a time), records the kernel's lists in the ledger,
 * finishes what a crash left in the intent log, then plans each range and
 * executes the plan.  --dry-run prints the plan: every step, its target,
 * and the bytes it would give up.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "escape.h"
#include "ledger.h"
#include "record.h"
#include "lock.h"
#include "planner-json.h"
#include "range-row.h"
#include "repair.h"
#include "watch.h"

struct target {
	const char *ns_id;
	struct ph_range r;
};

struct pick {
	bool all;
	const struct target *targets;
	size_t n_targets;
	struct ph_range_row_copy *rows; /* row strings live only in the callback */
	size_t n;
};

static int on_row(void *userdata, const struct ph_range_row *row)
{
	struct pick *p = userdata;
	bool want = p->all;
	struct ph_range_row_copy *v;
	int r;

	for (size_t i = 0; !want && i < p->n_targets; i++)
		want = strcmp(p->targets[i].ns_id, row->ns_id) == 0 &&
		       ph_range_intersect(&p->targets[i].r, &(struct ph_range){ row->start, row->count }, NULL);
	if (!want || !ph_range_row_repairable(row))
		return 0;
	v = reallocarray(p->rows, p->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->rows = v;
	r = ph_range_row_copy(row, &v[p->n]);
	if (r < 0)
		return r;
	p->n++;
	return 0;
}

static void pick_done(struct pick *p)
{
	for (size_t i = 0; i < p->n; i++)
		ph_range_row_copy_done(&p->rows[i]);
	free(p->rows);
}

static void plan_print(const struct ph_range_row *row, const struct ph_plan *p)
{
	printf("range %" PRIu64 "+%" PRIu64 " on %s (%s), %s%s:\n", p->start, p->count, cli_text(p->device),
	       ph_state_to_string(row->state), p->can_clear ? "the bus clears" : "the bus cannot clear",
	       p->reflink ? ", reflink" : "");
	for (size_t i = 0; i < p->n_pages; i++) {
		const struct ph_plan_page *pg = &p->pages[i];

		printf("  page %" PRIu64 " [%s]%s: %s\n", pg->sector, ph_mode_to_string(pg->mode),
		       pg->memory_failure ? " (went through memory_failure)" : "", pg->explain ? cli_text(pg->explain) : "");
		for (size_t k = 0; k < pg->n_steps; k++)
			printf("    %zu. %-18s %s\n", k + 1, ph_step_to_string(pg->steps[k].kind),
			       cli_text(pg->steps[k].detail));
		if (pg->bytes_lost)
			printf("    bytes at risk: %" PRIu64 "\n", pg->bytes_lost);
		if (pg->holders)
			printf("    open in %s: they keep the old inode until they close it\n", cli_text(pg->holders));
	}
}

static void record_change(void *userdata, const struct ph_change *c, const char *trigger)
{
	(void)trigger;
	(void)ph_record_change(userdata, c);
}

static const struct ph_monitor_ops record_ops = { .change = record_change };

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s repair [--dry-run] [--json] [--state-dir DIR] [--config-dir DIR]... (--all | DEVICE RANGE...)\n\n"
		"Repair poisoned ranges per the rules: plan each, then execute the plan.\n\n"
		"  --dry-run          print the plan (every step and the bytes at risk), change nothing\n"
		"  --json             print JSON\n"
		"  --all              every recorded range that is still poisoned\n"
		"  --state-dir DIR    the ledger (default %s)\n"
		"  --config-dir DIR   the rules (default /etc/pmemheal, /run/pmemheal, /usr/lib/pmemheal)\n",
		program_name, PH_STATE_DIR);
}

struct repair_args {
	const char *state_dir, *device;
	bool json, dry, all;
	char **dirs;
	size_t n_dirs;
	struct target *targets;
	size_t n_targets;
};

static void repair_args_done(struct repair_args *a)
{
	free(a->dirs);
	free(a->targets);
}

/* Options and ranges into *a: EXIT_OK to go on, -1 after --help, or an
 * exit status. */
static int repair_parse(int argc, char *argv[], struct repair_args *a)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },       { "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },    { "all", no_argument, NULL, 'a' },
		{ "state-dir", required_argument, NULL, 's' }, { "config-dir", required_argument, NULL, 'c' },
		{},
	};
	int c;

	*a = (struct repair_args){ .state_dir = PH_STATE_DIR };
	optind = 0;
	while ((c = getopt_long(argc, argv, "hn", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return -1;
		case 'j':
			a->json = true;
			break;
		case 'n':
			a->dry = true;
			break;
		case 'a':
			a->all = true;
			break;
		case 's':
			a->state_dir = optarg;
			break;
		case 'c':
			if (!cli_strv_push(&a->dirs, &a->n_dirs, optarg))
				return EXIT_FAIL;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (a->all == (optind < argc)) {
		cli_error("repair needs either --all or DEVICE RANGE...; see '%s repair --help'", program_name);
		return EXIT_USAGE;
	}
	if (a->all)
		return EXIT_OK;
	a->device = argv[optind++];
	if (optind >= argc) {
		cli_error("repair %s needs at least one RANGE", a->device);
		return EXIT_USAGE;
	}
	a->targets = calloc((size_t)(argc - optind), sizeof(*a->targets));
	if (!a->targets)
		return EXIT_FAIL;
	for (; optind < argc; optind++) {
		if (ph_range_parse(argv[optind], false, &a->targets[a->n_targets].r) < 0) {
			cli_error("invalid range '%s': expected SECTOR[+COUNT]", argv[optind]);
			return EXIT_USAGE;
		}
		a->n_targets++;
	}
	return EXIT_OK;
}

/* One repairer at a time: this command or the daemon.  Never waits. */
static int repair_lock(const char *state_dir, int *ret_fd)
{
	_cleanup_free_ char *lockpath = NULL;
	int k;

	k = ph_repair_lock_open(state_dir, &lockpath, ret_fd);
	if (k == -ENOMEM)
		return EXIT_FAIL;
	if (k == 0)
		k = ph_repair_lock_try(*ret_fd);
	if (k < 0) {
		if (!lockpath)
			(void)asprintf(&lockpath, "%s/repair.lock", state_dir);
		cli_error("%s: %s", lockpath, k == -EWOULDBLOCK ? "another repair is running (pmemheal or pmemheald)"
							       : strerror(-k));
		return EXIT_BUSY;
	}
	return EXIT_OK;
}

/* DEVICE's namespace for every target, from the scan's topology. */
static int resolve_targets(struct repair_args *a, const struct ph_topology *t)
{
	const char *name = strrchr(a->device, '/') ? strrchr(a->device, '/') + 1 : a->device;
	const struct ph_namespace *ns = ph_topology_find_blockdev(t, name);

	if (!ns) {
		cli_error("%s: not a pmem namespace's disk", a->device);
		return EXIT_NO_DEVICE;
	}
	for (size_t i = 0; i < a->n_targets; i++)
		a->targets[i].ns_id = ns->id;
	return EXIT_OK;
}

static struct json_object *result_json(const struct ph_range_row *row, const struct ph_repair_result *res)
{
	struct json_object *rj = json_object_new_object();

	json_object_object_add(rj, "id", json_object_new_int64(row->id));
	json_object_object_add(rj, "device", ph_json_string(row->device ? row->device : ""));
	json_object_object_add(rj, "sector", json_object_new_int64((int64_t)row->start));
	json_object_object_add(rj, "count", json_object_new_int64((int64_t)row->count));
	json_object_object_add(rj, "state", ph_json_string(ph_state_to_string(res->state)));
	json_object_object_add(rj, "pages", json_object_new_int((int)res->pages));
	json_object_object_add(rj, "repaired", json_object_new_int((int)res->written));
	json_object_object_add(rj, "cleared", json_object_new_int((int)res->cleared));
	json_object_object_add(rj, "pinned", json_object_new_int((int)res->pinned));
	json_object_object_add(rj, "recorded", json_object_new_int((int)res->recorded));
	json_object_object_add(rj, "failed", json_object_new_int((int)res->failed));
	json_object_object_add(rj, "healed", json_object_new_int((int)res->healed));
	json_object_object_add(rj, "bytes_lost", json_object_new_int64((int64_t)res->bytes_lost));
	json_object_object_add(rj, "detail", res->detail ? ph_json_string(res->detail) : NULL);
	json_object_object_add(rj, "notes", res->notes ? ph_json_string(res->notes) : NULL);
	return rj;
}

/* The text line (and note) of one result; EXIT_FAIL when out of memory. */
static int result_print(const struct ph_range_row *row, const struct ph_repair_result *res)
{
	_cleanup_free_ char *counts = NULL;
	int ret = EXIT_OK;

	if (ph_repair_result_counts(res, false, &counts) < 0)
		ret = EXIT_FAIL;
	else
		printf("%s sectors %" PRIu64 "+%" PRIu64 ": %s (%s)%s%s\n", row->device ? cli_text(row->device) : "?",
		       row->start, row->count, ph_state_to_string(res->state), counts, res->detail ? ": " : "",
		       res->detail ? cli_text(res->detail) : "");
	if (res->notes)
		printf("  note: %s\n", cli_text(res->notes));
	return ret;
}

/* Plan (--dry-run) or repair one row, printing it or adding it to out.
 * *ret becomes EXIT_REPAIR (or EXIT_FAIL) when it did not work. */
static int repair_row(struct ph_repairer *rep, const struct ph_range_row *row, bool dry, struct json_object *out,
		      int *ret)
{
	struct ph_repair_result res;
	int k;

	if (dry) {
		struct ph_plan **plans = NULL;
		size_t n = 0;

		k = ph_repair_plan(rep, row, &plans, &n);
		if (k < 0) {
			*ret = EXIT_REPAIR;
			return k;
		}
		for (size_t p = 0; p < n; p++) {
			if (out)
				json_object_array_add(out, ph_plan_to_json(plans[p]));
			else
				plan_print(row, plans[p]);
			ph_plan_free(plans[p]);
		}
		free(plans);
		return k;
	}
	k = ph_repair_range(rep, row, &res);
	if (out)
		json_object_array_add(out, result_json(row, &res));
	else if (result_print(row, &res) != EXIT_OK)
		*ret = EXIT_FAIL;
	if (k < 0 || res.failed)
		*ret = EXIT_REPAIR;
	ph_repair_result_done(&res);
	return k;
}

int verb_repair(int argc, char *argv[])
{
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(ph_policy_freep) struct ph_policy *policy = NULL;
	_cleanup_(ph_ledger_freep) struct ph_ledger *ledger = NULL;
	_cleanup_(ph_monitor_freep) struct ph_monitor *mon = NULL;
	_cleanup_(ph_recorder_freep) struct ph_recorder *rec = NULL;
	_cleanup_(ph_repairer_freep) struct ph_repairer *rep = NULL;
	_cleanup_(repair_args_done) struct repair_args a = { 0 };
	_cleanup_close_ int lockfd = -EBADF;
	struct ph_error err = { { 0 } };
	struct pick pick = { 0 };
	struct json_object *out = NULL;
	int k, ret = EXIT_OK;

	k = repair_parse(argc, argv, &a);
	if (k != EXIT_OK)
		return k < 0 ? EXIT_OK : k;
	if (cli_ctx_new(&ctx) < 0)
		return EXIT_FAIL;
	k = cli_policy_load(ctx, a.dirs, a.n_dirs, &policy);
	if (k != EXIT_OK) {
		if (k == EXIT_POLICY)
			cli_error("refusing to repair with a configuration that has errors");
		return k;
	}
	k = ph_ledger_open(ctx, a.state_dir, 0, &ledger, &err);
	if (k < 0) {
		cli_error("%s", err.message);
		return k == -EACCES || k == -EPERM ? EXIT_ACCESS : EXIT_FAIL;
	}
	k = repair_lock(a.state_dir, &lockfd);
	if (k != EXIT_OK)
		return k;
	/* The audit trail: a repair run by hand is journalled like the
	 * daemon's, from what its scan detects on (a dry run records nothing). */
	if (!a.dry)
		(void)ph_recorder_new(ctx, "pmemheal", &rec);
	k = ph_monitor_new(ctx, ledger, rec ? &record_ops : NULL, rec, &mon);
	if (k < 0) {
		cli_error("cannot enumerate pmem devices: %s", strerror(-k));
		return EXIT_FAIL;
	}
	(void)ph_monitor_scan(mon, "repair");
	if (!a.all && (k = resolve_targets(&a, ph_monitor_get_topology(mon))) != EXIT_OK)
		return k;
	k = ph_repairer_new(ctx, ledger, policy, ph_monitor_get_topology(mon), &rep);
	if (k < 0)
		return EXIT_FAIL;
	ph_repairer_set_recorder(rep, rec);
	ph_repairer_set_memfail(rep, ph_monitor_get_memfail(mon)); /* the scan read the kernel log */
	if (!a.dry) {
		k = ph_repairer_resume(rep);
		if (k > 0)
			cli_notice("finished %d repair step%s a crash had left", k, k == 1 ? "" : "s");
	}
	pick = (struct pick){ .all = a.all, .targets = a.targets, .n_targets = a.n_targets };
	k = ph_ledger_foreach(ledger, NULL, on_row, &pick);
	if (k >= 0) {
		if (pick.n == 0 && !a.json)
			printf("nothing to repair\n");
		if (a.json)
			out = json_object_new_array();
		for (size_t i = 0; i < pick.n; i++)
			k = repair_row(rep, &pick.rows[i].row, a.dry, out, &ret);
		if (a.json)
			puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(out);
	pick_done(&pick);
	return k < 0 && ret == EXIT_OK ? EXIT_FAIL : ret;
}
