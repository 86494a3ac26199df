/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pmemheald: the service that follows pmem poison and heals it.
 *
 * This file parses the command line and the configuration and checks what
 * the daemon needs (its directories, that no other instance runs), then
 * hands over to the manager.  It never daemonizes: systemd runs it as
 * Type=notify (units/pmemheald.service).  See pmemheald(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "manager.h"
#include "policy.h"

/* Exit statuses (pmemheald(8)). */
#define EXIT_USAGE 2
#define EXIT_CONFIG 78 /* EX_CONFIG: the unit does not restart on it */

#define INSTANCE_LOCK "pmemheald.lock"

static const char *arg_state_dir, *arg_runtime_dir;
static const char **arg_config_dirs;
static size_t arg_n_config_dirs;

static void help(void)
{
	printf("Usage: pmemheald [OPTIONS]\n\n"
	       "Follow pmem poison, repair it per the rules, record every step in the journal.\n\n"
	       "  --state-dir DIR     the ledger and repair.lock (default $STATE_DIRECTORY, else %s)\n"
	       "  --runtime-dir DIR   the instance lock (default $RUNTIME_DIRECTORY, else /run/pmemheal)\n"
	       "  --config-dir DIR    read the configuration from DIR instead of /etc/pmemheal,\n"
	       "                      /run/pmemheal and /usr/lib/pmemheal (repeat: most important first)\n"
	       "  --log-level LEVEL   emerg ... debug (default info)\n"
	       "  -h --help           this text\n"
	       "     --version        the version\n",
	       PH_STATE_DIR);
}

/* The first of systemd's colon-separated directories, or dflt. */
static const char *env_dir(const char *name, const char *dflt)
{
	static char buf[2][4096];
	static int which;
	const char *e = getenv(name);
	char *b;

	if (!e || !*e)
		return dflt;
	b = buf[which++ % 2];
	snprintf(b, sizeof(buf[0]), "%.*s", (int)strcspn(e, ":"), e);
	return b;
}

static int parse_argv(int argc, char *argv[])
{
	enum { ARG_VERSION = 0x100, ARG_STATE_DIR, ARG_RUNTIME_DIR, ARG_CONFIG_DIR, ARG_LOG_LEVEL };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "state-dir", required_argument, NULL, ARG_STATE_DIR },
		{ "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
		{ "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
		{ "log-level", required_argument, NULL, ARG_LOG_LEVEL },
		{},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("pmemheald %s\n", PACKAGE_VERSION);
			return 0;
		case ARG_STATE_DIR:
			arg_state_dir = optarg;
			break;
		case ARG_RUNTIME_DIR:
			arg_runtime_dir = optarg;
			break;
		case ARG_CONFIG_DIR: {
			const char **v = reallocarray(arg_config_dirs, arg_n_config_dirs + 1, sizeof(char *));

			if (!v)
				return log_oom();
			arg_config_dirs = v;
			v[arg_n_config_dirs++] = optarg;
			break;
		}
		case ARG_LOG_LEVEL: {
			int l = log_level_from_string(optarg);

			if (l < 0)
				return log_error_errno(l, "Invalid --log-level '%s': expected emerg ... debug or 0-7", optarg);
			log_set_max_level(l);
			break;
		}
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "pmemheald takes no arguments; see --help");
	if (!arg_state_dir)
		arg_state_dir = env_dir("STATE_DIRECTORY", PH_STATE_DIR);
	if (!arg_runtime_dir)
		arg_runtime_dir = env_dir("RUNTIME_DIRECTORY", "/run/pmemheal");
	return 1;
}

/* systemd creates both directories (StateDirectory=, RuntimeDirectory=);
 * run by hand, we do, but not their parents. */
static int ensure_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return log_error_errno(errno, "Cannot create %s: %m", path);
	return 0;
}

/* One pmemheald at a time: a lock held for the process's life. */
static int lock_instance(int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	char pid[32];
	int n;

	if (asprintf(&path, "%s/" INSTANCE_LOCK, arg_runtime_dir) < 0)
		return log_oom();
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return log_error_errno(errno, "Cannot open %s: %m", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return log_error_errno(SYNTHETIC_ERRNO(EBUSY), "Another pmemheald is running (it holds %s)", path);
		return log_error_errno(errno, "Cannot lock %s: %m", path);
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_debug_errno(errno, "Cannot write the pid to %s: %m", path);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int load_policy(struct ph_ctx *ctx, struct ph_policy **ret)
{
	struct ph_policy_errors errs = { 0 };
	int r;

	r = ph_policy_load(ctx, arg_n_config_dirs ? arg_config_dirs : NULL, arg_n_config_dirs, ret, &errs);
	for (size_t i = 0; i < errs.n; i++)
		if (errs.v[i].line > 0)
			log_error("%s:%u: %s", errs.v[i].file, errs.v[i].line, errs.v[i].message);
		else
			log_error("%s: %s", errs.v[i].file, errs.v[i].message);
	if (r == -EINVAL)
		log_error("Refusing to start with a configuration that has %zu error%s", errs.n, errs.n == 1 ? "" : "s");
	else if (r < 0)
		log_error_errno(r, "Cannot load the configuration: %m");
	ph_policy_errors_done(&errs);
	return r;
}

int main(int argc, char *argv[])
{
	_cleanup_(ph_ctx_unrefp) struct ph_ctx *ctx = NULL;
	_cleanup_(manager_freep) struct manager *m = NULL;
	_cleanup_close_ int lock_fd = -EBADF;
	struct ph_policy *policy = NULL;
	int r;

	log_open();
	r = parse_argv(argc, argv);
	if (r <= 0) {
		free(arg_config_dirs);
		return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
	}

	r = ph_ctx_new(&ctx);
	if (r < 0) {
		log_oom();
		goto out;
	}
	ph_ctx_set_log_fn(ctx, log_ph_ctx, NULL);
	ph_ctx_set_log_priority(ctx, log_get_max_level());

	if (geteuid() != 0)
		log_warning("Not running as root: owners of poisoned blocks cannot be listed (GETFSMAP) "
			    "and files of other users cannot be repaired");
	r = ensure_dir(arg_state_dir, 0700);
	if (r == 0)
		r = ensure_dir(arg_runtime_dir, 0755);
	if (r == 0)
		r = lock_instance(&lock_fd);
	if (r < 0)
		goto out;
	r = load_policy(ctx, &policy);
	if (r < 0) {
		free(arg_config_dirs);
		return r == -EINVAL ? EXIT_CONFIG : EXIT_FAILURE;
	}

	r = manager_new(ctx,
			&(struct manager_options){
				.state_dir = arg_state_dir,
				.config_dirs = arg_n_config_dirs ? arg_config_dirs : NULL,
				.n_config_dirs = arg_n_config_dirs,
			},
			policy, &m);
	if (r == 0)
		r = manager_run(m);
out:
	m = manager_free(m);
	free(arg_config_dirs);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
