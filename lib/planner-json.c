/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A repair plan as JSON, the shape `pmemheal repair --dry-run --json`
 * prints: the range, then each page with its owners (the action their rule
 * chose) and the steps the repairer would take.  It only describes a plan;
 * it does not build one (planner.c) or print.
 */
#include <json-c/json.h>

#include "escape.h"
#include "macro.h"
#include "planner-json.h"
#include "policy.h"

_public_ struct json_object *ph_plan_to_json(const struct ph_plan *p)
{
	struct json_object *j = json_object_new_object(), *pages = json_object_new_array();

	json_object_object_add(j, "device", ph_json_string(p->device));
	json_object_object_add(j, "sector", json_object_new_int64((int64_t)p->start));
	json_object_object_add(j, "count", json_object_new_int64((int64_t)p->count));
	json_object_object_add(j, "mount", p->mountpoint ? ph_json_string(p->mountpoint) : NULL);
	json_object_object_add(j, "can_clear", json_object_new_boolean(p->can_clear));
	json_object_object_add(j, "reflink", json_object_new_boolean(p->reflink));
	for (size_t i = 0; i < p->n_pages; i++) {
		const struct ph_plan_page *pg = &p->pages[i];
		struct json_object *pj = json_object_new_object(), *owners = json_object_new_array(),
				   *steps = json_object_new_array();

		json_object_object_add(pj, "sector", json_object_new_int64((int64_t)pg->sector));
		json_object_object_add(pj, "bad_sectors", json_object_new_int(pg->bad_mask));
		json_object_object_add(pj, "memory_failure", json_object_new_boolean(pg->memory_failure));
		json_object_object_add(pj, "mode", ph_json_string(ph_mode_to_string(pg->mode)));
		json_object_object_add(pj, "shared", json_object_new_boolean(pg->shared));
		json_object_object_add(pj, "bytes_at_risk", json_object_new_int64((int64_t)pg->bytes_lost));
		json_object_object_add(pj, "explain", pg->explain ? ph_json_string(pg->explain) : NULL);
		json_object_object_add(pj, "held_open_by", pg->holders ? ph_json_string(pg->holders) : NULL);
		for (size_t k = 0; k < pg->n_owners; k++) {
			const struct ph_plan_owner *o = &pg->owners[k];
			struct json_object *oj = json_object_new_object();

			json_object_object_add(oj, "path", o->path ? ph_json_string(o->path) : NULL);
			json_object_object_add(oj, "inode", json_object_new_int64((int64_t)o->inode));
			json_object_object_add(oj, "offset", json_object_new_int64((int64_t)o->file_offset));
			json_object_object_add(oj, "action", ph_json_string(ph_action_to_string(o->action)));
			json_object_object_add(oj, "rule", o->rule ? ph_json_string(o->rule->file) : NULL);
			if (o->n_links > 0) {
				struct json_object *lj = json_object_new_array();

				for (size_t l = 0; l < o->n_links; l++)
					json_object_array_add(lj, ph_json_string(o->links[l]));
				json_object_object_add(oj, "hard_links", lj);
			}
			json_object_array_add(owners, oj);
		}
		for (size_t k = 0; k < pg->n_steps; k++) {
			struct json_object *sj = json_object_new_object();

			json_object_object_add(sj, "step", ph_json_string(ph_step_to_string(pg->steps[k].kind)));
			json_object_object_add(sj, "detail", ph_json_string(pg->steps[k].detail));
			json_object_array_add(steps, sj);
		}
		json_object_object_add(pj, "owners", owners);
		json_object_object_add(pj, "steps", steps);
		json_object_array_add(pages, pj);
	}
	json_object_object_add(j, "pages", pages);
	return j;
}
