/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ext4 superblock parser that locates the internal journal (ext4's
 * GETFSMAP does not report it), on synthetic superblocks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
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

/* An extent node of 'n' entries at depth 'depth' in a 4 KiB block: index
 * entries all point at block 'child', leaf entries are one block each. */
static void make_node(uint8_t *b, unsigned depth, unsigned n, uint32_t child, uint32_t first)
{
	memset(b, 0, 4096);
	put16(b, 0xF30A);
	put16(b + 2, n);
	put16(b + 4, 340);
	put16(b + 6, depth);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = b + 12 + 12 * i;

		put32(e, i);
		if (depth > 0) {
			put32(e + 4, child);
		} else {
			put16(e + 4, 1);
			put32(e + 8, first + i);
		}
	}
}

static FILE *device(unsigned blocks)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), (off_t)blocks * 4096), 0);
	return f;
}

static void put_block(FILE *f, uint32_t nr, const uint8_t *b)
{
	assert_int_equal(pwrite(fileno(f), b, 4096, (off_t)nr * 4096), 4096);
}

/* A real deep tree (a journal in many pieces) is followed. */
static void test_journal_index(void **state)
{
	const uint32_t idx[2][2] = { { 0, 0 }, { 0, 0 } };
	uint8_t sb[1024], b[4096];
	struct ph_layout *l = NULL;
	FILE *f = device(4);
	uint64_t c;

	make_sb(sb, 1, 2, idx);
	/* both index entries: ei_leaf_lo at +4 */
	put32(sb + 0x10C + 12 + 4, 1);
	put32(sb + 0x10C + 24 + 4, 2);
	make_node(b, 0, 5, 0, 1000);
	put_block(f, 1, b);
	make_node(b, 0, 5, 0, 2000);
	put_block(f, 2, b);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), fileno(f), &l), 0);
	assert_string_equal(ph_layout_classify(l, 1004 * 8, 100, &c), "log");
	assert_string_equal(ph_layout_classify(l, 2000 * 8, 100, &c), "log");
	assert_null(ph_layout_classify(l, 1005 * 8, 8, &c));
	ph_layout_free(l);
	l = NULL;

	/* a child whose depth is not one less than its parent's: corrupt */
	make_node(b, 1, 1, 1, 0);
	put_block(f, 2, b);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), fileno(f), &l), -EUCLEAN);
	assert_null(l);
	fclose(f);
}

/* Index blocks that all point at the same child multiply the work: four
 * root entries, three levels of 340 entries each pointing at one block,
 * and a leaf of 340 extents would be 4 * 340^3 = 157 million regions.  The
 * parser stops at its budget with -EUCLEAN instead. */
static void test_journal_budget(void **state)
{
	const uint32_t idx[4][2] = { { 0, 0 } };
	uint8_t sb[1024], b[4096];
	struct ph_layout *l = NULL;
	FILE *f = device(8);

	make_sb(sb, 4, 4, idx);
	for (unsigned i = 0; i < 4; i++)
		put32(sb + 0x10C + 12 + 12 * i + 4, 1);
	make_node(b, 3, 340, 2, 0);
	put_block(f, 1, b);
	make_node(b, 2, 340, 3, 0);
	put_block(f, 2, b);
	make_node(b, 1, 340, 4, 0);
	put_block(f, 3, b);
	make_node(b, 0, 340, 0, 100);
	put_block(f, 4, b);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), fileno(f), &l), -EUCLEAN);
	assert_null(l);

	/* Two levels only (4 * 340 * 340 = 462400 extents, the size of what
	 * a fuzzer found): still over the budget. */
	make_sb(sb, 2, 4, idx);
	for (unsigned i = 0; i < 4; i++)
		put32(sb + 0x10C + 12 + 12 * i + 4, 3);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), fileno(f), &l), -EUCLEAN);
	assert_null(l);

	/* One level of 4 * 340 extents is a plausible journal: accepted. */
	make_sb(sb, 1, 4, idx);
	for (unsigned i = 0; i < 4; i++)
		put32(sb + 0x10C + 12 + 12 * i + 4, 4);
	assert_int_equal(ph_layout_parse_ext4_sb(sb, sizeof(sb), fileno(f), &l), 0);
	ph_layout_free(l);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_extents),
		cmocka_unit_test(test_bad_superblocks),
		cmocka_unit_test(test_no_internal_journal),
		cmocka_unit_test(test_journal_index),
		cmocka_unit_test(test_journal_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
