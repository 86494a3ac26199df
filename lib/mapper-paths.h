/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inode number to path(s).  Parent pointers where the filesystem keeps them
 * (XFS with parent=1), otherwise a walk that resolves only the inodes asked
 * for and stops as soon as every link of each has been found.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

struct ph_inode_paths {
	uint64_t ino;
	char **paths;   /* absolute, sorted */
	size_t n_paths;
	uint32_t nlink; /* 0 when unknown */
	bool is_dir;
	bool is_symlink;
};

enum ph_paths_method {
	PH_PATHS_PARENT_POINTERS,
	PH_PATHS_WALK,
};

/*
 * Resolve inos[0..n) on the filesystem whose root is open as root_fd and
 * mounted at mountpoint.  *ret is an array of n results in the order of
 * inos; inodes not found have n_paths == 0.  *ret_method says how.
 */
int ph_paths_resolve(struct ph_ctx *ctx, int root_fd, const char *mountpoint, const uint64_t *inos,
		     size_t n, unsigned nthreads, struct ph_inode_paths **ret,
		     enum ph_paths_method *ret_method);
void ph_inode_paths_free(struct ph_inode_paths *p, size_t n);

/* Does this filesystem answer XFS_IOC_GETPARENTS? (Probed, not guessed.) */
bool ph_paths_have_parent_pointers(int root_fd);
