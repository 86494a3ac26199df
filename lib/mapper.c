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
 * or by a walk that stops early.  This file sets the map filesystems up and
 * merges, orders and names what mapper-query.c finds in each.
 */
#include "mapper-internal.h"

#ifndef XFS_FSOP_GEOM_FLAGS_RMAPBT
#define XFS_FSOP_GEOM_FLAGS_RMAPBT (1 << 19)
#endif

int recs_push(struct recs *l, const struct rec *r)
{
	if (PH_GROW(l->v, l->cap, l->n + 1, 32) < 0)
		return -ENOMEM;
	l->v[l->n++] = *r;
	return 0;
}

void recs_done(struct recs *l)
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
void fs_enter_shutdown(struct ph_mapper *m, struct ph_map_fs *fs)
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
