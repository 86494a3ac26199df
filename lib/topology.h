/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pmem topology: buses, regions and namespaces, as plain data.
 *
 * ph_topology_load() enumerates them with libndctl and libdaxctl.  Tests
 * build a topology directly with ph_topology_add_*(); everything read from
 * files afterwards (badblocks lists, mounts) goes through the context's
 * root, so a fake tree stands in for the system.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctx.h"

#define PH_UNKNOWN UINT64_MAX

enum ph_ns_mode {
	PH_NS_RAW,
	PH_NS_SECTOR,
	PH_NS_FSDAX,
	PH_NS_DEVDAX,
	PH_NS_UNKNOWN,
};

struct ph_bus {
	char *name;     /* "ndbus0" */
	char *provider; /* "ACPI.NFIT", "virtio-pmem", "e820" */
	bool can_clear; /* a write over poison clears it */
	char *clear_reason; /* why we think so, for humans */
	bool ars;       /* Address Range Scrub can be started */
	bool clear_error_cmd; /* firmware's ARS_CAP + CLEAR_ERROR: the only way to
			       * clear device DAX, which has no write path */
};

struct ph_region {
	char *name;        /* "region0" */
	size_t bus;
	uint64_t size;     /* bytes */
	uint64_t resource; /* physical start, PH_UNKNOWN if unreadable */
};

struct ph_namespace {
	char *name;        /* "namespace0.0" */
	size_t region;
	enum ph_ns_mode mode;
	/* Persistent identity for the ledger: the namespace's uuid, else its
	 * pfn/dax/btt personality's (kept in the info block), else "dev:NAME". */
	char *id;
	char *uuid;        /* NULL when there is none */
	uint64_t size;     /* bytes usable through the device */
	/* Physical address of the device's sector 0 (after any info block),
	 * PH_UNKNOWN if unreadable.  With the region's resource it translates
	 * region-relative badblocks to device-relative ones. */
	uint64_t start;
	/* Bytes from the namespace's start to that data (the fsdax/devdax info
	 * block and, with "map dev", the page array), PH_UNKNOWN if unreadable. */
	uint64_t data_offset;
	char *blockdev;    /* "pmem0", NULL for devdax */
	char *chardev;     /* "dax0.0", NULL unless devdax */
	/* The device it had when last seen with one, for naming its removal:
	 * tearing a namespace down takes its disk away before the namespace
	 * itself (kept by ph_monitor_reload; NULL from ph_topology_load). */
	char *last_dev;
};

struct ph_topology {
	struct ph_bus *buses;
	size_t n_buses;
	struct ph_region *regions;
	size_t n_regions;
	struct ph_namespace *namespaces;
	size_t n_namespaces;
};

/* Enumerate with libndctl.  An empty topology (no pmem) is not an error. */
int ph_topology_load(struct ph_ctx *ctx, struct ph_topology **ret);
int ph_topology_new(struct ph_topology **ret);
struct ph_topology *ph_topology_free(struct ph_topology *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ph_topology *, ph_topology_free);

/* Builders (tests, and ph_topology_load itself); strings are copied. */
int ph_topology_add_bus(struct ph_topology *t, const char *name, const char *provider,
			bool can_clear, const char *clear_reason, bool ars, size_t *ret_index);
int ph_topology_add_region(struct ph_topology *t, size_t bus, const char *name, uint64_t size,
			   uint64_t resource, size_t *ret_index);
int ph_topology_add_namespace(struct ph_topology *t, size_t region, const char *name,
			      enum ph_ns_mode mode, const char *uuid, uint64_t size, uint64_t start,
			      const char *blockdev, const char *chardev, size_t *ret_index);

const char *ph_ns_mode_to_string(enum ph_ns_mode m);

/*
 * Whether a write over poison clears it on this bus: its provider has no
 * firmware (the kernel clears), or its firmware implements CLEAR_ERROR and
 * ARS_CAP (has_clear_error).  Unknown providers: no.  Exposed for tests.
 */
bool ph_bus_can_clear(const char *provider, bool has_clear_error, const char **ret_reason);

/* Region-relative sector of device-relative sector s of namespace ns, or
 * -ENODATA when the physical addresses are unknown. */
/*
 * Clear poison at physical [phys, phys + len) through bus's CLEAR_ERROR
 * command (root), widened to the firmware's clear unit.  Data there is
 * gone either way; the region's list is updated by the kernel.  Cleared
 * bytes in *ret_cleared.  -EOPNOTSUPP: the bus has no such command.
 */
int ph_bus_clear_error(struct ph_ctx *ctx, const char *bus, uint64_t phys, uint64_t len, uint64_t *ret_cleared);

int ph_namespace_to_region(const struct ph_topology *t, const struct ph_namespace *ns, uint64_t s,
			   uint64_t *ret);
/* Device-relative sector of region sector s when it falls in ns's data
 * range: 0; -ERANGE when outside; -ENODATA when addresses are unknown. */
int ph_region_to_namespace(const struct ph_topology *t, const struct ph_namespace *ns, uint64_t s,
			   uint64_t *ret);

/* The namespace whose id (ph_namespace.id) is id, or whose pmem disk is
 * named blockdev ("pmem0"); NULL when there is none (or t is NULL). */
const struct ph_namespace *ph_topology_find_ns(const struct ph_topology *t, const char *id);
const struct ph_namespace *ph_topology_find_blockdev(const struct ph_topology *t, const char *blockdev);
