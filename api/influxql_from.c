/* api/influxql_from.c: a source's name as influxd 1.6.7's parseSource reads it, [db.][rp.]name
 * (no blank around a dot), for SELECT's FROM, the SHOW statements' and SHOW MEASUREMENTS' WITH
 * MEASUREMENT operand, with influxd's parse errors: a regex after the dots, and the token after a
 * name of one or two parts (blanks, ';', ',', a comment) that a '/' follows (influxd has read it
 * before it looks for the regex it allows there).
 *
 * Any thread: it reads the query alone. */
#include "influxql.h"

#include <pthread.h>
#include <string.h>

/* Reads a regex source into *name: its pattern as the text, form QF_REGEX. Returns as
 * api__iq_regex. */
static int regex_source(api_request_t *r, qscan_t *s, qtoken_t *name)
{
    const char *re;
    if (api__iq_regex(r, s, &re))
        return -1;
    name->text = re;
    name->form = QF_REGEX;
    return 0;
}

/* Appends a segment of a name as influxd's QuoteIdent(segments...) writes it in its "too many
 * segments" error: the last as any name; one before it double-quoted, but an empty one after
 * the first (nothing), each then a '.'. */
static void seg_print(sbuf_t *b, const char *seg, int first, int last)
{
    if (last || seg[0] != '\0' || first)
        api__iq_quote_ident_as(b, seg, !last);
    if (!last)
        sbuf_append(b, ".", 1);
}

/* Reads on after db.rp.name (seg: its three segments; s at a '.'), as influxd's
 * parseSegmentedIdents reads a name's segments: '.' and a name (blanks between them too; a '.'
 * right after, an empty one), to a '.' that a '/' follows (read, the segments' end) or a digit
 * (".1", a number: not read). More than three is influxd's 400 "too many segments in ..." (its
 * position always line 1, char 1). Returns 0, or -1 (answered). */
static int more_segments(api_request_t *r, qscan_t *s, const char *const *seg)
{
    sbuf_t b;
    sbuf_init(&b);
    seg_print(&b, seg[0], 1, 0);
    seg_print(&b, seg[1], 0, 0);
    const char *pending = seg[2]; /* the last read: written once the next shows it is not */
    int n = 3;
    while (*s->p == '.' && !api__q_digit(s->p[1])) { /* ".1": a number to influxd's scanner */
        s->p++;
        s->col++;
        s->end_line = s->line;
        s->end_col = s->col;
        s->end_number = 0;
        if (*s->p == '/')
            break;
        qtoken_t t = {.kind = QT_IDENT, .text = ""};
        if (*s->p != '.') /* "..": an empty segment (the last, before ".1") */
            api__qs_next(s, &t);
        if (t.kind != QT_IDENT) {
            sbuf_deinit(&b);
            api__q_parse_error(r, &t, "identifier");
            return -1;
        }
        seg_print(&b, pending, 0, 0);
        pending = t.text;
        n++;
    }
    seg_print(&b, pending, 0, 1);
    if (n > 3 && b.oom)
        api__error(r, 500, "out of memory");
    else if (n > 3)
        api__error(r, 400, "error parsing query: too many segments in %s at line 1, char 1",
                   b.data);
    sbuf_deinit(&b);
    return n > 3 ? -1 : 0;
}

/* Whether db (len bytes) is a database vigild knows it does not have: not listed (SHOW
 * DATABASES: those created or written to, api__db_known) though it would be, had it been created
 * or written to (at most API_DB_NAME_MAX bytes, the list not full). Past those vigild cannot
 * tell a database written to from none: it reads the name alone, as before session 50. */
static int db_unlisted(api_request_t *r, const char *db, size_t len)
{
    if (len > API_DB_NAME_MAX || api__db_known(r->srv, db, len))
        return 0;
    pthread_mutex_lock(&r->srv->dbs_mu);
    int full = r->srv->ndbs >= API_DBS_MAX;
    pthread_mutex_unlock(&r->srv->dbs_mu);
    return !full;
}

/* Whether FROM's database db is one vigild knows it does not have (db_unlisted), and not the
 * query's own db=, which vigild answers from without a lookup when FROM names no database
 * (Grafana's queries); for the query's own database the FROM's naming it changes nothing. */
static int db_not_found(api_request_t *r, const char *db)
{
    char own[API_DB_NAME_MAX + 2];
    const char *q_db = api__iq_form_value(r, "db", own, sizeof own);
    return (q_db == NULL || strcmp(q_db, db) != 0) && db_unlisted(r, db, strlen(db));
}

/* *unsupported is influxd 1.6.7's error prefix (API_IQ_NO_DB or API_IQ_OTHER_RP) then name, in
 * s's blocks, which ends the run as influxd's does. Returns 0, or -1 (out of memory, answered). */
static int influxd_reason(api_request_t *r, qscan_t *s, const char *prefix, const char *name,
                          const char **unsupported)
{
    size_t n = strlen(prefix), k = strlen(name);
    char *why = api__qs_alloc(s, n + k + 1);
    if (why == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    memcpy(why, prefix, n);
    memcpy(why + n, name, k + 1);
    *unsupported = why;
    return 0;
}

/* FROM db.rp.name or db..name with a database vigild does not have (db_not_found): *unsupported
 * is influxd 1.6.7's "database not found: db", which ends the run as its error does. vigild's
 * one store is every database it lists, so a listed one reads the same devices. Returns 0, or -1
 * (out of memory, answered). */
static int no_database(api_request_t *r, qscan_t *s, const char *db, const char **unsupported)
{
    return influxd_reason(r, s, API_IQ_NO_DB, db, unsupported);
}

/* The query's db= when a source names no database and its policy (or rp=) is one vigild does
 * not hold: influxd looks the database up first. Sets *unsupported to API_IQ_NO_DB_NAME (db=
 * absent, empty, or dropped by ParseQuery) or API_IQ_NO_DB and the name (db_unlisted); leaves it
 * for another (a NUL in it: the policy's error, as before). Returns 0, or -1 (out of memory,
 * answered). */
static int param_database(api_request_t *r, qscan_t *s, const char **unsupported)
{
    const char *v;
    size_t n;
    if (!api__iq_form_raw(r, "db", &v, &n) || n == 0) {
        *unsupported = API_IQ_NO_DB_NAME;
        return 0;
    }
    char *db = api__qs_alloc(s, n + 1); /* decoding never lengthens */
    if (db == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    long len = api__pct_decode(v, n, db, n + 1, 1);
    if (len == 0)
        *unsupported = API_IQ_NO_DB_NAME;
    else if (len > 0 && db_unlisted(r, db, (size_t)len))
        return no_database(r, s, db, unsupported);
    return 0;
}

/* The database of a source naming none: ON's (s->on_db), else the query's db= (param_database);
 * *unsupported as api__iq_other_policy says. Returns 0, or -1 (out of memory, answered). */
static int statement_database(api_request_t *r, qscan_t *s, const char **unsupported)
{
    if (s->on_db == NULL)
        return param_database(r, s, unsupported);
    return db_unlisted(r, s->on_db, strlen(s->on_db)) ? no_database(r, s, s->on_db, unsupported)
                                                      : 0;
}

int api__iq_other_policy(api_request_t *r, qscan_t *s, int has_db, const char *rp,
                         const char **unsupported)
{
    const char *v;
    size_t n;
    if (rp[0] == '\0' && api__iq_form_raw(r, "rp", &v, &n)) {
        char *own = api__qs_alloc(s, n + 1); /* in s's blocks: decoding never lengthens */
        if (own == NULL) {
            api__error(r, 500, "out of memory");
            return -1;
        }
        rp = api__pct_decode(v, n, own, n + 1, 1) >= 0 ? own : ""; /* a NUL: read as absent */
    }
    if (rp[0] == '\0' || strcmp(rp, "autogen") == 0)
        return has_db || !s->every_db ? 0 : statement_database(r, s, unsupported);
    if (influxd_reason(r, s, API_IQ_OTHER_RP, rp, unsupported))
        return -1;
    return has_db ? 0 : statement_database(r, s, unsupported);
}

int api__iq_from(api_request_t *r, qscan_t *s, qtoken_t *name, const char **unsupported)
{
    qtoken_t t;
    qscan_t at = *s;
    api__qs_next(s, name);
    if (api__iq_regex_next(&at) || name->form == QF_REGEX) {
        *s = at;
        *unsupported = API_IQ_FROM_RE;
        return regex_source(r, s, name) ? -1 : api__iq_other_policy(r, s, 0, "", unsupported);
    }
    if (name->kind != QT_IDENT) {
        api__q_parse_error(r, name, "identifier");
        return -1;
    }
    /* [db.][rp.]measurement: the last name is the measurement, the one before it the policy. */
    const char *rp = "", *db = name->text; /* borrowed, as the tokens' texts */
    int dots = 0;
    for (; dots < 2 && *s->p == '.' && !api__q_digit(s->p[1]); dots++) { /* no blank before */
        int no_rp = 0;
        s->p++;
        s->col++;
        if (*s->p == '.' && api__q_digit(s->p[1]))
            break; /* "a..1": ".1" is a number to influxd's scanner, the name's end */
        if (dots == 0 && *s->p == '.') { /* db..m: the default policy */
            s->p++;
            s->col++;
            dots++;
            no_rp = 1;
            if (*s->p == '.' && api__q_digit(s->p[1]))
                break; /* "a...1", as "a..1" */
        }
        if (*s->p == '.') /* "a...b", "a.b..c": an empty segment, and more than three */
            return more_segments(r, s, (const char *const[]){db, no_rp ? "" : name->text, ""});
        s->end_line = s->line; /* the end of input is placed after the dots, as by influxd */
        s->end_col = s->col;
        s->end_number = 0;
        if (*s->p == '/') { /* db.rp./re/: a regex after the prefix, as influxd reads it */
            const char *re_rp = no_rp ? "" : name->text; /* rp./re/, db.rp./re/; db../re/ none */
            *unsupported = API_IQ_FROM_RE;
            if (regex_source(r, s, name))
                return -1;
            return dots == 1 && db_not_found(r, db)
                       ? no_database(r, s, db, unsupported) /* db../re/, db.rp./re/ */
                       : api__iq_other_policy(r, s, dots == 1, re_rp, unsupported);
        }
        api__qs_next(s, &t);
        if (t.kind != QT_IDENT) {
            api__q_parse_error(r, &t, "identifier");
            return -1;
        }
        rp = no_rp ? "" : name->text;
        *name = t;
    }
    if (dots < 2 && api__iq_regex_after_name(r, s))
        return -1;
    if (dots == 2 && *s->p == '.' && more_segments(r, s, (const char *const[]){db, rp, name->text}))
        return -1;
    return api__iq_prefix(r, s, db, rp, dots, unsupported); /* another: nothing */
}

int api__iq_prefix(api_request_t *r, qscan_t *s, const char *db, const char *rp, int dots,
                   const char **unsupported)
{
    if (dots == 2 && db_not_found(r, db))
        return no_database(r, s, db, unsupported);
    return api__iq_other_policy(r, s, dots == 2, rp, unsupported);
}

const char *api__iq_from_name_alone(const char *why, const qtoken_t *name)
{
    if (!api__iq_from_stops(why))
        return why;
    return name->form == QF_REGEX ? API_IQ_FROM_RE : NULL; /* db../re/: the regex's reason */
}

int api__iq_tag_database(api_request_t *r, qscan_t *s, const char **unsupported)
{
    const char *why = NULL;
    if (api__iq_other_policy(r, s, 0, "", &why))
        return -1;
    if (api__iq_from_stops(why) == 2)
        *unsupported = why;
    return 0;
}

int api__iq_from_stops(const char *why)
{
    if (why == NULL)
        return 0;
    if (strncmp(why, API_IQ_NO_DB, strlen(API_IQ_NO_DB)) == 0 ||
        strcmp(why, API_IQ_NO_DB_NAME) == 0)
        return 2;
    return strncmp(why, API_IQ_OTHER_RP, strlen(API_IQ_OTHER_RP)) == 0 || api__iq_sub_error_is(why);
}

/* Where the token influxd 1.6.7's scanner reads at p, right after a name, ends when it is ';',
 * ',' or a comment (whose text it prints as ""), its text in *text; NULL for any other (blanks
 * are the caller's). A line comment ends past its newline ("\r\n" and "\r" read as one); an
 * unterminated block comment is left to the scanner. */
static const char *token_after_name(const char *p, const char **text)
{
    *text = "";
    if (*p == ';' || *p == ',') {
        *text = *p == ';' ? ";" : ",";
        return p + 1;
    }
    if (p[0] == '/' && p[1] == '*') {
        const char *close = strstr(p + 2, "*/");
        return close ? close + 2 : NULL;
    }
    if (p[0] != '-' || p[1] != '-')
        return NULL;
    p += strcspn(p, "\r\n");
    return *p == '\0' ? NULL : p + 1 + (p[0] == '\r' && p[1] == '\n');
}

int api__iq_regex_after_name(api_request_t *r, qscan_t *s)
{
    size_t n = strspn(s->p, " \t\r\n");
    qtoken_t t = {.kind = QT_OTHER, .text = "", .line = s->line + 1, .col = s->col + 1};
    const char *after = n > 0 ? s->p + n : token_after_name(s->p, &t.text);
    if (after == NULL || *after != '/')
        return 0;
    if (n > 0) { /* influxd's reader reads "\r\n" and "\r" as "\n", so prints them so */
        char *text = api__qs_alloc(s, n + 1);
        if (text == NULL) {
            api__error(r, 500, "out of memory");
            return -1;
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            if (s->p[i] == '\r' && s->p[i + 1] == '\n')
                continue;
            text[len++] = s->p[i] == '\r' ? '\n' : s->p[i];
        }
        text[len] = '\0';
        t.text = text;
    }
    t.len = strlen(t.text);
    api__q_parse_error(r, &t, "regex");
    return -1;
}
