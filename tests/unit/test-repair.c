/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The repairer's contact with the outside: Hook= programs (a clean signal
 * state, a timeout that ends them with SIGTERM, with or without pidfd).
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_signal_state),
		cmocka_unit_test(test_hook_timeout),
		cmocka_unit_test(test_hook_timeout_no_pidfd),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
