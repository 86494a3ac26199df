/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ext4 superblock parser that locates the internal journal (ext4's
 * GETFSMAP does not report it), on synthetic superblocks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mapper-layout.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* A 4 KiB-block superblock whose journal backup holds 'n' extents at
 * depth 'depth'. */
static void make_sb(uint8_t *sb, unsigned depth, unsigned n, const uint32_t (*ext)[2])
{
	uint8_t *root = sb + 0x10C;

	memset(sb, 0, 1024);
	put16(sb + 0x38, 0xEF53);
	put32(sb + 0x18, 2); /* 1024 << 2 = 4096 */
	put32(sb + 0xE0, 8); /* journal inode */
	sb[0xFD] = 1;        /* EXT3_JNL_BACKUP_BLOCKS */
	put16(root, 0xF30A);
	put16(root + 2, n);
	put16(root + 4, 4);
	put16(root + 6, depth);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = root + 12 + 12 * i;

		put32(e, i * 1000);     /* logical block */
		put16(e + 4, ext[i][1]); /* length */
		put16(e + 6, 0);         /* start hi */
		put32(e + 8, ext[i][0]); /* start lo */
	}
}

static void test_journal_extents(void **state)
{
	const uint32_t ext[2][2] = { { 67200, 2048 }, { 90000, 2048 } };
	uint8_t sb[1024];
	struct ph_layout *l = NULL;
	uint64_t c;

	make_sb(sb, 0, 2, ext);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), 0);
	/* 67200 blocks of 8 sectors */
	assert_string_equal(ph_layout_classify(l, 67200 * 8, 100, &c), "log");
	assert_int_equal(c, 100);
	assert_string_equal(ph_layout_classify(l, 67200 * 8 + 2048 * 8 - 1, 100, &c), "log");
	assert_int_equal(c, 1);
	assert_null(ph_layout_classify(l, 67200 * 8 + 2048 * 8, 1000000, &c));
	assert_int_equal(c, (90000 - 67200 - 2048) * 8); /* up to the next extent */
	assert_string_equal(ph_layout_classify(l, 90000 * 8, 8, &c), "log");
	assert_null(ph_layout_classify(l, 0, 8, &c));
	ph_layout_free(l);
}

static void test_bad_superblocks(void **state)
{
	const uint32_t ext[1][2] = { { 100, 10 } };
	uint8_t sb[1024];
	struct ph_layout *l = NULL;

	make_sb(sb, 0, 1, ext);
	put16(sb + 0x38, 0x1234);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), -EBADMSG);
	make_sb(sb, 0, 1, ext);
	put16(sb + 0x10C, 0); /* no extent header */
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), -EBADMSG);
	make_sb(sb, 0, 1, ext);
	put16(sb + 0x10C + 2, 9); /* more entries than the 60 bytes hold */
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), -EBADMSG);
	make_sb(sb, 0, 1, ext);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, 512, -1, &l), -EBADMSG);
	/* An index node needs the device to follow it. */
	make_sb(sb, 1, 1, ext);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), -ENXIO);
	assert_null(l);
}

static void test_no_internal_journal(void **state)
{
	const uint32_t ext[1][2] = { { 100, 10 } };
	uint8_t sb[1024];
	struct ph_layout *l = NULL;
	uint64_t c;

	make_sb(sb, 0, 1, ext);
	put32(sb + 0xE0, 0); /* external journal or none */
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), -1, &l), 0);
	assert_null(ph_layout_classify(l, 800, 8, &c));
	ph_layout_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_extents),
		cmocka_unit_test(test_bad_superblocks),
		cmocka_unit_test(test_no_internal_journal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
