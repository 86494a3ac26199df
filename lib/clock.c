/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CLOCK_MONOTONIC in microseconds: one helper for the CLI, the daemon and
 * the monitor, so their mono_usec values compare.  It does not sleep or
 * convert to wall-clock time.
 */
#include <time.h>

#include "clock.h"
#include "macro.h"

_public_ uint64_t ph_mono_usec(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
