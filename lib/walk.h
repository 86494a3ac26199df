/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A parallel walk of one mounted filesystem.  It never follows symlinks and
 * never enters another mount.  Callers see every directory it opens and
 * every directory entry it reads, on several threads at once, each thread
 * with its own state so that no locking is needed in the callbacks.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "ctx.h"

struct ph_walk_ops {
	/* A directory was opened (the root included).  relpath is relative to
	 * the root ("." for the root).  Return <0 to fail the walk, 1 to stop
	 * it early, 0 to go on. */
	int (*dir)(void *state, int dirfd, const char *relpath, const struct stat *st);
	/* One entry of a directory, subdirectories included.  Same returns. */
	int (*entry)(void *state, int dirfd, const char *dir_relpath, const char *name,
		     uint64_t ino, unsigned char d_type);
};

struct ph_walk_stats {
	uint64_t dirs;          /* directories read */
	uint64_t entries;       /* entries seen */
	uint64_t unreadable;    /* directories that could not be opened or read */
	uint64_t other_mounts;  /* mount points not entered */
	char *first_unreadable; /* relpath of one unreadable directory, or NULL */
	int first_unreadable_errno;
};

/* Number of worker threads to use when the caller has no opinion. */
unsigned ph_walk_default_threads(void);

/*
 * Walk the filesystem whose root (or subtree) is open as root_fd.  states[i]
 * is handed to callbacks running on thread i; nthreads >= 1.  Returns 0 when
 * the walk completed, 1 when a callback stopped it, or a negative errno.
 */
int ph_walk(struct ph_ctx *ctx, int root_fd, unsigned nthreads, const struct ph_walk_ops *ops,
	    void **states, struct ph_walk_stats *ret_stats);
void ph_walk_stats_done(struct ph_walk_stats *s);
