# The initramfs guest, as three concatenated newc archives (the kernel
# unpacks them in order into one rootfs):
#   userspace.cpio  busybox, ndctl, xfsprogs, mkfs.ext4, sfdisk, jq, attr, the
#                   libraries the project links, and everything those need;
#                   cached, keyed by the package versions
#   modules.cpio    per kernel (kernel.sh)
#   project.cpio    the stage (make install DESTDIR), the lab's guest
#                   programs and scripts; rebuilt every run, fast
# Sourced after common.sh.
#
# Nothing in the guest comes from the host: the packages' dependency closure
# is resolved by apt from the suite's own metadata, every library is looked up
# in the unpacked packages (never through the host's ld.so), and a library
# that is not there stops the build naming the binary and the library.

# Guest userspace from bookworm for every kernel: the tools the scenarios
# run, and the runtime libraries of the project itself (what its binaries
# link: configure.ac's PH_DEP list without -dev). Their dependencies are
# apt's business (lab_pkg_closure), not this list's.
LAB_USER_PKGS="busybox-static ndctl xfsprogs e2fsprogs fdisk jq attr"
LAB_PROJECT_PKGS="libc6 libjson-c5 libndctl6 libdaxctl1 libsqlite3-0 libsystemd0 libudev1 libinih1 libpmem2"
# Executables taken from those packages (busybox provides the rest).
LAB_USER_BINS="ndctl mkfs.xfs xfs_io xfs_db mke2fs mkfs.ext4 sfdisk jq setfattr getfattr"
# Where the guest's dynamic linker looks (Debian, amd64), in its order.
LAB_LIB_DIRS="/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib"

# lab_is_elf FILE
lab_is_elf() { [ -f "$1" ] && [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# lab_tree_path TREE PATH: PATH (absolute, as the guest sees it) resolved
# inside TREE, following symlinks the way the guest would (an absolute
# target starts again at TREE, never at the host's /). Prints the guest
# path of the regular file it ends at; false when there is none.
lab_tree_path() {
	local t=$1 p=$2 n l
	for ((n = 0; n < 40; n++)); do
		if [ -L "$t$p" ]; then
			l=$(readlink "$t$p")
			case $l in /*) p=$l ;; *) p=$(dirname "$p")/$l ;; esac
			p=$(realpath -m -s "$p")
			continue
		fi
		# A directory on the way may itself be a link: check the whole
		# path stays inside TREE.
		[ -f "$t$p" ] && [[ $(realpath -e "$t$p") == "$(realpath -e "$t")"/* ]] || return 1
		printf '%s\n' "$p"
		return 0
	done
	return 1
}

# lab_elf_needs FILE: "interp PATH", "needed SONAME" and "runpath DIR" lines.
lab_elf_needs() {
	LC_ALL=C readelf -lW "$1" 2>/dev/null | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/interp \1/p'
	LC_ALL=C readelf -dW "$1" 2>/dev/null | sed -n \
		-e 's/.*(NEEDED).*\[\(.*\)\]/needed \1/p' \
		-e 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/runpath \2/p' | sed '/^runpath/s/:/\nrunpath /g'
}

# lab_copy_libs ROOT FILE...: copy into ROOT, at their guest paths, the
# dynamic linker and every shared library FILEs need, transitively. Each is
# looked up, in the dynamic linker's order, in ROOT itself and then in the
# trees of LAB_LIB_TREES (colon-separated: unpacked packages, say). A tree
# written "=DIR" is already in the guest (an earlier layer): what is found
# there is followed but not copied. Anything missing fails the build,
# naming FILE and the library.
lab_copy_libs() {
	local root=$1 f todo=() done_=" " seen
	shift
	for f in "$@"; do lab_is_elf "$f" && todo+=("$f"); done
	while [ "${#todo[@]}" != 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		case $done_ in *" $f "*) continue ;; esac
		done_+="$f "
		seen=$(lab_copy_needs "$root" "$f") || return 1
		[ -z "$seen" ] || mapfile -t -O "${#todo[@]}" todo <<<"$seen"
	done
}

# lab_copy_needs ROOT FILE: copy FILE's direct needs into ROOT; print the
# host paths (inside ROOT) of what it copied or found, for the caller to
# follow in turn.
lab_copy_needs() {
	local root=$1 f=$2 kind what dirs=() d t p origin found trees needs
	IFS=: read -r -a trees <<<"$root:${LAB_LIB_TREES:-}"
	origin=${f#"$root"}
	origin=$(dirname "$origin")
	needs=$(lab_elf_needs "$f")
	# RUNPATH comes after NEEDED in the dynamic section; it applies to all.
	while read -r kind what; do
		[ "$kind" != runpath ] || dirs+=("${what//\$ORIGIN/$origin}")
	done <<<"$needs"
	while read -r kind what; do
		case $kind in
		interp|needed)
			found=
			if [ "$kind" = interp ]; then
				set -- "$(dirname "$what")"; what=$(basename "$what")
			else
				set -- "${dirs[@]}" $LAB_LIB_DIRS
			fi
			for d in "$@"; do
				for t in "${trees[@]}"; do
					[ -n "$t" ] || continue
					p=$(lab_tree_path "${t#=}" "$d/$what") || continue
					if [ "$t" = "$root" ] || [ "${t:0:1}" = = ]; then
						found=${t#=}$p
					else
						mkdir -p "$root$d"
						cp "$t$p" "$root$d/$what"
						found=$root$d/$what
					fi
					break 2
				done
			done
			[ -n "$found" ] ||
				lab_die "${f#"$root"} needs $what, which no guest package provides" \
					"(searched ${LAB_LIB_TREES:-}; add its package to LAB_USER_PKGS or LAB_PROJECT_PKGS)"
			printf '%s\n' "$found" ;;
		esac
	done <<<"$needs"
}

# lab_pkg_closure SUITE PKG...: "PKG=VERSION" of PKGs and everything they
# depend on (Depends, Pre-Depends; no Recommends), as apt resolves it for an
# empty system from the suite's own lists, one a line.
lab_pkg_closure() {
	local s=$1 opts st out; shift
	mapfile -t opts < <(lab_apt_opts "$s")
	st=$LAB_CACHE/apt/$s/empty-status
	: >"$st"
	out=$(apt-get "${opts[@]}" -o "Dir::State::status=$st" -o Debug::NoLocking=1 \
		-o APT::Install-Recommends=false install --print-uris -qq -y "$@" 2>&1) ||
		lab_die "apt cannot resolve the guest packages of $s: $out"
	# 'URI' NAME_VERSION_ARCH.deb SIZE HASH; the epoch's colon is %3a there.
	awk '$2 ~ /\.deb$/ { print $2 }' <<<"$out" |
		sed -E 's/^([^_]+)_([^_]+)_.*/\1=\2/; s/%3a/:/g' | LC_ALL=C sort
}

lab_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet); }

# lab_userspace_prepare: set USERSPACE_CPIO (and USERSPACE_ROOT, the same
# tree unpacked, against which the project's libraries are checked),
# building them on first use.
lab_userspace_prepare() {
	local p pvs key debs tmp b f libs
	lab_apt_update bookworm
	pvs=$(lab_pkg_closure bookworm $LAB_USER_PKGS $LAB_PROJECT_PKGS)
	key=$({
		echo "$pvs"
		echo "$LAB_USER_BINS $LAB_PROJECT_PKGS $LAB_LIB_DIRS"
		declare -f lab_userspace_prepare lab_copy_libs lab_copy_needs lab_elf_needs \
			lab_tree_path lab_cpio lab_is_elf
	} | lab_hash)
	USERSPACE_CPIO=$LAB_CACHE/userspace/$key/userspace.cpio
	USERSPACE_ROOT=$LAB_CACHE/userspace/$key/root
	[ ! -s "$USERSPACE_CPIO" ] || return 0

	lab_info "building the guest userspace layer ($key) from $(wc -l <<<"$pvs") packages"
	lab_mktemp; tmp=$LAB_TMP
	debs=$(lab_fetch_debs bookworm $pvs)
	for f in $debs; do dpkg -x "$f" "$tmp/x"; done

	# Merged /usr, as Debian installs it.
	mkdir -p "$tmp/r"/{bin,sbin,etc,proc,sys,dev,run,tmp,mnt,root,usr/bin,usr/sbin,usr/lib,usr/lib64}
	ln -s usr/lib "$tmp/r/lib"
	ln -s usr/lib64 "$tmp/r/lib64"
	b=$tmp/x/bin/busybox
	lab_is_elf "$b" && [ -z "$(lab_elf_needs "$b")" ] || lab_die "busybox-static gave no static $b"
	cp "$b" "$tmp/r/bin/busybox"
	# No busybox init: if /init cannot run, the kernel must panic (and QEMU
	# exit, -no-reboot) instead of idling in a fallback init until the timeout.
	# The applet list is the guest's busybox's own (--list prints, runs nothing).
	for p in $("$b" --list); do
		case $p in busybox|init|linuxrc) ;; *) ln -s busybox "$tmp/r/bin/$p" ;; esac
	done
	for b in $LAB_USER_BINS; do
		f=$(find "$tmp/x" -name "$b" \( -type f -o -type l \) -path '*bin/*' | head -n1)
		[ -n "$f" ] || lab_die "no $b in the guest packages"
		f=$(lab_tree_path "$tmp/x" "${f#"$tmp/x"}") || lab_die "$b: a link that leaves the guest packages"
		cp "$tmp/x$f" "$tmp/r/usr/sbin/$b"
	done
	cp "$tmp/x/etc/mke2fs.conf" "$tmp/r/etc/"
	# The project's libraries come whole (it is built later, on the host, and
	# checked against this tree in lab_project_cpio).
	for p in $LAB_PROJECT_PKGS; do
		dpkg-deb --fsys-tarfile "$(lab_deb_path "$(grep "^$p=" <<<"$pvs")")" | tar -t |
			sed -n 's|^\.\(/.*\.so\.[0-9.]*\)$|\1|p'
	done | while read -r f; do
		lab_tree_path "$tmp/x" "$f" >/dev/null || lab_die "$f: a link that leaves the guest packages"
		mkdir -p "$tmp/r$(dirname "$f")"
		cp -P "$tmp/x$f" "$tmp/r$f"
	done
	mapfile -t libs < <(find "$tmp/r/usr/lib" -name '*.so*' -type f)
	LAB_LIB_TREES=$tmp/x lab_copy_libs "$tmp/r" "$tmp/r"/usr/sbin/* "${libs[@]}"

	mkdir -p "$tmp/out"
	lab_cpio "$tmp/r" >"$tmp/out/userspace.cpio"
	mv "$tmp/r" "$tmp/out/root"
	printf '%s\n' "$pvs" >"$tmp/out/packages"
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

# lab_project_cpio STAGE OUT: the per-run layer. The stage's binaries must
# find every library in the stage itself or in the userspace layer: one that
# is in neither fails here, naming it, instead of being taken from the host.
lab_project_cpio() {
	local stage=$1 out=$2 r elfs
	lab_mktemp; r=$LAB_TMP/r
	mkdir -p "$r/lab"
	cp -a "$stage/." "$r/"
	lab_guest_programs "$r/usr/local/bin"
	install -m 755 "$LAB_DIR/guest/init" "$r/init"
	install -m 644 "$LAB_DIR/guest/lab.sh" "$r/lab/"
	mapfile -t elfs < <(find "$r" -path "$r/usr/local/bin" -prune -o -type f -print)
	[ "${#elfs[@]}" = 0 ] || LAB_LIB_TREES="=$USERSPACE_ROOT" lab_copy_libs "$r" "${elfs[@]}"
	lab_cpio "$r" >"$out"
}
