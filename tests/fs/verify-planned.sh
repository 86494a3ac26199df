#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Verify is a planned step, and its verdict comes from the filesystem and
# the kernel's list, not from what the steps remember.  For quarantine,
# delete and punch the verifier used to check nothing: a job whose log
# said its steps were done ended "done" (the page counted pinned) while the
# file still held the poisoned block.  An intent written before verify was
# a step of its own (no verify in its steps) must still verify when it
# resumes; here its steps are all done by the log's count ("steps": []),
# yet none ran, so each such job must fail, naming the file, and change
# nothing.  The same jobs with their steps and a verify step end done.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"

mkfs_mount xfs 300M xfs -m reflink=1,rmapbt=1
head -c 4096 /dev/zero >"$WORK/zeros"
fail=0
n=0

# job MODE FILE STEPS: run a job on FILE's page at 4096 (listed as poisoned)
job() {
	local mode=$1 f=$2 steps=$3 page
	n=$((n + 1))
	page=$("$DRIVER" --sector "$f" 4096)
	echo "$page 8" >"$WORK/badblocks"
	rm -rf "$WORK/state$n"
	mkdir "$WORK/state$n"
	cat >"$WORK/job$n.json" <<JSON
{ "range_id": $n, "device": "$DEV", "list": "$WORK/badblocks", "mount": "$MNT", "ns_id": "test",
  "page": $page, "mode": "$mode", "can_clear": false, "hole": false,
  "pin": "$MNT/.pmemheal/quarantine/test-$page.pin",
  "owners": [ { "path": "$f", "offset": 4096, "repair": true, "link": false } ],
  "steps": [ $steps ] }
JSON
	rc=0
	"$DRIVER" "$WORK/state$n" "$WORK/job$n.json" "$WORK/zeros" >"$WORK/out" 2>&1 || rc=$?
	sed "s/^/  $mode: /" "$WORK/out"
}

for mode in quarantine delete punch; do
	f=$MNT/$mode.dat
	head -c $((4 * 4096)) /dev/urandom >"$f"
	sync
	sum=$(sha256sum <"$f")
	ino=$(stat -c %i "$f")
	job "$mode" "$f" ""
	[ "$rc" = 1 ] || { echo "FAIL: $mode: a job whose steps never ran ended done (exit $rc)"; fail=1; }
	what=holds; [ "$mode" = punch ] && what=maps
	grep -q "intent failed: $f still $what the poisoned block" "$WORK/out" ||
		{ echo "FAIL: $mode: the failure does not name the file and why"; fail=1; }
	[ "$(stat -c %i "$f")" = "$ino" ] && [ "$(sha256sum <"$f")" = "$sum" ] ||
		{ echo "FAIL: $mode: the file changed"; fail=1; }
done

# The same jobs, their steps run: done, and verified pinned.
job quarantine "$MNT/quarantine.dat" '["rename", 0], ["verify", 0]'
[ "$rc" = 0 ] && [ ! -e "$MNT/quarantine.dat" ] || { echo "FAIL: quarantine with its steps (exit $rc)"; fail=1; }
job delete "$MNT/delete.dat" '["pin", 0], ["unlink", 0], ["verify", 0]'
[ "$rc" = 0 ] && [ ! -e "$MNT/delete.dat" ] || { echo "FAIL: delete with its steps (exit $rc)"; fail=1; }
job punch "$MNT/punch.dat" '["pin", 0], ["punch", 0], ["verify", 0]'
[ "$rc" = 0 ] || { echo "FAIL: punch with its steps (exit $rc)"; fail=1; }

# Verify is the last step, and only the last.
head -c $((4 * 4096)) /dev/urandom >"$MNT/other.dat"
sync
job quarantine "$MNT/other.dat" '["verify", 0], ["rename", 0]'
[ "$rc" = 1 ] && grep -q 'steps\[0\]\[0\]' "$WORK/out" && [ -e "$MNT/other.dat" ] ||
	{ echo "FAIL: a verify step before another step was not refused"; fail=1; }
[ $fail = 0 ] && echo "OK: verify ran as planned, and checked the filesystem"
exit $fail
