/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pages that went through memory_failure() this boot: a machine check
 * consumed or reported poison there, x86 took the page out of the kernel's
 * direct map, and reading any sector of it through the pmem driver (even a
 * good one) oopses the kernel.  Such a page is never read; it is lost as a
 * whole unless a copy exists.
 *
 * The kernel logs "Memory failure: 0x<pfn>: ..." for each: read from the
 * journal's kernel messages of the current boot, else from /dev/kmsg (no
 * journald: an initramfs, a container).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

struct ph_pfns {
	uint64_t *v; /* sorted, unique */
	size_t n;
};

/* What the kernel logged so far, kept current by ph_memfail_follow(). */
struct ph_memfail {
	struct ph_pfns pfns;
	int kmsg_fd; /* /dev/kmsg at its end; <0: read everything next time */
};
#define PH_MEMFAIL_INIT ((struct ph_memfail){ .kmsg_fd = -1 })

int ph_memory_failures(struct ph_ctx *ctx, struct ph_pfns *ret);
/* Keeps m->pfns current: the first call reads everything of this boot, as
 * ph_memory_failures(), and leaves m->kmsg_fd open at the end of
 * /dev/kmsg; later calls add only what the kernel logged since (one read
 * that returns EAGAIN when nothing new), and read everything again when
 * records were overwritten unread or /dev/kmsg cannot be kept.  Reading
 * everything means the whole journal of this boot: whoever asks often (the
 * daemon, once per range and per salvaged page) keeps one follower for
 * its lifetime.  <0: cannot tell (no kernel log). */
int ph_memfail_follow(struct ph_ctx *ctx, struct ph_memfail *m);
void ph_memfail_done(struct ph_memfail *m);
void ph_pfns_done(struct ph_pfns *p);
bool ph_pfns_contains(const struct ph_pfns *p, uint64_t pfn);
/* Parse one kernel message; 1 and *pfn when it reports a memory failure. */
int ph_memfail_parse(const char *msg, uint64_t *ret_pfn);
