/* api/influxql_params.c: /query's params parameter, influxd's bound parameters: the JSON object
 * of names and values read as influxd's handler decodes it (api__iq_params_asked, with Go's
 * json.Number refusals found in its text: api__iq_go_numbers, api__iq_refused_zeroed), each
 * value made once into the token its name binds to (api__iq_params_bind: name -> [kind, text]
 * or [kind, text, enum qform]), and a "$name" the reader reads replaced by that token
 * (api__qs_bind, called by influxql.c's api__qs_next), as influxd 1.6.7 binds them; and the
 * chunk_size parameter (api__iq_chunk_size_asked); and every /query parameter found as influxd's
 * r.FormValue finds it (api__iq_form_raw). Any thread; no state, no lock. */
#include "influxql.h"
#include "api_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sets the token a parameter binds to: kind and text (copied into a JSON string). Returns 0, or
 * -1 when out of memory. */
static int bind_set(json_t *bound, const char *name, enum qtok kind, const char *text)
{
    json_t *pair = json_pack("[is]", (int)kind, text);
    return pair == NULL || json_object_set_new(bound, name, pair) ? -1 : 0;
}

/* Binds name to a token of kind and text, of the form as (qtoken_t.form). Returns
 * 0, or -1 when out of memory. */
static int bind_as(json_t *bound, const char *name, enum qtok kind, const char *text, enum qform as)
{
    json_t *pair = json_pack("[isi]", (int)kind, text, (int)as);
    return pair == NULL || json_object_set_new(bound, name, pair) ? -1 : 0;
}

/* Binds name to a duration token (QF_DURATION) of text, whatever it holds. */
static int bind_duration(json_t *bound, const char *name, const char *text)
{
    return bind_as(bound, name, QT_NUMBER, text, QF_DURATION);
}

/* Binds name to the regex pattern (QF_REGEX: "$pattern"). */
static int bind_regex(json_t *bound, const char *name, const char *pattern)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "$%s", pattern);
    int rc = b.oom ? -1 : bind_as(bound, name, QT_OTHER, b.data, QF_REGEX);
    sbuf_deinit(&b);
    return rc;
}

/* Binds the parameter name to a value influxd cannot bind: a token still "$", its name
 * influxd's reason (why, then arg), which api__q_unbound answers as "missing parameter: why". */
static int bind_error(json_t *bound, const char *name, const char *why, const char *arg)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "$%s%s", why, arg ? arg : "");
    int rc = b.oom ? -1 : bind_as(bound, name, QT_OTHER, b.data, QF_ERROR);
    sbuf_deinit(&b);
    return rc;
}

/* Binds name to the number v as influxd's scanner would read it: "2.5", "-1.0e+300" (always a
 * '.', so a NUMBER, not an INTEGER, and the digits exact). */
static int bind_number(json_t *bound, const char *name, double v)
{
    char g[40]; /* a double in %.17g: at most 24 bytes, 26 with ".0" */
    snprintf(g, sizeof g, "%.17g", v);
    if (strchr(g, '.') == NULL) {
        char *e = strchr(g, 'e'); /* "1e+300": "1.0e+300" */
        size_t at = e ? (size_t)(e - g) : strlen(g);
        memmove(g + at + 2, g + at, strlen(g + at) + 1);
        memcpy(g + at, ".0", 2);
    }
    return bind_set(bound, name, QT_NUMBER, g);
}

/* Binds name to the JSON value v as influxd 1.6.7 binds a parameter when it scans it
 * (influxql's BindValue): a string is a string token, an integer or a number (JSON with a '.':
 * api__iq_params_asked) a number token, true and false the keywords; an object of one entry
 * {"identifier" or "ident": name}, {"string": s}, {"integer" or "int": n}, {"number": x} or
 * {"duration": "1h" or ns} that token. Otherwise influxd's reason (null, a list, another
 * object); a regex object too, which vigild does not bind (its reader takes a regex from the
 * query's text). Returns 0, or -1 when out of memory. */
static int bind_value(json_t *bound, const char *name, const json_t *v, const char *refused)
{
    char num[40];
    if (json_is_string(v))
        return bind_set(bound, name, QT_STRING, json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return bind_set(bound, name, QT_NUMBER, num);
    }
    if (json_is_real(v))
        return bind_number(bound, name, json_real_value(v));
    if (json_is_boolean(v))
        return bind_set(bound, name, QT_KEYWORD, json_is_true(v) ? "TRUE" : "FALSE");
    if (json_is_null(v) || json_is_array(v))
        return bind_error(bound, name, "unable to bind parameter with type ",
                          json_is_null(v) ? "<nil>" : "[]interface {}");
    if (json_object_size(v) != 1)
        return bind_error(bound, name, "bound object parameter value must have exactly one entry",
                          NULL);
    if (refused != NULL) /* its number is one Go's json.Number refuses (api__iq_go_numbers) */
        return bind_error(bound, name, refused, NULL);
    void *it = json_object_iter((json_t *)v);
    const char *k = json_object_iter_key(it);
    const json_t *x = json_object_iter_value(it);
    if (strcmp(k, "identifier") == 0 || strcmp(k, "ident") == 0)
        return json_is_string(x)
                   ? bind_set(bound, name, QT_IDENT, json_string_value(x))
                   : bind_error(bound, name, "identifier must be a string value", NULL);
    if (strcmp(k, "string") == 0)
        return json_is_string(x)
                   ? bind_set(bound, name, QT_STRING, json_string_value(x))
                   : bind_error(bound, name, "string literal must be a string value", NULL);
    if (strcmp(k, "integer") == 0 || strcmp(k, "int") == 0) {
        if (!json_is_integer(x))
            return bind_error(bound, name, "integer literal must be an integer value", NULL);
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
        return bind_set(bound, name, QT_NUMBER, num);
    }
    if (strcmp(k, "number") == 0)
        return json_is_number(x)
                   ? bind_number(bound, name, json_number_value(x))
                   : bind_error(bound, name, "number literal must be a float value", NULL);
    if (strcmp(k, "duration") == 0) {
        if (json_is_integer(x)) { /* -5: "-5ns", a negative duration as influxd binds it */
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT "ns", json_integer_value(x));
            return bind_duration(bound, name, num);
        }
        if (json_is_string(x)) /* read where influxd reads it: "1.5h" its "invalid duration" */
            return bind_duration(bound, name, json_string_value(x));
        return bind_error(bound, name, "duration literal must be a string or integer value",
                          NULL); /* 1.5, true: influxd's words */
    }
    if (strcmp(k, "regex") == 0)
        return json_is_string(x)
                   ? bind_regex(bound, name, json_string_value(x))
                   : bind_error(bound, name, "regex literal must be a string value", NULL);
    return bind_error(bound, name, "unknown bind object type: ", k);
}

/* The tokens params' names bind to, made once for the query (the readers scan a token again
 * and again, and a string may be as long as the body): name -> [kind, text] or [kind, text,
 * enum qform]. refused: NULL, or names -> Go's error for their object's number
 * (api__iq_go_numbers). Caller owns: json_decref. Returns NULL when out of memory. */
json_t *api__iq_params_bind(const json_t *params, const json_t *refused)
{
    json_t *bound = json_object();
    const char *name;
    const json_t *v;
    if (bound == NULL)
        return NULL;
    json_object_foreach((json_t *)params, name, v)
    {
        const char *why = refused ? json_string_value(json_object_get(refused, name)) : NULL;
        if (bind_value(bound, name, v, why)) {
            json_decref(bound);
            return NULL;
        }
    }
    return bound;
}

/* Binds the parameter t ("$name", just read from s) as api__iq_params_bind made it: t is then the
 * token of its value (its text borrowed from the binding, which outlives the query's reading);
 * a name not bound leaves it "$name" (api__q_unbound's error where a value goes). */
void api__qs_bind(qscan_t *s, qtoken_t *t)
{
    const json_t *b = s->mem->params ? json_object_get(s->mem->params, t->text + 1) : NULL;
    if (b == NULL || t->len == 1)
        return;
    const json_t *text = json_array_get(b, 1);
    t->kind = (enum qtok)json_integer_value(json_array_get(b, 0));
    t->form = (enum qform)json_integer_value(json_array_get(b, 2)); /* none: 0, QF_NONE */
    t->text = json_string_value(text);
    t->len = json_string_length(text);
}

/* Go's error for the JSON number n (len bytes), as influxd's jsonNumberToValue converts a
 * json.Number: with a '.', strconv.ParseFloat (an overflow its "value out of range"); else
 * strconv.ParseInt ("1e5": "invalid syntax"; past int64: "value out of range"). Into why;
 * returns 1 when Go refuses it, else 0. */
static int go_number_refused(const char *n, size_t len, sbuf_t *why)
{
    int dot = memchr(n, '.', len) != NULL;
    const char *err = NULL;
    if (!dot && strcspn(n, "eE") < len) {
        err = "invalid syntax";
    } else {
        char *text = strndup(n, len);
        if (text == NULL)
            return 0; /* out of memory: bound as jansson read it */
        errno = 0;
        if (dot)
            (void)strtod(text, NULL);
        else
            (void)strtoll(text, NULL, 10);
        if (errno == ERANGE && (!dot || isinf(strtod(text, NULL))))
            err = "value out of range"; /* Go's ParseFloat takes an underflow (0) */
        free(text);
    }
    if (err == NULL)
        return 0;
    sbuf_printf(why, "strconv.Parse%s: parsing \"%.*s\": %s", dot ? "Float" : "Int", (int)len, n,
                err);
    return 1;
}

/* The JSON string token [key, key_end) decoded, or NULL (no string jansson reads, or out of
 * memory: the name then not refused, bound as jansson read it). Caller: json_decref. */
static json_t *go_key(const char *key, const char *key_end)
{
    json_t *name = json_loadb(key, (size_t)(key_end - key), JSON_DECODE_ANY, NULL);
    if (name != NULL && !json_is_string(name)) {
        json_decref(name);
        return NULL;
    }
    return name;
}

static int go_numbers_walk(const char *text, json_t *tops, json_t *refused)
{
    int depth = 0, key_next = 0;
    const char *key = NULL, *key_end = NULL; /* the last name of the top object, quoted */
    char open[2] = {0, 0};                   /* the containers at depths 1 and 2 */
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '"') {
            const char *start = p;
            for (p++; *p != '"' && *p != '\0'; p++)
                if (*p == '\\' && p[1] != '\0')
                    p++;
            if (*p == '\0')
                return 0;
            if (depth == 1 && key_next) {
                key = start;
                key_end = p + 1;
                key_next = 0;
                if (json_object_size(tops) + json_object_size(refused) > 0) {
                    /* a name again: Go's map keeps its last value, and only its refusal */
                    json_t *name = go_key(key, key_end);
                    if (name != NULL) {
                        json_object_del(tops, json_string_value(name));
                        json_object_del(refused, json_string_value(name));
                    }
                    json_decref(name);
                }
            }
        } else if (*p == '{' || *p == '[') {
            if (depth < 2)
                open[depth] = *p;
            depth++;
            key_next = depth == 1;
        } else if (*p == '}' || *p == ']') {
            if (--depth <= 0)
                return 0; /* the first value read: what follows is not influxd's */
        } else if (*p == ',') {
            key_next = depth == 1;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            size_t len = strspn(p, "-+.eE0123456789");
            sbuf_t why;
            sbuf_init(&why);
            int bad = key != NULL && open[0] == '{' &&
                      (depth == 1 || (depth == 2 && open[1] == '{')) &&
                      go_number_refused(p, len, &why);
            int rc = why.oom ? -1 : 0;
            if (bad && rc == 0) {
                json_t *name = go_key(key, key_end);
                json_t *w = json_string(why.data);
                if (name != NULL && (w == NULL || json_object_set(depth == 1 ? tops : refused,
                                                                  json_string_value(name), w)))
                    rc = -1;
                json_decref(name);
                json_decref(w);
            }
            sbuf_deinit(&why);
            if (rc)
                return -1;
            p += len - 1;
        }
    }
    return 0;
}

/* Walks the JSON object text (the first value of params, which jansson read, or read up to a
 * number it refused) for the numbers Go's json.Number conversion refuses where influxd converts
 * them: a value of the object (influxd's 400 "error parsing json value: ...", into *top), or the
 * value of a one-entry object that is one (a bind error for its name: into refused, name ->
 * Go's words). Returns 0, or -1 when out of memory. A name given
 * again keeps only its last value's refusal, as Go's map its last value. Any thread. */
int api__iq_go_numbers(const char *text, sbuf_t *top, json_t *refused)
{
    json_t *tops = json_object(); /* name -> Go's error, for the values of the object */
    int rc = tops == NULL ? -1 : go_numbers_walk(text, tops, refused);
    if (rc == 0 && json_object_size(tops) > 0) { /* Go's map order is random: any of them */
        void *it = json_object_iter(tops);
        sbuf_printf(top, "%s", json_string_value(json_object_iter_value(it)));
        rc = top->oom ? -1 : 0;
    }
    json_decref(tops);
    return rc;
}

/* The length of the JSON number (RFC 8259's grammar) at p, or 0 when none starts there. */
static size_t json_number_len(const char *p)
{
    const char *q = p + (*p == '-');
    if (*q == '0')
        q++;
    else if (*q >= '1' && *q <= '9')
        while (api__q_digit(*q))
            q++;
    else
        return 0;
    if (*q == '.' && api__q_digit(q[1]))
        for (q++; api__q_digit(*q); q++)
            ;
    if ((*q == 'e' || *q == 'E') &&
        (api__q_digit(q[1]) || ((q[1] == '+' || q[1] == '-') && api__q_digit(q[2])))) {
        q += 2;
        while (api__q_digit(*q))
            q++;
    }
    return (size_t)(q - p);
}

/* A copy of the params text with each number jansson refuses (an integer past int64, a float
 * past double: "too big integer", "real number overflow") written as 0 and blanks, outside
 * strings, so that jansson reads the rest as Go's decoder does (whose conversion of those
 * numbers comes after the whole value is read: api__iq_go_numbers refuses each). Caller frees; NULL
 * when out of memory. */
char *api__iq_refused_zeroed(const char *text)
{
    char *out = strdup(text);
    if (out == NULL)
        return NULL;
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '"') {
            for (p++; *p != '"' && *p != '\0'; p++)
                if (*p == '\\' && p[1] != '\0')
                    p++;
            if (*p == '\0')
                break;
            continue;
        }
        size_t len = json_number_len(p);
        if (len == 0)
            continue;
        char c = p[len];
        p[len] = '\0';
        errno = 0;
        if (strcspn(p, ".eE") == len)
            (void)strtoll(p, NULL, 10);
        else if (!isinf(strtod(p, NULL)))
            errno = 0;
        int refused = errno == ERANGE;
        p[len] = c;
        if (refused) {
            p[0] = '0';
            memset(p + 1, ' ', len - 1);
        }
        p += len - 1;
    }
    return out;
}

/* Reads the params parameter (the URL's, else a form body's), influxd's bound parameters: a
 * JSON object of names and values, as influxd's handler decodes it: the first JSON value,
 * whatever follows it; null binds nothing. Into *params the tokens they bind to
 * (api__iq_params_bind; caller owns: json_decref; NULL when absent or empty). Returns 0, or answers
 * influxd's 400 and -1: another JSON value (Go's words), or text that is no JSON (at its end Go's
 * "EOF" or "unexpected EOF"; elsewhere jansson's words, not Go's). */
int api__iq_params_asked(api_request_t *r, json_t **params)
{
    *params = NULL;
    const char *v;
    size_t vlen;
    if (!api__iq_form_raw(r, "params", &v, &vlen))
        return 0;
    char *text = malloc(vlen + 1);
    if (text == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    if (api__pct_decode(v, vlen, text, vlen + 1, 1) < 0) {
        free(text);
        api__error(r, 400, "error parsing query parameters: a NUL byte");
        return -1;
    }
    if (text[0] == '\0') {
        free(text); /* influxd's r.FormValue("params") == "": none */
        return 0;
    }
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &err);
    /* Numbers Go's json.Number conversion refuses (api__iq_go_numbers): one that is a value of the
     * object is influxd's 400 (jansson refuses the integers past int64 itself); one that is the
     * value of a one-entry object binds its name to Go's error. */
    sbuf_t top;
    sbuf_init(&top);
    json_t *refused = json_object();
    int rc = refused == NULL ? -1 : 0;
    if (rc == 0 && j == NULL &&
        (strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL)) {
        /* Go reads the whole value before it converts a number: a syntax error after one
         * jansson refuses is its answer (jansson's words); else the value, those numbers 0
         * (api__iq_go_numbers refuses each where influxd converts it; elsewhere a value of no kind
         * influxd binds holds it, bound by its kind alone) */
        char *zeroed = api__iq_refused_zeroed(text);
        json_error_t syntax;
        j = zeroed == NULL ? NULL
                           : json_loads(zeroed, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &syntax);
        if (zeroed == NULL)
            rc = -1;
        else if (j == NULL)
            err = syntax; /* answered below, as any other */
        free(zeroed);
    }
    if (rc == 0 && j != NULL && json_is_object(j))
        rc = api__iq_go_numbers(text, &top, refused);
    if (rc == 0 && top.len > 0) {
        api__error(r, 400, "error parsing json value: %s", top.data);
        rc = 1;
    } else if (rc == 0 && j == NULL) {
        size_t blank = strspn(text, " \t\r\n");
        if (strstr(err.text, "end of file") != NULL || strstr(err.text, "premature end") != NULL)
            api__error(r, 400, "error parsing query parameters: %s",
                       text[blank] == '\0' ? "EOF" : "unexpected EOF");
        else
            api__error(r, 400, "error parsing query parameters: %s", err.text);
        rc = 1;
    } else if (rc == 0 && json_is_object(j)) {
        *params = api__iq_params_bind(j, refused);
        rc = *params == NULL ? -1 : 2;
    }
    sbuf_deinit(&top);
    json_decref(refused);
    free(text);
    if (rc != 0) {
        json_decref(j); /* NULL: nothing */
        if (rc < 0)
            api__error(r, 500, "out of memory");
        return rc == 2 ? 0 : -1;
    }
    const char *type = json_is_array(j)    ? "array"
                       : json_is_string(j) ? "string"
                       : json_is_number(j) ? "number"
                       : json_is_null(j)   ? NULL
                                           : "bool";
    json_decref(j);
    if (type == NULL)
        return 0; /* null: nothing bound */
    api__error(r, 400,
               "error parsing query parameters: json: cannot unmarshal %s into Go value of type "
               "map[string]interface {}",
               type);
    return -1;
}

/* The byte of the form-encoded value s (n bytes) at *i, decoded as api__pct_decode decodes it
 * ("%2B" '+', '+' a blank, a '%' not followed by two hex digits itself); moves *i past it. */
static int form_byte(const char *s, size_t n, size_t *i)
{
    int h = -1, l = -1;
    if (s[*i] == '%' && *i + 2 < n) {
        h = api__hexval(s[*i + 1]);
        l = api__hexval(s[*i + 2]);
    }
    if (h >= 0 && l >= 0) {
        *i += 3;
        return h * 16 + l;
    }
    *i += 1;
    return s[*i - 1] == '+' ? ' ' : (unsigned char)s[*i - 1];
}

long long api__iq_chunk_size_asked(api_request_t *r)
{
    /* Read as it is decoded, a byte at a time: Go's ParseInt takes any number of leading zeros,
     * and a value may be as long as the URL (http.max_header_bytes) or a form body. */
    const char *v;
    size_t n, i = 0;
    if (!api__iq_form_raw(r, "chunk_size", &v, &n))
        return API_IQ_CHUNK_DEFAULT;
    int c = i < n ? form_byte(v, n, &i) : -1, neg = c == '-', digits = 0;
    if (c == '+' || c == '-')
        c = i < n ? form_byte(v, n, &i) : -1;
    long long size = 0;
    for (; c >= '0' && c <= '9'; c = i < n ? form_byte(v, n, &i) : -1, digits++) {
        if (size > (LLONG_MAX - (c - '0')) / 10)
            return API_IQ_CHUNK_DEFAULT; /* ParseInt's range error (LLONG_MIN: not above 0) */
        size = size * 10 + (c - '0');
    }
    if (c != -1 || digits == 0 || neg || size == 0)
        return API_IQ_CHUNK_DEFAULT; /* ParseInt's syntax error, or not above 0 */
    return size;
}

/* ---- /query's parameters, read as influxd's r.FormValue reads them --------------------------
 * Go's http.Request.ParseForm (Go 1.19, Debian's influxd 1.6.7) reads a form body's pairs, then
 * the URL's, each with url.ParseQuery: pairs end at '&', and one holding a ';' is dropped (no
 * longer a separator since Go 1.17); a pair without '=' has the value ""; its name and its value
 * are both unescaped ('+' a space), and a pair either of which holds an escape QueryUnescape
 * refuses ('%' without two hex digits) is dropped; FormValue is the first value kept for the
 * name. */

/* Whether v (n bytes) holds an escape Go's QueryUnescape refuses. */
static int go_bad_escape(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '%' && (i + 2 >= n || api__hexval(v[i + 1]) < 0 || api__hexval(v[i + 2]) < 0))
            return 1;
    return 0;
}

/* The parameters /query reads (api_request_t's iq_form_v, in this order). */
static const char *const form_names[API_IQ_FORM_N] = {"q",       "db",         "rp",    "epoch",
                                                      "chunked", "chunk_size", "params"};

int api__iq_form_slot(const char *name)
{
    for (int i = 0; i < API_IQ_FORM_N; i++)
        if (strcmp(name, form_names[i]) == 0)
            return i;
    return -1;
}

/* Takes the pair key (klen bytes) = v (vlen bytes) into r's iq_form_v if its name is one of
 * form_names not found yet and ParseQuery keeps it. Only the name is read for any other pair, so
 * every pair costs its name's bytes, not its value's. */
static void form_pair(api_request_t *r, const char *key, size_t klen, const char *v, size_t vlen)
{
    char name[16]; /* a longer name decodes to none /query reads */
    if (api__pct_decode(key, klen, name, sizeof name, 1) < 0)
        return;
    int i = api__iq_form_slot(name);
    if (i < 0 || r->iq_form_v[i] != NULL || memchr(key, ';', klen) || memchr(v, ';', vlen) ||
        go_bad_escape(key, klen) || go_bad_escape(v, vlen))
        return;
    r->iq_form_v[i] = v;
    r->iq_form_len[i] = vlen;
}

/* Reads the pairs of a form body (n bytes, key=value or key, ending at '&') into r. */
static void form_body(api_request_t *r, const char *text, size_t n)
{
    for (size_t at = 0, end; at < n; at = end + 1) {
        const char *amp = memchr(text + at, '&', n - at);
        end = amp ? (size_t)(amp - text) : n;
        const char *eq = memchr(text + at, '=', end - at);
        if (eq == NULL)
            form_pair(r, text + at, end - at, "", 0);
        else
            form_pair(r, text + at, (size_t)(eq - text - at), eq + 1,
                      (size_t)(text + end - eq - 1));
    }
}

/* One of libmicrohttpd's URL pairs, cut as ParseQuery cuts them (at '&' and the first '='; raw:
 * server.c's unescape_none; NULL value: no '='), into the request cls. */
static enum MHD_Result form_url_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    form_pair(cls, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
    return MHD_YES;
}

/* How Go's ParseForm and ParseMultipartForm read r's body: 1, a form (a POST, PUT or PATCH
 * whose Content-Type's media type, as mime.ParseMediaType reads it: before any ';', blanks
 * trimmed, any case, is application/x-www-form-urlencoded); 2, multipart/form-data (any method:
 * ParseMultipartForm asks none); 0, another body (none, text/plain, JSON), which influxd leaves
 * to the URL. */
static int form_typed(const api_request_t *r)
{
    static const char form[] = "application/x-www-form-urlencoded", mp[] = "multipart/form-data";
    if (r->conn == NULL)
        return 0;
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL)
        return 0;
    ct += strspn(ct, " \t");
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == sizeof mp - 1 && strncasecmp(ct, mp, n) == 0)
        return 2;
    if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0 &&
        strcmp(r->method, "PATCH") != 0)
        return 0;
    return n == sizeof form - 1 && strncasecmp(ct, form, n) == 0;
}

int api__iq_form_raw(api_request_t *r, const char *name, const char **v, size_t *vlen)
{
    if (!r->iq_form_read) { /* a form's pairs, then the URL's, then a multipart body's values:
                             * the first kept wins */
        r->iq_form_read = 1;
        int typed = r->body != NULL ? form_typed(r) : 0;
        if (typed == 1)
            form_body(r, r->body, r->len);
        if (r->conn != NULL)
            MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, form_url_pair, r);
        if (typed == 2 && api__iq_multipart(r, &r->iq_mp_err) < 0)
            api__error(r, 500, "out of memory");
    }
    for (int i = 0; i < API_IQ_FORM_N; i++)
        if (strcmp(name, form_names[i]) == 0 && r->iq_form_v[i] != NULL) {
            *v = r->iq_form_v[i];
            *vlen = r->iq_form_len[i];
            return 1;
        }
    *v = NULL;
    *vlen = 0;
    return 0;
}

const char *api__iq_form_value(api_request_t *r, const char *name, char *buf, size_t size)
{
    const char *v;
    size_t vlen;
    if (!api__iq_form_raw(r, name, &v, &vlen))
        return NULL;
    return api__pct_decode(v, vlen, buf, size, 1) >= 0 ? buf : NULL;
}

const char *api__iq_arg(api_request_t *r, const char *name, char *buf, size_t size)
{
    const char *v;
    size_t vlen;
    if (!api__iq_form_raw(r, name, &v, &vlen))
        return NULL;
    if (api__pct_decode(v, vlen, buf, size, 1) < 0) {
        /* api__arg's answer: a parameter the client sent is never ignored */
        api__error(r, 400, "parameter '%s': longer than %zu bytes or holds a NUL byte", name,
                   size - 1);
        return NULL;
    }
    return buf;
}
