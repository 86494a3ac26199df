/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Path= globs: the input is PATTERN, a NUL, then PATH.  A pattern that
 * ph_glob_check() refuses is never matched (the loader rejects it first). */
#include "fuzz.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	const char *path = fuzz_second(s, size), *reason;

	if (ph_glob_check(s, &reason) == 0) {
		(void)ph_glob_match(s, path ? path : "/srv/db/a.dat");
		(void)ph_glob_match(s, s);
	}
	free(s);
	return 0;
}
