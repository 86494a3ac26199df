/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pipeline for one page of a range: content, intent, steps, verdict, and
 * the page's events (planned, repaired, data-lost, pinned, failed), with one
 * re-plan when the file changed between mapping and writing.
 */
#include "repair-internal.h"

/* One event about owner i of a planned page (i == SIZE_MAX: the page). */
static void rec_plan_page(struct ph_repairer *r, enum ph_event e, const struct ph_plan *plan,
			  const struct ph_plan_page *pg, size_t i, int64_t range_id, const char *ns_id,
			  const char *result, uint64_t bytes_lost, const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	_cleanup_free_ char *rule = NULL;

	if (!r->rec)
		return;
	f.device = dev_name(plan->device);
	f.sector = pg->sector;
	f.count = PH_PAGE_SECTORS;
	f.range_id = range_id;
	f.ns_id = ns_id;
	f.mountpoint = plan->mountpoint;
	f.result = result;
	f.bytes_lost = bytes_lost;
	f.detail = detail;
	f.action = ph_mode_to_string(pg->mode);
	if (pg->n_owners > 1)
		f.shared_owners = pg->n_owners;
	if (i != SIZE_MAX && i < pg->n_owners) {
		const struct ph_plan_owner *o = &pg->owners[i];

		f.path = o->path;
		f.inode = o->inode;
		f.offset = o->file_offset;
		f.length = PH_PAGE_SIZE;
		f.action = ph_action_to_string(o->action);
		if (o->rule && asprintf(&rule, "%s:%u", o->rule->file, o->rule->action_line) >= 0)
			f.rule = rule;
	} else if (pg->pin_path)
		f.path = pg->pin_path;
	(void)ph_record(r->rec, e, &f);
}

/* One event about a job read back from the intent log (resuming). */
void rec_job(struct ph_repairer *r, enum ph_event e, const struct job *j, int64_t range_id, const char *result,
		    const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	if (!r->rec)
		return;
	f.device = dev_name(j->device);
	f.sector = j->page;
	f.count = PH_PAGE_SECTORS;
	f.range_id = range_id;
	f.ns_id = j->ns_id;
	f.mountpoint = j->mount;
	f.action = ph_mode_to_string(j->mode);
	f.result = result;
	f.detail = detail;
	if (j->n_owners > 0) {
		f.path = j->owners[0].path;
		f.inode = j->owners[0].inode;
		f.offset = j->owners[0].offset;
		f.length = PH_PAGE_SIZE;
	}
	if (e == PH_EVENT_REPAIRED)
		f.bytes_lost = j->bytes_lost;
	(void)ph_record(r->rec, e, &f);
}

/* A page nothing writes: healed already, an earlier repair's pin, or
 * recorded only (report, refused, metadata, free space).  Returns 1. */
static int record_only(struct ph_repairer *r, struct session *s, const struct ph_plan *plan,
		       const struct ph_plan_page *pg, int64_t range_id, struct ph_repair_result *res)
{
	if (pg->kind == PH_PAGE_HEALED) {
		res->healed++;
		return 1;
	}
	if (pg->kind == PH_PAGE_PINNED) {
		res->pinned++; /* an earlier repair's pin: it stays */
		rec_plan_page(r, PH_EVENT_PINNED, plan, pg, SIZE_MAX, range_id, s->ns->id, "kept", PH_FIELD_UNSET,
			      pg->explain);
	} else {
		res->recorded++;
		/* What each file's rule said, so its history tells. */
		for (size_t i = 0; i < pg->n_owners; i++)
			rec_plan_page(r, PH_EVENT_PLANNED, plan, pg, i, range_id, s->ns->id,
				      pg->mode == PH_MODE_REFUSED ? "refused" : "report only", 0, pg->explain);
	}
	return 1;
}

/* Processes hold the file open: say who, and that the old inode stays. */
static int note_holders(struct ph_repairer *r, const struct ph_plan_page *pg, struct ph_repair_result *res)
{
	_cleanup_free_ char *note = NULL;
	bool many = strchr(pg->holders, ',');

	if (asprintf(&note, "%s is open in %s: %s on the old inode (in quarantine) until %s", pg->owners[0].path,
		     pg->holders, many ? "they stay" : "it stays", many ? "they close it" : "it closes it") < 0)
		return -ENOMEM;
	ph_warn(r->ctx, "%s", note);
	if (!res->notes)
		res->notes = TAKE_PTR(note);
	return 0;
}

/* The job and its content into the intent log, durably, before any change. */
static int begin_intent(struct ph_repairer *r, struct job *j, int64_t range_id, int64_t *ret_intent)
{
	_cleanup_free_ uint8_t *blob = NULL;
	struct json_object *jj;
	size_t blob_len = 0;
	int k;

	blob = slots_blob(j, &blob_len);
	if (!blob)
		return -ENOMEM;
	jj = job_to_json(j);
	k = ph_ledger_intent_begin(r->ledger, range_id, j->page,
				   json_object_to_json_string_ext(jj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
				   blob, blob_len, ph_now_usec(), ret_intent);
	json_object_put(jj);
	return k;
}

/* What a written page did, as events: per owner "repaired" and what it gave
 * up ("data-lost"), and "pinned" where the block stays allocated.  A cleared
 * page is part of its range's "cleared", recorded once when the range is
 * settled (settle()). */
static void rec_outcome(struct ph_repairer *r, struct session *s, const struct ph_plan *plan,
			const struct ph_plan_page *pg, int64_t range_id, const struct ph_repair_result *res,
			const struct job *j)
{
	for (size_t i = 0; i < pg->n_owners; i++) {
		const struct ph_plan_owner *po = &pg->owners[i];
		/* What this owner gave up, by its own rule (sharers may differ). */
		enum ph_content c = pg->mode == PH_MODE_RELOCATE_PIN ? po->content : pg->content;
		uint64_t lost = pg->mode != PH_MODE_RELOCATE_PIN ? j->bytes_lost :
				po->action == PH_ACTION_DELETE ? j->owners[i].size :
				po->action == PH_ACTION_PUNCH || c == PH_CONTENT_ZERO ? PH_PAGE_SIZE :
				c == PH_CONTENT_SALVAGE ? pg->bytes_lost : 0;

		if (po->action == PH_ACTION_REPORT && pg->n_owners > 1)
			continue;
		rec_plan_page(r, PH_EVENT_REPAIRED, plan, pg, i, range_id, s->ns->id, "ok", lost,
			      res->notes && i == 0 && pg->holders ? res->notes : NULL);
		if (lost > 0)
			rec_plan_page(r, PH_EVENT_DATA_LOST, plan, pg, i, range_id, s->ns->id, "ok", lost,
				      c == PH_CONTENT_SALVAGE ? "the poisoned sectors were written as zeros" :
				      po->action == PH_ACTION_DELETE ? "the file was removed" :
				      po->action == PH_ACTION_PUNCH ? "the page was punched (reads zeros)" :
				      "the page was written as zeros");
	}
	if (j->pinned && !j->cleared)
		rec_plan_page(r, PH_EVENT_PINNED, plan, pg, pg->n_owners ? 0 : SIZE_MAX, range_id, s->ns->id, "ok",
			      PH_FIELD_UNSET,
			      j->can_clear ? "the pinned block could not be cleared; it stays allocated" :
					     "the bus cannot clear: the poisoned block stays allocated in quarantine");
}

/* Execute one page; 0 done, 1 recorded only, <0 failed (why set). */
int repair_page(struct ph_repairer *r, struct session *s, size_t env_i, const struct ph_plan *plan,
		       const struct ph_plan_page *pg, int64_t range_id, struct ph_repair_result *res, unsigned depth,
		       bool may_replan, const struct ph_plan_override *ov, size_t n_ov)
{
	_cleanup_free_ char *why = NULL;
	enum ph_action fallback;
	size_t fb_owner;
	struct job j;
	int64_t intent;
	int k;

	if (!writes(pg->mode))
		return record_only(r, s, plan, pg, range_id, res);
	if (pg->holders && note_holders(r, pg, res) < 0)
		return -ENOMEM;
	k = job_from_plan(r, plan, pg, s->ns, plan->part_start, range_id, &j);
	if (k == -ESTALE)
		(void)asprintf(&why, "page %" PRIu64 ": a file changed since it was mapped; scan and repair again",
			       pg->sector);
	if (k < 0)
		goto fail;
	if (pg->content != PH_CONTENT_NONE || pg->mode != PH_MODE_RELOCATE_FILE) {
		k = compute_content(r, pg, &j, &fb_owner, &fallback, &why);
		if (k == 1 && depth <= pg->n_owners && pg->owners[fb_owner].path &&
		    (fallback != PH_ACTION_REPORT || pg->n_owners > 1)) {
			/* Re-plan this page with that owner's fallback action (its
			 * own rule's; its sharers keep theirs). */
			struct ph_plan_env e = s->env[env_i];
			_cleanup_(ph_plan_freep) struct ph_plan *p2 = NULL;
			_cleanup_free_ struct ph_plan_override *ov2 = calloc(n_ov + 1, sizeof(*ov2));

			if (!ov2) {
				k = -ENOMEM;
				goto fail;
			}
			if (n_ov > 0)
				memcpy(ov2, ov, n_ov * sizeof(*ov2));
			ov2[n_ov] = (struct ph_plan_override){ pg->owners[fb_owner].path, fallback };
			e.overrides = ov2;
			e.n_overrides = n_ov + 1;
			k = ph_plan_build(&e, pg->sector, PH_PAGE_SECTORS, &s->res[0], &p2);
			if (k < 0) {
				job_done(&j);
				goto fail;
			}
			p2->part_start = plan->part_start;
			k = repair_page(r, s, env_i, p2, &p2->pages[0], range_id, res, depth + 1, may_replan, ov2,
					n_ov + 1);
			job_done(&j);
			return k;
		}
		if (k == 1) {
			job_done(&j);
			res->recorded++;
			return 1;
		}
		if (k < 0)
			goto fail;
	}
	for (size_t i = 0; i < pg->n_owners; i++)
		if (pg->owners[i].action != PH_ACTION_REPORT || pg->n_owners == 1)
			rec_plan_page(r, PH_EVENT_PLANNED, plan, pg, i, range_id, s->ns->id, "planned", j.bytes_lost,
				      pg->explain);
	k = begin_intent(r, &j, range_id, &intent);
	if (k < 0)
		goto fail;
	k = run_job(r, &j, intent, 0, &why);
	if (k < 0)
		goto fail;
	res->written++;
	res->cleared += j.cleared;
	res->pinned += j.pinned;
	res->bytes_lost += j.bytes_lost;
	rec_outcome(r, s, plan, pg, range_id, res, &j);
	job_done(&j);
	return 0;
fail:
	if (k == -ESTALE && may_replan) {
		/* The file changed under us; nothing was written.  The caller
		 * maps the page afresh and plans it again. */
		job_done(&j);
		return k;
	}
	res->failed++;
	if (!res->detail)
		res->detail = why ? TAKE_PTR(why) : strdup(strerror(-k));
	rec_plan_page(r, PH_EVENT_FAILED, plan, pg, pg->n_owners ? 0 : SIZE_MAX, range_id, s->ns->id,
		      k == -ESTALE ? "conflict" : "failed", PH_FIELD_UNSET, why ? why : res->detail);
	job_done(&j);
	return k;
}
