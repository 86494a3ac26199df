/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Probing where a file lives.  Reflink support is read from XFS's geometry
 * (ext4 has none); the block size from statvfs; DAX from statx.  The pmem
 * namespace is found by the filesystem's block device: the namespace's
 * disk itself or one of its partitions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xfs/xfs.h>

#include "platform.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

_public_ void ph_place_done(struct ph_place *p)
{
	free(p->path);
	free(p->mountpoint);
	free(p->fstype);
	free(p->fsnode);
	*p = (struct ph_place){ 0 };
}

_public_ int ph_fs_probe(int fd, const char *fstype, bool *ret_reflink, uint32_t *ret_block_size)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return negative_errno();
	*ret_block_size = (uint32_t)sv.f_bsize;
	*ret_reflink = false;
	if (fstype && strcmp(fstype, "xfs") == 0) {
		struct xfs_fsop_geom g = { 0 };

		if (ioctl(fd, XFS_IOC_FSGEOMETRY, &g) == 0)
			*ret_reflink = g.flags & XFS_FSOP_GEOM_FLAGS_REFLINK;
	}
	return 0;
}

_public_ int ph_place_find(struct ph_ctx *ctx, const struct ph_topology *t, const char *path,
			   struct ph_place *ret, struct ph_error *err)
{
	struct ph_place p = { 0 };
	struct ph_mount *m = NULL;
	struct statx stx;
	_cleanup_close_ int fd = -EBADF;
	char real[PATH_MAX];
	int r;

	if (!realpath(path, real)) {
		r = negative_errno();
		ph_error_set(err, "%s: %s", path, strerror(-r));
		return r;
	}
	p.path = strdup(real);
	if (!p.path)
		return -ENOMEM;
	if (statx(AT_FDCWD, real, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0) {
		r = negative_errno();
		ph_error_set(err, "%s: %s", real, strerror(-r));
		goto fail;
	}
	p.dax = stx.stx_attributes_mask & STATX_ATTR_DAX && stx.stx_attributes & STATX_ATTR_DAX;
	r = ph_mountinfo_find(ctx, makedev(stx.stx_dev_major, stx.stx_dev_minor), NULL, &m);
	if (r < 0) {
		ph_error_set(err, "%s: cannot find its filesystem in the mount table", real);
		goto fail;
	}
	p.mountpoint = strdup(m->mountpoint);
	p.fstype = strdup(m->fstype);
	p.fsnode = strdup(m->source);
	if (!p.mountpoint || !p.fstype || !p.fsnode) {
		r = -ENOMEM;
		goto fail;
	}
	fd = open(p.mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		(void)ph_fs_probe(fd, p.fstype, &p.reflink, &p.block_size);

	/* The namespace whose disk is the filesystem's device or its parent. */
	for (size_t i = 0; t && i < t->n_namespaces; i++) {
		_cleanup_(ph_blkdev_freep) struct ph_blkdev *b = NULL;
		const struct ph_namespace *ns = &t->namespaces[i];

		if (!ns->blockdev || ph_blkdev_open_name(ctx, ns->blockdev, &b) < 0)
			continue;
		for (size_t k = 0; k < b->n_parts; k++)
			if (b->parts[k].dev == m->dev) {
				p.ns = ns;
				p.bus = &t->buses[t->regions[ns->region].bus];
				p.part_start = b->parts[k].start;
			}
	}
	ph_mount_free(m);
	*ret = p;
	return 0;
fail:
	ph_mount_free(m);
	ph_place_done(&p);
	return r;
}
