#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A concurrent writer while a whole file is relocated (issue 10,
# finding 6).  The file's owner keeps writing a counter into it and puts
# the old mtime back after each write, so size and mtime never change,
# each write into its own slot so that a lost one shows,
# while root copies the file, links the old inode aside and renames the
# copy over it, round after round.  Every write the writer saw complete
# must be in the file at the end: each relocation either includes it or
# stops with nothing changed.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${STEP_DRIVER:?make check-fs sets STEP_DRIVER}"
need_cmd setpriv
ROUNDS=${ATTACK_ROUNDS:-60}

mkfs_mount reloc 1G xfs -m reflink=1
mkdir "$MNT/u"
chown $USR:$USR "$MNT/u"
F=$MNT/u/data
head -c 2097152 /dev/urandom | as_user dd of="$F" status=none
STEPS=copy-file:0,link-old:0,rename:0

# Without a writer the relocation completes: a new inode with the
# repaired page and every other byte.
ino0=$(stat -c %i "$F")
cp "$F" "$WORK/before"
"$STEP_DRIVER" relocate-file "$STEPS" "$MNT" "$F"
[ "$(stat -c %i "$F")" != "$ino0" ] || { echo "FAIL: the file was not relocated"; exit 1; }
cmp -s <(head -c 4096 "$F") <(head -c 4096 /dev/zero | tr '\0' R) || { echo "FAIL: page 0 is not the repaired page"; exit 1; }
cmp -s <(tail -c +4097 "$F") <(tail -c +4097 "$WORK/before") || { echo "FAIL: the rest of the file changed"; exit 1; }
[ "$(stat -c %U "$F")" = "$(id -nu $USR)" ] || { echo "FAIL: the copy is not the user's"; exit 1; }

mkfifo "$WORK/ready"
chmod 666 "$WORK/ready"
touch "$WORK/log"
chown $USR "$WORK/log"
"${AS_USER[@]}" /usr/bin/python3 - "$F" "$WORK/ready" "$WORK/log" <<'PY' &
import os, signal, sys
path, ready, log = sys.argv[1:4]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
mtime = os.stat(path).st_mtime_ns
lg = os.open(log, os.O_WRONLY | os.O_APPEND)
n = 0
with open(ready, "w") as f:
    f.write("ready\n")
while not stop and n < 130000:
    n += 1
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b"%016d" % n, 8192 + 16 * n)
    os.utime(fd, ns=(mtime, mtime))
    os.close(fd)
    os.write(lg, b"%d\n" % n)
PY
WRITER=$!
trap 'kill $WRITER 2>/dev/null || true; cleanup' EXIT
exec 3<>"$WORK/ready"; read -r -t 60 -u 3 line || true; exec 3<&-
[ "$line" = ready ] || { echo "FAIL: the writer did not start"; exit 1; }

rc=0
"$STEP_DRIVER" --rounds "$ROUNDS" --offset 0 relocate-file "$STEPS" "$MNT" "$F" >"$WORK/out" 2>"$WORK/err" || rc=$?
kill -TERM $WRITER
wait $WRITER || true
cat "$WORK/out"
[ "$rc" = 0 ] || [ "$rc" = 1 ] || { echo "FAIL: the driver exited $rc"; cat "$WORK/err"; exit 1; }
last=$(tail -n 1 "$WORK/log")
python3 - "$F" "$last" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
last = int(sys.argv[2])
lost = [n for n in range(1, last + 1) if data[8192 + 16 * n:8192 + 16 * n + 16] != b"%016d" % n]
print("writes: %d; lost: %d" % (last, len(lost)))
if lost:
    print("FAIL: writes lost, the first: %s" % lost[:10])
    sys.exit(1)
PY
echo PASS
