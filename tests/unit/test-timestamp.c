/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Times as operators type them for 'pmemheal history --since/--until':
 * dates in local time and UTC, relative spans, today/yesterday, @EPOCH,
 * and the text that must be refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "timestamp.h"

#define SEC UINT64_C(1000000)
/* 2026-11-22 17:23:22 UTC */
#define NOW (UINT64_C(1795368202) * SEC + 123456)

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static uint64_t parse_ok(const char *text)
{
	uint64_t t = 0;
	int r = ph_parse_time(text, NOW, &t);

	if (r < 0)
		fail_msg("'%s' refused: %d", text, r);
	return t;
}

static void refused(const char *text, int err)
{
	uint64_t t = 42;
	int r = ph_parse_time(text, NOW, &t);

	if (r != err)
		fail_msg("'%s': got %d, wanted %d", text, r, err);
	assert_int_equal(t, 42); /* untouched */
}

static void test_utc_dates(void **state)
{
	set_tz("UTC");
	assert_int_equal(parse_ok("2026-11-22"), UINT64_C(1795305600) * SEC);
	assert_int_equal(parse_ok("2026-11-22 17:23"), UINT64_C(1795368180) * SEC);
	assert_int_equal(parse_ok("2026-11-22 17:23:22"), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("2026-11-22T17:23:22"), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("  2026-11-22 17:23:22  "), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("1970-01-01"), 0);
	assert_int_equal(parse_ok("2024-02-29"), UINT64_C(1709164800) * SEC);
	assert_int_equal(parse_ok("17:00"), UINT64_C(1795366800) * SEC);
	assert_int_equal(parse_ok("17:00:01"), UINT64_C(1795366801) * SEC);
}

static void test_local_dates(void **state)
{
	/* Central Europe, winter: UTC+1 */
	set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
	assert_int_equal(parse_ok("2026-11-22 18:23:22"), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("2026-11-22 17:23:22 UTC"), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("2026-11-22T17:23:22Z"), UINT64_C(1795368202) * SEC);
	/* summer: UTC+2 */
	assert_int_equal(parse_ok("2026-07-01 02:00"), UINT64_C(1782864000) * SEC);
	/* today: local midnight, 2026-11-22 00:00 CET = 2026-11-21 23:00 UTC */
	assert_int_equal(parse_ok("today"), UINT64_C(1795302000) * SEC);
	assert_int_equal(parse_ok("yesterday"), UINT64_C(1795215600) * SEC);
	assert_int_equal(parse_ok("tomorrow"), UINT64_C(1795388400) * SEC);
	/* Los Angeles: still the 22nd at 09:23 local */
	set_tz("PST8PDT,M3.2.0,M11.1.0");
	assert_int_equal(parse_ok("today"), UINT64_C(1795334400) * SEC);
	assert_int_equal(parse_ok("09:23:22"), UINT64_C(1795368202) * SEC);
	set_tz("UTC");
}

static void test_relative(void **state)
{
	set_tz("UTC");
	assert_int_equal(parse_ok("now"), NOW);
	assert_int_equal(parse_ok("-1h"), NOW - 3600 * SEC);
	assert_int_equal(parse_ok("+1h"), NOW + 3600 * SEC);
	assert_int_equal(parse_ok("2h ago"), NOW - 7200 * SEC);
	assert_int_equal(parse_ok("2 hours ago"), NOW - 7200 * SEC);
	assert_int_equal(parse_ok("1h30m ago"), NOW - 5400 * SEC);
	assert_int_equal(parse_ok("-1h 30min"), NOW - 5400 * SEC);
	assert_int_equal(parse_ok("-90"), NOW - 90 * SEC);
	assert_int_equal(parse_ok("-2d"), NOW - 2 * 86400 * SEC);
	assert_int_equal(parse_ok("1w ago"), NOW - 7 * 86400 * SEC);
	assert_int_equal(parse_ok("-500ms"), NOW - 500000);
	assert_int_equal(parse_ok("@1795368202"), UINT64_C(1795368202) * SEC);
	assert_int_equal(parse_ok("@1795368202.5"), UINT64_C(1795368202) * SEC + 500000);
	assert_int_equal(parse_ok("@0"), 0);

	{
		uint64_t span;

		assert_int_equal(ph_parse_timespan("1h30m", &span), 0);
		assert_int_equal(span, 5400 * SEC);
		assert_int_equal(ph_parse_timespan("3 days", &span), 0);
		assert_int_equal(span, 3 * 86400 * SEC);
		assert_int_equal(ph_parse_timespan("", &span), -EINVAL);
		assert_int_equal(ph_parse_timespan("h", &span), -EINVAL);
		assert_int_equal(ph_parse_timespan("5 fortnights", &span), -EINVAL);
		assert_int_equal(ph_parse_timespan("99999999999999999999", &span), -ERANGE);
		assert_int_equal(ph_parse_timespan("999999999999999w", &span), -ERANGE);
	}
}

static void test_refused(void **state)
{
	set_tz("UTC");
	refused("", -EINVAL);
	refused("   ", -EINVAL);
	refused("last tuesday", -EINVAL);
	refused("2026-02-30", -EINVAL);
	refused("2026-13-01", -EINVAL);
	refused("2026-11-22 24:00", -EINVAL);
	refused("2026-11-22 17:60", -EINVAL);
	refused("2026-11-22 17", -EINVAL);
	refused("2026-11-22 17:23:22:01", -EINVAL);
	refused("2026-11-22x17:23", -EINVAL);
	refused("2026-1-22", -EINVAL);
	refused("2026- 1-22", -EINVAL);
	refused("1969-12-31", -EINVAL);
	refused("26-11-22", -EINVAL);
	refused("-", -EINVAL);
	refused("-1 parsec", -EINVAL);
	refused("ago", -EINVAL);
	refused(" ago", -EINVAL);
	refused("1h ago ago", -EINVAL);
	refused("@", -EINVAL);
	refused("@-5", -EINVAL);
	refused("@12abc", -EINVAL);
	refused("@1.", -EINVAL);
	refused("-100000w", -ERANGE); /* before the epoch */
	refused("Today", -EINVAL);
	{
		uint64_t t;

		assert_int_equal(ph_parse_time(NULL, NOW, &t), -EINVAL);
	}
}

/* Every sum and product in the parser either fits in 64 bits or is refused:
 * a value just past UINT64_MAX microseconds must not wrap to a 1970 date. */
static void test_overflow(void **state)
{
	uint64_t t;

	set_tz("UTC");
	assert_int_equal(parse_ok("@18446744073709.551615"), UINT64_MAX);
	refused("@18446744073709.551616", -ERANGE);
	refused("@18446744073709.999999", -ERANGE);
	refused("@18446744073709.99999999999", -ERANGE);
	refused("@18446744073710", -ERANGE);
	refused("@99999999999999999999999", -ERANGE);
	refused("+18446744073709s", -ERANGE); /* now + span */
	refused("-18446744073709s", -ERANGE); /* before the epoch */
	assert_int_equal(ph_parse_timespan("18446744073709s 551615us", &t), 0);
	assert_int_equal(t, UINT64_MAX);
	assert_int_equal(ph_parse_timespan("18446744073709s 551616us", &t), -ERANGE);
	assert_int_equal(ph_parse_timespan("18446744073709s 1s", &t), -ERANGE);
	assert_int_equal(ph_parse_timespan("18446744073709551615", &t), -ERANGE);
	assert_int_equal(ph_parse_timespan("18446744073709551616us", &t), -ERANGE);
	assert_int_equal(ph_parse_time("+1us", UINT64_MAX, &t), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utc_dates),
		cmocka_unit_test(test_local_dates),
		cmocka_unit_test(test_relative),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
