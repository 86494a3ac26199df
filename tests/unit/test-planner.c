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
	/* The plan is what runs: a page that changes anything ends with
	 * verify, and has no other; one that changes nothing has none. */
	for (size_t i = 0; i < p->n_pages; i++) {
		const struct ph_plan_page *pg = &p->pages[i];
		bool changes = false;

		for (size_t k = 0; k < pg->n_steps; k++) {
			changes |= ph_step_changes(pg->steps[k].kind);
			if (k + 1 < pg->n_steps)
				assert_int_not_equal(pg->steps[k].kind, PH_STEP_VERIFY);
		}
		assert_int_equal(changes, pg->n_steps > 0 && pg->steps[pg->n_steps - 1].kind == PH_STEP_VERIFY);
	}
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
	/* owners sorted by path; each by its own rule (both salvage here):
	 * one read, staged before anything is given up, swapped, never a hole */
	assert_string_equal(pg->owners[0].path, "/mnt/salvage.dat");
	assert_string_equal(steps(pg),
			    "read-good-sectors,stage,pin,swap,swap,unstage,clear,release,verify");
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
	assert_string_equal(steps(pg), "read-good-sectors,stage,pin,swap,unstage,record,verify");
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
	struct ph_owner tmp[] = { file_owner(paths_tmp, 160, 0, false) };
	struct ph_owner pin[] = { file_owner(paths_pin, 140, 0, false) };
	uint64_t pfn = (0x100000000ULL + 800 * 512) >> 12;
	struct ph_pfns mf = { .v = &pfn, .n = 1 };
	uint64_t other = pfn + 1;
	struct ph_pfns other_mf = { .v = &other, .n = 1 };
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

	/* never written where it is, on a bus that clears: one owner is
	 * relocated and the block pinned, and not cleared this boot */
	p = plan(&e, o, 1, 801, 1);
	assert_int_equal(p->pages[0].mode, PH_MODE_RELOCATE_PIN);
	assert_string_equal(steps(&p->pages[0]), "record,stage,pin,swap,unstage,record,verify");
	assert_non_null(strstr(p->pages[0].steps[5].detail, "memory_failure"));
	ph_plan_free(p);
	/* ... without reflink the whole file moves */
	e.reflink = false;
	p = plan(&e, o, 1, 801, 1);
	assert_int_equal(p->pages[0].mode, PH_MODE_RELOCATE_FILE);
	ph_plan_free(p);
	/* ... delete and punch never write zeros over it first */
	p = plan(&e, tmp, 1, 801, 1);
	assert_int_equal(p->pages[0].mode, PH_MODE_QUARANTINE);
	assert_null(strstr(steps(&p->pages[0]), "write"));
	ph_plan_free(p);
	e.reflink = true;
	p = plan(&e, tmp, 1, 801, 1);
	assert_string_equal(steps(&p->pages[0]), "pin,unlink,verify");
	ph_plan_free(p);
	/* ... and a page it pinned earlier this boot stays pinned */
	p = plan(&e, pin, 1, 801, 1);
	assert_int_equal(p->pages[0].mode, PH_MODE_RECORD);
	assert_non_null(strstr(p->pages[0].steps[0].detail, "after a reboot"));
	ph_plan_free(p);
	/* a page no machine check hit is written in place as before */
	e.memfail = &other_mf;
	p = plan(&e, o, 1, 801, 1);
	assert_false(p->pages[0].memory_failure);
	assert_int_equal(p->pages[0].mode, PH_MODE_IN_PLACE);
	ph_plan_free(p);
	e.memfail = &mf;

	/* the namespace's physical start unknown: nobody can tell, so the page
	 * is never read either */
	e.ns_start = UINT64_MAX;
	p = plan(&e, o, 1, 801, 1);
	assert_true(p->pages[0].memory_failure);
	assert_true(p->pages[0].mf_unknown);
	assert_int_equal(p->pages[0].content, PH_CONTENT_ZERO);
	assert_null(strstr(steps(&p->pages[0]), "read-good-sectors"));
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
	assert_string_equal(steps(&p->pages[0]), "pin,unlink,verify");
	ph_plan_free(p);

	/* no reflink, cannot clear: keeping the inode is the only way */
	e.reflink = false;
	p = plan(&e, tmp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_QUARANTINE);
	ph_plan_free(p);
	p = plan(&e, sp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_RELOCATE_FILE);
	assert_string_equal(steps(&p->pages[0]), "copy-file,link-old,rename,verify");
	ph_plan_free(p);

	/* no reflink but the bus clears: heal the block, then let it go */
	e.can_clear = true;
	p = plan(&e, sp, 1, 800, 8);
	assert_int_equal(p->pages[0].mode, PH_MODE_PUNCH);
	assert_string_equal(steps(&p->pages[0]), "write,punch,verify");
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
	assert_string_equal(steps(&p->pages[0]), "clear,release,verify");
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

/* ---- sharers with different rules: the shipped example rules ----------- */

static struct ph_policy *shipped;
static char *shipped_root;

/* The example rules from conf/rules.d, as an admin would install them. */
static int setup_shipped(void **state)
{
	static const char *const dirs[] = { "/etc/pmemheal" };
	static const char *const names[] = { "10-db.rule", "20-wal.rule", "50-images.rule", "80-cache.rule" };
	const char *top = getenv("top_srcdir");
	struct ph_ctx *ctx;

	if (!top)
		top = "..";
	shipped_root = fake_root_new();
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		char path[4096], rel[256], text[8192];
		size_t n;
		FILE *f;

		snprintf(path, sizeof(path), "%s/conf/rules.d/%s", top, names[i]);
		f = fopen(path, "re");
		if (!f) {
			fprintf(stderr, "cannot read %s (is top_srcdir set?)\n", path);
			return -1;
		}
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		snprintf(rel, sizeof(rel), "/etc/pmemheal/rules.d/%s", names[i]);
		fake_write(shipped_root, rel, text);
	}
	assert_int_equal(ph_ctx_new(&ctx), 0);
	assert_int_equal(ph_ctx_set_root(ctx, shipped_root), 0);
	assert_int_equal(ph_policy_load(ctx, dirs, 1, &shipped, NULL), 0);
	ph_ctx_unref(ctx);
	return 0;
}

static int teardown_shipped(void **state)
{
	ph_policy_free(shipped);
	fake_root_free(shipped_root);
	return 0;
}

static char *paths_srv_db[] = { "/srv/db/a.dat" };
static char *paths_srv_cache[] = { "/srv/cache/a.dat" };
static char *paths_srv_home[] = { "/srv/home/a.dat" };
static char *paths_srv_img[] = { "/var/lib/libvirt/images/a.raw" };
static char *paths_srv_db2[] = { "/srv/db/b.idx" };

static struct ph_plan_env srv_env(bool can_clear)
{
	struct ph_plan_env e = env(can_clear, true);

	e.policy = shipped;
	e.mountpoint = "/srv";
	return e;
}

static size_t owner_named(const struct ph_plan_page *pg, const char *path)
{
	for (size_t i = 0; i < pg->n_owners; i++)
		if (strcmp(pg->owners[i].path, path) == 0)
			return i;
	fail_msg("no owner %s", path);
	return SIZE_MAX;
}

/* The kinds of the steps that change owner i, as one string. */
static char *owner_steps(const struct ph_plan_page *pg, size_t i)
{
	static char buf[256];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < pg->n_steps; k++) {
		enum ph_step_kind t = pg->steps[k].kind;

		if (pg->steps[k].owner != i || (t != PH_STEP_PUNCH && t != PH_STEP_WRITE && t != PH_STEP_SWAP &&
						 t != PH_STEP_RESHARE && t != PH_STEP_UNLINK && t != PH_STEP_RENAME &&
						 t != PH_STEP_COPY_FILE && t != PH_STEP_READ_SOURCE))
			continue;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", ph_step_to_string(t));
	}
	return buf;
}

/* A plain cp on XFS shares /srv/db/a.dat's blocks with /srv/cache/a.dat:
 * the database file is restored from its own Source=, the cache file is
 * deleted by its own rule, and nothing deletes the database file. */
static void test_sharers_each_own_rule(void **state)
{
	struct ph_owner o[] = { file_owner(paths_srv_db, 200, 0, true), file_owner(paths_srv_cache, 201, 0, true) };

	for (int clear = 0; clear <= 1; clear++) {
		struct ph_plan_env e = srv_env(clear);
		struct ph_plan *p = plan(&e, o, 2, 800, 8);
		const struct ph_plan_page *pg = &p->pages[0];
		size_t db = owner_named(pg, "/srv/db/a.dat"), cache = owner_named(pg, "/srv/cache/a.dat");

		assert_int_equal(pg->mode, PH_MODE_RELOCATE_PIN);
		assert_int_equal(pg->owners[db].action, PH_ACTION_RESTORE);
		assert_string_equal(pg->owners[db].rule->name, "10-db.rule");
		assert_string_equal(pg->owners[db].source, "/backup/db/a.dat");
		assert_int_equal(pg->owners[db].content, PH_CONTENT_RESTORE);
		assert_int_equal(pg->owners[cache].action, PH_ACTION_DELETE);
		assert_string_equal(pg->owners[cache].rule->name, "80-cache.rule");
		/* the database file: read from its own source, swapped, never unlinked */
		assert_string_equal(owner_steps(pg, db), "read-source,swap");
		for (size_t k = 0; k < pg->n_steps; k++)
			if (pg->steps[k].kind == PH_STEP_READ_SOURCE)
				assert_non_null(strstr(pg->steps[k].detail, "/backup/db/a.dat"));
		/* the cache file: deleted, nothing written to it */
		assert_string_equal(owner_steps(pg, cache), "unlink");
		assert_string_equal(steps(pg), clear ? "read-source,stage,pin,unlink,swap,unstage,clear,release,verify" :
						       "read-source,stage,pin,unlink,swap,unstage,record,verify");
		ph_plan_free(p);
	}
}

/* A file no rule names is never changed because a sharer has a rule. */
static void test_sharer_without_rule_untouched(void **state)
{
	struct ph_owner o[] = { file_owner(paths_srv_db, 200, 0, true), file_owner(paths_srv_home, 202, 0, true) };
	struct ph_owner c[] = { file_owner(paths_srv_cache, 201, 0, true), file_owner(paths_srv_home, 202, 0, true) };
	struct ph_plan_env e = srv_env(false);
	struct ph_plan *p = plan(&e, o, 2, 800, 8);
	const struct ph_plan_page *pg = &p->pages[0];
	size_t home = owner_named(pg, "/srv/home/a.dat");

	assert_int_equal(pg->mode, PH_MODE_RELOCATE_PIN);
	assert_int_equal(pg->owners[home].action, PH_ACTION_REPORT);
	assert_string_equal(owner_steps(pg, home), "");
	assert_string_equal(owner_steps(pg, owner_named(pg, "/srv/db/a.dat")), "read-source,swap");
	ph_plan_free(p);

	p = plan(&e, c, 2, 800, 8);
	pg = &p->pages[0];
	assert_int_equal(pg->mode, PH_MODE_DELETE);
	assert_string_equal(owner_steps(pg, owner_named(pg, "/srv/home/a.dat")), "");
	assert_string_equal(owner_steps(pg, owner_named(pg, "/srv/cache/a.dat")), "unlink");
	assert_string_equal(steps(pg), "pin,unlink,verify");
	ph_plan_free(p);
}

/* One sharer's Fallback= applies to that sharer only. */
static void test_sharer_fallback_own(void **state)
{
	struct ph_owner o[] = { file_owner(paths_srv_db, 200, 0, true), file_owner(paths_srv_img, 203, 0, true) };
	const struct ph_plan_override ov[] = { { "/srv/db/a.dat", PH_ACTION_QUARANTINE } };
	struct ph_plan_env e = srv_env(false);
	struct ph_plan *p;
	const struct ph_plan_page *pg;

	e.overrides = ov;
	e.n_overrides = 1;
	p = plan(&e, o, 2, 800, 8);
	pg = &p->pages[0];
	assert_int_equal(pg->mode, PH_MODE_RELOCATE_PIN);
	assert_string_equal(owner_steps(pg, owner_named(pg, "/srv/db/a.dat")), "rename");
	assert_int_equal(pg->owners[owner_named(pg, "/var/lib/libvirt/images/a.raw")].action, PH_ACTION_SALVAGE);
	assert_string_equal(steps(pg), "read-good-sectors,stage,pin,rename,swap,unstage,record,verify");
	ph_plan_free(p);
}

/* Staged pages: identical results are shared again, different ones never,
 * and OnShared=separate keeps an owner on its own block. */
static void test_stage_slots(void **state)
{
	struct ph_owner o[] = { file_owner(paths_srv_db, 200, 0, true), file_owner(paths_srv_db2, 203, 0, true),
				file_owner(paths_srv_cache, 201, 0, true), file_owner(paths_srv_home, 202, 0, true) };
	struct ph_plan_env e = srv_env(false);
	struct ph_plan *p = plan(&e, o, 4, 800, 8);
	const struct ph_plan_page *pg = &p->pages[0];
	static uint8_t x[PH_PAGE_SIZE], y[PH_PAGE_SIZE];
	const uint8_t *pages[4] = { 0 };
	size_t slots[4], db = owner_named(pg, "/srv/db/a.dat"), img = owner_named(pg, "/srv/db/b.idx"),
	       home = owner_named(pg, "/srv/home/a.dat"), cache = owner_named(pg, "/srv/cache/a.dat");
	struct ph_rule separate;

	memset(y, 'y', sizeof(y));
	/* identical: one staged page, shared by both */
	pages[db] = x;
	pages[img] = x;
	assert_int_equal(ph_plan_stage_slots(pg, pages, slots), 1);
	assert_int_equal(slots[db], slots[img]);
	assert_int_equal(slots[home], SIZE_MAX);
	assert_int_equal(slots[cache], SIZE_MAX);
	/* different: two, not shared */
	pages[img] = y;
	assert_int_equal(ph_plan_stage_slots(pg, pages, slots), 2);
	assert_int_not_equal(slots[db], slots[img]);
	/* identical, but one rule says OnShared=separate */
	pages[img] = x;
	separate = *pg->owners[img].rule;
	separate.on_shared = PH_SHARED_SEPARATE;
	p->pages[0].owners[img].rule = &separate;
	assert_int_equal(ph_plan_stage_slots(pg, pages, slots), 2);
	assert_int_not_equal(slots[db], slots[img]);
	ph_plan_free(p);
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
	const struct CMUnitTest sharers[] = {
		cmocka_unit_test(test_sharers_each_own_rule),
		cmocka_unit_test(test_sharer_without_rule_untouched),
		cmocka_unit_test(test_sharer_fallback_own),
		cmocka_unit_test(test_stage_slots),
	};
	int r = cmocka_run_group_tests(tests, setup, teardown);

	return r + cmocka_run_group_tests_name("sharers", sharers, setup_shipped, teardown_shipped);
}
