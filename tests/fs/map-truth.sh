#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# pmemheal map against an independently computed ground truth, on random
# trees in XFS (reflink + rmapbt), XFS without rmapbt, and ext4.  Every
# sector of every random range must have exactly the owners the truth
# names; where two methods apply they must agree; without root, XFS falls
# back to FIEMAP with a notice and still matches.
. "${top_srcdir:?}/tests/fs/lib.sh"
need_cmd dumpe2fs debugfs setpriv

SEEDS=${PMEMHEAL_SEEDS:-"11 12"}
echo "seeds: $SEEDS (set PMEMHEAL_SEEDS to replay)"

run_config() {
	local name=$1 type=$2 seed=$3
	shift 3
	mkfs_mount "$name" 600M "$type" "$@"
	python3 "$FSDIR/mktree.py" "$MNT" "$seed" 2
	if [ "$type" = ext4 ]; then
		# ext4's GETFSMAP reads the in-memory allocator, which counts blocks
		# preallocated for future small files as in use; dumpe2fs reads the
		# on-disk bitmaps, which call them free.  A remount drops those
		# preallocations so that the two sources of truth agree.
		umount "$MNT"
		mount "$DEV" "$MNT"
	fi
	python3 "$FSDIR/ranges.py" "$MNT" "$DEV" "$seed" 60 >"$WORK/$name.ranges"
	mapfile -t ranges <"$WORK/$name.ranges"
	echo "== $name (seed $seed): ${#ranges[@]} ranges"

	"$PMEMHEAL" map --json "$DEV" "${ranges[@]}" >"$WORK/$name.auto.json"
	python3 "$FSDIR/truth.py" check "$MNT" "$DEV" "$type" "$WORK/$name.auto.json" | tee "$WORK/$name.checked"
	# The random ranges must have reached the rare owners too.
	grep -q "'attr'" "$WORK/$name.checked"
	grep -q "'directory'" "$WORK/$name.checked"

	"$PMEMHEAL" map --json --method fiemap "$DEV" "${ranges[@]}" >"$WORK/$name.fiemap.json"
	python3 "$FSDIR/truth.py" check "$MNT" "$DEV" "$type" "$WORK/$name.fiemap.json"
	grep -q '"method":"fiemap"' "$WORK/$name.fiemap.json"

	"$PMEMHEAL" map --json --method getfsmap "$DEV" "${ranges[@]}" \
		>"$WORK/$name.getfsmap.json" 2>"$WORK/$name.getfsmap.err"
	python3 "$FSDIR/truth.py" check "$MNT" "$DEV" "$type" "$WORK/$name.getfsmap.json"
	python3 "$FSDIR/truth.py" agree "$WORK/$name.getfsmap.json" "$WORK/$name.fiemap.json"
}

for seed in $SEEDS; do
	run_config "xfs-rmap-$seed" xfs "$seed" -m reflink=1,rmapbt=1
	grep -q '"method":"getfsmap"' "$WORK/xfs-rmap-$seed.auto.json"

	# Without CAP_SYS_ADMIN, GETFSMAP names no owners: FIEMAP, with a notice.
	as_nobody map --json "$DEV" "${ranges[@]}" >"$WORK/nobody.json" 2>"$WORK/nobody.err"
	grep -q "CAP_SYS_ADMIN" "$WORK/nobody.err" || { cat "$WORK/nobody.err"; exit 1; }
	grep -q '"method":"fiemap"' "$WORK/nobody.json"
	python3 "$FSDIR/truth.py" check --unprivileged "$MNT" "$DEV" xfs "$WORK/nobody.json"

	run_config "xfs-normap-$seed" xfs "$seed" -m reflink=1,rmapbt=0
	grep -q '"method":"fiemap"' "$WORK/xfs-normap-$seed.auto.json"
	grep -q "does not name file owners" "$WORK/xfs-normap-$seed.getfsmap.err"

	run_config "ext4-$seed" ext4 "$seed"
	grep -q '"method":"fiemap"' "$WORK/ext4-$seed.auto.json"
	grep -q "does not name file owners" "$WORK/ext4-$seed.getfsmap.err"
done
echo "PASS"
