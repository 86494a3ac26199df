/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Metrics for Prometheus: the daemon's counts in the text exposition
 * format, written to a file that node_exporter's textfile collector reads.
 * The file is replaced atomically (a temporary file in the same directory,
 * renamed over it), so the collector never reads half of it.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "ledger.h"
#include "repair.h"

/* How one range's repair ended. */
enum ph_outcome {
	PH_OUTCOME_CLEARED,  /* every page rewritten and the poison cleared */
	PH_OUTCOME_REPAIRED, /* rewritten; the kernel still lists some sectors */
	PH_OUTCOME_PINNED,   /* rewritten elsewhere; the poisoned block is pinned */
	PH_OUTCOME_RECORDED, /* nothing written: the rules say report, or metadata, free space */
	PH_OUTCOME_FAILED,   /* some page could not be repaired (the ledger says why) */
	_PH_OUTCOME_MAX,
};

enum ph_outcome ph_outcome_of(const struct ph_repair_result *res, int error);
const char *ph_outcome_to_string(enum ph_outcome o);

struct ph_metrics {
	uint64_t namespaces;
	uint64_t ranges[_PH_STATE_MAX]; /* ledger rows by state */
	uint64_t listed;                /* rows the kernel lists now */
	uint64_t pending;               /* queued for repair */
	/* since the daemon started */
	uint64_t repairs[_PH_OUTCOME_MAX];
	uint64_t pages_repaired, pages_failed, bytes_lost;
	uint64_t scans, events_lost;
	uint64_t loop_dispatch_max_usec; /* the event loop's longest turn */
};

int ph_metrics_format(const struct ph_metrics *m, FILE *f);
/* Write m to path atomically. */
int ph_metrics_write(const struct ph_metrics *m, const char *path);
