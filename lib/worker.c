/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker thread.  One mutex guards everything both threads touch: the
 * request queue, the flags, the report queue and the eventfd's count (a
 * report is pushed and the eventfd written under the mutex, and the eventfd
 * is drained under it when the report queue is found empty, so the fd is
 * readable exactly while reports wait).  Everything else (ledger, topology,
 * policy in use, repairer, the lock's fd) belongs to the thread alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "idset.h"
#include "ledger.h"
#include "range-row.h"
#include "record.h"
#include "scrub.h"
#include "topology.h"
#include "lock.h"
#include "worker.h"

#define LOCK_RETRY_NSEC (500 * 1000000L)

struct ph_worker {
	struct ph_ctx *ctx; /* the thread's own */
	char *state_dir, *lock_path;
	pthread_t thread;
	bool started;
	int efd;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* under mu: requests */
	int64_t *queue;
	size_t q_head, q_n, q_cap;
	struct ph_idset queued; /* the ids in queue[q_head..q_n) */
	char **scrubs;
	size_t n_scrubs, scrubs_cap;
	struct ph_policy *next_policy;
	bool topology_dirty, stop;
	int64_t current;
	/* under mu: reports */
	struct ph_worker_report *reports;
	size_t r_head, r_n, r_cap;

	/* the thread's alone */
	struct ph_policy *policy;
	struct ph_ledger *ledger;
	struct ph_topology *topo;
	struct ph_recorder *rec; /* mapped, planned, repaired...: the repairer's events */
	/* memory-failure pages, followed for the thread's lifetime: a new
	 * follower per range would read the whole journal of this boot each
	 * time (hundreds of ms a range under load) */
	struct ph_memfail memfail;
	int lock_fd;
	bool locked;
};

_public_ void ph_worker_report_done(struct ph_worker_report *rep)
{
	ph_repair_result_done(&rep->res);
	free(rep->detail);
	memset(rep, 0, sizeof(*rep));
}

/* ---- the loop's side ----------------------------------------------------- */

_public_ int ph_worker_new(struct ph_ctx *ctx, const char *state_dir, struct ph_policy *policy,
			   struct ph_worker **ret)
{
	_cleanup_(ph_worker_freep) struct ph_worker *w = NULL;
	pthread_condattr_t ca;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w) {
		ph_policy_free(policy);
		return -ENOMEM;
	}
	w->policy = policy;
	w->efd = -EBADF;
	w->lock_fd = -EBADF;
	w->memfail = PH_MEMFAIL_INIT;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = ph_ctx_new_like(ctx, &w->ctx);
	if (r < 0)
		return r;
	w->state_dir = strdup(state_dir);
	if (!w->state_dir || asprintf(&w->lock_path, "%s/repair.lock", state_dir) < 0)
		return -ENOMEM;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0)
		return negative_errno();
	*ret = TAKE_PTR(w);
	return 0;
}

static void *worker_main(void *userdata);

_public_ int ph_worker_start(struct ph_worker *w)
{
	sigset_t all, old;
	int r;

	if (w->started)
		return -EBUSY;
	/* Signals are the loop's: the thread starts with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	w->started = true;
	return 0;
}

_public_ void ph_worker_stop(struct ph_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

_public_ struct ph_worker *ph_worker_free(struct ph_worker *w)
{
	if (!w)
		return NULL;
	if (w->started) {
		ph_worker_stop(w);
		pthread_join(w->thread, NULL);
	}
	for (size_t i = w->r_head; i < w->r_n; i++)
		ph_worker_report_done(&w->reports[i]);
	free(w->reports);
	free(w->queue);
	ph_idset_done(&w->queued);
	for (size_t i = 0; i < w->n_scrubs; i++)
		free(w->scrubs[i]);
	free(w->scrubs);
	ph_policy_free(w->next_policy);
	ph_policy_free(w->policy);
	safe_close(w->efd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w->state_dir);
	free(w->lock_path);
	ph_ctx_unref(w->ctx);
	free(w);
	return NULL;
}

_public_ int ph_worker_get_fd(const struct ph_worker *w)
{
	return w->efd;
}

_public_ int ph_worker_next_report(struct ph_worker *w, struct ph_worker_report *ret)
{
	int r = 0;

	pthread_mutex_lock(&w->mu);
	if (w->r_head < w->r_n) {
		*ret = w->reports[w->r_head++];
		if (w->r_head == w->r_n)
			w->r_head = w->r_n = 0;
		r = 1;
	} else {
		uint64_t n;

		(void)!read(w->efd, &n, sizeof(n)); /* drained: not readable until the next report */
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}

static bool queued_locked(struct ph_worker *w, int64_t id)
{
	return w->current == id || ph_idset_contains(&w->queued, id);
}

_public_ int ph_worker_queue_range(struct ph_worker *w, int64_t id)
{
	int r = 1;

	pthread_mutex_lock(&w->mu);
	if (queued_locked(w, id))
		r = 0;
	else if (ph_idset_reserve(&w->queued) < 0 || PH_GROW(w->queue, w->q_cap, w->q_n + 1, 64) < 0)
		r = -ENOMEM;
	else {
		w->queue[w->q_n++] = id;
		ph_idset_put(&w->queued, id);
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}

_public_ int ph_worker_queue_scrub(struct ph_worker *w, const char *bus)
{
	char *s = strdup(bus);
	int r = 0;

	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&w->mu);
	if (PH_GROW(w->scrubs, w->scrubs_cap, w->n_scrubs + 1, 4) < 0)
		r = -ENOMEM;
	else {
		w->scrubs[w->n_scrubs++] = TAKE_PTR(s);
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->mu);
	free(s);
	return r;
}

_public_ void ph_worker_set_policy(struct ph_worker *w, struct ph_policy *policy)
{
	struct ph_policy *old;

	pthread_mutex_lock(&w->mu);
	old = w->next_policy;
	w->next_policy = policy;
	pthread_mutex_unlock(&w->mu);
	ph_policy_free(old); /* a newer one came before the thread took it */
}

_public_ void ph_worker_topology_changed(struct ph_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->topology_dirty = true;
	pthread_mutex_unlock(&w->mu);
}

_public_ size_t ph_worker_get_pending(struct ph_worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->q_n - w->q_head + (w->current != 0);
	pthread_mutex_unlock(&w->mu);
	return n;
}

uint64_t ph_worker_get_dedup_probes(struct ph_worker *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->mu);
	n = w->queued.probes;
	pthread_mutex_unlock(&w->mu);
	return n;
}

_public_ int64_t ph_worker_get_current(struct ph_worker *w)
{
	int64_t id;

	pthread_mutex_lock(&w->mu);
	id = w->current;
	pthread_mutex_unlock(&w->mu);
	return id;
}

/* ---- the thread's side --------------------------------------------------- */

/* Hand a report over.  The end of a range's repair (DONE) also ends it
 * as the current one, under the same lock, so that the loop never sees
 * the report while the range still counts as pending. */
static void push(struct ph_worker *w, struct ph_worker_report *rep)
{
	static const uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	if (rep->type == PH_WORKER_DONE)
		w->current = 0;
	if (PH_GROW(w->reports, w->r_cap, w->r_n + 1, 16) < 0) {
		/* Not worth dying for: the ledger has the facts. */
		ph_err(w->ctx, "Out of memory for a report of the worker, dropping it");
		ph_worker_report_done(rep);
	} else {
		w->reports[w->r_n++] = *rep;
		memset(rep, 0, sizeof(*rep));
		(void)!write(w->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->mu);
}

/* Take the repair lock, waiting for `pmemheal repair` to let go of it.
 * -ECANCELED when asked to stop meanwhile. */
static int take_lock(struct ph_worker *w)
{
	bool waited = false;

	if (w->locked)
		return 0;
	if (w->lock_fd < 0) {
		int k = ph_repair_lock_open(w->state_dir, NULL, &w->lock_fd);

		if (k < 0) {
			ph_err(w->ctx, "Cannot open %s: %s", w->lock_path, strerror(-k));
			return k;
		}
	}
	for (;;) {
		struct timespec until;
		int k = ph_repair_lock_try(w->lock_fd);

		if (k == 0)
			break;
		if (k != -EWOULDBLOCK) {
			ph_err(w->ctx, "Cannot lock %s: %s", w->lock_path, strerror(-k));
			return k;
		}
		if (!waited) {
			struct ph_worker_report rep = { .type = PH_WORKER_LOCK_WAIT };

			ph_notice(w->ctx, "%s is held (pmemheal repair is running); waiting for it", w->lock_path);
			rep.detail = strdup(w->lock_path);
			push(w, &rep);
			waited = true;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += LOCK_RETRY_NSEC;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w->mu);
		if (!w->stop)
			pthread_cond_timedwait(&w->cond, &w->mu, &until);
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			return -ECANCELED;
		}
		pthread_mutex_unlock(&w->mu);
	}
	w->locked = true;
	if (waited)
		push(w, &(struct ph_worker_report){ .type = PH_WORKER_LOCKED });
	return 0;
}

static void drop_lock(struct ph_worker *w)
{
	if (!w->locked)
		return;
	(void)flock(w->lock_fd, LOCK_UN);
	w->locked = false;
}

static int copy_row(void *userdata, const struct ph_range_row *row)
{
	return ph_range_row_copy(row, userdata);
}

static void repair_one(struct ph_worker *w, int64_t id)
{
	_cleanup_(ph_repairer_freep) struct ph_repairer *rep = NULL;
	struct ph_worker_report done = { .type = PH_WORKER_DONE, .range_id = id };
	struct ph_range_row_copy c = { 0 };
	int k;

	k = ph_ledger_get_range(w->ledger, id, copy_row, &c);
	if (k == -ENOENT || (k == 0 && !ph_range_row_repairable(&c.row))) {
		/* merged into another range, or settled since it was queued */
		done.skipped = true;
		goto out;
	}
	if (k == 0)
		k = take_lock(w);
	if (k == -ECANCELED) {
		done.skipped = true;
		goto out;
	}
	if (k == 0) {
		push(w, &(struct ph_worker_report){ .type = PH_WORKER_STARTED, .range_id = id });
		k = ph_repairer_new(w->ctx, w->ledger, w->policy, w->topo, &rep);
	}
	if (k == 0) {
		ph_repairer_set_recorder(rep, w->rec);
		ph_repairer_set_memfail(rep, &w->memfail);
		k = ph_repair_range(rep, &c.row, &done.res);
	}
out:
	done.error = k;
	ph_range_row_copy_done(&c);
	push(w, &done);
}

/* Apply what the loop changed since the last range: a new policy, a new
 * topology (on failure the old one is kept and tried again next time). */
static void refresh(struct ph_worker *w)
{
	struct ph_policy *p;
	bool dirty;

	pthread_mutex_lock(&w->mu);
	p = TAKE_PTR(w->next_policy);
	dirty = w->topology_dirty;
	w->topology_dirty = false;
	pthread_mutex_unlock(&w->mu);
	if (p) {
		ph_policy_free(w->policy);
		w->policy = p;
	}
	if (dirty || !w->topo) {
		struct ph_topology *t = NULL;
		int k = ph_topology_load(w->ctx, &t);

		if (k < 0) {
			ph_warn(w->ctx, "Cannot enumerate pmem devices: %s, keeping the old list", strerror(-k));
			pthread_mutex_lock(&w->mu);
			w->topology_dirty = true;
			pthread_mutex_unlock(&w->mu);
			return;
		}
		ph_topology_free(w->topo);
		w->topo = t;
	}
}

static int resume(struct ph_worker *w)
{
	_cleanup_(ph_repairer_freep) struct ph_repairer *rep = NULL;
	struct ph_worker_report rr = { .type = PH_WORKER_RESUMED };
	struct ph_error err = { { 0 } };
	int k;

	k = ph_ledger_open(w->ctx, w->state_dir, 0, &w->ledger, &err);
	if (k < 0) {
		rr.detail = strdup(err.message);
		goto out;
	}
	/* Without a journal the repairs still happen; only their entries are lost. */
	if (ph_recorder_new(w->ctx, "pmemheald", &w->rec) < 0)
		ph_warn(w->ctx, "Cannot record repairs in the journal: out of memory");
	refresh(w);
	if (!w->topo) {
		k = -ENODEV;
		rr.detail = strdup("cannot enumerate pmem devices");
		goto out;
	}
	k = take_lock(w);
	if (k == 0)
		k = ph_repairer_new(w->ctx, w->ledger, w->policy, w->topo, &rep);
	if (k == 0) {
		ph_repairer_set_recorder(rep, w->rec);
		ph_repairer_set_memfail(rep, &w->memfail);
		k = ph_repairer_resume(rep);
	}
	if (k > 0) {
		rr.jobs = (unsigned)k;
		k = 0;
	}
out:
	rr.error = k;
	push(w, &rr);
	return k;
}

static void *worker_main(void *userdata)
{
	struct ph_worker *w = userdata;

	if (resume(w) < 0)
		goto out;
	for (;;) {
		char *scrub = NULL;
		int64_t id = 0;

		pthread_mutex_lock(&w->mu);
		w->current = 0;
		while (!w->stop && w->q_head == w->q_n && w->n_scrubs == 0) {
			if (w->locked) {
				/* Idle: let `pmemheal repair` in. */
				pthread_mutex_unlock(&w->mu);
				drop_lock(w);
				pthread_mutex_lock(&w->mu);
				continue;
			}
			pthread_cond_wait(&w->cond, &w->mu);
		}
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		if (w->n_scrubs > 0) {
			scrub = w->scrubs[0];
			memmove(w->scrubs, w->scrubs + 1, (w->n_scrubs - 1) * sizeof(char *));
			w->n_scrubs--;
		} else {
			id = w->queue[w->q_head++];
			ph_idset_remove(&w->queued, id);
			if (w->q_head == w->q_n)
				w->q_head = w->q_n = 0;
			w->current = id;
		}
		pthread_mutex_unlock(&w->mu);

		refresh(w);
		if (scrub) {
			struct ph_worker_report rep = { .type = PH_WORKER_SCRUB, .detail = scrub };

			rep.error = ph_scrub_start(w->ctx, scrub);
			push(w, &rep);
			continue;
		}
		repair_one(w, id);
	}
out:
	drop_lock(w);
	w->lock_fd = safe_close(w->lock_fd);
	w->ledger = ph_ledger_free(w->ledger);
	w->topo = ph_topology_free(w->topo);
	w->rec = ph_recorder_free(w->rec);
	ph_memfail_done(&w->memfail);
	pthread_mutex_lock(&w->mu);
	w->current = 0;
	pthread_mutex_unlock(&w->mu);
	push(w, &(struct ph_worker_report){ .type = PH_WORKER_STOPPED });
	return NULL;
}
