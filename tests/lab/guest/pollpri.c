/* pollpri [-t SECONDS] [-n WAKEUPS] FILE...: wait for sysfs_notify() on
 * sysfs attributes (badblocks) the way a daemon would: POLLPRI, and a
 * pread() from offset 0 after each wake-up to re-arm.
 *
 * Prints "ready" once every file is armed (so a caller can start it in the
 * background and know when to trigger the event), then one line per wake-up:
 *   <CLOCK_REALTIME seconds.nanoseconds> <file>
 * Exits 0 after WAKEUPS wake-ups, or without -n once every file has woken
 * at least once; 1 with "timeout" when SECONDS (default 30) pass first; 2 on
 * errors. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void rearm(int fd)
{
	char buf[8192];

	(void)!pread(fd, buf, sizeof(buf), 0);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	int timeout_s = 30, want = 0, got = 0, files_woken = 0, opt, n;
	struct pollfd *pfd;
	char *woke;
	long long deadline;

	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		if (opt == 't')
			timeout_s = atoi(optarg);
		else if (opt == 'n')
			want = atoi(optarg);
		else
			return 2;
	}
	n = argc - optind;
	if (n < 1) {
		fprintf(stderr, "usage: %s [-t SECONDS] [-n WAKEUPS] FILE...\n", argv[0]);
		return 2;
	}
	pfd = calloc(n, sizeof(*pfd));
	woke = calloc(n, 1);
	if (!pfd || !woke)
		return 2;
	for (int i = 0; i < n; i++) {
		pfd[i].fd = open(argv[optind + i], O_RDONLY);
		if (pfd[i].fd < 0) {
			perror(argv[optind + i]);
			return 2;
		}
		pfd[i].events = POLLPRI;
		rearm(pfd[i].fd);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	deadline = now_ms() + timeout_s * 1000LL;
	while (want ? got < want : files_woken < n) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0) {
			printf("timeout\n");
			return 1;
		}
		r = poll(pfd, n, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("poll");
			return 2;
		}
		for (int i = 0; i < n; i++) {
			struct timespec ts;

			if (!(pfd[i].revents & (POLLPRI | POLLERR)))
				continue;
			clock_gettime(CLOCK_REALTIME, &ts);
			printf("%lld.%09ld %s\n", (long long)ts.tv_sec, ts.tv_nsec,
			       argv[optind + i]);
			rearm(pfd[i].fd);
			got++;
			if (!woke[i]) {
				woke[i] = 1;
				files_woken++;
			}
		}
	}
	return 0;
}
