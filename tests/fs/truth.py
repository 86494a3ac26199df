#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check `pmemheal map --json` against an independent ground truth.

    truth.py check [--unprivileged] MOUNT DEVICE FSTYPE MAP.json
    truth.py agree A.json B.json
    truth.py shutdown LIVE.json DOWN.json

check: the truth is computed here, without pmemheal's code: a brute-force
FIEMAP of every file (GETBMAPX for XFS directories, which have no FIEMAP),
plus the filesystem's own tools for metadata and free space (xfs_io fsmap;
dumpe2fs and debugfs for ext4).  Every sector of every range in MAP.json
must have exactly the owners the truth says: the same files (inode, fork,
file offset, shared and unwritten flags, every path), free space, or
metadata.  Allocated space that the truth cannot attribute (btree blocks
on XFS without rmapbt, ext4 extent-tree blocks) may be "metadata" or
"unknown".  With --unprivileged (the map ran without CAP_SYS_ADMIN), so
may metadata the mapper had no right to locate (inode chunks).

agree: two map outputs (e.g. --method getfsmap and --method fiemap) name
the same owners for every sector, except where only one method can see the
owner (symlink blocks have no FIEMAP).
"""
import collections
import errno
import fcntl
import json
import os
import re
import struct
import subprocess
import sys

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_XATTR = 0x2
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SKIP = 0x2 | 0x4 | 0x8 | 0x100 | 0x200 | 0x400  # unknown, delalloc, encoded, not aligned, inline, tail
FIEMAP_EXTENT_UNWRITTEN = 0x800
FIEMAP_EXTENT_SHARED = 0x2000
XFS_IOC_GETBMAPX = 0xC0205838  # _IOWR("X", 56, struct getbmap): sized by the 32-byte getbmap
BMV_IF_ATTRFORK, BMV_IF_PREALLOC, BMV_IF_NO_HOLES = 0x1, 0x4, 0x10
BMV_OF_PREALLOC, BMV_OF_DELALLOC, BMV_OF_LAST, BMV_OF_SHARED = 0x1, 0x2, 0x4, 0x8
SECTOR = 512

failures = []


def fail(msg):
    failures.append(msg)


def fiemap(fd, xattr):
    """[(physical, logical, length, flags)] in bytes, or None if unsupported."""
    out, start, batch = [], 0, 256
    while True:
        hdr = struct.pack("QQIIII", start, 0xFFFFFFFFFFFFFFFF - start,
                          FIEMAP_FLAG_XATTR if xattr else 0, 0, batch, 0)
        buf = bytearray(hdr + b"\0" * (56 * batch))
        try:
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EBADR):
                return None
            raise
        n = struct.unpack_from("I", buf, 20)[0]
        if n == 0:
            return out
        last = False
        for i in range(n):
            lo, ph, ln, _, _, fl = struct.unpack_from("QQQQQI", buf, 32 + 56 * i)
            start = lo + ln
            last = last or bool(fl & FIEMAP_EXTENT_LAST)
            if fl & FIEMAP_EXTENT_SKIP:
                continue
            out.append((ph, lo, ln, fl))
        if last or n < batch:
            return out


def getbmapx(fd, attr):
    """XFS block map of any inode, as fiemap() returns it."""
    out, nxt, batch = [], 0, 64
    while True:
        hdr = struct.pack("qqqiiiiii", nxt, 0, (1 << 53) - nxt, batch + 1, 0,
                          BMV_IF_PREALLOC | BMV_IF_NO_HOLES | (BMV_IF_ATTRFORK if attr else 0), 0, 0, 0)
        buf = bytearray(hdr + b"\0" * (48 * batch))
        fcntl.ioctl(fd, XFS_IOC_GETBMAPX, buf)
        n = struct.unpack_from("qqqiiiiii", buf, 0)[4]
        if n <= 0:
            return out
        last = False
        for i in range(1, n + 1):
            off, blk, ln, _, _, _, ofl, _, _ = struct.unpack_from("qqqiiiiii", buf, 48 * i)
            nxt = off + ln
            last = last or bool(ofl & BMV_OF_LAST)
            if blk < 0 or ln <= 0 or ofl & BMV_OF_DELALLOC:
                continue
            fl = (FIEMAP_EXTENT_UNWRITTEN if ofl & BMV_OF_PREALLOC else 0) | \
                 (FIEMAP_EXTENT_SHARED if ofl & BMV_OF_SHARED else 0)
            out.append((blk * SECTOR, off * SECTOR, ln * SECTOR, fl))
        if last or n < batch:
            return out


def walk(mount):
    """inode -> sorted paths, inode -> kind, for everything on this filesystem."""
    dev = os.lstat(mount).st_dev
    paths = collections.defaultdict(list)
    kind = {}
    root_ino = os.lstat(mount).st_ino
    paths[root_ino].append(mount)
    kind[root_ino] = "directory"
    for d, subdirs, names in os.walk(mount):
        keep = []
        for s in subdirs:
            st = os.lstat(os.path.join(d, s))
            if st.st_dev == dev:
                keep.append(s)
        subdirs[:] = keep
        for n in subdirs + names:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if st.st_dev != dev:
                continue
            paths[st.st_ino].append(p)
            kind[st.st_ino] = ("directory" if os.path.isdir(p) and not os.path.islink(p)
                               else "symlink" if os.path.islink(p) else "file")
    return {i: sorted(v) for i, v in paths.items()}, kind


def file_extents(mount, fstype, paths, kind):
    """[(ino, fork, physical, logical, length, flags)] in bytes."""
    ext = []
    for ino, ps in paths.items():
        if kind[ino] == "symlink":
            continue
        fd = os.open(ps[0], os.O_RDONLY | os.O_NOFOLLOW)
        try:
            for fork, attr in (("data", False), ("attr", True)):
                m = fiemap(fd, attr)
                if m is None and fstype == "xfs" and kind[ino] == "directory":
                    m = getbmapx(fd, attr)
                for ph, lo, ln, fl in m or []:
                    ext.append((ino, fork, ph, lo, ln, fl))
        finally:
            os.close(fd)
    return ext


def xfs_space(mount):
    """From xfs_io's fsmap: [(start, end, class, ino)] in sectors, end exclusive."""
    out = subprocess.run(["xfs_io", "-r", "-c", "fsmap -d", mount], check=True,
                         capture_output=True, text=True).stdout
    recs = []
    for line in out.splitlines():
        m = re.search(r"\[(\d+)\.\.(\d+)\]:\s+(.*?)\s+\d+\s*$", line)
        if not m:
            continue
        s, e, owner = int(m.group(1)), int(m.group(2)) + 1, m.group(3)
        ino = None
        im = re.match(r"inode (\d+)\b", owner)
        if im:
            ino = int(im.group(1))
            cls = "metadata" if "extent map" in owner else "inode"
        elif owner == "free space":
            cls = "free"
        elif owner == "unknown":
            cls = "other"
        else:
            cls = "metadata"
        recs.append((s, e, cls, ino))
    return recs


def xfs_layout(mount, device):
    """AG headers, internal log and inode chunks, from xfs_db's superblock and
    xfs_io's INUMBERS: [(start, end, "metadata", None)] in sectors."""
    out = subprocess.run(["xfs_db", "-r", "-c", "sb 0", "-c",
                          "print logstart logblocks agblocks agblklog blocksize inopblog agcount sectsize",
                          device], check=True, capture_output=True, text=True).stdout
    sb = {k.strip(): int(v) for k, v in (l.split("=") for l in out.splitlines() if "=" in l)}
    spb = sb["blocksize"] // SECTOR
    recs = []
    hdr = -(-4 * sb["sectsize"] // sb["blocksize"])
    for ag in range(sb["agcount"]):
        s0 = ag * sb["agblocks"] * spb
        recs.append((s0, s0 + hdr * spb, "metadata", None))
    if sb["logstart"]:
        agno, agbno = sb["logstart"] >> sb["agblklog"], sb["logstart"] & ((1 << sb["agblklog"]) - 1)
        s0 = (agno * sb["agblocks"] + agbno) * spb
        recs.append((s0, s0 + sb["logblocks"] * spb, "metadata", None))
    inums = subprocess.run(["xfs_io", "-r", "-c", "inumbers", mount], check=True,
                           capture_output=True, text=True).stdout
    shift = sb["agblklog"] + sb["inopblog"]
    for m in re.finditer(r"xi_startino = (\d+)", inums):
        ino = int(m.group(1))
        agno, agino = ino >> shift, ino & ((1 << shift) - 1)
        s0 = (agno * sb["agblocks"] + (agino >> sb["inopblog"])) * spb
        recs.append((s0, s0 + max(64 >> sb["inopblog"], 1) * spb, "metadata", None))
    return recs


def ext4_space(device):
    """From dumpe2fs and debugfs: [(start, end, class, None)] in sectors."""
    out = subprocess.run(["dumpe2fs", device], check=True, capture_output=True, text=True).stdout
    bs = int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))
    spb = bs // SECTOR
    recs = []

    def add(a, b, cls):
        recs.append((a * spb, (b + 1) * spb, cls, None))

    for m in re.finditer(r"superblock at (\d+), Group descriptors at (\d+)-(\d+)", out):
        add(int(m.group(1)), int(m.group(1)), "metadata")
        add(int(m.group(2)), int(m.group(3)), "metadata")
    for m in re.finditer(r"Reserved GDT blocks at (\d+)-(\d+)", out):
        add(int(m.group(1)), int(m.group(2)), "metadata")
    for m in re.finditer(r"(?:Block|Inode) bitmap at (\d+)", out):
        add(int(m.group(1)), int(m.group(1)), "metadata")
    for m in re.finditer(r"Inode table at (\d+)-(\d+)", out):
        add(int(m.group(1)), int(m.group(2)), "metadata")
    for m in re.finditer(r"^\s+Free blocks: (.*)$", out, re.M):
        for part in filter(None, (p.strip() for p in m.group(1).split(","))):
            a, _, b = part.partition("-")
            add(int(a), int(b or a), "free")
    jino = re.search(r"^Journal inode:\s+(\d+)", out, re.M)
    if jino:
        blocks = subprocess.run(["debugfs", "-R", "blocks <%s>" % jino.group(1), device],
                                check=True, capture_output=True, text=True).stdout.split()
        for b in blocks:
            add(int(b), int(b), "metadata")
    # Block 0 holds the boot sector and, with 4 KiB blocks, the superblock.
    if bs > 1024:
        add(0, 0, "metadata")
    return recs


def owners_at(doc):
    """(range index, sector) -> owners covering it; checks that each range's
    owners cover it exactly, with only reflink sharers overlapping."""
    at = {}
    for ri, rng in enumerate(doc["ranges"]):
        s0, n = rng["sector"], rng["count"]
        for s in range(s0, s0 + n):
            at[(ri, s)] = []
        single = collections.Counter()
        for o in rng["owners"]:
            if o["sector"] < s0 or o["sector"] + o["count"] > s0 + n or o["count"] < 1:
                fail("owner %s outside its range %d+%d" % (o, s0, n))
                continue
            for s in range(o["sector"], o["sector"] + o["count"]):
                at[(ri, s)].append(o)
                if o["type"] != "file":
                    single[s] += 1
        for s in range(s0, s0 + n):
            if not at[(ri, s)]:
                fail("sector %d: no owner (range %d+%d)" % (s, s0, n))
            if single[s] > 1 or (single[s] and any(o["type"] == "file" for o in at[(ri, s)])):
                fail("sector %d: owners overlap: %s" % (s, at[(ri, s)]))
    return at


def file_key(o, s):
    return (o["inode"], o.get("fork", "data"), o["offset"] // SECTOR + (s - o["sector"]))


def check(mount, device, fstype, mapfile, unprivileged=False):
    doc = json.load(open(mapfile))
    at = owners_at(doc)
    wanted = set(s for _, s in at)
    paths, kind = walk(mount)

    truth_files = collections.defaultdict(dict)  # sector -> key -> (shared, unwritten)
    for ino, fork, ph, lo, ln, fl in file_extents(mount, fstype, paths, kind):
        for i in range(ln // SECTOR):
            s = ph // SECTOR + i
            if s in wanted:
                truth_files[s][(ino, fork, lo // SECTOR + i)] = (
                    bool(fl & FIEMAP_EXTENT_SHARED), bool(fl & FIEMAP_EXTENT_UNWRITTEN))

    space = {}
    symlink_sectors = {}
    recs = xfs_space(mount) if fstype == "xfs" else ext4_space(device)
    if any(r[2] == "other" for r in recs):
        # GETFSMAP without rmapbt names no metadata; XFS's own tools locate
        # what the mapper must call metadata (later records win below).
        recs += xfs_layout(mount, device) if fstype == "xfs" else []
    for s0, e0, cls, ino in recs:
        for s in range(max(s0, min(wanted, default=0)), min(e0, max(wanted, default=-1) + 1)):
            if s not in wanted:
                continue
            if cls == "inode":
                if ino in kind and kind[ino] == "symlink":
                    symlink_sectors[s] = ino
                continue
            if cls == "metadata" and space.get(s) == "free":
                continue  # the free part of a sparse inode chunk
            space[s] = cls

    checked = collections.Counter()
    for key in sorted(at):
        s, got = key[1], at[key]
        gfiles = {file_key(o, s): o for o in got if o["type"] == "file"}
        tfiles = truth_files.get(s, {})
        if s in symlink_sectors:
            ok = all(o["type"] == "unknown" for o in got) or \
                set(k[0] for k in gfiles) == {symlink_sectors[s]}
            if not ok:
                fail("sector %d: symlink inode %d's block, mapper says %s" % (s, symlink_sectors[s], got))
            checked["symlink"] += 1
            continue
        if tfiles or gfiles:
            if set(tfiles) != set(gfiles):
                fail("sector %d: files %s, mapper says %s" % (s, sorted(tfiles), sorted(gfiles)))
                continue
            for k, (shared, unwritten) in tfiles.items():
                o = gfiles[k]
                if o["shared"] != shared or o["unwritten"] != unwritten:
                    fail("sector %d inode %d: shared/unwritten %s/%s, mapper %s/%s" %
                         (s, k[0], shared, unwritten, o["shared"], o["unwritten"]))
                if o["paths"] != paths.get(k[0], []):
                    fail("sector %d inode %d: paths %s, mapper %s" % (s, k[0], paths.get(k[0]), o["paths"]))
                if o.get("kind") != kind.get(k[0]):
                    fail("sector %d inode %d: kind %s, mapper %s" % (s, k[0], kind.get(k[0]), o.get("kind")))
            if len(got) != len(gfiles):
                fail("sector %d: files plus other owners: %s" % (s, got))
            forks = set(k[1] for k in tfiles)
            kinds = set(kind.get(k[0]) for k in tfiles)
            checked["attr" if "attr" in forks else "directory" if "directory" in kinds else "file"] += 1
            continue
        t = space.get(s, "other")
        g = got[0]["type"] if len(got) == 1 else "many"
        if t == "other" or (t == "metadata" and unprivileged):
            if g not in ("metadata", "unknown"):
                fail("sector %d: allocated but unattributed, mapper says %s" % (s, got))
        elif t != g:
            fail("sector %d: %s, mapper says %s" % (s, t, got))
        checked[t] += 1
    return checked


def agree(a, b):
    da, db = json.load(open(a)), json.load(open(b))
    if [(r["sector"], r["count"]) for r in da["ranges"]] != [(r["sector"], r["count"]) for r in db["ranges"]]:
        fail("the two outputs map different ranges")
        return collections.Counter()
    ata, atb = owners_at(da), owners_at(db)
    checked = collections.Counter()

    def norm(o, s):
        if o["type"] == "file":
            return ("file",) + file_key(o, s) + (o["shared"], o["unwritten"], tuple(o["paths"]), o["kind"])
        return (o["type"], o.get("what"))

    for key in sorted(ata):
        s = key[1]
        na = sorted(norm(o, s) for o in ata[key])
        nb = sorted(norm(o, s) for o in atb.get(key, []))
        if na == nb:
            checked["same"] += 1
            continue
        # Only GETFSMAP sees symlink blocks; FIEMAP cannot open a symlink.
        sym = [x for x in na + nb if x[0] == "file" and x[-1] == "symlink"]
        other = [x for x in na + nb if x[0] == "unknown"]
        if sym and other and len(sym) + len(other) == len(na) + len(nb):
            checked["symlink"] += 1
            continue
        fail("sector %d: %s says %s, %s says %s" % (s, a, na, b, nb))
    return checked


def shutdown(live, down):
    """A map of a quiesced filesystem after it shut down (DOWN, read from the
    device) against the map of it just before (LIVE): the same owners for
    every sector, except that free space becomes unknown (the log may have
    allocated it), files lose their paths, and space LIVE could not name
    (XFS without rmapbt) may now be named as metadata."""
    dl, dd = json.load(open(live)), json.load(open(down))
    atl, atd = owners_at(dl), owners_at(dd)
    checked = collections.Counter()

    def norm(o, s):
        if o["type"] == "file":
            return ("file",) + file_key(o, s) + (o["shared"], o["unwritten"])
        return (o["type"], o.get("what"))

    for key in sorted(atl):
        s = key[1]
        nl = sorted(norm(o, s) for o in atl[key])
        nd = sorted(norm(o, s) for o in atd.get(key, []))
        if nl == [("free", None)]:
            ok = len(nd) == 1 and nd[0][0] == "unknown"
            checked["free->unknown"] += 1
        elif all(x[0] == "unknown" for x in nl):
            ok = len(nd) == 1 and nd[0][0] in ("metadata", "unknown")
            checked["unknown"] += 1
        elif dl["method"] == "fiemap" and all(x[0] == "file" for x in nl):
            # Without rmapbt, file owners come only from walking files.
            ok = len(nd) == 1 and nd[0][0] == "unknown"
            checked["file->unknown"] += 1
        else:
            ok = nl == nd
            checked[nl[0][0]] += 1
        if not ok:
            fail("sector %d: live %s, shut down %s" % (s, nl, nd))
        for o in atd.get(key, []):
            if o["type"] == "file" and o["paths"]:
                fail("sector %d: paths from a filesystem that has shut down: %s" % (s, o))
    return checked


def main():
    if len(sys.argv) == 7 and sys.argv[1:3] == ["check", "--unprivileged"]:
        checked = check(*sys.argv[3:7], unprivileged=True)
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        checked = check(*sys.argv[2:6])
    elif len(sys.argv) == 4 and sys.argv[1] == "agree":
        checked = agree(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "shutdown":
        checked = shutdown(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
    for f in failures[:25]:
        print("MISMATCH:", f)
    if len(failures) > 25:
        print("... and %d more" % (len(failures) - 25))
    print("checked sectors: %s" % dict(checked))
    if not failures and sum(checked.values()) == 0:
        print("nothing was checked")
        sys.exit(1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
