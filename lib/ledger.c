/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ledger on SQLite: every poisoned range ever seen, its state, and the
 * intent log, in STATE_DIR/ledger.db.  WAL with synchronous=FULL, so a
 * committed change survives a crash or power loss; the schema is versioned
 * with PRAGMA user_version.  This file opens (checking, migrating or moving a
 * damaged database aside), keeps compiled statements, reads rows and moves a
 * row's state.  The scan's diff is ledger-diff.c, the intent log
 * ledger-intent.c.
 *
 * Writers, and why they do not corrupt each other's view:
 *   - pmemheald's event loop (its own connection): the diff of each scan;
 *   - pmemheald's worker thread (its own connection): range states and the
 *     intent log, while it holds STATE_DIR/repair.lock;
 *   - pmemheal repair and pmemheal scan: the same, under repair.lock (so
 *     never at the same time as the worker's repairs).
 * Every write is one BEGIN IMMEDIATE transaction (the first writer waits for
 * the other, 5 s busy timeout); a state is read and moved in the same
 * transaction, so of two writers the first to move a row wins.  The diff
 * never touches a range in 'repairing': that range is its repairer's until
 * it is settled.
 */
#include "ledger-internal.h"

#define SCHEMA_VERSION 3

static const char *const schema_v1 =
	"CREATE TABLE ranges ("
	"  id INTEGER PRIMARY KEY,"
	"  ns_id TEXT NOT NULL,"
	"  start INTEGER NOT NULL,"
	"  count INTEGER NOT NULL CHECK (count > 0),"
	"  device TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('new','mapped','planned','repairing','repaired',"
	"                                       'cleared','pinned','failed','lost')),"
	"  origin TEXT NOT NULL,"
	"  in_kernel INTEGER NOT NULL DEFAULT 1,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  last_boot TEXT,"
	"  UNIQUE (ns_id, start));"
	"CREATE TABLE history ("
	"  id INTEGER PRIMARY KEY,"
	"  range_id INTEGER NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  state TEXT,"
	"  detail TEXT);"
	"CREATE INDEX history_range ON history (range_id);";

/* Version 2: the repairer's intent log.  A row is written, with the
 * repaired page's bytes, before the first step that changes data; 'step'
 * is the next step to run and moves forward only after a step succeeded,
 * so a restart re-runs at most one (idempotent) step. */
static const char *const schema_v2 =
	"CREATE TABLE intents ("
	"  id INTEGER PRIMARY KEY,"
	"  range_id INTEGER NOT NULL,"
	"  page INTEGER NOT NULL,"
	"  plan TEXT NOT NULL,"
	"  content BLOB,"
	"  step INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL CHECK (state IN ('running','done','aborted','failed')),"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  detail TEXT);"
	"CREATE INDEX intents_state ON intents (state);";

/* Version 3: no history table.  Versions 1 and 2 kept one row per state
 * move and repair step, which nothing read; the journal is the audit
 * trail (pmemheal history).  Ranges and intents are kept as they are. */
static const char *const schema_v3 =
	"DROP INDEX IF EXISTS history_range;"
	"DROP TABLE IF EXISTS history;";


static const char *const state_names[_PH_STATE_MAX] = {
	[PH_STATE_NEW] = "new",           [PH_STATE_MAPPED] = "mapped",
	[PH_STATE_PLANNED] = "planned",   [PH_STATE_REPAIRING] = "repairing",
	[PH_STATE_REPAIRED] = "repaired", [PH_STATE_CLEARED] = "cleared",
	[PH_STATE_PINNED] = "pinned",     [PH_STATE_FAILED] = "failed",
	[PH_STATE_LOST] = "lost",
};

_public_ const char *ph_state_to_string(enum ph_state s)
{
	return s < _PH_STATE_MAX ? state_names[s] : "?";
}

_public_ int ph_state_from_string(const char *s, enum ph_state *ret)
{
	for (int i = 0; i < _PH_STATE_MAX; i++)
		if (s && strcmp(s, state_names[i]) == 0) {
			*ret = (enum ph_state)i;
			return 0;
		}
	return -EINVAL;
}

bool terminal(enum ph_state s)
{
	return s == PH_STATE_REPAIRED || s == PH_STATE_CLEARED || s == PH_STATE_LOST;
}

_public_ bool ph_state_transition_ok(enum ph_state from, enum ph_state to)
{
	/* new -> mapped -> planned -> repairing -> repaired|cleared|pinned|failed|lost,
	 * with re-planning, retrying and resuming; anything may become cleared
	 * when the kernel drops it, and anything healed may become new again. */
	static const unsigned allowed[_PH_STATE_MAX] = {
		[PH_STATE_NEW] = 1u << PH_STATE_MAPPED | 1u << PH_STATE_LOST,
		[PH_STATE_MAPPED] = 1u << PH_STATE_MAPPED | 1u << PH_STATE_PLANNED | 1u << PH_STATE_LOST,
		[PH_STATE_PLANNED] = 1u << PH_STATE_MAPPED | 1u << PH_STATE_PLANNED | 1u << PH_STATE_REPAIRING,
		[PH_STATE_REPAIRING] = 1u << PH_STATE_REPAIRING | 1u << PH_STATE_REPAIRED |
				       1u << PH_STATE_PINNED | 1u << PH_STATE_FAILED | 1u << PH_STATE_LOST,
		[PH_STATE_REPAIRED] = 0,
		[PH_STATE_CLEARED] = 0,
		[PH_STATE_PINNED] = 1u << PH_STATE_REPAIRING,
		[PH_STATE_FAILED] = 1u << PH_STATE_MAPPED | 1u << PH_STATE_PLANNED | 1u << PH_STATE_LOST,
		[PH_STATE_LOST] = 0,
	};

	if (from >= _PH_STATE_MAX || to >= _PH_STATE_MAX)
		return false;
	if (to == PH_STATE_CLEARED)
		return !terminal(from) || from == PH_STATE_CLEARED;
	if (to == PH_STATE_NEW)
		return terminal(from) || from == PH_STATE_PINNED;
	return allowed[from] & (1u << to);
}

_public_ const char *ph_change_type_to_string(enum ph_change_type t)
{
	static const char *const names[] = {
		[PH_CHANGE_NEW] = "new",           [PH_CHANGE_GROWN] = "grown",
		[PH_CHANGE_SHRUNK] = "shrunk",     [PH_CHANGE_CLEARED] = "cleared",
		[PH_CHANGE_FORGOTTEN] = "forgotten", [PH_CHANGE_RELISTED] = "relisted",
	};

	return t < ELEMENTSOF(names) ? names[t] : "?";
}

_public_ uint64_t ph_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

_public_ int ph_read_boot_id(struct ph_ctx *ctx, char **ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	char buf[64];
	size_t n;
	int r;

	r = ph_ctx_path(ctx, "/proc/sys/kernel/random/boot_id", &path);
	if (r < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return negative_errno();
	if (!fgets(buf, sizeof(buf), f))
		return -EBADMSG;
	n = strcspn(buf, "\n");
	buf[n] = '\0';
	if (n < 8)
		return -EBADMSG;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* sqlite result codes to -errno, at the boundary */
int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_IOERR:
	default:
		return -EIO;
	}
}

/* The same for an error on the database: an open or a read that failed
 * in the OS says why (ENOSPC, EACCES, EROFS, EIO), which sqlite's own
 * codes blur ("disk I/O error", "unable to open").  Damage stays
 * -EBADMSG: only that moves a ledger aside. */
static int db_errno(sqlite3 *db, int rc)
{
	int r = sql_errno(rc), e;

	if (!db || r == 0 || r == -EBADMSG)
		return r;
	switch (rc & 0xff) {
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_PERM:
		e = sqlite3_system_errno(db);
		if (e > 0 && e != EBADMSG)
			return -e;
		break;
	}
	return r;
}

int exec(struct ph_ledger *l, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(l->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		ph_err(l->ctx, "%s: %s", l->path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
	}
	return db_errno(l->db, rc);
}

/*
 * prepare() and unprepare() bracket every use of a statement.  Compiling
 * SQL costs far more than running these statements, and the ledger runs
 * the same few on every scan, range and page: a statement given back is
 * kept (reset, bindings cleared) and handed out again for the same SQL.
 * One holder at a time: while a statement is out, asking for the same SQL
 * (a callback that reads the ledger inside a loop over it) compiles
 * another, which is kept or finalized when given back.
 */
int prepare(struct ph_ledger *l, sqlite3_stmt **st, const char *sql)
{
	int rc;

	for (size_t i = 0; i < ELEMENTSOF(l->idle); i++)
		if (l->idle[i] && strcmp(sqlite3_sql(l->idle[i]), sql) == 0) {
			*st = TAKE_PTR(l->idle[i]);
			return 0;
		}
	rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK)
		ph_err(l->ctx, "%s: %s", l->path, sqlite3_errmsg(l->db));
	return db_errno(l->db, rc);
}

void unprepare(struct ph_ledger *l, sqlite3_stmt *st)
{
	if (!st)
		return;
	(void)sqlite3_reset(st); /* its error was the last step's, seen there */
	(void)sqlite3_clear_bindings(st);
	for (size_t i = 0; i < ELEMENTSOF(l->idle); i++)
		if (!l->idle[i]) {
			l->idle[i] = st;
			return;
		}
	sqlite3_finalize(st);
}

/* Before the connection closes: a kept statement belongs to it. */
static void drop_statements(struct ph_ledger *l)
{
	for (size_t i = 0; i < ELEMENTSOF(l->idle); i++)
		sqlite3_finalize(TAKE_PTR(l->idle[i]));
}

int step_done(struct ph_ledger *l, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ph_err(l->ctx, "%s: %s", l->path, sqlite3_errmsg(l->db));
	return db_errno(l->db, rc);
}

_public_ struct ph_ledger *ph_ledger_free(struct ph_ledger *l)
{
	if (!l)
		return NULL;
	drop_statements(l);
	sqlite3_close_v2(l->db);
	ph_ctx_unref(l->ctx);
	free(l->path);
	free(l->moved_aside);
	free(l);
	return NULL;
}

_public_ const char *ph_ledger_get_path(const struct ph_ledger *l)
{
	return l->path;
}

_public_ const char *ph_ledger_get_moved_aside(const struct ph_ledger *l)
{
	return l->moved_aside;
}

/* Open the file and make sure it is a sound ledger of a version we know. */
/* Create the schema, or migrate it step by step from version, in one
 * transaction: all of it or nothing. */
static int migrate(struct ph_ledger *l, int version, struct ph_error *err)
{
	static const char *const steps[] = { schema_v1, schema_v2, schema_v3 };
	char pragma[64];
	int r;

	_Static_assert(ELEMENTSOF(steps) == SCHEMA_VERSION, "one step per version");
	r = exec(l, "BEGIN IMMEDIATE");
	for (int v = version; r == 0 && v < SCHEMA_VERSION; v++)
		r = exec(l, steps[v]);
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (r == 0)
		r = exec(l, pragma);
	if (r == 0)
		r = exec(l, "COMMIT");
	if (r < 0) {
		(void)sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		ph_error_set(err, "%s: cannot %s the schema: %s", l->path, version ? "migrate" : "create",
			     sqlite3_errmsg(l->db));
		return r;
	}
	if (version > 0)
		ph_info(l->ctx, "%s: migrated from schema %d to %d", l->path, version, SCHEMA_VERSION);
	return 0;
}

static int open_db(struct ph_ledger *l, struct ph_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r, version;

	rc = sqlite3_open_v2(l->path, &l->db,
			     l->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = db_errno(l->db, rc);
		ph_error_set(err, "%s: cannot open: %s (%s)", l->path,
			     l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc), strerror(-r));
		return r;
	}
	sqlite3_busy_timeout(l->db, 5000);
	sqlite3_extended_result_codes(l->db, 1);
	/* sqlite quietly opens read-only what this user cannot write */
	if (!l->readonly && sqlite3_db_readonly(l->db, "main") == 1) {
		ph_error_set(err, "%s: cannot be written by this user; changing the ledger needs its owner (root)",
			     l->path);
		return -EACCES;
	}

	/* quick_check reads every page: garbage, truncation and damaged
	 * b-trees show up here rather than halfway through a scan. */
	rc = sqlite3_prepare_v2(l->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && !sqlite3_column_text(st, 0)) {
		sqlite3_finalize(st);
		ph_error_set(err, "%s: cannot check: out of memory", l->path);
		return -ENOMEM;
	}
	if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		ph_error_set(err, "%s: damaged: %s", l->path, sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		return -EBADMSG;
	}
	if (rc != SQLITE_ROW) {
		r = db_errno(l->db, rc) ?: -EIO;
		ph_error_set(err, "%s: cannot read: %s (%s)", l->path, sqlite3_errmsg(l->db), strerror(-r));
		sqlite3_finalize(st);
		return r;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = db_errno(l->db, rc) ?: -EIO;
		ph_error_set(err, "%s: cannot read its version: %s (%s)", l->path, sqlite3_errmsg(l->db),
			     strerror(-r));
		sqlite3_finalize(st);
		return r;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION) {
		ph_error_set(err, "%s: written by a newer pmemheal (schema %d, this one knows %d); "
			     "left untouched", l->path, version, SCHEMA_VERSION);
		return -EPROTO;
	}
	if (l->readonly) {
		if (version == 0) {
			ph_error_set(err, "%s: empty ledger", l->path);
			return -ENOENT;
		}
		return 0;
	}
	r = exec(l, "PRAGMA journal_mode=WAL");
	if (r == 0)
		r = exec(l, "PRAGMA synchronous=FULL");
	if (r == 0)
		r = exec(l, "PRAGMA foreign_keys=ON");
	if (r < 0) {
		ph_error_set(err, "%s: cannot set up the journal: %s", l->path, sqlite3_errmsg(l->db));
		return r;
	}
	return version < SCHEMA_VERSION ? migrate(l, version, err) : 0;
}

static int move_aside(struct ph_ledger *l)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	int r = 0;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", localtime_r(&t, &tm));
	free(l->moved_aside);
	if (asprintf(&l->moved_aside, "%s.corrupt-%s", l->path, stamp) < 0) {
		l->moved_aside = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
		_cleanup_free_ char *from = NULL, *to = NULL;

		if (asprintf(&from, "%s%s", l->path, suffixes[i]) < 0 ||
		    asprintf(&to, "%s%s", l->moved_aside, suffixes[i]) < 0)
			return -ENOMEM;
		/* Never overwrite an earlier moved-aside file. */
		if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0 && errno != ENOENT &&
		    r == 0)
			r = negative_errno();
	}
	return r;
}

/*
 * Only a writer may change the ledger, or move it aside.  Anyone else (an
 * ordinary user's `pmemheal scan`) is told so up front, with -EACCES,
 * before sqlite gets to try and fail in less clear ways.
 */
static int check_writer(struct ph_ledger *l, const char *state_dir, struct ph_error *err)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	int r;

	if (faccessat(AT_FDCWD, state_dir, W_OK | X_OK, AT_EACCESS) < 0) {
		r = negative_errno();
		if (r == -EPERM)
			r = -EACCES;
		ph_error_set(err, "%s: %s; %s", state_dir, strerror(-r),
			     r == -EACCES ? "changing the ledger needs the owner of the state directory (root)"
					  : "the ledger is left as it is");
		return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s%s", l->path, suffixes[i]) < 0)
			return -ENOMEM;
		if (faccessat(AT_FDCWD, p, R_OK | W_OK, AT_EACCESS) < 0 && errno != ENOENT) {
			r = negative_errno();
			if (r == -EPERM)
				r = -EACCES;
			ph_error_set(err, "%s: %s; %s", p, strerror(-r),
				     r == -EACCES ? "changing the ledger needs its owner (root)"
						  : "the ledger is left as it is");
			return r;
		}
	}
	return 0;
}

_public_ int ph_ledger_open(struct ph_ctx *ctx, const char *state_dir, unsigned flags,
			    struct ph_ledger **ret, struct ph_error *err)
{
	_cleanup_(ph_ledger_freep) struct ph_ledger *l = NULL;
	struct ph_error first = { { 0 } };
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ctx = ph_ctx_ref(ctx);
	l->readonly = flags & PH_LEDGER_READONLY;
	if (asprintf(&l->path, "%s/ledger.db", state_dir) < 0) {
		l->path = NULL;
		return -ENOMEM;
	}
	if (l->readonly) {
		if (access(l->path, F_OK) < 0) {
			r = negative_errno();
			ph_error_set(err, "%s: %s", l->path, r == -ENOENT ? "no ledger yet (run pmemheal scan)" :
				     strerror(-r));
			return r;
		}
	} else {
		if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
			r = negative_errno();
			ph_error_set(err, "%s: cannot create the state directory: %s", state_dir, strerror(-r));
			return r;
		}
		r = check_writer(l, state_dir, err);
		if (r < 0)
			return r;
	}

	r = open_db(l, &first);
	if (r == 0) {
		*ret = TAKE_PTR(l);
		return 0;
	}
	/* Only a damaged file is moved aside.  Anything else (a full or
	 * read-only disk, an I/O error, a lock, no permission, memory) says
	 * nothing about the ledger, which may hold running intents: leave it
	 * as it is and fail, so that the caller retries once the cause is
	 * gone. */
	if (r != -EBADMSG || l->readonly) {
		ph_error_set(err, "%s%s", first.message,
			     r == -EBADMSG || r == -EPROTO ? "" : "; the ledger is left as it is");
		return r;
	}

	/* Damaged: keep it for inspection, start afresh; the caller's next
	 * scan rebuilds the ledger from the kernel's lists. */
	drop_statements(l);
	sqlite3_close_v2(l->db);
	l->db = NULL;
	r = move_aside(l);
	if (r < 0) {
		ph_error_set(err, "%s (and it cannot be moved aside: %s)", first.message, strerror(-r));
		return r;
	}
	ph_err(ctx, "%s; moved it aside to %s and started a new ledger, which the next scan fills "
	       "from the kernel's lists", first.message, l->moved_aside);
	r = open_db(l, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(l);
	return 0;
}

/* ---- rows ------------------------------------------------------------- */

#define ROW_COLUMNS "id, ns_id, device, start, count, state, origin, in_kernel, first_seen, last_seen"

static void fill_row(sqlite3_stmt *st, struct ph_range_row *row)
{
	enum ph_state s = PH_STATE_NEW;

	(void)ph_state_from_string((const char *)sqlite3_column_text(st, 5), &s);
	*row = (struct ph_range_row){
		.id = sqlite3_column_int64(st, 0),
		.ns_id = (const char *)sqlite3_column_text(st, 1),
		.device = (const char *)sqlite3_column_text(st, 2),
		.start = (uint64_t)sqlite3_column_int64(st, 3),
		.count = (uint64_t)sqlite3_column_int64(st, 4),
		.state = s,
		.origin = (const char *)sqlite3_column_text(st, 6),
		.in_kernel = sqlite3_column_int(st, 7),
		.first_seen = (uint64_t)sqlite3_column_int64(st, 8),
		.last_seen = (uint64_t)sqlite3_column_int64(st, 9),
	};
}

_public_ int ph_ledger_foreach(struct ph_ledger *l, const char *ns_id, ph_row_fn fn, void *userdata)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = prepare(l, &st, ns_id ? "SELECT " ROW_COLUMNS " FROM ranges WHERE ns_id = ? ORDER BY ns_id, start"
				  : "SELECT " ROW_COLUMNS " FROM ranges ORDER BY ns_id, start");
	if (r < 0)
		return r;
	if (ns_id)
		sqlite3_bind_text(st, 1, ns_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ph_range_row row;

		fill_row(st, &row);
		r = fn(userdata, &row);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		ph_err(l->ctx, "%s: %s", l->path, sqlite3_errmsg(l->db));
		r = sql_errno(rc);
	}
	unprepare(l, st);
	return r < 0 ? r : 0;
}

_public_ int ph_ledger_count(struct ph_ledger *l, uint64_t counts[_PH_STATE_MAX])
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	memset(counts, 0, sizeof(uint64_t) * _PH_STATE_MAX);
	r = prepare(l, &st, "SELECT state, COUNT(*) FROM ranges GROUP BY state");
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum ph_state s;

		if (ph_state_from_string((const char *)sqlite3_column_text(st, 0), &s) == 0)
			counts[s] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	unprepare(l, st);
	return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

_public_ int ph_ledger_count_listed(struct ph_ledger *l, uint64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	/* A range a repairer verified cleared is no longer poisoned, though
	 * the region's list may name it until the next scan. */
	r = prepare(l, &st, "SELECT COUNT(*) FROM ranges WHERE in_kernel = 1 AND state != 'cleared'");
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = (uint64_t)sqlite3_column_int64(st, 0);
	unprepare(l, st);
	return rc == SQLITE_ROW ? 0 : sql_errno(rc);
}

_public_ bool ph_range_row_repairable(const struct ph_range_row *row)
{
	return row->in_kernel && (row->state == PH_STATE_NEW || row->state == PH_STATE_MAPPED ||
				  row->state == PH_STATE_PLANNED || row->state == PH_STATE_FAILED);
}

_public_ int ph_ledger_set_state(struct ph_ledger *l, int64_t id, enum ph_state to)
{
	sqlite3_stmt *st = NULL;
	enum ph_state from;
	int r, rc;

	/* Read and move in one transaction: another connection (the scan's
	 * diff) may move the same row, and the first to move it wins. */
	r = exec(l, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = prepare(l, &st, "SELECT state FROM ranges WHERE id = ?");
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		unprepare(l, st);
		r = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
		goto fail;
	}
	r = ph_state_from_string((const char *)sqlite3_column_text(st, 0), &from);
	unprepare(l, st);
	if (r < 0) {
		r = -EBADMSG;
		goto fail;
	}
	if (!ph_state_transition_ok(from, to)) {
		ph_dbg(l->ctx, "range %" PRId64 ": %s -> %s is not allowed", id, ph_state_to_string(from),
		       ph_state_to_string(to));
		r = -EINVAL;
		goto fail;
	}
	/* in_kernel is the diff's: a repairer verifies against the disk's
	 * list only, and the region's may drop the range later. */
	r = prepare(l, &st, "UPDATE ranges SET state = ? WHERE id = ?");
	if (r == 0) {
		sqlite3_bind_text(st, 1, ph_state_to_string(to), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		r = step_done(l, st);
		unprepare(l, st);
	}
	if (r == 0)
		r = exec(l, "COMMIT");
fail:
	if (r < 0)
		(void)sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

_public_ int ph_ledger_get_range(struct ph_ledger *l, int64_t id, ph_row_fn fn, void *userdata)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = prepare(l, &st, "SELECT " ROW_COLUMNS " FROM ranges WHERE id = ?");
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct ph_range_row row;

		fill_row(st, &row);
		r = fn(userdata, &row);
	} else
		r = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
	unprepare(l, st);
	return r < 0 ? r : 0;
}
