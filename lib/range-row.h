/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A ledger range row that owns its strings, for keeping a row past the
 * callback that lent it (ph_ledger_get_range(), a monitor's on_change).
 */
#pragma once

#include "ledger.h"

struct ph_range_row_copy {
	struct ph_range_row row; /* its strings point at the ones below */
	char *ns_id, *device, *origin;
};

/* Copy row, strings included, into *ret; -ENOMEM leaves *ret untouched. */
int ph_range_row_copy(const struct ph_range_row *row, struct ph_range_row_copy *ret);
void ph_range_row_copy_done(struct ph_range_row_copy *c);
