/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The steps that change a filesystem, each after checking that the owner's
 * page is where the job left it.  Page states a step accepts (anything else
 * is a conflict: stop, write nothing):
 *   stage     (the staging file only: the repaired pages on fresh blocks)
 *   pin       the owner maps the poisoned block; or the pin file already does
 *   swap      the owner maps the poisoned block, or its staged page
 *   punch     the owner maps the poisoned block, or a hole
 *   write     in place: the owner maps the poisoned block, or our bytes;
 *             relocated: a hole, or a fresh block holding our bytes
 *   reshare   the poisoned block, a hole, or the first owner's new block
 *   clear     the pin file, sole owner of the poisoned block; or cleared
 *   rename... the inode is the one planned (or the step is done)
 * The same checks make a resumed job safe: a step that had completed before a
 * crash finds the "after" state and is done already.  run_step() dispatches
 * a job's step to its function here or in repair-relocate.c.
 */
#include "repair-internal.h"

/* ---- steps ------------------------------------------------------------- */

/* The file is not where the job left it: log why and stop (-ESTALE). */
int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...) _printf_(3, 4);
int conflict(struct ph_repairer *r, const struct job *j, const char *fmt, ...)
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
int open_pin(struct ph_repairer *r, struct job *j, bool create, int *ret_qdir, int *ret_pin)
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
bool job_pins(const struct job *j)
{
	for (size_t k = 0; k < j->n_steps; k++)
		if (j->steps[k].kind == PH_STEP_PIN)
			return true;
	return false;
}

/* Does a pin file take part: the job pins the block, or finishes (clears
 * and releases) one an earlier repair pinned? */
bool job_uses_pin(const struct job *j)
{
	for (size_t k = 0; k < j->n_steps; k++)
		if (j->steps[k].kind == PH_STEP_PIN || j->steps[k].kind == PH_STEP_CLEAR ||
		    j->steps[k].kind == PH_STEP_RELEASE)
			return true;
	return false;
}

/* About to give owner o's blocks back (punch, unlink) through fd: when it
 * still maps the poisoned block and nothing else holds that block (the
 * job pins nothing: the bus was to clear it in place), the kernel must
 * no longer list the page, or the allocator would get a poisoned block. */
int may_free(struct ph_repairer *r, struct job *j, const struct job_owner *o, int fd)
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
size_t page_len(const struct job_owner *o)
{
	return o->offset >= o->size ? 0 : (size_t)MIN((uint64_t)PH_PAGE_SIZE, o->size - o->offset);
}

bool same_prefix(int fd, uint64_t off, const uint8_t *want, size_t len)
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

int run_step(struct ph_repairer *r, struct job *j, const struct job_step *s)
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
	case PH_STEP_VERIFY:
		return verify(r, j, &r->why);
	default:
		return 0;
	}
}
