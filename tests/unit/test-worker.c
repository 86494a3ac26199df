/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The worker thread and the metrics file: reports come back in order
 * through the eventfd (the resume first, the stop last), ranges are
 * deduplicated and skipped once settled, a repair lock held by someone
 * else is waited for (and a stop while waiting is honoured), and the
 * Prometheus file is complete and replaced whole.  No pmem needed: a
 * range whose namespace is absent fails to plan, which is an outcome too.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <cmocka.h>

#include "faketree.h"
#include "idset.h"
#include "ledger.h"
#include "metrics.h"
#include "worker.h"

#define NS "0d9c1f4e-7f0a-4d55-8a63-5f8e2b9c1a77"

struct fixture {
	char *dir;
	struct ph_ctx *ctx;
	struct ph_ledger *l;
	int64_t ids[2];
};

static void keep_id(void *userdata, const struct ph_change *c)
{
	struct fixture *f = userdata;

	f->ids[c->row.start == 8 ? 0 : 1] = c->row.id;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	static const char *const ns_ids[] = { NS };
	struct ph_observation obs[] = {
		{ .ns_id = NS, .device = "pmem7", .start = 8, .count = 8, .origin = PH_ORIGIN_DEVICE },
		{ .ns_id = NS, .device = "pmem7", .start = 64, .count = 8, .origin = PH_ORIGIN_DEVICE },
	};
	struct ph_error err;

	f->dir = fake_root_new();
	assert_int_equal(ph_ctx_new(&f->ctx), 0);
	assert_int_equal(ph_ledger_open(f->ctx, f->dir, 0, &f->l, &err), 0);
	assert_int_equal(ph_ledger_apply(f->l, ns_ids, 1, obs, 2, "boot", ph_now_usec(), keep_id, f), 0);
	assert_true(f->ids[0] > 0 && f->ids[1] > 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ph_ledger_free(f->l);
	ph_ctx_unref(f->ctx);
	fake_root_free(f->dir);
	free(f);
	return 0;
}

static struct ph_policy *empty_policy(struct fixture *f)
{
	struct ph_policy *p = NULL;
	char dir[4096];
	const char *dirs[] = { dir };

	snprintf(dir, sizeof(dir), "/conf");
	assert_int_equal(ph_ctx_set_root(f->ctx, f->dir), 0);
	assert_int_equal(ph_policy_load(f->ctx, dirs, 1, &p, NULL), 0);
	assert_int_equal(ph_ctx_set_root(f->ctx, "/"), 0);
	return p;
}

/* The next report, waiting on the eventfd (at most 10 s). */
static void next(struct ph_worker *w, struct ph_worker_report *rep)
{
	for (int i = 0; i < 100; i++) {
		struct pollfd p = { .fd = ph_worker_get_fd(w), .events = POLLIN };

		if (ph_worker_next_report(w, rep) > 0)
			return;
		assert_true(poll(&p, 1, 100) >= 0);
	}
	fail_msg("no report from the worker in 10 s");
}

static void test_reports(void **state)
{
	struct fixture *f = *state;
	struct ph_worker *w = NULL;
	struct ph_worker_report rep;

	assert_int_equal(ph_worker_new(f->ctx, f->dir, empty_policy(f), &w), 0);
	/* queued before the start: served after the resume */
	assert_int_equal(ph_worker_queue_range(w, f->ids[0]), 1);
	assert_int_equal(ph_worker_queue_range(w, f->ids[0]), 0); /* once */
	assert_int_equal(ph_worker_queue_range(w, 999999), 1);    /* no such range */
	assert_int_equal(ph_worker_get_pending(w), 2);
	assert_int_equal(ph_worker_start(w), 0);

	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_RESUMED);
	assert_int_equal(rep.error, 0);
	assert_int_equal(rep.jobs, 0);
	ph_worker_report_done(&rep);

	/* The namespace is not on this machine: planning fails, and says so. */
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_STARTED);
	assert_int_equal(rep.range_id, f->ids[0]);
	ph_worker_report_done(&rep);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_DONE);
	assert_int_equal(rep.range_id, f->ids[0]);
	assert_false(rep.skipped);
	assert_int_equal(ph_outcome_of(&rep.res, rep.error), PH_OUTCOME_FAILED);
	assert_non_null(rep.res.detail);
	assert_non_null(strstr(rep.res.detail, "is not present"));
	ph_worker_report_done(&rep);

	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_DONE);
	assert_int_equal(rep.range_id, 999999);
	assert_true(rep.skipped);
	ph_worker_report_done(&rep);

	/* A range the kernel no longer lists is settled: skipped. */
	{
		static const char *const ns_ids[] = { NS };
		struct ph_observation one = { .ns_id = NS, .device = "pmem7", .start = 8, .count = 8,
					      .origin = PH_ORIGIN_DEVICE };

		assert_int_equal(ph_ledger_apply(f->l, ns_ids, 1, &one, 1, "boot", ph_now_usec(), NULL, NULL), 0);
	}
	assert_int_equal(ph_worker_queue_range(w, f->ids[1]), 1);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_DONE);
	assert_int_equal(rep.range_id, f->ids[1]);
	assert_true(rep.skipped);
	ph_worker_report_done(&rep);
	assert_int_equal(ph_worker_get_pending(w), 0);

	ph_worker_stop(w);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_STOPPED);
	ph_worker_report_done(&rep);
	assert_int_equal(ph_worker_next_report(w, &rep), 0);
	ph_worker_free(w);
}

#define MANY 100000

/* Distinct ids spread over 2^40 (an odd multiplier is a bijection modulo a
 * power of two), offset past the sequential ones. */
static int64_t scattered(int64_t i)
{
	return (int64_t)(((uint64_t)i * UINT64_C(2654435761)) & ((UINT64_C(1) << 40) - 1)) + (INT64_C(1) << 41);
}

/* 10^5 ranges at start (and again on each SIGHUP): each is queued once, and
 * telling a queued id apart costs a few comparisons, not a walk of the
 * whole queue (that was 10^10 comparisons, seconds in the event loop). */
static void test_dedup_many(void **state)
{
	struct fixture *f = *state;
	struct ph_worker *w = NULL;
	uint64_t ops = 0;

	assert_int_equal(ph_worker_new(f->ctx, f->dir, empty_policy(f), &w), 0);
	for (int64_t i = 1; i <= MANY; i++) {
		assert_int_equal(ph_worker_queue_range(w, i), 1);
		assert_int_equal(ph_worker_queue_range(w, scattered(i)), 1);
		ops += 2;
	}
	assert_int_equal(ph_worker_get_pending(w), 2 * MANY);
	/* the rescan after a SIGHUP queues them all again: nothing is added */
	for (int64_t i = MANY; i >= 1; i--) {
		assert_int_equal(ph_worker_queue_range(w, scattered(i)), 0);
		assert_int_equal(ph_worker_queue_range(w, i), 0);
		ops += 2;
	}
	assert_int_equal(ph_worker_get_pending(w), 2 * MANY);
	/* near misses are new */
	assert_int_equal(ph_worker_queue_range(w, MANY + 1), 1);
	assert_int_equal(ph_worker_queue_range(w, scattered(MANY + 1)), 1);
	assert_int_equal(ph_worker_queue_range(w, -1), 1);
	ops += 3;
	assert_int_equal(ph_worker_get_pending(w), 2 * MANY + 3);
	if (ph_worker_get_dedup_probes(w) > 4 * ops)
		fail_msg("%" PRIu64 " comparisons for %" PRIu64 " queue calls", ph_worker_get_dedup_probes(w), ops);
	ph_worker_free(w);
}

/* Random adds and removals against a plain array of flags: deletion keeps
 * every other member findable (probe runs stay unbroken). */
static void test_idset(void **state)
{
	enum { KEYS = 3000 };
	static bool ref[KEYS];
	struct ph_idset s = { 0 };
	unsigned seed = 4242;
	size_t n = 0;

	for (int round = 0; round < 200000; round++) {
		int64_t k = rand_r(&seed) % KEYS;
		int64_t id = k % 2 ? k : -k * 1000003; /* negative and far apart too */

		if (rand_r(&seed) % 3) {
			assert_int_equal(ph_idset_contains(&s, id), ref[k]);
			if (!ref[k]) {
				assert_int_equal(ph_idset_reserve(&s), 0);
				ph_idset_put(&s, id);
				ref[k] = true;
				n++;
			}
		} else {
			ph_idset_remove(&s, id);
			n -= ref[k];
			ref[k] = false;
		}
		assert_int_equal(s.n, n);
		if (round % 10000 == 0)
			for (int64_t j = 0; j < KEYS; j++)
				assert_int_equal(ph_idset_contains(&s, j % 2 ? j : -j * 1000003), ref[j]);
	}
	assert_true(s.n > KEYS / 4 && s.n * 2 <= s.cap);
	ph_idset_done(&s);
}

/* A served range leaves the set: queued again, it is served again. */
static void test_dedup_served(void **state)
{
	struct fixture *f = *state;
	struct ph_worker *w = NULL;
	struct ph_worker_report rep;
	enum { N = 3000 };

	assert_int_equal(ph_worker_new(f->ctx, f->dir, empty_policy(f), &w), 0);
	for (int64_t i = 1; i <= N; i++)
		assert_int_equal(ph_worker_queue_range(w, scattered(i)), 1);
	assert_int_equal(ph_worker_start(w), 0);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_RESUMED);
	ph_worker_report_done(&rep);
	for (int64_t i = 1; i <= N; i++) {
		/* no such range in the ledger: skipped, in queue order */
		do {
			ph_worker_report_done(&rep);
			next(w, &rep);
		} while (rep.type != PH_WORKER_DONE);
		assert_int_equal(rep.range_id, scattered(i));
		assert_true(rep.skipped);
		ph_worker_report_done(&rep);
	}
	assert_int_equal(ph_worker_get_pending(w), 0);
	/* all served: every one is new again */
	for (int64_t i = 1; i <= N; i++)
		assert_int_equal(ph_worker_queue_range(w, scattered(i)), 1);
	ph_worker_stop(w);
	do {
		ph_worker_report_done(&rep);
		next(w, &rep);
	} while (rep.type != PH_WORKER_STOPPED);
	ph_worker_report_done(&rep);
	ph_worker_free(w);
}

static int lock_file(struct fixture *f)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/repair.lock", f->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	return fd;
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct ph_worker *w = NULL;
	struct ph_worker_report rep;
	int fd = lock_file(f);

	/* `pmemheal repair` holds the lock: the resume waits for it. */
	assert_int_equal(ph_worker_new(f->ctx, f->dir, empty_policy(f), &w), 0);
	assert_int_equal(ph_worker_start(w), 0);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_LOCK_WAIT);
	assert_non_null(strstr(rep.detail, "/repair.lock"));
	ph_worker_report_done(&rep);
	close(fd); /* the command is done */
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_LOCKED);
	ph_worker_report_done(&rep);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_RESUMED);
	assert_int_equal(rep.error, 0);
	ph_worker_report_done(&rep);

	/* Idle, the worker lets go of the lock: the command can take it. */
	for (int i = 0; i < 100; i++) {
		fd = open(strcat(strcpy((char[4096]){ 0 }, f->dir), "/repair.lock"), O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		close(fd);
		fd = -1;
		poll(NULL, 0, 100);
	}
	assert_true(fd >= 0);
	/* While it is held, a queued range waits; a stop ends the wait. */
	assert_int_equal(ph_worker_queue_range(w, f->ids[0]), 1);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_LOCK_WAIT);
	ph_worker_report_done(&rep);
	ph_worker_stop(w);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_DONE);
	assert_true(rep.skipped);
	ph_worker_report_done(&rep);
	next(w, &rep);
	assert_int_equal(rep.type, PH_WORKER_STOPPED);
	ph_worker_report_done(&rep);
	ph_worker_free(w);
	close(fd);
}

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	struct ph_metrics m = { .namespaces = 2, .listed = 3, .pending = 1, .bytes_lost = 1024 };
	char path[4096], text[8192];
	struct ph_repair_result res = { 0 };
	FILE *in;
	size_t n;

	m.ranges[PH_STATE_CLEARED] = 5;
	m.repairs[PH_OUTCOME_PINNED] = 2;
	snprintf(path, sizeof(path), "%s/pmemheal.prom", f->dir);
	fake_write(f->dir, "/pmemheal.prom", "old and longer than the new one, which must replace it whole\n"
					     "old and longer than the new one, which must replace it whole\n");
	assert_int_equal(ph_metrics_write(&m, path), 0);
	in = fopen(path, "re");
	assert_non_null(in);
	n = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[n] = '\0';
	assert_null(strstr(text, "old and longer"));
	assert_non_null(strstr(text, "# TYPE pmemheal_ranges gauge\n"));
	assert_non_null(strstr(text, "\npmemheal_ranges{state=\"cleared\"} 5\n"));
	assert_non_null(strstr(text, "\npmemheal_ranges_listed 3\n"));
	assert_non_null(strstr(text, "\npmemheal_repairs_total{result=\"pinned\"} 2\n"));
	assert_non_null(strstr(text, "\npmemheal_bytes_lost_total 1024\n"));
	assert_int_equal(text[n - 1], '\n');
	/* nothing else was left in the directory but the ledger's files */
	{
		DIR *d = opendir(f->dir);
		struct dirent *de;

		while ((de = readdir(d)))
			assert_true(de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
		closedir(d);
	}
	/* a directory that does not exist: an error, not a crash */
	assert_int_equal(ph_metrics_write(&m, "/nonexistent/dir/x.prom"), -ENOENT);

	/* outcomes */
	assert_int_equal(ph_outcome_of(&res, -EIO), PH_OUTCOME_FAILED);
	assert_int_equal(ph_outcome_of(&res, 0), PH_OUTCOME_RECORDED);
	res.written = res.cleared = 2;
	assert_int_equal(ph_outcome_of(&res, 0), PH_OUTCOME_CLEARED);
	res.cleared = 1;
	assert_int_equal(ph_outcome_of(&res, 0), PH_OUTCOME_REPAIRED);
	res.pinned = 1;
	assert_int_equal(ph_outcome_of(&res, 0), PH_OUTCOME_PINNED);
	res.failed = 1;
	assert_int_equal(ph_outcome_of(&res, 0), PH_OUTCOME_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test(test_idset),
		cmocka_unit_test_setup_teardown(test_dedup_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
