/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Ranges and numbers on the command line: "START[+COUNT]", in sectors and
 * in bytes, and bare numbers. */
#include "fuzz.h"
#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	struct ph_range r;
	uint64_t v;

	if (ph_range_parse(s, false, &r) == 0 && (r.count == 0 || r.start + r.count < r.start))
		abort(); /* the documented contract: COUNT >= 1, no overflow */
	if (ph_range_parse(s, true, &r) == 0 && (r.count == 0 || r.start + r.count < r.start))
		abort();
	(void)ph_parse_u64(s, &v);
	free(s);
	return 0;
}
