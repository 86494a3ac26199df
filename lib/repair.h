/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The repairer and its verifier: executing plans, one page at a time.
 *
 * Each page becomes a job (what to do to whom) that is written to the
 * ledger's intent log, together with the repaired page's bytes, before
 * anything changes; every step moves the intent forward only once it has
 * succeeded.  A restart runs the jobs a crash left behind from the step
 * they stopped at.
 *
 * Every step first checks the owner's page: still the same inode, and
 * mapping either the poisoned block (or a hole we punched) — the state
 * before the step — or our bytes — the state after it.  Anything else
 * means the file changed under us: the job stops and nothing is written,
 * so no byte of anyone else's data is ever overwritten.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctx.h"
#include "ledger.h"
#include "planner.h"
#include "policy.h"
#include "record.h"
#include "topology.h"

struct ph_repairer;

struct ph_repair_result {
	enum ph_state state;   /* what the range became */
	unsigned pages, written, pinned, cleared, failed, recorded;
	unsigned healed;       /* pages the kernel no longer lists: nothing to do */
	uint64_t bytes_lost;
	char *detail;          /* the first failure's reason, or a summary */
	char *notes;           /* what the operator should know though it worked:
				* processes left on a moved file's old inode */
};

int ph_repairer_new(struct ph_ctx *ctx, struct ph_ledger *ledger, const struct ph_policy *policy,
		    const struct ph_topology *topo, struct ph_repairer **ret);
struct ph_repairer *ph_repairer_free(struct ph_repairer *r);
/* Journal events (planned, repaired, cleared, pinned, data-lost, failed)
 * go to rec; NULL (the default) records none.  Not owned. */
void ph_repairer_set_recorder(struct ph_repairer *r, struct ph_recorder *rec);
/* Memory-failure pages from m, which outlives the repairer: a fresh
 * follower reads the whole journal of this boot, so a daemon that makes a
 * repairer per range keeps one.  NULL: the repairer's own.  Not owned. */
void ph_repairer_set_memfail(struct ph_repairer *r, struct ph_memfail *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_repairer *, ph_repairer_free);

/* Plan one ledger range (its pages, freshly mapped).  No changes. */
int ph_repair_plan(struct ph_repairer *r, const struct ph_range_row *row, struct ph_plan ***ret,
		   size_t *ret_n);
/* Plan and execute it.  res describes the outcome. */
int ph_repair_range(struct ph_repairer *r, const struct ph_range_row *row, struct ph_repair_result *res);
void ph_repair_result_done(struct ph_repair_result *res);

/* Finish what a crash left: the jobs in the intent log, then every range
 * still marked repairing (re-planned: pages healed already are left
 * alone).  Returns how many jobs were resumed. */
int ph_repairer_resume(struct ph_repairer *r);

/* Internal, for tests and the repairer itself: run a Hook= program (see
 * lib/repair.c).  0 or -ETIME, with its wait status. */
int ph_repair_spawn_hook(char *const argv[], char *const envp[], const char *input, uint64_t timeout_usec,
			 int *ret_status);

/* Internal, for tests and the repairer itself: page `offset` of Source=
 * source for a file of `size` bytes owned by uid:gid (see lib/repair.c). */
int ph_repair_read_source(const char *source, uid_t uid, gid_t gid, uint64_t size, uint64_t offset, uint8_t *out,
			  char **why, void (*after_read)(void *userdata), void *userdata);

/* Internal: a name derived from a file's name for its temporary or
 * quarantined copy, within NAME_MAX - reserve bytes (see lib/repair.c). */
int ph_repair_side_name(const char *prefix, const char *name, uint64_t page, const char *suffix, size_t reserve,
			char **ret);
/* What is appended to a quarantine name: ".report.json" */
#define PH_QUARANTINE_RESERVE 12

/* The quarantine directory of a filesystem: <mount>/.pmemheal/quarantine */
#define PH_QUARANTINE_DIR ".pmemheal/quarantine"

/* For tests/fs only: run the changing steps of a job given as the intent
 * log holds it (JSON) with the page's new content, without a ledger, as
 * a repair would.  *ret_why says why a step stopped (NULL when done). */
int ph_repair_debug_steps(struct ph_ctx *ctx, const char *job_json, const uint8_t *content, char **ret_why);
