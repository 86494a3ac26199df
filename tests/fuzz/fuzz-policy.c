/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rules and pmemheald.conf, through ph_policy_load() as the daemon and
 * `pmemheal policy` load them: the input is a rule file, a NUL, then a
 * pmemheald.conf (none without the NUL).  They are written to a private
 * directory each run.  A policy that loads is then used: a path is matched
 * and the matching rule's Source= expanded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "fuzz.h"
#include "policy.h"

/* tmpfs when there is one: millions of small files rewritten */
static char dir[64];
static char *rule_path, *conf_path;

static void cleanup(void)
{
	char *rules;

	unlink(rule_path);
	unlink(conf_path);
	if (asprintf(&rules, "%s/rules.d", dir) >= 0) {
		rmdir(rules);
		free(rules);
	}
	rmdir(dir);
}

/* A new file each time: truncating one in place makes ext4 flush it. */
static void write_file(const char *path, const char *text)
{
	int fd;

	if (unlink(path) < 0 && errno != ENOENT)
		abort();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t n = strlen(text);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ph_ctx *ctx;
	char *s = fuzz_strndup(data, size);
	const char *conf = fuzz_second(s, size);
	const char *dirs[] = { dir };
	struct ph_policy *p = NULL;
	struct ph_policy_errors errs = { 0 };

	if (!ctx) {
		char *rules;
		struct stat st;

		snprintf(dir, sizeof(dir), "%s/pmemheal-fuzz-policy.XXXXXX",
			 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ?
				 "/dev/shm" : "/tmp");
		if (!mkdtemp(dir) || asprintf(&rules, "%s/rules.d", dir) < 0 || mkdir(rules, 0700) < 0 ||
		    asprintf(&rule_path, "%s/50-fuzz.rule", rules) < 0 ||
		    asprintf(&conf_path, "%s/pmemheald.conf", dir) < 0 || ph_ctx_new(&ctx) < 0)
			abort();
		free(rules);
		atexit(cleanup);
	}
	write_file(rule_path, s);
	if (conf)
		write_file(conf_path, conf);
	else if (unlink(conf_path) < 0 && errno != ENOENT)
		abort();
	if (ph_policy_load(ctx, dirs, 1, &p, &errs) == 0) {
		const struct ph_rule *r = ph_policy_match(p, "/srv/db/a.dat");
		char *src = NULL;

		if (r && ph_rule_expand_source(r, "/srv/db/a.dat", "/srv", &src) == 0)
			free(src);
		ph_policy_free(p);
	}
	ph_policy_errors_done(&errs);
	free(s);
	return 0;
}
