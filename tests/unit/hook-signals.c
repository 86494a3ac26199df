/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A Hook= for tests: writes, to the file named by its first argument,
 * which signals it starts with blocked and which ignored ("blocked: 13
 * 15\nignored: 13\n"; exec resets caught signals, so only an ignored one
 * or the mask can come from its parent, and a sanitizer's own handlers
 * do not count), then exits 0; with
 * a second argument "hang" it then waits for signals forever, so only a
 * signal ends it and its wait status says which one.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sigset_t cur;
	FILE *f;

	if (argc < 2)
		return 2;
	f = fopen(argv[1], "we");
	if (!f)
		return 2;
	sigprocmask(SIG_SETMASK, NULL, &cur);
	fputs("blocked:", f);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&cur, s) == 1)
			fprintf(f, " %d", s);
	fputs("\nignored:", f);
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;

		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			fprintf(f, " %d", s);
	}
	fputs("\n", f);
	if (fclose(f) != 0)
		return 2;
	if (argc > 2 && strcmp(argv[2], "hang") == 0)
		for (;;)
			pause();
	return 0;
}
