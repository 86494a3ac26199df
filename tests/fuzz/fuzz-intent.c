/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The intent log's plan (JSON in the ledger, read back on resume), through
 * repair.c's own reader (static, so the file is compiled in here). */
#include "../../lib/repair.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	struct job j;

	if (job_from_json(s, &j) == 0) {
		/* What resume does next: write it back as the next step's plan. */
		struct json_object *o = job_to_json(&j);

		(void)json_object_to_json_string(o);
		json_object_put(o);
		job_done(&j);
	}
	free(s);
	return 0;
}
