/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Safe name resolution for the repairer (see safefs.h).  It does not
 * create, rename or remove users' files: callers do that with *at() calls
 * on the directory fd these helpers hand back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "safefs.h"

static int sys_openat2(int dirfd, const char *path, struct open_how *how)
{
#ifdef SYS_openat2
	return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Absolute, or a ".." anywhere: never what a mapped path holds. */
static bool escapes(const char *rel)
{
	if (rel[0] == '/')
		return true;
	for (const char *c = rel; (c = strstr(c, "..")); c += 2)
		if ((c == rel || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
			return true;
	return false;
}

/* The walk openat2 would do: one component at a time, never a link,
 * never "..", never another filesystem. */
int ph_open_beneath_walk(int dirfd, const char *rel, int flags, int *ret_fd)
{
	_cleanup_free_ char *copy = strdup(rel);
	_cleanup_close_ int cur = -EBADF;
	struct stat root, st;
	char *save = NULL, *c, *next;

	if (!copy)
		return -ENOMEM;
	if (escapes(rel))
		return -EXDEV;
	if (fstat(dirfd, &root) < 0)
		return negative_errno();
	cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return negative_errno();
	for (c = strtok_r(copy, "/", &save); c; c = next) {
		int nfd;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return -EXDEV;
		nfd = openat(cur, c, (next ? O_RDONLY | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (nfd < 0)
			return errno == ENOTDIR && next ? -ELOOP : negative_errno();
		closep(&cur);
		cur = nfd;
		if (fstat(cur, &st) < 0)
			return negative_errno();
		if (st.st_dev != root.st_dev)
			return -EXDEV;
	}
	if (!*rel || strspn(rel, "/.") == strlen(rel)) {
		/* the directory itself, with the flags asked for */
		int nfd = openat(dirfd, ".", flags | O_CLOEXEC);

		if (nfd < 0)
			return negative_errno();
		closep(&cur);
		cur = nfd;
	}
	*ret_fd = TAKE_FD(cur);
	return 0;
}

int ph_open_beneath(int dirfd, const char *rel, int flags, int *ret_fd)
{
	static int have_openat2 = -1; /* probed once: ENOSYS, or seccomp's EPERM */
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (escapes(rel))
		return -EXDEV;
	if (have_openat2 != 0) {
		fd = sys_openat2(dirfd, *rel ? rel : ".", &how);
		if (fd >= 0) {
			have_openat2 = 1;
			*ret_fd = fd;
			return 0;
		}
		if (!(errno == ENOSYS || (errno == EPERM && have_openat2 < 0)))
			return negative_errno();
		have_openat2 = 0;
	}
	return ph_open_beneath_walk(dirfd, rel, flags, ret_fd);
}

int ph_open_parent(const char *mount, const char *path, int *ret_dirfd, const char **ret_name)
{
	_cleanup_close_ int root = -EBADF, dir = -EBADF;
	_cleanup_free_ char *rel = NULL;
	size_t ml;
	const char *slash, *name;
	int k;

	if (!mount || !path)
		return -EINVAL;
	ml = strcmp(mount, "/") == 0 ? 0 : strlen(mount);
	if (strncmp(path, mount, ml) != 0 || path[ml] != '/')
		return -EXDEV;
	slash = strrchr(path, '/');
	name = slash + 1;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	rel = strndup(path + ml + 1, slash > path + ml ? (size_t)(slash - (path + ml + 1)) : 0);
	if (!rel)
		return -ENOMEM;
	root = open(ml ? mount : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (root < 0)
		return negative_errno();
	k = ph_open_beneath(root, rel, O_RDONLY | O_DIRECTORY, &dir);
	if (k < 0)
		return k;
	*ret_dirfd = TAKE_FD(dir);
	*ret_name = name;
	return 0;
}

int ph_check_at(int dirfd, const char *name, uint64_t dev, uint64_t ino, uint64_t gen, int fd, struct stat *ret_st)
{
	struct stat d, st, f;
	uint64_t g = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ENOENT : negative_errno();
	if (!dev) {
		if (fstat(dirfd, &d) < 0)
			return negative_errno();
		dev = d.st_dev;
	}
	if (st.st_dev != dev || st.st_ino != ino || !S_ISREG(st.st_mode))
		return -ESTALE;
	if (fd >= 0) {
		if (fstat(fd, &f) < 0)
			return negative_errno();
		if (f.st_dev != st.st_dev || f.st_ino != st.st_ino)
			return -ESTALE;
		if (gen && ioctl(fd, FS_IOC_GETVERSION, &g) == 0 && g != gen)
			return -ESTALE;
	}
	if (ret_st)
		*ret_st = st;
	return 0;
}

int ph_open_at_checked(int dirfd, const char *name, int flags, uint64_t dev, uint64_t ino, uint64_t gen,
		       int *ret_fd)
{
	_cleanup_close_ int fd = -EBADF;
	int k;

	/* Not a FIFO or a device: look before opening, then check again. */
	k = ph_check_at(dirfd, name, dev, ino, 0, -EBADF, NULL);
	if (k < 0)
		return k;
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : errno == ELOOP ? -ESTALE : negative_errno();
	k = ph_check_at(dirfd, name, dev, ino, gen, fd, NULL);
	if (k < 0)
		return k;
	/* Back to blocking I/O for the caller. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int ph_private_dir(int dirfd, const char *name, const char *shown, int *ret_fd, char **ret_why)
{
	_cleanup_close_ int fd = -EBADF;
	struct stat parent, st;

	if (fstat(dirfd, &parent) < 0)
		return negative_errno();
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ELOOP && errno != ENOTDIR)
			return negative_errno();
		return asprintf(ret_why, "%s is not a directory (a symbolic link or a file): refusing to use it; "
				"remove it and run again", shown) < 0 ? -ENOMEM : -EPERM;
	}
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (st.st_dev != parent.st_dev)
		return asprintf(ret_why, "%s is on another filesystem: refusing to use it", shown) < 0 ? -ENOMEM :
														 -EPERM;
	if (st.st_uid != geteuid() || (st.st_mode & 07777) != 0700)
		return asprintf(ret_why, "%s is owned by uid %u with mode %04o, not by uid %u with mode 0700: someone "
				"else made it; refusing to use it; remove it and run again", shown, (unsigned)st.st_uid,
				(unsigned)(st.st_mode & 07777), (unsigned)geteuid()) < 0 ? -ENOMEM : -EPERM;
	*ret_fd = TAKE_FD(fd);
	return 0;
}
