#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Print N random ranges ("SECTOR+COUNT") for a device: some anywhere on
it, some starting inside files' extents (found with FIEMAP), a few long.
    ranges.py MOUNT DEVICE SEED N
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth  # noqa: E402


def main():
    mount, device, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(seed * 7919)
    name = os.path.basename(os.path.realpath(device))
    size = int(open("/sys/class/block/%s/size" % name).read())
    paths, kind = truth.walk(mount)
    fstype = "xfs" if os.path.exists("/sys/fs/xfs/%s" % name) else "ext4"
    ext = truth.file_extents(mount, fstype, paths, kind)
    out = []
    for i in range(n):
        r = rnd.random()
        if r < 0.55 and ext:
            _, _, ph, _, ln, _ = rnd.choice(ext)
            s = ph // 512 + rnd.randrange(max(1, ln // 512))
            c = rnd.randrange(1, 48)
        elif r < 0.9:
            s = rnd.randrange(size)
            c = rnd.randrange(1, 256)
        else:
            s = rnd.randrange(size)
            c = rnd.randrange(1000, 30000)
        c = min(c, size - s)
        out.append("%d+%d" % (s, c))
    # Always some attribute-fork and directory blocks, which are rare.
    attr = [e for e in ext if e[1] == "attr"]
    dirs = [e for e in ext if kind.get(e[0]) == "directory" and e[1] == "data"]
    for _, _, ph, _, ln, _ in rnd.sample(attr, min(4, len(attr))) + rnd.sample(dirs, min(4, len(dirs))):
        out.append("%d+%d" % (ph // 512, min(ln // 512, 16)))
    # The very first and last sectors of the device.
    out += ["0+16", "%d+1" % (size - 1)]
    print("\n".join(out))


if __name__ == "__main__":
    main()
