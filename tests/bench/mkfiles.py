#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fill DIR with N small files in 1000-file directories, plus reflink
clones of every tenth file: mkfiles.py DIR N.  Content is cheap (a block
stamped with the file number); the layout is what the benchmark needs."""
import fcntl
import os
import sys

FICLONE = 0x40049409


def main():
    root, n = sys.argv[1], int(sys.argv[2])
    block = bytearray(os.urandom(4096))
    for i in range(n):
        d = os.path.join(root, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.mkdir(d)
        block[0:8] = i.to_bytes(8, "little")
        fd = os.open(os.path.join(d, "f%06d" % i), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, block * (1 + i % 3))
        if i % 10 == 0:
            cfd = os.open(os.path.join(d, "c%06d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
            fcntl.ioctl(cfd, FICLONE, fd)
            os.close(cfd)
        os.close(fd)
    os.sync()


if __name__ == "__main__":
    main()
