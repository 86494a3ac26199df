# SPDX-License-Identifier: GPL-2.0-or-later
# `pmemheal scan` writes the ledger only under STATE/repair.lock, like
# `pmemheal repair` and pmemheald's repairs.  While someone else (here:
# flock standing in for a repair) holds the lock, scan waits a few seconds,
# then gives up with exit status 12 (EXIT_BUSY), saying why, and leaves
# the ledger as it was; once the lock is free, scan goes on.
. "$top_srcdir/tests/daemon/lib.sh"
command -v flock >/dev/null || { echo "SKIP: needs flock (util-linux)"; exit 77; }
: "${PMEMHEAL:?PMEMHEAL must point at the pmemheal binary (make check sets it)}"

"$PMEMHEAL" scan --state-dir "$STATE" >"$WORK/first.out" 2>&1 || fail "the first scan failed: $(cat "$WORK/first.out")"
before=$(sha256sum <"$STATE/ledger.db")

mkfifo "$WORK/release"
flock "$STATE/repair.lock" sh -c "echo locked; read x <'$WORK/release'" >"$WORK/holder.out" &
HOLDER=$!
PIDS+=($HOLDER)
poll 10 has "$WORK/holder.out" '^locked$' || fail "the stand-in never took the lock"

rc=0
"$PMEMHEAL" scan --state-dir "$STATE" >"$WORK/busy.out" 2>"$WORK/busy.err" || rc=$?
[ "$rc" = 12 ] || fail "scan while the repair lock is held: exit status $rc, not 12: $(cat "$WORK/busy.out" "$WORK/busy.err")"
has "$WORK/busy.err" 'repair\.lock: a repair is running' || fail "scan does not say why: $(cat "$WORK/busy.err")"
[ "$(sha256sum <"$STATE/ledger.db")" = "$before" ] || fail "scan wrote the ledger while the repair lock was held"
ok "scan waits, then refuses with 12 and leaves the ledger alone while the lock is held"

rc=0
"$PMEMHEAL" scan --json --state-dir "$STATE" >"$WORK/busy.json" 2>"$WORK/busy.err" || rc=$?
[ "$rc" = 12 ] || fail "scan --json while the repair lock is held: exit status $rc, not 12"
ok "scan --json: the same"

echo go >"$WORK/release"
wait "$HOLDER" || fail "the stand-in failed"
"$PMEMHEAL" scan --state-dir "$STATE" >"$WORK/after.out" 2>&1 || fail "scan after the lock was released: $(cat "$WORK/after.out")"
ok "scan goes on once the lock is free"
