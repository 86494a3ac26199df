#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# doc/ARCHITECTURE.md names the code as it is:
#   - every `name()` it mentions is defined in lib/, cli/, daemon/ or tests/,
#     or (a library's or the kernel's function) called there;
#   - every file it names (`lib/x.c`, `units/...`, or a bare `x.c`) exists;
#   - the path of one sector (§2's numbered list, "N. `FILE` `function()`")
#     names each function in the file it is defined in.  The number of file
#     boundaries that path crosses (consecutive steps in different files) is
#     printed, so that a change to the pipeline's shape shows in the log.
# Needs no privileges.  Env: top_srcdir.
set -eu

: "${top_srcdir:?}"
src=$(cd "$top_srcdir" && pwd)
DOC=$src/doc/ARCHITECTURE.md
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0
bad() {
	echo "FAIL: $*"
	failed=1
}
[ -s "$DOC" ] || { echo "FAIL: $DOC is missing"; exit 1; }

cd "$src"
find lib cli daemon tests -name '*.[ch]' | sort >"$T/sources"
[ -s "$T/sources" ] || { echo "FAIL: no sources under $src"; exit 1; }

# defined_in FUNC FILE...: FUNC is defined (a line starting at column 0 that
# names it before "(" and is not a declaration) or #defined in one of FILEs.
defined_in() {
	f=$1
	shift
	grep -Eq "^([A-Za-z_][A-Za-z0-9_ *]*[ *])?$f\(([^;]*|.*[^;])$|^#define $f\(" "$@"
}

# ---- functions ---------------------------------------------------------------
grep -o '`[A-Za-z_][A-Za-z0-9_]*()`' "$DOC" | tr -d '`()' | sort -u >"$T/funcs"
[ -s "$T/funcs" ] || bad "$DOC names no function: did its format change?"
n_funcs=0
while read -r f; do
	n_funcs=$((n_funcs + 1))
	# shellcheck disable=SC2046
	defined_in "$f" $(cat "$T/sources") && continue
	# shellcheck disable=SC2046
	grep -Eqw "$f" $(grep -E '^(lib|cli|daemon)/' "$T/sources") && continue
	bad "doc/ARCHITECTURE.md names $f(), which is neither defined nor called in lib/, cli/, daemon/ or tests/"
done <"$T/funcs"

# ---- files -------------------------------------------------------------------
grep -o '`[A-Za-z0-9_./-]*\.\(c\|h\|sh\|in\|rules\|catalog\|conf\|am\|lab\|py\)`' "$DOC" | tr -d '`' | sort -u >"$T/files"
grep -o '`\(lib\|cli\|daemon\|tests\|units\|man\|conf\|catalog\|doc\)/[A-Za-z0-9_./-]*`' "$DOC" | tr -d '`' |
	sort -u >>"$T/files"
n_files=0
sort -u "$T/files" | while read -r p; do
	case $p in
	*.la) grep -q "^[a-z_]*LTLIBRARIES.*${p%.la}\\.la" Makefile.am ||
		bad "doc/ARCHITECTURE.md names $p, which Makefile.am does not build" ;;
	*/*) [ -e "$p" ] || [ -e "$p.in" ] || bad "doc/ARCHITECTURE.md names $p, which does not exist (nor $p.in)" ;;
	*) find lib cli daemon tests units man conf catalog -name "$p" | grep -q . ||
		bad "doc/ARCHITECTURE.md names $p, which is nowhere in the tree" ;;
	esac
done >"$T/files.out"
if [ -s "$T/files.out" ]; then
	cat "$T/files.out"
	failed=1
fi
n_files=$(sort -u "$T/files" | wc -l)

# ---- the path of one sector --------------------------------------------------
sed -n 's/^ *[0-9][0-9]*\. `\([A-Za-z0-9_./-]*\.c\)` `\([A-Za-z_][A-Za-z0-9_]*\)()`.*/\1 \2/p' "$DOC" >"$T/path"
[ -s "$T/path" ] || bad "doc/ARCHITECTURE.md has no path of one sector (lines \"N. \`FILE\` \`function()\`\")"
steps=0
crossings=0
prev=
while read -r file func; do
	steps=$((steps + 1))
	if [ ! -f "$file" ]; then
		bad "path step $steps: $file does not exist"
	elif ! defined_in "$func" "$file"; then
		bad "path step $steps: $func() is not defined in $file"
	fi
	[ -n "$prev" ] && [ "$prev" != "$file" ] && crossings=$((crossings + 1))
	prev=$file
done <"$T/path"

echo "checked $n_funcs functions and $n_files files named in doc/ARCHITECTURE.md"
echo "the path of one sector: $steps steps in $(cut -d' ' -f1 "$T/path" | sort -u | wc -l) files, $crossings file boundaries crossed"
exit $failed
