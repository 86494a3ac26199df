/* monoclock [-k TEXT]: CLOCK_MONOTONIC in the units of the kernel log's
 * timestamps (seconds with six decimals, as dmesg prints them), so a
 * scenario can subtract a kernel log line's time from a userspace time.
 *
 *   monoclock          prints the time now
 *   monoclock -k TEXT  writes TEXT to /dev/kmsg and prints "BEFORE AFTER",
 *                      the times just before and after the write: the
 *                      kernel's timestamp of TEXT should lie between them
 *                      if the two clocks agree.
 *
 * /proc/uptime is no substitute: two decimals, and it is CLOCK_BOOTTIME
 * (suspend included), not CLOCK_MONOTONIC. Exits 2 on errors. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_time(const struct timespec *ts, const char *end)
{
	printf("%lld.%06ld%s", (long long)ts->tv_sec, ts->tv_nsec / 1000, end);
}

static int mark(const char *text)
{
	struct timespec before, after;
	char line[1024];
	ssize_t n;
	int fd, len;

	/* Without the newline the kernel keeps the record open for a
	 * continuation, and readers do not see it until the next message. */
	len = snprintf(line, sizeof(line), "%s\n", text);
	if (len < 0 || (size_t)len >= sizeof(line)) {
		fprintf(stderr, "monoclock: text too long\n");
		return 2;
	}
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("/dev/kmsg");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &before);
	n = write(fd, line, len);
	clock_gettime(CLOCK_MONOTONIC, &after);
	close(fd);
	if (n != (ssize_t)len) {
		perror("write /dev/kmsg");
		return 2;
	}
	print_time(&before, " ");
	print_time(&after, "\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec now;

	if (argc == 3 && strcmp(argv[1], "-k") == 0)
		return mark(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: %s [-k TEXT]\n", argv[0]);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	print_time(&now, "\n");
	return 0;
}
