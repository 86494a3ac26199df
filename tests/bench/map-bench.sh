#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make bench`: mapping performance on a loop XFS (reflink, rmapbt) with
# BENCH_FILES small files (default 250000) plus a reflink clone of every
# tenth.  Prints a table; asserts nothing.  Every ratio compares two runs
# of this same invocation, each after dropping the caches (cold) and again
# warm.
set -euo pipefail
: "${top_builddir:=.}" "${top_srcdir:=.}"
BENCH=$top_builddir/tests/bench/map-bench
FILES=${BENCH_FILES:-250000}

[ "$(id -u)" = 0 ] || { echo "bench: needs root (loop devices, mounts, drop_caches)"; exit 77; }
WORK=$(mktemp -d /tmp/pmemheal-bench.XXXXXX)
DEV=
cleanup() {
	set +e
	mountpoint -q "$WORK/mnt" && umount "$WORK/mnt"
	[ -n "$DEV" ] && losetup -d "$DEV"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

truncate -s 8G "$WORK/disk.img"
DEV=$(losetup -f --show "$WORK/disk.img")
mkfs.xfs -q -m reflink=1,rmapbt=1 "$DEV"
mkdir "$WORK/mnt"
mount "$DEV" "$WORK/mnt"
echo "populating $FILES files (+ $((FILES / 10)) reflink clones) on $DEV ..."
t0=$(date +%s)
python3 "$top_srcdir/tests/bench/mkfiles.py" "$WORK/mnt" "$FILES"
echo "populated in $(($(date +%s) - t0)) s"

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
threads=$((2 * $(nproc)))

cold; naive_cold=$("$BENCH" naive "$WORK/mnt")
naive_warm=$("$BENCH" naive "$WORK/mnt")
cold; idx_cold=$("$BENCH" index "$WORK/mnt" "$threads")
idx_warm=$("$BENCH" index "$WORK/mnt" "$threads")
cold; idx1_cold=$("$BENCH" index "$WORK/mnt" 1)
# A file in the middle of the tree: the path walk has half of it to read.
mid=$(printf 'd%04d/f%06d' $((FILES / 2000)) $((FILES / 2)))
sector=$(xfs_io -r -c fiemap "$WORK/mnt/$mid" | sed -n '2s/.*\]: *\([0-9][0-9]*\)\.\..*/\1/p')
cold; q_fsmap=$("$BENCH" query "$DEV" getfsmap 200 "$sector")
cold; q_fiemap=$("$BENCH" query "$DEV" fiemap 200 "$sector")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "== pmemheal map benchmark: $(field files "$idx_warm") files, $(field extents "$idx_warm") extents, $(nproc) CPUs, $(uname -r)"
printf '%-44s %14s %14s %10s\n' "(b) index build" "files/s cold" "files/s warm" "seconds"
printf '%-44s %14s %14s %10s\n' "naive nftw+FIEMAP, 1 thread (baseline)" "$(field files_per_s "$naive_cold")" "$(field files_per_s "$naive_warm")" "$(field seconds "$naive_cold")"
printf '%-44s %14s %14s %10s\n' "pmemheal index, 1 thread" "$(field files_per_s "$idx1_cold")" "-" "$(field seconds "$idx1_cold")"
printf '%-44s %14s %14s %10s\n' "pmemheal index, $threads threads" "$(field files_per_s "$idx_cold")" "$(field files_per_s "$idx_warm")" "$(field seconds "$idx_cold")"
printf '%-44s %14s %14s\n' "ratio vs baseline (target >= 2x)" \
	"$(ratio "$(field files_per_s "$idx_cold")" "$(field files_per_s "$naive_cold")")" \
	"$(ratio "$(field files_per_s "$idx_warm")" "$(field files_per_s "$naive_warm")")"
echo
printf '%-44s %14s %14s %14s\n' "(a) one range query (8 sectors)" "first" "later (avg)" "with paths*"
printf '%-44s %13ss %13ss %13ss\n' "GETFSMAP" "$(field first_query_s "$q_fsmap")" "$(field later_query_avg_s "$q_fsmap")" "$(field with_paths_s "$q_fsmap")"
printf '%-44s %13ss %13ss %13ss\n' "FIEMAP index (first includes the build)" "$(field first_query_s "$q_fiemap")" "$(field later_query_avg_s "$q_fiemap")" "$(field with_paths_s "$q_fiemap")"
echo "    * a file's range; paths by a walk that stops once it has found the file ($mid)"
echo
echo "(c) memory"
echo "    index: $(field index_bytes "$idx_warm") bytes, $(field bytes_per_extent "$idx_warm") bytes per extent"
echo "    peak RSS: index build $(field maxrss_kib "$idx_warm") KiB, naive $(field maxrss_kib "$naive_warm") KiB," \
	"GETFSMAP query $(field maxrss_kib "$q_fsmap") KiB, FIEMAP query $(field maxrss_kib "$q_fiemap") KiB"
