/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recorder: one structured journal entry per event.  Each entry carries
 * the event's MESSAGE_ID (catalog/pmemheal.catalog explains it), a PRIORITY
 * from its severity, PMEMHEAL_EVENT=<name>, the PMEMHEAL_* fields the
 * caller set, SYSLOG_IDENTIFIER and a one-line MESSAGE composed from the
 * same facts.
 *
 * ph_record_change() and ph_record_owner() turn the ledger's changes and
 * the mapper's owners into events, the same way for the CLI and the daemon.
 *
 * It does not decide anything, read the journal, or fail its caller: an
 * entry that cannot be sent is counted and logged (once).  Field values
 * are binary-safe (sd_journal_sendv() sends a value with a newline in the
 * journal's binary form); MESSAGE escapes control characters so it stays
 * one readable line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "escape.h"
#include "ledger.h"
#include "mapper.h"
#include "record.h"
#include "repair.h"

struct ph_recorder {
	struct ph_ctx *ctx;
	char *identifier;
	ph_record_sink_fn sink;
	void *sink_userdata;
	unsigned lost;
};

static const struct {
	const char *name;
	const char *message_id;
	int priority;
} events[_PH_EVENT_MAX] = {
	[PH_EVENT_DETECTED] = { "detected", "e661f52b84334704b9578a46e16da5b6", LOG_WARNING },
	[PH_EVENT_MAPPED] = { "mapped", "975a99ccf4734c31b2ab9855bdfb7beb", LOG_INFO },
	[PH_EVENT_PLANNED] = { "planned", "f93adf957a7042ed94de02c498a17f87", LOG_INFO },
	[PH_EVENT_REPAIRED] = { "repaired", "67280ad77d434dae89d79fd46d72362d", LOG_NOTICE },
	[PH_EVENT_CLEARED] = { "cleared", "f65017f8f24b44b3878ba3311d103869", LOG_NOTICE },
	[PH_EVENT_PINNED] = { "pinned", "16499b26c22d413f86ba787cf6d3cf68", LOG_WARNING },
	[PH_EVENT_DATA_LOST] = { "data-lost", "b7c5897389674412a655b567fc8276fb", LOG_ERR },
	[PH_EVENT_FAILED] = { "failed", "b63a12257c2746eea591057afc77ff83", LOG_ERR },
	[PH_EVENT_METADATA_POISON] = { "metadata-poison", "05f3a23dd3394923ba118a67348365c2", LOG_CRIT },
	[PH_EVENT_DEVICE_ADDED] = { "device-added", "3600dc70cf6746cfae19ed8f1e0622bd", LOG_INFO },
	[PH_EVENT_DEVICE_REMOVED] = { "device-removed", "99a59475a84b47968c11086094500861", LOG_INFO },
	[PH_EVENT_CONFIG_RELOADED] = { "config-reloaded", "aa877de6361345bc817ab7b88c26fccf", LOG_INFO },
};

_public_ const char *ph_event_to_string(enum ph_event e)
{
	return (unsigned)e < _PH_EVENT_MAX ? events[e].name : NULL;
}

_public_ int ph_event_from_string(const char *s, enum ph_event *ret)
{
	for (int i = 0; s && i < _PH_EVENT_MAX; i++)
		if (strcmp(s, events[i].name) == 0) {
			*ret = (enum ph_event)i;
			return 0;
		}
	return -EINVAL;
}

_public_ const char *ph_event_message_id(enum ph_event e)
{
	return (unsigned)e < _PH_EVENT_MAX ? events[e].message_id : NULL;
}

_public_ int ph_event_from_message_id(const char *id, enum ph_event *ret)
{
	for (int i = 0; id && i < _PH_EVENT_MAX; i++)
		if (strcasecmp(id, events[i].message_id) == 0) {
			*ret = (enum ph_event)i;
			return 0;
		}
	return -EINVAL;
}

_public_ int ph_event_priority(enum ph_event e)
{
	return (unsigned)e < _PH_EVENT_MAX ? events[e].priority : -EINVAL;
}

/* The priority of one entry: a reload that failed is an error. */
static int entry_priority(enum ph_event e, const struct ph_event_fields *f)
{
	if (e == PH_EVENT_CONFIG_RELOADED && f->result && strcmp(f->result, "failed") == 0)
		return LOG_ERR;
	return events[e].priority;
}

_public_ int ph_recorder_new(struct ph_ctx *ctx, const char *identifier, struct ph_recorder **ret)
{
	struct ph_recorder *rec;

	if (!identifier || !*identifier || strchr(identifier, '\n'))
		return -EINVAL;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->identifier = strdup(identifier);
	if (!rec->identifier) {
		free(rec);
		return -ENOMEM;
	}
	rec->ctx = ph_ctx_ref(ctx);
	*ret = rec;
	return 0;
}

_public_ struct ph_recorder *ph_recorder_free(struct ph_recorder *rec)
{
	if (!rec)
		return NULL;
	ph_ctx_unref(rec->ctx);
	free(rec->identifier);
	free(rec);
	return NULL;
}

_public_ void ph_recorder_set_sink(struct ph_recorder *rec, ph_record_sink_fn fn, void *userdata)
{
	rec->sink = fn;
	rec->sink_userdata = userdata;
}

_public_ unsigned ph_recorder_get_lost(const struct ph_recorder *rec)
{
	return rec ? rec->lost : 0;
}

/* ---- MESSAGE ------------------------------------------------------------ */

static bool set(const char *s)
{
	return s && *s;
}

/* s escaped as all text output is (escape.h): MESSAGE is one line, and
 * what journalctl shows of it cannot drive the terminal. */
static void put_escaped(FILE *m, const char *s)
{
	ph_escape_text_to(m, s, SIZE_MAX);
}

/* "salvage" -> "salvaged": what a repair did, for MESSAGE. */
static const char *action_done(const char *action)
{
	static const struct {
		const char *action, *done;
	} table[] = {
		{ "report", "reported" },     { "salvage", "salvaged" },   { "zero", "zeroed" },
		{ "restore", "restored" },    { "punch", "punched" },      { "quarantine", "quarantined" },
		{ "delete", "deleted" },      { "exec", "repaired by its hook" },
		{ "relocate", "relocated" },  { "pin", "pinned" },         { "clear", "cleared" },
		{ "rewrite", "rewritten" },
	};

	for (size_t i = 0; i < ELEMENTSOF(table); i++)
		if (strcmp(action, table[i].action) == 0)
			return table[i].done;
	return NULL;
}

/* "pmem0 sectors 210+2" (or as much of it as is known). */
static bool put_where(FILE *m, const struct ph_event_fields *f)
{
	bool any = false;

	if (set(f->device)) {
		put_escaped(m, f->device);
		any = true;
	}
	if (f->sector != PH_FIELD_UNSET) {
		fprintf(m, "%ssector%s %" PRIu64, any ? " " : "", f->count != 1 ? "s" : "", f->sector);
		if (f->count != PH_FIELD_UNSET)
			fprintf(m, "+%" PRIu64, f->count);
		any = true;
	}
	return any;
}

/* "/mnt/a offset 8192", "free space", "filesystem metadata (inodes)". */
static void put_owner(FILE *m, enum ph_event e, const struct ph_event_fields *f)
{
	if (set(f->path)) {
		put_escaped(m, f->path);
		if (f->offset != PH_FIELD_UNSET)
			fprintf(m, " offset %" PRIu64, f->offset);
		return;
	}
	if (strcmp(f->owner, "free") == 0)
		fputs("free space", m);
	else if (strcmp(f->owner, "file") == 0) {
		fputs("a file", m);
		if (f->inode != PH_FIELD_UNSET)
			fprintf(m, " (inode %" PRIu64 ")", f->inode);
	} else if (e == PH_EVENT_MAPPED) {
		/* the other owners are kinds of metadata, "unmounted", "device" */
		if (strcmp(f->owner, "device") == 0)
			fputs("the device (no filesystem)", m);
		else if (strcmp(f->owner, "unmounted") == 0)
			fputs("nothing mounted", m);
		else if (strcmp(f->owner, "unknown") == 0)
			fputs("unknown owner", m);
		else {
			fputs("filesystem metadata (", m);
			put_escaped(m, f->owner);
			fputc(')', m);
		}
	} else
		put_escaped(m, f->owner);
}

static void put_sep(FILE *m, bool *first)
{
	if (!*first)
		fputs(": ", m);
	*first = false;
}

/* What the event is about: the device, or where the range is and its owner. */
static void put_subject(FILE *m, enum ph_event e, const struct ph_event_fields *f, bool *first)
{
	switch (e) {
	case PH_EVENT_DEVICE_ADDED:
	case PH_EVENT_DEVICE_REMOVED:
		if (set(f->device))
			put_escaped(m, f->device);
		else
			fputs("pmem device", m);
		fputs(e == PH_EVENT_DEVICE_ADDED ? " added" : " removed", m);
		if (set(f->ns_id)) {
			fputs(" (namespace ", m);
			put_escaped(m, f->ns_id);
			fputc(')', m);
		}
		*first = false;
		break;
	case PH_EVENT_CONFIG_RELOADED:
		fputs(set(f->result) && strcmp(f->result, "ok") != 0 ? "configuration reload " : "configuration reloaded",
		      m);
		if (set(f->result) && strcmp(f->result, "ok") != 0)
			put_escaped(m, f->result);
		*first = false;
		break;
	default:
		if (put_where(m, f))
			*first = false;
		if (e == PH_EVENT_METADATA_POISON) {
			put_sep(m, first);
			fputs("filesystem metadata", m);
			if (set(f->owner)) {
				fputs(" (", m);
				put_escaped(m, f->owner);
				fputc(')', m);
			}
		} else if (e != PH_EVENT_DETECTED && e != PH_EVENT_CLEARED && (set(f->path) || set(f->owner))) {
			put_sep(m, first);
			put_owner(m, e, f);
		}
		break;
	}
}

/* What happened to it. */
static void put_outcome(FILE *m, enum ph_event e, const struct ph_event_fields *f, bool *first)
{
	switch (e) {
	case PH_EVENT_DETECTED:
		put_sep(m, first);
		fputs("poison detected", m);
		break;
	case PH_EVENT_MAPPED:
		if (f->length != PH_FIELD_UNSET)
			fprintf(m, ", %" PRIu64 " bytes", f->length);
		if (f->shared_owners != PH_FIELD_UNSET && f->shared_owners > 1)
			fprintf(m, ", shared by %" PRIu64 " files", f->shared_owners);
		break;
	case PH_EVENT_PLANNED:
		put_sep(m, first);
		if (set(f->action)) {
			put_escaped(m, f->action);
			fputs(" planned", m);
		} else
			fputs("repair planned", m);
		if (set(f->rule)) {
			fputs(" (rule ", m);
			put_escaped(m, f->rule);
			fputc(')', m);
		}
		break;
	case PH_EVENT_REPAIRED: {
		const char *done = set(f->action) ? action_done(f->action) : NULL;

		put_sep(m, first);
		if (done)
			fputs(done, m);
		else if (set(f->action)) {
			fputs("repaired (", m);
			put_escaped(m, f->action);
			fputc(')', m);
		} else
			fputs("repaired", m);
		if (f->bytes_lost != PH_FIELD_UNSET) {
			if (f->bytes_lost)
				fprintf(m, ", %" PRIu64 " bytes lost", f->bytes_lost);
			else
				fputs(", nothing lost", m);
		}
		break;
	}
	case PH_EVENT_CLEARED:
		put_sep(m, first);
		fputs("poison cleared", m);
		break;
	case PH_EVENT_PINNED:
		put_sep(m, first);
		fputs("poisoned block pinned (stays allocated, never reused)", m);
		break;
	case PH_EVENT_DATA_LOST:
		put_sep(m, first);
		if (f->bytes_lost != PH_FIELD_UNSET)
			fprintf(m, "%" PRIu64 " bytes lost", f->bytes_lost);
		else
			fputs("data lost", m);
		if (set(f->action)) {
			fputs(" (", m);
			put_escaped(m, f->action);
			fputc(')', m);
		}
		break;
	case PH_EVENT_FAILED:
		put_sep(m, first);
		if (set(f->action)) {
			put_escaped(m, f->action);
			fputc(' ', m);
		} else
			fputs("repair ", m);
		if (set(f->result) && strcmp(f->result, "failed") != 0) {
			fputs("failed (", m);
			put_escaped(m, f->result);
			fputc(')', m);
		} else
			fputs("failed", m);
		break;
	case PH_EVENT_METADATA_POISON:
		fputs(" poisoned", m);
		if (set(f->mountpoint)) {
			fputs(" on ", m);
			put_escaped(m, f->mountpoint);
		}
		fputs("; run the filesystem's repair tool", m);
		break;
	default:
		break;
	}
}

static int compose_message(enum ph_event e, const struct ph_event_fields *f, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	bool first = true;
	FILE *m;

	m = open_memstream(&buf, &size);
	if (!m)
		return -ENOMEM;
	put_subject(m, e, f, &first);
	put_outcome(m, e, f, &first);
	if (set(f->detail)) {
		put_sep(m, &first);
		put_escaped(m, f->detail);
	}
	if (fclose(m) != 0 || !buf)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* ---- the entry ---------------------------------------------------------- */

#define MAX_FIELDS 24

struct entry {
	struct iovec iov[MAX_FIELDS];
	size_t n;
};

static void entry_done(struct entry *en)
{
	for (size_t i = 0; i < en->n; i++)
		free(en->iov[i].iov_base);
}

static int add_str(struct entry *en, const char *field, const char *value)
{
	size_t fl, vl;
	char *p;

	if (!set(value))
		return 0;
	if (en->n >= MAX_FIELDS)
		return -E2BIG;
	fl = strlen(field);
	vl = strlen(value);
	p = malloc(fl + 1 + vl + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, field, fl);
	p[fl] = '=';
	memcpy(p + fl + 1, value, vl + 1);
	/* the NUL is not part of the field */
	en->iov[en->n++] = (struct iovec){ .iov_base = p, .iov_len = fl + 1 + vl };
	return 0;
}

static int add_u64(struct entry *en, const char *field, uint64_t v)
{
	char buf[24];

	if (v == PH_FIELD_UNSET)
		return 0;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return add_str(en, field, buf);
}

static int build_entry(const struct ph_recorder *rec, enum ph_event e, const struct ph_event_fields *f,
		       struct entry *en)
{
	_cleanup_free_ char *message = NULL;
	char prio[4], range_id[24] = "";
	int r;

	r = compose_message(e, f, &message);
	if (r < 0)
		return r;
	snprintf(prio, sizeof(prio), "%d", entry_priority(e, f));
	if (f->range_id > 0)
		snprintf(range_id, sizeof(range_id), "%" PRId64, f->range_id);

	if ((r = add_str(en, "MESSAGE", message)) < 0 ||
	    (r = add_str(en, "MESSAGE_ID", events[e].message_id)) < 0 ||
	    (r = add_str(en, "PRIORITY", prio)) < 0 ||
	    (r = add_str(en, "SYSLOG_IDENTIFIER", rec->identifier)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_EVENT", events[e].name)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_DEVICE", f->device)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_SECTOR", f->sector)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_COUNT", f->count)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_PATH", f->path)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_INODE", f->inode)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_OFFSET", f->offset)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_LENGTH", f->length)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_ACTION", f->action)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_RESULT", f->result)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_BYTES_LOST", f->bytes_lost)) < 0 ||
	    (r = add_u64(en, "PMEMHEAL_SHARED_OWNERS", f->shared_owners)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_RULE", f->rule)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_OWNER", f->owner)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_RANGE_ID", range_id)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_NAMESPACE", f->ns_id)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_MOUNT", f->mountpoint)) < 0 ||
	    (r = add_str(en, "PMEMHEAL_DETAIL", f->detail)) < 0)
		return r;
	return 0;
}

_public_ int ph_record(struct ph_recorder *rec, enum ph_event e, const struct ph_event_fields *f)
{
	struct entry en = { .n = 0 };
	struct ph_event_fields none = PH_EVENT_INIT;
	int r;

	if (!rec)
		return 0;
	if ((unsigned)e >= _PH_EVENT_MAX)
		return -EINVAL;
	if (!f)
		f = &none;

	r = build_entry(rec, e, f, &en);
	if (r >= 0) {
		if (rec->sink)
			rec->sink(rec->sink_userdata, en.iov, en.n);
		else
			/* No journald (ENOENT) is not an error to sd_journal_sendv(). */
			r = sd_journal_sendv(en.iov, (int)en.n);
	}
	entry_done(&en);
	if (r < 0) {
		if (rec->lost++ == 0)
			ph_err(rec->ctx, "Cannot record a '%s' event in the journal: %s; "
			       "further failures are only counted", events[e].name, strerror(-r));
		return r;
	}
	return 0;
}

/* ---- ledger changes and owners ------------------------------------------ */

static int first_error(int r, int k)
{
	return r < 0 ? r : k;
}

_public_ int ph_record_change(struct ph_recorder *rec, const struct ph_change *c)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	char detail[128];
	int r = 0;

	if (!rec)
		return 0;
	f.device = c->row.device;
	f.ns_id = c->row.ns_id;
	f.range_id = c->row.id;
	f.sector = c->row.start;
	f.count = c->row.count;
	switch (c->type) {
	case PH_CHANGE_NEW:
		f.detail = c->row.origin && strstr(c->row.origin, "memory-failure") ? "new, from a machine check" : "new";
		return ph_record(rec, PH_EVENT_DETECTED, &f);
	case PH_CHANGE_GROWN:
		snprintf(detail, sizeof(detail), "grown from %" PRIu64 "+%" PRIu64, c->old_start, c->old_count);
		f.detail = detail;
		return ph_record(rec, PH_EVENT_DETECTED, &f);
	case PH_CHANGE_RELISTED:
		f.detail = "listed again after a reboot";
		return ph_record(rec, PH_EVENT_DETECTED, &f);
	case PH_CHANGE_CLEARED:
		return ph_record(rec, PH_EVENT_CLEARED, &f);
	case PH_CHANGE_SHRUNK: {
		/* the old extent minus the new one: up to two pieces */
		uint64_t old_end = c->old_start + c->old_count, end = c->row.start + c->row.count;
		uint64_t head_end = MIN(c->row.start, old_end), tail_start = MAX(end, c->old_start);
		struct ph_range pieces[2] = {
			{ c->old_start, head_end > c->old_start ? head_end - c->old_start : 0 },
			{ tail_start, old_end > tail_start ? old_end - tail_start : 0 },
		};

		snprintf(detail, sizeof(detail), "partly cleared: %" PRIu64 "+%" PRIu64 " still listed", c->row.start,
			 c->row.count);
		f.detail = detail;
		for (size_t i = 0; i < ELEMENTSOF(pieces); i++)
			if (pieces[i].count) {
				f.sector = pieces[i].start;
				f.count = pieces[i].count;
				r = first_error(r, ph_record(rec, PH_EVENT_CLEARED, &f));
			}
		return r;
	}
	case PH_CHANGE_FORGOTTEN:
		/* a reboot emptied the kernel's list: nothing happened to the media */
		return 0;
	}
	return -EINVAL;
}

/* Files in res that share (part of) o's sectors, o included. */
static uint64_t sharers(const struct ph_map_result *res, const struct ph_owner *o)
{
	uint64_t n = 0;

	for (size_t i = 0; i < res->n_owners; i++) {
		const struct ph_owner *x = &res->owners[i];

		if (x->type == PH_OWNER_FILE && x->sector < o->sector + o->count && o->sector < x->sector + x->count)
			n++;
	}
	return n;
}

_public_ int ph_record_owner(struct ph_recorder *rec, const struct ph_range_row *row,
			     const struct ph_map_result *res, size_t i)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	_cleanup_free_ char *also = NULL;
	const struct ph_owner *o;
	int r;

	if (!rec)
		return 0;
	f.device = row->device;
	f.ns_id = row->ns_id;
	f.range_id = row->id;
	if (!res) {
		f.sector = row->start;
		f.count = row->count;
		f.owner = "device";
		return ph_record(rec, PH_EVENT_MAPPED, &f);
	}
	if (i >= res->n_owners)
		return -EINVAL;
	o = &res->owners[i];
	f.sector = o->sector;
	f.count = o->count;
	f.mountpoint = o->fs ? ph_map_fs_get_mount(o->fs) : NULL;
	switch (o->type) {
	case PH_OWNER_FILE:
		f.owner = "file";
		f.path = o->n_paths ? o->paths[0] : NULL;
		f.inode = o->inode;
		f.offset = o->offset;
		f.length = o->length;
		if (o->shared)
			f.shared_owners = sharers(res, o);
		if (o->n_paths > 1) {
			size_t len = 0;
			FILE *m = open_memstream(&also, &len);

			if (!m)
				return -ENOMEM;
			fputs("also", m);
			for (size_t k = 1; k < o->n_paths; k++)
				fprintf(m, " %s", o->paths[k]);
			if (fclose(m) != 0)
				return -ENOMEM;
			f.detail = also;
		} else if (o->attr_fork)
			f.detail = "extended attributes";
		break;
	case PH_OWNER_METADATA:
		f.owner = o->what ? o->what : "metadata";
		if (o->what && strcmp(o->what, "extent-map") == 0)
			f.inode = o->inode;
		break;
	case PH_OWNER_UNKNOWN:
		f.owner = "unknown";
		f.detail = o->reason;
		break;
	default:
		f.owner = ph_owner_type_to_string(o->type);
		break;
	}
	r = ph_record(rec, PH_EVENT_MAPPED, &f);
	if (o->type == PH_OWNER_METADATA)
		r = first_error(r, ph_record(rec, PH_EVENT_METADATA_POISON, &f));
	return r;
}

_public_ int ph_record_device(struct ph_recorder *rec, bool added, const char *name, const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	f.device = detail ? detail : name; /* the disk (pmem0) or dax device */
	f.detail = name;                   /* the namespace */
	return ph_record(rec, added ? PH_EVENT_DEVICE_ADDED : PH_EVENT_DEVICE_REMOVED, &f);
}

_public_ int ph_repair_result_counts(const struct ph_repair_result *res, bool singular, char **ret)
{
	char *s;

	if (asprintf(&s,
		     "%u page%s: %u repaired, %u cleared, %u pinned, %u recorded, %u failed; %" PRIu64 " bytes lost",
		     res->pages, singular && res->pages == 1 ? "" : "s", res->written, res->cleared, res->pinned,
		     res->recorded, res->failed, res->bytes_lost) < 0)
		return -ENOMEM;
	*ret = s;
	return 0;
}
