/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pipeline's mapping.  ph_pipeline_map() is the one way the pipeline
 * asks the mapper: ranges of a namespace's disk to their owners, read
 * only; the repairer (session_open(), pages rounded out), `pmemheal scan`
 * and `pmemheal status -v` all map through it.  ph_pipeline_map_range() is
 * the scan's step: one range as the kernel lists it, its owners journalled
 * ("mapped", "metadata-poison"), and a new range (or a grown one mapped
 * before) moved to mapped with a one-line summary of its owners.  Reads
 * only, apart from the ledger row and the journal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

_public_ int ph_pipeline_map(struct ph_ctx *ctx, const struct ph_namespace *ns, struct ph_range *q, size_t n,
			    struct ph_mapper **ret_mapper, struct ph_map_result **ret, struct ph_error *err)
{
	_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL;
	_cleanup_free_ char *dev = NULL;
	uint64_t size;
	int r;

	if (!ns->blockdev)
		return -ENODEV; /* device DAX: no filesystem to map */
	if (asprintf(&dev, "/dev/%s", ns->blockdev) < 0)
		return -ENOMEM;
	r = ph_mapper_new(ctx, dev, PH_MAP_AUTO, &m, err);
	if (r < 0)
		return r;
	size = ph_mapper_get_size(m);
	for (size_t i = 0; i < n; i++) /* a page rounded out past the end */
		if (q[i].start < size && q[i].start + q[i].count > size)
			q[i].count = size - q[i].start;
	r = ph_mapper_map(m, q, n, ret, err);
	if (r < 0)
		return r;
	*ret_mapper = TAKE_PTR(m);
	return 0;
}

/* "file /a (inode 12, offset 4096) shared; metadata agf; free" */
static char *summarize(const struct ph_map_result *res)
{
	char summary[512] = "";
	size_t len = 0;

	for (size_t i = 0; res && i < res->n_owners && len < sizeof(summary) - 1; i++) {
		const struct ph_owner *o = &res->owners[i];

		len += (size_t)snprintf(summary + len, sizeof(summary) - len, "%s%s", len ? "; " : "",
					ph_owner_type_to_string(o->type));
		if (len >= sizeof(summary))
			break;
		if (o->type == PH_OWNER_FILE)
			len += (size_t)snprintf(summary + len, sizeof(summary) - len,
						" %s (inode %" PRIu64 ", offset %" PRIu64 ")%s",
						o->n_paths ? o->paths[0] : "?", o->inode, o->offset, o->shared ? " shared" : "");
		else if (o->type == PH_OWNER_METADATA)
			len += (size_t)snprintf(summary + len, sizeof(summary) - len, " %s", o->what);
	}
	return strdup(summary);
}

_public_ int ph_pipeline_map_range(struct ph_ctx *ctx, struct ph_ledger *l, struct ph_recorder *rec,
				   const struct ph_namespace *ns, const struct ph_range_row *row,
				   struct ph_mapper **ret_mapper, struct ph_map_result **ret, enum ph_state *ret_state,
				   char **ret_summary, struct ph_error *err)
{
	_cleanup_(ph_mapper_freep) struct ph_mapper *m = NULL; /* the results point into it */
	_cleanup_free_ char *summary = NULL;
	struct ph_map_result *res = NULL;
	struct ph_range q = { row->start, row->count };
	enum ph_state state = row->state;
	int r;

	if (!ns->blockdev) {
		/* devdax: no filesystem; the range belongs to the device */
		(void)ph_record_owner(rec, row, NULL, 0);
		if (asprintf(&summary, "device /dev/%s", ns->chardev ? ns->chardev : ns->name) < 0)
			return -ENOMEM;
	} else {
		r = ph_pipeline_map(ctx, ns, &q, 1, &m, &res, err);
		if (r < 0)
			return r;
		for (size_t i = 0; i < res[0].n_owners; i++)
			(void)ph_record_owner(rec, row, &res[0], i);
		summary = summarize(&res[0]);
		if (!summary) {
			ph_map_results_free(res, 1);
			return -ENOMEM;
		}
	}
	/* new -> mapped (or a grown range, mapped again) */
	if (l && (state == PH_STATE_NEW || state == PH_STATE_MAPPED) &&
	    ph_ledger_set_state(l, row->id, PH_STATE_MAPPED) == 0)
		state = PH_STATE_MAPPED;
	*ret_mapper = TAKE_PTR(m);
	*ret = res;
	*ret_state = state;
	*ret_summary = TAKE_PTR(summary);
	return 0;
}
