/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Points in time from operator text.  Calendar dates go through mktime()
 * (local time, the C library's time zone rules) or timegm() (UTC) and are
 * rejected when mktime() had to normalise them: 2026-02-30 is an error,
 * not March 2nd.  Relative times are plain arithmetic on microseconds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "macro.h"
#include "timestamp.h"

#define USEC_PER_SEC UINT64_C(1000000)

static const struct {
	const char *name;
	uint64_t usec;
} units[] = {
	{ "us", 1 },
	{ "usec", 1 },
	{ "ms", 1000 },
	{ "msec", 1000 },
	{ "s", USEC_PER_SEC },
	{ "sec", USEC_PER_SEC },
	{ "secs", USEC_PER_SEC },
	{ "second", USEC_PER_SEC },
	{ "seconds", USEC_PER_SEC },
	{ "m", 60 * USEC_PER_SEC },
	{ "min", 60 * USEC_PER_SEC },
	{ "mins", 60 * USEC_PER_SEC },
	{ "minute", 60 * USEC_PER_SEC },
	{ "minutes", 60 * USEC_PER_SEC },
	{ "h", 3600 * USEC_PER_SEC },
	{ "hr", 3600 * USEC_PER_SEC },
	{ "hour", 3600 * USEC_PER_SEC },
	{ "hours", 3600 * USEC_PER_SEC },
	{ "d", 86400 * USEC_PER_SEC },
	{ "day", 86400 * USEC_PER_SEC },
	{ "days", 86400 * USEC_PER_SEC },
	{ "w", 7 * 86400 * USEC_PER_SEC },
	{ "week", 7 * 86400 * USEC_PER_SEC },
	{ "weeks", 7 * 86400 * USEC_PER_SEC },
};

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

_public_ int ph_parse_timespan(const char *text, uint64_t *ret)
{
	const char *p = skip_blanks(text);
	uint64_t total = 0;
	bool any = false;

	while (*p) {
		uint64_t n = 0, mult = USEC_PER_SEC;
		const char *u;
		size_t ulen;

		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (n > (UINT64_MAX - 9) / 10)
				return -ERANGE;
			n = n * 10 + (uint64_t)(*p - '0');
		}
		p = skip_blanks(p);
		u = p;
		while (isalpha((unsigned char)*p))
			p++;
		ulen = (size_t)(p - u);
		if (ulen > 0) {
			size_t i;

			for (i = 0; i < ELEMENTSOF(units); i++)
				if (strlen(units[i].name) == ulen && strncmp(u, units[i].name, ulen) == 0)
					break;
			if (i == ELEMENTSOF(units))
				return -EINVAL;
			mult = units[i].usec;
		} else if (*p)
			return -EINVAL; /* a bare number must be the last component */
		if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult)
			return -ERANGE;
		total += n * mult;
		any = true;
		p = skip_blanks(p);
	}
	if (!any)
		return -EINVAL;
	*ret = total;
	return 0;
}

/* The calendar time in tm (year, month, day, hour, minute, second as the
 * user wrote them), local or UTC, as microseconds; -EINVAL when the date
 * does not exist. */
static int from_calendar(const struct tm *in, bool utc, uint64_t *ret)
{
	struct tm tm = *in;
	time_t t;

	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	/* mktime() normalises 02-30 to 03-02: refuse such dates.  (A local
	 * time in a DST gap moves by the gap; that is fine.) */
	if (tm.tm_year != in->tm_year || tm.tm_mon != in->tm_mon || tm.tm_mday != in->tm_mday)
		return -EINVAL;
	if (t < 0)
		return -ERANGE;
	*ret = (uint64_t)t * USEC_PER_SEC;
	return 0;
}

/* Exactly n digits. */
static bool take_digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

/* HH:MM[:SS] into tm; a leap second counts as :59 (the journal has none). */
static bool take_clock(const char **p, struct tm *tm)
{
	if (!take_digits(p, 2, &tm->tm_hour) || **p != ':')
		return false;
	(*p)++;
	if (!take_digits(p, 2, &tm->tm_min))
		return false;
	tm->tm_sec = 0;
	if (**p == ':') {
		(*p)++;
		if (!take_digits(p, 2, &tm->tm_sec))
			return false;
	}
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return false;
	if (tm->tm_sec == 60)
		tm->tm_sec = 59;
	return true;
}

/* Strip a trailing " UTC" or "Z"; true when there was one. */
static bool strip_utc(char *s)
{
	size_t n = strlen(s);

	if (n > 4 && strcasecmp(s + n - 4, " UTC") == 0) {
		s[n - 4] = '\0';
		return true;
	}
	if (n > 1 && (s[n - 1] == 'Z' || s[n - 1] == 'z') && isdigit((unsigned char)s[n - 2])) {
		s[n - 1] = '\0';
		return true;
	}
	return false;
}

static int midnight(uint64_t now, int days, uint64_t *ret)
{
	time_t t = (time_t)(now / USEC_PER_SEC);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return -ERANGE;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += days;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t < 0)
		return -ERANGE;
	*ret = (uint64_t)t * USEC_PER_SEC;
	return 0;
}

static int parse_epoch(const char *s, uint64_t *ret)
{
	uint64_t sec = 0, frac = 0, scale = USEC_PER_SEC;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		sec = sec * 10 + (uint64_t)(*p - '0');
		if (sec > UINT64_MAX / USEC_PER_SEC)
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
	}
	if (*p)
		return -EINVAL;
	/* sec * 10^6 fits (checked above); the fraction may still carry it
	 * past UINT64_MAX, and a wrapped sum would be a 1970 date. */
	if (sec * USEC_PER_SEC > UINT64_MAX - frac)
		return -ERANGE;
	*ret = sec * USEC_PER_SEC + frac;
	return 0;
}

_public_ int ph_parse_time(const char *text, uint64_t now, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	struct tm tm = { 0 };
	uint64_t span, t;
	const char *p;
	size_t n;
	bool utc;
	int r;

	if (!text)
		return -EINVAL;
	text = skip_blanks(text);
	s = strdup(text);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	if (n == 0)
		return -EINVAL;

	if (strcmp(s, "now") == 0) {
		*ret = now;
		return 0;
	}
	if (strcmp(s, "today") == 0)
		return midnight(now, 0, ret);
	if (strcmp(s, "yesterday") == 0)
		return midnight(now, -1, ret);
	if (strcmp(s, "tomorrow") == 0)
		return midnight(now, 1, ret);
	if (s[0] == '@')
		return parse_epoch(s + 1, ret);

	if (s[0] == '-' || s[0] == '+') {
		r = ph_parse_timespan(s + 1, &span);
		if (r < 0)
			return r;
		goto relative;
	}
	if (n > 4 && strcmp(s + n - 4, " ago") == 0) {
		s[n - 4] = '\0';
		r = ph_parse_timespan(s, &span);
		if (r < 0)
			return r;
		s[0] = '-';
		goto relative;
	}

	utc = strip_utc(s);
	p = s;
	/* YYYY-MM-DD[( |T)HH:MM[:SS]] */
	if (take_digits(&p, 4, &tm.tm_year) && *p == '-') {
		p++;
		if (!take_digits(&p, 2, &tm.tm_mon) || *p++ != '-' || !take_digits(&p, 2, &tm.tm_mday))
			return -EINVAL;
		if (*p) {
			if (*p != ' ' && *p != 'T' && *p != 't')
				return -EINVAL;
			p++;
			if (!take_clock(&p, &tm) || *p)
				return -EINVAL;
		}
		if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
			return -EINVAL;
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		return from_calendar(&tm, utc, ret);
	}
	/* HH:MM[:SS], today */
	p = s;
	if (take_clock(&p, &tm) && !*p) {
		time_t tt = (time_t)(now / USEC_PER_SEC);
		struct tm today;

		if (!(utc ? gmtime_r(&tt, &today) : localtime_r(&tt, &today)))
			return -ERANGE;
		tm.tm_year = today.tm_year;
		tm.tm_mon = today.tm_mon;
		tm.tm_mday = today.tm_mday;
		return from_calendar(&tm, utc, ret);
	}
	return -EINVAL;

relative:
	if (s[0] == '-') {
		if (span > now)
			return -ERANGE;
		t = now - span;
	} else {
		if (span > UINT64_MAX - now)
			return -ERANGE;
		t = now + span;
	}
	*ret = t;
	return 0;
}
