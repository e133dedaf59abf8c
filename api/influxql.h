/* api/influxql.h: what /query's files share (influxql.c reads statements; influxql_db.c
 * answers the database ones; influxql_show.c the schema ones, SHOW MEASUREMENTS and the like;
 * influxql_select.c SELECT). Not public: only api/ includes it. Any thread; no state. */
#ifndef VIGIL_API_INFLUXQL_H
#define VIGIL_API_INFLUXQL_H

#include "api_int.h"

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

/* QT_NUMBER: what influxd's scanner reads from a digit (or '.' and a digit): an INTEGER (digits
 * only), a NUMBER (with a '.') or a DURATIONVAL (digits then letters, "1h", "1x");
 * api__q_number_kind tells them apart. QT_STRING: a single-quoted string, never an operator
 * ('(' is no parenthesis); QT_OTHER: an operator or any other character. */
enum qtok { QT_EOF, QT_SEMI, QT_IDENT, QT_KEYWORD, QT_NUMBER, QT_STRING, QT_OTHER, QT_BAD };

/* The longest q /query reads, in bytes once decoded (from the URL, or from a form body, which
 * max_body bounds too): Grafana expands a multi-value template variable into one regex of every
 * value, /^(pump\-1|...|pump\-200)$/, some 4 KiB for 200 devices. influxd has no bound but
 * the body's; a q over this one is a 400 naming it. */
#define API_IQ_Q_MAX 65536

/* The size of the names a SELECT keeps (influxql_select.h) and of test_parse.c's regex buffers;
 * no longer a bound on a token, which may be as long as the query. */
#define QT_TEXT_MAX 256

/* What one pass of a query's reading has spent of the bounds on its regexes and joined strings;
 * saved and put back whole, so a statement read again spends what the first pass did. */
typedef struct qbudget {
    size_t re_bound;     /* the bytes of bound regexes read in this pass (influxql_regex.c's
                          * bound_regex): at most API_IQ_Q_MAX, as a /regex/'s are */
    size_t joined;       /* the bytes of strings joined by + in literal math in this pass
                          * (influxql_math.c): at most API_IQ_JOINED_MAX */
    int re_literal;      /* the regexes compiled for 'x' =~ /re/ in literal math in this
                          * pass (influxql_math.c): at most API_IQ_RE_LITERAL_MAX */
    long re_units;       /* the cost of the regexes (/re/ or bound) read in this pass, each
                          * place of the query once: at most API_IQ_RE_UNITS_MAX */
    const char *re_last; /* the furthest place one was read at (a place read again, as
                          * api__iq_skip_params reads ahead, is not counted again) */
} qbudget_t;

/* The memory of one query's reading, for both passes (api__h_query): its text, the tokens'
 * texts, and what api__qs_alloc hands out. Everything a token or api__qs_alloc points to stays
 * valid until qmem_deinit, so tokens need no freeing and may be copied. */
typedef struct qmem {
    const char *q;         /* the query, NUL-terminated (borrowed) */
    char *text;            /* tokens' texts: the token at q[i] is written at text[2i] (its text
                            * is never longer than its span of q, so tokens never overlap) */
    struct qblock *blocks; /* api__qs_alloc's, freed together */
    const json_t *params;  /* the tokens the request's bound parameters bind to
                            * (api__iq_params_bind; borrowed, outliving the reading), or NULL */
    qbudget_t budget;      /* what this pass has spent (qs_init zeroes it; a statement read
                            * again puts back what it was as the statement started) */
} qmem_t;

/* What compiling one /query request's regexes (/re/ and bound {"regex": ...} together, all its
 * statements') may cost, in units: each regex 1, and 1 for each alternative and optional
 * repetition ('|', '*', '?', {0,n}; a repeated group's once per copy) and for each character
 * its repetitions add once expanded (influxql_regex.c: a{1,1000} adds 999), so 1 to some 2,000
 * for one regex. A query past it is a 400 while it is read, before anything is compiled or run.
 * glibc's regcomp of a pattern within influxql_regex.c's bounds still takes 0.1 to 0.3 s for
 * (a?){1,1000} (2,000 units) on a loaded 2-core host, some 0.1 ms a unit at worst, and a 64 KB
 * query held over a thousand such statements (17 took 4.9 s: docs/reliability.md "iqwhere").
 * 8,000 units: 8 of (a?){1,1000} took 1.7 s at 16,000 on a 2-core host at load 5 (review of
 * iqwhere), so some 1 s at worst; 7 Grafana panel queries of a 1,000-device "All" each (some
 * 9 KB each: what a 64 KB query holds); a regex that repeats and alternates nothing
 * (/^pump-7$/) costs 1, so 1,000 statements of one each still read. The bound is on the
 * request, which holds a worker, not on each statement (none compiles more than 9). */
#define API_IQ_RE_UNITS_MAX 8000

/* The most bytes literal math may join ('a' + 'b') in one pass over a query: each join copies
 * both strings, so "'<30 KB>' + 'x' + 'x' ..." (a 64 KB query) would otherwise allocate some
 * 240 MB. Past it, the join is not reduced (vigild's statement error). */
#define API_IQ_JOINED_MAX (4 * (size_t)API_IQ_Q_MAX)

/* The most regexes literal math may compile ('x' =~ /re/) in one pass over a query, as a
 * statement compiles at most two for its device conditions: each regcomp of a pattern within
 * influxql_regex.c's bounds may still take some 0.17 s ((a?){1,1000}), and forty such matches in
 * a 1 KB query took 35 s (two passes). Past it, the match is not reduced (vigild's statement
 * error, as before literal math). */
#define API_IQ_RE_LITERAL_MAX 2

/* What a token's kind and text alone do not say. A bound parameter's ($x, params; api__qs_bind):
 * QF_DURATION, a {"duration": ...}: a duration token (influxd's DURATIONVAL) whatever its text
 * ("5", "1.5h": influxd's "invalid duration" where it is read); QF_ERROR, a value influxd cannot
 * bind: QT_OTHER "$reason"; QF_REGEX, a {"regex": "..."}: QT_OTHER "$pattern" (never an
 * operator), read as a regex by api__iq_regex. Parse errors print the latter two without '$'.
 * QF_DECIMAL: a number written with a '.' and no digit after it ("5."), which influxd's scanner
 * reads as the NUMBER "5", the '.' consumed. */
enum qform { QF_NONE, QF_DURATION, QF_ERROR, QF_REGEX, QF_DECIMAL };

typedef struct {
    enum qtok kind;
    const char *text;  /* an identifier's name; else what influxd prints: "EOF", "SELECT".
                        * NUL-terminated; borrowed from the query's qmem_t (or static) */
    size_t len;        /* of text */
    const char *value; /* a string literal's ('...') value: text, but "" for '' (whose text is
                        * "STRING", as influxd prints it); NULL for any other token */
    int line, col;     /* as influxd prints them */
    enum qform form;   /* see enum qform; QF_NONE for most tokens */
} qtoken_t;

typedef struct {
    const char *p;         /* the next byte */
    int line, col;         /* p's position: 0-based line, code points into the line */
    int end_line, end_col; /* where the last token ended (the end of input is placed after it) */
    int end_number;        /* the last token was a number, a string or ')' (the end: one
                            * closer: "SELECT mean(x)" 18 of 17) */
    int end_op;            /* the last token was an operator other than ',', ')' or a call's
                            * '(' (influxd places the end one closer after it too:
                            * api__q_operand_error) */
    qmem_t *mem;           /* the query's memory (borrowed) */
    char *w;               /* where the token being read writes its text (in mem->text) */
    long re_alts;          /* the statement's regexes' alternatives so far (api__iq_regex) */
    int depth;             /* SELECT's readers' nesting: parentheses, calls, signs */
    int card;              /* a SHOW ... CARDINALITY reading its list statement's clauses
                            * (influxql_card.c): LIMIT and OFFSET are kept in card_limit and
                            * card_offset, not applied; SLIMIT is influxd's parse error (2: the
                            * statement's ON and FROM were read before) */
    long long card_limit, card_offset; /* that statement's LIMIT and OFFSET (0: none) */
    const char *card_time; /* that statement as influxd's error for time in its WHERE names it
                            * ("SHOW TAG KEY EXACT CARDINALITY"); NULL: it has none */
    int card_group;        /* that statement's GROUP BY (api__iq_card_group_by): 0 none, 1 read,
                            * 2 with a dimension influxd refuses: card_group_err */
    const char *card_group_err; /* then influxd 1.6.7's error for the first such dimension */
    const char *card_why;       /* card 2: the reason SHOW MEASUREMENT CARDINALITY's FROM (or rp=)
                                 * gave (NULL: none), answered once the statement is read */
    const char *on_db;          /* the statement's ON db (api__q_keyword_name; NULL: none): the
                                 * database of its sources naming none, not the query's db= */
    int every_db; /* a source naming no database looks its database up under any policy, the
                   * default too (api__iq_skip_params: a SELECT INTO or subquery vigild refuses,
                   * whose sources influxd looks up); 0: only under one vigild does not hold */
} qscan_t;

/* The deepest SELECT's readers nest (each level a few hundred bytes of stack): influxd has no
 * bound (Go's stacks grow); 20,000 parentheses in a WHERE ended vigild (SIGSEGV) before it. A
 * deeper statement is vigild's 400 (api__q_nest). */
#define API_IQ_DEPTH_MAX 1000

/* Whether Go's time.LoadLocation (influxd's tz()) finds the zone name: "", "UTC" and "Local",
 * or a TZif file of that name in the system's zone database, where Go looks (its $ZONEINFO and
 * its own zoneinfo.zip aside); a name holding ".." or starting with '/' or '\\' never. Answers
 * are remembered a minute (influxql_tz.c). Returns 1, 0, or a negative errno (EMFILE, ENFILE,
 * ENOMEM) when the check could not be made for want of descriptors or memory: not remembered,
 * so the same name is checked again next time. Any thread. */
int api__iq_tz_known(const char *name);

/* Steps s one level deeper for t ('(', a call, a sign). Returns 0, or answers vigild's 400 for
 * a statement nested deeper than API_IQ_DEPTH_MAX and returns -1. The caller steps back
 * (s->depth--) when the level is read. */
int api__q_nest(api_request_t *r, qscan_t *s, const qtoken_t *t);

/* A query's statements run one after the other (the second pass of q_statements), each adding
 * its result to b: {"statement_id":id,...}. A statement that fails says why in err (a
 * "statement error": influxd answers it in a 200) and the run stops there. */
typedef struct {
    sbuf_t b;
    int chunked;    /* chunked=true: each result a document of its own, as influxd sends them */
    int id;         /* the running statement's statement_id */
    int64_t epoch;  /* the epoch parameter's unit in ns (ms: 1000000); 0: RFC 3339 strings */
    int64_t now_ms; /* now() for every statement of the query, as influxd fixes it once */
    char *err;      /* the failed statement's error (whole: it may name a token; run_query frees) */
    int err_nomem;  /* the error could not be kept: "out of memory" */
    int err_rewrite; /* err is one influxd 1.6.7 returns from its statement rewrite (time in
                      * SHOW's WHERE): sent without the statement's id, so under id 0 */
    int err_goes_on; /* err is one influxd 1.6.7's executor sends as the statement's result and
                      * then runs the statements after it (api__q_sent_error) */
    int again;       /* err is the store's ERR_AGAIN or ERR_UNPUBLISHED: the query answers 503 */
    int64_t deadline_us;        /* CLOCK_MONOTONIC µs past which the query stops (0: none) */
    int timed_out;              /* api__q_deadline_passed said so: err is API_IQ_TIMEOUT */
    struct api_iq_count *count; /* a cardinality statement running its list statement
                                 * (influxql_card.c): the list's series are counted here, not
                                 * written; NULL: lists are written */
    /* chunked, the rows of a SELECT's series a document holds at most (chunk_size) */
    long long chunk_rows;
} qrun_t;

/* The error of the statement that was running when the query passed http.query_timeout (and
 * is then stopped), influxd's words for its [coordinator] query-timeout. */
#define API_IQ_TIMEOUT "query-timeout limit exceeded"

/* Sets run's deadline timeout_ms from now (0 or less: none). Called when the statements start
 * running, after the body was read and the query parsed, as influxd starts its query-timeout
 * when the query is executed: a slow upload does not eat the query's time. Any thread. */
void api__q_deadline_start(qrun_t *run, int64_t timeout_ms);

/* Whether run is past its deadline (run->deadline_us; never without one): sets run->timed_out
 * once it is. Reads CLOCK_MONOTONIC (some 20 ns): callers in per-point loops call it every so
 * many points. Any thread. */
int api__q_deadline_passed(qrun_t *run);

/* Reports every device in id order, for callers that read its id and channels alone: the
 * counters are -1 through the daemon's device_each, set through the unit tests' fake device_list,
 * so a caller reading them would pass there and fail in vigild. Through the backend's
 * device_each, which answers while the store reloads its maps after a failed write (the ids do
 * not change then), or, a backend without it, through device_list (none without either), its
 * wait for the store's reload of the counters ending at the query's deadline
 * (r->read_deadline_us). Returns 0 or the backend's error (ERR_AGAIN, device_list's alone:
 * api__q_backend_error tells the deadline from the store's bound). Any thread. */
int api__iq_devices(api_request_t *r, api_device_cb cb, void *arg);

/* Whether name is a device's id: 1, 0 (no such device, or no store), or the backend's error
 * (never taken for "no": a statement would read every device as the name's series). Whether the
 * device exists needs no counters, so the lookup is device_find, which answers at once while the
 * store reloads them after a failed write; device_get (a backend without device_find) waits for
 * them and may give ERR_AGAIN. Any thread. */
int api__iq_is_device(api_request_t *r, const char *name);

/* Records API_IQ_TIMEOUT as the running statement's error. Returns 1, the statement functions'
 * "failed". */
int api__q_timeout_error(qrun_t *run);

/* The error of the statement whose rows take the query's answer (its statements together) past
 * API_PAGE_BYTES: rows are bounded per statement, but a statement repeated to fill q
 * multiplies them (472 MB of JSON for one GET of 1,023 bytes before the bound). */
#define API_IQ_TOO_BIG "vigild answers at most 8 MiB of JSON for one query, its statements together"
_Static_assert(API_PAGE_BYTES == (size_t)8 << 20, "API_IQ_TOO_BIG names API_PAGE_BYTES");

/* Which of influxd's number tokens a QT_NUMBER is: a '.' makes a NUMBER ("1.5", ".5"), digits
 * alone an INTEGER, digits then letters a DURATIONVAL. */
enum qnum { QN_INTEGER, QN_NUMBER, QN_DURATION };
enum qnum api__q_number_kind(const qtoken_t *t);

/* Reads the next token of s into t, by influxd 1.6.7's scanner rules (influxql.c). t's text is
 * borrowed from s->mem, valid until its qmem_deinit. */
void api__qs_next(qscan_t *s, qtoken_t *t);

/* n bytes that live as long as s's query (until qmem_deinit frees them). Returns NULL when out
 * of memory. */
void *api__qs_alloc(qscan_t *s, size_t n);

/* Steps s over one byte of the query, keeping its line and char (a reader of its own, as
 * api__iq_regex's, moves with it so that what follows is placed as influxd places it). */
void api__qs_step(qscan_t *s);

/* Whether t is the keyword kw (upper case). */
int api__q_is(const qtoken_t *t, const char *kw);

/* Whether c is an ASCII digit, as influxd's scanner's isDigit. */
int api__q_digit(char c);

/* Finds parameter name as influxd's r.FormValue does (influxql_params.c): the first pair of that
 * name Go's url.ParseQuery keeps, in a form body, then in the URL; or the URL's, then a
 * multipart/form-data body's value (api__iq_multipart): its value, still encoded (borrowed from
 * r), in *v and *vlen. name is one of /query's (q, db, rp, epoch, chunked, chunk_size, params:
 * another is absent); the body and the URL are read once, at the first call, for all of them
 * (r's iq_form_v). Returns 1, or 0 when absent; 0 with a 500 answer set (r->status) when out of
 * memory. Any thread. */
int api__iq_form_raw(api_request_t *r, const char *name, const char **v, size_t *vlen);
/* Reads parameter name as api__iq_form_raw finds it into buf (decoded). Returns buf, or NULL
 * when absent or not fitting. */
const char *api__iq_form_value(api_request_t *r, const char *name, char *buf, size_t size);
/* The index of /query parameter name in r's iq_form_v, or -1 when /query does not read it. */
int api__iq_form_slot(const char *name);
/* Reads r's multipart/form-data body (influxql_multipart.c) after the URL's parameters: the
 * values of /query's parameters the URL does not hold into r's iq_form_v, the first file part
 * named "q" into iq_qfile, as influxd's r.FormValue and handler do. A body Go's
 * ParseMultipartForm refuses gives none, and *why (static) says what is wrong with it (also set
 * for a part read without its name: libmicrohttpd reads only a quoted one). Returns
 * 0, or -1 when out of memory. Any thread. */
int api__iq_multipart(api_request_t *r, const char **why);
/* As api__iq_form_value, but a value not fitting in buf (size bytes with its NUL) or holding a
 * NUL byte is answered 400, as api__arg answers it (callers check r->status). */
const char *api__iq_arg(api_request_t *r, const char *name, char *buf, size_t size);

/* ---- bound parameters (influxql_params.c) ---- */

/* Reads the params parameter (the URL's, else a form body's) as influxd's handler decodes it.
 * Into *params the tokens its names bind to (caller owns: json_decref; NULL when absent, empty
 * or null). Returns 0, or answers influxd's 400 (or a 500 when out of memory) and returns -1. */
int api__iq_params_asked(api_request_t *r, json_t **params);

/* influxd 1.6.7's DefaultChunkSize: a SELECT series' rows a document at most, chunked=true
 * without a chunk_size; whole, a series of more rows ends in "partial":true (api__q_series_end). */
#define API_IQ_CHUNK_DEFAULT 10000
/* The rows a SELECT series' document holds at most with chunked=true: the chunk_size parameter
 * when it is a decimal integer above 0 (Go's strconv.ParseInt, int64: any number of leading
 * zeros, read as they come, nothing allocated), else API_IQ_CHUNK_DEFAULT. */
long long api__iq_chunk_size_asked(api_request_t *r);

/* The tokens params' names bind to: name -> [kind, text] or [kind, text, enum qform]. refused:
 * NULL, or names -> Go's error for their object's number (api__iq_go_numbers). Caller owns:
 * json_decref. Returns NULL when out of memory. */
json_t *api__iq_params_bind(const json_t *params, const json_t *refused);

/* Makes t ("$name", just read from s) the token s->mem->params binds name to; a name not bound
 * leaves it "$name". */
void api__qs_bind(qscan_t *s, qtoken_t *t);

/* Walks the JSON object text for the numbers Go's json.Number conversion refuses: a value of
 * the object (Go's error into *top), or the value of a one-entry object (into refused, name ->
 * Go's error). Returns 0, or -1 when out of memory. */
int api__iq_go_numbers(const char *text, sbuf_t *top, json_t *refused);

/* A copy of the JSON text with each number jansson refuses written as 0 and blanks. Caller
 * frees; NULL when out of memory. */
char *api__iq_refused_zeroed(const char *text);

/* Whether t is the operator op ("=", "=~", "(": a string holding it is not). */
int api__q_op(const qtoken_t *t, const char *op);

/* Reads an optional keyword kw followed by a name (AS alias: not kept; ON db: s->on_db).
 * Returns 0 (also when kw is not next: s is left where it was), or -1 (the name missing:
 * influxd's parse error answered). */
int api__q_keyword_name(api_request_t *r, qscan_t *s, const char *kw);

/* Answers influxd's parse error: token t found where want was expected (400). */
void api__q_parse_error(api_request_t *r, const qtoken_t *t, const char *want);

/* Whether t is one of influxd's binary operators: + - * / % & | ^ = != < <= > >= =~ !~, AND,
 * OR (a string holding one is not). */
int api__q_binary_op(const qtoken_t *t);
/* If t is a bound parameter ("$x") the request's params did not bind, answers influxd's 400
 * ("missing parameter: x"; for a value influxd cannot bind, its reason in place of the name;
 * "empty bound parameter" for a "$" alone) and returns -1; else 0. A bound one was read as its
 * value (a string, number, boolean or name token) by api__qs_next. */
int api__q_unbound(api_request_t *r, const qtoken_t *t);
/* Whether influxd's expression reader refuses t where a value goes: the end, ';', a quote
 * closed by nothing, or an operator that opens no value (not '(', a sign, '*', a regex's '/',
 * a bound parameter). Its parse error is then api__q_operand_error's, not a statement error. */
int api__q_bad_operand(const qtoken_t *t);

/* Answers influxd's parse error for t, a bad operand read from s (the end is placed right after
 * an operator, in a condition or not: s->end_op; where is no longer read). Returns -1. */
int api__q_operand_error(api_request_t *r, const qscan_t *s, const qtoken_t *t, int where);

/* Reads the keyword kw (upper case). Returns 0, or answers influxd's parse error and -1. */
int api__q_expect_kw(api_request_t *r, qscan_t *s, const char *kw);

/* Checks that t ends the statement (';' or the end). Returns 0, or answers the parse error and
 * -1. */
int api__q_expect_end(api_request_t *r, const qtoken_t *t);

/* Reads an INTEGER of min..max into t as influxd's Parser.ParseInt does. Returns 0, or answers
 * its parse error and -1. */
int api__q_expect_int(api_request_t *r, qscan_t *s, qtoken_t *t, long long min, long long max);

/* Reads the INTEGER of LIMIT, OFFSET, SLIMIT or SOFFSET into t and *v as influxd's
 * parseOptionalTokenAndInt does: strconv.ParseInt's error ignored, so that a number past int64
 * is its largest (LIMIT 9223372036854775808: no limit, OFFSET past it: nothing). Returns 0, or
 * answers the parse error and -1. */
int api__q_expect_count(api_request_t *r, qscan_t *s, qtoken_t *t, long long *v);

/* Reads v, a string compared with time, as influxd does (influxql_time.c) into *ns. Returns 0,
 * 1 (not a time string to influxd: a date and more is YYYY-MM-DD...), 2 (influxd's "invalid
 * timestamp string"), or 3 (outside influxd's time literals, int64's least + 3 to its largest
 * - 1 nanoseconds: influxd's "overflows" / "underflows time literal"). */
int api__iq_time_string(const char *v, int64_t *ns);

/* Reads a duration (a DURATIONVAL, or INF: 0) into *ns and t. Returns 0, or answers influxd's
 * parse error and -1. */
int api__q_expect_duration(api_request_t *r, qscan_t *s, qtoken_t *t, int64_t *ns);

/* Parses a duration literal ("10s", "1h30m") into *ns as influxql.ParseDuration. Returns 0, -1
 * (invalid) or -2 (overflowed). */
int api__q_parse_duration(const char *s, int64_t *ns);

/* Answers influxd's parse error for a literal t it cannot read where an expression reads it
 * (parseUnaryExpr): an integer past uint64, a number past the largest double (with t's
 * position), a duration token ParseDuration refuses (1e3, 1x: "invalid duration") or that
 * overflows (no position, as influxd). Returns -1 then; else 0 (t no number, or readable). */
int api__q_bad_literal(api_request_t *r, const qtoken_t *t);

/* Writes s as a JSON string into b as influxd's Go writer does: api__json_str's escapes, and
 * '<', '>', '&', U+2028 and U+2029 as \u003c, \u003e, \u0026, \u2028 and \u2029. Every string
 * of a /query answer goes through it, so the answer's length (run->b.len, which API_PAGE_BYTES
 * bounds) is the length sent. Out of memory: b->oom, as any sbuf append. */
void api__iq_str(sbuf_t *b, const char *s);

/* Appends name as influxd prints an identifier (Go's influxql.QuoteIdent): bare when it is a
 * letter or '_' then letters, digits and '_', and no keyword; else double-quoted, with '\n',
 * '\\' and '"' escaped. Out of memory: b->oom. */
void api__iq_quote_ident(sbuf_t *b, const char *name);
/* The same, double-quoted whatever it is when quote is set (QuoteIdent's segments but the last). */
void api__iq_quote_ident_as(sbuf_t *b, const char *name, int quote);

/* Opens / closes the running statement's result in run->b ("{"statement_id":N" ... "}"). */
void api__q_result_open(qrun_t *run);
void api__q_result_close(qrun_t *run);

/* Records the running statement's error, msg then arg (NULL: none). Returns 1, the statement
 * functions' "failed". */
int api__q_result_error(qrun_t *run, const char *msg, const char *arg);

/* As api__q_result_error, for an error influxd 1.6.7's executor sends as the statement's own
 * result and goes on after (SHOW MEASUREMENTS' "right side of '=' must be a tag value string",
 * from its MeasurementNames): the statements after it run. Returns 1. */
int api__q_sent_error(qrun_t *run, const char *msg, const char *arg);

/* Writes what comes between two series of the running statement into b (run->b): ',' in the one
 * document, or chunked the end of the document holding the series before it, marked
 * "partial":true when partial is set, and the start of the next, as influxd 1.6.7 sends a
 * statement's series, a document each: partial in the cardinality statements' counts, SHOW
 * FIELD KEYS and SELECT (api__q_series_open), not in SHOW TAG KEYS and SHOW TAG VALUES. */
void api__q_series_next(qrun_t *run, sbuf_t *b, int partial);
/* Opens a SELECT's series in run->b up to its name: the series list before the first (*nseries
 * 0), else api__q_series_next marked partial (chunked, a document per series, "partial":true on
 * all but the last, as influxd 1.6.7 sends a SELECT's series), then {"name":; counts it. */
void api__q_series_open(qrun_t *run, int *nseries);
/* Whether a SELECT (or SHOW SERIES) series' document holding rows rows is full: chunked,
 * rows reached run->chunk_rows (influxd 1.6.7's chunk_size): the next row starts a document. */
int api__q_chunk_full(const qrun_t *run, long long rows);
/* Ends, in b (run->b, or SHOW FIELD KEYS' series built apart), the full document of the open
 * series, the series and the document marked "partial":true, and starts the next of run's
 * statement up to the series' '{' and head (SELECT's "name": then the caller writes the series'
 * name, tags and columns again), as influxd 1.6.7 cuts a SELECT's (and SHOW SERIES', SHOW FIELD
 * KEYS') series into documents of chunk_size rows. */
void api__q_chunk_next(const qrun_t *run, sbuf_t *b, const char *head);
/* Ends the open SELECT (or SHOW SERIES) series of rows rows (whole: all of them; chunked: its
 * last document's), "]}". Whole, a series of more than API_IQ_CHUNK_DEFAULT rows ends
 * "],\"partial\":true}", as influxd 1.6.7 cuts it at its default chunk size and joins the
 * pieces, the first's mark kept. */
void api__q_series_end(qrun_t *run, long long rows);

/* The running statement's error "vigild does not support " what, for a part of a statement
 * influxd 1.6.7 answers: sent as its result, and the statements after it run, as influxd runs
 * them after the statement's answer (but for API_IQ_OTHER_RP and API_IQ_NO_DB's). Returns 1. */
int api__q_unsupported_error(qrun_t *run, const char *what);
/* What FROM db.rp.name with a policy other than autogen is to vigild: this, then the policy's
 * name, influxd 1.6.7's own error (a policy vigild does not hold is one influxd does not hold
 * either), which api__q_unsupported_error sends as it is and which stops the run. */
#define API_IQ_OTHER_RP "retention policy not found: "
/* influxd 1.6.7's error for a source naming no database without the query's db= (vigild's
 * with the rp= parameter alone, api__iq_other_policy); it ends the run as API_IQ_NO_DB does. */
#define API_IQ_NO_DB_NAME "database name required"
/* What FROM db.rp.name or db..name with a database vigild does not list is: this, then the
 * name, influxd 1.6.7's own error, which api__q_unsupported_error sends as it is and which stops
 * the run as API_IQ_OTHER_RP does. */
#define API_IQ_NO_DB "database not found: "

/* Records the running statement's backend error rc as msg then err_str(rc); ERR_AGAIN (the
 * store reloads after a failed write) or ERR_UNPUBLISHED (its last commit not readable yet) also
 * sets run->again, so the query answers 503 with
 * Retry-After rather than a statement error. Returns 1, the statement functions' "failed". */
int api__q_backend_error(qrun_t *run, const char *msg, int rc);

/* Reads the rest of the statement, to ';' or the end (s then on it), without judging it: a
 * clause vigild does not answer is then its statement error, and the statements after it still
 * parse. */
void api__iq_skip(qscan_t *s);

/* Reads s's statement to its end without moving s, as api__iq_skip would skip it, and answers
 * influxd's 400 for the first unbound parameter in it ("missing parameter: x": influxd binds
 * them as it parses, also in what vigild skips: subqueries, SELECT INTO); a regex (after =~,
 * !~ or FROM) is read as one, for its errors. Each source after a FROM (a subquery's too) and
 * INTO's target of names and dots are read with api__iq_from; *why becomes the reason of the
 * highest api__iq_from_stops (influxd's "database not found" before its "retention policy not
 * found", which end the run) above *why's own. Returns 0, or -1 (answered). */
int api__iq_skip_params(api_request_t *r, const qscan_t *s, const char **why);

/* If t is LIMIT or OFFSET, reads its integer (0 up) into *limit or *offset. Returns 1 (read),
 * 0 (t is neither), or -1 (parse error answered). */
int api__iq_limit_offset(api_request_t *r, qscan_t *s, qtoken_t *t, long long *limit,
                         long long *offset);

/* Reads a regular expression /.../ right after its operator, as influxd's ScanRegex: "\/" is a
 * slash; anything else is kept as written. Translates it to POSIX syntax
 * (api__iq_re_translate) into *re (NUL-terminated; borrowed from s->mem, valid until its
 * qmem_deinit). Returns 0, or -1 (no regex, unterminated, one Go or vigild refuses, or past
 * the query's API_IQ_RE_UNITS_MAX: answered as a parse error, as influxd's; out of memory: a
 * 500). */
int api__iq_regex(api_request_t *r, qscan_t *s, const char **re);

/* Whether a regex starts at s where influxd's parser looks for one (FROM, WITH MEASUREMENT):
 * a '/' after blanks alone, as its parseRegex peeks, so "/ *x* /" there is the regex "*x*" (a
 * Go error), not a comment. */
int api__iq_regex_next(const qscan_t *s);

/* Where influxd's parser peeks for a regex that vigild does not read as one (a SELECT field, a
 * call's argument, a GROUP BY dimension): a bad regex there (a comment's "/ *x* /" among them)
 * is influxd's parse error. Returns -1 (that error answered), or 0 (no regex next, or a good
 * one; s is not moved: the caller reads on as before). */
int api__iq_regex_bad_next(api_request_t *r, const qscan_t *s);

/* After a FROM name of one or two parts (not db.rp.m), s right after it (influxql_from.c):
 * influxd has read the token after the name before it looks for a regex, so blanks, ';', ',' or
 * a comment and right after it '/' (a comment too) are its parse error "found <that token>,
 * expected regex" (a comment's text printed ""), placed at the token. Returns -1 (that error
 * answered), or 0. */
int api__iq_regex_after_name(api_request_t *r, qscan_t *s);

/* A bound regex t (QF_REGEX, just read from s) where influxd reads a value (device = $r, 1 = $r,
 * temp > $r): its pattern checked as api__iq_regex checks it (influxd's 400 for a bad one; the
 * query's budgets of bound regex bytes and of regex units), its translation unused. Returns 0,
 * or -1 (answered). */
int api__iq_bound_regex_value(api_request_t *r, qscan_t *s, const qtoken_t *t);

/* Translates pattern, a regular expression in Go's syntax (what influxd compiles), into POSIX
 * extended syntax for api__iq_regcomp (influxql_regex.c): Go's classes (\d, \w, \s) become
 * bracket expressions. Writes out (NUL-terminated, size bytes). Returns 0, or -1 with err (a
 * message of errsize bytes at most, in Go's words where Go refuses it too: "invalid repeat
 * count: `{2000}`") for a pattern Go refuses, one vigild cannot translate, one whose
 * repetitions would make regcomp's compiled form large (glibc expands them), or one of more
 * than RE_ALTERNATIVES_MAX alternatives and optional repetitions ('*', '?', {0,n}) together
 * (regcomp's time grows with their square). alts: NULL, or the alternatives (and optional
 * repetitions) the statement's patterns read before this one, which count against the same
 * RE_ALTERNATIVES_MAX (SHOW TAG VALUES compiles up to 9 at once), and on success those with this
 * one's. An out of API_IQ_RE_OUT(strlen(pattern)) bytes always has room. */
#define API_IQ_RE_OUT(n) (7 * (n) + 8) /* \W, 2 bytes, is the 13 of [^0-9A-Za-z_] */
int api__iq_re_translate(const char *pattern, char *out, size_t size, long *alts, char *err,
                         size_t errsize);

/* Compiles pattern as an extended POSIX regex (caller frees with regfree); Go's "(?i)" prefix
 * (Grafana's search box sends it) becomes REG_ICASE. Returns 0, or 1 with run->err. */
int api__iq_regcomp(qrun_t *run, regex_t *re, const char *pattern);
/* The same without an error message: 0, or -1 when regcomp refuses it (nothing to free). */
int api__iq_re_compile(regex_t *re, const char *pattern);

/* Reads FROM's [db.][rp.]name (s: after FROM) into *name (the measurement: a device, or any
 * name with a device condition). A regex ([db.][rp.]/re/: its pattern in name->text, name->form
 * QF_REGEX), a database vigild does not have (API_IQ_NO_DB and its name: not listed, not the
 * query's db=, one vigild would list; influxql_from.c db_not_found) or a policy other than
 * autogen sets *unsupported (static text, or borrowed from s's blocks) for the caller's
 * statement error. Returns 0, or -1 (parse error or out of memory, answered). */
int api__iq_from(api_request_t *r, qscan_t *s, qtoken_t *name, const char **unsupported);
/* The policy of a source (rp, as FROM names it; "" for none: the query's rp= parameter, from
 * the URL or a form body, as influxd 1.6.7's handler takes it for the default) when it is one
 * vigild does not hold: *unsupported is influxd's API_IQ_OTHER_RP and the policy's name (in s's
 * blocks), which ends the run; autogen, and a parameter absent, empty, holding a NUL (%00) or
 * an escape Go's url.ParseQuery refuses (%zz, a '%' at the end: it drops the pair), leave
 * *unsupported. has_db: the source names its database (db..m, db.rp.m); when it does not and
 * the policy is not held, influxd looks the statement's ON db (s->on_db) or else the query's
 * db= up first: db= absent or empty, API_IQ_NO_DB_NAME; one vigild knows it does not have
 * (as db_not_found), API_IQ_NO_DB and its name (vigild answers such a database from its one
 * store when it refuses no policy; under the default policy looked up only with s->every_db).
 * Returns 0, or -1 (out of memory, answered). */
int api__iq_other_policy(api_request_t *r, qscan_t *s, int has_db, const char *rp,
                         const char **unsupported);
/* Looks up the prefix of a source (or of SELECT INTO's target) as api__iq_from does after
 * reading it: db ("" or the first name) and rp ("" or the policy) before dots (1: rp.name, 2:
 * db.rp.name or db..name) dots; *unsupported as api__iq_from sets it. Returns 0, or -1 (out of
 * memory, answered). */
int api__iq_prefix(api_request_t *r, qscan_t *s, const char *db, const char *rp, int dots,
                   const char **unsupported);
/* Whether why (static) is a subquery's statement error api__iq_skip_params found
 * (influxql_skim.c: "fill(none) must be used with a function" ...), which ends the run. */
int api__iq_sub_error_is(const char *why);
/* Whether why, a source's *unsupported, ends the run as influxd 1.6.7's "retention policy not
 * found" (1: API_IQ_OTHER_RP; a subquery's statement error, api__iq_sub_error_is, too) and
 * "database not found" (2: API_IQ_NO_DB's; API_IQ_NO_DB_NAME too) do; 0 for another reason or
 * NULL. Of a list's sources, the highest is the statement's: influxd looks every source's
 * database up before any policy. */
int api__iq_from_stops(const char *why);
/* What is left of why, a source's *unsupported, for a statement that takes any database and
 * policy before the name (SHOW TAG KEYS, SHOW TAG VALUES, as influxd 1.6.7 answers them from the
 * name alone; the others, and the cardinality forms, end the run there): NULL where
 * api__iq_from_stops, but API_IQ_FROM_RE for a regex (name: the source read); why otherwise. */
const char *api__iq_from_name_alone(const char *why, const qtoken_t *name);
/* The statement's database as SHOW TAG KEYS and SHOW TAG VALUES look it up in influxd 1.6.7
 * before any source, FROM's databases and policies aside: with the query's rp= a policy vigild
 * does not hold, ON's name or else db= (api__iq_other_policy's API_IQ_NO_DB_NAME or API_IQ_NO_DB
 * and the name) sets *unsupported; else it is left (vigild answers any database from its one
 * store when it refuses no policy). Returns 0, or -1 (out of memory, answered). */
int api__iq_tag_database(api_request_t *r, qscan_t *s, const char **unsupported);
/* A regex as a source: the reason vigild answers no such statement. */
#define API_IQ_FROM_RE "a regular expression in FROM"

/* Reads an expression by influxd's grammar for its parse errors only, keeping nothing
 * (influxql_select_read.c): what vigild does not answer in a WHERE is read on, so that a
 * parse error after it is influxd's 400. Returns 0, or -1 (parse error answered). */
int api__iq_skim_condition(api_request_t *r, qscan_t *s);

/* The statements of influxql_show.c and influxql_select.c, s just after their keywords (SHOW
 * MEASUREMENTS, SHOW FIELD KEYS, SHOW TAG KEYS, SHOW TAG VALUES; SELECT). Each reads its
 * statement to its end; run NULL: only read (the first pass). Return 0 (run: the result added),
 * 1 (failed: run->err, a statement error in a 200), or -1 (a parse error: the answer set). */
int api__iq_show_measurements(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_show_field_keys(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_show_tag_keys(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_show_tag_values(api_request_t *r, qscan_t *s, qrun_t *run);
/* SHOW SERIES (influxql_series.c), read and returning as the ones above. */
/* Reads BY time [ASC|DESC] (s: after ORDER) as influxd's parseSortFields
 * (influxql_select_clauses.c), setting *desc for DESC. Returns 0, or -1 (influxd's 400
 * answered). */
int api__iq_order_by(api_request_t *r, qscan_t *s, int *desc);
int api__iq_show_series(api_request_t *r, qscan_t *s, qrun_t *run);
/* SHOW MEASUREMENT, TAG KEY, FIELD KEY [EXACT] CARDINALITY (influxql_card.c), s after those
 * keywords, read and returning as the ones above; SHOW TAG VALUES [EXACT] CARDINALITY is
 * api__iq_show_tag_values' (it hands it to api__iq_card_tag_values, s after VALUES). */
int api__iq_card_measurements(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_card_tag_keys(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_card_field_keys(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_card_tag_values(api_request_t *r, qscan_t *s, qrun_t *run);

/* Counts, for the cardinality statement running (run->count set), one series its list statement
 * lists: measurement name (borrowed) with n > 0 values. The count's row, if it has one per
 * measurement, is written to run->b at once, after the list's api__q_result_open, so that a
 * count holds no more than its answer; its bound (API_PAGE_BYTES) is the list's walk's to check.
 * Any thread. */
void api__iq_count_series(qrun_t *run, const char *name, size_t n);

/* Whether run's cardinality statement (run->count) has read a GROUP BY, which it answers with
 * api__iq_card_group_error whatever is counted: its list statement, its own errors found, then
 * walks nothing. 0 when no count runs. Any thread. */
int api__iq_count_none(const qrun_t *run);

/* Reads a cardinality statement's GROUP BY dimension, ... if one is next (after its WHERE), as
 * influxd 1.6.7 parses it (its parse errors), into s->card_group. Returns 0, or -1 (parse error
 * answered). */
int api__iq_card_group_by(api_request_t *r, qscan_t *s);

/* When s->card_group is set, answers its statement error and returns 1; else 0. influxd
 * rewrites a cardinality statement with GROUP BY into a SELECT count(...) and answers a count
 * per group, which vigild does not; a dimension influxd refuses (a literal, a call other than
 * time(), time() of arguments it refuses) is influxd's own error, which ends the run. */
int api__iq_card_group_error(qrun_t *run, const qscan_t *s);
/* Reads a GROUP BY time() dimension, s after "time" at its '(' (influxql_select_clauses.c), as
 * SELECT reads one: *err is influxd 1.6.7's statement error for its arguments (in s's query
 * memory; NULL: none), *nonzero whether its interval is not 0 (again: one such was read before,
 * "multiple time dimensions not allowed"). Returns 0, or -1 (parse error answered). */
int api__iq_time_dimension_error(api_request_t *r, qscan_t *s, int again, const char **err,
                                 int *nonzero);
int api__iq_select(api_request_t *r, qscan_t *s, qrun_t *run);

/* The database statements of influxql_db.c, s just after their keywords (SHOW DATABASES, SHOW
 * RETENTION POLICIES, CREATE DATABASE), read and returning as the ones above. */
int api__iq_show_databases(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_show_retention_policies(api_request_t *r, qscan_t *s, qrun_t *run);
int api__iq_create_database(api_request_t *r, qscan_t *s, qrun_t *run);

/* SELECT's writers of a time and a float, for influxql_vigil.c (influxql_select_values.c). */
void api__iq_put_time(sbuf_t *b, const qrun_t *run, int64_t ms);
void api__iq_go_float(sbuf_t *b, double v);

/* ---- vigild's own series (influxql_vigil.c) ---- */

/* The reserved measurements: IQV_NONE for any other name (a device). */
enum iqv_kind { IQV_NONE, IQV_PREDICTIONS, IQV_SCORES, IQV_ANOMALIES, IQV_KINDS };
enum iqv_kind api__iqv_kind(const char *measurement);
/* The reserved names, sorted in byte order, NULL-terminated: SHOW MEASUREMENTS lists them. */
extern const char *const api__iqv_listed[];

/* be.device_get and be.query for SELECT FROM measurement: the backend's for a device, vigild's
 * predictions or scores for vigil_predictions and vigil_scores (the device's facts: the first
 * and last prediction's time; its fields). Same returns as the backend's. */
int api__iqv_device_get(api_request_t *r, const char *measurement, const char *device,
                        api_device_cb cb, void *arg);
int api__iqv_query(api_request_t *r, const char *measurement, const api_query_t *q, api_point_cb cb,
                   void *arg);

/* What SELECT FROM vigil_anomalies asks (borrowed from the statement read). */
#define IQV_FIELDS_MAX 16
typedef struct {
    const char *from, *device, *device_re; /* device, device_re: "" : none */
    int nf, agg, group_tag, desc;
    const char *field[IQV_FIELDS_MAX], *col[IQV_FIELDS_MAX]; /* each field's name and column */
    int64_t lo_ns, hi_ns; /* inclusive; INT64_MIN / INT64_MAX: open */
    long long limit, offset;
    long long slimit, soffset; /* SLIMIT (0: none) and SOFFSET, of the series in id order */
} iqv_select_t;

/* Answers SHOW FIELD KEYS FROM a reserved measurement (vigil_predictions: every device's
 * channels), its fields from OFFSET, at most LIMIT (0: all). Returns 0, or 1 (failed: run->err). */
int api__iqv_field_keys(api_request_t *r, qrun_t *run, const char *measurement, long long limit,
                        long long offset);

/* Appends that answer's one series ({"name":...}) to b, its fields from offset, at most limit
 * (0: all), with run's chunked=true a document every chunk_size fields, as influxd 1.6.7 cuts
 * them; nothing when none is kept (vigil_predictions with no device channel). Sets *nfields to
 * its number of fields, all of them (b NULL: that number alone, as a cardinality statement
 * counts them). Reads api__iq_devices: not to be called inside a device walk. Returns 0, or the
 * backend's error (b may then hold part of a series). */
int api__iqv_field_keys_series(api_request_t *r, const qrun_t *run, sbuf_t *b,
                               const char *measurement, long long limit, long long offset,
                               size_t *nfields);

/* Whether name is one of vigil_scores' or vigil_anomalies' own fields (k: IQV_SCORES or
 * IQV_ANOMALIES; 0 for any other kind: vigil_predictions' fields are the devices' channels). */
int api__iqv_own_field(enum iqv_kind k, const char *name);

/* Answers SELECT FROM vigil_anomalies into run->b. Returns 0, or 1 (failed: run->err). */
int api__iqv_anomalies(api_request_t *r, qrun_t *run, const iqv_select_t *v);

#endif
