/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One fuzz harness per parser of outside input.  Each defines
 * LLVMFuzzerTestOneInput(); the same source is linked either with libFuzzer
 * (clang -fsanitize=fuzzer, `make fuzz`) or with replay.c, a plain driver
 * that feeds it the seed corpus and every past crash (`make check`).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (cut at its first NUL, as any text reader would). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The part of the input after its first NUL, or NULL: harnesses that take
 * two texts (a pattern and a path, a rule and a configuration) split there. */
static inline const char *fuzz_second(const char *s, size_t size)
{
	size_t n = strlen(s);

	return n < size ? s + n + 1 : NULL;
}
