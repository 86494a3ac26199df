/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * STATE_DIR/repair.lock: one repairer at a time (pmemheal repair or
 * pmemheald's worker), and no pmemheal scan writing the ledger meanwhile.
 */
#pragma once

#include <stdint.h>

/* Open (creating it) STATE_DIR/repair.lock; the path is returned too, for
 * messages.  Locking is separate, so a caller can wait its own way. */
int ph_repair_lock_open(const char *state_dir, char **ret_path, int *ret_fd);

/* flock(LOCK_EX) without blocking: 0 when taken, -EWOULDBLOCK when someone
 * else holds it, another -errno on failure. */
int ph_repair_lock_try(int fd);

/* Open and take the lock, retrying for up to wait_usec (0: once).  The
 * lock is held until *ret_fd is closed.  -EWOULDBLOCK when it stayed held. */
int ph_repair_lock_take(const char *state_dir, uint64_t wait_usec, int *ret_fd);
