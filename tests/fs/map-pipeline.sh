#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The pipeline's one mapping function, as `pmemheal scan` and `pmemheal
# status -v` call it, on a real filesystem: the owners it returns (file
# paths, the kind of metadata) are still readable after it returned.  They
# point into the mapper; a version that freed the mapper before returning
# passed the lab by luck and crashed `pmemheal scan` one run in five.  The
# sanitizer tier runs this driver too, which sees such a read at once.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/pipeline-map"
SECTOR="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] && [ -x "$SECTOR" ] || skip "tests/fs/pipeline-map is not built"

mkfs_mount xfs 300M xfs -m reflink=1,rmapbt=1
mkdir "$MNT/dir"
head -c $((4 * 4096)) /dev/urandom >"$MNT/dir/file"
sync
page=$("$SECTOR" --sector "$MNT/dir/file" 4096)
"$DRIVER" "$DEV" "$page" 8 >"$WORK/out"
cat "$WORK/out"
fail=0
for how in scan status; do
	grep -qx "$how: file $MNT/dir/file" "$WORK/out" || { echo "FAIL: $how does not name the file"; fail=1; }
done
grep -q "^summary: file $MNT/dir/file (inode " "$WORK/out" || { echo "FAIL: the summary does not name the file"; fail=1; }
"$DRIVER" "$DEV" 0 1 >"$WORK/out0"
cat "$WORK/out0"
for how in scan status; do
	grep -Eq "^$how: metadata [a-z]" "$WORK/out0" || { echo "FAIL: $how does not say which metadata"; fail=1; }
done
[ $fail = 0 ] && echo "OK: the owners read back after mapping"
exit $fail
