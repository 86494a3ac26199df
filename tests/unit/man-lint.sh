#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Every man page lints clean, with every linter this machine has:
# mandoc -Tlint (package mandoc) and groff -ww (package groff-base).
# Skipped (77) when it has neither.  Env: top_srcdir.
set -eu

: "${top_srcdir:?}"
pages=$(ls "$top_srcdir"/man/*.[1-8])
ran=
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if command -v mandoc >/dev/null; then
	ran="$ran mandoc"
	for p in $pages; do
		if ! mandoc -Tlint "$p" >"$out" 2>&1 || [ -s "$out" ]; then
			echo "FAIL: mandoc -Tlint ${p##*/}:"
			cat "$out"
			failed=1
		fi
	done
fi
if command -v groff >/dev/null; then
	ran="$ran groff"
	for p in $pages; do
		if ! groff -ww -z -man "$p" >"$out" 2>&1 || [ -s "$out" ]; then
			echo "FAIL: groff -ww -z -man ${p##*/}:"
			cat "$out"
			failed=1
		fi
	done
fi
if [ -z "$ran" ]; then
	echo "SKIP: neither mandoc nor groff is installed (apt-get install mandoc)"
	exit 77
fi
[ $failed = 0 ] && echo "linted clean with$ran:" $(for p in $pages; do echo "${p##*/}"; done)
exit $failed
