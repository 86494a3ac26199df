/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker's set of queued range ids.  A rescan (at start, on SIGHUP)
 * queues every listed range again, so "is it queued already" must not walk
 * the queue: with 10^5 ranges that was 10^10 comparisons in the event loop.
 */
#include <errno.h>
#include <stdlib.h>

#include "idset.h"

static size_t slot_of(int64_t id, size_t cap)
{
	uint64_t x = (uint64_t)id;

	/* splitmix64's finalizer: sequential ids land far apart */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return (size_t)x & (cap - 1);
}

bool ph_idset_contains(struct ph_idset *s, int64_t id)
{
	if (s->cap == 0)
		return false;
	for (size_t i = slot_of(id, s->cap); s->v[i].used; i = (i + 1) & (s->cap - 1)) {
		s->probes++;
		if (s->v[i].id == id)
			return true;
	}
	return false;
}

void ph_idset_put(struct ph_idset *s, int64_t id)
{
	size_t i = slot_of(id, s->cap);

	while (s->v[i].used)
		i = (i + 1) & (s->cap - 1);
	s->v[i] = (struct ph_idset_slot){ .id = id, .used = true };
	s->n++;
}

int ph_idset_reserve(struct ph_idset *s)
{
	struct ph_idset bigger;

	if ((s->n + 1) * 2 <= s->cap)
		return 0;
	if (s->cap > SIZE_MAX / 2 / sizeof(*s->v))
		return -ENOMEM;
	bigger = (struct ph_idset){ .cap = s->cap ? s->cap * 2 : 64, .probes = s->probes };
	bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i].used)
			ph_idset_put(&bigger, s->v[i].id);
	free(s->v);
	*s = bigger;
	return 0;
}

void ph_idset_remove(struct ph_idset *s, int64_t id)
{
	size_t mask = s->cap - 1, i, j;

	if (s->cap == 0)
		return;
	for (i = slot_of(id, s->cap); s->v[i].used && s->v[i].id != id; i = (i + 1) & mask)
		;
	if (!s->v[i].used)
		return;
	/* Close the hole at i: an entry further on in the run moves back into
	 * it unless its home slot lies cyclically in (i, j], where it must
	 * stay behind i to be found. */
	for (j = (i + 1) & mask; s->v[j].used; j = (j + 1) & mask) {
		size_t home = slot_of(s->v[j].id, s->cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->v[i] = s->v[j];
			i = j;
		}
	}
	s->v[i].used = false;
	s->n--;
}

void ph_idset_done(struct ph_idset *s)
{
	free(s->v);
	*s = (struct ph_idset){ 0 };
}
