/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device resolution against fake sysfs and mountinfo: partitions and their
 * offsets, mount lookup, malformed files, and the mapper's arithmetic for
 * ranges that cross partition boundaries (the host cannot make real
 * partitions; the lab tests them on /dev/pmem0p1).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "blkdev.h"
#include "faketree.h"
#include "mapper.h"

struct fixture {
	char *root;
	char *node;
	dev_t dev;
	struct ph_ctx *ctx;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->node = fake_find_blockdev(&f->dev);
	assert_non_null(f->node); /* main() checked */
	f->root = fake_root_new();
	assert_int_equal(ph_ctx_new(&f->ctx), 0);
	assert_int_equal(ph_ctx_set_root(f->ctx, f->root), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ph_ctx_unref(f->ctx);
	fake_root_free(f->root);
	free(f->node);
	free(f);
	return 0;
}

/* A disk "fk0" of 'size' sectors at the real node's major:minor. */
static void fake_disk(struct fixture *f, const char *size)
{
	char link[128];

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(f->dev), minor(f->dev));
	fake_symlink(f->root, link, "../../devices/virtual/block/fk0");
	fake_write(f->root, "/sys/devices/virtual/block/fk0/size", size);
	fake_write(f->root, "/proc/self/mountinfo",
		   "22 1 0:21 / /proc rw - proc proc rw\n");
}

static void fake_part(struct fixture *f, const char *name, const char *start, const char *size,
		      const char *devt)
{
	char p[256];

	snprintf(p, sizeof(p), "/sys/devices/virtual/block/fk0/%s/partition", name);
	fake_write(f->root, p, "1\n");
	snprintf(p, sizeof(p), "/sys/devices/virtual/block/fk0/%s/start", name);
	fake_write(f->root, p, start);
	snprintf(p, sizeof(p), "/sys/devices/virtual/block/fk0/%s/size", name);
	fake_write(f->root, p, size);
	snprintf(p, sizeof(p), "/sys/devices/virtual/block/fk0/%s/dev", name);
	fake_write(f->root, p, devt);
}

static void test_whole_disk(void **state)
{
	struct fixture *f = *state;
	struct ph_blkdev *b = NULL;

	fake_disk(f, "2097152\n");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), 0);
	assert_string_equal(b->name, "fk0");
	assert_int_equal(b->size, 2097152);
	assert_false(b->is_partition);
	assert_false(b->partitioned);
	assert_int_equal(b->n_parts, 1);
	assert_int_equal(b->parts[0].start, 0);
	assert_int_equal(b->parts[0].count, 2097152);
	assert_null(b->parts[0].mount);
	ph_blkdev_free(b);
}

static void test_partitions_sorted(void **state)
{
	struct fixture *f = *state;
	struct ph_blkdev *b = NULL;

	fake_disk(f, "2097152\n");
	fake_part(f, "fk0p2", "1050624\n", "1046528\n", "259:9\n");
	fake_part(f, "fk0p1", "2048\n", "1048576\n", "259:8\n");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), 0);
	assert_true(b->partitioned);
	assert_int_equal(b->n_parts, 2);
	assert_string_equal(b->parts[0].name, "fk0p1");
	assert_string_equal(b->parts[0].node, "/dev/fk0p1");
	assert_int_equal(b->parts[0].start, 2048);
	assert_int_equal(b->parts[0].count, 1048576);
	assert_int_equal(major(b->parts[0].dev), 259);
	assert_int_equal(minor(b->parts[0].dev), 8);
	assert_int_equal(b->parts[1].start, 1050624);
	ph_blkdev_free(b);
}

static void test_device_is_partition(void **state)
{
	struct fixture *f = *state;
	struct ph_blkdev *b = NULL;
	char link[128];

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(f->dev), minor(f->dev));
	fake_symlink(f->root, link, "../../devices/virtual/block/fk0/fk0p1");
	fake_write(f->root, "/sys/devices/virtual/block/fk0/size", "2097152\n");
	fake_part(f, "fk0p1", "2048\n", "1048576\n", "259:8\n");
	fake_write(f->root, "/proc/self/mountinfo", "");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), 0);
	assert_true(b->is_partition);
	assert_string_equal(b->parent, "fk0");
	assert_int_equal(b->part_start, 2048);
	/* ranges on a partition are relative to the partition */
	assert_int_equal(b->n_parts, 1);
	assert_int_equal(b->parts[0].start, 0);
	assert_int_equal(b->parts[0].count, 1048576);
	ph_blkdev_free(b);
}

static void test_malformed_sysfs(void **state)
{
	struct fixture *f = *state;
	struct ph_blkdev *b = NULL;

	fake_disk(f, "lots\n");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), -EBADMSG);
	assert_null(b);
	fake_write(f->root, "/sys/devices/virtual/block/fk0/size", "");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), -EBADMSG);
	fake_write(f->root, "/sys/devices/virtual/block/fk0/size", "12");
	fake_part(f, "fk0p1", "oops\n", "10\n", "259:8\n");
	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), -EBADMSG);
}

static void test_no_sysfs(void **state)
{
	struct fixture *f = *state;
	struct ph_blkdev *b = NULL;

	assert_int_equal(ph_blkdev_open(f->ctx, f->node, &b), -ENODEV);
	assert_int_equal(ph_blkdev_open(f->ctx, "/nonexistent/dev", &b), -ENOENT);
	assert_int_equal(ph_blkdev_open(f->ctx, "/dev/null", &b), -ENOTBLK);
}

static void test_mountinfo(void **state)
{
	struct fixture *f = *state;
	struct ph_mount *m = NULL;
	char text[1024];

	snprintf(text, sizeof(text),
		 "this line is garbage\n"
		 "30 1 %u:%u /sub /srv/bind rw - xfs /dev/fake rw\n"
		 "31 1 %u:%u / /mnt/my\\040data rw shared:5 - xfs /dev/fake rw,attr2\n"
		 "32 1 %u:%u / /mnt/second rw - xfs /dev/fake rw\n",
		 major(f->dev), minor(f->dev), major(f->dev), minor(f->dev), major(f->dev),
		 minor(f->dev));
	fake_write(f->root, "/proc/self/mountinfo", text);
	assert_int_equal(ph_mountinfo_find(f->ctx, f->dev, NULL, &m), 0);
	/* the first mount of the filesystem's root wins over a bind mount */
	assert_string_equal(m->mountpoint, "/mnt/my data");
	assert_string_equal(m->root, "/");
	assert_string_equal(m->fstype, "xfs");
	ph_mount_free(m);
	assert_int_equal(ph_mountinfo_find(f->ctx, makedev(1, 99), NULL, &m), -ENOENT);
}

static void test_unescape(void **state)
{
	char *s;

	assert_int_equal(ph_mountinfo_unescape("a\\040b\\134c\\011", &s), 0);
	assert_string_equal(s, "a b\\c\t");
	free(s);
	/* not an octal escape: kept as is */
	assert_int_equal(ph_mountinfo_unescape("x\\9y\\04", &s), 0);
	assert_string_equal(s, "x\\9y\\04");
	free(s);
}

static void test_unsupported_fs(void **state)
{
	struct fixture *f = *state;
	struct ph_mapper *m = NULL;
	struct ph_error err = { { 0 } };
	char text[256];

	fake_disk(f, "2097152\n");
	snprintf(text, sizeof(text), "40 1 %u:%u / /mnt/b rw - btrfs /dev/fk0 rw\n", major(f->dev),
		 minor(f->dev));
	fake_write(f->root, "/proc/self/mountinfo", text);
	assert_int_equal(ph_mapper_new(f->ctx, f->node, PH_MAP_AUTO, &m, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err.message, "unsupported filesystem btrfs"));
	assert_non_null(strstr(err.message, "/mnt/b"));
}

/* The arithmetic of a range that starts before the first partition and
 * runs into it: each owner covers exactly its own part. */
static void test_map_across_partitions(void **state)
{
	struct fixture *f = *state;
	struct ph_mapper *m = NULL;
	struct ph_map_result *res = NULL;
	struct ph_range q[] = { { 2000, 100 }, { 1050600, 100 } };
	struct ph_error err = { { 0 } };

	fake_disk(f, "2097152\n");
	fake_part(f, "fk0p1", "2048\n", "1048576\n", "259:8\n");
	fake_part(f, "fk0p2", "1050624\n", "1046528\n", "259:9\n");
	assert_int_equal(ph_mapper_new(f->ctx, f->node, PH_MAP_AUTO, &m, &err), 0);
	assert_false(ph_mapper_is_mounted(m));
	assert_int_equal(ph_mapper_map(m, q, 2, &res, &err), 0);

	assert_int_equal(res[0].n_owners, 2);
	assert_int_equal(res[0].owners[0].type, PH_OWNER_UNKNOWN);
	assert_int_equal(res[0].owners[0].sector, 2000);
	assert_int_equal(res[0].owners[0].count, 48);
	assert_non_null(strstr(res[0].owners[0].reason, "partition"));
	assert_int_equal(res[0].owners[1].type, PH_OWNER_UNMOUNTED);
	assert_int_equal(res[0].owners[1].sector, 2048);
	assert_int_equal(res[0].owners[1].count, 52);
	assert_string_equal(ph_map_fs_get_node(res[0].owners[1].fs), "/dev/fk0p1");

	/* p1 ends where p2 starts (1050624): the last 24 sectors of p1 ... */
	assert_int_equal(res[1].n_owners, 2);
	assert_int_equal(res[1].owners[0].type, PH_OWNER_UNMOUNTED);
	assert_int_equal(res[1].owners[0].sector, 1050600);
	assert_int_equal(res[1].owners[0].count, 24);
	assert_string_equal(ph_map_fs_get_node(res[1].owners[0].fs), "/dev/fk0p1");
	/* ... and the first 76 of p2 */
	assert_int_equal(res[1].owners[1].type, PH_OWNER_UNMOUNTED);
	assert_int_equal(res[1].owners[1].sector, 1050624);
	assert_int_equal(res[1].owners[1].count, 76);
	assert_string_equal(ph_map_fs_get_node(res[1].owners[1].fs), "/dev/fk0p2");
	ph_map_results_free(res, 2);
	ph_mapper_free(m);
}

static void test_map_past_end(void **state)
{
	struct fixture *f = *state;
	struct ph_mapper *m = NULL;
	struct ph_map_result *res = NULL;
	struct ph_range ok = { 2097151, 1 }, bad = { 2097151, 2 };
	struct ph_error err = { { 0 } };

	fake_disk(f, "2097152\n");
	assert_int_equal(ph_mapper_new(f->ctx, f->node, PH_MAP_AUTO, &m, &err), 0);
	assert_int_equal(ph_mapper_map(m, &ok, 1, &res, &err), 0);
	assert_int_equal(res[0].n_owners, 1);
	assert_int_equal(res[0].owners[0].type, PH_OWNER_UNMOUNTED);
	ph_map_results_free(res, 1);
	assert_int_equal(ph_mapper_map(m, &bad, 1, &res, &err), -ERANGE);
	assert_non_null(strstr(err.message, "past the end"));
	ph_mapper_free(m);
}

int main(void)
{
	dev_t dev;
	char *node = fake_find_blockdev(&dev);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_whole_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partitions_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_is_partition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_sysfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_sysfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mountinfo, setup, teardown),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test_setup_teardown(test_unsupported_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_across_partitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_past_end, setup, teardown),
	};

	if (!node) {
		/* Device resolution starts from stat() of a real node. */
		printf("SKIP: no block device node in /dev to stand for the fake disk\n");
		return 77;
	}
	free(node);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
