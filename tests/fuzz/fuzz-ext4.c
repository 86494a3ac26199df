/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ext4 superblock and the journal's extent tree (mapper-layout.c): the
 * input is the start of a device, superblock at byte 1024, read through a
 * memfd as ph_layout_load_ext4() reads the device. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "mapper-layout.h"

#define SB_OFFSET 1024
#define SB_SIZE 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	uint8_t sb[SB_SIZE] = { 0 };
	struct ph_layout *l = NULL;

	if (fd < 0) {
		fd = memfd_create("fuzz-ext4", MFD_CLOEXEC);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (size > SB_OFFSET)
		memcpy(sb, data + SB_OFFSET, size - SB_OFFSET < SB_SIZE ? size - SB_OFFSET : SB_SIZE);
	if (ph_layout_parse_ext4_sb(sb, sizeof(sb), fd, &l) == 0) {
		uint64_t count;

		/* Walk the first 32 MiB as the mapper does, region by region. */
		for (uint64_t s = 0; s < 1 << 16; s += count) {
			(void)ph_layout_classify(l, s, 1 << 16, &count);
			if (count == 0)
				abort(); /* no progress: the mapper would spin */
		}
		ph_layout_free(l);
	}
	return 0;
}
