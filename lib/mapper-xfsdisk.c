/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading XFS from the device.  Every AG starts with the superblock copy,
 * AGF, AGI and AGFL, one sector each; the AGF holds the roots of the
 * free-space btrees, the rmapbt and the refcount btree, the AGI those of
 * the inode btrees.  Btree blocks are short-form (AG-relative pointers)
 * with the version 5 header; interior nodes hold keys, then pointers at
 * the offset that a full node of keys would end at.  The rmapbt has
 * overlapping keys: each interior entry holds the low and the high key of
 * its subtree, which lets a range lookup skip subtrees.
 *
 * Blocks are checked for their magic number, level and record count; a bad
 * block fails the query (-EBADMSG) rather than guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fsmap.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xfs/xfs.h>
#include <xfs/xfs_format.h>

#include "mapper-xfsdisk.h"
#include "range.h"

/* Deeper than any XFS btree can grow (the kernel allows 9 levels). */
#define PH_XFS_MAXLEVELS 16

struct ph_xfsdisk {
	int fd;
	uint32_t blocksize, agblocks, agcount, sectsize, logblocks;
	uint8_t agblklog, inopblog;
	uint64_t dblocks, logstart;
	bool rmapbt, finobt, reflink;
	uint8_t *buf[PH_XFS_MAXLEVELS]; /* one block per level */
};

/* What one AG query collects before it is sorted and gap-filled. */
struct item {
	uint32_t agbno, len;
	uint64_t owner;  /* inode or FMR special owner */
	uint64_t offset; /* fs blocks, for inode owners */
	uint32_t flags;
};

struct items {
	struct item *v;
	size_t n, cap;
	uint32_t lo, hi; /* AG blocks asked about, [lo, hi) */
};

static int items_push(struct items *l, uint32_t agbno, uint32_t len, uint64_t owner,
		      uint64_t offset, uint32_t flags)
{
	/* Keep only what overlaps the query; the caller clips. */
	if (len == 0 || agbno >= l->hi || agbno + len <= l->lo)
		return 0;
	if (PH_GROW(l->v, l->cap, l->n + 1, 64) < 0)
		return -ENOMEM;
	l->v[l->n++] = (struct item){ agbno, len, owner, offset, flags };
	return 0;
}

_public_ struct ph_xfsdisk *ph_xfsdisk_free(struct ph_xfsdisk *d)
{
	if (!d)
		return NULL;
	safe_close(d->fd);
	for (unsigned i = 0; i < PH_XFS_MAXLEVELS; i++)
		free(d->buf[i]);
	free(d);
	return NULL;
}

_public_ int ph_xfsdisk_open(const char *node, struct ph_xfsdisk **ret)
{
	_cleanup_(ph_xfsdisk_freep) struct ph_xfsdisk *d = NULL;
	struct xfs_dsb sb;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = open(node, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return negative_errno();
	if (pread(d->fd, &sb, sizeof(sb), 0) != (ssize_t)sizeof(sb))
		return -EIO;
	if (be32toh(sb.sb_magicnum) != XFS_SB_MAGIC ||
	    (be16toh(sb.sb_versionnum) & XFS_SB_VERSION_NUMBITS) != XFS_SB_VERSION_5)
		return -EBADMSG;
	d->blocksize = be32toh(sb.sb_blocksize);
	d->agblocks = be32toh(sb.sb_agblocks);
	d->agcount = be32toh(sb.sb_agcount);
	d->sectsize = be16toh(sb.sb_sectsize);
	d->agblklog = sb.sb_agblklog;
	d->inopblog = sb.sb_inopblog;
	d->dblocks = be64toh(sb.sb_dblocks);
	d->logstart = be64toh(sb.sb_logstart);
	d->logblocks = be32toh(sb.sb_logblocks);
	d->rmapbt = be32toh(sb.sb_features_ro_compat) & XFS_SB_FEAT_RO_COMPAT_RMAPBT;
	d->finobt = be32toh(sb.sb_features_ro_compat) & XFS_SB_FEAT_RO_COMPAT_FINOBT;
	d->reflink = be32toh(sb.sb_features_ro_compat) & XFS_SB_FEAT_RO_COMPAT_REFLINK;
	if (d->blocksize < 512 || d->blocksize > 65536 || (d->blocksize & (d->blocksize - 1)) ||
	    d->agblocks == 0 || d->agcount == 0 || d->sectsize < 512 || d->agblklog > 31 ||
	    d->sectsize > d->blocksize)
		return -EBADMSG;
	for (unsigned i = 0; i < PH_XFS_MAXLEVELS; i++) {
		d->buf[i] = malloc(d->blocksize);
		if (!d->buf[i])
			return -ENOMEM;
	}
	*ret = TAKE_PTR(d);
	return 0;
}

_public_ bool ph_xfsdisk_has_rmapbt(const struct ph_xfsdisk *d)
{
	return d->rmapbt;
}

_public_ uint64_t ph_xfsdisk_sectors(const struct ph_xfsdisk *d)
{
	return d->dblocks * (d->blocksize >> PH_SECTOR_SHIFT);
}

static off_t ag_byte(const struct ph_xfsdisk *d, uint32_t agno, uint64_t agbno)
{
	return (off_t)(((uint64_t)agno * d->agblocks + agbno) * d->blocksize);
}

static int read_at(const struct ph_xfsdisk *d, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(d->fd, buf, len, off);

	if (n < 0)
		return negative_errno();
	return n == (ssize_t)len ? 0 : -EIO;
}

/* ---- generic short-form btree walk ------------------------------------ */

struct btree {
	uint32_t magic;
	size_t rec_len, key_len; /* key_len: one entry's keys (low+high if overlapping) */
	bool overlapping;        /* rmapbt: prune by the low/high startblock */
	uint64_t block_owner;    /* FMR owner of the tree's own blocks */
	int (*rec)(struct ph_xfsdisk *d, uint32_t agno, const uint8_t *rec, struct items *out);
};

static int btree_visit(struct ph_xfsdisk *d, const struct btree *bt, uint32_t agno, uint32_t agbno,
		       int level, struct items *out, bool list_blocks)
{
	uint8_t *blk;
	struct xfs_btree_block *h;
	size_t hdr = XFS_BTREE_SBLOCK_CRC_LEN, maxrecs;
	unsigned numrecs;
	int r;

	if (level < 0 || level >= PH_XFS_MAXLEVELS || agbno >= d->agblocks)
		return -EBADMSG;
	blk = d->buf[level];
	r = read_at(d, blk, d->blocksize, ag_byte(d, agno, agbno));
	if (r < 0)
		return r;
	h = (struct xfs_btree_block *)blk;
	numrecs = be16toh(h->bb_numrecs);
	if (be32toh(h->bb_magic) != bt->magic || be16toh(h->bb_level) != level)
		return -EBADMSG;
	if (list_blocks) {
		r = items_push(out, agbno, 1, bt->block_owner, 0, FMR_OF_SPECIAL_OWNER);
		if (r < 0)
			return r;
	}
	if (level == 0) {
		maxrecs = (d->blocksize - hdr) / bt->rec_len;
		if (numrecs > maxrecs)
			return -EBADMSG;
		for (unsigned i = 0; bt->rec && i < numrecs; i++) {
			r = bt->rec(d, agno, blk + hdr + i * bt->rec_len, out);
			if (r < 0)
				return r;
		}
		return 0;
	}
	maxrecs = (d->blocksize - hdr) / (bt->key_len + sizeof(__be32));
	if (numrecs > maxrecs)
		return -EBADMSG;
	for (unsigned i = 0; i < numrecs; i++) {
		const uint8_t *key = blk + hdr + i * bt->key_len;
		__be32 ptr;

		if (bt->overlapping) {
			/* rm_startblock of the low key and of the high key */
			uint32_t lo = be32toh(((const struct xfs_rmap_key *)key)->rm_startblock);
			uint32_t hi = be32toh(((const struct xfs_rmap_key *)(key + bt->key_len / 2))->rm_startblock);

			if (lo >= out->hi || hi < out->lo)
				continue;
		}
		memcpy(&ptr, blk + hdr + maxrecs * bt->key_len + i * sizeof(ptr), sizeof(ptr));
		r = btree_visit(d, bt, agno, be32toh(ptr), level - 1, out, list_blocks);
		if (r < 0)
			return r;
		/* The child read reused a deeper buffer; ours is intact. */
	}
	return 0;
}

static uint64_t rmap_special(uint64_t owner)
{
	switch (owner) {
	case XFS_RMAP_OWN_FS:
		return FMR_OWNER('X', 1);
	case XFS_RMAP_OWN_LOG:
		return FMR_OWNER('X', 2);
	case XFS_RMAP_OWN_AG:
		return FMR_OWNER('X', 3);
	case XFS_RMAP_OWN_INOBT:
		return FMR_OWNER('X', 4);
	case XFS_RMAP_OWN_INODES:
		return FMR_OWNER('X', 5);
	case XFS_RMAP_OWN_REFC:
		return FMR_OWNER('X', 6);
	case XFS_RMAP_OWN_COW:
		return FMR_OWNER('X', 7);
	}
	return FMR_OWN_UNKNOWN;
}

static int rmap_rec(struct ph_xfsdisk *d, uint32_t agno, const uint8_t *p, struct items *out)
{
	const struct xfs_rmap_rec *rec = (const void *)p;
	uint64_t owner = be64toh(rec->rm_owner), off = be64toh(rec->rm_offset);
	uint32_t flags = 0;

	if (owner == XFS_RMAP_OWN_NULL)
		return 0;
	if (XFS_RMAP_NON_INODE_OWNER(owner))
		return items_push(out, be32toh(rec->rm_startblock), be32toh(rec->rm_blockcount),
				  rmap_special(owner), 0, FMR_OF_SPECIAL_OWNER);
	if (off & XFS_RMAP_OFF_ATTR_FORK)
		flags |= FMR_OF_ATTR_FORK;
	if (off & XFS_RMAP_OFF_BMBT_BLOCK)
		flags |= FMR_OF_EXTENT_MAP;
	if (off & XFS_RMAP_OFF_UNWRITTEN)
		flags |= FMR_OF_PREALLOC;
	return items_push(out, be32toh(rec->rm_startblock), be32toh(rec->rm_blockcount), owner,
			  XFS_RMAP_OFF(off), flags);
}

static int inobt_rec(struct ph_xfsdisk *d, uint32_t agno, const uint8_t *p, struct items *out)
{
	const xfs_inobt_rec_t *rec = (const void *)p;
	uint32_t agino = be32toh(rec->ir_startino);
	uint32_t blocks = MAX(XFS_INODES_PER_CHUNK >> d->inopblog, 1u);

	return items_push(out, agino >> d->inopblog, blocks, FMR_OWNER('X', 5), 0, FMR_OF_SPECIAL_OWNER);
}

static int bno_rec(struct ph_xfsdisk *d, uint32_t agno, const uint8_t *p, struct items *out)
{
	const xfs_alloc_rec_t *rec = (const void *)p;

	return items_push(out, be32toh(rec->ar_startblock), be32toh(rec->ar_blockcount), FMR_OWN_FREE,
			  0, FMR_OF_SPECIAL_OWNER);
}

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->agbno != y->agbno)
		return x->agbno < y->agbno ? -1 : 1;
	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Collect one AG's records over [lo, hi) AG blocks. */
static int ag_items(struct ph_xfsdisk *d, uint32_t agno, struct items *out)
{
	const size_t hdr_blocks = (4 * d->sectsize + d->blocksize - 1) / d->blocksize;
	struct xfs_agf agf;
	struct xfs_agi agi;
	int r;

	r = read_at(d, &agf, sizeof(agf), ag_byte(d, agno, 0) + d->sectsize);
	if (r == 0)
		r = read_at(d, &agi, sizeof(agi), ag_byte(d, agno, 0) + 2 * d->sectsize);
	if (r < 0)
		return r;
	if (be32toh(agf.agf_magicnum) != XFS_AGF_MAGIC || be32toh(agi.agi_magicnum) != XFS_AGI_MAGIC)
		return -EBADMSG;

	if (d->rmapbt) {
		/* The rmapbt names every owner, the headers and log included. */
		static const struct btree rmapbt = {
			.magic = XFS_RMAP_CRC_MAGIC,
			.rec_len = sizeof(struct xfs_rmap_rec),
			.key_len = 2 * sizeof(struct xfs_rmap_key),
			.overlapping = true,
			.rec = rmap_rec,
		};

		return btree_visit(d, &rmapbt, agno, be32toh(agf.agf_roots[XFS_BTNUM_RMAPi]),
				   (int)be32toh(agf.agf_levels[XFS_BTNUM_RMAPi]) - 1, out, false);
	}

	/* Without rmapbt: what the AG's own structures locate. */
	{
		static const struct btree bnobt = {
			.magic = XFS_ABTB_CRC_MAGIC, .rec_len = sizeof(xfs_alloc_rec_t),
			.key_len = sizeof(xfs_alloc_key_t), .block_owner = FMR_OWNER('X', 3),
			.rec = bno_rec,
		};
		static const struct btree cntbt = {
			.magic = XFS_ABTC_CRC_MAGIC, .rec_len = sizeof(xfs_alloc_rec_t),
			.key_len = sizeof(xfs_alloc_key_t), .block_owner = FMR_OWNER('X', 3),
		};
		static const struct btree inobt = {
			.magic = XFS_IBT_CRC_MAGIC, .rec_len = sizeof(xfs_inobt_rec_t),
			.key_len = sizeof(xfs_inobt_key_t), .block_owner = FMR_OWNER('X', 4),
			.rec = inobt_rec,
		};
		static const struct btree finobt = {
			.magic = XFS_FIBT_CRC_MAGIC, .rec_len = sizeof(xfs_inobt_rec_t),
			.key_len = sizeof(xfs_inobt_key_t), .block_owner = FMR_OWNER('X', 4),
		};
		static const struct btree refcbt = {
			.magic = XFS_REFC_CRC_MAGIC, .rec_len = sizeof(struct xfs_refcount_rec),
			.key_len = sizeof(struct xfs_refcount_key), .block_owner = FMR_OWNER('X', 6),
		};

		r = items_push(out, 0, hdr_blocks, FMR_OWNER('X', 1), 0, FMR_OF_SPECIAL_OWNER);
		if (r == 0 && d->logstart && (d->logstart >> d->agblklog) == agno)
			r = items_push(out, d->logstart & ((1ULL << d->agblklog) - 1), d->logblocks,
				       FMR_OWNER('X', 2), 0, FMR_OF_SPECIAL_OWNER);
		if (r == 0)
			r = btree_visit(d, &bnobt, agno, be32toh(agf.agf_roots[XFS_BTNUM_BNOi]),
					(int)be32toh(agf.agf_levels[XFS_BTNUM_BNOi]) - 1, out, true);
		if (r == 0)
			r = btree_visit(d, &cntbt, agno, be32toh(agf.agf_roots[XFS_BTNUM_CNTi]),
					(int)be32toh(agf.agf_levels[XFS_BTNUM_CNTi]) - 1, out, true);
		if (r == 0)
			r = btree_visit(d, &inobt, agno, be32toh(agi.agi_root),
					(int)be32toh(agi.agi_level) - 1, out, true);
		if (r == 0 && d->finobt)
			r = btree_visit(d, &finobt, agno, be32toh(agi.agi_free_root),
					(int)be32toh(agi.agi_free_level) - 1, out, true);
		if (r == 0 && d->reflink)
			r = btree_visit(d, &refcbt, agno, be32toh(agf.agf_refcount_root),
					(int)be32toh(agf.agf_refcount_level) - 1, out, true);
		return r;
	}
}

/*
 * Without rmapbt the sources can overlap: the free part of a sparse inode
 * chunk is both "in a chunk" and free.  Free space wins; other items are
 * cut around it.  (With rmapbt, overlaps are reflink sharers and stay.)
 */
static int cut_around_free(struct items *it)
{
	struct items out = { .lo = it->lo, .hi = it->hi };
	int r = 0;

	for (size_t i = 0; r == 0 && i < it->n; i++) {
		const struct item *x = &it->v[i];
		uint32_t pos = x->agbno, end = x->agbno + x->len;

		if (x->owner == FMR_OWN_FREE) {
			r = items_push(&out, x->agbno, x->len, x->owner, 0, x->flags);
			continue;
		}
		for (size_t k = 0; r == 0 && k < it->n && pos < end; k++) {
			const struct item *f = &it->v[k];

			if (f->owner != FMR_OWN_FREE || f->agbno + f->len <= pos || f->agbno >= end)
				continue;
			if (f->agbno > pos)
				r = items_push(&out, pos, f->agbno - pos, x->owner, 0, x->flags);
			pos = MAX(pos, f->agbno + f->len);
		}
		if (r == 0 && pos < end)
			r = items_push(&out, pos, end - pos, x->owner, 0, x->flags);
	}
	free(it->v);
	*it = out;
	return r;
}

_public_ int ph_xfsdisk_fsmap(struct ph_xfsdisk *d, uint64_t start, uint64_t count, ph_fsmap_fn fn,
			      void *userdata)
{
	const uint64_t spb = d->blocksize >> PH_SECTOR_SHIFT;
	const uint64_t first = start / spb, last = (start + count + spb - 1) / spb; /* blocks, [first, last) */
	int r = 0;

	for (uint64_t agno = first / d->agblocks; r == 0 && agno < d->agcount; agno++) {
		uint64_t ag0 = agno * d->agblocks, aglen = MIN((uint64_t)d->agblocks, d->dblocks - ag0);
		struct items it = { 0 };
		uint32_t cursor;

		if (ag0 >= last)
			break;
		it.lo = (uint32_t)(MAX(first, ag0) - ag0);
		it.hi = (uint32_t)(MIN(last, ag0 + aglen) - ag0);
		r = ag_items(d, (uint32_t)agno, &it);
		if (r == 0 && !d->rmapbt)
			r = cut_around_free(&it);
		if (r == 0 && it.n > 1)
			qsort(it.v, it.n, sizeof(*it.v), item_cmp);
		/* Emit in order; what no item covers is free space (rmapbt
		 * knows every owner) or unknown (it does not). */
		cursor = it.lo;
		for (size_t i = 0; r == 0 && i <= it.n; i++) {
			uint32_t s = i < it.n ? it.v[i].agbno : it.hi;
			struct ph_fsmap_rec rec;

			if (s > cursor) {
				rec = (struct ph_fsmap_rec){
					.start = (ag0 + cursor) * spb,
					.count = (uint64_t)(s - cursor) * spb,
					.owner = d->rmapbt ? FMR_OWN_FREE : FMR_OWN_UNKNOWN,
					.flags = FMR_OF_SPECIAL_OWNER,
				};
				r = fn(userdata, &rec);
			}
			if (i == it.n || r != 0)
				break;
			rec = (struct ph_fsmap_rec){
				.start = (ag0 + it.v[i].agbno) * spb,
				.count = (uint64_t)it.v[i].len * spb,
				.owner = it.v[i].owner,
				.offset = it.v[i].offset * spb,
				.flags = it.v[i].flags,
			};
			r = fn(userdata, &rec);
			cursor = MAX(cursor, it.v[i].agbno + it.v[i].len);
		}
		free(it.v);
	}
	return r < 0 ? r : 0;
}
