#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A filesystem that has shut down (XFS does after a machine check on its
# metadata) answers no query, not even open() of its mount point.  pmemheal
# map then reads XFS's btrees from the device.  On a quiesced filesystem
# that must give the owners GETFSMAP gave just before, sector by sector,
# except that nothing is called free (the log may have allocated it) and
# files have no paths.  A file written after the last checkpoint must not
# be called free.  ext4 keeps answering GETFSMAP; its notice says why files
# are unknown.
. "${top_srcdir:?}/tests/fs/lib.sh"

check_xfs() { # NAME MKFS-OPTIONS
	local name=$1 fresh
	mkfs_mount "$name" 600M xfs "$2"
	python3 "$FSDIR/mktree.py" "$MNT" 31
	xfs_freeze -f "$MNT" # writes every log item in place: disk == memory
	xfs_freeze -u "$MNT"
	python3 "$FSDIR/ranges.py" "$MNT" "$DEV" 31 50 >"$WORK/$name.ranges"
	mapfile -t ranges <"$WORK/$name.ranges"
	"$PMEMHEAL" map --json "$DEV" "${ranges[@]}" >"$WORK/$name.live.json"

	head -c 65536 /dev/urandom >"$MNT/fresh" # only in the log
	sync -f "$MNT/fresh"
	fresh=$(phys_sector "$MNT/fresh")
	xfs_io -x -c shutdown "$MNT"

	expect_status 0 "$PMEMHEAL" map --json "$DEV" "${ranges[@]}"
	cp "$WORK/out" "$WORK/$name.down.json"
	grep -q "has shut down" "$WORK/err"
	grep -q '"notice":"[^"]*has shut down' "$WORK/$name.down.json"
	python3 "$FSDIR/truth.py" shutdown "$WORK/$name.live.json" "$WORK/$name.down.json"

	expect_status 0 "$PMEMHEAL" map --json "$DEV" "$fresh+16"
	if grep -q '"type":"free"' "$WORK/out"; then
		echo "FAIL: a block written after the checkpoint is called free"
		cat "$WORK/out"
		return 1
	fi
}

check_xfs xfs-rmap -mreflink=1,rmapbt=1
grep -q 'reverse map' "$WORK/err"
check_xfs xfs-normap -mreflink=1,rmapbt=0
grep -q 'headers, btrees and inode chunks' "$WORK/err"

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
