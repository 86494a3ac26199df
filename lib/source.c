/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading the kernel's badblocks lists, and the pages memory_failure() took
 * this boot (ph_source_memfail()).  Region lists are translated with
 * the physical addresses from the topology: a region sector s belongs to
 * namespace ns when it lies in ns's data; its device sector is s minus
 * (ns start - region start) / 512.  Whatever lies in no namespace's data is
 * kept as region-only poison, not dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "range.h"
#include "source.h"

#define MF_PAGE_SECTORS 8u /* memory_failure() takes a 4 KiB page */

_public_ struct ph_scan *ph_scan_free(struct ph_scan *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_errors; i++) {
		free(s->errors[i].device);
		free(s->errors[i].path);
		free(s->errors[i].message);
	}
	free(s->errors);
	free(s->obs);
	free(s->outside);
	free(s->complete_ns);
	free(s);
	return NULL;
}

_public_ int ph_source_device_list(const struct ph_namespace *ns, char **ret)
{
	if (!ns->blockdev)
		return -ENODEV;
	return asprintf(ret, "/sys/block/%s/badblocks", ns->blockdev) < 0 ? -ENOMEM : 0;
}

_public_ int ph_source_region_list(const struct ph_region *rg, char **ret)
{
	return asprintf(ret, "/sys/bus/nd/devices/%s/badblocks", rg->name) < 0 ? -ENOMEM : 0;
}

_public_ int ph_source_read_list(struct ph_ctx *ctx, const char *path, struct ph_ranges *out,
				 struct ph_parse_error *err)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	int r;

	r = ph_ctx_path(ctx, path, &p);
	if (r < 0)
		return r;
	f = fopen(p, "re");
	if (!f) {
		r = negative_errno();
		if (err) {
			err->line = 0;
			snprintf(err->reason, sizeof(err->reason), "%s", strerror(-r));
		}
		return r;
	}
	return ph_badblocks_parse(f, false, out, err);
}

static int add_error(struct ph_scan *s, const char *device, const char *path, const char *fmt, ...)
	_printf_(4, 5);
static int add_error(struct ph_scan *s, const char *device, const char *path, const char *fmt, ...)
{
	struct ph_source_error *v = reallocarray(s->errors, s->n_errors + 1, sizeof(*v));
	va_list ap;
	int k;

	if (!v)
		return -ENOMEM;
	s->errors = v;
	v += s->n_errors;
	*v = (struct ph_source_error){ .device = strdup(device), .path = strdup(path) };
	va_start(ap, fmt);
	k = vasprintf(&v->message, fmt, ap);
	va_end(ap);
	if (k < 0 || !v->device || !v->path) {
		free(v->device);
		free(v->path);
		if (k >= 0)
			free(v->message);
		return -ENOMEM;
	}
	s->n_errors++;
	return 0;
}

static int add_obs(struct ph_scan *s, const struct ph_namespace *ns, uint64_t start, uint64_t count,
		   unsigned origin)
{
	struct ph_observation *v = reallocarray(s->obs, s->n_obs + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->obs = v;
	v[s->n_obs++] = (struct ph_observation){
		.ns_id = ns->id,
		.device = ns->blockdev ? ns->blockdev : ns->chardev ? ns->chardev : ns->name,
		.start = start,
		.count = count,
		.origin = origin,
	};
	return 0;
}

/* Read a list; on failure record the error for that device and return 1. */
static int read_or_record(struct ph_ctx *ctx, struct ph_scan *s, const char *device, const char *path,
			  struct ph_ranges *out)
{
	struct ph_parse_error perr = { 0 };
	int r;

	r = ph_source_read_list(ctx, path, out, &perr);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (perr.line > 0)
			ph_err(ctx, "%s: %s:%u: %s; skipping this list", device, path, perr.line, perr.reason);
		else
			ph_err(ctx, "%s: cannot read %s: %s; skipping this list", device, path, perr.reason);
		r = perr.line > 0 ? add_error(s, device, path, "line %u: %s", perr.line, perr.reason)
				  : add_error(s, device, path, "%s", perr.reason);
		return r < 0 ? r : 1;
	}
	return 0;
}

/* Device lists: already device-relative.  bad[i]: namespace i's list could
 * not be read. */
static int scan_devices(struct ph_ctx *ctx, const struct ph_topology *t, struct ph_scan *s, bool *bad)
{
	int r = 0;

	for (size_t i = 0; i < t->n_namespaces; i++) {
		const struct ph_namespace *ns = &t->namespaces[i];
		_cleanup_free_ char *path = NULL;
		struct ph_ranges l = { 0 };

		/* devdax has no block device; a BTT's sectors are remapped and
		 * its disk has no list of physical sectors. */
		if (!ns->blockdev || ns->mode == PH_NS_SECTOR)
			continue;
		r = ph_source_device_list(ns, &path);
		if (r < 0)
			return r;
		r = read_or_record(ctx, s, ns->blockdev, path, &l);
		if (r < 0) {
			ph_ranges_clear(&l);
			return r;
		}
		bad[i] = r > 0;
		for (size_t k = 0; !bad[i] && k < l.n; k++) {
			r = add_obs(s, ns, l.v[k].start, l.v[k].count, PH_ORIGIN_DEVICE);
			if (r < 0)
				break;
		}
		ph_ranges_clear(&l);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One range of region ri's list, translated into every namespace it
 * overlaps; what lies in none of them goes to s->outside. */
static int place_region_range(const struct ph_topology *t, struct ph_scan *s, size_t ri, struct ph_range piece,
			      bool untranslated)
{
	struct ph_ranges rest = { 0 };
	int r;

	r = ph_ranges_add(&rest, piece.start, piece.count);
	for (size_t i = 0; r == 0 && i < t->n_namespaces; i++) {
		const struct ph_namespace *ns = &t->namespaces[i];
		struct ph_range data, in;
		uint64_t first;

		if (ns->region != ri || ph_namespace_to_region(t, ns, 0, &first) < 0)
			continue;
		data = (struct ph_range){ .start = first, .count = ns->size / 512 };
		if (!ph_range_intersect(&piece, &data, &in))
			continue;
		r = add_obs(s, ns, in.start - first, in.count, PH_ORIGIN_REGION);
		if (r == 0)
			r = ph_ranges_subtract(&rest, &in);
	}
	for (size_t j = 0; r == 0 && j < rest.n; j++) {
		struct ph_region_range *v = reallocarray(s->outside, s->n_outside + 1, sizeof(*v));

		if (!v) {
			r = -ENOMEM;
			break;
		}
		s->outside = v;
		v[s->n_outside++] = (struct ph_region_range){ ri, rest.v[j].start, rest.v[j].count, untranslated };
	}
	ph_ranges_clear(&rest);
	return r;
}

/* Region ri's list: translated into every namespace it overlaps. */
static int scan_region(struct ph_ctx *ctx, const struct ph_topology *t, struct ph_scan *s, bool *bad, size_t ri)
{
	const struct ph_region *rg = &t->regions[ri];
	_cleanup_free_ char *path = NULL;
	struct ph_ranges l = { 0 };
	bool untranslated = false;
	int r = 0, k;

	r = ph_source_region_list(rg, &path);
	if (r < 0)
		return r;
	k = read_or_record(ctx, s, rg->name, path, &l);
	if (k < 0) {
		ph_ranges_clear(&l);
		return k;
	}
	for (size_t i = 0; k > 0 && i < t->n_namespaces; i++)
		if (t->namespaces[i].region == ri)
			bad[i] = true;
	for (size_t i = 0; i < t->n_namespaces; i++) {
		uint64_t first;

		if (t->namespaces[i].region == ri && ph_namespace_to_region(t, &t->namespaces[i], 0, &first) < 0)
			untranslated = true;
	}
	if (k == 0 && untranslated && l.n > 0)
		ph_warn(ctx, "%s: the physical addresses of its namespaces are unreadable (root only); "
			"its %zu listed ranges cannot be placed in them", rg->name, l.n);
	for (size_t k2 = 0; k == 0 && r == 0 && k2 < l.n; k2++)
		r = place_region_range(t, s, ri, l.v[k2], untranslated);
	ph_ranges_clear(&l);
	return r;
}

_public_ int ph_source_scan(struct ph_ctx *ctx, const struct ph_topology *t, struct ph_scan **ret)
{
	_cleanup_(ph_scan_freep) struct ph_scan *s = NULL;
	_cleanup_free_ bool *bad = NULL;
	int r;

	s = calloc(1, sizeof(*s));
	bad = calloc(MAX(t->n_namespaces, (size_t)1), sizeof(*bad));
	if (!s || !bad)
		return -ENOMEM;
	r = scan_devices(ctx, t, s, bad);
	if (r < 0)
		return r;
	for (size_t ri = 0; ri < t->n_regions; ri++) {
		r = scan_region(ctx, t, s, bad, ri);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->n_namespaces; i++) {
		const char **v;

		if (bad[i])
			continue;
		v = reallocarray(s->complete_ns, s->n_complete_ns + 1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->complete_ns = v;
		v[s->n_complete_ns++] = t->namespaces[i].id;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

/* Does the scan's disk list of ns name every sector of [start, start+count)? */
static bool disk_lists(const struct ph_scan *s, const struct ph_namespace *ns, uint64_t start, uint64_t count)
{
	struct ph_ranges rest = { 0 };
	bool all;

	if (ph_ranges_add(&rest, start, count) < 0)
		return false;
	for (size_t i = 0; i < s->n_obs; i++)
		if (s->obs[i].ns_id == ns->id && (s->obs[i].origin & PH_ORIGIN_DEVICE) &&
		    ph_ranges_subtract(&rest, &(struct ph_range){ s->obs[i].start, s->obs[i].count }) < 0) {
			ph_ranges_clear(&rest);
			return false;
		}
	all = rest.n == 0;
	ph_ranges_clear(&rest);
	return all;
}

/* Write "SECTOR COUNT" into ns's disk list: reads of those sectors then
 * fail with EIO instead of reaching the page. */
static int protect(struct ph_ctx *ctx, const struct ph_namespace *ns, uint64_t start, uint64_t count)
{
	_cleanup_free_ char *list = NULL, *p = NULL;
	_cleanup_close_ int fd = -EBADF;
	char line[64];
	int n, r;

	r = ph_source_device_list(ns, &list);
	if (r == 0)
		r = ph_ctx_path(ctx, list, &p);
	if (r < 0)
		return r;
	fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 "\n", start, count);
	if (write(fd, line, (size_t)n) != n)
		return errno ? negative_errno() : -EIO;
	return 0;
}

/* Add pfn to a sorted set. */
static int pfns_insert(struct ph_pfns *p, uint64_t pfn)
{
	uint64_t *v = reallocarray(p->v, p->n + 1, sizeof(*v));
	size_t i = p->n;

	if (!v)
		return -ENOMEM;
	p->v = v;
	while (i > 0 && v[i - 1] > pfn) {
		v[i] = v[i - 1];
		i--;
	}
	v[i] = pfn;
	p->n++;
	return 0;
}

_public_ int ph_source_memfail(struct ph_ctx *ctx, const struct ph_topology *t, const struct ph_pfns *pfns,
			       struct ph_pfns *tried, struct ph_scan *s)
{
	int r;

	for (size_t i = 0; i < t->n_namespaces; i++) {
		const struct ph_namespace *ns = &t->namespaces[i];

		if (!ns->blockdev || ns->mode == PH_NS_SECTOR || ns->start == PH_UNKNOWN)
			continue;
		for (size_t k = 0; k < pfns->n; k++) {
			uint64_t addr = pfns->v[k] << 12, sector;

			if (addr < ns->start || addr - ns->start >= ns->size)
				continue;
			sector = (addr - ns->start) / 512;
			if (disk_lists(s, ns, sector, MF_PAGE_SECTORS) || (tried && ph_pfns_contains(tried, pfns->v[k])))
				r = 0; /* listed, or tried already: said once */
			else {
				if (tried && pfns_insert(tried, pfns->v[k]) < 0)
					return -ENOMEM;
				r = protect(ctx, ns, sector, MF_PAGE_SECTORS);
				if (r == 0)
					ph_notice(ctx, "%s: the page at sector %" PRIu64 " went through memory_failure (pfn "
						  "0x%" PRIx64 ") and no list named it: its sectors are now in the disk's "
						  "list, so that reads fail instead of reaching it", ns->blockdev, sector,
						  pfns->v[k]);
				else
					ph_warn(ctx, "%s: the page at sector %" PRIu64 " went through memory_failure (pfn "
						"0x%" PRIx64 ") and no list names it; cannot add it to the disk's list: %s",
						ns->blockdev, sector, pfns->v[k], strerror(-r));
			}
			r = add_obs(s, ns, sector, MF_PAGE_SECTORS, PH_ORIGIN_MEMFAIL);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
