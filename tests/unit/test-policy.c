/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy: the UAPI layout (same name overrides, name order), first match
 * wins, '**' globs, Source= templates, and bad rules reported with
 * file:line, all of them, with no policy returned.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <cmocka.h>

#include "faketree.h"
#include "policy.h"

static const char *const dirs[] = { "/etc/pmemheal", "/run/pmemheal", "/usr/lib/pmemheal" };

static struct ph_policy *load(const char *root, struct ph_policy_errors *e, int expect)
{
	struct ph_ctx *ctx;
	struct ph_policy *p = NULL;

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	assert_int_equal(ph_policy_load(ctx, dirs, 3, &p, e), expect);
	ph_ctx_unref(ctx);
	return p;
}

static void test_globs(void **state)
{
	const char *why;

	assert_true(ph_glob_match("/srv/db/*.wal", "/srv/db/a.wal"));
	assert_false(ph_glob_match("/srv/db/*.wal", "/srv/db/x/a.wal")); /* '*' stays in a component */
	assert_true(ph_glob_match("/srv/**/db", "/srv/db"));
	assert_true(ph_glob_match("/srv/**/db", "/srv/a/b/c/db"));
	assert_false(ph_glob_match("/srv/**/db", "/srv/a/dbx"));
	assert_true(ph_glob_match("/srv/**", "/srv/any/depth/file"));
	assert_true(ph_glob_match("/**", "/x"));
	assert_true(ph_glob_match("/data/file[0-9].bin", "/data/file7.bin"));
	assert_false(ph_glob_match("/data/*", "/data/.hidden")); /* like the shell */
	assert_false(ph_glob_match("relative/*", "relative/x"));

	assert_int_equal(ph_glob_check("/srv/**/db", &why), 0);
	assert_int_equal(ph_glob_check("/srv/a**", &why), -EINVAL);
	assert_non_null(strstr(why, "whole path component"));
	assert_int_equal(ph_glob_check("/srv/[abc", &why), -EINVAL);
	assert_non_null(strstr(why, "unterminated"));
	assert_int_equal(ph_glob_check("srv/*", &why), -EINVAL);
}

/* The matcher as it was before it became linear: recursive, one level per
 * '**', exponential in their number.  Kept here as the reference for the
 * meaning of a glob. */
static bool ref_parts(char **pat, size_t np, char **path, size_t nq)
{
	if (np == 0)
		return nq == 0;
	if (strcmp(pat[0], "**") == 0) {
		for (size_t skip = 0; skip <= nq; skip++)
			if (ref_parts(pat + 1, np - 1, path + skip, nq - skip))
				return true;
		return false;
	}
	if (nq == 0 || fnmatch(pat[0], path[0], FNM_PERIOD) != 0)
		return false;
	return ref_parts(pat + 1, np - 1, path + 1, nq - 1);
}

static size_t ref_split(char *s, char **parts, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(s, "/", &save); t && n < max; t = strtok_r(NULL, "/", &save))
		parts[n++] = t;
	return n;
}

static bool ref_match(const char *pattern, const char *path)
{
	char p[4096], q[4096], *pp[256], *qq[256];
	size_t np, nq;

	if (pattern[0] != '/' || path[0] != '/')
		return false;
	snprintf(p, sizeof(p), "%s", pattern);
	snprintf(q, sizeof(q), "%s", path);
	np = ref_split(p, pp, 256);
	nq = ref_split(q, qq, 256);
	return ref_parts(pp, np, qq, nq);
}

/* A table of patterns and paths: the new matcher means what the old one did. */
static void test_glob_table(void **state)
{
	static const char *const pats[] = {
		"/", "/**", "/*", "/srv/**", "/srv/**/db", "/srv/*/db", "/srv/**/*.wal",
		"/**/db/**", "/**/**", "/srv/**/**/db", "/srv/**/a/**/b", "/*/**/*",
		"/srv/.*", "/srv/**/.*", "/srv/[a-c]*", "/srv/?", "/srv/\\*", "/srv//db",
		"/srv/db/", "/.hidden/**", "/**/.x", "/srv/**/db/**/*.wal", "relative/**",
	};
	static const char *const paths[] = {
		"/", "/srv", "/srv/db", "/srv/a/db", "/srv/a/b/c/db", "/srv/dbx", "/srv/a/dbx",
		"/srv/db/a.wal", "/srv/db/x/a.wal", "/srv/.hidden", "/srv/.hidden/db",
		"/srv/a/b", "/srv/a/x/b", "/srv/b/a", "/srv/*", "/srv/c", "/srv/cc",
		"//srv//db", "/srv/db/", "/.hidden/x", "/a/.x", "/x/db/y/z.wal", "relative/x",
	};

	for (size_t i = 0; i < ELEMENTSOF(pats); i++)
		for (size_t k = 0; k < ELEMENTSOF(paths); k++)
			if (ph_glob_match(pats[i], paths[k]) != ref_match(pats[i], paths[k]))
				fail_msg("'%s' on '%s': %d, was %d", pats[i], paths[k],
					 ph_glob_match(pats[i], paths[k]), ref_match(pats[i], paths[k]));
}

/* Random patterns and paths from small alphabets, so that matches are
 * frequent, against the reference.  The seed is fixed: a failure repeats. */
static void test_glob_random(void **state)
{
	static const char *const pc[] = { "**", "**", "*", "a", "b", "?", "[ab]", ".*", "*a", "a*", "[!a]*", "" };
	static const char *const qc[] = { "a", "b", ".a", "ab", "ba", "c", "" };
	unsigned seed = 12345;
	unsigned matched = 0;

	for (int round = 0; round < 20000; round++) {
		char pat[256] = "", path[256] = "";
		int np = rand_r(&seed) % 8, nq = rand_r(&seed) % 9;

		for (int i = 0; i < np; i++) {
			strcat(pat, "/");
			strcat(pat, pc[rand_r(&seed) % ELEMENTSOF(pc)]);
		}
		for (int i = 0; i < nq; i++) {
			strcat(path, "/");
			strcat(path, qc[rand_r(&seed) % ELEMENTSOF(qc)]);
		}
		if (!pat[0])
			strcpy(pat, "/");
		if (!path[0])
			strcpy(path, "/");
		if (ph_glob_match(pat, path) != ref_match(pat, path))
			fail_msg("'%s' on '%s': %d, was %d", pat, path, ph_glob_match(pat, path),
				 ref_match(pat, path));
		matched += ref_match(pat, path);
	}
	assert_true(matched > 1000); /* the inputs did exercise matches */
}

/* Many '**' and '*' against a deep path that almost matches: the old matcher
 * tried every way to spread the path over the '**' (C(n+k, k) of them). */
static void test_glob_many_stars(void **state)
{
	char pat[4096] = "", path[4096] = "";
	uint64_t steps = 0;

	for (int i = 0; i < 40; i++)
		strcat(pat, "/**/*");
	strcat(pat, "/x");
	for (int i = 0; i < 200; i++)
		strcat(path, "/a");
	strcat(path, "/y");
	assert_false(ph_glob_match_steps(pat, path, &steps));
	/* at most one comparison per (pattern, path) component pair, plus the ends */
	assert_true(steps <= (81 + 1) * (201 + 1));
	path[strlen(path) - 1] = 'x';
	assert_true(ph_glob_match_steps(pat, path, &steps));

	/* '*' runs inside one component, long component names */
	strcpy(pat, "/srv/**/");
	for (int i = 0; i < 60; i++)
		strcat(pat, "*a");
	strcat(pat, "*b/**");
	strcpy(path, "/srv");
	for (int i = 0; i < 19; i++) {
		size_t n = strlen(path);

		path[n] = '/';
		memset(path + n + 1, 'a', 200);
		path[n + 201] = '\0';
	}
	strcat(path, "/end");
	assert_false(ph_glob_match(pat, path));
}

static void test_layout(void **state)
{
	char *root = fake_root_new();
	struct ph_policy *p;
	const struct ph_rule *r;

	/* vendor defaults */
	fake_write(root, "/usr/lib/pmemheal/pmemheald.conf", "[Daemon]\nRescanIntervalSec=120\n");
	fake_write(root, "/usr/lib/pmemheal/rules.d/50-db.rule",
		   "[Match]\nPath=/srv/db/*\n[Repair]\nAction=salvage\n");
	fake_write(root, "/usr/lib/pmemheal/rules.d/90-all.rule",
		   "[Match]\nPath=/**\n[Repair]\nAction=report\n");
	/* the admin's 50-db.rule replaces the vendor's; 10-wal.rule comes first */
	fake_write(root, "/etc/pmemheal/rules.d/50-db.rule",
		   "# admin\n[Match]\nPath=/srv/db/*.dat\n  /srv/db/*.idx\n[Repair]\nAction=restore\n"
		   "Source=/backup/%r\nFallback=zero\nOnShared=separate\n");
	fake_write(root, "/etc/pmemheal/rules.d/10-wal.rule",
		   "[Match]\nPath=/srv/db/*.wal ; logs\n[Repair]\nAction=exec\nHook=/usr/bin/regen --page\n"
		   "HookTimeoutSec=5\nFallback=quarantine\n");
	fake_write(root, "/etc/pmemheal/pmemheald.conf.d/10-fast.conf", "[Daemon]\nRescanIntervalSec=15\n");
	fake_write(root, "/etc/pmemheal/rules.d/README", "not a rule");

	p = load(root, NULL, 0);
	assert_int_equal(p->n_rules, 3);
	assert_int_equal(p->conf.rescan_usec, 15 * 1000000ULL); /* the drop-in wins */
	assert_int_equal(p->n_conf_files, 2);

	r = ph_policy_match(p, "/srv/db/a.wal");
	assert_string_equal(r->name, "10-wal.rule");
	assert_int_equal(r->action, PH_ACTION_EXEC);
	assert_int_equal(r->n_hook, 2);
	assert_string_equal(r->hook[1], "--page");
	assert_int_equal(r->hook_timeout_usec, 5 * 1000000ULL);

	r = ph_policy_match(p, "/srv/db/t.idx");
	assert_string_equal(r->name, "50-db.rule");
	assert_non_null(strstr(r->file, "/etc/pmemheal/rules.d/50-db.rule"));
	assert_int_equal(r->match_line, 3);
	assert_int_equal(r->action, PH_ACTION_RESTORE);
	assert_int_equal(r->action_line, 6);
	assert_int_equal(r->n_globs, 2); /* the continuation line adds a pattern */
	assert_true(r->has_fallback);
	assert_int_equal(r->fallback, PH_ACTION_ZERO);
	assert_int_equal(r->on_shared, PH_SHARED_SEPARATE);

	/* the vendor's 50-db.rule is masked: a .log in /srv/db falls through */
	r = ph_policy_match(p, "/srv/db/x.log");
	assert_string_equal(r->name, "90-all.rule");
	assert_int_equal(r->action, PH_ACTION_REPORT);
	ph_policy_free(p);
	fake_root_free(root);
}

/* An empty file or a symlink to /dev/null masks the vendor's rule of that
 * name: it is no rule at all, and no error. */
static void test_mask(void **state)
{
	char *root = fake_root_new();
	_cleanup_free_ char *link = NULL;
	struct ph_policy *p;

	fake_write(root, "/usr/lib/pmemheal/rules.d/50-db.rule", "[Match]\nPath=/srv/db/*\n[Repair]\nAction=zero\n");
	fake_write(root, "/usr/lib/pmemheal/rules.d/60-tmp.rule", "[Match]\nPath=/tmp/*\n[Repair]\nAction=delete\n");
	fake_write(root, "/etc/pmemheal/rules.d/50-db.rule", "");
	assert_int_equal(asprintf(&link, "%s/etc/pmemheal/rules.d/60-tmp.rule", root) > 0, true);
	assert_int_equal(symlink("/dev/null", link), 0);
	p = load(root, NULL, 0);
	assert_int_equal(p->n_rules, 0);
	assert_null(ph_policy_match(p, "/srv/db/x"));
	assert_null(ph_policy_match(p, "/tmp/x"));
	ph_policy_free(p);
	fake_root_free(root);
}

static void test_empty(void **state)
{
	char *root = fake_root_new();
	struct ph_policy *p = load(root, NULL, 0);

	assert_int_equal(p->n_rules, 0);
	assert_null(ph_policy_match(p, "/x")); /* no rule: report */
	assert_int_equal(p->conf.rescan_usec, 60 * 1000000ULL);
	assert_int_equal(p->conf.scrub_usec, 0); /* no scheduled scrubs */
	assert_null(p->conf.metrics_file);
	ph_policy_free(p);
	fake_root_free(root);
}

static void test_daemon_keys(void **state)
{
	char *root = fake_root_new();
	struct ph_policy *p;

	fake_write(root, "/usr/lib/pmemheal/pmemheald.conf",
		   "[Daemon]\nScrubIntervalSec=86400\nMetricsFile=/var/lib/node/pmemheal.prom\n");
	p = load(root, NULL, 0);
	assert_int_equal(p->conf.scrub_usec, 86400 * 1000000ULL);
	assert_string_equal(p->conf.metrics_file, "/var/lib/node/pmemheal.prom");
	ph_policy_free(p);

	/* an empty value in a drop-in turns the metrics off again */
	fake_write(root, "/etc/pmemheal/pmemheald.conf.d/50-quiet.conf", "[Daemon]\nMetricsFile=\n");
	p = load(root, NULL, 0);
	assert_null(p->conf.metrics_file);
	ph_policy_free(p);
	fake_root_free(root);
}

static void test_source(void **state)
{
	struct ph_rule r = { .source = "/backup/%r/%f.%%" };
	char *s;

	assert_int_equal(ph_rule_expand_source(&r, "/mnt/pm/db/t.dat", "/mnt/pm", &s), 0);
	assert_string_equal(s, "/backup/db/t.dat/t.dat.%");
	free(s);
	r.source = "/b%p";
	assert_int_equal(ph_rule_expand_source(&r, "/mnt/pm/a", "/mnt/pm", &s), 0);
	assert_string_equal(s, "/b/mnt/pm/a");
	free(s);
	r.source = "/b/%x";
	assert_int_equal(ph_rule_expand_source(&r, "/a", "/", &s), -EINVAL);
}

static bool has_error(const struct ph_policy_errors *e, const char *file_end, unsigned line, const char *part)
{
	for (size_t i = 0; i < e->n; i++) {
		size_t fl = strlen(e->v[i].file), el = strlen(file_end);

		if (fl >= el && strcmp(e->v[i].file + fl - el, file_end) == 0 && e->v[i].line == line &&
		    strstr(e->v[i].message, part))
			return true;
	}
	return false;
}

static void dump(const struct ph_policy_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		print_message("  %s:%u: %s\n", e->v[i].file, e->v[i].line, e->v[i].message);
}

#define EXPECT(file, line, part)                                        \
	do {                                                            \
		if (!has_error(&e, file, line, part)) {                 \
			dump(&e);                                       \
			fail_msg("no error %s:%u: ...%s...", file, line, part); \
		}                                                       \
	} while (0)

static void test_errors(void **state)
{
	char *root = fake_root_new(), long_line[400];
	struct ph_policy_errors e = { 0 };

	fake_write(root, "/etc/pmemheal/rules.d/10-key.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=salvage\nColour=blue\n");
	fake_write(root, "/etc/pmemheal/rules.d/20-action.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=shred\n");
	fake_write(root, "/etc/pmemheal/rules.d/30-glob.rule",
		   "[Match]\nPath=/srv/db** /ok/*\n[Repair]\nAction=zero\n");
	fake_write(root, "/etc/pmemheal/rules.d/40-source.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=restore\n");
	fake_write(root, "/etc/pmemheal/rules.d/50-twice.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=zero\nAction=salvage\n");
	fake_write(root, "/etc/pmemheal/rules.d/60-hook.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=exec\nHook=regen\nHookTimeoutSec=0\n");
	fake_write(root, "/etc/pmemheal/rules.d/70-section.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=zero\n[Extra]\nX=1\n");
	fake_write(root, "/etc/pmemheal/rules.d/80-syntax.rule",
		   "[Match]\nPath=/a/*\nthis is not a key\n[Repair]\nAction=zero\n");
	memset(long_line, 'x', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	{
		char text[600];

		snprintf(text, sizeof(text), "[Match]\nPath=/a/%s\n[Repair]\nAction=zero\n", long_line);
		fake_write(root, "/etc/pmemheal/rules.d/85-long.rule", text);
	}
	fake_write(root, "/etc/pmemheal/rules.d/90-nothing.rule", "[Repair]\nAction=zero\n");
	fake_write(root, "/etc/pmemheal/rules.d/95-badsource.rule",
		   "[Match]\nPath=/a/*\n[Repair]\nAction=restore\nSource=/b/%q\n");
	fake_write(root, "/etc/pmemheal/pmemheald.conf",
		   "[Daemon]\nRescanIntervalSec=soon\nMetricsFile=metrics.prom\nScrubIntervalSec=-1\n");

	assert_null(load(root, &e, -EINVAL));
	EXPECT("10-key.rule", 5, "unknown key 'Colour' in [Repair]");
	EXPECT("20-action.rule", 4, "unknown action 'shred'");
	EXPECT("30-glob.rule", 2, "bad pattern '/srv/db**'");
	EXPECT("40-source.rule", 4, "Action=restore needs Source=");
	EXPECT("50-twice.rule", 5, "Action= set twice (first on line 4)");
	EXPECT("60-hook.rule", 5, "absolute program path");
	EXPECT("60-hook.rule", 6, "HookTimeoutSec=");
	EXPECT("70-section.rule", 6, "unknown section [Extra]"); /* at its first key */
	EXPECT("80-syntax.rule", 3, "syntax error");
	EXPECT("85-long.rule", 2, "line longer than");
	EXPECT("90-nothing.rule", 0, "no [Match] Path=");
	EXPECT("95-badsource.rule", 5, "unknown '%q'");
	EXPECT("pmemheald.conf", 2, "RescanIntervalSec= must be a number");
	EXPECT("pmemheald.conf", 3, "MetricsFile= must be an absolute path");
	EXPECT("pmemheald.conf", 4, "ScrubIntervalSec= must be a number");
	ph_policy_errors_done(&e);
	fake_root_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_glob_table),
		cmocka_unit_test(test_glob_random),
		cmocka_unit_test(test_glob_many_stars),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_daemon_keys),
		cmocka_unit_test(test_source),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
