/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The FIEMAP index: every extent of every file of one filesystem, sorted by
 * physical address, built by a parallel walk.  It answers "which files have
 * blocks in this device range" for filesystems whose GETFSMAP cannot name
 * file owners (ext4, XFS without rmapbt, or without CAP_SYS_ADMIN).
 *
 * The index is a hint, never the truth: it is stale the moment a file
 * changes.  Anything that writes re-checks a file's fresh FIEMAP first.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "range.h"
#include "walk.h"

#define PH_FEXT_SHARED    0x1u
#define PH_FEXT_UNWRITTEN 0x2u
#define PH_FEXT_ATTR      0x4u /* extent of the extended-attribute fork */
#define PH_FEXT_DIR       0x8u /* owner is a directory */

/* One extent, in 512-byte sectors; 32 bytes. */
struct ph_fext {
	uint64_t physical; /* sector on the filesystem's block device */
	uint64_t logical;  /* sector within the file (or attribute fork) */
	uint64_t ino;
	uint32_t count;    /* sectors */
	uint32_t flags;    /* PH_FEXT_* */
};

struct ph_findex_stats {
	uint64_t inodes;     /* files and directories mapped */
	uint64_t extents;
	uint64_t bytes;      /* memory held by the index */
	uint64_t failed;     /* files that could not be opened or mapped */
	int failed_errno;    /* why the first of them failed */
	double seconds;      /* build time */
	struct ph_walk_stats walk;
};

struct ph_findex;

/*
 * Build the index of the filesystem whose root directory is open as root_fd.
 * xattrs: also map extended-attribute forks (one more FIEMAP per file).
 */
int ph_findex_build(struct ph_ctx *ctx, int root_fd, unsigned nthreads, bool xattrs,
		    struct ph_findex **ret);
struct ph_findex *ph_findex_free(struct ph_findex *idx);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_findex *, ph_findex_free);

/* Extents overlapping [start, start+count) sectors; *ret points into the
 * index (valid until it is freed) and *ret_n says how many, unclipped. */
int ph_findex_query(struct ph_findex *idx, uint64_t start, uint64_t count,
		    struct ph_fext ***ret, size_t *ret_n);
const struct ph_findex_stats *ph_findex_get_stats(struct ph_findex *idx);

/*
 * FIEMAP one open file into a callback, in sectors.  Extents the device does
 * not hold yet (delayed allocation) or that are not block-aligned (inline
 * data, which lives in the inode) are skipped: they cannot be poisoned
 * file data.  Exposed for the re-verification before writes.
 */
typedef int (*ph_fiemap_fn)(void *userdata, uint64_t physical, uint64_t logical, uint64_t count,
			    uint32_t flags);
int ph_fiemap_fd(int fd, bool xattr, ph_fiemap_fn fn, void *userdata);
