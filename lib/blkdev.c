/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Block device resolution for the mapper.  Given a device node, find its
 * sysfs directory, its size, whether it is a partition (and where it starts),
 * its partitions when it is a whole disk, and the filesystem mounted on each.
 *
 * It does not open the device and does not look inside filesystems.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blkdev.h"

_public_ int ph_sysfs_read_u64(const char *path, uint64_t *ret)
{
	_cleanup_close_ int fd = -EBADF;
	char buf[64];
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n == 0)
		return -EBADMSG;
	return ph_parse_u64(buf, ret) < 0 ? -EBADMSG : 0;
}

_public_ struct ph_mount *ph_mount_free(struct ph_mount *m)
{
	if (!m)
		return NULL;
	free(m->mountpoint);
	free(m->fstype);
	free(m->source);
	free(m->root);
	free(m);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_mount *, ph_mount_free);

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
_public_ int ph_mountinfo_unescape(const char *in, char **ret)
{
	char *out = malloc(strlen(in) + 1), *o = out;

	if (!out)
		return -ENOMEM;
	while (*in) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*o++ = (char)(((in[1] - '0') << 6) | ((in[2] - '0') << 3) | (in[3] - '0'));
			in += 4;
		} else
			*o++ = *in++;
	}
	*o = '\0';
	*ret = out;
	return 0;
}

/*
 * Parse one mountinfo line:
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 */
static int parse_mountinfo_line(char *line, struct ph_mount **ret)
{
	_cleanup_(ph_mount_freep) struct ph_mount *m = NULL;
	char *save = NULL, *tok, *fields[6] = { 0 };
	unsigned maj, min;
	size_t n = 0;
	int r;

	for (tok = strtok_r(line, " \n", &save); tok && n < 6; tok = strtok_r(NULL, " \n", &save))
		fields[n++] = tok;
	if (n < 6)
		return -EBADMSG;
	/* Skip optional fields up to the "-" separator. */
	while (tok && strcmp(tok, "-") != 0)
		tok = strtok_r(NULL, " \n", &save);
	if (!tok)
		return -EBADMSG;
	if (sscanf(fields[2], "%u:%u", &maj, &min) != 2)
		return -EBADMSG;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = makedev(maj, min);
	r = ph_mountinfo_unescape(fields[3], &m->root);
	if (r < 0)
		return r;
	r = ph_mountinfo_unescape(fields[4], &m->mountpoint);
	if (r < 0)
		return r;
	tok = strtok_r(NULL, " \n", &save);
	if (!tok)
		return -EBADMSG;
	m->fstype = strdup(tok);
	tok = strtok_r(NULL, " \n", &save);
	if (!tok)
		return -EBADMSG;
	r = ph_mountinfo_unescape(tok, &m->source);
	if (r < 0)
		return r;
	if (!m->fstype)
		return -ENOMEM;
	*ret = TAKE_PTR(m);
	return 0;
}

/*
 * Find the mount of the filesystem on block device 'dev'.  Filesystems that
 * report an anonymous device in mountinfo (btrfs) are found by their source
 * node instead, so that they can be refused by name.  Among several mounts
 * of one filesystem, prefer one of its root directory, then the first.
 */
_public_ int ph_mountinfo_find(struct ph_ctx *ctx, dev_t dev, const char *node, struct ph_mount **ret)
{
	_cleanup_(ph_mount_freep) struct ph_mount *best = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *path = NULL, *line = NULL;
	size_t size = 0;
	unsigned lineno = 0;
	int r;

	r = ph_ctx_path(ctx, "/proc/self/mountinfo", &path);
	if (r < 0)
		return r;
	f = fopen(path, "re");
	if (!f) {
		r = negative_errno();
		ph_err(ctx, "%s: cannot open: %m", path);
		return r;
	}
	while (getline(&line, &size, f) > 0) {
		_cleanup_(ph_mount_freep) struct ph_mount *m = NULL;
		bool match;

		lineno++;
		r = parse_mountinfo_line(line, &m);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			ph_warn(ctx, "%s:%u: malformed line, ignoring", path, lineno);
			continue;
		}
		match = m->dev == dev;
		if (!match && node && m->source[0] == '/') {
			struct stat st;

			match = stat(m->source, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev;
		}
		if (!match)
			continue;
		if (!best || (strcmp(best->root, "/") != 0 && strcmp(m->root, "/") == 0)) {
			ph_mount_free(best);
			best = TAKE_PTR(m);
		}
	}
	if (!best)
		return -ENOENT;
	*ret = TAKE_PTR(best);
	return 0;
}

static void part_done(struct ph_part *p)
{
	free(p->name);
	free(p->node);
	ph_mount_free(p->mount);
}

_public_ struct ph_blkdev *ph_blkdev_free(struct ph_blkdev *b)
{
	if (!b)
		return NULL;
	for (size_t i = 0; i < b->n_parts; i++)
		part_done(&b->parts[i]);
	free(b->parts);
	free(b->path);
	free(b->name);
	free(b->parent);
	free(b);
	return NULL;
}

static int sysfs_attr(const char *dir, const char *attr, uint64_t *ret)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, attr) < 0)
		return -ENOMEM;
	return ph_sysfs_read_u64(p, ret);
}

static int add_part(struct ph_ctx *ctx, struct ph_blkdev *b, const char *name, dev_t dev,
		    uint64_t start, uint64_t count)
{
	struct ph_part *v, *p;
	int r;

	v = reallocarray(b->parts, b->n_parts + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->parts = v;
	p = &v[b->n_parts];
	*p = (struct ph_part){ .dev = dev, .start = start, .count = count };
	p->name = strdup(name);
	if (!p->name || asprintf(&p->node, "/dev/%s", name) < 0) {
		free(p->name);
		return -ENOMEM;
	}
	b->n_parts++;
	r = ph_mountinfo_find(ctx, dev, p->node, &p->mount);
	if (r == -ENOENT)
		return 0;
	return r;
}

/* Parse "maj:min\n" from a sysfs dev attribute. */
static int read_devt(const char *dir, dev_t *ret)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	unsigned maj, min;

	if (asprintf(&p, "%s/dev", dir) < 0)
		return -ENOMEM;
	f = fopen(p, "re");
	if (!f)
		return negative_errno();
	if (fscanf(f, "%u:%u", &maj, &min) != 2)
		return -EBADMSG;
	*ret = makedev(maj, min);
	return 0;
}

static int part_cmp(const void *a, const void *b)
{
	const struct ph_part *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Fill b from its sysfs directory sysdir (b->path and b->dev are set). */
static int blkdev_from_sysfs(struct ph_ctx *ctx, struct ph_blkdev *b, const char *sysdir)
{
	_cleanup_free_ char *real = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	uint64_t v;
	char *slash;
	int r;

	real = realpath(sysdir, NULL);
	if (!real) {
		ph_err(ctx, "%s: no sysfs entry %s: %m", b->path, sysdir);
		return -ENODEV;
	}
	slash = strrchr(real, '/');
	b->name = strdup(slash + 1);
	if (!b->name)
		return -ENOMEM;

	r = sysfs_attr(real, "size", &b->size);
	if (r < 0) {
		ph_err(ctx, "%s: cannot read %s/size: %s", b->path, real, strerror(-r));
		return r == -ENOENT ? -ENODEV : r;
	}

	if (sysfs_attr(real, "partition", &v) == 0) {
		b->is_partition = true;
		r = sysfs_attr(real, "start", &b->part_start);
		if (r < 0) {
			ph_err(ctx, "%s: cannot read %s/start: %s", b->path, real, strerror(-r));
			return r;
		}
		*slash = '\0';
		b->parent = strdup(strrchr(real, '/') + 1);
		if (!b->parent)
			return -ENOMEM;
		*slash = '/';
	}

	/* A whole disk may have partitions: subdirectories with a "partition" file. */
	if (!b->is_partition) {
		d = opendir(real);
		if (!d)
			return negative_errno();
		while ((de = readdir(d))) {
			_cleanup_free_ char *sub = NULL;
			uint64_t start, count;
			dev_t pdev = 0;

			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&sub, "%s/%s", real, de->d_name) < 0)
				return -ENOMEM;
			if (sysfs_attr(sub, "partition", &v) < 0)
				continue;
			r = sysfs_attr(sub, "start", &start);
			if (r == 0)
				r = sysfs_attr(sub, "size", &count);
			if (r == 0)
				r = read_devt(sub, &pdev);
			if (r < 0) {
				ph_err(ctx, "%s: cannot read partition %s: %s", b->path, sub, strerror(-r));
				return r;
			}
			r = add_part(ctx, b, de->d_name, pdev, start, count);
			if (r < 0)
				return r;
		}
		b->partitioned = b->n_parts > 0;
		if (b->n_parts > 1)
			qsort(b->parts, b->n_parts, sizeof(*b->parts), part_cmp);
	}
	if (!b->partitioned) {
		r = add_part(ctx, b, b->name, b->dev, 0, b->size);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A new blkdev named path, filled from the sysfs link (under the root); the
 * dev number comes from stat (dev != 0) or from sysfs. */
static int blkdev_new(struct ph_ctx *ctx, const char *path, dev_t dev, const char *link,
		      struct ph_blkdev **ret)
{
	_cleanup_(ph_blkdev_freep) struct ph_blkdev *b = NULL;
	_cleanup_free_ char *sysdir = NULL;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->dev = dev;
	b->path = strdup(path);
	if (!b->path)
		return -ENOMEM;
	r = ph_ctx_path(ctx, link, &sysdir);
	if (r < 0)
		return r;
	if (dev == 0) {
		r = read_devt(sysdir, &b->dev);
		if (r < 0)
			return r == -ENOENT ? -ENODEV : r;
	}
	r = blkdev_from_sysfs(ctx, b, sysdir);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(b);
	return 0;
}

_public_ int ph_blkdev_open(struct ph_ctx *ctx, const char *path, struct ph_blkdev **ret)
{
	_cleanup_free_ char *link = NULL;
	struct stat st;

	if (stat(path, &st) < 0)
		return negative_errno();
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	if (asprintf(&link, "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev)) < 0)
		return -ENOMEM;
	return blkdev_new(ctx, path, st.st_rdev, link, ret);
}

_public_ int ph_blkdev_open_name(struct ph_ctx *ctx, const char *name, struct ph_blkdev **ret)
{
	_cleanup_free_ char *link = NULL, *path = NULL;

	if (!name || !*name || strchr(name, '/'))
		return -EINVAL;
	if (asprintf(&path, "/dev/%s", name) < 0 || asprintf(&link, "/sys/class/block/%s", name) < 0)
		return -ENOMEM;
	return blkdev_new(ctx, path, 0, link, ret);
}
