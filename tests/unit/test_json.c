/* The strict JSON reader (src/io/json.c): every value kind, escapes and surrogate pairs, exact
 * integers, nesting, malformed input refused with its line and column, duplicate names in a
 * large object, and where each value starts. */
#include "sprout/json.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sp_json_value *parse(const char *s) {
    sp_json_value *v = NULL;
    sp_err err = {0};
    if (sp_json_parse(s, strlen(s), &v, &err)) return NULL;
    return v;
}

/* malformed: refused with SP_EINPUT and a message containing `want` */
static void refuse(tu_ctx *t, const char *text, size_t len, const char *want) {
    sp_json_value *v = (sp_json_value *)1;
    sp_err err = {0};
    int rc = sp_json_parse(text, len, &v, &err);
    tu_check(t, rc == SP_EINPUT && v == NULL && strstr(err.msg, want) != NULL,
             "%.40s: rc %d, message '%s' (want '%s')", text, rc, err.msg, want);
}

static void values(tu_ctx *t) {
    sp_json_value *v = parse(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": [],"
                             " \"big\": 9007199254740993, \"neg\": -0, \"f\": 0.5}\n");
    tu_check(t, v && v->type == SP_JSON_OBJECT && v->n == 6, "object with 6 members");
    if (!v) return;
    const sp_json_value *a = sp_json_get(v, "a");
    tu_check(t, a && a->type == SP_JSON_ARRAY && a->n == 6, "array of 6");
    if (a && a->n == 6) {
        tu_check(t, a->kids[0].type == SP_JSON_NUMBER && a->kids[0].is_int && a->kids[0].i64 == 1,
                 "1 is the integer 1");
        tu_check(t, !a->kids[1].is_int && a->kids[1].num == -2500.0, "-2.5e3");
        tu_check(t,
                 a->kids[2].type == SP_JSON_TRUE && a->kids[3].type == SP_JSON_FALSE &&
                     a->kids[4].type == SP_JSON_NULL,
                 "true false null");
        tu_check(t, a->kids[5].type == SP_JSON_STRING && !strcmp(a->kids[5].str, "x"), "\"x\"");
    }
    const sp_json_value *big = sp_json_get(v, "big");
    /* above 2^53: exact as an integer, not through a double */
    tu_check(t, big && big->is_int && big->i64 == 9007199254740993LL, "2^53 + 1 exact");
    tu_check(t, sp_json_get(v, "b")->n == 0 && sp_json_get(v, "c")->n == 0, "empty containers");
    tu_check(t, sp_json_get(v, "f")->num == 0.5 && !sp_json_get(v, "f")->is_int, "0.5");
    tu_check(t, sp_json_get(v, "nope") == NULL && sp_json_get(a, "a") == NULL,
             "absent member, lookup on an array");
    sp_json_free(v);
    /* an integer beyond int64 is a number, not an integer */
    v = parse("[18446744073709551616, 1e400]");
    tu_check(t, v && !v->kids[0].is_int && v->kids[0].num > 1.8e19 && isinf(v->kids[1].num),
             "2^64 not an int64; 1e400 overflows to inf");
    sp_json_free(v);
}

static void strings(tu_ctx *t) {
    sp_json_value *v = parse("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\", "
                             "\"\\ud83d\\ude00\", \"caf\xc3\xa9 \xe2\x82\xac\", \"a\\u0000b\"]");
    tu_check(t, v && v->n == 5, "five strings");
    if (!v || v->n != 5) return;
    tu_check(t, !strcmp(v->kids[0].str, "\"\\/\b\f\n\r\t"), "simple escapes");
    tu_check(t, !strcmp(v->kids[1].str, "\xc3\xa9\xe2\x82\xac"), "\\u00e9\\u20ac -> UTF-8");
    tu_check(t, !strcmp(v->kids[2].str, "\xf0\x9f\x98\x80"), "surrogate pair -> U+1F600");
    tu_check(t, !strcmp(v->kids[3].str, "caf\xc3\xa9 \xe2\x82\xac"), "raw UTF-8 kept");
    tu_check(t, v->kids[4].len == 3 && !memcmp(v->kids[4].str, "a\0b", 3), "\\u0000 kept, len 3");
    sp_json_free(v);
    /* GPT-2's byte map: a vocabulary with non-ASCII keys, looked up by their UTF-8 */
    v = parse("{\"\xc4\xa0the\": 262, \"\\u0120a\": 257}");
    tu_check(t,
             v && sp_json_get(v, "\xc4\xa0the") && sp_json_get(v, "\xc4\xa0the")->i64 == 262 &&
                 sp_json_get(v, "\xc4\xa0"
                                "a")
                         ->i64 == 257,
             "UTF-8 keys, escaped or raw");
    sp_json_free(v);
}

static void nesting(tu_ctx *t) {
    char deep[2 * SP_JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < SP_JSON_MAX_DEPTH; i++) deep[n++] = '[';
    for (int i = 0; i < SP_JSON_MAX_DEPTH; i++) deep[n++] = ']';
    sp_json_value *v = NULL;
    sp_err err = {0};
    tu_check(t, sp_json_parse(deep, n, &v, &err) == SP_OK, "nesting %d deep: %s", SP_JSON_MAX_DEPTH,
             err.msg);
    sp_json_free(v);
    char deeper[2 * SP_JSON_MAX_DEPTH + 8];
    n = 0;
    for (int i = 0; i <= SP_JSON_MAX_DEPTH; i++) deeper[n++] = '[';
    for (int i = 0; i <= SP_JSON_MAX_DEPTH; i++) deeper[n++] = ']';
    refuse(t, deeper, n, "nested too deeply");
}

static void malformed(tu_ctx *t) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "unexpected end of input"},
        {"   ", "unexpected end of input"},
        {"{\"a\": 1,}", "trailing comma"},
        {"[1, 2,]", "trailing comma"},
        {"{\"a\": 1 \"b\": 2}", "expected ',' or '}'"},
        {"{\"a\" 1}", "expected ':'"},
        {"{a: 1}", "expected a member name"},
        {"{\"a\": 1, \"a\": 2}", "duplicate member name \"a\""},
        {"[1] [2]", "text after the JSON value"},
        {"[01]", "leading zero"},
        {"[1.]", "digits after its decimal point"},
        {"[.5]", "unexpected character"},
        {"[1e]", "digits in its exponent"},
        {"[-]", "a number needs digits"},
        {"[+1]", "unexpected character"},
        {"[NaN]", "unexpected character"},
        {"[tru]", "unexpected text"},
        {"[nul", "unexpected text"},
        {"\"abc", "unterminated string"},
        {"[\"a\tb\"]", "control character"},
        {"[\"\\x\"]", "unknown escape"},
        {"[\"\\u12\"]", "four hex digits"},
        {"[\"\\ud800\"]", "not followed by a low one"},
        {"[\"\\ud800\\u0041\"]", "not followed by a low one"},
        {"[\"\\udc00\"]", "lone low surrogate"},
        {"[\"\xc3\"]", "invalid UTF-8"},
        {"[\"\xc0\xaf\"]", "invalid UTF-8"},         /* overlong '/' */
        {"[\"\xed\xa0\x80\"]", "invalid UTF-8"},     /* a surrogate in UTF-8 */
        {"[\"\xf4\x90\x80\x80\"]", "invalid UTF-8"}, /* above U+10FFFF */
        {"[1, 2", "unterminated array"},
        {"{\"a\": 1", "unterminated object"},
        {"// c\n1", "unexpected character"},
        {"{\"a\":\n  [1,\n   x]}", "line 3, column 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refuse(t, cases[i].text, strlen(cases[i].text), cases[i].want);
    /* a NUL byte inside the buffer is not the end of the text */
    refuse(t, "[1]\0", 4, "text after the JSON value");
    refuse(t, "[\"a\0\"]", 6, "control character");
}

/* duplicate names through the hash of an object's names: a large object, every pair of its
 * names compared; the value positions (at) and sp_json_where */
static void names_and_places(tu_ctx *t) {
    enum { N = 3000 };
    char *s = malloc((size_t)N * 16 + 64);
    size_t n = 0;
    s[n++] = '{';
    for (int i = 0; i < N; i++) n += (size_t)sprintf(s + n, "%s\"k%d\": %d", i ? ", " : "", i, i);
    s[n++] = '}';
    sp_json_value *v = NULL;
    sp_err err = {0};
    int rc = sp_json_parse(s, n, &v, &err);
    int ok = rc == SP_OK && v->n == N;
    for (int i = 0; ok && i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        ok = !strcmp(v->kids[i].key, key) && v->kids[i].i64 == i &&
             (size_t)atoi(s + v->kids[i].at) == (size_t)i && s[v->kids[i].at - 2] == ':';
    }
    tu_check(t, ok, "%d distinct names in document order, each value at its place: %s", N, err.msg);
    sp_json_free(v);
    /* the same name again at the end, and in the middle: named where it repeats */
    for (int at_end = 0; at_end < 2; at_end++) {
        size_t m = n - 1, pos = m + 2;
        m += (size_t)sprintf(s + m, ", \"k%d\": 0}", at_end ? N - 1 : 1234);
        size_t line, col;
        sp_json_where(s, m, pos, &line, &col);
        char want[96];
        snprintf(want, sizeof want, "line 1, column %zu: duplicate member name \"k%d\"", col,
                 at_end ? N - 1 : 1234);
        refuse(t, s, m, want);
        tu_check(t, line == 1 && col == pos + 1, "sp_json_where on one line: column = byte + 1");
    }
    free(s);
    /* a name with control characters stays one line in the message */
    refuse(t, "{\"a\\nb\": 1, \"a\\nb\": 2}", 22, "duplicate member name \"a\\x0ab\"");
    /* at and sp_json_where across lines */
    const char *text = "{\"a\":\n  [1,\n   \"x\"]}";
    v = parse(text);
    const sp_json_value *a = v ? sp_json_get(v, "a") : NULL;
    size_t line = 0, col = 0;
    if (a && a->n == 2) sp_json_where(text, strlen(text), a->kids[1].at, &line, &col);
    tu_check(t,
             v && v->at == 0 && a && a->at == 8 && a->n == 2 && a->kids[0].at == 9 && line == 3 &&
                 col == 4,
             "value positions: line %zu, column %zu", line, col);
    sp_json_free(v);
}

int main(void) {
    tu_ctx t = {0};
    values(&t);
    strings(&t);
    nesting(&t);
    malformed(&t);
    names_and_places(&t);
    return tu_finish(&t, "unit_json");
}
