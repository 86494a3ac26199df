/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sources: where the kernel lists poison.  Each namespace's block device
 * (/sys/block/pmemX/badblocks, device-relative) and each region
 * (/sys/bus/nd/devices/regionN/badblocks, region-relative, the only list
 * for devdax) are read, region ranges are translated into the namespaces
 * they fall in, and the result is one set of observations per namespace.
 *
 * A malformed or unreadable list is an error for that device only: it is
 * recorded (and logged) and every other device is still read.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "ledger.h"
#include "memfail.h"
#include "range.h"
#include "topology.h"

struct ph_source_error {
	char *device;  /* "pmem0", "region1" */
	char *path;
	char *message; /* "line 3: not a number" */
};

/* Poison in a region outside every namespace's data (info blocks, labels,
 * unallocated capacity). */
struct ph_region_range {
	size_t region;
	uint64_t start, count; /* region-relative sectors */
	/* the physical addresses needed to place it were unreadable (they are
	 * root-only): it may well lie in a namespace */
	bool untranslated;
};

struct ph_scan {
	struct ph_observation *obs; /* ns_id and device point into the topology */
	size_t n_obs;
	struct ph_region_range *outside;
	size_t n_outside;
	struct ph_source_error *errors;
	size_t n_errors;
	/* namespaces whose lists were all read: a range missing from them is
	 * really not listed (a namespace with a read error is not here) */
	const char **complete_ns;
	size_t n_complete_ns;
};

int ph_source_scan(struct ph_ctx *ctx, const struct ph_topology *t, struct ph_scan **ret);
struct ph_scan *ph_scan_free(struct ph_scan *s);

/* The pages memory_failure() took this boot (pfns, from the kernel log)
 * that lie in a namespace's data: one observation each, the whole page,
 * origin PH_ORIGIN_MEMFAIL.  On virtio-pmem and e820 no list names such a
 * page, and an O_DIRECT read of any sector of it oopses the kernel: a page
 * the scan's disk list does not name is written into that list first
 * (protected), and logged; if it cannot be (a read-only /sys), that is
 * logged and the observation is still made.  tried (may be NULL): the
 * pages protected or tried before, skipped (kept across scans, so each is
 * tried and logged once). */
int ph_source_memfail(struct ph_ctx *ctx, const struct ph_topology *t, const struct ph_pfns *pfns,
		      struct ph_pfns *tried, struct ph_scan *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_scan *, ph_scan_free);

/* The badblocks file of a namespace's block device / of a region, as the
 * absolute path on the system (not under the context's root). */
int ph_source_device_list(const struct ph_namespace *ns, char **ret);
int ph_source_region_list(const struct ph_region *rg, char **ret);

/* Read one list under the context's root. */
int ph_source_read_list(struct ph_ctx *ctx, const char *path, struct ph_ranges *out,
			struct ph_parse_error *err);
