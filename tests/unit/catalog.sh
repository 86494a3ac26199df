#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The message catalog as journalctl reads it: --update-catalog into a
# scratch root must accept catalog/pmemheal.catalog, and list one entry per
# pmemheal event with its subject (test-record checks the ids against the
# code).  No root needed.
set -eu

: "${top_srcdir:?run through make check}"
command -v journalctl >/dev/null || { echo "SKIP: no journalctl (apt-get install systemd)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/catalog-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/usr/lib/systemd/catalog"
cp "$top_srcdir/catalog/pmemheal.catalog" "$T/usr/lib/systemd/catalog/"

journalctl --root="$T" --update-catalog 2>"$T/err" || { cat "$T/err"; echo "not ok - --update-catalog failed"; exit 1; }
if [ -s "$T/err" ]; then
	cat "$T/err"
	echo "not ok - journalctl complained about the catalog"
	exit 1
fi
journalctl --root="$T" --list-catalog >"$T/list"
cat "$T/list"
n=$(grep -c '^[0-9a-f]\{32\} pmemheal: ' "$T/list" || true)
if [ "$n" != 12 ]; then
	echo "not ok - $n catalog entries listed, wanted 12"
	exit 1
fi
echo "ok - 12 entries"
# Subjects substitute fields; the body of one entry reads back whole.
journalctl --root="$T" --dump-catalog 05f3a23dd3394923ba118a67348365c2 >"$T/one"
grep -q '^Subject: Filesystem metadata poisoned on @PMEMHEAL_DEVICE@$' "$T/one" || {
	cat "$T/one"; echo "not ok - metadata-poison subject"; exit 1; }
grep -q 'xfs_repair' "$T/one" || { echo "not ok - metadata-poison body"; exit 1; }
echo "ok - an entry reads back"
