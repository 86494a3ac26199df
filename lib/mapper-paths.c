/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inode to path resolution.
 *
 * Parent pointers: XFS_IOC_GETPARENTS_BY_HANDLE gives each (parent inode,
 * name) of an inode; following parents up to the root gives every path.  A
 * handle needs the inode's generation, which BULKSTAT gives.  Both need
 * CAP_SYS_ADMIN; without it, or on filesystems without parent pointers, we
 * walk.
 *
 * Walk: readdir reports each entry's inode number, so matching costs no
 * stat().  The first time an inode is found we stat it once to learn its
 * link count; the walk stops when every inode has all its links.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <xfs/xfs.h>

#include "mapper-paths.h"
#include "walk.h"

#ifndef XFS_IOC_GETPARENTS
/* Linux 6.10 UAPI, not yet in every xfslibs-dev. */
#define XFS_GETPARENTS_OFLAG_ROOT (1U << 0)
#define XFS_GETPARENTS_OFLAG_DONE (1U << 1)
struct xfs_getparents_rec {
	struct xfs_handle gpr_parent;
	__u32 gpr_reclen;
	__u32 gpr_reserved;
	char gpr_name[];
};
struct xfs_getparents {
	struct xfs_attrlist_cursor gp_cursor;
	__u16 gp_iflags;
	__u16 gp_oflags;
	__u32 gp_bufsize;
	__u64 gp_reserved;
	__u64 gp_buffer;
};
struct xfs_getparents_by_handle {
	struct xfs_handle gph_handle;
	struct xfs_getparents gph_request;
};
#define XFS_IOC_GETPARENTS _IOWR('X', 62, struct xfs_getparents)
#define XFS_IOC_GETPARENTS_BY_HANDLE _IOWR('X', 63, struct xfs_getparents_by_handle)
#endif

_public_ void ph_inode_paths_free(struct ph_inode_paths *p, size_t n)
{
	if (!p)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < p[i].n_paths; j++)
			free(p[i].paths[j]);
		free(p[i].paths);
	}
	free(p);
}

static int add_path(struct ph_inode_paths *p, char *path)
{
	char **v = reallocarray(p->paths, p->n_paths + 1, sizeof(*v));

	if (!v) {
		free(path);
		return -ENOMEM;
	}
	p->paths = v;
	p->paths[p->n_paths++] = path;
	return 0;
}

static char *join3(const char *mountpoint, const char *rel, const char *name)
{
	bool root = strcmp(mountpoint, "/") == 0;
	char *p;
	int k;

	if (!rel || strcmp(rel, ".") == 0)
		k = asprintf(&p, "%s/%s", root ? "" : mountpoint, name);
	else
		k = asprintf(&p, "%s/%s/%s", root ? "" : mountpoint, rel, name);
	return k < 0 ? NULL : p;
}

/* ---- parent pointers -------------------------------------------------- */

_public_ bool ph_paths_have_parent_pointers(int root_fd)
{
	char buf[4096];
	struct xfs_getparents gp = {
		.gp_bufsize = sizeof(buf),
		.gp_buffer = (uintptr_t)buf,
	};

	return ioctl(root_fd, XFS_IOC_GETPARENTS, &gp) == 0;
}

struct pptr {
	int root_fd;
	struct xfs_handle fshandle; /* fsid part reused for every inode */
	uint64_t root_ino;
	const char *mountpoint;
	/* memo of directory inode -> path */
	uint64_t *dir_ino;
	char **dir_path;
	size_t n_dirs;
};

static int inode_gen(int root_fd, uint64_t ino, uint32_t *ret_gen, uint32_t *ret_nlink,
		     uint32_t *ret_mode)
{
	struct {
		struct xfs_bulk_ireq hdr;
		struct xfs_bulkstat bs[1];
	} req = { .hdr = { .ino = ino, .icount = 1 } };

	if (ioctl(root_fd, XFS_IOC_BULKSTAT, &req) < 0)
		return negative_errno();
	if (req.hdr.ocount < 1 || req.bs[0].bs_ino != ino)
		return -ENOENT;
	*ret_gen = req.bs[0].bs_gen;
	*ret_nlink = req.bs[0].bs_nlink;
	*ret_mode = req.bs[0].bs_mode;
	return 0;
}

static void make_handle(const struct pptr *pp, uint64_t ino, uint32_t gen, struct xfs_handle *h)
{
	*h = pp->fshandle;
	h->ha_fid.fid_len = sizeof(xfs_fid_t) - sizeof(h->ha_fid.fid_len);
	h->ha_fid.fid_pad = 0;
	h->ha_fid.fid_gen = gen;
	h->ha_fid.fid_ino = ino;
}

typedef int (*parent_fn)(struct pptr *pp, void *userdata, uint64_t parent_ino,
			 uint32_t parent_gen, const char *name);

/* Call fn for each parent pointer of (ino, gen); 1 when ino is the root. */
static int each_parent(struct pptr *pp, uint64_t ino, uint32_t gen, parent_fn fn, void *userdata)
{
	_cleanup_free_ char *buf = NULL;
	struct xfs_getparents_by_handle req = { 0 };
	const size_t bufsize = 65536;

	buf = malloc(bufsize);
	if (!buf)
		return -ENOMEM;
	make_handle(pp, ino, gen, &req.gph_handle);
	req.gph_request.gp_buffer = (uintptr_t)buf;
	for (;;) {
		struct xfs_getparents *gp = &req.gph_request;
		char *p = buf, *end;

		memset(buf, 0, bufsize);
		gp->gp_bufsize = bufsize;
		if (ioctl(pp->root_fd, XFS_IOC_GETPARENTS_BY_HANDLE, &req) < 0)
			return negative_errno();
		if (gp->gp_oflags & XFS_GETPARENTS_OFLAG_ROOT)
			return 1;
		end = buf + MIN((size_t)gp->gp_bufsize, bufsize);
		/* Records are packed; a zero reclen ends the batch. */
		while (p + sizeof(struct xfs_getparents_rec) <= end) {
			struct xfs_getparents_rec *rec = (struct xfs_getparents_rec *)p;
			int r;

			if (rec->gpr_reclen < sizeof(*rec) || p + rec->gpr_reclen > end)
				break;
			r = fn(pp, userdata, rec->gpr_parent.ha_fid.fid_ino,
			       rec->gpr_parent.ha_fid.fid_gen, rec->gpr_name);
			if (r < 0)
				return r;
			p += rec->gpr_reclen;
		}
		if (gp->gp_oflags & XFS_GETPARENTS_OFLAG_DONE)
			return 0;
	}
}

static int dir_path(struct pptr *pp, uint64_t ino, uint32_t gen, unsigned depth, char **ret);

struct dir_walk_up {
	char *path;
	unsigned depth;
};

static int dir_parent(struct pptr *pp, void *userdata, uint64_t pino, uint32_t pgen, const char *name)
{
	struct dir_walk_up *d = userdata;
	_cleanup_free_ char *ppath = NULL;
	int r;

	if (d->path)
		return 0; /* a directory has one parent; take the first */
	r = dir_path(pp, pino, pgen, d->depth + 1, &ppath);
	if (r < 0)
		return r;
	if (asprintf(&d->path, "%s/%s", strcmp(ppath, "/") == 0 ? "" : ppath, name) < 0) {
		d->path = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Absolute path of directory ino, memoized. */
static int dir_path(struct pptr *pp, uint64_t ino, uint32_t gen, unsigned depth, char **ret)
{
	struct dir_walk_up d = { .depth = depth };
	uint64_t *vi;
	char **vp;
	int r;

	if (depth > 4096)
		return -ELOOP;
	if (ino == pp->root_ino)
		return (*ret = strdup(pp->mountpoint)) ? 0 : -ENOMEM;
	for (size_t i = 0; i < pp->n_dirs; i++)
		if (pp->dir_ino[i] == ino)
			return (*ret = strdup(pp->dir_path[i])) ? 0 : -ENOMEM;
	r = each_parent(pp, ino, gen, dir_parent, &d);
	if (r == 1) {
		free(d.path);
		return (*ret = strdup(pp->mountpoint)) ? 0 : -ENOMEM;
	}
	if (r < 0) {
		free(d.path);
		return r;
	}
	if (!d.path)
		return -ENOENT;
	vi = reallocarray(pp->dir_ino, pp->n_dirs + 1, sizeof(*vi));
	if (vi)
		pp->dir_ino = vi;
	vp = reallocarray(pp->dir_path, pp->n_dirs + 1, sizeof(*vp));
	if (vp)
		pp->dir_path = vp;
	if (vi && vp && (pp->dir_path[pp->n_dirs] = strdup(d.path)))
		pp->dir_ino[pp->n_dirs++] = ino;
	*ret = d.path;
	return 0;
}

static int file_parent(struct pptr *pp, void *userdata, uint64_t pino, uint32_t pgen, const char *name)
{
	struct ph_inode_paths *res = userdata;
	_cleanup_free_ char *ppath = NULL;
	char *p;
	int r;

	r = dir_path(pp, pino, pgen, 1, &ppath);
	if (r == -ENOENT || r == -ESTALE)
		return 0; /* parent vanished under us */
	if (r < 0)
		return r;
	if (asprintf(&p, "%s/%s", strcmp(ppath, "/") == 0 ? "" : ppath, name) < 0)
		return -ENOMEM;
	return add_path(res, p);
}

static int resolve_parent_pointers(struct ph_ctx *ctx, int root_fd, const char *mountpoint,
				   const uint64_t *inos, size_t n, struct ph_inode_paths *res)
{
	struct pptr pp = { .root_fd = root_fd, .mountpoint = mountpoint };
	struct xfs_fsop_handlereq hreq = { 0 };
	struct stat st;
	__u32 hlen = sizeof(pp.fshandle);
	int r = 0;

	if (fstat(root_fd, &st) < 0)
		return negative_errno();
	pp.root_ino = st.st_ino;
	hreq.fd = root_fd;
	hreq.ohandle = &pp.fshandle;
	hreq.ohandlen = &hlen;
	if (ioctl(root_fd, XFS_IOC_FD_TO_HANDLE, &hreq) < 0)
		return negative_errno();

	for (size_t i = 0; i < n; i++) {
		uint32_t gen, nlink, mode;

		if (inos[i] == pp.root_ino) {
			res[i].is_dir = true;
			res[i].nlink = 1;
			r = add_path(&res[i], strdup(mountpoint));
			if (r < 0)
				break;
			continue;
		}
		r = inode_gen(root_fd, inos[i], &gen, &nlink, &mode);
		if (r == -ENOENT) {
			r = 0;
			continue; /* freed since it was mapped */
		}
		if (r < 0)
			break;
		res[i].nlink = nlink;
		res[i].is_dir = S_ISDIR(mode);
		res[i].is_symlink = S_ISLNK(mode);
		r = each_parent(&pp, inos[i], gen, file_parent, &res[i]);
		if (r == -ESTALE || r == -ENOENT)
			r = 0;
		if (r < 0)
			break;
	}
	for (size_t i = 0; i < pp.n_dirs; i++)
		free(pp.dir_path[i]);
	free(pp.dir_path);
	free(pp.dir_ino);
	if (r < 0)
		ph_dbg(ctx, "Parent pointer lookup failed: %s", strerror(-r));
	return r < 0 ? r : 0;
}

/* ---- walk ------------------------------------------------------------- */

struct target {
	uint64_t ino;
	size_t slot;
};

struct walk_shared {
	const char *mountpoint;
	struct target *targets; /* sorted by ino */
	size_t n;
	struct ph_inode_paths *res;
	bool *done;
	size_t remaining;
	pthread_mutex_t lock;
};

static int target_cmp(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int walk_entry(void *state, int dirfd, const char *dir_relpath, const char *name,
		      uint64_t ino, unsigned char d_type)
{
	struct walk_shared *w = state;
	struct target key = { .ino = ino }, *t;
	struct ph_inode_paths *res;
	char *path;
	int r = 0;

	t = bsearch(&key, w->targets, w->n, sizeof(*t), target_cmp);
	if (!t)
		return 0;
	path = join3(w->mountpoint, dir_relpath, name);
	if (!path)
		return -ENOMEM;

	pthread_mutex_lock(&w->lock);
	res = &w->res[t->slot];
	if (w->done[t->slot]) {
		free(path);
		goto out;
	}
	if (res->n_paths == 0) {
		struct stat st;

		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == ino) {
			res->is_dir = S_ISDIR(st.st_mode);
			res->is_symlink = S_ISLNK(st.st_mode);
			res->nlink = res->is_dir ? 1 : (uint32_t)st.st_nlink;
		}
	}
	r = add_path(res, path);
	if (r < 0)
		goto out;
	if (res->nlink > 0 && res->n_paths >= res->nlink) {
		w->done[t->slot] = true;
		if (--w->remaining == 0)
			r = 1;
	}
out:
	pthread_mutex_unlock(&w->lock);
	return r;
}

static int resolve_walk(struct ph_ctx *ctx, int root_fd, const char *mountpoint,
			const uint64_t *inos, size_t n, unsigned nthreads,
			struct ph_inode_paths *res)
{
	static const struct ph_walk_ops ops = { .entry = walk_entry };
	_cleanup_free_ struct target *targets = NULL;
	_cleanup_free_ bool *done = NULL;
	_cleanup_free_ void **states = NULL;
	struct walk_shared w = {
		.mountpoint = mountpoint,
		.res = res,
		.lock = PTHREAD_MUTEX_INITIALIZER,
	};
	struct ph_walk_stats stats;
	struct stat st;
	int r;

	if (fstat(root_fd, &st) < 0)
		return negative_errno();
	targets = calloc(MAX(n, (size_t)1), sizeof(*targets));
	done = calloc(MAX(n, (size_t)1), sizeof(*done));
	states = calloc(nthreads, sizeof(*states));
	if (!targets || !done || !states)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (inos[i] == st.st_ino) {
			/* The root has no name in any directory. */
			res[i].is_dir = true;
			res[i].nlink = 1;
			r = add_path(&res[i], strdup(mountpoint));
			if (r < 0)
				return r;
			done[i] = true;
			continue;
		}
		targets[w.n++] = (struct target){ .ino = inos[i], .slot = i };
		w.remaining++;
	}
	if (w.remaining == 0)
		return 0;
	qsort(targets, w.n, sizeof(*targets), target_cmp);
	w.targets = targets;
	w.done = done;
	for (unsigned i = 0; i < nthreads; i++)
		states[i] = &w;
	r = ph_walk(ctx, root_fd, nthreads, &ops, states, &stats);
	if (r >= 0 && stats.unreadable > 0)
		ph_notice(ctx, "%s: %" PRIu64 " directories could not be read (e.g. %s: %s); "
			  "paths below them are not reported",
			  mountpoint, stats.unreadable, stats.first_unreadable,
			  strerror(stats.first_unreadable_errno));
	ph_walk_stats_done(&stats);
	pthread_mutex_destroy(&w.lock);
	return r < 0 ? r : 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

_public_ int ph_paths_resolve(struct ph_ctx *ctx, int root_fd, const char *mountpoint,
			      const uint64_t *inos, size_t n, unsigned nthreads,
			      struct ph_inode_paths **ret, enum ph_paths_method *ret_method)
{
	struct ph_inode_paths *res;
	enum ph_paths_method method = PH_PATHS_WALK;
	int r = -EOPNOTSUPP;

	res = calloc(MAX(n, (size_t)1), sizeof(*res));
	if (!res)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		res[i].ino = inos[i];

	if (ph_paths_have_parent_pointers(root_fd)) {
		r = resolve_parent_pointers(ctx, root_fd, mountpoint, inos, n, res);
		if (r == 0)
			method = PH_PATHS_PARENT_POINTERS;
		else {
			ph_info(ctx, "%s: parent pointers unusable (%s), walking the tree instead",
				mountpoint, strerror(-r));
			for (size_t i = 0; i < n; i++) {
				for (size_t j = 0; j < res[i].n_paths; j++)
					free(res[i].paths[j]);
				free(res[i].paths);
				res[i] = (struct ph_inode_paths){ .ino = inos[i] };
			}
		}
	}
	if (r != 0) {
		r = resolve_walk(ctx, root_fd, mountpoint, inos, n, nthreads, res);
		if (r < 0) {
			ph_inode_paths_free(res, n);
			return r;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (res[i].n_paths > 1)
			qsort(res[i].paths, res[i].n_paths, sizeof(char *), str_cmp);
	*ret = res;
	*ret_method = method;
	return 0;
}
