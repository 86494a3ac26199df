/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Block devices as the mapper sees them: a device node, its size, its
 * partitions (with their start sectors) and the filesystem mounted on each.
 * Reads sysfs and mountinfo under the context's root; opens nothing else.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctx.h"
#include "range.h"

struct ph_mount {
	char *mountpoint; /* unescaped */
	char *fstype;
	char *source;
	char *root;       /* the mount's root within the filesystem ("/" normally) */
	dev_t dev;        /* from the major:minor field */
};

struct ph_part {
	char *name;      /* kernel name: "pmem0p1", "loop0" */
	char *node;      /* "/dev/pmem0p1" */
	dev_t dev;
	uint64_t start;  /* first sector within the device asked about */
	uint64_t count;  /* sectors */
	struct ph_mount *mount; /* NULL when nothing is mounted */
};

struct ph_blkdev {
	char *path;      /* as given */
	char *name;      /* kernel name */
	dev_t dev;
	uint64_t size;   /* sectors */
	bool is_partition;
	uint64_t part_start; /* when is_partition: start within the parent disk */
	char *parent;        /* when is_partition: the parent disk's kernel name */
	/*
	 * The block devices whose filesystems cover this device: the device
	 * itself (one entry, start 0) or, for a whole disk with partitions,
	 * one entry per partition.
	 */
	struct ph_part *parts;
	size_t n_parts;
	bool partitioned;
};

/*
 * Resolve a device node.  -ENOENT: no such path; -ENOTBLK: not a block
 * device; -ENODEV: no sysfs entry for it.  Mount lookup failures are errors
 * too (-EIO with a logged reason).
 */
int ph_blkdev_open(struct ph_ctx *ctx, const char *path, struct ph_blkdev **ret);
/* The same from a kernel name ("pmem0"), through /sys/class/block under the
 * context's root; path is set to "/dev/NAME". */
int ph_blkdev_open_name(struct ph_ctx *ctx, const char *name, struct ph_blkdev **ret);
struct ph_blkdev *ph_blkdev_free(struct ph_blkdev *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_blkdev *, ph_blkdev_free);

/* Mount table helpers, exposed for tests. */
int ph_mountinfo_unescape(const char *in, char **ret);
int ph_mountinfo_find(struct ph_ctx *ctx, dev_t dev, const char *node, struct ph_mount **ret);
struct ph_mount *ph_mount_free(struct ph_mount *m);

/* Read a sysfs attribute holding one unsigned number. */
int ph_sysfs_read_u64(const char *path, uint64_t *ret);
