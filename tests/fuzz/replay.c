/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The regression driver of a fuzz harness, without libFuzzer: runs every
 * file of tests/fuzz/corpus/NAME and tests/fuzz/crashes/NAME (or of the
 * files and directories given as arguments) through the harness once.  A
 * crash or a sanitizer report fails the test; so does an input that takes
 * longer than REPLAY_TIMEOUT seconds, since a past timeout is a crash too.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_TIMEOUT 60

static void on_alarm(int sig)
{
	static const char msg[] = "replay: input took too long (a past timeout?)\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "re");
	uint8_t *buf = NULL;
	size_t size = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (size == cap) {
			uint8_t *b = realloc(buf, cap ? cap * 2 : 4096);

			if (!b)
				abort();
			buf = b;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + size, 1, cap - size, f);
		if (n == 0)
			break;
		size += n;
	}
	fclose(f);
	printf("replay: %s (%zu bytes)\n", path, size);
	fflush(stdout);
	alarm(REPLAY_TIMEOUT);
	/* A copy of exactly 'size' bytes, so that ASan sees any over-read. */
	{
		uint8_t *exact = malloc(size ? size : 1);

		if (!exact)
			abort();
		memcpy(exact, buf, size);
		LLVMFuzzerTestOneInput(exact, size);
		free(exact);
	}
	alarm(0);
	free(buf);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every regular file of a directory (in name order, README
 * excepted).  *count is increased by the inputs run; a missing directory is
 * no error (a harness may have no past crash). */
static int replay_path(const char *path, unsigned *count)
{
	struct stat st;
	struct dirent **v;
	int n, r = 0;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	n = scandir(path, &v, NULL, NULL);
	if (n < 0)
		return -1;
	{
		char **names = calloc((size_t)n + 1, sizeof(char *));
		int k = 0;

		if (!names)
			abort();
		for (int i = 0; i < n; i++) {
			if (v[i]->d_name[0] != '.' && strcmp(v[i]->d_name, "README") != 0)
				names[k++] = strdup(v[i]->d_name);
			free(v[i]);
		}
		free(v);
		qsort(names, (size_t)k, sizeof(char *), name_cmp);
		for (int i = 0; i < k; i++) {
			char *p;

			if (asprintf(&p, "%s/%s", path, names[i]) < 0)
				abort();
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				(*count)++;
				if (replay_file(p) < 0)
					r = -1;
			}
			free(p);
			free(names[i]);
		}
		free(names);
	}
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0, seeds = 0;
	int r = 0;

	signal(SIGALRM, on_alarm);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay_path(argv[i], &count) < 0)
				r = 1;
	} else {
		const char *src = getenv("top_srcdir");
		char *corpus, *crashes;

		if (!src)
			src = ".";
		if (asprintf(&corpus, "%s/tests/fuzz/corpus/%s", src, FUZZ_NAME) < 0 ||
		    asprintf(&crashes, "%s/tests/fuzz/crashes/%s", src, FUZZ_NAME) < 0)
			abort();
		if (replay_path(corpus, &seeds) < 0)
			r = 1;
		if (seeds == 0) {
			fprintf(stderr, "replay: no seed corpus in %s\n", corpus);
			r = 1;
		}
		count = seeds;
		if (replay_path(crashes, &count) < 0)
			r = 1;
		free(corpus);
		free(crashes);
	}
	printf("replay %s: %u inputs%s\n", FUZZ_NAME, count, r ? ", some unreadable" : "");
	return r;
}
