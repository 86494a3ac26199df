#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The directory-swap race (issue 10, finding 5).  An unprivileged user
# exchanges their own directory with a symbolic link to a root-only
# directory, in a tight loop, while root's unlink step (delete) and
# rename step (quarantine) run on a file in that directory, round after
# round.  The root-only directory holds a file of the same name: it must
# never be removed, moved or changed.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${STEP_DRIVER:?make check-fs sets STEP_DRIVER}"
need_cmd setpriv
ROUNDS=${ATTACK_ROUNDS:-3000}

mkfs_mount swap 300M xfs -m reflink=1
mkdir -m 700 "$MNT/rootonly"
printf 'root only\n' >"$MNT/rootonly/victim"
chmod 600 "$MNT/rootonly/victim"
mkdir "$MNT/u"
chown $USR:$USR "$MNT/u"
as_user mkdir "$MNT/u/d"
as_user ln -s "$MNT/rootonly" "$MNT/u/s"

ATTACKER=
stop_attacker() {
	if [ -n "$ATTACKER" ]; then
		kill "$ATTACKER" 2>/dev/null || true
		wait "$ATTACKER" 2>/dev/null || true
		ATTACKER=
	fi
}
trap 'stop_attacker; cleanup' EXIT

start_attacker() {
	mkfifo "$WORK/ready"
	chmod 666 "$WORK/ready"
	"${AS_USER[@]}" /usr/bin/python3 - "$MNT/u" "$WORK/ready" <<'PY' &
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
def swap():
    if libc.renameat2(d, b"d", d, b"s", RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
swap(); swap()
with open(sys.argv[2], "w") as f:
    f.write("ready\n")
while True:
    swap()
PY
	ATTACKER=$!
	exec 3<>"$WORK/ready"; read -r -t 60 -u 3 line || true; exec 3<&-
	[ "$line" = ready ] || { echo "FAIL: the attacker did not start"; exit 1; }
	rm -f "$WORK/ready"
}

run() {
	local mode=$1 steps=$2 rc=0
	start_attacker
	"$STEP_DRIVER" --rounds "$ROUNDS" --create 4096 --canary "$MNT/rootonly/victim" \
		"$mode" "$steps" "$MNT" "$MNT/u/d/victim" >"$WORK/out" 2>"$WORK/err" || rc=$?
	stop_attacker
	cat "$WORK/out"
	if [ "$rc" = 3 ] || [ ! -f "$MNT/rootonly/victim" ] ||
		[ "$(cat "$MNT/rootonly/victim")" != "root only" ]; then
		echo "FAIL: $mode: the root-only file was touched"
		ls -la "$MNT/rootonly"
		exit 1
	fi
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || { echo "FAIL: $mode: the driver exited $rc"; cat "$WORK/err"; exit 1; }
	# the attack proves something only if the step ran in some rounds
	read -r n _ m _ <"$WORK/out"
	[ "$m" -lt "$n" ] || { echo "FAIL: $mode: no round got as far as the step"; cat "$WORK/err"; exit 1; }
}

run delete unlink:0
run quarantine rename:0
echo PASS
