/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parallel filesystem walk.  Directories are work items on a shared stack
 * (last in, first out keeps the stack small on deep trees); each worker pops
 * one, opens it relative to the root, and reads it.  Entries are reported
 * from the d_type that readdir gives, so regular files cost no stat() here.
 *
 * The walk never follows a symlink (O_NOFOLLOW on every open) and does not
 * enter a directory whose st_dev differs from the root's (another mount).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walk.h"

struct walk {
	struct ph_ctx *ctx;
	int root_fd;
	dev_t dev;
	const struct ph_walk_ops *ops;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	char **stack;
	size_t n, cap;
	size_t pending;     /* items on the stack + items being processed */
	atomic_int stop;    /* 1: stopped by a callback; <0: error */

	struct ph_walk_stats stats; /* under lock */
};

struct worker {
	struct walk *w;
	void *state;
	pthread_t thread;
	int started;
};

_public_ unsigned ph_walk_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	/* Directory reads and FIEMAP block briefly on metadata I/O, so a
	 * little oversubscription keeps the CPUs busy. */
	if (n < 1)
		n = 1;
	return (unsigned)MIN(n * 2, 64);
}

_public_ void ph_walk_stats_done(struct ph_walk_stats *s)
{
	free(s->first_unreadable);
	s->first_unreadable = NULL;
}

static int push_locked(struct walk *w, char *relpath)
{
	if (PH_GROW(w->stack, w->cap, w->n + 1, 256) < 0)
		return -ENOMEM;
	w->stack[w->n++] = relpath;
	w->pending++;
	return 0;
}

static void set_error(struct walk *w, int r)
{
	int expected = 0;

	atomic_compare_exchange_strong(&w->stop, &expected, r);
}

static void note_unreadable(struct walk *w, const char *relpath, int err)
{
	pthread_mutex_lock(&w->lock);
	w->stats.unreadable++;
	if (!w->stats.first_unreadable) {
		w->stats.first_unreadable = strdup(relpath);
		w->stats.first_unreadable_errno = err;
	}
	pthread_mutex_unlock(&w->lock);
}

static char *join(const char *dir, const char *name)
{
	char *p;

	if (strcmp(dir, ".") == 0)
		return strdup(name);
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Read one directory; returns <0 on a fatal error, 1 to stop, else 0. */
static int process_dir(struct walk *w, void *state, const char *relpath)
{
	_cleanup_(closedirp) DIR *d = NULL;
	uint64_t entries = 0;
	struct dirent *de;
	struct stat st;
	int fd, r;

	fd = strcmp(relpath, ".") == 0
		     ? openat(w->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		     : openat(w->root_fd, relpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOMEM || errno == EMFILE || errno == ENFILE)
			return negative_errno();
		note_unreadable(w, relpath, errno);
		return 0;
	}
	if (fstat(fd, &st) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	if (st.st_dev != w->dev) {
		close(fd);
		pthread_mutex_lock(&w->lock);
		w->stats.other_mounts++;
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	d = fdopendir(fd);
	if (!d) {
		r = negative_errno();
		close(fd);
		return r;
	}
	if (w->ops->dir) {
		r = w->ops->dir(state, fd, relpath, &st);
		if (r != 0)
			return r;
	}
	for (;;) {
		unsigned char type;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				note_unreadable(w, relpath, errno);
				break;
			}
			break;
		}
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		entries++;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat est;

			if (fstatat(fd, de->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0)
				type = IFTODT(est.st_mode);
		}
		if (w->ops->entry) {
			r = w->ops->entry(state, fd, relpath, de->d_name, de->d_ino, type);
			if (r != 0)
				return r;
		}
		if (type == DT_DIR) {
			char *sub = join(relpath, de->d_name);

			if (!sub)
				return -ENOMEM;
			pthread_mutex_lock(&w->lock);
			r = push_locked(w, sub);
			if (r == 0)
				pthread_cond_signal(&w->cond);
			pthread_mutex_unlock(&w->lock);
			if (r < 0) {
				free(sub);
				return r;
			}
		}
		if (atomic_load(&w->stop) != 0)
			return 0;
	}
	pthread_mutex_lock(&w->lock);
	w->stats.dirs++;
	w->stats.entries += entries;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *k = arg;
	struct walk *w = k->w;

	for (;;) {
		char *relpath;
		int r;

		pthread_mutex_lock(&w->lock);
		while (w->n == 0 && w->pending > 0 && atomic_load(&w->stop) == 0)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->n == 0 || atomic_load(&w->stop) != 0) {
			pthread_cond_broadcast(&w->cond);
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		relpath = w->stack[--w->n];
		pthread_mutex_unlock(&w->lock);

		r = process_dir(w, k->state, relpath);
		free(relpath);
		if (r != 0)
			set_error(w, r);

		pthread_mutex_lock(&w->lock);
		w->pending--;
		if (w->pending == 0 || atomic_load(&w->stop) != 0)
			pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
}

_public_ int ph_walk(struct ph_ctx *ctx, int root_fd, unsigned nthreads,
		     const struct ph_walk_ops *ops, void **states, struct ph_walk_stats *ret_stats)
{
	_cleanup_free_ struct worker *workers = NULL;
	struct walk w = {
		.ctx = ctx,
		.root_fd = root_fd,
		.ops = ops,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct stat st;
	char *root;
	int r, stop;

	if (nthreads < 1)
		return -EINVAL;
	if (fstat(root_fd, &st) < 0)
		return negative_errno();
	w.dev = st.st_dev;
	root = strdup(".");
	if (!root || push_locked(&w, root) < 0) {
		free(root);
		return -ENOMEM;
	}
	workers = calloc(nthreads, sizeof(*workers));
	if (!workers) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		workers[i] = (struct worker){ .w = &w, .state = states[i] };
		if (i == 0)
			continue; /* the calling thread is worker 0 */
		r = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (r != 0) {
			ph_warn(ctx, "Cannot start walk thread %u: %s, continuing with %u", i,
				strerror(r), i);
			break;
		}
		workers[i].started = 1;
	}
	worker_main(&workers[0]);
	for (unsigned i = 1; i < nthreads; i++)
		if (workers[i].started)
			pthread_join(workers[i].thread, NULL);

	stop = atomic_load(&w.stop);
	r = stop < 0 ? stop : stop;
out:
	while (w.n > 0)
		free(w.stack[--w.n]);
	free(w.stack);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	if (ret_stats)
		*ret_stats = w.stats;
	else
		ph_walk_stats_done(&w.stats);
	return r;
}
