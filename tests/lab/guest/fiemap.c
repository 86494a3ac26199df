/* fiemap FILE: print the file's extents, one a line, all numbers in bytes:
 *   <logical> <physical> <length> <flags in hex> [shared]
 * physical is relative to the filesystem's block device (a partition's own
 * start, not the whole disk's). busybox has no filefrag, and this output
 * needs no parsing of units. */
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char **argv)
{
	struct fiemap *fm;
	unsigned long long start = 0;
	int fd, last = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	fm = calloc(1, sizeof(*fm) + BATCH * sizeof(struct fiemap_extent));
	if (!fm)
		return 2;
	while (!last) {
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			perror("FS_IOC_FIEMAP");
			return 1;
		}
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];

			printf("%llu %llu %llu 0x%x%s\n",
			       (unsigned long long)e->fe_logical,
			       (unsigned long long)e->fe_physical,
			       (unsigned long long)e->fe_length, e->fe_flags,
			       e->fe_flags & FIEMAP_EXTENT_SHARED ? " shared" : "");
			start = e->fe_logical + e->fe_length;
			last = e->fe_flags & FIEMAP_EXTENT_LAST;
		}
	}
	return 0;
}
