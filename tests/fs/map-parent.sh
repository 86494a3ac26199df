#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inode to path through XFS parent pointers (mkfs.xfs -n parent=1, Linux
# 6.10+).  Debian 12's xfsprogs cannot make such a filesystem, so trixie's
# mkfs.xfs is fetched into the lab's package cache and run with trixie's own
# loader; nothing is installed.  The paths must equal a tree walk's, the
# JSON must say they came from parent pointers, and without CAP_SYS_ADMIN
# the walk takes over.
. "${top_srcdir:?}/tests/fs/lib.sh"
LAB_SKIP_FILE=$WORK/skip
. "$top_srcdir/tests/lab/host/common.sh"

# The packages whose libraries mkfs.xfs links (ldd), not all of xfsprogs'
# Depends: those are for xfs_scrub_all and friends.
MKFS_PKGS=(xfsprogs libc6 libblkid1 libuuid1 libinih1 liburcu8t64)
(
	lab_lock
	lab_apt_update trixie
	mapfile -t pv < <(lab_pkg_versions trixie "${MKFS_PKGS[@]}")
	mapfile -t debs < <(lab_fetch_debs trixie "${pv[@]}")
	mkdir -p "$WORK/trixie"
	for d in "${debs[@]}"; do dpkg -x "$d" "$WORK/trixie"; done
) || { [ -s "$WORK/skip" ] && skip "$(cat "$WORK/skip")"; exit 1; }
lib=$WORK/trixie/usr/lib/x86_64-linux-gnu
mkfs_new() { "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$WORK/trixie/usr/sbin/mkfs.xfs" "$@"; }
echo "mkfs.xfs: $(mkfs_new -V)"

new_loop pptr 600M
mkfs_new -q -f -n parent=1 -m reflink=1,rmapbt=1 "$DEV"
MNT=$WORK/pptr
mkdir -p "$MNT"
mount "$DEV" "$MNT" 2>"$WORK/mount.err" || skip "this kernel cannot mount XFS with parent pointers: $(cat "$WORK/mount.err")"
MOUNTS+=("$MNT")

python3 "$FSDIR/mktree.py" "$MNT" 21
# Renames and deep paths: parent pointers must follow them.
mkdir -p "$MNT/a/b/c/d/e"
mv "$MNT/d0" "$MNT/a/b/c/d/e/moved"
python3 "$FSDIR/ranges.py" "$MNT" "$DEV" 21 40 >"$WORK/ranges"
mapfile -t ranges <"$WORK/ranges"

"$PMEMHEAL" map --json "$DEV" "${ranges[@]}" >"$WORK/pptr.json"
grep -q '"paths_method":"parent-pointers"' "$WORK/pptr.json"
python3 "$FSDIR/truth.py" check "$MNT" "$DEV" xfs "$WORK/pptr.json"
grep -q '/a/b/c/d/e/moved/' "$WORK/pptr.json" || { echo "FAIL: no path through the renamed directory"; exit 1; }

# Without privileges, handles cannot be opened: the walk answers instead.
as_nobody map --json "$DEV" "${ranges[@]}" >"$WORK/nobody.json" 2>"$WORK/nobody.err"
grep -q '"paths_method":"walk"' "$WORK/nobody.json"
python3 "$FSDIR/truth.py" check --unprivileged "$MNT" "$DEV" xfs "$WORK/nobody.json"
echo PASS
