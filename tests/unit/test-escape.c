/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Outside strings on their way to a terminal and into JSON: escape
 * sequences, C1 controls, bidirectional overrides and invalid UTF-8 are
 * shown, never passed; JSON is always valid UTF-8; valid text is unchanged.
 */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "escape.h"

static void text_is(const char *in, const char *want)
{
	char *got = ph_escape_text(in, SIZE_MAX);

	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("escaped '%s', wanted '%s'", got, want);
	free(got);
}

static void test_text(void **state)
{
	text_is("/srv/db/a.wal", "/srv/db/a.wal");
	text_is("/srv/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", "/srv/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80");
	text_is("a\x1b[2Jb", "a\\x1b[2Jb");         /* ESC: clear the screen */
	text_is("a\nb\tc\\d\x7f", "a\\nb\\tc\\\\d\\x7f");
	text_is("\x01\x1f", "\\x01\\x1f");
	text_is("csi\xc2\x9b" "2J", "csi\\u009b2J");   /* C1 CSI */
	text_is("\xc2\x85\xc2\x80\xc2\xa0", "\\u0085\\u0080\xc2\xa0"); /* NEL, PAD; NBSP is text */
	text_is("evil\xe2\x80\xae" "gpj.exe", "evil\\u202egpj.exe"); /* RLO */
	text_is("\xe2\x81\xa6\xe2\x80\xa8\xe2\x80\x8f", "\\u2066\\u2028\\u200f");
	/* invalid UTF-8: each byte shown */
	text_is("\xff\xfe", "\\xff\\xfe");
	text_is("bad\xc3", "bad\\xc3");                 /* truncated */
	text_is("\xc0\xaf", "\\xc0\\xaf");              /* overlong '/' */
	text_is("\xe0\x80\xaf", "\\xe0\\x80\\xaf");     /* overlong */
	text_is("\xed\xa0\x80", "\\xed\\xa0\\x80");     /* a surrogate */
	text_is("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
	text_is("\xe6\x97x", "\\xe6\\x97x");
	text_is("", "");
	/* what is shown for bytes and for the same text typed with a backslash differs */
	{
		char *a = ph_escape_text("\xff", SIZE_MAX), *b = ph_escape_text("\\xff", SIZE_MAX);

		assert_string_not_equal(a, b);
		free(a);
		free(b);
	}
	/* embedded NUL with a length */
	{
		char *e = ph_escape_text("a\0b", 3);

		assert_string_equal(e, "a\\x00b");
		free(e);
	}
}

static void json_is(const char *in, const char *want)
{
	struct json_object *j = ph_json_string(in);
	const char *doc;

	assert_non_null(j);
	doc = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (strcmp(doc, want) != 0)
		fail_msg("JSON %s, wanted %s", doc, want);
	json_object_put(j);
}

static void test_json(void **state)
{
	json_is("/srv/db/a.wal", "\"/srv/db/a.wal\"");
	json_is("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	json_is("a\x1b[2J", "\"a\\u001b[2J\"");
	json_is("x\xff\xfey", "\"x\xef\xbf\xbd\xef\xbf\xbdy\"");
	json_is("bad\xc3", "\"bad\xef\xbf\xbd\"");
	json_is("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	assert_null(ph_json_string(NULL));
	/* round trip: what json-c parses back is the sanitized text */
	{
		struct json_object *j = ph_json_string("p\xc3\x28"), *back;

		back = json_tokener_parse(json_object_to_json_string(j));
		assert_non_null(back);
		assert_string_equal(json_object_get_string(back), "p\xef\xbf\xbd(");
		json_object_put(back);
		json_object_put(j);
	}
}

/* A name for a hook or a quarantine report: valid JSON always, and the
 * exact bytes beside it when the name is not UTF-8. */
static void test_json_name(void **state)
{
	struct json_object *o = json_object_new_object(), *v, *b;

	(void)state;
	assert_int_equal(ph_json_add_name(o, "path", "/srv/caf\xc3\xa9"), 0);
	assert_int_equal(ph_json_add_name(o, "source", NULL), 0);
	assert_int_equal(ph_json_add_name(o, "bad", "a\xff\n"), 0);
	assert_true(json_object_object_get_ex(o, "path", &v));
	assert_string_equal(json_object_get_string(v), "/srv/caf\xc3\xa9");
	assert_false(json_object_object_get_ex(o, "path_bytes", NULL));
	assert_true(json_object_object_get_ex(o, "source", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "bad", &v));
	assert_string_equal(json_object_get_string(v), "a\xef\xbf\xbd\n");
	assert_true(json_object_object_get_ex(o, "bad_bytes", &b));
	assert_int_equal(json_object_array_length(b), 3);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(b, 0)), 'a');
	assert_int_equal(json_object_get_int(json_object_array_get_idx(b, 1)), 0xff);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(b, 2)), '\n');
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"path\":\"\\/srv\\/caf\xc3\xa9\",\"source\":null,\"bad\":\"a\xef\xbf\xbd\\n\","
			    "\"bad_bytes\":[97,255,10]}");
	json_object_put(o);
}

/* Every 1-, 2- and 3-byte string: the sanitized copy is valid UTF-8 by an
 * independent check (the C library's mbrtowc in a UTF-8 locale would do;
 * here the rules are spelled out again) and escaped text has no byte that
 * a terminal takes as a control. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], need, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c < 0xe0)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c < 0xf0)
			need = 2, cp = c & 0xf;
		else if (c >= 0xf0 && c < 0xf5)
			need = 3, cp = c & 7;
		else
			return false;
		if (i + need >= n)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

static void test_exhaustive(void **state)
{
	unsigned char s[3];

	for (unsigned n = 1; n <= 3; n++)
		for (uint32_t v = 0; v < (1u << (8 * n)); v++) {
			size_t len;
			char *t, *e;

			for (unsigned k = 0; k < n; k++)
				s[k] = (unsigned char)(v >> (8 * k));
			t = ph_utf8_sanitize((const char *)s, n, &len);
			assert_non_null(t);
			if (!valid_utf8((const unsigned char *)t, len))
				fail_msg("sanitized %02x %02x %02x is not UTF-8", s[0], s[1], s[2]);
			if (valid_utf8(s, n) && (len != n || memcmp(t, s, n) != 0))
				fail_msg("valid %02x %02x %02x was changed", s[0], s[1], s[2]);
			e = ph_escape_text((const char *)s, n);
			assert_non_null(e);
			for (const unsigned char *p = (const unsigned char *)e; *p; p++)
				if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
					fail_msg("escaped %02x %02x %02x still has a control", s[0], s[1], s[2]);
			assert_true(valid_utf8((const unsigned char *)e, strlen(e)));
			free(t);
			free(e);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_name),
		cmocka_unit_test(test_exhaustive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
