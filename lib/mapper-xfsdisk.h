/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * XFS as it is on the device, for a filesystem that has shut down and
 * answers no ioctl (XFS shuts down after a machine check on its metadata).
 * It reads the superblock, the AG headers and the btrees with plain reads
 * of the block device, and answers in GETFSMAP's shape.
 *
 * What it reads is the state as of the last log checkpoint: changes still
 * only in the log are missing.  It never writes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "mapper-getfsmap.h"

struct ph_xfsdisk;

/* -EBADMSG when the device holds no XFS (version 5) superblock. */
int ph_xfsdisk_open(const char *node, struct ph_xfsdisk **ret);
struct ph_xfsdisk *ph_xfsdisk_free(struct ph_xfsdisk *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_xfsdisk *, ph_xfsdisk_free);

bool ph_xfsdisk_has_rmapbt(const struct ph_xfsdisk *d);
/* Sectors the filesystem's data device spans. */
uint64_t ph_xfsdisk_sectors(const struct ph_xfsdisk *d);

/*
 * Records overlapping [start, start+count) sectors, in order, covering every
 * sector of the filesystem in that range: from the rmapbt (file owners with
 * offsets, metadata, and free space between records) or, without rmapbt,
 * from the AG headers, log, AG btrees, inode chunks and free-space btree,
 * with FMR_OWN_UNKNOWN for the rest.
 */
int ph_xfsdisk_fsmap(struct ph_xfsdisk *d, uint64_t start, uint64_t count, ph_fsmap_fn fn,
		     void *userdata);
