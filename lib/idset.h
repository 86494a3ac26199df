/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of 64-bit ids (ledger range ids): open addressing with linear
 * probing, kept at most half full, deletion by moving the rest of a probe
 * run back (no tombstones).  Membership costs a few comparisons however
 * many ids there are.  Not thread-safe: the caller locks.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ph_idset_slot {
	int64_t id;
	bool used;
};

struct ph_idset {
	struct ph_idset_slot *v;
	size_t cap; /* 0 or a power of two */
	size_t n;
	uint64_t probes; /* slots compared by lookups so far, for tests */
};

bool ph_idset_contains(struct ph_idset *s, int64_t id);
/* Room for one more id: 0, or -ENOMEM with the set unchanged. */
int ph_idset_reserve(struct ph_idset *s);
/* Add an id that is not in the set, after ph_idset_reserve(). */
void ph_idset_put(struct ph_idset *s, int64_t id);
/* Remove id if present. */
void ph_idset_remove(struct ph_idset *s, int64_t id);
void ph_idset_done(struct ph_idset *s);
