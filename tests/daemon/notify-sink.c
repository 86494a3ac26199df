/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * notify-sink SOCKET: stand in for systemd's notification socket.  Binds
 * a datagram socket at SOCKET and prints each message on one line, its
 * assignments separated by '|' ("READY=1|STATUS=..."), flushed at once,
 * so a test can wait for a line instead of sleeping.  Prints "ready" once
 * bound.  Runs until killed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify-sink SOCKET (shorter than %zu)\n", sizeof(sa.sun_path));
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(argv[1]);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0)
			return 1;
		while (n > 0 && buf[n - 1] == '\n')
			n--;
		buf[n] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		printf("%s\n", buf);
		fflush(stdout);
	}
}
