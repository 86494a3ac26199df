#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A filesystem that has shut down (XFS does after a machine check on its
# metadata) answers no query.  pmemheal map still names what the on-disk
# superblock locates, says "unknown" with the remedy for the rest, and
# explains in a notice, instead of failing.
. "${top_srcdir:?}/tests/fs/lib.sh"

mkfs_mount x 400M xfs -m reflink=1,rmapbt=1
echo data >"$MNT/f"
sync
f=$(phys_sector "$MNT/f")
ag1=$(xfs_db -r -c 'sb 0' -c 'print agblocks' "$DEV" | awk '{print $3 * 8}')
log=$(xfs_io -r -c 'fsmap -d' "$MNT" | sed -n 's/.*\[\([0-9]*\)\.\.[0-9]*\]: *journalling log.*/\1/p')
xfs_io -x -c shutdown "$MNT"

expect_status 0 "$PMEMHEAL" map --json "$DEV" "$ag1+8" "$log+8" "$f+8"
grep -q "has shut down" "$WORK/err"
grep -q '"notice":"[^"]*shut down' "$WORK/out"
python3 - "$WORK/out" "$ag1" "$log" "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ag1, log, f = (int(x) for x in sys.argv[2:5])
got = [(r["owners"][0]["type"], r["owners"][0].get("what"), r["owners"][0].get("reason", "")) for r in d["ranges"]]
print(got)
assert len(d["ranges"]) == 3 and all(len(r["owners"]) == 1 for r in d["ranges"])
assert got[0][:2] == ("metadata", "ag-headers"), got[0]
assert got[1][:2] == ("metadata", "log"), got[1]
assert got[2][0] == "unknown" and "xfs_repair" in got[2][2], got[2]
PY

# ext4 keeps answering GETFSMAP, but files cannot be opened: the notice
# says why their blocks are unknown.
mkfs_mount e 200M ext4
echo data >"$MNT/f"
sync
f=$(phys_sector "$MNT/f")
xfs_io -x -c shutdown "$MNT"
expect_status 0 "$PMEMHEAL" map --json "$DEV" 0+8 "$f+8"
grep -q "I/O errors: has the filesystem shut down" "$WORK/err"
grep -q '"type":"metadata","sector":0,"count":8,"what":"superblock"' "$WORK/out"
grep -q "\"type\":\"unknown\",\"sector\":$f" "$WORK/out"
echo PASS
