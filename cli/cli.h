/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the pmemheal verbs: exit statuses, error printing, the context. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ctx.h"

/*
 * Exit statuses.  Documented in pmemheal(1): keep both in step.
 */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,        /* unexpected failure (I/O error, out of memory) */
	EXIT_USAGE = 2,       /* bad option, malformed range or range list */
	EXIT_NO_DEVICE = 3,   /* DEVICE does not exist */
	EXIT_NOT_BLOCK = 4,   /* DEVICE is not a block device */
	EXIT_RANGE = 5,       /* a range extends past the end of DEVICE */
	EXIT_UNMOUNTED = 6,   /* nothing is mounted on DEVICE (owners printed as "unmounted") */
	EXIT_UNSUPPORTED = 7, /* a filesystem other than XFS or ext4 is mounted */
	EXIT_ACCESS = 8,      /* permission denied */
	EXIT_PARTIAL = 9,     /* some badblocks lists could not be read; the rest were */
	EXIT_POLICY = 10,     /* the configuration or rules have errors (printed file:line) */
	EXIT_REPAIR = 11,     /* some ranges could not be repaired (the ledger says why) */
	EXIT_BUSY = 12,       /* another repair is running */
};

extern const char *program_name;

/* s as it may be shown on a terminal (lib/escape.h: control characters,
 * C1, bidirectional overrides and invalid UTF-8 escaped visibly), for
 * printf() arguments: the result lives until 16 more calls.  Every file
 * name and other outside string printed as text goes through it. */
const char *cli_text(const char *s);

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A library context whose log messages go to stderr. */
int cli_ctx_new(struct ph_ctx **ret);
extern bool arg_debug;

int verb_map(int argc, char *argv[]);
int verb_scan(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_policy(int argc, char *argv[]);
int verb_repair(int argc, char *argv[]);
int verb_history(int argc, char *argv[]);

/* Append s (not copied) to the vector *v of *n; false when out of memory. */
bool cli_strv_push(char ***v, size_t *n, char *s);

struct ph_policy;
/* Load the policy, printing every error as file:line: message. */
int cli_policy_load(struct ph_ctx *ctx, char **dirs, size_t n_dirs, struct ph_policy **ret);
