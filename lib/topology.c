/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Topology.  libndctl enumerates buses, regions, namespaces and their pfn,
 * dax and btt personalities; libdaxctl names a devdax namespace's character
 * device.  Physical resources are readable by root only; without them the
 * region lists cannot be translated, and callers are told so (PH_UNKNOWN),
 * not given a guess.
 *
 * Whether a bus can clear poison is probed, never read off a kernel version:
 * its firmware's commands (ARS_CAP and CLEAR_ERROR) say so for NFIT, papr_scm
 * and CXL; a bus driver without firmware (virtio-pmem, legacy e820) makes
 * the kernel clear on every write (ph_bus_can_clear).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <daxctl/libdaxctl.h>
#include <ndctl/libndctl.h>
#include <linux/ndctl.h>

#include "topology.h"

_public_ const char *ph_ns_mode_to_string(enum ph_ns_mode m)
{
	static const char *const names[] = {
		[PH_NS_RAW] = "raw",       [PH_NS_SECTOR] = "sector", [PH_NS_FSDAX] = "fsdax",
		[PH_NS_DEVDAX] = "devdax", [PH_NS_UNKNOWN] = "unknown",
	};

	return m < ELEMENTSOF(names) ? names[m] : "unknown";
}

/*
 * The kernel clears poison on a write when the bus driver has no firmware
 * to ask (nvdimm_clear_poison() then has nothing to call and succeeds) or
 * when the firmware implements CLEAR_ERROR.  Which drivers have firmware is
 * a property of the driver, named by its provider string; an unknown
 * provider is assumed unable to clear, the safe side: pmemheal then never
 * frees a poisoned block on it.
 */
_public_ bool ph_bus_can_clear(const char *provider, bool has_clear_error, const char **ret_reason)
{
	static const char *const no_firmware[] = { "virtio-pmem", "virtio_pmem", "e820", "of_pmem" };
	static const char *const firmware[] = { "ACPI.NFIT", "papr_scm", "CXL", "cxl" };
	const char *reason = "unknown provider: assumed unable to clear poison";
	bool can = false;

	for (size_t i = 0; provider && i < ELEMENTSOF(no_firmware); i++)
		if (strcmp(provider, no_firmware[i]) == 0) {
			can = true;
			reason = "no firmware: the kernel clears poison on write";
		}
	for (size_t i = 0; provider && i < ELEMENTSOF(firmware); i++)
		if (strcmp(provider, firmware[i]) == 0)
			reason = "firmware without CLEAR_ERROR: writes over poison fail";
	if (has_clear_error) {
		can = true;
		reason = "firmware supports CLEAR_ERROR";
	}
	if (ret_reason)
		*ret_reason = reason;
	return can;
}

_public_ int ph_topology_new(struct ph_topology **ret)
{
	struct ph_topology *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

_public_ struct ph_topology *ph_topology_free(struct ph_topology *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n_buses; i++) {
		free(t->buses[i].name);
		free(t->buses[i].provider);
		free(t->buses[i].clear_reason);
	}
	for (size_t i = 0; i < t->n_regions; i++)
		free(t->regions[i].name);
	for (size_t i = 0; i < t->n_namespaces; i++) {
		struct ph_namespace *ns = &t->namespaces[i];

		free(ns->name);
		free(ns->id);
		free(ns->uuid);
		free(ns->blockdev);
		free(ns->chardev);
		free(ns->last_dev);
	}
	free(t->buses);
	free(t->regions);
	free(t->namespaces);
	free(t);
	return NULL;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

_public_ int ph_topology_add_bus(struct ph_topology *t, const char *name, const char *provider,
				 bool can_clear, const char *clear_reason, bool ars, size_t *ret_index)
{
	struct ph_bus *v = reallocarray(t->buses, t->n_buses + 1, sizeof(*v));
	bool oom = false;

	if (!v)
		return -ENOMEM;
	t->buses = v;
	v[t->n_buses] = (struct ph_bus){
		.name = dup_or_null(name, &oom),
		.provider = dup_or_null(provider ? provider : "unknown", &oom),
		.can_clear = can_clear,
		.clear_reason = dup_or_null(clear_reason, &oom),
		.ars = ars,
	};
	if (oom) {
		free(v[t->n_buses].name);
		free(v[t->n_buses].provider);
		free(v[t->n_buses].clear_reason);
		return -ENOMEM;
	}
	if (ret_index)
		*ret_index = t->n_buses;
	t->n_buses++;
	return 0;
}

_public_ int ph_topology_add_region(struct ph_topology *t, size_t bus, const char *name,
				    uint64_t size, uint64_t resource, size_t *ret_index)
{
	struct ph_region *v;

	if (bus >= t->n_buses || !name)
		return -EINVAL;
	v = reallocarray(t->regions, t->n_regions + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->regions = v;
	v[t->n_regions] = (struct ph_region){ .bus = bus, .size = size, .resource = resource };
	v[t->n_regions].name = strdup(name);
	if (!v[t->n_regions].name)
		return -ENOMEM;
	if (ret_index)
		*ret_index = t->n_regions;
	t->n_regions++;
	return 0;
}

_public_ int ph_topology_add_namespace(struct ph_topology *t, size_t region, const char *name,
				       enum ph_ns_mode mode, const char *uuid, uint64_t size,
				       uint64_t start, const char *blockdev, const char *chardev,
				       size_t *ret_index)
{
	struct ph_namespace *v, *ns;
	bool oom = false;

	if (region >= t->n_regions || !name)
		return -EINVAL;
	v = reallocarray(t->namespaces, t->n_namespaces + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->namespaces = v;
	ns = &v[t->n_namespaces];
	*ns = (struct ph_namespace){
		.region = region,
		.mode = mode,
		.size = size,
		.start = start,
		.data_offset = PH_UNKNOWN,
		.name = dup_or_null(name, &oom),
		.uuid = dup_or_null(uuid, &oom),
		.blockdev = dup_or_null(blockdev, &oom),
		.chardev = dup_or_null(chardev, &oom),
	};
	if (!oom) {
		if (uuid)
			ns->id = strdup(uuid);
		else if (asprintf(&ns->id, "dev:%s", blockdev ? blockdev : chardev ? chardev : name) < 0)
			ns->id = NULL;
		oom = !ns->id;
	}
	if (oom) {
		free(ns->name);
		free(ns->uuid);
		free(ns->blockdev);
		free(ns->chardev);
		free(ns->id);
		return -ENOMEM;
	}
	if (ret_index)
		*ret_index = t->n_namespaces;
	t->n_namespaces++;
	return 0;
}

_public_ int ph_namespace_to_region(const struct ph_topology *t, const struct ph_namespace *ns,
				    uint64_t s, uint64_t *ret)
{
	const struct ph_region *rg = &t->regions[ns->region];

	if (ns->start == PH_UNKNOWN || rg->resource == PH_UNKNOWN || ns->start < rg->resource ||
	    (ns->start - rg->resource) % 512)
		return -ENODATA;
	*ret = s + (ns->start - rg->resource) / 512;
	return 0;
}

_public_ int ph_region_to_namespace(const struct ph_topology *t, const struct ph_namespace *ns,
				    uint64_t s, uint64_t *ret)
{
	uint64_t first;
	int r;

	r = ph_namespace_to_region(t, ns, 0, &first);
	if (r < 0)
		return r;
	if (s < first || s - first >= ns->size / 512)
		return -ERANGE;
	*ret = s - first;
	return 0;
}

/* ---- libndctl --------------------------------------------------------- */

static void ndctl_log_to_ctx(struct ndctl_ctx *nctx, int priority, const char *file, int line,
			     const char *fn, const char *format, va_list args)
{
	struct ph_ctx *ctx = ndctl_get_userdata(nctx);
	_cleanup_free_ char *msg = NULL;

	if (vasprintf(&msg, format, args) < 0)
		return;
	if (msg[0] && msg[strlen(msg) - 1] == '\n')
		msg[strlen(msg) - 1] = '\0';
	ph_log(ctx, priority, "libndctl: %s", msg);
}

/* libndctl (and the libdaxctl context it owns) logs its life at info:
 * "context ... released" on every enumeration.  Only a debugging ctx wants
 * that; otherwise the libraries say what is wrong (notice and worse). */
static void ndctl_logging(struct ndctl_ctx *nctx, struct ph_ctx *ctx)
{
	int p = ph_ctx_get_log_priority(ctx);

	ndctl_set_userdata(nctx, ctx);
	ndctl_set_log_fn(nctx, ndctl_log_to_ctx);
	ndctl_set_log_priority(nctx, p >= LOG_DEBUG ? LOG_DEBUG : p < LOG_NOTICE ? p : LOG_NOTICE);
}

static char *uuid_string(const unsigned char uu[16])
{
	static const unsigned char zero[16];
	char *s;

	if (memcmp(uu, zero, 16) == 0)
		return NULL;
	s = malloc(37);
	if (!s)
		return NULL;
	snprintf(s, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 uu[0], uu[1], uu[2], uu[3], uu[4], uu[5], uu[6], uu[7], uu[8], uu[9], uu[10],
		 uu[11], uu[12], uu[13], uu[14], uu[15]);
	return s;
}

static uint64_t known(unsigned long long v)
{
	return v == ULLONG_MAX || v == 0 ? PH_UNKNOWN : (uint64_t)v;
}

static int load_namespace(struct ph_topology *t, size_t region, struct ndctl_namespace *ndns)
{
	struct ndctl_pfn *pfn = ndctl_namespace_get_pfn(ndns);
	struct ndctl_dax *dax = ndctl_namespace_get_dax(ndns);
	struct ndctl_btt *btt = ndctl_namespace_get_btt(ndns);
	_cleanup_free_ char *uuid = NULL;
	unsigned char uu[16];
	enum ph_ns_mode mode;
	const char *blockdev = NULL, *chardev = NULL;
	uint64_t size, start, ns_start;
	size_t i;
	int r;

	ndctl_namespace_get_uuid(ndns, uu);
	uuid = uuid_string(uu);
	size = ndctl_namespace_get_size(ndns);
	start = ns_start = known(ndctl_namespace_get_resource(ndns));
	if (pfn) {
		mode = PH_NS_FSDAX;
		if (!uuid) {
			ndctl_pfn_get_uuid(pfn, uu);
			uuid = uuid_string(uu);
		}
		blockdev = ndctl_pfn_get_block_device(pfn);
		size = ndctl_pfn_get_size(pfn);
		start = known(ndctl_pfn_get_resource(pfn));
	} else if (dax) {
		struct daxctl_region *dr = ndctl_dax_get_daxctl_region(dax);
		struct daxctl_dev *dev;

		mode = PH_NS_DEVDAX;
		if (!uuid) {
			ndctl_dax_get_uuid(dax, uu);
			uuid = uuid_string(uu);
		}
		size = ndctl_dax_get_size(dax);
		start = known(ndctl_dax_get_resource(dax));
		if (dr)
			daxctl_dev_foreach(dr, dev)
				if (!chardev)
					chardev = daxctl_dev_get_devname(dev);
	} else if (btt) {
		mode = PH_NS_SECTOR;
		if (!uuid) {
			ndctl_btt_get_uuid(btt, uu);
			uuid = uuid_string(uu);
		}
		blockdev = ndctl_btt_get_block_device(btt);
		/* A BTT remaps sectors: device sectors do not translate to
		 * physical addresses. */
		start = PH_UNKNOWN;
	} else {
		mode = ndctl_namespace_get_mode(ndns) == NDCTL_NS_MODE_RAW ? PH_NS_RAW : PH_NS_UNKNOWN;
		blockdev = ndctl_namespace_get_block_device(ndns);
	}
	if (blockdev && !*blockdev)
		blockdev = NULL;
	r = ph_topology_add_namespace(t, region, ndctl_namespace_get_devname(ndns), mode, uuid, size,
				      start, blockdev, chardev, &i);
	if (r == 0 && start != PH_UNKNOWN && ns_start != PH_UNKNOWN && start >= ns_start)
		t->namespaces[i].data_offset = start - ns_start;
	return r;
}

_public_ int ph_topology_load(struct ph_ctx *ctx, struct ph_topology **ret)
{
	_cleanup_(ph_topology_freep) struct ph_topology *t = NULL;
	struct ndctl_ctx *nctx = NULL;
	struct ndctl_bus *bus;
	int r;

	r = ph_topology_new(&t);
	if (r < 0)
		return r;
	r = ndctl_new(&nctx);
	if (r < 0) {
		ph_err(ctx, "Cannot initialize libndctl: %s", strerror(-r));
		return r;
	}
	ndctl_logging(nctx, ctx);

	ndctl_bus_foreach(nctx, bus) {
		struct ndctl_region *region;
		const char *reason;
		bool clear_cmd, can;
		size_t bi;

		clear_cmd = ndctl_bus_is_cmd_supported(bus, ND_CMD_CLEAR_ERROR) &&
			    ndctl_bus_is_cmd_supported(bus, ND_CMD_ARS_CAP);
		can = ph_bus_can_clear(ndctl_bus_get_provider(bus), clear_cmd, &reason);
		r = ph_topology_add_bus(t, ndctl_bus_get_devname(bus), ndctl_bus_get_provider(bus), can,
					reason, ndctl_bus_is_cmd_supported(bus, ND_CMD_ARS_START), NULL);
		if (r < 0)
			goto out;

		bi = t->n_buses - 1;
		t->buses[bi].clear_error_cmd = clear_cmd;
		ndctl_region_foreach(bus, region) {
			struct ndctl_namespace *ndns;
			size_t ri;

			r = ph_topology_add_region(t, bi, ndctl_region_get_devname(region),
						   ndctl_region_get_size(region),
						   known(ndctl_region_get_resource(region)), &ri);
			if (r < 0)
				goto out;
			ndctl_namespace_foreach(region, ndns) {
				/* Idle seed namespaces have no size and no device. */
				if (!ndctl_namespace_is_active(ndns) || ndctl_namespace_get_size(ndns) == 0)
					continue;
				r = load_namespace(t, ri, ndns);
				if (r < 0)
					goto out;
			}
		}
	}
	*ret = TAKE_PTR(t);
	r = 0;
out:
	ndctl_unref(nctx);
	return r;
}

_public_ int ph_bus_clear_error(struct ph_ctx *ctx, const char *bus_name, uint64_t phys, uint64_t len,
				uint64_t *ret_cleared)
{
	struct ndctl_ctx *nctx = NULL;
	struct ndctl_cmd *cap = NULL, *clr = NULL;
	struct ndctl_bus *bus, *found = NULL;
	uint64_t unit, start, end;
	int r;

	r = ndctl_new(&nctx);
	if (r < 0)
		return r;
	ndctl_logging(nctx, ctx);
	ndctl_bus_foreach(nctx, bus)
		if (strcmp(ndctl_bus_get_devname(bus), bus_name) == 0)
			found = bus;
	if (!found) {
		r = -ENODEV;
		goto out;
	}
	if (!ndctl_bus_is_cmd_supported(found, ND_CMD_ARS_CAP) ||
	    !ndctl_bus_is_cmd_supported(found, ND_CMD_CLEAR_ERROR)) {
		r = -EOPNOTSUPP;
		goto out;
	}
	cap = ndctl_bus_cmd_new_ars_cap(found, phys, len);
	if (!cap) {
		r = -ENOMEM;
		goto out;
	}
	r = ndctl_cmd_submit_xlat(cap);
	if (r < 0) {
		ph_err(ctx, "%s: ARS_CAP for 0x%" PRIx64 "+%" PRIu64 " failed: %s", bus_name, phys, len, strerror(-r));
		goto out;
	}
	unit = ndctl_cmd_ars_cap_get_clear_unit(cap);
	if (unit == 0 || (unit & (unit - 1)))
		unit = 512; /* firmware that does not say: the sector */
	start = phys / unit * unit;
	end = (phys + len + unit - 1) / unit * unit;
	clr = ndctl_bus_cmd_new_clear_error(start, end - start, cap);
	if (!clr) {
		r = -ENOMEM;
		goto out;
	}
	r = ndctl_cmd_submit_xlat(clr);
	if (r < 0) {
		ph_err(ctx, "%s: CLEAR_ERROR for 0x%" PRIx64 "+%" PRIu64 " failed: %s", bus_name, start, end - start,
		       strerror(-r));
		goto out;
	}
	*ret_cleared = ndctl_cmd_clear_error_get_cleared(clr);
	r = 0;
out:
	ndctl_cmd_unref(clr);
	ndctl_cmd_unref(cap);
	ndctl_unref(nctx);
	return r;
}

_public_ const struct ph_namespace *ph_topology_find_ns(const struct ph_topology *t, const char *id)
{
	for (size_t i = 0; t && id && i < t->n_namespaces; i++)
		if (strcmp(t->namespaces[i].id, id) == 0)
			return &t->namespaces[i];
	return NULL;
}

_public_ const struct ph_namespace *ph_topology_find_blockdev(const struct ph_topology *t, const char *blockdev)
{
	const struct ph_namespace *found = NULL;

	/* the last one, as pmemheal repair has always picked */
	for (size_t i = 0; t && i < t->n_namespaces; i++)
		if (t->namespaces[i].blockdev && strcmp(t->namespaces[i].blockdev, blockdev) == 0)
			found = &t->namespaces[i];
	return found;
}
