/* api/parse.h: the ingest parsers, JSON readings and InfluxDB line protocol, into a batch_t.
 *
 * Pure functions of their input: no I/O, no globals; any thread. Each item (JSON array element
 * or line) is all-or-nothing: a bad item adds nothing to the batch and one entry to the error
 * list, while the good items are kept (InfluxDB's partial-write semantics). Included by api.h. */
#ifndef VIGIL_API_PARSE_H
#define VIGIL_API_PARSE_H

#include "batch.h"

#include <stddef.h>
#include <stdint.h>

/* How many item errors a parse keeps in detail; more are counted only. */
#define PARSE_ERRORS_KEEP 100

typedef struct parse_error {
    uint32_t
        item; /* JSON: 0-based array index (0 for a single object); line protocol: 1-based line */
    char msg[256]; /* e.g. "values.temp: not a finite number", "unable to parse 'cpu v=': ..." */
} parse_error_t;

typedef struct parse_errors {
    uint32_t count;  /* total bad items */
    uint32_t kept;   /* entries filled in e[], at most PARSE_ERRORS_KEEP */
    uint32_t parsed; /* lp_parse only: lines that parsed, string-only ones included (not blank
                      * or comment lines), so a caller tells "every line bad" from a partial
                      * write; parse_json_readings leaves it alone */
    parse_error_t e[PARSE_ERRORS_KEEP];
} parse_errors_t;

/* Records one error (formats into the next free entry when there is room). */
void parse_errors_add(parse_errors_t *errs, uint32_t item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The length of a UTF-8 byte order mark (EF BB BF) at the start of a JSON body, 3, else 0: the
 * JSON routes skip it, as RFC 8259 lets a parser do. Windows editors and PowerShell 5's "UTF8"
 * encoding write one; jansson refuses it as "'[' or '{' expected near" an invisible character. */
static inline size_t json_bom_len(const char *body, size_t len)
{
    return body != NULL && len >= 3 && (unsigned char)body[0] == 0xEF &&
                   (unsigned char)body[1] == 0xBB && (unsigned char)body[2] == 0xBF
               ? 3
               : 0;
}

/* Whether the len bytes at body are no JSON body: nothing, or a byte order mark (json_bom_len)
 * and blanks (space, tab, CR, LF: JSON's whitespace) alone. Every JSON route treats such a body
 * as empty, and says so, rather than passing jansson's "near end of file" at column 0 on. */
static inline int json_body_blank(const char *body, size_t len)
{
    for (size_t i = json_bom_len(body, len); i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
            return 0;
    return 1;
}

/* ---- JSON: POST /v1/readings ---------------------------------------------------------------
 * Body: one object or an array of objects, each
 *   {"device":"pump-7","ts":1732780800123 | "2026-11-28T10:00:00.123Z","values":{"temp":71.2}}
 * ts is optional (now_ms is used), an integer in epoch ms or an RFC 3339 string; values is a
 * non-empty object of finite numbers. Unknown keys in an item are an error (typos do not pass
 * silently). Each good item becomes one point with item = its array index.
 * Returns 0 (item errors, if any, are in errs; *nitems is the number of items seen),
 * ERR_INVAL when the body as a whole is unusable (not JSON, not an object or array, empty
 * array), with the reason in errmsg, ERR_LIMIT when the array holds more than max_items items
 * (nothing is added), or ERR_NOMEM. */
int parse_json_readings(batch_t *b, const char *body, size_t len, int64_t now_ms, size_t max_items,
                        size_t *nitems, parse_errors_t *errs, char *errmsg, size_t errsize);

/* A pre-scan of the len JSON bytes at body, without building anything: returns an upper estimate
 * of the bytes jansson's tree of it takes (JSON_TREE_*_BYTES for each value, key included, plus
 * len for the strings' text), and *items, the elements of a top-level array (1 for anything
 * else). It does not check the syntax: jansson does, once the estimate is charged (an invalid
 * body is over-estimated at worst). Lets a request be refused for its size or item count
 * before jansson allocates (32 MiB of "1," is a tree of about 650 MB). Any thread, pure. */
/* Measured with glibc's mallinfo2 around json_loadb (jansson 2.14, x86-64): a number 40 bytes
 * (an array of 1,000,000), a string or a key with its object slot 82 plus its text, an empty
 * array 136, an empty object 232 (its hash table); 100,000 readings of two values 1,034 bytes
 * each, estimated at 1,300. */
#define JSON_TREE_SCALAR_BYTES 48
#define JSON_TREE_STRING_BYTES 96
#define JSON_TREE_ARRAY_BYTES  160
#define JSON_TREE_OBJECT_BYTES 256
size_t json_tree_bytes(const char *body, size_t len, size_t *items);

/* The words every JSON route answers a body jansson could not read with: "invalid JSON at line
 * L, column C: <jansson's text>", then a space and suffix when suffix is not NULL (what the
 * route's body should be, e.g. "(send no body or {})"). Writes them into buf (size bytes, always
 * NUL-terminated when size > 0, cut to fit). jansson's text may be empty or hold any bytes,
 * quotes and a UTF-8 sequence cut at its 159 bytes included: the caller escapes it (api__error).
 * Any thread, pure. */
struct json_error_t;
void parse_json_errmsg(char *buf, size_t size, const struct json_error_t *jerr, const char *suffix);

/* A JSON timestamp as the readings' "ts" takes it: an integer (or a whole real) in epoch ms,
 * or an RFC 3339 string, between VTIME_MIN_MS and VTIME_MAX_MS; a number in
 * [VTIME_SECS_LO, VTIME_SECS_HI) (vtime_looks_like_secs) is refused as epoch seconds. Returns 0
 * with *ms, or ERR_INVAL with the reason in *why (without the field's name; static, or for a number
 * past 9999 that looks like epoch µs or ns, which it names with the milliseconds to send, in a
 * thread-local buffer valid until the thread's next call). Any thread, pure. */
struct json_t;
int parse_json_time(const struct json_t *ts, int64_t *ms, const char **why);

/* ---- InfluxDB line protocol: POST /write and the stream socket ------------------------------
 *   measurement[,tag=v...] field=v[,field=v...] [timestamp]
 * with InfluxDB's escaping rules (\, \space \= in measurement, tag keys/values and field keys;
 * \" \\ in string field values), comments (#...) and blank lines skipped, CRLF accepted.
 * Float, integer (123i), unsigned (123u) and boolean (t/T/true/True/TRUE/f/...) fields become
 * channels (booleans as 1/0); string fields are ignored. The device is the value of the tag
 * named opts->device_tag when present, otherwise the series key (measurement plus tags sorted
 * by key, escaped as InfluxDB does: "cpu,host=a,region=b"). The channel is the field key. */

/* InfluxDB 1.x's precisions: nanoseconds (the default), microseconds, milliseconds, seconds,
 * minutes and hours. */
typedef enum lp_precision { LP_NS = 0, LP_US, LP_MS, LP_S, LP_M, LP_H } lp_precision_t;

/* Whether the client declared the unit of its timestamps (session 67). A timestamp read in an
 * undeclared unit (nanoseconds: /write and /api/v2/write without precision=, the stream socket)
 * that falls before 1973-03-03 (1e17 ns) is refused: it is seconds, milliseconds or microseconds
 * sent without a precision, which InfluxDB would store in 1970 silently. The error names the
 * date it would be and the fix: precision= for HTTP, nanoseconds for the stream. */
typedef enum lp_unit {
    LP_UNIT_DECLARED = 0,  /* as given (precision=ns included): any time vigil keeps */
    LP_UNIT_IMPLIED_PARAM, /* no precision= parameter: the fix is declaring one */
    LP_UNIT_IMPLIED_STREAM /* the stream's fixed nanoseconds: the fix is sending them */
} lp_unit_t;

/* Before this many nanoseconds (1973-03-03T09:46:40Z) a timestamp in an implied unit is refused. */
#define LP_IMPLIED_NS_MIN 100000000000000000LL

typedef struct lp_opts {
    const char *device_tag;   /* default "device" */
    lp_precision_t precision; /* unit of the timestamps; converted to ms by floor division */
    size_t max_line;          /* longest accepted line in bytes (0: no limit) */
    lp_unit_t unit;           /* declared (default) or implied: see lp_unit_t */
} lp_opts_t;

/* Parses "ns", "n", "u", "us", "ms", "s", "m", "h" (and "" as ns). Returns 0 or ERR_INVAL. */
int lp_precision_parse(const char *s, lp_precision_t *out);

/* Parses one line (without its '\n'; a trailing '\r' is allowed). Adds at most one point with
 * item = lineno. Returns 0 (point added, or the line is blank, a comment or has only string
 * fields), ERR_INVAL with the reason in errmsg, or ERR_NOMEM. */
int lp_parse_line(batch_t *b, const char *line, size_t len, const lp_opts_t *opts, int64_t now_ms,
                  uint32_t lineno, char *errmsg, size_t errsize);

/* Parses a whole body, line by line, numbering lines from first_lineno. Bad lines go to errs as
 * "unable to parse '<line, shortened>': <reason>" (a long reason shortens the quote further,
 * never itself: msg holds 199 bytes); errs->parsed counts the good ones. Returns 0
 * or ERR_NOMEM. */
int lp_parse(batch_t *b, const char *body, size_t len, const lp_opts_t *opts, int64_t now_ms,
             uint32_t first_lineno, parse_errors_t *errs);

#endif
