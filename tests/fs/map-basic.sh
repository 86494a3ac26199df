#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# pmemheal map on a small, known layout: a reflinked file names both
# sharers at the right offsets, a hard link names both paths, "-" reads
# the badblocks format, --bytes means bytes, ext4 maps through FIEMAP, and
# the human output lists the files the way `zpool status -v` does.
. "${top_srcdir:?}/tests/fs/lib.sh"

json_owners() { # FILE: one line per owner, "type sector count [inode offset shared paths...]"
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["ranges"]:
    for o in r["owners"]:
        extra = ""
        if o["type"] == "file":
            extra = " %d %d %s %s" % (o["inode"], o["offset"], o["shared"], ",".join(o["paths"]))
        elif o["type"] == "metadata":
            extra = " " + o["what"]
        print("%s %d %d%s" % (o["type"], o["sector"], o["count"], extra))
' "$1"
}

mkfs_mount xfs 400M xfs -m reflink=1,rmapbt=1
head -c $((10 * 4096)) /dev/urandom >"$MNT/b"
cp --reflink=always "$MNT/b" "$MNT/c"
head -c 4096 /dev/urandom >"$MNT/a"
ln "$MNT/a" "$MNT/h"
sync
b=$(phys_sector "$MNT/b")
a=$(phys_sector "$MNT/a")
ino_b=$(stat -c %i "$MNT/b")
ino_c=$(stat -c %i "$MNT/c")
ino_a=$(stat -c %i "$MNT/a")
echo "b at sector $b, a at sector $a"

# The third page of b (file offset 8192) is shared by b and c.
"$PMEMHEAL" map --json "$DEV" $((b + 16))+8 >"$WORK/shared.json"
json_owners "$WORK/shared.json" >"$WORK/shared.txt"
cat "$WORK/shared.txt"
diff -u - "$WORK/shared.txt" <<EOT
file $((b + 16)) 8 $ino_b 8192 True $MNT/b
file $((b + 16)) 8 $ino_c 8192 True $MNT/c
EOT
grep -q '"method":"getfsmap"' "$WORK/shared.json"
grep -q '"fstype":"xfs"' "$WORK/shared.json"
grep -q "\"mount\":\"$MNT\"" "$WORK/shared.json"

# A hard-linked file: one owner, both paths.
"$PMEMHEAL" map --json "$DEV" "$a" >"$WORK/link.json"
json_owners "$WORK/link.json" | tee "$WORK/link.txt"
diff -u - "$WORK/link.txt" <<EOT
file $a 1 $ino_a 0 False $MNT/a,$MNT/h
EOT

# "-" reads the badblocks format and gives the same answer as arguments.
printf '%s 8\n%s 1\n' $((b + 16)) "$a" | "$PMEMHEAL" map --json "$DEV" - >"$WORK/stdin.json"
"$PMEMHEAL" map --json "$DEV" $((b + 16))+8 "$a" >"$WORK/args.json"
cmp "$WORK/stdin.json" "$WORK/args.json"

# --bytes: the same sectors given in bytes (rounded out to whole sectors).
"$PMEMHEAL" map --json --bytes "$DEV" $(((b + 16) * 512))+4096 >"$WORK/bytes.json"
cmp "$WORK/bytes.json" "$WORK/shared.json"
"$PMEMHEAL" map --json --bytes "$DEV" $(((b + 16) * 512 + 100))+8 >"$WORK/bytes2.json"
grep -q "\"sector\":$((b + 16)),\"count\":1," "$WORK/bytes2.json"

# Human output: a table per range and the list of files.
"$PMEMHEAL" map "$DEV" $((b + 16))+8 "$a" | tee "$WORK/human.txt"
grep -q "files in these ranges:" "$WORK/human.txt"
for f in a b c h; do grep -q "^        $MNT/$f\$" "$WORK/human.txt"; done
grep -q "shared" "$WORK/human.txt"

# A range over metadata and free space too: owners tile it exactly.
"$PMEMHEAL" map --json "$DEV" 0+2048 >"$WORK/wide.json"
json_owners "$WORK/wide.json" >"$WORK/wide.txt"
grep -q "^metadata 0 8 ag-headers" "$WORK/wide.txt"
grep -q "^free " "$WORK/wide.txt"
grep -q "^metadata .* inodes" "$WORK/wide.txt"

# ext4: no file owners from GETFSMAP, so FIEMAP names the file.
mkfs_mount ext4 64M ext4
head -c $((3 * 4096)) /dev/urandom >"$MNT/e"
sync
e=$(phys_sector "$MNT/e")
"$PMEMHEAL" map --json "$DEV" $((e + 8))+8 >"$WORK/ext4.json"
json_owners "$WORK/ext4.json" | tee "$WORK/ext4.txt"
diff -u - "$WORK/ext4.txt" <<EOT
file $((e + 8)) 8 $(stat -c %i "$MNT/e") 4096 False $MNT/e
EOT
grep -q '"method":"fiemap"' "$WORK/ext4.json"
grep -q '"fstype":"ext4"' "$WORK/ext4.json"
"$PMEMHEAL" map --json "$DEV" 0+8 >"$WORK/ext4-sb.json"
json_owners "$WORK/ext4-sb.json" | grep -q "^metadata 0 8 superblock"
# The internal journal: ext4's GETFSMAP calls it unknown; the superblock's
# copy of the journal inode's block map names it.
jblock=$(debugfs -R 'blocks <8>' "$DEV" 2>/dev/null | awk '{print $10}')
"$PMEMHEAL" map --json "$DEV" $((jblock * 8))+8 >"$WORK/ext4-log.json"
json_owners "$WORK/ext4-log.json" | tee /dev/stderr | grep -q "^metadata $((jblock * 8)) 8 log"
echo PASS
