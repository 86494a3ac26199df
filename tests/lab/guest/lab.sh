# Guest-side library for lab scenarios (POSIX sh: busybox ash in the
# initramfs, dash in the systemd guest). lab_main runs one scenario and ends
# with exactly one console line the host runner looks for:
#   LAB-RESULT: PASS|FAIL|SKIP <detail>
# Scenarios assert with check*; a failed check does not stop the scenario,
# a failed setup command does (set -e), and both make the result FAIL.

LAB_STATE=/run/lab
LAB_MCE_SEQ=0
# What the runner passes besides the scenario (QEMU fw_cfg).
LAB_FW_CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/lab

lab_say() { echo "LAB: $*"; }
lab_ok() { echo "LAB: ok - $1"; echo "$1" >>"$LAB_STATE/passed"; }
lab_not_ok() { echo "LAB: FAILED - $1"; echo "$1" >>"$LAB_STATE/failed"; }

# check DESC CMD...: pass when CMD succeeds.
check() {
	_d=$1; shift
	if "$@"; then lab_ok "$_d"; else lab_not_ok "$_d"; fi
}
# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then lab_ok "$1 ($2)"; else lab_not_ok "$1: got '$2', want '$3'"; fi
}
# check_grep DESC PATTERN TEXT: extended regexp PATTERN matches TEXT.
check_grep() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then lab_ok "$1 ($3)"
	else lab_not_ok "$1: '$3' does not match /$2/"; fi
}

# lab_skip REASON: the scenario cannot run on this guest (say why).
lab_skip() { echo "$*" >"$LAB_STATE/skip"; exit 0; }

# lab_poll SECONDS CMD...: poll CMD every 0.1 s until it succeeds; false
# when SECONDS pass first.
lab_poll() {
	_n=$(($1 * 10)); shift
	while ! "$@"; do
		_n=$((_n - 1))
		[ "$_n" -gt 0 ] || return 1
		sleep 0.1
	done
}

# lab_wait_for SECONDS DESC CMD...: lab_poll for setup steps: a timeout is a
# failed check (and, under set -e, the end of the scenario).
lab_wait_for() {
	_s=$1 _d=$2; shift 2
	lab_poll "$_s" "$@" || { lab_not_ok "timed out waiting for $_d"; return 1; }
}

# lab_fsdax [NAMESPACE]: reconfigure the namespace as fsdax (struct pages in
# the device: "map dev") and wait for its pmem disk.
lab_fsdax() {
	ndctl create-namespace -f -e "${1:-namespace0.0}" -m fsdax -M dev
	lab_wait_for 10 /dev/pmem0 test -b /dev/pmem0
}

# lab_extent FILE OFFSET: "<disk-relative sector> <shared|->" of the byte at
# OFFSET, from FIEMAP (fe_physical is relative to the filesystem's device).
lab_extent() {
	fiemap "$1" | awk -v off="$2" '
		$1 <= off && off < $1 + $3 {
			printf "%d %s\n", ($2 + off - $1) / 512, ($5 == "shared" ? "shared" : "-")
			found = 1; exit
		}
		END { exit !found }'
}
lab_sector() { lab_extent "$1" "$2" | cut -d' ' -f1; }

# lab_fsmap_owners MOUNT SECTOR: every GETFSMAP record (xfs_io, whole
# device, 512-byte units) that covers SECTOR, one owner per line:
# "inode 131 data", "free space", "per-AG metadata".  The whole map is
# read because small query windows inside a free extent come back empty on
# some kernels (6.1).
lab_fsmap_owners() {
	xfs_io -r -c 'fsmap -d' "$1" | awk -v s="$2" '
		match($0, /\[[0-9]+\.\.[0-9]+\]: /) {
			split(substr($0, RSTART + 1, RLENGTH - 4), r, /\.\./)
			if (r[1] + 0 <= s && s <= r[2] + 0) {
				o = substr($0, RSTART + RLENGTH)
				sub(/ [0-9]+\.\.[0-9]+ [0-9]+$/, "", o)   # file offsets, length
				sub(/ [0-9]+$/, "", o)                      # length
				print o
			}
		}'
}

# lab_has_badblock LIST SECTOR: SECTOR lies in an entry of the badblocks LIST.
lab_has_badblock() {
	awk -v s="$2" '$1 <= s && s < $1 + $2 { found = 1 } END { exit !found }' "$1"
}

# lab_badblock_count LIST SECTOR: length of the entry that starts at SECTOR.
lab_badblock_count() { awk -v s="$2" '$1 == s { print $2; exit }' "$1"; }

# lab_poison DISK SECTOR [COUNT]: software poison through sysfs.
lab_poison() {
	echo "$2 ${3:-8}" >"/sys/block/$1/badblocks"
	lab_has_badblock "/sys/block/$1/badblocks" "$2"
}

# lab_gpa DISK SECTOR: guest physical address of SECTOR. The disk's parent
# device is the active pfn device (fsdax), whose resource is the start of
# the data area that sector 0 names.
lab_gpa() {
	_res=$(cat "/sys/block/$1/device/resource")
	printf '0x%x\n' $((_res + $2 * 512))
}

# lab_region DISK: sysfs directory of the region the disk's namespace is in
# (the pfn or namespace device is a child of its region).
lab_region() { dirname "$(readlink -f "/sys/block/$1/device")"; }

# lab_region_offset DISK: sectors from the region's start to the disk's
# sector 0 (namespace offset + pfn data offset).
lab_region_offset() {
	echo $(( ($(cat "/sys/block/$1/device/resource") - $(cat "$(lab_region "$1")/resource")) / 512 ))
}

# lab_mce DISK SECTOR: ask the host for a real machine check (uncorrectable,
# action optional) at SECTOR, and wait until the kernel lists the sector.
# NFIT only: elsewhere the MCE is not routed to the pmem driver.
lab_mce() {
	lab_mce_request "$1" "$2"
	lab_wait_for 60 "the machine check at $_gpa to list sector $2" \
		lab_has_badblock "/sys/block/$1/badblocks" "$2"
}

# lab_mce_request DISK SECTOR: ask the host for the same machine check on
# any bus (the scenario needs `# lab-cpu: intel` off NFIT), without waiting
# for a list: on virtio-pmem and e820 none names the page.  Sets _gpa and
# LAB_MCE_PFN (hex, no 0x) for the scenario to wait on the kernel log.
lab_mce_request() {
	_gpa=$(lab_gpa "$1" "$2")
	LAB_MCE_PFN=$(printf '%x' $((_gpa >> 12)))
	LAB_MCE_SEQ=$((LAB_MCE_SEQ + 1))
	echo "LAB-MCE-REQUEST id=$LAB_MCE_SEQ gpa=$_gpa"
}

# lab_memory_failed PFN: the kernel logged memory_failure for PFN (hex).
lab_memory_failed() { dmesg | grep -qi "memory failure: 0x$1"; }

# lab_disk_dev: the scratch disk of `# lab-disk:`, found by its serial
# (/dev/vda in the initramfs guest, /dev/vdc in the systemd guest, or
# /dev/nvme0n1 with `# lab-disk-bus: nvme`; NVMe pads its serial).
lab_disk_dev() {
	for _f in /sys/block/vd*/serial /sys/block/nvme*/device/serial; do
		[ -e "$_f" ] && [ "$(tr -d ' ' <"$_f")" = lab-scratch ] || continue
		_f=${_f%/serial}
		_f=${_f%/device}
		echo "/dev/${_f##*/}"
		return 0
	done
	return 1
}

# lab_in_cgroup UNIT COMMAND...: run COMMAND inside UNIT's cgroup, where
# the unit's device policy (a BPF program of the cgroup) applies to it,
# and nothing else of the unit's sandbox does.
lab_in_cgroup() {
	_cg=/sys/fs/cgroup$(systemctl show -P ControlGroup "$1")
	shift
	[ -d "$_cg" ] || { echo "no cgroup $_cg" >&2; return 1; }
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$_cg" "$@"
}

# lab_has_ext4 DEV: DEV starts with an ext2/3/4 superblock (magic 0xEF53 at
# byte 1080). busybox has no blkid.
lab_has_ext4() { [ "$(od -An -tx2 -j1080 -N2 "$1" | tr -d ' ')" = ef53 ]; }

# lab_disk_mount DIR: mount the scratch disk at DIR, making its ext4 first
# on boot 1 (the runner creates it empty). A later boot never formats: a
# disk without a filesystem there means boot 1's work was lost, a failure.
lab_disk_mount() {
	_dev=$(lab_poll 10 lab_disk_dev) ||
		{ lab_not_ok "the scratch disk appears (is there a '# lab-disk:' header?)"; return 1; }
	if ! lab_has_ext4 "$_dev"; then
		if [ "$LAB_BOOT" != 1 ]; then
			lab_not_ok "the scratch disk $_dev kept its filesystem from boot 1"
			return 1
		fi
		mkfs.ext4 -q -L lab-scratch "$_dev"
	fi
	mkdir -p "$1"
	mount -t ext4 "$_dev" "$1"
}

# lab_klog_time REGEX: timestamp (seconds, as dmesg prints it) of the first
# kernel log message matching the extended REGEX (taken as is: no escape
# processing); false when none does. This is the printk clock, which is NOT
# CLOCK_MONOTONIC: compare with lab_mono_now through lab_klog_mono.
lab_klog_time() {
	dmesg | LAB_RE=$1 awk '
		match($0, /^\[ *[0-9]+\.[0-9]+\]/) && substr($0, RLENGTH + 2) ~ ENVIRON["LAB_RE"] {
			t = substr($0, 2, RLENGTH - 2)
			sub(/^ +/, "", t)
			print t; found = 1; exit
		}
		END { exit !found }'
}

# lab_mono_now: CLOCK_MONOTONIC now, in the units of lab_klog_time.
lab_mono_now() { monoclock; }

# lab_klog_offset: the printk clock minus CLOCK_MONOTONIC (signed seconds),
# measured now: a unique marker goes to /dev/kmsg between two clock
# readings, and its printk time is compared with their midpoint. The two
# clocks differ by a per-boot constant of tens of milliseconds in these
# guests (README: "Kernel log times").
lab_klog_offset() {
	_m="LAB-CLOCK-MARK $(cat /proc/sys/kernel/random/uuid)"
	set -- $(monoclock -k "$_m")
	[ $# = 2 ] || return 1
	_k=$(lab_klog_time "^$_m\$") || return 1
	awk -v a="$1" -v b="$2" -v k="$_k" 'BEGIN { printf "%.6f\n", k - (a + b) / 2 }'
}

# lab_klog_mono REGEX: lab_klog_time of REGEX moved onto CLOCK_MONOTONIC
# (minus lab_klog_offset), comparable with lab_mono_now and with any
# CLOCK_MONOTONIC time a program prints: machine check to callback latency.
lab_klog_mono() {
	_t=$(lab_klog_time "$1") || return 1
	_o=$(lab_klog_offset) || return 1
	awk -v t="$_t" -v o="$_o" 'BEGIN { printf "%.6f\n", t - o }'
}

# lab_init_labels [REGION] [DIMM]: write an empty label index on a DIMM
# with a label area (`# lab-labels:`). QEMU hands the area over zeroed,
# which the kernel reads as label-less: one raw namespace over the whole
# region that ndctl cannot subdivide. The region is disabled meanwhile.
lab_init_labels() {
	ndctl disable-region "${1:-region0}"
	ndctl init-labels "${2:-nmem0}"
	ndctl enable-region "${1:-region0}"
}

# lab_pollpri OUT FILE...: start a POLLPRI watcher in the background; return
# once it is armed. Its wake-ups land in OUT.
lab_pollpri() {
	_out=$1; shift
	pollpri -t 60 "$@" >"$_out" 2>&1 &
	lab_wait_for 10 "the POLLPRI watcher to arm" grep -q '^ready$' "$_out"
}

# lab_map DISK [ARGS...]: pmemheal map on the disk's own badblocks list;
# output in $LAB_STATE/map.json for lab_jq. Fails the check if map fails.
lab_map() {
	_disk=$1; shift
	if pmemheal map "/dev/$_disk" - "$@" <"/sys/block/$_disk/badblocks" >"$LAB_STATE/map.json"; then
		lab_ok "pmemheal map /dev/$_disk $*"
	else
		lab_not_ok "pmemheal map /dev/$_disk $* (exit $?)"
	fi
	cat "$LAB_STATE/map.json"
}

# lab_jq DESC [jq args...] FILTER: FILTER prints exactly "true" on the map
# output (jq 1.6 -e exits 0 on empty input: compare the output instead).
lab_jq() {
	_d=$1; shift
	check_eq "$_d" "$(jq -c "$@" "$LAB_STATE/map.json" 2>&1)" true
}

# lab_jq_file_owner PATH SECTOR OFFSET [LENGTH]: the map names PATH as a
# file owner of SECTOR at byte OFFSET of the file, LENGTH bytes long (default
# one page: what lab_poison injects; a machine check lists fewer sectors).
lab_jq_file_owner() {
	lab_jq "map names $1 at sector $2, file offset $3, ${4:-4096} bytes" \
		--arg p "$1" --argjson s "$2" --argjson o "$3" --argjson l "${4:-4096}" \
		'[.ranges[].owners[] | select(.type == "file" and any(.paths[]; . == $p)
			and .sector == $s and .offset == $o and .length == $l)] | length == 1'
}

# The one line the runner reads; in the systemd guest the journal gets it too.
lab_result() {
	echo "LAB-RESULT: $*"
	if [ -d /run/systemd/system ]; then
		echo "LAB-RESULT: $*" | systemd-cat -t pmemheal-lab || true
	fi
}

# A kernel that oopsed during the scenario fails it, whatever it asserted.
lab_check_kernel_log() {
	if dmesg | grep -E 'BUG:|Oops|general protection fault|Kernel panic'; then
		lab_not_ok "the kernel log is free of BUG/Oops"
	else
		lab_ok "the kernel log is free of BUG/Oops"
	fi
}

# lab_main SCENARIO: run it in a subshell with set -eu; report.
lab_main() {
	mkdir -p "$LAB_STATE"
	: >"$LAB_STATE/passed"
	: >"$LAB_STATE/failed"
	rm -f "$LAB_STATE/skip"
	# No default boot number: a later boot taken for the first would re-create
	# what it should find.
	if ! LAB_BOOT=$(cat "$LAB_FW_CFG/boot/raw" 2>/dev/null) ||
	   ! LAB_BOOTS=$(cat "$LAB_FW_CFG/boots/raw" 2>/dev/null); then
		lab_result "FAIL no boot number from the runner at $LAB_FW_CFG/boot"
		return
	fi
	export LAB_BOOT LAB_BOOTS
	echo "LAB-BOOTED kernel=$(uname -r) boot=$LAB_BOOT/$LAB_BOOTS uptime=$(cut -d' ' -f1 /proc/uptime)"
	if ! cp "$1" "$LAB_STATE/scenario" 2>/dev/null; then
		lab_result "FAIL no scenario at $1"
		return
	fi
	(set -eu; . "$LAB_STATE/scenario")
	_rc=$?
	lab_check_kernel_log
	_passed=$(wc -l <"$LAB_STATE/passed")
	_failed=$(wc -l <"$LAB_STATE/failed")
	if [ -e "$LAB_STATE/skip" ]; then
		lab_result "SKIP $(cat "$LAB_STATE/skip")"
	elif [ "$_rc" != 0 ]; then
		lab_result "FAIL scenario stopped with status $_rc after $_passed passed and $_failed failed checks"
	elif [ "$_failed" != 0 ]; then
		lab_result "FAIL $_failed of $((_passed + _failed)) checks failed: $(paste -sd';' "$LAB_STATE/failed")"
	elif [ "$_passed" -lt 2 ]; then
		# Only the kernel-log check ran: a scenario without assertions proves nothing.
		lab_result "FAIL the scenario made no assertion"
	else
		lab_result "PASS $_passed checks"
	fi
}

# ---- pmemheald (systemd guest) ------------------------------------------

# lab_heald_start [RESCAN-SECONDS]: the lab's pmemheald.conf drop-in
# (RescanIntervalSec=2 unless given), then `systemctl enable --now`, which
# returns once the daemon sent READY=1 (Type=notify) or failed.
lab_heald_start() {
	mkdir -p /etc/pmemheal/pmemheald.conf.d
	printf '[Daemon]\nRescanIntervalSec=%s\n' "${1:-2}" >/etc/pmemheal/pmemheald.conf.d/50-lab.conf
	systemctl enable --now pmemheald.service
}

# lab_heald_status: the daemon's STATUS= text.
lab_heald_status() { systemctl show -P StatusText pmemheald.service; }

# lab_heald_journal: the daemon's messages of this boot, text only.
lab_heald_journal() { journalctl -b -u pmemheald.service -o cat --no-pager; }

# journalctl, read again when systemd 257's reader skipped the journal file
# because journald was growing it at that moment: such a read prints
# "... is truncated, ignoring file" and exits 0 with entries missing
# (systemd#40053; seen in labs 31 and 37 on Debian 13).  At most 50 reads.
# Follow mode streams and is not wrapped; run it in the background as
# `command journalctl -f ... &`, so that $! is journalctl and not a shell.
journalctl() {
	case " $* " in *" -f "* | *" --follow "*) command journalctl "$@"; return ;; esac
	_jo=$(mktemp) && _je=$(mktemp) || return 1
	_jn=0
	while :; do
		_jrc=0
		command journalctl "$@" >"$_jo" 2>"$_je" || _jrc=$?
		grep -q 'is truncated, ignoring file' "$_je" || break
		_jn=$((_jn + 1))
		[ "$_jn" -lt 50 ] || break
		sleep 0.1
	done
	[ "$_jn" = 0 ] || echo "LAB: journalctl: the journal file was mid-growth, read $((_jn + 1)) times" >&2
	cat "$_jo"
	cat "$_je" >&2
	rm -f "$_jo" "$_je"
	return "$_jrc"
}

# lab_heald_logged EREGEX: the daemon logged a matching message this boot.
lab_heald_logged() { lab_heald_journal | grep -Eq -- "$1"; }

# lab_range_state DISK SECTOR: the ledger's state of the range holding
# SECTOR of DISK ("none" when there is no such range).
lab_range_state() {
	pmemheal status --json | jq -r --arg d "$1" --argjson s "$2" '
		[.namespaces[] | select(.blockdev == $d) | .ranges[]
		 | select(.sector <= $s and $s < .sector + .count) | .state] | first // "none"'
}

# lab_range_is DISK SECTOR STATE: for lab_poll.
lab_range_is() { [ "$(lab_range_state "$1" "$2")" = "$3" ]; }

# lab_listed DISK SECTOR: the kernel lists SECTOR of DISK as bad now;
# lab_unlisted: it does not.
lab_listed() { lab_has_badblock "/sys/block/$1/badblocks" "$2"; }
lab_unlisted() { ! lab_has_badblock "/sys/block/$1/badblocks" "$2"; }

# lab_not CMD...: CMD fails (for check and lab_poll), its output dropped.
lab_not() { ! "$@" >/dev/null 2>&1; }

# lab_ledger SQL: a read-only query of the daemon's ledger.
lab_ledger() { sqlite3 -readonly /var/lib/pmemheal/ledger.db "$1"; }
