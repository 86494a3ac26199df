#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A repair that fails after it began is never final.  Real XFS with
# reflink (no pmem: the "poisoned" page is whatever block the owners map),
# the repairer's own steps run from its intent log (tests/fs/intent-run):
#   - no space (ENOSPC), an I/O error (EIO) or a device gone (ENODEV) at
#     any step keeps the intent running with its repaired pages; the next
#     resume finishes it and every file then holds its own repaired page;
#   - before that, no owner ever reads zeros or a hole: the new page is
#     staged on a fresh block first and swapped in by one FICLONERANGE;
#   - sharers get their own pages; identical ones are shared again,
#     different ones are not; a sharer reported only is never changed;
#   - a full filesystem (real ENOSPC), and an intent written by an older
#     version (punch, then write) that hits it after its punch;
#   - a file its user removes meanwhile ends the job; an unmounted
#     filesystem keeps it pending until it is back.
. "${top_srcdir:?}/tests/fs/lib.sh"

RUN="${top_builddir:?}/tests/fs/intent-run"
[ -x "$RUN" ] || skip "needs $RUN (make check builds it)"
"$RUN" faults || skip "needs a build with --enable-fault-injection"
need_cmd cp cmp dd fallocate mkfifo

mkfs_mount pend 512M xfs -m reflink=1
STATE="$WORK/state"
mkdir -p "$STATE" "$MNT/db" "$MNT/cache" "$MNT/home"

page() { # FILE N: page N of FILE on stdout
	dd if="$1" bs=4096 skip="$2" count=1 status=none
}

# same_page FILE N EXPECTED-PAGE-FILE
same_page() {
	if ! cmp -s <(page "$1" "$2") "$3"; then
		echo "FAIL: $1 page $2 is not $(basename "$3") (first bytes: $(page "$1" "$2" | head -c 16 | od -An -c | tr -s ' '))"
		return 1
	fi
}

# block FILE: the physical sector of its page 1
block() {
	xfs_io -r -c 'fiemap 4096 4096' "$1" | sed -n '2s/.*\]: *\([0-9][0-9]*\)\.\..*/\1/p'
}

running() {
	"$RUN" running "$STATE"
}

# fresh: db/a.dat (4 pages) shared by reflink with cache/a.dat and home/a.dat,
# as a plain cp on XFS makes them; R and S are repaired pages.
fresh() {
	rm -rf "$STATE" "$MNT/db/a.dat" "$MNT/cache/a.dat" "$MNT/home/a.dat" "$MNT/.pmemheal"
	mkdir -p "$STATE"
	head -c 16384 /dev/urandom >"$WORK/orig"
	head -c 10000 /dev/urandom >"$WORK/orig-short"
	cp "$WORK/orig" "$MNT/db/a.dat"
	cp --reflink=always "$MNT/db/a.dat" "$MNT/cache/a.dat"
	cp --reflink=always "$MNT/db/a.dat" "$MNT/home/a.dat"
	sync
	page "$WORK/orig" 1 >"$WORK/O"
	head -c 4096 /dev/urandom >"$WORK/R"
	head -c 4096 /dev/urandom >"$WORK/S"
}

# untouched FILE: every page as it was
untouched() {
	cmp -s "$1" "$WORK/orig" || { echo "FAIL: $1 changed"; return 1; }
}

# others_intact FILE: pages 0, 2, 3 and the size as they were
others_intact() {
	local n
	for n in 0 2 3; do
		cmp -s <(page "$1" $n) <(page "$WORK/orig" $n) || { echo "FAIL: $1 page $n changed"; return 1; }
	done
	[ "$(stat -c %s "$1")" = 16384 ] || { echo "FAIL: $1 changed size"; return 1; }
}

fail=0
expect() { # WHAT CMD...: run a check, count its failure
	local what=$1
	shift
	"$@" || { echo "  ... in: $what"; fail=1; }
}

# 1. ENOSPC at the first swap: pending, every file whole; resume finishes;
#    db and home got different pages (not shared), cache (report) untouched.
fresh
PMEMHEAL_DEBUG_ERROR=swap:1:ENOSPC "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/db/a.dat:0" "$MNT/cache/a.dat:-" "$MNT/home/a.dat:1" -- "$WORK/R" "$WORK/S" >/dev/null
expect "ENOSPC at swap: still running" [ "$(running)" = 1 ]
for f in db cache home; do
	expect "ENOSPC at swap: $f whole" untouched "$MNT/$f/a.dat"
done
"$RUN" resume "$STATE" >/dev/null
expect "ENOSPC at swap: done after resume" [ "$(running)" = 0 ]
expect "ENOSPC at swap: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "ENOSPC at swap: home has S" same_page "$MNT/home/a.dat" 1 "$WORK/S"
expect "ENOSPC at swap: cache untouched" untouched "$MNT/cache/a.dat"
for f in db home; do
	expect "ENOSPC at swap: rest of $f" others_intact "$MNT/$f/a.dat"
done
expect "different pages are not shared" [ "$(block "$MNT/db/a.dat")" != "$(block "$MNT/home/a.dat")" ]
expect "staging file removed" [ ! -e "$MNT/.pmemheal/quarantine/test-$(block "$MNT/cache/a.dat").stage" ]

# 2. EIO at the second swap, after the first gave db its page: pending;
#    resume gives home its page; identical pages are shared again.
fresh
PMEMHEAL_DEBUG_ERROR=swap:2:EIO "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/db/a.dat:0" "$MNT/home/a.dat:0" -- "$WORK/R" >/dev/null
expect "EIO at swap 2: still running" [ "$(running)" = 1 ]
expect "EIO at swap 2: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "EIO at swap 2: home whole" untouched "$MNT/home/a.dat"
"$RUN" resume "$STATE" >/dev/null
expect "EIO at swap 2: done after resume" [ "$(running)" = 0 ]
expect "EIO at swap 2: home has R" same_page "$MNT/home/a.dat" 1 "$WORK/R"
expect "identical pages are shared again" [ "$(block "$MNT/db/a.dat")" = "$(block "$MNT/home/a.dat")" ]

# 3. The device goes away while staging (ENODEV): pending, whole; resume.
fresh
PMEMHEAL_DEBUG_ERROR=stage:1:ENODEV "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/db/a.dat:0" "$MNT/home/a.dat:-" -- "$WORK/R" >/dev/null
expect "ENODEV at stage: still running" [ "$(running)" = 1 ]
expect "ENODEV at stage: db whole" untouched "$MNT/db/a.dat"
"$RUN" resume "$STATE" >/dev/null
expect "ENODEV at stage: done after resume" [ "$(running)" = 0 ]
expect "ENODEV at stage: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "ENODEV at stage: home untouched" untouched "$MNT/home/a.dat"

# fill: no block left for file data (fallocate in halving sizes, then
# single blocks until the filesystem says ENOSPC)
fill() {
	local size i=0
	size=$(($(stat -f -c '%a*%S' "$MNT")))
	while [ "$size" -ge 4096 ]; do
		if fallocate -l "$size" "$MNT/fill.$i" 2>/dev/null; then
			i=$((i + 1))
		else
			rm -f "$MNT/fill.$i"
			size=$((size / 2 / 4096 * 4096))
		fi
	done
	while dd if=/dev/zero of="$MNT/fill.$i" bs=4096 count=1 status=none 2>/dev/null; do
		i=$((i + 1))
	done
	sync
}

# run_paused STEP ARGS...: run a job that stops before STEP; fill the
# filesystem there; let it go on.
run_paused() {
	local step=$1 pid
	shift
	rm -f "$WORK/fifo"
	mkfifo "$WORK/fifo"
	PMEMHEAL_DEBUG_PAUSE_BEFORE=$step PMEMHEAL_DEBUG_PAUSE_FIFO="$WORK/fifo" \
		"$RUN" run "$STATE" "$MNT" "$@" >/dev/null &
	pid=$!
	read -r _ <"$WORK/fifo" # "paused STEP"
	fill
	: >"$WORK/fifo"
	wait "$pid" || true
}

# 4. A real full filesystem: the new page has no block.  Nothing is given
#    up; freed space, resume finishes it.
fresh
run_paused stage 0 4096 "$MNT/db/a.dat:0" "$MNT/home/a.dat:-" -- "$WORK/R"
expect "full fs: still running" [ "$(running)" = 1 ]
expect "full fs: db whole" untouched "$MNT/db/a.dat"
rm -f "$MNT"/fill.*
"$RUN" resume "$STATE" >/dev/null
expect "full fs: done after resume" [ "$(running)" = 0 ]
expect "full fs: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "full fs: home untouched" untouched "$MNT/home/a.dat"

# 5. An intent an older version wrote (pin, punch, write): the write after
#    its punch meets a full filesystem.  It stays running with its page and
#    resume writes it (before: marked failed, the page a hole of zeros).
fresh
run_paused punch 1 4096 "$MNT/db/a.dat:0" -- "$WORK/R"
expect "legacy, full fs after punch: still running" [ "$(running)" = 1 ]
rm -f "$MNT"/fill.*
"$RUN" resume "$STATE" >/dev/null
expect "legacy: done after resume" [ "$(running)" = 0 ]
expect "legacy: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "legacy: rest of db" others_intact "$MNT/db/a.dat"

# 6. A file whose last page is partly past its end keeps its size.
fresh
cp "$WORK/orig-short" "$MNT/db/b.dat"
cp --reflink=always "$MNT/db/b.dat" "$MNT/home/b.dat"
sync
PMEMHEAL_DEBUG_ERROR=swap:1:EIO "$RUN" run "$STATE" "$MNT" 0 8192 \
	"$MNT/db/b.dat:0" "$MNT/home/b.dat:-" -- "$WORK/R" >/dev/null
"$RUN" resume "$STATE" >/dev/null
expect "short: done" [ "$(running)" = 0 ]
expect "short: size kept" [ "$(stat -c %s "$MNT/db/b.dat")" = 10000 ]
expect "short: tail page" cmp -s <(dd if="$MNT/db/b.dat" bs=4096 skip=2 status=none) <(head -c $((10000 - 8192)) "$WORK/R")
expect "short: home untouched" cmp -s "$MNT/home/b.dat" "$WORK/orig-short"


# 7. While a job is pending, a sharer's user removes their file: the job
#    ends (a conflict, not pending for ever), the others keep their pages.
fresh
PMEMHEAL_DEBUG_ERROR=swap:2:ENOSPC "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/db/a.dat:0" "$MNT/home/a.dat:1" -- "$WORK/R" "$WORK/S" >/dev/null
expect "removed: pending first" [ "$(running)" = 1 ]
rm "$MNT/home/a.dat"
"$RUN" resume "$STATE" >/dev/null
expect "removed: not pending any more" [ "$(running)" = 0 ]
expect "removed: db keeps R" same_page "$MNT/db/a.dat" 1 "$WORK/R"

# 8. The filesystem goes away (unmounted) while a job is pending: it stays
#    pending; once it is back, resume finishes it.
fresh
PMEMHEAL_DEBUG_ERROR=swap:1:EIO "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/db/a.dat:0" "$MNT/home/a.dat:-" -- "$WORK/R" >/dev/null
umount "$MNT"
"$RUN" resume "$STATE" >/dev/null
expect "unmounted: still pending" [ "$(running)" = 1 ]
mount -t xfs "$DEV" "$MNT"
"$RUN" resume "$STATE" >/dev/null
expect "remounted: done" [ "$(running)" = 0 ]
expect "remounted: db has R" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "remounted: home untouched" untouched "$MNT/home/a.dat"


# 9. Sharers with different rules (10-db.rule restore, 80-cache.rule
#    delete): the database file gets its page, the cache file is deleted,
#    a third sharer without a rule is untouched; an EIO on the way first.
fresh
PMEMHEAL_DEBUG_ERROR=swap:1:EIO "$RUN" run "$STATE" "$MNT" 0 4096 \
	"$MNT/cache/a.dat:D" "$MNT/db/a.dat:0" "$MNT/home/a.dat:-" -- "$WORK/R" >/dev/null
expect "sharers: pending" [ "$(running)" = 1 ]
expect "sharers: db whole while pending" untouched "$MNT/db/a.dat"
"$RUN" resume "$STATE" >/dev/null
expect "sharers: done" [ "$(running)" = 0 ]
expect "sharers: cache deleted" [ ! -e "$MNT/cache/a.dat" ]
expect "sharers: db has its page" same_page "$MNT/db/a.dat" 1 "$WORK/R"
expect "sharers: rest of db" others_intact "$MNT/db/a.dat"
expect "sharers: home untouched" untouched "$MNT/home/a.dat"

exit $fail
