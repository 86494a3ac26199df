/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filesystem layout: a sorted list of known metadata regions, in sectors.
 *
 * XFS, from the geometry (AG headers, internal log) and INUMBERS (inode
 * chunks).  An XFS "fsblock" packs (AG number << agblklog | AG block), so a
 * disk address is (agno * agblocks + agbno) * sectors-per-block.
 *
 * ext4, from the superblock: s_jnl_blocks keeps a copy of the journal
 * inode's i_block, i.e. the root of its extent tree.  Extents at depth 0 are
 * read directly; a deeper tree (a journal in more than four pieces) is
 * followed through its index blocks on the device.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xfs/xfs.h>

#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include "mapper-layout.h"

struct region {
	uint64_t start, count;
	const char *what;
};

struct ph_layout {
	struct region *v;
	size_t n, cap;
	bool inodes;
};

static int add_region(struct ph_layout *l, uint64_t start, uint64_t count, const char *what)
{
	if (PH_GROW(l->v, l->cap, l->n + 1, 64) < 0)
		return -ENOMEM;
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

_public_ struct ph_layout *ph_layout_free(struct ph_layout *l)
{
	if (l) {
		free(l->v);
		free(l);
	}
	return NULL;
}

/* The regions every XFS has: AG headers, and the internal log if any. */
static int add_xfs_static(struct ph_layout *l, uint64_t blocksize, uint64_t sectsize,
			  uint64_t agblocks, uint64_t agcount, uint64_t agblklog, uint64_t logstart,
			  uint64_t logblocks)
{
	uint64_t spb = blocksize >> PH_SECTOR_SHIFT;
	uint64_t hdr = (4 * sectsize + blocksize - 1) / blocksize;
	int r;

	for (uint64_t ag = 0; ag < agcount; ag++) {
		r = add_region(l, ag * agblocks * spb, hdr * spb, "ag-headers");
		if (r < 0)
			return r;
	}
	if (logstart != 0) {
		uint64_t agno = logstart >> agblklog;
		uint64_t agbno = logstart & ((1ULL << agblklog) - 1);

		r = add_region(l, (agno * agblocks + agbno) * spb, logblocks * spb, "log");
		if (r < 0)
			return r;
	}
	return 0;
}

_public_ int ph_layout_load_xfs(int root_fd, struct ph_layout **ret)
{
	_cleanup_(ph_layout_freep) struct ph_layout *l = NULL;
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
	 * which XFS keeps in the AG's first block(s); and the log. */
	r = add_xfs_static(l, g.blocksize, g.sectsize, g.agblocks, g.agcount, agblklog, g.logstart,
			   g.logblocks);
	if (r < 0)
		return r;

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

_public_ bool ph_layout_has_inodes(const struct ph_layout *l)
{
	return l->inodes;
}

_public_ const char *ph_layout_classify(const struct ph_layout *l, uint64_t s, uint64_t max,
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

/* ---- ext4 ------------------------------------------------------------- */

#define EXT4_SB_OFFSET 1024
#define EXT4_SB_SIZE 1024
#define EXT4_MAGIC 0xEF53
#define EXT4_EXT_MAGIC 0xF30A
#define EXT3_JNL_BACKUP_BLOCKS 1

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * A budget for walking the journal's extent tree.  Index entries may all
 * point at the same block, so a crafted tree of four levels multiplies into
 * hundreds of millions of extents, and memory and time with them.  No real
 * journal comes near these: mke2fs makes one of at most a few GiB in a
 * handful of extents (32768 blocks each), and even one extent per block of
 * a 1 GiB journal in 4 KiB blocks is 262144 extents.  Past either limit the
 * tree is refused as corrupt.
 */
#define EXT4_JOURNAL_MAX_EXTENTS 262144
#define EXT4_JOURNAL_MAX_NODES 4096

struct ext4_budget {
	unsigned extents, nodes;
};

/*
 * Add the extents of one extent-tree node (a header and its entries, 'len'
 * bytes) at the given depth (the depth its parent's index implies; the root
 * says its own, ~0U).  Index entries are followed by reading the child block
 * from fd (bs bytes each), at most 'levels' deep; without fd they are
 * -ENXIO.  A tree that is not a tree (a child at the wrong depth) or that
 * is bigger than the budget is -EUCLEAN.
 */
static int ext4_node(struct ph_layout *l, const uint8_t *p, size_t len, uint64_t bs, int fd,
		     unsigned levels, unsigned want_depth, struct ext4_budget *budget)
{
	uint16_t entries, depth;
	uint64_t spb = bs >> PH_SECTOR_SHIFT;

	if (len < 12 || le16(p) != EXT4_EXT_MAGIC)
		return -EBADMSG;
	entries = le16(p + 2);
	depth = le16(p + 6);
	if (12 + (size_t)entries * 12 > len)
		return -EBADMSG;
	if (want_depth != ~0U && depth != want_depth)
		return -EUCLEAN;
	if (depth > 0 && (fd < 0 || levels == 0))
		return fd < 0 ? -ENXIO : -ELOOP;
	for (unsigned i = 0; i < entries; i++) {
		const uint8_t *e = p + 12 + i * 12;
		int r;

		if (depth > 0) {
			/* ext4_extent_idx: ei_block, ei_leaf_lo, ei_leaf_hi */
			uint64_t child = le32(e + 4) | (uint64_t)le16(e + 8) << 32;
			_cleanup_free_ uint8_t *blk = NULL;

			if (++budget->nodes > EXT4_JOURNAL_MAX_NODES)
				return -EUCLEAN;
			if (child > (uint64_t)INT64_MAX / bs)
				return -EBADMSG;
			blk = malloc(bs);
			if (!blk)
				return -ENOMEM;
			if (pread(fd, blk, bs, (off_t)(child * bs)) != (ssize_t)bs)
				return -EIO;
			r = ext4_node(l, blk, bs, bs, fd, levels - 1, depth - 1u, budget);
		} else {
			/* ext4_extent: ee_block, ee_len, ee_start_hi, ee_start_lo */
			uint32_t n = le16(e + 4);
			uint64_t start = le32(e + 8) | (uint64_t)le16(e + 6) << 32;

			if (++budget->extents > EXT4_JOURNAL_MAX_EXTENTS)
				return -EUCLEAN;
			if (n > 32768)
				n -= 32768; /* an unwritten extent */
			r = add_region(l, start * spb, (uint64_t)n * spb, "log");
		}
		if (r < 0)
			return r;
	}
	return 0;
}

_public_ int ph_layout_parse_ext4_sb(const uint8_t *sb, size_t len, int fd, struct ph_layout **ret)
{
	_cleanup_(ph_layout_freep) struct ph_layout *l = NULL;
	uint32_t log_bs;
	int r;

	if (len < EXT4_SB_SIZE || le16(sb + 0x38) != EXT4_MAGIC)
		return -EBADMSG;
	log_bs = le32(sb + 0x18);
	if (log_bs > 6)
		return -EBADMSG;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* An internal journal whose inode's block map is backed up here. */
	if (le32(sb + 0xE0) != 0 && sb[0xFD] == EXT3_JNL_BACKUP_BLOCKS) {
		struct ext4_budget budget = { 0 };

		r = ext4_node(l, sb + 0x10C, 60, 1024ULL << log_bs, fd, 4, ~0U, &budget);
		if (r < 0)
			return r;
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), region_cmp);
	*ret = TAKE_PTR(l);
	return 0;
}

_public_ int ph_layout_load_ext4(const char *node, struct ph_layout **ret)
{
	_cleanup_close_ int fd = -EBADF;
	uint8_t sb[EXT4_SB_SIZE];

	fd = open(node, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (pread(fd, sb, sizeof(sb), EXT4_SB_OFFSET) != (ssize_t)sizeof(sb))
		return -EIO;
	return ph_layout_parse_ext4_sb(sb, sizeof(sb), fd, ret);
}
