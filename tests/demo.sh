#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job, the lab demo: build pmemheal, install it into a Debian 12
# systemd guest booted in QEMU with emulated pmem (virtio-pmem), and show
# pmemheald healing a small dataset with reflink clones per its rules:
# `pmemheal status -v`, poison injected, the daemon's journal live, then
# `pmemheal status -v` and `pmemheal history` afterwards
# (tests/lab/scenarios/40-demo.lab).  Cleans up after itself: QEMU, its
# sockets and images go when it ends; the guest's kernel, packages and root
# image stay cached in /var/cache/pmemheal-lab, so the second run is fast.
# Prints how long it took, and whether the cache was cold or warm.
. "$(dirname "$0")/setup.sh"

install_deps "${BUILD_DEPS[@]}" "${LAB_DEPS[@]}"
build

LAB_CACHE=${LAB_CACHE:-/var/cache/pmemheal-lab}
STAGE=$(mktemp -d /tmp/pmemheal-demo.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
trap 'exit 130' INT TERM
make -C "$BUILD" install DESTDIR="$STAGE" >"$STAGE/install.log" 2>&1 || { cat "$STAGE/install.log"; exit 1; }

# Warm: a systemd guest image is cached already (it is keyed by package
# versions, so a cached one may still be rebuilt if Debian moved on).
if compgen -G "$LAB_CACHE/rootfs/*/rootfs.ext4" >/dev/null; then cache=warm; else cache=cold; fi
echo "pmemheal lab demo: booting a Debian 12 systemd guest under QEMU (TCG; $cache cache in $LAB_CACHE)"
start=$(date +%s)
: >"$STAGE/demo.tap"
rc=0
# The guest's console, without the lab's framing: the scenario's own
# output, then its verdict.
LAB_STAGE=$STAGE LAB_GUESTS=bookworm LAB_CACHE=$LAB_CACHE \
	"$SRC/tests/lab/run-scenario" "$SRC/tests/lab/scenarios/40-demo.lab" >"$STAGE/demo.tap" 2>&1 &
runner=$!
tail -n +1 --pid="$runner" -f "$STAGE/demo.tap" | sed -u -n \
	-e 's/^# systemd-bookworm| LAB: ok - /  ok: /p' \
	-e 's/^# systemd-bookworm| LAB: FAILED - /  FAILED: /p' \
	-e '/^# systemd-bookworm| LAB-\|^# systemd-bookworm| \[ *[0-9.]*\]/d' \
	-e 's/^# systemd-bookworm| //p' \
	-e 's/^# lab: //p' \
	-e 's/^\(not ok\|ok\) 1 - /\1: /p'
wait "$runner" || rc=$?
took=$(($(date +%s) - start))
echo
echo "pmemheal lab demo: $([ "$rc" = 0 ] && echo "done" || echo "FAILED (exit $rc)") in $took s ($cache cache)"
exit "$rc"
