/* The strict JSON reader (include/sprout/json.h): recursive descent over a byte buffer. */
#include "sprout/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jp {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    sp_err *err;
} jp;

void sp_json_where(const char *text, size_t len, size_t at, size_t *line, size_t *col) {
    *line = 1, *col = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}

/* the error at the current position, as line and column */
static int fail(jp *p, const char *what) {
    size_t line, col;
    sp_json_where((const char *)p->s, p->len, p->pos, &line, &col);
    return sp_err_set(p->err, SP_EINPUT, "line %zu, column %zu: %s", line, col, what);
}

static void skip_ws(jp *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int at_end(const jp *p) {
    return p->pos >= p->len;
}

static int hex4(jp *p, unsigned *out) {
    if (p->len - p->pos < 4) return fail(p, "a \\u escape needs four hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + (size_t)i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16) return fail(p, "a \\u escape needs four hex digits");
        v = v * 16 + d;
    }
    p->pos += 4;
    *out = v;
    return SP_OK;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* length of the valid UTF-8 sequence at s (n bytes available), 0 when invalid: no overlong
 * forms, no surrogates, nothing above U+10FFFF */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    unsigned cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0)
        k = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        k = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        k = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return k;
}

/* a string at p->pos (the opening quote), decoded into a malloc'd NUL-terminated buffer */
static int parse_string(jp *p, char **out, size_t *out_len) {
    p->pos++; /* the quote */
    /* the decoded text is never longer than the source */
    size_t start = p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    char *o = malloc(end - start + 1);
    if (!o) return sp_err_set(p->err, SP_ERUNTIME, "out of memory");
    size_t n = 0;
    for (;;) {
        if (at_end(p)) {
            free(o);
            return fail(p, "unterminated string");
        }
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(o);
            return fail(p, "control character in a string (escape it)");
        }
        if (c != '\\') {
            size_t k = utf8_len(p->s + p->pos, p->len - p->pos);
            if (!k) {
                free(o);
                return fail(p, "invalid UTF-8 in a string");
            }
            memcpy(o + n, p->s + p->pos, k);
            n += k, p->pos += k;
            continue;
        }
        p->pos++;
        if (at_end(p)) {
            free(o);
            return fail(p, "unterminated string");
        }
        c = p->s[p->pos++];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e = c ? strchr(from, c) : NULL;
        if (e) {
            o[n++] = to[e - from];
            continue;
        }
        if (c != 'u') {
            p->pos--;
            free(o);
            return fail(p, "unknown escape in a string");
        }
        unsigned cp, lo;
        if (hex4(p, &cp)) {
            free(o);
            return p->err->code;
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(o);
            return fail(p, "a \\u escape is a lone low surrogate");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                free(o);
                return fail(p, "a \\u high surrogate is not followed by a low one");
            }
            p->pos += 2;
            if (hex4(p, &lo)) {
                free(o);
                return p->err->code;
            }
            if (lo < 0xdc00 || lo > 0xdfff) {
                free(o);
                return fail(p, "a \\u high surrogate is not followed by a low one");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        /* an escape takes at least 6 source bytes and decodes to at most 4 */
        n += put_utf8(o + n, cp);
    }
    o[n] = 0;
    *out = o;
    *out_len = n;
    return SP_OK;
}

static int parse_number(jp *p, sp_json_value *v) {
    size_t b = p->pos, i = b;
    const unsigned char *s = p->s;
    int frac = 0;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9')
        return p->pos = i, fail(p, "a number needs digits");
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9')
            return p->pos = i, fail(p, "a number has a leading zero");
    } else
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    if (i < p->len && s[i] == '.') {
        frac = 1, i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return p->pos = i, fail(p, "a number needs digits after its decimal point");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        frac = 1, i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return p->pos = i, fail(p, "a number needs digits in its exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    char buf[64];
    if (i - b >= sizeof buf) {
        /* only a value too long to be an int64 or to need all its digits: strtod of a copy */
        char *t = malloc(i - b + 1);
        if (!t) return sp_err_set(p->err, SP_ERUNTIME, "out of memory");
        memcpy(t, s + b, i - b), t[i - b] = 0;
        v->num = strtod(t, NULL);
        free(t);
    } else {
        memcpy(buf, s + b, i - b), buf[i - b] = 0;
        v->num = strtod(buf, NULL);
        if (!frac) {
            errno = 0;
            long long x = strtoll(buf, NULL, 10);
            if (!errno) v->is_int = 1, v->i64 = x;
        }
    }
    v->type = SP_JSON_NUMBER;
    p->pos = i;
    return SP_OK;
}

static int literal(jp *p, const char *word, sp_json_type t, sp_json_value *v) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return fail(p, "unexpected text");
    p->pos += n;
    v->type = t;
    return SP_OK;
}

static void free_kids(sp_json_value *v);

static int parse_value(jp *p, sp_json_value *v);

/* appends a zeroed child to v; NULL when out of memory */
static sp_json_value *add_kid(jp *p, sp_json_value *v, size_t *cap) {
    if (v->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 4;
        sp_json_value *k = realloc(v->kids, nc * sizeof *k);
        if (!k) {
            sp_err_set(p->err, SP_ERUNTIME, "out of memory");
            return NULL;
        }
        v->kids = k, *cap = nc;
    }
    sp_json_value *k = &v->kids[v->n++];
    memset(k, 0, sizeof *k);
    return k;
}

/* The member names of one object so far, for the duplicate check: open addressing on the index
 * of a member + 1 (0 = empty), at most half full. A scan of the earlier names per member would
 * be quadratic: 1.3e9 comparisons for GPT-2's 50257-token encoder.json. */
typedef struct name_set {
    size_t *slot;
    size_t cap; /* a power of two */
} name_set;

static size_t name_slot(const name_set *t, const sp_json_value *k) {
    return sp_crc32(0, k->key, k->key_len) & (t->cap - 1);
}

/* adds the last member of object v to t: 1 when an earlier member has its name, -1 when out of
 * memory */
static int names_add(name_set *t, const sp_json_value *v) {
    const sp_json_value *k = &v->kids[v->n - 1];
    if (2 * v->n > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        size_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        free(t->slot);
        t->slot = slot, t->cap = cap;
        for (size_t j = 0; j + 1 < v->n; j++) {
            size_t i = name_slot(t, &v->kids[j]);
            while (t->slot[i]) i = (i + 1) & (cap - 1);
            t->slot[i] = j + 1;
        }
    }
    size_t i = name_slot(t, k);
    for (; t->slot[i]; i = (i + 1) & (t->cap - 1)) {
        const sp_json_value *o = &v->kids[t->slot[i] - 1];
        if (o->key_len == k->key_len && !memcmp(o->key, k->key, k->key_len)) return 1;
    }
    t->slot[i] = v->n;
    return 0;
}

/* appends the first 100 bytes of s (n bytes) to buf, the bytes that would break a one-line
 * message as \xHH */
static void put_shown(char *buf, size_t cap, const char *s, size_t n) {
    size_t o = strlen(buf);
    for (size_t i = 0; i < n && i < 100 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = 0;
}

static int parse_container(jp *p, sp_json_value *v, int object) {
    if (++p->depth > SP_JSON_MAX_DEPTH) return fail(p, "nested too deeply");
    v->type = object ? SP_JSON_OBJECT : SP_JSON_ARRAY;
    const unsigned char close = object ? '}' : ']';
    size_t cap = 0;
    name_set seen = {0};
    int rc = SP_OK;
    p->pos++;
    skip_ws(p);
    if (!at_end(p) && p->s[p->pos] == close) {
        p->pos++, p->depth--;
        return SP_OK;
    }
    for (;;) {
        skip_ws(p);
        sp_json_value *k = add_kid(p, v, &cap);
        if (!k) {
            rc = p->err->code;
            break;
        }
        if (object) {
            if (at_end(p) || p->s[p->pos] != '"') {
                rc = fail(p, v->n > 1 ? "expected a member name after ','"
                                      : "expected a member name or '}'");
                break;
            }
            size_t at = p->pos;
            if ((rc = parse_string(p, &k->key, &k->key_len))) break;
            /* a duplicate name would make the object ambiguous */
            int dup = names_add(&seen, v);
            if (dup) {
                p->pos = at;
                char what[480] = "duplicate member name \"";
                put_shown(what, sizeof what, k->key, k->key_len);
                strncat(what, "\"", sizeof what - strlen(what) - 1);
                rc = dup < 0 ? sp_err_set(p->err, SP_ERUNTIME, "out of memory") : fail(p, what);
                break;
            }
            skip_ws(p);
            if (at_end(p) || p->s[p->pos] != ':') {
                rc = fail(p, "expected ':' after a name");
                break;
            }
            p->pos++;
            skip_ws(p);
        }
        if ((rc = parse_value(p, k))) break;
        skip_ws(p);
        if (at_end(p)) {
            rc = fail(p, object ? "unterminated object" : "unterminated array");
            break;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (!at_end(p) && p->s[p->pos] == close) {
                rc = fail(p, "trailing comma");
                break;
            }
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++, p->depth--;
            break;
        }
        rc = fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    free(seen.slot);
    return rc;
}

static int parse_value(jp *p, sp_json_value *v) {
    skip_ws(p);
    v->at = p->pos;
    if (at_end(p)) return fail(p, "unexpected end of input");
    switch (p->s[p->pos]) {
    case '{':
        return parse_container(p, v, 1);
    case '[':
        return parse_container(p, v, 0);
    case '"':
        v->type = SP_JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't':
        return literal(p, "true", SP_JSON_TRUE, v);
    case 'f':
        return literal(p, "false", SP_JSON_FALSE, v);
    case 'n':
        return literal(p, "null", SP_JSON_NULL, v);
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
            return parse_number(p, v);
        return fail(p, "unexpected character");
    }
}

static void free_kids(sp_json_value *v) {
    for (size_t i = 0; i < v->n; i++) {
        free_kids(&v->kids[i]);
        free(v->kids[i].key);
        free(v->kids[i].str);
    }
    free(v->kids);
}

int sp_json_parse(const char *text, size_t len, sp_json_value **out, sp_err *err) {
    *out = NULL;
    sp_json_value *v = calloc(1, sizeof *v);
    if (!v) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    jp p = {(const unsigned char *)text, len, 0, 0, err};
    int rc = parse_value(&p, v);
    if (!rc) {
        skip_ws(&p);
        if (!at_end(&p)) rc = fail(&p, "text after the JSON value");
    }
    if (rc) {
        sp_json_free(v);
        return rc;
    }
    *out = v;
    return SP_OK;
}

void sp_json_free(sp_json_value *v) {
    if (!v) return;
    free_kids(v);
    free(v->str);
    free(v);
}

const sp_json_value *sp_json_get(const sp_json_value *v, const char *key) {
    if (!v || v->type != SP_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->kids[i].key_len == n && !memcmp(v->kids[i].key, key, n)) return &v->kids[i];
    return NULL;
}

const char *sp_json_type_name(sp_json_type t) {
    static const char *names[] = {"null",     "false",    "true",     "a number",
                                  "a string", "an array", "an object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}
