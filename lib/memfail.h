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

int ph_memory_failures(struct ph_ctx *ctx, struct ph_pfns *ret);
/* Keeps *p current: the first call (*kmsg_fd < 0) reads everything of
 * this boot, as ph_memory_failures(), and leaves *kmsg_fd open at the end
 * of /dev/kmsg; later calls add only what the kernel logged since (one
 * read that returns EAGAIN when nothing new), and read everything again
 * when records were overwritten unread or /dev/kmsg cannot be kept.  The
 * caller closes *kmsg_fd.  <0: cannot tell (no kernel log). */
int ph_memfail_follow(struct ph_ctx *ctx, struct ph_pfns *p, int *kmsg_fd);
void ph_pfns_done(struct ph_pfns *p);
bool ph_pfns_contains(const struct ph_pfns *p, uint64_t pfn);
/* Parse one kernel message; 1 and *pfn when it reports a memory failure. */
int ph_memfail_parse(const char *msg, uint64_t *ret_pfn);
