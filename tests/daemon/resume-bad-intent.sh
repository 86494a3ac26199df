#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A damaged intent in the ledger does not stop pmemheald from starting.
# The daemon resumes the intent log before READY=1; a plan with the wrong
# JSON types used to abort it on a json-c assertion at every start, so
# systemd restarted it in a loop.  Now it sets the bad intents aside
# (failed, with a reason naming the intent and the field), resumes the
# good one, and is ready.
. "$top_srcdir/tests/daemon/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: needs python3 (to write intents into the ledger)"; exit 77; }

"$PMEMHEAL" scan --state-dir "$STATE" >"$WORK/scan.log" 2>&1 || fail "cannot create a ledger: $(cat "$WORK/scan.log")"
python3 - "$STATE/ledger.db" <<'EOF' || fail "cannot write the intents"
import json, sqlite3, sys
good = ('{"range_id":1,"device":"/dev/pmem0","list":"/sys/block/pmem0/badblocks","mount":"/mnt",'
        '"ns_id":"5e0ad2a4","page":4096,"fs_page":4096,"mode":4,"can_clear":false,"hole":false,'
        '"pin":"/mnt/.pmemheal/quarantine/5e0ad2a4-4096.pin","tmp":"/mnt/.pmemheal-a.4096.tmp",'
        '"qname":"12-a.4096","bytes_lost":0,"owners":[{"path":"/mnt/a","inode":12,"gen":0,"offset":0,'
        '"size":4096,"mtime_ns":1,"ctime_ns":1,"repair":true,"link":false}],"steps":[[11,0]]}')
db = sqlite3.connect(sys.argv[1])
bad_owners = json.dumps(dict(json.loads(good), owners=5))
bad_steps = json.dumps(dict(json.loads(good), steps=[7]))
for plan in (bad_owners, bad_steps, 'not json', good):
    db.execute("INSERT INTO intents (range_id, page, plan, content, step, state, created, updated)"
               " VALUES (1, 4096, ?, ?, 1, 'running', 1, 1)", (plan, bytes(4096)))
db.commit()
db.close()
EOF

start_daemon d1
wait_notify d1 '^READY=1$' 30
kill -0 "$DAEMON_PID" || fail "the daemon exited"
ok "ready with damaged intents in the ledger"
has "$WORK/d1.log" 'intent 1 set aside.*owners: not an array' || fail "intent 1 is not set aside by name"
has "$WORK/d1.log" 'intent 2 set aside.*steps\[0\]: not a pair' || fail "intent 2 is not set aside by name"
has "$WORK/d1.log" 'intent 3 set aside.*plan: not a JSON object' || fail "intent 3 is not set aside by name"
ok "each bad intent is logged with its id and the field"
stop_daemon "$DAEMON_PID"
[ "$RC" = 0 ] || fail "SIGTERM: exit status $RC"

python3 - "$STATE/ledger.db" >"$WORK/intents" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("SELECT id, state, detail FROM intents ORDER BY id"):
    print(*row, sep="|")
EOF
grep -q '^1|failed|intent 1 set aside.*owners' "$WORK/intents" || fail "intent 1: $(cat "$WORK/intents")"
grep -q '^2|failed|intent 2 set aside.*steps\[0\]' "$WORK/intents" || fail "intent 2: $(cat "$WORK/intents")"
grep -q '^3|failed|intent 3 set aside' "$WORK/intents" || fail "intent 3: $(cat "$WORK/intents")"
grep -q '^4|done|' "$WORK/intents" || fail "the good intent was not resumed: $(cat "$WORK/intents")"
ok "the bad intents are kept, failed with their reason; the good one resumed"
