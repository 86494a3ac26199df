/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Strings that come from outside (file names above all, also mount points,
 * journal fields) on their way to a terminal or into JSON.
 *
 * Text: printable UTF-8 passes through; everything that could move the
 * cursor, clear the screen, reorder the line or hide itself is written
 * visibly instead.  \n \t and \\ for newline, tab and backslash; \xNN for
 * any other C0 control, DEL, and every byte that is not part of valid UTF-8
 * (the raw byte, so two different names never print alike); \uNNNN for the
 * C1 controls U+0080..U+009F (a terminal may take U+009B as CSI) and the
 * invisible layout characters U+200E, U+200F, U+2028..U+202E and
 * U+2066..U+2069 (bidirectional overrides, line separators).
 *
 * JSON: json-c escapes control characters but copies other bytes as they
 * are, so a name in another encoding made the document invalid.  Strings
 * for JSON are made valid UTF-8 by replacing every byte that is not part of
 * a valid sequence with U+FFFD, one per byte; valid text is unchanged.  The
 * exact bytes stay in the journal's fields and the ledger.
 */
#pragma once

#include <stdio.h>
#include <stddef.h>

#include "macro.h"

struct json_object;

/* Escaped copy of the len bytes at s (len SIZE_MAX: up to the NUL); NULL
 * when out of memory. */
char *ph_escape_text(const char *s, size_t len);
/* The same, written to f. */
void ph_escape_text_to(FILE *f, const char *s, size_t len);

/* Copy of the len bytes at s (SIZE_MAX: up to the NUL) with invalid UTF-8
 * replaced by U+FFFD; NULL when out of memory.  *ret_len, if given, gets
 * its length (it may hold NUL bytes when s did). */
char *ph_utf8_sanitize(const char *s, size_t len, size_t *ret_len);
/* o[key] = the file name s as a JSON string, always valid UTF-8 (invalid
 * bytes become U+FFFD); when s is not valid UTF-8, also o[key "_bytes"] =
 * its exact bytes as an array of numbers (as journalctl -o json does), so
 * that a reader can still name the file.  NULL s: null. */
int ph_json_add_name(struct json_object *o, const char *key, const char *s);

/* A JSON string of s, made valid UTF-8; NULL (JSON null) for s NULL. */
struct json_object *ph_json_string(const char *s);
struct json_object *ph_json_string_len(const char *s, size_t len);
