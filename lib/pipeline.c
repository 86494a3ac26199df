/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pipeline for one range: map it, plan it per filesystem, repair each
 * page, verify, and settle the range.  This is where a range's ledger state
 * is moved and its range-wide events recorded (settle(): the state and the
 * "cleared" event in one place, so they cannot disagree).  The stages it
 * calls (mapper, planner, repair-*.c, verify.c) return data.
 */
#include "pipeline.h"
#include "repair-internal.h"

/* ---- entry points ------------------------------------------------------- */

_public_ int ph_repairer_new(struct ph_ctx *ctx, struct ph_ledger *ledger, const struct ph_policy *policy,
			     const struct ph_topology *topo, struct ph_repairer **ret)
{
	struct ph_repairer *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->ctx = ph_ctx_ref(ctx);
	r->ledger = ledger;
	r->policy = policy;
	r->topo = topo;
	r->own_memfail = PH_MEMFAIL_INIT;
	r->memfail = &r->own_memfail;
#ifdef PH_FAULT_INJECTION
	{
		const char *f = getenv("PMEMHEAL_DEBUG_FAIL_AFTER");

		if (f && *f) {
			char *colon;

			r->fault_step = strdup(f);
			if (!r->fault_step) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			colon = strchr(r->fault_step, ':');
			r->fault_nth = colon ? (unsigned)atoi(colon + 1) : 1;
			if (colon)
				*colon = '\0';
		}
		f = getenv("PMEMHEAL_DEBUG_ERROR");
		if (f && *f) {
			static const struct { const char *name; int e; } names[] = {
				{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "ENODEV", ENODEV }, { "ENXIO", ENXIO },
				{ "EROFS", EROFS }, { "EDQUOT", EDQUOT },
			};
			char *c1, *c2;

			r->error_step = strdup(f);
			if (!r->error_step) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			c1 = strchr(r->error_step, ':');
			c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			r->error_nth = 1;
			r->error_errno = EIO;
			if (c1)
				*c1 = '\0';
			if (c2) {
				*c2 = '\0';
				r->error_nth = (unsigned)atoi(c1 + 1);
			}
			if (c1) {
				const char *e = c2 ? c2 + 1 : c1 + 1;

				r->error_errno = atoi(e) > 0 ? atoi(e) : EIO;
				for (size_t i = 0; i < ELEMENTSOF(names); i++)
					if (strcmp(e, names[i].name) == 0)
						r->error_errno = names[i].e;
			}
		}
		f = getenv("PMEMHEAL_DEBUG_PAUSE_BEFORE");
		if (f && *f && getenv("PMEMHEAL_DEBUG_PAUSE_FIFO")) {
			char *colon;

			r->pause_step = strdup(f);
			r->pause_fifo = strdup(getenv("PMEMHEAL_DEBUG_PAUSE_FIFO"));
			if (!r->pause_step || !r->pause_fifo) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			colon = strchr(r->pause_step, ':');
			r->pause_nth = colon ? (unsigned)atoi(colon + 1) : 1;
			if (colon)
				*colon = '\0';
		}
	}
#endif
	*ret = r;
	return 0;
}

_public_ void ph_repairer_set_memfail(struct ph_repairer *r, struct ph_memfail *m)
{
	r->memfail = m ?: &r->own_memfail;
}

_public_ struct ph_repairer *ph_repairer_free(struct ph_repairer *r)
{
	if (!r)
		return NULL;
	ph_memfail_done(&r->own_memfail);
	free(r->fault_step);
	free(r->error_step);
	free(r->pause_step);
	free(r->pause_fifo);
	free(r->why);
	ph_ctx_unref(r->ctx);
	free(r);
	return NULL;
}

_public_ void ph_repairer_set_recorder(struct ph_repairer *r, struct ph_recorder *rec)
{
	r->rec = rec;
}

_public_ void ph_repair_result_done(struct ph_repair_result *res)
{
	free(res->detail);
	free(res->notes);
	memset(res, 0, sizeof(*res));
}

static void session_done(struct session *s)
{
	ph_map_results_free(s->res, 1);
	ph_mapper_free(s->mapper);
	ph_ranges_clear(&s->bad);
	free(s->device);
	memset(s, 0, sizeof(*s));
}

static int session_open(struct ph_repairer *r, const struct ph_range_row *row, struct session *s,
			struct ph_error *err)
{
	const struct ph_bus *bus;
	int k;

	memset(s, 0, sizeof(*s));
	s->ctx = r->ctx;
	s->ns = ph_topology_find_ns(r->topo, row->ns_id);
	if (!s->ns) {
		ph_error_set(err, "namespace %s is not present", row->ns_id);
		return -ENODEV;
	}
	bus = &r->topo->buses[r->topo->regions[s->ns->region].bus];
	if (!s->ns->blockdev) {
		ph_error_set(err, "%s has no block device (devdax): its poison can only be reported",
			     s->ns->chardev ? s->ns->chardev : s->ns->name);
		return -EOPNOTSUPP;
	}
	if (asprintf(&s->device, "/dev/%s", s->ns->blockdev) < 0)
		return -ENOMEM;
	/* Asked anew for every range (only what the kernel logged since, when
	 * /dev/kmsg stays open): a daemon runs for days. */
	k = ph_memfail_follow(r->ctx, r->memfail);
	if (k < 0) {
		ph_error_set(err, "cannot tell which pages went through memory_failure (no kernel log): "
			     "refusing to read any");
		return k;
	}
	{
		_cleanup_free_ char *list = NULL;

		k = ph_source_device_list(s->ns, &list);
		if (k == 0)
			k = ph_source_read_list(r->ctx, list, &s->bad, NULL);
		if (k < 0 && k != -ENOENT)
			return k;
		s->bad_read = k == 0;
	}
	s->q.start = row->start / PH_PAGE_SECTORS * PH_PAGE_SECTORS;
	s->q.count = (row->start + row->count + PH_PAGE_SECTORS - 1) / PH_PAGE_SECTORS * PH_PAGE_SECTORS - s->q.start;
	k = ph_pipeline_map(r->ctx, s->ns, &s->q, 1, &s->mapper, &s->res, err);
	if (k < 0)
		return k;
	/* The audit trail: who owns the range, as this repair found it. */
	for (size_t i = 0; r->rec && i < s->res[0].n_owners; i++)
		(void)ph_record_owner(r->rec, row, &s->res[0], i);
	for (size_t i = 0; i < ph_mapper_n_fs(s->mapper) && s->n_env < ELEMENTSOF(s->env); i++) {
		const struct ph_map_fs *fs = ph_mapper_get_fs(s->mapper, i);
		struct ph_plan_env *e = &s->env[s->n_env];
		uint64_t fstart, fcount;
		bool reflink = false;
		uint32_t bsize = 0;

		ph_map_fs_get_extent(fs, &fstart, &fcount);
		if (ph_map_fs_get_mount(fs)) {
			_cleanup_close_ int fd = open(ph_map_fs_get_mount(fs), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (fd >= 0)
				(void)ph_fs_probe(fd, ph_map_fs_get_fstype(fs), &reflink, &bsize);
		}
		*e = (struct ph_plan_env){
			.policy = r->policy,
			.can_clear = bus->can_clear,
			.clear_reason = bus->clear_reason,
			.reflink = reflink,
			.device = s->device,
			.mountpoint = ph_map_fs_get_mount(fs),
			.fstype = ph_map_fs_get_fstype(fs),
			.block_size = bsize,
			.ns_start = s->ns->start == PH_UNKNOWN ? UINT64_MAX : s->ns->start,
			.memfail = &r->memfail->pfns,
			.bad = s->bad_read ? &s->bad : NULL,
			.override = _PH_ACTION_MAX,
		};
		s->part_start[s->n_env++] = fstart;
	}
	return 0;
}

/* Plan row's poisoned sectors on each filesystem they fall in. */
static int session_plan(struct session *s, const struct ph_range_row *row, struct ph_plan ***ret, size_t *ret_n)
{
	struct ph_plan **plans = calloc(MAX(s->n_env, (size_t)1), sizeof(*plans));
	size_t n = 0;
	int k = 0;

	if (!plans)
		return -ENOMEM;
	for (size_t i = 0; k == 0 && i < s->n_env; i++) {
		const struct ph_map_fs *fs = ph_mapper_get_fs(s->mapper, i);
		struct ph_range want = { row->start, row->count }, span, sub;
		uint64_t fstart, fcount;

		ph_map_fs_get_extent(fs, &fstart, &fcount);
		span = (struct ph_range){ fstart, fcount };
		if (!ph_range_intersect(&want, &span, &sub))
			continue;
		k = ph_plan_build(&s->env[i], sub.start, sub.count, &s->res[0], &plans[n]);
		if (k == 0)
			plans[n++]->part_start = fstart;
	}
	/* A file moved aside or deleted leaves whoever has it open on the old
	 * inode: say who, where /proc shows them (it does not under the
	 * shipped unit: ProtectProc=, no CAP_SYS_PTRACE).  A relocated file
	 * needs no note: its write lease refuses to move it while it is open. */
	for (size_t i = 0; k == 0 && i < n; i++)
		for (size_t p = 0; k == 0 && p < plans[i]->n_pages; p++) {
			struct ph_plan_page *pg = &plans[i]->pages[p];

			if ((pg->mode == PH_MODE_QUARANTINE || pg->mode == PH_MODE_DELETE) && pg->n_owners > 0 &&
			    pg->owners[0].path)
				k = find_holders(s->ctx, plans[i]->mountpoint, pg->owners[0].inode, &pg->holders);
		}
	if (k < 0) {
		for (size_t i = 0; i < n; i++)
			ph_plan_free(plans[i]);
		free(plans);
		return k;
	}
	*ret = plans;
	*ret_n = n;
	return 0;
}

_public_ int ph_repair_plan(struct ph_repairer *r, const struct ph_range_row *row, struct ph_plan ***ret,
			    size_t *ret_n)
{
	const struct ph_namespace *ns = ph_topology_find_ns(r->topo, row->ns_id);
	struct session s;
	struct ph_error err = { { 0 } };
	int k;

	if (ns && !ns->blockdev && ns->chardev)
		return devdax_plan(r, ns, row, ret, ret_n);
	k = session_open(r, row, &s, &err);
	if (k == 0)
		k = session_plan(&s, row, ret, ret_n);
	else
		ph_err(r->ctx, "range %" PRId64 ": %s", row->id, err.message);
	session_done(&s);
	return k;
}

bool writes(enum ph_mode m)
{
	return m != PH_MODE_RECORD && m != PH_MODE_REFUSED && m != PH_MODE_CLEAR_DEVICE;
}

int set_state(struct ph_repairer *r, int64_t id, enum ph_state *cur, enum ph_state to)
{
	int k;

	if (*cur == to)
		return 0;
	k = ph_ledger_set_state(r->ledger, id, to);
	if (k == 0)
		*cur = to;
	return k;
}

/* ---- the audit trail ---------------------------------------------------- */

const char *dev_name(const char *device)
{
	return device && strncmp(device, "/dev/", 5) == 0 ? device + 5 : device;
}

static bool in_replan(const struct ph_ranges *rs, uint64_t sector)
{
	for (size_t i = 0; i < rs->n; i++)
		if (sector >= rs->v[i].start && sector < rs->v[i].start + rs->v[i].count)
			return true;
	return false;
}

enum ph_state final_state(const struct ph_repair_result *res)
{
	if (res->failed)
		return PH_STATE_FAILED;
	if (res->pinned)
		return PH_STATE_PINNED;
	if (res->written + res->healed > 0 && res->cleared + res->healed == res->written + res->healed &&
	    res->recorded == 0)
		return PH_STATE_CLEARED;
	return PH_STATE_REPAIRED;
}

/* The range's outcome.  "cleared" is one fact about the whole range,
 * recorded here once, when this repair moves it to cleared (every page
 * verified unlisted), in the same shape as a scan's (ph_record_change());
 * a scan that later finds the range gone from the kernel's list sees it
 * cleared already and records nothing. */
void settle(struct ph_repairer *r, const struct ph_range_row *row, enum ph_state *cur, enum ph_state to)
{
	struct ph_change c = { .type = PH_CHANGE_CLEARED, .row = *row };
	enum ph_state was = *cur;

	(void)set_state(r, row->id, cur, to);
	if (was != *cur && *cur == PH_STATE_CLEARED)
		(void)ph_record_change(r->rec, &c);
}

/* The planning environment (filesystem) a plan was made for. */
static size_t env_of(const struct session *s, const struct ph_plan *plan)
{
	size_t env_i = 0;

	for (size_t e = 0; e < s->n_env; e++)
		if (s->part_start[e] == plan->part_start)
			env_i = e;
	return env_i;
}

/* Pages whose files changed between mapping and writing: map them again,
 * now, and plan them from what they are; a second conflict fails them. */
static void replan_pages(struct ph_repairer *r, const struct ph_range_row *row, struct session *s,
			 struct ph_plan ***plans, size_t *n, const struct ph_ranges *replan, struct ph_repair_result *res)
{
	struct ph_error err = { { 0 } };
	int k;

	for (size_t i = 0; i < *n; i++)
		ph_plan_free((*plans)[i]);
	free(*plans);
	*plans = NULL;
	*n = 0;
	session_done(s);
	k = session_open(r, row, s, &err);
	if (k == 0)
		k = session_plan(s, row, plans, n);
	if (k < 0) {
		for (size_t i = 0; i < replan->n; i++)
			res->failed += (unsigned)(replan->v[i].count / PH_PAGE_SECTORS);
		if (!res->detail)
			res->detail = strdup(err.message[0] ? err.message : strerror(-k));
		return;
	}
	for (size_t i = 0; i < *n; i++) {
		const struct ph_plan *plan = (*plans)[i];

		for (size_t p = 0; p < plan->n_pages; p++)
			if (in_replan(replan, plan->pages[p].sector))
				(void)repair_page(r, s, env_of(s, plan), plan, &plan->pages[p], row->id, res, 0, false,
						  NULL, 0);
	}
}

_public_ int ph_repair_range(struct ph_repairer *r, const struct ph_range_row *row, struct ph_repair_result *res)
{
	struct ph_plan **plans = NULL;
	struct ph_error err = { { 0 } };
	enum ph_state cur = row->state;
	struct ph_ranges replan = { 0 }, pending = { 0 };
	struct session s;
	size_t n = 0;
	bool any = false;
	int k;

	memset(res, 0, sizeof(*res));
	res->state = row->state;
	{
		const struct ph_namespace *ns = ph_topology_find_ns(r->topo, row->ns_id);

		if (ns && !ns->blockdev && ns->chardev)
			return devdax_repair(r, ns, row, res);
	}
	{
		/* A job of this range that failed after it began (no space,
		 * an I/O error) is finished first, from its intent; a page
		 * whose job is still pending is not planned again. */
		struct resume rs = { .r = r, .only = row->id, .res = res, .pending = &pending };

		(void)ph_ledger_intents_running(r->ledger, resume_one, &rs);
		(void)ph_ledger_get_range(r->ledger, row->id, on_row_state, &cur);
	}
	k = session_open(r, row, &s, &err);
	/* Mapped (and its owners journalled by session_open()): the state
	 * says so before anything is planned. */
	if (k == 0 && cur == PH_STATE_NEW)
		(void)set_state(r, row->id, &cur, PH_STATE_MAPPED);
	if (k == 0)
		k = session_plan(&s, row, &plans, &n);
	if (k < 0) {
		res->detail = strdup(err.message[0] ? err.message : strerror(-k));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t p = 0; p < plans[i]->n_pages; p++)
			any = any || writes(plans[i]->pages[p].mode);
	/* A range left repairing by a crash is finished, whatever is left. */
	any = any || cur == PH_STATE_REPAIRING;
	if (any && cur != PH_STATE_REPAIRING) {
		if (cur == PH_STATE_FAILED)
			(void)set_state(r, row->id, &cur, PH_STATE_MAPPED);
		k = set_state(r, row->id, &cur, PH_STATE_PLANNED);
		if (k == 0)
			k = set_state(r, row->id, &cur, PH_STATE_REPAIRING);
		if (k < 0) {
			res->detail = strdup("the ledger refused the transition to repairing");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t env_i = env_of(&s, plans[i]);

		for (size_t p = 0; p < plans[i]->n_pages; p++) {
			res->pages++;
			if (in_replan(&pending, plans[i]->pages[p].sector))
				continue; /* its job is pending: counted failed above */
			if (repair_page(r, &s, env_i, plans[i], &plans[i]->pages[p], row->id, res, 0, true, NULL, 0) == -ESTALE &&
			    ph_ranges_add(&replan, plans[i]->pages[p].sector, PH_PAGE_SECTORS) < 0)
				res->failed++;
		}
	}
	if (replan.n > 0)
		replan_pages(r, row, &s, &plans, &n, &replan, res);
	if (any)
		settle(r, row, &cur, final_state(res));
	k = 0;
out:
	res->state = cur;
	ph_ranges_clear(&replan);
	ph_ranges_clear(&pending);
	for (size_t i = 0; i < n; i++)
		ph_plan_free(plans[i]);
	free(plans);
	session_done(&s);
	return k;
}
