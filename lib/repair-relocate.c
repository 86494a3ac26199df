/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * relocate-file and quarantine: a copy of the file under a write lease, the
 * old inode kept by a link (it holds the poisoned block), the names swapped
 * with RENAME_EXCHANGE and checked after; quarantine by RENAME_NOREPLACE into
 * <mount>/.pmemheal/quarantine with its report; unlink.
 */
#include "repair-internal.h"

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

void lease_drop(struct job *j)
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
const char *tmp_name(const struct job *j, const char *path, const char *name)
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

int step_copy(struct ph_repairer *r, struct job *j)
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

int step_link_old(struct ph_repairer *r, struct job *j)
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
int step_rename(struct ph_repairer *r, struct job *j, size_t i)
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
int step_relink(struct ph_repairer *r, struct job *j, size_t i)
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

int step_unlink(struct ph_repairer *r, struct job *j, size_t i)
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
