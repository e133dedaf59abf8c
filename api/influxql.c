/* api/influxql.c: POST|GET /query, the InfluxDB v1 query endpoint: its parameters (the bound
 * ones, params, are influxql_params.c's), the query's statements, one or several, read and each
 * handed to the file that answers it (q_statements: CREATE DATABASE, SHOW DATABASES and SHOW
 * RETENTION POLICIES in influxql_db.c, the schema SHOWs in influxql_show.c, SELECT in
 * influxql_select.c), and the answer sent as influxd 1.6.7 sends it (run_query); other
 * statements are a 400 that points to the JSON API.
 *
 * A statement is read with influxd's own tokens and positions (the qs_* reader below), so a
 * typo gets influxd's parse error, word for word, rather than a success or vigild's own
 * words; every rule was checked against influxd 1.6.7 (test_influx_errors.py
 * QueryParseErrors). A query is read twice: once to parse all of it (a parse error anywhere
 * runs nothing, as in influxd), then to run its statements in order. Any thread; this file
 * takes no lock (the statements' files say theirs). */
#include "influxql.h"
#include "api_int.h"
#include "err.h"
#include "vtime.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- InfluxQL's tokens, cut as influxd 1.6.7 cuts them ------------------------------------
 * vigild answers three statements, but a typo in one should get the parse error influxd gives
 * ("error parsing query: found X, expected identifier at line L, char C"), not "database not
 * found". So what follows the statement's keywords is read token by token by influxd's rules
 * (its influxql scanner; every rule below was checked against influxd 1.6.7,
 * test_influx_errors.py QueryParseErrors lists the statements): blanks are ' ', '\t', '\r',
 * '\n' and -- and / * * / comments; an identifier is an ASCII letter or '_' then letters,
 * digits and '_', or double-quoted with the escapes \\ \" \' \n and no newline (a bare prefix
 * before the quote is dropped, as influxd does); a keyword is not an identifier. Positions
 * count code points from 1, with influxd's quirks: a single-quoted string or an unterminated
 * quote is placed one character early, a bad escape one after its backslash, the end two after
 * the last token. */

/* InfluxQL 1.6.7's keywords (each one influxd refuses as a database name), sorted. */
/* clang-format off */
static const char *const q_keywords[] = {
    "ALL", "ALTER", "ANALYZE", "AND", "ANY", "AS", "ASC", "BEGIN", "BY", "CARDINALITY",
    "CONTINUOUS", "CREATE", "DATABASE", "DATABASES", "DEFAULT", "DELETE", "DESC", "DESTINATIONS",
    "DIAGNOSTICS", "DISTINCT", "DROP", "DURATION", "END", "EVERY", "EXACT", "EXPLAIN", "FALSE",
    "FIELD", "FOR", "FROM", "GRANT", "GRANTS", "GROUP", "GROUPS", "IN", "INF", "INSERT", "INTO",
    "KEY", "KEYS", "KILL", "LIMIT", "MEASUREMENT", "MEASUREMENTS", "NAME", "OFFSET", "ON", "OR",
    "ORDER", "PASSWORD", "POLICIES", "POLICY", "PRIVILEGES", "QUERIES", "QUERY", "READ",
    "REPLICATION", "RESAMPLE", "RETENTION", "REVOKE", "SELECT", "SERIES", "SET", "SHARD", "SHARDS",
    "SHOW", "SLIMIT", "SOFFSET", "STATS", "SUBSCRIPTION", "SUBSCRIPTIONS", "TAG", "TO", "TRUE",
    "USER", "USERS", "VALUES", "WHERE", "WITH", "WRITE",
};
/* clang-format on */

static int q_keyword_cmp(const void *key, const void *elem)
{
    return strcasecmp(key, *(const char *const *)elem);
}

/* Steps over one byte, keeping the position. */
static void qs_step(qscan_t *s)
{
    unsigned char c = (unsigned char)*s->p++;
    if (c == '\n') {
        s->line++;
        s->col = 0;
    } else if ((c & 0xC0) != 0x80) {
        s->col++; /* a code point's first byte */
    }
}

void api__qs_step(qscan_t *s)
{
    qs_step(s);
}

/* The memory of reading q (qmem_t): its tokens' texts, 2 bytes for each of q's and the end's.
 * Returns 0, or -1 when out of memory. */
static int qmem_init(qmem_t *m, const char *q)
{
    m->q = q;
    m->blocks = NULL;
    m->params = NULL;
    m->budget = (qbudget_t){0};
    m->text = malloc(2 * (strlen(q) + 1));
    return m->text ? 0 : -1;
}

struct qblock {
    struct qblock *next;
    max_align_t data[]; /* api__qs_alloc's bytes */
};

static void qmem_deinit(qmem_t *m)
{
    while (m->blocks != NULL) {
        struct qblock *b = m->blocks;
        m->blocks = b->next;
        free(b);
    }
    free(m->text);
    m->text = NULL;
}

void *api__qs_alloc(qscan_t *s, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct qblock))
        return NULL;
    struct qblock *b = malloc(sizeof *b + n);
    if (b == NULL)
        return NULL;
    b->next = s->mem->blocks;
    s->mem->blocks = b;
    return b->data;
}

/* Starts reading m's query at `at` (a point inside it: after the statement's keywords). */
static void qs_init(qscan_t *s, qmem_t *m, const char *at)
{
    s->mem = m;
    m->budget = (qbudget_t){0}; /* a budget per pass: the second reads what the first did */
    s->w = m->text;
    s->p = m->q;
    s->line = s->col = 0;
    while (s->p < at)
        qs_step(s);
    s->end_line = s->line;
    s->end_col = s->col;
    s->end_number = 0;
    s->end_op = 0;
    s->re_alts = 0;
    s->depth = 0;
    s->card = 0;
    s->card_limit = s->card_offset = 0;
    s->card_time = NULL;
    s->on_db = NULL;
    s->every_db = 0;
}

static int q_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

int api__q_digit(char c)
{
    return c >= '0' && c <= '9';
}

void api__iq_quote_ident(sbuf_t *b, const char *name)
{
    api__iq_quote_ident_as(b, name, 0);
}

void api__iq_quote_ident_as(sbuf_t *b, const char *name, int quote)
{
    quote = quote || !q_letter(name[0]) ||
            bsearch(name, q_keywords, sizeof q_keywords / sizeof q_keywords[0],
                    sizeof q_keywords[0], q_keyword_cmp) != NULL;
    for (const char *c = name; *c && !quote; c++)
        quote = !q_letter(*c) && !api__q_digit(*c);
    if (quote)
        sbuf_append(b, "\"", 1);
    for (const char *c = name; *c; c++)
        if (*c == '\n' || *c == '\\' || *c == '"')
            sbuf_printf(b, "\\%c", *c == '\n' ? 'n' : *c);
        else
            sbuf_append(b, c, 1);
    if (quote)
        sbuf_append(b, "\"", 1);
}

/* Appends the byte c to the text of t, the token s reads (at s->w: t->text). */
static void qt_put(qscan_t *s, qtoken_t *t, char c)
{
    s->w[t->len++] = c;
    s->w[t->len] = '\0';
}

/* Skips blanks and comments. Returns 0, or -1 at an unterminated / * comment (p on it). A
 * comment is a token to influxd 1.6.7's scanner: the end of input is placed after the last one,
 * as after a name (-- to the line's end: "SELECT * FROM --x" 19 of 17) or a number (/ * * /:
 * one closer), never right after an operator's. */
static int qs_blank(qscan_t *s)
{
    for (;;) {
        int block = s->p[0] == '/' && s->p[1] == '*';
        if (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n') {
            qs_step(s);
            continue;
        } else if (s->p[0] == '-' && s->p[1] == '-') {
            while (*s->p != '\0' && *s->p != '\n')
                qs_step(s);
        } else if (block) {
            const char *close = strstr(s->p + 2, "*/");
            if (close == NULL)
                return -1;
            while (s->p < close + 2)
                qs_step(s);
        } else {
            return 0;
        }
        s->end_line = s->line;
        s->end_col = s->col;
        s->end_number = block;
        s->end_op = 0;
    }
}

/* Reads the quoted text at p (its quote: ' or ") into t's text. Returns 0, or -1 for a bad
 * one, t then influxd's error token: the text so far for a newline or the end before the
 * closing quote, the backslash and its character for an escape InfluxQL refuses. */
static int qs_quoted(qscan_t *s, qtoken_t *t)
{
    char quote = *s->p;
    t->line = s->line + 1;
    t->col = s->col; /* influxd's quirk: one character early */
    t->len = 0;
    s->w[0] = '\0';
    qs_step(s);
    while (*s->p != quote) {
        char c = *s->p;
        if (c == '\0' || c == '\n')
            return -1;
        if (c == '\\') {
            int col = s->col;
            qs_step(s);
            c = *s->p;
            if (c == 'n') {
                c = '\n';
            } else if (c == '\0' || !strchr("\\\"'", c)) {
                t->len = 0;
                qt_put(s, t, '\\');
                if (c != '\0')
                    do { /* the whole character after the backslash */
                        qt_put(s, t, *s->p);
                        qs_step(s);
                    } while ((*s->p & 0xC0) == 0x80);
                t->col = col + 2;
                return -1;
            }
        }
        qt_put(s, t, c);
        qs_step(s);
    }
    qs_step(s);
    return 0;
}

/* Reads an identifier at p (a letter, '_' or '"') into t: QT_IDENT, QT_BAD (a bad quoted
 * part), or with lookup QT_KEYWORD (text upper case) when it is one. */
static void qs_ident(qscan_t *s, qtoken_t *t, int lookup)
{
    int line = s->line + 1, col = s->col + 1;
    for (;;) {
        if (*s->p == '"') {
            t->kind = qs_quoted(s, t) ? QT_BAD : QT_IDENT;
            if (t->kind == QT_IDENT) {
                t->line = line;
                t->col = col;
            }
            return;
        }
        if (!q_letter(*s->p) && !api__q_digit(*s->p))
            break;
        qt_put(s, t, *s->p);
        qs_step(s);
    }
    t->kind = QT_IDENT;
    t->line = line;
    t->col = col;
    const char *const *kw = NULL;
    if (lookup)
        kw = bsearch(t->text, q_keywords, sizeof q_keywords / sizeof q_keywords[0],
                     sizeof q_keywords[0], q_keyword_cmp);
    if (kw != NULL) {
        t->kind = QT_KEYWORD;
        t->len = strlen(*kw);
        t->text = *kw;
    }
}

/* Reads a number at p (digits, or '.' and a digit) as influxd prints it: "1", "1.5", ".5", or a
 * duration ("1h", "1µs", "1x", and letters and digits after). */
static void qs_number(qscan_t *s, qtoken_t *t)
{
    static const char micro[] = "\xC2\xB5"; /* µ */
    while (api__q_digit(*s->p)) {
        qt_put(s, t, *s->p);
        qs_step(s);
    }
    if (s->p[0] == '.' && api__q_digit(s->p[1])) {
        do {
            qt_put(s, t, *s->p);
            qs_step(s);
        } while (api__q_digit(*s->p));
        return;
    }
    if (*s->p == '.') { /* "5.": the NUMBER "5", the '.' read (influxd's scanNumber) */
        qs_step(s);
        t->form = QF_DECIMAL;
        return;
    }
    for (int n = 0;; n++) {
        int mu = strncmp(s->p, micro, 2) == 0;
        char c = *s->p;
        if (!mu && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            !(n > 0 && api__q_digit(c)))
            return;
        for (int i = 0; i < (mu ? 2 : 1); i++) {
            qt_put(s, t, *s->p);
            qs_step(s);
        }
    }
}

/* Reads an operator or any other character at p as influxd prints it: "=~", "!=" (for <> too),
 * "!~", "<=", ">=", "::", or the one character (a whole UTF-8 sequence). */
static void qs_other(qscan_t *s, qtoken_t *t)
{
    static const char *const pairs[][2] = {{"=~", "=~"}, {"!=", "!="}, {"!~", "!~"}, {"<=", "<="},
                                           {"<>", "!="}, {">=", ">="}, {"::", "::"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (strncmp(s->p, pairs[i][0], 2) == 0) {
            qt_put(s, t, pairs[i][1][0]);
            qt_put(s, t, pairs[i][1][1]);
            qs_step(s);
            qs_step(s);
            return;
        }
    }
    do {
        qt_put(s, t, *s->p);
        qs_step(s);
    } while ((*s->p & 0xC0) == 0x80);
}

/* Reads the next token into t. */
void api__qs_next(qscan_t *s, qtoken_t *t)
{
    int open_comment = qs_blank(s);
    int line = s->line + 1, col = s->col + 1;
    /* A token's text is never longer than its span of the query (a keyword's upper case, "!="
     * for "<>", an unquoted name; fixed names like "EOF" are static), so at twice its offset
     * it ends before the next token's text begins. */
    s->w = s->mem->text + 2 * (size_t)(s->p - s->mem->q);
    s->w[0] = '\0';
    t->text = s->w;
    t->len = 0;
    t->value = NULL;
    t->line = line;
    t->col = col;
    t->form = QF_NONE;
    char c = *s->p;
    if (open_comment) {
        t->kind = QT_OTHER;
        t->text = "ILLEGAL";
        t->len = 7;
        s->p += strlen(s->p); /* nothing after it is read */
    } else if (c == '\0') {
        t->kind = QT_EOF;
        t->text = "EOF";
        t->len = 3;
        t->line = s->end_line + 1;
        /* influxd's quirk: one less after a number or a string */
        t->col = s->end_col + (s->end_number ? 1 : 2);
        return;
    } else if (c == ';') {
        t->kind = QT_SEMI;
        qt_put(s, t, ';');
        qs_step(s);
    } else if (q_letter(c) || c == '"') {
        qs_ident(s, t, 1);
    } else if (c == '\'') {
        t->kind = qs_quoted(s, t) ? QT_BAD : QT_STRING; /* never a name nor an operator */
    } else if (api__q_digit(c) || (c == '.' && api__q_digit(s->p[1]))) {
        t->kind = QT_NUMBER;
        qs_number(s, t);
    } else if (c == '$') {
        qs_step(s);
        qs_ident(s, t, 0); /* a bound parameter: "$" and an identifier, printed "$x" */
        memmove(s->w + 1, s->w, t->len); /* "$" and the name fit the token's span */
        s->w[0] = '$';
        s->w[++t->len] = '\0';
        t->text = s->w;
        t->kind = QT_OTHER;
        t->line = line;
        t->col = col;
        api__qs_bind(s, t);
    } else {
        t->kind = QT_OTHER;
        qs_other(s, t);
    }
    if (t->kind == QT_STRING)
        t->value = t->text; /* kept "" for '' */
    /* influxd prints a token with no text by its kind's name (its tokstr): '' is "STRING", a
     * quote closed by nothing or a newline before any character "BADSTRING". Only the printed
     * text: the value of '' stays "" (t->value). */
    if (t->len == 0 && (t->kind == QT_BAD || t->kind == QT_STRING)) {
        t->text = t->kind == QT_BAD ? "BADSTRING" : "STRING";
        t->len = strlen(t->text);
    }
    s->end_line = s->line;
    s->end_col = s->col;
    /* "SELECT 'x'": 11 of 10; "SELECT mean(x)": 18 of 17 */
    int close = t->kind == QT_OTHER && strcmp(t->text, ")") == 0;
    s->end_number = t->kind == QT_NUMBER || t->kind == QT_STRING || close;
    s->end_op = t->kind == QT_OTHER && strcmp(t->text, ",") != 0 && !close;
}

/* If s's next tokens are the keywords kw[0..] (upper case, NULL-terminated), read by influxd's
 * rules (so blanks and comments may come before and between them), moves s past them and
 * returns 1; else leaves s as it is and returns 0. */
static int statement(qscan_t *s, const char *const *kw)
{
    qscan_t at = *s;
    qtoken_t t;
    for (; *kw != NULL; kw++) {
        api__qs_next(&at, &t);
        if (!api__q_is(&t, *kw))
            return 0;
    }
    *s = at;
    return 1;
}

/* The length of the white space at p as Go's unicode.IsSpace has it (ASCII's six, then U+0085,
 * U+00A0 and Unicode's other spaces in UTF-8), 0 when none. */
static size_t go_space(const char *p)
{
    /* U+0085 in bytes: C has no \u for a character below U+00A0. */
    static const char *const wide[] = {"\xC2\x85", "\u00A0", "\u1680", "\u2000", "\u2001",
                                       "\u2002",   "\u2003", "\u2004", "\u2005", "\u2006",
                                       "\u2007",   "\u2008", "\u2009", "\u200A", "\u2028",
                                       "\u2029",   "\u202F", "\u205F", "\u3000"};
    if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        return 1;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (strncmp(p, wide[i], strlen(wide[i])) == 0) /* stops at p's NUL */
            return strlen(wide[i]);
    return 0;
}

/* Trims q of Go's white space at both ends, as influxd does (strings.TrimSpace) before it
 * parses: it then counts positions from the first character left, and takes a query ending in
 * '\v' or U+3000. Returns the first character left; q's end is moved in place. */
static char *trim_go_space(char *q)
{
    size_t n;
    while ((n = go_space(q)) > 0)
        q += n;
    char *end = q; /* after the last character that is not a space */
    for (char *p = q; *p != '\0';) {
        n = go_space(p);
        p += n > 0 ? n : 1; /* a UTF-8 continuation byte never starts a space */
        if (n == 0)
            end = p;
    }
    *end = '\0';
    return q;
}

/* The statements /query answers but CREATE DATABASE (q_statements checks its role first): each
 * by its keywords, and its function (s after the keywords; the return as api__iq_select's). */
static const struct {
    const char *kw[4];
    int (*answer)(api_request_t *r, qscan_t *s, qrun_t *run);
} q_answered[] = {
    {{"SHOW", "DATABASES", NULL}, api__iq_show_databases},
    {{"SHOW", "RETENTION", "POLICIES", NULL}, api__iq_show_retention_policies},
    {{"SHOW", "MEASUREMENTS", NULL}, api__iq_show_measurements},
    {{"SHOW", "FIELD", "KEYS", NULL}, api__iq_show_field_keys},
    {{"SHOW", "TAG", "KEYS", NULL}, api__iq_show_tag_keys},
    {{"SHOW", "TAG", "VALUES", NULL}, api__iq_show_tag_values},
    {{"SHOW", "SERIES", NULL}, api__iq_show_series},
    {{"SHOW", "MEASUREMENT", NULL}, api__iq_card_measurements},
    {{"SHOW", "TAG", "KEY", NULL}, api__iq_card_tag_keys},
    {{"SHOW", "FIELD", "KEY", NULL}, api__iq_card_field_keys},
    {{"SELECT", NULL}, api__iq_select},
};

static void result_error(qrun_t *run, int id, const char *err, int not_executed);

/* Adds the error influxd sends as the statement's own result and runs on after
 * (run->err_goes_on), under its id, and clears it for the next statement. */
static void result_sent(qrun_t *run)
{
    result_error(run, run->id, run->err ? run->err : "out of memory", 0);
    free(run->err);
    run->err = NULL;
    run->err_nomem = run->err_goes_on = 0;
    run->id++;
}

/* Reads a failed statement again from *start (just after its keywords) as the first pass
 * read it, to place *s at its end: a statement whose error the run goes on after may have
 * stopped reading at it (a vigild "does not support" error). m's budgets are put back as they
 * were when it started (*budget), so the pass spends on it what the first pass did. Returns 1
 * (the statement's "failed"), or -1 with the answer set should the read fail. */
static int reread(api_request_t *r, qmem_t *m, const qbudget_t *budget, qscan_t *s,
                  const qscan_t *start, int (*answer)(api_request_t *, qscan_t *, qrun_t *))
{
    m->budget = *budget;
    *s = *start;
    return answer(r, s, NULL) < 0 ? -1 : 1;
}

/* Reads q's statements (run NULL: the first pass, which only parses, so that a parse error
 * anywhere runs nothing, as influxd parses a whole query first), or runs them (the second pass:
 * results into run->b, up to the first that fails; past one whose error influxd goes on
 * after). Statements are separated by ';' (empty ones skipped), as in influxd's ParseQuery. Returns
 * the number of statements read (all of them in the first pass), or -1 with the answer set. Any
 * thread. */
static int q_statements(api_request_t *r, qmem_t *m, qrun_t *run)
{
    static const char *const create_db[] = {"CREATE", "DATABASE", NULL};
    qscan_t s;
    qtoken_t t;
    int n = 0;
    qs_init(&s, m, m->q);
    for (;;) {
        qscan_t at = s;
        api__qs_next(&s, &t);
        if (t.kind == QT_EOF)
            return n;
        if (t.kind == QT_SEMI)
            continue;
        s = at;
        s.re_alts = 0; /* a budget per statement */
        s.card = 0;
        s.on_db = NULL;
        if (api__q_deadline_passed(run)) {
            api__q_timeout_error(run); /* this statement's error; those after it not run */
            return n + 1;
        }
        int rc;
        size_t k = 0, nk = sizeof q_answered / sizeof q_answered[0];
        qbudget_t budget = m->budget; /* as the statement starts (reread) */
        if (statement(&s, create_db)) {
            if (r->role >= 0 && r->role < API_ROLE_WRITE) {
                /* GET /query takes a read token (SHOW ...), but a name kept is a disk write. */
                api__error(r, 403, "forbidden: a '%s' token cannot CREATE DATABASE (needs 'write')",
                           api_role_name((api_role_t)r->role));
                return -1;
            }
            rc = api__iq_create_database(r, &s, run);
        } else {
            while (k < nk && !statement(&s, q_answered[k].kw))
                k++;
            if (k == nk) {
                api__error(r, 400,
                           "vigild answers only SELECT, SHOW MEASUREMENTS, SHOW FIELD KEYS, SHOW "
                           "TAG KEYS, SHOW TAG VALUES, SHOW SERIES, their CARDINALITY "
                           "statements, CREATE DATABASE, SHOW DATABASES and SHOW RETENTION "
                           "POLICIES on /query");
                return -1;
            }
            qscan_t start = s;
            rc = q_answered[k].answer(r, &s, run);
            if (run != NULL && rc > 0 && run->err_goes_on)
                rc = reread(r, m, &budget, &s, &start, q_answered[k].answer);
        }
        if (rc < 0)
            return -1;
        n++;
        if (run != NULL && rc > 0 && run->err_goes_on) {
            result_sent(run); /* its result, and on to the next, as influxd goes on */
        } else if (run != NULL && rc > 0) {
            return n; /* the run stops at a failed statement, as in influxd */
        } else if (run != NULL) {
            api__q_result_close(run);
            run->id++;
        }
    }
}

/* The most bytes a failed statement's result is written with past API_PAGE_BYTES as it is
 * (the bound's own errors, some 200 bytes, included); a longer one is replaced. */
#define ERR_SHORT_MAX 512

/* Adds one result under id: the error err, or "not executed"; an error taking the answer past
 * its bound is replaced by the bound's own. */
static void result_error(qrun_t *run, int id, const char *err, int not_executed)
{
    size_t mark = run->b.len;
    int oom = run->b.oom, keep = run->id;
    run->id = id;
    api__q_result_open(run);
    sbuf_printf(&run->b, ",\"error\":");
    api__iq_str(&run->b, not_executed ? "not executed" : err);
    api__q_result_close(run);
    if (!not_executed && run->b.len > API_PAGE_BYTES && run->b.len - mark > ERR_SHORT_MAX) {
        /* The error quotes a name of the query (up to 64 KiB, 384 KiB escaped) and takes the
         * answer past its bound: the bound's error instead, as for rows past it. */
        run->b.len = mark;
        run->b.oom = oom;
        api__q_result_open(run);
        sbuf_printf(&run->b, ",\"error\":\"%s: the failed statement's error is left out\"",
                    API_IQ_TOO_BIG);
        api__q_result_close(run);
    }
    run->id = keep;
}

/* Adds the failed statement's result (run->id) as influxd 1.6.7 sends it: its error, then
 * "not executed" under the same id for each of the `left` statements after it. Answered whole,
 * influxd keeps only the last result of an id (its handler lets an error replace the one
 * before), so there it is the error when it was the last statement, else "not executed".
 * An error of influxd's rewrite (run->err_rewrite) is sent under id 0, whatever the statement:
 * answered whole, it replaces statement 0's result when statement 1 failed, and follows the
 * results before it under id 0 when a later one did (the "not executed" after it, under the
 * statement's id, then kept beside it). */
static void result_failed(qrun_t *run, const char *err, int left)
{
    if (run->err_rewrite && run->id > 0) {
        if (!run->chunked && run->id == 1)
            run->b.len = strlen("{\"results\":["); /* statement 0's result replaced */
        else if (!run->chunked)
            sbuf_printf(&run->b, ","); /* after the results before it: id 0 writes none */
        result_error(run, 0, err, 0);
        for (int i = 0; i < (run->chunked ? left : left > 0); i++)
            result_error(run, run->id, err, 1);
        return;
    }
    int sent = run->chunked ? 1 + left : 1;
    for (int i = 0; i < sent; i++)
        result_error(run, run->id, err, run->chunked ? i > 0 : left > 0);
}

/* The escape Go's encoding/json (influxd's writer) writes for the bytes at p (before end) where
 * vigild's api__json_str keeps them: '<', '>' and '&' as \u003c, \u003e and \u0026, U+2028
 * and U+2029 as \u2028 and \u2029 (so that an answer put in HTML stays inert). Returns the
 * 6-byte escape and sets *n to the bytes it stands for (1 or 3), or NULL (none at p). */
static const char *go_esc(const unsigned char *p, const unsigned char *end, size_t *n)
{
    *n = 1;
    if (*p == '<')
        return "\\u003c";
    if (*p == '>')
        return "\\u003e";
    if (*p == '&')
        return "\\u0026";
    if (*p == 0xe2 && end - p >= 3 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
        *n = 3;
        return p[2] == 0xa8 ? "\\u2028" : "\\u2029";
    }
    return NULL;
}

/* Writes s as a JSON string as Go's encoding/json writes it: api__json_str's string (the JSON
 * routes' writer, which they keep), its go_esc bytes then escaped where they are, in place.
 * Every string of a /query answer is written here, so the answer's length is the length sent
 * and its bound (API_PAGE_BYTES) holds for the escaped bytes; no byte go_esc escapes appears
 * in JSON outside a string. Out of memory: b->oom, as any append. */
void api__iq_str(sbuf_t *b, const char *s)
{
    size_t start = b->len, n;
    api__json_str(b, s);
    if (b->oom)
        return;
    const unsigned char *p = (const unsigned char *)b->data + start;
    const unsigned char *end = (const unsigned char *)b->data + b->len;
    size_t grow = 0;
    for (; p < end; p += n)
        if (go_esc(p, end, &n) != NULL)
            grow += 6 - n;
    if (grow == 0)
        return; /* nothing to escape (the usual string) */
    size_t len = b->len;
    if (grow > INT_MAX) {
        b->oom = 1; /* a string of 400 MB, never one vigild holds: as sbuf's own growth fails */
        return;
    }
    if (sbuf_printf(b, "%*s", (int)grow, "") != 0)
        return; /* b->oom */
    /* From the end back, each byte once: an escape is never wider than the room left before
     * it, so the bytes not yet moved are never overwritten. */
    unsigned char *d = (unsigned char *)b->data, *w = d + len + grow;
    size_t i = len;
    while (i > start) {
        const char *esc = NULL;
        n = 1;
        if (i - start >= 3 && d[i - 3] == 0xe2)
            esc = go_esc(d + i - 3, d + i, &n);
        if (esc == NULL || n != 3)
            esc = go_esc(d + i - 1, d + i, &n);
        if (esc == NULL) {
            *--w = d[--i];
            continue;
        }
        i -= n;
        w -= 6;
        memcpy(w, esc, 6);
    }
}

/* Rewrites b as go_esc escapes it, for an error answer (a 400 of q's parse, whose message
 * request.c writes with api__json_str): into a copy when there is anything to escape. b is
 * left as it was when out of memory (an answer still valid JSON). */
static void go_escape(sbuf_t *b)
{
    if (b->len == 0)
        return;
    const unsigned char *p = (const unsigned char *)b->data, *end = p + b->len, *run = p;
    sbuf_t out;
    sbuf_init(&out);
    size_t n;
    for (; p < end; p += n) {
        const char *esc = go_esc(p, end, &n);
        if (esc == NULL)
            continue;
        sbuf_append(&out, (const char *)run, (size_t)(p - run));
        sbuf_append(&out, esc, 6);
        run = p + n;
    }
    if (run == (const unsigned char *)b->data)
        return; /* nothing to escape: no copy */
    sbuf_append(&out, (const char *)run, (size_t)(end - run));
    if (out.oom) {
        sbuf_deinit(&out);
        return;
    }
    sbuf_deinit(b);
    *b = out;
}

/* Escapes the error answer r holds (a 400 of q's parse, in influxd's words) as go_escape does:
 * influxd's "found \u003c, expected ..." for a '<' in the query. */
static void go_escape_error(api_request_t *r)
{
    sbuf_t b = {.data = r->resp, .len = r->resp_len, .cap = r->resp_len};
    go_escape(&b); /* on a copy, freeing r->resp, or leaving it as it was */
    r->resp = b.data;
    r->resp_len = b.len;
}

/* Answers the statements of q (trimmed, not empty) as influxd 1.6.7 answers them (200): whole,
 * {"results":[...]} with a result per statement run, or chunked (chunk_rows above 0: a SELECT
 * series' rows a document at most) a document per result (what the influx shell asks for). A
 * statement that fails ends the run (result_failed), but for an error influxd sends as the
 * statement's result and goes on after (result_sent). A query of no statement (";", a comment) is
 * influxd's {}, chunked an empty body. A query still running http.query_timeout after its
 * statements began (the body read and the query parsed, as influxd starts its query-timeout when it
 * executes the query) fails the one running then with API_IQ_TIMEOUT (checked between statements
 * and inside their device and point walks). */
static void run_query(api_request_t *r, const char *q, long long chunk_rows, int64_t epoch,
                      const json_t *params)
{
    qmem_t m;
    if (qmem_init(&m, q)) {
        api__error(r, 500, "out of memory");
        return;
    }
    m.params = params;
    int n = q_statements(r, &m, NULL);
    if (n < 0) {
        qmem_deinit(&m);
        go_escape_error(r);
        return;
    }
    int chunked = chunk_rows > 0;
    qrun_t run = {
        .chunked = chunked, .chunk_rows = chunk_rows, .epoch = epoch, .now_ms = vtime_now_ms()};
    api__q_deadline_start(&run, r->query_timeout_ms); /* from now: the query is parsed */
    r->read_deadline_us = run.deadline_us; /* a wait for the store's reload ends by it too */
    sbuf_init(&run.b);
    if (!chunked)
        sbuf_printf(&run.b, n > 0 ? "{\"results\":[" : "{");
    int ran = n > 0 ? q_statements(r, &m, &run) : 0;
    qmem_deinit(&m);
    if (ran < 0) {
        free(run.err);
        sbuf_deinit(&run.b);
        go_escape_error(r);
        return;
    }
    if (run.again && run.err != NULL) {
        /* The store reloads after a failed write, or has not published its last commit yet: a
         * transient condition, answered as the JSON routes answer it (503, Retry-After) so that
         * a client retries the query. */
        sbuf_deinit(&run.b);
        r->retry_after = 1;
        api__error(r, 503, "%s", run.err);
        free(run.err);
        return;
    }
    if (run.timed_out && run.err != NULL && strcmp(run.err, API_IQ_TIMEOUT) == 0 && r->srv)
        atomic_fetch_add_explicit(&r->srv->query_timeouts, 1, memory_order_relaxed);
    if (run.err != NULL || run.err_nomem)
        result_failed(&run, run.err ? run.err : "out of memory", n - ran);
    free(run.err);
    if (!chunked)
        sbuf_printf(&run.b, n > 0 ? "]}\n" : "}\n");
    api__body(r, 200, "application/json", &run.b);
}

/* Whether the client asked for chunked answers: chunked=true in the URL or a form body, as
 * influxd's r.FormValue("chunked") == "true" (any other value, too long ones too: not). */
static int chunked_asked(api_request_t *r)
{
    char val[8];
    const char *v = api__iq_form_value(r, "chunked", val, sizeof val);
    return v != NULL && strcmp(v, "true") == 0;
}

/* The unit of the times a SELECT answers, in ns, from the epoch parameter (h, m, s, ms, u or
 * µ, ns, as influxd takes them); 0 (RFC 3339 strings) when absent or another value. */
static int64_t epoch_asked(api_request_t *r)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {{"ns", 1},         {"u", 1000},        {"\xC2\xB5", 1000},  {"ms", 1000000},
                 {"s", 1000000000}, {"m", 60000000000}, {"h", 3600000000000}};
    char val[8];
    const char *v = api__iq_form_value(r, "epoch", val, sizeof val);
    for (size_t i = 0; v != NULL && i < sizeof units / sizeof units[0]; i++)
        if (strcmp(v, units[i].name) == 0)
            return units[i].ns;
    return 0;
}

/* GET|POST /query: q as influxd's r.FormValue reads it (api__iq_arg: a form body's, else the
 * URL's). A q longer than API_IQ_Q_MAX, or holding a NUL byte, is api__arg's 400 from either:
 * one cut to fit would run a query the client did not send (its last name cut short, and kept).
 * The URL's length is bounded before this, by http.max_header_bytes: a longer one is vigild's
 * JSON 414 (server.c head_too_large; past twice the bound, libmicrohttpd's own HTML 414). */
void api__h_query(api_request_t *r)
{
    char *qbuf = malloc(API_IQ_Q_MAX + 1);
    if (qbuf == NULL) {
        api__error(r, 500, "out of memory");
        return;
    }
    const char *q = api__iq_arg(r, "q", qbuf, API_IQ_Q_MAX + 1);
    if (!r->status && q != NULL)
        q = trim_go_space(qbuf); /* both read q into qbuf */
    if (!r->status && (q == NULL || q[0] == '\0') && r->iq_qfile != NULL) {
        /* influxd reads a multipart file "q" when FormValue("q") is blank; a blank file is no
         * statement at all (its {}) */
        if (api__pct_decode(r->iq_qfile, r->iq_qfile_len, qbuf, API_IQ_Q_MAX + 1, 1) < 0)
            api__error(r, 400, "file 'q': longer than %d bytes or holds a NUL byte", API_IQ_Q_MAX);
        else
            q = trim_go_space(qbuf);
    } else if (!r->status && (q == NULL || q[0] == '\0')) {
        if (r->iq_mp_err != NULL) /* influxd's words, and why the body gave no q */
            api__error(r, 400, "missing required parameter \"q\" (%s)", r->iq_mp_err);
        else
            api__error(r, 400, "missing required parameter \"q\"");
    }
    json_t *params = NULL;
    if (!r->status && api__iq_params_asked(r, &params) == 0)
        run_query(r, q, chunked_asked(r) ? api__iq_chunk_size_asked(r) : 0, epoch_asked(r), params);
    json_decref(params);
    free(qbuf);
}
