/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Known metadata regions of a filesystem, for space GETFSMAP does not name:
 *   XFS without rmapbt (or without CAP_SYS_ADMIN): AG headers, the internal
 *   log and inode chunks, from the geometry and INUMBERS;
 *   ext4: the internal journal, which GETFSMAP reports only when it is on
 *   an external device, from the superblock's backup of its extent root.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "range.h"

struct ph_layout;

int ph_layout_load_xfs(int root_fd, struct ph_layout **ret);
/* Reads the superblock (and any journal extent-tree blocks) from the
 * filesystem's block device node. */
int ph_layout_load_ext4(const char *node, struct ph_layout **ret);
struct ph_layout *ph_layout_free(struct ph_layout *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_layout *, ph_layout_free);

/*
 * Classify sector s: returns the metadata kind ("ag-headers", "log",
 * "inodes") and sets *ret_count to how many sectors from s share the answer
 * (at most max).  NULL, with *ret_count likewise, for sectors in no region.
 */
const char *ph_layout_classify(const struct ph_layout *l, uint64_t s, uint64_t max,
			       uint64_t *ret_count);
/* XFS: whether inode chunks could be listed (INUMBERS needs CAP_SYS_ADMIN). */
bool ph_layout_has_inodes(const struct ph_layout *l);

/* Parse an ext4 superblock (the 1024 bytes at offset 1024) into the
 * journal's extents.  Index blocks of a deeper extent tree are read from fd;
 * with fd < 0 they are -ENXIO.  A tree with a child at the wrong depth, or
 * with more extents or index blocks than any real journal has, is -EUCLEAN.
 * Exposed for tests. */
int ph_layout_parse_ext4_sb(const uint8_t *sb, size_t len, int fd, struct ph_layout **ret);
