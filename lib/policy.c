/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Policy loading.  inih calls us back per key; our own line reader counts
 * lines (so every message carries file:line) and refuses lines longer than
 * inih can hold, which it would otherwise split silently.  A continuation
 * line (indented) of Path= adds patterns; any other key given twice in one
 * file is an error rather than a silent override.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "range.h"

#define DEFAULT_RESCAN_USEC (60 * 1000000ULL)
#define DEFAULT_HOOK_TIMEOUT_USEC (30 * 1000000ULL)
#define MAX_LINE 200 /* inih's INI_MAX_LINE */

static const char *const default_dirs[] = { PH_CONF_DIR, "/run/pmemheal", PH_VENDOR_CONF_DIR };

static const char *const action_names[_PH_ACTION_MAX] = {
	[PH_ACTION_REPORT] = "report",   [PH_ACTION_SALVAGE] = "salvage",
	[PH_ACTION_ZERO] = "zero",       [PH_ACTION_RESTORE] = "restore",
	[PH_ACTION_PUNCH] = "punch",     [PH_ACTION_QUARANTINE] = "quarantine",
	[PH_ACTION_DELETE] = "delete",   [PH_ACTION_EXEC] = "exec",
};

_public_ const char *ph_action_to_string(enum ph_action a)
{
	return a < _PH_ACTION_MAX ? action_names[a] : "?";
}

_public_ int ph_action_from_string(const char *s, enum ph_action *ret)
{
	for (int i = 0; s && i < _PH_ACTION_MAX; i++)
		if (strcmp(s, action_names[i]) == 0) {
			*ret = (enum ph_action)i;
			return 0;
		}
	return -EINVAL;
}

_public_ const char *ph_on_shared_to_string(enum ph_on_shared s)
{
	return s == PH_SHARED_SEPARATE ? "separate" : "together";
}

/* ---- globs ------------------------------------------------------------- */

_public_ int ph_glob_check(const char *pattern, const char **ret_reason)
{
	const char *reason = NULL;
	int depth = 0;

	if (!pattern || pattern[0] != '/')
		reason = "patterns must be absolute paths";
	for (const char *p = pattern; !reason && *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '[')
			depth++;
		else if (*p == ']' && depth > 0)
			depth--;
		else if (p[0] == '*' && p[1] == '*' &&
			 ((p > pattern && p[-1] != '/') || (p[2] && p[2] != '/')))
			reason = "'**' must be a whole path component (as in /srv/**/db)";
	}
	if (!reason && depth > 0)
		reason = "unterminated '[' in the pattern";
	if (ret_reason)
		*ret_reason = reason;
	return reason ? -EINVAL : 0;
}

/* Split an absolute path at '/' in place, empty components dropped.  The
 * array holds every component: a deep path is never cut short. */
static int split(char *s, char ***ret, size_t *ret_n)
{
	size_t n = 0, max = 1;
	char *save = NULL;
	char **parts;

	for (const char *c = s; *c; c++)
		max += *c == '/';
	parts = calloc(max, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	for (char *t = strtok_r(s, "/", &save); t; t = strtok_r(NULL, "/", &save))
		parts[n++] = t;
	*ret = parts;
	*ret_n = n;
	return 0;
}

/* Pattern components against path components: a "**" component matches any
 * run of components (none included), any other one exactly one component,
 * through fnmatch().  This is wildcard matching with components as letters,
 * so the classic two-pointer walk applies: on a mismatch, go back to just
 * after the last "**" only, and let it swallow one more component.  An
 * earlier "**" never needs to be revisited (whatever it would take, the
 * later one can take instead), so the work is at most np * nq comparisons
 * where trying every split was exponential in the number of "**". */
static bool match_parts(char **pat, size_t np, char **path, size_t nq, uint64_t *steps)
{
	size_t pi = 0, qi = 0, star = SIZE_MAX, mark = 0;

	while (qi < nq) {
		(*steps)++;
		if (pi < np && strcmp(pat[pi], "**") == 0) {
			star = pi++;
			mark = qi;
		} else if (pi < np && fnmatch(pat[pi], path[qi], FNM_PERIOD) == 0) {
			pi++;
			qi++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			qi = ++mark;
		} else
			return false;
	}
	while (pi < np && strcmp(pat[pi], "**") == 0)
		pi++;
	return pi == np;
}

bool ph_glob_match_steps(const char *pattern, const char *path, uint64_t *ret_steps)
{
	_cleanup_free_ char *p = NULL, *q = NULL;
	_cleanup_free_ char **pp = NULL, **qq = NULL;
	size_t np, nq;

	*ret_steps = 0;
	if (!pattern || !path || pattern[0] != '/' || path[0] != '/')
		return false;
	p = strdup(pattern);
	q = strdup(path);
	if (!p || !q || split(p, &pp, &np) < 0 || split(q, &qq, &nq) < 0)
		return false;
	return match_parts(pp, np, qq, nq, ret_steps);
}

_public_ bool ph_glob_match(const char *pattern, const char *path)
{
	uint64_t steps;

	return ph_glob_match_steps(pattern, path, &steps);
}

/* ---- loading ----------------------------------------------------------- */

struct parse {
	struct ph_ctx *ctx;
	const char *file;
	FILE *f;
	unsigned line;
	bool too_long;
	struct ph_policy_errors *errs;
	struct ph_config *conf; /* parsing pmemheald.conf */
	struct ph_rule *rule;   /* parsing a rule */
	unsigned seen[16];      /* line a key was first set on, per key id */
};

static int add_error(struct ph_policy_errors *e, const char *file, unsigned line, const char *fmt, ...)
	_printf_(4, 5);
static int add_error(struct ph_policy_errors *e, const char *file, unsigned line, const char *fmt, ...)
{
	struct ph_policy_error *v;
	va_list ap;
	int k;

	if (!e)
		return 0;
	v = reallocarray(e->v, e->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	e->v = v;
	v += e->n;
	*v = (struct ph_policy_error){ .file = strdup(file), .line = line };
	va_start(ap, fmt);
	k = vasprintf(&v->message, fmt, ap);
	va_end(ap);
	if (k < 0 || !v->file) {
		free(v->file);
		return -ENOMEM;
	}
	e->n++;
	return 0;
}

_public_ void ph_policy_errors_done(struct ph_policy_errors *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].file);
		free(e->v[i].message);
	}
	free(e->v);
	*e = (struct ph_policy_errors){ 0 };
}

/* inih's reader: one line per call, counted; overlong lines are an error
 * and are skipped whole. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;

	for (;;) {
		size_t len;

		if (!fgets(str, num, ps->f))
			return NULL;
		len = strlen(str);
		if (len > 0 && str[len - 1] == '\n') {
			ps->line++;
			if (!ps->too_long)
				return str;
			ps->too_long = false; /* the tail of a long line: drop it */
			continue;
		}
		if (feof(ps->f)) {
			ps->line++;
			return str;
		}
		if (!ps->too_long)
			(void)add_error(ps->errs, ps->file, ps->line + 1,
					"line longer than %d characters", MAX_LINE - 2);
		ps->too_long = true;
	}
}

static int parse_seconds(const char *v, uint64_t *ret)
{
	uint64_t s;

	if (ph_parse_u64(v, &s) < 0 || s > 365ULL * 86400)
		return -EINVAL;
	*ret = s * 1000000ULL;
	return 0;
}

/* Split a value on blanks into a NULL-terminated vector appended to *v. */
static int split_words(const char *value, char ***v, size_t *n)
{
	_cleanup_free_ char *copy = strdup(value);
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		char **nv = reallocarray(*v, *n + 2, sizeof(char *));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		nv[*n] = strdup(t);
		if (!nv[*n])
			return -ENOMEM;
		nv[++*n] = NULL;
	}
	return 0;
}

enum key_id { K_PATH, K_ACTION, K_SOURCE, K_FALLBACK, K_ONSHARED, K_HOOK, K_HOOKTIMEOUT, K_RESCAN, K_SCRUB, K_METRICS };

/* A key set twice in one file is an error (Path= adds instead). */
static bool once(struct parse *ps, enum key_id k, const char *name)
{
	if (ps->seen[k]) {
		(void)add_error(ps->errs, ps->file, ps->line, "%s= set twice (first on line %u)", name,
				ps->seen[k]);
		return false;
	}
	ps->seen[k] = ps->line;
	return true;
}

/* [Match] Path=: patterns added to the list; empty resets it. */
static int rule_path(struct parse *ps, const char *value)
{
	struct ph_rule *r = ps->rule;
	size_t before = r->n_globs;
	int k;

	if (!*value) { /* an empty assignment resets the list */
		for (size_t i = 0; i < r->n_globs; i++)
			free(r->globs[i]);
		r->n_globs = 0;
		return 1;
	}
	if (!ps->seen[K_PATH])
		ps->seen[K_PATH] = r->match_line = ps->line;
	k = split_words(value, &r->globs, &r->n_globs);
	if (k < 0)
		return 0;
	for (size_t i = before; i < r->n_globs; i++) {
		const char *why;

		if (ph_glob_check(r->globs[i], &why) < 0)
			(void)add_error(ps->errs, ps->file, ps->line, "bad pattern '%s': %s", r->globs[i], why);
	}
	return 1;
}

/* [Repair] Source=: an absolute path template with %p, %r, %f, %%. */
static int rule_source(struct parse *ps, const char *name, const char *value)
{
	struct ph_rule *r = ps->rule;

	if (!once(ps, K_SOURCE, name))
		return 1;
	if (value[0] != '/')
		(void)add_error(ps->errs, ps->file, ps->line, "Source= must be an absolute path template");
	for (const char *c = strchr(value, '%'); c; c = strchr(c + 2, '%'))
		if (!c[1] || !strchr("prf%", c[1])) {
			(void)add_error(ps->errs, ps->file, ps->line,
					"Source=: unknown '%%%c' (use %%p path, %%r relative path, %%f name, %%%%)",
					c[1] ? c[1] : ' ');
			break;
		}
	free(r->source);
	r->source = strdup(value);
	return r->source ? 1 : 0;
}

static int rule_key(struct parse *ps, const char *section, const char *name, const char *value)
{
	struct ph_rule *r = ps->rule;

	if (strcmp(section, "Match") == 0 && strcmp(name, "Path") == 0)
		return rule_path(ps, value);
	if (strcmp(section, "Repair") == 0) {
		if (strcmp(name, "Action") == 0) {
			if (!once(ps, K_ACTION, name))
				return 1;
			r->action_line = ps->line;
			if (ph_action_from_string(value, &r->action) < 0)
				(void)add_error(ps->errs, ps->file, ps->line,
						"unknown action '%s' (report, salvage, zero, restore, punch, "
						"quarantine, delete, exec)", value);
			return 1;
		}
		if (strcmp(name, "Fallback") == 0) {
			if (!once(ps, K_FALLBACK, name))
				return 1;
			r->has_fallback = true;
			if (ph_action_from_string(value, &r->fallback) < 0)
				(void)add_error(ps->errs, ps->file, ps->line, "unknown fallback action '%s'", value);
			else if (r->fallback == PH_ACTION_RESTORE || r->fallback == PH_ACTION_EXEC)
				(void)add_error(ps->errs, ps->file, ps->line,
						"Fallback=%s: a fallback must not need its own fallback "
						"(use report, salvage, zero, punch, quarantine or delete)", value);
			return 1;
		}
		if (strcmp(name, "Source") == 0)
			return rule_source(ps, name, value);
		if (strcmp(name, "OnShared") == 0) {
			if (!once(ps, K_ONSHARED, name))
				return 1;
			if (strcmp(value, "together") == 0)
				r->on_shared = PH_SHARED_TOGETHER;
			else if (strcmp(value, "separate") == 0)
				r->on_shared = PH_SHARED_SEPARATE;
			else
				(void)add_error(ps->errs, ps->file, ps->line,
						"OnShared= must be together or separate, not '%s'", value);
			return 1;
		}
		if (strcmp(name, "Hook") == 0) {
			if (!once(ps, K_HOOK, name))
				return 1;
			if (split_words(value, &r->hook, &r->n_hook) < 0)
				return 0;
			if (r->n_hook == 0 || r->hook[0][0] != '/')
				(void)add_error(ps->errs, ps->file, ps->line,
						"Hook= must start with an absolute program path (it runs without a shell)");
			return 1;
		}
		if (strcmp(name, "HookTimeoutSec") == 0) {
			if (!once(ps, K_HOOKTIMEOUT, name))
				return 1;
			if (parse_seconds(value, &r->hook_timeout_usec) < 0 || r->hook_timeout_usec == 0)
				(void)add_error(ps->errs, ps->file, ps->line,
						"HookTimeoutSec= must be a number of seconds from 1, not '%s'", value);
			return 1;
		}
	}
	if (strcmp(section, "Match") != 0 && strcmp(section, "Repair") != 0)
		(void)add_error(ps->errs, ps->file, ps->line, "unknown section [%s] (a rule has [Match] and [Repair])",
				section);
	else
		(void)add_error(ps->errs, ps->file, ps->line, "unknown key '%s' in [%s]", name, section);
	return 1;
}

static int conf_key(struct parse *ps, const char *section, const char *name, const char *value)
{
	if (strcmp(section, "Daemon") == 0 && strcmp(name, "RescanIntervalSec") == 0) {
		if (once(ps, K_RESCAN, name) && parse_seconds(value, &ps->conf->rescan_usec) < 0)
			(void)add_error(ps->errs, ps->file, ps->line,
					"RescanIntervalSec= must be a number of seconds, not '%s'", value);
		return 1;
	}
	if (strcmp(section, "Daemon") == 0 && strcmp(name, "ScrubIntervalSec") == 0) {
		if (once(ps, K_SCRUB, name) && parse_seconds(value, &ps->conf->scrub_usec) < 0)
			(void)add_error(ps->errs, ps->file, ps->line,
					"ScrubIntervalSec= must be a number of seconds, not '%s'", value);
		return 1;
	}
	if (strcmp(section, "Daemon") == 0 && strcmp(name, "MetricsFile") == 0) {
		char *v = NULL;

		if (!once(ps, K_METRICS, name))
			return 1;
		/* Empty: none (a drop-in turning off the main file's). */
		if (*value && value[0] != '/') {
			(void)add_error(ps->errs, ps->file, ps->line,
					"MetricsFile= must be an absolute path, not '%s'", value);
			return 1;
		}
		if (*value && !(v = strdup(value)))
			return 0;
		free(ps->conf->metrics_file);
		ps->conf->metrics_file = v;
		return 1;
	}
	if (strcmp(section, "Daemon") != 0)
		(void)add_error(ps->errs, ps->file, ps->line, "unknown section [%s] (pmemheald.conf has [Daemon])",
				section);
	else
		(void)add_error(ps->errs, ps->file, ps->line, "unknown key '%s' in [%s]", name, section);
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;

	return ps->rule ? rule_key(ps, section, name, value) : conf_key(ps, section, name, value);
}

static int parse_file(struct parse *ps)
{
	_cleanup_fclose_ FILE *f = fopen(ps->file, "re");
	int k;

	if (!f) {
		k = negative_errno();
		(void)add_error(ps->errs, ps->file, 0, "cannot read: %s", strerror(-k));
		return 0;
	}
	ps->f = f;
	ps->line = 0;
	k = ini_parse_stream(reader, ps, handler, ps);
	if (k == -2)
		return -ENOMEM;
	/* inih's own syntax errors (a line that is neither section nor key):
	 * it returns the first one's line; our handler never fails. */
	if (k > 0)
		(void)add_error(ps->errs, ps->file, (unsigned)k, "syntax error: expected [Section] or Key=value");
	return 0;
}

struct found {
	char *name, *path;
};

static int found_cmp(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->name, ((const struct found *)b)->name);
}

/*
 * The files named *suffix in SUB of each directory (most important first),
 * a more important directory's file masking a less important one of the
 * same name, sorted by name.
 */
static int collect(struct ph_ctx *ctx, const char *const *dirs, size_t n_dirs, const char *sub,
		   const char *suffix, char ***ret, size_t *ret_n)
{
	struct found *v = NULL;
	size_t n = 0, cap = 0;
	char **paths;
	int r = 0;

	for (size_t i = 0; r == 0 && i < n_dirs; i++) {
		_cleanup_free_ char *rel = NULL, *dir = NULL;
		_cleanup_(closedirp) DIR *d = NULL;
		struct dirent *de;

		if (asprintf(&rel, "%s%s%s", dirs[i], *sub ? "/" : "", sub) < 0) {
			rel = NULL;
			r = -ENOMEM;
			break;
		}
		r = ph_ctx_path(ctx, rel, &dir);
		if (r < 0)
			break;
		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			size_t len = strlen(de->d_name), sl = strlen(suffix);
			bool dup = false;

			/* "*.rule"-style names, or exactly "pmemheald.conf" */
			if (de->d_name[0] == '.' || len < sl || strcmp(de->d_name + len - sl, suffix) != 0 ||
			    (len == sl && suffix[0] == '.'))
				continue;
			for (size_t k = 0; k < n; k++)
				dup = dup || strcmp(v[k].name, de->d_name) == 0;
			if (dup)
				continue;
			if (PH_GROW(v, cap, n + 1, 16) < 0) {
				r = -ENOMEM;
				break;
			}
			v[n].name = strdup(de->d_name);
			if (!v[n].name || asprintf(&v[n].path, "%s/%s", dir, de->d_name) < 0) {
				free(v[n].name);
				r = -ENOMEM;
				break;
			}
			n++;
		}
	}
	paths = r == 0 ? calloc(n + 1, sizeof(char *)) : NULL;
	if (r == 0 && !paths)
		r = -ENOMEM;
	if (r == 0 && n > 1)
		qsort(v, n, sizeof(*v), found_cmp);
	for (size_t k = 0; k < n; k++) {
		free(v[k].name);
		if (paths)
			paths[k] = v[k].path;
		else
			free(v[k].path);
	}
	free(v);
	if (r < 0)
		return r;
	*ret = paths;
	*ret_n = n;
	return 0;
}

static void rule_done(struct ph_rule *r)
{
	free(r->file);
	free(r->name);
	for (size_t i = 0; i < r->n_globs; i++)
		free(r->globs[i]);
	free(r->globs);
	free(r->source);
	for (size_t i = 0; i < r->n_hook; i++)
		free(r->hook[i]);
	free(r->hook);
}

_public_ struct ph_policy *ph_policy_free(struct ph_policy *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++)
		rule_done(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->n_conf_files; i++)
		free(p->conf_files[i]);
	free(p->conf_files);
	free(p->conf.metrics_file);
	free(p);
	return NULL;
}

/* What one rule file must have, once parsed. */
static void check_rule(struct parse *ps)
{
	struct ph_rule *r = ps->rule;

	if (r->n_globs == 0)
		(void)add_error(ps->errs, ps->file, 0, "no [Match] Path=: the rule would apply to nothing");
	if (!ps->seen[K_ACTION])
		(void)add_error(ps->errs, ps->file, 0, "no [Repair] Action=");
	if (r->action == PH_ACTION_RESTORE && !r->source)
		(void)add_error(ps->errs, ps->file, r->action_line, "Action=restore needs Source=");
	if (r->action == PH_ACTION_EXEC && r->n_hook == 0)
		(void)add_error(ps->errs, ps->file, r->action_line, "Action=exec needs Hook=");
	if (r->source && r->action != PH_ACTION_RESTORE && r->action != PH_ACTION_SALVAGE &&
	    r->action != PH_ACTION_EXEC)
		(void)add_error(ps->errs, ps->file, ps->seen[K_SOURCE],
				"Source= is used by restore, salvage and exec only, not by %s",
				ph_action_to_string(r->action));
	if (r->n_hook > 0 && r->action != PH_ACTION_EXEC)
		(void)add_error(ps->errs, ps->file, ps->seen[K_HOOK], "Hook= is used by Action=exec only");
	if (r->has_fallback && r->action != PH_ACTION_RESTORE && r->action != PH_ACTION_EXEC)
		(void)add_error(ps->errs, ps->file, ps->seen[K_FALLBACK],
				"Fallback= is used by restore and exec only, when they cannot repair");
}

_public_ int ph_policy_load(struct ph_ctx *ctx, const char *const *dirs, size_t n_dirs,
			    struct ph_policy **ret, struct ph_policy_errors *errs)
{
	_cleanup_(ph_policy_freep) struct ph_policy *p = NULL;
	struct ph_policy_errors local = { 0 };
	struct ph_policy_errors *e = errs ? errs : &local;
	char **main_files = NULL, **dropins = NULL, **rules = NULL;
	size_t n_main = 0, n_drop = 0, n_rules = 0, errors_before = e->n;
	int r;

	if (!dirs) {
		dirs = default_dirs;
		n_dirs = ELEMENTSOF(default_dirs);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->conf.rescan_usec = DEFAULT_RESCAN_USEC;

	r = collect(ctx, dirs, n_dirs, "", "pmemheald.conf", &main_files, &n_main);
	if (r == 0)
		r = collect(ctx, dirs, n_dirs, "pmemheald.conf.d", ".conf", &dropins, &n_drop);
	if (r == 0)
		r = collect(ctx, dirs, n_dirs, "rules.d", ".rule", &rules, &n_rules);
	if (r < 0)
		goto out;

	/* The main file ("pmemheald.conf" exactly), then its drop-ins. */
	for (size_t i = 0; r == 0 && i < n_main + n_drop; i++) {
		const char *f = i < n_main ? main_files[i] : dropins[i - n_main];
		struct parse ps = { .ctx = ctx, .file = f, .errs = e, .conf = &p->conf };
		char **v;

		if (i < n_main && strcmp(strrchr(f, '/') + 1, "pmemheald.conf") != 0)
			continue; /* "x-pmemheald.conf" is no configuration file */
		r = parse_file(&ps);
		v = reallocarray(p->conf_files, p->n_conf_files + 1, sizeof(char *));
		if (!v || !(v[p->n_conf_files] = strdup(f))) {
			p->conf_files = v ? v : p->conf_files;
			r = -ENOMEM;
			break;
		}
		p->conf_files = v;
		p->n_conf_files++;
	}

	for (size_t i = 0; r == 0 && i < n_rules; i++) {
		struct ph_rule *v;
		struct parse ps = { .ctx = ctx, .file = rules[i], .errs = e };
		struct stat st;

		/* An empty file, or a symlink to /dev/null, masks the rule of
		 * that name from the directories below it (systemd's way). */
		if (stat(rules[i], &st) == 0 && (S_ISCHR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0)))
			continue;
		v = reallocarray(p->rules, p->n_rules + 1, sizeof(*v));
		if (!v) {
			r = -ENOMEM;
			break;
		}
		p->rules = v;
		ps.rule = &v[p->n_rules];
		*ps.rule = (struct ph_rule){
			.file = strdup(rules[i]),
			.name = strdup(strrchr(rules[i], '/') + 1),
			.hook_timeout_usec = DEFAULT_HOOK_TIMEOUT_USEC,
		};
		p->n_rules++;
		if (!ps.rule->file || !ps.rule->name) {
			r = -ENOMEM;
			break;
		}
		r = parse_file(&ps);
		if (r == 0)
			check_rule(&ps);
	}
out:
	for (size_t i = 0; i < n_main; i++)
		free(main_files[i]);
	for (size_t i = 0; i < n_drop; i++)
		free(dropins[i]);
	for (size_t i = 0; i < n_rules; i++)
		free(rules[i]);
	free(main_files);
	free(dropins);
	free(rules);
	if (r == 0 && e->n > errors_before)
		r = -EINVAL;
	if (!errs)
		ph_policy_errors_done(&local);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

_public_ const struct ph_rule *ph_policy_match(const struct ph_policy *p, const char *path)
{
	for (size_t i = 0; p && i < p->n_rules; i++)
		for (size_t k = 0; k < p->rules[i].n_globs; k++)
			if (ph_glob_match(p->rules[i].globs[k], path))
				return &p->rules[i];
	return NULL;
}

_public_ int ph_rule_expand_source(const struct ph_rule *r, const char *path, const char *mountpoint,
				   char **ret)
{
	_cleanup_free_ char *out = NULL;
	size_t len = 0, cap = 0;
	const char *rel, *base = strrchr(path, '/');

	if (!r->source)
		return -ENOENT;
	base = base ? base + 1 : path;
	rel = path;
	if (mountpoint && strcmp(mountpoint, "/") != 0) {
		size_t ml = strlen(mountpoint);

		if (strncmp(path, mountpoint, ml) == 0 && path[ml] == '/')
			rel = path + ml + 1;
	} else if (rel[0] == '/')
		rel++;
	for (const char *s = r->source; *s; s++) {
		const char *add = NULL;
		char one[2] = { *s, 0 };

		if (*s == '%' && s[1]) {
			switch (*++s) {
			case 'p':
				add = path;
				break;
			case 'r':
				add = rel;
				break;
			case 'f':
				add = base;
				break;
			case '%':
				add = "%";
				break;
			default:
				return -EINVAL;
			}
		} else
			add = one;
		if (PH_GROW(out, cap, len + strlen(add) + 1, 64) < 0)
			return -ENOMEM;
		memcpy(out + len, add, strlen(add) + 1);
		len += strlen(add);
	}
	*ret = TAKE_PTR(out);
	return *ret ? 0 : -ENOMEM;
}
