/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reaching users' files as root without being turned against the host.
 * Every name is resolved beneath a directory fd the caller holds: no
 * symbolic link is followed and no other filesystem is entered
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV, or an
 * O_NOFOLLOW walk of the components where the kernel has no openat2).
 * Nothing here decides what to do with a file; it only opens and checks.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Open rel (relative; "" is the directory itself) beneath dirfd. */
int ph_open_beneath(int dirfd, const char *rel, int flags, int *ret_fd);

/* The same, one component at a time with O_NOFOLLOW (the fallback where
 * openat2 is missing; tests call it directly). */
int ph_open_beneath_walk(int dirfd, const char *rel, int flags, int *ret_fd);

/* The directory holding path (which lies under mount), opened beneath
 * the mount's root; *ret_name points into path at the last component.
 * -EXDEV: path is not under mount, or crosses into another filesystem;
 * -ELOOP or -ENOTDIR: a component is a symbolic link. */
int ph_open_parent(const char *mount, const char *path, int *ret_dirfd, const char **ret_name);

/* Is name in dirfd the inode planned: same device (dev 0: the
 * directory's), inode and, when both are known, generation?  fd, when not
 * negative, is an open descriptor of it to check as well (and to read
 * the generation from, so that no new open breaks a lease).  0: it is;
 * -ENOENT: no such name; -ESTALE: another file is there now. */
int ph_check_at(int dirfd, const char *name, uint64_t dev, uint64_t ino, uint64_t gen, int fd, struct stat *ret_st);

/* Open name in dirfd without following a link or blocking (a FIFO),
 * and only when it is the inode planned, as ph_check_at() tells. */
int ph_open_at_checked(int dirfd, const char *name, int flags, uint64_t dev, uint64_t ino, uint64_t gen,
		       int *ret_fd);

/* A directory of ours: name in dirfd, created 0700 when missing, and
 * then refused unless it is a real directory (not a link) on dirfd's
 * filesystem, owned by us, mode 0700.  -EPERM with *ret_why set. */
int ph_private_dir(int dirfd, const char *name, const char *shown, int *ret_fd, char **ret_why);
