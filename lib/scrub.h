/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scheduled Address Range Scrubs.  On NFIT buses whose firmware implements
 * ARS, a scrub makes the platform look for poison nobody has touched yet;
 * the kernel adds what it finds to the badblocks lists and wakes their
 * POLLPRI watchers, so results arrive through the sources like any other
 * poison.  This only starts scrubs: it never waits for one.
 *
 * Which buses can scrub is probed (ND_CMD_ARS_START in the bus's command
 * mask, struct ph_bus.ars), never assumed: virtio-pmem and e820 have no
 * firmware, and QEMU's NVDIMM advertises no bus commands at all.
 */
#pragma once

#include "ctx.h"

/* Start a scrub on bus ("ndbus0").  -EBUSY when one is running already,
 * -EOPNOTSUPP when the bus cannot scrub, -ENODEV when it has gone. */
int ph_scrub_start(struct ph_ctx *ctx, const char *bus);
