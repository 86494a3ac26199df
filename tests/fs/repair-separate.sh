#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# OnShared=separate end to end on XFS with reflink: a page shared by two
# files, each given a block of its own.  Two job shapes: an intent written
# by an older version (punch and write per owner, no reshare), and the
# current one (each owner its own slot: stage, pin, swap, swap, unstage).
# The repairer's own steps and verifier run (tests/fs/repair-job drives a
# job through the intent log); the poisoned page is a synthetic badblocks
# entry, as poison cannot be injected on a loop device.  Both files must
# read the new page, keep every other byte, and no longer map the old
# block, which the pin file keeps; the job must end "done".
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"

mkfs_mount xfs 400M xfs -m reflink=1,rmapbt=1
head -c $((3 * 4096)) /dev/urandom >"$MNT/a"
cp --reflink=always "$MNT/a" "$MNT/b"
sync
cp "$MNT/a" "$WORK/a.orig"
head -c 4096 /dev/urandom >"$WORK/content"
page=$("$DRIVER" --sector "$MNT/a" 4096) # the second page, shared by a and b
echo "$page 8" >"$WORK/badblocks"
mkdir "$WORK/state"

cat >"$WORK/job.json" <<JSON
{ "range_id": 1, "device": "$DEV", "list": "$WORK/badblocks", "mount": "$MNT", "ns_id": "test",
  "page": $page, "mode": "relocate-pin", "can_clear": false, "hole": false,
  "pin": "$MNT/.pmemheal/quarantine/test-$page.pin",
  "owners": [ { "path": "$MNT/a", "offset": 4096, "repair": true, "link": false },
              { "path": "$MNT/b", "offset": 4096, "repair": true, "link": false } ],
  "steps": [ ["pin", 0], ["punch", 0], ["write", 0], ["punch", 1], ["write", 1] ] }
JSON

rc=0
"$DRIVER" "$WORK/state" "$WORK/job.json" "$WORK/content" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 0 ] || { echo "FAIL: the separate job did not end done (exit $rc)"; exit 1; }

# Each file: pages 0 and 2 as before, page 1 the new content.
for f in a b; do
	cmp -n 4096 "$MNT/$f" "$WORK/a.orig" || { echo "FAIL: $f page 0 changed"; exit 1; }
	cmp -i 8192:8192 "$MNT/$f" "$WORK/a.orig" || { echo "FAIL: $f page 2 changed"; exit 1; }
	cmp -i 4096:0 -n 4096 "$MNT/$f" "$WORK/content" || { echo "FAIL: $f page 1 is not the new content"; exit 1; }
	s=$("$DRIVER" --sector "$MNT/$f" 4096)
	[ "$s" != "$page" ] || { echo "FAIL: $f still maps the old block"; exit 1; }
done
# Separate: two writes, two fresh blocks, not one shared.
sa=$("$DRIVER" --sector "$MNT/a" 4096)
sb=$("$DRIVER" --sector "$MNT/b" 4096)
echo "a's page 1 at sector $sa, b's at $sb, the old block at $page"
[ "$sa" != "$sb" ] || { echo "FAIL: separate sharers ended up sharing one block"; exit 1; }
# The pin keeps the old block and its bytes.
cmp -i 0:4096 -n 4096 "$MNT/.pmemheal/quarantine/test-$page.pin" "$WORK/a.orig" ||
	{ echo "FAIL: the pin does not hold the old page"; exit 1; }
echo "OK: an older separate intent repaired both sharers and verified"

# The current shape: each sharer its own slot, with its own bytes.
head -c $((3 * 4096)) /dev/urandom >"$MNT/c"
cp --reflink=always "$MNT/c" "$MNT/d"
sync
cp "$MNT/c" "$WORK/c.orig"
head -c 8192 /dev/urandom >"$WORK/slots"   # slot 0 for c, slot 1 for d
page=$("$DRIVER" --sector "$MNT/c" 4096)
echo "$page 8" >"$WORK/badblocks"
rm -rf "$WORK/state2"; mkdir "$WORK/state2"
cat >"$WORK/job2.json" <<JSON
{ "range_id": 2, "device": "$DEV", "list": "$WORK/badblocks", "mount": "$MNT", "ns_id": "test",
  "page": $page, "mode": "relocate-pin", "can_clear": false, "hole": false, "slots": 2,
  "pin": "$MNT/.pmemheal/quarantine/test-$page.pin",
  "owners": [ { "path": "$MNT/c", "offset": 4096, "repair": true, "link": false, "slot": 0 },
              { "path": "$MNT/d", "offset": 4096, "repair": true, "link": false, "slot": 1 } ],
  "steps": [ ["stage", 0], ["pin", 0], ["swap", 0], ["swap", 1], ["unstage", 0] ] }
JSON
rc=0
"$DRIVER" "$WORK/state2" "$WORK/job2.json" "$WORK/slots" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 0 ] || { echo "FAIL: the two-slot separate job did not end done (exit $rc)"; exit 1; }
i=0
for f in c d; do
	cmp -n 4096 "$MNT/$f" "$WORK/c.orig" || { echo "FAIL: $f page 0 changed"; exit 1; }
	cmp -i 8192:8192 "$MNT/$f" "$WORK/c.orig" || { echo "FAIL: $f page 2 changed"; exit 1; }
	cmp -i 4096:$((i * 4096)) -n 4096 "$MNT/$f" "$WORK/slots" ||
		{ echo "FAIL: $f page 1 is not its own slot's bytes"; exit 1; }
	i=$((i + 1))
done
sc=$("$DRIVER" --sector "$MNT/c" 4096)
sd=$("$DRIVER" --sector "$MNT/d" 4096)
[ "$sc" != "$page" ] && [ "$sd" != "$page" ] && [ "$sc" != "$sd" ] ||
	{ echo "FAIL: blocks c=$sc d=$sd old=$page: not two fresh blocks"; exit 1; }
[ ! -e "$MNT/.pmemheal/quarantine/test-$page.stage" ] || { echo "FAIL: the staging file was left behind"; exit 1; }
cmp -i 0:4096 -n 4096 "$MNT/.pmemheal/quarantine/test-$page.pin" "$WORK/c.orig" ||
	{ echo "FAIL: the pin does not hold the old page"; exit 1; }
echo "OK: OnShared=separate in the current shape gave each sharer its own page and block"
