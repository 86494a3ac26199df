/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal status: every pmem namespace, whether its bus can clear poison,
 * what is mounted on it, and its poisoned ranges: those the ledger
 * remembers (with their state, also after a reboot empties the kernel's
 * lists) and those the kernel lists now.  -v lists the damaged files the
 * way `zpool status -v` does.  It changes nothing: the ledger is opened
 * read-only and nothing is written.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "blkdev.h"
#include "cli.h"
#include "escape.h"
#include "ledger.h"
#include "mapper-json.h"
#include "mapper.h"
#include "pipeline.h"
#include "source.h"
#include "topology.h"

struct srange {
	int64_t id;      /* 0: not in the ledger */
	uint64_t start, count;
	enum ph_state state;
	bool in_kernel, in_ledger;
	char origin[32];
	uint64_t first_seen, last_seen;
};

struct sns {
	struct srange *v;
	size_t n;
};

static int add_range(struct sns *s, const struct srange *r)
{
	struct srange *v = reallocarray(s->v, s->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->v = v;
	v[s->n++] = *r;
	return 0;
}

static int on_row(void *userdata, const struct ph_range_row *row)
{
	struct srange r = {
		.id = row->id, .start = row->start, .count = row->count, .state = row->state,
		.in_ledger = true, .first_seen = row->first_seen, .last_seen = row->last_seen,
	};

	snprintf(r.origin, sizeof(r.origin), "%s", row->origin ? row->origin : "");
	return add_range(userdata, &r);
}

static bool healed(enum ph_state s)
{
	return s == PH_STATE_REPAIRED || s == PH_STATE_CLEARED;
}

/* Ledger rows, then what the kernel lists now: matched by overlap. */
static int collect(struct ph_ledger *l, const struct ph_namespace *ns, const struct ph_scan *scan,
		   struct sns *out)
{
	int r = l ? ph_ledger_foreach(l, ns->id, on_row, out) : 0;

	for (size_t i = 0; r == 0 && i < scan->n_obs; i++) {
		const struct ph_observation *o = &scan->obs[i];
		bool known = false;

		if (strcmp(o->ns_id, ns->id) != 0)
			continue;
		for (size_t k = 0; k < out->n; k++)
			if (out->v[k].in_ledger && out->v[k].start < o->start + o->count &&
			    o->start < out->v[k].start + out->v[k].count) {
				out->v[k].in_kernel = true;
				known = true;
			}
		if (!known) {
			struct srange n = { .start = o->start, .count = o->count, .state = PH_STATE_NEW, .in_kernel = true };

			snprintf(n.origin, sizeof(n.origin), "%s", ph_origin_to_string(o->origin));
			r = add_range(out, &n);
		}
	}
	return r;
}

static const char *seen_text(const struct srange *r)
{
	if (!r->in_ledger)
		return "listed now, not yet in the ledger (run pmemheal scan)";
	if (r->in_kernel)
		return "listed now";
	return healed(r->state) ? "healed" : "remembered: not listed since it was last seen";
}

static void print_ns(const struct ph_topology *t, const struct ph_namespace *ns, const struct ph_blkdev *b,
		     const struct sns *s)
{
	const struct ph_region *rg = &t->regions[ns->region];
	const struct ph_bus *bus = &t->buses[rg->bus];

	printf("  %s  %s  %s%s  %" PRIu64 " MiB  (%s, %s %s)\n", ns->name, ph_ns_mode_to_string(ns->mode),
	       ns->blockdev || ns->chardev ? "/dev/" : "", ns->blockdev ? ns->blockdev : ns->chardev ? ns->chardev : "-",
	       ns->size >> 20, rg->name, bus->name, bus->provider);
	printf("        id: %s\n", ns->id);
	if (ns->data_offset != PH_UNKNOWN)
		printf("      data: at %#" PRIx64 ", %" PRIu64 " KiB after the namespace's start\n", ns->start,
		       ns->data_offset >> 10);
	printf(" can clear: %s (%s)\n", bus->can_clear ? "yes" : "no", bus->clear_reason ? cli_text(bus->clear_reason) : "");
	for (size_t i = 0; b && i < b->n_parts; i++) {
		const struct ph_part *p = &b->parts[i];

		if (p->mount)
			printf("   mounted: %s on %s (%s)\n", cli_text(p->node), cli_text(p->mount->mountpoint),
			       cli_text(p->mount->fstype));
		else if (b->partitioned)
			printf("   mounted: %s: no\n", cli_text(p->node));
	}
	if (b && b->n_parts == 1 && !b->parts[0].mount)
		printf("   mounted: no\n");
	if (s->n == 0) {
		printf("    poison: none\n\n");
		return;
	}
	printf("    poison: %zu range%s\n", s->n, s->n == 1 ? "" : "s");
	printf("            %-12s %-6s %-10s %s\n", "SECTOR", "COUNT", "STATE", "SEEN");
	for (size_t i = 0; i < s->n; i++)
		printf("            %-12" PRIu64 " %-6" PRIu64 " %-10s %s\n", s->v[i].start, s->v[i].count,
		       ph_state_to_string(s->v[i].state), seen_text(&s->v[i]));
	printf("\n");
}

/* -v: the owners of every range that may still be poisoned. */
static int damaged(struct ph_ctx *ctx, const struct ph_namespace *ns, const struct sns *s,
		   struct json_object **ret_owners, char ***ret_files, size_t *ret_nfiles)
{
	_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL; /* the results point into it */
	_cleanup_free_ struct ph_range *q = NULL;
	struct ph_map_result *res = NULL;
	struct ph_error err = { { 0 } };
	struct json_object *owners = json_object_new_array();
	char **files = NULL;
	size_t nq = 0, nf = 0;
	int r;

	*ret_owners = owners;
	*ret_files = NULL;
	*ret_nfiles = 0;
	if (!ns->blockdev || !owners)
		return 0;
	q = calloc(MAX(s->n, (size_t)1), sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		if (!healed(s->v[i].state))
			q[nq++] = (struct ph_range){ s->v[i].start, s->v[i].count };
	if (nq == 0)
		return 0;
	r = ph_pipeline_map(ctx, ns, q, nq, &m, &res, &err);
	if (r < 0) {
		cli_error("%s", err.message[0] ? err.message : strerror(-r));
		return r;
	}
	for (size_t i = 0; i < nq; i++)
		for (size_t k = 0; k < res[i].n_owners; k++) {
			const struct ph_owner *o = &res[i].owners[k];
			struct json_object *oj;

			if (ph_owner_to_json(o, &oj) == 0)
				json_object_array_add(owners, oj);
			for (size_t p = 0; o->type == PH_OWNER_FILE && p < o->n_paths; p++) {
				bool dup = false;

				for (size_t x = 0; x < nf; x++)
					dup = dup || strcmp(files[x], o->paths[p]) == 0;
				if (dup)
					continue;
				files = reallocarray(files, nf + 1, sizeof(*files));
				if (!files)
					return -ENOMEM;
				files[nf++] = strdup(o->paths[p]);
			}
		}
	ph_map_results_free(res, nq);
	*ret_files = files;
	*ret_nfiles = nf;
	return 0;
}

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s status [-v] [--json] [--state-dir DIR]\n\n"
		"Show pmem namespaces, whether they can clear poison, and their poisoned ranges.\n\n"
		"  -v, --verbose     also list the damaged files (maps every range)\n"
		"  --json            print JSON\n"
		"  --state-dir DIR   where the ledger lives (default %s)\n",
		program_name, PH_STATE_DIR);
}

static int count_intent(void *userdata, const struct ph_intent *it)
{
	(void)it;
	(*(int *)userdata)++;
	return 0;
}

/* One namespace as JSON; with verbose, its damaged files and owners
 * (taking *owners). */
static struct json_object *ns_json(const struct ph_topology *t, const struct ph_namespace *ns,
				   const struct ph_blkdev *b, const struct sns *s, bool verbose, char **files,
				   size_t nfiles, struct json_object **owners)
{
	const struct ph_region *rg = &t->regions[ns->region];
	const struct ph_bus *bus = &t->buses[rg->bus];
	struct json_object *j = json_object_new_object(), *ranges = json_object_new_array(),
			   *mounts = json_object_new_array();

	json_object_object_add(j, "name", ph_json_string(ns->name));
	json_object_object_add(j, "id", ph_json_string(ns->id));
	json_object_object_add(j, "mode", ph_json_string(ph_ns_mode_to_string(ns->mode)));
	json_object_object_add(j, "blockdev", ns->blockdev ? ph_json_string(ns->blockdev) : NULL);
	json_object_object_add(j, "chardev", ns->chardev ? ph_json_string(ns->chardev) : NULL);
	json_object_object_add(j, "size", json_object_new_int64((int64_t)ns->size));
	json_object_object_add(j, "start", ns->start == PH_UNKNOWN ? NULL :
			       json_object_new_int64((int64_t)ns->start));
	json_object_object_add(j, "data_offset", ns->data_offset == PH_UNKNOWN ? NULL :
			       json_object_new_int64((int64_t)ns->data_offset));
	json_object_object_add(j, "region", ph_json_string(rg->name));
	json_object_object_add(j, "bus", ph_json_string(bus->name));
	json_object_object_add(j, "provider", ph_json_string(bus->provider));
	json_object_object_add(j, "can_clear", json_object_new_boolean(bus->can_clear));
	json_object_object_add(j, "can_clear_reason",
			       bus->clear_reason ? ph_json_string(bus->clear_reason) : NULL);
	for (size_t p = 0; b && p < b->n_parts; p++) {
		struct json_object *mj;

		if (!b->parts[p].mount)
			continue;
		mj = json_object_new_object();
		json_object_object_add(mj, "device", ph_json_string(b->parts[p].node));
		json_object_object_add(mj, "mount", ph_json_string(b->parts[p].mount->mountpoint));
		json_object_object_add(mj, "fstype", ph_json_string(b->parts[p].mount->fstype));
		json_object_array_add(mounts, mj);
	}
	json_object_object_add(j, "mounts", mounts);
	for (size_t k = 0; k < s->n; k++) {
		struct json_object *rj = json_object_new_object();

		json_object_object_add(rj, "id", s->v[k].id ? json_object_new_int64(s->v[k].id) : NULL);
		json_object_object_add(rj, "sector", json_object_new_int64((int64_t)s->v[k].start));
		json_object_object_add(rj, "count", json_object_new_int64((int64_t)s->v[k].count));
		json_object_object_add(rj, "state", ph_json_string(ph_state_to_string(s->v[k].state)));
		json_object_object_add(rj, "in_kernel", json_object_new_boolean(s->v[k].in_kernel));
		json_object_object_add(rj, "in_ledger", json_object_new_boolean(s->v[k].in_ledger));
		json_object_object_add(rj, "origin", ph_json_string(s->v[k].origin));
		if (s->v[k].in_ledger) {
			json_object_object_add(rj, "first_seen_usec", json_object_new_int64((int64_t)s->v[k].first_seen));
			json_object_object_add(rj, "last_seen_usec", json_object_new_int64((int64_t)s->v[k].last_seen));
		}
		json_object_array_add(ranges, rj);
	}
	json_object_object_add(j, "ranges", ranges);
	if (verbose) {
		struct json_object *fj = json_object_new_array();

		for (size_t k = 0; k < nfiles; k++)
			json_object_array_add(fj, ph_json_string(files[k]));
		json_object_object_add(j, "files", fj);
		json_object_object_add(j, "owners", *owners);
		*owners = NULL;
	}
	return j;
}

/* -v: the damaged files and poisoned metadata of one namespace, as text. */
static void ns_print_damage(char **files, size_t nfiles, struct json_object *owners)
{
	if (nfiles > 0) {
		printf("errors: Permanent errors have been detected in the following files:\n\n");
		for (size_t k = 0; k < nfiles; k++)
			printf("        %s\n", cli_text(files[k]));
		printf("\n");
	}
	for (size_t k = 0; owners && k < json_object_array_length(owners); k++) {
		struct json_object *o = json_object_array_get_idx(owners, k), *v;

		if (json_object_object_get_ex(o, "type", &v) &&
		    strcmp(json_object_get_string(v), "metadata") == 0) {
			json_object_object_get_ex(o, "what", &v);
			printf("errors: filesystem metadata (%s) is poisoned: unmount and repair it "
			       "(xfs_repair, e2fsck)\n\n", cli_text(json_object_get_string(v)));
		}
	}
}

/* Region ranges outside every namespace, and lists that could not be
 * read, into the JSON document. */
static void scan_json(const struct ph_topology *t, const struct ph_scan *scan, struct json_object *doc)
{
	struct json_object *outside = json_object_new_array(), *errors = json_object_new_array();

	for (size_t i = 0; i < scan->n_outside; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "region", ph_json_string(t->regions[scan->outside[i].region].name));
		json_object_object_add(o, "sector", json_object_new_int64((int64_t)scan->outside[i].start));
		json_object_object_add(o, "count", json_object_new_int64((int64_t)scan->outside[i].count));
		json_object_object_add(o, "untranslated", json_object_new_boolean(scan->outside[i].untranslated));
		json_object_array_add(outside, o);
	}
	for (size_t i = 0; i < scan->n_errors; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "device", ph_json_string(scan->errors[i].device));
		json_object_object_add(o, "path", ph_json_string(scan->errors[i].path));
		json_object_object_add(o, "message", ph_json_string(scan->errors[i].message));
		json_object_array_add(errors, o);
	}
	json_object_object_add(doc, "outside", outside);
	json_object_object_add(doc, "errors", errors);
}

static void scan_print(const struct ph_topology *t, const struct ph_scan *scan)
{
	for (size_t i = 0; i < scan->n_outside; i++)
		printf("  %s: sectors %" PRIu64 "+%" PRIu64 " poisoned %s\n",
		       t->regions[scan->outside[i].region].name, scan->outside[i].start, scan->outside[i].count,
		       scan->outside[i].untranslated ? "(cannot place it in a namespace without root)"
						     : "outside every namespace's data");
}

struct status_args {
	const char *state_dir;
	bool json, verbose;
};

/* Options into *a: EXIT_OK to go on, -1 after --help, or an exit status. */
static int status_parse(int argc, char *argv[], struct status_args *a)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' },
		{},
	};
	int c;

	*a = (struct status_args){ .state_dir = PH_STATE_DIR };
	optind = 0;
	while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return -1;
		case 'v':
			a->verbose = true;
			break;
		case 'j':
			a->json = true;
			break;
		case 's':
			a->state_dir = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("status takes no arguments; see '%s status --help'", program_name);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int verb_status(int argc, char *argv[])
{
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(ph_topology_freep) struct ph_topology *t = NULL;
	_cleanup_(ph_ledger_freep) struct ph_ledger *l = NULL;
	_cleanup_(ph_scan_freep) struct ph_scan *scan = NULL;
	int pending = 0;
	struct json_object *doc = NULL, *jns = NULL;
	struct ph_error lerr = { { 0 } };
	struct status_args a;
	int r, ret = EXIT_OK;

	r = status_parse(argc, argv, &a);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	if (cli_ctx_new(&ctx) < 0)
		return EXIT_FAIL;
	r = ph_topology_load(ctx, &t);
	if (r < 0) {
		cli_error("cannot enumerate pmem devices: %s", strerror(-r));
		return EXIT_FAIL;
	}
	r = ph_source_scan(ctx, t, &scan);
	if (r < 0) {
		cli_error("cannot read the badblocks lists: %s", strerror(-r));
		return EXIT_FAIL;
	}
	r = ph_ledger_open(ctx, a.state_dir, PH_LEDGER_READONLY, &l, &lerr);
	if (r < 0 && !a.json)
		cli_notice("%s", lerr.message);
	if (l && ph_ledger_intents_running(l, count_intent, &pending) < 0)
		pending = -1;
	if (!a.json && pending > 0)
		printf("%d page repair%s interrupted (a crash or a kill): `pmemheal repair` or pmemheald finishes %s\n",
		       pending, pending == 1 ? " was" : "s were", pending == 1 ? "it" : "them");

	if (a.json) {
		doc = json_object_new_object();
		jns = json_object_new_array();
		json_object_object_add(doc, "ledger", l ? ph_json_string(ph_ledger_get_path(l)) : NULL);
		json_object_object_add(doc, "ledger_error", l ? NULL : ph_json_string(lerr.message));
		json_object_object_add(doc, "pending_repairs", pending < 0 ? NULL : json_object_new_int(pending));
		json_object_object_add(doc, "namespaces", jns);
	} else if (t->n_namespaces == 0)
		printf("no pmem namespaces found\n");

	for (size_t i = 0; i < t->n_namespaces; i++) {
		const struct ph_namespace *ns = &t->namespaces[i];
		_cleanup_(ph_blkdev_freep) struct ph_blkdev *b = NULL;
		struct json_object *owners = NULL;
		char **files = NULL;
		size_t nfiles = 0;
		struct sns s = { 0 };

		if (ns->blockdev && ph_blkdev_open_name(ctx, ns->blockdev, &b) < 0)
			b = NULL;
		r = collect(l, ns, scan, &s);
		if (r < 0) {
			cli_error("%s: cannot read the ledger: %s", ns->name, strerror(-r));
			ret = EXIT_FAIL;
		}
		if (a.verbose && damaged(ctx, ns, &s, &owners, &files, &nfiles) < 0)
			ret = EXIT_FAIL;
		if (a.json)
			json_object_array_add(jns, ns_json(t, ns, b, &s, a.verbose, files, nfiles, &owners));
		else {
			print_ns(t, ns, b, &s);
			if (a.verbose)
				ns_print_damage(files, nfiles, owners);
		}
		json_object_put(owners);
		for (size_t k = 0; k < nfiles; k++)
			free(files[k]);
		free(files);
		free(s.v);
	}
	if (a.json) {
		scan_json(t, scan, doc);
		puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else
		scan_print(t, scan);
	if (scan->n_errors > 0 && ret == EXIT_OK)
		ret = EXIT_PARTIAL;
	return ret;
}
