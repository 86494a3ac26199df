/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The badblocks-file parser (/sys/block/<dev>/badblocks, region lists):
 * sector mode, then byte mode, then what the ledger does with the list. */
#include <stdio.h>

#include "fuzz.h"
#include "range.h"

static void parse(const uint8_t *data, size_t size, bool bytes)
{
	struct ph_ranges l = { 0 };
	struct ph_parse_error err;
	FILE *f = fmemopen((void *)data, size, "r");

	if (!f)
		return; /* size 0 on an old libc */
	if (ph_badblocks_parse(f, bytes, &l, &err) == 0) {
		struct ph_range first;

		ph_ranges_normalize(&l);
		(void)ph_ranges_total(&l);
		if (l.n > 0) {
			first = l.v[0];
			(void)ph_ranges_subtract(&l, &first);
		}
	}
	ph_ranges_clear(&l);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse(data, size, false);
	parse(data, size, true);
	return 0;
}
