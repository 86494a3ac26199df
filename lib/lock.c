/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The repair lock: flock(2) on STATE_DIR/repair.lock.  pmemheald's worker
 * waits for it between its own checks for a stop request (worker.c);
 * pmemheal repair tries once; pmemheal scan retries for a few seconds.
 * This file only opens and locks; it does not decide what a caller does
 * when the lock is held, and it does not print.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lock.h"
#include "macro.h"

#define LOCK_POLL_USEC (50 * 1000)

_public_ int ph_repair_lock_open(const char *state_dir, char **ret_path, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	int fd;

	if (asprintf(&path, "%s/repair.lock", state_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return negative_errno();
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	*ret_fd = fd;
	return 0;
}

_public_ int ph_repair_lock_try(int fd)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	return errno == EINTR ? -EWOULDBLOCK : negative_errno();
}

_public_ int ph_repair_lock_take(const char *state_dir, uint64_t wait_usec, int *ret_fd)
{
	_cleanup_close_ int fd = -EBADF;
	uint64_t until = ph_mono_usec() + wait_usec;
	int r;

	r = ph_repair_lock_open(state_dir, NULL, &fd);
	if (r < 0)
		return r;
	for (;;) {
		r = ph_repair_lock_try(fd);
		if (r != -EWOULDBLOCK)
			break;
		if (ph_mono_usec() >= until)
			return r;
		(void)usleep(LOCK_POLL_USEC);
	}
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}
