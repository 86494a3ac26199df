/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * XFS layout: a sorted list of known metadata regions, in sectors, from the
 * geometry (AG headers, internal log) and from INUMBERS (inode chunks).
 *
 * XFS block numbers: an "fsblock" packs (AG number << agblklog | AG block),
 * so a disk address is (agno * agblocks + agbno) * sectors-per-block.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xfs/xfs.h>

#include "mapper-xfs.h"

struct region {
	uint64_t start, count;
	const char *what;
};

struct ph_xfs_layout {
	struct region *v;
	size_t n, cap;
	bool inodes;
};

static int add_region(struct ph_xfs_layout *l, uint64_t start, uint64_t count, const char *what)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct region *v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct region){ .start = start, .count = count, .what = what };
	return 0;
}

static unsigned highbit_log(uint64_t v)
{
	/* ceil(log2(v)) for v >= 1, as XFS computes sb_agblklog */
	unsigned l = 0;

	while ((1ULL << l) < v)
		l++;
	return l;
}

static int region_cmp(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

_public_ struct ph_xfs_layout *ph_xfs_layout_free(struct ph_xfs_layout *l)
{
	if (l) {
		free(l->v);
		free(l);
	}
	return NULL;
}

_public_ int ph_xfs_layout_load(int root_fd, struct ph_xfs_layout **ret)
{
	_cleanup_(ph_xfs_layout_freep) struct ph_xfs_layout *l = NULL;
	struct xfs_fsop_geom g = { 0 };
	uint64_t spb, agblklog, inopblog;
	int r;

	if (ioctl(root_fd, XFS_IOC_FSGEOMETRY, &g) < 0)
		return negative_errno();
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	spb = g.blocksize >> PH_SECTOR_SHIFT;
	agblklog = highbit_log(g.agblocks);
	inopblog = highbit_log(g.blocksize / g.inodesize);

	/* Superblock, AGF, AGI and AGFL: the first four sectors of each AG,
	 * which XFS keeps in the AG's first block(s). */
	for (uint64_t ag = 0; ag < g.agcount; ag++) {
		uint64_t hdr = (4 * g.sectsize + g.blocksize - 1) / g.blocksize;

		r = add_region(l, ag * g.agblocks * spb, hdr * spb, "ag-headers");
		if (r < 0)
			return r;
	}
	if (g.logstart != 0) {
		uint64_t agno = g.logstart >> agblklog;
		uint64_t agbno = g.logstart & ((1ULL << agblklog) - 1);

		r = add_region(l, (agno * g.agblocks + agbno) * spb, (uint64_t)g.logblocks * spb, "log");
		if (r < 0)
			return r;
	}

	/* Inode chunks.  INUMBERS needs CAP_SYS_ADMIN; without it we do not
	 * know where inodes live and say so through has_inodes. */
	for (uint64_t next = 0;;) {
		struct {
			struct xfs_inumbers_req hdr;
			struct xfs_inumbers inum[256];
		} req;

		memset(&req, 0, sizeof(req));
		req.hdr.hdr.ino = next;
		req.hdr.hdr.icount = ELEMENTSOF(req.inum);
		if (ioctl(root_fd, XFS_IOC_INUMBERS, &req) < 0)
			break;
		l->inodes = true;
		if (req.hdr.hdr.ocount == 0)
			break;
		for (unsigned i = 0; i < req.hdr.hdr.ocount; i++) {
			uint64_t ino = req.inum[i].xi_startino;
			uint64_t agino_log = agblklog + inopblog;
			uint64_t agno = ino >> agino_log;
			uint64_t agino = ino & ((1ULL << agino_log) - 1);
			uint64_t agbno = agino >> inopblog;
			uint64_t blocks = MAX(64ULL >> inopblog, 1ULL);

			r = add_region(l, (agno * g.agblocks + agbno) * spb, blocks * spb, "inodes");
			if (r < 0)
				return r;
		}
		next = req.hdr.hdr.ino;
		if (next == 0)
			break;
	}
	qsort(l->v, l->n, sizeof(*l->v), region_cmp);
	*ret = TAKE_PTR(l);
	return 0;
}

_public_ bool ph_xfs_layout_has_inodes(const struct ph_xfs_layout *l)
{
	return l->inodes;
}

_public_ const char *ph_xfs_layout_classify(const struct ph_xfs_layout *l, uint64_t s, uint64_t max,
					    uint64_t *ret_count)
{
	size_t lo = 0, hi = l->n;

	/* First region that ends after s. Regions do not overlap. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].start + l->v[mid].count <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < l->n && l->v[lo].start <= s) {
		*ret_count = MIN(max, l->v[lo].start + l->v[lo].count - s);
		return l->v[lo].what;
	}
	*ret_count = lo < l->n ? MIN(max, l->v[lo].start - s) : max;
	return NULL;
}
