/* poison-probe: show how the kernel answers an access to one page of a file.
 *
 *   poison-probe pread FILE OFFSET  read the page at OFFSET with pread(2):
 *                                   "pread OFFSET: ok" or "pread OFFSET: EIO"
 *   poison-probe mmap FILE OFFSET   map the page shared and load one byte:
 *                                   "mmap OFFSET: ok" or
 *                                   "mmap OFFSET: SIGBUS si_code=N (NAME)"
 *   poison-probe dax FILE           "dax=1" if statx says the file is DAX
 *
 * It only reports; the scenario decides what is expected. Exit status 0 when
 * the probe ran, 2 when it could not (usage, open, mmap setup). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

static sigjmp_buf env;
static volatile sig_atomic_t bus_code;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_code = si->si_code;
	siglongjmp(env, 1);
}

static const char *bus_code_name(int code)
{
	switch (code) {
	case BUS_ADRALN: return "BUS_ADRALN";
	case BUS_ADRERR: return "BUS_ADRERR";
	case BUS_OBJERR: return "BUS_OBJERR";
	case BUS_MCEERR_AR: return "BUS_MCEERR_AR";
	case BUS_MCEERR_AO: return "BUS_MCEERR_AO";
	default: return "unknown";
	}
}

static int probe_pread(int fd, off_t off)
{
	static char buf[4096] __attribute__((aligned(4096)));
	ssize_t n = pread(fd, buf, sizeof(buf), off);

	if (n < 0)
		printf("pread %lld: %s\n", (long long)off, strerrorname_np(errno));
	else
		printf("pread %lld: ok (%zd bytes)\n", (long long)off, n);
	return 0;
}

static int probe_mmap(int fd, off_t off)
{
	long page = sysconf(_SC_PAGESIZE);
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	volatile unsigned char *p;

	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, off & ~(off_t)(page - 1));
	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	sigaction(SIGBUS, &sa, NULL);
	if (sigsetjmp(env, 1) == 0) {
		unsigned char c = p[off & (page - 1)];
		printf("mmap %lld: ok (byte 0x%02x)\n", (long long)off, c);
	} else {
		printf("mmap %lld: SIGBUS si_code=%d (%s)\n", (long long)off,
		       (int)bus_code, bus_code_name(bus_code));
	}
	return 0;
}

static int probe_dax(int fd)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0) {
		perror("statx");
		return 2;
	}
	printf("dax=%d\n", (stx.stx_attributes_mask & STATX_ATTR_DAX) &&
	       (stx.stx_attributes & STATX_ATTR_DAX));
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3 || (strcmp(argv[1], "dax") && argc != 4)) {
		fprintf(stderr, "usage: %s pread|mmap FILE OFFSET | dax FILE\n", argv[0]);
		return 2;
	}
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		perror(argv[2]);
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(argv[1], "pread"))
		return probe_pread(fd, strtoll(argv[3], NULL, 0));
	if (!strcmp(argv[1], "mmap"))
		return probe_mmap(fd, strtoll(argv[3], NULL, 0));
	if (!strcmp(argv[1], "dax"))
		return probe_dax(fd);
	fprintf(stderr, "unknown probe %s\n", argv[1]);
	return 2;
}
