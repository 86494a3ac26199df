/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker: pmemheald's second thread, where ranges are mapped and
 * repaired, so that the event loop never waits on a filesystem.
 *
 * It shares nothing with the loop's thread but two queues: it has its own
 * library context, ledger handle, topology, policy and repairer.  Requests
 * go in through ph_worker_*() calls; reports come back in order, and an
 * eventfd the loop watches becomes readable whenever one is waiting.
 *
 * On start it first finishes what a crash left in the intent log, then
 * serves ranges in the order they were queued, one at a time, each planned
 * afresh (a fresh repairer per range, so the pages that went through
 * memory_failure are read from the kernel log again every time).  A new
 * policy or topology takes effect at the next range.
 *
 * Repairs hold STATE_DIR/repair.lock, the lock `pmemheal repair` takes, so
 * the two never repair at once.  When the command holds it, the worker
 * says so (PH_WORKER_LOCK_WAIT) and tries again every half second; it
 * lets go of the lock whenever its queue is empty.
 *
 * Stopping finishes the range being repaired (every step of it is in the
 * intent log, so a kill in between is resumed on the next start) and
 * leaves the rest of the queue: the ledger still lists those ranges.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "policy.h"
#include "repair.h"

enum ph_worker_report_type {
	PH_WORKER_RESUMED,   /* the intent log is done (jobs: how many); always first */
	PH_WORKER_LOCK_WAIT, /* someone else holds the repair lock; waiting */
	PH_WORKER_LOCKED,    /* ... and now the worker has it */
	PH_WORKER_STARTED,   /* range_id's repair starts */
	PH_WORKER_DONE,      /* range_id's repair is over (res), or was not needed (skipped) */
	PH_WORKER_SCRUB,     /* a scrub was asked of bus detail (error: why not) */
	PH_WORKER_STOPPED,   /* the thread has ended; always last */
};

struct ph_worker_report {
	enum ph_worker_report_type type;
	int error;                   /* 0 or -errno */
	int64_t range_id;
	unsigned jobs;               /* RESUMED */
	bool skipped;                /* DONE: settled meanwhile, nothing to do */
	struct ph_repair_result res; /* DONE */
	char *detail;
};

void ph_worker_report_done(struct ph_worker_report *rep);

struct ph_worker;

/* policy is taken (freed by the worker). */
int ph_worker_new(struct ph_ctx *ctx, const char *state_dir, struct ph_policy *policy,
		  struct ph_worker **ret);
int ph_worker_start(struct ph_worker *w);
/* Stops the thread (as ph_worker_stop), waits for it, frees everything. */
struct ph_worker *ph_worker_free(struct ph_worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_worker *, ph_worker_free);

/* Readable (EPOLLIN) while reports wait. */
int ph_worker_get_fd(const struct ph_worker *w);
/* 1 and *ret (to be released with ph_worker_report_done), 0 when none. */
int ph_worker_next_report(struct ph_worker *w, struct ph_worker_report *ret);

/* Queue a ledger range: 1 queued, 0 queued already. */
int ph_worker_queue_range(struct ph_worker *w, int64_t id);
/* Ask for a scrub of bus (after the range being repaired). */
int ph_worker_queue_scrub(struct ph_worker *w, const char *bus);
/* Use policy (taken) from the next range on. */
void ph_worker_set_policy(struct ph_worker *w, struct ph_policy *policy);
/* Namespaces came or went: enumerate again before the next range. */
void ph_worker_topology_changed(struct ph_worker *w);
/* Ranges queued and not done yet (the one being repaired included). */
size_t ph_worker_get_pending(struct ph_worker *w);
/* The range being repaired now, 0 when none. */
int64_t ph_worker_get_current(struct ph_worker *w);
/* Queued ids compared so far while deduplicating ranges; for tests. */
uint64_t ph_worker_get_dedup_probes(struct ph_worker *w);
/* Finish the current range and end (PH_WORKER_STOPPED follows). */
void ph_worker_stop(struct ph_worker *w);
