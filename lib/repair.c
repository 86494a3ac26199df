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
#include <linux/openat2.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "mapper.h"
#include "platform.h"
#include "repair.h"
#include "safefs.h"
#include "source.h"

#define HOOK_EXIT_FALLBACK 75 /* EX_TEMPFAIL */

struct ph_repairer {
	struct ph_ctx *ctx;
	struct ph_ledger *ledger;
	struct ph_recorder *rec;
	const struct ph_policy *policy;
	const struct ph_topology *topo;
	/* pages that went through memory_failure this boot: own_memfail, or
	 * one lent for longer than a repairer lives (ph_repairer_set_memfail) */
	struct ph_memfail own_memfail, *memfail;
	/* test-only fault injection: exit right after a named step */
	char *fault_step;
	unsigned fault_nth, fault_seen;
	/* test-only: stop before a named step until a FIFO says go */
	char *pause_step, *pause_fifo;
	unsigned pause_nth, pause_seen;
	char *why; /* a failing step's own reason, when it has one */
	/* test-only: the Nth run of a named step fails with an errno */
	char *error_step;
	unsigned error_nth, error_seen;
	int error_errno;
};

struct job_owner {
	char *path;
	uint64_t dev, inode, gen, offset, size; /* dev 0: not recorded (older intents) */
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
	bool legacy_slots; /* written before "slots": owners shared a page only by a reshare step */
	bool has_content;
	uint64_t bytes_lost;
	/* outcome */
	bool cleared, pinned;
	char *why;       /* a step's own reason for stopping */
	/* relocate-file: a write lease on the original, held from the copy
	 * to the rename (lease_fd + 1; 0: none), and its ctime after our
	 * own link */
	int lease_fd1;
	int64_t lease_ctime_ns;
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
	free(j->why);
	if (j->lease_fd1 > 0)
		close(j->lease_fd1 - 1);
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

/* The directory holding path, opened once beneath the job's mount: no
 * symbolic link on the way, no other filesystem.  A link or a mount on
 * the way means the path is not the one planned: -ESTALE. */
static int open_dir_of(const struct job *j, const char *path, int *ret_dirfd, const char **ret_name)
{
	int k = ph_open_parent(j->mount, path, ret_dirfd, ret_name);

	return k == -ELOOP || k == -EXDEV || k == -ENOTDIR ? -ESTALE : k;
}

/* Is the job's filesystem still mounted where it was?  A file gone from a
 * mounted filesystem was removed by someone (a conflict); from one that
 * is gone, it may come back (the job stays pending).  The mount point's
 * device is the one the owner was planned on, when the job recorded it. */
static bool mount_present(const struct job *j, const struct job_owner *o)
{
	_cleanup_free_ char *up = NULL;
	struct stat a, b;

	if (!j->mount || stat(j->mount, &a) < 0)
		return false;
	if (o->dev)
		return (uint64_t)a.st_dev == o->dev;
	if (strcmp(j->mount, "/") == 0)
		return true;
	if (asprintf(&up, "%s/..", j->mount) < 0 || stat(up, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

/* Owner o, through its directory: the device, inode and generation
 * planned, or -ESTALE (replaced or removed since it was planned).  A file
 * missing because its filesystem is not mounted is -ENODEV: the job stays
 * pending until it is back. */
static int open_owner(const struct job *j, const struct job_owner *o, int flags, int *ret_fd)
{
	_cleanup_close_ int dir = -EBADF;
	const char *name;
	int k;

	k = open_dir_of(j, o->path, &dir, &name);
	if (k == 0)
		k = ph_open_at_checked(dir, name, flags, o->dev, o->inode, o->gen, ret_fd);
	if (k == -ENOENT || k == -ESTALE)
		return mount_present(j, o) ? -ESTALE : -ENODEV;
	return k;
}

static bool same_bytes(int fd, uint64_t off, const uint8_t *want)
{
	uint8_t buf[PH_PAGE_SIZE];

	return pread(fd, buf, sizeof(buf), (off_t)off) == (ssize_t)sizeof(buf) &&
	       memcmp(buf, want, sizeof(buf)) == 0;
}

/* prefix NAME .PAGE suffix: a name derived from a file's for a temporary
 * or quarantined copy, at most NAME_MAX - reserve bytes (reserve: what a
 * caller appends later, ".report.json").  A name that would be longer
 * keeps its start, cut at a UTF-8 character boundary, and "~" and a hash
 * of the whole name, so that two long names stay two names. */
int ph_repair_side_name(const char *prefix, const char *name, uint64_t page, const char *suffix, size_t reserve,
			char **ret)
{
	char tail[64];
	size_t fixed, room, n = strlen(name), max = NAME_MAX - MIN(reserve, (size_t)NAME_MAX);
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	snprintf(tail, sizeof(tail), ".%" PRIu64 "%s", page, suffix);
	fixed = strlen(prefix) + strlen(tail);
	if (fixed + n <= max)
		return asprintf(ret, "%s%s%s", prefix, name, tail) < 0 ? -ENOMEM : 0;
	if (fixed + 17 >= max)
		return -ENAMETOOLONG;
	room = max - fixed - 17; /* "~" and 16 hex digits */
	while (room > 0 && ((unsigned char)name[room] & 0xc0) == 0x80)
		room--;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return asprintf(ret, "%s%.*s~%016" PRIx64 "%s", prefix, (int)room, name, h, tail) < 0 ? -ENOMEM : 0;
}

/* <mount>/.pmemheal/quarantine, opened: made by us, or refused.  On a
 * filesystem whose root others can write, anyone could have made it
 * first, and whoever owns it could read or delete the pins of other
 * users' blocks or plant links where we write: so it must be ours alone
 * (see ph_private_dir()), and everything in it is reached through this
 * fd, never by a path. */
static int open_quarantine(struct ph_repairer *r, struct job *j, int *ret_fd)
{
	_cleanup_close_ int root = -EBADF, base = -EBADF;
	_cleanup_free_ char *shown = NULL, *why = NULL;
	const char *m = j->mount && strcmp(j->mount, "/") ? j->mount : "";
	int k;

	if (!j->mount)
		return -EINVAL;
	root = open(*m ? m : "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return negative_errno();
	if (asprintf(&shown, "%s/.pmemheal", m) < 0)
		return -ENOMEM;
	k = ph_private_dir(root, ".pmemheal", shown, &base, &why);
	if (k == 0) {
		free(shown);
		if (asprintf(&shown, "%s/" PH_QUARANTINE_DIR, m) < 0)
			return -ENOMEM;
		k = ph_private_dir(base, "quarantine", shown, ret_fd, &why);
	}
	if (k == -EPERM && why) {
		ph_err(r->ctx, "page %" PRIu64 ": %s", j->page, why);
		free(j->why);
		j->why = TAKE_PTR(why);
	}
	return k;
}

/* The last component of a name we made inside the quarantine. */
static const char *quarantine_name(const char *path)
{
	const char *b = basename_of(path);

	return *b && strcmp(b, ".") && strcmp(b, "..") ? b : NULL;
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
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	if (!j->legacy_slots)
		json_object_object_add(o, "slots", json_object_new_int64((int64_t)j->n_slots));
	for (size_t i = 0; i < j->n_owners; i++) {
		struct json_object *w = json_object_new_object();

		json_object_object_add(w, "path", json_object_new_string(j->owners[i].path));
		json_object_object_add(w, "dev", json_object_new_int64((int64_t)j->owners[i].dev));
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

/*
 * Reading a job back is parsing outside input: the ledger is a file that a
 * crash, a full disk or a person may have damaged.  json-c asserts on the
 * wrong type (an array call on a number aborts the process), and the
 * daemon resumes before it is ready, so a bad intent would abort every
 * start.  Every field is checked for its type and range, and the first
 * one that is wrong is named; the caller sets that intent aside.
 */
struct jparse {
	char *why;     /* the first problem, naming the field */
};

static int jbad(struct jparse *p, const char *field, const char *fmt, ...) _printf_(3, 4);
static int jbad(struct jparse *p, const char *field, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;
	int k;

	if (p->why)
		return -EBADMSG;
	va_start(ap, fmt);
	k = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (k < 0) {
		what = NULL; /* undefined after a failure */
		return -ENOMEM;
	}
	if (asprintf(&p->why, "%s: %s", field, what) < 0) {
		p->why = NULL;
		return -ENOMEM;
	}
	return -EBADMSG;
}

/* A string without embedded NULs; absolute: a path from the root. */
static int jstring(struct jparse *p, struct json_object *o, const char *field, const char *k, bool required,
		   bool absolute, char **ret)
{
	struct json_object *v = NULL;
	const char *s;

	*ret = NULL;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return required ? jbad(p, field, "missing") : 0;
	if (!json_object_is_type(v, json_type_string))
		return jbad(p, field, "not a string");
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return jbad(p, field, "holds a NUL byte");
	if (*s == '\0')
		return jbad(p, field, "empty");
	if (absolute && *s != '/')
		return jbad(p, field, "not an absolute path");
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* An integer in [min, max].  json-c clamps what does not fit in 64 bits
 * to the type's limits, so the limits themselves are refused too. */
static int jinteger(struct jparse *p, struct json_object *v, const char *field, int64_t min, int64_t max,
		    int64_t *ret)
{
	int64_t x;

	if (!v)
		return jbad(p, field, "missing");
	if (!json_object_is_type(v, json_type_int))
		return jbad(p, field, "not an integer");
	x = json_object_get_int64(v);
	if (x < min || x > max || x == INT64_MAX || x == INT64_MIN)
		return jbad(p, field, "out of range");
	*ret = x;
	return 0;
}

static int jint_field(struct jparse *p, struct json_object *o, const char *field, const char *k, int64_t min,
		      int64_t max, int64_t *ret)
{
	struct json_object *v = NULL;

	(void)json_object_object_get_ex(o, k, &v);
	return jinteger(p, v, field, min, max, ret);
}

static int jbool_field(struct jparse *p, struct json_object *o, const char *field, const char *k, bool *ret)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return jbad(p, field, "missing");
	if (!json_object_is_type(v, json_type_boolean))
		return jbad(p, field, "not true or false");
	*ret = json_object_get_boolean(v);
	return 0;
}

static bool step_uses_owner(enum ph_step_kind k)
{
	return k == PH_STEP_WRITE || k == PH_STEP_PUNCH || k == PH_STEP_RESHARE || k == PH_STEP_RENAME ||
	       k == PH_STEP_UNLINK || k == PH_STEP_RELINK || k == PH_STEP_SWAP;
}

static int owner_from_json(struct jparse *p, struct json_object *w, size_t i, size_t n_slots, struct job_owner *o)
{
	char f[64];
	int64_t x;
	int k;

#define FIELD(name) (snprintf(f, sizeof(f), "owners[%zu]." name, i), f)
	snprintf(f, sizeof(f), "owners[%zu]", i);
	if (!w || !json_object_is_type(w, json_type_object))
		return jbad(p, f, "not an object");
	k = jstring(p, w, FIELD("path"), "path", true, true, &o->path);
	/* "dev" came later: an intent without it compares the file against
	 * its directory's device */
	if (k == 0 && json_object_object_get_ex(w, "dev", NULL)) {
		k = jint_field(p, w, FIELD("dev"), "dev", 0, INT64_MAX, &x);
		o->dev = (uint64_t)x;
	}
	if (k == 0)
		k = jint_field(p, w, FIELD("inode"), "inode", 0, INT64_MAX, &x);
	if (k == 0) {
		o->inode = (uint64_t)x;
		k = jint_field(p, w, FIELD("gen"), "gen", 0, INT64_MAX, &x);
	}
	if (k == 0) {
		o->gen = (uint64_t)x;
		/* the page's bytes must be addressable: offset + a page fits off_t */
		k = jint_field(p, w, FIELD("offset"), "offset", 0, INT64_MAX - PH_PAGE_SIZE, &x);
	}
	if (k == 0) {
		o->offset = (uint64_t)x;
		k = jint_field(p, w, FIELD("size"), "size", 0, INT64_MAX, &x);
	}
	if (k == 0) {
		o->size = (uint64_t)x;
		k = jint_field(p, w, FIELD("mtime_ns"), "mtime_ns", INT64_MIN, INT64_MAX, &o->mtime_ns);
	}
	if (k == 0)
		k = jint_field(p, w, FIELD("ctime_ns"), "ctime_ns", INT64_MIN, INT64_MAX, &o->ctime_ns);
	if (k == 0)
		k = jbool_field(p, w, FIELD("repair"), "repair", &o->repair);
	if (k == 0)
		k = jbool_field(p, w, FIELD("link"), "link", &o->link);
	/* "slot" came with sharers' own pages: without it, a repaired
	 * owner has the one page; -1 is none (reported only) */
	if (k == 0 && !json_object_object_get_ex(w, "slot", NULL))
		o->slot = o->repair ? 0 : SIZE_MAX;
	else if (k == 0) {
		k = jint_field(p, w, FIELD("slot"), "slot", -1, (int64_t)n_slots - 1, &x);
		o->slot = x < 0 ? SIZE_MAX : (size_t)x;
	}
#undef FIELD
	return k;
}

/* The job an intent's plan describes, checked against the intent's row.
 * -EBADMSG with *ret_why naming the field when it is no sound job. */
static int job_from_json(const struct ph_intent *it, struct job *j, char **ret_why)
{
	struct json_object *o, *owners = NULL, *steps = NULL;
	struct jparse p = { NULL };
	bool needs_pin = false, needs_quarantine = false, needs_tmp = false, needs_qname = false;
	int64_t x;
	int r;

	memset(j, 0, sizeof(*j));
	*ret_why = NULL;
	o = it->plan ? json_tokener_parse(it->plan) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		r = jbad(&p, "plan", "not a JSON object");
		goto out;
	}
	r = jint_field(&p, o, "range_id", "range_id", INT64_MIN, INT64_MAX, &j->range_id);
	if (r == 0 && j->range_id != it->range_id)
		r = jbad(&p, "range_id", "%" PRId64 ", but the intent is for range %" PRId64, j->range_id,
			 it->range_id);
	if (r == 0)
		r = jstring(&p, o, "device", "device", true, true, &j->device);
	if (r == 0)
		r = jstring(&p, o, "list", "list", true, true, &j->list);
	if (r == 0)
		r = jstring(&p, o, "mount", "mount", false, true, &j->mount);
	if (r == 0)
		r = jstring(&p, o, "ns_id", "ns_id", true, false, &j->ns_id);
	if (r == 0)
		r = jint_field(&p, o, "page", "page", 0, INT64_MAX, &x);
	if (r == 0) {
		j->page = (uint64_t)x;
		if (j->page != it->page)
			r = jbad(&p, "page", "%" PRIu64 ", but the intent is for page %" PRIu64, j->page, it->page);
	}
	if (r == 0)
		r = jint_field(&p, o, "fs_page", "fs_page", 0, (int64_t)j->page, &x);
	if (r == 0) {
		j->fs_page = (uint64_t)x;
		r = jint_field(&p, o, "mode", "mode", 0, INT_MAX, &x);
	}
	if (r == 0) {
		j->mode = (enum ph_mode)x;
		if (strcmp(ph_mode_to_string(j->mode), "?") == 0)
			r = jbad(&p, "mode", "%" PRId64 " is no mode this pmemheal knows", x);
	}
	if (r == 0)
		r = jbool_field(&p, o, "can_clear", "can_clear", &j->can_clear);
	if (r == 0)
		r = jbool_field(&p, o, "hole", "hole", &j->hole);
	if (r == 0)
		r = jstring(&p, o, "pin", "pin", false, true, &j->pin);
	if (r == 0)
		r = jstring(&p, o, "tmp", "tmp", false, true, &j->tmp);
	if (r == 0)
		r = jstring(&p, o, "qname", "qname", false, false, &j->qname);
	if (r == 0 && j->qname && (strchr(j->qname, '/') || strcmp(j->qname, ".") == 0 || strcmp(j->qname, "..") == 0))
		r = jbad(&p, "qname", "not a file name");
	if (r == 0)
		r = jint_field(&p, o, "bytes_lost", "bytes_lost", 0, INT64_MAX, &x);
	if (r == 0) {
		j->bytes_lost = (uint64_t)x;
		/* Jobs written before sharers had pages of their own: one slot.
		 * There is at most a slot per owner (checked with the owners). */
		j->n_slots = 1;
		j->legacy_slots = !json_object_object_get_ex(o, "slots", NULL);
		if (!j->legacy_slots) {
			r = jint_field(&p, o, "slots", "slots", 1, INT32_MAX, &x);
			j->n_slots = (size_t)x;
		}
	}
	if (r < 0)
		goto out;

	if (!json_object_object_get_ex(o, "owners", &owners) || !json_object_is_type(owners, json_type_array)) {
		r = jbad(&p, "owners", owners ? "not an array" : "missing");
		goto out;
	}
	if (!json_object_object_get_ex(o, "steps", &steps) || !json_object_is_type(steps, json_type_array)) {
		r = jbad(&p, "steps", steps ? "not an array" : "missing");
		goto out;
	}
	if (j->n_slots > MAX(json_object_array_length(owners), (size_t)1)) {
		r = jbad(&p, "slots", "%zu, more than the job's owners", j->n_slots);
		goto out;
	}
	j->owners = calloc(MAX(json_object_array_length(owners), (size_t)1), sizeof(*j->owners));
	j->steps = calloc(MAX(json_object_array_length(steps), (size_t)1), sizeof(*j->steps));
	if (!j->owners || !j->steps) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; r == 0 && i < json_object_array_length(owners); i++) {
		r = owner_from_json(&p, json_object_array_get_idx(owners, i), i, j->n_slots, &j->owners[i]);
		j->n_owners++; /* freed by job_done, even half filled */
	}
	for (size_t i = 0; r == 0 && i < json_object_array_length(steps); i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);
		char f[64];

		snprintf(f, sizeof(f), "steps[%zu]", i);
		if (!s || !json_object_is_type(s, json_type_array) || json_object_array_length(s) != 2) {
			r = jbad(&p, f, "not a pair [kind, owner]");
			break;
		}
		snprintf(f, sizeof(f), "steps[%zu][0]", i);
		r = jinteger(&p, json_object_array_get_idx(s, 0), f, 0, INT_MAX, &x);
		if (r == 0 && strcmp(ph_step_to_string((enum ph_step_kind)x), "?") == 0)
			r = jbad(&p, f, "%" PRId64 " is no step this pmemheal knows", x);
		if (r < 0)
			break;
		j->steps[i].kind = (enum ph_step_kind)x;
		snprintf(f, sizeof(f), "steps[%zu][1]", i);
		/* an owner the job has; a step that acts on none may name
		 * owner 0 of a job without owners (owners[] has room for one) */
		r = jinteger(&p, json_object_array_get_idx(s, 1), f, 0,
			     (int64_t)(step_uses_owner(j->steps[i].kind) ? j->n_owners : MAX(j->n_owners, (size_t)1)) - 1,
			     &x);
		if (r < 0)
			break;
		j->steps[i].owner = (size_t)x;
		j->n_steps++;
		/* the staging file is named after the pin, next to it */
		needs_pin |= (j->steps[i].kind == PH_STEP_PIN || j->steps[i].kind == PH_STEP_CLEAR ||
			      j->steps[i].kind == PH_STEP_RELEASE || j->steps[i].kind == PH_STEP_STAGE ||
			      j->steps[i].kind == PH_STEP_SWAP || j->steps[i].kind == PH_STEP_UNSTAGE);
		needs_quarantine |= j->steps[i].kind == PH_STEP_PIN || j->steps[i].kind == PH_STEP_LINK_OLD ||
				    j->steps[i].kind == PH_STEP_STAGE || j->steps[i].kind == PH_STEP_SWAP ||
				    j->steps[i].kind == PH_STEP_UNSTAGE ||
				    (j->steps[i].kind == PH_STEP_RENAME && j->mode != PH_MODE_RELOCATE_FILE);
		needs_tmp |= j->steps[i].kind == PH_STEP_COPY_FILE ||
			     (j->steps[i].kind == PH_STEP_RENAME && j->mode == PH_MODE_RELOCATE_FILE);
		needs_qname |= j->steps[i].kind == PH_STEP_LINK_OLD;
	}
	if (r < 0)
		goto out;
	/* What the steps will open: a missing one would name a file relative
	 * to the working directory, or none at all. */
	if (needs_pin && !j->pin)
		r = jbad(&p, "pin", "missing, and the steps pin the page");
	else if (needs_quarantine && !j->mount)
		r = jbad(&p, "mount", "missing, and the steps use the quarantine");
	else if (needs_qname && !j->qname)
		r = jbad(&p, "qname", "missing, and the steps link the file into quarantine");
	else if (needs_tmp && !j->tmp)
		r = jbad(&p, "tmp", "missing, and the steps build a copy of the file");
	else if (it->step < 0 || (size_t)it->step > j->n_steps)
		r = jbad(&p, "step", "%d, but the job has %zu steps", it->step, j->n_steps);
	else if (!it->content || it->content_len != MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE)
		r = jbad(&p, "content", "%zu bytes, not the %zu of its %zu page(s)", it->content_len,
			 MAX(j->n_slots, (size_t)1) * PH_PAGE_SIZE, MAX(j->n_slots, (size_t)1));
	if (r == 0)
		r = slots_from_blob(j, it->content, it->content_len);
	if (r < 0)
		goto out;
	j->has_content = true;
out:
	json_object_put(o);
	if (r < 0) {
		job_done(j);
		*ret_why = p.why;
	}
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
	/* the step's own reason, for the result and the journal: "open in
	 * another process" says more than "changed since it was planned" */
	if (msg) {
		free(r->why);
		r->why = TAKE_PTR(msg);
	}
	return -ESTALE;
}

#define CONFLICT(j, ...) conflict(r, (j), __VA_ARGS__)

/* Open owner o and find the block under its page: a conflict when the
 * file was replaced since the plan. */
static int open_page(struct ph_repairer *r, const struct job *j, const struct job_owner *o, int flags, int *ret_fd,
		     uint64_t *ret_sector, bool *ret_hole)
{
	int k = open_owner(j, o, flags, ret_fd);

	if (k < 0)
		return k == -ESTALE ? CONFLICT(j, "%s was replaced or removed", o->path) : k;
	return page_map(*ret_fd, o->offset, ret_sector, ret_hole, NULL);
}

/* The pin file, in our quarantine: made afresh (O_EXCL) or, when a run
 * before made it, reopened; a regular file either way.  -ENOENT when
 * it is not there and create is false. */
static int open_pin(struct ph_repairer *r, struct job *j, bool create, int *ret_qdir, int *ret_pin)
{
	_cleanup_close_ int qdir = -EBADF, pin = -EBADF;
	const char *name = quarantine_name(j->pin);
	struct stat st;
	int k;

	if (!name)
		return -EINVAL;
	k = open_quarantine(r, j, &qdir);
	if (k < 0)
		return k;
	pin = create ? openat(qdir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (pin < 0 && (!create || errno == EEXIST))
		pin = openat(qdir, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (pin < 0)
		return negative_errno();
	if (fstat(pin, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	*ret_qdir = TAKE_FD(qdir);
	*ret_pin = TAKE_FD(pin);
	return 0;
}

static int step_pin(struct ph_repairer *r, struct job *j)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int fd = -EBADF, pin = -EBADF, qdir = -EBADF;
	struct file_clone_range fcr;
	struct stat st;
	uint64_t sector;
	bool hole;
	int k;

	k = open_pin(r, j, true, &qdir, &pin);
	if (k < 0)
		return k;
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

/* Does the job pin the poisoned block (a quarantine file owns it)? */
static bool job_pins(const struct job *j)
{
	for (size_t k = 0; k < j->n_steps; k++)
		if (j->steps[k].kind == PH_STEP_PIN)
			return true;
	return false;
}

/* About to give owner o's blocks back (punch, unlink) through fd: when it
 * still maps the poisoned block and nothing else holds that block (the
 * job pins nothing: the bus was to clear it in place), the kernel must
 * no longer list the page, or the allocator would get a poisoned block. */
static int may_free(struct ph_repairer *r, struct job *j, const struct job_owner *o, int fd)
{
	uint64_t sector;
	bool hole, listed;
	int k;

	if (job_pins(j))
		return 0;
	k = page_map(fd, o->offset, &sector, &hole, NULL);
	if (k < 0 || hole || sector != j->fs_page)
		return k < 0 ? k : 0;
	k = page_listed(r->ctx, j, &listed);
	if (k < 0 || !listed)
		return k;
	free(r->why);
	if (asprintf(&r->why, "the kernel still lists the poisoned page of %s: freeing it would give a poisoned "
		     "block back to the allocator, so it is not freed", o->path) < 0)
		r->why = NULL;
	return -EIO;
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
	k = may_free(r, j, o, fd);
	if (k < 0)
		return k;
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

	k = open_owner(j, first, O_RDONLY, &src);
	if (k == 0)
		k = open_owner(j, o, O_RDWR, &fd);
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
 * blocks of the filesystem, in our quarantine next to the pin and named
 * like it (".stage" for ".pin"). */
static int stage_name(const struct job *j, char **ret)
{
	const char *name = j->pin ? quarantine_name(j->pin) : NULL;
	size_t l = name ? strlen(name) : 0;

	if (l < 4 || strcmp(name + l - 4, ".pin") != 0)
		return -EINVAL;
	return asprintf(ret, "%.*s.stage", (int)(l - 4), name) < 0 ? -ENOMEM : 0;
}

/* The quarantine's fd and the staging file's name in it. */
static int stage_at(struct ph_repairer *r, struct job *j, int *ret_qdir, char **ret_name)
{
	int k = stage_name(j, ret_name);

	return k < 0 ? k : open_quarantine(r, j, ret_qdir);
}

/* The staging file, through the quarantine's fd: made afresh (O_EXCL) or,
 * when a run before made it, reopened; ours either way (a regular file
 * with one link).  -ENOENT when it is not there and create is false. */
static int open_stage(struct ph_repairer *r, struct job *j, bool create, int *ret_fd)
{
	_cleanup_close_ int qdir = -EBADF, fd = -EBADF;
	_cleanup_free_ char *name = NULL;
	struct stat st;
	int k;

	k = stage_at(r, j, &qdir, &name);
	if (k < 0)
		return k;
	fd = create ? openat(qdir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600) : -1;
	if (fd < 0 && (!create || errno == EEXIST))
		fd = openat(qdir, name, (create ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return CONFLICT(j, "%s/%s is not a file pmemheal staged", PH_QUARANTINE_DIR, name);
	*ret_fd = TAKE_FD(fd);
	return 0;
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
	_cleanup_close_ int fd = -EBADF;
	int k;

	k = open_stage(r, j, true, &fd);
	if (k < 0)
		return k;
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
	struct file_clone_range fcr;
	uint64_t sector, want = 0;
	size_t len = page_len(o);
	struct stat st;
	bool hole;
	int k;

	if (o->slot == SIZE_MAX || o->slot >= MAX(j->n_slots, (size_t)1))
		return -EINVAL;
	k = open_stage(r, j, false, &stage);
	if (k == -ESTALE)
		return k;
	if (k == 0)
		k = page_map(stage, o->slot * PH_PAGE_SIZE, &want, &hole, NULL);
	if (k < 0 || hole || !same_bytes(stage, o->slot * PH_PAGE_SIZE, slot_page(j, o->slot))) {
		/* Gone or changed (a resumed job): stage again from the log. */
		stage = safe_close(stage);
		k = step_stage(r, j);
		if (k < 0)
			return k;
		k = open_stage(r, j, false, &stage);
		if (k < 0)
			return k;
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
	_cleanup_close_ int qdir = -EBADF;
	_cleanup_free_ char *name = NULL;
	int k;

	k = stage_at(r, j, &qdir, &name);
	if (k < 0)
		return k;
	return unlinkat(qdir, name, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
}

static int step_clear(struct ph_repairer *r, struct job *j)
{
	static const uint8_t zeros[PH_PAGE_SIZE];
	_cleanup_close_ int pin = -EBADF, qdir = -EBADF;
	uint64_t sector;
	bool hole, shared, listed;
	int k;

	k = open_pin(r, j, false, &qdir, &pin);
	if (k < 0)
		return k == -ENOENT ? 0 : k; /* released already */
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
	_cleanup_close_ int pin = -EBADF, qdir = -EBADF;
	uint64_t sector;
	bool hole, listed;
	int k;

	k = open_pin(r, j, false, &qdir, &pin);
	if (k < 0)
		return k == -ENOENT ? 0 : k;
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
	if (unlinkat(qdir, quarantine_name(j->pin), 0) < 0 && errno != ENOENT)
		return negative_errno();
	return fsync(qdir) < 0 ? negative_errno() : 0;
}

/* Every extended attribute of from onto to.  One that cannot be set
 * fails the copy, naming it (in *why): security.capability needs
 * CAP_SETFCAP, which the shipped unit does not have.  Skipping it would
 * leave a copy that silently lost what the file may do (a program's
 * capabilities) or who may read it (an LSM label); the original stays as
 * it was instead, and the page is reported as failed. */
static int copy_xattrs(int from, int to, char **why)
{
	char names[65536], value[65536];
	ssize_t n = flistxattr(from, names, sizeof(names));

	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		ssize_t v = fgetxattr(from, names + i, value, sizeof(value));

		if (v < 0 || fsetxattr(to, names + i, value, (size_t)v, 0) < 0) {
			int k = negative_errno();

			(void)asprintf(why, "cannot copy the extended attribute %s%s: %s", names + i,
				       k == -EPERM && strcmp(names + i, "security.capability") == 0 ?
					       " (setting it needs CAP_SETFCAP)" : "", strerror(-k));
			return k;
		}
	}
	return n < 0 ? negative_errno() : 0;
}

/* ---- relocate-file: a write lease from the copy to the rename ---------- */

static bool lease_held(int fd)
{
	return fcntl(fd, F_GETLEASE) == F_WRLCK;
}

static void lease_drop(struct job *j)
{
	if (j->lease_fd1 > 0) {
		(void)fcntl(j->lease_fd1 - 1, F_SETLEASE, F_UNLCK);
		close(j->lease_fd1 - 1);
	}
	j->lease_fd1 = 0;
}

/* Nobody else may have the file open while it is copied and replaced:
 * their writes would land in the old inode and be lost.  A write lease
 * is granted only when no one else has it open, and any open by another
 * process (or a truncate) breaks it, which we see by asking: the SIGIO
 * a break sends must not end the process, so it is ignored unless the
 * program handles it. */
static int take_lease(struct ph_repairer *r, struct job *j, int fd)
{
	const struct job_owner *o = &j->owners[0];
	struct sigaction sa;

	if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		(void)signal(SIGIO, SIG_IGN);
	if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0)
		return 0;
	if (errno == EAGAIN || errno == EBUSY)
		return CONFLICT(j, "%s is open in another process: it is not moved while anyone has it open, or their "
			       "writes could be lost; it is tried again once it is closed", o->path);
	free(j->why);
	if (asprintf(&j->why, "cannot take a write lease on %s (%s): without one a concurrent write could be lost",
		     o->path, strerror(errno)) < 0)
		j->why = NULL;
	return negative_errno();
}

static int64_t ns_of(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* The copy goes next to the file: its name's directory part must be the
 * file's. */
static const char *tmp_name(const struct job *j, const char *path, const char *name)
{
	size_t dl = (size_t)(name - path);

	return j->tmp && strncmp(j->tmp, path, dl) == 0 && !strchr(j->tmp + dl, '/') && j->tmp[dl] ?
		       j->tmp + dl : NULL;
}

/* The whole file, with the repaired page (or a hole), keeping mode, owner,
 * extended attributes and times.  Holes stay holes.  The lease taken
 * here stays with the job until the rename.  resumed: a restart lost the
 * lease after our own link changed the ctime; size and mtime still must
 * be the planned ones. */
/* The temporary copy, removed if the copy fails after creating it: the
 * very file created (same device and inode), through its directory. */
struct tmp_guard {
	int dir, fd;
	const char *name;
};

static void tmp_guard_release(struct tmp_guard *g)
{
	struct stat a, b;

	if (g->name && fstat(g->fd, &a) == 0 && fstatat(g->dir, g->name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		(void)unlinkat(g->dir, g->name, 0);
}

static int copy_file(struct ph_repairer *r, struct job *j, bool resumed)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int dir = -EBADF, in = -EBADF, out = -EBADF;
	_cleanup_(tmp_guard_release) struct tmp_guard guard = { -EBADF, -EBADF, NULL };
	_cleanup_free_ uint8_t *buf = NULL;
	const size_t chunk = 1 << 20;
	const char *name, *tname;
	struct stat st;
	off_t pos = 0;
	int k;

	lease_drop(j);
	k = open_dir_of(j, o->path, &dir, &name);
	if (k == 0)
		k = ph_open_at_checked(dir, name, O_RDONLY, o->dev, o->inode, o->gen, &in);
	if (k == -ESTALE || k == -ENOENT)
		return CONFLICT(j, "%s was replaced", o->path);
	if (k < 0)
		return k;
	tname = tmp_name(j, o->path, name);
	if (!tname)
		return -EINVAL;
	k = take_lease(r, j, in);
	if (k < 0)
		return k;
	if (fstat(in, &st) < 0)
		return negative_errno();
	if ((uint64_t)st.st_size != o->size || ns_of(&st.st_mtim) != o->mtime_ns ||
	    (!resumed && ns_of(&st.st_ctim) != o->ctime_ns))
		return CONFLICT(j, "%s changed since it was planned", o->path);
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	(void)unlinkat(dir, tname, 0);
	out = openat(dir, tname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return negative_errno();
	guard = (struct tmp_guard){ dir, out, tname };
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

			if (!lease_held(in))
				return CONFLICT(j, "%s was opened by another process while it was copied", o->path);
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
	k = copy_xattrs(in, out, &r->why);
	if (k < 0 && k != -EOPNOTSUPP)
		return k;
	if (futimens(out, (struct timespec[]){ st.st_atim, st.st_mtim }) < 0)
		return negative_errno();
	if (fsync(out) < 0)
		return negative_errno();
	if (!lease_held(in))
		return CONFLICT(j, "%s was opened by another process while it was copied", o->path);
	j->lease_ctime_ns = ns_of(&st.st_ctim);
	j->lease_fd1 = TAKE_FD(in) + 1;
	guard.name = NULL; /* the copy stays, for the rename */
	return 0;
}

static int step_copy(struct ph_repairer *r, struct job *j)
{
	return copy_file(r, j, false);
}

/* Owner i's own name in quarantine: sharers of one page are distinct
 * files and must never be moved onto one another. */
static int quarantine_name_of(const struct job *j, size_t i, char **ret)
{
	const struct job_owner *o = &j->owners[i];

	_cleanup_free_ char *prefix = NULL;

	if (asprintf(&prefix, "%" PRIu64 "-", o->inode) < 0)
		return -ENOMEM;
	return ph_repair_side_name(prefix, basename_of(o->path), j->page, "", PH_QUARANTINE_RESERVE, ret);
}

static int step_link_old(struct ph_repairer *r, struct job *j)
{
	const struct job_owner *o = &j->owners[0];
	_cleanup_close_ int dir = -EBADF, qdir = -EBADF, fd = -EBADF;
	const char *name, *qn = j->qname;
	struct stat st;
	int k;

	if (!qn || quarantine_name(qn) != qn)
		return -EINVAL;
	k = open_quarantine(r, j, &qdir);
	if (k < 0)
		return k;
	if (fstatat(qdir, qn, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (st.st_ino != o->inode || (o->dev && st.st_dev != o->dev))
			return CONFLICT(j, "%s/%s exists already", PH_QUARANTINE_DIR, qn);
		goto done;
	}
	k = open_dir_of(j, o->path, &dir, &name);
	if (k == 0)
		k = j->lease_fd1 > 0 ? ph_check_at(dir, name, o->dev, o->inode, o->gen, j->lease_fd1 - 1, NULL) :
				       ph_open_at_checked(dir, name, O_RDONLY, o->dev, o->inode, o->gen, &fd);
	if (k == -ESTALE || k == -ENOENT)
		return CONFLICT(j, "%s was replaced", o->path);
	if (k < 0)
		return k;
	if (linkat(dir, name, qdir, qn, 0) < 0)
		return negative_errno();
	if (fstatat(qdir, qn, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != o->inode ||
	    (o->dev && st.st_dev != o->dev)) {
		(void)unlinkat(qdir, qn, 0);
		return CONFLICT(j, "%s was replaced while it was linked aside", o->path);
	}
	if (fsync(qdir) < 0)
		return negative_errno();
done:
	/* Our link changed the ctime: the rename compares with this one. */
	if (j->lease_fd1 > 0 && fstat(j->lease_fd1 - 1, &st) == 0)
		j->lease_ctime_ns = ns_of(&st.st_ctim);
	return 0;
}

/* The report next to a quarantined file: one JSON object (json-c escapes
 * every name, newlines included), in our own directory, never over
 * anything. */
static void write_report(struct ph_repairer *r, const struct job *j, const struct job_owner *o, int qdir,
			 const char *qn)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct json_object *rep = json_object_new_object();
	const char *text;
	size_t len;

	if (!rep)
		return;
	(void)ph_json_add_name(rep, "path", o->path);
	json_object_object_add(rep, "inode", json_object_new_int64((int64_t)o->inode));
	json_object_object_add(rep, "device", json_object_new_string(j->device));
	json_object_object_add(rep, "sector", json_object_new_int64((int64_t)j->page));
	json_object_object_add(rep, "offset", json_object_new_int64((int64_t)o->offset));
	json_object_object_add(rep, "reason", json_object_new_string("poisoned page; rule says quarantine"));
	text = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	if (asprintf(&name, "%s.report.json", qn) >= 0)
		fd = openat(qdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0))
		ph_warn(r->ctx, "cannot write the quarantine report of %s: %m, ignoring", o->path);
	else if (fd < 0 && errno != EEXIST)
		ph_warn(r->ctx, "cannot make the quarantine report of %s: %m, ignoring", o->path);
	json_object_put(rep);
}

static int rename_quarantine(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int dir = -EBADF, qdir = -EBADF, fd = -EBADF;
	_cleanup_free_ char *qn = NULL;
	const char *name;
	struct stat st;
	int k;

	k = quarantine_name_of(j, i, &qn);
	if (k < 0)
		return k;
	k = open_quarantine(r, j, &qdir);
	if (k < 0)
		return k;
	k = open_dir_of(j, o->path, &dir, &name);
	if (k == -ESTALE)
		return CONFLICT(j, "%s is not where it was planned", o->path);
	if (k < 0)
		return k;
	k = ph_open_at_checked(dir, name, O_RDONLY, o->dev, o->inode, o->gen, &fd);
	if (k == -ENOENT && fstatat(qdir, qn, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == o->inode) {
		write_report(r, j, o, qdir, qn);
		return 0; /* moved already */
	}
	if (k == -ESTALE || k == -ENOENT)
		return CONFLICT(j, "%s was replaced", o->path);
	if (k < 0)
		return k;
	/* Never over another quarantined file. */
	if (renameat2(dir, name, qdir, qn, RENAME_NOREPLACE) < 0)
		return errno == EEXIST ? CONFLICT(j, "%s/%s exists already", PH_QUARANTINE_DIR, qn) : negative_errno();
	if (ph_check_at(qdir, qn, o->dev, o->inode, o->gen, fd, NULL) < 0) {
		/* The name was swapped for another file of its owner's between
		 * the check and the rename: give it back. */
		(void)renameat2(qdir, qn, dir, name, RENAME_NOREPLACE);
		return CONFLICT(j, "%s was replaced while it was moved", o->path);
	}
	write_report(r, j, o, qdir, qn);
	if (fsync(qdir) < 0 || fsync(dir) < 0)
		return negative_errno();
	return 0;
}

/* The repaired copy over the original, by exchanging the two names: if
 * anyone opened the original meanwhile (the lease broke), the exchange
 * is undone and nothing changed. */
static int step_rename(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int dir = -EBADF;
	const char *name, *tname;
	struct stat st;
	int k, lfd;

	if (j->mode != PH_MODE_RELOCATE_FILE) /* quarantine: the rule's own, or a sharer's in relocate-pin */
		return rename_quarantine(r, j, i);
	k = open_dir_of(j, o->path, &dir, &name);
	if (k == -ESTALE)
		return CONFLICT(j, "%s is not where it was planned", o->path);
	if (k < 0)
		return k;
	tname = tmp_name(j, o->path, name);
	if (!tname)
		return -EINVAL;
	if (fstatat(dir, tname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return negative_errno();
		return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino != o->inode ? 0 :
		       CONFLICT(j, "the repaired copy of %s is gone", o->path);
	}
	if (j->lease_fd1 <= 0) {
		/* Resumed after a restart: the lease of the copy is gone, and
		 * so is the proof that nobody wrote since.  Copy again, under
		 * a lease. */
		k = copy_file(r, j, true);
		if (k < 0)
			return k;
	}
	lfd = j->lease_fd1 - 1;
	k = ph_check_at(dir, name, o->dev, o->inode, o->gen, lfd, NULL);
	if (k == -ESTALE || k == -ENOENT)
		return CONFLICT(j, "%s was replaced", o->path);
	if (k < 0)
		return k;
	if (fstat(lfd, &st) < 0)
		return negative_errno();
	/* A change by path (utimensat, chmod) breaks no lease: the ctime tells. */
	if (!lease_held(lfd) || ns_of(&st.st_ctim) != j->lease_ctime_ns || (uint64_t)st.st_size != o->size ||
	    ns_of(&st.st_mtim) != o->mtime_ns)
		return CONFLICT(j, "%s changed while it was copied", o->path);
	if (renameat2(dir, tname, dir, name, RENAME_EXCHANGE) < 0)
		return negative_errno();
	if (!lease_held(lfd) || ph_check_at(dir, tname, o->dev, o->inode, 0, lfd, NULL) < 0) {
		(void)renameat2(dir, tname, dir, name, RENAME_EXCHANGE);
		return CONFLICT(j, "%s was opened by another process as its copy took its place; put back", o->path);
	}
	/* The old inode keeps its name in quarantine. */
	if (unlinkat(dir, tname, 0) < 0)
		return negative_errno();
	lease_drop(j);
	return fsync(dir) < 0 ? negative_errno() : 0;
}

/* Another name of the old inode onto the repaired copy: link the copy
 * next to it, then rename that over it (atomic for each name). */
static int step_relink(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i], *first = &j->owners[0];
	_cleanup_close_ int fdir = -EBADF, odir = -EBADF;
	_cleanup_free_ char *tname = NULL;
	const char *fname, *oname;
	struct stat cur, st;
	int k;

	k = open_dir_of(j, first->path, &fdir, &fname);
	if (k == 0)
		k = open_dir_of(j, o->path, &odir, &oname);
	if (k == -ESTALE)
		return CONFLICT(j, "%s or %s is not where it was planned", first->path, o->path);
	if (k < 0)
		return k;
	if (fstatat(fdir, fname, &cur, AT_SYMLINK_NOFOLLOW) < 0)
		return negative_errno();
	if (cur.st_ino == first->inode)
		return CONFLICT(j, "%s was not replaced by its copy", first->path);
	if (fstatat(odir, oname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : negative_errno(); /* that name is gone: nothing to split */
	if (st.st_ino == cur.st_ino)
		return 0; /* done */
	if (st.st_ino != o->inode)
		return CONFLICT(j, "%s is another file now", o->path);
	k = ph_repair_side_name(".pmemheal-", oname, j->page, ".lnk", 0, &tname);
	if (k < 0)
		return k;
	(void)unlinkat(odir, tname, 0);
	if (linkat(fdir, fname, odir, tname, 0) < 0)
		return negative_errno();
	if (fstatat(odir, tname, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != cur.st_ino) {
		(void)unlinkat(odir, tname, 0);
		return CONFLICT(j, "%s was replaced while it was linked", first->path);
	}
	if (renameat2(odir, tname, odir, oname, 0) < 0) {
		int e = negative_errno();

		(void)unlinkat(odir, tname, 0);
		return e;
	}
	return fsync(odir) < 0 ? negative_errno() : 0;
}

static int step_unlink(struct ph_repairer *r, struct job *j, size_t i)
{
	const struct job_owner *o = &j->owners[i];
	_cleanup_close_ int dir = -EBADF, fd = -EBADF;
	const char *name;
	int k;

	k = open_dir_of(j, o->path, &dir, &name);
	if (k == -ESTALE)
		return CONFLICT(j, "%s is not where it was planned", o->path);
	if (k < 0)
		return k == -ENOENT ? 0 : k;
	k = ph_open_at_checked(dir, name, O_RDONLY, o->dev, o->inode, o->gen, &fd);
	if (k == -ENOENT || k == -ESTALE)
		return 0; /* gone, or another file by that name now: ours is gone */
	if (k == 0)
		k = may_free(r, j, o, fd);
	if (k < 0)
		return k;
	if (unlinkat(dir, name, 0) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	return fsync(dir) < 0 ? negative_errno() : 0;
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

/* Did the job share owner i into owners[0]'s new block (OnShared=together)?
 * Under OnShared=separate each sharer gets its own write and its own
 * block: nothing is shared again, and verify must not ask for it. */
/* An older job's owner i that was to share owner 0's repaired block. */
static bool reshared(const struct job *j, size_t i)
{
	for (size_t k = 0; k < j->n_steps; k++)
		if (j->steps[k].kind == PH_STEP_RESHARE && j->steps[k].owner == i)
			return true;
	return false;
}

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
			k = open_owner(j, o, O_RDONLY, &fd);
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
			if (j->legacy_slots && i > 0 && !reshared(j, i))
				continue; /* an older job: its own write, its own block (OnShared=separate) */
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
		/* The copy now has the name (a new inode: not the planned one),
		 * reached as every step reaches it: through its directory, no
		 * link on the way, on the planned filesystem. */
		const struct job_owner *o = &j->owners[0];
		_cleanup_close_ int dir = -EBADF, fd = -EBADF;
		static const uint8_t zeros[PH_PAGE_SIZE];
		const char *name;
		struct stat a;

		k = open_dir_of(j, o->path, &dir, &name);
		if (k == 0) {
			fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
			k = fd < 0 ? negative_errno() : fstat(fd, &a) < 0 ? negative_errno() : 0;
		}
		if (k == 0 && (!S_ISREG(a.st_mode) || (o->dev && (uint64_t)a.st_dev != o->dev)))
			k = -ESTALE;
		if (k < 0)
			return asprintf(why, "%s: %s", o->path, k == -ESTALE ? "not the repaired copy" : strerror(-k)) < 0 ?
				       -ENOMEM : -EIO;
		if (!same_bytes(fd, o->offset, j->hole ? zeros : j->content))
			return asprintf(why, "the copy of %s does not hold the repaired page", o->path) < 0 ? -ENOMEM : -EIO;
		for (size_t i = 1; i < j->n_owners; i++) {
			_cleanup_close_ int ldir = -EBADF;
			const char *lname;
			struct stat b;

			if (!j->owners[i].link || open_dir_of(j, j->owners[i].path, &ldir, &lname) < 0 ||
			    fstatat(ldir, lname, &b, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* a name removed meanwhile splits nothing */
			if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
				return asprintf(why, "%s is not a link of the repaired %s", j->owners[i].path,
						o->path) < 0 ? -ENOMEM : -EIO;
		}
		j->pinned = true; /* the old inode keeps the poisoned block */
		return 0;
	}
	case PH_MODE_DELETE:
	case PH_MODE_PUNCH:
		/* Nothing pinned: the bus cleared the page in place, and its
		 * block was given back only once the kernel no longer listed
		 * it (may_free()). */
		if (!job_pins(j)) {
			j->cleared = true;
			return 0;
		}
		if (!j->cleared)
			j->pinned = true;
		return 0;
	case PH_MODE_QUARANTINE:
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

static int run_job(struct ph_repairer *r, struct job *j, int64_t intent, int from, char **why)
{
	int k;

	for (size_t i = (size_t)from; i < j->n_steps; i++) {
		pause_point(r, j->steps[i].kind);
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
	k = verify(r, j, why);
	(void)ph_ledger_intent_finish(r->ledger, intent, k < 0 ? "failed" : "done", *why, ph_now_usec());
	fault_point(r, PH_STEP_VERIFY);
	return k;
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
		_cleanup_close_ int fd = -EBADF, dir = -EBADF;
		const char *name;
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
		if (open_dir_of(j, o->path, &dir, &name) < 0)
			return -ESTALE; /* not reachable without a link: not the file mapped */
		fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_ino != po->inode || !S_ISREG(st.st_mode))
			return -ESTALE; /* renamed or replaced since it was mapped */
		o->dev = (uint64_t)st.st_dev;
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
			j->owners[j->n_owners] = (struct job_owner){ .dev = j->owners[0].dev, .inode = j->owners[0].inode,
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
		_cleanup_free_ char *tname = NULL, *prefix = NULL;
		int k;

		/* Within NAME_MAX even for a name of NAME_MAX bytes. */
		k = ph_repair_side_name(".pmemheal-", base, pg->sector, ".tmp", 0, &tname);
		if (k < 0)
			return k;
		if (asprintf(&prefix, "%" PRIu64 "-", j->owners[0].inode) < 0)
			return -ENOMEM;
		k = ph_repair_side_name(prefix, base, pg->sector, "", PH_QUARANTINE_RESERVE, &j->qname);
		if (k < 0)
			return k;
		if (asprintf(&j->tmp, "%s/%s", dir, tname) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < pg->n_steps; i++)
		if (changing_step(pg->steps[i].kind))
			j->steps[j->n_steps++] = (struct job_step){ pg->steps[i].kind, pg->steps[i].owner };
	return 0;
}

static const struct ph_namespace *find_ns(const struct ph_topology *t, const char *id)
{
	for (size_t i = 0; t && i < t->n_namespaces; i++)
		if (strcmp(t->namespaces[i].id, id) == 0)
			return &t->namespaces[i];
	return NULL;
}

/* Has the job's page gone through memory_failure since it was planned?
 * Asked right before the device is read: mapping and planning can take
 * long, and a machine check in between would make the read of any sector
 * of the page oops the kernel.  Not knowing (no kernel log, no physical
 * address) counts as yes. */
static bool memfailed_now(struct ph_repairer *r, const struct job *j)
{
	const struct ph_namespace *ns = r->topo ? find_ns(r->topo, j->ns_id) : NULL;

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
	r->own_memfail = PH_MEMFAIL_INIT;
	r->memfail = &r->own_memfail;
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

_public_ void ph_repairer_set_memfail(struct ph_repairer *r, struct ph_memfail *m)
{
	r->memfail = m ?: &r->own_memfail;
}

_public_ struct ph_repairer *ph_repairer_free(struct ph_repairer *r)
{
	if (!r)
		return NULL;
	ph_memfail_done(&r->own_memfail);
	free(r->fault_step);
	free(r->error_step);
	free(r->pause_step);
	free(r->pause_fifo);
	free(r->why);
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
	/* Asked anew for every range (only what the kernel logged since, when
	 * /dev/kmsg stays open): a daemon runs for days. */
	k = ph_memfail_follow(r->ctx, r->memfail);
	if (k < 0) {
		ph_error_set(err, "cannot tell which pages went through memory_failure (no kernel log): "
			     "refusing to read any");
		return k;
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
			.memfail = &r->memfail->pfns,
			.bad = s->bad_read ? &s->bad : NULL,
			.override = _PH_ACTION_MAX,
		};
		s->part_start[s->n_env++] = fstart;
	}
	return 0;
}

/* Plan row's poisoned sectors on each filesystem they fall in. */
/* "PID 12 (comm), PID 34 (comm)": processes with the file open or mapped,
 * from /proc (resolved against the context's root).  NULL: none.  The
 * file is the inode the mapper found on the filesystem mounted at mount,
 * never what its path names now (a link planted there would name
 * another). */
static int find_holders(struct ph_ctx *ctx, const char *mount, uint64_t inode, char **ret)
{
	_cleanup_free_ char *proc = NULL, *out = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	size_t len = 0;
	struct stat want;
	struct dirent *de;
	int k;

	*ret = NULL;
	if (!mount || stat(mount, &want) < 0)
		return 0;
	want.st_ino = (ino_t)inode;
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
	/* A file moved aside or deleted leaves whoever has it open on the old
	 * inode: say who, where /proc shows them (it does not under the
	 * shipped unit: ProtectProc=, no CAP_SYS_PTRACE).  A relocated file
	 * needs no note: its write lease refuses to move it while it is open. */
	for (size_t i = 0; k == 0 && i < n; i++)
		for (size_t p = 0; k == 0 && p < plans[i]->n_pages; p++) {
			struct ph_plan_page *pg = &plans[i]->pages[p];

			if ((pg->mode == PH_MODE_QUARANTINE || pg->mode == PH_MODE_DELETE) && pg->n_owners > 0 &&
			    pg->owners[0].path)
				k = find_holders(s->ctx, plans[i]->mountpoint, pg->owners[0].inode, &pg->holders);
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
		/* A pinned block is this page's own fact; a cleared page is
		 * part of its range's "cleared", recorded once when the range
		 * is settled (settle()). */
		if (j.pinned && !j.cleared)
			rec_plan_page(r, PH_EVENT_PINNED, plan, pg, pg->n_owners ? 0 : SIZE_MAX, range_id, s->ns->id,
				      "ok", PH_FIELD_UNSET,
				      j.can_clear ? "the pinned block could not be cleared; it stays allocated" :
						    "the bus cannot clear: the poisoned block stays allocated in quarantine");
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

/* The range's outcome.  "cleared" is one fact about the whole range,
 * recorded here once, when this repair moves it to cleared (every page
 * verified unlisted); a scan that later finds the range gone from the
 * kernel's list sees it cleared already and records nothing. */
static void settle(struct ph_repairer *r, const struct ph_range_row *row, enum ph_state *cur, enum ph_state to,
		   const char *detail)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	enum ph_state was = *cur;

	(void)set_state(r, row->id, cur, to, "repair", detail);
	if (was == *cur || *cur != PH_STATE_CLEARED || !r->rec)
		return;
	f.device = row->device; /* as the scan's events name it */
	f.sector = row->start;
	f.count = row->count;
	f.range_id = row->id;
	f.ns_id = row->ns_id;
	f.result = "ok";
	f.detail = "repaired and verified: the kernel no longer lists any of its pages";
	(void)ph_record(r->rec, PH_EVENT_CLEARED, &f);
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
			rec_devdax(r, healed ? PH_EVENT_REPAIRED : PH_EVENT_FAILED, ns, row, plans[0]->pages[p].sector,
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
		settle(r, row, &cur, final_state(res), res->detail);
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
	k = job_from_json(it, &j, &why);
	if (k == -ENOMEM)
		return k; /* says nothing about the intent: stop, keep it running */
	if (k < 0) {
		_cleanup_free_ char *detail = NULL;

		/* Set aside, never deleted: the row keeps its plan and bytes
		 * for inspection; the range is planned again. */
		if (asprintf(&detail, "intent %" PRId64 " set aside, its job is unreadable: %s", it->id,
			     why ? why : strerror(-k)) < 0)
			detail = NULL;
		ph_err(r->ctx, "%s; the other intents are resumed", detail ? detail : "an intent is unreadable");
		(void)ph_ledger_intent_finish(r->ledger, it->id, "failed", detail ? detail : "unreadable job",
					      ph_now_usec());
		(void)ph_ledger_add_history(r->ledger, it->range_id, "failed", detail, ph_now_usec());
		return 0;
	}
	free(why);
	why = NULL;
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
		if (j.pinned && !j.cleared) /* cleared: recorded once, with its range */
			rec_job(r, PH_EVENT_PINNED, &j, it->range_id, "ok", "resumed after a restart");
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
		settle(r, row, &cur, final_state(res), res->detail ? res->detail : detail);
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
