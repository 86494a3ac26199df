/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the mapper's files share (not installed): a map filesystem, the
 * mapper, and the records a per-filesystem query returns.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fsmap.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xfs/xfs.h>
#include "mapper-fiemap.h"
#include "mapper-getfsmap.h"
#include "mapper-paths.h"
#include "mapper-xfsdisk.h"
#include "mapper-layout.h"
#include "mapper.h"

struct ph_map_fs {
	const struct ph_part *part;
	const char *node;
	uint64_t start, count;
	const char *mountpoint; /* NULL: nothing mounted */
	const char *fstype;
	bool xfs, ext4;
	enum ph_map_method method;
	bool fsmap_works, fsmap_owners;
	int root_fd;
	dev_t dev;
	uint64_t fs_end; /* sectors, 0 when unknown */
	struct ph_findex *index;
	struct ph_layout *layout;
	struct ph_xfsdisk *xdisk; /* XFS read from the device, once shut down */
	bool layout_tried;
	bool shutdown; /* ioctls fail with EIO: only the on-disk layout is left */
	char *notice;
	bool paths_resolved;
	enum ph_paths_method paths_method;
};

struct ph_mapper {
	struct ph_ctx *ctx;
	struct ph_blkdev *blk;
	struct ph_map_fs *fs;
	size_t n_fs;
	unsigned threads;
	bool no_paths;
};

/* One owner record while a range is being assembled; sectors relative to
 * the filesystem's device. */
struct rec {
	uint64_t start, count;
	enum ph_owner_type type;
	uint64_t inode;
	uint64_t offset; /* sectors into the file */
	bool shared, unwritten, attr, dir;
	const char *what;
	char *reason;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

int recs_push(struct recs *l, const struct rec *r);
void recs_done(struct recs *l);
void fs_enter_shutdown(struct ph_mapper *m, struct ph_map_fs *fs);
int fs_query(struct ph_mapper *m, struct ph_map_fs *fs, uint64_t s, uint64_t n,
		    struct recs *out);
