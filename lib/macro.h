/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers used everywhere: cleanup attributes, ownership transfer and
 * symbol visibility.  Nothing here allocates or does I/O.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _public_ __attribute__((visibility("default")))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#include <sys/param.h> /* MIN() and MAX(), which xfs/xfs.h pulls in too */

/* Take ownership of a pointer: return it and leave NULL behind. */
#define TAKE_PTR(p)                     \
	({                              \
		typeof(p) _p_ = (p);    \
		(p) = NULL;             \
		_p_;                    \
	})
#define TAKE_FD(fd)                     \
	({                              \
		int _fd_ = (fd);        \
		(fd) = -EBADF;          \
		_fd_;                   \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		(void)close(fd);
		errno = saved;
	}
	return -EBADF;
}

static inline void closep(int *fd)
{
	*fd = safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
	if (*f) {
		int saved = errno;
		fclose(*f);
		errno = saved;
	}
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define foo_freep() for a destructor foo_free() that accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
	static inline void func##p(type *p)     \
	{                                       \
		if (*p)                         \
			func(*p);               \
	}

/* -errno from a libc call that sets errno; never 0. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#include <dirent.h>
static inline void closedirp(DIR **d)
{
	if (*d) {
		int saved = errno;
		closedir(*d);
		errno = saved;
	}
}

/*
 * Make room for at least 'need' elements in the array v of capacity cap,
 * doubling from 'first'.  v and cap are updated only on success.  Returns 0
 * or -ENOMEM (the old array is kept: no leak as with p = realloc(p, n)).
 */
#define PH_GROW(v, cap, need, first)                                              \
	({                                                                        \
		int _gr_ = 0;                                                     \
		if ((size_t)(need) > (cap)) {                                     \
			size_t _gc_ = (cap) ? (cap) : (size_t)(first);            \
			while (_gc_ < (size_t)(need))                             \
				_gc_ *= 2;                                        \
			typeof(v) _gv_ = reallocarray((v), _gc_, sizeof(*(v)));   \
			if (_gv_) {                                               \
				(v) = _gv_;                                       \
				(cap) = _gc_;                                     \
			} else                                                    \
				_gr_ = -ENOMEM;                                   \
		}                                                                 \
		_gr_;                                                             \
	})
