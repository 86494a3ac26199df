/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Points in time as operators type them ("2026-11-22 17:05", "-1h",
 * "2h ago", "yesterday", "@1763830000"), for options such as
 * 'pmemheal history --since'.  Pure functions: no I/O, the local time zone
 * from the environment (TZ), "now" passed in so that tests can fix it.
 */
#pragma once

#include <stdint.h>

/*
 * Parse TEXT into microseconds since the epoch.  Accepted:
 *   YYYY-MM-DD, YYYY-MM-DD HH:MM, YYYY-MM-DD HH:MM:SS (also with a 'T'
 *     between date and time), local time, or UTC with a trailing " UTC"
 *     or "Z";
 *   HH:MM[:SS]                 today at that time;
 *   now, today, yesterday, tomorrow (midnight, local time);
 *   @SECONDS[.FRACTION]        since the epoch;
 *   -SPAN, +SPAN, "SPAN ago"   relative to NOW, where SPAN is one or more
 *     numbers with units: us, ms, s, sec, second(s), m, min, minute(s),
 *     h, hour(s), d, day(s), w, week(s) ("1h30m", "2 hours"); a bare
 *     number is seconds.
 * NOW is microseconds since the epoch.  Returns 0, -EINVAL for text it
 * does not understand (or a date that does not exist, such as
 * 2026-02-30), -ERANGE for a time before the epoch or out of range.
 */
int ph_parse_time(const char *text, uint64_t now, uint64_t *ret);

/*
 * Parse a span as above ("1h30m", "90", "2 days") into microseconds.
 */
int ph_parse_timespan(const char *text, uint64_t *ret);
