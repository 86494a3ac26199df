# SPDX-License-Identifier: GPL-2.0-or-later
# pmemheald and `pmemheal repair` never repair at once: both take
# STATE/repair.lock.  The daemon takes it first of all, to finish what a
# crash left in the intent log, so while `pmemheal repair` (here: flock
# standing in for it) holds it, the daemon waits, says so, and is not
# READY; once it is free, the daemon goes on.  (The other way round, the
# command refusing while the daemon repairs, needs poison: lab scenario
# 31-systemd-virtio-heal.)
. "$top_srcdir/tests/daemon/lib.sh"
command -v flock >/dev/null || { echo "SKIP: needs flock (util-linux)"; exit 77; }

mkfifo "$WORK/release"
touch "$STATE/repair.lock"
flock "$STATE/repair.lock" sh -c "echo locked; read x <'$WORK/release'" >"$WORK/holder.out" &
PIDS+=($!)
poll 10 has "$WORK/holder.out" '^locked$' || fail "the stand-in never took the lock"

start_daemon d
wait_log d "Waiting for $STATE/repair.lock: pmemheal repair is running"
has "$WORK/d.notify" '^READY=1$' && fail "READY=1 while the repair lock was held"
ok "the daemon waits for the repair lock, not READY"

echo go >"$WORK/release"
wait_notify d '^READY=1$'
ok "READY=1 once the lock is free"

stop_daemon "$DAEMON_PID"
[ "$RC" = 0 ] || fail "SIGTERM: exit status $RC"
ok "SIGTERM: exit status 0"
