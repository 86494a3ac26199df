/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Escaping of outside strings for terminals and JSON (see escape.h).  One
 * UTF-8 decoder decides what is valid for both.
 */
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when s does not start one (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *ret_cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	uint32_t cp;

	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*ret_cp = cp;
	return len;
}

static bool invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Escape into out (room for 4 * len + 1 bytes), return the length written. */
static size_t escape(char *out, const unsigned char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = utf8_next(s + i, len - i, &cp);

		if (k == 0 || cp < 0x20 || cp == 0x7f) {
			unsigned char c = s[i];

			*p++ = '\\';
			if (c == '\n')
				*p++ = 'n';
			else if (c == '\t')
				*p++ = 't';
			else {
				*p++ = 'x';
				*p++ = hex[c >> 4];
				*p++ = hex[c & 15];
			}
			i++;
		} else if (cp == '\\') {
			*p++ = '\\';
			*p++ = '\\';
			i++;
		} else if (invisible(cp)) {
			/* 2 or 3 bytes become 6 characters: within 4 per byte */
			*p++ = '\\';
			*p++ = 'u';
			for (int sh = 12; sh >= 0; sh -= 4)
				*p++ = hex[(cp >> sh) & 15];
			i += k;
		} else {
			memcpy(p, s + i, k);
			p += k;
			i += k;
		}
	}
	*p = '\0';
	return (size_t)(p - out);
}

_public_ char *ph_escape_text(const char *s, size_t len)
{
	char *out;

	if (!s)
		return strdup("");
	if (len == SIZE_MAX)
		len = strlen(s);
	if (len > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(4 * len + 1);
	if (out)
		escape(out, (const unsigned char *)s, len);
	return out;
}

_public_ void ph_escape_text_to(FILE *f, const char *s, size_t len)
{
	_cleanup_free_ char *e = ph_escape_text(s, len);

	if (e)
		fputs(e, f);
	else
		fputs("(out of memory)", f);
}

_public_ char *ph_utf8_sanitize(const char *s, size_t len, size_t *ret_len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out, *p;

	if (len == SIZE_MAX)
		len = strlen(s);
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(3 * len + 1); /* each bad byte becomes 3 */
	if (!out)
		return NULL;
	p = out;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = utf8_next(u + i, len - i, &cp);

		if (k == 0) {
			memcpy(p, "\xef\xbf\xbd", 3); /* U+FFFD */
			p += 3;
			i++;
		} else {
			memcpy(p, u + i, k);
			p += k;
			i += k;
		}
	}
	*p = '\0';
	if (ret_len)
		*ret_len = (size_t)(p - out);
	return out;
}

_public_ struct json_object *ph_json_string_len(const char *s, size_t len)
{
	_cleanup_free_ char *v = NULL;
	size_t n;

	if (!s)
		return NULL;
	v = ph_utf8_sanitize(s, len, &n);
	if (!v || n > INT32_MAX)
		return NULL;
	return json_object_new_string_len(v, (int)n);
}

_public_ int ph_json_add_name(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v, *a;
	char *k = NULL;
	size_t n = s ? strlen(s) : 0;
	bool valid = true;

	if (!s)
		return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_next((const unsigned char *)s + i, n - i, &cp);

		if (l == 0) {
			valid = false;
			break;
		}
		i += l;
	}
	v = ph_json_string(s);
	if (!v || json_object_object_add(o, key, v) < 0)
		return -ENOMEM;
	if (valid)
		return 0;
	a = json_object_new_array_ext((int)MIN(n, (size_t)INT_MAX));
	if (!a || asprintf(&k, "%s_bytes", key) < 0) {
		json_object_put(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int((unsigned char)s[i]));
	json_object_object_add(o, k, a);
	free(k);
	return 0;
}

_public_ struct json_object *ph_json_string(const char *s)
{
	return s ? ph_json_string_len(s, strlen(s)) : NULL;
}
