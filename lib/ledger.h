/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ledger: every poisoned range ever seen, with its state and history,
 * in SQLite in the state directory.  It outlives the kernel's lists, which
 * hold at most 512 entries and are empty after a reboot until ARS runs.
 *
 * A range is keyed by its namespace's persistent id and its first sector
 * (device-relative).  Kernel observations are diffed against it; only
 * changes are written and reported.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

enum ph_state {
	PH_STATE_NEW,
	PH_STATE_MAPPED,
	PH_STATE_PLANNED,
	PH_STATE_REPAIRING,
	PH_STATE_REPAIRED,
	PH_STATE_CLEARED,
	PH_STATE_PINNED,
	PH_STATE_FAILED,
	PH_STATE_LOST,
	_PH_STATE_MAX,
};

const char *ph_state_to_string(enum ph_state s);
int ph_state_from_string(const char *s, enum ph_state *ret);
/* Whether a range may move from 'from' to 'to' by a repair step. */
bool ph_state_transition_ok(enum ph_state from, enum ph_state to);

/* Where an observation came from (bit flags). */
#define PH_ORIGIN_DEVICE 0x1u /* the block device's list (/sys/block/X/badblocks) */
#define PH_ORIGIN_REGION 0x2u /* the region's list, translated */
#define PH_ORIGIN_MEMFAIL 0x4u /* a machine check: memory_failure() this boot, from the kernel log */

/* "device", "region", "memory-failure", or several joined by '+'. */
const char *ph_origin_to_string(unsigned origin);

/* One range as the kernel lists it now. */
struct ph_observation {
	const char *ns_id;  /* persistent namespace id */
	const char *device; /* "pmem0", "dax0.0" */
	uint64_t start;     /* device-relative sector */
	uint64_t count;
	unsigned origin;    /* PH_ORIGIN_* */
};

enum ph_change_type {
	PH_CHANGE_NEW,       /* first seen, or listed again after being healed */
	PH_CHANGE_GROWN,     /* more sectors than before (merged neighbours included) */
	PH_CHANGE_SHRUNK,    /* some sectors no longer listed: partly cleared */
	PH_CHANGE_CLEARED,   /* no longer listed, same boot: cleared */
	PH_CHANGE_FORGOTTEN, /* no longer listed after a reboot: remembered, state kept */
	PH_CHANGE_RELISTED,  /* listed again after a reboot, state kept */
};

const char *ph_change_type_to_string(enum ph_change_type t);

struct ph_range_row {
	int64_t id;
	const char *ns_id;
	const char *device;
	uint64_t start, count;
	enum ph_state state;
	const char *origin;
	bool in_kernel;
	uint64_t first_seen, last_seen; /* microseconds since the epoch */
};

struct ph_change {
	enum ph_change_type type;
	struct ph_range_row row;    /* after the change */
	uint64_t old_start, old_count;
};

typedef void (*ph_change_fn)(void *userdata, const struct ph_change *c);
typedef int (*ph_row_fn)(void *userdata, const struct ph_range_row *row);

struct ph_ledger;

#define PH_LEDGER_READONLY 0x1u

/*
 * Open (creating) STATE_DIR/ledger.db.  A database that is damaged
 * (SQLITE_CORRUPT, SQLITE_NOTADB, a failed quick_check) is moved aside to
 * ledger.db.corrupt-TIMESTAMP (never deleted), with its -wal and -shm, and
 * a new one is created; the error is logged and ph_ledger_get_moved_aside()
 * names the file.  Any other error (-ENOSPC, -EIO, -EROFS, -EBUSY, -ENOMEM
 * ...) leaves the ledger as it is and fails, so that no running intent is
 * lost; the caller retries later.  Opening for writing without the right
 * to write the state directory and the ledger is -EACCES, checked first.
 * Read-only opens never move anything and fail instead (-ENOENT when there
 * is no ledger yet).  A ledger from a newer pmemheal (higher schema
 * version) is -EPROTO.
 */
int ph_ledger_open(struct ph_ctx *ctx, const char *state_dir, unsigned flags,
		   struct ph_ledger **ret, struct ph_error *err);
struct ph_ledger *ph_ledger_free(struct ph_ledger *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_ledger *, ph_ledger_free);
const char *ph_ledger_get_path(const struct ph_ledger *l);
const char *ph_ledger_get_moved_aside(const struct ph_ledger *l);

/*
 * Diff the kernel's current lists against the ledger and record the
 * changes, in one transaction.  obs holds every observation of the
 * namespaces named in ns_ids (also those with none listed now, so that
 * cleared ranges are noticed); other namespaces are left alone.  boot_id
 * tells a reboot (lists start empty) from a clear.  now: microseconds.
 * A range already cleared (by a repairer that verified it) leaves the list
 * with no change to report: "cleared" is recorded once.
 */
int ph_ledger_apply(struct ph_ledger *l, const char *const *ns_ids, size_t n_ns,
		    const struct ph_observation *obs, size_t n_obs, const char *boot_id, uint64_t now,
		    ph_change_fn fn, void *userdata);

/* Move range id to a new state (read and moved in one transaction: the
 * first writer wins).  -EINVAL for a transition the state machine forbids,
 * -ENOENT for no such range. */
int ph_ledger_set_state(struct ph_ledger *l, int64_t id, enum ph_state to);

/* Rows, ordered by namespace and start; ns_id NULL for all. */
int ph_ledger_foreach(struct ph_ledger *l, const char *ns_id, ph_row_fn fn, void *userdata);
/* Number of rows in each state (counts[_PH_STATE_MAX]). */
int ph_ledger_count(struct ph_ledger *l, uint64_t counts[_PH_STATE_MAX]);
/* Number of rows the kernel lists now, less those a repairer has verified
 * cleared since the last scan (the region's list may lag the disk's). */
int ph_ledger_count_listed(struct ph_ledger *l, uint64_t *ret);
/* Whether a range still wants a repair: listed by the kernel and not
 * settled (new, mapped, planned, failed).  A repairing range belongs to
 * the intent log, which ph_repairer_resume() finishes. */
bool ph_range_row_repairable(const struct ph_range_row *row);

/* ---- the repairer's intent log ---------------------------------------- */

struct ph_intent {
	int64_t id, range_id;
	uint64_t page;       /* first device sector of the page */
	const char *plan;    /* JSON: what to do, and to whom */
	const void *content; /* the repaired page, when there is one */
	size_t content_len;
	int step;            /* the next step to run */
};
typedef int (*ph_intent_fn)(void *userdata, const struct ph_intent *it);

/* Record, durably, that a page is about to be changed. */
int ph_ledger_intent_begin(struct ph_ledger *l, int64_t range_id, uint64_t page, const char *plan,
			   const void *content, size_t len, uint64_t now, int64_t *ret_id);
/* Step next_step is the one to run now (all before it are done). */
int ph_ledger_intent_step(struct ph_ledger *l, int64_t id, int next_step, uint64_t now);
/* state: "done", "aborted" (nothing changed, re-plan) or "failed". */
int ph_ledger_intent_finish(struct ph_ledger *l, int64_t id, const char *state, const char *detail,
			    uint64_t now);
/* Intents a crash left running, oldest first. */
int ph_ledger_intents_running(struct ph_ledger *l, ph_intent_fn fn, void *userdata);

int ph_ledger_get_range(struct ph_ledger *l, int64_t id, ph_row_fn fn, void *userdata);

/* The running system's boot id under the context's root. */
int ph_read_boot_id(struct ph_ctx *ctx, char **ret);
uint64_t ph_now_usec(void);
