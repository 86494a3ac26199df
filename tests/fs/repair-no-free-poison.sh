#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A poisoned block is never given back to the allocator.  Without reflink
# on a bus that clears, delete and punch write zeros over the page in
# place (the bus clears the poison) and only then free it; nothing pins
# the block.  When the kernel still lists the page after that write (the
# bus did not clear after all), the unlink or punch must not run: the job
# stays pending, the file keeps its block, and the page is not called
# cleared.  The kernel's list is a badblocks file that keeps listing the
# page (poison cannot be injected on a loop device), so a write never
# clears it here.  Before this was checked the file was unlinked (and the
# page punched) with the page still listed, and the job ended done.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"

mkfs_mount ext4 200M ext4
head -c 4096 /dev/zero >"$WORK/zeros"
fail=0
n=0
for action in delete punch; do
	n=$((n + 1))
	f=$MNT/$action.dat
	head -c $((4 * 4096)) /dev/urandom >"$f"
	sync
	page=$("$DRIVER" --sector "$f" 4096)
	echo "$page 8" >"$WORK/badblocks"
	rm -rf "$WORK/state$n"; mkdir "$WORK/state$n"
	last=unlink; [ "$action" = punch ] && last=punch
	cat >"$WORK/job$n.json" <<JSON
{ "range_id": $n, "device": "$DEV", "list": "$WORK/badblocks", "mount": "$MNT", "ns_id": "test",
  "page": $page, "fs_page": $page, "mode": "$action", "can_clear": true, "hole": false,
  "owners": [ { "path": "$f", "offset": 4096, "repair": true, "link": false } ],
  "steps": [ ["write", 0], ["$last", 0] ] }
JSON
	rc=0
	"$DRIVER" "$WORK/state$n" "$WORK/job$n.json" "$WORK/zeros" >"$WORK/out" 2>&1 || rc=$?
	cat "$WORK/out"
	[ "$rc" = 1 ] || { echo "FAIL: $action: the job ended done with the page still listed"; fail=1; }
	grep -q "intent running: step $last of $f: the kernel still lists the poisoned page of $f" "$WORK/out" ||
		{ echo "FAIL: $action: the job is not pending with the reason"; fail=1; }
	[ -e "$f" ] || { echo "FAIL: $action: the file was unlinked with its poisoned block"; fail=1; }
	[ -e "$f" ] && [ "$("$DRIVER" --sector "$f" 4096)" = "$page" ] ||
		{ echo "FAIL: $action: the poisoned block was freed"; fail=1; }
done
[ $fail = 0 ] && echo "OK: the poisoned block was kept, and the jobs stay pending"
exit $fail
