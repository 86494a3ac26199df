#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The fresh-machine check: README's two commands, run as written, on a clean
# Debian 12 as a new user would get it, so that a package installed by hand
# on this host cannot make them pass.
#
#   tests/fresh-host.sh [--only N] [--lab-cache DIR] [--keep] [--root DIR]
#
# 1. mmdebstrap --variant=minbase bookworm (plus git, to clone, and sudo, which
#    the commands start with) into a new directory;
# 2. a clean clone of this repository's HEAD (committed work only) into it;
# 3. /dev, /proc and /sys from the host (loop devices, mounts and QEMU work
#    there as root), all in a private mount namespace that ends with it;
# 4. each command of README.md's first code block, in that order, in the
#    root, from the clone, with a clean environment; its output goes to
#    <root>.logs/commandN.log and its last lines are printed.
#
# --only N runs only the Nth command; --lab-cache DIR lends the lab a
# package cache (a warm run: the default is an empty one, as on a new
# machine); --keep leaves the root behind; --root DIR builds it there
# (default: a new directory under /var/tmp).  Exits 0 when every command
# exited 0.  Needs root, network access to the Debian mirror, and about
# 6 GiB of disk for a whole cold run.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
only= cache= keep= root=
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift 2 ;;
	--lab-cache) cache=$(realpath "$2"); shift 2 ;;
	--keep) keep=1; shift ;;
	--root) root=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "fresh-host: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "fresh-host: needs root (mmdebstrap, mounts, loop devices)" >&2; exit 2; }
for t in mmdebstrap git unshare; do
	command -v "$t" >/dev/null || { echo "fresh-host: needs $t (apt-get install mmdebstrap git util-linux)" >&2; exit 2; }
done

# README's commands: the lines of its first fenced block, comments cut.
mapfile -t cmds < <(awk '/^```/ { if (inblock) exit; inblock = 1; next } inblock' "$SRC/README.md" |
	sed 's/[[:space:]]#.*//; s/[[:space:]]*$//' | grep .)
[ "${#cmds[@]}" -gt 0 ] || { echo "fresh-host: README.md has no commands in its first code block" >&2; exit 2; }

if [ -z "$root" ]; then
	root=$(mktemp -d /var/tmp/pmemheal-fresh.XXXXXX)
else
	mkdir -p "$root"
	[ -z "$(ls -A "$root")" ] || { echo "fresh-host: $root is not empty" >&2; exit 2; }
fi
logs=$root.logs
mkdir -p "$logs"
cleanup() {
	if [ -z "$keep" ]; then
		rm -rf --one-file-system "$root"
	else
		echo "fresh-host: the root is kept in $root"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
echo "fresh-host: building a clean Debian 12 root in $root (mmdebstrap --variant=minbase)"
mmdebstrap --variant=minbase --include=git,sudo,ca-certificates bookworm "$root" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main" \
	>"$logs/mmdebstrap.log" 2>&1 || { tail -n 20 "$logs/mmdebstrap.log"; exit 1; }
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
echo "fresh-host: root ready in $((SECONDS - t0)) s ($(chroot "$root" dpkg-query -W | wc -l) packages)"
git clone -q --no-local "$SRC" "$root/root/pmemheal"
echo "fresh-host: cloned $(git -C "$SRC" rev-parse --short HEAD) ($(git -C "$SRC" log -1 --format=%s HEAD))"
[ -z "$(git -C "$SRC" status --porcelain)" ] ||
	echo "fresh-host: note: uncommitted changes in $SRC are not in the clone"

# run_in_root N CMD: one command in the root, in a private mount namespace
# holding the kernel filesystems; its status is the command's.
run_in_root() {
	local n=$1 cmd=$2
	unshare --mount --propagation private /bin/bash -euc '
		root=$1 cache=$2 cmd=$3
		# The root is a mount of its own, as on a machine: otherwise the
		# chroot sees no mount for "/" and `pmemheal policy /` cannot
		# place it (a lab cache bound on the same disk used to hide that).
		mount --bind "$root" "$root"
		mount --rbind /dev "$root/dev"
		mount -t proc proc "$root/proc"
		mount --rbind /sys "$root/sys"
		mount -t tmpfs tmpfs "$root/run"
		mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null || true
		if [ -n "$cache" ]; then
			mkdir -p "$root/var/cache/pmemheal-lab"
			mount --bind "$cache" "$root/var/cache/pmemheal-lab"
		fi
		exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root TERM=dumb LANG=C.UTF-8 ${CI:+CI=$CI} \
			/bin/bash -c "cd /root/pmemheal && $cmd"
	' fresh-host "$root" "$cache" "$cmd" </dev/null >"$logs/command$n.log" 2>&1
}

rc=0
for i in "${!cmds[@]}"; do
	n=$((i + 1))
	[ -z "$only" ] || [ "$only" = "$n" ] || continue
	echo "fresh-host: command $n: ${cmds[$i]}  (log: $logs/command$n.log)"
	t=$SECONDS
	r=0
	run_in_root "$n" "${cmds[$i]}" || r=$?
	tail -n 25 "$logs/command$n.log" | sed 's/^/  | /'
	echo "fresh-host: command $n exited $r after $((SECONDS - t)) s: ${cmds[$i]}"
	[ "$r" = 0 ] || rc=1
done
echo "fresh-host: $([ "$rc" = 0 ] && echo "both commands passed" || echo "FAILED") in a clean Debian 12 root, $((SECONDS - t0)) s in all"
exit "$rc"
