# The systemd guest: a Debian 12 minbase rootfs (mmdebstrap) as an ext4
# image, booted with its own kernel and initrd. Sourced after common.sh.
#
# Cached in $LAB_CACHE/rootfs/<key>/ (rootfs.ext4, vmlinuz, initrd.img,
# package), the key made of the package versions, the recipe's code and the
# unit baked in.
# The project is not in the image: each run gets a second, read-only disk
# (lab.img, made with mkfs.ext4 -d, no mount) holding the stage, the lab's
# guest files and the scenario; lab-scenario.service copies the stage into
# the root (snapshot=on: nothing reaches the cached image) and runs it.

LAB_ROOTFS_PKGS="systemd systemd-sysv udev ndctl xfsprogs linux-image-amd64
	initramfs-tools libjson-c5 libsqlite3-0 libinih1 libpmem2 libndctl6
	libdaxctl1 jq sqlite3"

lab_rootfs_key() {
	{
		lab_pkg_versions bookworm $LAB_ROOTFS_PKGS $(lab_pkg_depends bookworm linux-image-amd64)
		declare -f lab_rootfs_prepare
		cat "$LAB_DIR/guest/lab-scenario.service"
	} | lab_hash
}

# lab_rootfs_prepare: set ROOTFS_DIR, building the image on first use.
lab_rootfs_prepare() {
	local key tmp srcs
	lab_apt_update bookworm
	command -v mmdebstrap >/dev/null || lab_skip "no mmdebstrap on the host (apt-get install mmdebstrap)"
	command -v mkfs.ext4 >/dev/null || lab_skip "no mkfs.ext4 on the host (apt-get install e2fsprogs)"
	key=$(lab_rootfs_key)
	ROOTFS_DIR=$LAB_CACHE/rootfs/$key
	[ ! -s "$ROOTFS_DIR/rootfs.ext4" ] || return 0

	lab_info "building the systemd guest image $key (mmdebstrap, a few minutes)"
	lab_mktemp; tmp=$LAB_TMP
	# The same mirrors as the kernel matrix, not the host's sources.
	mapfile -t srcs < <(lab_suite_sources bookworm)
	mmdebstrap --variant=minbase --include="$(echo $LAB_ROOTFS_PKGS | tr ' ' ,)" \
		--customize-hook="copy-in $LAB_DIR/guest/lab-scenario.service /etc/systemd/system" \
		--customize-hook='chroot "$1" systemctl enable lab-scenario.service' \
		--customize-hook='chroot "$1" systemctl mask ndctl-monitor.service serial-getty@ttyS0.service getty@tty1.service' \
		--customize-hook='mkdir -p "$1/etc/systemd/journald.conf.d" && printf "[Journal]\nStorage=volatile\n" >"$1/etc/systemd/journald.conf.d/lab.conf"' \
		--customize-hook='echo lab >"$1/etc/hostname"' \
		bookworm "$tmp/root" "${srcs[@]}" \
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
	printf 'Debian 12 systemd guest, %s\n' "$(ls "$tmp/root/boot" | sed -n 's/^vmlinuz-//p')" >"$tmp/out/package"
	mkdir -p "$LAB_CACHE/rootfs"
	rm -rf "$ROOTFS_DIR"
	mv "$tmp/out" "$ROOTFS_DIR"
}

# lab_rootfs_labdisk STAGE SCENARIO IMAGE: the per-run disk.
lab_rootfs_labdisk() {
	local stage=$1 scenario=$2 img=$3 d
	lab_mktemp; d=$LAB_TMP
	mkdir -p "$d/stage" "$d/lab" "$d/bin"
	cp -a "$stage/." "$d/stage/"
	cp "$LAB_DIR/guest/lab.sh" "$LAB_DIR/guest/lab-bootstrap" "$d/lab/"
	cp "$scenario" "$d/lab/scenario"
	lab_guest_programs "$d/bin"
	mkfs.ext4 -q -L lab-disk -d "$d" "$img" "$(( $(du -sm "$d" | cut -f1) + 32 ))M" >&2
}
