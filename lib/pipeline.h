/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ledger.h"
#include "mapper.h"
#include "record.h"
#include "topology.h"

/*
 * Map ranges of ns's disk (not device DAX: -ENODEV) to their owners, read
 * only; a range past the disk's end is cut to it.  *ret: n results (free
 * with ph_map_results_free(*ret, n)); *ret_mapper: the mapper, for the
 * filesystems it found; the results point into it, so it is freed after
 * them.  On error, err says why.
 */
int ph_pipeline_map(struct ph_ctx *ctx, const struct ph_namespace *ns, struct ph_range *q, size_t n,
		    struct ph_mapper **ret_mapper, struct ph_map_result **ret, struct ph_error *err);

/*
 * Map a range as listed (row), journal each owner and move a new range to
 * mapped.  *ret: the mapper's result for the range (free with
 * ph_map_results_free(*ret, 1)), NULL for device DAX; *ret_mapper: the
 * mapper the result points into (NULL for device DAX), freed after it;
 * *ret_state: the row's state now; *ret_summary: its owners in a line (the
 * ledger's note).  l may be NULL (nothing moved).  On error, err says why
 * and nothing was journalled.
 */
int ph_pipeline_map_range(struct ph_ctx *ctx, struct ph_ledger *l, struct ph_recorder *rec,
			  const struct ph_namespace *ns, const struct ph_range_row *row,
			  struct ph_mapper **ret_mapper, struct ph_map_result **ret, enum ph_state *ret_state,
			  char **ret_summary, struct ph_error *err);
