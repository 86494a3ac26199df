# SPDX-License-Identifier: GPL-2.0-or-later
# SIGHUP: a good configuration is taken (RELOADING=1, then READY=1), a bad
# one is logged with file:line and the one before stays in force; and the
# metrics file follows MetricsFile= and is written whole.
. "$top_srcdir/tests/daemon/lib.sh"

printf '[Match]\nPath=/srv/db/*\n[Repair]\nAction=salvage\n' >"$CONF/rules.d/50-db.rule"
start_daemon d
wait_notify d '^READY=1$'
wait_log d 'Watching 0 pmem namespaces .* rescanning every 60 s'
ok "started with the default rescan interval"

# A good reload: a second rule, a faster rescan, metrics on.
printf '[Match]\nPath=/srv/log/*\n[Repair]\nAction=zero\n' >"$CONF/rules.d/60-log.rule"
printf '[Daemon]\nRescanIntervalSec=5\nMetricsFile=%s/pmemheal.prom\n' "$WORK" >"$CONF/pmemheald.conf"
kill -HUP "$DAEMON_PID"
wait_log d 'Reloaded the configuration: 2 rules, rescanning every 5 s'
wait_notify d '^RELOADING=1'
# the last READY=1 comes after the last RELOADING=1
ready_after_reload() {
	[ "$(grep -n '^READY=1$' "$WORK/d.notify" | tail -n1 | cut -d: -f1)" -gt \
	  "$(grep -n '^RELOADING=1' "$WORK/d.notify" | tail -n1 | cut -d: -f1)" ]
}
poll 10 ready_after_reload || fail "no READY=1 after RELOADING=1"
ok "a good reload: RELOADING=1, READY=1, the new values in force"

poll 10 test -s "$WORK/pmemheal.prom" || fail "no metrics file"
has "$WORK/pmemheal.prom" '^pmemheal_namespaces 0$' || fail "metrics: no pmemheal_namespaces"
has "$WORK/pmemheal.prom" '^pmemheal_ranges\{state="new"\} 0$' || fail "metrics: no ranges by state"
has "$WORK/pmemheal.prom" '^pmemheal_repairs_total\{result="cleared"\} 0$' || fail "metrics: no repairs"
has "$WORK/pmemheal.prom" '^# TYPE pmemheal_bytes_lost_total counter$' || fail "metrics: no bytes lost"
[ -z "$(find "$WORK" -maxdepth 1 -name '.pmemheal.prom.*')" ] || fail "a temporary metrics file was left"
ok "MetricsFile= is written, whole"

# A bad reload: logged with file:line, the old configuration kept.
printf '[Match]\nPath=/srv/tmp/*\n[Repair]\nAction=zero\nColour=blue\n' >"$CONF/rules.d/70-broken.rule"
kill -HUP "$DAEMON_PID"
wait_log d "$CONF/rules.d/70-broken.rule:5: unknown key 'Colour' in \\[Repair\\]"
wait_log d 'Configuration not reloaded \(1 error\); the one loaded before stays in force'
kill -0 "$DAEMON_PID" || fail "a bad reload ended the daemon"
poll 5 ready_after_reload || fail "no READY=1 after the failed reload"
ok "a bad reload is logged with file:line; the daemon keeps running"

# The old configuration is still the one in force: fix the rule, reload,
# and the count says 3 rules (not 2 plus a half-read third).
rm "$CONF/rules.d/70-broken.rule"
printf '[Daemon]\nRescanIntervalSec=7\n' >"$CONF/pmemheald.conf"
kill -HUP "$DAEMON_PID"
wait_log d 'Reloaded the configuration: 2 rules, rescanning every 7 s'
ok "after fixing it, the next reload is taken"

stop_daemon "$DAEMON_PID"
[ "$RC" = 0 ] || fail "SIGTERM: exit status $RC"
ok "SIGTERM: exit status 0"
