/* common/batch.h: a batch of readings, the unit that travels from a parser to the writer.
 *
 * A batch holds points; a point is one device at one timestamp with one or more fields
 * (channel -> value). Each field is one reading. Strings (device ids, channel names) are
 * copied into the batch's own buffer, NUL-terminated, and addressed by offset, so a batch is
 * three growable arrays and moves between threads as one object.
 *
 * Not thread-safe: one thread fills a batch, then hands it over whole (the writer takes
 * ownership of the batch it is given). */
#ifndef VIGIL_BATCH_H
#define VIGIL_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* Longest device id or channel name, in bytes. */
#define BATCH_NAME_MAX 200

typedef struct batch_field {
    uint32_t name; /* offset of the channel name in str */
    uint32_t name_len;
    double value; /* always finite */
} batch_field_t;

typedef struct batch_point {
    uint32_t device; /* offset of the device id in str */
    uint32_t device_len;
    int64_t ts_ms;
    uint32_t field0;  /* index of the first field in fields */
    uint32_t nfields; /* at least 1 once committed */
    uint32_t item;    /* caller's index of the item this point came from (request item, line) */
} batch_point_t;

typedef struct batch {
    char *str;
    size_t str_len, str_cap;
    batch_point_t *points;
    size_t npoints, points_cap;
    batch_field_t *fields;
    size_t nfields, fields_cap;
    int open; /* 1 while a point is begun and not yet committed or aborted */
    /* The open point's field names, indexed once it has 16 fields (BATCH_HASH_MIN), so a repeated
     * name is found without scanning every earlier field (a point with n fields parses in
     * O(n), not O(n^2)): open addressing with linear probing, each slot 0 (empty) or 1 + the
     * field's index within the point. hsize slots are in use (a power of two, at most half
     * full); hsize is 0 while the open point is scanned linearly, and after
     * every begin, commit, abort and reset. hcap slots are allocated and kept for reuse. */
    uint32_t *hslots;
    size_t hsize, hcap;
    uint32_t hseed; /* the table's hash seed, drawn at its first build (0: none yet) */
    /* npoints when batch_merge_same_ts last left no point repeating a device and timestamp (0:
     * not known); a point begun clears it, so the store's merge after the JSON handler's is a
     * comparison, not a second pass. */
    size_t unique;
} batch_t;

/* Any thread. Initialises an empty batch (no allocation). */
void batch_init(batch_t *b);

/* Frees the batch's memory; the batch is then empty and may be reused. NULL is a no-op. */
void batch_deinit(batch_t *b);

/* Empties the batch, keeping its memory for reuse. */
void batch_reset(batch_t *b);

/* Checks a device id or channel name: 1..BATCH_NAME_MAX bytes of valid UTF-8 without control
 * characters (names appear in JSON answers, URLs and metric labels). Returns 0, or ERR_INVAL
 * with *why set to a static reason. */
int batch_name_check(const char *s, size_t len, const char **why);

/* The length of the longest start of s (NUL-terminated UTF-8, as batch_name_check passes) of at
 * most max bytes that ends between two characters: strlen(s) when it fits, else max or up to 3
 * bytes less, so a name cut to fit a line or a buffer never ends in half a character (which a
 * JSON encoder refuses and a terminal shows as U+FFFD). Any thread. */
size_t batch_name_cut(const char *s, size_t max);

/* Begins a point; a point still open is dropped first (batch_point_abort). The device id must
 * have passed batch_name_check. Returns 0, or ERR_NOMEM (the batch as after that drop: no
 * point open). */
int batch_point_begin(batch_t *b, const char *device, size_t len, int64_t ts_ms, uint32_t item);

/* Adds a field to the open point; a channel named twice in one point keeps the last value, at
 * its first position. The name must have passed batch_name_check and the value be finite.
 * Amortised constant time whatever the point's field count. Returns 0, or ERR_NOMEM (the
 * point is then still open, without this field, and should be aborted). */
int batch_field_add(batch_t *b, const char *name, size_t len, double value);

/* Ends the open point. A point with no fields is dropped. Returns 1 when kept, else 0. */
int batch_point_commit(batch_t *b);

/* Drops the open point and everything added to it since batch_point_begin. */
void batch_point_abort(batch_t *b);

/* Decides whether point i (first <= i < npoints) stays: nonzero keeps it. Called once a point,
 * in order, before any later point moves; p is b->points[i], its fields still in place. */
typedef int (*batch_keep_fn)(void *arg, const batch_point_t *p, size_t i);

/* Removes the points of [first, npoints) that keep(arg, ...) refuses; the others keep their
 * order and their fields stay contiguous (points before first are untouched). Not for an
 * open point. Returns the number of points removed. No allocation. */
size_t batch_points_filter(batch_t *b, size_t first, batch_keep_fn keep, void *arg);

/* Merges the points that repeat an earlier point's device and timestamp into that earlier
 * point, as the store keeps them (it is keyed by device, channel and timestamp): the fields of
 * all, in order, a channel given twice keeping the later value at its first position. The
 * merged point stays where the first of them was, with its item. So the detector steps once
 * with the values the store keeps, not with the first of them (session 66). Not for an open
 * point. Linear time; allocates only while it works. Returns 0 with *merged the number of
 * points merged away (0: b untouched), or ERR_NOMEM with b as it was. */
int batch_merge_same_ts(batch_t *b, size_t *merged);

/* Borrowed string at an offset; valid until the batch is reset or freed. */
static inline const char *batch_str(const batch_t *b, uint32_t off)
{
    return b->str + off;
}

#endif
