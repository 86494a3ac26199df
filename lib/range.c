/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Range arithmetic and the two text formats ranges arrive in: the command
 * line ("START[+COUNT]") and the kernel's badblocks files.  Every overflow is
 * an error, never a wrap-around: a range that wraps would name sectors the
 * user did not ask about.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

_public_ bool ph_range_intersect(const struct ph_range *a, const struct ph_range *b,
				 struct ph_range *ret)
{
	uint64_t s = MAX(a->start, b->start);
	uint64_t e = MIN(ph_range_end(a), ph_range_end(b));

	if (s >= e)
		return false;
	if (ret)
		*ret = (struct ph_range){ .start = s, .count = e - s };
	return true;
}

_public_ bool ph_range_contains(const struct ph_range *outer, const struct ph_range *inner)
{
	return inner->start >= outer->start && ph_range_end(inner) <= ph_range_end(outer);
}

_public_ int ph_bytes_to_sectors(uint64_t offset, uint64_t length, struct ph_range *ret)
{
	uint64_t end, s, e;

	if (length == 0)
		return -EINVAL;
	if (__builtin_add_overflow(offset, length, &end))
		return -EOVERFLOW;
	s = offset >> PH_SECTOR_SHIFT;
	e = (end >> PH_SECTOR_SHIFT) + ((end & (PH_SECTOR_SIZE - 1)) ? 1 : 0);
	*ret = (struct ph_range){ .start = s, .count = e - s };
	return 0;
}

_public_ int ph_ranges_add(struct ph_ranges *l, uint64_t start, uint64_t count)
{
	uint64_t end;

	if (count == 0)
		return -EINVAL;
	if (__builtin_add_overflow(start, count, &end))
		return -EOVERFLOW;
	if (PH_GROW(l->v, l->cap, l->n + 1, 16) < 0)
		return -ENOMEM;
	l->v[l->n++] = (struct ph_range){ .start = start, .count = count };
	return 0;
}

_public_ void ph_ranges_clear(struct ph_ranges *l)
{
	free(l->v);
	*l = (struct ph_ranges){ 0 };
}

static int range_cmp(const void *a, const void *b)
{
	const struct ph_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->count != y->count)
		return x->count < y->count ? -1 : 1;
	return 0;
}

_public_ void ph_ranges_normalize(struct ph_ranges *l)
{
	size_t i, o = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), range_cmp);
	for (i = 1; i < l->n; i++) {
		struct ph_range *cur = &l->v[o];
		uint64_t end = ph_range_end(cur);

		if (l->v[i].start <= end) {
			uint64_t e = ph_range_end(&l->v[i]);

			if (e > end)
				cur->count = e - cur->start;
		} else
			l->v[++o] = l->v[i];
	}
	l->n = o + 1;
}

_public_ int ph_ranges_subtract(struct ph_ranges *l, const struct ph_range *r)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct ph_range *cur = &l->v[i];
		uint64_t cs = cur->start, ce = ph_range_end(cur);
		uint64_t rs = r->start, re = ph_range_end(r);

		if (re <= cs || rs >= ce)
			continue;
		if (rs <= cs && re >= ce) {
			/* Whole range removed. */
			memmove(cur, cur + 1, (l->n - i - 1) * sizeof(*cur));
			l->n--;
			i--;
		} else if (rs <= cs) {
			cur->start = re;
			cur->count = ce - re;
		} else if (re >= ce) {
			cur->count = rs - cs;
		} else {
			/* Split in two; the tail goes after this entry. */
			int k;

			cur->count = rs - cs;
			k = ph_ranges_add(l, re, ce - re);
			if (k < 0)
				return k;
			cur = &l->v[i]; /* add may have moved the array */
			memmove(&l->v[i + 2], &l->v[i + 1], (l->n - i - 2) * sizeof(*cur));
			l->v[i + 1] = (struct ph_range){ .start = re, .count = ce - re };
			i++;
		}
	}
	return 0;
}

_public_ uint64_t ph_ranges_total(const struct ph_ranges *l)
{
	uint64_t t = 0;

	for (size_t i = 0; i < l->n; i++)
		t += l->v[i].count;
	return t;
}

_public_ int ph_parse_u64(const char *s, uint64_t *ret)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -EINVAL;
	}
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (tolower((unsigned char)*s) - 'a') + 10;
		else
			return -EINVAL;
		if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
			return -ERANGE;
	}
	*ret = v;
	return 0;
}

_public_ int ph_range_parse(const char *text, bool bytes, struct ph_range *ret)
{
	_cleanup_free_ char *copy = NULL;
	uint64_t start, count = 1, end;
	char *plus;
	int r;

	if (!text)
		return -EINVAL;
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	plus = strchr(copy, '+');
	if (plus)
		*plus = '\0';
	r = ph_parse_u64(copy, &start);
	if (r < 0)
		return r;
	if (plus) {
		r = ph_parse_u64(plus + 1, &count);
		if (r < 0)
			return r;
		if (count == 0)
			return -EINVAL;
	} else if (bytes)
		count = 1;
	if (__builtin_add_overflow(start, count, &end))
		return -ERANGE;
	if (bytes)
		return ph_bytes_to_sectors(start, count, ret) < 0 ? -ERANGE : 0;
	*ret = (struct ph_range){ .start = start, .count = count };
	return 0;
}

static void set_err(struct ph_parse_error *err, unsigned line, const char *reason)
{
	if (!err)
		return;
	err->line = line;
	snprintf(err->reason, sizeof(err->reason), "%s", reason);
}

/* Longest line we accept; the kernel's lines are at most ~32 bytes. */
#define BADBLOCKS_LINE_MAX 256

/*
 * Read one line into buf (without the newline).  Returns its length, -1 at end
 * of input, -EBADMSG for an embedded NUL or a line longer than the limit (the
 * rest of that line is not read).
 */
static int read_line(FILE *f, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(f)) != EOF) {
		if (c == '\n')
			break;
		if (c == '\0' || n + 1 >= size)
			return -EBADMSG;
		buf[n++] = (char)c;
	}
	if (c == EOF && n == 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

_public_ int ph_badblocks_parse(FILE *f, bool bytes, struct ph_ranges *out,
				struct ph_parse_error *err)
{
	char buf[BADBLOCKS_LINE_MAX + 1];
	unsigned line = 0;
	int len;

	while ((len = read_line(f, buf, sizeof(buf))) != -1) {
		char *fields[2] = { 0 }, *save = NULL, *tok;
		uint64_t start, count;
		struct ph_range rng;
		size_t nf = 0;
		int r;

		line++;
		if (len < 0) {
			set_err(err, line, "line too long or contains a NUL byte");
			return -EBADMSG;
		}
		for (tok = strtok_r(buf, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
			if (nf == ELEMENTSOF(fields)) {
				set_err(err, line, "expected \"<sector> <count>\", found extra fields");
				return -EBADMSG;
			}
			fields[nf++] = tok;
		}
		if (nf == 0)
			continue;
		if (nf != 2) {
			set_err(err, line, "expected \"<sector> <count>\" (truncated line?)");
			return -EBADMSG;
		}
		r = ph_parse_u64(fields[0], &start);
		if (r == 0)
			r = ph_parse_u64(fields[1], &count);
		if (r == -ERANGE) {
			set_err(err, line, "number out of range");
			return -ERANGE;
		}
		if (r < 0) {
			set_err(err, line, "not a number");
			return -EBADMSG;
		}
		if (count == 0) {
			set_err(err, line, "count is zero");
			return -EBADMSG;
		}
		if (bytes) {
			if (ph_bytes_to_sectors(start, count, &rng) < 0) {
				set_err(err, line, "range overflows");
				return -ERANGE;
			}
		} else
			rng = (struct ph_range){ .start = start, .count = count };
		r = ph_ranges_add(out, rng.start, rng.count);
		if (r == -EOVERFLOW) {
			set_err(err, line, "range overflows");
			return -ERANGE;
		}
		if (r < 0) {
			set_err(err, line, "out of memory");
			return r;
		}
	}
	if (ferror(f)) {
		set_err(err, line + 1, "read error");
		return -EIO;
	}
	return 0;
}
