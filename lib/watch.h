/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Watchers: how poison is noticed without polling constantly.
 *   - POLLPRI on every region's and pmem disk's badblocks file: the kernel
 *     wakes it when poison is cleared, and on NFIT when a machine check or
 *     an ARS completion adds some (a sysfs write does not wake it);
 *   - a udev monitor for nd, dax and block devices: namespaces come and go;
 *   - a rescan timer, because some poison arrives with no wake-up at all.
 * Each is an fd plus a handler; ph_monitor puts them on an sd-event loop,
 * scans on every wake-up and reports ledger changes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "ctx.h"
#include "ledger.h"
#include "memfail.h"
#include "topology.h"

/* ---- one badblocks file ------------------------------------------------ */

struct ph_bbwatch;

/* path is the system path ("/sys/block/pmem0/badblocks"), opened under the
 * context's root.  Opening reads it once, which arms POLLPRI. */
int ph_bbwatch_open(struct ph_ctx *ctx, const char *path, struct ph_bbwatch **ret);
struct ph_bbwatch *ph_bbwatch_free(struct ph_bbwatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_bbwatch *, ph_bbwatch_free);
int ph_bbwatch_get_fd(const struct ph_bbwatch *w);
const char *ph_bbwatch_get_path(const struct ph_bbwatch *w);
/* After a wake-up: read from offset 0 again, or a level-triggered poll
 * spins.  -ENODEV when the device has gone (the fd then reports
 * EPOLLERR|EPOLLPRI forever: close it). */
int ph_bbwatch_rearm(struct ph_bbwatch *w);

/* ---- udev -------------------------------------------------------------- */

struct ph_uevent {
	char action[16];    /* add, remove, change, bind, unbind, ... */
	char subsystem[16]; /* nd, dax, block */
	char sysname[64];   /* namespace0.0, pmem0, dax0.0 */
};

struct ph_udevwatch;

int ph_udevwatch_new(struct ph_ctx *ctx, struct ph_udevwatch **ret);
struct ph_udevwatch *ph_udevwatch_free(struct ph_udevwatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_udevwatch *, ph_udevwatch_free);
int ph_udevwatch_get_fd(const struct ph_udevwatch *w);
/* 1 and *ret for an event about pmem (block devices other than pmem* are
 * dropped), 0 when there was nothing (or nothing relevant) to read. */
int ph_udevwatch_receive(struct ph_udevwatch *w, struct ph_uevent *ret);

/* ---- the monitor ------------------------------------------------------- */

struct ph_monitor;

enum ph_monitor_event {
	PH_MONITOR_DEVICE_ADDED,
	PH_MONITOR_DEVICE_REMOVED,
	PH_MONITOR_SOURCE_ERROR, /* a list could not be read (detail says why) */
};

struct ph_monitor_ops {
	/* a ledger change, and what noticed it ("rescan", "pollpri /sys/...",
	 * "udev", "start") */
	void (*change)(void *userdata, const struct ph_change *c, const char *trigger);
	void (*event)(void *userdata, enum ph_monitor_event ev, const char *name, const char *detail);
	/* after every scan, with the number of changes it made */
	void (*scanned)(void *userdata, const char *trigger, unsigned changes);
};

/* ledger may be NULL: then changes are computed against nothing and only
 * the topology and watchers are maintained (a read-only observer). */
int ph_monitor_new(struct ph_ctx *ctx, struct ph_ledger *ledger, const struct ph_monitor_ops *ops,
		   void *userdata, struct ph_monitor **ret);
struct ph_monitor *ph_monitor_free(struct ph_monitor *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_monitor *, ph_monitor_free);

/* Put the watchers and a rescan timer (every rescan_usec; 0: none) on e. */
int ph_monitor_attach(struct ph_monitor *m, sd_event *e, uint64_t rescan_usec);
/* Change the rescan period (0: none); the next rescan comes that long
 * from now.  Only after ph_monitor_attach(). */
/* Write each scan into the ledger only under state_dir's repair.lock,
 * waiting up to wait_usec for it; a scan that cannot take it changes
 * nothing and fails with -EWOULDBLOCK (or the error opening the lock).
 * The lock is let go after each scan.  NULL: no lock (the default; the
 * daemon and pmemheal repair hold it themselves while they repair). */
int ph_monitor_set_repair_lock(struct ph_monitor *m, const char *state_dir, uint64_t wait_usec);
int ph_monitor_set_rescan(struct ph_monitor *m, uint64_t rescan_usec);
/* Read every list now and apply it to the ledger. */
int ph_monitor_scan(struct ph_monitor *m, const char *trigger);
/* Enumerate again (after hotplug) and re-sync the watchers. */
int ph_monitor_reload(struct ph_monitor *m);

const struct ph_topology *ph_monitor_get_topology(const struct ph_monitor *m);
/* This boot's memory_failure() pages as the monitor's scans keep them (a
 * repairer on the same thread can share them: one read of the kernel log). */
struct ph_memfail *ph_monitor_get_memfail(struct ph_monitor *m);
/* CLOCK_MONOTONIC (microseconds) of the wake-up that started the current
 * or last scan: how long after it a change was reported is our latency. */
uint64_t ph_monitor_get_wake_usec(const struct ph_monitor *m);
size_t ph_monitor_n_watches(const struct ph_monitor *m);
