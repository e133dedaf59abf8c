/* api/influxql_select.h: what SELECT's files share: the statement as read
 * (influxql_select_read.c reads it, its WHERE read by influxql_where.c; influxql_select.c answers
 * it, its values accumulated and printed by influxql_select_values.c, the devices it reads chosen
 * by influxql_select_devices.c). Not public: SELECT's files include it. Any thread; no state. */
#ifndef VIGIL_API_INFLUXQL_SELECT_H
#define VIGIL_API_INFLUXQL_SELECT_H

#include "influxql.h"

#include <stdint.h>

#define SEL_FIELDS_MAX 16

enum sel_fn { FN_RAW, FN_MEAN, FN_MIN, FN_MAX, FN_FIRST, FN_LAST, FN_COUNT, FN_SUM, FN_KINDS };

enum sel_fill { FILL_NULL, FILL_NONE, FILL_PREVIOUS, FILL_NUMBER };

/* What a field's ::type makes of its values (every field here is a float): as they are, cut
 * to integers (::integer), none (::string, ::boolean, ::tag); ::unsigned is read, not run. */
enum sel_cast { CAST_AS_IS, CAST_INTEGER, CAST_UNSIGNED, CAST_NONE };

struct sel_field {
    enum sel_fn fn;
    enum sel_cast cast;
    int chan;        /* index into select_t's chans */
    const char *col; /* the column's name (borrowed: the query's memory, or static) */
};

typedef struct {
    struct sel_field f[SEL_FIELDS_MAX];
    int nf;
    /* The names are borrowed from the query's memory (qmem_t), whole: a token may be as long
     * as the query. */
    const char *chans[SEL_FIELDS_MAX]; /* the distinct channels read */
    int nchans;
    const char *from;
    const char *device;          /* from a condition on the device tag; "" : the FROM name */
    int device_none;             /* "device" = '', or two ids: no device meets it: no series */
    int device_any;              /* "device" != '': every device (each has a name) */
    const char *device_re;       /* from "device" =~ /re/ (NULL: none; borrowed: qmem_t) */
    const char *device_re2;      /* a second one (NULL: none): both met, or with device_re_or */
    int device_re_or;            /* "device" =~ /a/ OR "device" =~ /b/: either met */
    int64_t lo_ns, hi_ns;        /* the WHERE time range, both inclusive; INT64_MIN / MAX: open */
    int64_t every_ns, offset_ns; /* GROUP BY time(every, offset); every 0: none */
    int every_neg;               /* GROUP BY time() of a negative interval (every_ns 0): none
                                  * to run, but raw fields are influxd's statement error */
    int every_raw;               /* a GROUP BY time() of a nonzero interval (negative too, or
                                  * after time(0s)): raw fields are influxd's statement error */
    int group_tag;               /* GROUP BY the device tag */
    enum sel_fill fill;
    double fill_v;
    int desc;
    long long limit, offset;   /* LIMIT (0: none) and OFFSET, in rows */
    long long slimit, soffset; /* SLIMIT (0: none) and SOFFSET, in series */
    const char *unsupported;   /* what the statement asks that vigild does not do (static, or
                                * whole in the query's memory: qmem_t) */
    int influxd_error;         /* unsupported is influxd's own statement error, in its words */
    int field_error;           /* it is a literal field's, which a condition's error overrides
                                * (influxd judges the condition first) */
    int skipped;               /* the statement was read to its end (api__iq_skip) */
} select_t;

/* Reads a SELECT (s: after SELECT) into q, zeroed by the caller; run NULL: the first pass (now()
 * is then 0). Returns 0 (q->unsupported may be set: the caller's statement error), or -1 (a
 * parse error: the answer set). */
int api__iq_select_read(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run);

/* Reads the WHERE condition (s: after WHERE) into q (influxql_where.c): comparisons joined by AND,
 * or the ORs influxd reduces; run NULL: the first pass. Returns 0 (q->unsupported may be set),
 * 1 (unsupported), or -1 (a parse error: the answer set). */
int api__iq_read_condition(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run);

/* What influxql_where.c shares with the rest of the statement's reading (influxql_select_read.c
 * and influxql_skim.c; each function's comment is there). */

/* SELECT *'s reason (api__iq_select adds the device's fields when it names one). */
#define IQ_STAR_UNSUPPORTED "SELECT *: name the fields"
/* Marks the statement unsupported (the first reason wins): what, then name (NULL: none), kept
 * whole in s's memory; out of memory, what alone. */
void api__iq_mark_unsupported(select_t *q, qscan_t *s, const char *what, const char *name);
/* api__iq_mark_unsupported, and reads the statement to its end (q->skipped). */
void api__iq_unsupported(select_t *q, qscan_t *s, const char *what, const char *name);
/* Marks the statement failed with influxd's own statement error msg, unless a reason came first. */
void api__iq_mark_influxd_error(select_t *q, qscan_t *s, const char *msg);
/* Whether t is the literal true or false. */
int api__iq_is_bool(const qtoken_t *t);
/* Answers influxd's parse error for a literal t it cannot read and returns -1; else 0. */
int api__iq_bad_number(api_request_t *r, const qtoken_t *t);
/* Reads the duration token t into *ns; or answers influxd's parse error and returns -1. */
int api__iq_time_duration(api_request_t *r, const qtoken_t *t, int64_t *ns);
/* Whether t is the operator op (a string never is). */
int api__iq_q_op(const qtoken_t *t, const char *op);
/* A '-' or '+' t before a number or a duration made that signed literal: 1 (s after it), 0 (s
 * and t as they were), or -1 (answered: out of memory, or a negative integer past int64). */
int api__iq_signed_literal(api_request_t *r, qscan_t *s, qtoken_t *t);
/* Whether t is one of influxd's binary operators (AND and OR too). */
int api__iq_is_binary_op(const qtoken_t *t);
/* Read influxd's expressions for their parse errors only, keeping nothing (where: in a WHERE
 * condition): one operand t (already read from s), what follows an operand, an optional ::type
 * after a name. Each returns 0, or -1 (parse error answered). */
int api__iq_skim_operand(api_request_t *r, qscan_t *s, qtoken_t *t, int where);
int api__iq_skim_tail(api_request_t *r, qscan_t *s, int where);
int api__iq_skip_cast(api_request_t *r, qscan_t *s);
/* After a unary sign t (read from s): answers influxd's parse error when t is a bad operand and
 * returns -1; else 0 (influxql_skim.c). */
int api__iq_signed_operand(api_request_t *r, const qscan_t *s, const qtoken_t *t);
/* After a call's '(' (read from s): the end placed after it as after a name. */
void api__iq_call_paren(qscan_t *s);
/* Reads the rest of a call's arguments, s after its '(' (first) or after a ',', and its ')'.
 * Returns 0, or -1 (parse error answered). */
int api__iq_skim_call(api_request_t *r, qscan_t *s, int where, int first);

/* The clauses after FROM and WHERE (influxql_select_clauses.c), for api__iq_select_read. Each
 * returns 0, 1 (unsupported: q->unsupported set), or -1 (parse error answered): GROUP BY's
 * items (s after GROUP BY) and fill(...); then ORDER BY, LIMIT, OFFSET, SLIMIT, SOFFSET, tz()
 * and the end (read_tail returns 0 or -1). */
int api__iq_read_group_by(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run);
int api__iq_read_tail(api_request_t *r, qscan_t *s, select_t *q);

/* ---- literal math (influxql_math.c) ---- */

/* A value of literal math: an integer (int64), an unsigned one (past int64, as influxd reads
 * it: i holds its uint64 bits), a number, a duration (ns), a string (str, in the
 * scanner's memory), a boolean (i: 0 or 1), a time (an RFC 3339 string plus or minus durations:
 * influxd's TimeLiteral), or what influxd leaves unreduced (a BinaryExpr). */
enum iq_lv_kind { LV_INT, LV_UINT, LV_FLOAT, LV_DUR, LV_STR, LV_BOOL, LV_TIME, LV_NONE };
struct iq_lval {
    enum iq_lv_kind kind;
    int64_t i;       /* LV_INT, LV_UINT, LV_DUR, LV_BOOL, LV_TIME (ns since the epoch) */
    double d;        /* LV_FLOAT */
    const char *str; /* LV_STR: borrowed from s->mem */
};

/* Reads literal math from s (its first token not yet read) into *v; *ops counts its operators,
 * parentheses and signs before one. Returns 0, 1 (not literal math vigild reduces: s where it
 * stopped, for the caller to put back), or -1 (a parse error answered). */
int api__iq_math(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops);
/* Reads one operand of literal math from s (a literal, signed, or math in parentheses), as
 * api__iq_math. */
int api__iq_math_operand(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops);
/* Reads a comparison of literal math from s (its first token not yet read): "2 = 1 + 1",
 * "(5.0) + 1 = 6", "'a' + 'b' = 'ab'", "'x' =~ /x/", "'x' =~ /x/ = true" (comparisons in a row,
 * left to right), as influxd reduces it, into *met (whether
 * every point meets it, or none). Returns 0 (s after it), 1 (no math, or math vigild does not
 * reduce: s as it was), or -1 (answered). */
int api__iq_math_comparison(api_request_t *r, qscan_t *s, int *met);

/* ---- a time in WHERE (influxql_where_time.c; each function's comment is there) ---- */

/* ms in ns, held within +-2^62 ns as the statement's times are (a reading after 2262 is past
 * int64 ns). */
int64_t api__iq_ms_to_ns(int64_t ms);
int64_t api__iq_time_add(int64_t a, int64_t b);
int api__iq_read_time(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run, int64_t *ns);

/* ---- SELECT's values (influxql_select_values.c; each function's comment is there) ---- */

/* One field's accumulator for the bucket being read. Ties keep the earliest point for min and
 * max, and the larger value for first and last (two devices' points at one time, merged), as
 * influxd's reducers do. Not common/agg.h's, which readings?step= uses: that one sums with
 * Neumaier's compensation, and influxd's mean and sum are plain double sums in read order
 * (0.1 + 0.2 + 0.3: 0.6000000000000001, compensated 0.6). */
struct acc {
    uint64_t count;
    double sum, min, max, first, last;
    int64_t min_ts, max_ts, first_ts, last_ts;
    int64_t isum; /* an ::integer field's sum as Go adds int64s (wrapping past 2^63), exact
                   * where sum (a double) rounds past 2^53; its sum and mean are of it */
    /* Several devices in one series (merge_read): influxd means each series' int64 sum (its
     * IntegerMeanReducer, wrapping) and merges those means weighted by their counts as floats
     * (FloatMeanReducer): dsum and dcount are the device being read's, folded into msum (the
     * means times their counts) after each device; merged, the mean is msum / count. */
    int64_t dsum;
    uint64_t dcount;
    double msum;
    int merged;
};

/* An aggregate's value: v, or i for an ::integer field's sum (struct acc's isum). */
struct agg_val {
    double v;
    int64_t i;
};

/* The value v of field f under its cast into *v; 0 when the cast leaves the field no value. */
int api__iq_cast_value(const struct sel_field *f, double *v);
/* Prints the value v of field f (api__iq_cast_value's): an ::integer's as an int64, else as a
 * float. */
void api__iq_cast_print(sbuf_t *b, const struct sel_field *f, double v);
/* Adds a point's values to the accumulators of q's fields (a[0..nf)). */
void api__iq_acc_point(struct acc *a, const select_t *q, int64_t ts, size_t n,
                       const char *const *ch, const double *v);
/* The value of fn over a (count > 0). */
double api__iq_acc_value(const struct acc *a, enum sel_fn fn);
/* The time of a lone selector's row without GROUP BY time(): its point's (else dflt). */
int64_t api__iq_selector_ts(const struct acc *a, enum sel_fn fn, int64_t dflt);
/* Prints an aggregate v of field f, as influxd prints its column. */
void api__iq_agg_print(sbuf_t *b, const struct sel_field *f, const struct agg_val *v);
/* Prints fill(number)'s v for field f, as influxd prints its column. */
void api__iq_fill_print(sbuf_t *b, const struct sel_field *f, double v);

/* ---- which devices SELECT reads (influxql_select_devices.c; each function's comment is there) */

/* The device ids, for GROUP BY the device tag over a name that is no device: caller owns ids
 * and each id; free them. */
struct id_list {
    char **ids;
    size_t n, cap;
    int nomem;
};

/* The statement's regexes on the device tag, compiled: none, one, or two (both met, or with
 * either set either). */
struct dev_re {
    regex_t re[2];
    int n, either;
};

int api__iq_id_collect(void *arg, const api_device_t *d);
int api__iq_dev_re_comp(qrun_t *run, const select_t *q, struct dev_re *d);
void api__iq_dev_re_free(struct dev_re *d);
int api__iq_dev_re_match(const struct dev_re *d, const char *id);

#endif
