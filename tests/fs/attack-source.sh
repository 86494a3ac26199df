#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An unprivileged user against Source=: the restore source of their file
# lies in a backup directory they can write (a rule like
# Source=/backup/%r).  Root reads it the way a restore does
# (tests/fs/repair-job --read-source, the repairer's own code).  The user
# puts there a symlink to a root-only file, a symlinked directory, a hard
# link, a FIFO, and races a file against a symlink for a bounded number of
# rounds.  Root must never return a byte of the root-only file, never
# block, and nothing outside the user's own files may change.
. "${top_srcdir:?}/tests/fs/lib.sh"
: "${top_builddir:?}"
DRIVER="$top_builddir/tests/fs/repair-job"
[ -x "$DRIVER" ] || skip "tests/fs/repair-job is not built"
need_cmd setpriv sha256sum

mkfs_mount xfs 400M xfs
M=$MNT
chmod 755 "$M"
head -c 8192 /dev/zero | tr '\0' S >"$M/secret"
chmod 600 "$M/secret"
mkdir -m 700 "$M/rootonly"
head -c 8192 /dev/zero | tr '\0' S >"$M/rootonly/data"
chmod 644 "$M/rootonly/data"
mkdir -p "$M/home/u" "$M/backup/u"
head -c 8192 /dev/zero | tr '\0' D >"$M/home/u/data"
chown -R $USR:$USR "$M/home/u" "$M/backup/u"
before=$(sha256sum "$M/secret" "$M/rootonly/data"; stat -c '%n %s %Y %Z %i' "$M/secret" "$M/rootonly/data")
fail=0

# read_as_restore SOURCE: root reads it for $M/home/u/data, bounded by a
# watchdog (a hang is a failure); sets GOT (read/refused) and leaves the
# page in $WORK/page.
read_as_restore() {
	local rc=0
	rm -f "$WORK/page"
	timeout 60 "$DRIVER" --read-source "$1" "$M/home/u/data" 0 "$WORK/page" >"$WORK/rs.out" 2>&1 || rc=$?
	case $rc in
	0) GOT=read ;;
	1) GOT=refused ;;
	124) echo "FAIL: reading $1 hung"; fail=1; GOT=hung ;;
	*) echo "FAIL: reading $1 exited $rc: $(cat "$WORK/rs.out")"; fail=1; GOT=error ;;
	esac
	if [ -f "$WORK/page" ] && grep -q S "$WORK/page"; then
		echo "FAIL: $1 gave root-only bytes to the user's restore"
		fail=1
	fi
}

expect_refused() {
	read_as_restore "$1"
	[ "$GOT" = refused ] || { echo "FAIL: $1 was $GOT, not refused"; fail=1; }
	echo "$1: $GOT: $(cat "$WORK/rs.out")"
}

for walk in "" 1; do
	export PMEMHEAL_DEBUG_NO_OPENAT2=$walk
	if [ -n "$walk" ]; then echo "== the component walk (no openat2)"; else echo "== openat2"; fi
	as_user ln -sfn "$M/secret" "$M/backup/u/data"
	expect_refused "$M/backup/u/data"
	as_user rm -f "$M/backup/u/data"
	as_user ln -sfn "$M/rootonly" "$M/backup/u/sub"
	expect_refused "$M/backup/u/sub/data"
	as_user rm -f "$M/backup/u/sub"
	# a hard link (refused by protected_hardlinks, or by the permission check)
	if as_user ln "$M/secret" "$M/backup/u/data" 2>/dev/null; then
		expect_refused "$M/backup/u/data"
		as_user rm -f "$M/backup/u/data"
	fi
	as_user mkfifo "$M/backup/u/data"
	expect_refused "$M/backup/u/data"
	as_user rm -f "$M/backup/u/data"
	# the legitimate backup is read
	as_user sh -c "head -c 8192 /dev/zero | tr '\\0' B >'$M/backup/u/data'"
	read_as_restore "$M/backup/u/data"
	[ "$GOT" = read ] && grep -q B "$WORK/page" || { echo "FAIL: the user's own backup was not read"; fail=1; }
	as_user rm -f "$M/backup/u/data"
done
unset PMEMHEAL_DEBUG_NO_OPENAT2

# The race: the user swaps a file of theirs and a symlink to the secret,
# 3000 rounds; root reads 300 times meanwhile.  Readiness through a FIFO.
mkfifo -m 666 "$WORK/ready"
as_user sh -c "
	cd '$M/backup/u' || exit 1
	head -c 8192 /dev/zero | tr '\\0' B >real.tmp
	echo go >'$WORK/ready' || exit 1
	i=0
	while [ \$i -lt 3000 ]; do
		cp real.tmp f.new && mv -f f.new data
		ln -sfn '$M/secret' l.new && mv -Tf l.new data
		i=\$((i + 1))
	done
" &
racer=$!
read -r _ <"$WORK/ready"
reads=0 refused=0
for _ in $(seq 300); do
	read_as_restore "$M/backup/u/data"
	[ "$GOT" = read ] && reads=$((reads + 1))
	[ "$GOT" = refused ] && refused=$((refused + 1))
done
wait "$racer" || { echo "FAIL: the racer failed"; fail=1; }
echo "race: $reads reads of the user's own file, $refused refused"

after=$(sha256sum "$M/secret" "$M/rootonly/data"; stat -c '%n %s %Y %Z %i' "$M/secret" "$M/rootonly/data")
[ "$before" = "$after" ] || { echo "FAIL: a root file changed"; fail=1; }
grep -q D "$M/home/u/data" && [ "$(stat -c %s "$M/home/u/data")" = 8192 ] ||
	{ echo "FAIL: the user's data changed"; fail=1; }
[ "$fail" = 0 ] && echo "OK: Source= attacks refused"
exit "$fail"
