/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ranges of 512-byte sectors (the unit of the kernel's badblocks lists) and
 * lists of them.  Pure arithmetic and text parsing: no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

#define PH_SECTOR_SIZE 512ULL
#define PH_SECTOR_SHIFT 9

struct ph_range {
	uint64_t start; /* first sector */
	uint64_t count; /* number of sectors, > 0 for a valid range */
};

struct ph_ranges {
	struct ph_range *v;
	size_t n;
	size_t cap;
};

static inline uint64_t ph_range_end(const struct ph_range *r)
{
	return r->start + r->count; /* callers validated no overflow */
}

/* True and *ret set when a and b overlap. */
bool ph_range_intersect(const struct ph_range *a, const struct ph_range *b,
			struct ph_range *ret);
bool ph_range_contains(const struct ph_range *outer, const struct ph_range *inner);

/* Round a byte range outwards to whole units of 'align' bytes (a power of two).
 * Returns -EOVERFLOW if the rounded end does not fit. */
int ph_bytes_to_sectors(uint64_t offset, uint64_t length, struct ph_range *ret);

int ph_ranges_add(struct ph_ranges *l, uint64_t start, uint64_t count);
void ph_ranges_clear(struct ph_ranges *l);
/* Sort by start and merge overlapping or touching ranges. */
void ph_ranges_normalize(struct ph_ranges *l);
/* Remove every sector of r from the (normalized) list. */
int ph_ranges_subtract(struct ph_ranges *l, const struct ph_range *r);
uint64_t ph_ranges_total(const struct ph_ranges *l);

/*
 * Parse an unsigned number: decimal, or hexadecimal with a 0x prefix.  No sign,
 * no spaces, no trailing text.  -EINVAL for malformed text, -ERANGE when it
 * does not fit in 64 bits.
 */
int ph_parse_u64(const char *s, uint64_t *ret);

/*
 * Parse "START[+COUNT]".  COUNT defaults to 1 and must be at least 1; START +
 * COUNT must not overflow.  In byte mode the numbers are bytes and the result
 * is rounded outwards to whole sectors.
 */
int ph_range_parse(const char *text, bool bytes, struct ph_range *ret);

/*
 * Parse text in the format of /sys/block/<dev>/badblocks: one
 * "<sector> <count>" per line.  Blank lines are ignored; anything else that is
 * not two numbers separated by blanks is an error.  On error, returns -EBADMSG
 * (or -ERANGE, -ENOMEM, -EIO) and fills *err with the line number and a short
 * reason when err is not NULL.
 */
struct ph_parse_error {
	unsigned line;
	char reason[96];
};
int ph_badblocks_parse(FILE *f, bool bytes, struct ph_ranges *out, struct ph_parse_error *err);
