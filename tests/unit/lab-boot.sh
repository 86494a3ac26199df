#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The lab's boot guard (tests/lab/host/qemu.sh, lab_qemu_boot): a guest
# that never announces LAB-BOOTED (a kernel hung before its console, seen
# under TCG) is stopped at LAB_BOOT_DEADLINE and booted once more, instead
# of waiting out the scenario's timeout; a guest that booted is never
# stopped by the guard, however long its scenario takes.  A stand-in
# qemu-system-x86_64 plays each guest.  No root needed.
set -euo pipefail

: "${top_srcdir:?run through make check}"
command -v timeout >/dev/null || { echo "SKIP: no timeout (apt-get install coreutils)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/lab-boot.XXXXXX")
trap 'rm -rf "$T"' EXIT
LAB_CACHE=$T/cache
. "$top_srcdir/tests/lab/host/common.sh"
. "$top_srcdir/tests/lab/host/qemu.sh"
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

# The stand-in: writes its pid file, counts its boots in $T/boots, and
# plays $T/mode: "silent" (says nothing, forever), "slow" (boots, then
# takes longer than the deadline to finish), or "silent-once" (silent on
# the first boot, then boots).
mkdir -p "$T/bin"
cat >"$T/bin/qemu-system-x86_64" <<'EOF'
#!/bin/bash
serial= pidfile=
while [ $# -gt 0 ]; do
	case $1 in
	-serial) serial=${2#file:}; shift ;;
	-pidfile) pidfile=$2; shift ;;
	esac
	shift
done
echo $$ >"$pidfile"
n=$(($(cat "$STUB_DIR/boots" 2>/dev/null || echo 0) + 1))
echo "$n" >"$STUB_DIR/boots"
mode=$(cat "$STUB_DIR/mode")
[ "$mode" != silent-once ] || [ "$n" -gt 1 ] || mode=silent
case $mode in
silent) exec sleep 600 ;;
slow)	echo "LAB-BOOTED kernel=stub boot=1/1 uptime=1.00" >>"$serial"
	sleep 4
	echo "LAB-RESULT: PASS 1 checks" >>"$serial" ;;
*)	echo "LAB-BOOTED kernel=stub boot=1/1 uptime=1.00" >>"$serial"
	echo "LAB-RESULT: PASS 1 checks" >>"$serial" ;;
esac
EOF
chmod +x "$T/bin/qemu-system-x86_64"
export PATH=$T/bin:$PATH STUB_DIR=$T

# boot MODE: one lab_qemu_boot with a 2 s deadline and a 60 s timeout;
# sets BOOTS and TOOK.
boot() {
	local t0=$SECONDS
	echo "$1" >"$T/mode"
	rm -f "$T/boots"
	mkdir -p "$T/w"
	LAB_BOOT_DEADLINE=2 lab_qemu_boot "$T/w" 60 stub 2>"$T/log"
	BOOTS=$(cat "$T/boots")
	TOOK=$((SECONDS - t0))
}

boot silent
[ "$BOOTS" = 2 ] && ok "a silent guest is booted once more ($BOOTS boots)" ||
	bad "a silent guest is booted once more ($BOOTS boots)"
[ "$TOOK" -lt 30 ] && ok "... each stopped at the deadline, not the timeout (${TOOK} s)" ||
	bad "... each stopped at the deadline, not the timeout (${TOOK} s)"
[[ $LAB_RESULT == FAIL* ]] && ok "... and the scenario fails ($LAB_RESULT)" ||
	bad "... and the scenario fails ($LAB_RESULT)"
grep -q 'no LAB-BOOTED within 2 s' "$T/log" && ok "... saying why" || bad "... saying why ($(cat "$T/log"))"

boot silent-once
[ "$BOOTS" = 2 ] && [ "$LAB_RESULT" = "PASS 1 checks" ] && [ "$LAB_KERNEL_SEEN" = stub ] &&
	ok "a guest silent once passes on its second boot" ||
	bad "a guest silent once passes on its second boot ($BOOTS boots, $LAB_RESULT)"

boot slow
[ "$BOOTS" = 1 ] && [ "$LAB_RESULT" = "PASS 1 checks" ] &&
	ok "a guest that booted may take longer than the deadline" ||
	bad "a guest that booted may take longer than the deadline ($BOOTS boots, $LAB_RESULT)"

boot fine
[ "$BOOTS" = 1 ] && [ "$LAB_RESULT" = "PASS 1 checks" ] && ok "a guest that boots at once runs once" ||
	bad "a guest that boots at once runs once ($BOOTS boots, $LAB_RESULT)"

[ "$fails" = 0 ]
