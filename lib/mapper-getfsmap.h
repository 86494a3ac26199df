/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GETFSMAP: the filesystem's own account of who owns each physical block.
 * XFS with rmapbt (and CAP_SYS_ADMIN) names file owners, one record per
 * reflink sharer; ext4 and XFS without rmapbt name only metadata and free
 * space and call file data "unknown".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* One record, in 512-byte sectors relative to the filesystem's device. */
struct ph_fsmap_rec {
	uint64_t start;
	uint64_t count;
	uint64_t owner;  /* inode number, or a special owner code */
	uint64_t offset; /* sector within the file, for inode owners */
	uint32_t flags;  /* FMR_OF_* */
};

typedef int (*ph_fsmap_fn)(void *userdata, const struct ph_fsmap_rec *rec);

/*
 * Call fn for every record overlapping [start, start+count) sectors of the
 * data device 'dev' of the filesystem open as fd.  -ENOTTY/-EOPNOTSUPP when
 * the filesystem has no GETFSMAP.
 */
int ph_getfsmap(int fd, dev_t dev, uint64_t start, uint64_t count, ph_fsmap_fn fn, void *userdata);

/*
 * Probe: does GETFSMAP work on fd, and does it name inode owners (rmapbt and
 * privileges)?  Looks at the first records of the filesystem.
 */
int ph_getfsmap_probe(int fd, dev_t dev, bool *ret_works, bool *ret_owners);
