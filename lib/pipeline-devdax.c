/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pipeline for a device DAX range: no filesystem and no write path, and
 * no intent (CLEAR_ERROR is its one change).  A page is planned from the
 * rule for the device node (report, or zero = CLEAR_ERROR through the bus),
 * cleared, and verified by planning again from the region's list; the range
 * is moved and its events recorded here, as pipeline.c does for files.
 */
#include "repair-internal.h"

/* ---- device DAX ---------------------------------------------------------- */

/* A devdax namespace: no filesystem, no write path.  Its pages are planned
 * from the rule for its device node (report, or zero = CLEAR_ERROR). */
int devdax_plan(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
		       struct ph_plan ***ret, size_t *ret_n)
{
	const struct ph_bus *bus = &r->topo->buses[r->topo->regions[ns->region].bus];
	_cleanup_free_ char *node = NULL, *list = NULL;
	struct ph_ranges bad = { 0 }, ns_bad = { 0 };
	struct ph_map_result res = { .range = { row->start, row->count } };
	struct ph_plan **plans = calloc(1, sizeof(*plans));
	const struct ph_region *rg = &r->topo->regions[ns->region];
	int k;

	if (!plans || asprintf(&node, "/dev/%s", ns->chardev) < 0) {
		free(plans);
		return -ENOMEM;
	}
	/* What the kernel lists now, from the region's list, in the
	 * namespace's sectors. */
	k = ph_source_region_list(rg, &list);
	if (k == 0)
		k = ph_source_read_list(r->ctx, list, &bad, NULL);
	for (size_t i = 0; k == 0 && i < bad.n; i++)
		for (uint64_t s = bad.v[i].start; s < bad.v[i].start + bad.v[i].count; s++) {
			uint64_t d;

			if (ph_region_to_namespace(r->topo, ns, s, &d) == 0 && ph_ranges_add(&ns_bad, d, 1) < 0)
				k = -ENOMEM;
		}
	{
		struct ph_plan_env e = {
			.policy = r->policy,
			.can_clear = bus->clear_error_cmd && ns->start != PH_UNKNOWN,
			.clear_reason = !bus->clear_error_cmd ? "device DAX has no write path and the bus has no "
								"CLEAR_ERROR command" :
					ns->start == PH_UNKNOWN ? "the namespace's physical address is not known" :
								  "firmware supports CLEAR_ERROR",
			.device = node,
			.devdax = true,
			.ns_start = ns->start == PH_UNKNOWN ? UINT64_MAX : ns->start,
			.bad = k == 0 ? &ns_bad : NULL,
			.override = _PH_ACTION_MAX,
		};

		k = ph_plan_build(&e, row->start, row->count, &res, &plans[0]);
	}
	ph_ranges_clear(&bad);
	ph_ranges_clear(&ns_bad);
	if (k < 0) {
		free(plans);
		return k;
	}
	*ret = plans;
	*ret_n = 1;
	return 0;
}

static void rec_devdax(struct ph_repairer *r, enum ph_event e, const struct ph_namespace *ns,
		       const struct ph_range_row *row, uint64_t sector, const char *result, uint64_t bytes_lost,
		       const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	if (!r->rec)
		return;
	f.device = ns->chardev;
	f.sector = sector;
	f.count = PH_PAGE_SECTORS;
	f.range_id = row->id;
	f.ns_id = ns->id;
	f.action = "clear-device";
	f.result = result;
	f.bytes_lost = bytes_lost;
	f.owner = "device";
	f.detail = detail;
	(void)ph_record(r->rec, e, &f);
}

/* Clear each page the plan clears, through the bus; verified against the
 * region's list afterwards (re-planned: a cleared page is healed). */
int devdax_repair(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
			 struct ph_repair_result *res)
{
	const struct ph_bus *bus = &r->topo->buses[r->topo->regions[ns->region].bus];
	struct ph_plan **plans = NULL, **after = NULL;
	enum ph_state cur = row->state;
	size_t n = 0, n_after = 0;
	bool any = false;
	int k;

	k = devdax_plan(r, ns, row, &plans, &n);
	if (k < 0)
		return k;
	if (cur == PH_STATE_NEW)
		(void)set_state(r, row->id, &cur, PH_STATE_MAPPED);
	for (size_t p = 0; p < plans[0]->n_pages; p++)
		any = any || plans[0]->pages[p].mode == PH_MODE_CLEAR_DEVICE;
	if (any && cur != PH_STATE_REPAIRING) {
		if (cur == PH_STATE_FAILED)
			(void)set_state(r, row->id, &cur, PH_STATE_MAPPED);
		(void)set_state(r, row->id, &cur, PH_STATE_PLANNED);
		(void)set_state(r, row->id, &cur, PH_STATE_REPAIRING);
	}
	for (size_t p = 0; p < plans[0]->n_pages; p++) {
		const struct ph_plan_page *pg = &plans[0]->pages[p];
		uint64_t cleared = 0;
		_cleanup_free_ char *what = NULL;

		res->pages++;
		if (pg->kind == PH_PAGE_HEALED) {
			res->healed++;
			continue;
		}
		if (pg->mode != PH_MODE_CLEAR_DEVICE) {
			res->recorded++;
			continue;
		}
		if (asprintf(&what, "CLEAR_ERROR on %s for page %" PRIu64 " (physical 0x%" PRIx64 ")", bus->name,
			     pg->sector, ns->start + pg->sector * 512) < 0)
			return -ENOMEM;
		/* No intent: a clear interrupted here leaves the range
		 * repairing, and a resume plans it again from the region's list. */
		k = ph_bus_clear_error(r->ctx, bus->name, ns->start + pg->sector * 512, PH_PAGE_SIZE, &cleared);
		if (k < 0 || cleared < PH_PAGE_SIZE) {
			res->failed++;
			if (!res->detail)
				(void)asprintf(&res->detail, "%s: %s", what,
					       k < 0 ? strerror(-k) : "the firmware cleared less than the page");
			rec_devdax(r, PH_EVENT_FAILED, ns, row, pg->sector, "failed", PH_FIELD_UNSET, res->detail);
			continue;
		}
		res->written++;
		res->bytes_lost += PH_PAGE_SIZE;
	}
	/* Verify: plan again from the region's list; cleared pages are healed. */
	if (res->written > 0 && devdax_plan(r, ns, row, &after, &n_after) == 0) {
		for (size_t p = 0; p < after[0]->n_pages; p++) {
			bool healed = after[0]->pages[p].kind == PH_PAGE_HEALED;

			if (plans[0]->pages[p].mode != PH_MODE_CLEAR_DEVICE)
				continue;
			res->cleared += healed;
			rec_devdax(r, healed ? PH_EVENT_REPAIRED : PH_EVENT_FAILED, ns, row, plans[0]->pages[p].sector,
				   healed ? "ok" : "failed", healed ? PH_PAGE_SIZE : PH_FIELD_UNSET,
				   healed ? "CLEAR_ERROR: the region no longer lists the page" :
					    "CLEAR_ERROR succeeded but the region still lists the page");
		}
		if (res->cleared < res->written) {
			res->failed += res->written - res->cleared;
			if (!res->detail)
				res->detail = strdup("the region still lists a page after CLEAR_ERROR");
		}
		ph_plan_free(after[0]);
		free(after);
	}
	if (any || cur == PH_STATE_REPAIRING)
		settle(r, row, &cur, final_state(res));
	res->state = cur;
	ph_plan_free(plans[0]);
	free(plans);
	return 0;
}
