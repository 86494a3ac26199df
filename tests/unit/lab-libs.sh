#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The lab's library resolver (tests/lab/host/initramfs.sh, lab_copy_libs):
# every library of a guest binary comes from the unpacked guest packages,
# never from the host.  A fake "package tree" holds a binary's libraries;
# the resolver must copy them at their guest paths, follow an absolute
# symlink inside the tree (not on the host), and fail naming the binary and
# the library when the tree lacks one, even though the host has it.
# No root needed.
set -euo pipefail

: "${top_srcdir:?run through make check}"
command -v readelf >/dev/null || { echo "SKIP: no readelf (apt-get install binutils)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/lab-libs.XXXXXX")
trap 'rm -rf "$T"' EXIT
LAB_CACHE=$T/cache
. "$top_srcdir/tests/lab/host/common.sh"
. "$top_srcdir/tests/lab/host/initramfs.sh"
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

# The binary under test: the host's own `true` (any dynamic executable).
bin=$(type -P true)
lab_is_elf "$bin" && [ -n "$(lab_elf_needs "$bin" | grep '^needed')" ] ||
	{ echo "SKIP: $bin is not a dynamic executable"; exit 77; }

# new_root DIR: a merged-/usr guest root with the binary in it.
new_root() {
	mkdir -p "$1/usr/lib" "$1/usr/lib64" "$1/usr/bin"
	ln -s usr/lib "$1/lib"
	ln -s usr/lib64 "$1/lib64"
	cp "$bin" "$1/usr/bin/prog"
}

# The tree: the binary's needs, as real files at the guest paths the
# resolver should find, the interpreter reached through an absolute link
# (as libc6 ships /lib64/ld-linux-x86-64.so.2).
tree=$T/tree
mkdir -p "$tree/lib/x86_64-linux-gnu" "$tree/lib64"
interp=$(lab_elf_needs "$bin" | sed -n 's/^interp //p')
cp -L "$interp" "$tree/lib/x86_64-linux-gnu/$(basename "$interp")"
ln -s "/lib/x86_64-linux-gnu/$(basename "$interp")" "$tree$interp"
for so in $(lab_elf_needs "$bin" | sed -n 's/^needed //p'); do
	cp -L "/lib/x86_64-linux-gnu/$so" "$tree/lib/x86_64-linux-gnu/$so"
done
# Libraries the needed ones need in turn (libc needs the interpreter only).

new_root "$T/r1"
if out=$( (LAB_LIB_TREES=$tree lab_copy_libs "$T/r1" "$T/r1/usr/bin/prog") 2>&1); then
	missing=
	for so in $(lab_elf_needs "$bin" | sed -n 's/^needed //p') "$(basename "$interp")"; do
		[ -f "$T/r1/usr/lib/x86_64-linux-gnu/$so" ] || [ -f "$T/r1$interp" ] || missing+=" $so"
	done
	[ -z "$missing" ] && [ -f "$T/r1$interp" ] && [ ! -L "$T/r1$interp" ] &&
		ok "every library copied from the tree at its guest path" ||
		bad "libraries missing from the root:$missing (interpreter at $interp: $(ls -l "$T/r1$interp" 2>&1))"
else
	bad "resolving against a complete tree failed: $out"
fi

# The same tree without libc: the host has it, the resolver must not care.
rm "$tree/lib/x86_64-linux-gnu/libc.so.6"
new_root "$T/r2"
if out=$( (LAB_LIB_TREES=$tree lab_copy_libs "$T/r2" "$T/r2/usr/bin/prog") 2>&1); then
	bad "a library missing from the tree was taken from somewhere: $(find "$T/r2" -name 'libc.so*')"
elif grep -q "/usr/bin/prog needs libc.so.6, which no guest package provides" <<<"$out"; then
	ok "a missing library fails, naming the binary and the library"
else
	bad "failed, but not saying what is missing: $out"
fi
[ -z "$(find "$T/r2" -name 'libc.so*')" ] && ok "no libc copied from the host" ||
	bad "libc in the root: $(find "$T/r2" -name 'libc.so*')"

# An absolute link in the tree to a host path that exists on the host
# but not in the tree: lab_tree_path must not follow it out.
ln -s /lib/x86_64-linux-gnu/libc.so.6 "$tree/lib/x86_64-linux-gnu/libc.so.6"
if lab_tree_path "$tree" /lib/x86_64-linux-gnu/libc.so.6 >/dev/null; then
	bad "an absolute link was resolved on the host"
else
	ok "an absolute link resolves inside the tree only"
fi
# A directory link that leaves the tree.
mkdir -p "$T/outside" && echo x >"$T/outside/libz.so.1"
ln -s "$T/outside" "$tree/usr"
if lab_tree_path "$tree" /usr/libz.so.1 >/dev/null; then
	bad "a directory link out of the tree was followed"
else
	ok "a directory link out of the tree is not followed"
fi

[ "$fails" = 0 ]
