#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Populate a directory with a random tree that exercises the mapper.

Seeded, so a failure can be replayed: mktree.py DIR SEED [SCALE].
Makes plain files, reflink clones (whole and partial) and clones of clones
where the filesystem can, hard links, sparse files, preallocated
(unwritten) extents, files of many extents, large directories, long
symlinks and extended attributes big enough to need their own blocks.
"""
import errno
import fcntl
import os
import random
import struct
import sys

FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
BS = 4096


def write_file(path, nblocks, rnd):
    with open(path, "wb") as f:
        f.write(rnd.randbytes(nblocks * BS))


def try_clone(src, dst, rnd, partial):
    """Reflink src to dst; False if the filesystem cannot."""
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if not partial:
            fcntl.ioctl(dfd, FICLONE, sfd)
        else:
            size = os.fstat(sfd).st_size // BS
            if size < 2:
                return False
            off = rnd.randrange(size - 1)
            n = rnd.randrange(1, size - off)
            dst_off = rnd.randrange(4)
            # struct file_clone_range { s64 src_fd; u64 src_offset, src_length, dest_offset; }
            arg = struct.pack("qQQQ", sfd, off * BS, n * BS, dst_off * BS)
            fcntl.ioctl(dfd, FICLONERANGE, arg)
        return True
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
            os.unlink(dst)
            return False
        raise
    finally:
        os.close(sfd)
        os.close(dfd)


def main():
    root, seed = sys.argv[1], int(sys.argv[2])
    scale = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rnd = random.Random(seed)
    dirs = [root]
    files = []

    for i in range(12 * scale):
        d = os.path.join(rnd.choice(dirs), "d%d" % i)
        os.mkdir(d)
        dirs.append(d)

    # One large directory: its leaf and free-index blocks sit at 32 GiB+
    big = os.path.join(root, "bigdir")
    os.mkdir(big)
    for i in range(400):
        open(os.path.join(big, "entry-with-a-long-name-%05d" % i), "w").close()

    for i in range(60 * scale):
        p = os.path.join(rnd.choice(dirs), "f%d" % i)
        write_file(p, rnd.randrange(1, 24), rnd)
        files.append(p)

    # Sparse: data, hole, data
    for i in range(5 * scale):
        p = os.path.join(rnd.choice(dirs), "sparse%d" % i)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(BS * 2))
            f.seek(BS * rnd.randrange(8, 64))
            f.write(rnd.randbytes(BS * 3))
        files.append(p)

    # Unwritten: fallocate, then write into the middle of it
    for i in range(5 * scale):
        p = os.path.join(rnd.choice(dirs), "prealloc%d" % i)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, BS * rnd.randrange(4, 32))
        os.pwrite(fd, rnd.randbytes(BS), BS * 2)
        os.close(fd)
        files.append(p)

    # Many extents: interleave writes to two files so neither is contiguous
    for i in range(3 * scale):
        a = os.path.join(rnd.choice(dirs), "frag%da" % i)
        b = os.path.join(rnd.choice(dirs), "frag%db" % i)
        fa = os.open(a, os.O_WRONLY | os.O_CREAT, 0o644)
        fb = os.open(b, os.O_WRONLY | os.O_CREAT, 0o644)
        for k in range(64):
            os.pwrite(fa, rnd.randbytes(BS), k * BS)
            os.fsync(fa)
            os.pwrite(fb, rnd.randbytes(BS), k * BS)
            os.fsync(fb)
        os.close(fa)
        os.close(fb)
        files += [a, b]

    # Reflink clones, partial clones, clones of clones
    clones = []
    for i in range(25 * scale):
        src = rnd.choice(files + clones)
        dst = os.path.join(rnd.choice(dirs), "clone%d" % i)
        if try_clone(src, dst, rnd, partial=rnd.random() < 0.4):
            clones.append(dst)
    files += clones

    # Hard links, some across directories
    for i in range(10 * scale):
        src = rnd.choice(files)
        os.link(src, os.path.join(rnd.choice(dirs), "link%d" % i))

    # Long symlinks (their target needs a block of its own)
    for i in range(3):
        os.symlink("x" * 900 + str(i), os.path.join(rnd.choice(dirs), "symlink%d" % i))

    # Extended attributes too big for the inode
    for i in range(6 * scale):
        p = rnd.choice(files)
        try:
            os.setxattr(p, "user.pmemheal%d" % i, rnd.randbytes(2000 + rnd.randrange(1500)))
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.E2BIG, errno.EOPNOTSUPP):
                raise

    # Some files change after being cloned: copy-on-write splits extents
    for p in rnd.sample(clones, min(len(clones), 5)):
        with open(p, "r+b") as f:
            f.seek(0)
            f.write(rnd.randbytes(BS))

    os.sync()


if __name__ == "__main__":
    main()
