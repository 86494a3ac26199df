/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Range arithmetic and range text: no I/O. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "range.h"

static void test_intersect(void **state)
{
	struct ph_range a = { 10, 10 }, b = { 15, 10 }, c = { 20, 5 }, out;

	assert_true(ph_range_intersect(&a, &b, &out));
	assert_int_equal(out.start, 15);
	assert_int_equal(out.count, 5);
	assert_false(ph_range_intersect(&a, &c, &out)); /* touching is not overlapping */
	assert_true(ph_range_contains(&a, &(struct ph_range){ 10, 10 }));
	assert_false(ph_range_contains(&a, &(struct ph_range){ 9, 2 }));
}

static void test_bytes_to_sectors(void **state)
{
	struct ph_range r;

	assert_int_equal(ph_bytes_to_sectors(0, 512, &r), 0);
	assert_int_equal(r.start, 0);
	assert_int_equal(r.count, 1);
	/* 1 byte in the middle of sector 2 is sector 2 */
	assert_int_equal(ph_bytes_to_sectors(1100, 1, &r), 0);
	assert_int_equal(r.start, 2);
	assert_int_equal(r.count, 1);
	/* rounded outwards on both ends */
	assert_int_equal(ph_bytes_to_sectors(511, 2, &r), 0);
	assert_int_equal(r.start, 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(ph_bytes_to_sectors(4096, 4096, &r), 0);
	assert_int_equal(r.start, 8);
	assert_int_equal(r.count, 8);
	assert_int_equal(ph_bytes_to_sectors(0, 0, &r), -EINVAL);
	assert_int_equal(ph_bytes_to_sectors(UINT64_MAX, 2, &r), -EOVERFLOW);
}

static void test_normalize(void **state)
{
	struct ph_ranges l = { 0 };

	assert_int_equal(ph_ranges_add(&l, 30, 5), 0);
	assert_int_equal(ph_ranges_add(&l, 10, 5), 0);
	assert_int_equal(ph_ranges_add(&l, 15, 5), 0); /* touches the previous */
	assert_int_equal(ph_ranges_add(&l, 12, 2), 0); /* inside */
	assert_int_equal(ph_ranges_add(&l, 34, 10), 0); /* overlaps */
	ph_ranges_normalize(&l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, 10);
	assert_int_equal(l.v[0].count, 10);
	assert_int_equal(l.v[1].start, 30);
	assert_int_equal(l.v[1].count, 14);
	assert_int_equal(ph_ranges_total(&l), 24);
	assert_int_equal(ph_ranges_add(&l, 1, 0), -EINVAL);
	assert_int_equal(ph_ranges_add(&l, UINT64_MAX, 1), -EOVERFLOW);
	ph_ranges_clear(&l);
	assert_int_equal(l.n, 0);
}

static void test_subtract(void **state)
{
	struct ph_ranges l = { 0 };

	assert_int_equal(ph_ranges_add(&l, 0, 100), 0);
	assert_int_equal(ph_ranges_add(&l, 200, 10), 0);
	/* split the first in two */
	assert_int_equal(ph_ranges_subtract(&l, &(struct ph_range){ 40, 20 }), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].start, 0);
	assert_int_equal(l.v[0].count, 40);
	assert_int_equal(l.v[1].start, 60);
	assert_int_equal(l.v[1].count, 40);
	assert_int_equal(l.v[2].start, 200);
	/* trim a head and a tail, drop a whole one */
	assert_int_equal(ph_ranges_subtract(&l, &(struct ph_range){ 0, 10 }), 0);
	assert_int_equal(ph_ranges_subtract(&l, &(struct ph_range){ 90, 20 }), 0);
	assert_int_equal(ph_ranges_subtract(&l, &(struct ph_range){ 195, 100 }), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, 10);
	assert_int_equal(l.v[0].count, 30);
	assert_int_equal(l.v[1].start, 60);
	assert_int_equal(l.v[1].count, 30);
	/* disjoint: no change */
	assert_int_equal(ph_ranges_subtract(&l, &(struct ph_range){ 1000, 1 }), 0);
	assert_int_equal(ph_ranges_total(&l), 60);
	ph_ranges_clear(&l);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	assert_int_equal(ph_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ph_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ph_parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(ph_parse_u64("0x1F", &v), 0);
	assert_int_equal(v, 31);
	assert_int_equal(ph_parse_u64("0x", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("+1", &v), -EINVAL);
	assert_int_equal(ph_parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("1 ", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("12abc", &v), -EINVAL);
	assert_int_equal(ph_parse_u64("1f", &v), -EINVAL); /* hex needs 0x */
}

static void test_range_parse(void **state)
{
	struct ph_range r;

	assert_int_equal(ph_range_parse("208", false, &r), 0);
	assert_int_equal(r.start, 208);
	assert_int_equal(r.count, 1);
	assert_int_equal(ph_range_parse("208+8", false, &r), 0);
	assert_int_equal(r.count, 8);
	assert_int_equal(ph_range_parse("0x10+0x8", false, &r), 0);
	assert_int_equal(r.start, 16);
	assert_int_equal(r.count, 8);
	assert_int_equal(ph_range_parse("208+0", false, &r), -EINVAL);
	assert_int_equal(ph_range_parse("208+", false, &r), -EINVAL);
	assert_int_equal(ph_range_parse("+8", false, &r), -EINVAL);
	assert_int_equal(ph_range_parse("a+8", false, &r), -EINVAL);
	assert_int_equal(ph_range_parse("1+2+3", false, &r), -EINVAL);
	assert_int_equal(ph_range_parse("18446744073709551615+1", false, &r), -ERANGE);
	assert_int_equal(ph_range_parse("18446744073709551614+1", false, &r), 0);
	/* bytes: rounded out to the sectors that hold them */
	assert_int_equal(ph_range_parse("4097+4096", true, &r), 0);
	assert_int_equal(r.start, 8);
	assert_int_equal(r.count, 9);
	assert_int_equal(ph_range_parse("1024", true, &r), 0);
	assert_int_equal(r.start, 2);
	assert_int_equal(r.count, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intersect),
		cmocka_unit_test(test_bytes_to_sectors),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_subtract),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_range_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
