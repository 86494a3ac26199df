/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheald's event loop.
 *
 * Start:  the worker finishes what a crash left in the intent log before
 *         anything else; only then are the watchers attached, the lists
 *         read, every range that still wants a repair queued, and READY=1
 *         sent.  The loop runs meanwhile (watchdog, SIGTERM).
 * Run:    a watcher's wake-up reads the lists (ph_monitor_scan); each new,
 *         grown or relisted range is queued on the worker, which repairs it
 *         per the rules and reports back through its eventfd.  Nothing here
 *         touches a filesystem: the loop only reads sysfs and the ledger.
 * Reload: SIGHUP loads the configuration; with any error (every one is
 *         logged as file:line) the old one stays in force.
 * Stop:   SIGTERM lets the worker finish the range it is repairing, then
 *         exits 0; ranges still queued stay in the ledger for next time.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "range-row.h"
#include "record.h"
#include "watch.h"
#include "worker.h"

struct manager {
	struct ph_ctx *ctx;
	sd_event *event;
	char *state_dir;
	const char *const *config_dirs;
	size_t n_config_dirs;

	/* the configuration in force ([Daemon]); the rules are the worker's */
	uint64_t rescan_usec, scrub_usec;
	char *metrics_file;
	size_t n_rules;

	struct ph_ledger *ledger; /* this thread's handle */
	struct ph_monitor *monitor;
	struct ph_worker *worker;
	struct ph_recorder *recorder; /* this thread's: detected, cleared, devices, reloads */

	sd_event_source *worker_src, *update_src, *scrub_src, *drain_src;
	/* ledger changes still to record and queue, a slice per loop turn */
	struct backlog_item *backlog;
	size_t backlog_head, n_backlog, backlog_cap;
	struct ph_metrics metrics; /* the counters; gauges are filled on update */
	bool ready, stopping, lock_wait, said_no_scrub;
	char *status;
};

/* A ledger change, copied out of the monitor's callback. */
struct backlog_item {
	struct ph_change c;           /* its row is row.row */
	struct ph_range_row_copy row;
	char *trigger;
};

static void schedule_update(struct manager *m);

/* ---- what the monitor reports ------------------------------------------ */

static void queue_range(struct manager *m, int64_t id)
{
	int r = ph_worker_queue_range(m->worker, id);

	if (r < 0)
		log_warning_errno(r, "Cannot queue range %" PRId64 " for repair: %m, ignoring until the next scan", id);
}

/* Record one change, and queue its range when it needs a repair. */
static void handle_change(struct manager *m, const struct ph_change *c, const char *trigger)
{
	const struct ph_namespace *ns = ph_topology_find_ns(ph_monitor_get_topology(m->monitor), c->row.ns_id);
	const char *dev = c->row.device ? c->row.device : ns ? ns->name : c->row.ns_id;

	(void)ph_record_change(m->recorder, c);
	switch (c->type) {
	case PH_CHANGE_NEW:
	case PH_CHANGE_GROWN:
	case PH_CHANGE_RELISTED:
		log_info("Poison on %s at sectors %" PRIu64 "+%" PRIu64 " (%s, range %" PRId64 ", found by %s)", dev,
			 c->row.start, c->row.count, ph_change_type_to_string(c->type), c->row.id, trigger);
		queue_range(m, c->row.id);
		break;
	case PH_CHANGE_SHRUNK:
		/* Partly cleared: by our repair (then it is settled or being
		 * repaired, and the worker skips it), or by someone else. */
		log_debug("Range %" PRId64 " on %s is now %" PRIu64 "+%" PRIu64, c->row.id, dev, c->row.start,
			  c->row.count);
		queue_range(m, c->row.id);
		break;
	case PH_CHANGE_CLEARED:
		log_info("%s no longer lists sectors %" PRIu64 "+%" PRIu64 " (range %" PRId64 ", %s)", dev,
			 c->row.start, c->row.count, c->row.id, ph_state_to_string(c->row.state));
		break;
	case PH_CHANGE_FORGOTTEN:
		log_debug("Range %" PRId64 " on %s is not listed since the reboot; remembered as %s", c->row.id, dev,
			  ph_state_to_string(c->row.state));
		break;
	}
	schedule_update(m);
}

static void backlog_item_done(struct backlog_item *it)
{
	ph_range_row_copy_done(&it->row);
	free(it->trigger);
}

/* Handle the backlog for at most 20 ms, then give the loop back to
 * watchdog pings, signals and udev; the rest goes on the next turn.  With
 * all: everything now (stopping). */
static void drain(struct manager *m, bool all)
{
	uint64_t t0 = ph_mono_usec();
	size_t n = 0;

	while (m->backlog_head < m->n_backlog && (all || n == 0 || ph_mono_usec() - t0 < 20000)) {
		struct backlog_item *it = &m->backlog[m->backlog_head++];

		handle_change(m, &it->c, it->trigger);
		backlog_item_done(it);
		n++;
	}
	if (m->backlog_head == m->n_backlog)
		m->backlog_head = m->n_backlog = 0;
	else if (sd_event_source_set_enabled(m->drain_src, SD_EVENT_ONESHOT) < 0)
		drain(m, true);
}

static int on_drain(sd_event_source *s, void *userdata)
{
	drain(userdata, false);
	return 0;
}

/* The monitor reports a scan's changes all at once (512 when a full list
 * arrives): copy them, and record and queue them a slice at a time. */
static void on_change(void *userdata, const struct ph_change *c, const char *trigger)
{
	struct manager *m = userdata;
	struct backlog_item *it;

	if (PH_GROW(m->backlog, m->backlog_cap, m->n_backlog + 1, 64) < 0) {
		(void)log_oom_ignore();
		handle_change(m, c, trigger);
		return;
	}
	it = &m->backlog[m->n_backlog];
	*it = (struct backlog_item){ .c = *c };
	if (ph_range_row_copy(&c->row, &it->row) < 0 || !(it->trigger = strdup(trigger ? trigger : "?"))) {
		backlog_item_done(it);
		(void)log_oom_ignore();
		handle_change(m, c, trigger);
		return;
	}
	it->c.row = it->row.row;
	m->n_backlog++;
	if (sd_event_source_set_enabled(m->drain_src, SD_EVENT_ONESHOT) < 0)
		drain(m, true);
}

static void on_event(void *userdata, enum ph_monitor_event ev, const char *name, const char *detail)
{
	struct manager *m = userdata;

	switch (ev) {
	case PH_MONITOR_DEVICE_ADDED:
		log_info("pmem namespace %s appeared (%s)", name, detail ? detail : "no device");
		(void)ph_record_device(m->recorder, true, name, detail);
		ph_worker_topology_changed(m->worker);
		break;
	case PH_MONITOR_DEVICE_REMOVED:
		log_info("pmem namespace %s went away (%s)", name, detail ? detail : "no device");
		(void)ph_record_device(m->recorder, false, name, detail);
		ph_worker_topology_changed(m->worker);
		break;
	case PH_MONITOR_SOURCE_ERROR:
		log_warning("Cannot read a badblocks list: %s, ignoring it until it reads again", detail);
		break;
	}
	schedule_update(m);
}

static void on_scanned(void *userdata, const char *trigger, unsigned changes)
{
	struct manager *m = userdata;

	m->metrics.scans++;
	if (changes > 0)
		schedule_update(m);
}

static const struct ph_monitor_ops monitor_ops = {
	.change = on_change,
	.event = on_event,
	.scanned = on_scanned,
};

static int queue_row(void *userdata, const struct ph_range_row *row)
{
	struct manager *m = userdata;

	if (ph_range_row_repairable(row))
		queue_range(m, row->id);
	return 0;
}

/* Every range that still wants a repair: at start (from before a restart)
 * and after a reload (a rule may now repair what it only reported). */
static void queue_unsettled(struct manager *m)
{
	int r = ph_ledger_foreach(m->ledger, NULL, queue_row, m);

	if (r < 0)
		log_warning_errno(r, "Cannot read %s: %m, ignoring", ph_ledger_get_path(m->ledger));
}

/* ---- STATUS= and metrics, once per loop iteration ------------------------ */

static int on_update(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	const struct ph_topology *t = ph_monitor_get_topology(m->monitor);
	_cleanup_free_ char *status = NULL;
	size_t n_ns = t ? t->n_namespaces : 0, pending = ph_worker_get_pending(m->worker);
	int64_t current = ph_worker_get_current(m->worker);
	uint64_t listed = 0;
	int r;

	if (!m->ready)
		return 0; /* STATUS= says we are still starting */
	r = ph_ledger_count_listed(m->ledger, &listed);
	if (r < 0)
		log_debug_errno(r, "Cannot count the ranges in the ledger: %m");
	if (m->stopping)
		r = asprintf(&status, "Stopping%s", current ? ": finishing the range being repaired" : "");
	else if (n_ns == 0)
		r = asprintf(&status, "No pmem found; waiting for hotplug%s",
			     listed ? " (the ledger remembers poison from before)" : "");
	else
		r = asprintf(&status, "%zu namespace%s, %" PRIu64 " poisoned range%s, %zu pending%s%s", n_ns,
			     n_ns == 1 ? "" : "s", listed, listed == 1 ? "" : "s", pending,
			     m->lock_wait ? "; waiting for repair.lock (pmemheal repair is running)" : "",
			     !m->lock_wait && current ? "; repairing" : "");
	if (r < 0)
		return log_oom_ignore();
	if (!m->status || strcmp(status, m->status) != 0) {
		(void)sd_notifyf(false, "STATUS=%s", status);
		free(m->status);
		m->status = TAKE_PTR(status);
	}

	if (m->metrics_file) {
		m->metrics.namespaces = n_ns;
		m->metrics.listed = listed;
		m->metrics.pending = pending;
		m->metrics.events_lost = ph_recorder_get_lost(m->recorder);
		(void)ph_ledger_count(m->ledger, m->metrics.ranges);
		r = ph_metrics_write(&m->metrics, m->metrics_file);
		if (r < 0)
			log_warning_errno(r, "Cannot write %s: %m, ignoring", m->metrics_file);
	}
	return 0;
}

static void schedule_update(struct manager *m)
{
	int r = sd_event_source_set_enabled(m->update_src, SD_EVENT_ONESHOT);

	if (r < 0)
		log_debug_errno(r, "Cannot schedule a status update: %m");
}

/* ---- scrubs --------------------------------------------------------------- */

static int on_scrub(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	const struct ph_topology *t = ph_monitor_get_topology(m->monitor);
	unsigned asked = 0;
	int r;

	for (size_t i = 0; t && i < t->n_buses; i++) {
		if (!t->buses[i].ars)
			continue;
		r = ph_worker_queue_scrub(m->worker, t->buses[i].name);
		if (r < 0)
			log_warning_errno(r, "Cannot queue a scrub of %s: %m, ignoring", t->buses[i].name);
		else
			asked++;
	}
	if (asked == 0 && !m->said_no_scrub) {
		log_info("ScrubIntervalSec= is set, but no pmem bus here can scrub (none implements ARS); "
			 "poison is still found by the kernel's own scrubs, machine checks and rescans");
		m->said_no_scrub = true;
	}
	r = sd_event_source_set_time_relative(s, m->scrub_usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return r < 0 ? log_error_errno(r, "Cannot re-arm the scrub timer: %m") : 0;
}

static int setup_scrub(struct manager *m)
{
	if (m->scrub_usec == 0)
		return m->scrub_src ? sd_event_source_set_enabled(m->scrub_src, SD_EVENT_OFF) : 0;
	if (!m->scrub_src)
		return sd_event_add_time_relative(m->event, &m->scrub_src, CLOCK_MONOTONIC, m->scrub_usec,
						  1000000, on_scrub, m);
	(void)sd_event_source_set_time_relative(m->scrub_src, m->scrub_usec);
	return sd_event_source_set_enabled(m->scrub_src, SD_EVENT_ONESHOT);
}

/* ---- the worker's reports ----------------------------------------------- */

/* "rescanning every 60 s", or "no periodic rescans" */
static const char *rescan_text(uint64_t usec, char buf[static 64])
{
	if (usec == 0)
		return "no periodic rescans";
	snprintf(buf, 64, "rescanning every %" PRIu64 " s", usec / 1000000);
	return buf;
}

static int start_watching(struct manager *m)
{
	char buf[64];
	int r;

	r = ph_monitor_attach(m->monitor, m->event, m->rescan_usec);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the pmem devices: %m");
	r = setup_scrub(m);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the scrub timer: %m");
	r = ph_monitor_scan(m->monitor, "start");
	if (r < 0)
		log_warning_errno(r, "First scan failed: %m, trying again on the next wake-up");
	queue_unsettled(m);
	m->ready = true;
	(void)sd_notify(false, "READY=1");
	log_info("Watching %zu pmem namespace%s (%zu badblocks lists), %s",
		 ph_monitor_get_topology(m->monitor)->n_namespaces,
		 ph_monitor_get_topology(m->monitor)->n_namespaces == 1 ? "" : "s", ph_monitor_n_watches(m->monitor),
		 rescan_text(m->rescan_usec, buf));
	schedule_update(m);
	return 0;
}

static void range_done(struct manager *m, struct ph_worker_report *rep)
{
	enum ph_outcome o = ph_outcome_of(&rep->res, rep->error);
	const struct ph_repair_result *res = &rep->res;
	_cleanup_free_ char *counts = NULL;

	m->metrics.repairs[o]++;
	m->metrics.pages_repaired += res->written;
	m->metrics.pages_failed += res->failed;
	m->metrics.bytes_lost += res->bytes_lost;
	if (rep->error < 0)
		log_error_errno(rep->error, "Cannot repair range %" PRId64 ": %s", rep->range_id,
				res->detail ? res->detail : "%m");
	else if (ph_repair_result_counts(res, true, &counts) < 0)
		(void)log_oom_ignore();
	else
		log_full(o == PH_OUTCOME_FAILED ? LOG_ERR : o == PH_OUTCOME_RECORDED ? LOG_INFO : LOG_NOTICE,
			 "Range %" PRId64 ": %s (%s)%s%s", rep->range_id, ph_outcome_to_string(o), counts,
			 res->detail ? ": " : "", res->detail ? res->detail : "");
}

static int on_worker(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct ph_worker_report rep;
	int r;

	while (ph_worker_next_report(m->worker, &rep) > 0) {
		switch (rep.type) {
		case PH_WORKER_RESUMED:
			if (rep.error < 0) {
				log_error_errno(rep.error, "Cannot start the repair thread: %s",
						rep.detail ? rep.detail : "%m");
				ph_worker_report_done(&rep);
				return sd_event_exit(m->event, rep.error);
			}
			if (rep.jobs > 0)
				log_notice("Resumed %u page repair%s a restart had interrupted, and finished their ranges",
					   rep.jobs, rep.jobs == 1 ? "" : "s");
			if (!m->stopping) {
				r = start_watching(m);
				if (r < 0) {
					ph_worker_report_done(&rep);
					return sd_event_exit(m->event, r);
				}
			}
			break;
		case PH_WORKER_LOCK_WAIT:
			log_notice("Waiting for %s: pmemheal repair is running", rep.detail ? rep.detail : "the repair lock");
			m->lock_wait = true;
			break;
		case PH_WORKER_LOCKED:
			m->lock_wait = false;
			break;
		case PH_WORKER_STARTED:
			break;
		case PH_WORKER_DONE:
			if (!rep.skipped)
				range_done(m, &rep);
			break;
		case PH_WORKER_SCRUB:
			if (rep.error < 0)
				log_warning_errno(rep.error, "Cannot start a scrub on %s: %m, ignoring", rep.detail);
			else
				log_info("Started an address range scrub on %s", rep.detail);
			break;
		case PH_WORKER_STOPPED:
			ph_worker_report_done(&rep);
			if (!m->stopping)
				return sd_event_exit(m->event, log_error_errno(SYNTHETIC_ERRNO(EPIPE),
									       "The repair thread ended unexpectedly"));
			log_info("Stopped");
			return sd_event_exit(m->event, 0);
		}
		ph_worker_report_done(&rep);
		schedule_update(m);
	}
	return 0;
}

/* ---- signals ------------------------------------------------------------ */

static void apply_config(struct manager *m, const struct ph_policy *p)
{
	free(m->metrics_file);
	m->metrics_file = p->conf.metrics_file ? strdup(p->conf.metrics_file) : NULL;
	if (p->conf.metrics_file && !m->metrics_file)
		log_warning("Out of memory: metrics are off until the next reload");
	m->rescan_usec = p->conf.rescan_usec;
	m->scrub_usec = p->conf.scrub_usec;
	m->said_no_scrub = false;
	m->n_rules = p->n_rules;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	struct ph_policy_errors errs = { 0 };
	struct ph_event_fields f = PH_EVENT_INIT;
	_cleanup_free_ char *detail = NULL;
	struct ph_policy *p = NULL;
	char buf[64];
	int r;

	(void)sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration");
	r = ph_policy_load(m->ctx, m->config_dirs, m->n_config_dirs, &p, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			if (errs.v[i].line > 0)
				log_error("%s:%u: %s", errs.v[i].file, errs.v[i].line, errs.v[i].message);
			else
				log_error("%s: %s", errs.v[i].file, errs.v[i].message);
		log_error_errno(r, "Configuration not reloaded (%zu error%s); the one loaded before stays in force",
				errs.n, errs.n == 1 ? "" : "s");
		/* The audit trail gets the first error, where it is, and how many. */
		if (errs.n > 0) {
			f.path = errs.v[0].file;
			if (asprintf(&detail, "%s:%u: %s%s (%zu error%s); the configuration loaded before stays in force",
				     errs.v[0].file, errs.v[0].line, errs.v[0].message, errs.n > 1 ? " and more" : "",
				     errs.n, errs.n == 1 ? "" : "s") < 0)
				detail = NULL;
		}
		f.result = "failed";
		f.detail = detail ? detail : "the configuration loaded before stays in force";
		(void)ph_record(m->recorder, PH_EVENT_CONFIG_RELOADED, &f);
		ph_policy_errors_done(&errs);
		goto done;
	}
	apply_config(m, p);
	if (m->ready) {
		r = ph_monitor_set_rescan(m->monitor, m->rescan_usec);
		if (r < 0)
			log_warning_errno(r, "Cannot change the rescan interval: %m, ignoring");
		r = setup_scrub(m);
		if (r < 0)
			log_warning_errno(r, "Cannot change the scrub schedule: %m, ignoring");
	}
	log_info("Reloaded the configuration: %zu rule%s, %s", m->n_rules, m->n_rules == 1 ? "" : "s",
		 rescan_text(m->rescan_usec, buf));
	if (asprintf(&detail, "%zu rule%s, %zu configuration file%s, %s", m->n_rules, m->n_rules == 1 ? "" : "s",
		     p->n_conf_files, p->n_conf_files == 1 ? "" : "s", rescan_text(m->rescan_usec, buf)) < 0)
		detail = NULL;
	f.result = "ok";
	f.detail = detail;
	(void)ph_record(m->recorder, PH_EVENT_CONFIG_RELOADED, &f);
	ph_worker_set_policy(m->worker, p);
	if (m->ready)
		queue_unsettled(m);
done:
	free(m->status); /* send STATUS= again after RELOADING */
	m->status = NULL;
	(void)sd_notify(false, m->ready ? "READY=1" : "STATUS=Finishing repairs a restart interrupted");
	schedule_update(m);
	return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;

	if (m->stopping)
		return 0;
	m->stopping = true;
	drain(m, true); /* every change seen is recorded before the end */
	log_info("Stopping (%s)%s", strsignal((int)si->ssi_signo),
		 ph_worker_get_current(m->worker) ? "; finishing the range being repaired first" : "");
	(void)sd_notify(false, "STOPPING=1");
	ph_worker_stop(m->worker);
	schedule_update(m);
	return 0;
}

/* ---- life --------------------------------------------------------------- */

int manager_new(struct ph_ctx *ctx, const struct manager_options *o, struct ph_policy *policy,
		struct manager **ret)
{
	_cleanup_(manager_freep) struct manager *m = NULL;
	struct ph_error err = { { 0 } };
	sigset_t mask;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m) {
		ph_policy_free(policy);
		return log_oom();
	}
	m->ctx = ph_ctx_ref(ctx);
	m->config_dirs = o->config_dirs;
	m->n_config_dirs = o->n_config_dirs;
	apply_config(m, policy);
	m->state_dir = strdup(o->state_dir);
	if (!m->state_dir) {
		ph_policy_free(policy);
		return log_oom();
	}

	/* Before the worker thread exists: it inherits the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = sd_event_default(&m->event);
	if (r < 0) {
		ph_policy_free(policy);
		return log_error_errno(r, "Cannot create the event loop: %m");
	}
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_terminate, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_terminate, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, m);
	if (r >= 0)
		r = sd_event_set_watchdog(m->event, true);
	if (r >= 0)
		r = sd_event_add_defer(m->event, &m->update_src, on_update, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->update_src, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_defer(m->event, &m->drain_src, on_drain, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->drain_src, SD_EVENT_OFF);
	if (r < 0) {
		ph_policy_free(policy);
		return log_error_errno(r, "Cannot set up the event loop: %m");
	}

	r = ph_ledger_open(ctx, o->state_dir, 0, &m->ledger, &err);
	if (r < 0) {
		ph_policy_free(policy);
		return log_error_errno(r, "%s", err.message);
	}
	if (ph_ledger_get_moved_aside(m->ledger))
		log_warning("The ledger was damaged: kept it as %s and started a new one from the kernel's lists",
			    ph_ledger_get_moved_aside(m->ledger));

	r = ph_recorder_new(ctx, "pmemheald", &m->recorder);
	if (r < 0) {
		ph_policy_free(policy);
		return log_error_errno(r, "Cannot set up the journal recorder: %m");
	}

	r = ph_monitor_new(ctx, m->ledger, &monitor_ops, m, &m->monitor);
	if (r < 0) {
		ph_policy_free(policy);
		return log_error_errno(r, "Cannot enumerate pmem devices: %m");
	}

	r = ph_worker_new(ctx, o->state_dir, policy, &m->worker);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the repair thread: %m");
	r = sd_event_add_io(m->event, &m->worker_src, ph_worker_get_fd(m->worker), EPOLLIN, on_worker, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the repair thread: %m");
	*ret = TAKE_PTR(m);
	return 0;
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	/* The thread first: it may still report into sources freed below. */
	m->worker = ph_worker_free(m->worker);
	sd_event_source_disable_unref(m->worker_src);
	sd_event_source_disable_unref(m->update_src);
	sd_event_source_disable_unref(m->drain_src);
	for (size_t i = m->backlog_head; i < m->n_backlog; i++)
		backlog_item_done(&m->backlog[i]);
	free(m->backlog);
	sd_event_source_disable_unref(m->scrub_src);
	ph_monitor_free(m->monitor);
	ph_recorder_free(m->recorder);
	ph_ledger_free(m->ledger);
	sd_event_unref(m->event);
	ph_ctx_unref(m->ctx);
	free(m->metrics_file);
	free(m->state_dir);
	free(m->status);
	free(m);
	return NULL;
}

int manager_run(struct manager *m)
{
	int r;

	(void)sd_notify(false, "STATUS=Finishing repairs a restart interrupted");
	r = ph_worker_start(m->worker);
	if (r < 0)
		return log_error_errno(r, "Cannot start the repair thread: %m");
	/* sd_event_loop(), with each turn's dispatch timed: the loop must not
	 * block (mapping and repairs are the worker's), and the metrics show
	 * its longest turn. */
	for (;;) {
		uint64_t t0, dt;
		int code = 0;

		r = sd_event_get_state(m->event);
		if (r < 0)
			return r;
		if (r == SD_EVENT_FINISHED) {
			r = sd_event_get_exit_code(m->event, &code);
			return r < 0 ? r : code < 0 ? code : 0;
		}
		r = sd_event_prepare(m->event);
		if (r == 0)
			r = sd_event_wait(m->event, UINT64_MAX);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		t0 = ph_mono_usec();
		r = sd_event_dispatch(m->event);
		if (r < 0)
			return r;
		dt = ph_mono_usec() - t0;
		if (dt > m->metrics.loop_dispatch_max_usec) {
			m->metrics.loop_dispatch_max_usec = dt;
			log_debug("The event loop's longest turn so far: %" PRIu64 " us", dt);
		}
	}
}
