/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Watchers and the monitor that drives them.  A wake-up of any kind leads
 * to the same thing: read every list (a few small sysfs files) and diff
 * against the ledger.  Reading everything is simpler and cannot miss the
 * list that changed alongside the one that woke us (a machine check wakes
 * the region's and the disk's lists at once).
 *
 * udev events come in bursts (reconfiguring a namespace removes and adds
 * several devices), so a reload waits until the burst has been quiet for
 * a moment; that is a debounce, not a wait for readiness.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libudev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lock.h"
#include "source.h"
#include "watch.h"

#define RELOAD_DEBOUNCE_USEC (200 * 1000ULL)

/* A burst of POLLPRI wake-ups becomes one scan.  Every scan reads every
 * list and compares it with the ledger: its cost grows with the number of
 * ranges, and a repair that clears one range of hundreds wakes us once per
 * clear, so one scan per wake-up is quadratic.  A wake-up within a scan's
 * "shadow" (SCAN_SHADOW_FACTOR times the last scan's own cost after it
 * ended, at most SCAN_SHADOW_MAX_USEC) waits for the shadow to end, and all
 * wake-ups meanwhile share that one scan: scans after wake-ups take at
 * most a fifth of the loop's time.  A wake-up after a quiet spell is
 * scanned at once.  Nothing is lost: the deferred scan reads the lists
 * after the last wake-up, and any scan that runs first (periodic, udev)
 * stands for it. */
#define SCAN_SHADOW_FACTOR 4
#define SCAN_SHADOW_MAX_USEC (1000 * 1000ULL)

/* ---- bbwatch ----------------------------------------------------------- */

struct ph_bbwatch {
	int fd;
	char *path;
};

_public_ struct ph_bbwatch *ph_bbwatch_free(struct ph_bbwatch *w)
{
	if (!w)
		return NULL;
	safe_close(w->fd);
	free(w->path);
	free(w);
	return NULL;
}

_public_ int ph_bbwatch_rearm(struct ph_bbwatch *w)
{
	char buf[4096];

	/* Drain the whole attribute: sysfs re-arms on a read from offset 0. */
	for (off_t off = 0;;) {
		ssize_t n = pread(w->fd, buf, sizeof(buf), off);

		if (n < 0)
			return errno == ENODEV || errno == ENXIO || errno == EIO ? -ENODEV : negative_errno();
		if (n < (ssize_t)sizeof(buf))
			return 0;
		off += n;
	}
}

_public_ int ph_bbwatch_open(struct ph_ctx *ctx, const char *path, struct ph_bbwatch **ret)
{
	_cleanup_(ph_bbwatch_freep) struct ph_bbwatch *w = NULL;
	_cleanup_free_ char *p = NULL;
	int r;

	r = ph_ctx_path(ctx, path, &p);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -EBADF;
	w->path = strdup(path);
	if (!w->path)
		return -ENOMEM;
	w->fd = open(p, O_RDONLY | O_CLOEXEC);
	if (w->fd < 0)
		return negative_errno();
	r = ph_bbwatch_rearm(w);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(w);
	return 0;
}

_public_ int ph_bbwatch_get_fd(const struct ph_bbwatch *w)
{
	return w->fd;
}

_public_ const char *ph_bbwatch_get_path(const struct ph_bbwatch *w)
{
	return w->path;
}

/* ---- udev -------------------------------------------------------------- */

struct ph_udevwatch {
	struct udev *udev;
	struct udev_monitor *mon;
};

/* udevd's control socket exists while it runs (what libudev's users check). */
static bool udevd_running(struct ph_ctx *ctx)
{
	_cleanup_free_ char *p = NULL;

	return ph_ctx_path(ctx, "/run/udev/control", &p) == 0 && access(p, F_OK) == 0;
}

_public_ struct ph_udevwatch *ph_udevwatch_free(struct ph_udevwatch *w)
{
	if (!w)
		return NULL;
	udev_monitor_unref(w->mon);
	udev_unref(w->udev);
	free(w);
	return NULL;
}

_public_ int ph_udevwatch_new(struct ph_ctx *ctx, struct ph_udevwatch **ret)
{
	_cleanup_(ph_udevwatch_freep) struct ph_udevwatch *w = NULL;
	static const char *const subsystems[] = { "nd", "dax", "block" };
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->udev = udev_new();
	if (!w->udev)
		return -ENOMEM;
	/* Events after udevd processed them (its rules have run) when udevd
	 * runs; without it (an initramfs, a container) nobody sends those,
	 * and the kernel's own events serve: everything we read is in sysfs,
	 * and devtmpfs creates the device nodes itself. */
	w->mon = udev_monitor_new_from_netlink(w->udev, udevd_running(ctx) ? "udev" : "kernel");
	if (!w->mon) {
		ph_err(ctx, "Cannot create a udev monitor: %m");
		return negative_errno();
	}
	for (size_t i = 0; i < ELEMENTSOF(subsystems); i++) {
		r = udev_monitor_filter_add_match_subsystem_devtype(w->mon, subsystems[i], NULL);
		if (r < 0)
			return r;
	}
	r = udev_monitor_enable_receiving(w->mon);
	if (r < 0) {
		ph_err(ctx, "Cannot listen to udev events: %s", strerror(-r));
		return r;
	}
	*ret = TAKE_PTR(w);
	return 0;
}

_public_ int ph_udevwatch_get_fd(const struct ph_udevwatch *w)
{
	return udev_monitor_get_fd(w->mon);
}

_public_ int ph_udevwatch_receive(struct ph_udevwatch *w, struct ph_uevent *ret)
{
	struct udev_device *d = udev_monitor_receive_device(w->mon);
	const char *action, *subsystem, *sysname;
	int r = 0;

	if (!d)
		return 0;
	action = udev_device_get_action(d);
	subsystem = udev_device_get_subsystem(d);
	sysname = udev_device_get_sysname(d);
	if (action && subsystem && sysname &&
	    (strcmp(subsystem, "block") != 0 || strncmp(sysname, "pmem", 4) == 0)) {
		snprintf(ret->action, sizeof(ret->action), "%s", action);
		snprintf(ret->subsystem, sizeof(ret->subsystem), "%s", subsystem);
		snprintf(ret->sysname, sizeof(ret->sysname), "%s", sysname);
		r = 1;
	}
	udev_device_unref(d);
	return r;
}

/* ---- monitor ----------------------------------------------------------- */

struct watch_entry {
	struct ph_monitor *m;
	struct ph_bbwatch *w;
	sd_event_source *src;
};

struct ph_monitor {
	struct ph_ctx *ctx;
	struct ph_ledger *ledger;
	const struct ph_monitor_ops *ops;
	void *userdata;
	struct ph_topology *topo;
	char *boot_id;

	struct watch_entry *watches;
	size_t n_watches;

	sd_event *event;
	struct ph_udevwatch *udev;
	sd_event_source *udev_src, *rescan_src, *reload_src;
	uint64_t rescan_usec;

	/* wake-ups waiting for the shadow of the last scan to end */
	sd_event_source *pollpri_src;
	char *pollpri_trigger; /* the first one's trigger; NULL when none waits */
	uint64_t scan_end_usec, scan_cost_usec;

	char **errors; /* last error per list, so each is logged once */
	size_t n_errors;
	uint64_t wake_usec;

	char *lock_dir; /* set: each scan writes the ledger under its repair.lock */
	uint64_t lock_wait_usec;

	/* machine checks: this boot's memory_failure() pages, kept current
	 * from the kernel log, and a wake-up when /dev/kmsg has more */
	struct ph_memfail memfail;
	struct ph_pfns protect_tried; /* pages written into a list, or tried */
	bool memfail_warned;
	sd_event_source *kmsg_src;
	int kmsg_src_fd;
};

_public_ uint64_t ph_monitor_get_wake_usec(const struct ph_monitor *m)
{
	return m->wake_usec;
}

static void watch_entry_done(struct watch_entry *e)
{
	sd_event_source_disable_unref(e->src);
	ph_bbwatch_free(e->w);
}

_public_ struct ph_monitor *ph_monitor_free(struct ph_monitor *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_watches; i++)
		watch_entry_done(&m->watches[i]);
	free(m->watches);
	sd_event_source_disable_unref(m->udev_src);
	sd_event_source_disable_unref(m->rescan_src);
	sd_event_source_disable_unref(m->reload_src);
	sd_event_source_disable_unref(m->pollpri_src);
	sd_event_source_disable_unref(m->kmsg_src);
	ph_memfail_done(&m->memfail);
	ph_pfns_done(&m->protect_tried);
	free(m->pollpri_trigger);
	ph_udevwatch_free(m->udev);
	sd_event_unref(m->event);
	ph_topology_free(m->topo);
	for (size_t i = 0; i < m->n_errors; i++)
		free(m->errors[i]);
	free(m->errors);
	free(m->boot_id);
	free(m->lock_dir);
	ph_ctx_unref(m->ctx);
	free(m);
	return NULL;
}

_public_ struct ph_memfail *ph_monitor_get_memfail(struct ph_monitor *m)
{
	return &m->memfail;
}

_public_ const struct ph_topology *ph_monitor_get_topology(const struct ph_monitor *m)
{
	return m->topo;
}

_public_ size_t ph_monitor_n_watches(const struct ph_monitor *m)
{
	return m->n_watches;
}

struct scan_cb {
	struct ph_monitor *m;
	const char *trigger;
	unsigned changes;
};

static void on_change(void *userdata, const struct ph_change *c)
{
	struct scan_cb *s = userdata;

	s->changes++;
	if (s->m->ops && s->m->ops->change)
		s->m->ops->change(s->m->userdata, c, s->trigger);
}

/* Report a source error once, until it changes. */
static void note_errors(struct ph_monitor *m, const struct ph_scan *scan)
{
	char **now = calloc(MAX(scan->n_errors, (size_t)1), sizeof(char *));

	if (!now)
		return;
	for (size_t i = 0; i < scan->n_errors; i++) {
		const struct ph_source_error *e = &scan->errors[i];
		bool seen = false;

		if (asprintf(&now[i], "%s: %s: %s", e->device, e->path, e->message) < 0) {
			now[i] = NULL;
			continue;
		}
		for (size_t k = 0; k < m->n_errors; k++)
			seen = seen || (m->errors[k] && strcmp(m->errors[k], now[i]) == 0);
		if (!seen && m->ops && m->ops->event)
			m->ops->event(m->userdata, PH_MONITOR_SOURCE_ERROR, e->device, now[i]);
	}
	for (size_t k = 0; k < m->n_errors; k++)
		free(m->errors[k]);
	free(m->errors);
	m->errors = now;
	m->n_errors = scan->n_errors;
}

static int on_kmsg(sd_event_source *src, int fd, uint32_t revents, void *userdata);

/* This boot's memory_failure() pages, brought up to date; false when the
 * kernel log cannot be read (said once).  The daemon's loop is woken when
 * /dev/kmsg has more (the follower may reopen it: the source follows). */
static bool follow_memfail(struct ph_monitor *m)
{
	int r = ph_memfail_follow(m->ctx, &m->memfail);

	if (r < 0) {
		if (!m->memfail_warned)
			ph_warn(m->ctx, "Cannot read the kernel log (%s): machine checks are not followed",
				strerror(-r));
		m->memfail_warned = true;
		return false;
	}
	if (m->event && m->kmsg_src_fd != m->memfail.kmsg_fd) {
		m->kmsg_src = sd_event_source_disable_unref(m->kmsg_src);
		m->kmsg_src_fd = -1;
		if (m->memfail.kmsg_fd >= 0 &&
		    sd_event_add_io(m->event, &m->kmsg_src, m->memfail.kmsg_fd, EPOLLIN, on_kmsg, m) >= 0)
			m->kmsg_src_fd = m->memfail.kmsg_fd;
	}
	return true;
}

_public_ int ph_monitor_scan(struct ph_monitor *m, const char *trigger)
{
	_cleanup_(ph_scan_freep) struct ph_scan *scan = NULL;
	struct scan_cb s = { .m = m, .trigger = trigger };
	uint64_t t0 = ph_mono_usec();
	bool mf;
	int r;

	if (strncmp(trigger, "pollpri", 7) != 0)
		m->wake_usec = t0;
	/* This scan reads the lists after every wake-up that waits: it is
	 * theirs too. */
	if (m->pollpri_trigger) {
		free(m->pollpri_trigger);
		m->pollpri_trigger = NULL;
		(void)sd_event_source_set_enabled(m->pollpri_src, SD_EVENT_OFF);
	}
	mf = follow_memfail(m);
	r = ph_source_scan(m->ctx, m->topo, &scan);
	if (r == 0 && mf)
		r = ph_source_memfail(m->ctx, m->topo, &m->memfail.pfns, &m->protect_tried, scan);
	if (r < 0)
		return r;
	note_errors(m, scan);
	if (m->ledger) {
		_cleanup_close_ int lock_fd = -EBADF;

		if (m->lock_dir) {
			r = ph_repair_lock_take(m->lock_dir, m->lock_wait_usec, &lock_fd);
			if (r < 0)
				return r;
		}
		r = ph_ledger_apply(m->ledger, scan->complete_ns, scan->n_complete_ns, scan->obs,
				    scan->n_obs, m->boot_id, ph_now_usec(), on_change, &s);
		if (r < 0) {
			ph_err(m->ctx, "Cannot record the scan in %s: %s", ph_ledger_get_path(m->ledger),
			       strerror(-r));
			return r;
		}
	}
	/* The cost that matters is the whole scan: reading the lists, and
	 * comparing them with the ledger (the larger part). */
	m->scan_end_usec = ph_mono_usec();
	m->scan_cost_usec = m->scan_end_usec - t0;
	if (m->ops && m->ops->scanned)
		m->ops->scanned(m->userdata, trigger, s.changes);
	return (int)MIN(s.changes, (unsigned)INT32_MAX);
}

static int on_pollpri(sd_event_source *src, int fd, uint32_t revents, void *userdata);

static int attach_watch(struct ph_monitor *m, struct watch_entry *e)
{
	int r;

	if (!m->event || e->src)
		return 0;
	r = sd_event_add_io(m->event, &e->src, ph_bbwatch_get_fd(e->w), EPOLLPRI, on_pollpri, e);
	if (r < 0)
		ph_err(m->ctx, "Cannot watch %s: %s", ph_bbwatch_get_path(e->w), strerror(-r));
	return r;
}

/* The set of lists to watch for the current topology. */
static int wanted_paths(const struct ph_topology *t, char ***ret, size_t *ret_n)
{
	char **v = calloc(t->n_namespaces + t->n_regions + 1, sizeof(char *));
	size_t n = 0;
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < t->n_regions; i++)
		r = ph_source_region_list(&t->regions[i], &v[n++]);
	for (size_t i = 0; r == 0 && i < t->n_namespaces; i++) {
		const struct ph_namespace *ns = &t->namespaces[i];

		if (!ns->blockdev || ns->mode == PH_NS_SECTOR)
			continue;
		r = ph_source_device_list(ns, &v[n++]);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Close watches whose file is no longer wanted; open the new ones.  The
 * watches array is rebuilt, so sources are re-pointed at their entries. */
static int sync_watches(struct ph_monitor *m)
{
	char **want = NULL;
	size_t n_want = 0, n = 0;
	struct watch_entry *v;
	int r;

	r = wanted_paths(m->topo, &want, &n_want);
	if (r < 0)
		return r;
	v = calloc(MAX(n_want, (size_t)1), sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_want; i++) {
		struct watch_entry *old = NULL;

		for (size_t k = 0; k < m->n_watches; k++)
			if (m->watches[k].w && strcmp(ph_bbwatch_get_path(m->watches[k].w), want[i]) == 0)
				old = &m->watches[k];
		if (old) {
			v[n] = *old;
			*old = (struct watch_entry){ 0 };
		} else {
			int k = ph_bbwatch_open(m->ctx, want[i], &v[n].w);

			if (k < 0) {
				/* The device may be going away mid-burst; the next
				 * reload or rescan settles it. */
				ph_dbg(m->ctx, "Cannot watch %s: %s", want[i], strerror(-k));
				continue;
			}
		}
		v[n].m = m;
		n++;
	}
	for (size_t k = 0; k < m->n_watches; k++)
		watch_entry_done(&m->watches[k]);
	free(m->watches);
	m->watches = v;
	m->n_watches = n;
	for (size_t i = 0; i < n; i++) {
		if (m->watches[i].src)
			sd_event_source_set_userdata(m->watches[i].src, &m->watches[i]);
		else
			(void)attach_watch(m, &m->watches[i]);
	}
out:
	for (size_t i = 0; i < n_want; i++)
		free(want[i]);
	free(want);
	return r;
}

static struct ph_namespace *ns_find(const struct ph_topology *t, const struct ph_namespace *ns)
{
	for (size_t i = 0; t && i < t->n_namespaces; i++)
		if (strcmp(t->namespaces[i].name, ns->name) == 0 &&
		    strcmp(t->namespaces[i].id, ns->id) == 0)
			return &t->namespaces[i];
	return NULL;
}

static const char *ns_dev(const struct ph_namespace *ns)
{
	return ns->blockdev ? ns->blockdev : ns->chardev ? ns->chardev : ns->last_dev;
}

_public_ int ph_monitor_reload(struct ph_monitor *m)
{
	struct ph_topology *t = NULL;
	int r;

	r = ph_topology_load(m->ctx, &t);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_namespaces; i++) {
		struct ph_namespace *ns = &t->namespaces[i], *old = ns_find(m->topo, ns);

		if (!old) {
			if (m->ops && m->ops->event)
				m->ops->event(m->userdata, PH_MONITOR_DEVICE_ADDED, ns->name, ns_dev(ns));
		} else if (!ns->blockdev && !ns->chardev && ns_dev(old)) {
			ns->last_dev = strdup(ns_dev(old)); /* only a name: NULL is no harm */
		}
	}
	for (size_t i = 0; m->ops && m->ops->event && m->topo && i < m->topo->n_namespaces; i++)
		if (!ns_find(t, &m->topo->namespaces[i]))
			m->ops->event(m->userdata, PH_MONITOR_DEVICE_REMOVED, m->topo->namespaces[i].name,
				      ns_dev(&m->topo->namespaces[i]));
	ph_topology_free(m->topo);
	m->topo = t;
	return sync_watches(m);
}

_public_ int ph_monitor_new(struct ph_ctx *ctx, struct ph_ledger *ledger,
			    const struct ph_monitor_ops *ops, void *userdata, struct ph_monitor **ret)
{
	_cleanup_(ph_monitor_freep) struct ph_monitor *m = NULL;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ctx = ph_ctx_ref(ctx);
	m->ledger = ledger;
	m->ops = ops;
	m->userdata = userdata;
	m->memfail = PH_MEMFAIL_INIT;
	m->kmsg_src_fd = -1;
	r = ph_read_boot_id(ctx, &m->boot_id);
	if (r < 0) {
		ph_err(ctx, "Cannot read the boot id: %s", strerror(-r));
		return r;
	}
	r = ph_topology_load(ctx, &m->topo);
	if (r < 0)
		return r;
	r = sync_watches(m);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(m);
	return 0;
}

/* ---- event handlers ----------------------------------------------------- */

static int on_pollpri_due(sd_event_source *src, uint64_t usec, void *userdata);

static int on_pollpri(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct watch_entry *e = userdata;
	struct ph_monitor *m = e->m;
	_cleanup_free_ char *trigger = NULL;
	uint64_t until;
	int r;

	if (!m->pollpri_trigger)
		m->wake_usec = ph_mono_usec(); /* the first of a burst: latency counts from it */
	/* kernfs reports EPOLLERR|EPOLLPRI on every notification, not only
	 * after removal: only a failed read says the device has gone. */
	r = ph_bbwatch_rearm(e->w);
	if (r < 0) {
		/* Gone: stop watching; udev's remove event re-syncs the rest. */
		ph_dbg(m->ctx, "%s went away", ph_bbwatch_get_path(e->w));
		e->src = sd_event_source_disable_unref(e->src);
		return 0;
	}
	if (m->pollpri_trigger)
		return 0; /* a scan is already due, and will read this list too */
	if (asprintf(&trigger, "pollpri %s", ph_bbwatch_get_path(e->w)) < 0)
		return 0;
	until = m->scan_end_usec + MIN(m->scan_cost_usec * SCAN_SHADOW_FACTOR, SCAN_SHADOW_MAX_USEC);
	if (m->wake_usec < until) {
		if (!m->pollpri_src)
			r = sd_event_add_time(m->event, &m->pollpri_src, CLOCK_MONOTONIC, until, 0,
					      on_pollpri_due, m);
		else
			r = sd_event_source_set_time(m->pollpri_src, until);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->pollpri_src, SD_EVENT_ONESHOT);
		if (r >= 0) {
			m->pollpri_trigger = TAKE_PTR(trigger);
			return 0;
		}
		ph_warn(m->ctx, "Cannot defer the scan after a wake-up of %s: %s, scanning now",
			ph_bbwatch_get_path(e->w), strerror(-r));
	}
	r = ph_monitor_scan(m, trigger);
	if (r < 0)
		ph_warn(m->ctx, "Scan after a wake-up of %s failed: %s, ignoring",
			ph_bbwatch_get_path(e->w), strerror(-r));
	return 0;
}

/* The shadow of the last scan has ended: one scan for every wake-up in it. */
static int on_pollpri_due(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ph_monitor *m = userdata;
	_cleanup_free_ char *trigger = TAKE_PTR(m->pollpri_trigger);
	int r;

	if (!trigger)
		return 0;
	r = ph_monitor_scan(m, trigger);
	if (r < 0)
		ph_warn(m->ctx, "Scan after a wake-up (%s) failed: %s, ignoring", trigger, strerror(-r));
	return 0;
}

static int on_reload(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ph_monitor *m = userdata;
	int r;

	r = ph_monitor_reload(m);
	if (r < 0) {
		ph_warn(m->ctx, "Cannot enumerate pmem after a udev event: %s, will retry on the next", strerror(-r));
		return 0;
	}
	r = ph_monitor_scan(m, "udev");
	if (r < 0)
		ph_warn(m->ctx, "Scan after a udev event failed: %s, ignoring", strerror(-r));
	return 0;
}

static int on_udev(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ph_monitor *m = userdata;
	struct ph_uevent ev;
	bool any = false;
	int r;

	while ((r = ph_udevwatch_receive(m->udev, &ev)) > 0) {
		ph_dbg(m->ctx, "udev: %s %s %s", ev.action, ev.subsystem, ev.sysname);
		any = true;
	}
	if (!any)
		return 0;
	/* (Re)start the debounce: reload once the burst is over. */
	r = sd_event_source_set_time_relative(m->reload_src, RELOAD_DEBOUNCE_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->reload_src, SD_EVENT_ONESHOT);
	if (r < 0)
		ph_warn(m->ctx, "Cannot schedule a reload: %s, ignoring", strerror(-r));
	return 0;
}

static int on_rescan(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ph_monitor *m = userdata;
	int r;

	r = ph_monitor_scan(m, "rescan");
	if (r < 0)
		ph_warn(m->ctx, "Periodic scan failed: %s, ignoring", strerror(-r));
	r = sd_event_source_set_time_relative(src, m->rescan_usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
	return r < 0 ? r : 0;
}

/* The kernel logged something: a machine check adds a page to this boot's
 * memory failures, and a scan records it at once (no list changes). */
static int on_kmsg(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ph_monitor *m = userdata;
	size_t before = m->memfail.pfns.n;
	int r;

	(void)src;
	(void)fd;
	(void)revents;
	m->wake_usec = ph_mono_usec();
	if (!follow_memfail(m) || m->memfail.pfns.n == before)
		return 0;
	r = ph_monitor_scan(m, "memory-failure");
	if (r < 0)
		ph_err(m->ctx, "Scan after a machine check failed: %s", strerror(-r));
	return 0;
}

_public_ int ph_monitor_attach(struct ph_monitor *m, sd_event *e, uint64_t rescan_usec)
{
	int r;

	if (m->event)
		return -EBUSY;
	m->event = sd_event_ref(e);
	m->rescan_usec = rescan_usec;
	for (size_t i = 0; i < m->n_watches; i++) {
		r = attach_watch(m, &m->watches[i]);
		if (r < 0)
			return r;
	}
	r = ph_udevwatch_new(m->ctx, &m->udev);
	if (r < 0)
		return r;
	r = sd_event_add_io(e, &m->udev_src, ph_udevwatch_get_fd(m->udev), EPOLLIN, on_udev, m);
	if (r < 0)
		return r;
	r = sd_event_add_time_relative(e, &m->reload_src, CLOCK_MONOTONIC, RELOAD_DEBOUNCE_USEC, 0,
				       on_reload, m);
	if (r < 0)
		return r;
	r = sd_event_source_set_enabled(m->reload_src, SD_EVENT_OFF);
	if (r < 0)
		return r;
	if (rescan_usec > 0) {
		r = sd_event_add_time_relative(e, &m->rescan_src, CLOCK_MONOTONIC, rescan_usec, 0,
					       on_rescan, m);
		if (r < 0)
			return r;
	}
	return 0;
}

_public_ int ph_monitor_set_repair_lock(struct ph_monitor *m, const char *state_dir, uint64_t wait_usec)
{
	char *d = NULL;

	if (state_dir && !(d = strdup(state_dir)))
		return -ENOMEM;
	free(m->lock_dir);
	m->lock_dir = d;
	m->lock_wait_usec = wait_usec;
	return 0;
}

_public_ int ph_monitor_set_rescan(struct ph_monitor *m, uint64_t rescan_usec)
{
	int r;

	if (!m->event)
		return -ENOTCONN;
	m->rescan_usec = rescan_usec;
	if (rescan_usec == 0)
		return m->rescan_src ? sd_event_source_set_enabled(m->rescan_src, SD_EVENT_OFF) : 0;
	if (!m->rescan_src)
		return sd_event_add_time_relative(m->event, &m->rescan_src, CLOCK_MONOTONIC, rescan_usec, 0,
						  on_rescan, m);
	r = sd_event_source_set_time_relative(m->rescan_src, rescan_usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->rescan_src, SD_EVENT_ONESHOT);
	return r < 0 ? r : 0;
}
