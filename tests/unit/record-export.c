/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test helper: record events with the real recorder (through its capture
 * sink) and write them in the journal's export format, which
 * systemd-journal-remote turns into a journal file.  This is how the
 * history tests get a real journal without journald.
 *
 *   record-export ENTRY [-- ENTRY]...
 *   ENTRY: @USEC EVENT [FIELD=VALUE]...
 *     USEC   the entry's realtime timestamp (microseconds since the epoch)
 *     EVENT  detected, mapped, ... (ph_event_from_string), or "raw" for
 *            an entry that is not pmemheal's: its FIELD=VALUEs are
 *            written as they are
 *     FIELD  device sector count path inode offset length action result
 *            bytes_lost shared_owners rule owner range_id ns_id mountpoint
 *            detail, or identifier (SYSLOG_IDENTIFIER; default pmemheal)
 * Values may hold newlines: they are written in the binary form.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"
#include "record.h"

#define BOOT_ID "0b5e7c3d6a2f4e1b9c8d7e6f5a4b3c2d"

static uint64_t monotonic = 1000000;

static void write_field(const void *data, size_t len)
{
	const char *p = data, *eq = memchr(p, '=', len);

	if (!eq) {
		fprintf(stderr, "record-export: field without '=': %.*s\n", (int)len, p);
		exit(2);
	}
	if (!memchr(p, '\n', len)) {
		fwrite(p, 1, len, stdout);
		fputc('\n', stdout);
	} else {
		/* NAME\n, little-endian 64-bit size, the value, \n */
		size_t nl = (size_t)(eq - p);
		uint64_t size = htole64(len - nl - 1);

		fwrite(p, 1, nl, stdout);
		fputc('\n', stdout);
		fwrite(&size, sizeof(size), 1, stdout);
		fwrite(eq + 1, 1, len - nl - 1, stdout);
		fputc('\n', stdout);
	}
}

static void entry_header(uint64_t usec)
{
	printf("__REALTIME_TIMESTAMP=%" PRIu64 "\n__MONOTONIC_TIMESTAMP=%" PRIu64 "\n_BOOT_ID=%s\n", usec,
	       monotonic, BOOT_ID);
	monotonic += 1000;
}

static void sink(void *userdata, const struct iovec *iov, size_t n)
{
	entry_header(*(const uint64_t *)userdata);
	for (size_t i = 0; i < n; i++)
		write_field(iov[i].iov_base, iov[i].iov_len);
	putchar('\n');
}

static uint64_t number(const char *key, const char *v)
{
	uint64_t n;

	if (ph_parse_u64(v, &n) < 0) {
		fprintf(stderr, "record-export: %s: not a number: %s\n", key, v);
		exit(2);
	}
	return n;
}

static int entry(char **argv, int argc)
{
	struct ph_event_fields f = PH_EVENT_INIT;
	const char *identifier = "pmemheal";
	struct ph_recorder *rec;
	struct ph_ctx *ctx;
	enum ph_event e;
	uint64_t usec;
	int r;

	if (argc < 2 || argv[0][0] != '@') {
		fprintf(stderr, "record-export: an entry is @USEC EVENT [FIELD=VALUE]...\n");
		return 2;
	}
	usec = number("time", argv[0] + 1);
	if (strcmp(argv[1], "raw") == 0) {
		entry_header(usec);
		for (int i = 2; i < argc; i++)
			write_field(argv[i], strlen(argv[i]));
		putchar('\n');
		return 0;
	}
	if (ph_event_from_string(argv[1], &e) < 0) {
		fprintf(stderr, "record-export: unknown event '%s'\n", argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char *k = argv[i], *v = strchr(k, '=');

		if (!v) {
			fprintf(stderr, "record-export: expected FIELD=VALUE: %s\n", k);
			return 2;
		}
		*v++ = '\0';
		if (!strcmp(k, "device")) f.device = v;
		else if (!strcmp(k, "sector")) f.sector = number(k, v);
		else if (!strcmp(k, "count")) f.count = number(k, v);
		else if (!strcmp(k, "path")) f.path = v;
		else if (!strcmp(k, "inode")) f.inode = number(k, v);
		else if (!strcmp(k, "offset")) f.offset = number(k, v);
		else if (!strcmp(k, "length")) f.length = number(k, v);
		else if (!strcmp(k, "action")) f.action = v;
		else if (!strcmp(k, "result")) f.result = v;
		else if (!strcmp(k, "bytes_lost")) f.bytes_lost = number(k, v);
		else if (!strcmp(k, "shared_owners")) f.shared_owners = number(k, v);
		else if (!strcmp(k, "rule")) f.rule = v;
		else if (!strcmp(k, "owner")) f.owner = v;
		else if (!strcmp(k, "range_id")) f.range_id = (int64_t)number(k, v);
		else if (!strcmp(k, "ns_id")) f.ns_id = v;
		else if (!strcmp(k, "mountpoint")) f.mountpoint = v;
		else if (!strcmp(k, "detail")) f.detail = v;
		else if (!strcmp(k, "identifier")) identifier = v;
		else {
			fprintf(stderr, "record-export: unknown field '%s'\n", k);
			return 2;
		}
	}
	if (ph_ctx_new(&ctx) < 0 || ph_recorder_new(ctx, identifier, &rec) < 0) {
		fprintf(stderr, "record-export: cannot make a recorder\n");
		return 1;
	}
	ph_recorder_set_sink(rec, sink, &usec);
	r = ph_record(rec, e, &f);
	ph_recorder_free(rec);
	ph_ctx_unref(ctx);
	if (r < 0) {
		fprintf(stderr, "record-export: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	int start = 1;

	if (argc < 2) {
		fprintf(stderr, "Usage: record-export @USEC EVENT [FIELD=VALUE]... [-- @USEC EVENT ...]...\n");
		return 2;
	}
	for (int i = 1; i <= argc; i++)
		if (i == argc || strcmp(argv[i], "--") == 0) {
			int r = entry(argv + start, i - start);

			if (r)
				return r;
			start = i + 1;
		}
	return fflush(stdout) == 0 ? 0 : 1;
}
