/* A strict JSON reader (RFC 8259): objects, arrays, strings with \u escapes (surrogate pairs
 * joined), numbers, true, false, null. It serves any JSON sprout reads (a safetensors header, a
 * Hugging Face config.json, a tokenizer vocabulary). Strict means: one value with only whitespace
 * around it, no trailing commas or comments, no leading zeros, no control characters or invalid
 * UTF-8 in strings, no lone surrogates, no duplicate keys in an object, nesting at most
 * SP_JSON_MAX_DEPTH. The writer of metrics lines is another part of this prefix
 * (include/sprout/metrics.h). */
#ifndef SPROUT_JSON_H
#define SPROUT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"

#define SP_JSON_MAX_DEPTH 256

typedef enum {
    SP_JSON_NULL,
    SP_JSON_FALSE,
    SP_JSON_TRUE,
    SP_JSON_NUMBER,
    SP_JSON_STRING,
    SP_JSON_ARRAY,
    SP_JSON_OBJECT,
} sp_json_type;

/* One parsed value. A container holds its n children in kids, in document order; an object's
 * children carry their member name in key (key_len bytes, NUL-terminated; a \u0000 escape makes
 * an embedded NUL, hence the length). at is where the value starts in the text, so that a caller
 * that refuses a value can say where it is (sp_json_where). */
typedef struct sp_json_value {
    sp_json_type type;
    size_t at; /* byte offset of the value's first character */
    char *key;
    size_t key_len;
    char *str; /* SP_JSON_STRING: UTF-8, NUL-terminated, len bytes */
    size_t len;
    double num;  /* SP_JSON_NUMBER */
    int is_int;  /* the number is written as an integer (no fraction or exponent) in int64 range */
    int64_t i64; /* its exact value when is_int */
    struct sp_json_value *kids;
    size_t n;
} sp_json_value;

/* Parses text[0..len) into *out (free with sp_json_free). On malformed input: SP_EINPUT with
 * "line L, column C: what" (the caller prefixes the file), *out NULL. Time and memory are linear
 * in the text (an object of 50k members, a GPT-2 vocabulary, is checked for duplicate names
 * through a hash of the names). */
int sp_json_parse(const char *text, size_t len, sp_json_value **out, sp_err *err);
void sp_json_free(sp_json_value *v);
/* The member named key of an object (NULL when absent or v is not an object). */
const sp_json_value *sp_json_get(const sp_json_value *v, const char *key);
/* Line and column (1-based; columns count bytes) of byte offset at of text, as parse errors say. */
void sp_json_where(const char *text, size_t len, size_t at, size_t *line, size_t *col);
/* Name of a JSON type, for messages ("a string", "an object", ...). */
const char *sp_json_type_name(sp_json_type t);

#endif
