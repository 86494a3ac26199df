#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make fuzz: build each harness named in the arguments with clang, libFuzzer,
# ASan and UBSan, and fuzz it for FUZZ_SECONDS (default 60), one after the
# other, or until FUZZ_RUNS inputs if that comes first.  The library is configured and built again with coverage in
# $top_builddir/tests/fuzz/build.  Each harness starts from its seed corpus
# and past crashes; what it finds goes to tests/fuzz/build/corpus/NAME (new
# inputs) and tests/fuzz/build/artifacts/NAME (crashes, timeouts: an input that
# runs longer than FUZZ_TIMEOUT seconds, default 5; raise it on a loaded
# machine).  Prints
# the execs per harness and exits non-zero if any harness crashed.
set -euo pipefail

: "${top_srcdir:?}" "${top_builddir:?}"
CC=${FUZZ_CC:-clang}
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
fb=$top_builddir/tests/fuzz/build

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long s) { return 0; }' |
	"$CC" -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; then
	echo "make fuzz: $CC cannot link libFuzzer; install tests/setup.sh's FUZZ_DEPS (clang libclang-rt-dev)" >&2
	exit 1
fi
if [ -f "$top_srcdir/config.status" ]; then
	echo "make fuzz: the source tree is configured in place; build out of tree (mkdir build; cd build; ../configure)" >&2
	exit 1
fi

mkdir -p "$fb"
if [ ! -f "$fb/Makefile" ]; then
	echo "fuzz: configuring the library for $CC with coverage in $fb"
	(cd "$fb" && "$top_srcdir/configure" CC="$CC" \
		CFLAGS="-O1 -g $SAN -fsanitize=fuzzer-no-link" \
		--prefix=/usr --sysconfdir=/etc --localstatedir=/var --enable-fault-injection >configure.log 2>&1) ||
		{ tail -20 "$fb/configure.log"; exit 1; }
fi
make -s -C "$fb" -j"$JOBS" lib/libpmemheal-internal.la >"$fb/make.log" 2>&1 || { tail -30 "$fb/make.log"; exit 1; }

failed=()
for h in "$@"; do
	src=$top_srcdir/tests/fuzz/fuzz-$h.c
	[ -f "$src" ] || { echo "fuzz: no harness $src" >&2; exit 1; }
	# shellcheck disable=SC2086 # flag lists
	"$CC" -O1 -g $SAN -fsanitize=fuzzer -include "$fb/config.h" -I"$top_srcdir/lib" ${FUZZ_CPPFLAGS:-} \
		"$src" "$fb/lib/.libs/libpmemheal-internal.a" ${FUZZ_LIBS:-} -lpthread -o "$fb/fuzz-$h"
	case $h in
	ext4) max_len=65536 ;;
	policy | intent) max_len=8192 ;;
	*) max_len=4096 ;;
	esac
	mkdir -p "$fb/corpus/$h" "$fb/artifacts/$h"
	dirs=("$fb/corpus/$h" "$top_srcdir/tests/fuzz/corpus/$h")
	[ -d "$top_srcdir/tests/fuzz/crashes/$h" ] && dirs+=("$top_srcdir/tests/fuzz/crashes/$h")
	rc=0
	"$fb/fuzz-$h" -max_total_time="$SECONDS_EACH" -runs="${FUZZ_RUNS:--1}" -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb=2048 -max_len=$max_len \
		-print_final_stats=1 -artifact_prefix="$fb/artifacts/$h/" "${dirs[@]}" >"$fb/$h.log" 2>&1 || rc=$?
	execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$fb/$h.log")
	if [ $rc -eq 0 ]; then
		echo "fuzz $h: ${execs:-?} execs in $(awk '/^Done [0-9]+ runs in/ {print $5}' "$fb/$h.log") s, no crash"
	else
		echo "fuzz $h: ${execs:-?} execs, FAILED (exit $rc); log $fb/$h.log:"
		grep -E '^==[0-9]+==ERROR|SUMMARY|runtime error|Test unit written' "$fb/$h.log" | head -5 | sed 's/^/  /'
		failed+=("$h")
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: crashes in: ${failed[*]}"; exit 1; }
