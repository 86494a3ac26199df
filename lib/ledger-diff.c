/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scan's diff: per namespace, observations O (merged intervals) against
 * the rows, in one transaction:
 *   o overlaps no row         -> new row (state new)
 *   o overlaps one row        -> same extent: seen; else grown or shrunk
 *   o overlaps several rows   -> merged into the oldest; histories follow
 *   row listed before, not now: cleared if the boot is the same, else
 *                               forgotten (the lists restart empty after a
 *                               reboot; the ledger remembers)
 *   row healed, listed again  -> new again ("reappeared")
 * A row being repaired is left alone, and a row already cleared (by the
 * repairer that verified it) only stops being listed: "cleared" is reported
 * once.  Changes are handed to the caller after the commit.
 */
#include "ledger-internal.h"

/* Changes are reported after the transaction commits, so that callbacks
 * may act on them (and write to the ledger themselves). */
struct pending {
	int64_t id;
	enum ph_change_type type;
	uint64_t old_start, old_count;
};

struct emit {
	ph_change_fn fn;
	void *userdata;
	const struct pending *p;
};

static int emit_row(void *userdata, const struct ph_range_row *row)
{
	struct emit *e = userdata;
	struct ph_change c = { .type = e->p->type, .row = *row, .old_start = e->p->old_start,
			       .old_count = e->p->old_count };

	e->fn(e->userdata, &c);
	return 0;
}

static int emit_change(struct ph_ledger *l, const struct pending *p, ph_change_fn fn, void *userdata)
{
	struct emit e = { fn, userdata, p };

	return fn ? ph_ledger_get_range(l, p->id, emit_row, &e) : 0;
}

struct pendings {
	struct pending *v;
	size_t n;
};

static int pend(struct pendings *p, int64_t id, enum ph_change_type type, uint64_t old_start,
		uint64_t old_count)
{
	struct pending *v = reallocarray(p->v, p->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	p->v = v;
	v[p->n++] = (struct pending){ id, type, old_start, old_count };
	return 0;
}

/* ---- the diff --------------------------------------------------------- */

struct lrow {
	int64_t id;
	uint64_t start, count;
	enum ph_state state;
	bool in_kernel;
	char *boot;
	bool matched;
};

_public_ const char *ph_origin_to_string(unsigned o)
{
	static const char *const names[] = {
		"device", "device", "region", "device+region", "memory-failure", "device+memory-failure",
		"region+memory-failure", "device+region+memory-failure",
	};

	return names[o & (PH_ORIGIN_DEVICE | PH_ORIGIN_REGION | PH_ORIGIN_MEMFAIL)];
}

static int load_rows(struct ph_ledger *l, const char *ns_id, struct lrow **ret, size_t *ret_n)
{
	sqlite3_stmt *st = NULL;
	struct lrow *v = NULL;
	size_t n = 0;
	int r, rc;

	r = prepare(l, &st, "SELECT id, start, count, state, in_kernel, last_boot FROM ranges WHERE ns_id = ? ORDER BY start");
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, ns_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct lrow *nv = reallocarray(v, n + 1, sizeof(*v));
		const char *boot = (const char *)sqlite3_column_text(st, 5);

		if (!nv) {
			r = -ENOMEM;
			break;
		}
		v = nv;
		v[n] = (struct lrow){
			.id = sqlite3_column_int64(st, 0),
			.start = (uint64_t)sqlite3_column_int64(st, 1),
			.count = (uint64_t)sqlite3_column_int64(st, 2),
			.in_kernel = sqlite3_column_int(st, 4),
			.boot = boot ? strdup(boot) : NULL,
		};
		(void)ph_state_from_string((const char *)sqlite3_column_text(st, 3), &v[n].state);
		n++;
	}
	unprepare(l, st);
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_errno(rc);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i].boot);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int obs_cmp(const void *a, const void *b)
{
	const struct ph_observation *x = a, *y = b;
	int k = strcmp(x->ns_id, y->ns_id);

	if (k)
		return k;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Merge one namespace's observations into maximal intervals, OR-ing origins. */
static size_t merge_obs(struct ph_observation *v, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (o > 0 && v[i].start <= v[o - 1].start + v[o - 1].count) {
			uint64_t end = MAX(v[o - 1].start + v[o - 1].count, v[i].start + v[i].count);

			v[o - 1].count = end - v[o - 1].start;
			v[o - 1].origin |= v[i].origin;
		} else
			v[o++] = v[i];
	}
	return o;
}

/* An observation no row overlaps: a new row, state new. */
static int insert_new(struct ph_ledger *l, const char *ns_id, const struct ph_observation *o, const char *boot_id,
		      uint64_t now, struct pendings *out)
{
	sqlite3_stmt *st = NULL;
	int64_t id;
	int r;

	r = prepare(l, &st, "INSERT INTO ranges (ns_id, start, count, device, state, origin, in_kernel, first_seen, last_seen, last_boot) "
			    "VALUES (?, ?, ?, ?, 'new', ?, 1, ?, ?, ?)");
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, ns_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)o->start);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)o->count);
	sqlite3_bind_text(st, 4, o->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ph_origin_to_string(o->origin), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
	sqlite3_bind_text(st, 8, boot_id, -1, SQLITE_STATIC);
	r = step_done(l, st);
	unprepare(l, st);
	if (r < 0)
		return r;
	id = sqlite3_last_insert_rowid(l->db);
	r = pend(out, id, PH_CHANGE_NEW, o->start, o->count);
	return r;
}

/* Fold every other row overlapping o into the oldest (rows[first]): the
 * others are deleted.  *changed: the kept row's extent changes. */
static int fold_overlaps(struct ph_ledger *l, struct lrow *rows, size_t n_rows, size_t first,
			 const struct ph_observation *o, bool *changed)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	for (size_t k = 0; r == 0 && k < n_rows; k++) {
		if (k == first || !rows[k].id || rows[k].start >= o->start + o->count ||
		    o->start >= rows[k].start + rows[k].count)
			continue;
		r = prepare(l, &st, "DELETE FROM ranges WHERE id = ?");
		if (r == 0) {
			sqlite3_bind_int64(st, 1, rows[k].id);
			r = step_done(l, st);
			unprepare(l, st);
		}
		rows[k].id = 0; /* gone */
		*changed = true;
	}
	return r;
}

/* Rows the kernel listed before and does not list now. */
static int mark_unlisted(struct ph_ledger *l, struct lrow *rows, size_t n_rows, const char *boot_id,
			 struct pendings *out)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	for (size_t k = 0; r == 0 && k < n_rows; k++) {
		struct lrow *row = &rows[k];
		bool same_boot = row->boot && boot_id && strcmp(row->boot, boot_id) == 0;
		bool clear;

		if (!row->id || row->matched || !row->in_kernel)
			continue;
		/* A range being repaired is the repairer's to settle: it is
		 * left listed, and looked at again once it is settled. */
		if (row->state == PH_STATE_REPAIRING)
			continue;
		/* "cleared" is recorded once, by whoever moved the range there
		 * (a repairer that verified it); then only the listing changes. */
		if (same_boot && row->state == PH_STATE_CLEARED) {
			r = prepare(l, &st, "UPDATE ranges SET in_kernel = 0 WHERE id = ?");
			if (r < 0)
				break;
			sqlite3_bind_int64(st, 1, row->id);
			r = step_done(l, st);
			unprepare(l, st);
			continue;
		}
		clear = same_boot && !terminal(row->state);
		r = prepare(l, &st, clear ? "UPDATE ranges SET in_kernel = 0, state = 'cleared' WHERE id = ?"
					  : "UPDATE ranges SET in_kernel = 0 WHERE id = ?");
		if (r < 0)
			break;
		sqlite3_bind_int64(st, 1, row->id);
		r = step_done(l, st);
		unprepare(l, st);
		if (r == 0)
			r = pend(out, row->id, same_boot ? PH_CHANGE_CLEARED : PH_CHANGE_FORGOTTEN, row->start,
				 row->count);
	}
	return r;
}

static int apply_ns(struct ph_ledger *l, const char *ns_id, struct ph_observation *obs, size_t n_obs,
		    const char *boot_id, uint64_t now, struct pendings *out)
{
	struct lrow *rows = NULL;
	size_t n_rows = 0;
	sqlite3_stmt *st = NULL;
	int r;

	r = load_rows(l, ns_id, &rows, &n_rows);
	if (r < 0)
		return r;

	for (size_t i = 0; r == 0 && i < n_obs; i++) {
		const struct ph_observation *o = &obs[i];
		size_t first = SIZE_MAX, hits = 0;

		for (size_t k = 0; k < n_rows; k++)
			if (rows[k].id && rows[k].start < o->start + o->count &&
			    o->start < rows[k].start + rows[k].count) {
				if (first == SIZE_MAX || rows[k].id < rows[first].id)
					first = k;
				hits++;
			}

		if (hits == 0) {
			r = insert_new(l, ns_id, o, boot_id, now, out);
			continue;
		}

		{
			struct lrow *keep = &rows[first];
			uint64_t old_start = keep->start, old_count = keep->count;
			bool reappeared = !keep->in_kernel && terminal(keep->state);
			bool relisted = !keep->in_kernel && !reappeared;
			bool changed_extent = keep->start != o->start || keep->count != o->count;
			enum ph_change_type type;

			r = fold_overlaps(l, rows, n_rows, first, o, &changed_extent);
			if (r < 0)
				break;

			r = prepare(l, &st, "UPDATE ranges SET start = ?, count = ?, device = ?, origin = ?, in_kernel = 1, "
					    "last_seen = ?, last_boot = ?, state = ? WHERE id = ?");
			if (r < 0)
				break;
			sqlite3_bind_int64(st, 1, (sqlite3_int64)o->start);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)o->count);
			sqlite3_bind_text(st, 3, o->device, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, ph_origin_to_string(o->origin), -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
			sqlite3_bind_text(st, 6, boot_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 7, ph_state_to_string(reappeared ? PH_STATE_NEW : keep->state), -1,
					  SQLITE_STATIC);
			sqlite3_bind_int64(st, 8, keep->id);
			r = step_done(l, st);
			unprepare(l, st);
			if (r < 0)
				break;
			keep->matched = true;

			if (reappeared)
				type = PH_CHANGE_NEW;
			else if (changed_extent)
				type = o->start < old_start || o->start + o->count > old_start + old_count ?
					       PH_CHANGE_GROWN : PH_CHANGE_SHRUNK;
			else if (relisted)
				type = PH_CHANGE_RELISTED;
			else
				continue; /* unchanged: no change */
			r = pend(out, keep->id, type, old_start, old_count);
		}
	}

	if (r == 0)
		r = mark_unlisted(l, rows, n_rows, boot_id, out);

	for (size_t k = 0; k < n_rows; k++)
		free(rows[k].boot);
	free(rows);
	return r;
}

_public_ int ph_ledger_apply(struct ph_ledger *l, const char *const *ns_ids, size_t n_ns,
			     const struct ph_observation *obs, size_t n_obs, const char *boot_id,
			     uint64_t now, ph_change_fn fn, void *userdata)
{
	_cleanup_free_ struct ph_observation *v = NULL;
	struct pendings p = { 0 };
	int r;

	if (l->readonly)
		return -EROFS;
	v = malloc(MAX(n_obs, (size_t)1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (n_obs > 0) /* obs may be NULL then: memcpy's source must not */
		memcpy(v, obs, n_obs * sizeof(*v));
	qsort(v, n_obs, sizeof(*v), obs_cmp);

	r = exec(l, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n_ns; i++) {
		size_t a = 0, b;

		while (a < n_obs && strcmp(v[a].ns_id, ns_ids[i]) < 0)
			a++;
		for (b = a; b < n_obs && strcmp(v[b].ns_id, ns_ids[i]) == 0; b++)
			;
		r = apply_ns(l, ns_ids[i], v + a, merge_obs(v + a, b - a), boot_id, now, &p);
	}
	if (r == 0)
		r = exec(l, "COMMIT");
	if (r < 0)
		(void)sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; r == 0 && i < p.n; i++)
		r = emit_change(l, &p.v[i], fn, userdata);
	free(p.v);
	return r;
}
