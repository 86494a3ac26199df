#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# File names are the one thing any user controls in pmemheal's output.  A
# file named with a terminal escape (ESC [2J clears the screen), a C1 CSI,
# a right-to-left override, a newline and bytes that are not UTF-8 must
# appear escaped in `pmemheal map` text (\x1b, \u009b, \u202e, \n, \xff) and
# as valid UTF-8 in --json (the bad bytes as U+FFFD), on XFS (GETFSMAP and
# the directory walk) and on ext4 (FIEMAP).  The scan's text summary too.
. "${top_srcdir:?}/tests/fs/lib.sh"

need_root
need_cmd losetup mkfs.xfs mkfs.ext4 xfs_io python3

# The raw bytes of the evil name, and what each output must show instead.
evil=$'clear\e[2J\xc2\x9b2J\xe2\x80\xaegpj\nnext\xff\xfe.dat'
shown='clear\x1b[2J\u009b2J\u202egpj\nnext\xff\xfe.dat'
json_name=$'clear\e[2J\xc2\x9b2J\xe2\x80\xaegpj\nnext\xef\xbf\xbd\xef\xbf\xbd.dat'

# check_text FILE: no byte of FILE is a terminal control or invalid UTF-8,
# and the name is there, escaped.
check_text() {
	python3 - "$1" "$2" "$shown" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
try:
    text = raw.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("FAIL: text output is not UTF-8: %s" % e)
bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
       or ord(c) in (0x200e, 0x200f) or 0x2028 <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
if bad:
    sys.exit("FAIL: control characters reach the terminal: %r" % bad)
want = sys.argv[2] + "/" + sys.argv[3]
if want not in text:
    sys.exit("FAIL: %r not in the output:\n%s" % (want, text))
print("ok - text output shows", want)
PY
}

# check_json FILE: a valid JSON document (strict UTF-8), holding the name
# with its bad bytes replaced.
check_json() {
	python3 - "$1" "$2" "$json_name" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
try:
    doc = json.loads(raw.decode("utf-8", errors="strict"))
except (UnicodeDecodeError, ValueError) as e:
    sys.exit("FAIL: --json output is not valid UTF-8 JSON: %s" % e)
want = sys.argv[2] + "/" + sys.argv[3]
paths = [p for r in doc["ranges"] for o in r["owners"] for p in o.get("paths", [])]
if want not in paths:
    sys.exit("FAIL: %r not among %r" % (want, paths))
print("ok - JSON holds", ascii(want))
PY
	if command -v jq >/dev/null; then
		jq -e . "$1" >/dev/null || { echo "FAIL: jq refuses the --json output"; exit 1; }
	fi
}

for fs in xfs ext4; do
	if [ $fs = xfs ]; then
		mkfs_mount names-$fs 300M xfs -m reflink=1,rmapbt=1
	else
		mkfs_mount names-$fs 300M ext4
	fi
	# the directory too carries an escape
	dir=$'dir\e]0;title\a'
	dir_shown='dir\x1b]0;title\x07'
	dir_json=$'dir\e]0;title\a'
	mkdir "$MNT/$dir"
	head -c 4096 /dev/urandom >"$MNT/$dir/$evil"
	sync
	# (phys_sector reads line 2, and this name spans two lines of xfs_io's output)
	s=$(xfs_io -r -c fiemap "$MNT/$dir/$evil" | sed -n 's/^[[:space:]]*0: \[[0-9]*\.\.[0-9]*\]: *\([0-9][0-9]*\)\.\..*/\1/p')
	[ -n "$s" ] || { echo "FAIL: no extent for the file on $fs"; exit 1; }

	"$PMEMHEAL" map "$DEV" "$s"+8 >"$WORK/$fs.txt"
	check_text "$WORK/$fs.txt" "$MNT/$dir_shown"
	"$PMEMHEAL" map --json "$DEV" "$s"+8 >"$WORK/$fs.json"
	check_json "$WORK/$fs.json" "$MNT/$dir_json"
done
echo "ok - escaped in text, valid in JSON"
