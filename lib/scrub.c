/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Starting an ARS scrub through libndctl: find the bus by name, check its
 * command mask and the scrub state, write the scrub attribute.
 */
#include <errno.h>
#include <linux/ndctl.h>
#include <ndctl/libndctl.h>
#include <string.h>

#include "scrub.h"

_public_ int ph_scrub_start(struct ph_ctx *ctx, const char *name)
{
	struct ndctl_ctx *nctx = NULL;
	struct ndctl_bus *bus, *found = NULL;
	int r;

	r = ndctl_new(&nctx);
	if (r < 0)
		return r;
	ndctl_bus_foreach(nctx, bus)
		if (strcmp(ndctl_bus_get_devname(bus), name) == 0)
			found = bus;
	if (!found)
		r = -ENODEV;
	else if (!ndctl_bus_is_cmd_supported(found, ND_CMD_ARS_START))
		r = -EOPNOTSUPP;
	else if (ndctl_bus_get_scrub_state(found) > 0)
		r = -EBUSY;
	else {
		r = ndctl_bus_start_scrub(found);
		if (r >= 0)
			ph_dbg(ctx, "Started an address range scrub on %s", name);
	}
	ndctl_unref(nctx);
	return r < 0 ? r : 0;
}
