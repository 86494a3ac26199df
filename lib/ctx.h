/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The library context: where the system's files are (a root directory that
 * tests point at fake trees) and where log messages go.  The library never
 * prints; it hands messages to the caller's log function.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

struct ph_ctx;

typedef void (*ph_log_fn)(struct ph_ctx *ctx, int priority, const char *file, int line,
			  const char *fn, const char *format, va_list args);

int ph_ctx_new(struct ph_ctx **ret);
/* A new context with model's root, log function and priority: one for
 * another thread (contexts are not shared between threads). */
int ph_ctx_new_like(struct ph_ctx *model, struct ph_ctx **ret);
struct ph_ctx *ph_ctx_ref(struct ph_ctx *ctx);
struct ph_ctx *ph_ctx_unref(struct ph_ctx *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_ctx *, ph_ctx_unref);

void ph_ctx_set_log_fn(struct ph_ctx *ctx, ph_log_fn fn, void *userdata);
void *ph_ctx_get_log_userdata(struct ph_ctx *ctx);
void ph_ctx_set_log_priority(struct ph_ctx *ctx, int priority);
int ph_ctx_get_log_priority(struct ph_ctx *ctx);

/* Root directory against which /proc, /sys and /dev paths are resolved. */
int ph_ctx_set_root(struct ph_ctx *ctx, const char *root);
const char *ph_ctx_get_root(struct ph_ctx *ctx);

/* Resolve an absolute system path ("/proc/self/mountinfo") against the
 * context's root.  The result is malloc'ed. */
int ph_ctx_path(struct ph_ctx *ctx, const char *path, char **ret);

/* A one-line, user-facing account of a failure: which file, device or line,
 * and why.  Filled only on failure. */
struct ph_error {
	char message[512];
};
void ph_error_set(struct ph_error *err, const char *format, ...) _printf_(2, 3);

void ph_ctx_log(struct ph_ctx *ctx, int priority, const char *file, int line, const char *fn,
		const char *format, ...) _printf_(6, 7);

#define ph_log(ctx, prio, ...)                                                            \
	do {                                                                              \
		struct ph_ctx *_c_ = (ctx);                                               \
		if (_c_ && ph_ctx_get_log_priority(_c_) >= (prio))                        \
			ph_ctx_log(_c_, (prio), __FILE__, __LINE__, __func__, __VA_ARGS__); \
	} while (0)

#define ph_dbg(ctx, ...) ph_log(ctx, LOG_DEBUG, __VA_ARGS__)
#define ph_info(ctx, ...) ph_log(ctx, LOG_INFO, __VA_ARGS__)
#define ph_notice(ctx, ...) ph_log(ctx, LOG_NOTICE, __VA_ARGS__)
#define ph_warn(ctx, ...) ph_log(ctx, LOG_WARNING, __VA_ARGS__)
#define ph_err(ctx, ...) ph_log(ctx, LOG_ERR, __VA_ARGS__)
