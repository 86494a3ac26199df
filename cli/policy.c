/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal policy PATH...: which rule applies to each file (its file and
 * line), the action, and what a repair of that file would do where it
 * lives: on which bus (can it clear?), on which filesystem (reflink?).
 * With rules that have errors it prints them, file:line each, and fails.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "escape.h"
#include "planner.h"
#include "platform.h"
#include "policy.h"

int cli_policy_load(struct ph_ctx *ctx, char **dirs, size_t n_dirs, struct ph_policy **ret)
{
	struct ph_policy_errors errs = { 0 };
	_cleanup_free_ char *cwd = NULL;
	char **abs = NULL;
	int r;

	/* --config-dir DIR relative to where the command runs (the library
	 * resolves absolute paths only). */
	abs = calloc(n_dirs + 1, sizeof(char *));
	if (!abs)
		return EXIT_FAIL;
	for (size_t i = 0; i < n_dirs; i++) {
		if (dirs[i][0] != '/' && !cwd && !(cwd = getcwd(NULL, 0))) {
			cli_error("--config-dir %s: cannot resolve a relative path: %m", dirs[i]);
			r = -errno;
			goto done;
		}
		if (dirs[i][0] == '/' ? !(abs[i] = strdup(dirs[i])) : asprintf(&abs[i], "%s/%s", cwd, dirs[i]) < 0) {
			abs[i] = NULL;
			r = -ENOMEM;
			goto done;
		}
	}
	r = ph_policy_load(ctx, n_dirs ? (const char *const *)abs : NULL, n_dirs, ret, &errs);
done:
	for (size_t i = 0; i < n_dirs; i++)
		free(abs[i]);
	free(abs);
	for (size_t i = 0; i < errs.n; i++) {
		if (errs.v[i].line)
			fprintf(stderr, "%s:%u: %s\n", cli_text(errs.v[i].file), errs.v[i].line,
				cli_text(errs.v[i].message));
		else
			fprintf(stderr, "%s: %s\n", cli_text(errs.v[i].file), cli_text(errs.v[i].message));
	}
	if (r == -EINVAL && errs.n == 0)
		cli_error("the configuration could not be read (no file or line to blame)");
	ph_policy_errors_done(&errs);
	if (r == -EINVAL)
		return EXIT_POLICY;
	if (r < 0) {
		cli_error("cannot load the configuration: %s", strerror(-r));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s policy [--json] [--config-dir DIR]... PATH...\n\n"
		"Show the rule that applies to each file and what a repair of it would do here.\n\n"
		"  --json              print JSON\n"
		"  --config-dir DIR    read the configuration from DIR instead of /etc/pmemheal,\n"
		"                      /run/pmemheal and /usr/lib/pmemheal (repeat: most important first)\n",
		program_name);
}

/* What applies to one file, as JSON. */
static struct json_object *place_json(const struct ph_place *place, const struct ph_rule *rule, const char *source,
				      const char *what)
{
	struct json_object *j = json_object_new_object(), *fs = json_object_new_object(), *pm = NULL;

	json_object_object_add(j, "path", ph_json_string(place->path));
	if (rule) {
		struct json_object *rj = json_object_new_object();

		json_object_object_add(rj, "file", ph_json_string(rule->file));
		json_object_object_add(rj, "line", json_object_new_int((int)rule->match_line));
		json_object_object_add(rj, "name", ph_json_string(rule->name));
		json_object_object_add(j, "rule", rj);
	} else
		json_object_object_add(j, "rule", NULL);
	json_object_object_add(j, "action", ph_json_string(ph_action_to_string(rule ? rule->action : PH_ACTION_REPORT)));
	json_object_object_add(j, "source", source ? ph_json_string(source) : NULL);
	json_object_object_add(j, "fallback", rule && rule->has_fallback ?
			       ph_json_string(ph_action_to_string(rule->fallback)) : NULL);
	json_object_object_add(j, "on_shared", ph_json_string(ph_on_shared_to_string(rule ? rule->on_shared : PH_SHARED_TOGETHER)));
	json_object_object_add(fs, "mount", ph_json_string(place->mountpoint));
	json_object_object_add(fs, "fstype", ph_json_string(place->fstype));
	json_object_object_add(fs, "reflink", json_object_new_boolean(place->reflink));
	json_object_object_add(fs, "block_size", json_object_new_int((int)place->block_size));
	json_object_object_add(fs, "dax", json_object_new_boolean(place->dax));
	json_object_object_add(j, "filesystem", fs);
	if (place->ns) {
		pm = json_object_new_object();
		json_object_object_add(pm, "namespace", ph_json_string(place->ns->name));
		json_object_object_add(pm, "device", ph_json_string(place->ns->blockdev));
		json_object_object_add(pm, "provider", ph_json_string(place->bus->provider));
		json_object_object_add(pm, "can_clear", json_object_new_boolean(place->bus->can_clear));
		json_object_object_add(pm, "can_clear_reason", ph_json_string(place->bus->clear_reason));
	}
	json_object_object_add(j, "pmem", pm);
	json_object_object_add(j, "repair", ph_json_string(place->ns ? what : "none: the file is not on pmem"));
	return j;
}

/* What applies to one file, as text. */
static void place_print(const struct ph_place *place, const struct ph_rule *rule, const char *source,
			const char *what)
{
	printf("%s\n", cli_text(place->path));
	if (rule)
		printf("      rule: %s:%u (%s)\n", cli_text(rule->file), rule->match_line, cli_text(rule->name));
	else
		printf("      rule: none matches: report only\n");
	printf("    action: %s", ph_action_to_string(rule ? rule->action : PH_ACTION_REPORT));
	if (source)
		printf(", source %s", cli_text(source));
	if (rule && rule->has_fallback)
		printf(", fallback %s", ph_action_to_string(rule->fallback));
	if (rule && rule->action == PH_ACTION_EXEC)
		printf(", hook %s", cli_text(rule->hook[0]));
	printf(", sharers %s\n", ph_on_shared_to_string(rule ? rule->on_shared : PH_SHARED_TOGETHER));
	printf("filesystem: %s on %s (%s, %u-byte blocks%s%s)\n", cli_text(place->fstype),
	       cli_text(place->mountpoint),
	       place->reflink ? "reflink" : "no reflink", place->block_size,
	       place->dax ? ", DAX" : "", place->fsnode ? "" : "");
	if (place->ns)
		printf("      pmem: %s, /dev/%s on %s %s: %s (%s)\n", place->ns->name, place->ns->blockdev,
		       place->bus->name, place->bus->provider, place->bus->can_clear ? "can clear" : "cannot clear",
		       cli_text(place->bus->clear_reason));
	else
		printf("      pmem: none (%s is not on a pmem device: pmemheal never repairs it)\n",
		       cli_text(place->fsnode));
	if (place->ns)
		printf("  a repair: %s\n", cli_text(what));
	printf("\n");
}

int verb_policy(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "config-dir", required_argument, NULL, 'c' },
		{},
	};
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(ph_policy_freep) struct ph_policy *policy = NULL;
	_cleanup_(ph_topology_freep) struct ph_topology *topo = NULL;
	_cleanup_free_ char **dirs = NULL;
	struct json_object *out = NULL;
	size_t n_dirs = 0;
	bool json = false;
	int c, k, ret = EXIT_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return EXIT_OK;
		case 'j':
			json = true;
			break;
		case 'c':
			if (!cli_strv_push(&dirs, &n_dirs, optarg))
				return EXIT_FAIL;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_error("policy needs at least one PATH; see '%s policy --help'", program_name);
		return EXIT_USAGE;
	}
	if (cli_ctx_new(&ctx) < 0)
		return EXIT_FAIL;
	k = cli_policy_load(ctx, dirs, n_dirs, &policy);
	if (k != EXIT_OK)
		return k;
	if (ph_topology_load(ctx, &topo) < 0)
		topo = NULL; /* no pmem here: still say which rule applies */
	if (json)
		out = json_object_new_array();

	for (int i = optind; i < argc; i++) {
		struct ph_place place = { 0 };
		struct ph_error err = { { 0 } };
		const struct ph_rule *rule;
		_cleanup_free_ char *what = NULL, *source = NULL;
		bool can_clear;

		k = ph_place_find(ctx, topo, argv[i], &place, &err);
		if (k < 0) {
			cli_error("%s", err.message);
			ret = k == -ENOENT ? EXIT_NO_DEVICE : EXIT_FAIL;
			continue;
		}
		rule = ph_policy_match(policy, place.path);
		can_clear = place.bus && place.bus->can_clear;
		if (ph_plan_describe_rule(rule, can_clear, place.reflink, &what) < 0) {
			ph_place_done(&place);
			return EXIT_FAIL;
		}
		if (rule && rule->source)
			(void)ph_rule_expand_source(rule, place.path, place.mountpoint, &source);

		if (json)
			json_object_array_add(out, place_json(&place, rule, source, what));
		else
			place_print(&place, rule, source, what);
		ph_place_done(&place);
	}
	if (json) {
		puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(out);
	}
	return ret;
}
