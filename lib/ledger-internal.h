/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the ledger's files share (not installed): the connection, its
 * statement cache, and the SQL helpers that turn sqlite codes into -errno.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ledger.h"
#include "range.h"

/* Compiled statements kept for reuse, per connection (see prepare()). */
#define STMT_CACHE_SIZE 24

struct ph_ledger {
	struct ph_ctx *ctx;
	sqlite3 *db;
	char *path;
	char *moved_aside;
	bool readonly;
	sqlite3_stmt *idle[STMT_CACHE_SIZE]; /* reset, unbound, not in use */
};

bool terminal(enum ph_state s);
int sql_errno(int rc);
int exec(struct ph_ledger *l, const char *sql);
int prepare(struct ph_ledger *l, sqlite3_stmt **st, const char *sql);
void unprepare(struct ph_ledger *l, sqlite3_stmt *st);
int step_done(struct ph_ledger *l, sqlite3_stmt *st);
