/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Policy: pmemheald.conf and the per-file repair rules.
 *
 * Layout (UAPI configuration files): directories are searched in order of
 * precedence, /etc/pmemheal, /run/pmemheal, /usr/lib/pmemheal; a file in a
 * higher one replaces the file of the same name in a lower one.
 *   pmemheald.conf, then pmemheald.conf.d/ *.conf in name order
 *   rules.d/NN-name.rule, one rule each, in name order: the first rule
 *   whose Path= matches a file applies to it.
 *
 * Parsing uses inih; every error names its file and line, every error in
 * every file is reported, and a policy with any error is not used: nothing
 * is guessed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

enum ph_action {
	PH_ACTION_REPORT,     /* record, change nothing (the default) */
	PH_ACTION_SALVAGE,    /* keep readable sectors, zero poisoned ones */
	PH_ACTION_ZERO,       /* zero the damaged pages */
	PH_ACTION_RESTORE,    /* copy the damaged pages from Source= */
	PH_ACTION_PUNCH,      /* deallocate the damaged pages (pinning the poison) */
	PH_ACTION_QUARANTINE, /* move the file aside, blocks pinned */
	PH_ACTION_DELETE,     /* unlink the file (pinning the poison) */
	PH_ACTION_EXEC,       /* run Hook= */
	_PH_ACTION_MAX,
};

enum ph_on_shared {
	PH_SHARED_TOGETHER, /* sharers get one repair and are re-shared */
	PH_SHARED_SEPARATE, /* each sharer is repaired by its own rule */
};

const char *ph_action_to_string(enum ph_action a);
int ph_action_from_string(const char *s, enum ph_action *ret);
const char *ph_on_shared_to_string(enum ph_on_shared s);

struct ph_rule {
	char *file;         /* the rule file that was read */
	char *name;         /* its name: "50-db.rule" */
	unsigned match_line;
	char **globs;       /* Path= patterns, absolute */
	size_t n_globs;
	enum ph_action action;
	unsigned action_line;
	char *source;       /* Source= template: %p path, %r path relative to the mount, %f name */
	enum ph_action fallback;
	bool has_fallback;
	enum ph_on_shared on_shared;
	char **hook;        /* Hook= argv, no shell */
	size_t n_hook;
	uint64_t hook_timeout_usec;
};

struct ph_config {
	uint64_t rescan_usec;   /* [Daemon] RescanIntervalSec= (0: none) */
	uint64_t scrub_usec;    /* [Daemon] ScrubIntervalSec= (0: never) */
	char *metrics_file;     /* [Daemon] MetricsFile= (NULL: none) */
};

struct ph_policy {
	struct ph_config conf;
	char **conf_files;      /* what was read, in order */
	size_t n_conf_files;
	struct ph_rule *rules;
	size_t n_rules;
};

struct ph_policy_error {
	char *file;
	unsigned line;          /* 0: the whole file */
	char *message;
};

struct ph_policy_errors {
	struct ph_policy_error *v;
	size_t n;
};

/*
 * Load from dirs[0..n) (most important first), each resolved under the
 * context's root; dirs NULL: the default three.  Any error: -EINVAL, with
 * every error in errs, and no policy.
 */
int ph_policy_load(struct ph_ctx *ctx, const char *const *dirs, size_t n_dirs, struct ph_policy **ret,
		   struct ph_policy_errors *errs);
struct ph_policy *ph_policy_free(struct ph_policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_policy *, ph_policy_free);
void ph_policy_errors_done(struct ph_policy_errors *e);

/* The first rule whose Path= matches path, or NULL (then: report). */
const struct ph_rule *ph_policy_match(const struct ph_policy *p, const char *path);

/* Globs: fnmatch per path component ('*', '?', '[...]' never cross '/'),
 * and a component "**" matches any number of components. */
bool ph_glob_match(const char *pattern, const char *path);
/* The same, counting the component comparisons made (at most
 * (components in pattern + 1) * (components in path + 1)); for tests. */
bool ph_glob_match_steps(const char *pattern, const char *path, uint64_t *ret_steps);
/* 0, or -EINVAL with a reason for a pattern that cannot be used. */
int ph_glob_check(const char *pattern, const char **ret_reason);

/* Expand a Source= template for the file at path on the filesystem
 * mounted at mountpoint. */
int ph_rule_expand_source(const struct ph_rule *r, const char *path, const char *mountpoint, char **ret);
