/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Resuming after a crash or any error: every job still running in the intent
 * log is finished from its next step, then every range left repairing is
 * planned again.  Runs at every daemon start and every pmemheal repair.
 */
#include "repair-internal.h"

int on_row_state(void *userdata, const struct ph_range_row *row)
{
	*(enum ph_state *)userdata = row->state;
	return 0;
}

int resume_one(void *userdata, const struct ph_intent *it)
{
	struct resume *rs = userdata;
	struct ph_repairer *r = rs->r;
	_cleanup_free_ char *why = NULL;
	enum ph_state cur = PH_STATE_REPAIRING;
	struct job j;
	int k;

	if (rs->only && it->range_id != rs->only)
		return 0;
	k = job_from_json(it, &j, &why);
	if (k == -ENOMEM)
		return k; /* says nothing about the intent: stop, keep it running */
	if (k < 0) {
		_cleanup_free_ char *detail = NULL;

		/* Set aside, never deleted: the row keeps its plan and bytes
		 * for inspection; the range is planned again. */
		if (asprintf(&detail, "intent %" PRId64 " set aside, its job is unreadable: %s", it->id,
			     why ? why : strerror(-k)) < 0)
			detail = NULL;
		ph_err(r->ctx, "%s; the other intents are resumed", detail ? detail : "an intent is unreadable");
		(void)ph_ledger_intent_finish(r->ledger, it->id, "failed", detail ? detail : "unreadable job",
					      ph_now_usec());
		return 0;
	}
	free(why);
	why = NULL;
	ph_info(r->ctx, "Resuming the repair of page %" PRIu64 " (%s) at step %d of %zu", j.page,
		ph_mode_to_string(j.mode), it->step, j.n_steps);
	k = run_job(r, &j, it->id, it->step, &why);
	rs->jobs++;
	if (k < 0) {
		rec_job(r, PH_EVENT_FAILED, &j, it->range_id, "failed", why);
		if (k != -ESTALE && rs->pending)
			(void)ph_ranges_add(rs->pending, j.page, PH_PAGE_SECTORS);
		if (rs->res) {
			rs->res->failed++;
			if (!rs->res->detail && why)
				rs->res->detail = strdup(why);
		}
	} else {
		if (rs->res) {
			rs->res->written++;
			rs->res->cleared += j.cleared;
			rs->res->pinned += j.pinned;
			rs->res->bytes_lost += j.bytes_lost;
		}
		rec_job(r, PH_EVENT_REPAIRED, &j, it->range_id, "ok", "resumed after a restart");
		if (j.pinned && !j.cleared) /* cleared: recorded once, with its range */
			rec_job(r, PH_EVENT_PINNED, &j, it->range_id, "ok", "resumed after a restart");
	}
	/* A failed job fails its range now; otherwise the range is settled
	 * below, with the pages no job had started yet. */
	(void)ph_ledger_get_range(r->ledger, it->range_id, on_row_state, &cur);
	if (k < 0 && cur == PH_STATE_REPAIRING)
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_FAILED);
	if (k == 0 && cur == PH_STATE_FAILED) {
		/* A job that had failed pending is done now: its range is
		 * settled again with what is left (as after a crash). */
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_MAPPED);
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_PLANNED);
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_REPAIRING);
	}
	job_done(&j);
	return 0;
}

static int on_repairing(void *userdata, const struct ph_range_row *row)
{
	struct repairing *p = userdata;
	struct ph_range_row_copy *v;

	if (row->state != PH_STATE_REPAIRING)
		return 0;
	v = reallocarray(p->rows, p->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->rows = v;
	if (ph_range_row_copy(row, &v[p->n]) < 0)
		return -ENOMEM;
	p->n++;
	return 0;
}

_public_ int ph_repairer_resume(struct ph_repairer *r)
{
	struct resume rs = { .r = r };
	struct repairing rp = { 0 };
	int k;

	k = ph_ledger_intents_running(r->ledger, resume_one, &rs);
	if (k < 0)
		return k;
	/* Ranges a crash left repairing: their unfinished job is done now,
	 * but pages no job had started yet, and the range's own state, are
	 * not.  Plan them again from what the kernel lists now. */
	k = ph_ledger_foreach(r->ledger, NULL, on_repairing, &rp);
	for (size_t i = 0; k >= 0 && i < rp.n; i++) {
		struct ph_repair_result res;

		const struct ph_range_row *row = &rp.rows[i].row;

		ph_info(r->ctx, "Finishing the repair of %s sectors %" PRIu64 "+%" PRIu64 " after a restart",
			row->device, row->start, row->count);
		if (ph_repair_range(r, row, &res) < 0)
			(void)ph_ledger_set_state(r->ledger, row->id, PH_STATE_FAILED);
		ph_repair_result_done(&res);
	}
	for (size_t i = 0; i < rp.n; i++)
		ph_range_row_copy_done(&rp.rows[i]);
	free(rp.rows);
	return k < 0 ? k : (int)rs.jobs;
}
