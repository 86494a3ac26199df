#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The map demo, without QEMU: build pmemheal, make a scratch XFS (reflink,
# rmapbt) on a loop device with a few files, reflink clones and a hard
# link, and show `pmemheal map` naming the owners of some ranges.  Cleans
# up after itself.
. "$(dirname "$0")/setup.sh"

install_deps "${BUILD_DEPS[@]}" xfsprogs util-linux
build
PMEMHEAL=$BUILD/cli/pmemheal

WORK=$(mktemp -d /tmp/pmemheal-demo.XXXXXX)
MNT=$WORK/mnt
DEV=
cleanup() {
	set +e
	mountpoint -q "$MNT" && umount "$MNT"
	[ -n "$DEV" ] && losetup -d "$DEV"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

truncate -s 512M "$WORK/disk.img"
DEV=$(losetup -f --show "$WORK/disk.img")
mkfs.xfs -q -m reflink=1,rmapbt=1 "$DEV"
mkdir "$MNT"
mount "$DEV" "$MNT"
mkdir -p "$MNT/db" "$MNT/snap"
head -c 40960 /dev/urandom >"$MNT/db/table.dat"
head -c 8192 /dev/urandom >"$MNT/db/log.wal"
cp --reflink=always "$MNT/db/table.dat" "$MNT/snap/table.dat"  # a reflink clone
cp --reflink=always "$MNT/snap/table.dat" "$MNT/snap/table.old" # a clone of the clone
ln "$MNT/db/log.wal" "$MNT/snap/log.wal"                        # a hard link
sync

run xfs_io -r -c fiemap "$MNT/db/table.dat"
table=$(xfs_io -r -c fiemap "$MNT/db/table.dat" | sed -n '2s/.*\]: *\([0-9][0-9]*\)\.\..*/\1/p')
wal=$(xfs_io -r -c fiemap "$MNT/db/log.wal" | sed -n '2s/.*\]: *\([0-9][0-9]*\)\.\..*/\1/p')

echo
echo "Pretend the kernel listed these bad sectors (badblocks format):"
printf '%s 8\n%s 1\n' $((table + 16)) "$wal" | tee "$WORK/badblocks"

say "pmemheal map $DEV - < badblocks"
"$PMEMHEAL" map "$DEV" - <"$WORK/badblocks"
run "$PMEMHEAL" map "$DEV" 0+256
say "pmemheal map --json $DEV $((table + 16))+8"
"$PMEMHEAL" map --json "$DEV" $((table + 16))+8 | python3 -m json.tool 2>/dev/null ||
	"$PMEMHEAL" map --json "$DEV" $((table + 16))+8
