/* api/influxql_show_where.h: a SHOW statement's WHERE (SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG
 * VALUES), read by influxql_show_where.c into conditions joined by AND and OR, in parentheses or
 * not, and compiled there for influxql_show.c. Internal to api/. */
#ifndef VIGIL_API_INFLUXQL_SHOW_WHERE_H
#define VIGIL_API_INFLUXQL_SHOW_WHERE_H

#include "influxql.h"

#include <regex.h>

/* The most conditions a SHOW statement's WHERE reads, and the deepest parentheses. */
#define TV_CONDS_MAX 32
#define TV_DEPTH_MAX 16
#define TV_AND       (-1) /* tv_where.code's operators; a leaf is its index into c */
#define TV_OR        (-2)

/* A condition on a tag's name or value: a regex (POSIX, as api__iq_regex translates it) that
 * must match, or with neg must not; "= name" and "!= name" are ^name$ (api__iq_exact_pattern). */
struct tv_cond {
    const char *pattern; /* borrowed from the query's memory (qmem_t) */
    const char *key;     /* the tag key compared (borrowed likewise) */
    int neg;
    int other;     /* on a tag key other than the device tag, which no series has: its value '' */
    int nonstring; /* = or != a number or a boolean (pattern "": every value) */
};

/* A WHERE: its conditions c[0..n) and the expression over them in postfix, code[0..ncode) (a
 * leaf's index, TV_AND or TV_OR; ncode 0: no WHERE, every name passes). */
struct tv_where {
    struct tv_cond c[TV_CONDS_MAX];
    int n;
    int code[2 * TV_CONDS_MAX];
    int ncode;
    int time; /* it compares time, as influxd's HasTimeExpr finds it (tv_where_time) */
    int rhs;  /* the reading stopped at tag = or != an expression (1 + 2, x, now(), ('a')), or
               * a number before it: 1 '=', 2 '!=' first (SHOW MEASUREMENTS' error), else 0 */
};

/* A WHERE compiled: condition i on the device tag is re[i] (which must match the id, or with
 * neg[i] must not) when other[i] < 0; a condition on another tag key is other[i], 0 or 1, for
 * every series alike. */
struct dev_conds {
    regex_t re[TV_CONDS_MAX];
    int neg[TV_CONDS_MAX], other[TV_CONDS_MAX], n;
    const int *code; /* borrowed from the tv_where compiled */
    int ncode;
};

/* The regex ^name$, name's special characters escaped: a name compared with = is matched as a
 * regex would be. Borrowed from s->mem, as the tokens' texts; NULL when out of memory. */
const char *api__iq_exact_pattern(qscan_t *s, const char *name);

/* Reads an operator (=, !=, =~, !~) and its operand into c: a regex after =~ and !~; after =
 * and != an identifier (ident) or a 'string' (not ident). Returns 0, 1 (another operator: t),
 * 2 (not ident: an operand other than a string, read), or -1 (parse error answered). */
int api__iq_tv_cond_read(api_request_t *r, qscan_t *s, struct tv_cond *c, qtoken_t *t, int ident);

/* Reads SHOW TAG VALUES' WITH KEY operator and operand (s: after KEY) into *key, or for IN (...)
 * sets *in_match to whether the list names tag. Returns 0, or -1 (parse error answered). */
int api__iq_tv_key_read(api_request_t *r, qscan_t *s, const char *tag, struct tv_cond *key,
                        int *in_match);

/* Reads an optional WHERE (s: before it) into *w: conditions on the device tag (and with
 * other_ok on another tag key, an identifier other than time: c->other), joined by AND and
 * OR, in parentheses or not. Anything else sets *unsupported (static text) and is read on by
 * influxd's grammar. w->time says whether it compares time (SHOW MEASUREMENTS and most
 * cardinality statements answer influxd's error for it: api__iq_where_time_error). Returns 0,
 * or -1 (parse error answered). */
int api__iq_tv_where_read(api_request_t *r, qscan_t *s, struct tv_where *w,
                          const char **unsupported, int other_ok);

/* When w compares time and the statement (what; NULL: s->card_time, a cardinality statement's)
 * has influxd's error for it, answers that statement error ("SHOW MEASUREMENTS doesn't support
 * time in WHERE clause") and returns 1; else 0. */
int api__iq_where_time_error(qrun_t *run, const qscan_t *s, const struct tv_where *w,
                             const char *what);

/* Compiles w into d, series by series (SHOW TAG KEYS, SHOW TAG VALUES: a condition on another
 * tag key is met or not by every series alike, their value ''), or with measurements as SHOW
 * MEASUREMENTS reads it (a measurement without the tag key meets no condition on it). Returns
 * 0 (d to api__iq_conds_free), or 1 with run->err (nothing held). */
int api__iq_conds_compile(qrun_t *run, const struct tv_where *w, int measurements,
                          struct dev_conds *d);
void api__iq_conds_free(struct dev_conds *d);

/* Whether the series whose device tag is id passes d. */
int api__iq_conds_pass(const struct dev_conds *d, const char *id);

/* d's expression with its conditions' values leaf[0..d->n) (a condition on another tag key
 * takes other[i] whatever leaf[i] says). */
int api__iq_conds_eval(const struct dev_conds *d, const int *leaf);

/* The most sources one FROM of SHOW SERIES or SHOW MEASUREMENT CARDINALITY reads (names and
 * regexes); more is vigild's statement error. */
#define IQ_SOURCES_MAX 32

/* Reads FROM's sources (s: after FROM) into src[] and re[] (1: a regex's pattern), *n of them
 * (src[] borrowed from the query's memory); past IQ_SOURCES_MAX, or a source vigild does not
 * answer, sets *unsupported (static text). Returns 0, or -1 (parse error answered).
 * (influxql_series.c) */
int api__iq_sources_read(api_request_t *r, qscan_t *s, const char **src, int *re, int *n,
                         const char **unsupported);

#endif
