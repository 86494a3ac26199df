# SPDX-License-Identifier: GPL-2.0-or-later
# pmemheald's life as systemd sees it, on a machine without pmem: READY=1
# and STATUS= saying there is no pmem (it waits, it does not exit), the
# watchdog kept, a single instance, SIGTERM ending it with status 0, and a
# configuration with errors refusing the start with file:line (status 78).
. "$top_srcdir/tests/daemon/lib.sh"

# Ready without pmem, waiting for hotplug.
start_daemon d1 WATCHDOG_USEC=400000
wait_notify d1 '^READY=1$'
wait_notify d1 '^STATUS=No pmem found; waiting for hotplug$'
ok "ready without pmem, STATUS says so"
kill -0 "$DAEMON_PID" || fail "the daemon exited without pmem"
ok "still running without pmem"
# READY=1 only after the intent log was resumed: that message comes first.
[ "$(grep -n '^STATUS=Finishing repairs' "$WORK/d1.notify" | cut -d: -f1)" -lt \
  "$(grep -n '^READY=1$' "$WORK/d1.notify" | cut -d: -f1)" ] || fail "READY=1 came before the resume"
ok "READY=1 after the resume"

# The watchdog: WATCHDOG_USEC=0.4 s, pinged at half of it.
three_pings() { [ "$(count "$WORK/d1.notify" '^WATCHDOG=1$')" -ge 3 ]; }
poll 5 three_pings || fail "fewer than 3 WATCHDOG=1 in 5 s"
ok "the watchdog is pinged"

# One instance at a time.
rc=0
"$PMEMHEALD" --state-dir "$STATE" --runtime-dir "$RUN" --config-dir "$CONF" >"$WORK/d2.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a second instance exited $rc, not 1"
has "$WORK/d2.log" "Another pmemheald is running \(it holds $RUN/pmemheald.lock\)" || fail "no reason given"
ok "a second instance refuses to run"
[ "$(cat "$RUN/pmemheald.lock")" = "$DAEMON_PID" ] || fail "the lock does not name the daemon"

# SIGTERM: STOPPING=1, exit 0.
stop_daemon "$DAEMON_PID"
[ "$RC" = 0 ] || fail "SIGTERM: exit status $RC"
has "$WORK/d1.notify" '^STOPPING=1$' || fail "no STOPPING=1"
ok "SIGTERM: STOPPING=1 and exit status 0"

# A configuration with errors: no start, every error as file:line.
printf '[Match]\nPath=/srv/*\n[Repair]\nAction=shred\n' >"$CONF/rules.d/50-bad.rule"
printf '[Daemon]\nRescanIntervalSec=often\n' >"$CONF/pmemheald.conf"
rc=0
"$PMEMHEALD" --state-dir "$STATE" --runtime-dir "$RUN" --config-dir "$CONF" >"$WORK/d3.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "a bad configuration: exit status $rc, not 78"
has "$WORK/d3.log" "$CONF/rules.d/50-bad.rule:4: unknown action 'shred'" || fail "no file:line for the rule"
has "$WORK/d3.log" "$CONF/pmemheald.conf:2: RescanIntervalSec=" || fail "no file:line for pmemheald.conf"
ok "a bad configuration stops the start with status 78 and file:line"
