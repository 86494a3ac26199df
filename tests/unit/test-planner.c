/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The planner's decisions: which mode each page gets from its owners, the
 * rule, whether the bus clears and whether the filesystem has reflink;
 * that metadata and free space are never written; that a page that went
 * through memory_failure is never read; and that nothing frees a poisoned
 * block on a bus that cannot clear.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "faketree.h"
#include "planner.h"

static struct ph_policy *policy;
static char *root;

static int setup(void **state)
{
	struct ph_ctx *ctx;
	static const char *const dirs[] = { "/etc/pmemheal" };

	root = fake_root_new();
	fake_write(root, "/etc/pmemheal/rules.d/10-salvage.rule",
		   "[Match]\nPath=/mnt/s* /mnt/shared*\n[Repair]\nAction=salvage\n");
	fake_write(root, "/etc/pmemheal/rules.d/20-restore.rule",
		   "[Match]\nPath=/mnt/db/*\n[Repair]\nAction=salvage\nSource=/backup/%r\n");
	fake_write(root, "/etc/pmemheal/rules.d/30-delete.rule",
		   "[Match]\nPath=/mnt/tmp/*\n[Repair]\nAction=delete\n");
	fake_write(root, "/etc/pmemheal/rules.d/40-punch.rule",
		   "[Match]\nPath=/mnt/sparse/*\n[Repair]\nAction=punch\n");
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, root), 0);
	assert_int_equal(ph_policy_load(ctx, dirs, 1, &policy, NULL), 0);
	ph_ctx_unref(ctx);
	return 0;
}

static int teardown(void **state)
{
	ph_policy_free(policy);
	fake_root_free(root);
	return 0;
}

static char *paths_a[] = { "/mnt/salvage.dat" };
static char *paths_b[] = { "/mnt/shared.copy" };
static char *paths_db[] = { "/mnt/db/t.dat" };
static char *paths_tmp[] = { "/mnt/tmp/x" };
static char *paths_sparse[] = { "/mnt/sparse/y" };
static char *paths_none[] = { "/mnt/other" };
static char *paths_pin[] = { "/mnt/.pmemheal/quarantine/ns-800.pin" };
static char *paths_quarantined[] = { "/mnt/.pmemheal/quarantine/131-salvage.dat" };

static struct ph_owner file_owner(char **paths, uint64_t inode, uint64_t offset, bool shared)
{
	return (struct ph_owner){ .type = PH_OWNER_FILE, .sector = 800, .count = 8, .inode = inode,
				  .offset = offset, .length = 4096, .shared = shared, .paths = paths, .n_paths = 1 };
}

static struct ph_plan_env env(bool can_clear, bool reflink)
{
	return (struct ph_plan_env){
		.policy = policy, .can_clear = can_clear, .clear_reason = "test", .reflink = reflink,
		.device = "/dev/pmem0", .mountpoint = "/mnt", .fstype = "xfs", .block_size = 4096,
		.ns_start = UINT64_MAX, .override = _PH_ACTION_MAX,
	};
}

static struct ph_plan *plan(const struct ph_plan_env *e, struct ph_owner *owners, size_t n, uint64_t start,
			    uint64_t count)
{
	struct ph_map_result res = { .range = { 800, 8 }, .owners = owners, .n_owners = n };
	struct ph_plan *p = NULL;

	assert_int_equal(ph_plan_build(e, start, count, &res, &p), 0);
	assert_int_equal(p->n_pages, 1);
	return p;
}

/* The step kinds of the page, as one string: "read-good-sectors,write,verify". */
static char *steps(const struct ph_plan_page *pg)
{
	static char buf[512];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < pg->n_steps; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", ph_step_to_string(pg->steps[i].kind));
	return buf;
}

static void test_in_place(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 131, 8192, false) };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p = plan(&e, o, 1, 802, 2); /* sectors 2-3 of the page */
	const struct ph_plan_page *pg = &p->pages[0];

	assert_int_equal(pg->sector, 800);
	assert_int_equal(pg->bad_mask, 0x0c);
	assert_int_equal(pg->kind, PH_PAGE_FILE);
	assert_int_equal(pg->mode, PH_MODE_IN_PLACE);
	assert_int_equal(pg->content, PH_CONTENT_SALVAGE);
	assert_int_equal(pg->bytes_lost, 1024);
	assert_int_equal(pg->owners[0].file_offset, 8192);
	assert_string_equal(steps(pg), "read-good-sectors,write,verify");
	ph_plan_free(p);
}

static void test_shared_relocate_and_clear(void **state)
{
	struct ph_owner o[] = { file_owner(paths_b, 133, 0, true), file_owner(paths_a, 131, 8192, true) };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p = plan(&e, o, 2, 800, 8);
	const struct ph_plan_page *pg = &p->pages[0];

	assert_true(pg->shared);
	assert_int_equal(pg->mode, PH_MODE_RELOCATE_PIN);
	/* owners sorted by path; the first's rule applies to both (together) */
	assert_string_equal(pg->owners[0].path, "/mnt/salvage.dat");
	assert_string_equal(steps(pg),
			    "read-good-sectors,pin,punch,write,punch,reshare,clear,release,verify");
	ph_plan_free(p);
}

static void test_cannot_clear_pins(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 131, 8192, false) };
	struct ph_plan_env e = env(false, true);
	struct ph_plan *p = plan(&e, o, 1, 800, 1);
	const struct ph_plan_page *pg = &p->pages[0];

	/* one owner, but the bus cannot clear: never write over the poison */
	assert_int_equal(pg->mode, PH_MODE_RELOCATE_PIN);
	assert_string_equal(steps(pg), "read-good-sectors,pin,punch,write,record,verify");
	ph_plan_free(p);
}

static void test_no_reflink_relocates_file(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 12, 4096, false) };
	struct ph_plan_env e = env(false, false);
	struct ph_plan *p = plan(&e, o, 1, 800, 8);

	assert_int_equal(p->pages[0].mode, PH_MODE_RELOCATE_FILE);
	assert_string_equal(steps(&p->pages[0]), "read-good-sectors,copy-file,link-old,rename,verify");
	ph_plan_free(p);

	/* hard links: one owner (one inode), and every other name follows
	 * the copy, so no name is left on the old inode */
	{
		static char *linked[] = { "/mnt/salvage.dat", "/mnt/sub/link" };
		struct ph_owner l[] = { file_owner(linked, 12, 4096, false), file_owner(linked, 12, 4096, false) };

		l[0].n_paths = l[1].n_paths = 2; /* the mapper names every path of the inode */
		p = plan(&e, l, 2, 800, 8);
		assert_int_equal(p->pages[0].n_owners, 1);
		assert_int_equal(p->pages[0].owners[0].n_links, 1);
		assert_string_equal(p->pages[0].owners[0].links[0], "/mnt/sub/link");
		assert_string_equal(steps(&p->pages[0]), "read-good-sectors,copy-file,link-old,rename,relink,verify");
		assert_int_equal(p->pages[0].steps[4].owner, 1);
		ph_plan_free(p);
	}
}

static void test_metadata_and_free(void **state)
{
	struct ph_owner meta[] = { { .type = PH_OWNER_METADATA, .sector = 800, .count = 8, .what = "inodes" } };
	struct ph_owner freesp[] = { { .type = PH_OWNER_FREE, .sector = 800, .count = 8 } };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p = plan(&e, meta, 1, 800, 1);

	assert_int_equal(p->pages[0].kind, PH_PAGE_METADATA);
	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	assert_string_equal(steps(&p->pages[0]), "record");
	assert_non_null(strstr(p->pages[0].steps[0].detail, "xfs_repair"));
	ph_plan_free(p);

	p = plan(&e, freesp, 1, 800, 1);
	assert_int_equal(p->pages[0].kind, PH_PAGE_FREE);
	assert_non_null(strstr(p->pages[0].explain, "heals"));
	ph_plan_free(p);
	e.can_clear = false;
	p = plan(&e, freesp, 1, 800, 1);
	assert_non_null(strstr(p->pages[0].explain, "hazard"));
	ph_plan_free(p);
}

static void test_memory_failure(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 131, 8192, false) };
	struct ph_owner db[] = { file_owner(paths_db, 140, 0, false) };
	uint64_t pfn = (0x100000000ULL + 800 * 512) >> 12;
	struct ph_pfns mf = { .v = &pfn, .n = 1 };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p;

	e.ns_start = 0x100000000ULL;
	e.memfail = &mf;
	p = plan(&e, o, 1, 801, 1);
	assert_true(p->pages[0].memory_failure);
	/* salvage without a source: the whole page is lost, nothing is read */
	assert_int_equal(p->pages[0].content, PH_CONTENT_ZERO);
	assert_int_equal(p->pages[0].bytes_lost, 4096);
	assert_null(strstr(steps(&p->pages[0]), "read-good-sectors"));
	ph_plan_free(p);

	/* ... with Source=: taken from the copy */
	p = plan(&e, db, 1, 801, 1);
	assert_int_equal(p->pages[0].content, PH_CONTENT_RESTORE);
	assert_string_equal(p->pages[0].owners[0].source, "/backup/db/t.dat");
	assert_int_equal(p->pages[0].bytes_lost, 0);
	ph_plan_free(p);
}

static void test_no_rule_reports(void **state)
{
	struct ph_owner o[] = { file_owner(paths_none, 150, 0, false) };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p = plan(&e, o, 1, 800, 8);

	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	assert_null(p->pages[0].owners[0].rule);
	ph_plan_free(p);
}

static void test_delete_and_punch(void **state)
{
	struct ph_owner tmp[] = { file_owner(paths_tmp, 160, 0, false) };
	struct ph_owner sp[] = { file_owner(paths_sparse, 161, 4096, false) };
	struct ph_plan_env e = env(false, true);
	struct ph_plan *p;

	p = plan(&e, tmp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_DELETE);
	assert_string_equal(steps(&p->pages[0]), "pin,unlink");
	ph_plan_free(p);

	/* no reflink, cannot clear: keeping the inode is the only way */
	e.reflink = false;
	p = plan(&e, tmp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_QUARANTINE);
	ph_plan_free(p);
	p = plan(&e, sp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_RELOCATE_FILE);
	assert_string_equal(steps(&p->pages[0]), "copy-file,link-old,rename");
	ph_plan_free(p);

	/* no reflink but the bus clears: heal the block, then let it go */
	e.can_clear = true;
	p = plan(&e, sp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_PUNCH);
	assert_string_equal(steps(&p->pages[0]), "write,punch");
	ph_plan_free(p);
}

static void test_refused(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 131, 8192, false) };
	struct ph_owner odd[] = { file_owner(paths_a, 131, 1024, false) };
	struct ph_plan_env e = env(true, true);
	struct ph_plan *p;

	e.block_size = 1024;
	p = plan(&e, o, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_REFUSED);
	assert_non_null(strstr(p->pages[0].explain, "1024-byte") ?: strstr(p->pages[0].explain, "1024 bytes"));
	ph_plan_free(p);
	e.block_size = 4096;
	p = plan(&e, odd, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_REFUSED);
	ph_plan_free(p);
}

/* Blocks our quarantine owns are never repaired as files (that would pin
 * the pin): a pin left by an interrupted repair is cleared and released
 * where the bus can clear, kept otherwise; a quarantined file is kept. */
static void test_pinned_by_us(void **state)
{
	struct ph_owner pin[] = { file_owner(paths_pin, 140, 0, false) };
	struct ph_owner both[] = { file_owner(paths_pin, 140, 0, true), file_owner(paths_a, 131, 8192, true) };
	struct ph_owner quarantined[] = { file_owner(paths_quarantined, 131, 8192, false) };
	struct ph_plan_env e = env(true, true), nc = env(false, true);
	struct ph_plan *p;

	p = plan(&e, pin, 1, 800, 8);
	assert_int_equal(p->pages[0].kind, PH_PAGE_PINNED);
	assert_int_equal(p->pages[0].n_owners, 0);
	assert_string_equal(steps(&p->pages[0]), "clear,release");
	ph_plan_free(p);

	p = plan(&nc, pin, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	assert_string_equal(steps(&p->pages[0]), "record");
	ph_plan_free(p);

	p = plan(&e, quarantined, 1, 800, 8);
	assert_int_equal(p->pages[0].kind, PH_PAGE_PINNED);
	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	ph_plan_free(p);

	/* the pin and a file still mapping the block: the file is repaired */
	p = plan(&e, both, 2, 800, 8);
	assert_int_equal(p->pages[0].kind, PH_PAGE_FILE);
	assert_int_equal(p->pages[0].n_owners, 1);
	assert_string_equal(p->pages[0].owners[0].path, "/mnt/salvage.dat");
	ph_plan_free(p);
}

/* Where the kernel's list was read, it alone says which sectors are bad:
 * a page of the range it no longer lists is healed (an earlier repair got
 * that far before it stopped) and is not planned again. */
static void test_healed_pages(void **state)
{
	struct ph_owner o[] = { file_owner(paths_a, 131, 8192, false) };
	struct ph_plan_env e = env(true, true);
	struct ph_ranges listed = { 0 };
	struct ph_plan *p;

	e.bad = &listed; /* read, and empty */
	p = plan(&e, o, 1, 802, 2);
	assert_int_equal(p->pages[0].kind, PH_PAGE_HEALED);
	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	assert_int_equal(p->pages[0].bad_mask, 0);
	ph_plan_free(p);

	assert_int_equal(ph_ranges_add(&listed, 803, 1), 0);
	p = plan(&e, o, 1, 802, 2);
	assert_int_equal(p->pages[0].kind, PH_PAGE_FILE);
	assert_int_equal(p->pages[0].bad_mask, 0x08); /* only what is listed now */
	assert_int_equal(p->pages[0].bytes_lost, 512);
	ph_plan_free(p);
	ph_ranges_clear(&listed);
}

static void test_describe(void **state)
{
	const struct ph_rule *r = ph_policy_match(policy, "/mnt/salvage.dat");
	char *s;

	assert_int_equal(ph_plan_describe_rule(r, true, true, &s), 0);
	assert_non_null(strstr(s, "in place"));
	assert_non_null(strstr(s, "clears and releases"));
	free(s);
	assert_int_equal(ph_plan_describe_rule(r, false, true, &s), 0);
	assert_non_null(strstr(s, "pins the poisoned block"));
	assert_non_null(strstr(s, "keeps the poisoned block pinned"));
	free(s);
	assert_int_equal(ph_plan_describe_rule(NULL, true, true, &s), 0);
	assert_string_equal(s, "record the damage and change nothing");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_shared_relocate_and_clear),
		cmocka_unit_test(test_cannot_clear_pins),
		cmocka_unit_test(test_no_reflink_relocates_file),
		cmocka_unit_test(test_metadata_and_free),
		cmocka_unit_test(test_memory_failure),
		cmocka_unit_test(test_no_rule_reports),
		cmocka_unit_test(test_delete_and_punch),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_pinned_by_us),
		cmocka_unit_test(test_healed_pages),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
