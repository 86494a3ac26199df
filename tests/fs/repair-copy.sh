#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The relocate-file copy on XFS, driven through the repairer's own steps
# (tests/fs/repair-job):
#  - a file with security.capability, copied by a repairer without
#    CAP_SETFCAP (the shipped unit has none): the job fails clearly, the
#    file keeps its bytes and capability, and no temporary copy is left;
#  - a file with a 255-byte name: the temporary and quarantine names
#    derived from it stay within NAME_MAX, so the relocate succeeds.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"
need_cmd setcap getcap setpriv
fail=0

mkfs_mount xfs 400M xfs -m reflink=1,rmapbt=1
mkdir "$MNT/d"
head -c 4096 /dev/urandom >"$WORK/content"

# job FILE STEPS...: a relocate-file job for FILE's first page.
job() {
	local f=$1 steps="" page
	shift
	page=$("$DRIVER" --sector "$f" 0) # the device sector of the file's first page
	for s in "$@"; do steps="$steps${steps:+, }[\"$s\", 0]"; done
	cat >"$WORK/job.json" <<JSON
{ "range_id": 1, "device": "$DEV", "list": "$WORK/badblocks", "mount": "$MNT", "ns_id": "test",
  "page": $page, "mode": "relocate-file", "can_clear": false, "hole": false,
  "pin": "$MNT/.pmemheal/quarantine/test-$page.pin",
  "owners": [ { "path": "$f", "offset": 0, "repair": true, "link": false } ],
  "steps": [ $steps ] }
JSON
	echo "$page 8" >"$WORK/badblocks"
	rm -rf "$WORK/state"
	mkdir "$WORK/state"
}

# 1. security.capability without CAP_SETFCAP
head -c 8192 /dev/urandom >"$MNT/d/tool"
setcap cap_net_raw+ep "$MNT/d/tool"
cp "$MNT/d/tool" "$WORK/tool.orig"
ino=$(stat -c %i "$MNT/d/tool")
job "$MNT/d/tool" copy-file link-old rename
rc=0
setpriv --bounding-set -setfcap -- "$DRIVER" "$WORK/state" "$WORK/job.json" "$WORK/content" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 1 ] || { echo "FAIL: the copy without CAP_SETFCAP did not fail (exit $rc)"; fail=1; }
grep -q "security.capability" "$WORK/out" || { echo "FAIL: the failure does not name security.capability"; fail=1; }
left=$(find "$MNT/d" -name '.pmemheal-*')
[ -z "$left" ] || { echo "FAIL: a temporary copy was left behind: $left"; fail=1; }
[ "$(stat -c %i "$MNT/d/tool")" = "$ino" ] && cmp -s "$MNT/d/tool" "$WORK/tool.orig" ||
	{ echo "FAIL: the file was changed"; fail=1; }
getcap "$MNT/d/tool" | grep -q cap_net_raw || { echo "FAIL: the file lost its capability"; fail=1; }

# ... and with CAP_SETFCAP it is copied with the capability.
job "$MNT/d/tool" copy-file link-old rename
rc=0
"$DRIVER" "$WORK/state" "$WORK/job.json" "$WORK/content" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 0 ] || { echo "FAIL: the copy with CAP_SETFCAP failed (exit $rc)"; fail=1; }
getcap "$MNT/d/tool" | grep -q cap_net_raw || { echo "FAIL: the copy lost the capability"; fail=1; }
cmp -s -n 4096 "$MNT/d/tool" "$WORK/content" && cmp -s -i 4096 "$MNT/d/tool" "$WORK/tool.orig" ||
	{ echo "FAIL: the copy does not hold the repaired page and the rest"; fail=1; }

# 2. a 255-byte name
long=$(printf 'n%.0s' $(seq 255))
head -c 8192 /dev/urandom >"$MNT/d/$long"
cp "$MNT/d/$long" "$WORK/long.orig"
job "$MNT/d/$long" copy-file link-old rename
rc=0
"$DRIVER" "$WORK/state" "$WORK/job.json" "$WORK/content" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 0 ] || { echo "FAIL: relocating a file with a 255-byte name failed (exit $rc)"; fail=1; }
cmp -s -n 4096 "$MNT/d/$long" "$WORK/content" && cmp -s -i 4096 "$MNT/d/$long" "$WORK/long.orig" ||
	{ echo "FAIL: the long-named file does not hold the repaired page and the rest"; fail=1; }
q=$(find "$MNT/.pmemheal/quarantine" -type f | wc -l)
[ "$q" -ge 1 ] || { echo "FAIL: the old inode is not in quarantine"; fail=1; }
[ "$fail" = 0 ] && echo "OK: copy failures clean up; long names relocate"
exit "$fail"
