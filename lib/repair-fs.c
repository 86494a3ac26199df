/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reaching a job's owners and their pages: the directory of a path beneath
 * the mount, the owner's fd checked against the job's fingerprint, the page's
 * block (one-extent FIEMAP), whether the kernel still lists the page, the
 * quarantine directory, and the job's content slots.  Reads only; no step
 * changes anything here.
 */
#include "repair-internal.h"

/* ---- small helpers ----------------------------------------------------- */

char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return (char *)(s ? s + 1 : p);
}

void job_done(struct job *j)
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
uint8_t *slot_page(struct job *j, size_t s)
{
	return s == 0 ? j->content : j->more[s - 1];
}

/* All slots, one page each, as stored in the intent log. */
uint8_t *slots_blob(struct job *j, size_t *ret_len)
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

int slots_from_blob(struct job *j, const void *blob, size_t len)
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
int page_map(int fd, uint64_t off, uint64_t *ret_sector, bool *ret_hole, bool *ret_shared)
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
int page_listed(struct ph_ctx *ctx, const struct job *j, bool *ret)
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
int open_dir_of(const struct job *j, const char *path, int *ret_dirfd, const char **ret_name)
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
int open_owner(const struct job *j, const struct job_owner *o, int flags, int *ret_fd)
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

bool same_bytes(int fd, uint64_t off, const uint8_t *want)
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
int open_quarantine(struct ph_repairer *r, struct job *j, int *ret_fd)
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
const char *quarantine_name(const char *path)
{
	const char *b = basename_of(path);

	return *b && strcmp(b, ".") && strcmp(b, "..") ? b : NULL;
}
