#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# OnShared=separate end to end on XFS with reflink: a page shared by two
# files, each repaired by its own write into a fresh block (no reshare).
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
echo "OK: OnShared=separate repaired both sharers and verified"
