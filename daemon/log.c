/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Both threads log through here: every message is formatted into one
 * buffer and written with one call, so lines never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

static int max_level = LOG_INFO;
static bool to_journal;

/* systemd sets JOURNAL_STREAM=DEV:INODE when stderr is the journal. */
void log_open(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	to_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		     (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

	for (int i = 0; i < (int)ELEMENTSOF(names); i++)
		if (strcmp(s, names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0'))
			return i;
	return -EINVAL;
}

/* error: the ERRNO= field (0: none); m_errno: what %m prints. */
static void log_va(int level, int error, int m_errno, const char *file, int line, const char *func,
		   const char *format, va_list ap)
{
	char raw[2048];
	_cleanup_free_ char *escaped = NULL;
	const char *msg;

	errno = m_errno;
	vsnprintf(raw, sizeof(raw), format, ap);
	/* File names in messages are the users': one line, nothing that
	 * journalctl or a terminal would act on, valid UTF-8 (escape.h). */
	escaped = ph_escape_text(raw, SIZE_MAX);
	msg = escaped ? escaped : "(out of memory formatting a log message)";
	if (to_journal) {
		char f_file[256], f_line[32];
		int r;

		/* The location arguments are whole fields: "CODE_FILE=x.c". */
		snprintf(f_file, sizeof(f_file), "CODE_FILE=%s", file);
		snprintf(f_line, sizeof(f_line), "CODE_LINE=%d", line);
		if (error > 0)
			r = sd_journal_send_with_location(f_file, f_line, func, "MESSAGE=%s", msg, "PRIORITY=%i", level,
							  "ERRNO=%i", error, NULL);
		else
			r = sd_journal_send_with_location(f_file, f_line, func, "MESSAGE=%s", msg, "PRIORITY=%i", level,
							  NULL);
		if (r >= 0)
			return;
		/* The journal refused it: stderr is the journal's stream too. */
	}
	{
		char out[8300];
		int n = snprintf(out, sizeof(out), "pmemheald: %s%s\n",
				 level <= LOG_ERR ? "error: " : level == LOG_WARNING ? "warning: " : "", msg);

		(void)!write(STDERR_FILENO, out, (size_t)MIN(n, (int)sizeof(out) - 1));
	}
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
{
	int saved = errno;
	va_list ap;

	error = abs(error);
	if (level <= max_level) {
		va_start(ap, format);
		log_va(level, error, error, file, line, func, format, ap);
		va_end(ap);
	}
	errno = saved;
	return error > 0 ? -error : -EINVAL;
}

void log_ph_ctx(struct ph_ctx *ctx, int priority, const char *file, int line, const char *fn,
		const char *format, va_list args)
{
	int saved = errno;

	if (priority <= max_level)
		log_va(priority, 0, saved, file, line, fn, format, args);
	errno = saved;
}
