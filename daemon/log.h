/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheald's logging: to the journal (with CODE_FILE/LINE/FUNC and
 * ERRNO) when stderr is connected to it, else to stderr.  "Log and return"
 * in one step: log_error_errno(r, "...: %m") logs with errno = -r and
 * returns r (negative), so callers write `return log_error_errno(...)`.
 */
#pragma once

#include <errno.h>
#include <syslog.h>

#include "ctx.h"

void log_open(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/* Parse "debug", "info", ..., or a number 0-7. */
int log_level_from_string(const char *s);

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
	_printf_(6, 7);

/* Where libpmemheal's messages go (ph_ctx_set_log_fn). */
void log_ph_ctx(struct ph_ctx *ctx, int priority, const char *file, int line, const char *fn,
		const char *format, va_list args);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void)log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

/* An error code that did not come from errno (for ERRNO= and %m all the same). */
#define SYNTHETIC_ERRNO(e) (-(e))
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
#define log_oom_ignore() (log_warning("Out of memory, ignoring."), 0)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
