/* api/influxql_select.h: what SELECT's two files share: the statement as read
 * (influxql_select_read.c reads it; influxql_select.c answers it). Not public: only those two
 * include it. Any thread; no state. */
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

/* ms in ns, held within +-2^62 ns as the statement's times are (a reading after 2262 is past
 * int64 ns). */
int64_t api__iq_ms_to_ns(int64_t ms);

#endif
