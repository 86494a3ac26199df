/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/self/mountinfo lines, through blkdev.c's own line parser (static,
 * so the file is compiled in here), as ph_mountinfo_find() reads them. */
#include "../../lib/blkdev.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size), *save = NULL;

	for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct ph_mount *m = NULL;

		if (parse_mountinfo_line(line, &m) == 0 &&
		    (!m->root || !m->mountpoint || !m->fstype || !m->source))
			abort();
		ph_mount_free(m);
	}
	free(s);
	return 0;
}
