/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One map filesystem's records for a sector range: GETFSMAP where it names
 * owners (live, or read from the disk of a shut-down XFS), else the FIEMAP
 * index with GETFSMAP or the layout classifying the rest; gaps become
 * metadata, free or "unknown" with the reason, and shared extents are split
 * at every sharer's edges.  Reads only.
 */
#include "mapper-internal.h"

/* ---- per-filesystem query --------------------------------------------- */

static int push_unknown(struct recs *out, uint64_t s, uint64_t n, const char *fmt, ...) _printf_(4, 5);

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

int fs_query(struct ph_mapper *m, struct ph_map_fs *fs, uint64_t s, uint64_t n,
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
