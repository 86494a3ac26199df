/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The manager owns pmemheald's event sources: signals, the watchdog, the
 * monitor's watchers (POLLPRI, udev, the rescan timer), the worker's
 * report fd, the scrub timer, and the deferred STATUS/metrics update.
 * What to do about an event is libpmemheal's business; the manager only
 * connects them.
 */
#pragma once

#include <stddef.h>

#include "ctx.h"
#include "policy.h"

struct manager;

struct manager_options {
	const char *state_dir;
	/* configuration directories, most important first; NULL: the default three */
	const char *const *config_dirs;
	size_t n_config_dirs;
};

/* policy is taken. */
int manager_new(struct ph_ctx *ctx, const struct manager_options *o, struct ph_policy *policy,
		struct manager **ret);
struct manager *manager_free(struct manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct manager *, manager_free);

/* Run until SIGTERM/SIGINT (0) or a fatal error (negative errno). */
int manager_run(struct manager *m);
