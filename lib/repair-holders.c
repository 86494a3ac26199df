/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which processes hold a file open or mapped, from /proc, for the journal's
 * note on quarantine and delete.  Names the inode the mapper found, never what
 * a path names now.
 */
#include "repair-internal.h"

/* "PID 12 (comm), PID 34 (comm)": processes with the file open or mapped,
 * from /proc (resolved against the context's root).  NULL: none.  The
 * file is the inode the mapper found on the filesystem mounted at mount,
 * never what its path names now (a link planted there would name
 * another). */
int find_holders(struct ph_ctx *ctx, const char *mount, uint64_t inode, char **ret)
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
