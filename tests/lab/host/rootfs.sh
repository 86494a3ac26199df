# The systemd guests: a Debian 12 (bookworm) or Debian 13 (trixie) minbase
# rootfs (mmdebstrap) as an ext4 image, booted with its own kernel and
# initrd. Sourced after common.sh.
#
# Cached in $LAB_CACHE/rootfs/<key>/ (rootfs.ext4, vmlinuz, initrd.img,
# package, libs.list), the key made of the suite's package versions, the
# recipe's code and the unit baked in. libs.list names every shared library
# of the image, so that a stage needing one the image lacks fails on the
# host, naming it, instead of in the guest.
# The project is not in the image: each run gets a second, read-only disk
# (lab.img, made with mkfs.ext4 -d, no mount) holding the stage, the lab's
# guest files and the scenario; lab-scenario.service copies the stage into
# the root (snapshot=on: nothing reaches the cached image) and runs it.

LAB_ROOTFS_PKGS="systemd systemd-sysv udev ndctl xfsprogs linux-image-amd64
	initramfs-tools libjson-c5 libsqlite3-0 libinih1 libpmem2 libndctl6
	libdaxctl1 jq sqlite3"

# Where the guest's dynamic linker finds libraries (Debian, amd64).
LAB_ROOTFS_LIB_DIRS="lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib usr/lib"

# lab_rootfs_release SUITE: the Debian release a systemd guest suite is.
lab_rootfs_release() {
	case $1 in
	bookworm) echo 12 ;;
	trixie)   echo 13 ;;
	*) lab_die "no systemd guest for '$1' (known: bookworm trixie)" ;;
	esac
}

lab_rootfs_key() {
	local s=$1
	{
		echo "$s"
		lab_pkg_versions "$s" $LAB_ROOTFS_PKGS $(lab_pkg_depends "$s" linux-image-amd64)
		declare -f lab_rootfs_prepare
		echo "$LAB_ROOTFS_LIB_DIRS"
		cat "$LAB_DIR/guest/lab-scenario.service"
	} | lab_hash
}

# lab_rootfs_prepare SUITE: set ROOTFS_DIR, building the image on first use.
lab_rootfs_prepare() {
	local s=${1:-bookworm} key tmp srcs rel d mask gens blacklist
	# Masked in the image: the ndctl and CXL monitors (pmemheald is the
	# scenarios' monitor), the consoles (the serial line is the lab's; tty2-6
	# of getty-static have no screen), and what a stock boot runs that no
	# scenario uses and TCG takes seconds for (bookworm: e2scrub_reap 8 s and
	# getty-static 7 s before multi-user.target; binfmt 1-2 s). Timers, so
	# nothing periodic wakes up in the middle of a scenario.
	mask="ndctl-monitor.service cxl-monitor.service
		serial-getty@ttyS0.service getty@tty1.service getty-static.service
		e2scrub_reap.service systemd-binfmt.service
		apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
		e2scrub_all.timer fstrim.timer xfs_scrub_all.timer"
	# Generators for what the guest has not got (encrypted, integrity or
	# verity volumes, a GPT root, swap to resume from, a TPM, sshd, an
	# offline update, rc.local, systemd.run=): each costs TCG about 0.2 s,
	# at boot and again at every daemon-reload (systemctl enable is one).
	gens="systemd-cryptsetup-generator systemd-integritysetup-generator
		systemd-veritysetup-generator systemd-gpt-auto-generator
		systemd-hibernate-resume-generator systemd-tpm2-generator
		systemd-ssh-generator systemd-system-update-generator
		systemd-rc-local-generator systemd-run-generator"
	# Not loaded for the emulated PC's legacy devices (IDE, floppy, PS/2
	# mouse, speaker, SMBus) nor for nested virtualisation: udev's coldplug
	# loads one module after another, and these (libata, scsi_mod, kvm: 2 MB,
	# signatures checked under TCG) held the pmem drivers back for 13 s on
	# bookworm. The pmem, virtio and block drivers are not affected. Written
	# before the initrd is made, whose udev would load psmouse otherwise.
	blacklist="ata_piix ata_generic pata_acpi floppy psmouse pcspkr serio_raw
		i2c_piix4 kvm_amd kvm_intel"
	rel=$(lab_rootfs_release "$s")
	lab_apt_update "$s"
	command -v mmdebstrap >/dev/null || lab_skip "no mmdebstrap on the host (apt-get install mmdebstrap)"
	command -v mkfs.ext4 >/dev/null || lab_skip "no mkfs.ext4 on the host (apt-get install e2fsprogs)"
	key=$(lab_rootfs_key "$s")
	ROOTFS_DIR=$LAB_CACHE/rootfs/$key
	[ ! -s "$ROOTFS_DIR/rootfs.ext4" ] || return 0

	lab_info "building the Debian $rel systemd guest image $key (mmdebstrap, a few minutes)"
	lab_mktemp; tmp=$LAB_TMP
	# The same mirrors as the kernel matrix, not the host's sources.
	mapfile -t srcs < <(lab_suite_sources "$s")
	# The initrd only has to mount the root: virtio-blk and ext4 (and what
	# they pull in: virtio_pci is built into 6.12, crc32c comes as ext4's
	# softdep). Debian's default, MODULES=most, packs ~750 modules (a 130 MB
	# cpio on 6.1) that TCG takes seconds to unpack and udev more to probe.
	# Written before the kernel and initramfs-tools are installed, so the
	# one initrd they build is already the small one.
	# The journal is volatile, and large enough never to rotate during a
	# scenario: on systemd 257 a reader that meets a rotation ignores the
	# file ("... is truncated, ignoring file", systemd#40053), and lab 31
	# then found none of the daemon's entries.  The default size (a share
	# of /run) rotated several times in lab 37.
	# The root is a snapshot, so what a boot writes never reaches the next:
	# without the stamps systemd-update-done leaves (newer than /usr) every
	# trixie boot would run the ConditionNeedsUpdate= units (ldconfig, the
	# journal catalog: 4 s), which an installed system runs once.
	mmdebstrap --variant=minbase --include="$(echo $LAB_ROOTFS_PKGS | tr ' ' ,)" \
		--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
			echo MODULES=list >"$1/etc/initramfs-tools/conf.d/lab.conf" &&
			printf "%s\n" virtio_pci virtio_blk ext4 >"$1/usr/share/initramfs-tools/modules.d/lab"' \
		--essential-hook="mkdir -p \"\$1/etc/modprobe.d\" &&
			printf 'blacklist %s\n' $(echo $blacklist) >\"\$1/etc/modprobe.d/lab.conf\"" \
		--customize-hook="copy-in $LAB_DIR/guest/lab-scenario.service /etc/systemd/system" \
		--customize-hook='chroot "$1" systemctl enable lab-scenario.service' \
		--customize-hook="chroot \"\$1\" systemctl mask $(echo $mask)" \
		--customize-hook="mkdir -p \"\$1/etc/systemd/system-generators\" && for g in $(echo $gens); do
			ln -s /dev/null \"\$1/etc/systemd/system-generators/\$g\" || exit 1; done" \
		--customize-hook='mkdir -p "$1/etc/systemd/journald.conf.d" && printf "[Journal]\nStorage=volatile\nRuntimeMaxUse=256M\nRuntimeMaxFileSize=128M\n" >"$1/etc/systemd/journald.conf.d/lab.conf"' \
		--customize-hook='echo lab >"$1/etc/hostname"' \
		--customize-hook='touch "$1/etc/.updated" "$1/var/.updated"' \
		"$s" "$tmp/root" "${srcs[@]}" \
		>"$tmp/mmdebstrap.log" 2>&1 || {
		tail -n 30 "$tmp/mmdebstrap.log" >&2
		lab_die "mmdebstrap failed"
	}
	mkdir -p "$tmp/out"
	cp -L "$tmp/root/vmlinuz" "$tmp/out/vmlinuz"
	cp -L "$tmp/root/initrd.img" "$tmp/out/initrd.img"
	# Room to spare for the stage and the scenario's files.
	mkfs.ext4 -q -L lab-root -d "$tmp/root" "$tmp/out/rootfs.ext4" \
		"$(( $(du -sm "$tmp/root" | cut -f1) * 13 / 10 + 512 ))M" >&2
	printf 'Debian %s systemd guest, %s\n' "$rel" "$(ls "$tmp/root/boot" | sed -n 's/^vmlinuz-//p')" >"$tmp/out/package"
	for d in $LAB_ROOTFS_LIB_DIRS; do
		[ ! -d "$tmp/root/$d" ] || find "$tmp/root/$d/" -maxdepth 1 -name '*.so*' -printf "/$d/%f\n"
	done | LC_ALL=C sort -u >"$tmp/out/libs.list"
	mkdir -p "$LAB_CACHE/rootfs"
	rm -rf "$ROOTFS_DIR"
	mv "$tmp/out" "$ROOTFS_DIR"
}

# lab_rootfs_check_stage STAGE LIBS-LIST: every library the stage's
# binaries need is in the stage itself or in the image (LIBS-LIST, made with
# it); dies naming the first binary and library that are in neither.
lab_rootfs_check_stage() {
	local stage=$1 list=$2 f so d found
	while IFS= read -r f; do
		lab_is_elf "$f" || continue
		for so in $(LC_ALL=C readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			[ -z "$(find "$stage" -name "$so" -print -quit)" ] || continue
			found=
			for d in $LAB_ROOTFS_LIB_DIRS; do
				! grep -qxF "/$d/$so" "$list" || { found=1; break; }
			done
			[ -n "$found" ] || lab_die "${f#"$stage"} needs $so, which the systemd guest image" \
				"does not have (add its package to LAB_ROOTFS_PKGS)"
		done
	done < <(find "$stage" -type f)
}

# lab_rootfs_labdisk STAGE SCENARIO IMAGE LIBS-LIST: the per-run disk.
lab_rootfs_labdisk() {
	local stage=$1 scenario=$2 img=$3 d
	lab_rootfs_check_stage "$stage" "$4"
	lab_mktemp; d=$LAB_TMP
	mkdir -p "$d/stage" "$d/lab" "$d/bin"
	cp -a "$stage/." "$d/stage/"
	cp "$LAB_DIR/guest/lab.sh" "$LAB_DIR/guest/lab-bootstrap" "$d/lab/"
	cp "$scenario" "$d/lab/scenario"
	lab_guest_programs "$d/bin"
	mkfs.ext4 -q -L lab-disk -d "$d" "$img" "$(( $(du -sm "$d" | cut -f1) + 32 ))M" >&2
}
