#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The service's device access (units/pmemheald.service.in and
# units/allow-devices.in).  The devices controller sees only a node's type
# and major:minor, and pmem namespaces (pmemN, pmemNpM, pmemN.M) share the
# extended block major 259, "blkext", with NVMe disks and their partitions:
# `block-blkext` would admit every NVMe disk of the host.  So the unit
# grants no block class at all; allow-devices grants each pmem block device
# by name, at start (ExecStartPre=) and from udev when one appears (lab
# scenarios 36 and 38 show the daemon reads pmem and cannot read an NVMe
# disk).  This test pins the unit's list, runs allow-devices against a fake
# sysfs with a fake systemctl, and checks that no library code opens a
# block device to write (the grants are read only).
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
	case $node in
	block-*) bad "$node: a block class admits disks other than pmem" ;;
	esac
done < <(sed -n 's/^DeviceAllow=//p' "$unit")
for node in "${!want[@]}"; do
	[ -n "${seen[$node]+x}" ] || bad "no DeviceAllow=$node (pmemheald needs it)"
done

grep -qx 'ExecStartPre=+@pkglibexecdir@/allow-devices' "$unit" &&
	ok "ExecStartPre= grants the pmem devices present at start" ||
	bad "no ExecStartPre=+@pkglibexecdir@/allow-devices"
grep -q 'KERNEL=="pmem\*", RUN+="@pkglibexecdir@/allow-devices $kernel"' "$top_srcdir/units/70-pmemheal.rules.in" &&
	ok "the udev rule grants pmem devices that appear later" ||
	bad "70-pmemheal.rules does not run allow-devices for pmem block devices"

# allow-devices against a fake sysfs: pmem0 and its partition on an
# nvdimm bus, pmem1.2 too, a sector-mode pmem2s and its partition, an NVMe
# disk, and a "pmem9" of another driver.
T=$(mktemp -d "${TMPDIR:-/tmp}/unit-devices.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/sys/class/block" "$T/bin" \
	"$T/sys/devices/platform/e820_pmem/ndbus0/region0/namespace0.0/block/pmem0/pmem0p1" \
	"$T/sys/devices/pci0000:00/0000:00:03.0/virtio0/ndbus1/region1/namespace1.2/block/pmem1.2" \
	"$T/sys/devices/LNXSYSTM:00/ACPI0012:00/ndbus2/region2/btt2.0/block/pmem2s/pmem2s1" \
	"$T/sys/devices/pci0000:00/0000:00:10.0/nvme/nvme0/nvme0n1" \
	"$T/sys/devices/virtual/block/pmem9"
ln -s ../../devices/platform/e820_pmem/ndbus0/region0/namespace0.0/block/pmem0 "$T/sys/class/block/pmem0"
ln -s ../../devices/platform/e820_pmem/ndbus0/region0/namespace0.0/block/pmem0/pmem0p1 "$T/sys/class/block/pmem0p1"
ln -s ../../devices/pci0000:00/0000:00:03.0/virtio0/ndbus1/region1/namespace1.2/block/pmem1.2 "$T/sys/class/block/pmem1.2"
ln -s ../../devices/LNXSYSTM:00/ACPI0012:00/ndbus2/region2/btt2.0/block/pmem2s "$T/sys/class/block/pmem2s"
ln -s ../../devices/LNXSYSTM:00/ACPI0012:00/ndbus2/region2/btt2.0/block/pmem2s/pmem2s1 "$T/sys/class/block/pmem2s1"
ln -s ../../devices/pci0000:00/0000:00:10.0/nvme/nvme0/nvme0n1 "$T/sys/class/block/nvme0n1"
ln -s ../../devices/virtual/block/pmem9 "$T/sys/class/block/pmem9"
printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s/calls"\n' "$T" >"$T/bin/systemctl"
chmod +x "$T/bin/systemctl"
allow() { PATH=$T/bin:$PATH PMEMHEAL_TEST_SYSFS=$T/sys sh "$top_srcdir/units/allow-devices.in" "$@"; }
want_call() { # $1: what, $2: the one systemctl call expected ("" none)
	if [ "$(cat "$T/calls" 2>/dev/null)" = "$2" ]; then ok "$1"; else bad "$1: called '$(cat "$T/calls" 2>/dev/null)'"; fi
	rm -f "$T/calls"
}
allow && want_call "at start: every pmem device on an nvdimm bus, in one call" \
	"--no-ask-password set-property --runtime pmemheald.service DeviceAllow=/dev/pmem0 r DeviceAllow=/dev/pmem0p1 r DeviceAllow=/dev/pmem1.2 r DeviceAllow=/dev/pmem2s r DeviceAllow=/dev/pmem2s1 r" ||
	bad "allow-devices failed"
allow pmem0p1 && want_call "from udev: the one device named" \
	"--no-ask-password set-property --runtime pmemheald.service DeviceAllow=/dev/pmem0p1 r" ||
	bad "allow-devices pmem0p1 failed"
for name in nvme0n1 pmem9 pmem0x ../pmem0 "$(printf 'pmem0\npmem1.2')" 'pmem0 r DeviceAllow=block-blkext' pmem7 ''; do
	if allow "$name" 2>/dev/null; then
		bad "allow-devices '$name' succeeded"
	else
		want_call "'$name' is refused, nothing granted" ""
	fi
done
rm -f "$T/sys/class/block/pmem"*
allow && want_call "no pmem: no call" ""
printf '#!/bin/sh\nexit 1\n' >"$T/bin/systemctl"
ln -s ../../devices/platform/e820_pmem/ndbus0/region0/namespace0.0/block/pmem0 "$T/sys/class/block/pmem0"
if allow 2>/dev/null; then bad "a failed grant is not reported"; else ok "a failed grant fails the start"; fi

# The read-only grant holds only while the code opens block devices read
# only: the salvage read, the XFS disk reader and the ext4 journal locator.
# Every file of the repairer and the pipeline, whatever they are split into.
files=$(cd "$top_srcdir" && ls lib/repair*.c lib/pipeline*.c lib/verify.c lib/mapper-xfsdisk.c lib/mapper-layout.c lib/blkdev.c)
case $files in *lib/repair-content.c*) ;; *) bad "the salvage read's file (lib/repair-content.c) is not checked" ;; esac
for f in $files; do
	if grep -nE 'open\([^;]*(device|node|path)[^;]*O_(RDWR|WRONLY)' "$top_srcdir/$f"; then
		bad "$f opens a device node for writing"
	else
		ok "$f opens device nodes read-only"
	fi
done

# The unit itself, when systemd can check it here.
if command -v systemd-analyze >/dev/null; then
	sed -e 's|@sbindir@|/bin|' -e 's|@pkglibexecdir@|/bin|' "$unit" >"$T/pmemheald.service"
	sed -i -e 's|^ExecStart=.*|ExecStart=/bin/true|' -e 's|^ExecStartPre=+.*|ExecStartPre=+/bin/true|' "$T/pmemheald.service"
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
