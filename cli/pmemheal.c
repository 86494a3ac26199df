/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheal: the command line.  This file parses global options and hands
 * the rest to a verb; each verb lives in its own file and does its work
 * through libpmemheal.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "escape.h"

const char *program_name = "pmemheal";
bool arg_debug;

const char *cli_text(const char *s)
{
	static char *ring[16];
	static unsigned next;
	char **slot = &ring[next++ % ELEMENTSOF(ring)];

	free(*slot);
	*slot = ph_escape_text(s, SIZE_MAX);
	return *slot ? *slot : "(out of memory)";
}

/* A message on stderr, one line, with whatever file names it carries
 * escaped (messages never hold a newline of their own). */
static void put_message(const char *prefix, const char *fmt, va_list ap)
{
	_cleanup_free_ char *m = NULL;
	int k = vasprintf(&m, fmt, ap); /* first: %m reads errno */

	fputs(prefix, stderr);
	if (k < 0)
		fputs("(out of memory)", stderr);
	else
		ph_escape_text_to(stderr, m, SIZE_MAX);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	char prefix[64];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: ", program_name);
	va_start(ap, fmt);
	put_message(prefix, fmt, ap);
	va_end(ap);
}

void cli_notice(const char *fmt, ...)
{
	char prefix[64];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: notice: ", program_name);
	va_start(ap, fmt);
	put_message(prefix, fmt, ap);
	va_end(ap);
}

static void log_stderr(struct ph_ctx *ctx, int priority, const char *file, int line, const char *fn,
		       const char *format, va_list args)
{
	char prefix[512];

	if (arg_debug)
		snprintf(prefix, sizeof(prefix), "%s: %s:%d %s: ", program_name, file, line, fn);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s", program_name, priority <= LOG_WARNING ? "" : "notice: ");
	put_message(prefix, format, args);
}

int cli_ctx_new(struct ph_ctx **ret)
{
	struct ph_ctx *ctx;
	int r;

	r = ph_ctx_new(&ctx);
	if (r < 0)
		return r;
	ph_ctx_set_log_fn(ctx, log_stderr, NULL);
	ph_ctx_set_log_priority(ctx, arg_debug ? LOG_DEBUG : LOG_NOTICE);
	*ret = ctx;
	return 0;
}

bool cli_strv_push(char ***v, size_t *n, char *s)
{
	char **w = reallocarray(*v, *n + 1, sizeof(char *));

	if (!w)
		return false;
	*v = w;
	w[(*n)++] = s;
	return true;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char *argv[]);
	const char *help;
} verbs[] = {
	{ "status", verb_status, "pmem devices, their poisoned ranges and damaged files" },
	{ "scan", verb_scan, "read the badblocks lists now and record what changed" },
	{ "repair", verb_repair, "repair poisoned ranges per the rules (--dry-run: show the plan)" },
	{ "map", verb_map, "name the owners of device ranges" },
	{ "policy", verb_policy, "which rule applies to a file, and what a repair would do" },
	{ "history", verb_history, "what pmemheal recorded in the journal, filtered by time, path, device" },
};

static void help(FILE *f)
{
	fprintf(f,
		"Usage: %s [--debug] VERB [ARGS...]\n"
		"       %s --help | --version\n\n"
		"Recover persistent-memory poison.\n\nVerbs:\n",
		program_name, program_name);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
	fprintf(f, "\nSee pmemheal(1) for details and exit statuses.\n");
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "debug", no_argument, NULL, 'd' },
		{},
	};
	int c;

	/* '+': stop at the verb; its options are its own. */
	while ((c = getopt_long(argc, argv, "+hV", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return EXIT_OK;
		case 'd':
			arg_debug = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[optind], verbs[i].name) == 0) {
			optind++;
			return verbs[i].fn(argc - optind + 1, argv + optind - 1);
		}
	cli_error("unknown verb '%s'; see '%s --help'", argv[optind], program_name);
	return EXIT_USAGE;
}
