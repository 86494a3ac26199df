/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mapper: device ranges to owners.
 *
 * A device is covered by "map filesystems": the device itself, or each of
 * its partitions.  Each mounted one gets a method:
 *   - GETFSMAP when the filesystem names file owners (XFS + rmapbt + root):
 *     one record per owner, reflink sharers included;
 *   - FIEMAP otherwise: a walk-built index of file extents, with GETFSMAP
 *     (where it works) still classifying metadata and free space.
 * Space that neither names is classified from the XFS layout where that
 * can, and is otherwise "unknown" with the reason.  Sectors no record covers
 * are "unknown" too, so the owners of a range always cover all of it.
 *
 * Paths are resolved once per call for all inodes found, by parent pointers
 * or by a walk that stops early.
 */
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

#ifndef XFS_FSOP_GEOM_FLAGS_RMAPBT
#define XFS_FSOP_GEOM_FLAGS_RMAPBT (1 << 19)
#endif

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

static int recs_push(struct recs *l, const struct rec *r)
{
	if (PH_GROW(l->v, l->cap, l->n + 1, 32) < 0)
		return -ENOMEM;
	l->v[l->n++] = *r;
	return 0;
}

static void recs_done(struct recs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].reason);
	free(l->v);
	*l = (struct recs){ 0 };
}

_public_ const char *ph_map_method_to_string(enum ph_map_method m)
{
	switch (m) {
	case PH_MAP_AUTO:
		return "auto";
	case PH_MAP_GETFSMAP:
		return "getfsmap";
	case PH_MAP_FIEMAP:
		return "fiemap";
	case PH_MAP_NONE:
		return "none";
	}
	return "?";
}

_public_ int ph_map_method_from_string(const char *s, enum ph_map_method *ret)
{
	if (strcmp(s, "auto") == 0)
		*ret = PH_MAP_AUTO;
	else if (strcmp(s, "getfsmap") == 0)
		*ret = PH_MAP_GETFSMAP;
	else if (strcmp(s, "fiemap") == 0)
		*ret = PH_MAP_FIEMAP;
	else
		return -EINVAL;
	return 0;
}

_public_ const char *ph_owner_type_to_string(enum ph_owner_type t)
{
	static const char *const names[] = {
		[PH_OWNER_FILE] = "file",
		[PH_OWNER_METADATA] = "metadata",
		[PH_OWNER_FREE] = "free",
		[PH_OWNER_UNMOUNTED] = "unmounted",
		[PH_OWNER_UNKNOWN] = "unknown",
	};

	return t < ELEMENTSOF(names) ? names[t] : "?";
}

/* ---- set-up ------------------------------------------------------------ */

static bool have_cap_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
}

/*
 * A filesystem that has shut down (XFS after a metadata error, or a forced
 * shutdown) fails every query with EIO.  What its primary superblock says
 * on the device is all that is left to go by.
 */
static void fs_enter_shutdown(struct ph_mapper *m, struct ph_map_fs *fs)
{
	const char *how;
	int r;

	if (fs->shutdown)
		return;
	fs->shutdown = true;
	fs->layout = ph_layout_free(fs->layout);
	fs->layout_tried = true;
	if (fs->xfs) {
		/* XFS: its btrees on the device, as of the last log checkpoint. */
		r = ph_xfsdisk_open(fs->node, &fs->xdisk);
		if (r == 0) {
			fs->method = PH_MAP_GETFSMAP;
			fs->fs_end = ph_xfsdisk_sectors(fs->xdisk);
		}
		how = r < 0 ? "its on-disk structures cannot be read either" :
		      ph_xfsdisk_has_rmapbt(fs->xdisk) ?
		      "owners come from its on-disk reverse map as of the last log checkpoint, without paths" :
		      "only its on-disk headers, btrees and inode chunks can be located";
	} else {
		r = ph_layout_load_ext4(fs->node, &fs->layout);
		how = "only its on-disk layout can be read";
	}
	if (r < 0)
		ph_dbg(m->ctx, "%s: cannot read it from the device: %s", fs->node, strerror(-r));
	free(fs->notice);
	if (asprintf(&fs->notice, "%s on %s fails with I/O errors: the filesystem has shut down; %s. "
		     "Unmount it and run %s", fs->fstype, fs->mountpoint, how,
		     fs->xfs ? "xfs_repair" : "e2fsck") < 0)
		fs->notice = NULL;
}

static int fs_setup(struct ph_mapper *m, struct ph_map_fs *fs, enum ph_map_method want,
		    struct ph_error *err)
{
	struct xfs_fsop_geom g = { 0 };
	bool rmapbt = false;
	int r;

	fs->root_fd = -EBADF;
	fs->node = fs->part->node;
	fs->start = fs->part->start;
	fs->count = fs->part->count;
	fs->dev = fs->part->dev;
	if (!fs->part->mount) {
		fs->method = PH_MAP_NONE;
		return 0;
	}
	fs->mountpoint = fs->part->mount->mountpoint;
	fs->fstype = fs->part->mount->fstype;
	fs->xfs = strcmp(fs->fstype, "xfs") == 0;
	fs->ext4 = strcmp(fs->fstype, "ext4") == 0;
	if (!fs->xfs && !fs->ext4) {
		ph_error_set(err, "%s: unsupported filesystem %s (mounted on %s); pmemheal maps XFS and ext4",
			     fs->node, fs->fstype, fs->mountpoint);
		return -EPROTONOSUPPORT;
	}
	fs->root_fd = open(fs->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0 && errno == EIO) {
		fs->method = PH_MAP_GETFSMAP;
		fs_enter_shutdown(m, fs);
		return 0;
	}
	if (fs->root_fd < 0) {
		r = negative_errno();
		ph_error_set(err, "%s: cannot open its mount point %s: %s", fs->node, fs->mountpoint,
			     strerror(-r));
		return r;
	}
	if (strcmp(fs->part->mount->root, "/") != 0)
		(void)asprintf(&fs->notice, "%s is a bind mount of %s; paths outside it are not found",
			       fs->mountpoint, fs->part->mount->root);

	if (fs->xfs && ioctl(fs->root_fd, XFS_IOC_FSGEOMETRY, &g) == 0) {
		rmapbt = g.flags & XFS_FSOP_GEOM_FLAGS_RMAPBT;
		fs->fs_end = (uint64_t)g.datablocks * (g.blocksize >> PH_SECTOR_SHIFT);
	}
	r = ph_getfsmap_probe(fs->root_fd, fs->dev, &fs->fsmap_works, &fs->fsmap_owners);
	if (r == -EIO) {
		fs->method = PH_MAP_GETFSMAP;
		fs_enter_shutdown(m, fs);
		return 0;
	}
	if (r < 0) {
		ph_error_set(err, "%s: GETFSMAP on %s failed: %s", fs->node, fs->mountpoint, strerror(-r));
		return r;
	}
	/* ext4's GETFSMAP calls file data "unknown" but never names owners. */
	if (fs->ext4)
		fs->fsmap_owners = false;

	switch (want) {
	case PH_MAP_AUTO:
	case PH_MAP_GETFSMAP:
		fs->method = fs->fsmap_owners ? PH_MAP_GETFSMAP : PH_MAP_FIEMAP;
		if (fs->fsmap_owners)
			break;
		if (rmapbt && !have_cap_sys_admin()) {
			free(fs->notice);
			(void)asprintf(&fs->notice,
				       "GETFSMAP on %s names file owners only with CAP_SYS_ADMIN; using FIEMAP",
				       fs->mountpoint);
		} else if (want == PH_MAP_GETFSMAP) {
			free(fs->notice);
			(void)asprintf(&fs->notice,
				       "GETFSMAP on %s (%s%s) does not name file owners; using FIEMAP",
				       fs->mountpoint, fs->fstype, fs->xfs ? " without rmapbt" : "");
		}
		break;
	default:
		fs->method = PH_MAP_FIEMAP;
		break;
	}
	ph_dbg(m->ctx, "%s on %s: %s, method %s", fs->node, fs->mountpoint, fs->fstype,
	       ph_map_method_to_string(fs->method));
	return 0;
}

_public_ struct ph_mapper *ph_mapper_free(struct ph_mapper *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_fs; i++) {
		safe_close(m->fs[i].root_fd);
		ph_findex_free(m->fs[i].index);
		ph_layout_free(m->fs[i].layout);
		ph_xfsdisk_free(m->fs[i].xdisk);
		free(m->fs[i].notice);
	}
	free(m->fs);
	ph_blkdev_free(m->blk);
	ph_ctx_unref(m->ctx);
	free(m);
	return NULL;
}

_public_ int ph_mapper_new(struct ph_ctx *ctx, const char *device, enum ph_map_method method,
			   struct ph_mapper **ret, struct ph_error *err)
{
	_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ctx = ph_ctx_ref(ctx);
	m->threads = ph_walk_default_threads();
	r = ph_blkdev_open(ctx, device, &m->blk);
	if (r < 0) {
		switch (r) {
		case -ENOENT:
			ph_error_set(err, "%s: no such device", device);
			break;
		case -ENOTBLK:
			ph_error_set(err, "%s: not a block device", device);
			break;
		default:
			ph_error_set(err, "%s: cannot resolve the device: %s", device, strerror(-r));
		}
		return r;
	}
	m->fs = calloc(m->blk->n_parts, sizeof(*m->fs));
	if (!m->fs)
		return -ENOMEM;
	for (size_t i = 0; i < m->blk->n_parts; i++) {
		m->fs[i].part = &m->blk->parts[i];
		m->n_fs++;
		r = fs_setup(m, &m->fs[i], method, err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(m);
	return 0;
}

_public_ void ph_mapper_set_threads(struct ph_mapper *m, unsigned n)
{
	m->threads = n ? n : ph_walk_default_threads();
}

_public_ void ph_mapper_set_resolve_paths(struct ph_mapper *m, bool on)
{
	m->no_paths = !on;
}

_public_ const struct ph_blkdev *ph_mapper_get_blkdev(const struct ph_mapper *m)
{
	return m->blk;
}

_public_ uint64_t ph_mapper_get_size(const struct ph_mapper *m)
{
	return m->blk->size;
}

_public_ bool ph_mapper_is_mounted(const struct ph_mapper *m)
{
	for (size_t i = 0; i < m->n_fs; i++)
		if (m->fs[i].mountpoint)
			return true;
	return false;
}

_public_ size_t ph_mapper_n_fs(const struct ph_mapper *m)
{
	return m->n_fs;
}

_public_ const struct ph_map_fs *ph_mapper_get_fs(const struct ph_mapper *m, size_t i)
{
	return i < m->n_fs ? &m->fs[i] : NULL;
}

_public_ const char *ph_map_fs_get_node(const struct ph_map_fs *fs)
{
	return fs->node;
}

_public_ const char *ph_map_fs_get_mount(const struct ph_map_fs *fs)
{
	return fs->mountpoint;
}

_public_ const char *ph_map_fs_get_fstype(const struct ph_map_fs *fs)
{
	return fs->fstype;
}

_public_ enum ph_map_method ph_map_fs_get_method(const struct ph_map_fs *fs)
{
	return fs->method;
}

_public_ const char *ph_map_fs_get_notice(const struct ph_map_fs *fs)
{
	return fs->notice;
}

_public_ const char *ph_map_fs_get_paths_method(const struct ph_map_fs *fs)
{
	if (!fs->paths_resolved)
		return NULL;
	return fs->paths_method == PH_PATHS_PARENT_POINTERS ? "parent-pointers" : "walk";
}

_public_ void ph_map_fs_get_extent(const struct ph_map_fs *fs, uint64_t *start, uint64_t *count)
{
	*start = fs->start;
	*count = fs->count;
}

_public_ const struct ph_findex_stats *ph_map_fs_get_index_stats(const struct ph_map_fs *fs)
{
	return fs->index ? ph_findex_get_stats(fs->index) : NULL;
}

/* ---- per-filesystem query --------------------------------------------- */

struct fsmap_collect {
	const struct ph_map_fs *fs;
	uint64_t s, e;
	struct recs *out;
	struct ph_ranges *gaps; /* space GETFSMAP could not attribute */
};

static const char *xfs_special(uint64_t owner)
{
	switch (owner) {
	case FMR_OWNER('X', 1):
		return "ag-headers";
	case FMR_OWNER('X', 2):
		return "log";
	case FMR_OWNER('X', 3):
		return "ag-btrees";
	case FMR_OWNER('X', 4):
		return "inode-btree";
	case FMR_OWNER('X', 5):
		return "inodes";
	case FMR_OWNER('X', 6):
		return "refcount-btree";
	case FMR_OWNER('X', 7):
		return "cow-staging";
	case FMR_OWNER('X', 8):
		return "defective";
	}
	return "metadata";
}

static const char *ext4_special(uint64_t owner)
{
	switch (owner) {
	case FMR_OWNER('X', 1):
		return "superblock";
	case FMR_OWNER('X', 2):
		return "log";
	case FMR_OWNER('X', 5):
		return "inodes";
	case FMR_OWNER('f', 1):
		return "group-descriptors";
	case FMR_OWNER('f', 2):
		return "reserved-gdt";
	case FMR_OWNER('f', 3):
		return "block-bitmap";
	case FMR_OWNER('f', 4):
		return "inode-bitmap";
	}
	return "metadata";
}

static int push_unknown(struct recs *out, uint64_t s, uint64_t n, const char *fmt, ...) _printf_(4, 5);

static int collect_fsmap(void *userdata, const struct ph_fsmap_rec *fr)
{
	struct fsmap_collect *c = userdata;
	uint64_t s = MAX(fr->start, c->s), e = MIN(fr->start + fr->count, c->e);
	struct rec r = { .start = s, .count = e - s };

	if (s >= e)
		return 0;
	if (fr->flags & FMR_OF_SPECIAL_OWNER) {
		if (fr->owner == FMR_OWN_FREE && c->fs->shutdown)
			/* Free on disk says nothing of what the unreplayed log
			 * allocated since: never call that free. */
			return push_unknown(c->out, s, e - s,
					    "free in the on-disk btrees, but the filesystem has shut down "
					    "and its log may have allocated it since");
		if (fr->owner == FMR_OWN_FREE)
			r.type = PH_OWNER_FREE;
		else if (fr->owner == FMR_OWN_UNKNOWN)
			return ph_ranges_add(c->gaps, s, e - s);
		else {
			r.type = PH_OWNER_METADATA;
			r.what = c->fs->xfs ? xfs_special(fr->owner) : ext4_special(fr->owner);
		}
		return recs_push(c->out, &r);
	}
	if (fr->flags & FMR_OF_EXTENT_MAP) {
		r.type = PH_OWNER_METADATA;
		r.what = "extent-map";
		r.inode = fr->owner;
		return recs_push(c->out, &r);
	}
	if (c->fs->method != PH_MAP_GETFSMAP)
		return ph_ranges_add(c->gaps, s, e - s);
	r.type = PH_OWNER_FILE;
	r.inode = fr->owner;
	r.offset = fr->offset + (s - fr->start);
	r.shared = fr->flags & FMR_OF_SHARED;
	r.unwritten = fr->flags & FMR_OF_PREALLOC;
	r.attr = fr->flags & FMR_OF_ATTR_FORK;
	return recs_push(c->out, &r);
}

static int ensure_index(struct ph_mapper *m, struct ph_map_fs *fs)
{
	const struct ph_findex_stats *st;
	int r;

	if (fs->index)
		return 0;
	r = ph_findex_build(m->ctx, fs->root_fd, m->threads, true, &fs->index);
	if (r < 0)
		return r;
	st = ph_findex_get_stats(fs->index);
	if (st->walk.unreadable > 0 || st->failed > 0)
		ph_notice(m->ctx, "%s: %" PRIu64 " directories and %" PRIu64 " files could not be read (%s%s%s); "
			  "their blocks show as unknown%s",
			  fs->mountpoint, st->walk.unreadable, st->failed,
			  strerror(st->failed ? st->failed_errno : st->walk.first_unreadable_errno),
			  st->walk.first_unreadable ? ", e.g. " : "",
			  st->walk.first_unreadable ? st->walk.first_unreadable : "",
			  (st->failed_errno == EIO || st->walk.first_unreadable_errno == EIO) ?
			  "; I/O errors: has the filesystem shut down?" : "");
	return 0;
}

static int push_unknown(struct recs *out, uint64_t s, uint64_t n, const char *fmt, ...)
{
	struct rec r = { .start = s, .count = n, .type = PH_OWNER_UNKNOWN };
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vasprintf(&r.reason, fmt, ap);
	va_end(ap);
	if (k < 0)
		return -ENOMEM;
	k = recs_push(out, &r);
	if (k < 0)
		free(r.reason);
	return k;
}

/* Space that is allocated but that GETFSMAP did not attribute and no file
 * in the index maps. */
static int classify_gap(struct ph_mapper *m, struct ph_map_fs *fs, uint64_t s, uint64_t n,
			struct recs *out)
{
	const struct ph_findex_stats *st = fs->index ? ph_findex_get_stats(fs->index) : NULL;
	bool incomplete = st && (st->walk.unreadable > 0 || st->failed > 0);
	int r;

	if (!fs->layout_tried) {
		fs->layout_tried = true;
		r = fs->xfs ? ph_layout_load_xfs(fs->root_fd, &fs->layout)
			    : ph_layout_load_ext4(fs->node, &fs->layout);
		if (r < 0)
			ph_dbg(m->ctx, "%s: cannot read the %s layout: %s", fs->mountpoint, fs->fstype,
			       strerror(-r));
	}
	while (n > 0) {
		uint64_t c = n;
		const char *what = NULL;

		if (fs->layout)
			what = ph_layout_classify(fs->layout, s, n, &c);
		if (what) {
			struct rec rr = { .start = s, .count = c, .type = PH_OWNER_METADATA, .what = what };

			r = recs_push(out, &rr);
		} else if (fs->shutdown)
			r = push_unknown(out, s, c,
					 "the filesystem has shut down, so no owner can be asked for; "
					 "unmount it and run %s, then map again",
					 fs->xfs ? "xfs_repair" : "e2fsck");
		else if (fs->fs_end && s >= fs->fs_end)
			r = push_unknown(out, s, c, "past the end of the filesystem");
		else if (fs->xfs)
			r = push_unknown(out, s, c,
					 "allocated, but no file maps it and this XFS cannot name the owner "
					 "(%s): a btree block, %sor an internal or unlinked inode%s",
					 fs->fsmap_works ? "no rmapbt owner information" : "no GETFSMAP",
					 fs->layout && ph_layout_has_inodes(fs->layout) ? "" :
					 "an inode chunk (listing them needs CAP_SYS_ADMIN), ",
					 incomplete ? ", or a file the walk could not read" : "");
		else
			r = push_unknown(out, s, c,
					 "in use, but ext4 names no owner and no file maps it: an extent tree "
					 "block, a symlink, an unlinked or internal file (quota, %s), or blocks "
					 "the allocator holds preallocated for new files%s",
					 fs->layout ? "orphan file" : "the journal: reading the superblock needs root",
					 incomplete ? ", or a file the walk could not read" : "");
		if (r < 0)
			return r;
		s += c;
		n -= c;
	}
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Sharing, exactly: a sector is shared when more than one file record (two
 * files, or two offsets of one file) owns it.  GETFSMAP returns every owner
 * of the sectors asked about, but its FMR_OF_SHARED flag covers a whole
 * rmap record when any block of it is shared, so file records are split at
 * every other record's edges and flagged by count.  keep_flag: also keep a
 * record's own flag (FIEMAP's is exact, and may know of a sharer the walk
 * could not read).
 */
static size_t edge_index(const uint64_t *edges, size_t n, uint64_t v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (edges[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int split_shared(struct recs *out, size_t first, bool keep_flag)
{
	_cleanup_free_ uint64_t *edges = NULL;
	_cleanup_free_ int64_t *cover = NULL;
	struct recs split = { 0 };
	size_t ne = 0, nfile = 0;
	int r = 0;

	for (size_t i = first; i < out->n; i++)
		nfile += out->v[i].type == PH_OWNER_FILE;
	if (nfile == 0)
		return 0;
	edges = malloc(2 * nfile * sizeof(*edges));
	cover = calloc(2 * nfile + 1, sizeof(*cover));
	if (!edges || !cover)
		return -ENOMEM;
	for (size_t i = first; i < out->n; i++)
		if (out->v[i].type == PH_OWNER_FILE) {
			edges[ne++] = out->v[i].start;
			edges[ne++] = out->v[i].start + out->v[i].count;
		}
	qsort(edges, ne, sizeof(*edges), u64_cmp);
	{
		size_t o = 0;

		for (size_t i = 0; i < ne; i++)
			if (o == 0 || edges[o - 1] != edges[i])
				edges[o++] = edges[i];
		ne = o;
	}
	/* cover[i]: file records over [edges[i], edges[i+1]), by a sweep */
	for (size_t i = first; i < out->n; i++)
		if (out->v[i].type == PH_OWNER_FILE) {
			cover[edge_index(edges, ne, out->v[i].start)]++;
			cover[edge_index(edges, ne, out->v[i].start + out->v[i].count)]--;
		}
	for (size_t i = 1; i < ne; i++)
		cover[i] += cover[i - 1];

	for (size_t i = first; i < out->n && r == 0; i++) {
		const struct rec *x = &out->v[i];
		uint64_t end = x->start + x->count;
		size_t k = edge_index(edges, ne, x->start);

		if (x->type != PH_OWNER_FILE)
			continue;
		/* One piece per run of elementary intervals with the same flag. */
		while (k < ne && edges[k] < end && r == 0) {
			bool shared = cover[k] > 1 || (keep_flag && x->shared);
			size_t j = k + 1;
			struct rec piece = *x;

			while (j < ne && edges[j] < end && (cover[j] > 1 || (keep_flag && x->shared)) == shared)
				j++;
			piece.reason = NULL;
			piece.start = edges[k];
			piece.count = MIN(j < ne ? edges[j] : end, end) - edges[k];
			piece.offset = x->offset + (edges[k] - x->start);
			piece.shared = shared;
			r = recs_push(&split, &piece);
			k = j;
		}
	}
	if (r < 0) {
		recs_done(&split);
		return r;
	}
	/* Replace the file records with their pieces. */
	{
		size_t o = first;

		for (size_t i = first; i < out->n; i++)
			if (out->v[i].type != PH_OWNER_FILE)
				out->v[o++] = out->v[i];
		out->n = o;
		for (size_t i = 0; i < split.n && r == 0; i++)
			r = recs_push(out, &split.v[i]);
		free(split.v);
	}
	return r;
}

static void drop_recs(struct recs *out, size_t first)
{
	for (size_t i = first; i < out->n; i++)
		free(out->v[i].reason);
	out->n = first;
}

/* Records of a filesystem that has shut down: the on-disk XFS reader, or
 * nothing (everything then becomes a gap). */
static int query_shutdown(struct ph_mapper *m, struct ph_map_fs *fs, struct fsmap_collect *c)
{
	size_t first = c->out->n;
	int r;

	if (fs->xdisk) {
		r = ph_xfsdisk_fsmap(fs->xdisk, c->s, c->e - c->s, collect_fsmap, c);
		if (r == 0)
			return 0;
		ph_warn(m->ctx, "%s: reading its on-disk btrees failed: %s", fs->node, strerror(-r));
		drop_recs(c->out, first);
		ph_ranges_clear(c->gaps);
	}
	return ph_ranges_add(c->gaps, c->s, c->e - c->s);
}

static int query_live(struct ph_mapper *m, struct ph_map_fs *fs, struct fsmap_collect *c)
{
	size_t first = c->out->n;
	int r;

	if (fs->fsmap_works) {
		r = ph_getfsmap(fs->root_fd, fs->dev, c->s, c->e - c->s, collect_fsmap, c);
		if (r == -EIO) {
			/* Shut down since we started: drop what we got, start over. */
			drop_recs(c->out, first);
			ph_ranges_clear(c->gaps);
			fs_enter_shutdown(m, fs);
			return query_shutdown(m, fs, c);
		}
		if (r < 0) {
			ph_err(m->ctx, "%s: GETFSMAP of sectors %" PRIu64 "+%" PRIu64 " failed: %s",
			       fs->mountpoint, c->s, c->e - c->s, strerror(-r));
			return r;
		}
	} else {
		r = ph_ranges_add(c->gaps, c->s, c->e - c->s);
		if (r < 0)
			return r;
	}

	if (fs->method == PH_MAP_FIEMAP) {
		struct ph_fext **hits;
		size_t nh;

		r = ensure_index(m, fs);
		if (r < 0)
			return r;
		r = ph_findex_query(fs->index, c->s, c->e - c->s, &hits, &nh);
		if (r < 0)
			return r;
		ph_ranges_normalize(c->gaps);
		for (size_t i = 0; i < nh; i++) {
			const struct ph_fext *x = hits[i];
			uint64_t xs = MAX(x->physical, c->s), xe = MIN(x->physical + x->count, c->e);
			struct rec rr = {
				.start = xs,
				.count = xe - xs,
				.type = PH_OWNER_FILE,
				.inode = x->ino,
				.offset = x->logical + (xs - x->physical),
				.shared = x->flags & PH_FEXT_SHARED,
				.unwritten = x->flags & PH_FEXT_UNWRITTEN,
				.attr = x->flags & PH_FEXT_ATTR,
				.dir = x->flags & PH_FEXT_DIR,
			};
			struct ph_range cut = { .start = xs, .count = xe - xs };

			r = recs_push(c->out, &rr);
			if (r == 0)
				r = ph_ranges_subtract(c->gaps, &cut);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int fs_query(struct ph_mapper *m, struct ph_map_fs *fs, uint64_t s, uint64_t n,
		    struct recs *out)
{
	struct ph_ranges gaps = { 0 }, uncovered = { 0 };
	struct fsmap_collect c = { .fs = fs, .s = s, .e = s + n, .out = out, .gaps = &gaps };
	size_t first = out->n;
	int r;

	r = fs->shutdown ? query_shutdown(m, fs, &c) : query_live(m, fs, &c);
	if (r < 0)
		goto out;
	r = split_shared(out, first, fs->method == PH_MAP_FIEMAP);
	if (r < 0)
		goto out;
	ph_ranges_normalize(&gaps);
	for (size_t i = 0; i < gaps.n; i++) {
		r = classify_gap(m, fs, gaps.v[i].start, gaps.v[i].count, out);
		if (r < 0)
			goto out;
	}

	/* Whatever no record covers is unknown, so that owners cover the range. */
	r = ph_ranges_add(&uncovered, s, n);
	for (size_t i = first; r == 0 && i < out->n; i++) {
		struct ph_range cut = { .start = out->v[i].start, .count = out->v[i].count };

		r = ph_ranges_subtract(&uncovered, &cut);
	}
	for (size_t i = 0; r == 0 && i < uncovered.n; i++) {
		if (fs->fs_end && uncovered.v[i].start >= fs->fs_end)
			r = push_unknown(out, uncovered.v[i].start, uncovered.v[i].count,
					 "past the end of the filesystem");
		else
			r = push_unknown(out, uncovered.v[i].start, uncovered.v[i].count,
					 "the filesystem reports no owner for this space");
	}
out:
	ph_ranges_clear(&gaps);
	ph_ranges_clear(&uncovered);
	return r;
}

/* ---- merging and ordering --------------------------------------------- */

static int type_rank(enum ph_owner_type t)
{
	return (int)t;
}

static int owner_cmp(const void *a, const void *b)
{
	const struct ph_owner *x = a, *y = b;

	if (x->sector != y->sector)
		return x->sector < y->sector ? -1 : 1;
	if (x->type != y->type)
		return type_rank(x->type) - type_rank(y->type);
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	if (x->attr_fork != y->attr_fork)
		return x->attr_fork - y->attr_fork;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Key order for merging: same owner identity, then by sector. */
static int owner_identity_cmp(const void *a, const void *b)
{
	const struct ph_owner *x = a, *y = b;
	int k;

	if (x->fs != y->fs)
		return x->fs < y->fs ? -1 : 1;
	if (x->type != y->type)
		return type_rank(x->type) - type_rank(y->type);
	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	if (x->attr_fork != y->attr_fork)
		return x->attr_fork - y->attr_fork;
	k = strcmp(x->what ? x->what : "", y->what ? y->what : "");
	if (k)
		return k;
	k = strcmp(x->reason ? x->reason : "", y->reason ? y->reason : "");
	if (k)
		return k;
	if (x->sector != y->sector)
		return x->sector < y->sector ? -1 : 1;
	return 0;
}

static bool mergeable(const struct ph_owner *a, const struct ph_owner *b)
{
	if (a->fs != b->fs || a->type != b->type || a->sector + a->count != b->sector)
		return false;
	if (strcmp(a->what ? a->what : "", b->what ? b->what : "") != 0 ||
	    strcmp(a->reason ? a->reason : "", b->reason ? b->reason : "") != 0)
		return false;
	if (a->type != PH_OWNER_FILE)
		return a->inode == b->inode;
	return a->inode == b->inode && a->attr_fork == b->attr_fork &&
	       a->offset + a->length == b->offset && a->shared == b->shared &&
	       a->unwritten == b->unwritten;
}

static void merge_owners(struct ph_map_result *res)
{
	size_t o = 0;

	if (res->n_owners < 2)
		return;
	qsort(res->owners, res->n_owners, sizeof(*res->owners), owner_identity_cmp);
	for (size_t i = 1; i < res->n_owners; i++) {
		struct ph_owner *cur = &res->owners[o], *nx = &res->owners[i];

		if (mergeable(cur, nx)) {
			cur->count += nx->count;
			cur->length += nx->length;
			free(nx->reason);
			nx->reason = NULL;
		} else
			res->owners[++o] = *nx;
	}
	res->n_owners = o + 1;
	qsort(res->owners, res->n_owners, sizeof(*res->owners), owner_cmp);
}

/* ---- path attachment -------------------------------------------------- */

static int ino_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int attach_paths(struct ph_mapper *m, struct ph_map_fs *fs, struct ph_map_result *res, size_t n)
{
	_cleanup_free_ uint64_t *inos = NULL;
	struct ph_inode_paths *paths = NULL;
	size_t ni = 0, cap = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < res[i].n_owners; j++) {
			struct ph_owner *o = &res[i].owners[j];

			if (o->fs != fs || o->type != PH_OWNER_FILE)
				continue;
			if (PH_GROW(inos, cap, ni + 1, 64) < 0)
				return -ENOMEM;
			inos[ni++] = o->inode;
		}
	if (ni == 0)
		return 0;
	qsort(inos, ni, sizeof(*inos), ino_cmp);
	{
		size_t u = 0;

		for (size_t i = 0; i < ni; i++)
			if (u == 0 || inos[u - 1] != inos[i])
				inos[u++] = inos[i];
		ni = u;
	}
	r = ph_paths_resolve(m->ctx, fs->root_fd, fs->mountpoint, inos, ni, m->threads, &paths,
			     &fs->paths_method);
	if (r < 0)
		return r;
	fs->paths_resolved = true;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < res[i].n_owners; j++) {
			struct ph_owner *o = &res[i].owners[j];
			uint64_t *hit;
			struct ph_inode_paths *p;

			if (o->fs != fs || o->type != PH_OWNER_FILE)
				continue;
			hit = bsearch(&o->inode, inos, ni, sizeof(*inos), ino_cmp);
			if (!hit)
				continue;
			p = &paths[hit - inos];
			o->directory = o->directory || p->is_dir;
			o->symlink = p->is_symlink;
			if (p->n_paths == 0)
				continue;
			o->paths = calloc(p->n_paths, sizeof(char *));
			if (!o->paths) {
				r = -ENOMEM;
				goto out;
			}
			for (size_t k = 0; k < p->n_paths; k++) {
				o->paths[k] = strdup(p->paths[k]);
				if (!o->paths[k]) {
					r = -ENOMEM;
					goto out;
				}
				o->n_paths++;
			}
		}
out:
	ph_inode_paths_free(paths, ni);
	return r;
}

/* ---- the query -------------------------------------------------------- */

static int owner_from_rec(struct ph_map_result *res, const struct ph_map_fs *fs, struct rec *r)
{
	struct ph_owner *o, *v;

	v = reallocarray(res->owners, res->n_owners + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	res->owners = v;
	o = &v[res->n_owners++];
	*o = (struct ph_owner){
		.type = r->type,
		.sector = r->start + (fs ? fs->start : 0),
		.count = r->count,
		.fs = fs,
		.inode = r->inode,
		.offset = r->offset << PH_SECTOR_SHIFT,
		.length = r->count << PH_SECTOR_SHIFT,
		.shared = r->shared,
		.unwritten = r->unwritten,
		.attr_fork = r->attr,
		.directory = r->dir,
		.what = r->what,
		.reason = TAKE_PTR(r->reason),
	};
	return 0;
}

static int add_owner(struct ph_map_result *res, const struct ph_map_fs *fs, enum ph_owner_type t,
		     uint64_t s, uint64_t n, const char *reason)
{
	struct rec r = { .type = t, .start = s, .count = n };

	if (reason && !(r.reason = strdup(reason)))
		return -ENOMEM;
	return owner_from_rec(res, fs, &r);
}

static int map_one(struct ph_mapper *m, const struct ph_range *q, struct ph_map_result *res)
{
	struct ph_ranges outside = { 0 };
	int r;

	res->range = *q;
	r = ph_ranges_add(&outside, q->start, q->count);
	for (size_t i = 0; r == 0 && i < m->n_fs; i++) {
		struct ph_map_fs *fs = &m->fs[i];
		struct ph_range span = { .start = fs->start, .count = fs->count }, part;
		struct recs recs = { 0 };

		if (!ph_range_intersect(q, &span, &part))
			continue;
		r = ph_ranges_subtract(&outside, &part);
		if (r < 0)
			break;
		if (fs->method == PH_MAP_NONE) {
			r = add_owner(res, fs, PH_OWNER_UNMOUNTED, part.start - fs->start, part.count, NULL);
			continue;
		}
		r = fs_query(m, fs, part.start - fs->start, part.count, &recs);
		for (size_t k = 0; r == 0 && k < recs.n; k++)
			r = owner_from_rec(res, fs, &recs.v[k]);
		recs_done(&recs);
	}
	/* Parts of a partitioned disk that no partition covers. */
	for (size_t i = 0; r == 0 && i < outside.n; i++) {
		struct rec rr = {
			.type = PH_OWNER_UNKNOWN,
			.start = outside.v[i].start,
			.count = outside.v[i].count,
			.reason = strdup("not in any partition (partition table or unpartitioned space)"),
		};
		r = rr.reason ? owner_from_rec(res, NULL, &rr) : -ENOMEM;
	}
	ph_ranges_clear(&outside);
	if (r == 0)
		merge_owners(res);
	return r;
}

_public_ void ph_map_results_free(struct ph_map_result *res, size_t n)
{
	if (!res)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < res[i].n_owners; j++) {
			struct ph_owner *o = &res[i].owners[j];

			for (size_t k = 0; k < o->n_paths; k++)
				free(o->paths[k]);
			free(o->paths);
			free(o->reason);
		}
		free(res[i].owners);
	}
	free(res);
}

_public_ int ph_mapper_map(struct ph_mapper *m, const struct ph_range *ranges, size_t n,
			   struct ph_map_result **ret, struct ph_error *err)
{
	struct ph_map_result *res;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t end;

		if (ranges[i].count == 0 || __builtin_add_overflow(ranges[i].start, ranges[i].count, &end) ||
		    end > m->blk->size) {
			ph_error_set(err, "%s: range %" PRIu64 "+%" PRIu64 " extends past the end of the device (%" PRIu64 " sectors)",
				     m->blk->path, ranges[i].start, ranges[i].count, m->blk->size);
			return -ERANGE;
		}
	}
	res = calloc(MAX(n, (size_t)1), sizeof(*res));
	if (!res)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = map_one(m, &ranges[i], &res[i]);
	/* A filesystem that has shut down cannot be walked: inode numbers only. */
	for (size_t i = 0; r == 0 && !m->no_paths && i < m->n_fs; i++)
		if (m->fs[i].method != PH_MAP_NONE && !m->fs[i].shutdown)
			r = attach_paths(m, &m->fs[i], res, n);
	if (r < 0) {
		ph_error_set(err, "%s: mapping failed: %s", m->blk->path, strerror(-r));
		ph_map_results_free(res, n);
		return r;
	}
	*ret = res;
	return 0;
}
