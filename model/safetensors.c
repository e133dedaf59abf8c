/* model/safetensors.c: export and import in the safetensors format, with PyTorch's names.
 *
 * A safetensors file is a u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}} (padded with spaces to a multiple of 8), then the tensor bytes,
 * offsets relative to the end of the header. Names are those of a module with
 * `lstm = nn.LSTM(I, H, L)` and `fc = nn.Linear(H, O)` plus two registered buffers,
 * input_mean and input_scale (see model.h); torch's state_dict() gives exactly these.
 *
 * The importer parses only what it needs with a small bounded parser: every read is checked
 * against the buffer, nesting depth is limited, and every tensor's dtype, shape and byte range
 * is validated before a byte is copied, so malformed input is ERR_CORRUPT, never a crash.
 * Any thread. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

#define ST_MAX_TENSORS 128
#define ST_NAME_MAX    96
#define ST_MAX_DIMS    4
#define ST_MAX_HEADER  (64u << 20)
#define ST_TOO_MANY    (-2)

/* One tensor to export: its name, shape and where its floats come from. For LSTM weights the
 * source is a column block of the concatenated matrix w_l [G, K]: rows `rows` of `cols`
 * floats starting at src, with row stride ld. */
struct st_out {
    char name[ST_NAME_MAX];
    int ndim;
    size_t shape[2];
    const float *src;
    size_t ld;
};

/* The tensors of model m whose float32 values are vals, [2 I + n_params] in the layout of a
 * float32 model's block (mean, scale, parameters; model__widen). vals NULL: only the names and
 * shapes are wanted (every src is then NULL). */
static int out_list(const model_t *m, const float *vals, struct st_out *t)
{
    const size_t H = (size_t)m->cfg.n_hidden, G = 4 * H;
    const size_t O = (size_t)m->cfg.n_outputs, I = (size_t)m->cfg.n_inputs;
    struct model_views v;
    memset(&v, 0, sizeof v);
    if (vals)
        model__views(m, (float *)vals + 2 * I, &v);
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        size_t in = (size_t)m->in[l], K = (size_t)m->k[l];
        t[n] = (struct st_out){"", 2, {G, in}, v.w[l], K};
        snprintf(t[n++].name, ST_NAME_MAX, "lstm.weight_ih_l%d", l);
        t[n] = (struct st_out){"", 2, {G, H}, vals ? v.w[l] + in : NULL, K};
        snprintf(t[n++].name, ST_NAME_MAX, "lstm.weight_hh_l%d", l);
        t[n] = (struct st_out){"", 1, {G, 1}, v.b_ih[l], G};
        snprintf(t[n++].name, ST_NAME_MAX, "lstm.bias_ih_l%d", l);
        t[n] = (struct st_out){"", 1, {G, 1}, v.b_hh[l], G};
        snprintf(t[n++].name, ST_NAME_MAX, "lstm.bias_hh_l%d", l);
    }
    t[n++] = (struct st_out){"fc.weight", 2, {O, H}, v.fc_w, H};
    t[n++] = (struct st_out){"fc.bias", 1, {O, 1}, v.fc_b, O};
    t[n++] = (struct st_out){"input_mean", 1, {I, 1}, vals, I};
    t[n++] = (struct st_out){"input_scale", 1, {I, 1}, vals ? vals + I : NULL, I};
    return n;
}

static size_t numel(const struct st_out *t)
{
    return t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0];
}

/* Writes the JSON header (unpadded) into dst if cap allows; returns its length. */
static size_t header_json(const struct st_out *t, int n, char *dst, size_t cap)
{
    size_t len = 0, off = 0;
    char tmp[ST_NAME_MAX + 160];
    for (int i = -1; i <= n; i++) {
        int k;
        if (i == -1) {
            k = snprintf(tmp, sizeof tmp, "{\"__metadata__\":{\"format\":\"pt\"}");
        } else if (i == n) {
            k = snprintf(tmp, sizeof tmp, "}");
        } else {
            size_t bytes = 4 * numel(&t[i]);
            if (t[i].ndim == 2)
                k = snprintf(tmp, sizeof tmp,
                             ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],"
                             "\"data_offsets\":[%zu,%zu]}",
                             t[i].name, t[i].shape[0], t[i].shape[1], off, off + bytes);
            else
                k = snprintf(tmp, sizeof tmp,
                             ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],"
                             "\"data_offsets\":[%zu,%zu]}",
                             t[i].name, t[i].shape[0], off, off + bytes);
            off += bytes;
        }
        if (dst && len + (size_t)k <= cap)
            memcpy(dst + len, tmp, (size_t)k);
        len += (size_t)k;
    }
    return len;
}

size_t model_safetensors_size(const model_t *m)
{
    struct st_out t[4 * MODEL_MAX_LAYERS + 4];
    int n = out_list(m, NULL, t);
    size_t hl = (header_json(t, n, NULL, 0) + 7) & ~(size_t)7, data = 0;
    for (int i = 0; i < n; i++)
        data += 4 * numel(&t[i]);
    return 8 + hl + data;
}

int model_safetensors_export(const model_t *m, void *buf, size_t cap, size_t *len)
{
    size_t total = model_safetensors_size(m);
    if (cap < total)
        return ERR_RANGE;
    /* A float32 model's block is the values; a compact model's are widened into a copy, in
     * canonical order (model__widen reads the panels of its gate matrices through
     * model__f16_index). */
    float *wide = NULL;
    if (m->compact) {
        wide = malloc(sizeof(float) * (2 * (size_t)m->cfg.n_inputs + m->n_params));
        if (!wide)
            return ERR_NOMEM;
        model__widen(wide, m);
    }
    struct st_out t[4 * MODEL_MAX_LAYERS + 4];
    int n = out_list(m, wide ? wide : m->block, t);
    unsigned char *p = buf;
    size_t hl = header_json(t, n, (char *)p + 8, cap - 8);
    size_t padded = (hl + 7) & ~(size_t)7;
    memset(p + 8 + hl, ' ', padded - hl);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    unsigned char *d = p + 8 + padded;
    for (int i = 0; i < n; i++) {
        size_t rows = t[i].ndim == 2 ? t[i].shape[0] : 1;
        size_t cols = t[i].ndim == 2 ? t[i].shape[1] : t[i].shape[0];
        for (size_t r = 0; r < rows; r++) {
            model__put_floats(d, t[i].src + r * t[i].ld, cols);
            d += 4 * cols;
        }
    }
    free(wide);
    *len = total;
    return 0;
}

/* ---- import -------------------------------------------------------------------------------- */

struct st_in {
    char name[ST_NAME_MAX];
    char dtype[16]; /* as the header names it (truncated), for the error */
    int f32;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;
};

struct jp {
    const char *s;
    size_t n, i;
};

static void ws(struct jp *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int expect(struct jp *p, char c)
{
    ws(p);
    if (p->i >= p->n || p->s[p->i] != c)
        return -1;
    p->i++;
    return 0;
}

static int peek(struct jp *p, char c)
{
    ws(p);
    return p->i < p->n && p->s[p->i] == c;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Parses a JSON string into out (NUL-terminated). *foreign is set when the string cannot be a
 * name vigil looks up: too long for cap, or holding a \u escape of a character outside ASCII
 * (or NUL). Such a name is kept apart rather than read as something it is not: before session
 * 68 every \u escape became '?', so "extra\u00e9" and "extra\u00e8" (Python's json.dumps writes
 * non-ASCII that way) were one name, refused as "named twice". */
static int jstring(struct jp *p, char *out, size_t cap, int *foreign)
{
    size_t k = 0;
    *foreign = 0;
    if (expect(p, '"') < 0)
        return -1;
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if (c == '\\') {
            if (p->i >= p->n)
                return -1;
            c = p->s[p->i++];
            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                if (p->n - p->i < 4)
                    return -1;
                int v = 0;
                for (int d = 0; d < 4; d++) {
                    int h = hexval(p->s[p->i++]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + h;
                }
                if (v == 0 || v > 0x7f)
                    *foreign = 1;
                c = (char)(v & 0x7f);
                break;
            }
            default:
                return -1; /* not a JSON escape */
            }
        }
        if (k + 1 < cap)
            out[k++] = c;
        else
            *foreign = 1;
    }
    if (p->i >= p->n)
        return -1;
    p->i++;
    out[k] = '\0';
    return 0;
}

static int juint(struct jp *p, uint64_t *v)
{
    ws(p);
    size_t start = p->i;
    uint64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(p->s[p->i++] - '0');
    }
    if (p->i == start)
        return -1;
    *v = x;
    return 0;
}

static int jskip(struct jp *p, int depth)
{
    char tmp[8];
    int tr;
    if (depth > 32)
        return -1;
    ws(p);
    if (p->i >= p->n)
        return -1;
    char c = p->s[p->i];
    if (c == '"')
        return jstring(p, tmp, sizeof tmp, &tr);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p->i++;
        if (peek(p, close)) {
            p->i++;
            return 0;
        }
        for (;;) {
            if (c == '{' && (jstring(p, tmp, sizeof tmp, &tr) < 0 || expect(p, ':') < 0))
                return -1;
            if (jskip(p, depth + 1) < 0)
                return -1;
            if (peek(p, ',')) {
                p->i++;
                continue;
            }
            return expect(p, close);
        }
    }
    /* number, true, false, null */
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] != '\0' && strchr("+-.0123456789eEtruefalsn", p->s[p->i]))
        p->i++;
    return p->i > start ? 0 : -1;
}

static int juint_array(struct jp *p, uint64_t *v, int max, int *count)
{
    int k = 0;
    if (expect(p, '[') < 0)
        return -1;
    if (peek(p, ']')) {
        p->i++;
        *count = 0;
        return 0;
    }
    for (;;) {
        uint64_t x;
        if (juint(p, &x) < 0)
            return -1;
        if (k < max) /* more than max: counted, not kept (a 5-d tensor is a tensor) */
            v[k] = x;
        if (k == INT_MAX)
            return -1;
        k++;
        if (peek(p, ',')) {
            p->i++;
            continue;
        }
        if (expect(p, ']') < 0)
            return -1;
        *count = k;
        return 0;
    }
}

static int jtensor(struct jp *p, struct st_in *t)
{
    char key[32], dtype[16];
    int tr, got_dtype = 0, got_shape = 0, got_off = 0;
    if (expect(p, '{') < 0)
        return -1;
    if (peek(p, '}'))
        return -1;
    for (;;) {
        if (jstring(p, key, sizeof key, &tr) < 0 || expect(p, ':') < 0)
            return -1;
        if (!tr && strcmp(key, "dtype") == 0) {
            if (jstring(p, dtype, sizeof dtype, &tr) < 0)
                return -1;
            t->f32 = !tr && strcmp(dtype, "F32") == 0;
            snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
            got_dtype = 1;
        } else if (!tr && strcmp(key, "shape") == 0) {
            if (juint_array(p, t->shape, ST_MAX_DIMS, &t->ndim) < 0)
                return -1;
            got_shape = 1;
        } else if (!tr && strcmp(key, "data_offsets") == 0) {
            uint64_t o[2];
            int k;
            if (juint_array(p, o, 2, &k) < 0 || k != 2)
                return -1;
            t->begin = o[0];
            t->end = o[1];
            got_off = 1;
        } else if (jskip(p, 1) < 0) {
            return -1;
        }
        if (peek(p, ',')) {
            p->i++;
            continue;
        }
        if (expect(p, '}') < 0)
            return -1;
        return got_dtype && got_shape && got_off ? 0 : -1;
    }
}

/* Parses the header into t[], returns the number of tensors, -1 if it is not the JSON of a
 * safetensors header, or ST_TOO_MANY if it names more than max tensors vigil could look up. */
static int parse_header(const char *s, size_t n, struct st_in *t, int max)
{
    struct jp p = {s, n, 0};
    int k = 0;
    if (expect(&p, '{') < 0)
        return -1;
    if (peek(&p, '}'))
        return 0;
    for (;;) {
        char name[ST_NAME_MAX];
        int tr;
        if (jstring(&p, name, sizeof name, &tr) < 0 || expect(&p, ':') < 0)
            return -1;
        if (!tr && k >= max && strcmp(name, "__metadata__") != 0)
            return ST_TOO_MANY; /* skipping it could hide one of ours: "no tensor" is false */
        if (strcmp(name, "__metadata__") == 0 || tr) {
            if (jskip(&p, 1) < 0) /* metadata, or a name that cannot be one of ours */
                return -1;
        } else {
            memset(&t[k], 0, sizeof t[k]);
            memcpy(t[k].name, name, sizeof name);
            if (jtensor(&p, &t[k]) < 0)
                return -1;
            k++;
        }
        if (peek(&p, ',')) {
            p.i++;
            continue;
        }
        if (expect(&p, '}') < 0)
            return -1;
        ws(&p);
        return p.i == p.n ? k : -1;
    }
}

struct st_ctx {
    const struct st_in *t;
    int n;
    const unsigned char *data;
    uint64_t data_len;
};

/* Writes the reason an import failed into why (cap bytes; why NULL: not wanted). */
static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* A tensor whose name ends in "." name (a module saved one level up, "model.lstm.weight_ih_l0"),
 * or NULL: the hint for a missing name. */
static const struct st_in *prefixed(const struct st_ctx *c, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < c->n; i++) {
        size_t k = strlen(c->t[i].name);
        if (k > nl && c->t[i].name[k - nl - 1] == '.' && strcmp(c->t[i].name + k - nl, name) == 0)
            return &c->t[i];
    }
    return NULL;
}

/* Says that the tensor called name is missing, naming one of its name with a prefix if any. */
static void say_missing(const struct st_ctx *c, const char *name, char *why, size_t cap)
{
    const struct st_in *p = prefixed(c, name);
    if (p)
        say(why, cap,
            "no tensor '%s' (found '%s': save the state_dict of the module whose attributes are "
            "lstm and fc, so the names start with 'lstm.' and 'fc.')",
            name, p->name);
    else
        say(why, cap,
            "no tensor '%s' (a module with lstm = nn.LSTM(...) and fc = nn.Linear(...)"
            " gives it)",
            name);
}

/* Finds a tensor by name (also without a leading "lstm.") and checks dtype, shape and range.
 * d1 == 0 means a 1-d tensor of d0 elements. Returns it, or NULL with the reason in why. */
static const struct st_in *find(const struct st_ctx *c, const char *name, uint64_t d0, uint64_t d1,
                                char *why, size_t cap)
{
    const struct st_in *hit = NULL;
    const char *alt = strncmp(name, "lstm.", 5) == 0 ? name + 5 : NULL;
    for (int i = 0; i < c->n && !hit; i++)
        if (strcmp(c->t[i].name, name) == 0)
            hit = &c->t[i];
    for (int i = 0; i < c->n && !hit && alt; i++)
        if (strcmp(c->t[i].name, alt) == 0)
            hit = &c->t[i];
    if (!hit) {
        say_missing(c, name, why, cap);
        return NULL;
    }
    if (!hit->f32) {
        say(why, cap, "tensor '%s': dtype %s, want F32 (call model.float() before saving)", name,
            hit->dtype);
        return NULL;
    }
    if (d1 == 0 ? (hit->ndim != 1 || hit->shape[0] != d0)
                : (hit->ndim != 2 || hit->shape[0] != d0 || hit->shape[1] != d1)) {
        char got[96] = "[";
        for (int k = 0; k < hit->ndim && k < ST_MAX_DIMS; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", k ? "," : "",
                     (unsigned long long)hit->shape[k]);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s]",
                 hit->ndim > ST_MAX_DIMS ? ",..." : "");
        if (d1 == 0)
            say(why, cap, "tensor '%s': shape %s, want [%llu]", name, got, (unsigned long long)d0);
        else
            say(why, cap, "tensor '%s': shape %s, want [%llu,%llu]%s", name, got,
                (unsigned long long)d0, (unsigned long long)d1,
                hit->ndim == 2 && hit->shape[0] == d1 && hit->shape[1] == d0
                    ? " (transposed: PyTorch keeps a weight as [out, in])"
                    : "");
        return NULL;
    }
    uint64_t bytes = 4 * d0 * (d1 ? d1 : 1);
    if (hit->begin > hit->end || hit->end > c->data_len || hit->end - hit->begin != bytes) {
        say(why, cap,
            "tensor '%s': data_offsets [%llu,%llu] do not hold its %llu bytes within the %llu "
            "bytes of data after the header",
            name, (unsigned long long)hit->begin, (unsigned long long)hit->end,
            (unsigned long long)bytes, (unsigned long long)c->data_len);
        return NULL;
    }
    return hit;
}

/* Copies a [rows, cols] tensor into dst with row stride ld. */
/* Copies t into dst; returns t when a value copied is not finite (NaN or infinity), for the
 * message to name it, else NULL. */
static const struct st_in *copy_in(const struct st_ctx *c, const struct st_in *t, float *dst,
                                   size_t rows, size_t cols, size_t ld)
{
    int bad = 0;
    for (size_t r = 0; r < rows; r++) {
        model__get_floats(dst + r * ld, c->data + t->begin + 4 * r * cols, cols);
        for (size_t k = 0; k < cols; k++)
            bad |= !isfinite(dst[r * ld + k]);
    }
    return bad ? t : NULL;
}

/* The names a model's file may hold beyond those find() looks up: none. Says the first other
 * tensor of c (and how many more) in why, as a warning on success: a state_dict of a module
 * holding more than lstm and fc is accepted, its other tensors not used (read69b 5). */
static void say_unused(const struct st_ctx *c, int layers, char *why, size_t cap)
{
    int unused = 0;
    const char *first = NULL;
    for (int i = 0; i < c->n; i++) {
        const char *nm = c->t[i].name;
        const char *bare = strncmp(nm, "lstm.", 5) == 0 ? nm + 5 : nm;
        int l = -1, used = strcmp(nm, "fc.weight") == 0 || strcmp(nm, "fc.bias") == 0 ||
                           strcmp(nm, "input_mean") == 0 || strcmp(nm, "input_scale") == 0;
        char kind[16];
        if (!used && sscanf(bare, "%15[a-z_]%d", kind, &l) == 2 && l >= 0 && l < layers) {
            char again[32];
            snprintf(again, sizeof again, "%s%d", kind, l);
            used = strcmp(again, bare) == 0 &&
                   (strcmp(kind, "weight_ih_l") == 0 || strcmp(kind, "weight_hh_l") == 0 ||
                    strcmp(kind, "bias_ih_l") == 0 || strcmp(kind, "bias_hh_l") == 0);
        }
        if (!used && unused++ == 0)
            first = nm;
    }
    if (first && unused == 1)
        say(why, cap, "tensor '%s' is not part of the LSTM model vigild serves: not used", first);
    else if (first)
        say(why, cap,
            "tensor '%s' and %d more are not part of the LSTM model vigild serves: not used", first,
            unused - 1);
}

/* Whether a tensor called name (or, for "lstm." names, the bare name) is present. */
static int exists(const struct st_ctx *c, const char *name)
{
    const char *alt = strncmp(name, "lstm.", 5) == 0 ? name + 5 : NULL;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0 || (alt && strcmp(c->t[i].name, alt) == 0))
            return 1;
    return 0;
}

int model_safetensors_import(model_t **out, const void *buf, size_t len)
{
    return model_safetensors_import_why(out, buf, len, NULL, 0);
}

int model_safetensors_import_why(model_t **out, const void *buf, size_t len, char *why, size_t cap)
{
    const unsigned char *p = buf;
    if (why && cap)
        why[0] = '\0'; /* success without a warning */
    struct st_in t[ST_MAX_TENSORS];
    if (!buf || len < 8) {
        say(why, cap, "%zu bytes: shorter than a safetensors header's length (8 bytes)",
            buf ? len : 0);
        return ERR_CORRUPT;
    }
    if (memcmp(p, "PK\x03\x04", 4) == 0) {
        say(why, cap,
            "a zip file (torch.save's output?), not safetensors: save with "
            "safetensors.torch.save_file(model.state_dict(), path)");
        return ERR_CORRUPT;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)p[i] << (8 * i);
    if (hl > ST_MAX_HEADER && hl <= len - 8) {
        say(why, cap,
            "the first 8 bytes give a header of %llu bytes: more than the %u vigild reads",
            (unsigned long long)hl, ST_MAX_HEADER);
        return ERR_CORRUPT;
    }
    if (hl > len - 8) {
        say(why, cap,
            "the first 8 bytes give a header of %llu bytes: more than the body's %zu (not a "
            "safetensors file, or cut short)",
            (unsigned long long)hl, len - 8);
        return ERR_CORRUPT;
    }
    int n = parse_header((const char *)p + 8, (size_t)hl, t, ST_MAX_TENSORS);
    if (n == ST_TOO_MANY) {
        say(why, cap,
            "the header names more than %d tensors: save only the state_dict of the module "
            "holding lstm and fc (and input_mean, input_scale)",
            ST_MAX_TENSORS);
        return ERR_CORRUPT;
    }
    if (n < 0) {
        say(why, cap, "the header is not the JSON of a safetensors file");
        return ERR_CORRUPT;
    }
    /* A name given twice (JSON allows it, safetensors does not): refused, said, rather than
     * the shape read from one and the data from the other (session 67: "malformed"). A name
     * too long for ST_NAME_MAX was skipped by parse_header. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (strcmp(t[i].name, t[j].name) == 0) {
                say(why, cap, "tensor '%s': named twice in the header", t[i].name);
                return ERR_CORRUPT;
            }
            /* "lstm.X" and a bare "X" are one tensor to find() and the shape below: both given,
             * which one counts would depend on the order (read67c). */
            const char *a = t[i].name, *b = t[j].name;
            if ((strncmp(a, "lstm.", 5) == 0 && strcmp(a + 5, b) == 0) ||
                (strncmp(b, "lstm.", 5) == 0 && strcmp(b + 5, a) == 0)) {
                say(why, cap,
                    "tensors '%s' and '%s': one tensor given twice, with and without "
                    "the 'lstm.' prefix",
                    a, b);
                return ERR_CORRUPT;
            }
        }
    struct st_ctx c = {t, n, p + 8 + hl, len - 8 - hl};

    /* The shape, from layer 0 and the head. */
    const struct st_in *w0 = NULL, *hh0 = NULL, *fw = NULL;
    for (int i = 0; i < n; i++) {
        const char *nm = t[i].name;
        if (strcmp(nm, "lstm.weight_ih_l0") == 0 || strcmp(nm, "weight_ih_l0") == 0)
            w0 = &t[i];
        if (strcmp(nm, "lstm.weight_hh_l0") == 0 || strcmp(nm, "weight_hh_l0") == 0)
            hh0 = &t[i];
        if (strcmp(nm, "fc.weight") == 0)
            fw = &t[i];
    }
    if (!w0 || !hh0 || !fw) {
        say_missing(&c,
                    !w0    ? "lstm.weight_ih_l0"
                    : !hh0 ? "lstm.weight_hh_l0"
                           : "fc.weight",
                    why, cap);
        return ERR_CORRUPT;
    }
    if (w0->ndim != 2 || hh0->ndim != 2 || fw->ndim != 2) {
        const struct st_in *b = w0->ndim != 2 ? w0 : hh0->ndim != 2 ? hh0 : fw;
        say(why, cap, "tensor '%s': %d dimensions, want 2", b->name, b->ndim);
        return ERR_CORRUPT;
    }
    struct model_config cfg = {0};
    if (w0->shape[0] % 4 != 0 || w0->shape[0] / 4 > MODEL_MAX_HIDDEN ||
        w0->shape[1] > MODEL_MAX_INPUTS || fw->shape[0] > MODEL_MAX_INPUTS) {
        say(why, cap,
            "tensors 'lstm.weight_ih_l0' [%llu,%llu] and 'fc.weight' [%llu,%llu]: not an LSTM "
            "vigild can serve (4 x hidden rows, hidden at most %d, at most %d inputs and outputs)",
            (unsigned long long)w0->shape[0], (unsigned long long)w0->shape[1],
            (unsigned long long)fw->shape[0], (unsigned long long)fw->shape[1], MODEL_MAX_HIDDEN,
            MODEL_MAX_INPUTS);
        return ERR_CORRUPT;
    }
    cfg.n_hidden = (int)(w0->shape[0] / 4);
    if (fw->shape[1] != (uint64_t)cfg.n_hidden) { /* before the config check: say why */
        /* transposed: find says so. It can find a tensor (a second 'fc.weight' of that
         * shape, the header's names not being unique): then the plain reason. */
        if (fw->shape[0] != (uint64_t)cfg.n_hidden ||
            find(&c, "fc.weight", fw->shape[1], fw->shape[0], why, cap))
            say(why, cap,
                "tensor 'fc.weight': shape [%llu,%llu], want [outputs,%d] (hidden %d, "
                "as 'lstm.weight_ih_l0' [4 x hidden, inputs] gives it)",
                (unsigned long long)fw->shape[0], (unsigned long long)fw->shape[1], cfg.n_hidden,
                cfg.n_hidden);
        return ERR_CORRUPT;
    }
    cfg.n_inputs = (int)w0->shape[1];
    cfg.n_outputs = (int)fw->shape[0];
    cfg.n_layers = 1;
    while (cfg.n_layers < MODEL_MAX_LAYERS) {
        char nm[32];
        snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", cfg.n_layers);
        if (!exists(&c, nm))
            break;
        cfg.n_layers++;
    }
    cfg.seed = 0;
    if (model__config_check(&cfg) < 0) {
        say(why, cap, "inputs %d, hidden %d, layers %d, outputs %d: not an LSTM vigild can serve",
            cfg.n_inputs, cfg.n_hidden, cfg.n_layers, cfg.n_outputs);
        return ERR_CORRUPT;
    }
    const uint64_t H = (uint64_t)cfg.n_hidden, G = 4 * H, I = (uint64_t)cfg.n_inputs;
    const uint64_t O = (uint64_t)cfg.n_outputs;
    /* Every tensor is found and checked (dtype, shape, bytes within the data) before the model
     * is allocated: the shapes come from the header, so a header of a few hundred bytes could
     * name the largest model (92 M parameters, 370 MB) and make a PUT of 383 bytes allocate and
     * initialise all of it only to fail here (session 26). Now a model is allocated only for
     * tensors whose bytes the body holds. */
    const struct st_in *lt[MODEL_MAX_LAYERS][4];
    for (int l = 0; l < cfg.n_layers; l++) {
        char n1[32], n2[32], n3[32], n4[32];
        snprintf(n1, sizeof n1, "lstm.weight_ih_l%d", l);
        snprintf(n2, sizeof n2, "lstm.weight_hh_l%d", l);
        snprintf(n3, sizeof n3, "lstm.bias_ih_l%d", l);
        snprintf(n4, sizeof n4, "lstm.bias_hh_l%d", l);
        const uint64_t in = l == 0 ? I : H;
        const char *nm[4] = {n1, n2, n3, n4};
        const uint64_t d0[4] = {G, G, G, G}, d1[4] = {in, H, 0, 0};
        for (int k = 0; k < 4; k++)
            if (!(lt[l][k] = find(&c, nm[k], d0[k], d1[k], why, cap)))
                return ERR_CORRUPT;
    }
    const struct st_in *fwt = find(&c, "fc.weight", O, H, why, cap);
    const struct st_in *fb = fwt ? find(&c, "fc.bias", O, 0, why, cap) : NULL;
    if (!fwt || !fb)
        return ERR_CORRUPT;
    const struct st_in *mu = NULL, *sc = NULL;
    if (exists(&c, "input_mean") != exists(&c, "input_scale")) {
        say(why, cap,
            "tensor '%s' without '%s': give both (the module's normalisation buffers) or "
            "neither (the inputs are then used as they are)",
            exists(&c, "input_mean") ? "input_mean" : "input_scale",
            exists(&c, "input_mean") ? "input_scale" : "input_mean");
        return ERR_CORRUPT;
    }
    if (exists(&c, "input_mean")) {
        mu = find(&c, "input_mean", I, 0, why, cap);
        sc = mu ? find(&c, "input_scale", I, 0, why, cap) : NULL;
        if (!mu || !sc)
            return ERR_CORRUPT;
    }
    model_t *m;
    int rc = model_create(&m, &cfg);
    if (rc < 0)
        return rc;
    const struct st_in *bad = NULL, *b;
    for (int l = 0; l < cfg.n_layers; l++) {
        const size_t in = (size_t)m->in[l], K = (size_t)m->k[l];
        b = copy_in(&c, lt[l][0], m->p.w[l], G, in, K);
        bad = bad ? bad : b;
        b = copy_in(&c, lt[l][1], m->p.w[l] + in, G, H, K);
        bad = bad ? bad : b;
        b = copy_in(&c, lt[l][2], m->p.b_ih[l], 1, G, G);
        bad = bad ? bad : b;
        b = copy_in(&c, lt[l][3], m->p.b_hh[l], 1, G, G);
        bad = bad ? bad : b;
    }
    b = copy_in(&c, fwt, m->p.fc_w, O, H, H);
    bad = bad ? bad : b;
    b = copy_in(&c, fb, m->p.fc_b, 1, O, O);
    bad = bad ? bad : b;
    if (mu) {
        b = copy_in(&c, mu, m->mean, 1, I, I);
        bad = bad ? bad : b;
        b = copy_in(&c, sc, m->scale, 1, I, I);
        bad = bad ? bad : b;
    }
    if (bad) {
        say(why, cap, "tensor '%s': a value that is not finite (NaN or infinity)", bad->name);
        model_destroy(m);
        return ERR_CORRUPT;
    }
    for (size_t i = 0; mu && i < I; i++) {
        if (!(m->scale[i] > 0.0f)) {
            say(why, cap, "tensor 'input_scale': a value not above 0");
            model_destroy(m);
            return ERR_CORRUPT;
        }
    }
    say_unused(&c, cfg.n_layers, why, cap);
    *out = m;
    return 0;
}
