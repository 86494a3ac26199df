# Guest kernels from Debian packages, and the initramfs layer with their
# modules. Sourced after common.sh.
#
# A kernel is cached in $LAB_CACHE/kernels/<package>_<version>/ as
#   vmlinuz        the kernel image
#   modules.cpio   newc archive: usr/lib/modules/<release>/ with the modules
#                  the lab needs (dependencies resolved through modules.dep,
#                  decompressed: busybox modprobe loads only plain .ko) and
#                  a modules.dep made for exactly that set
#   release        `uname -r` of the kernel
#   package        "<package> <version>" for the report

# What the guest init loads, in this order; nothing autoloads in the
# initramfs. Dependencies and soft dependencies come from modules.dep.
# dax_pmem (and device_dax) bind devdax namespaces.
LAB_MODULES="qemu_fw_cfg virtio_pci virtio_blk virtio_pmem nfit nd_e820 nd_pmem dax_pmem device_dax crc32c_generic xfs ext4"
# Needed by some kernels only: 6.1's libcrc32c looks the crypto module up at
# run time, 7.x has no crc32c_generic at all.
LAB_MODULES_OPTIONAL="crc32c_generic"

# lab_tool_kmod: the host has no kmod; run bookworm's from the cache.
# kmod picks its personality from argv[0], hence the symlinks.
lab_tool_kmod() {
	local deb d
	deb=$(lab_fetch_debs bookworm "$(lab_pkg_versions bookworm kmod)")
	d=$LAB_CACHE/tools/$(basename "$deb" .deb)
	if [ ! -x "$d/bin/depmod" ]; then
		rm -rf "$d" && mkdir -p "$d/bin"
		dpkg -x "$deb" "$d/root"
		ln -s ../root/bin/kmod "$d/bin/depmod"
		ln -s ../root/bin/kmod "$d/bin/modprobe"
	fi
	KMOD_BIN=$d/bin
}

# lab_kernel_package SUITE: "<linux-image package> <version>" the suite's
# linux-image-amd64 points at (bookworm: Debian 12's current kernel).
lab_kernel_package() {
	local s=$1 img
	img=$(lab_pkg_depends "$s" linux-image-amd64 | grep -m1 '^linux-image-') ||
		lab_die "no linux-image-amd64 in $s"
	printf '%s %s\n' "$img" "$(lab_pkg_version "$s" "$img")"
}

# lab_kernel_prepare SUITE: set KERNEL_DIR to the cached kernel of SUITE,
# building it on first use. The directory name carries the package version
# and a hash of this recipe (code, not comments: `declare -f`).
lab_kernel_prepare() {
	local s=$1 img ver abi tmp deb debs rel mods m f vmlinuz
	lab_apt_update "$s"
	read -r img ver < <(lab_kernel_package "$s")
	KERNEL_DIR=$LAB_CACHE/kernels/${img}_${ver//:/%3a}_$({
		declare -f lab_kernel_prepare lab_tool_kmod
		echo "$LAB_MODULES $LAB_MODULES_OPTIONAL"
	} | lab_hash | cut -c1-8)
	[ ! -s "$KERNEL_DIR/modules.cpio" ] || return 0

	lab_info "building the $s kernel layer from $img $ver"
	lab_tool_kmod
	abi=${img#linux-image-}
	lab_mktemp; tmp=$LAB_TMP
	# sid splits the kernel into linux-{binary,modules,base}-<abi>.
	debs=$(lab_fetch_debs "$s" $(lab_pkg_versions "$s" "$img" \
		$(lab_pkg_depends "$s" "$img" | grep -- "-$abi\$" || true)))
	for deb in $debs; do dpkg -x "$deb" "$tmp/x"; done
	# merged-/usr packages ship usr/lib/modules; depmod -b wants lib/modules.
	if [ ! -d "$tmp/x/lib/modules" ]; then
		mkdir -p "$tmp/x/lib"
		mv "$tmp/x/usr/lib/modules" "$tmp/x/lib/modules"
	fi
	rel=$(ls "$tmp/x/lib/modules")
	[ "$(printf '%s\n' "$rel" | wc -l)" = 1 ] || lab_die "$img: expected one module tree, got: $rel"
	vmlinuz=
	for f in "$tmp/x/boot/vmlinuz-$rel" "$tmp/x/lib/modules/$rel/vmlinuz"; do
		[ ! -f "$f" ] || vmlinuz=$f
	done
	[ -n "$vmlinuz" ] || lab_die "$img: no vmlinuz"

	"$KMOD_BIN/depmod" -b "$tmp/x" "$rel"
	mods=$tmp/r/usr/lib/modules/$rel
	mkdir -p "$mods"
	# -C /dev/null: the host's modprobe.d (ndctl's install hook) is not the guest's.
	for m in $LAB_MODULES; do
		"$KMOD_BIN/modprobe" -C /dev/null -d "$tmp/x" -S "$rel" --show-depends "$m" 2>/dev/null ||
			[[ " $LAB_MODULES_OPTIONAL " == *" $m "* ]] ||
			lab_die "$img: module $m is neither a module nor built in"
	done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r f; do
		p=$mods/${f#"$tmp/x/lib/modules/$rel/"}
		mkdir -p "$(dirname "$p")"
		case $f in
		*.ko.xz)  xz -dc "$f" >"${p%.xz}" ;;
		*.ko.zst) zstd -qdc "$f" >"${p%.zst}" ;;
		*.ko.gz)  gzip -dc "$f" >"${p%.gz}" ;;
		*)        cp "$f" "$p" ;;
		esac
	done
	cp "$tmp/x/lib/modules/$rel/modules.builtin" "$tmp/x/lib/modules/$rel/modules.order" "$mods/"
	cp "$tmp/x/lib/modules/$rel/modules.builtin.modinfo" "$mods/" 2>/dev/null || true
	# depmod looks in lib/modules: point it at the layer's usr/lib/modules.
	ln -s usr/lib "$tmp/r/lib"
	"$KMOD_BIN/depmod" -b "$tmp/r" "$rel"
	rm "$tmp/r/lib"
	# Loadable modules the init modprobes; built-in ones need no loading.
	for m in $LAB_MODULES; do
		! grep -q "/${m//_/[_-]}\.ko:" "$mods/modules.dep" || echo "$m"
	done >"$mods/lab.modules"

	mkdir -p "$tmp/out"
	(cd "$tmp/r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/out/modules.cpio"
	cp "$vmlinuz" "$tmp/out/vmlinuz"
	printf '%s\n' "$rel" >"$tmp/out/release"
	printf '%s %s\n' "$img" "$ver" >"$tmp/out/package"
	rm -rf "$KERNEL_DIR"
	mkdir -p "$(dirname "$KERNEL_DIR")"
	mv "$tmp/out" "$KERNEL_DIR"
}
