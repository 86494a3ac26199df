# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by tests/run and tests/demo.sh: install what the project needs
# with apt-get (idempotent), then build it out of tree in $BUILD.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$SRC/build}

# Build and test dependencies, by Debian 12 package name.
BUILD_DEPS=(build-essential autoconf automake autoconf-archive libtool pkg-config
	libndctl-dev libdaxctl-dev libpmem2-dev libsystemd-dev libudev-dev
	libsqlite3-dev libjson-c-dev libinih-dev libcmocka-dev xfslibs-dev
	jq systemd-journal-remote)
FS_DEPS=(xfsprogs e2fsprogs btrfs-progs util-linux python3 valgrind)
# make fuzz: clang and its libFuzzer runtime (libclang-rt-dev follows the
# default clang: 14 on Debian 12, 19 on Debian 13).
FUZZ_DEPS=(clang libclang-rt-dev)
LAB_DEPS=(qemu-system-x86 busybox-static cpio socat mmdebstrap xz-utils zstd)
# The man page lint of the unit tier (tests/unit/man-lint.sh).
BUILD_DEPS+=(mandoc)

install_deps() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "missing packages: ${missing[*]} (run as root on Debian to install them)" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
	# autoreconf's warnings only matter when it fails
	(cd "$SRC" && { [ -x configure ] || { out=$(./autogen.sh 2>&1) || { echo "$out" >&2; false; }; }; })
	mkdir -p "$BUILD"
	if [ ! -f "$BUILD/Makefile" ]; then
		(cd "$BUILD" && "$SRC/configure" --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
			--enable-fault-injection >/dev/null)
	fi
	make -C "$BUILD" -j"$(nproc)" >/dev/null
}

# The same build a second time, with AddressSanitizer (and LeakSanitizer)
# and UBSan, in $BUILD_ASAN: the unit and fs tiers run there once more.
# Any UBSan report aborts the test that triggered it.
BUILD_ASAN=${BUILD_ASAN:-$SRC/build-asan}
SANITIZER_CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

build_asan() {
	(cd "$SRC" && { [ -x configure ] || { out=$(./autogen.sh 2>&1) || { echo "$out" >&2; false; }; }; })
	mkdir -p "$BUILD_ASAN"
	if [ ! -f "$BUILD_ASAN/Makefile" ]; then
		(cd "$BUILD_ASAN" && "$SRC/configure" CFLAGS="$SANITIZER_CFLAGS" \
			--prefix=/usr --sysconfdir=/etc --localstatedir=/var --enable-fault-injection >/dev/null)
	fi
	make -C "$BUILD_ASAN" -j"$(nproc)" >/dev/null
}

# The environment of a run in $BUILD_ASAN: leaks are errors, except the
# ones tests/lsan.supp lists with a reason each.
sanitizer_env() {
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export LSAN_OPTIONS=suppressions=$SRC/tests/lsan.supp:print_suppressions=0
	export PMEMHEAL_SANITIZERS=1
}
