/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The monotonic clock in microseconds, for measuring how long something
 * took and for the mono_usec fields of scan --json.  Wall-clock time for
 * the ledger is ph_now_usec() (ledger.h); this clock is never stored.
 */
#pragma once

#include <stdint.h>

uint64_t ph_mono_usec(void);
