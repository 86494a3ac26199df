/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The repairer's content stage: each owner's repaired page, computed by its
 * own rule before anything changes.  Salvage reads the good sectors through
 * the block device (never a page the kernel log says went through
 * memory_failure), restore reads Source= as the file's owner would, exec runs
 * Hook= with a deadline.  Nothing here writes to a user's file.
 */
#include "clock.h"
#include "repair-internal.h"

/* ---- content ----------------------------------------------------------- */

/* Good sectors through the block device (a DAX read of the file fails for
 * the whole page); a sector that does not read is lost too. */
static int read_good(const char *device, uint64_t page, uint8_t mask, uint8_t *out, uint64_t *lost)
{
	_cleanup_close_ int fd = -EBADF;
	void *buf = NULL;

	memset(out, 0, PH_PAGE_SIZE);
	if (posix_memalign(&buf, PH_PAGE_SIZE, 512) != 0)
		return -ENOMEM;
	fd = open(device, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return negative_errno();
	}
	for (unsigned i = 0; i < PH_PAGE_SECTORS; i++) {
		if (mask & (1u << i)) {
			*lost += 512;
			continue;
		}
		if (pread(fd, buf, 512, (off_t)((page + i) * 512)) == 512)
			memcpy(out + i * 512, buf, 512);
		else
			*lost += 512;
	}
	free(buf);
	return 0;
}

/* ---- Source= ------------------------------------------------------------
 *
 * The restore source is read as root, on behalf of the damaged file's
 * owner, from a path that may lie in a directory that owner can write.
 * So: no symlink anywhere in it (RESOLVE_NO_SYMLINKS, or a walk with
 * O_NOFOLLOW on each component); a regular file only, checked on an
 * O_PATH descriptor before anything is opened for reading, so a FIFO
 * cannot hang us and a device node is never opened; readable by the
 * owner themselves (mode bits, every directory on the way searchable);
 * and unchanged across the read. */

/* Test-only: PMEMHEAL_DEBUG_NO_OPENAT2=1 acts as if openat2() were
 * missing (ENOSYS), so tests reach the component walk. */
static bool openat2_disabled(void)
{
#ifdef PH_FAULT_INJECTION
	return getenv("PMEMHEAL_DEBUG_NO_OPENAT2") != NULL;
#else
	return false;
#endif
}

/* An O_PATH descriptor of absolute path, with no symlink followed. */
static int open_path_nofollow(const char *path, int *ret_fd)
{
	_cleanup_close_ int dfd = -EBADF;
	_cleanup_free_ char *copy = NULL;
	char *save = NULL, *c;

	if (path[0] != '/')
		return -EINVAL;
	if (!openat2_disabled()) {
		struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
					.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
		int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

		if (fd >= 0) {
			struct stat st;

			/* O_NOFOLLOW|O_PATH on a final symlink opens the link */
			if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
				close(fd);
				return -ELOOP;
			}
			*ret_fd = fd;
			return 0;
		}
		if (errno != ENOSYS)
			return negative_errno();
	}
	/* No openat2: one component at a time, none of them a symlink. */
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	for (c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int fd = openat(dfd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;

		if (fd < 0)
			return negative_errno();
		if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
			close(fd);
			return -ELOOP;
		}
		close(dfd);
		dfd = fd;
	}
	*ret_fd = TAKE_FD(dfd);
	return 0;
}

/* May uid (in groups) do `want` (4 read, 1 search) on st, by its mode
 * bits?  With a POSIX ACL the group bits are the ACL's mask, wider than
 * what the owning group may do: then only the owner and other bits count
 * (never more than the kernel would allow). */
static bool may_access(const struct stat *st, bool has_acl, uid_t uid, const gid_t *groups, int n_groups,
		       unsigned want)
{
	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return ((st->st_mode >> 6) & want) == want;
	for (int i = 0; !has_acl && i < n_groups; i++)
		if (groups[i] == st->st_gid)
			return ((st->st_mode >> 3) & want) == want;
	return (st->st_mode & want) == want;
}

static bool has_acl(int fd)
{
	_cleanup_free_ char *p = NULL;

	/* getxattr does not take an O_PATH fd: through /proc */
	if (asprintf(&p, "/proc/self/fd/%d", fd) < 0)
		return true; /* the safe side */
	if (getxattr(p, "system.posix_acl_access", NULL, 0) >= 0)
		return true;
	return errno != ENODATA && errno != EOPNOTSUPP; /* cannot tell: the safe side */
}

/* Could uid have read the file open (O_PATH) as fd in directory dfd: the
 * file readable, every directory up to the root searchable? */
static int owner_could_read(int dfd, int fd, uid_t uid, gid_t gid)
{
	_cleanup_close_ int cur = -EBADF;
	struct stat st, root;
	gid_t groups[256];
	int n = (int)ELEMENTSOF(groups);
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	if (uid == 0)
		return 1;
	groups[0] = gid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp) {
		if (getgrouplist(pwp->pw_name, gid, groups, &n) < 0)
			n = 1; /* too many to list: the primary group only (denies, never grants, more) */
	} else
		n = 1;
	if (stat("/", &root) < 0 || fstat(fd, &st) < 0)
		return negative_errno();
	if (!may_access(&st, has_acl(fd), uid, groups, n, 4))
		return 0;
	cur = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	for (unsigned depth = 0; cur >= 0 && depth < 4096; depth++) {
		int up;

		if (fstat(cur, &st) < 0)
			return negative_errno();
		if (!may_access(&st, has_acl(cur), uid, groups, n, 1))
			return 0;
		if (st.st_dev == root.st_dev && st.st_ino == root.st_ino)
			return 1;
		up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		cur = up;
	}
	return cur < 0 ? negative_errno() : -ELOOP;
}

static bool same_times(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Page `offset` of Source= source, for a file of `size` bytes owned by
 * uid:gid.  -ELOOP (a symlink), -EINVAL (not a regular file, or another
 * size), -EACCES (its owner could not read it): no usable source.
 * -EBUSY: it changed while it was read; nothing was used, try again.
 * after_read (tests) runs between the read and the check. */
int ph_repair_read_source(const char *source, uid_t uid, gid_t gid, uint64_t size, uint64_t offset, uint8_t *out,
			  char **why, void (*after_read)(void *userdata), void *userdata)
{
	_cleanup_close_ int dfd = -EBADF, pfd = -EBADF, fd = -EBADF;
	_cleanup_free_ char *proc = NULL, *dir = strdup(source);
	const char *base = strrchr(source, '/');
	struct stat pst, st, after;
	ssize_t n;
	int k;

	if (!dir)
		return -ENOMEM;
	if (!base || !base[1] || strcmp(base, "/.") == 0 || strcmp(base, "/..") == 0)
		return asprintf(why, "%s does not name a file", source) < 0 ? -ENOMEM : -EINVAL;
	base++;
	dir[base - source] = '\0';
	/* Its directory (where the climb to the root starts), then the file. */
	k = open_path_nofollow(dir, &dfd);
	if (k == 0) {
		pfd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0)
			k = negative_errno();
		else if (fstat(pfd, &pst) == 0 && S_ISLNK(pst.st_mode))
			k = -ELOOP;
	}
	if (k < 0)
		return asprintf(why, "%s: %s", source,
				k == -ELOOP ? "a symlink is on its path (refused)" : strerror(-k)) < 0 ? -ENOMEM : k;
	if (fstat(pfd, &pst) < 0)
		return negative_errno();
	if (!S_ISREG(pst.st_mode))
		return asprintf(why, "%s is not a regular file", source) < 0 ? -ENOMEM : -EINVAL;
	if ((uint64_t)pst.st_size != size)
		return asprintf(why, "%s has %jd bytes, the file to restore %" PRIu64, source, (intmax_t)pst.st_size,
				size) < 0 ? -ENOMEM : -EINVAL;
	k = owner_could_read(dfd, pfd, uid, gid);
	if (k < 0)
		return asprintf(why, "%s: %s", source, strerror(-k)) < 0 ? -ENOMEM : k;
	if (k == 0)
		return asprintf(why, "%s is not readable by the owner (uid %u) of the file to restore: refused", source,
				(unsigned)uid) < 0 ? -ENOMEM : -EACCES;
	/* The very inode checked, opened for reading: never by path again. */
	if (asprintf(&proc, "/proc/self/fd/%d", pfd) < 0)
		return -ENOMEM;
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return asprintf(why, "%s: %m", source) < 0 ? -ENOMEM : -EIO;
	if (st.st_dev != pst.st_dev || st.st_ino != pst.st_ino || !S_ISREG(st.st_mode))
		return asprintf(why, "%s was replaced while it was opened", source) < 0 ? -ENOMEM : -EBUSY;
	memset(out, 0, PH_PAGE_SIZE);
	n = pread(fd, out, PH_PAGE_SIZE, (off_t)offset);
	if (n < 0)
		return asprintf(why, "%s: %m", source) < 0 ? -ENOMEM : -EIO;
	if (after_read)
		after_read(userdata);
	if (fstat(fd, &after) < 0)
		return negative_errno();
	if (!same_times(&st, &after)) {
		memset(out, 0, PH_PAGE_SIZE);
		return asprintf(why, "%s changed while it was read; nothing was used", source) < 0 ? -ENOMEM : -EBUSY;
	}
	return 0;
}

/* Source= for owner o: read on behalf of the file's owner. */
static int read_source(const char *source, const struct job *j, const struct job_owner *o, uint8_t *out, char **why)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	int k;

	k = open_owner(j, o, O_RDONLY, &fd);
	if (k < 0)
		return asprintf(why, "%s: %s", o->path, strerror(-k)) < 0 ? -ENOMEM : k;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	return ph_repair_read_source(source, st.st_uid, st.st_gid, o->size, o->offset, out, why, NULL, NULL);
}

/* Test-only: PMEMHEAL_DEBUG_NO_PIDFD=1 acts as if pidfd_open() failed
 * (an old kernel, a seccomp filter), so tests reach the fallback. */
static bool pidfd_disabled(void)
{
#ifdef PH_FAULT_INJECTION
	return getenv("PMEMHEAL_DEBUG_NO_PIDFD") != NULL;
#else
	return false;
#endif
}

static int64_t mono_ms(void)
{
	return (int64_t)(ph_mono_usec() / 1000);
}

/* Wait up to ms for pid to end, without reaping it (its pid, and so its
 * process group, stay ours until waitpid()): 1 ended, 0 still running.
 * Through its pidfd; without one, by asking on a short period. */
static int wait_bounded(pid_t pid, int pidfd, int64_t ms)
{
	int64_t deadline = mono_ms() + ms;

	for (;;) {
		int64_t left = deadline - mono_ms();
		siginfo_t si = { 0 };

		if (pidfd >= 0) {
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			int n = poll(&p, 1, (int)MIN(MAX(left, (int64_t)0), (int64_t)INT_MAX));

			if (n > 0)
				return 1;
			if (n < 0 && errno != EINTR)
				return negative_errno();
		} else {
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
				if (errno != EINTR)
					return negative_errno();
			} else if (si.si_pid == pid)
				return 1;
			if (left > 0)
				(void)nanosleep(&(struct timespec){ .tv_nsec = MIN(left, (int64_t)10) * 1000000 }, NULL);
		}
		if (left <= 0)
			return 0;
	}
}

/* Run a hook: argv with envp, input on its stdin, its stdout onto our
 * stderr, in its own process group; bounded by timeout_usec (SIGTERM to
 * the group, then SIGKILL).  0 or -ETIME (ended by the timeout), with its
 * wait status; <0 when it could not be started.
 *
 * It starts with no signal blocked and every disposition the default: the
 * worker thread blocks all signals and a writer may ignore SIGPIPE, and a
 * child inherits both through fork and exec, so a hook would never see
 * the SIGTERM of its timeout. */
int ph_repair_spawn_hook(char *const argv[], char *const envp[], const char *input, uint64_t timeout_usec,
			 int *ret_status)
{
	int pipefd[2], status = 0, r = 0, k;
	_cleanup_close_ int pidfd = -EBADF;
	sigset_t pipe_only, old;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return negative_errno();
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	if (pid == 0) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigset_t none;

		/* Async-signal-safe calls only: the parent has threads. */
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				(void)sigaction(s, &dfl, NULL);
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		/* Its own process group, so a timeout ends whatever it started;
		 * its output goes to stderr, never into ours (--json). */
		(void)setpgid(0, 0);
		dup2(pipefd[0], STDIN_FILENO);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	(void)setpgid(pid, pid);
	close(pipefd[0]);
	if (!pidfd_disabled())
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	/* A hook that does not read its input must neither block us nor
	 * kill us: a non-blocking write, with SIGPIPE blocked in this thread
	 * only (not ignored process-wide) and taken back if it came. */
	(void)fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
	/* Taken back even when the caller had SIGPIPE blocked already (the
	 * worker blocks everything): left pending, it would kill the caller
	 * once unblocked.  SIGPIPE is not queued, and only ever synchronous. */
	if (write(pipefd[1], input, strlen(input)) < 0 && errno == EPIPE)
		(void)sigtimedwait(&pipe_only, NULL, &(struct timespec){ 0 });
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pipefd[1]);

	/* Wait, bounded by HookTimeoutSec=: SIGTERM, then SIGKILL. */
	k = wait_bounded(pid, pidfd, (int64_t)MIN(timeout_usec / 1000, (uint64_t)INT64_MAX));
	if (k == 0) {
		kill(-pid, SIGTERM);
		(void)wait_bounded(pid, pidfd, 5000);
		kill(-pid, SIGKILL); /* the rest of its group, whatever ignored SIGTERM */
		r = -ETIME;
	} else if (k < 0)
		kill(-pid, SIGKILL); /* cannot tell when it ends: do not wait forever */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*ret_status = status;
	return r;
}

static int run_hook(const struct ph_rule *rule, const struct job *j, size_t owner, const char *source, uint8_t *out,
		    char **why)
{
	const struct job_owner *o = &j->owners[owner];
	char outpath[] = "/tmp/pmemheal-hook-XXXXXX";
	char *envp[10] = { 0 };
	struct json_object *in = json_object_new_object();
	const char *text;
	int ofd, status = 0, r = 0;

	ofd = mkostemp(outpath, O_CLOEXEC);
	if (ofd < 0 || !in)
		return -errno ?: -ENOMEM;
	/* one line of valid JSON whatever the names (their exact bytes in
	 * "path_bytes", and in the environment) */
	(void)ph_json_add_name(in, "path", o->path);
	json_object_object_add(in, "inode", json_object_new_int64((int64_t)o->inode));
	json_object_object_add(in, "offset", json_object_new_int64((int64_t)o->offset));
	json_object_object_add(in, "length", json_object_new_int(PH_PAGE_SIZE));
	json_object_object_add(in, "device", json_object_new_string(j->device));
	json_object_object_add(in, "sector", json_object_new_int64((int64_t)j->page));
	json_object_object_add(in, "output", json_object_new_string(outpath));
	(void)ph_json_add_name(in, "source", source);
	text = json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (asprintf(&envp[0], "PMEMHEAL_PATH=%s", o->path) < 0 ||
	    asprintf(&envp[1], "PMEMHEAL_INODE=%" PRIu64, o->inode) < 0 ||
	    asprintf(&envp[2], "PMEMHEAL_OFFSET=%" PRIu64, o->offset) < 0 ||
	    asprintf(&envp[3], "PMEMHEAL_LENGTH=%u", PH_PAGE_SIZE) < 0 ||
	    asprintf(&envp[4], "PMEMHEAL_DEVICE=%s", j->device) < 0 ||
	    asprintf(&envp[5], "PMEMHEAL_SECTOR=%" PRIu64, j->page) < 0 ||
	    asprintf(&envp[6], "PMEMHEAL_OUTPUT=%s", outpath) < 0 ||
	    !(envp[7] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) ||
	    (source && asprintf(&envp[8], "PMEMHEAL_SOURCE=%s", source) < 0)) {
		r = -ENOMEM;
		goto out;
	}
	r = ph_repair_spawn_hook(rule->hook, envp, text, rule->hook_timeout_usec, &status);
	if (r < 0 && r != -ETIME)
		goto out;
	if (r == -ETIME) {
		(void)asprintf(why, "%s timed out after %" PRIu64 " s", rule->hook[0], rule->hook_timeout_usec / 1000000);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == HOOK_EXIT_FALLBACK) {
		r = -EAGAIN; /* apply Fallback= */
		(void)asprintf(why, "%s asked for the fallback (exit 75)", rule->hook[0]);
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		r = -EPROTO;
		(void)asprintf(why, "%s failed (%s %d)", rule->hook[0], WIFEXITED(status) ? "exit" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		goto out;
	}
	if (pread(ofd, out, PH_PAGE_SIZE, 0) != PH_PAGE_SIZE || lseek(ofd, 0, SEEK_END) != PH_PAGE_SIZE) {
		r = -EPROTO;
		(void)asprintf(why, "%s exited 0 without writing exactly %u bytes to PMEMHEAL_OUTPUT", rule->hook[0],
			       PH_PAGE_SIZE);
	}
out:
	close(ofd);
	unlink(outpath);
	json_object_put(in);
	for (size_t i = 0; i < ELEMENTSOF(envp); i++)
		free(envp[i]);
	return r;
}

/* Has the job's page gone through memory_failure since it was planned?
 * Asked right before the device is read: mapping and planning can take
 * long, and a machine check in between would make the read of any sector
 * of the page oops the kernel.  Not knowing (no kernel log, no physical
 * address) counts as yes. */
static bool memfailed_now(struct ph_repairer *r, const struct job *j)
{
	const struct ph_namespace *ns = r->topo ? ph_topology_find_ns(r->topo, j->ns_id) : NULL;

	if (!ns || ns->start == PH_UNKNOWN || ph_memfail_follow(r->ctx, r->memfail) < 0)
		return true;
	return ph_pfns_contains(&r->memfail->pfns, (ns->start + j->page * 512) >> 12);
}

/* Owner i's new bytes by its own rule (Source=, Hook=): never a sharer's. */
static int owner_content(struct ph_repairer *r, const struct ph_plan_page *pg, struct job *j, size_t i,
			 enum ph_content c, uint8_t *out, uint8_t *salvaged, bool *have_salvaged, char **why)
{
	const struct ph_plan_owner *po = &pg->owners[i];
	int k;

	memset(out, 0, PH_PAGE_SIZE);
	switch (c) {
	case PH_CONTENT_SALVAGE:
		if (!*have_salvaged) {
			pause_point(r, PH_STEP_READ_GOOD);
			if (memfailed_now(r, j)) {
				/* As the planner would have had it: never read; the
				 * whole page from Source=, or lost. */
				ph_warn(r->ctx, "page %" PRIu64 " of %s went through memory_failure after it was "
					"planned: not reading it", j->page, j->device);
				if (po->source)
					return read_source(po->source, j, &j->owners[i], out, why);
				memset(salvaged, 0, PH_PAGE_SIZE);
				j->bytes_lost = PH_PAGE_SIZE;
			} else {
				j->bytes_lost = 0;
				k = read_good(j->device, j->page, pg->bad_mask, salvaged, &j->bytes_lost);
				if (k < 0)
					return k;
			}
			*have_salvaged = true;
		}
		memcpy(out, salvaged, PH_PAGE_SIZE);
		return 0;
	case PH_CONTENT_ZERO:
	case PH_CONTENT_NONE:
		return 0;
	case PH_CONTENT_RESTORE:
		if (!po->source) {
			(void)asprintf(why, "no Source= to restore %s from", po->path);
			return -ENOENT;
		}
		return read_source(po->source, j, &j->owners[i], out, why);
	case PH_CONTENT_HOOK:
		return run_hook(po->rule, j, i, po->source, out, why);
	}
	return -EINVAL;
}

/* The pages' new bytes, each owner's by its own rule; identical ones share
 * a slot (and a block, once staged).  1: owner *ret_owner cannot be
 * repaired so (a restore or hook that cannot help): plan it again with
 * *ret_fallback. */
int compute_content(struct ph_repairer *r, const struct ph_plan_page *pg, struct job *j,
			   size_t *ret_owner, enum ph_action *ret_fallback, char **why)
{
	_cleanup_free_ uint8_t (*pages)[PH_PAGE_SIZE] = NULL;
	_cleanup_free_ const uint8_t **ptrs = NULL;
	_cleanup_free_ size_t *slots = NULL;
	uint8_t salvaged[PH_PAGE_SIZE];
	bool have_salvaged = false;
	size_t n = MAX(pg->n_owners, (size_t)1), n_slots;
	int k = 0;

	*ret_fallback = _PH_ACTION_MAX;
	*ret_owner = 0;
	memset(j->content, 0, sizeof(j->content));
	j->has_content = true;
	j->n_slots = 1;
	pages = calloc(n, PH_PAGE_SIZE);
	ptrs = calloc(n, sizeof(*ptrs));
	slots = calloc(n, sizeof(*slots));
	if (!pages || !ptrs || !slots)
		return -ENOMEM;
	for (size_t i = 0; i < pg->n_owners && i < j->n_owners; i++) {
		const struct ph_plan_owner *po = &pg->owners[i];
		enum ph_content c = pg->mode == PH_MODE_RELOCATE_PIN ? po->content : pg->content;

		j->owners[i].slot = SIZE_MAX;
		if (po->action == PH_ACTION_REPORT)
			continue;
		if (pg->mode == PH_MODE_RELOCATE_PIN && c == PH_CONTENT_NONE)
			continue; /* punch, delete, quarantine: no page of its own */
		k = owner_content(r, pg, j, i, c, pages[i], salvaged, &have_salvaged, why);
		if (k == -ENOMEM || k == -EBUSY || k == -ESTALE)
			return k; /* the source or the file changed under us: fail, retry later; no fallback */
		if (k < 0 && (k == -EAGAIN || c != PH_CONTENT_HOOK) && (c == PH_CONTENT_RESTORE || c == PH_CONTENT_HOOK)) {
			*ret_owner = i;
			*ret_fallback = po->rule && po->rule->has_fallback ? po->rule->fallback : PH_ACTION_REPORT;
			ph_info(r->ctx, "%s; falling back to %s for %s", *why ? *why : "cannot repair",
				ph_action_to_string(*ret_fallback), po->path);
			return 1;
		}
		if (k < 0)
			return k; /* a hook that failed, a device that does not read: a failure, recorded */
		ptrs[i] = pages[i];
		if (pg->mode != PH_MODE_RELOCATE_PIN)
			break; /* in place or a whole-file copy: one owner */
	}
	n_slots = ph_plan_stage_slots(pg, ptrs, slots);
	for (size_t i = 0; i < pg->n_owners && i < j->n_owners; i++)
		if (ptrs[i])
			j->owners[i].slot = slots[i];
	if (n_slots > 1) {
		j->more = calloc(n_slots - 1, PH_PAGE_SIZE);
		if (!j->more)
			return -ENOMEM;
	}
	for (size_t i = 0; i < pg->n_owners && i < j->n_owners; i++)
		if (ptrs[i])
			memcpy(slot_page(j, slots[i]), ptrs[i], PH_PAGE_SIZE);
	j->n_slots = MAX(n_slots, (size_t)1);
	return 0;
}
