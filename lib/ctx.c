/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Library context.  Holds the log sink and the system root.  It owns no
 * devices and no file descriptors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

struct ph_ctx {
	int refcount;
	ph_log_fn log_fn;
	void *log_userdata;
	int log_priority;
	char *root; /* never ends in '/' unless it is "/" */
};

_public_ int ph_ctx_new(struct ph_ctx **ret)
{
	struct ph_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	ctx->refcount = 1;
	ctx->log_priority = LOG_WARNING;
	ctx->root = strdup("/");
	if (!ctx->root) {
		free(ctx);
		return -ENOMEM;
	}
	*ret = ctx;
	return 0;
}

_public_ int ph_ctx_new_like(struct ph_ctx *model, struct ph_ctx **ret)
{
	struct ph_ctx *ctx;
	int r;

	r = ph_ctx_new(&ctx);
	if (r < 0)
		return r;
	r = ph_ctx_set_root(ctx, model->root);
	if (r < 0) {
		ph_ctx_unref(ctx);
		return r;
	}
	ctx->log_fn = model->log_fn;
	ctx->log_userdata = model->log_userdata;
	ctx->log_priority = model->log_priority;
	*ret = ctx;
	return 0;
}

_public_ struct ph_ctx *ph_ctx_ref(struct ph_ctx *ctx)
{
	if (ctx)
		ctx->refcount++;
	return ctx;
}

_public_ struct ph_ctx *ph_ctx_unref(struct ph_ctx *ctx)
{
	if (!ctx || --ctx->refcount > 0)
		return NULL;
	free(ctx->root);
	free(ctx);
	return NULL;
}

_public_ void ph_ctx_set_log_fn(struct ph_ctx *ctx, ph_log_fn fn, void *userdata)
{
	ctx->log_fn = fn;
	ctx->log_userdata = userdata;
}

_public_ void *ph_ctx_get_log_userdata(struct ph_ctx *ctx)
{
	return ctx->log_userdata;
}

_public_ void ph_ctx_set_log_priority(struct ph_ctx *ctx, int priority)
{
	ctx->log_priority = priority;
}

_public_ int ph_ctx_get_log_priority(struct ph_ctx *ctx)
{
	return ctx->log_priority;
}

_public_ int ph_ctx_set_root(struct ph_ctx *ctx, const char *root)
{
	char *r;
	size_t n;

	if (!root || root[0] != '/')
		return -EINVAL;
	r = strdup(root);
	if (!r)
		return -ENOMEM;
	n = strlen(r);
	while (n > 1 && r[n - 1] == '/')
		r[--n] = '\0';
	free(ctx->root);
	ctx->root = r;
	return 0;
}

_public_ const char *ph_ctx_get_root(struct ph_ctx *ctx)
{
	return ctx->root;
}

_public_ int ph_ctx_path(struct ph_ctx *ctx, const char *path, char **ret)
{
	char *p;

	if (!path || path[0] != '/')
		return -EINVAL;
	if (strcmp(ctx->root, "/") == 0)
		p = strdup(path);
	else if (asprintf(&p, "%s%s", ctx->root, path) < 0)
		p = NULL;
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

_public_ void ph_ctx_log(struct ph_ctx *ctx, int priority, const char *file, int line,
			 const char *fn, const char *format, ...)
{
	int saved = errno;
	va_list ap;

	if (!ctx->log_fn)
		goto out;
	va_start(ap, format);
	errno = saved; /* so %m works in the caller's format */
	ctx->log_fn(ctx, priority, file, line, fn, format, ap);
	va_end(ap);
out:
	errno = saved;
}

_public_ void ph_error_set(struct ph_error *err, const char *format, ...)
{
	int saved = errno;
	va_list ap;

	if (!err)
		return;
	va_start(ap, format);
	vsnprintf(err->message, sizeof(err->message), format, ap);
	va_end(ap);
	errno = saved;
}
