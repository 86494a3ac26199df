/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The intent log: one row per page job, written with the job and its
 * repaired bytes before the first step that changes data; 'step' moves on
 * only after a step succeeded, so a restart re-runs at most one idempotent
 * step.  Nothing here decides what a step does.
 */
#include "ledger-internal.h"

/* ---- intents ----------------------------------------------------------- */

_public_ int ph_ledger_intent_begin(struct ph_ledger *l, int64_t range_id, uint64_t page, const char *plan,
				    const void *content, size_t len, uint64_t now, int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int r;

	r = prepare(l, &st, "INSERT INTO intents (range_id, page, plan, content, step, state, created, updated) "
			    "VALUES (?, ?, ?, ?, 0, 'running', ?, ?)");
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, range_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)page);
	sqlite3_bind_text(st, 3, plan, -1, SQLITE_STATIC);
	if (content)
		sqlite3_bind_blob(st, 4, content, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	r = step_done(l, st);
	unprepare(l, st);
	if (r == 0)
		*ret_id = sqlite3_last_insert_rowid(l->db);
	return r;
}

static int intent_update(struct ph_ledger *l, int64_t id, const char *sql, int step, const char *state,
			 const char *detail, uint64_t now)
{
	sqlite3_stmt *st = NULL;
	int r;

	r = prepare(l, &st, sql);
	if (r < 0)
		return r;
	if (state) {
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, detail, -1, SQLITE_STATIC);
	} else
		sqlite3_bind_int(st, 1, step);
	sqlite3_bind_int64(st, state ? 3 : 2, (sqlite3_int64)now);
	sqlite3_bind_int64(st, state ? 4 : 3, id);
	r = step_done(l, st);
	if (r == 0 && sqlite3_changes(l->db) != 1)
		r = -ENOENT;
	unprepare(l, st);
	return r;
}

_public_ int ph_ledger_intent_step(struct ph_ledger *l, int64_t id, int next_step, uint64_t now)
{
	return intent_update(l, id, "UPDATE intents SET step = ?, updated = ? WHERE id = ?", next_step, NULL,
			     NULL, now);
}

_public_ int ph_ledger_intent_finish(struct ph_ledger *l, int64_t id, const char *state, const char *detail,
				     uint64_t now)
{
	return intent_update(l, id, "UPDATE intents SET state = ?, detail = ?, updated = ? WHERE id = ?", 0,
			     state, detail, now);
}

_public_ int ph_ledger_intents_running(struct ph_ledger *l, ph_intent_fn fn, void *userdata)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = prepare(l, &st, "SELECT id, range_id, page, plan, content, step FROM intents WHERE state = 'running' ORDER BY id");
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ph_intent it = {
			.id = sqlite3_column_int64(st, 0),
			.range_id = sqlite3_column_int64(st, 1),
			.page = (uint64_t)sqlite3_column_int64(st, 2),
			.plan = (const char *)sqlite3_column_text(st, 3),
			.content = sqlite3_column_blob(st, 4),
			.content_len = (size_t)sqlite3_column_bytes(st, 4),
			.step = sqlite3_column_int(st, 5),
		};

		r = fn(userdata, &it);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sql_errno(rc);
	unprepare(l, st);
	return r < 0 ? r : 0;
}
