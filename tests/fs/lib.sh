# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by tests/fs: loop-mounted scratch filesystems that are always
# cleaned up, and a skip that says why.  Source it; it sets -euo pipefail.
set -euo pipefail

: "${PMEMHEAL:?PMEMHEAL must point at the pmemheal binary (make check-fs sets it)}"
: "${top_srcdir:?top_srcdir must be set (make check-fs sets it)}"
FSDIR="$top_srcdir/tests/fs"

skip() {
	echo "SKIP: $*"
	exit 77
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root for loop devices and mounts"
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs $c"
	done
}

WORK=$(mktemp -d /tmp/pmemheal-fs.XXXXXX)
chmod 755 "$WORK" # tests run pmemheal as an unprivileged user too
MOUNTS=()
LOOPS=()

cleanup() {
	local i
	set +e
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}"
	done
	for i in "${LOOPS[@]}"; do
		losetup -d "$i"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# new_loop NAME SIZE: a loop device over a sparse file; sets DEV.
new_loop() {
	local img="$WORK/$1.img"
	truncate -s "$2" "$img"
	DEV=$(losetup -f --show "$img" 2>"$WORK/losetup.err") ||
		skip "cannot attach a loop device: $(cat "$WORK/losetup.err")"
	LOOPS+=("$DEV")
}

# mkfs_mount NAME SIZE TYPE [MKFS OPTIONS...]: a mounted scratch filesystem;
# sets DEV and MNT.
mkfs_mount() {
	local name=$1 size=$2 type=$3
	shift 3
	new_loop "$name" "$size"
	case $type in
	xfs) mkfs.xfs -q -f "$@" "$DEV" ;;
	ext4) mkfs.ext4 -q -F -b 4096 "$@" "$DEV" ;;
	btrfs) mkfs.btrfs -q -f "$@" "$DEV" ;;
	*) echo "mkfs_mount: unknown type $type" >&2; return 1 ;;
	esac
	MNT="$WORK/$name"
	mkdir -p "$MNT"
	mount -t "$type" "$DEV" "$MNT"
	MOUNTS+=("$MNT")
}

# The attacker of the attack tests: an unprivileged user with no
# capabilities.  as_user CMD...: CMD as that user; AS_USER: the same
# prefix as an array, for a program the test starts in the background.
USR=65534
AS_USER=(setpriv --reuid=$USR --regid=$USR --clear-groups --inh-caps=-all)
as_user() { "${AS_USER[@]}" "$@"; }

# as_nobody ARGS...: pmemheal ARGS as user nobody, without capabilities.
# The build tree may sit where nobody cannot reach it (/root is 0700 on a
# fresh Debian), so nobody runs a copy, made under $WORK, of the program
# and of the shared library a libtool build links it with.
as_nobody() {
	[ -x "$WORK/nobody/pmemheal" ] || nobody_copy
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		env LD_LIBRARY_PATH="$WORK/nobody/lib" "$WORK/nobody/pmemheal" "$@"
}

# real_pmemheal: PMEMHEAL_ELF, the program itself, and PMEMHEAL_LIBS, the
# directory of its library when $PMEMHEAL is a libtool wrapper (a shell
# script: valgrind, or a copy, must get the program, not the script).
real_pmemheal() {
	PMEMHEAL_ELF=$PMEMHEAL PMEMHEAL_LIBS=
	[ "$(head -c 4 "$PMEMHEAL" | tail -c 3)" != ELF ] || return 0
	PMEMHEAL_ELF=$(dirname "$PMEMHEAL")/.libs/$(basename "$PMEMHEAL")
	PMEMHEAL_LIBS=$(dirname "$(dirname "$PMEMHEAL")")/lib/.libs
	[ -f "$PMEMHEAL_ELF" ] || { echo "$PMEMHEAL is a libtool wrapper, but $PMEMHEAL_ELF is missing" >&2; return 1; }
}

nobody_copy() {
	local d=$WORK/nobody missing
	real_pmemheal
	mkdir -p "$d/lib"
	[ -z "$PMEMHEAL_LIBS" ] || cp -a "$PMEMHEAL_LIBS"/*.so* "$d/lib/"
	cp "$PMEMHEAL_ELF" "$d/pmemheal"
	chmod -R a+rX "$d"
	missing=$(LD_LIBRARY_PATH="$d/lib" ldd "$d/pmemheal" | grep 'not found' || true)
	[ -z "$missing" ] || { echo "as_nobody: the copy of pmemheal lacks: $missing" >&2; return 1; }
}

# expect_status WANT CMD...: run CMD, fail unless it exits with WANT.
expect_status() {
	local want=$1 got=0
	shift
	"$@" >"$WORK/out" 2>"$WORK/err" || got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: '$*' exited $got, expected $want"
		echo "--- stdout"; cat "$WORK/out"
		echo "--- stderr"; cat "$WORK/err"
		return 1
	fi
}

# first physical sector of FILE's extent at file offset 0 (via xfs_io,
# which works on ext4 too for fiemap).
phys_sector() {
	xfs_io -r -c 'fiemap' "$1" | sed -n '2s/.*\]: *\([0-9][0-9]*\)\.\..*/\1/p'
}

need_root
need_cmd losetup mkfs.xfs mkfs.ext4 xfs_io python3
