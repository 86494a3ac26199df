#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad input to pmemheal map: each gives one line naming the culprit and its
# own exit status (pmemheal(1)), nothing crashes, and valgrind finds no
# errors or leaks on the paths that do work.
. "${top_srcdir:?}/tests/fs/lib.sh"

one_line_naming() { # CULPRIT: stderr is one line and names it
	local n
	n=$(wc -l <"$WORK/err")
	if [ "$n" != 1 ] || ! grep -qF -- "$1" "$WORK/err"; then
		echo "FAIL: expected one line naming '$1', got:"
		cat "$WORK/err"
		return 1
	fi
}

mkfs_mount xfs 400M xfs -m reflink=1,rmapbt=1
echo data >"$MNT/f"
sync
size=$(cat "/sys/class/block/$(basename "$DEV")/size")

expect_status 3 "$PMEMHEAL" map /dev/does-not-exist 0
one_line_naming /dev/does-not-exist
expect_status 4 "$PMEMHEAL" map /dev/null 0
one_line_naming /dev/null
expect_status 4 "$PMEMHEAL" map "$MNT/f" 0
one_line_naming "$MNT/f"
expect_status 5 "$PMEMHEAL" map "$DEV" "$((size - 1))+2"
one_line_naming "$DEV"
expect_status 5 "$PMEMHEAL" map "$DEV" "$size"
one_line_naming "$DEV"
for bad in abc 10+0 10+ +5 -5 1+2+3 0x 99999999999999999999 18446744073709551615+1 "1 2"; do
	expect_status 2 "$PMEMHEAL" map "$DEV" -- "$bad"
	one_line_naming "$bad"
done
# Without "--", a leading dash is an option: still a usage error.
expect_status 2 "$PMEMHEAL" map "$DEV" -5
printf '8 8\n9\n' >"$WORK/bb"
expect_status 2 "$PMEMHEAL" map "$DEV" - <"$WORK/bb"
one_line_naming "<stdin>:2"
printf '8 8\n8 zz\n' >"$WORK/bb"
expect_status 2 "$PMEMHEAL" map "$DEV" - <"$WORK/bb"
one_line_naming "<stdin>:2"
expect_status 2 "$PMEMHEAL" map "$DEV" - - </dev/null
expect_status 2 "$PMEMHEAL" map --method magic "$DEV" 0
one_line_naming magic
expect_status 2 "$PMEMHEAL" map "$DEV"
expect_status 2 "$PMEMHEAL" frobnicate
one_line_naming frobnicate

# An empty badblocks list is not an error: there is nothing to map.
expect_status 0 "$PMEMHEAL" map --json "$DEV" - </dev/null
grep -q '"ranges":\[\]' "$WORK/out"

# Nothing mounted: the owners are "unmounted", and the status says so.
new_loop bare 64M
expect_status 6 "$PMEMHEAL" map --json "$DEV" 10+5
grep -q '"type":"unmounted","sector":10,"count":5' "$WORK/out"
one_line_naming "$DEV"

# Unsupported filesystem.
if command -v mkfs.btrfs >/dev/null && grep -qw btrfs /proc/filesystems; then
	mkfs_mount btr 300M btrfs
	expect_status 7 "$PMEMHEAL" map "$DEV" 0
	one_line_naming "unsupported filesystem btrfs"
else
	echo "note: no btrfs here; the unsupported-filesystem status is covered by tests/unit/test-blkdev"
fi

# Not root: GETFSMAP names no owners, so FIEMAP with a notice, status 0.
xdev=${LOOPS[0]}
expect_status 0 as_nobody map --json "$xdev" 0+64
grep -q CAP_SYS_ADMIN "$WORK/err"
grep -q '"method":"fiemap"' "$WORK/out"

# valgrind: no memory errors or leaks, on success and on failure paths.
# It must run the program, not the libtool wrapper script around it. A
# sanitizer build (the asan tier) checks the same under ASan instead.
if [ -n "${PMEMHEAL_SANITIZERS:-}" ]; then
	echo "note: a sanitizer build: ASan checks these runs, not valgrind"
	vg() { "$PMEMHEAL" "$@"; }
else
	command -v valgrind >/dev/null || { echo "FAIL: valgrind is not installed (tests/setup.sh installs it)"; exit 1; }
	real_pmemheal
	vg() {
		env ${PMEMHEAL_LIBS:+LD_LIBRARY_PATH=$PMEMHEAL_LIBS} \
			valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
			--errors-for-leak-kinds=definite,indirect "$PMEMHEAL_ELF" "$@"
	}
	# the program itself runs under valgrind
	expect_status 0 vg --version
fi
expect_status 0 vg map --json "$xdev" 0+20000
expect_status 0 vg map --method fiemap "$xdev" 0+20000
expect_status 5 vg map "$xdev" "$size+1"
expect_status 2 vg map "$xdev" - <"$WORK/bb"
echo PASS
