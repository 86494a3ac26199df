/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recorder: the audit trail.  One structured journal entry per event,
 * each event type with its own MESSAGE_ID (explained by the catalog in
 * catalog/pmemheal.catalog), fields PMEMHEAL_*, a human MESSAGE and a
 * PRIORITY matching its severity.  Not a log: log lines go through the
 * context's log function; events go here.
 *
 * The recorder does not decide anything and never fails its caller's
 * work: a journal that cannot be written is logged once and counted.
 * Tests swap the journal for a capture sink.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ctx.h"

enum ph_event {
	PH_EVENT_DETECTED,        /* a range is listed bad (new, grown, relisted) */
	PH_EVENT_MAPPED,          /* one owner of a range: file, metadata or free space */
	PH_EVENT_PLANNED,         /* what a repair will do to one owner's page */
	PH_EVENT_REPAIRED,        /* one owner's page is healthy again */
	PH_EVENT_CLEARED,         /* the kernel no longer lists the sectors */
	PH_EVENT_PINNED,          /* a poisoned block stays allocated (cannot clear) */
	PH_EVENT_DATA_LOST,       /* bytes of a file were zeroed (or a file removed) */
	PH_EVENT_FAILED,          /* a repair step failed; nothing further written */
	PH_EVENT_METADATA_POISON, /* filesystem metadata is poisoned: never written */
	PH_EVENT_DEVICE_ADDED,
	PH_EVENT_DEVICE_REMOVED,
	PH_EVENT_CONFIG_RELOADED, /* also for a reload that failed (RESULT=failed) */
	_PH_EVENT_MAX,
};

/* "detected", "data-lost", ... (the PMEMHEAL_EVENT= field) */
const char *ph_event_to_string(enum ph_event e);
int ph_event_from_string(const char *s, enum ph_event *ret);
/* The MESSAGE_ID, 32 lowercase hex digits. */
const char *ph_event_message_id(enum ph_event e);
/* The event a MESSAGE_ID belongs to (any case); -EINVAL when none. */
int ph_event_from_message_id(const char *id, enum ph_event *ret);
/* LOG_INFO, LOG_WARNING, LOG_CRIT, ... */
int ph_event_priority(enum ph_event e);

#define PH_FIELD_UNSET UINT64_MAX

/*
 * The facts of one event.  Strings may be NULL and numbers PH_FIELD_UNSET:
 * such fields are left out of the entry.  Initialise with PH_EVENT_INIT.
 */
struct ph_event_fields {
	const char *device;        /* PMEMHEAL_DEVICE: "pmem0" */
	uint64_t sector, count;    /* PMEMHEAL_SECTOR, _COUNT: device sectors */
	const char *path;          /* PMEMHEAL_PATH */
	uint64_t inode;            /* PMEMHEAL_INODE */
	uint64_t offset, length;   /* PMEMHEAL_OFFSET, _LENGTH: bytes in the file */
	const char *action;        /* PMEMHEAL_ACTION: salvage, pin, ... */
	const char *result;        /* PMEMHEAL_RESULT: ok, failed, refused, ... */
	uint64_t bytes_lost;       /* PMEMHEAL_BYTES_LOST */
	uint64_t shared_owners;    /* PMEMHEAL_SHARED_OWNERS */
	const char *rule;          /* PMEMHEAL_RULE: "50-salvage.rule:3" */
	const char *owner;         /* PMEMHEAL_OWNER: file, metadata kind, "free" */
	int64_t range_id;          /* PMEMHEAL_RANGE_ID: the ledger's id; <= 0 unset */
	const char *ns_id;         /* PMEMHEAL_NAMESPACE: persistent namespace id */
	const char *mountpoint;    /* PMEMHEAL_MOUNT */
	const char *detail;        /* appended to MESSAGE (and PMEMHEAL_DETAIL) */
};

#define PH_EVENT_INIT                                                                     \
	((struct ph_event_fields){ .sector = PH_FIELD_UNSET, .count = PH_FIELD_UNSET,     \
				   .inode = PH_FIELD_UNSET, .offset = PH_FIELD_UNSET,     \
				   .length = PH_FIELD_UNSET, .bytes_lost = PH_FIELD_UNSET, \
				   .shared_owners = PH_FIELD_UNSET })

struct ph_recorder;

/* Where entries go instead of the journal (tests): the complete entry as
 * "FIELD=value" iovecs, as sd_journal_sendv() would get them. */
typedef void (*ph_record_sink_fn)(void *userdata, const struct iovec *iov, size_t n);

/* IDENTIFIER becomes SYSLOG_IDENTIFIER ("pmemheald", "pmemheal"). */
int ph_recorder_new(struct ph_ctx *ctx, const char *identifier, struct ph_recorder **ret);
struct ph_recorder *ph_recorder_free(struct ph_recorder *rec);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_recorder *, ph_recorder_free);
void ph_recorder_set_sink(struct ph_recorder *rec, ph_record_sink_fn fn, void *userdata);

/* Record one event.  rec may be NULL (nothing recorded).  Never fails the
 * caller: returns 0, or -errno when the entry could not be sent (logged). */
int ph_record(struct ph_recorder *rec, enum ph_event e, const struct ph_event_fields *f);
/* Entries that could not be sent so far. */
unsigned ph_recorder_get_lost(const struct ph_recorder *rec);

/* ---- the events of the stages everyone runs (scan, pmemheald) ---------- */

struct ph_change;
struct ph_range_row;
struct ph_map_result;

/*
 * The events of one ledger change: "detected" for a range that is new, grew
 * or is listed again after a reboot (PMEMHEAL_DETAIL says which),
 * "cleared" for a cleared range and for each piece a shrunk range no
 * longer lists; nothing for a range the kernel forgot by rebooting.
 * Returns 0 or the first ph_record() error.
 */
int ph_record_change(struct ph_recorder *rec, const struct ph_change *c);

/*
 * "mapped" for owner i of res, a mapping of (part of) the ledger's range
 * row, plus "metadata-poison" when the owner is filesystem metadata.  A
 * file owner's other hard links go to PMEMHEAL_DETAIL; a shared block
 * counts its sharers in res.  res NULL: the whole range belongs to a
 * device without a filesystem (devdax), owner "device".
 */
int ph_record_owner(struct ph_recorder *rec, const struct ph_range_row *row, const struct ph_map_result *res,
		    size_t i);

/* "device-added" or "device-removed" for namespace name, whose disk or dax
 * device is detail (NULL: none, the namespace names the device). */
int ph_record_device(struct ph_recorder *rec, bool added, const char *name, const char *detail);

/* The counts of a repair result as one phrase, for the daemon's log and
 * pmemheal repair: "3 pages: 2 repaired, 0 cleared, 1 pinned, 0 recorded,
 * 0 failed; 0 bytes lost".  singular: "1 page" when there is one. */
struct ph_repair_result;
int ph_repair_result_counts(const struct ph_repair_result *res, bool singular, char **ret);
