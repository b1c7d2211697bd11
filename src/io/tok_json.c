/* A strict reader for the one JSON shape a vocabulary needs: a flat object of strings to
 * integers ({"!": 0, "\u0120the": 262, ...}, GPT-2's encoder.json). RFC 8259 for that subset:
 * whitespace between tokens, keys with every escape (\uXXXX, surrogate pairs combined), raw
 * UTF-8 validated, integers without fraction or exponent. Anything else is refused with the byte
 * offset: a vocabulary read wrongly would train a model on the wrong tokens silently. */
#include "sprout/tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct rd {
    const unsigned char *p;
    size_t i, n;
    const char *what;
    sp_err *err;
} rd;

static int fail(rd *r, const char *why) {
    return sp_err_set(r->err, SP_EINPUT, "%s: %s at byte %zu", r->what, why, r->i);
}

static void skip_ws(rd *r) {
    while (r->i < r->n &&
           (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' || r->p[r->i] == '\r'))
        r->i++;
}

static int hex4(rd *r, unsigned *v) {
    if (r->n - r->i < 4) return -1;
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = r->p[r->i + (size_t)k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        x = x << 4 | d;
    }
    r->i += 4;
    *v = x;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)), o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid: no overlongs, no
 * surrogates, nothing above U+10FFFF */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len = c < 0x80                ? 1
                 : c >= 0xC2 && c < 0xE0 ? 2
                 : c >= 0xE0 && c < 0xF0 ? 3
                 : c >= 0xF0 && c < 0xF5 ? 4
                                         : 0;
    if (len == 0 || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    if (len == 3 && c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
    if (len == 3 && c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
    if (len == 4 && c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
    if (len == 4 && c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return len;
}

/* a string at r->i (the opening quote) into out (cap bytes); *len its UTF-8 length */
static int read_string(rd *r, char *out, size_t cap, size_t *len) {
    if (r->i >= r->n || r->p[r->i] != '"') return fail(r, "expected a string");
    r->i++;
    size_t o = 0;
    for (;;) {
        if (r->i >= r->n) return fail(r, "unterminated string");
        if (o + 4 > cap) return fail(r, "string too long");
        unsigned c = r->p[r->i];
        if (c == '"') {
            r->i++;
            *len = o;
            return SP_OK;
        }
        if (c < 0x20) return fail(r, "control character in a string");
        if (c != '\\') {
            size_t l = utf8_len(r->p + r->i, r->n - r->i);
            if (!l) return fail(r, "invalid UTF-8 in a string");
            memcpy(out + o, r->p + r->i, l);
            o += l, r->i += l;
            continue;
        }
        if (++r->i >= r->n) return fail(r, "unterminated escape");
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e = strchr(from, r->p[r->i]);
        if (e && *e) {
            out[o++] = to[e - from];
            r->i++;
            continue;
        }
        if (r->p[r->i] != 'u') return fail(r, "unknown escape");
        r->i++;
        unsigned cp, lo;
        if (hex4(r, &cp)) return fail(r, "bad \\u escape");
        if (cp >= 0xDC00 && cp < 0xE000) return fail(r, "lone low surrogate");
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (r->n - r->i < 2 || r->p[r->i] != '\\' || r->p[r->i + 1] != 'u')
                return fail(r, "high surrogate without its low half");
            r->i += 2;
            if (hex4(r, &lo) || lo < 0xDC00 || lo >= 0xE000)
                return fail(r, "high surrogate without its low half");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        o += put_utf8(out + o, cp);
    }
}

static int read_int(rd *r, int64_t *v) {
    size_t s = r->i;
    int neg = r->i < r->n && r->p[r->i] == '-';
    if (neg) r->i++;
    if (r->i >= r->n || r->p[r->i] < '0' || r->p[r->i] > '9') return fail(r, "expected an integer");
    if (r->p[r->i] == '0' && r->i + 1 < r->n && r->p[r->i + 1] >= '0' && r->p[r->i + 1] <= '9')
        return fail(r, "leading zero");
    int64_t x = 0;
    while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9') {
        if (x > (INT64_MAX - 9) / 10) return r->i = s, fail(r, "integer out of range");
        x = x * 10 + (r->p[r->i++] - '0');
    }
    if (r->i < r->n && (r->p[r->i] == '.' || r->p[r->i] == 'e' || r->p[r->i] == 'E'))
        return fail(r, "expected an integer, not a fraction");
    *v = neg ? -x : x;
    return SP_OK;
}

int sp_tok_json_object(const char *text, size_t n, const char *what,
                       int (*fn)(const char *key, size_t klen, int64_t value, void *ctx), void *ctx,
                       sp_err *err) {
    rd r = {(const unsigned char *)text, 0, n, what, err};
    enum { KEY_MAX = 4096 };
    char *key = malloc(KEY_MAX);
    if (!key) return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", what);
    int rc = SP_OK;
    skip_ws(&r);
    if (r.i >= n || r.p[r.i] != '{') rc = fail(&r, "expected '{'");
    r.i += rc == SP_OK;
    skip_ws(&r);
    int first = 1;
    while (rc == SP_OK) {
        if (r.i < n && r.p[r.i] == '}' && first) {
            r.i++;
            break;
        }
        size_t klen = 0;
        int64_t v = 0;
        size_t at = r.i;
        if ((rc = read_string(&r, key, KEY_MAX, &klen))) break;
        skip_ws(&r);
        if (r.i >= n || r.p[r.i] != ':') {
            rc = fail(&r, "expected ':'");
            break;
        }
        r.i++;
        skip_ws(&r);
        if ((rc = read_int(&r, &v))) break;
        if ((rc = fn(key, klen, v, ctx))) {
            r.i = at;
            rc = sp_err_wrap(err, "%s: member at byte %zu", what, at);
            break;
        }
        skip_ws(&r);
        first = 0;
        if (r.i < n && r.p[r.i] == ',') {
            r.i++;
            skip_ws(&r);
            if (r.i < n && r.p[r.i] == '}') rc = fail(&r, "trailing comma");
            continue;
        }
        if (r.i < n && r.p[r.i] == '}') {
            r.i++;
            break;
        }
        rc = fail(&r, "expected ',' or '}'");
    }
    if (rc == SP_OK) {
        skip_ws(&r);
        if (r.i != n) rc = fail(&r, "trailing bytes after the object");
    }
    free(key);
    return rc;
}
