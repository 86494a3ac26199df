/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The mapper: from a range of sectors on a block device to every owner of
 * every sector in it — files (with all their paths, offsets and sharing),
 * filesystem metadata, free space, or the bare device when nothing is
 * mounted.  The owners of a range cover it exactly: their union is the
 * range, and sectors shared by reflink appear once per sharer.
 *
 * It reads; it never writes.  Its answers are a snapshot: anything that
 * acts on them re-checks a file's fresh FIEMAP first.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blkdev.h"
#include "ctx.h"
#include "range.h"

enum ph_owner_type {
	PH_OWNER_FILE,
	PH_OWNER_METADATA,
	PH_OWNER_FREE,
	PH_OWNER_UNMOUNTED,
	PH_OWNER_UNKNOWN,
};

enum ph_map_method {
	PH_MAP_AUTO,
	PH_MAP_GETFSMAP,
	PH_MAP_FIEMAP,
	PH_MAP_NONE, /* nothing mounted */
};

/* One filesystem (or unmounted partition) covering part of the device. */
struct ph_map_fs;

struct ph_owner {
	enum ph_owner_type type;
	uint64_t sector;              /* on the device asked about */
	uint64_t count;
	const struct ph_map_fs *fs;   /* NULL outside any partition */
	/* PH_OWNER_FILE */
	uint64_t inode;
	uint64_t offset;              /* bytes into the file (or its xattr fork) */
	uint64_t length;              /* bytes */
	bool shared, unwritten, attr_fork, directory, symlink;
	char **paths;                 /* absolute; empty when none was found */
	size_t n_paths;
	/* PH_OWNER_METADATA: a short kind ("inodes", "log", ...); the inode
	 * whose extent map this is, when "extent-map" */
	const char *what;
	/* PH_OWNER_UNKNOWN */
	char *reason;
};

struct ph_map_result {
	struct ph_range range;
	struct ph_owner *owners;
	size_t n_owners;
};

struct ph_mapper;

/*
 * Open the device and choose, per filesystem on it, how to map.  Errors:
 * -ENOENT, -ENOTBLK, -ENODEV (device); -EPROTONOSUPPORT (a filesystem other
 * than XFS or ext4 is mounted); -EACCES (its mount point cannot be opened).
 * On failure err (if not NULL) says which device or mount and why.
 */
int ph_mapper_new(struct ph_ctx *ctx, const char *device, enum ph_map_method method,
		  struct ph_mapper **ret, struct ph_error *err);
struct ph_mapper *ph_mapper_free(struct ph_mapper *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_mapper *, ph_mapper_free);

void ph_mapper_set_threads(struct ph_mapper *m, unsigned n);
/* Resolve inode numbers to paths (the default); off leaves paths empty. */
void ph_mapper_set_resolve_paths(struct ph_mapper *m, bool on);
const struct ph_blkdev *ph_mapper_get_blkdev(const struct ph_mapper *m);
uint64_t ph_mapper_get_size(const struct ph_mapper *m);
bool ph_mapper_is_mounted(const struct ph_mapper *m);

size_t ph_mapper_n_fs(const struct ph_mapper *m);
const struct ph_map_fs *ph_mapper_get_fs(const struct ph_mapper *m, size_t i);
const char *ph_map_fs_get_node(const struct ph_map_fs *fs);
const char *ph_map_fs_get_mount(const struct ph_map_fs *fs);
const char *ph_map_fs_get_fstype(const struct ph_map_fs *fs);
enum ph_map_method ph_map_fs_get_method(const struct ph_map_fs *fs);
const char *ph_map_fs_get_notice(const struct ph_map_fs *fs);
const char *ph_map_fs_get_paths_method(const struct ph_map_fs *fs);
void ph_map_fs_get_extent(const struct ph_map_fs *fs, uint64_t *start, uint64_t *count);
/* FIEMAP index statistics, NULL until an index was built. */
const struct ph_findex_stats *ph_map_fs_get_index_stats(const struct ph_map_fs *fs);

const char *ph_map_method_to_string(enum ph_map_method m);
int ph_map_method_from_string(const char *s, enum ph_map_method *ret);
const char *ph_owner_type_to_string(enum ph_owner_type t);

/*
 * Map ranges[0..n).  -ERANGE when a range extends past the end of the
 * device.  *ret is an array of n results.
 */
int ph_mapper_map(struct ph_mapper *m, const struct ph_range *ranges, size_t n,
		  struct ph_map_result **ret, struct ph_error *err);
void ph_map_results_free(struct ph_map_result *r, size_t n);
