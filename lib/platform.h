/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Platform abilities, probed, never assumed from a kernel version: where a
 * file lives (filesystem, block device, pmem namespace and bus), whether
 * that bus clears poison, whether the filesystem can share blocks
 * (FICLONERANGE), its block size, and whether the file is DAX.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "blkdev.h"
#include "ctx.h"
#include "topology.h"

struct ph_place {
	char *path;          /* the file, absolute and canonical */
	char *mountpoint, *fstype, *fsnode; /* the filesystem and its block device */
	uint32_t block_size;
	bool reflink;        /* FICLONERANGE works here */
	bool dax;            /* STATX_ATTR_DAX on the file (false when unknown) */
	/* the pmem namespace under it, NULL when the file is not on pmem */
	const struct ph_namespace *ns;
	const struct ph_bus *bus;
	uint64_t part_start; /* sectors: the filesystem's start on the namespace's disk */
};

/* Find path's filesystem and pmem namespace in t (t may be NULL). */
int ph_place_find(struct ph_ctx *ctx, const struct ph_topology *t, const char *path, struct ph_place *ret,
		  struct ph_error *err);
void ph_place_done(struct ph_place *p);

/* Filesystem facts from an open directory of it (the mount point). */
int ph_fs_probe(int fd, const char *fstype, bool *ret_reflink, uint32_t *ret_block_size);
