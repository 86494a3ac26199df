#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An unprivileged user attacks the quarantine directory on a filesystem
# whose root is mode 1777 (issue 10, finding 1).  Before pmemheal ever
# ran there, the user makes <mount>/.pmemheal/quarantine, plants a
# symbolic link named like the next quarantine report (pointing at a
# root-only file) and names their own file with newlines.  Root's
# quarantine step must refuse the directory it did not make, with a
# reason naming it, and change nothing else.  Without the attack,
# pmemheal makes .pmemheal itself (root, 0700) and writes a report that
# is one JSON object whatever the file's name.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${STEP_DRIVER:?make check-fs sets STEP_DRIVER}"
need_cmd setpriv

mkfs_mount q 300M xfs -m reflink=1
chmod 1777 "$MNT"
printf 'root only\n' >"$MNT/secret"
chmod 600 "$MNT/secret"
secret_before=$(sha256sum <"$MNT/secret")

# The user's file, its name with newlines and a byte that is not UTF-8,
# in their own directory.
as_user mkdir "$MNT/u"
name=$'f\xff\n","reason":"owned"}\n{"x":"y'
head -c 16384 /dev/zero | as_user dd of="$MNT/u/$name" status=none
sync "$MNT/u/$name"
ino=$(stat -c %i "$MNT/u/$name")
page=$(( $(phys_sector /dev/fd/3 3<"$MNT/u/$name") ))
[ "$page" -gt 0 ] || { echo "FAIL: no sector for the file"; exit 1; }
report="$ino-$name.$page.report.json"

# The trap, set by the user.
as_user mkdir -m 777 "$MNT/.pmemheal" "$MNT/.pmemheal/quarantine"
as_user ln -s "$MNT/secret" "$MNT/.pmemheal/quarantine/$report"

rc=0
"$STEP_DRIVER" quarantine rename:0 "$MNT" "$MNT/u/$name" >"$WORK/out" 2>"$WORK/err" || rc=$?
cat "$WORK/err"
fail=0
[ "$(sha256sum <"$MNT/secret")" = "$secret_before" ] || { echo "FAIL: the root-only file was written through the link"; cat "$MNT/secret"; fail=1; }
[ "$rc" = 1 ] || { echo "FAIL: the step did not refuse (exit $rc)"; fail=1; }
grep -q "$MNT/.pmemheal.*owned by uid $USR" "$WORK/err" || { echo "FAIL: the refusal does not name the directory and its owner"; fail=1; }
[ -f "$MNT/u/$name" ] || { echo "FAIL: the user's file was moved into a directory the user controls"; fail=1; }
[ "$fail" = 0 ] || exit 1

# .pmemheal as a symbolic link to a directory of the user's: refused too.
rm -rf "$MNT/.pmemheal"
as_user mkdir -m 700 "$MNT/u/fake"
as_user ln -s "$MNT/u/fake" "$MNT/.pmemheal"
rc=0
"$STEP_DRIVER" quarantine rename:0 "$MNT" "$MNT/u/$name" >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 1 ] && grep -q "$MNT/.pmemheal is not a directory" "$WORK/err" ||
	{ echo "FAIL: a symbolic link .pmemheal was used (exit $rc)"; cat "$WORK/err"; exit 1; }
[ -z "$(ls -A "$MNT/u/fake")" ] || { echo "FAIL: something was put through the link"; ls -la "$MNT/u/fake"; exit 1; }

# No attack: pmemheal makes its own directories and writes a report that
# keeps the name whole.
rm -f "$MNT/.pmemheal"
"$STEP_DRIVER" quarantine rename:0 "$MNT" "$MNT/u/$name"
for d in "$MNT/.pmemheal" "$MNT/.pmemheal/quarantine"; do
	[ "$(stat -c '%u %a %F' "$d")" = "0 700 directory" ] || { echo "FAIL: $d is $(stat -c '%u %a %F' "$d")"; exit 1; }
done
[ ! -e "$MNT/u/$name" ] || { echo "FAIL: the file was not moved"; exit 1; }
python3 - "$MNT/.pmemheal/quarantine/$report" "$MNT/u/$name" "$ino" <<'PY'
import json, os, sys
with open(sys.argv[1], encoding="utf-8") as f:  # valid UTF-8, or this raises
    text = f.read()
assert text.count("\n") == 1, "the report is not one line: %r" % text
r = json.loads(text)
want = os.fsencode(sys.argv[2])
assert r["path"] == want.decode("utf-8", "replace"), r
assert bytes(r["path_bytes"]) == want, r
assert r["inode"] == int(sys.argv[3]), r
PY
[ "$(stat -c '%u %a' "$MNT/.pmemheal/quarantine/$report")" = "0 600" ] || { echo "FAIL: the report is readable by others"; exit 1; }
# The user cannot read or remove what is in there.
if as_user ls "$MNT/.pmemheal/quarantine" >/dev/null 2>&1 || as_user rm -f "$MNT/.pmemheal/quarantine/$report" 2>/dev/null; then
	echo "FAIL: the user reaches into the quarantine"; exit 1
fi
echo PASS
