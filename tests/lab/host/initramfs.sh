# The initramfs guest, as three concatenated newc archives (the kernel
# unpacks them in order into one rootfs):
#   userspace.cpio  busybox, ndctl, xfsprogs, mkfs.ext4, sfdisk, jq, attr and their
#                   libraries; cached, keyed by the package versions
#   modules.cpio    per kernel (kernel.sh)
#   project.cpio    the stage (make install DESTDIR), its libraries, the lab's
#                   guest programs and scripts; rebuilt every run, fast
# Sourced after common.sh.

# Guest userspace from bookworm for every kernel. apt-get download does not
# resolve dependencies: the libraries the tools need beyond what the host
# (also bookworm) has are listed too, and ldd fails loudly if one is missing.
LAB_USER_PKGS="ndctl libndctl6 libdaxctl1 xfsprogs libinih1 liburcu8 e2fsprogs
	libext2fs2 libss2 libcom-err2 fdisk libfdisk1 jq libjq1 libonig5 attr libattr1"
# Executables taken from those packages (busybox provides the rest).
LAB_USER_BINS="ndctl mkfs.xfs xfs_io xfs_db mke2fs mkfs.ext4 sfdisk jq setfattr getfattr"

# lab_is_elf FILE
lab_is_elf() { [ -f "$1" ] && [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# lab_copy_libs ROOT FILE...: copy the shared libraries FILEs need into ROOT.
# LD_LIBRARY_PATH (set by the caller) lets ldd see unpacked packages or the
# stage first, and LAB_UNPACKED names that tree so its libraries keep their
# guest paths; anything else comes from the host, also Debian 12.
lab_copy_libs() {
	local root=$1 f lib dst out; shift
	for f in "$@"; do
		lab_is_elf "$f" || continue
		# ldd fails on static executables: nothing to copy for them.
		out=$(ldd "$f" 2>&1) || continue
		if grep -q 'not found' <<<"$out"; then
			printf '%s\n' "$out" >&2
			lab_die "unresolved libraries for $f"
		fi
		sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' <<<"$out"
	done | sort -u | while read -r lib; do
		# Keep the name ldd used (the soname), in the canonical directory.
		dst=$(readlink -f "$(dirname "$lib")")
		dst=${dst#"${LAB_UNPACKED:-/nonexistent}"}
		mkdir -p "$root$dst"
		[ -e "$root$dst/$(basename "$lib")" ] || cp -L "$lib" "$root$dst/"
	done
}

lab_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet); }

# lab_userspace_prepare: set USERSPACE_CPIO, building it on first use.
lab_userspace_prepare() {
	local p pvs key debs tmp b f
	lab_apt_update bookworm
	pvs=$(lab_pkg_versions bookworm $LAB_USER_PKGS)
	key=$({
		echo "$pvs"
		busybox | head -n1
		echo "$LAB_USER_BINS"
		declare -f lab_userspace_prepare lab_copy_libs lab_cpio lab_is_elf
	} | lab_hash)
	USERSPACE_CPIO=$LAB_CACHE/userspace/$key/userspace.cpio
	[ ! -s "$USERSPACE_CPIO" ] || return 0

	lab_info "building the guest userspace layer ($key)"
	lab_mktemp; tmp=$LAB_TMP
	debs=$(lab_fetch_debs bookworm $pvs)
	for f in $debs; do dpkg -x "$f" "$tmp/x"; done

	# Merged /usr like the host, so library paths from ldd fit as they are.
	mkdir -p "$tmp/r"/{bin,sbin,etc,proc,sys,dev,run,tmp,mnt,root,usr/bin,usr/sbin,usr/lib,usr/lib64}
	ln -s usr/lib "$tmp/r/lib"
	ln -s usr/lib64 "$tmp/r/lib64"
	b=$(command -v busybox)
	lab_is_elf "$b" && ! ldd "$b" >/dev/null 2>&1 ||
		lab_die "$b is not a static busybox: install busybox-static"
	cp "$b" "$tmp/r/bin/busybox"
	# No busybox init: if /init cannot run, the kernel must panic (and QEMU
	# exit, -no-reboot) instead of idling in a fallback init until the timeout.
	for p in $("$b" --list); do
		case $p in busybox|init|linuxrc) ;; *) ln -s busybox "$tmp/r/bin/$p" ;; esac
	done
	for b in $LAB_USER_BINS; do
		f=$(find "$tmp/x" -name "$b" \( -type f -o -type l \) -path '*bin/*' | head -n1)
		[ -n "$f" ] || lab_die "no $b in the guest packages"
		cp -L "$f" "$tmp/r/usr/sbin/$b"
	done
	cp "$tmp/x/etc/mke2fs.conf" "$tmp/r/etc/"
	LAB_UNPACKED=$tmp/x LD_LIBRARY_PATH=$tmp/x/lib/x86_64-linux-gnu:$tmp/x/usr/lib/x86_64-linux-gnu \
		lab_copy_libs "$tmp/r" "$tmp/r"/usr/sbin/*

	mkdir -p "$tmp/out"
	lab_cpio "$tmp/r" >"$tmp/out/userspace.cpio"
	mkdir -p "$LAB_CACHE/userspace"
	rm -rf "${USERSPACE_CPIO%/*}"
	mv "$tmp/out" "${USERSPACE_CPIO%/*}"
}

# lab_guest_programs OUTDIR: the lab's guest C programs, static (no libc
# needed in the guest for them), cached by source hash.
lab_guest_programs() {
	local out=$1 key d src cc=${CC:-cc}
	key=$(cat "$LAB_DIR"/guest/*.c | lab_hash)
	d=$LAB_CACHE/guest-bin/$key
	if [ ! -d "$d" ]; then
		lab_mktemp
		for src in "$LAB_DIR"/guest/*.c; do
			$cc -static -O2 -Wall -Wextra -Werror -o "$LAB_TMP/$(basename "$src" .c)" "$src" ||
				lab_die "cannot build $src with $cc"
		done
		mkdir -p "$LAB_CACHE/guest-bin"
		mv "$LAB_TMP" "$d"
	fi
	mkdir -p "$out"
	cp "$d"/* "$out/"
}

# lab_project_cpio STAGE OUT: the per-run layer.
lab_project_cpio() {
	local stage=$1 out=$2 r elfs libdirs
	lab_mktemp; r=$LAB_TMP/r
	mkdir -p "$r/lab"
	cp -a "$stage/." "$r/"
	lab_guest_programs "$r/usr/local/bin"
	install -m 755 "$LAB_DIR/guest/init" "$r/init"
	install -m 644 "$LAB_DIR/guest/lab.sh" "$r/lab/"
	# The stage's private libraries (e.g. usr/lib/*/pmemheal/) resolve from
	# the stage itself.
	libdirs=$(find "$stage" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
	mapfile -t elfs < <(find "$stage" -type f)
	[ "${#elfs[@]}" = 0 ] ||
		LAB_UNPACKED=$(readlink -f "$stage") LD_LIBRARY_PATH=$libdirs lab_copy_libs "$r" "${elfs[@]}"
	lab_cpio "$r" >"$out"
}
