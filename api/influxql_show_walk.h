/* api/influxql_show_walk.h: the walk over the devices that the SHOW statements (influxql_show.c)
 * and their cardinality forms answer from (influxql_show_walk.c): a row or a series per device,
 * or counted. Internal to api/. */
#ifndef VIGIL_API_INFLUXQL_SHOW_WALK_H
#define VIGIL_API_INFLUXQL_SHOW_WALK_H

#include "influxql_show_where.h"

#include <regex.h>

/* A walk over the devices (api__iq_devices) that writes one row or one series per device; in a
 * cardinality statement (run->count) it counts them instead (row_count), in the same walk, so
 * that a count is always what the list lists. */
struct dev_walk {
    sbuf_t *b;
    regex_t *re; /* nre filters a name must pass, own names too (SHOW MEASUREMENTS WITH */
    int nre;     /* MEASUREMENT); none: every name */
    long long offset, limit; /* of the devices that match; limit 0: all */
    long long seen, n;       /* matched so far / written */
    const char *tag;         /* the device tag, for SHOW TAG ... */
    int too_big;             /* the query's answer passed API_PAGE_BYTES: the walk stopped */
    int stopped;             /* a row asked to stop: LIMIT reached, too big, or out of memory */
    const char *const *own;  /* names listed among the devices, sorted (NULL: none); own_next: */
    size_t own_next;         /* the first not yet listed */
    const sbuf_t *own_text;  /* SHOW FIELD KEYS: the reserved measurements' series, by kind, */
    const size_t *own_n;     /* and their numbers of fields (own_text left empty: counted) */
    long long key_limit, key_offset; /* SHOW FIELD KEYS: each series' fields kept (limit 0: all) */
    int partial; /* chunked, a series' document but the last says "partial":true (FIELD KEYS) */
    /* A WHERE on the device tag, which filters the devices, not the own names (NULL: none). */
    const struct dev_conds *conds;
    /* Lists d: returns 1 (listed), 0 (nothing to list: a device with no channel has no field
     * keys), or -1 to stop the walk (out of memory, or the walk's question answered). */
    int (*row)(struct dev_walk *w, const api_device_t *d);
    qrun_t *run; /* whose deadline (http.query_timeout) stops the walk, and whose count (a
                  * cardinality statement's) takes the rows; NULL: none */
};

/* Whether w's rows are counted (a cardinality statement) rather than written. */
int api__iq_walk_counting(const struct dev_walk *w);

/* Runs w over every device (and its own names). Returns 0, or the backend's error. */
int api__iq_walk_devices(api_request_t *r, struct dev_walk *w);

/* Appends the series of device d's channels, sorted, as SHOW FIELD KEYS lists them (all
 * float), chunked a document every chunk_size fields (w->run's, api__q_chunk_next), as influxd
 * 1.6.7 cuts them; for a reserved measurement's name, its own fields, as SHOW FIELD KEYS FROM
 * it (not cut). */
int api__iq_field_keys_series(struct dev_walk *w, const api_device_t *d);

/* Appends the series of device d with its one tag (SHOW TAG KEYS without FROM). */
int api__iq_tag_keys_series(struct dev_walk *w, const api_device_t *d);

/* Appends the series of device d with its tag's one value (SHOW TAG VALUES without FROM). */
int api__iq_tag_values_series(struct dev_walk *w, const api_device_t *d);

/* Appends device d as a row: ["id"] (SHOW MEASUREMENTS), or ["tag","id"] with w->tag; counted,
 * the row alone (api__iq_walk_result counts its one series). */
int api__iq_name_row(struct dev_walk *w, const api_device_t *d);

/* Runs w, each row a series of its own (name NULL), or the rows of one series named name with
 * columns (their JSON: "\"name\""); the whole result is dropped when no device was written,
 * as influxd answers an empty list with no series. Counted (run->count), the series go to the
 * count instead. Returns 0, or 1 with run->err (the backend failed, the answer's bound, or the
 * query's deadline, checked per device). */
int api__iq_walk_result(api_request_t *r, qrun_t *run, struct dev_walk *w, const char *name,
                        const char *columns);

#endif
