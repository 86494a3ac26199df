/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Topology rules and the badblocks sources, against fake sysfs trees:
 * which buses clear, region <-> device translation through the data
 * offset, region lists spread over namespaces, malformed and missing
 * lists failing only their own device.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "faketree.h"
#include "memfail.h"
#include "source.h"

static void test_can_clear(void **state)
{
	const char *why;

	/* virtio-pmem, e820: no firmware, the kernel clears on write */
	assert_true(ph_bus_can_clear("virtio-pmem", false, &why));
	assert_non_null(strstr(why, "clears"));
	assert_true(ph_bus_can_clear("e820", false, &why));
	/* QEMU's NFIT advertises no bus command at all, yet has firmware */
	assert_false(ph_bus_can_clear("ACPI.NFIT", false, &why));
	assert_non_null(strstr(why, "CLEAR_ERROR"));
	assert_false(ph_bus_can_clear("papr_scm", false, &why));
	/* real NFIT DIMMs with ARS and clear-error */
	assert_true(ph_bus_can_clear("ACPI.NFIT", true, &why));
	/* the safe side for anything unknown */
	assert_false(ph_bus_can_clear("brand-new-bus", false, &why));
	assert_non_null(strstr(why, "unknown"));
	assert_false(ph_bus_can_clear(NULL, false, &why));
}

/* The lab's NFIT layout: region at 4 GiB, fsdax data 18 MiB in. */
static struct ph_topology *nfit_topology(void)
{
	struct ph_topology *t;
	size_t b, r;

	assert_int_equal(ph_topology_new(&t), 0);
	assert_int_equal(ph_topology_add_bus(t, "ndbus0", "ACPI.NFIT", false, "no CLEAR_ERROR", false, &b), 0);
	assert_int_equal(ph_topology_add_region(t, b, "region0", 1ULL << 30, 0x100000000ULL, &r), 0);
	assert_int_equal(ph_topology_add_namespace(t, r, "namespace0.0", PH_NS_FSDAX,
						   "5e0ad2a4-1f2f-4f4e-9d1a-3b1a61e2b9c2", 1000ULL << 20,
						   0x100000000ULL + (18ULL << 20), "pmem0", NULL, NULL), 0);
	return t;
}

static void test_translation(void **state)
{
	struct ph_topology *t = nfit_topology();
	uint64_t v;

	/* observed in the lab: pmem sector 208 is region sector 37072 */
	assert_int_equal(ph_namespace_to_region(t, &t->namespaces[0], 208, &v), 0);
	assert_int_equal(v, 37072);
	assert_int_equal(ph_region_to_namespace(t, &t->namespaces[0], 37072, &v), 0);
	assert_int_equal(v, 208);
	/* the info block before the data, and past the end */
	assert_int_equal(ph_region_to_namespace(t, &t->namespaces[0], 100, &v), -ERANGE);
	assert_int_equal(ph_region_to_namespace(t, &t->namespaces[0], 36864 + (1000ULL << 11), &v), -ERANGE);
	/* unreadable resources: no guess */
	t->namespaces[0].start = PH_UNKNOWN;
	assert_int_equal(ph_namespace_to_region(t, &t->namespaces[0], 208, &v), -ENODATA);
	ph_topology_free(t);
}

static void test_identity(void **state)
{
	struct ph_topology *t;
	size_t b, r;

	assert_int_equal(ph_topology_new(&t), 0);
	assert_int_equal(ph_topology_add_bus(t, "ndbus0", "e820", true, "x", false, &b), 0);
	assert_int_equal(ph_topology_add_region(t, b, "region0", 1 << 20, PH_UNKNOWN, &r), 0);
	/* a raw io namespace has no uuid: the id falls back to the device */
	assert_int_equal(ph_topology_add_namespace(t, r, "namespace0.0", PH_NS_RAW, NULL, 1 << 20,
						   PH_UNKNOWN, "pmem0", NULL, NULL), 0);
	assert_string_equal(t->namespaces[0].id, "dev:pmem0");
	assert_string_equal(ph_ns_mode_to_string(t->namespaces[0].mode), "raw");
	/* bad indices */
	assert_int_equal(ph_topology_add_region(t, 7, "region1", 1, 1, NULL), -EINVAL);
	assert_int_equal(ph_topology_add_namespace(t, 7, "namespace1.0", PH_NS_RAW, NULL, 1, 1, "x", NULL, NULL), -EINVAL);
	ph_topology_free(t);
}

static const struct ph_observation *find_obs(const struct ph_scan *s, uint64_t start)
{
	for (size_t i = 0; i < s->n_obs; i++)
		if (s->obs[i].start == start)
			return &s->obs[i];
	return NULL;
}

/* The repairer asks again right before it reads the device: a machine
 * check logged after the first read must be seen by the next call, which
 * reads only what is new; without an open log it reads everything. */
static void test_memfail_follow(void **state)
{
	struct ph_ctx *ctx;
	struct ph_memfail m = PH_MEMFAIL_INIT;
	char *root = fake_root_new(), path[4096];
	FILE *f;

	(void)state;
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	fake_write(root, "/dev/kmsg", "3,1,2,-;Memory failure: 0x1234: recovery action for dax page: Recovered\n"
				      "6,2,3,-;unrelated\n");
	assert_int_equal(ph_memfail_follow(ctx, &m), 0);
	assert_true(m.kmsg_fd >= 0);
	assert_int_equal(m.pfns.n, 1);
	assert_true(ph_pfns_contains(&m.pfns, 0x1234));
	/* nothing new: nothing changes */
	assert_int_equal(ph_memfail_follow(ctx, &m), 0);
	assert_int_equal(m.pfns.n, 1);
	/* the kernel logs another one (and the first again) */
	snprintf(path, sizeof(path), "%s/dev/kmsg", root);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs("3,3,4,-;Memory failure: 0x99: recovery action for dax page: Recovered\n"
	      "3,4,5,-;Memory failure: 0x1234: already hardware poisoned\n", f);
	fclose(f);
	assert_int_equal(ph_memfail_follow(ctx, &m), 0);
	assert_int_equal(m.pfns.n, 2);
	assert_true(ph_pfns_contains(&m.pfns, 0x99));
	assert_true(ph_pfns_contains(&m.pfns, 0x1234));
	assert_false(ph_pfns_contains(&m.pfns, 0x98));
	/* without an open log it reads everything again */
	ph_memfail_done(&m);
	assert_true(m.kmsg_fd < 0);
	assert_int_equal(m.pfns.n, 0);
	assert_int_equal(ph_memfail_follow(ctx, &m), 0);
	assert_int_equal(m.pfns.n, 2);
	ph_memfail_done(&m);
	ph_ctx_unref(ctx);
	fake_root_free(root);
}

static void test_scan_lists(void **state)
{
	struct ph_topology *t = nfit_topology();
	struct ph_ctx *ctx;
	struct ph_scan *s = NULL;
	char *root = fake_root_new();
	const struct ph_observation *o;

	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	/* the MCE case: both lists gain the sector; one more only in the
	 * region list inside the data; one in the info block */
	fake_write(root, "/sys/block/pmem0/badblocks", "208 1\n");
	fake_write(root, "/sys/bus/nd/devices/region0/badblocks", "37072 1\n40000 8\n10 2\n");
	assert_int_equal(ph_source_scan(ctx, t, &s), 0);
	assert_int_equal(s->n_errors, 0);
	assert_int_equal(s->n_obs, 3);
	o = find_obs(s, 208);
	assert_non_null(o);
	assert_string_equal(o->device, "pmem0");
	assert_string_equal(o->ns_id, t->namespaces[0].id);
	o = find_obs(s, 40000 - 36864);
	assert_non_null(o);
	assert_int_equal(o->count, 8);
	assert_int_equal(o->origin, PH_ORIGIN_REGION);
	assert_int_equal(s->n_outside, 1);
	assert_int_equal(s->outside[0].start, 10);
	assert_false(s->outside[0].untranslated);
	assert_int_equal(s->n_complete_ns, 1);
	ph_scan_free(s);
	ph_ctx_unref(ctx);
	fake_root_free(root);
	ph_topology_free(t);
}

/* A machine check on virtio-pmem or e820 reaches no list: the page is an
 * observation of its own (origin memory-failure), and it is written into
 * the disk's list so that reads fail instead of oopsing; once listed, it
 * is not written again.  A pfn outside every namespace is not ours. */
static void test_scan_memfail(void **state)
{
	struct ph_topology *t = nfit_topology();
	uint64_t v[] = { (0x100000000ULL + (18ULL << 20) + 208 * 512) >> 12, 0x1000 };
	struct ph_pfns pfns = { .v = v, .n = 2 }, tried = { 0 };
	struct ph_ctx *ctx;
	struct ph_scan *s = NULL;
	char *root = fake_root_new(), path[4096], buf[256] = "";
	const struct ph_observation *o;
	FILE *f;

	(void)state;
	if (v[1] > v[0]) { /* sorted, as the follower keeps them */
		v[1] = v[0];
		v[0] = 0x1000;
	}
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	fake_write(root, "/sys/block/pmem0/badblocks", "");
	fake_write(root, "/sys/bus/nd/devices/region0/badblocks", "");
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ph_source_scan(ctx, t, &s), 0);
		assert_int_equal(ph_source_memfail(ctx, t, &pfns, &tried, s), 0);
		o = NULL;
		for (size_t i = 0; i < s->n_obs; i++)
			if (s->obs[i].origin == PH_ORIGIN_MEMFAIL)
				o = &s->obs[i];
		assert_non_null(o);
		assert_int_equal(o->start, 208);
		assert_int_equal(o->count, 8);
		assert_string_equal(o->device, "pmem0");
		/* protected once: the second scan reads it in the disk's list */
		assert_int_equal(s->n_obs, round == 0 ? 1 : 2);
		ph_scan_free(s);
		s = NULL;
		snprintf(path, sizeof(path), "%s/sys/block/pmem0/badblocks", root);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 6);
		fclose(f);
		assert_string_equal(buf, "208 8\n");
	}
	/* each page is tried once: a list that lost it (or could not take
	 * it: a read-only /sys) is not written, nor the failure logged, at
	 * every scan; the page is still observed */
	assert_int_equal(tried.n, 1);
	fake_write(root, "/sys/block/pmem0/badblocks", "");
	assert_int_equal(ph_source_scan(ctx, t, &s), 0);
	assert_int_equal(ph_source_memfail(ctx, t, &pfns, &tried, s), 0);
	assert_int_equal(s->n_obs, 1);
	ph_scan_free(s);
	s = NULL;
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 0);
	fclose(f);
	ph_pfns_done(&tried);
	ph_ctx_unref(ctx);
	fake_root_free(root);
	ph_topology_free(t);
}

static void test_scan_errors(void **state)
{
	struct ph_topology *t = nfit_topology();
	struct ph_ctx *ctx;
	struct ph_scan *s = NULL;
	char *root = fake_root_new();
	size_t b, r;

	/* a second, healthy device that must still be read */
	assert_int_equal(ph_topology_add_bus(t, "ndbus1", "virtio-pmem", true, "x", false, &b), 0);
	assert_int_equal(ph_topology_add_region(t, b, "region1", 1ULL << 30, 0x200000000ULL, &r), 0);
	assert_int_equal(ph_topology_add_namespace(t, r, "namespace1.0", PH_NS_FSDAX, "6f1bd3b5-0000-4000-8000-000000000001",
						   1ULL << 29, 0x200000000ULL + (18ULL << 20), "pmem1", NULL, NULL), 0);
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	fake_write(root, "/sys/block/pmem0/badblocks", "208 1\n209\n");       /* truncated line */
	fake_write(root, "/sys/bus/nd/devices/region0/badblocks", "");
	fake_write(root, "/sys/block/pmem1/badblocks", "64 8\n");
	/* region1's list is missing altogether */
	assert_int_equal(ph_source_scan(ctx, t, &s), 0);
	assert_int_equal(s->n_errors, 2);
	assert_string_equal(s->errors[0].device, "pmem0");
	assert_non_null(strstr(s->errors[0].message, "line 2"));
	assert_string_equal(s->errors[1].device, "region1");
	/* pmem1's own list still counts; pmem0's bad list contributed nothing */
	assert_int_equal(s->n_obs, 1);
	assert_string_equal(s->obs[0].device, "pmem1");
	assert_int_equal(s->obs[0].start, 64);
	/* neither namespace had all its lists read: neither is "complete" */
	assert_int_equal(s->n_complete_ns, 0);
	ph_scan_free(s);
	ph_ctx_unref(ctx);
	fake_root_free(root);
	ph_topology_free(t);
}

static void test_untranslated(void **state)
{
	struct ph_topology *t = nfit_topology();
	struct ph_ctx *ctx;
	struct ph_scan *s = NULL;
	char *root = fake_root_new();

	t->regions[0].resource = PH_UNKNOWN; /* not root */
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	fake_write(root, "/sys/block/pmem0/badblocks", "");
	fake_write(root, "/sys/bus/nd/devices/region0/badblocks", "37072 1\n");
	assert_int_equal(ph_source_scan(ctx, t, &s), 0);
	assert_int_equal(s->n_obs, 0);
	assert_int_equal(s->n_outside, 1);
	assert_true(s->outside[0].untranslated);
	ph_scan_free(s);
	ph_ctx_unref(ctx);
	fake_root_free(root);
	ph_topology_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_can_clear),
		cmocka_unit_test(test_translation),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_memfail_follow),
		cmocka_unit_test(test_scan_lists),
		cmocka_unit_test(test_scan_memfail),
		cmocka_unit_test(test_scan_errors),
		cmocka_unit_test(test_untranslated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
