/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The planner's decisions, page by page:
 *   - metadata anywhere in the page: record (crit), never write;
 *   - unknown or unmounted: record;  free: record (it heals on the next
 *     allocation only where the bus clears);
 *   - files: each owner by its own rule, never by a sharer's; where the
 *     sharers' rules disagree, relocate-and-pin gives each its own
 *     outcome.  Owners whose repaired pages come out identical are
 *     shared again (unless a rule says OnShared=separate); the mode
 *     follows from sharing, whether the bus clears, and whether the
 *     filesystem has reflink.
 * A page that went through memory_failure this boot is never read and
 * never written where it is: salvage takes it from Source= when the rule
 * has one, else zeroes it, and every owner is relocated with the block
 * pinned (cleared by a later boot's repair, on a bus that clears).
 * Nothing here frees a poisoned block on a bus that cannot clear: every
 * mode that deallocates pins first, or keeps the old inode.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"
#include "range.h"

static void page_done(struct ph_plan_page *pg)
{
	for (size_t i = 0; i < pg->n_owners; i++) {
		free(pg->owners[i].path);
		free(pg->owners[i].source);
		for (size_t k = 0; k < pg->owners[i].n_links; k++)
			free(pg->owners[i].links[k]);
		free(pg->owners[i].links);
	}
	free(pg->owners);
	for (size_t i = 0; i < pg->n_steps; i++)
		free(pg->steps[i].detail);
	free(pg->steps);
	free(pg->explain);
	free(pg->pin_path);
	free(pg->holders);
}

_public_ struct ph_plan *ph_plan_free(struct ph_plan *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_pages; i++)
		page_done(&p->pages[i]);
	free(p->pages);
	free(p->device);
	free(p->mountpoint);
	free(p->fstype);
	free(p);
	return NULL;
}

static int step(struct ph_plan_page *pg, enum ph_step_kind k, size_t owner, const char *fmt, ...)
	_printf_(4, 5);
static int step(struct ph_plan_page *pg, enum ph_step_kind k, size_t owner, const char *fmt, ...)
{
	struct ph_plan_step *v = reallocarray(pg->steps, pg->n_steps + 1, sizeof(*v));
	va_list ap;
	int n;

	if (!v)
		return -ENOMEM;
	pg->steps = v;
	v[pg->n_steps] = (struct ph_plan_step){ .kind = k, .owner = owner };
	va_start(ap, fmt);
	n = vasprintf(&v[pg->n_steps].detail, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	pg->n_steps++;
	return 0;
}

static int explain(struct ph_plan_page *pg, const char *fmt, ...) _printf_(2, 3);
static int explain(struct ph_plan_page *pg, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(pg->explain);
	va_start(ap, fmt);
	n = vasprintf(&pg->explain, fmt, ap);
	va_end(ap);
	return n < 0 ? -ENOMEM : 0;
}

static bool in_ranges(const struct ph_ranges *l, uint64_t s)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (l->v[i].start <= s && s < l->v[i].start + l->v[i].count)
			return true;
	return false;
}

static unsigned popcount8(uint8_t m)
{
	return (unsigned)__builtin_popcount(m);
}

/* The owners of the page (file owners first, by path), and its kind. */
static int collect_owners(const struct ph_plan_env *env, struct ph_plan_page *pg,
			  const struct ph_map_result *res)
{
	uint64_t s0 = pg->sector, e0 = s0 + PH_PAGE_SECTORS;
	bool any_free = false, all_free = true, unknown = false, unmounted = false;
	_cleanup_free_ char *qprefix = NULL;

	/* Files under <mount>/.pmemheal/ are ours: pins and quarantined files
	 * that keep poisoned blocks allocated.  They are never repaired as
	 * files (that would pin the pin). */
	if (env->mountpoint && asprintf(&qprefix, "%s/.pmemheal/", strcmp(env->mountpoint, "/") ?
					env->mountpoint : "") < 0)
		return -ENOMEM;

	for (size_t i = 0; i < res->n_owners; i++) {
		const struct ph_owner *o = &res->owners[i];
		struct ph_plan_owner *v;
		uint64_t fo;
		bool dup = false;

		if (o->sector >= e0 || o->sector + o->count <= s0)
			continue;
		switch (o->type) {
		case PH_OWNER_METADATA:
			pg->kind = PH_PAGE_METADATA;
			pg->what = o->what;
			all_free = false;
			continue;
		case PH_OWNER_FREE:
			any_free = true;
			continue;
		case PH_OWNER_UNKNOWN:
			unknown = true;
			all_free = false;
			continue;
		case PH_OWNER_UNMOUNTED:
			unmounted = true;
			all_free = false;
			continue;
		case PH_OWNER_FILE:
			all_free = false;
			break;
		}
		if (qprefix && o->n_paths > 0 && strncmp(o->paths[0], qprefix, strlen(qprefix)) == 0) {
			if (!pg->pin_path && !(pg->pin_path = strdup(o->paths[0])))
				return -ENOMEM;
			continue;
		}
		/* The file offset of the page's first byte. */
		if (o->sector > s0) {
			uint64_t delta = (o->sector - s0) * 512;

			if (o->offset < delta)
				return -EINVAL;
			fo = o->offset - delta;
		} else
			fo = o->offset + (s0 - o->sector) * 512;
		if (fo % PH_PAGE_SIZE)
			return -EINVAL;
		for (size_t k = 0; k < pg->n_owners; k++)
			dup = dup || (pg->owners[k].inode == o->inode && pg->owners[k].file_offset == fo);
		if (dup)
			continue;
		if (o->shared)
			pg->shared = true;
		v = reallocarray(pg->owners, pg->n_owners + 1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		pg->owners = v;
		v[pg->n_owners] = (struct ph_plan_owner){ .inode = o->inode, .file_offset = fo };
		if (o->n_paths > 0 && !(v[pg->n_owners].path = strdup(o->paths[0])))
			return -ENOMEM;
		pg->n_owners++;
		if (o->n_paths > 1) {
			struct ph_plan_owner *po = &v[pg->n_owners - 1];

			po->links = calloc(o->n_paths - 1, sizeof(char *));
			if (!po->links)
				return -ENOMEM;
			for (size_t k = 1; k < o->n_paths; k++)
				if (!(po->links[po->n_links++] = strdup(o->paths[k])))
					return -ENOMEM;
		}
	}
	if (pg->kind == PH_PAGE_METADATA)
		return 0;
	if (pg->n_owners > 0)
		pg->kind = unknown || unmounted ? PH_PAGE_UNKNOWN : PH_PAGE_FILE;
	else if (pg->pin_path && !unknown && !unmounted)
		pg->kind = PH_PAGE_PINNED;
	else if (unmounted || env->devdax)
		pg->kind = PH_PAGE_DEVICE;
	else if (any_free && all_free)
		pg->kind = PH_PAGE_FREE;
	else
		pg->kind = PH_PAGE_UNKNOWN;
	if (pg->n_owners > 1)
		pg->shared = true;
	return 0;
}

static int owner_cmp(const void *a, const void *b)
{
	const struct ph_plan_owner *x = a, *y = b;

	return strcmp(x->path ? x->path : "~", y->path ? y->path : "~");
}

/* What owner i's repaired page holds, by its own rule: its steps, its
 * content, and the bytes it gives up. */
static int plan_content(const struct ph_plan_env *env, struct ph_plan_page *pg, size_t i)
{
	struct ph_plan_owner *o = &pg->owners[i];
	uint64_t lost = 0;
	int r = 0;

	switch (o->action) {
	case PH_ACTION_SALVAGE:
		if (pg->memory_failure && o->source) {
			o->content = PH_CONTENT_RESTORE;
			r = step(pg, PH_STEP_READ_SOURCE, i, "%s and must not be read: take all of it from %s",
				 pg->mf_unknown ? "the page's physical address is not known, so it may have gone "
						  "through memory_failure" : "the page went through memory_failure this boot",
				 o->source);
		} else if (pg->memory_failure) {
			o->content = PH_CONTENT_ZERO;
			lost = PH_PAGE_SIZE;
			r = step(pg, PH_STEP_RECORD, i, "%s and must not be read: all %u bytes are lost and written as zeros",
				 pg->mf_unknown ? "the page's physical address is not known, so it may have gone "
						  "through memory_failure" : "the page went through memory_failure this boot",
				 PH_PAGE_SIZE);
		} else {
			bool read = false;

			for (size_t k = 0; k < i; k++)
				read = read || pg->owners[k].content == PH_CONTENT_SALVAGE;
			o->content = PH_CONTENT_SALVAGE;
			lost = popcount8(pg->bad_mask) * 512u;
			if (!read) /* one read serves every owner that salvages */
				r = step(pg, PH_STEP_READ_GOOD, i, "read the %u good sectors of the page from %s "
					 "with O_DIRECT; the %u bad ones become zeros",
					 PH_PAGE_SECTORS - popcount8(pg->bad_mask), env->device, popcount8(pg->bad_mask));
		}
		break;
	case PH_ACTION_ZERO:
		o->content = PH_CONTENT_ZERO;
		lost = PH_PAGE_SIZE;
		break;
	case PH_ACTION_RESTORE:
		o->content = PH_CONTENT_RESTORE;
		r = step(pg, PH_STEP_READ_SOURCE, i, "read the page of %s from %s (a regular file of the same "
			 "size, else Fallback=%s)", o->path ? o->path : "?", o->source ? o->source : "?",
			 o->rule && o->rule->has_fallback ? ph_action_to_string(o->rule->fallback) : "report");
		break;
	case PH_ACTION_EXEC:
		o->content = PH_CONTENT_HOOK;
		r = step(pg, PH_STEP_RUN_HOOK, i, "run %s for %s (timeout %" PRIu64 " s); exit 0: it wrote the "
			 "page, 75: Fallback=%s", o->rule->hook[0], o->path ? o->path : "?",
			 o->rule->hook_timeout_usec / 1000000,
			 o->rule->has_fallback ? ph_action_to_string(o->rule->fallback) : "report");
		break;
	default:
		break;
	}
	if (pg->content == PH_CONTENT_NONE)
		pg->content = o->content;
	pg->bytes_lost = MAX(pg->bytes_lost, lost);
	return r;
}

/* Without reflink: a whole-file copy replaces the file, the old inode
 * (with its poisoned block) is kept in quarantine, and every other name of
 * the inode moves to the copy too, one atomic rename each, so hard links
 * are not split from the repaired file. */
static int relocate_file_steps(struct ph_plan_page *pg, const char *how)
{
	const struct ph_plan_owner *o = &pg->owners[0];
	int r;

	r = step(pg, PH_STEP_COPY_FILE, 0, "copy %s whole, %s at %" PRIu64 ", keeping mode, owner, xattrs "
		 "and times", o->path, how, o->file_offset);
	if (r == 0)
		r = step(pg, PH_STEP_LINK_OLD, 0, "link the old inode into quarantine: its poisoned block stays "
			 "allocated");
	if (r == 0)
		r = step(pg, PH_STEP_RENAME, 0, "rename the copy over %s", o->path);
	for (size_t k = 0; r == 0 && k < o->n_links; k++)
		r = step(pg, PH_STEP_RELINK, k + 1, "point the hard link %s at the repaired copy", o->links[k]);
	return r;
}

static bool content_action(enum ph_action a)
{
	return a == PH_ACTION_SALVAGE || a == PH_ACTION_ZERO || a == PH_ACTION_RESTORE || a == PH_ACTION_EXEC;
}

/* May this page be written where it is, this boot?  Only on a bus that
 * clears, and never a page that went through memory_failure: the kernel
 * took it out of its direct map, a write through the file fails (EFAULT)
 * and on virtio-pmem drops the list entry that keeps reads from oopsing.
 * Such a page is relocated and pinned; a later boot clears it. */
static bool clears_now(const struct ph_plan_env *env, const struct ph_plan_page *pg)
{
	return env->can_clear && !pg->memory_failure;
}

static const char *why_pinned(const struct ph_plan_env *env, const struct ph_plan_page *pg)
{
	if (env->can_clear && pg->memory_failure)
		return "the page went through memory_failure this boot: it is cleared after a reboot";
	return env->clear_reason ? env->clear_reason : "the bus cannot clear";
}

/* Steps that put the repaired page in place, for the page's mode.  In
 * relocate-and-pin each owner gets what its own rule says: the repaired
 * pages are written to fresh blocks of a staging file first (so no space
 * is needed once anything is given up), then each owner's page is
 * swapped for its staged one by one FICLONERANGE, which never leaves a
 * hole; owners whose pages come out identical get one staged block, so
 * they are shared again. */
static int plan_write(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	size_t n_content = 0;
	int r = 0;

	for (size_t i = 0; i < pg->n_owners; i++)
		n_content += content_action(pg->owners[i].action);
	switch (pg->mode) {
	case PH_MODE_IN_PLACE:
		r = step(pg, PH_STEP_WRITE, 0, "write the page to %s at %" PRIu64 " in one aligned pwrite: "
			 "the bus clears the poison", pg->owners[0].path, pg->owners[0].file_offset);
		break;
	case PH_MODE_RELOCATE_PIN:
		if (n_content > 0)
			r = step(pg, PH_STEP_STAGE, 0, "write the repaired page%s to fresh blocks of a staging file "
				 "in the quarantine directory: the space is taken before anything is given up",
				 n_content > 1 ? "s" : "");
		if (r == 0)
			r = step(pg, PH_STEP_PIN, 0, "clone the page of %s into the quarantine file: the poisoned "
				 "block stays allocated", pg->owners[0].path);
		for (size_t i = 0; r == 0 && i < pg->n_owners; i++) {
			const struct ph_plan_owner *o = &pg->owners[i];

			switch (o->action) {
			case PH_ACTION_REPORT:
				break;
			case PH_ACTION_PUNCH:
				r = step(pg, PH_STEP_PUNCH, i, "punch %s at %" PRIu64 " (%s)", o->path, o->file_offset,
					 o->rule ? o->rule->name : "fallback");
				break;
			case PH_ACTION_DELETE:
				r = step(pg, PH_STEP_UNLINK, i, "unlink %s (%s)", o->path, o->rule ? o->rule->name : "fallback");
				break;
			case PH_ACTION_QUARANTINE:
				r = step(pg, PH_STEP_RENAME, i, "move %s into the quarantine directory with a report (%s)",
					 o->path, o->rule ? o->rule->name : "fallback");
				break;
			default:
				r = step(pg, PH_STEP_SWAP, i, "swap %s's page at %" PRIu64 " for its staged page in one "
					 "FICLONERANGE (%s%s)", o->path, o->file_offset,
					 o->rule ? o->rule->name : "fallback",
					 n_content > 1 && (!o->rule || o->rule->on_shared == PH_SHARED_TOGETHER) ?
					 "; shared with every sharer whose page comes out identical" : "");
				break;
			}
		}
		if (r == 0 && n_content > 0)
			r = step(pg, PH_STEP_UNSTAGE, 0, "remove the staging file");
		if (r == 0 && clears_now(env, pg))
			r = step(pg, PH_STEP_CLEAR, 0, "write the pinned copy (now its only owner): the bus "
				 "clears the poison");
		if (r == 0 && clears_now(env, pg))
			r = step(pg, PH_STEP_RELEASE, 0, "release the cleared block");
		if (r == 0 && !clears_now(env, pg))
			r = step(pg, PH_STEP_RECORD, 0, "keep the poisoned block pinned: %s", why_pinned(env, pg));
		break;
	case PH_MODE_RELOCATE_FILE:
		r = relocate_file_steps(pg, "with the repaired page");
		break;
	default:
		break;
	}
	return r;
}

/* File-level actions: quarantine, delete, punch. */
static int plan_file_action(const struct ph_plan_env *env, struct ph_plan_page *pg, enum ph_action a)
{
	int r = 0;

	if (a == PH_ACTION_QUARANTINE) {
		pg->mode = PH_MODE_QUARANTINE;
		for (size_t i = 0; r == 0 && i < pg->n_owners; i++)
			if (pg->owners[i].action != PH_ACTION_REPORT)
				r = step(pg, PH_STEP_RENAME, i, "move %s into the quarantine directory with a report; "
					 "its blocks stay allocated", pg->owners[i].path);
		return r;
	}
	if (env->reflink) {
		pg->mode = a == PH_ACTION_DELETE ? PH_MODE_DELETE : PH_MODE_PUNCH;
		r = step(pg, PH_STEP_PIN, 0, "clone the page into the quarantine file: the poisoned block "
			 "stays allocated");
		for (size_t i = 0; r == 0 && i < pg->n_owners; i++)
			if (pg->owners[i].action != PH_ACTION_REPORT)
				r = a == PH_ACTION_DELETE ? step(pg, PH_STEP_UNLINK, i, "unlink %s", pg->owners[i].path)
							  : step(pg, PH_STEP_PUNCH, i, "punch %s at %" PRIu64,
								 pg->owners[i].path, pg->owners[i].file_offset);
		if (r == 0 && clears_now(env, pg))
			r = step(pg, PH_STEP_CLEAR, 0, "write the pinned copy: the bus clears the poison");
		if (r == 0 && clears_now(env, pg))
			r = step(pg, PH_STEP_RELEASE, 0, "release the cleared block");
		return r;
	}
	if (clears_now(env, pg) && !pg->shared) {
		/* No pinning without reflink, but this bus clears: make the
		 * block healthy first, then let it go. */
		pg->mode = a == PH_ACTION_DELETE ? PH_MODE_DELETE : PH_MODE_PUNCH;
		r = step(pg, PH_STEP_WRITE, 0, "write zeros over the page in place: the bus clears the poison");
		if (r == 0)
			r = a == PH_ACTION_DELETE ? step(pg, PH_STEP_UNLINK, 0, "unlink %s", pg->owners[0].path)
						  : step(pg, PH_STEP_PUNCH, 0, "punch %s at %" PRIu64,
							 pg->owners[0].path, pg->owners[0].file_offset);
		return r;
	}
	if (a == PH_ACTION_DELETE) {
		/* The only way to keep the block allocated is to keep the inode. */
		pg->mode = PH_MODE_QUARANTINE;
		return step(pg, PH_STEP_RENAME, 0, "move %s into quarantine instead of unlinking it: without "
			    "reflink its poisoned block can be kept allocated only by keeping the file",
			    pg->owners[0].path);
	}
	/* punch, no reflink, cannot clear: a copy with a hole there */
	pg->mode = PH_MODE_RELOCATE_FILE;
	pg->content = PH_CONTENT_NONE;
	return relocate_file_steps(pg, "with a hole there");
}

static const struct ph_rule fallback_rule = { .name = (char *)"fallback" };

/* Each owner's rule, matched on its path, and its action (an override,
 * such as a fallback, replaces the rule's for that owner only). */
static int match_owners(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	int r;

	qsort(pg->owners, pg->n_owners, sizeof(*pg->owners), owner_cmp);
	for (size_t i = 0; i < pg->n_owners; i++) {
		struct ph_plan_owner *o = &pg->owners[i];

		o->rule = o->path ? ph_policy_match(env->policy, o->path) : NULL;
		o->action = o->rule ? o->rule->action : PH_ACTION_REPORT;
		if (o->rule && o->rule->source && o->path) {
			r = ph_rule_expand_source(o->rule, o->path, env->mountpoint, &o->source);
			if (r < 0)
				return r;
		}
		if (env->override < _PH_ACTION_MAX)
			o->action = env->override;
		for (size_t k = 0; k < env->n_overrides; k++)
			if (o->path && strcmp(o->path, env->overrides[k].path) == 0)
				o->action = env->overrides[k].action;
	}
	return 0;
}

static int plan_file_page(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	const struct ph_rule *first;
	const struct ph_plan_owner *f = NULL;
	enum ph_action a;
	bool same = true;
	int r;

	r = match_owners(env, pg);
	if (r < 0)
		return r;
	/* Each file by its own rule, never by a sharer's: the first owner
	 * that is to be repaired names the page, the others may differ. */
	for (size_t i = 0; i < pg->n_owners; i++) {
		if (pg->owners[i].action == PH_ACTION_REPORT)
			continue;
		if (!f)
			f = &pg->owners[i];
		else if (pg->owners[i].action != f->action)
			same = false;
	}

	if (env->block_size != PH_PAGE_SIZE) {
		pg->mode = PH_MODE_REFUSED;
		return explain(pg, "the filesystem's blocks are %u bytes: repairs need %u-byte blocks (DAX)",
			       env->block_size, PH_PAGE_SIZE);
	}
	if (!f) {
		pg->mode = PH_MODE_RECORD;
		r = step(pg, PH_STEP_RECORD, 0, "report only: %s", pg->owners[0].rule ? "the rule says so" :
			 "no rule matches");
		if (r == 0)
			r = explain(pg, "%s%s: report (%s)", pg->owners[0].path ? pg->owners[0].path : "?",
				    pg->n_owners > 1 ? " and its sharers" : "",
				    pg->owners[0].rule ? pg->owners[0].rule->name : "no rule");
		return r;
	}
	first = f->rule ?: &fallback_rule; /* an override without a rule: describe it as such */
	a = f->action;
	if (pg->n_owners > 1 && !env->reflink) {
		/* Sharing without reflink cannot happen; nothing here could
		 * give each file its own outcome. */
		pg->mode = PH_MODE_REFUSED;
		return explain(pg, "%zu files own the page but the filesystem has no reflink: each cannot get "
			       "its own rule's outcome", pg->n_owners);
	}
	if (!same) {
		/* The sharers' rules disagree: each gets its own outcome by
		 * relocate-and-pin (the page is pinned, then every owner is
		 * changed by its own rule, and only by it). */
		pg->mode = PH_MODE_RELOCATE_PIN;
		r = 0;
		for (size_t i = 0; r == 0 && i < pg->n_owners; i++)
			if (content_action(pg->owners[i].action))
				r = plan_content(env, pg, i);
		if (r == 0)
			r = plan_write(env, pg);
		if (r == 0)
			r = explain(pg, "%s and its sharers: each by its own rule (%s for %s, ...) relocate-pin: the "
				    "block is shared by reflink", f->path, ph_action_to_string(a), first->name);
		return r;
	}
	if (a == PH_ACTION_QUARANTINE || a == PH_ACTION_DELETE || a == PH_ACTION_PUNCH) {
		r = plan_file_action(env, pg, a);
		if (r == 0)
			r = explain(pg, "%s: %s (%s) by %s", f->path, ph_action_to_string(a),
				    first->name, ph_mode_to_string(pg->mode));
		if (a == PH_ACTION_PUNCH)
			pg->bytes_lost = PH_PAGE_SIZE;
		return r;
	}

	/* Content actions: salvage, zero, restore, exec. */
	if (!pg->shared && clears_now(env, pg))
		pg->mode = PH_MODE_IN_PLACE;
	else if (env->reflink)
		pg->mode = PH_MODE_RELOCATE_PIN;
	else
		pg->mode = PH_MODE_RELOCATE_FILE;
	r = 0;
	for (size_t i = 0; r == 0 && i < pg->n_owners; i++)
		if (pg->owners[i].action != PH_ACTION_REPORT)
			r = plan_content(env, pg, i);
	if (r == 0)
		r = plan_write(env, pg);
	if (r == 0)
		r = explain(pg, "%s%s: %s (%s) %s: %s", f->path ? f->path : "?",
			    pg->n_owners > 1 ? " and its sharers" : "", ph_action_to_string(a), first->name,
			    ph_mode_to_string(pg->mode),
			    pg->mode == PH_MODE_IN_PLACE ? "one owner, and the bus clears on write" :
			    pg->shared ? "the block is shared by reflink" :
			    !env->can_clear ? "the bus cannot clear, so the block is pinned, never freed" :
			    pg->memory_failure ? "it went through memory_failure, so it is not written this boot" :
			    "no reflink here: the whole file moves");
	return r;
}

/* A page no filesystem owns: device DAX (a rule for the device node may
 * ask to zero it, which is CLEAR_ERROR) or a device without one. */
static int plan_device_page(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	/* Device DAX has no write path: the firmware's clear-error
	 * command is the only repair, and it loses the page's data
	 * like zero does.  A rule for the device node asks for it. */
	const struct ph_rule *rule = env->devdax && env->device ? ph_policy_match(env->policy, env->device) : NULL;
	enum ph_action a = rule ? rule->action : PH_ACTION_REPORT;
	int r;

	if (!env->devdax || a == PH_ACTION_REPORT) {
		pg->mode = PH_MODE_RECORD;
		r = step(pg, PH_STEP_RECORD, 0, "no file owns it: reported%s%s%s",
			 env->devdax ? " (" : "", env->devdax ? (rule ? rule->name : "no rule: report") : "",
			 env->devdax ? ")" : "");
	} else if (a != PH_ACTION_ZERO) {
		pg->mode = PH_MODE_REFUSED;
		r = step(pg, PH_STEP_RECORD, 0, "%s asks for %s: device DAX can only be reported or zeroed "
			 "(cleared)", rule->name, ph_action_to_string(a));
	} else if (!env->can_clear) {
		pg->mode = PH_MODE_RECORD;
		r = step(pg, PH_STEP_RECORD, 0, "%s asks to zero it, but %s", rule->name,
			 env->clear_reason ? env->clear_reason : "the bus cannot clear");
	} else {
		pg->mode = PH_MODE_CLEAR_DEVICE;
		pg->content = PH_CONTENT_ZERO;
		pg->bytes_lost = PH_PAGE_SIZE;
		r = step(pg, PH_STEP_CLEAR_DEVICE, 0, "clear through the bus's CLEAR_ERROR command (%s)",
			 rule->name);
	}
	if (r == 0)
		r = explain(pg, "%s", env->devdax ? "device DAX: the range belongs to the device" :
			    "no filesystem: the range belongs to the device");
	return r;
}

/* A page an earlier repair pinned: finish its clear, or keep it pinned. */
static int plan_pinned_page(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	int r;

	size_t l = strlen(pg->pin_path);
	bool pin = l > 4 && strcmp(pg->pin_path + l - 4, ".pin") == 0;

	if (pin && clears_now(env, pg)) {
		/* A repair that ended before clearing (a race, a
		 * crash before the intent was logged): finish it. */
		pg->mode = PH_MODE_RELOCATE_PIN;
		r = step(pg, PH_STEP_CLEAR, 0, "write the pinned copy %s: the bus clears the poison",
			 pg->pin_path);
		if (r == 0)
			r = step(pg, PH_STEP_RELEASE, 0, "release the cleared block");
	} else {
		pg->mode = PH_MODE_RECORD;
		r = step(pg, PH_STEP_RECORD, 0, "pinned by %s: it stays allocated%s", pg->pin_path,
			 !env->can_clear ? ", the bus cannot clear" :
			 pin ? ": it went through memory_failure this boot, and is cleared after a reboot" :
			 " (a quarantined file is the operator's to remove)");
	}
	if (r == 0)
		r = explain(pg, "pinned in quarantine (%s)", pg->pin_path);
	return r;
}

_public_ bool ph_step_changes(enum ph_step_kind k)
{
	return k != PH_STEP_READ_GOOD && k != PH_STEP_READ_SOURCE && k != PH_STEP_RUN_HOOK &&
	       k != PH_STEP_RECORD && k != PH_STEP_VERIFY;
}

/* The last step of every page that changes anything: what the verifier
 * checks for the page's mode, in the words the dry run shows. */
static int plan_verify(const struct ph_plan_env *env, struct ph_plan_page *pg)
{
	size_t n_content = 0;
	bool changes = false;

	for (size_t i = 0; i < pg->n_steps; i++)
		changes |= ph_step_changes(pg->steps[i].kind);
	if (!changes)
		return 0;
	for (size_t i = 0; i < pg->n_owners; i++)
		n_content += content_action(pg->owners[i].action);
	switch (pg->mode) {
	case PH_MODE_IN_PLACE:
		return step(pg, PH_STEP_VERIFY, 0, "re-read the repaired page and check the kernel no longer lists it");
	case PH_MODE_RELOCATE_PIN:
		return step(pg, PH_STEP_VERIFY, 0, "re-read each repaired page%s, check no owner maps the poisoned "
			    "block, and that the block is %s", n_content > 1 ?
			    " (owners with identical pages share one block)" : "",
			    clears_now(env, pg) ? "cleared or still pinned" : "still pinned");
	case PH_MODE_RELOCATE_FILE:
		return step(pg, PH_STEP_VERIFY, 0, "check %s is the repaired copy holding the %s, and every hard "
			    "link is that copy", pg->owners[0].path, pg->content == PH_CONTENT_NONE ? "hole" :
			    "repaired page");
	case PH_MODE_CLEAR_DEVICE:
		return step(pg, PH_STEP_VERIFY, 0, "check the kernel no longer lists the page");
	default: /* delete, punch, quarantine */
		return step(pg, PH_STEP_VERIFY, 0, "check no planned name still holds the poisoned block, and that "
			    "the block is %s", pg->mode == PH_MODE_QUARANTINE ? "kept by the quarantined file" :
			    env->reflink ? "pinned, or released once the bus cleared it" :
			    "cleared before it was given back");
	}
}

_public_ int ph_plan_build(const struct ph_plan_env *env, uint64_t start, uint64_t count,
			   const struct ph_map_result *res, struct ph_plan **ret)
{
	_cleanup_(ph_plan_freep) struct ph_plan *p = NULL;
	uint64_t first = start / PH_PAGE_SECTORS, last = (start + count + PH_PAGE_SECTORS - 1) / PH_PAGE_SECTORS;
	int r = 0;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->start = start;
	p->count = count;
	p->can_clear = env->can_clear;
	p->reflink = env->reflink;
	if ((env->device && !(p->device = strdup(env->device))) ||
	    (env->mountpoint && !(p->mountpoint = strdup(env->mountpoint))) ||
	    (env->fstype && !(p->fstype = strdup(env->fstype))))
		return -ENOMEM;
	p->pages = calloc(last - first, sizeof(*p->pages));
	if (!p->pages)
		return -ENOMEM;

	for (uint64_t pn = first; r == 0 && pn < last; pn++) {
		struct ph_plan_page *pg = &p->pages[p->n_pages++];

		pg->sector = pn * PH_PAGE_SECTORS;
		/* What the kernel lists now decides, where the list was read:
		 * a page of the range it no longer lists was healed already
		 * (by an earlier repair that stopped before recording it, or by
		 * a write); planning it again would rewrite healthy data. */
		for (unsigned i = 0; i < PH_PAGE_SECTORS; i++)
			if (env->bad ? in_ranges(env->bad, pg->sector + i) :
				       pg->sector + i >= start && pg->sector + i < start + count)
				pg->bad_mask |= (uint8_t)(1u << i);
		if (env->bad && pg->bad_mask == 0) {
			pg->kind = PH_PAGE_HEALED;
			pg->mode = PH_MODE_RECORD;
			r = step(pg, PH_STEP_RECORD, 0, "the kernel no longer lists any sector of this page");
			if (r == 0)
				r = explain(pg, "healed already: nothing to do");
			continue;
		}
		/* Without the page's physical address nobody can tell whether
		 * it went through memory_failure: assume it did (a read of
		 * such a page can oops the kernel). */
		if (env->memfail && env->memfail->n > 0 && env->ns_start == UINT64_MAX)
			pg->memory_failure = pg->mf_unknown = true;
		else if (env->memfail)
			pg->memory_failure = ph_pfns_contains(env->memfail, (env->ns_start + pg->sector * 512) >> 12);
		r = collect_owners(env, pg, res);
		if (r == -EINVAL) {
			pg->mode = PH_MODE_REFUSED;
			r = explain(pg, "a file extent does not start on a page boundary");
			continue;
		}
		if (r < 0)
			break;
		switch (pg->kind) {
		case PH_PAGE_METADATA:
			pg->mode = PH_MODE_RECORD;
			r = step(pg, PH_STEP_RECORD, 0, "filesystem metadata (%s): never written; unmount and run %s",
				 pg->what, env->fstype && strcmp(env->fstype, "xfs") == 0 ? "xfs_repair" : "e2fsck");
			if (r == 0)
				r = explain(pg, "metadata (%s): record at priority crit, run the filesystem's repair tool",
					    pg->what);
			break;
		case PH_PAGE_FREE:
			pg->mode = PH_MODE_RECORD;
			r = step(pg, PH_STEP_RECORD, 0, "free space: %s", env->can_clear ?
				 "the filesystem zeroes blocks it allocates, which clears the poison" :
				 "a hazard: the bus cannot clear, an allocation of this block will fail");
			if (r == 0)
				r = explain(pg, "free space: %s", env->can_clear ? "heals on the next allocation" :
					    "recorded as a hazard");
			break;
		case PH_PAGE_DEVICE:
			r = plan_device_page(env, pg);
			break;
		case PH_PAGE_HEALED: /* handled above */
			break;
		case PH_PAGE_PINNED:
			r = plan_pinned_page(env, pg);
			break;
		case PH_PAGE_UNKNOWN:
			pg->mode = PH_MODE_RECORD;
			r = step(pg, PH_STEP_RECORD, 0, "the owner is not known for certain: nothing is written");
			if (r == 0)
				r = explain(pg, "unknown owner: recorded, not written");
			break;
		case PH_PAGE_FILE:
			r = plan_file_page(env, pg);
			break;
		}
		if (r == 0)
			r = plan_verify(env, pg);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}
