#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The ledger survives a full state filesystem and an ordinary user.
#
# On a full disk sqlite cannot create the -shm it needs to open a WAL
# database ("disk I/O error"); pmemheal scan, repair and pmemheald must
# fail clearly and leave the ledger as it is, with the repair a crash left
# running (its intent holds the page's salvaged bytes), rather than move it
# aside and start empty; so must a read-only one.  An unprivileged user's pmemheal scan must be
# refused (exit 8) and change nothing, whatever the state directory's mode.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${PMEMHEALD:?PMEMHEALD must point at the pmemheald binary (make check-fs sets it)}"
need_cmd setpriv timeout

fail() {
	echo "FAIL: $*"
	for f in "$WORK"/out "$WORK"/err "$WORK"/daemon.log; do
		[ -e "$f" ] || continue
		echo "--- $f"
		cat "$f"
	done
	exit 1
}
ok() { echo "ok - $*"; }

mkfs_mount state 16M ext4
STATE=$MNT/state
expect_status 0 "$PMEMHEAL" scan --state-dir "$STATE" || fail "cannot create a ledger"

# A range being repaired and its running intent, as a crash leaves them.
python3 - "$STATE/ledger.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO ranges (id, ns_id, start, count, device, state, origin, in_kernel, first_seen,"
           " last_seen, last_boot) VALUES (1, 'ns-full', 208, 8, 'pmem0', 'repairing', 'device', 1, 1, 1, 'b')")
db.execute("INSERT INTO intents (range_id, page, plan, content, step, state, created, updated)"
           " VALUES (1, 208, '{}', ?, 3, 'running', 1, 1)", (bytes(range(256)) * 16,))
db.commit()
db.close()
EOF
[ ! -e "$STATE/ledger.db-wal" ] || fail "the ledger was not closed cleanly"
cp "$STATE/ledger.db" "$WORK/ledger.before"

# the intent, read without writing anything (immutable: no -shm needed)
intent() {
	python3 - "$STATE/ledger.db" <<'EOF'
import hashlib, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro&immutable=1", uri=True)
for row in db.execute("SELECT range_id, page, step, state, content FROM intents"):
    print(row[0], row[1], row[2], row[3], hashlib.sha256(row[4]).hexdigest())
EOF
}
intent >"$WORK/intent.before"
grep -q '^1 208 3 running ' "$WORK/intent.before" || fail "no running intent to keep"

# kept: no file moved aside, the same bytes, the same running intent
kept() {
	local what=$1
	if ls "$STATE" | grep -q corrupt; then
		ls -l "$STATE"
		fail "$what: the ledger was moved aside"
	fi
	cmp -s "$STATE/ledger.db" "$WORK/ledger.before" || fail "$what: the ledger changed"
	intent >"$WORK/intent.now"
	cmp -s "$WORK/intent.now" "$WORK/intent.before" || fail "$what: the intent changed: $(cat "$WORK/intent.now")"
}

# Fill the filesystem, root's reserve included.  ext4 reserves space for
# delayed allocation until writeback, so a write may fail while blocks are
# still to be given back: fill again after each sync, until a synced 4k
# write fails.
dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null || true
full=
for round in 1 2 3 4 5; do
	dd if=/dev/zero of="$MNT/fill.tail$round" bs=4k 2>/dev/null || true
	sync
	if ! dd if=/dev/zero of="$MNT/fill.probe$round" bs=4k count=1 conv=fsync 2>/dev/null; then
		full=yes
		break
	fi
done
[ -n "$full" ] || skip "cannot fill the state filesystem: a synced 4k write still succeeds after 5 rounds"

for round in 1 2; do
	expect_status 1 "$PMEMHEAL" scan --state-dir "$STATE" || fail "scan on a full disk (round $round)"
	grep -q "left as it is" "$WORK/err" || fail "scan does not say the ledger is kept"
	kept "scan on a full disk (round $round)"
done
sed 's/^/# scan: /' "$WORK/err"
ok "pmemheal scan on a full state filesystem fails and keeps the ledger"

expect_status 1 "$PMEMHEAL" repair --all --state-dir "$STATE" || fail "repair on a full disk"
grep -q "left as it is" "$WORK/err" || fail "repair does not say the ledger is kept"
kept "repair on a full disk"
ok "pmemheal repair on a full state filesystem fails and keeps the ledger"

# The daemon fails at start (systemd restarts it) and keeps it too.
mkdir -p "$WORK/run" "$WORK/conf/rules.d"
got=0
timeout 120 "$PMEMHEALD" --state-dir "$STATE" --runtime-dir "$WORK/run" --config-dir "$WORK/conf" \
	>"$WORK/daemon.log" 2>&1 || got=$?
[ "$got" != 0 ] && [ "$got" != 124 ] || fail "pmemheald exited $got on a full state filesystem"
grep -q "left as it is" "$WORK/daemon.log" || fail "pmemheald does not say the ledger is kept"
kept "pmemheald on a full disk"
grep "left as it is" "$WORK/daemon.log" | sed 's/^/# pmemheald: /'
ok "pmemheald on a full state filesystem exits ($got) and keeps the ledger"

# Space again: an ordinary user may still change nothing.
rm -f "$MNT"/fill "$MNT"/fill.tail* "$MNT"/fill.probe*
sync
for modes in "700 600" "755 644" "777 644" "777 444"; do
	set -- $modes
	chmod "$1" "$STATE"
	chmod "$2" "$STATE/ledger.db"
	expect_status 8 as_nobody scan --state-dir "$STATE" ||
		fail "scan as nobody, state directory $1, ledger $2"
	[ -z "$(find "$STATE" -uid 65534)" ] || fail "nobody left files in the state directory: $(ls -l "$STATE")"
	kept "scan as nobody, state directory $1, ledger $2"
done
chmod 700 "$STATE"
chmod 600 "$STATE/ledger.db"
ok "an unprivileged pmemheal scan is refused (exit 8) and changes nothing"

# A state filesystem mounted read-only: the same.
mount -o remount,ro "$MNT"
expect_status 1 "$PMEMHEAL" scan --state-dir "$STATE" || fail "scan on a read-only state filesystem"
grep -q "left as it is" "$WORK/err" || fail "scan does not say the ledger is kept (read-only)"
sed 's/^/# scan: /' "$WORK/err"
kept "scan on a read-only state filesystem"
mount -o remount,rw "$MNT"
ok "pmemheal scan on a read-only state filesystem fails and keeps the ledger"

# And root's next scan finds the same ledger, intent and all.
expect_status 0 "$PMEMHEAL" scan --state-dir "$STATE" || fail "scan once there is space again"
! ls "$STATE" | grep -q corrupt || fail "the ledger was moved aside once there was space"
intent >"$WORK/intent.now"
cmp -s "$WORK/intent.now" "$WORK/intent.before" || fail "the intent changed: $(cat "$WORK/intent.now")"
ok "with space again the ledger opens with its running intent"
