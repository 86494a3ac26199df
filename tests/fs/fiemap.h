/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The test drivers' one way to find where a file's page lives. */
#pragma once

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* The 512-byte sector of the device that holds byte off of fd (synced
 * first); -1 when no block is there (a hole, delayed allocation). */
static inline int fiemap_sector(int fd, uint64_t off, uint64_t *ret)
{
	union {
		struct fiemap fm;
		char buf[sizeof(struct fiemap) + sizeof(struct fiemap_extent)];
	} u = { 0 };

	u.fm.fm_start = off;
	u.fm.fm_length = 4096;
	u.fm.fm_extent_count = 1;
	u.fm.fm_flags = FIEMAP_FLAG_SYNC;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0 || u.fm.fm_mapped_extents != 1)
		return -1;
	*ret = (u.fm.fm_extents[0].fe_physical + (off - u.fm.fm_extents[0].fe_logical)) >> 9;
	return 0;
}
