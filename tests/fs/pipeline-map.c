/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Maps a range of a real block device the way `pmemheal scan` does
 * (ph_pipeline_map_range(), no ledger, no journal) and the way `status -v`
 * does (ph_pipeline_map()), and prints what the results say after the
 * call returned: each owner's type and paths, and the scan's summary.  The
 * results point into the mapper; reading them after it is gone is what a
 * sanitizer build of this driver catches.
 *
 *   pipeline-map DEV SECTOR COUNT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "mapper-json.h"
#include "mapper.h"
#include "pipeline.h"

static void print_owners(const char *how, const struct ph_map_result *res)
{
	for (size_t i = 0; i < res->n_owners; i++) {
		const struct ph_owner *o = &res->owners[i];

		printf("%s: %s", how, ph_owner_type_to_string(o->type));
		for (size_t p = 0; p < o->n_paths; p++)
			printf(" %s", o->paths[p]);
		printf("%s%s\n", o->what ? " " : "", o->what ? o->what : "");
	}
	/* every field, as the CLI prints them */
	for (size_t i = 0; i < res->n_owners; i++) {
		struct json_object *j = NULL;

		if (ph_owner_to_json(&res->owners[i], &j) == 0)
			printf("%s json: %s\n", how, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	}
}

int main(int argc, char **argv)
{
	struct ph_ctx *ctx = NULL;
	struct ph_namespace ns = { .name = "test", .id = "test", .start = PH_UNKNOWN };
	struct ph_range_row row = { .id = 1, .ns_id = "test", .state = PH_STATE_NEW };
	struct ph_map_result *res = NULL;
	struct ph_mapper *m = NULL;
	struct ph_error err = { { 0 } };
	struct ph_range q;
	enum ph_state state;
	char *summary = NULL;
	int r;

	if (argc != 4 || strncmp(argv[1], "/dev/", 5) != 0) {
		fprintf(stderr, "usage: %s /dev/DEV SECTOR COUNT\n", argv[0]);
		return 2;
	}
	ns.blockdev = argv[1] + 5;
	row.device = ns.blockdev;
	row.start = strtoull(argv[2], NULL, 10);
	row.count = strtoull(argv[3], NULL, 10);
	if (ph_ctx_new(&ctx) < 0)
		return 2;
	r = ph_pipeline_map_range(ctx, NULL, NULL, &ns, &row, &m, &res, &state, &summary, &err);
	if (r < 0) {
		fprintf(stderr, "ph_pipeline_map_range: %s\n", err.message[0] ? err.message : strerror(-r));
		return 1;
	}
	print_owners("scan", &res[0]);
	printf("summary: %s\n", summary);
	ph_map_results_free(res, 1);
	ph_mapper_free(m);
	free(summary);

	q = (struct ph_range){ row.start, row.count };
	r = ph_pipeline_map(ctx, &ns, &q, 1, &m, &res, &err);
	if (r < 0) {
		fprintf(stderr, "ph_pipeline_map: %s\n", err.message[0] ? err.message : strerror(-r));
		return 1;
	}
	print_owners("status", &res[0]);
	ph_map_results_free(res, 1);
	ph_mapper_free(m);
	ph_ctx_unref(ctx);
	return 0;
}
