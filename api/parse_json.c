/* api/parse_json.c: JSON readings (POST /v1/readings) into a batch_t, with jansson.
 *
 * The body is decoded whole by jansson (duplicate keys refused, trailing garbage refused), then
 * each item is checked completely before anything of it enters the batch, so a bad item adds
 * nothing and names the field at fault ("values.temp: not a number"). jansson itself refuses
 * NaN, Infinity and numbers too large for a double, so every real it yields is finite.
 *
 * Threading: any thread, pure (no globals, no I/O); the batch is the caller's. */
#include "parse.h"
#include "err.h"
#include "vtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Names the range, so that a timestamp in seconds or nanoseconds is recognised as such. */
static const char out_of_range[] = "out of range: epoch milliseconds between 1970 and 9999";
/* A number in [VTIME_SECS_LO, VTIME_SECS_HI) (common/vtime.h): epoch seconds sent as ms
 * are 1.7e9 today, a date in January 1970 that was stored, answered {"accepted":1} and scored
 * as such. An RFC 3339 string of that time stays accepted (it names its unit). A device's
 * milliseconds since boot land here too after about 28 hours of uptime (before: accepted). */
static const char looks_like_seconds[] =
    VTIME_SECS_WHY " (or a counter of milliseconds since a device's boot); send epoch milliseconds "
                   "or an RFC 3339 string";

/* Past 9999 in milliseconds: out_of_range, and vtime_epoch_hint's "looks like epoch
 * microseconds: send milliseconds, e.g. N" (or nanoseconds) when the number is in either unit's
 * range, as from=/to= say it (vtime_parse_why). The readings decode every number as a double,
 * exact to 256 ns at today's ns, so their example may be 1 ms later than the nanoseconds
 * truncated (it is an example). The message is in a thread-local buffer, valid until the
 * thread's next call: concurrent callers each keep their own. */
static const char *past_9999(int is_int, json_int_t iv, double dv)
{
    static _Thread_local char buf[192];
    char hint[VTIME_EPOCH_HINT_MAX];
    if (vtime_epoch_hint(is_int, iv, dv, hint, sizeof hint) == NULL)
        return out_of_range;
    snprintf(buf, sizeof buf, "%s; %s", out_of_range, hint);
    return buf;
}

int parse_json_time(const json_t *ts, int64_t *ms, const char **why)
{
    if (json_is_string(ts)) {
        int rc = vtime_parse_rfc3339(json_string_value(ts), json_string_length(ts), ms);
        const char *s = json_string_value(ts);
        const size_t n = json_string_length(ts);
        /* "1796635000000" (or "1796635000000.5"): a number in quotes, which is neither (session
         * 65). Digits first, at most one '.': "..." is no number. */
        const size_t d = strspn(s, "0123456789");
        if (rc && d > 0 &&
            (d == n || (s[d] == '.' && strspn(s + d + 1, "0123456789") == n - d - 1))) {
            *why = "digits in a string: send epoch milliseconds as a JSON number (no quotes), or "
                   "an RFC 3339 string";
            return ERR_INVAL;
        }
        if (rc) {
            *why = vtime_rfc3339_why(json_string_value(ts), json_string_length(ts), rc);
            return ERR_INVAL;
        }
        return 0;
    }
    if (json_is_integer(ts)) {
        json_int_t v = json_integer_value(ts);
        if (v < VTIME_MIN_MS || v > VTIME_MAX_MS) {
            *why = v > VTIME_MAX_MS ? past_9999(1, v, 0) : VTIME_BEFORE_1970_WHY;
            return ERR_INVAL;
        }
        if (vtime_looks_like_secs((double)v)) { /* exact: v is at most VTIME_MAX_MS < 2^53 */
            *why = looks_like_seconds;
            return ERR_INVAL;
        }
        *ms = v;
        return 0;
    }
    if (json_is_real(ts)) {
        /* 1.7328e12 is a real to jansson but a whole number of ms: accepted. */
        double d = json_real_value(ts);
        if (!(d >= (double)VTIME_MIN_MS && d <= (double)VTIME_MAX_MS)) {
            *why = d > (double)VTIME_MAX_MS ? past_9999(0, 0, d) : VTIME_BEFORE_1970_WHY;
            return ERR_INVAL;
        }
        /* Before the whole-number check: Python's time.time() (1732780800.123456) is seconds. */
        if (vtime_looks_like_secs(d)) {
            *why = looks_like_seconds;
            return ERR_INVAL;
        }
        if ((double)(int64_t)d != d) {
            *why = "not a whole number of milliseconds";
            return ERR_INVAL;
        }
        *ms = (int64_t)d;
        return 0;
    }
    *why = "not an integer or an RFC 3339 string";
    return ERR_INVAL;
}

/* Reads the optional "ts" member into *ms (now_ms when absent). Returns 0, or ERR_INVAL with the
 * reason in *why. */
static int item_ts(json_t *ts, int64_t now_ms, int64_t *ms, const char **why)
{
    if (ts == NULL) {
        *ms = now_ms;
        return 0;
    }
    return parse_json_time(ts, ms, why);
}

/* Checks one item and adds it as a point. Returns 0, ERR_INVAL (errs gets the reason) or
 * ERR_NOMEM. */
static int item_add(batch_t *b, json_t *item, uint32_t index, int64_t now_ms, parse_errors_t *errs)
{
    if (!json_is_object(item)) {
        parse_errors_add(errs, index, "not an object");
        return ERR_INVAL;
    }
    json_t *dev = NULL, *ts = NULL, *values = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(item, key, v)
    {
        if (strcmp(key, "device") == 0) {
            dev = v;
        } else if (strcmp(key, "ts") == 0) {
            ts = v;
        } else if (strcmp(key, "values") == 0) {
            values = v;
        } else {
            parse_errors_add(errs, index, "%.64s: unknown key", key);
            return ERR_INVAL;
        }
    }
    const char *why;
    if (dev == NULL) {
        parse_errors_add(errs, index, "device: missing");
        return ERR_INVAL;
    }
    if (!json_is_string(dev)) {
        parse_errors_add(errs, index, "device: not a string");
        return ERR_INVAL;
    }
    const char *dev_s = json_string_value(dev);
    size_t dev_len = json_string_length(dev);
    if (batch_name_check(dev_s, dev_len, &why)) {
        parse_errors_add(errs, index, "device: %s", why);
        return ERR_INVAL;
    }
    int64_t ms;
    if (item_ts(ts, now_ms, &ms, &why)) {
        parse_errors_add(errs, index, "ts: %s", why);
        return ERR_INVAL;
    }
    if (values == NULL) {
        parse_errors_add(errs, index, "values: missing");
        return ERR_INVAL;
    }
    if (!json_is_object(values)) {
        parse_errors_add(errs, index, "values: not an object");
        return ERR_INVAL;
    }
    if (json_object_size(values) == 0) {
        parse_errors_add(errs, index, "values: is empty");
        return ERR_INVAL;
    }
    json_object_foreach(values, key, v)
    {
        if (batch_name_check(key, strlen(key), &why)) {
            parse_errors_add(errs, index, "values.%.64s: channel name %s", key, why);
            return ERR_INVAL;
        }
        if (!json_is_number(v)) {
            parse_errors_add(errs, index, "values.%.64s: not a number", key);
            return ERR_INVAL;
        }
        if (!isfinite(json_number_value(v))) {
            parse_errors_add(errs, index, "values.%.64s: not a finite number", key);
            return ERR_INVAL;
        }
    }

    if (batch_point_begin(b, dev_s, dev_len, ms, index))
        return ERR_NOMEM;
    json_object_foreach(values, key, v)
    {
        if (batch_field_add(b, key, strlen(key), json_number_value(v))) {
            batch_point_abort(b);
            return ERR_NOMEM;
        }
    }
    batch_point_commit(b);
    return 0;
}

size_t json_tree_bytes(const char *body, size_t len, size_t *items)
{
    size_t bytes = len, top = 0, depth = 0;
    int array_root = 0, in_value = 0; /* in_value: inside a number or literal's letters */
    for (size_t i = 0; i < len; i++) {
        const char c = body[i];
        if (c == '"') { /* a string or key: one value; skip to its closing quote */
            bytes += JSON_TREE_STRING_BYTES;
            top += depth == 1 && array_root;
            for (i++; i < len && body[i] != '"'; i++)
                i += body[i] == '\\';
            in_value = 0;
        } else if (c == '{' || c == '[') {
            bytes += c == '{' ? JSON_TREE_OBJECT_BYTES : JSON_TREE_ARRAY_BYTES;
            top += depth == 1 && array_root;
            if (depth == 0 && c == '[')
                array_root = 1;
            depth++;
            in_value = 0;
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
            in_value = 0;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            in_value = 0;
        } else if (!in_value) { /* a number, true, false or null begins */
            bytes += JSON_TREE_SCALAR_BYTES;
            top += depth == 1 && array_root;
            in_value = 1;
        }
    }
    *items = array_root ? top : 1;
    return bytes;
}

void parse_json_errmsg(char *buf, size_t size, const json_error_t *jerr, const char *suffix)
{
    /* jansson's own words name its flag ("\\u0000 is not allowed without JSON_ALLOW_NUL"), which
     * a client cannot set: say what was refused instead (session 65). */
    const enum json_error_code code = json_error_code(jerr);
    const char *text = code == json_error_null_character
                           ? "a string holds \\u0000 (NUL), which vigild does not accept"
                       : code == json_error_null_byte_in_key
                           ? "a key holds \\u0000 (NUL), which vigild does not accept"
                           : jerr->text;
    snprintf(buf, size, "invalid JSON at line %d, column %d: %s%s%s", jerr->line, jerr->column,
             text, suffix ? " " : "", suffix ? suffix : "");
}

int parse_json_readings(batch_t *b, const char *body, size_t len, int64_t now_ms, size_t max_items,
                        size_t *nitems, parse_errors_t *errs, char *errmsg, size_t errsize)
{
    *nitems = 0;
    if (body == NULL) /* an empty body may come without a buffer */
        body = "";
    size_t bom = json_bom_len(body, len);
    body += bom;
    len -= bom;
    /* Nothing but blanks (after a mark) is an empty body, said so: jansson's "'[' or '{'
     * expected near end of file" at column 0 does not tell a client it sent nothing. */
    if (json_body_blank(body, len)) {
        snprintf(errmsg, errsize,
                 "request body is empty: send a JSON object or an array of "
                 "readings");
        return ERR_INVAL;
    }
    json_error_t jerr;
    /* Every number as a double (the type readings are kept in), so an integer beyond int64 is a
     * value, not a parse error. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return ERR_NOMEM;
        /* Newline-delimited JSON (an object per line) stops after the first object. */
        int more = json_error_code(&jerr) == json_error_end_of_input_expected &&
                   (strstr(jerr.text, "near '{'") || strstr(jerr.text, "near '['"));
        parse_json_errmsg(errmsg, errsize, &jerr,
                          more ? "(several readings: send them as one JSON array [{...}, {...}])"
                               : NULL);
        return ERR_INVAL;
    }
    int rc = 0;
    if (json_is_object(root)) {
        *nitems = 1;
        if (item_add(b, root, 0, now_ms, errs) == ERR_NOMEM)
            rc = ERR_NOMEM;
    } else if (json_is_array(root)) {
        size_t n = json_array_size(root);
        *nitems = n;
        if (n == 0) {
            snprintf(errmsg, errsize, "empty array: no readings");
            rc = ERR_INVAL;
        } else if (max_items > 0 && n > max_items) {
            snprintf(errmsg, errsize, "too many items: %zu, at most %zu per request", n, max_items);
            rc = ERR_LIMIT;
        } else {
            /* A bad item is in errs and does not stop the others. */
            for (size_t i = 0; i < n && rc == 0; i++)
                if (item_add(b, json_array_get(root, i), (uint32_t)i, now_ms, errs) == ERR_NOMEM)
                    rc = ERR_NOMEM;
        }
    } else {
        /* jansson only decodes arrays and objects without JSON_DECODE_ANY; kept for safety. */
        snprintf(errmsg, errsize, "expected a JSON object or array");
        rc = ERR_INVAL;
    }
    json_decref(root);
    return rc;
}
