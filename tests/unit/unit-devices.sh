#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The service's device access (units/pmemheald.service.in).  The devices
# controller sees only a node's type and major:minor, and pmem namespaces
# (pmemN, pmemNpM, pmemN.M) share the extended block major 259, "blkext",
# with NVMe disks and their partitions, so `block-blkext` cannot be limited
# to pmem; device-mapper likewise covers LVM volumes on any disk.  Per-node
# rules (/dev/pmem0) are resolved once when the unit starts and would miss
# a namespace created later (hotplug, lab scenario 38).  What keeps a host's
# other disks safe is that pmemheald only ever reads block devices (O_DIRECT
# salvage reads of the namespace, the XFS log and ext4 journal location of a
# shut-down filesystem), so block classes are read-only here: the daemon,
# however misled, cannot write a raw NVMe disk or LVM volume.  Writes happen
# through files on DAX mounts and the bus's ndctl node (clear-error).
# This test pins that: every rule is expected, block classes are "r" only,
# the policy is closed, and no library code opens a block device to write.
set -euo pipefail

: "${top_srcdir:?run through make check}"
unit=$top_srcdir/units/pmemheald.service.in
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

[ "$(sed -n 's/^DevicePolicy=//p' "$unit")" = closed ] &&
	ok "DevicePolicy=closed" || bad "DevicePolicy is not closed"

# Every DeviceAllow= line, with the access it grants and why it is needed.
declare -A want=(
	[block-blkext]=r             # pmem disks and partitions: read only
	[block-device-mapper]=r      # dm over pmem: read only
	[char-dax]=r                 # devdax namespaces: read for reports
	[char-ndctl]=rw              # the bus node: clear-error ioctls
	[/dev/kmsg]=r                # memory-failure pages
)
declare -A seen=()
while read -r node access; do
	seen[$node]=1
	if [ -z "${want[$node]+x}" ]; then
		bad "unexpected DeviceAllow=$node $access"
	elif [ "$access" != "${want[$node]}" ]; then
		bad "DeviceAllow=$node $access, expected ${want[$node]}"
	else
		ok "DeviceAllow=$node $access"
	fi
	case $node:$access in
	block-*:*[wm]*) bad "$node grants write or mknod to a block class shared with other disks" ;;
	esac
done < <(sed -n 's/^DeviceAllow=//p' "$unit")
for node in "${!want[@]}"; do
	[ -n "${seen[$node]+x}" ] || bad "no DeviceAllow=$node (pmemheald needs it)"
done

# The read-only grant holds only while the code opens block devices read
# only: the salvage read, the XFS disk reader and the ext4 journal locator.
for f in lib/repair.c lib/mapper-xfsdisk.c lib/mapper-layout.c lib/blkdev.c; do
	if grep -nE 'open\([^;]*(device|node|path)[^;]*O_(RDWR|WRONLY)' "$top_srcdir/$f"; then
		bad "$f opens a device node for writing"
	else
		ok "$f opens device nodes read-only"
	fi
done

# The unit itself, when systemd can check it here.
if command -v systemd-analyze >/dev/null; then
	T=$(mktemp -d "${TMPDIR:-/tmp}/unit-devices.XXXXXX")
	trap 'rm -rf "$T"' EXIT
	sed 's|@sbindir@|/bin|' "$unit" >"$T/pmemheald.service"
	sed -i 's|^ExecStart=.*|ExecStart=/bin/true|' "$T/pmemheald.service"
	if out=$(systemd-analyze verify --man=no "$T/pmemheald.service" 2>&1) ||
		! grep -qi 'DeviceAllow\|DevicePolicy' <<<"$out"; then
		ok "systemd-analyze accepts the device rules"
	else
		bad "systemd-analyze: $out"
	fi
else
	echo "# systemd-analyze not installed: the unit's syntax was not checked by systemd"
fi

[ "$fails" -eq 0 ]
