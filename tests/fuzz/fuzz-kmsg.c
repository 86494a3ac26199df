/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Kernel log lines ("Memory failure: 0x<pfn>: ..."), split on newlines
 * as memfail.c splits /dev/kmsg records. */
#include "fuzz.h"
#include "memfail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size), *save = NULL;
	uint64_t pfn;

	(void)ph_memfail_parse(s, &pfn);
	for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		(void)ph_memfail_parse(line, &pfn);
	free(s);
	return 0;
}
