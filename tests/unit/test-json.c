/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JSON output: each owner type carries its keys, and the whole document has
 * the shape scripts rely on (device, mount, fstype, method, ranges[].owners).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "faketree.h"
#include "mapper-json.h"

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("key '%s' missing in %s", key, json_object_to_json_string(o));
	return v;
}

static void test_file_owner(void **state)
{
	char *paths[] = { "/mnt/a", "/mnt/h" };
	struct ph_owner o = {
		.type = PH_OWNER_FILE, .sector = 208, .count = 8, .inode = 131,
		.offset = 8192, .length = 4096, .shared = true, .paths = paths, .n_paths = 2,
	};
	struct json_object *j;

	assert_int_equal(ph_owner_to_json(&o, &j), 0);
	assert_string_equal(json_object_get_string(get(j, "type")), "file");
	assert_int_equal(json_object_get_int64(get(j, "sector")), 208);
	assert_int_equal(json_object_get_int64(get(j, "count")), 8);
	assert_int_equal(json_object_array_length(get(j, "paths")), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(get(j, "paths"), 1)), "/mnt/h");
	assert_int_equal(json_object_get_int64(get(j, "inode")), 131);
	assert_int_equal(json_object_get_int64(get(j, "offset")), 8192);
	assert_int_equal(json_object_get_int64(get(j, "length")), 4096);
	assert_true(json_object_get_boolean(get(j, "shared")));
	assert_false(json_object_get_boolean(get(j, "unwritten")));
	assert_string_equal(json_object_get_string(get(j, "fork")), "data");
	json_object_put(j);
}

static void test_other_owners(void **state)
{
	struct ph_owner meta = { .type = PH_OWNER_METADATA, .sector = 216, .count = 8, .what = "inodes" };
	struct ph_owner freesp = { .type = PH_OWNER_FREE, .sector = 224, .count = 8 };
	struct ph_owner unk = { .type = PH_OWNER_UNKNOWN, .sector = 1, .count = 2, .reason = "because" };
	struct json_object *j;

	assert_int_equal(ph_owner_to_json(&meta, &j), 0);
	assert_string_equal(json_object_get_string(get(j, "what")), "inodes");
	assert_false(json_object_object_get_ex(j, "paths", NULL));
	json_object_put(j);

	assert_int_equal(ph_owner_to_json(&freesp, &j), 0);
	assert_string_equal(json_object_get_string(get(j, "type")), "free");
	assert_int_equal(json_object_object_length(j), 3); /* type, sector, count */
	json_object_put(j);

	assert_int_equal(ph_owner_to_json(&unk, &j), 0);
	assert_string_equal(json_object_get_string(get(j, "reason")), "because");
	json_object_put(j);
}

/* A whole document for an unmounted disk, via a fake sysfs. */
static void test_document(void **state)
{
	struct ph_ctx *ctx = NULL;
	struct ph_mapper *m = NULL;
	struct ph_map_result *res = NULL;
	struct ph_error err = { { 0 } };
	struct ph_range q = { 100, 8 };
	struct json_object *j, *ranges, *owner;
	char *root, *node, link[128];
	const char *text;
	dev_t dev;

	node = fake_find_blockdev(&dev);
	assert_non_null(node); /* main() checked */
	root = fake_root_new();
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	fake_symlink(root, link, "../../devices/virtual/block/fk0");
	fake_write(root, "/sys/devices/virtual/block/fk0/size", "4096\n");
	fake_write(root, "/proc/self/mountinfo", "");
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	assert_int_equal(ph_mapper_new(ctx, node, PH_MAP_AUTO, &m, &err), 0);
	assert_int_equal(ph_mapper_map(m, &q, 1, &res, &err), 0);
	assert_int_equal(ph_map_to_json(m, res, 1, &j), 0);

	assert_string_equal(json_object_get_string(get(j, "device")), node);
	assert_int_equal(json_object_get_int64(get(j, "sectors")), 4096);
	assert_true(json_object_is_type(get(j, "mount"), json_type_null));
	assert_true(json_object_is_type(get(j, "method"), json_type_null));
	ranges = get(j, "ranges");
	assert_int_equal(json_object_array_length(ranges), 1);
	assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(ranges, 0), "sector")), 100);
	owner = json_object_array_get_idx(get(json_object_array_get_idx(ranges, 0), "owners"), 0);
	assert_string_equal(json_object_get_string(get(owner, "type")), "unmounted");
	assert_int_equal(json_object_get_int64(get(owner, "count")), 8);

	/* Round trip: the printed text parses back to the same document. */
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	{
		struct json_object *back = json_tokener_parse(text);

		assert_non_null(back);
		assert_true(json_object_equal(j, back));
		json_object_put(back);
	}
	json_object_put(j);
	ph_map_results_free(res, 1);
	ph_mapper_free(m);
	ph_ctx_unref(ctx);
	fake_root_free(root);
	free(node);
}

int main(void)
{
	dev_t dev;
	char *node = fake_find_blockdev(&dev);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_owner),
		cmocka_unit_test(test_other_owners),
		cmocka_unit_test(test_document),
	};

	if (!node) {
		printf("SKIP: no block device node in /dev to stand for the fake disk\n");
		return 77;
	}
	free(node);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
