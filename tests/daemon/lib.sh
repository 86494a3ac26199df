# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by tests/daemon: run pmemheald as systemd would (a notification
# socket, WATCHDOG_USEC), without systemd and without privileges, and wait
# for what it says instead of sleeping.  Source it; it sets -euo pipefail.
set -euo pipefail

: "${PMEMHEALD:?PMEMHEALD must point at the pmemheald binary (make check sets it)}"
: "${NOTIFY_SINK:?NOTIFY_SINK must point at tests/daemon/notify-sink (make check sets it)}"

WORK=$(mktemp -d /tmp/pmemheald-test.XXXXXX)
PIDS=()
SINK_PID=
DAEMON_PID=

cleanup() {
	local p
	set +e
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*"
	for f in "$WORK"/*.log "$WORK"/*.notify; do
		[ -e "$f" ] || continue
		echo "--- $f"
		cat "$f"
	done
	exit 1
}
ok() { echo "ok - $*"; }

# poll SECONDS CMD...: run CMD every 50 ms until it succeeds; false after SECONDS.
poll() {
	local n=$(($1 * 20))
	shift
	until "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.05
	done
}

# has FILE EREGEX: FILE has a line matching EREGEX.
has() { grep -Eq -- "$2" "$1" 2>/dev/null; }
# count FILE EREGEX: how many lines match.
count() { grep -Ec -- "$2" "$1" 2>/dev/null || true; }

# Directories of one daemon: state, runtime, configuration.
STATE=$WORK/state
RUN=$WORK/run
CONF=$WORK/conf
mkdir -p "$STATE" "$RUN" "$CONF/rules.d"

# start_daemon NAME [ENV=VALUE...]: pmemheald with a notification socket;
# its messages land in $WORK/NAME.notify and its log in $WORK/NAME.log.
# Sets DAEMON_PID. Returns once the sink listens (not once the daemon is ready).
start_daemon() {
	local name=$1
	shift
	"$NOTIFY_SINK" "$WORK/$name.sock" >"$WORK/$name.notify" &
	PIDS+=($!)
	poll 10 has "$WORK/$name.notify" '^ready$' || fail "the notification sink for $name did not start"
	env NOTIFY_SOCKET="$WORK/$name.sock" "$@" \
		"$PMEMHEALD" --state-dir "$STATE" --runtime-dir "$RUN" --config-dir "$CONF" \
		--log-level debug >"$WORK/$name.log" 2>&1 &
	DAEMON_PID=$!
	PIDS+=("$DAEMON_PID")
}

# wait_notify NAME EREGEX [SECONDS]: until the daemon sent a matching message.
wait_notify() {
	poll "${3:-10}" has "$WORK/$1.notify" "$2" || fail "$1 never sent /$2/"
}
# wait_log NAME EREGEX [SECONDS]
wait_log() {
	poll "${3:-10}" has "$WORK/$1.log" "$2" || fail "$1 never logged /$2/"
}

# stop_daemon PID: SIGTERM; its exit status in RC (not in a subshell: only
# this shell can wait for it).
stop_daemon() {
	RC=0
	kill -TERM "$1"
	wait "$1" || RC=$?
}
