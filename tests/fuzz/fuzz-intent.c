/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The intent log's plan (JSON in the ledger, read back on resume), through
 * the repairer's own reader, job_from_json() (lib/repair-job.c). */
#include "../../lib/repair-internal.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pages[8][PH_PAGE_SIZE];
	char *s = fuzz_strndup(data, size), *why = NULL;
	struct ph_intent it = { .plan = s, .content = pages, .content_len = PH_PAGE_SIZE };
	struct json_object *o = json_tokener_parse(s), *v;
	struct job j;

	/* the intent row agrees with its plan's range and page, as the
	 * ledger's own rows do, so that the fuzzer gets past that check */
	if (o && json_object_is_type(o, json_type_object)) {
		if (json_object_object_get_ex(o, "range_id", &v))
			it.range_id = json_object_get_int64(v);
		if (json_object_object_get_ex(o, "page", &v))
			it.page = (uint64_t)json_object_get_int64(v);
		/* and has a page per slot, when there are few enough */
		if (json_object_object_get_ex(o, "slots", &v) && json_object_get_int64(v) > 1 &&
		    json_object_get_int64(v) <= 8)
			it.content_len = (size_t)json_object_get_int64(v) * PH_PAGE_SIZE;
	}
	json_object_put(o);
	if (job_from_json(&it, &j, &why) == 0) {
		/* What resume does next: write it back as the next step's plan. */
		struct json_object *out = job_to_json(&j);

		(void)json_object_to_json_string(out);
		json_object_put(out);
		job_done(&j);
	}
	free(why);
	free(s);
	return 0;
}
