/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --since/--until times and spans (timestamp.c). */
#include "fuzz.h"
#include "timestamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	uint64_t v;

	/* 2026-12-04 10:00 UTC, in microseconds: a fixed "now" so that an
	 * input behaves the same on every run. */
	(void)ph_parse_time(s, UINT64_C(1796378400000000), &v);
	(void)ph_parse_time(s, 0, &v);
	(void)ph_parse_timespan(s, &v);
	free(s);
	return 0;
}
