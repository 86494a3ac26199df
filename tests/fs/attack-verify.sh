#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The verifier reaches a user's file the way the steps do: through its
# directory, opened beneath the mount with no symbolic link on the way.
# A relocate-file job whose steps are done goes straight to verify(); its
# path leads through a directory link that a user planted (to a directory
# holding a file with the repaired bytes).  Following it, the verifier
# would call the job done while the user's own file was never checked
# (before: open(path, O_NOFOLLOW) guarded only the last component).  Now
# the job must fail, naming the file, and nothing may change.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"

mkfs_mount xfs 300M xfs -m reflink=1,rmapbt=1
head -c 4096 /dev/urandom >"$WORK/content"
mkdir "$MNT/elsewhere" "$MNT/user"
# the "repaired" file the link leads to: page 1 holds the job's bytes
{ head -c 4096 /dev/zero; cat "$WORK/content"; } >"$MNT/elsewhere/f"
chmod 0700 "$MNT/elsewhere"
ln -s ../elsewhere "$MNT/user/d"
sync
# everything but the quarantine, which is ours
tree() { (cd "$MNT" && find . -mindepth 1 -path ./.pmemheal -prune -o -printf '%p %i %s %T@\n' | sort | sha256sum); }
before=$(tree)

mkdir "$WORK/state"
cat >"$WORK/job.json" <<JSON
{ "range_id": 1, "device": "$DEV", "list": "/dev/null", "mount": "$MNT", "ns_id": "test",
  "page": 8, "fs_page": 8, "mode": "relocate-file", "can_clear": false, "hole": false,
  "owners": [ { "path": "$MNT/user/d/f", "offset": 4096, "repair": true, "link": false } ],
  "steps": [] }
JSON
rc=0
"$DRIVER" "$WORK/state" "$WORK/job.json" "$WORK/content" >"$WORK/out" 2>&1 || rc=$?
cat "$WORK/out"
[ "$rc" = 1 ] || { echo "FAIL: verify followed the planted link and called the job done (exit $rc)"; exit 1; }
grep -q "intent failed: $MNT/user/d/f: not the repaired copy" "$WORK/out" ||
	{ echo "FAIL: the failure does not name the file and why"; exit 1; }
[ "$(tree)" = "$before" ] || { echo "FAIL: something outside the quarantine changed"; exit 1; }
echo "OK: the verifier refused the planted directory link"
