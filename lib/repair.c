/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running one job from the intent log: its steps in order from the step the
 * log says is next, advancing the log after each, to its last, verify,
 * whose verdict ends the intent; a conflict abandons the job and removes
 * what it made.  Test-only fault
 * knobs (crash after, pause before, fail the Nth run of a step) live here.
 */
#include "repair-internal.h"

/* ---- running jobs ------------------------------------------------------ */

/* Test-only: PMEMHEAL_DEBUG_FAIL_AFTER=STEP[:N] kills the process right
 * after the Nth completed STEP (its progress recorded), as a crash would. */
static void fault_point(struct ph_repairer *r, enum ph_step_kind k)
{
#ifdef PH_FAULT_INJECTION
	if (r->fault_step && strcmp(r->fault_step, ph_step_to_string(k)) == 0 && ++r->fault_seen == r->fault_nth) {
		ph_warn(r->ctx, "PMEMHEAL_DEBUG_FAIL_AFTER: killing the process after step %s", r->fault_step);
		raise(SIGKILL);
	}
#else
	(void)r;
	(void)k;
#endif
}

/* Test-only: PMEMHEAL_DEBUG_PAUSE_BEFORE=STEP[:N] with
 * PMEMHEAL_DEBUG_PAUSE_FIFO=PATH stops before the Nth STEP: it writes
 * "paused STEP\n" into the FIFO (blocking until a reader opens it), then
 * reads the FIFO to its end (blocking until a writer opens and closes it).
 * A test changes the file in between: a race at a moment it chooses. */
void pause_point(struct ph_repairer *r, enum ph_step_kind k)
{
#ifdef PH_FAULT_INJECTION
	char buf[64];
	int fd;

	if (!r->pause_step || !r->pause_fifo || strcmp(r->pause_step, ph_step_to_string(k)) != 0 ||
	    ++r->pause_seen != r->pause_nth)
		return;
	ph_warn(r->ctx, "PMEMHEAL_DEBUG_PAUSE_BEFORE: waiting on %s before step %s", r->pause_fifo, r->pause_step);
	fd = open(r->pause_fifo, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		int n = snprintf(buf, sizeof(buf), "paused %s\n", r->pause_step);

		(void)!write(fd, buf, (size_t)n);
		close(fd);
	}
	fd = open(r->pause_fifo, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
#else
	(void)r;
	(void)k;
#endif
}

/* Test-only: PMEMHEAL_DEBUG_ERROR=STEP[:N]:ERRNO makes the Nth run of STEP
 * fail with ERRNO (ENOSPC, EIO, ENODEV, ENXIO, EROFS or a number) without
 * running it, as the filesystem or a vanishing device would. */
static int injected_error(struct ph_repairer *r, enum ph_step_kind k)
{
#ifdef PH_FAULT_INJECTION
	if (r->error_step && strcmp(r->error_step, ph_step_to_string(k)) == 0 && ++r->error_seen == r->error_nth) {
		ph_warn(r->ctx, "PMEMHEAL_DEBUG_ERROR: step %s fails with %s", r->error_step, strerror(r->error_errno));
		return -r->error_errno;
	}
#else
	(void)r;
	(void)k;
#endif
	return 0;
}

/* A relocate-file job stopped by a conflict before its rename: take back
 * the copy and the old inode's quarantine name, so nothing of it is left. */
static void abandon(struct ph_repairer *r, struct job *j)
{
	_cleanup_close_ int dir = -EBADF, qdir = -EBADF;
	const struct job_owner *o = &j->owners[0];
	const char *name, *tname;
	struct stat st;

	lease_drop(j);
	if (j->mode != PH_MODE_RELOCATE_FILE || j->n_owners == 0)
		return;
	if (open_dir_of(j, o->path, &dir, &name) < 0 || ph_check_at(dir, name, o->dev, o->inode, 0, -EBADF, NULL) < 0)
		return; /* renamed: the job went past the point of taking back */
	tname = tmp_name(j, o->path, name);
	if (tname)
		(void)unlinkat(dir, tname, 0);
	if (j->qname && quarantine_name(j->qname) == j->qname && open_quarantine(r, j, &qdir) == 0 &&
	    fstatat(qdir, j->qname, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == o->inode)
		(void)unlinkat(qdir, j->qname, 0);
}

/* The job's last step: its verdict ends the intent (done, or failed with
 * the verifier's reason); nothing after it is resumed. */
static int run_verify(struct ph_repairer *r, struct job *j, int64_t intent, char **why)
{
	int k = injected_error(r, PH_STEP_VERIFY);

	if (k == 0)
		k = verify(r, j, why);
	if (k < 0 && !*why)
		(void)asprintf(why, "step verify: %s", strerror(-k));
	(void)ph_ledger_intent_finish(r->ledger, intent, k < 0 ? "failed" : "done", *why, ph_now_usec());
	fault_point(r, PH_STEP_VERIFY);
	return k;
}

int run_job(struct ph_repairer *r, struct job *j, int64_t intent, int from, char **why)
{
	int k;

	for (size_t i = (size_t)from; i < j->n_steps; i++) {
		pause_point(r, j->steps[i].kind);
		if (j->steps[i].kind == PH_STEP_VERIFY)
			return run_verify(r, j, intent, why);
		free(r->why);
		r->why = NULL;
		k = injected_error(r, j->steps[i].kind);
		if (k == 0)
			k = run_step(r, j, &j->steps[i]);
		if (k < 0) {
			if (!*why)
				(void)asprintf(why, "step %s%s%s: %s%s", ph_step_to_string(j->steps[i].kind),
					       j->owners[j->steps[i].owner].path ? " of " : "",
					       j->owners[j->steps[i].owner].path ? j->owners[j->steps[i].owner].path : "",
					       r->why ? r->why : j->why ? j->why :
					       k == -ESTALE ? "the file changed since it was planned" : strerror(-k),
					       k == -ESTALE ? "; nothing was written" :
							      "; the repair is pending and resumes from this step");
			if (k == -ESTALE) {
				abandon(r, j);
				(void)ph_ledger_intent_finish(r->ledger, intent, "aborted", *why, ph_now_usec());
			} else
				/* No space, an I/O error, a device gone: the
				 * intent stays running, with the repaired pages,
				 * until they are in place.  (A step that had run
				 * may have given something up: only finishing
				 * the job makes that whole.) */
				(void)ph_ledger_intent_finish(r->ledger, intent, "running", *why, ph_now_usec());
			return k;
		}
		k = ph_ledger_intent_step(r->ledger, intent, (int)i + 1, ph_now_usec());
		if (k < 0)
			return k;
		fault_point(r, j->steps[i].kind);
	}
	return -EINVAL; /* a job ends with verify (job_from_plan, job_from_json) */
}

int ph_repair_debug_steps(struct ph_ctx *ctx, const char *job_json, const uint8_t *content, char **ret_why)
{
	struct ph_repairer r = { .ctx = ctx, .own_memfail = PH_MEMFAIL_INIT };
	struct job j;
	int k;

	struct json_object *o = json_tokener_parse(job_json), *v;
	struct ph_intent it = { .plan = job_json, .content = content, .content_len = PH_PAGE_SIZE };
	char *bad = NULL;

	*ret_why = NULL;
	r.memfail = &r.own_memfail;
	/* the driver's job names its own range and page */
	if (o && json_object_object_get_ex(o, "range_id", &v))
		it.range_id = json_object_get_int64(v);
	if (o && json_object_object_get_ex(o, "page", &v))
		it.page = (uint64_t)json_object_get_int64(v);
	json_object_put(o);
	k = job_from_json(&it, &j, &bad);
	if (k < 0) {
		*ret_why = bad;
		return k;
	}
	free(bad);
	for (size_t i = 0; i < j.n_steps; i++) {
		k = run_step(&r, &j, &j.steps[i]);
		if (k < 0) {
			(void)asprintf(ret_why, "step %s of %s: %s%s", ph_step_to_string(j.steps[i].kind),
				       j.owners[j.steps[i].owner].path, r.why ? r.why : j.why ? j.why :
				       k == -ESTALE ? "the file changed since it was planned" : strerror(-k),
				       k == -ESTALE ? "; nothing was written" : "");
			if (k == -ESTALE)
				abandon(&r, &j);
			break;
		}
	}
	job_done(&j);
	free(r.why);
	ph_memfail_done(&r.own_memfail);
	return k;
}
