/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The repairer's contact with the outside: Hook= programs (a clean signal
 * state, a timeout that ends them with SIGTERM, with or without pidfd)
 * and Source= (no symlink on its path, a regular file only, never
 * blocking, only what the file's owner could read, unchanged by the read;
 * with openat2 and with the component walk that stands in for it).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "macro.h"
#include "repair.h"

static char dir[] = "/tmp/pmemheal-test-repair-XXXXXX";
static char hook[4096];

/* A hang is a failure, not a wait: the watchdog kills the test. */
static void watchdog(int sig)
{
	static const char msg[] = "watchdog: a call hung\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

static int setup(void **state)
{
	const char *b = getenv("top_builddir");

	(void)state;
	signal(SIGALRM, watchdog);
	assert_non_null(mkdtemp(dir));
	snprintf(hook, sizeof(hook), "%s/tests/unit/hook-signals", b ? b : ".");
	return 0;
}

static int teardown(void **state)
{
	char cmd[4200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* The worker thread runs with every signal blocked, and a writer to a
 * pipe may ignore SIGPIPE: a hook must start with neither. */
static void hook_in_worker_state(const char *mode, uint64_t timeout_usec, int *ret_status, int *ret_k,
				 char *report, size_t size)
{
	char out[4200];
	char *argv[] = { hook, out, (char *)mode, NULL };
	char *envp[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	sigset_t all, old;
	struct sigaction ign = { .sa_handler = SIG_IGN }, oldpipe;

	snprintf(out, sizeof(out), "%s/report-%s", dir, mode ? mode : "plain");
	sigfillset(&all);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &all, &old), 0);
	assert_int_equal(sigaction(SIGPIPE, &ign, &oldpipe), 0);
	alarm(60);
	*ret_k = ph_repair_spawn_hook(argv, envp, "{}", timeout_usec, ret_status);
	alarm(0);
	assert_int_equal(sigaction(SIGPIPE, &oldpipe, NULL), 0);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	if (report)
		slurp(out, report, size);
}

static void test_hook_signal_state(void **state)
{
	char report[4096];
	int status = -1, k;

	(void)state;
	hook_in_worker_state(NULL, 10 * 1000000ULL, &status, &k, report, sizeof(report));
	assert_int_equal(k, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* nothing blocked, nothing ignored */
	assert_string_equal(report, "blocked:\nignored:\n");
}

static void hook_timeout(void)
{
	int status = -1, k;

	hook_in_worker_state("hang", 100 * 1000, &status, &k, NULL, 0);
	assert_int_equal(k, -ETIME);
	/* SIGTERM ended it: it was neither blocked nor had to be killed */
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
}

static void test_hook_timeout(void **state)
{
	(void)state;
	hook_timeout();
}

/* No pidfd (old kernel, seccomp): still a timeout. */
static void test_hook_timeout_no_pidfd(void **state)
{
	(void)state;
	assert_int_equal(setenv("PMEMHEAL_DEBUG_NO_PIDFD", "1", 1), 0);
	hook_timeout();
	unsetenv("PMEMHEAL_DEBUG_NO_PIDFD");
}

/* ---- Source= ------------------------------------------------------------ */

#define OTHER_UID 54321u /* someone else: neither us nor root */
#define OTHER_GID 54321u

static char srcdir[4200];

static void put(const char *rel, const char *content, size_t len, mode_t mode)
{
	char p[4400];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", srcdir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
}

static const char *at(const char *rel)
{
	static char p[2][4400]; /* two at once: symlink(at(a), at(b)) */
	static unsigned n;
	char *b = p[n++ % 2];

	snprintf(b, sizeof(p[0]), "%s/%s", srcdir, rel);
	return b;
}

static int read_src(const char *rel, uid_t uid, uint64_t size, uint8_t *out)
{
	_cleanup_free_ char *why = NULL;
	int k;

	alarm(30); /* a FIFO that blocks fails the test here */
	k = ph_repair_read_source(at(rel), uid, OTHER_GID, size, 0, out, &why, NULL, NULL);
	alarm(0);
	if (k < 0)
		assert_non_null(why);
	return k;
}

static int source_setup(void **state)
{
	char big[8192];

	(void)state;
	snprintf(srcdir, sizeof(srcdir), "%s/src", dir);
	assert_int_equal(mkdir(srcdir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	memset(big, 'A', sizeof(big));
	put("good", big, sizeof(big), 0644);
	memset(big, 'S', sizeof(big));
	put("secret", big, sizeof(big), 0600); /* ours only */
	assert_int_equal(symlink(at("secret"), at("link")), 0);
	assert_int_equal(mkdir(at("closed"), 0700), 0); /* a file in it is ours only */
	put("closed/file", big, sizeof(big), 0644);
	assert_int_equal(symlink(at("closed"), at("dirlink")), 0);
	assert_int_equal(mkfifo(at("fifo"), 0644), 0);
	assert_int_equal(mkdir(at("dir"), 0755), 0);
	return 0;
}

static void source_cases(void)
{
	uint8_t page[PH_PAGE_SIZE];

	/* a file the owner can read: its bytes */
	assert_int_equal(read_src("good", OTHER_UID, 8192, page), 0);
	assert_int_equal(page[0], 'A');
	assert_int_equal(page[PH_PAGE_SIZE - 1], 'A');
	/* a symlink, last or on the way */
	assert_int_equal(read_src("link", OTHER_UID, 8192, page), -ELOOP);
	assert_int_equal(read_src("link", getuid(), 8192, page), -ELOOP);
	assert_int_equal(read_src("dirlink/file", getuid(), 8192, page), -ELOOP);
	/* not a regular file: refused without blocking or opening it */
	assert_int_equal(read_src("fifo", OTHER_UID, 0, page), -EINVAL);
	assert_int_equal(read_src("dir", OTHER_UID, 0, page), -EINVAL);
	{
		_cleanup_free_ char *why = NULL;

		alarm(30);
		assert_int_equal(ph_repair_read_source("/dev/null", 0, 0, 0, 0, page, &why, NULL, NULL), -EINVAL);
		alarm(0);
	}
	/* what the file's owner could not read: refused */
	assert_int_equal(read_src("secret", OTHER_UID, 8192, page), -EACCES);
	assert_int_equal(read_src("closed/file", OTHER_UID, 8192, page), -EACCES);
	/* ... and allowed to its own owner */
	assert_int_equal(read_src("secret", getuid(), 8192, page), 0);
	assert_int_equal(page[0], 'S');
	/* the size must be the damaged file's */
	assert_int_equal(read_src("good", OTHER_UID, 4096, page), -EINVAL);
}

static void test_source_openat2(void **state)
{
	(void)state;
	unsetenv("PMEMHEAL_DEBUG_NO_OPENAT2");
	source_cases();
}

static void test_source_walk(void **state)
{
	(void)state;
	assert_int_equal(setenv("PMEMHEAL_DEBUG_NO_OPENAT2", "1", 1), 0);
	source_cases();
	unsetenv("PMEMHEAL_DEBUG_NO_OPENAT2");
}

static void change_it(void *userdata)
{
	int fd = open(at("good"), O_WRONLY | O_APPEND | O_CLOEXEC);

	(void)userdata;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "B", 1), 1);
	close(fd);
}

static void touch_it(void *userdata)
{
	(void)userdata;
	/* the same size, mtime put back: only ctime tells */
	assert_int_equal(chmod(at("good"), 0640), 0);
	assert_int_equal(chmod(at("good"), 0644), 0);
}

static void test_source_changed(void **state)
{
	uint8_t page[PH_PAGE_SIZE];
	_cleanup_free_ char *why = NULL, *why2 = NULL;
	char big[8192];

	(void)state;
	memset(big, 'A', sizeof(big));
	put("good", big, sizeof(big), 0644);
	assert_int_equal(ph_repair_read_source(at("good"), OTHER_UID, OTHER_GID, 8192, 0, page, &why, change_it, NULL),
			 -EBUSY);
	assert_non_null(strstr(why, "changed while it was read"));
	put("good", big, sizeof(big), 0644);
	assert_int_equal(ph_repair_read_source(at("good"), OTHER_UID, OTHER_GID, 8192, 0, page, &why2, touch_it, NULL),
			 -EBUSY);
}

/* ---- names derived from a file's name ---------------------------------- */

static void test_side_names(void **state)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	char n1[256], n2[256], u[256];

	(void)state;
	/* short: as before */
	assert_int_equal(ph_repair_side_name(".pmemheal-", "db.dat", 16, ".tmp", 0, &a), 0);
	assert_string_equal(a, ".pmemheal-db.dat.16.tmp");
	/* NAME_MAX bytes: bounded, and two such names stay apart */
	memset(n1, 'n', 255);
	n1[255] = '\0';
	memcpy(n2, n1, sizeof(n2));
	n2[254] = 'm';
	assert_int_equal(ph_repair_side_name("123-", n1, 18446744073709551615ULL, "", PH_QUARANTINE_RESERVE, &b), 0);
	assert_int_equal(ph_repair_side_name("123-", n2, 18446744073709551615ULL, "", PH_QUARANTINE_RESERVE, &c), 0);
	assert_true(strlen(b) + strlen(".report.json") <= 255);
	assert_string_not_equal(b, c);
	assert_int_equal(strncmp(b, "123-nnnn", 8), 0);
	/* cut at a character, never inside one: 2-byte characters */
	for (int i = 0; i < 254; i += 2) {
		u[i] = (char)0xc3;
		u[i + 1] = (char)0xa9; /* é */
	}
	u[254] = '\0';
	assert_int_equal(ph_repair_side_name(".pmemheal-", u, 8, ".tmp", 0, &d), 0);
	assert_true(strlen(d) <= 255);
	assert_true(((unsigned char)strchr(d, '~')[-1] & 0xc0) != 0xc0); /* no lead byte left alone */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_signal_state),
		cmocka_unit_test(test_hook_timeout),
		cmocka_unit_test(test_hook_timeout_no_pidfd),
		cmocka_unit_test_setup(test_source_openat2, source_setup),
		cmocka_unit_test(test_source_walk),
		cmocka_unit_test(test_source_changed),
		cmocka_unit_test(test_side_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
