# Boot one guest under QEMU (TCG), stream its console, forward its machine
# check requests to the monitor, enforce a timeout. Sourced after common.sh.
#
# The guest asks for a machine check by printing
#   LAB-MCE-REQUEST id=<n> gpa=<hex address>
# and the forwarder sends each id once. It reads the console through
# `tail --pid` on QEMU's process, so it ends when QEMU ends.

# lab_pmem_args BUS WORKDIR PMEM_SIZE [LABEL_SIZE] [CPU]: QEMU arguments and
# kernel command line (LAB_APPEND) for one pmem bus, as in LAB.md. The
# backing file is created empty once, before the first boot of a scenario:
# an old namespace layout would otherwise come back, and the later boots of
# the same scenario must find what the first one left. LABEL_SIZE (NFIT
# only) gives the DIMM a label area (QEMU keeps it at the end of the backing
# file), so namespaces are made and destroyed through labels.  CPU "intel"
# gives the guest an Intel vendor on any bus, for machine checks (QEMU's
# MCE panics a guest with the default AMD vendor); NFIT always has it.
lab_pmem_args() {
	local bus=$1 w=$2 size=$3 labels=${4:-} vendor=${5:-} dimm cpu=qemu64,+rdrand
	LAB_APPEND=
	PMEM_ARGS=()
	[ -z "$labels" ] || [ "$bus" = nfit ] || lab_die "labels need the nfit bus, not '$bus'"
	# RDRAND (trusted by the kernel) seeds the CRNG at early boot. Without
	# it the CRNG becomes ready some seconds into a scenario, and flipping its
	# static key by live-patching under TCG with two vCPUs once oopsed a
	# guest (int3 in get_random_u32, trixie).
	[ "$bus" != nfit ] && [ "$vendor" != intel ] || cpu+=,vendor=GenuineIntel
	case $bus in
	virtio|nfit)
		rm -f "$w/pmem.img"
		truncate -s "$size" "$w/pmem.img"
		PMEM_ARGS=(-object "memory-backend-file,id=mem1,share=on,mem-path=$w/pmem.img,size=$size")
		if [ "$bus" = virtio ]; then
			PMEM_ARGS+=(-device virtio-pmem-pci,memdev=mem1,id=nv1)
		else
			dimm=nvdimm,memdev=mem1,id=nv1${labels:+,label-size=$labels}
			# nvdimm=on for the NFIT; an Intel vendor, or QEMU's MCE panics the guest.
			PMEM_ARGS+=(-machine pc,nvdimm=on -device "$dimm")
		fi ;;
	e820)	LAB_APPEND="memmap=$size!1G" ;;
	none)	;;
	*)	lab_die "unknown pmem bus '$bus' (virtio, nfit, e820, none)" ;;
	esac
	PMEM_ARGS+=(-cpu "$cpu")
}

# lab_disk_args WORKDIR SIZE [BUS]: DISK_ARGS for the scenario's scratch
# disk (a raw file, empty before the first boot, kept for the later ones),
# or none without SIZE; BUS virtio (default) or nvme (a disk that shares
# pmem's blkext major). The serial lets the guest find it whatever its name.
# QEMU places -device before the -drive if=virtio disks, and the guest names
# disks in PCI slot order: a fixed high slot keeps the systemd guest's root
# at /dev/vda (its initrd and unit expect vda and vdb).
lab_disk_args() {
	local w=$1 size=$2 bus=${3:-virtio}
	DISK_ARGS=()
	[ -n "$size" ] || return 0
	rm -f "$w/disk.img"
	truncate -s "$size" "$w/disk.img"
	case $bus in
	virtio) bus=virtio-blk-pci ;;
	nvme) ;;
	*) lab_die "unknown scratch disk bus '$bus' (virtio, nvme)" ;;
	esac
	DISK_ARGS=(-drive "file=$w/disk.img,format=raw,if=none,id=scratch"
		-device "$bus,drive=scratch,serial=lab-scratch,addr=0x10")
}

# lab_console_forward WORKDIR PID PREFIX: stream console.log to stderr as
# TAP comments until PID exits; forward machine check requests.  A guest
# that has not announced LAB-BOOTED is hung in its kernel's own start-up
# when it reports a soft lockup (seen under TCG: PID 1 stuck on CPU 0 before
# init, 1 boot in ~30 while the host was loaded), or when it has said
# nothing by LAB_BOOT_DEADLINE seconds (default 150; a busybox boot takes
# 4-9 s, a systemd one 13 s alone and about 30 s on average under the
# suite's load; seen with 7.x: a kernel silent for the whole 300 s
# timeout, 1 boot in ~300).  Either
# way it would only wait out the scenario's timeout: QEMU is stopped at
# once, boot-hung says why, and lab_qemu_boot boots once more as after any
# crash before the scenario ran.
lab_console_forward() {
	local w=$1 pid=$2 prefix=$3 line part= booted= rc deadline=$((SECONDS + ${LAB_BOOT_DEADLINE:-150}))
	tail -n +1 -s 0.2 -F --pid="$pid" "$w/console.log" 2>/dev/null | {
		declare -A sent=()
		while :; do
			if [ -n "$booted" ]; then
				IFS= read -r line || break
			else
				# A second at a time, to notice the deadline; a line
				# cut by the timeout is kept and completed.
				rc=0
				IFS= read -r -t 1 line || rc=$?
				if [ "$rc" -gt 128 ]; then
					part+=$line
					if [ "$SECONDS" -ge "$deadline" ] && [ -s "$w/qemu.pid" ]; then
						lab_info "no LAB-BOOTED from the guest in ${LAB_BOOT_DEADLINE:-150} s: stopping QEMU"
						echo "no LAB-BOOTED within ${LAB_BOOT_DEADLINE:-150} s" >"$w/boot-hung"
						kill "$(cat "$w/qemu.pid")" 2>/dev/null || true
						deadline=$((SECONDS + 3600))
					fi
					continue
				fi
				[ "$rc" = 0 ] || break
				line=$part$line part=
			fi
			line=${line//$'\r'/}
			printf '# %s| %s\n' "$prefix" "$line" >&2
			[[ $line != *LAB-BOOTED* ]] || booted=1
			if [ -z "$booted" ] && [[ $line == *'BUG: soft lockup'* ]] && [ -s "$w/qemu.pid" ]; then
				lab_info "the kernel hung while booting ($line): stopping QEMU"
				echo "$line" >"$w/boot-hung"
				kill "$(cat "$w/qemu.pid")" 2>/dev/null || true
			fi
			[[ $line =~ LAB-MCE-REQUEST\ id=([0-9]+)\ gpa=(0x[0-9a-f]+) ]] || continue
			[ -z "${sent[${BASH_REMATCH[1]}]:-}" ] || continue
			sent[${BASH_REMATCH[1]}]=1
			lab_info "sending a machine check at ${BASH_REMATCH[2]} through the monitor"
			printf 'mce -b 0 9 0xbd000000000000c0 0x5 %s 0x86\n' "${BASH_REMATCH[2]}" |
				socat -t 2 - "UNIX-CONNECT:$w/mon.sock" >>"$w/monitor.log" 2>&1 ||
				lab_info "cannot reach the QEMU monitor (see $w/monitor.log)"
		done
	}
}

# lab_qemu_cleanup: end what lab_qemu_boot started, by PID. Safe to call twice.
lab_qemu_cleanup() {
	local p
	# QEMU's own pid only while its parent `timeout` still runs: afterwards
	# the number may belong to someone else.
	if [ -n "${LAB_TIMEOUT_PID:-}" ] && [ -s "${LAB_QEMU_WORKDIR:-/nonexistent}/qemu.pid" ]; then
		kill "$(cat "$LAB_QEMU_WORKDIR/qemu.pid")" 2>/dev/null || true
	fi
	for p in "${LAB_TIMEOUT_PID:-}" "${LAB_FORWARD_PID:-}"; do
		[ -z "$p" ] || kill "$p" 2>/dev/null || true
	done
	for p in "${LAB_TIMEOUT_PID:-}" "${LAB_FORWARD_PID:-}"; do
		[ -z "$p" ] || wait "$p" 2>/dev/null || true
	done
	LAB_TIMEOUT_PID= LAB_FORWARD_PID=
}

# lab_qemu_boot WORKDIR TIMEOUT PREFIX QEMU-ARGS...: boot, wait, and set
# LAB_RESULT to the guest's LAB-RESULT line ("PASS ...", "FAIL ...",
# "SKIP ...") or to a FAIL saying why there is none.
#
# A kernel that dies while booting, before the guest's init announces
# LAB-BOOTED, never ran the scenario: that is the emulator's fault (seen
# under TCG: an int3 text-patching Oops in sched_clock_cpu on 7.x, 1 boot
# in ~100), and the machine is booted once more, saying so.  A crash
# after LAB-BOOTED is the scenario's and is never retried.
lab_qemu_boot() {
	local why
	lab_qemu_boot_once "$@"
	[ -z "$LAB_KERNEL_SEEN" ] && [ "${LAB_RESULT%% *}" = FAIL ] || return 0
	if [ -s "$1/boot-hung" ]; then
		why=$(cat "$1/boot-hung")
	else
		why=$(tr -d '\r' <"$1/console.log" | grep -m1 -oE '(Oops|BUG):.*|Kernel panic.*') || return 0
	fi
	lab_info "$3: the kernel crashed or hung while booting, before the scenario ran: booting once more ($why)"
	lab_qemu_boot_once "$@"
}

lab_qemu_boot_once() {
	local w=$1 timeout=$2 prefix=$3 rc=0; shift 3
	: >"$w/console.log"
	# A pid file left by an earlier boot of the scenario (QEMU killed by the
	# timeout keeps it) must not name a process to the cleanup.
	rm -f "$w/qemu.pid" "$w/mon.sock" "$w/boot-hung"
	LAB_QEMU_WORKDIR=$w
	timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -smp 2 -nodefaults \
		-display none -no-reboot -serial "file:$w/console.log" \
		-monitor "unix:$w/mon.sock,server,nowait" -pidfile "$w/qemu.pid" \
		"$@" </dev/null >"$w/qemu.out" 2>&1 &
	LAB_TIMEOUT_PID=$!
	lab_console_forward "$w" "$LAB_TIMEOUT_PID" "$prefix" &
	LAB_FORWARD_PID=$!
	wait "$LAB_TIMEOUT_PID" || rc=$?
	LAB_TIMEOUT_PID=
	wait "$LAB_FORWARD_PID" || true
	LAB_FORWARD_PID=
	[ ! -s "$w/qemu.out" ] || sed "s/^/# $prefix| qemu: /" "$w/qemu.out" >&2
	LAB_RESULT=$(tr -d '\r' <"$w/console.log" | sed -n 's/.*LAB-RESULT: //p' | tail -n1)
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		LAB_RESULT="FAIL timed out after $timeout s${LAB_RESULT:+ (last result line: $LAB_RESULT)}"
	elif [ -z "$LAB_RESULT" ]; then
		LAB_RESULT="FAIL the guest stopped (QEMU exit $rc) without a result line"
	fi
	LAB_KERNEL_SEEN=$(tr -d '\r' <"$w/console.log" | sed -n 's/.*LAB-BOOTED kernel=\([^ ]*\).*/\1/p' | head -n1)
}
