/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The badblocks-file parser: kernel output, malformed, truncated, huge. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "range.h"

/* Parse a buffer of len bytes (may hold NULs). */
static int parse(const char *buf, size_t len, bool bytes, struct ph_ranges *out,
		 struct ph_parse_error *err)
{
	FILE *f = fmemopen((void *)buf, len, "r");
	int r;

	assert_non_null(f);
	r = ph_badblocks_parse(f, bytes, out, err);
	fclose(f);
	return r;
}

#define PARSE(s, out, err) parse((s), sizeof(s) - 1, false, (out), (err))

static void test_kernel_format(void **state)
{
	struct ph_ranges l = { 0 };

	assert_int_equal(PARSE("208 8\n4096 1\n", &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, 208);
	assert_int_equal(l.v[0].count, 8);
	assert_int_equal(l.v[1].start, 4096);
	assert_int_equal(l.v[1].count, 1);
	ph_ranges_clear(&l);
}

static void test_empty_and_blank(void **state)
{
	struct ph_ranges l = { 0 };

	assert_int_equal(PARSE("", &l, NULL), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(PARSE("\n\n  \n1 2\n\n", &l, NULL), 0);
	assert_int_equal(l.n, 1);
	/* a last line without its newline is complete if it has both fields */
	assert_int_equal(PARSE("3 4", &l, NULL), 0);
	assert_int_equal(l.n, 2);
	/* tabs and CRLF line ends */
	assert_int_equal(PARSE("5\t6\r\n", &l, NULL), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].start, 5);
	ph_ranges_clear(&l);
}

static void expect_error(const char *text, size_t len, unsigned line, const char *reason_part, int code)
{
	struct ph_ranges l = { 0 };
	struct ph_parse_error err = { 0 };

	assert_int_equal(parse(text, len, false, &l, &err), code);
	assert_int_equal(err.line, line);
	if (!strstr(err.reason, reason_part))
		fail_msg("reason '%s' lacks '%s'", err.reason, reason_part);
	ph_ranges_clear(&l);
}

#define EXPECT_ERROR(s, line, part, code) expect_error((s), sizeof(s) - 1, (line), (part), (code))

static void test_malformed(void **state)
{
	EXPECT_ERROR("1 2\n3\n", 2, "truncated", -EBADMSG);
	EXPECT_ERROR("1 2\n3", 2, "truncated", -EBADMSG); /* cut mid-line */
	EXPECT_ERROR("1 2 3\n", 1, "extra", -EBADMSG);
	EXPECT_ERROR("x 2\n", 1, "not a number", -EBADMSG);
	EXPECT_ERROR("1 -2\n", 1, "not a number", -EBADMSG);
	EXPECT_ERROR("1 0\n", 1, "zero", -EBADMSG);
	EXPECT_ERROR("1 2\n\n99999999999999999999 1\n", 3, "out of range", -ERANGE);
	EXPECT_ERROR("18446744073709551615 2\n", 1, "overflows", -ERANGE);
	EXPECT_ERROR("1 2\n3\0 4\n", 2, "NUL", -EBADMSG);
}

static void test_long_line(void **state)
{
	char *buf = malloc(100000);
	struct ph_ranges l = { 0 };
	struct ph_parse_error err = { 0 };

	assert_non_null(buf);
	memset(buf, '7', 99999);
	buf[99999] = '\n';
	assert_int_equal(parse(buf, 100000, false, &l, &err), -EBADMSG);
	assert_int_equal(err.line, 1);
	assert_non_null(strstr(err.reason, "too long"));
	ph_ranges_clear(&l);
	free(buf);
}

static void test_huge_input(void **state)
{
	/* Far more than the kernel's 512 entries: the parser has no cap. */
	const size_t n = 200000;
	size_t size = n * 24, len = 0;
	char *buf = malloc(size);
	struct ph_ranges l = { 0 };

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "%zu 8\n", i * 16);
	assert_int_equal(parse(buf, len, false, &l, NULL), 0);
	assert_int_equal(l.n, n);
	assert_int_equal(l.v[n - 1].start, (n - 1) * 16);
	ph_ranges_clear(&l);
	free(buf);
}

static void test_bytes_mode(void **state)
{
	struct ph_ranges l = { 0 };
	const char s[] = "4096 4096\n513 1\n";

	assert_int_equal(parse(s, sizeof(s) - 1, true, &l, NULL), 0);
	assert_int_equal(l.v[0].start, 8);
	assert_int_equal(l.v[0].count, 8);
	assert_int_equal(l.v[1].start, 1);
	assert_int_equal(l.v[1].count, 1);
	ph_ranges_clear(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_format),
		cmocka_unit_test(test_empty_and_blank),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_huge_input),
		cmocka_unit_test(test_bytes_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
