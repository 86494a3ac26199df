/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fake system root for unit tests: a temporary directory holding the
 * sysfs and /proc files the library reads, so tests can describe any
 * device layout (or a malformed one) without privileges.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static inline void fake_mkdirs(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(buf, 0755);
			*p = '/';
		}
	(void)mkdir(buf, 0755);
}

/* Write root/rel (creating directories); content may be NULL for "". */
static inline void fake_write(const char *root, const char *rel, const char *content)
{
	char path[4096], dir[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	fake_mkdirs(dir);
	f = fopen(path, "we");
	if (!f) {
		perror(path);
		abort();
	}
	fputs(content ? content : "", f);
	fclose(f);
}

static inline void fake_symlink(const char *root, const char *rel, const char *target)
{
	char path[4096], dir[4096];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	fake_mkdirs(dir);
	if (symlink(target, path) < 0) {
		perror(path);
		abort();
	}
}

static inline char *fake_root_new(void)
{
	char *t = strdup("/tmp/pmemheal-unit-XXXXXX");

	if (!t || !mkdtemp(t))
		abort();
	return t;
}

static int fake_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static inline void fake_root_free(char *root)
{
	if (root)
		nftw(root, fake_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
}

/*
 * Find any block device node on this machine: the fake tree supplies its
 * sysfs, so which one does not matter.  Returns NULL when there is none
 * (the caller skips).
 */
static inline char *fake_find_blockdev(dev_t *ret)
{
	DIR *d = opendir("/dev");
	struct dirent *de;
	char *found = NULL;

	if (!d)
		return NULL;
	while (!found && (de = readdir(d))) {
		char p[512];
		struct stat st;

		snprintf(p, sizeof(p), "/dev/%s", de->d_name);
		if (stat(p, &st) == 0 && S_ISBLK(st.st_mode)) {
			found = strdup(p);
			*ret = st.st_rdev;
		}
	}
	closedir(d);
	return found;
}
