/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory-failure pages of this boot, from the kernel log.  Missing a page
 * here would let salvage read it and oops the kernel, so both sources are
 * read when available and their pfns merged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "memfail.h"
#include "range.h"

_public_ void ph_pfns_done(struct ph_pfns *p)
{
	free(p->v);
	*p = (struct ph_pfns){ 0 };
}

static int pfn_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

_public_ bool ph_pfns_contains(const struct ph_pfns *p, uint64_t pfn)
{
	return p->n && bsearch(&pfn, p->v, p->n, sizeof(*p->v), pfn_cmp);
}

_public_ int ph_memfail_parse(const char *msg, uint64_t *ret_pfn)
{
	const char *s = strstr(msg, "Memory failure: 0x");
	char *end;
	unsigned long long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s + strlen("Memory failure: 0x"), &end, 16);
	if (errno || end == s + strlen("Memory failure: 0x") || *end != ':')
		return 0;
	*ret_pfn = v;
	return 1;
}

static int add(struct ph_pfns *p, size_t *cap, uint64_t pfn)
{
	if (PH_GROW(p->v, *cap, p->n + 1, 16) < 0)
		return -ENOMEM;
	p->v[p->n++] = pfn;
	return 0;
}

/* The journal: kernel messages of the current boot. */
static int from_journal(struct ph_ctx *ctx, struct ph_pfns *p, size_t *cap)
{
	sd_journal *j = NULL;
	sd_id128_t boot;
	char match[64];
	int r;

	if (strcmp(ph_ctx_get_root(ctx), "/") != 0)
		return 0; /* tests use fake trees: no journal */
	r = sd_id128_get_boot(&boot);
	if (r < 0)
		return r;
	r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (r < 0)
		return r;
	snprintf(match, sizeof(match), "_BOOT_ID=" SD_ID128_FORMAT_STR, SD_ID128_FORMAT_VAL(boot));
	r = sd_journal_add_match(j, match, 0);
	if (r >= 0)
		r = sd_journal_add_match(j, "_TRANSPORT=kernel", 0);
	SD_JOURNAL_FOREACH(j) {
		const void *d;
		size_t l;
		uint64_t pfn;
		char buf[256];

		if (sd_journal_get_data(j, "MESSAGE", &d, &l) < 0)
			continue;
		l = MIN(l, sizeof(buf) - 1);
		memcpy(buf, d, l);
		buf[l] = '\0';
		if (ph_memfail_parse(buf, &pfn) == 1 && add(p, cap, pfn) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	sd_journal_close(j);
	return r < 0 ? r : 0;
}

/* Records from fd up to the end of the buffer (EAGAIN; a regular file in
 * tests: its end).  /dev/kmsg gives one record per read(); a regular file
 * reads in chunks, so records are split on newlines either way.
 * *ret_lost: records were overwritten before we read them (EPIPE). */
static int kmsg_drain(int fd, struct ph_pfns *p, size_t *cap, bool *ret_lost)
{
	char buf[8192], line[1024];
	size_t ll = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EPIPE) {
			if (ret_lost)
				*ret_lost = true;
			continue; /* records overwritten while reading */
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return negative_errno();
		if (n <= 0)
			break; /* EAGAIN: the end of the buffer */
		for (ssize_t i = 0; i < n; i++) {
			uint64_t pfn;

			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			if (ph_memfail_parse(line, &pfn) == 1 && add(p, cap, pfn) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* /dev/kmsg from its start; *ret_fd (when asked for) keeps it open at
 * the end, to read only what comes after. */
static int from_kmsg(struct ph_ctx *ctx, struct ph_pfns *p, size_t *cap, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	r = ph_ctx_path(ctx, "/dev/kmsg", &path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = kmsg_drain(fd, p, cap, NULL);
	if (r == 0 && ret_fd)
		*ret_fd = TAKE_FD(fd);
	return r;
}

static void pfns_sort(struct ph_pfns *p)
{
	size_t o = 0;

	if (p->n > 1)
		qsort(p->v, p->n, sizeof(*p->v), pfn_cmp);
	for (size_t i = 0; i < p->n; i++)
		if (o == 0 || p->v[o - 1] != p->v[i])
			p->v[o++] = p->v[i];
	p->n = o;
}

/* Everything of this boot: the journal and /dev/kmsg, merged. */
static int read_all(struct ph_ctx *ctx, struct ph_pfns *ret, int *ret_kmsg)
{
	struct ph_pfns p = { 0 };
	size_t cap = 0;
	int rj, rk;

	rj = from_journal(ctx, &p, &cap);
	rk = from_kmsg(ctx, &p, &cap, ret_kmsg);
	if (rj == -ENOMEM || rk == -ENOMEM) {
		ph_pfns_done(&p);
		return -ENOMEM;
	}
	if (rj < 0 && rk < 0) {
		/* Without either we cannot know: the caller must not read. */
		ph_err(ctx, "Cannot read the kernel log (journal: %s, /dev/kmsg: %s)", strerror(-rj), strerror(-rk));
		ph_pfns_done(&p);
		return rk;
	}
	pfns_sort(&p);
	*ret = p;
	return 0;
}

_public_ int ph_memory_failures(struct ph_ctx *ctx, struct ph_pfns *ret)
{
	return read_all(ctx, ret, NULL);
}

_public_ int ph_memfail_follow(struct ph_ctx *ctx, struct ph_memfail *m)
{
	struct ph_pfns all = { 0 };
	bool lost = false;
	size_t cap = m->pfns.n;
	int k;

	if (m->kmsg_fd >= 0) {
		/* Only what the kernel logged since the last call. */
		size_t n0 = m->pfns.n;

		k = kmsg_drain(m->kmsg_fd, &m->pfns, &cap, &lost);
		if (k == -ENOMEM)
			return k;
		if (k == 0 && !lost) {
			if (m->pfns.n != n0)
				pfns_sort(&m->pfns);
			return 0;
		}
		/* Records we never saw, or a read error: start over. */
		m->kmsg_fd = safe_close(m->kmsg_fd);
	}
	k = read_all(ctx, &all, &m->kmsg_fd);
	if (k < 0)
		return k;
	ph_pfns_done(&m->pfns);
	m->pfns = all;
	return 0;
}

_public_ void ph_memfail_done(struct ph_memfail *m)
{
	ph_pfns_done(&m->pfns);
	m->kmsg_fd = safe_close(m->kmsg_fd);
}
