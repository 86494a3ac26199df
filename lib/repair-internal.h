/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Types and functions shared by the repairer's files (not installed): the
 * pipeline (pipeline*.c) drives a range; repair-*.c and verify.c are its
 * repairer and verifier stages.  See doc/ARCHITECTURE.md.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "escape.h"
#include "mapper.h"
#include "platform.h"
#include "range-row.h"
#include "repair.h"
#include "safefs.h"
#include "source.h"

#define HOOK_EXIT_FALLBACK 75 /* EX_TEMPFAIL */

struct ph_repairer {
	struct ph_ctx *ctx;
	struct ph_ledger *ledger;
	struct ph_recorder *rec;
	const struct ph_policy *policy;
	const struct ph_topology *topo;
	/* pages that went through memory_failure this boot: own_memfail, or
	 * one lent for longer than a repairer lives (ph_repairer_set_memfail) */
	struct ph_memfail own_memfail, *memfail;
	/* test-only fault injection: exit right after a named step */
	char *fault_step;
	unsigned fault_nth, fault_seen;
	/* test-only: stop before a named step until a FIFO says go */
	char *pause_step, *pause_fifo;
	unsigned pause_nth, pause_seen;
	char *why; /* a failing step's own reason, when it has one */
	/* test-only: the Nth run of a named step fails with an errno */
	char *error_step;
	unsigned error_nth, error_seen;
	int error_errno;
};

struct job_owner {
	char *path;
	uint64_t dev, inode, gen, offset, size; /* dev 0: not recorded (older intents) */
	int64_t mtime_ns, ctime_ns;
	bool repair;     /* false: reported only (its own rule says report) */
	bool link;       /* another name of owners[0]'s inode (relocate-file) */
	size_t slot;     /* its repaired page: job content slot, SIZE_MAX for none */
};

struct job_step {
	enum ph_step_kind kind;
	size_t owner;
};

struct job {
	int64_t range_id;
	char *device;    /* the namespace's disk: /dev/pmem0 */
	char *list;      /* its badblocks file */
	char *mount;
	char *ns_id;
	uint64_t page;   /* first sector of the page on the disk */
	uint64_t fs_page; /* ... on the filesystem's own device */
	enum ph_mode mode;
	bool can_clear, hole;
	char *pin, *tmp, *qname;
	struct job_owner *owners;
	size_t n_owners;
	struct job_step *steps;
	size_t n_steps;
	uint8_t content[PH_PAGE_SIZE]; /* slot 0 */
	uint8_t (*more)[PH_PAGE_SIZE]; /* slots 1.. (sharers whose pages differ) */
	size_t n_slots;
	bool legacy_slots; /* written before "slots": owners shared a page only by a reshare step */
	bool has_content;
	uint64_t bytes_lost;
	/* outcome */
	bool cleared, pinned;
	char *why;       /* a step's own reason for stopping */
	/* relocate-file: a write lease on the original, held from the copy
	 * to the rename (lease_fd + 1; 0: none), and its ctime after our
	 * own link */
	int lease_fd1;
	int64_t lease_ctime_ns;
};

#define CONFLICT(j, ...) conflict(r, (j), __VA_ARGS__)

/* Everything needed to plan a range and to re-plan a page of it. */
struct session {
	struct ph_ctx *ctx;
	const struct ph_namespace *ns;
	struct ph_mapper *mapper;
	struct ph_map_result *res;
	struct ph_range q;
	struct ph_ranges bad;
	bool bad_read;
	char *device;
	struct ph_plan_env env[8]; /* one per filesystem on the device */
	uint64_t part_start[8];
	size_t n_env;
};

struct resume {
	struct ph_repairer *r;
	unsigned jobs;
	int64_t only;                 /* this range's intents only (0: all) */
	struct ph_repair_result *res; /* what the finished jobs did, when set */
	struct ph_ranges *pending;    /* pages whose intent is still running */
};

struct repairing {
	struct ph_range_row_copy *rows;
	size_t n;
};

int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...) _printf_(3, 4);
char *basename_of(const char *p);
void job_done(struct job *j);
uint8_t *slot_page(struct job *j, size_t s);
uint8_t *slots_blob(struct job *j, size_t *ret_len);
int slots_from_blob(struct job *j, const void *blob, size_t len);
int page_map(int fd, uint64_t off, uint64_t *ret_sector, bool *ret_hole, bool *ret_shared);
int page_listed(struct ph_ctx *ctx, const struct job *j, bool *ret);
int open_dir_of(const struct job *j, const char *path, int *ret_dirfd, const char **ret_name);
int open_owner(const struct job *j, const struct job_owner *o, int flags, int *ret_fd);
bool same_bytes(int fd, uint64_t off, const uint8_t *want);
int ph_repair_side_name(const char *prefix, const char *name, uint64_t page, const char *suffix, size_t reserve,
			char **ret);
int open_quarantine(struct ph_repairer *r, struct job *j, int *ret_fd);
const char *quarantine_name(const char *path);
int compute_content(struct ph_repairer *r, const struct ph_plan_page *pg, struct job *j,
			   size_t *ret_owner, enum ph_action *ret_fallback, char **why);
struct json_object *job_to_json(const struct job *j);
int job_from_json(const struct ph_intent *it, struct job *j, char **ret_why);
int job_from_plan(struct ph_repairer *r, const struct ph_plan *plan, const struct ph_plan_page *pg,
			 const struct ph_namespace *ns, uint64_t part_start, int64_t range_id, struct job *j);
int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...);
bool job_pins(const struct job *j);
bool job_uses_pin(const struct job *j);
int open_pin(struct ph_repairer *r, struct job *j, bool create, int *ret_qdir, int *ret_pin);
int may_free(struct ph_repairer *r, struct job *j, const struct job_owner *o, int fd);
size_t page_len(const struct job_owner *o);
bool same_prefix(int fd, uint64_t off, const uint8_t *want, size_t len);
int run_step(struct ph_repairer *r, struct job *j, const struct job_step *s);
void lease_drop(struct job *j);
const char *tmp_name(const struct job *j, const char *path, const char *name);
int step_copy(struct ph_repairer *r, struct job *j);
int step_link_old(struct ph_repairer *r, struct job *j);
int step_rename(struct ph_repairer *r, struct job *j, size_t i);
int step_relink(struct ph_repairer *r, struct job *j, size_t i);
int step_unlink(struct ph_repairer *r, struct job *j, size_t i);
int verify(struct ph_repairer *r, struct job *j, char **why);
void pause_point(struct ph_repairer *r, enum ph_step_kind k);
int run_job(struct ph_repairer *r, struct job *j, int64_t intent, int from, char **why);
bool writes(enum ph_mode m);
int set_state(struct ph_repairer *r, int64_t id, enum ph_state *cur, enum ph_state to);
const char *dev_name(const char *device);
enum ph_state final_state(const struct ph_repair_result *res);
void settle(struct ph_repairer *r, const struct ph_range_row *row, enum ph_state *cur, enum ph_state to);
int find_holders(struct ph_ctx *ctx, const char *mount, uint64_t inode, char **ret);
void rec_job(struct ph_repairer *r, enum ph_event e, const struct job *j, int64_t range_id, const char *result,
		    const char *detail);
int repair_page(struct ph_repairer *r, struct session *s, size_t env_i, const struct ph_plan *plan,
		       const struct ph_plan_page *pg, int64_t range_id, struct ph_repair_result *res, unsigned depth,
		       bool may_replan, const struct ph_plan_override *ov, size_t n_ov);
int devdax_plan(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
		       struct ph_plan ***ret, size_t *ret_n);
int devdax_repair(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
			 struct ph_repair_result *res);
int on_row_state(void *userdata, const struct ph_range_row *row);
int resume_one(void *userdata, const struct ph_intent *it);
