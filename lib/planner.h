/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Planner: from a poisoned range, the owners of its pages, the per-file
 * rules and the platform's abilities, an ordered list of steps per page.
 * It decides; it does not touch data.  `pmemheal repair --dry-run` prints
 * exactly this.
 *
 * Repair works on whole pages (DAX filesystems use 4 KiB blocks and the
 * kernel clears poison only with whole, aligned pages):
 *   in place        one owner, the bus clears: one aligned write of the
 *                   repaired page clears the poison;
 *   relocate + pin  shared by reflink, or the bus cannot clear: the page is
 *                   cloned into a quarantine file (pinning the poisoned
 *                   block), each owner gets the repaired page on a fresh
 *                   block, identical owners are re-shared, and the pinned
 *                   block is cleared and released if the bus can;
 *   relocate file   the same without reflink: a repaired copy of the whole
 *                   file replaces it, the old inode kept in quarantine.
 * Metadata is recorded, never written; free space is recorded.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "mapper.h"
#include "memfail.h"
#include "policy.h"

#define PH_PAGE_SIZE 4096u
#define PH_PAGE_SECTORS 8u

enum ph_page_kind {
	PH_PAGE_FILE,
	PH_PAGE_METADATA,
	PH_PAGE_FREE,
	PH_PAGE_DEVICE,   /* devdax, or no filesystem */
	PH_PAGE_PINNED,   /* owned only by pmemheal's quarantine: a pin or a quarantined file */
	PH_PAGE_HEALED,   /* the kernel lists none of its sectors any more */
	PH_PAGE_UNKNOWN,
};

enum ph_mode {
	PH_MODE_RECORD,         /* nothing to write: report, metadata, free */
	PH_MODE_IN_PLACE,
	PH_MODE_RELOCATE_PIN,
	PH_MODE_RELOCATE_FILE,
	PH_MODE_QUARANTINE,     /* rename the file aside; its blocks stay pinned */
	PH_MODE_DELETE,         /* pin the poisoned pages, then unlink */
	PH_MODE_PUNCH,          /* pin the poisoned pages, then punch them */
	PH_MODE_CLEAR_DEVICE,   /* devdax: the bus's clear-error command */
	PH_MODE_REFUSED,        /* cannot be done safely here (reason says why) */
};

enum ph_content {
	PH_CONTENT_NONE,
	PH_CONTENT_SALVAGE,   /* good sectors read from the device, bad ones zero */
	PH_CONTENT_ZERO,
	PH_CONTENT_RESTORE,   /* from Source= */
	PH_CONTENT_HOOK,      /* written by Hook= */
};

enum ph_step_kind {
	PH_STEP_READ_GOOD,   /* O_DIRECT reads of the page's good sectors */
	PH_STEP_READ_SOURCE,
	PH_STEP_RUN_HOOK,
	PH_STEP_WRITE,       /* whole-page pwrite to an owner */
	PH_STEP_PIN,         /* FICLONERANGE the page into the quarantine file */
	PH_STEP_PUNCH,       /* punch the owner's page */
	PH_STEP_RESHARE,     /* FICLONERANGE from the first repaired owner */
	PH_STEP_CLEAR,       /* whole-page write to the pinned copy */
	PH_STEP_RELEASE,     /* punch the pinned copy */
	PH_STEP_COPY_FILE,   /* build the repaired copy of the whole file */
	PH_STEP_LINK_OLD,    /* link the old inode into quarantine */
	PH_STEP_RENAME,      /* the copy over the original / the file aside */
	PH_STEP_UNLINK,
	PH_STEP_CLEAR_DEVICE,
	PH_STEP_VERIFY,
	PH_STEP_RECORD,
	PH_STEP_RELINK,      /* another hard link of the file onto the repaired copy */
	PH_STEP_STAGE,       /* write the repaired pages to fresh blocks of a staging file */
	PH_STEP_SWAP,        /* FICLONERANGE an owner's staged page over its page */
	PH_STEP_UNSTAGE,     /* remove the staging file */
};

const char *ph_mode_to_string(enum ph_mode m);
const char *ph_step_to_string(enum ph_step_kind k);
/* Does a step of this kind change a file, the quarantine or the device?
 * (Reading content, recording and verifying do not.) */
bool ph_step_changes(enum ph_step_kind k);

struct ph_plan_owner {
	char *path;            /* first path of the inode */
	uint64_t inode;
	uint64_t file_offset;  /* page-aligned byte offset in the file */
	const struct ph_rule *rule; /* NULL: no rule, report */
	enum ph_action action;  /* its own rule's (a file is only changed by its own rule) */
	enum ph_content content; /* what its repaired page holds, for a content action */
	char *source;          /* restore/salvage: Source= expanded */
	char **links;          /* the inode's other paths (hard links) */
	size_t n_links;
};

struct ph_plan_step {
	enum ph_step_kind kind;
	size_t owner;          /* index into owners, when it has one */
	char *detail;          /* for humans */
};

struct ph_plan_page {
	uint64_t sector;       /* first device sector of the page */
	uint8_t bad_mask;      /* bit i: sector sector+i is listed bad */
	bool memory_failure;   /* never read it */
	bool mf_unknown;       /* ... because nobody can tell (no physical address) */
	enum ph_page_kind kind;
	const char *what;      /* metadata kind */
	char *pin_path;        /* PH_PAGE_PINNED: the quarantine file that owns it */
	bool shared;
	enum ph_mode mode;
	enum ph_content content;  /* the first repairing owner's */
	struct ph_plan_owner *owners;
	size_t n_owners;
	struct ph_plan_step *steps;
	size_t n_steps;
	uint64_t bytes_lost;   /* bytes of file data this plan gives up */
	char *explain;         /* one line: what and why */
	/* Processes that have the file open or mapped, "PID 12 (comm), ...":
	 * a whole-file move leaves them on the old inode (filled by the
	 * repairer, which looks at /proc; the planner does not). */
	char *holders;
};

struct ph_plan {
	uint64_t start, count; /* the range, device sectors */
	uint64_t part_start;   /* the filesystem's first sector on the device */
	char *device;
	char *mountpoint, *fstype;
	bool can_clear, reflink;
	struct ph_plan_page *pages;
	size_t n_pages;
};

/* One owner planned with another action than its rule's (its Fallback=). */
struct ph_plan_override {
	const char *path;
	enum ph_action action;
};

/* What the planner needs to know about the place. */
struct ph_plan_env {
	const struct ph_policy *policy;
	bool can_clear;
	const char *clear_reason;
	bool reflink;               /* the filesystem can FICLONERANGE */
	bool devdax;
	const char *device, *mountpoint, *fstype;
	uint32_t block_size;        /* filesystem block size, must be the page size */
	uint64_t ns_start;          /* physical start of the device's sector 0, PH_UNKNOWN if not known */
	const struct ph_pfns *memfail;
	/* Every sector the kernel lists bad on this device now; NULL when the
	 * list could not be read (then the range itself is taken as bad). */
	const struct ph_ranges *bad;
	/* Plan every file owner with this action instead of its rule's (a
	 * Fallback=); _PH_ACTION_MAX for none. */
	enum ph_action override;
	/* ... or only the owners named here, each with its own (a Fallback=
	 * of one sharer's rule never applies to another sharer). */
	const struct ph_plan_override *overrides;
	size_t n_overrides;
};

/*
 * Plan range [start, start+count) given res, the mapper's answer for the
 * same range rounded out to whole pages.
 */
int ph_plan_build(const struct ph_plan_env *env, uint64_t start, uint64_t count,
		  const struct ph_map_result *res, struct ph_plan **ret);
struct ph_plan *ph_plan_free(struct ph_plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_plan *, ph_plan_free);

/* The staged page each owner of pg gets, given its repaired page (pages[i],
 * NULL for an owner that gets none): owners whose pages are identical, and
 * whose rules do not say OnShared=separate, get one, so they are shared
 * again; different pages are never shared.  slots[i] is SIZE_MAX for an
 * owner without a page.  Returns the number of staged pages. */
size_t ph_plan_stage_slots(const struct ph_plan_page *pg, const uint8_t *const *pages, size_t *slots);

/* One paragraph: what a repair of a file under rule r would do here. */
int ph_plan_describe_rule(const struct ph_rule *r, bool can_clear, bool reflink, char **ret);
