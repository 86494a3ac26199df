/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Copying a ledger range row with its strings (namespace id, device,
 * origin), which the ledger only lends for the length of a callback.  It
 * does not read or write the ledger.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "range-row.h"

_public_ int ph_range_row_copy(const struct ph_range_row *row, struct ph_range_row_copy *ret)
{
	struct ph_range_row_copy c = { .row = *row };

	c.ns_id = row->ns_id ? strdup(row->ns_id) : NULL;
	c.device = row->device ? strdup(row->device) : NULL;
	c.origin = row->origin ? strdup(row->origin) : NULL;
	if ((row->ns_id && !c.ns_id) || (row->device && !c.device) || (row->origin && !c.origin)) {
		ph_range_row_copy_done(&c);
		return -ENOMEM;
	}
	c.row.ns_id = c.ns_id;
	c.row.device = c.device;
	c.row.origin = c.origin;
	*ret = c;
	return 0;
}

_public_ void ph_range_row_copy_done(struct ph_range_row_copy *c)
{
	free(c->ns_id);
	free(c->device);
	free(c->origin);
	c->ns_id = c->device = c->origin = NULL;
}
