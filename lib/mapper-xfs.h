/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * XFS layout facts for space that GETFSMAP calls "unknown" (no rmapbt, or
 * no CAP_SYS_ADMIN): where the AG headers, the internal log and the inode
 * chunks are.  Everything else allocated and not in a file is a btree block
 * or an internal inode, which only rmapbt can name.
 */
#pragma once

#include <stdint.h>

#include "range.h"

struct ph_xfs_layout;

int ph_xfs_layout_load(int root_fd, struct ph_xfs_layout **ret);
struct ph_xfs_layout *ph_xfs_layout_free(struct ph_xfs_layout *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_xfs_layout *, ph_xfs_layout_free);

/*
 * Classify the sector s: returns the metadata kind ("ag-headers", "log",
 * "inodes") and sets *ret_count to how many sectors from s share that answer
 * (at most max).  Returns NULL, with *ret_count set likewise, for sectors
 * that are none of these.
 */
const char *ph_xfs_layout_classify(const struct ph_xfs_layout *l, uint64_t s, uint64_t max,
				   uint64_t *ret_count);
/* Whether inode chunks could be listed (INUMBERS needs CAP_SYS_ADMIN). */
bool ph_xfs_layout_has_inodes(const struct ph_xfs_layout *l);
