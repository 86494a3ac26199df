/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Repairer.  A plan's page becomes a job; its content (salvaged, zeroed,
 * restored or written by a hook) is computed before anything changes and
 * stored with the job in the intent log; then the job's steps run in
 * order, each after checking the owner's page is where the job left it.
 *
 * Page states a step accepts (anything else is a conflict: stop, write
 * nothing):
 *   stage     (the staging file only: the repaired pages on fresh blocks)
 *   pin       the owner maps the poisoned block; or the pin file already does
 *   swap      the owner maps the poisoned block, or its staged page
 *   punch     the owner maps the poisoned block, or a hole
 *   write     in place: the owner maps the poisoned block, or our bytes;
 *             relocated: a hole, or a fresh block holding our bytes
 *   reshare   the poisoned block, a hole, or the first owner's new block
 *   clear     the pin file, sole owner of the poisoned block; or cleared
 *   rename... the inode is the one planned (or the step is done)
 * The same checks make a resumed job safe: a step that had completed
 * before a crash finds the "after" state and is done already.
 *
 * Each owner is changed by its own rule only: its page is computed from
 * its own Source= or Hook=, and sharers whose pages differ get their own
 * slots (blocks).  A job that fails with anything but a conflict (no
 * space, an I/O error, a device gone) stays running in the intent log,
 * with its pages, and resumes; its page is not planned again meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mapper.h"
#include "platform.h"
#include "repair.h"
#include "source.h"

#define HOOK_EXIT_FALLBACK 75 /* EX_TEMPFAIL */

struct ph_repairer {
	struct ph_ctx *ctx;
	struct ph_ledger *ledger;
	struct ph_recorder *rec;
	const struct ph_policy *policy;
	const struct ph_topology *topo;
	struct ph_pfns memfail;
	bool memfail_ok;
	/* test-only fault injection: exit right after a named step */
	char *fault_step;
	unsigned fault_nth, fault_seen;
	/* test-only: stop before a named step until a FIFO says go */
	char *pause_step, *pause_fifo;
	unsigned pause_nth, pause_seen;
	/* test-only: the Nth run of a named step fails with an errno */
	char *error_step;
	unsigned error_nth, error_seen;
	int error_errno;
};

struct job_owner {
	char *path;
	uint64_t inode, gen, offset, size;
	int64_t mtime_ns, ctime_ns;
	bool repair;     /* false: reported only (its own rule says report) */
	bool link;       /* another name of owners[0]'s inode (relocate-file) */
	size_t slot;     /* its repaired page: job content slot, SIZE_MAX for none */
};

struct job_step {
	enum ph_step_kind kind;
	size_t owner;
};

struct job {
	int64_t range_id;
	char *device;    /* the namespace's disk: /dev/pmem0 */
	char *list;      /* its badblocks file */
	char *mount;
	char *ns_id;
	uint64_t page;   /* first sector of the page on the disk */
	uint64_t fs_page; /* ... on the filesystem's own device */
	enum ph_mode mode;
	bool can_clear, hole;
	char *pin, *tmp, *qname;
	struct job_owner *owners;
	size_t n_owners;
	struct job_step *steps;
	size_t n_steps;
	uint8_t content[PH_PAGE_SIZE]; /* slot 0 */
	uint8_t (*more)[PH_PAGE_SIZE]; /* slots 1.. (sharers whose pages differ) */
	size_t n_slots;
	bool has_content;
	uint64_t bytes_lost;
	/* outcome */
	bool cleared, pinned;
};

/* ---- small helpers ----------------------------------------------------- */

static char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return (char *)(s ? s + 1 : p);
}


static void job_done(struct job *j)
{
	free(j->device);
	free(j->list);
	free(j->mount);
	free(j->ns_id);
	free(j->pin);
	free(j->tmp);
	free(j->qname);
	for (size_t i = 0; i < j->n_owners; i++)
		free(j->owners[i].path);
	free(j->owners);
	free(j->steps);
	free(j->more);
	memset(j, 0, sizeof(*j));
}

/* The repaired page of content slot s. */
static uint8_t *slot_page(struct job *j, size_t s)
{
	return s == 0 ? j->content : j->more[s - 1];
}

/* All slots, one page each, as stored in the intent log. */
static uint8_t *slots_blob(struct job *j, size_t *ret_len)
{
	uint8_t *b = malloc(MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE);

	if (!b)
		return NULL;
	memcpy(b, j->content, PH_PAGE_SIZE);
	for (size_t s = 1; s < j->n_slots; s++)
		memcpy(b + s * PH_PAGE_SIZE, j->more[s - 1], PH_PAGE_SIZE);
	*ret_len = MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE;
	return b;
}

static int slots_from_blob(struct job *j, const void *blob, size_t len)
{
	size_t n = len / PH_PAGE_SIZE;

	if (len % PH_PAGE_SIZE || n == 0 || n != MAX(j->n_slots, (size_t)1))
		return -EBADMSG;
	memcpy(j->content, blob, PH_PAGE_SIZE);
	if (n > 1) {
		j->more = calloc(n - 1, PH_PAGE_SIZE);
		if (!j->more)
			return -ENOMEM;
		memcpy(j->more, (const uint8_t *)blob + PH_PAGE_SIZE, (n - 1) * PH_PAGE_SIZE);
	}
	return 0;
}

/* Where page offset off of fd lives: its sector on the filesystem's device,
 * or a hole.  *shared from FIEMAP. */
static int page_map(int fd, uint64_t off, uint64_t *ret_sector, bool *ret_hole, bool *ret_shared)
{
	union {
		struct fiemap fm;
		char buf[sizeof(struct fiemap) + sizeof(struct fiemap_extent)];
	} u = { 0 };
	const struct fiemap_extent *e = &u.fm.fm_extents[0];

	u.fm.fm_start = off;
	u.fm.fm_length = PH_PAGE_SIZE;
	u.fm.fm_extent_count = 1;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0)
		return negative_errno();
	if (u.fm.fm_mapped_extents == 0 || e->fe_logical > off || e->fe_logical + e->fe_length <= off) {
		*ret_hole = true;
		*ret_sector = 0;
		if (ret_shared)
			*ret_shared = false;
		return 0;
	}
	*ret_hole = false;
	*ret_sector = (e->fe_physical + (off - e->fe_logical)) >> PH_SECTOR_SHIFT;
	if (ret_shared)
		*ret_shared = e->fe_flags & FIEMAP_EXTENT_SHARED;
	return 0;
}

/* Is any sector of the page listed bad now? */
static int page_listed(struct ph_ctx *ctx, const struct job *j, bool *ret)
{
	struct ph_ranges l = { 0 };
	struct ph_range pg = { j->page, PH_PAGE_SECTORS };
	int r;

	r = ph_source_read_list(ctx, j->list, &l, NULL);
	if (r < 0)
		return r;
	*ret = false;
	for (size_t i = 0; i < l.n; i++)
		if (ph_range_intersect(&l.v[i], &pg, NULL))
			*ret = true;
	ph_ranges_clear(&l);
	return 0;
}

static int open_owner(const struct job_owner *o, int flags, int *ret_fd)
{
	struct stat st;
	uint64_t gen = 0;
	int fd;

	fd = open(o->path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0 || st.st_ino != o->inode ||
	    (ioctl(fd, FS_IOC_GETVERSION, &gen) == 0 && o->gen && gen != o->gen)) {
		close(fd);
		return -ESTALE; /* replaced since it was planned */
	}
	*ret_fd = fd;
	return 0;
}

static bool same_bytes(int fd, uint64_t off, const uint8_t *want)
{
	uint8_t buf[PH_PAGE_SIZE];

	return pread(fd, buf, sizeof(buf), (off_t)off) == (ssize_t)sizeof(buf) &&
	       memcmp(buf, want, sizeof(buf)) == 0;
}

static int ensure_quarantine(const char *mount, char **ret_dir)
{
	_cleanup_free_ char *base = NULL, *dir = NULL;

	if (asprintf(&base, "%s/.pmemheal", strcmp(mount, "/") ? mount : "") < 0 ||
	    asprintf(&dir, "%s/.pmemheal/quarantine", strcmp(mount, "/") ? mount : "") < 0)
		return -ENOMEM;
	if ((mkdir(base, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
		return negative_errno();
	*ret_dir = TAKE_PTR(dir);
	return 0;
}

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

/* Source= must be a regular file of the owner's size. */
static int read_source(const char *source, const struct job_owner *o, uint8_t *out, char **why)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	ssize_t n;

	fd = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return asprintf(why, "%s: %m", source) < 0 ? -ENOMEM : -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return asprintf(why, "%s is not a regular file", source) < 0 ? -ENOMEM : -EINVAL;
	if ((uint64_t)st.st_size != o->size)
		return asprintf(why, "%s has %jd bytes, %s has %" PRIu64, source, (intmax_t)st.st_size, o->path,
				o->size) < 0 ? -ENOMEM : -EINVAL;
	memset(out, 0, PH_PAGE_SIZE);
	n = pread(fd, out, PH_PAGE_SIZE, (off_t)o->offset);
	if (n < 0)
		return asprintf(why, "%s: %m", source) < 0 ? -ENOMEM : -EIO;
	return 0;
}

static int run_hook(const struct ph_rule *rule, const struct job *j, size_t owner, const char *source, uint8_t *out,
		    char **why)
{
	const struct job_owner *o = &j->owners[owner];
	char outpath[] = "/tmp/pmemheal-hook-XXXXXX";
	char *envp[10] = { 0 };
	struct json_object *in = json_object_new_object();
	const char *text;
	int pipefd[2], ofd, status = 0, r = 0, pidfd;
	pid_t pid;

	ofd = mkostemp(outpath, O_CLOEXEC);
	if (ofd < 0 || !in)
		return -errno ?: -ENOMEM;
	json_object_object_add(in, "path", json_object_new_string(o->path));
	json_object_object_add(in, "inode", json_object_new_int64((int64_t)o->inode));
	json_object_object_add(in, "offset", json_object_new_int64((int64_t)o->offset));
	json_object_object_add(in, "length", json_object_new_int(PH_PAGE_SIZE));
	json_object_object_add(in, "device", json_object_new_string(j->device));
	json_object_object_add(in, "sector", json_object_new_int64((int64_t)j->page));
	json_object_object_add(in, "output", json_object_new_string(outpath));
	json_object_object_add(in, "source", source ? json_object_new_string(source) : NULL);
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
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = negative_errno();
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		close(pipefd[0]);
		close(pipefd[1]);
		goto out;
	}
	if (pid == 0) {
		/* Its own process group, so a timeout ends whatever it started;
		 * its output goes to stderr, never into ours (--json). */
		(void)setpgid(0, 0);
		dup2(pipefd[0], STDIN_FILENO);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execve(rule->hook[0], rule->hook, envp);
		_exit(127);
	}
	(void)setpgid(pid, pid);
	close(pipefd[0]);
	signal(SIGPIPE, SIG_IGN);
	(void)!write(pipefd[1], text, strlen(text));
	close(pipefd[1]);

	/* Wait, bounded by HookTimeoutSec=: SIGTERM, then SIGKILL. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int ms = (int)MIN(rule->hook_timeout_usec / 1000, (uint64_t)INT_MAX);

		if (poll(&p, 1, ms) == 0) {
			kill(-pid, SIGTERM);
			(void)poll(&p, 1, 5000);
			kill(-pid, SIGKILL); /* the rest of its group, whatever ignored SIGTERM */
			r = -ETIME;
		}
		close(pidfd);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
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

/* ---- jobs as JSON (the intent log's "plan") ---------------------------- */

static struct json_object *job_to_json(const struct job *j)
{
	struct json_object *o = json_object_new_object(), *owners = json_object_new_array(),
			   *steps = json_object_new_array();

	json_object_object_add(o, "range_id", json_object_new_int64(j->range_id));
	json_object_object_add(o, "device", json_object_new_string(j->device));
	json_object_object_add(o, "list", json_object_new_string(j->list));
	json_object_object_add(o, "mount", j->mount ? json_object_new_string(j->mount) : NULL);
	json_object_object_add(o, "ns_id", json_object_new_string(j->ns_id));
	json_object_object_add(o, "page", json_object_new_int64((int64_t)j->page));
	json_object_object_add(o, "fs_page", json_object_new_int64((int64_t)j->fs_page));
	json_object_object_add(o, "mode", json_object_new_int(j->mode));
	json_object_object_add(o, "can_clear", json_object_new_boolean(j->can_clear));
	json_object_object_add(o, "hole", json_object_new_boolean(j->hole));
	json_object_object_add(o, "pin", j->pin ? json_object_new_string(j->pin) : NULL);
	json_object_object_add(o, "tmp", j->tmp ? json_object_new_string(j->tmp) : NULL);
	json_object_object_add(o, "qname", j->qname ? json_object_new_string(j->qname) : NULL);
	json_object_object_add(o, "bytes_lost", json_object_new_int64((int64_t)j->bytes_lost));
	json_object_object_add(o, "slots", json_object_new_int64((int64_t)j->n_slots));
	for (size_t i = 0; i < j->n_owners; i++) {
		struct json_object *w = json_object_new_object();

		json_object_object_add(w, "path", json_object_new_string(j->owners[i].path));
		json_object_object_add(w, "inode", json_object_new_int64((int64_t)j->owners[i].inode));
		json_object_object_add(w, "gen", json_object_new_int64((int64_t)j->owners[i].gen));
		json_object_object_add(w, "offset", json_object_new_int64((int64_t)j->owners[i].offset));
		json_object_object_add(w, "size", json_object_new_int64((int64_t)j->owners[i].size));
		json_object_object_add(w, "mtime_ns", json_object_new_int64(j->owners[i].mtime_ns));
		json_object_object_add(w, "ctime_ns", json_object_new_int64(j->owners[i].ctime_ns));
		json_object_object_add(w, "repair", json_object_new_boolean(j->owners[i].repair));
		json_object_object_add(w, "link", json_object_new_boolean(j->owners[i].link));
		json_object_object_add(w, "slot", json_object_new_int64(j->owners[i].slot == SIZE_MAX ? -1 :
									  (int64_t)j->owners[i].slot));
		json_object_array_add(owners, w);
	}
	for (size_t i = 0; i < j->n_steps; i++) {
		struct json_object *s = json_object_new_array();

		json_object_array_add(s, json_object_new_int(j->steps[i].kind));
		json_object_array_add(s, json_object_new_int((int)j->steps[i].owner));
		json_object_array_add(steps, s);
	}
	json_object_object_add(o, "owners", owners);
	json_object_object_add(o, "steps", steps);
	return o;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}

static int64_t jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static char *jdup(struct json_object *o, const char *k)
{
	const char *s = jstr(o, k);

	return s ? strdup(s) : NULL;
}

static int job_from_json(const char *text, struct job *j)
{
	struct json_object *o = json_tokener_parse(text), *owners, *steps;
	int r = -EBADMSG;

	memset(j, 0, sizeof(*j));
	if (!o)
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "owners", &owners) || !json_object_object_get_ex(o, "steps", &steps))
		goto out;
	j->range_id = jint(o, "range_id");
	j->device = jdup(o, "device");
	j->list = jdup(o, "list");
	j->mount = jdup(o, "mount");
	j->ns_id = jdup(o, "ns_id");
	j->page = (uint64_t)jint(o, "page");
	j->fs_page = (uint64_t)jint(o, "fs_page");
	j->mode = (enum ph_mode)jint(o, "mode");
	j->can_clear = jint(o, "can_clear");
	j->hole = jint(o, "hole");
	j->pin = jdup(o, "pin");
	j->tmp = jdup(o, "tmp");
	j->qname = jdup(o, "qname");
	j->bytes_lost = (uint64_t)jint(o, "bytes_lost");
	/* Jobs written before sharers had pages of their own: one slot. */
	j->n_slots = json_object_object_get_ex(o, "slots", NULL) ? (size_t)jint(o, "slots") : 1;
	j->n_owners = json_object_array_length(owners);
	j->owners = calloc(MAX(j->n_owners, (size_t)1), sizeof(*j->owners));
	j->n_steps = json_object_array_length(steps);
	j->steps = calloc(MAX(j->n_steps, (size_t)1), sizeof(*j->steps));
	if (!j->device || !j->list || !j->ns_id || !j->owners || !j->steps) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->n_owners; i++) {
		struct json_object *w = json_object_array_get_idx(owners, i);

		j->owners[i] = (struct job_owner){
			.path = jdup(w, "path"), .inode = (uint64_t)jint(w, "inode"), .gen = (uint64_t)jint(w, "gen"),
			.offset = (uint64_t)jint(w, "offset"), .size = (uint64_t)jint(w, "size"),
			.mtime_ns = jint(w, "mtime_ns"), .ctime_ns = jint(w, "ctime_ns"), .repair = jint(w, "repair"),
			.link = jint(w, "link"),
		};
		if (!json_object_object_get_ex(w, "slot", NULL))
			j->owners[i].slot = j->owners[i].repair ? 0 : SIZE_MAX;
		else if (jint(w, "slot") < 0)
			j->owners[i].slot = SIZE_MAX;
		else if ((uint64_t)jint(w, "slot") < MAX(j->n_slots, (size_t)1))
			j->owners[i].slot = (size_t)jint(w, "slot");
		else
			goto out;
		if (!j->owners[i].path)
			goto out;
	}
	for (size_t i = 0; i < j->n_steps; i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);

		j->steps[i].kind = (enum ph_step_kind)json_object_get_int(json_object_array_get_idx(s, 0));
		j->steps[i].owner = (size_t)json_object_get_int(json_object_array_get_idx(s, 1));
		if (j->steps[i].owner >= MAX(j->n_owners, (size_t)1))
			goto out;
	}
	r = 0;
out:
	json_object_put(o);
	if (r < 0)
		job_done(j);
	return r;
}

/* ---- steps ------------------------------------------------------------- */

/* The file is not where the job left it: log why and stop (-ESTALE). */
static int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...) _printf_(3, 4);
static int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	ph_warn(r->ctx, "page %" PRIu64 ": %s; stopping, nothing written", j->page, msg ? msg : "conflict");
	return -ESTALE;
}

#define CONFLICT(j, ...) conflict(r, (j), __VA_ARGS__)

/* Is the job's filesystem still mounted where it was?  A file gone from a
 * mounted filesystem was removed by someone (a conflict); from one that
 * is gone, it may come back (the job stays pending). */
static bool mount_present(const struct job *j)
{
	_cleanup_free_ char *up = NULL;
	struct stat a, b;

	if (!j->mount || stat(j->mount, &a) < 0)
		return false;
	if (strcmp(j->mount, "/") == 0)
		return true;
	if (asprintf(&up, "%s/..", j->mount) < 0 || stat(up, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

/* Open owner o and find the block under its page: a conflict when the
 * file was replaced since the plan. */
static int open_page(struct ph_repairer *r, const struct job *j, const struct job_owner *o, int flags, int *ret_fd,
		     uint64_t *ret_sector, bool *ret_hole)
{
	int k = open_owner(o, flags, ret_fd);

	if (k == -ENOENT && mount_present(j))
		return CONFLICT(j, "%s was removed", o->path); /* its user's doing: nothing to give it */
	if (k < 0)
		return k == -ESTALE ? CONFLICT(j, "%s was replaced", o->path) : k;
	return page_map(*ret_fd, o->offset, ret_sector, ret_hole, NULL);
}

static int step_pin(struct ph_repairer *r, struct job *j)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int fd = -EBADF, pin = -EBADF;
	_cleanup_free_ char *qdir = NULL;
	struct file_clone_range fcr;
	struct stat st;
	uint64_t sector;
	bool hole;
	int k;

	k = ensure_quarantine(j->mount, &qdir);
	if (k < 0)
		return k;
	pin = open(j->pin, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (pin < 0)
		return negative_errno();
	if (page_map(pin, 0, &sector, &hole, NULL) == 0 && !hole && sector == j->fs_page)
		return 0; /* pinned already */
	k = open_page(r, j, o, O_RDONLY, &fd, &sector, &hole);
	if (k < 0)
		return k;
	if (hole || sector != j->fs_page)
		return CONFLICT(j, "%s no longer maps the poisoned block at %" PRIu64, o->path, o->offset);
	if (fstat(fd, &st) < 0)
		return negative_errno();
	/* A last page partly past the end is cloned to the end (length 0):
	 * a clone may not reach past the source's end. */
	fcr = (struct file_clone_range){ .src_fd = fd, .src_offset = o->offset,
					 .src_length = (uint64_t)st.st_size < o->offset + PH_PAGE_SIZE ? 0 : PH_PAGE_SIZE,
					 .dest_offset = 0 };
	if (ioctl(pin, FICLONERANGE, &fcr) < 0)
		return negative_errno();
	if (fsync(pin) < 0)
		return negative_errno();
	k = page_map(pin, 0, &sector, &hole, NULL);
	if (k < 0)
		return k;
	return !hole && sector == j->fs_page ? 0 : -EIO;
}

static int step_punch(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int fd = -EBADF;
	uint64_t sector;
	bool hole;
	int k;

	k = open_page(r, j, o, O_RDWR, &fd, &sector, &hole);
	if (k < 0)
		return k;
	if (hole)
		return 0;
	if (sector != j->fs_page)
		return CONFLICT(j, "%s maps another block at %" PRIu64 " than the poisoned one", o->path, o->offset);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o->offset, PH_PAGE_SIZE) < 0)
		return negative_errno();
	return fdatasync(fd) < 0 ? negative_errno() : 0;
}

static int step_write(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int fd = -EBADF;
	uint64_t sector;
	bool hole, in_place = j->mode == PH_MODE_IN_PLACE || j->mode == PH_MODE_DELETE || j->mode == PH_MODE_PUNCH;
	int k;

	k = open_page(r, j, o, O_RDWR, &fd, &sector, &hole);
	if (k < 0)
		return k;
	if (in_place) {
		bool listed;

		if (hole || sector != j->fs_page)
			return CONFLICT(j, "%s no longer maps the poisoned block at %" PRIu64, o->path, o->offset);
		/* Still poisoned?  If not, someone wrote the page since: it is
		 * theirs now; if it holds our bytes, this step is done. */
		k = page_listed(r->ctx, j, &listed);
		if (k < 0)
			return k;
		if (!listed)
			return same_bytes(fd, o->offset, j->content) ? 0 :
			       CONFLICT(j, "%s's page at %" PRIu64 " was rewritten since it was planned", o->path, o->offset);
	} else if (!hole) {
		if (sector == j->fs_page)
			return CONFLICT(j, "%s still maps the poisoned block: it was not punched", o->path);
		return same_bytes(fd, o->offset, j->content) ? 0 :
		       CONFLICT(j, "%s's page at %" PRIu64 " holds data of someone else", o->path, o->offset);
	}
	if (pwrite(fd, j->content, PH_PAGE_SIZE, (off_t)o->offset) != PH_PAGE_SIZE)
		return errno ? negative_errno() : -EIO;
	return fdatasync(fd) < 0 ? negative_errno() : 0;
}

static int step_reshare(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i], *first = &j->owners[0];
	_cleanup_close_ int fd = -EBADF, src = -EBADF;
	struct file_clone_range fcr;
	uint64_t sector, want;
	bool hole;
	int k;

	k = open_owner(first, O_RDONLY, &src);
	if (k == 0)
		k = open_owner(o, O_RDWR, &fd);
	if (k < 0)
		return k == -ESTALE ? CONFLICT(j, "a sharer was replaced") : k;
	k = page_map(src, first->offset, &want, &hole, NULL);
	if (k < 0)
		return k;
	if (hole || want == j->fs_page)
		return CONFLICT(j, "%s has no repaired page to share", first->path);
	k = page_map(fd, o->offset, &sector, &hole, NULL);
	if (k < 0)
		return k;
	if (!hole && sector == want)
		return 0; /* shared already */
	if (!hole && sector != j->fs_page)
		return CONFLICT(j, "%s's page at %" PRIu64 " holds data of someone else", o->path, o->offset);
	fcr = (struct file_clone_range){ .src_fd = src, .src_offset = first->offset, .src_length = PH_PAGE_SIZE,
					 .dest_offset = o->offset };
	if (ioctl(fd, FICLONERANGE, &fcr) < 0)
		return negative_errno();
	return fdatasync(fd) < 0 ? negative_errno() : 0;
}

/* The staging file: the job's repaired pages, slot s at s pages, on fresh
 * blocks of the filesystem, next to the pin. */
static int stage_path(const struct job *j, char **ret)
{
	size_t l = strlen(j->pin);

	if (l < 4 || strcmp(j->pin + l - 4, ".pin") != 0)
		return -EINVAL;
	return asprintf(ret, "%.*s.stage", (int)(l - 4), j->pin) < 0 ? -ENOMEM : 0;
}

/* The bytes of owner o's page that are inside the file: a page at the end
 * of a file is partly past it. */
static size_t page_len(const struct job_owner *o)
{
	return o->offset >= o->size ? 0 : (size_t)MIN((uint64_t)PH_PAGE_SIZE, o->size - o->offset);
}

static bool same_prefix(int fd, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t buf[PH_PAGE_SIZE];

	return len <= sizeof(buf) && pread(fd, buf, len, (off_t)off) == (ssize_t)len && memcmp(buf, want, len) == 0;
}

/* Allocate first: every repaired page is written to a fresh block of the
 * staging file before any owner gives anything up.  No space (ENOSPC), a
 * bad new block (EIO) or a vanished device fails here, with every owner
 * still whole. */
static int step_stage(struct ph_repairer *r, struct job *j)
{
	_cleanup_free_ char *qdir = NULL, *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	int k;

	k = ensure_quarantine(j->mount, &qdir);
	if (k == 0)
		k = stage_path(j, &path);
	if (k < 0)
		return k;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return CONFLICT(j, "%s is not a file pmemheal staged", path);
	for (size_t sl = 0; sl < MAX(j->n_slots, (size_t)1); sl++) {
		uint64_t sector;
		bool hole;

		k = page_map(fd, sl * PH_PAGE_SIZE, &sector, &hole, NULL);
		if (k < 0)
			return k;
		if (!hole && sector != j->fs_page && same_bytes(fd, sl * PH_PAGE_SIZE, slot_page(j, sl)))
			continue; /* staged already */
		if (pwrite(fd, slot_page(j, sl), PH_PAGE_SIZE, (off_t)(sl * PH_PAGE_SIZE)) != PH_PAGE_SIZE)
			return errno ? negative_errno() : -ENOSPC;
	}
	if (fdatasync(fd) < 0)
		return negative_errno();
	/* Each staged page on a block of its own, and not the poisoned one. */
	for (size_t sl = 0; sl < MAX(j->n_slots, (size_t)1); sl++) {
		uint64_t sector;
		bool hole;

		k = page_map(fd, sl * PH_PAGE_SIZE, &sector, &hole, NULL);
		if (k < 0)
			return k;
		if (hole || sector == j->fs_page)
			return -EIO;
	}
	return 0;
}

/* Owner i's page becomes its staged page in one FICLONERANGE: the owner
 * maps the poisoned block or the new one, never a hole, whatever fails. */
static int step_swap(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int fd = -EBADF, stage = -EBADF;
	_cleanup_free_ char *path = NULL;
	struct file_clone_range fcr;
	uint64_t sector, want = 0;
	size_t len = page_len(o);
	struct stat st;
	bool hole;
	int k;

	if (o->slot == SIZE_MAX || o->slot >= MAX(j->n_slots, (size_t)1))
		return -EINVAL;
	k = stage_path(j, &path);
	if (k < 0)
		return k;
	stage = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (stage >= 0)
		k = page_map(stage, o->slot * PH_PAGE_SIZE, &want, &hole, NULL);
	if (stage < 0 || k < 0 || hole || !same_bytes(stage, o->slot * PH_PAGE_SIZE, slot_page(j, o->slot))) {
		/* Gone or changed (a resumed job): stage again from the log. */
		stage = safe_close(stage);
		k = step_stage(r, j);
		if (k < 0)
			return k;
		stage = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (stage < 0)
			return negative_errno();
		k = page_map(stage, o->slot * PH_PAGE_SIZE, &want, &hole, NULL);
		if (k < 0)
			return k;
	}
	k = open_page(r, j, o, O_RDWR, &fd, &sector, &hole);
	if (k < 0)
		return k;
	if (hole)
		return CONFLICT(j, "%s has a hole at %" PRIu64 " now", o->path, o->offset);
	if (sector != j->fs_page && sector != want && !same_prefix(fd, o->offset, slot_page(j, o->slot), len))
		return CONFLICT(j, "%s's page at %" PRIu64 " holds data of someone else", o->path, o->offset);
	if (sector == j->fs_page) {
		fcr = (struct file_clone_range){ .src_fd = stage, .src_offset = o->slot * PH_PAGE_SIZE,
						 .src_length = PH_PAGE_SIZE, .dest_offset = o->offset };
		if (ioctl(fd, FICLONERANGE, &fcr) < 0)
			return negative_errno();
	}
	/* A last page partly past the end: the clone grew the file to the
	 * whole page; give it back its size. */
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if ((uint64_t)st.st_size > o->size && ftruncate(fd, (off_t)o->size) < 0)
		return negative_errno();
	return fdatasync(fd) < 0 ? negative_errno() : 0;
}

static int step_unstage(struct ph_repairer *r, struct job *j)
{
	_cleanup_free_ char *path = NULL;
	int k = stage_path(j, &path);

	if (k < 0)
		return k;
	return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
}

static int step_clear(struct ph_repairer *r, struct job *j)
{
	static const uint8_t zeros[PH_PAGE_SIZE];
	_cleanup_close_ int pin = -EBADF;
	uint64_t sector;
	bool hole, shared, listed;
	int k;

	pin = open(j->pin, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (pin < 0)
		return errno == ENOENT ? 0 : negative_errno(); /* released already */
	k = page_map(pin, 0, &sector, &hole, &shared);
	if (k < 0)
		return k;
	if (hole || sector != j->fs_page) {
		j->cleared = true;
		return 0;
	}
	if (shared) {
		/* An owner still maps it (one left unrepaired): a DAX write
		 * would copy it first and fail.  Keep it pinned. */
		j->pinned = true;
		return 0;
	}
	k = page_listed(r->ctx, j, &listed);
	if (k < 0)
		return k;
	if (listed) {
		if (pwrite(pin, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros))
			return errno ? negative_errno() : -EIO;
		if (fdatasync(pin) < 0)
			return negative_errno();
		k = page_listed(r->ctx, j, &listed);
		if (k < 0)
			return k;
	}
	if (listed) {
		j->pinned = true; /* the bus did not clear it after all */
		return 0;
	}
	j->cleared = true;
	return 0;
}

static int step_release(struct ph_repairer *r, struct job *j)
{
	_cleanup_close_ int pin = -EBADF;
	uint64_t sector;
	bool hole, listed;
	int k;

	pin = open(j->pin, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (pin < 0)
		return errno == ENOENT ? 0 : negative_errno();
	/* Asked again, not remembered: a resumed job starts here with no
	 * memory of what step_clear found.  Still poisoned: it stays. */
	k = page_map(pin, 0, &sector, &hole, NULL);
	if (k == 0 && !hole && sector == j->fs_page)
		k = page_listed(r->ctx, j, &listed);
	else
		listed = false;
	if (k < 0)
		return k;
	if (listed) {
		j->pinned = true;
		return 0;
	}
	if (fallocate(pin, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PH_PAGE_SIZE) < 0)
		return negative_errno();
	if (fsync(pin) < 0)
		return negative_errno();
	return unlink(j->pin) < 0 && errno != ENOENT ? negative_errno() : 0;
}

static int copy_xattrs(int from, int to)
{
	char names[65536], value[65536];
	ssize_t n = flistxattr(from, names, sizeof(names));

	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		ssize_t v = fgetxattr(from, names + i, value, sizeof(value));

		if (v < 0 || fsetxattr(to, names + i, value, (size_t)v, 0) < 0)
			return negative_errno();
	}
	return n < 0 ? negative_errno() : 0;
}

/* The whole file, with the repaired page (or a hole), keeping mode, owner,
 * extended attributes and times.  Holes stay holes. */
static int step_copy(struct ph_repairer *r, struct job *j)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int in = -EBADF, out = -EBADF;
	_cleanup_free_ uint8_t *buf = NULL;
	const size_t chunk = 1 << 20;
	struct stat st;
	off_t pos = 0;
	int k;

	k = open_owner(o, O_RDONLY, &in);
	if (k < 0)
		return k == -ESTALE ? CONFLICT(j, "%s was replaced", o->path) : k;
	if (fstat(in, &st) < 0)
		return negative_errno();
	if ((uint64_t)st.st_size != o->size || st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != o->mtime_ns)
		return CONFLICT(j, "%s changed since it was planned", o->path);
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	(void)unlink(j->tmp);
	out = open(j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return negative_errno();
	for (;;) {
		off_t data = lseek(in, pos, SEEK_DATA), end;

		if (data < 0)
			break; /* ENXIO: no more data */
		end = lseek(in, data, SEEK_HOLE);
		if (end < 0)
			return negative_errno();
		for (pos = data; pos < end;) {
			size_t len = (size_t)MIN((off_t)chunk, end - pos);
			ssize_t n;

			/* The damaged page is not read: it comes from the job. */
			if ((uint64_t)pos <= o->offset && o->offset < (uint64_t)pos + len) {
				if ((uint64_t)pos < o->offset)
					len = o->offset - (uint64_t)pos;
				else {
					if (!j->hole &&
					    pwrite(out, j->content, PH_PAGE_SIZE, pos) != PH_PAGE_SIZE)
						return negative_errno();
					pos += PH_PAGE_SIZE;
					continue;
				}
			}
			n = pread(in, buf, len, pos);
			if (n < 0)
				return errno == EIO ?
					       CONFLICT(j, "another page of %s is poisoned too (at %jd); map and repair "
							"it first", o->path, (intmax_t)pos) : negative_errno();
			if (n == 0)
				break;
			if (pwrite(out, buf, (size_t)n, pos) != n)
				return negative_errno();
			pos += n;
		}
	}
	if (ftruncate(out, st.st_size) < 0 || fchown(out, st.st_uid, st.st_gid) < 0 ||
	    fchmod(out, st.st_mode & 07777) < 0)
		return negative_errno();
	k = copy_xattrs(in, out);
	if (k < 0 && k != -EOPNOTSUPP)
		return k;
	if (futimens(out, (struct timespec[]){ st.st_atim, st.st_mtim }) < 0)
		return negative_errno();
	return fsync(out) < 0 ? negative_errno() : 0;
}

static int quarantine_path(const struct job *j, char **ret)
{
	_cleanup_free_ char *qdir = NULL;
	int k = ensure_quarantine(j->mount, &qdir);

	if (k < 0)
		return k;
	return asprintf(ret, "%s/%s", qdir, j->qname) < 0 ? -ENOMEM : 0;
}

/* Owner i's own name in quarantine: sharers of one page are distinct
 * files and must never be moved onto one another. */
static int quarantine_path_of(const struct job *j, size_t i, char **ret)
{
	_cleanup_free_ char *qdir = NULL;
	const struct job_owner *o = &j->owners[i];
	int k = ensure_quarantine(j->mount, &qdir);

	if (k < 0)
		return k;
	return asprintf(ret, "%s/%" PRIu64 "-%s.%" PRIu64, qdir, o->inode, basename_of(o->path), j->page) < 0 ?
		       -ENOMEM : 0;
}

static int step_link_old(struct ph_repairer *r, struct job *j)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_free_ char *q = NULL;
	struct stat st;
	int k;

	k = quarantine_path(j, &q);
	if (k < 0)
		return k;
	if (lstat(q, &st) == 0)
		return st.st_ino == o->inode ? 0 : CONFLICT(j, "%s exists already", q);
	if (link(o->path, q) < 0)
		return negative_errno();
	if (lstat(q, &st) < 0 || st.st_ino != o->inode) {
		(void)unlink(q);
		return CONFLICT(j, "%s was replaced while it was linked aside", o->path);
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -EBADF;

	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 || fsync(fd) < 0 ? negative_errno() : 0;
}

static int step_rename(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	struct stat st;
	int k;

	if (j->mode != PH_MODE_RELOCATE_FILE) { /* quarantine: the rule's own, or a sharer's in relocate-pin */
		_cleanup_free_ char *q = NULL, *report = NULL;
		FILE *f;

		k = quarantine_path_of(j, i, &q);
		if (k < 0)
			return k;
		if (lstat(o->path, &st) < 0) {
			if (errno == ENOENT && lstat(q, &st) == 0 && st.st_ino == o->inode)
				return 0; /* moved already */
			return negative_errno();
		}
		if (st.st_ino != o->inode)
			return CONFLICT(j, "%s was replaced", o->path);
		/* Never over another quarantined file. */
		if (renameat2(AT_FDCWD, o->path, AT_FDCWD, q, RENAME_NOREPLACE) < 0)
			return errno == EEXIST ? CONFLICT(j, "%s exists already", q) : negative_errno();
		if (asprintf(&report, "%s.report.json", q) < 0)
			return -ENOMEM;
		f = fopen(report, "we");
		if (f) {
			fprintf(f, "{\"path\":\"%s\",\"inode\":%" PRIu64 ",\"device\":\"%s\",\"sector\":%" PRIu64
				   ",\"offset\":%" PRIu64 ",\"reason\":\"poisoned page; rule says quarantine\"}\n",
				o->path, o->inode, j->device, j->page, o->offset);
			fclose(f);
		}
		return fsync_parent(q);
	}
	/* The repaired copy over the original. */
	if (lstat(j->tmp, &st) < 0) {
		if (errno != ENOENT)
			return negative_errno();
		return lstat(o->path, &st) == 0 && st.st_ino != o->inode ? 0 :
		       CONFLICT(j, "the repaired copy of %s is gone", o->path);
	}
	if (lstat(o->path, &st) < 0 || st.st_ino != o->inode ||
	    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != o->mtime_ns)
		return CONFLICT(j, "%s changed while it was copied", o->path);
	if (rename(j->tmp, o->path) < 0)
		return negative_errno();
	return fsync_parent(o->path);
}

/* Another name of the old inode onto the repaired copy: link the copy
 * next to it, then rename that over it (atomic for each name). */
static int step_relink(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i], *first = &j->owners[0];
	_cleanup_free_ char *tmp = NULL, *dir = NULL;
	struct stat cur, st;

	if (lstat(first->path, &cur) < 0)
		return negative_errno();
	if (cur.st_ino == first->inode)
		return CONFLICT(j, "%s was not replaced by its copy", first->path);
	if (lstat(o->path, &st) < 0)
		return errno == ENOENT ? 0 : negative_errno(); /* that name is gone: nothing to split */
	if (st.st_ino == cur.st_ino)
		return 0; /* done */
	if (st.st_ino != o->inode)
		return CONFLICT(j, "%s is another file now", o->path);
	dir = strdup(o->path);
	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	if (asprintf(&tmp, "%s/.pmemheal-%s.%" PRIu64 ".lnk", dir, basename_of(o->path), j->page) < 0)
		return -ENOMEM;
	(void)unlink(tmp);
	if (link(first->path, tmp) < 0)
		return negative_errno();
	if (lstat(tmp, &st) < 0 || st.st_ino != cur.st_ino) {
		(void)unlink(tmp);
		return CONFLICT(j, "%s was replaced while it was linked", first->path);
	}
	if (rename(tmp, o->path) < 0) {
		int e = negative_errno();

		(void)unlink(tmp);
		return e;
	}
	return fsync_parent(o->path);
}

static int step_unlink(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	struct stat st;

	if (lstat(o->path, &st) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	if (st.st_ino != o->inode)
		return 0; /* another file by that name now: ours is gone */
	if (unlink(o->path) < 0)
		return negative_errno();
	return fsync_parent(o->path);
}

static int run_step(struct ph_repairer *r, struct job *j, const struct job_step *s)
{
	switch (s->kind) {
	case PH_STEP_PIN:
		return step_pin(r, j);
	case PH_STEP_PUNCH:
		return step_punch(r, j, s->owner);
	case PH_STEP_WRITE:
		return step_write(r, j, s->owner);
	case PH_STEP_RESHARE:
		return step_reshare(r, j, s->owner);
	case PH_STEP_CLEAR:
		return step_clear(r, j);
	case PH_STEP_RELEASE:
		return step_release(r, j);
	case PH_STEP_COPY_FILE:
		return step_copy(r, j);
	case PH_STEP_LINK_OLD:
		return step_link_old(r, j);
	case PH_STEP_RENAME:
		return step_rename(r, j, s->owner);
	case PH_STEP_UNLINK:
		return step_unlink(r, j, s->owner);
	case PH_STEP_RELINK:
		return step_relink(r, j, s->owner);
	case PH_STEP_STAGE:
		return step_stage(r, j);
	case PH_STEP_SWAP:
		return step_swap(r, j, s->owner);
	case PH_STEP_UNSTAGE:
		return step_unstage(r, j);
	default:
		return 0;
	}
}

/* ---- verification ------------------------------------------------------ */

static int verify(struct ph_repairer *r, struct job *j, char **why)
{
	bool listed = false;
	int k;

	switch (j->mode) {
	case PH_MODE_IN_PLACE:
	case PH_MODE_RELOCATE_PIN: {
		/* Each repaired owner reads back its own slot's page; owners of
		 * one slot (identical pages) share one block again. */
		_cleanup_free_ uint64_t *slot_sector = calloc(MAX(j->n_slots, (size_t)1), sizeof(uint64_t));
		_cleanup_free_ size_t *slot_owner = calloc(MAX(j->n_slots, (size_t)1), sizeof(size_t));

		if (!slot_sector || !slot_owner)
			return -ENOMEM;
		for (size_t i = 0; i < j->n_owners; i++) {
			const struct job_owner *o = &j->owners[i];
			_cleanup_close_ int fd = -EBADF;
			uint64_t sector;
			bool hole, shared;

			if (!o->repair || o->slot == SIZE_MAX)
				continue;
			k = open_owner(o, O_RDONLY, &fd);
			if (k == 0)
				k = page_map(fd, o->offset, &sector, &hole, &shared);
			if (k < 0)
				return asprintf(why, "%s: %s", o->path, strerror(-k)) < 0 ? -ENOMEM : k;
			if (!same_prefix(fd, o->offset, slot_page(j, o->slot), page_len(o)))
				return asprintf(why, "%s does not read back the repaired page at %" PRIu64, o->path,
						o->offset) < 0 ? -ENOMEM : -EIO;
			if (j->mode == PH_MODE_RELOCATE_PIN && (hole || sector == j->fs_page))
				return asprintf(why, "%s still maps the poisoned block", o->path) < 0 ? -ENOMEM : -EIO;
			if (page_len(o) < PH_PAGE_SIZE)
				continue; /* its last page was trimmed to its size: a block of its own */
			if (!slot_sector[o->slot]) {
				slot_sector[o->slot] = sector + 1;
				slot_owner[o->slot] = i;
			} else if (j->mode == PH_MODE_RELOCATE_PIN && sector + 1 != slot_sector[o->slot])
				return asprintf(why, "%s does not share the repaired block with %s", o->path,
						j->owners[slot_owner[o->slot]].path) < 0 ? -ENOMEM : -EIO;
		}
		if (j->mode == PH_MODE_IN_PLACE) {
			k = page_listed(r->ctx, j, &listed);
			if (k < 0)
				return k;
			if (listed)
				return asprintf(why, "the kernel still lists the page after writing it") < 0 ? -ENOMEM : -EIO;
			j->cleared = true;
		} else if (!j->cleared)
			j->pinned = true;
		return 0;
	}
	case PH_MODE_RELOCATE_FILE: {
		const struct job_owner *o = &j->owners[0];
		_cleanup_close_ int fd = open(o->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		static const uint8_t zeros[PH_PAGE_SIZE];

		if (fd < 0)
			return asprintf(why, "%s: %m", o->path) < 0 ? -ENOMEM : -EIO;
		if (!same_bytes(fd, o->offset, j->hole ? zeros : j->content))
			return asprintf(why, "the copy of %s does not hold the repaired page", o->path) < 0 ? -ENOMEM : -EIO;
		for (size_t i = 1; i < j->n_owners; i++) {
			struct stat a, b;

			if (!j->owners[i].link || lstat(j->owners[i].path, &b) < 0)
				continue; /* a name removed meanwhile splits nothing */
			if (fstat(fd, &a) < 0 || a.st_ino != b.st_ino)
				return asprintf(why, "%s is not a link of the repaired %s", j->owners[i].path,
						o->path) < 0 ? -ENOMEM : -EIO;
		}
		j->pinned = true; /* the old inode keeps the poisoned block */
		return 0;
	}
	case PH_MODE_QUARANTINE:
	case PH_MODE_DELETE:
	case PH_MODE_PUNCH:
		if (!j->cleared)
			j->pinned = true;
		return 0;
	default:
		return 0;
	}
}

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
static void pause_point(struct ph_repairer *r, enum ph_step_kind k)
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
static void abandon(struct job *j)
{
	_cleanup_free_ char *q = NULL;
	struct stat st;

	if (j->mode != PH_MODE_RELOCATE_FILE || j->n_owners == 0)
		return;
	if (lstat(j->owners[0].path, &st) < 0 || st.st_ino != j->owners[0].inode)
		return; /* renamed: the job went past the point of taking back */
	if (j->tmp)
		(void)unlink(j->tmp);
	if (j->qname && quarantine_path(j, &q) == 0 && lstat(q, &st) == 0 && st.st_ino == j->owners[0].inode)
		(void)unlink(q);
}

static int run_job(struct ph_repairer *r, struct job *j, int64_t intent, int from, char **why)
{
	int k;

	for (size_t i = (size_t)from; i < j->n_steps; i++) {
		pause_point(r, j->steps[i].kind);
		k = injected_error(r, j->steps[i].kind);
		if (k == 0)
			k = run_step(r, j, &j->steps[i]);
		if (k < 0) {
			if (!*why)
				(void)asprintf(why, "step %s%s%s: %s%s", ph_step_to_string(j->steps[i].kind),
					       j->owners[j->steps[i].owner].path ? " of " : "",
					       j->owners[j->steps[i].owner].path ? j->owners[j->steps[i].owner].path : "",
					       k == -ESTALE ? "the file changed since it was planned; nothing was written"
							    : strerror(-k),
					       k == -ESTALE ? "" : "; the repair is pending and resumes from this step");
			if (k == -ESTALE) {
				abandon(j);
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
	k = verify(r, j, why);
	(void)ph_ledger_intent_finish(r->ledger, intent, k < 0 ? "failed" : "done", *why, ph_now_usec());
	fault_point(r, PH_STEP_VERIFY);
	return k;
}

static bool changing_step(enum ph_step_kind k)
{
	return k != PH_STEP_READ_GOOD && k != PH_STEP_READ_SOURCE && k != PH_STEP_RUN_HOOK &&
	       k != PH_STEP_RECORD && k != PH_STEP_VERIFY && k != PH_STEP_CLEAR_DEVICE;
}

/* A job for a planned page: owners opened and fingerprinted now. */
static int job_from_plan(struct ph_repairer *r, const struct ph_plan *plan, const struct ph_plan_page *pg,
			 const struct ph_namespace *ns, uint64_t part_start, int64_t range_id, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->range_id = range_id;
	j->page = pg->sector;
	j->fs_page = pg->sector - part_start;
	j->mode = pg->mode;
	j->can_clear = plan->can_clear;
	j->hole = pg->mode == PH_MODE_RELOCATE_FILE && pg->content == PH_CONTENT_NONE;
	j->bytes_lost = pg->bytes_lost;
	j->n_slots = 1;
	j->device = strdup(plan->device);
	j->mount = plan->mountpoint ? strdup(plan->mountpoint) : NULL;
	j->ns_id = strdup(ns->id);
	if (!j->device || !j->ns_id || ph_source_device_list(ns, &j->list) < 0 ||
	    asprintf(&j->pin, "%s/" PH_QUARANTINE_DIR "/%s-%" PRIu64 ".pin",
		     strcmp(plan->mountpoint, "/") ? plan->mountpoint : "", ns->id, pg->sector) < 0)
		return -ENOMEM;
	j->owners = calloc(MAX(pg->n_owners, (size_t)1), sizeof(*j->owners));
	j->steps = calloc(MAX(pg->n_steps, (size_t)1), sizeof(*j->steps));
	if (!j->owners || !j->steps)
		return -ENOMEM;
	for (size_t i = 0; i < pg->n_owners; i++) {
		const struct ph_plan_owner *po = &pg->owners[i];
		struct job_owner *o = &j->owners[j->n_owners];
		_cleanup_close_ int fd = -EBADF;
		struct stat st;

		if (!po->path)
			return -ESTALE; /* no path: nothing safe to do */
		o->path = strdup(po->path);
		if (!o->path)
			return -ENOMEM;
		j->n_owners++;
		o->inode = po->inode;
		o->offset = po->file_offset;
		o->repair = po->action != PH_ACTION_REPORT;
		o->slot = o->repair ? 0 : SIZE_MAX;
		fd = open(o->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_ino != po->inode)
			return -ESTALE; /* renamed or replaced since it was mapped */
		(void)ioctl(fd, FS_IOC_GETVERSION, &o->gen);
		o->size = (uint64_t)st.st_size;
		o->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		o->ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	}
	/* delete removes whole files: every byte of each is given up */
	if (pg->mode == PH_MODE_DELETE) {
		j->bytes_lost = 0;
		for (size_t i = 0; i < j->n_owners; i++)
			if (j->owners[i].repair)
				j->bytes_lost += j->owners[i].size;
	} else if (pg->mode == PH_MODE_RELOCATE_PIN)
		for (size_t i = 0; i < j->n_owners; i++)
			if (pg->owners[i].action == PH_ACTION_DELETE)
				j->bytes_lost += j->owners[i].size;
	if (pg->mode == PH_MODE_RELOCATE_FILE && pg->n_owners == 1 && pg->owners[0].n_links > 0) {
		struct job_owner *v = reallocarray(j->owners, 1 + pg->owners[0].n_links, sizeof(*v));

		if (!v)
			return -ENOMEM;
		j->owners = v;
		for (size_t k = 0; k < pg->owners[0].n_links; k++) {
			j->owners[j->n_owners] = (struct job_owner){ .inode = j->owners[0].inode,
								     .offset = j->owners[0].offset, .link = true };
			if (!(j->owners[j->n_owners].path = strdup(pg->owners[0].links[k])))
				return -ENOMEM;
			j->n_owners++;
		}
	}
	if (j->n_owners > 0) {
		const char *base = basename_of(j->owners[0].path);
		_cleanup_free_ char *dir = strdup(j->owners[0].path);

		if (!dir)
			return -ENOMEM;
		*strrchr(dir, '/') = '\0';
		if (asprintf(&j->tmp, "%s/.pmemheal-%s.%" PRIu64 ".tmp", dir, base, pg->sector) < 0 ||
		    asprintf(&j->qname, "%" PRIu64 "-%s.%" PRIu64, j->owners[0].inode, base, pg->sector) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < pg->n_steps; i++)
		if (changing_step(pg->steps[i].kind))
			j->steps[j->n_steps++] = (struct job_step){ pg->steps[i].kind, pg->steps[i].owner };
	return 0;
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
			j->bytes_lost = 0;
			k = read_good(j->device, j->page, pg->bad_mask, salvaged, &j->bytes_lost);
			if (k < 0)
				return k;
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
		return read_source(po->source, &j->owners[i], out, why);
	case PH_CONTENT_HOOK:
		return run_hook(po->rule, j, i, po->source, out, why);
	}
	return -EINVAL;
}

/* The pages' new bytes, each owner's by its own rule; identical ones share
 * a slot (and a block, once staged).  1: owner *ret_owner cannot be
 * repaired so (a restore or hook that cannot help): plan it again with
 * *ret_fallback. */
static int compute_content(struct ph_repairer *r, const struct ph_plan_page *pg, struct job *j,
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
		if (k == -ENOMEM)
			return k;
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

/* ---- entry points ------------------------------------------------------- */

_public_ int ph_repairer_new(struct ph_ctx *ctx, struct ph_ledger *ledger, const struct ph_policy *policy,
			     const struct ph_topology *topo, struct ph_repairer **ret)
{
	struct ph_repairer *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->ctx = ph_ctx_ref(ctx);
	r->ledger = ledger;
	r->policy = policy;
	r->topo = topo;
#ifdef PH_FAULT_INJECTION
	{
		const char *f = getenv("PMEMHEAL_DEBUG_FAIL_AFTER");

		if (f && *f) {
			char *colon;

			r->fault_step = strdup(f);
			if (!r->fault_step) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			colon = strchr(r->fault_step, ':');
			r->fault_nth = colon ? (unsigned)atoi(colon + 1) : 1;
			if (colon)
				*colon = '\0';
		}
		f = getenv("PMEMHEAL_DEBUG_ERROR");
		if (f && *f) {
			static const struct { const char *name; int e; } names[] = {
				{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "ENODEV", ENODEV }, { "ENXIO", ENXIO },
				{ "EROFS", EROFS }, { "EDQUOT", EDQUOT },
			};
			char *c1, *c2;

			r->error_step = strdup(f);
			if (!r->error_step) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			c1 = strchr(r->error_step, ':');
			c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			r->error_nth = 1;
			r->error_errno = EIO;
			if (c1)
				*c1 = '\0';
			if (c2) {
				*c2 = '\0';
				r->error_nth = (unsigned)atoi(c1 + 1);
			}
			if (c1) {
				const char *e = c2 ? c2 + 1 : c1 + 1;

				r->error_errno = atoi(e) > 0 ? atoi(e) : EIO;
				for (size_t i = 0; i < ELEMENTSOF(names); i++)
					if (strcmp(e, names[i].name) == 0)
						r->error_errno = names[i].e;
			}
		}
		f = getenv("PMEMHEAL_DEBUG_PAUSE_BEFORE");
		if (f && *f && getenv("PMEMHEAL_DEBUG_PAUSE_FIFO")) {
			char *colon;

			r->pause_step = strdup(f);
			r->pause_fifo = strdup(getenv("PMEMHEAL_DEBUG_PAUSE_FIFO"));
			if (!r->pause_step || !r->pause_fifo) {
				ph_repairer_free(r);
				return -ENOMEM;
			}
			colon = strchr(r->pause_step, ':');
			r->pause_nth = colon ? (unsigned)atoi(colon + 1) : 1;
			if (colon)
				*colon = '\0';
		}
	}
#endif
	*ret = r;
	return 0;
}

_public_ struct ph_repairer *ph_repairer_free(struct ph_repairer *r)
{
	if (!r)
		return NULL;
	ph_pfns_done(&r->memfail);
	free(r->fault_step);
	free(r->error_step);
	free(r->pause_step);
	free(r->pause_fifo);
	ph_ctx_unref(r->ctx);
	free(r);
	return NULL;
}

_public_ void ph_repairer_set_recorder(struct ph_repairer *r, struct ph_recorder *rec)
{
	r->rec = rec;
}

_public_ void ph_repair_result_done(struct ph_repair_result *res)
{
	free(res->detail);
	free(res->notes);
	memset(res, 0, sizeof(*res));
}

static const struct ph_namespace *find_ns(const struct ph_topology *t, const char *id)
{
	for (size_t i = 0; t && i < t->n_namespaces; i++)
		if (strcmp(t->namespaces[i].id, id) == 0)
			return &t->namespaces[i];
	return NULL;
}

/* Everything needed to plan a range and to re-plan a page of it. */
struct session {
	struct ph_ctx *ctx;
	const struct ph_namespace *ns;
	struct ph_mapper *mapper;
	struct ph_map_result *res;
	struct ph_range q;
	struct ph_ranges bad;
	bool bad_read;
	char *device;
	struct ph_plan_env env[8]; /* one per filesystem on the device */
	uint64_t part_start[8];
	size_t n_env;
};

static void session_done(struct session *s)
{
	ph_map_results_free(s->res, 1);
	ph_mapper_free(s->mapper);
	ph_ranges_clear(&s->bad);
	free(s->device);
	memset(s, 0, sizeof(*s));
}

static int session_open(struct ph_repairer *r, const struct ph_range_row *row, struct session *s,
			struct ph_error *err)
{
	const struct ph_bus *bus;
	int k;

	memset(s, 0, sizeof(*s));
	s->ctx = r->ctx;
	s->ns = find_ns(r->topo, row->ns_id);
	if (!s->ns) {
		ph_error_set(err, "namespace %s is not present", row->ns_id);
		return -ENODEV;
	}
	bus = &r->topo->buses[r->topo->regions[s->ns->region].bus];
	if (!s->ns->blockdev) {
		ph_error_set(err, "%s has no block device (devdax): its poison can only be reported",
			     s->ns->chardev ? s->ns->chardev : s->ns->name);
		return -EOPNOTSUPP;
	}
	if (asprintf(&s->device, "/dev/%s", s->ns->blockdev) < 0)
		return -ENOMEM;
	if (!r->memfail_ok) {
		k = ph_memory_failures(r->ctx, &r->memfail);
		if (k < 0) {
			ph_error_set(err, "cannot tell which pages went through memory_failure (no kernel log): "
				     "refusing to read any");
			return k;
		}
		r->memfail_ok = true;
	}
	{
		_cleanup_free_ char *list = NULL;

		k = ph_source_device_list(s->ns, &list);
		if (k == 0)
			k = ph_source_read_list(r->ctx, list, &s->bad, NULL);
		if (k < 0 && k != -ENOENT)
			return k;
		s->bad_read = k == 0;
	}
	k = ph_mapper_new(r->ctx, s->device, PH_MAP_AUTO, &s->mapper, err);
	if (k < 0)
		return k;
	s->q.start = row->start / PH_PAGE_SECTORS * PH_PAGE_SECTORS;
	s->q.count = (row->start + row->count + PH_PAGE_SECTORS - 1) / PH_PAGE_SECTORS * PH_PAGE_SECTORS - s->q.start;
	if (s->q.start + s->q.count > ph_mapper_get_size(s->mapper))
		s->q.count = ph_mapper_get_size(s->mapper) - s->q.start;
	k = ph_mapper_map(s->mapper, &s->q, 1, &s->res, err);
	if (k < 0)
		return k;
	/* The audit trail: who owns the range, as this repair found it. */
	for (size_t i = 0; r->rec && i < s->res[0].n_owners; i++)
		(void)ph_record_owner(r->rec, row, &s->res[0], i);
	for (size_t i = 0; i < ph_mapper_n_fs(s->mapper) && s->n_env < ELEMENTSOF(s->env); i++) {
		const struct ph_map_fs *fs = ph_mapper_get_fs(s->mapper, i);
		struct ph_plan_env *e = &s->env[s->n_env];
		uint64_t fstart, fcount;
		bool reflink = false;
		uint32_t bsize = 0;

		ph_map_fs_get_extent(fs, &fstart, &fcount);
		if (ph_map_fs_get_mount(fs)) {
			_cleanup_close_ int fd = open(ph_map_fs_get_mount(fs), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (fd >= 0)
				(void)ph_fs_probe(fd, ph_map_fs_get_fstype(fs), &reflink, &bsize);
		}
		*e = (struct ph_plan_env){
			.policy = r->policy,
			.can_clear = bus->can_clear,
			.clear_reason = bus->clear_reason,
			.reflink = reflink,
			.device = s->device,
			.mountpoint = ph_map_fs_get_mount(fs),
			.fstype = ph_map_fs_get_fstype(fs),
			.block_size = bsize,
			.ns_start = s->ns->start == PH_UNKNOWN ? UINT64_MAX : s->ns->start,
			.memfail = &r->memfail,
			.bad = s->bad_read ? &s->bad : NULL,
			.override = _PH_ACTION_MAX,
		};
		s->part_start[s->n_env++] = fstart;
	}
	return 0;
}

/* Plan row's poisoned sectors on each filesystem they fall in. */
/* "PID 12 (comm), PID 34 (comm)": processes with path's inode open or
 * mapped, from /proc (resolved against the context's root).  NULL: none. */
static int find_holders(struct ph_ctx *ctx, const char *path, char **ret)
{
	_cleanup_free_ char *proc = NULL, *out = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	size_t len = 0;
	struct stat want;
	struct dirent *de;
	int k;

	*ret = NULL;
	if (stat(path, &want) < 0)
		return 0;
	k = ph_ctx_path(ctx, "/proc", &proc);
	if (k < 0)
		return k;
	d = opendir(proc);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *fddir = NULL, *maps = NULL, *comm = NULL, *line = NULL;
		_cleanup_(closedirp) DIR *fds = NULL;
		_cleanup_fclose_ FILE *f = NULL;
		char *end;
		bool found = false;
		size_t n = 0;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (asprintf(&fddir, "%s/%ld/fd", proc, pid) < 0 || asprintf(&maps, "%s/%ld/maps", proc, pid) < 0)
			return -ENOMEM;
		fds = opendir(fddir);
		while (fds && !found) {
			struct dirent *fe = readdir(fds);
			struct stat st;

			if (!fe)
				break;
			found = fstatat(dirfd(fds), fe->d_name, &st, 0) == 0 && st.st_dev == want.st_dev &&
				st.st_ino == want.st_ino;
		}
		f = found ? NULL : fopen(maps, "re");
		while (f && !found && getline(&line, &n, f) > 0) {
			unsigned maj, min;
			unsigned long long ino;

			found = sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3 &&
				ino == (unsigned long long)want.st_ino && makedev(maj, min) == want.st_dev;
		}
		if (!found)
			continue;
		{
			_cleanup_free_ char *cpath = NULL;
			_cleanup_fclose_ FILE *c = NULL;
			char name[64] = "?";

			if (asprintf(&cpath, "%s/%ld/comm", proc, pid) < 0)
				return -ENOMEM;
			c = fopen(cpath, "re");
			if (c && fgets(name, sizeof(name), c))
				name[strcspn(name, "\n")] = '\0';
			if (asprintf(&comm, "%sPID %ld (%s)", len ? ", " : "", pid, name) < 0)
				return -ENOMEM;
		}
		{
			char *v = realloc(out, len + strlen(comm) + 1);

			if (!v)
				return -ENOMEM;
			out = v;
			memcpy(out + len, comm, strlen(comm) + 1);
			len += strlen(comm);
		}
	}
	*ret = TAKE_PTR(out);
	return 0;
}

static int session_plan(struct session *s, const struct ph_range_row *row, struct ph_plan ***ret, size_t *ret_n)
{
	struct ph_plan **plans = calloc(MAX(s->n_env, (size_t)1), sizeof(*plans));
	size_t n = 0;
	int k = 0;

	if (!plans)
		return -ENOMEM;
	for (size_t i = 0; k == 0 && i < s->n_env; i++) {
		const struct ph_map_fs *fs = ph_mapper_get_fs(s->mapper, i);
		struct ph_range want = { row->start, row->count }, span, sub;
		uint64_t fstart, fcount;

		ph_map_fs_get_extent(fs, &fstart, &fcount);
		span = (struct ph_range){ fstart, fcount };
		if (!ph_range_intersect(&want, &span, &sub))
			continue;
		k = ph_plan_build(&s->env[i], sub.start, sub.count, &s->res[0], &plans[n]);
		if (k == 0)
			plans[n++]->part_start = fstart;
	}
	/* A file that moves (or is moved aside) leaves whoever has it open on
	 * the old inode: say who. */
	for (size_t i = 0; k == 0 && i < n; i++)
		for (size_t p = 0; k == 0 && p < plans[i]->n_pages; p++) {
			struct ph_plan_page *pg = &plans[i]->pages[p];

			if ((pg->mode == PH_MODE_RELOCATE_FILE || pg->mode == PH_MODE_QUARANTINE ||
			     pg->mode == PH_MODE_DELETE) && pg->n_owners > 0 && pg->owners[0].path)
				k = find_holders(s->ctx, pg->owners[0].path, &pg->holders);
		}
	if (k < 0) {
		for (size_t i = 0; i < n; i++)
			ph_plan_free(plans[i]);
		free(plans);
		return k;
	}
	*ret = plans;
	*ret_n = n;
	return 0;
}

static int devdax_plan(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
		       struct ph_plan ***ret, size_t *ret_n);

_public_ int ph_repair_plan(struct ph_repairer *r, const struct ph_range_row *row, struct ph_plan ***ret,
			    size_t *ret_n)
{
	const struct ph_namespace *ns = find_ns(r->topo, row->ns_id);
	struct session s;
	struct ph_error err = { { 0 } };
	int k;

	if (ns && !ns->blockdev && ns->chardev)
		return devdax_plan(r, ns, row, ret, ret_n);
	k = session_open(r, row, &s, &err);
	if (k == 0)
		k = session_plan(&s, row, ret, ret_n);
	else
		ph_err(r->ctx, "range %" PRId64 ": %s", row->id, err.message);
	session_done(&s);
	return k;
}

static bool writes(enum ph_mode m)
{
	return m != PH_MODE_RECORD && m != PH_MODE_REFUSED && m != PH_MODE_CLEAR_DEVICE;
}

static int set_state(struct ph_repairer *r, int64_t id, enum ph_state *cur, enum ph_state to, const char *event,
		     const char *detail)
{
	int k;

	if (*cur == to)
		return 0;
	k = ph_ledger_set_state(r->ledger, id, to, event, detail, ph_now_usec());
	if (k == 0)
		*cur = to;
	return k;
}

/* Execute one page; 0 done, 1 recorded only, <0 failed (why set). */
/* ---- the audit trail ---------------------------------------------------- */

static const char *dev_name(const char *device)
{
	return device && strncmp(device, "/dev/", 5) == 0 ? device + 5 : device;
}

/* One event about owner i of a planned page (i == SIZE_MAX: the page). */
static void rec_plan_page(struct ph_repairer *r, enum ph_event e, const struct ph_plan *plan,
			  const struct ph_plan_page *pg, size_t i, int64_t range_id, const char *ns_id,
			  const char *result, uint64_t bytes_lost, const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	_cleanup_free_ char *rule = NULL;

	if (!r->rec)
		return;
	f.device = dev_name(plan->device);
	f.sector = pg->sector;
	f.count = PH_PAGE_SECTORS;
	f.range_id = range_id;
	f.ns_id = ns_id;
	f.mountpoint = plan->mountpoint;
	f.result = result;
	f.bytes_lost = bytes_lost;
	f.detail = detail;
	f.action = ph_mode_to_string(pg->mode);
	if (pg->n_owners > 1)
		f.shared_owners = pg->n_owners;
	if (i != SIZE_MAX && i < pg->n_owners) {
		const struct ph_plan_owner *o = &pg->owners[i];

		f.path = o->path;
		f.inode = o->inode;
		f.offset = o->file_offset;
		f.length = PH_PAGE_SIZE;
		f.action = ph_action_to_string(o->action);
		if (o->rule && asprintf(&rule, "%s:%u", o->rule->file, o->rule->action_line) >= 0)
			f.rule = rule;
	} else if (pg->pin_path)
		f.path = pg->pin_path;
	(void)ph_record(r->rec, e, &f);
}

/* One event about a job read back from the intent log (resuming). */
static void rec_job(struct ph_repairer *r, enum ph_event e, const struct job *j, int64_t range_id, const char *result,
		    const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	if (!r->rec)
		return;
	f.device = dev_name(j->device);
	f.sector = j->page;
	f.count = PH_PAGE_SECTORS;
	f.range_id = range_id;
	f.ns_id = j->ns_id;
	f.mountpoint = j->mount;
	f.action = ph_mode_to_string(j->mode);
	f.result = result;
	f.detail = detail;
	if (j->n_owners > 0) {
		f.path = j->owners[0].path;
		f.inode = j->owners[0].inode;
		f.offset = j->owners[0].offset;
		f.length = PH_PAGE_SIZE;
	}
	if (e == PH_EVENT_REPAIRED)
		f.bytes_lost = j->bytes_lost;
	(void)ph_record(r->rec, e, &f);
}

static int repair_page(struct ph_repairer *r, struct session *s, size_t env_i, const struct ph_plan *plan,
		       const struct ph_plan_page *pg, int64_t range_id, struct ph_repair_result *res, unsigned depth,
		       bool may_replan, const struct ph_plan_override *ov, size_t n_ov)
{
	_cleanup_free_ char *why = NULL;
	_cleanup_free_ uint8_t *blob = NULL;
	enum ph_action fallback;
	size_t blob_len = 0, fb_owner;
	struct json_object *jj;
	struct job j;
	int64_t intent;
	int k;

	if (!writes(pg->mode)) {
		if (pg->kind == PH_PAGE_HEALED) {
			res->healed++;
			return 1;
		}
		if (pg->kind == PH_PAGE_PINNED) {
			res->pinned++; /* an earlier repair's pin: it stays */
			rec_plan_page(r, PH_EVENT_PINNED, plan, pg, SIZE_MAX, range_id, s->ns->id, "kept", PH_FIELD_UNSET,
				      pg->explain);
		} else {
			res->recorded++;
			/* What each file's rule said, so its history tells. */
			for (size_t i = 0; i < pg->n_owners; i++)
				rec_plan_page(r, PH_EVENT_PLANNED, plan, pg, i, range_id, s->ns->id,
					      pg->mode == PH_MODE_REFUSED ? "refused" : "report only", 0, pg->explain);
		}
		(void)ph_ledger_add_history(r->ledger, range_id, pg->mode == PH_MODE_REFUSED ? "refused" : "recorded",
					    pg->explain, ph_now_usec());
		return 1;
	}
	if (pg->holders) {
		_cleanup_free_ char *note = NULL;

		bool many = strchr(pg->holders, ',');

		if (asprintf(&note, "%s is open in %s: %s on the old inode (in quarantine) until %s", pg->owners[0].path,
			     pg->holders, many ? "they stay" : "it stays", many ? "they close it" : "it closes it") < 0)
			return -ENOMEM;
		ph_warn(r->ctx, "%s", note);
		(void)ph_ledger_add_history(r->ledger, range_id, "held-open", note, ph_now_usec());
		if (!res->notes)
			res->notes = TAKE_PTR(note);
	}
	k = job_from_plan(r, plan, pg, s->ns, plan->part_start, range_id, &j);
	if (k == -ESTALE)
		(void)asprintf(&why, "page %" PRIu64 ": a file changed since it was mapped; scan and repair again",
			       pg->sector);
	if (k < 0)
		goto fail;
	if (pg->content != PH_CONTENT_NONE || pg->mode != PH_MODE_RELOCATE_FILE) {
		k = compute_content(r, pg, &j, &fb_owner, &fallback, &why);
		if (k == 1 && depth <= pg->n_owners && pg->owners[fb_owner].path &&
		    (fallback != PH_ACTION_REPORT || pg->n_owners > 1)) {
			/* Re-plan this page with that owner's fallback action (its
			 * own rule's; its sharers keep theirs). */
			struct ph_plan_env e = s->env[env_i];
			_cleanup_(ph_plan_freep) struct ph_plan *p2 = NULL;
			_cleanup_free_ struct ph_plan_override *ov2 = calloc(n_ov + 1, sizeof(*ov2));

			if (!ov2) {
				k = -ENOMEM;
				goto fail;
			}
			if (n_ov > 0)
				memcpy(ov2, ov, n_ov * sizeof(*ov2));
			ov2[n_ov] = (struct ph_plan_override){ pg->owners[fb_owner].path, fallback };
			e.overrides = ov2;
			e.n_overrides = n_ov + 1;
			k = ph_plan_build(&e, pg->sector, PH_PAGE_SECTORS, &s->res[0], &p2);
			if (k < 0) {
				job_done(&j);
				goto fail;
			}
			p2->part_start = plan->part_start;
			(void)ph_ledger_add_history(r->ledger, range_id, "fallback", why, ph_now_usec());
			k = repair_page(r, s, env_i, p2, &p2->pages[0], range_id, res, depth + 1, may_replan, ov2,
					n_ov + 1);
			job_done(&j);
			return k;
		}
		if (k == 1) {
			job_done(&j);
			res->recorded++;
			(void)ph_ledger_add_history(r->ledger, range_id, "recorded", why, ph_now_usec());
			return 1;
		}
		if (k < 0)
			goto fail;
	}
	for (size_t i = 0; i < pg->n_owners; i++)
		if (pg->owners[i].action != PH_ACTION_REPORT || pg->n_owners == 1)
			rec_plan_page(r, PH_EVENT_PLANNED, plan, pg, i, range_id, s->ns->id, "planned", j.bytes_lost,
				      pg->explain);
	blob = slots_blob(&j, &blob_len);
	if (!blob) {
		k = -ENOMEM;
		goto fail;
	}
	jj = job_to_json(&j);
	k = ph_ledger_intent_begin(r->ledger, range_id, j.page,
				   json_object_to_json_string_ext(jj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
				   blob, blob_len, ph_now_usec(), &intent);
	json_object_put(jj);
	if (k < 0)
		goto fail;
	k = run_job(r, &j, intent, 0, &why);
	if (k < 0)
		goto fail;
	res->written++;
	res->cleared += j.cleared;
	res->pinned += j.pinned;
	res->bytes_lost += j.bytes_lost;
	{
		_cleanup_free_ char *detail = NULL;

		(void)asprintf(&detail, "page %" PRIu64 " of %s: %s; %" PRIu64 " bytes lost; %s", pg->sector,
			       j.n_owners ? j.owners[0].path : "?", ph_mode_to_string(j.mode), j.bytes_lost,
			       j.cleared ? "poison cleared" : j.pinned ? "poisoned block pinned" : "done");
		(void)ph_ledger_add_history(r->ledger, range_id, j.cleared ? "cleared" : j.pinned ? "pinned" : "repaired",
					    detail, ph_now_usec());
		for (size_t i = 0; i < pg->n_owners; i++) {
			const struct ph_plan_owner *po = &pg->owners[i];
			/* What this owner gave up, by its own rule (sharers may differ). */
			enum ph_content c = pg->mode == PH_MODE_RELOCATE_PIN ? po->content : pg->content;
			uint64_t lost = pg->mode != PH_MODE_RELOCATE_PIN ? j.bytes_lost :
					po->action == PH_ACTION_DELETE ? j.owners[i].size :
					po->action == PH_ACTION_PUNCH || c == PH_CONTENT_ZERO ? PH_PAGE_SIZE :
					c == PH_CONTENT_SALVAGE ? pg->bytes_lost : 0;

			if (po->action == PH_ACTION_REPORT && pg->n_owners > 1)
				continue;
			rec_plan_page(r, PH_EVENT_REPAIRED, plan, pg, i, range_id, s->ns->id, "ok", lost,
				      res->notes && i == 0 && pg->holders ? res->notes : NULL);
			if (lost > 0)
				rec_plan_page(r, PH_EVENT_DATA_LOST, plan, pg, i, range_id, s->ns->id, "ok", lost,
					      c == PH_CONTENT_SALVAGE ? "the poisoned sectors were written as zeros" :
					      po->action == PH_ACTION_DELETE ? "the file was removed" :
					      po->action == PH_ACTION_PUNCH ? "the page was punched (reads zeros)" :
					      "the page was written as zeros");
		}
		rec_plan_page(r, j.cleared ? PH_EVENT_CLEARED : j.pinned ? PH_EVENT_PINNED : PH_EVENT_REPAIRED, plan, pg,
			      pg->n_owners ? 0 : SIZE_MAX, range_id, s->ns->id, "ok", PH_FIELD_UNSET,
			      j.cleared ? "the kernel no longer lists the page" :
			      j.pinned ? (j.can_clear ? "the pinned block could not be cleared; it stays allocated" :
						       "the bus cannot clear: the poisoned block stays allocated in quarantine") :
			      NULL);
	}
	job_done(&j);
	return 0;
fail:
	if (k == -ESTALE && may_replan) {
		/* The file changed under us; nothing was written.  The caller
		 * maps the page afresh and plans it again. */
		(void)ph_ledger_add_history(r->ledger, range_id, "conflict", why ? why : "the file changed",
					    ph_now_usec());
		job_done(&j);
		return k;
	}
	res->failed++;
	if (!res->detail)
		res->detail = why ? TAKE_PTR(why) : strdup(strerror(-k));
	(void)ph_ledger_add_history(r->ledger, range_id, "failed", res->detail, ph_now_usec());
	rec_plan_page(r, PH_EVENT_FAILED, plan, pg, pg->n_owners ? 0 : SIZE_MAX, range_id, s->ns->id,
		      k == -ESTALE ? "conflict" : "failed", PH_FIELD_UNSET, why ? why : res->detail);
	job_done(&j);
	return k;
}

static bool in_replan(const struct ph_ranges *rs, uint64_t sector)
{
	for (size_t i = 0; i < rs->n; i++)
		if (sector >= rs->v[i].start && sector < rs->v[i].start + rs->v[i].count)
			return true;
	return false;
}

static enum ph_state final_state(const struct ph_repair_result *res)
{
	if (res->failed)
		return PH_STATE_FAILED;
	if (res->pinned)
		return PH_STATE_PINNED;
	if (res->written + res->healed > 0 && res->cleared + res->healed == res->written + res->healed &&
	    res->recorded == 0)
		return PH_STATE_CLEARED;
	return PH_STATE_REPAIRED;
}

/* ---- device DAX ---------------------------------------------------------- */

/* A devdax namespace: no filesystem, no write path.  Its pages are planned
 * from the rule for its device node (report, or zero = CLEAR_ERROR). */
static int devdax_plan(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
		       struct ph_plan ***ret, size_t *ret_n)
{
	const struct ph_bus *bus = &r->topo->buses[r->topo->regions[ns->region].bus];
	_cleanup_free_ char *node = NULL, *list = NULL;
	struct ph_ranges bad = { 0 }, ns_bad = { 0 };
	struct ph_map_result res = { .range = { row->start, row->count } };
	struct ph_plan **plans = calloc(1, sizeof(*plans));
	const struct ph_region *rg = &r->topo->regions[ns->region];
	int k;

	if (!plans || asprintf(&node, "/dev/%s", ns->chardev) < 0) {
		free(plans);
		return -ENOMEM;
	}
	/* What the kernel lists now, from the region's list, in the
	 * namespace's sectors. */
	k = ph_source_region_list(rg, &list);
	if (k == 0)
		k = ph_source_read_list(r->ctx, list, &bad, NULL);
	for (size_t i = 0; k == 0 && i < bad.n; i++)
		for (uint64_t s = bad.v[i].start; s < bad.v[i].start + bad.v[i].count; s++) {
			uint64_t d;

			if (ph_region_to_namespace(r->topo, ns, s, &d) == 0 && ph_ranges_add(&ns_bad, d, 1) < 0)
				k = -ENOMEM;
		}
	{
		struct ph_plan_env e = {
			.policy = r->policy,
			.can_clear = bus->clear_error_cmd && ns->start != PH_UNKNOWN,
			.clear_reason = !bus->clear_error_cmd ? "device DAX has no write path and the bus has no "
								"CLEAR_ERROR command" :
					ns->start == PH_UNKNOWN ? "the namespace's physical address is not known" :
								  "firmware supports CLEAR_ERROR",
			.device = node,
			.devdax = true,
			.ns_start = ns->start == PH_UNKNOWN ? UINT64_MAX : ns->start,
			.bad = k == 0 ? &ns_bad : NULL,
			.override = _PH_ACTION_MAX,
		};

		k = ph_plan_build(&e, row->start, row->count, &res, &plans[0]);
	}
	ph_ranges_clear(&bad);
	ph_ranges_clear(&ns_bad);
	if (k < 0) {
		free(plans);
		return k;
	}
	*ret = plans;
	*ret_n = 1;
	return 0;
}

static void rec_devdax(struct ph_repairer *r, enum ph_event e, const struct ph_namespace *ns,
		       const struct ph_range_row *row, uint64_t sector, const char *result, uint64_t bytes_lost,
		       const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;

	if (!r->rec)
		return;
	f.device = ns->chardev;
	f.sector = sector;
	f.count = PH_PAGE_SECTORS;
	f.range_id = row->id;
	f.ns_id = ns->id;
	f.action = "clear-device";
	f.result = result;
	f.bytes_lost = bytes_lost;
	f.owner = "device";
	f.detail = detail;
	(void)ph_record(r->rec, e, &f);
}

/* Clear each page the plan clears, through the bus; verified against the
 * region's list afterwards (re-planned: a cleared page is healed). */
static int devdax_repair(struct ph_repairer *r, const struct ph_namespace *ns, const struct ph_range_row *row,
			 struct ph_repair_result *res)
{
	const struct ph_bus *bus = &r->topo->buses[r->topo->regions[ns->region].bus];
	struct ph_plan **plans = NULL, **after = NULL;
	enum ph_state cur = row->state;
	size_t n = 0, n_after = 0;
	bool any = false;
	int k;

	k = devdax_plan(r, ns, row, &plans, &n);
	if (k < 0)
		return k;
	if (cur == PH_STATE_NEW)
		(void)set_state(r, row->id, &cur, PH_STATE_MAPPED, "mapped", NULL);
	for (size_t p = 0; p < plans[0]->n_pages; p++)
		any = any || plans[0]->pages[p].mode == PH_MODE_CLEAR_DEVICE;
	if (any && cur != PH_STATE_REPAIRING) {
		if (cur == PH_STATE_FAILED)
			(void)set_state(r, row->id, &cur, PH_STATE_MAPPED, "retry", NULL);
		(void)set_state(r, row->id, &cur, PH_STATE_PLANNED, "planned", NULL);
		(void)set_state(r, row->id, &cur, PH_STATE_REPAIRING, "repairing", NULL);
	}
	for (size_t p = 0; p < plans[0]->n_pages; p++) {
		const struct ph_plan_page *pg = &plans[0]->pages[p];
		uint64_t cleared = 0;
		_cleanup_free_ char *what = NULL;

		res->pages++;
		if (pg->kind == PH_PAGE_HEALED) {
			res->healed++;
			continue;
		}
		if (pg->mode != PH_MODE_CLEAR_DEVICE) {
			res->recorded++;
			(void)ph_ledger_add_history(r->ledger, row->id, pg->mode == PH_MODE_REFUSED ? "refused" : "recorded",
						    pg->n_steps ? pg->steps[0].detail : pg->explain, ph_now_usec());
			continue;
		}
		if (asprintf(&what, "CLEAR_ERROR on %s for page %" PRIu64 " (physical 0x%" PRIx64 ")", bus->name,
			     pg->sector, ns->start + pg->sector * 512) < 0)
			return -ENOMEM;
		/* The intent, durably, before the device changes. */
		(void)ph_ledger_add_history(r->ledger, row->id, "clearing", what, ph_now_usec());
		k = ph_bus_clear_error(r->ctx, bus->name, ns->start + pg->sector * 512, PH_PAGE_SIZE, &cleared);
		if (k < 0 || cleared < PH_PAGE_SIZE) {
			res->failed++;
			if (!res->detail)
				(void)asprintf(&res->detail, "%s: %s", what,
					       k < 0 ? strerror(-k) : "the firmware cleared less than the page");
			(void)ph_ledger_add_history(r->ledger, row->id, "failed", res->detail, ph_now_usec());
			rec_devdax(r, PH_EVENT_FAILED, ns, row, pg->sector, "failed", PH_FIELD_UNSET, res->detail);
			continue;
		}
		res->written++;
		res->bytes_lost += PH_PAGE_SIZE;
	}
	/* Verify: plan again from the region's list; cleared pages are healed. */
	if (res->written > 0 && devdax_plan(r, ns, row, &after, &n_after) == 0) {
		for (size_t p = 0; p < after[0]->n_pages; p++) {
			bool healed = after[0]->pages[p].kind == PH_PAGE_HEALED;

			if (plans[0]->pages[p].mode != PH_MODE_CLEAR_DEVICE)
				continue;
			res->cleared += healed;
			rec_devdax(r, healed ? PH_EVENT_CLEARED : PH_EVENT_FAILED, ns, row, plans[0]->pages[p].sector,
				   healed ? "ok" : "failed", healed ? PH_PAGE_SIZE : PH_FIELD_UNSET,
				   healed ? "CLEAR_ERROR: the region no longer lists the page" :
					    "CLEAR_ERROR succeeded but the region still lists the page");
		}
		if (res->cleared < res->written) {
			res->failed += res->written - res->cleared;
			if (!res->detail)
				res->detail = strdup("the region still lists a page after CLEAR_ERROR");
		}
		ph_plan_free(after[0]);
		free(after);
	}
	if (any || cur == PH_STATE_REPAIRING)
		(void)set_state(r, row->id, &cur, final_state(res), "repair", res->detail);
	res->state = cur;
	ph_plan_free(plans[0]);
	free(plans);
	return 0;
}

struct resume {
	struct ph_repairer *r;
	unsigned jobs;
	int64_t only;                 /* this range's intents only (0: all) */
	struct ph_repair_result *res; /* what the finished jobs did, when set */
	struct ph_ranges *pending;    /* pages whose intent is still running */
};

static int on_row_state(void *userdata, const struct ph_range_row *row)
{
	*(enum ph_state *)userdata = row->state;
	return 0;
}

static int resume_one(void *userdata, const struct ph_intent *it)
{
	struct resume *rs = userdata;
	struct ph_repairer *r = rs->r;
	_cleanup_free_ char *why = NULL;
	enum ph_state cur = PH_STATE_REPAIRING;
	struct job j;
	int k;

	if (rs->only && it->range_id != rs->only)
		return 0;
	k = job_from_json(it->plan, &j);
	if (k == 0 && (!it->content || slots_from_blob(&j, it->content, it->content_len) < 0)) {
		job_done(&j);
		k = -EBADMSG;
	}
	if (k < 0) {
		ph_err(r->ctx, "intent %" PRId64 ": cannot read its job (%s); marking it failed", it->id,
		       k == -EBADMSG ? "no page bytes, or not one per slot" : strerror(-k));
		(void)ph_ledger_intent_finish(r->ledger, it->id, "failed", "unreadable job", ph_now_usec());
		return 0;
	}
	j.has_content = true;
	ph_info(r->ctx, "Resuming the repair of page %" PRIu64 " (%s) at step %d of %zu", j.page,
		ph_mode_to_string(j.mode), it->step, j.n_steps);
	k = run_job(r, &j, it->id, it->step, &why);
	rs->jobs++;
	if (k < 0) {
		(void)ph_ledger_add_history(r->ledger, it->range_id, "failed", why, ph_now_usec());
		rec_job(r, PH_EVENT_FAILED, &j, it->range_id, "failed", why);
		if (k != -ESTALE && rs->pending)
			(void)ph_ranges_add(rs->pending, j.page, PH_PAGE_SECTORS);
		if (rs->res) {
			rs->res->failed++;
			if (!rs->res->detail && why)
				rs->res->detail = strdup(why);
		}
	} else {
		if (rs->res) {
			rs->res->written++;
			rs->res->cleared += j.cleared;
			rs->res->pinned += j.pinned;
			rs->res->bytes_lost += j.bytes_lost;
		}
		rec_job(r, PH_EVENT_REPAIRED, &j, it->range_id, "ok", "resumed after a restart");
		if (j.cleared || j.pinned)
			rec_job(r, j.cleared ? PH_EVENT_CLEARED : PH_EVENT_PINNED, &j, it->range_id, "ok",
				"resumed after a restart");
		(void)ph_ledger_add_history(r->ledger, it->range_id, j.cleared ? "cleared" : j.pinned ? "pinned" : "repaired",
					    "resumed after a restart", ph_now_usec());
	}
	/* A failed job fails its range now; otherwise the range is settled
	 * below, with the pages no job had started yet. */
	(void)ph_ledger_get_range(r->ledger, it->range_id, on_row_state, &cur);
	if (k < 0 && cur == PH_STATE_REPAIRING)
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_FAILED, "repair", why, ph_now_usec());
	if (k == 0 && cur == PH_STATE_FAILED) {
		/* A job that had failed pending is done now: its range is
		 * settled again with what is left (as after a crash). */
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_MAPPED, "retry", NULL, ph_now_usec());
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_PLANNED, "planned", NULL, ph_now_usec());
		(void)ph_ledger_set_state(r->ledger, it->range_id, PH_STATE_REPAIRING, "repairing", NULL,
					  ph_now_usec());
	}
	job_done(&j);
	return 0;
}

_public_ int ph_repair_range(struct ph_repairer *r, const struct ph_range_row *row, struct ph_repair_result *res)
{
	struct ph_plan **plans = NULL;
	struct ph_error err = { { 0 } };
	enum ph_state cur = row->state;
	struct ph_ranges replan = { 0 }, pending = { 0 };
	struct session s;
	size_t n = 0;
	bool any = false;
	int k;

	memset(res, 0, sizeof(*res));
	res->state = row->state;
	{
		const struct ph_namespace *ns = find_ns(r->topo, row->ns_id);

		if (ns && !ns->blockdev && ns->chardev)
			return devdax_repair(r, ns, row, res);
	}
	{
		/* A job of this range that failed after it began (no space,
		 * an I/O error) is finished first, from its intent; a page
		 * whose job is still pending is not planned again. */
		struct resume rs = { .r = r, .only = row->id, .res = res, .pending = &pending };

		(void)ph_ledger_intents_running(r->ledger, resume_one, &rs);
		(void)ph_ledger_get_range(r->ledger, row->id, on_row_state, &cur);
	}
	k = session_open(r, row, &s, &err);
	if (k == 0)
		k = session_plan(&s, row, &plans, &n);
	if (k < 0) {
		res->detail = strdup(err.message[0] ? err.message : strerror(-k));
		goto out;
	}
	if (cur == PH_STATE_NEW)
		(void)set_state(r, row->id, &cur, PH_STATE_MAPPED, "mapped", NULL);
	for (size_t i = 0; i < n; i++)
		for (size_t p = 0; p < plans[i]->n_pages; p++)
			any = any || writes(plans[i]->pages[p].mode);
	/* A range left repairing by a crash is finished, whatever is left. */
	any = any || cur == PH_STATE_REPAIRING;
	if (any && cur != PH_STATE_REPAIRING) {
		if (cur == PH_STATE_FAILED)
			(void)set_state(r, row->id, &cur, PH_STATE_MAPPED, "retry", NULL);
		k = set_state(r, row->id, &cur, PH_STATE_PLANNED, "planned", NULL);
		if (k == 0)
			k = set_state(r, row->id, &cur, PH_STATE_REPAIRING, "repairing", NULL);
		if (k < 0) {
			res->detail = strdup("the ledger refused the transition to repairing");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t env_i = 0;

		for (size_t e = 0; e < s.n_env; e++)
			if (s.part_start[e] == plans[i]->part_start)
				env_i = e;
		for (size_t p = 0; p < plans[i]->n_pages; p++) {
			res->pages++;
			if (in_replan(&pending, plans[i]->pages[p].sector))
				continue; /* its job is pending: counted failed above */
			if (repair_page(r, &s, env_i, plans[i], &plans[i]->pages[p], row->id, res, 0, true, NULL, 0) == -ESTALE &&
			    ph_ranges_add(&replan, plans[i]->pages[p].sector, PH_PAGE_SECTORS) < 0)
				res->failed++;
		}
	}
	if (replan.n > 0) {
		/* Pages whose files changed between mapping and writing: map
		 * them again, now, and plan them from what they are. */
		for (size_t i = 0; i < n; i++)
			ph_plan_free(plans[i]);
		free(plans);
		plans = NULL;
		n = 0;
		session_done(&s);
		k = session_open(r, row, &s, &err);
		if (k == 0)
			k = session_plan(&s, row, &plans, &n);
		if (k < 0) {
			for (size_t i = 0; i < replan.n; i++)
				res->failed += (unsigned)(replan.v[i].count / PH_PAGE_SECTORS);
			if (!res->detail)
				res->detail = strdup(err.message[0] ? err.message : strerror(-k));
		}
		for (size_t i = 0; k == 0 && i < n; i++) {
			size_t env_i = 0;

			for (size_t e = 0; e < s.n_env; e++)
				if (s.part_start[e] == plans[i]->part_start)
					env_i = e;
			for (size_t p = 0; p < plans[i]->n_pages; p++)
				if (in_replan(&replan, plans[i]->pages[p].sector))
					(void)repair_page(r, &s, env_i, plans[i], &plans[i]->pages[p], row->id, res, 0,
							  false, NULL, 0);
		}
	}
	if (any) {
		_cleanup_free_ char *detail = NULL;

		(void)asprintf(&detail, "%u pages: %u repaired, %u cleared, %u pinned, %u recorded, %u failed, %u healed "
			       "already; %" PRIu64 " bytes lost", res->pages, res->written, res->cleared, res->pinned,
			       res->recorded, res->failed, res->healed, res->bytes_lost);
		(void)set_state(r, row->id, &cur, final_state(res), "repair", res->detail ? res->detail : detail);
	}
	k = 0;
out:
	res->state = cur;
	ph_ranges_clear(&replan);
	ph_ranges_clear(&pending);
	for (size_t i = 0; i < n; i++)
		ph_plan_free(plans[i]);
	free(plans);
	session_done(&s);
	return k;
}

/* ---- resuming ----------------------------------------------------------- */

struct repairing {
	struct ph_range_row *rows;
	char **strings;
	size_t n, n_strings;
};

static int on_repairing(void *userdata, const struct ph_range_row *row)
{
	struct repairing *p = userdata;
	struct ph_range_row *v;
	char **s;

	if (row->state != PH_STATE_REPAIRING)
		return 0;
	v = reallocarray(p->rows, p->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->rows = v;
	s = reallocarray(p->strings, p->n_strings + 3, sizeof(*s));
	if (!s)
		return -ENOMEM;
	p->strings = s;
	v[p->n] = *row;
	if (!(s[p->n_strings++] = strdup(row->ns_id)) || !(s[p->n_strings++] = strdup(row->device ? row->device : "")) ||
	    !(s[p->n_strings++] = strdup(row->origin ? row->origin : "")))
		return -ENOMEM;
	v[p->n].ns_id = s[p->n_strings - 3];
	v[p->n].device = s[p->n_strings - 2];
	v[p->n].origin = s[p->n_strings - 1];
	p->n++;
	return 0;
}

_public_ int ph_repairer_resume(struct ph_repairer *r)
{
	struct resume rs = { .r = r };
	struct repairing rp = { 0 };
	int k;

	k = ph_ledger_intents_running(r->ledger, resume_one, &rs);
	if (k < 0)
		return k;
	/* Ranges a crash left repairing: their unfinished job is done now,
	 * but pages no job had started yet, and the range's own state, are
	 * not.  Plan them again from what the kernel lists now. */
	k = ph_ledger_foreach(r->ledger, NULL, on_repairing, &rp);
	for (size_t i = 0; k >= 0 && i < rp.n; i++) {
		struct ph_repair_result res;

		ph_info(r->ctx, "Finishing the repair of %s sectors %" PRIu64 "+%" PRIu64 " after a restart",
			rp.rows[i].device, rp.rows[i].start, rp.rows[i].count);
		if (ph_repair_range(r, &rp.rows[i], &res) < 0)
			(void)ph_ledger_set_state(r->ledger, rp.rows[i].id, PH_STATE_FAILED, "repair",
						  res.detail ? res.detail : "could not be planned again after a restart",
						  ph_now_usec());
		ph_repair_result_done(&res);
	}
	for (size_t i = 0; i < rp.n_strings; i++)
		free(rp.strings[i]);
	free(rp.strings);
	free(rp.rows);
	return k < 0 ? k : (int)rs.jobs;
}
