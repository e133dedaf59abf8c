/* tests/test_common_batch.c: unit tests of common/batch.c (batches, filters, wide points, mixed
 * points, crafted names, merging points of one timestamp) and common/sbuf.c (sbuf_steal).
 * Part of test_common: tests/test_common.c runs them, in the order of the single file they were
 * moved from. */

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "agg.h"
#include "batch.h"
#include "err.h"
#include "mcond.h"
#include "nameidx.h"
#include "nice.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_common_fx.h"

static void test_batch(void **state)
{
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "pump-7", 6, 1000, 0), 0);
    assert_int_equal(batch_field_add(&b, "temp", 4, 71.2), 0);
    assert_int_equal(batch_field_add(&b, "vib", 3, 0.031), 0);
    assert_int_equal(batch_field_add(&b, "temp", 4, 72.5), 0); /* last value wins */
    assert_int_equal(batch_point_commit(&b), 1);
    /* An aborted point leaves nothing behind. */
    assert_int_equal(batch_point_begin(&b, "pump-8", 6, 2000, 1), 0);
    assert_int_equal(batch_field_add(&b, "x", 1, 1.0), 0);
    batch_point_abort(&b);
    /* A point without fields is dropped. */
    assert_int_equal(batch_point_begin(&b, "pump-9", 6, 3000, 2), 0);
    assert_int_equal(batch_point_commit(&b), 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, 2);
    assert_string_equal(batch_str(&b, b.points[0].device), "pump-7");
    assert_string_equal(batch_str(&b, b.fields[0].name), "temp");
    assert_true(b.fields[0].value == 72.5);
    assert_int_equal(b.str_len, strlen("pump-7temp vib") + 2);
    const char *why;
    assert_int_equal(batch_name_check("a\nb", 3, &why), ERR_INVAL);
    assert_int_equal(batch_name_check("", 0, &why), ERR_INVAL);
    assert_int_equal(batch_name_check("pump 7/a=b", 10, &why), 0);
    /* UTF-8: accepted when valid, refused when not (overlong, surrogate, truncated, stray). */
    assert_int_equal(batch_name_check("Pumpe-\xc3\xa4\xe2\x82\xac\xf0\x9f\x94\xa7", 15, &why), 0);
    const char *bad_utf8[] = {"a\xff",    "\xc0\xaf", "\xed\xa0\x80",
                              "\xe2\x82", "\x80x",    "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        assert_int_equal(batch_name_check(bad_utf8[i], strlen(bad_utf8[i]), &why), ERR_INVAL);
        assert_string_equal(why, "is not valid UTF-8");
    }
    batch_deinit(&b);
    batch_deinit(NULL);
}

/* batch_points_filter's test: refuses the points whose timestamp is odd (in seconds), and
 * records the indexes it was asked about. */
struct seen {
    size_t idx[8], n;
};

static int even_second(void *arg, const batch_point_t *p, size_t i)
{
    struct seen *s = arg;
    s->idx[s->n++] = i;
    return (p->ts_ms / 1000) % 2 == 0;
}

/* Points 1..4 of five (point 0 before first stays whatever its time); points 1 and 3 have odd
 * seconds: removed, the others keep their order, their fields (one, two, three of them) and
 * their values, packed in order. */
static void test_batch_filter(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    const int64_t ts[5] = {1000, 3000, 4000, 5000, 6000};
    char name[8];
    for (int k = 0; k < 5; k++) {
        assert_int_equal(batch_point_begin(&b, "dev", 3, ts[k], (uint32_t)(10 + k)), 0);
        for (int f = 0; f <= k % 3; f++) {
            int len = snprintf(name, sizeof name, "c%d", f);
            assert_int_equal(batch_field_add(&b, name, (size_t)len, 100.0 * k + f), 0);
        }
        assert_int_equal(batch_point_commit(&b), 1);
    }
    assert_int_equal(b.nfields, 1 + 2 + 3 + 1 + 2);
    struct seen s = {.n = 0};
    assert_int_equal(batch_points_filter(&b, 1, even_second, &s), 2);
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.idx[i], i + 1);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.nfields, 1 + 3 + 2);
    const uint32_t item[3] = {10, 12, 14}, nf[3] = {1, 3, 2};
    for (size_t i = 0, f0 = 0; i < 3; i++) {
        assert_int_equal(b.points[i].item, item[i]);
        assert_int_equal(b.points[i].nfields, nf[i]);
        assert_int_equal(b.points[i].field0, f0);
        for (uint32_t f = 0; f < nf[i]; f++)
            assert_true(b.fields[f0 + f].value == 100.0 * (item[i] - 10) + f);
        f0 += nf[i];
    }
    /* Nothing from first on: nothing asked, nothing removed. */
    s.n = 0;
    assert_int_equal(batch_points_filter(&b, 3, even_second, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.nfields, 6);
    batch_deinit(&b);
}

/* A reference for a point's fields, built the obvious way: channel ids in first-seen order, a
 * repeated id overwriting the value in place (what batch_field_add promised before it had a
 * hash table), with pos[id] = 1 + its index (0: not seen) so the reference stays fast. Names
 * are "ch<id>" with a suffix of (id % 5) 'x's, so lengths vary. */
struct ref_point {
    uint32_t *id;
    double *value;
    size_t n, cap;
    size_t *pos;
    size_t pos_cap;
};

static int ref_name(char *buf, size_t size, uint32_t id)
{
    return snprintf(buf, size, "ch%u%.*s", id, (int)(id % 5), "xxxx");
}

static void ref_add(struct ref_point *r, uint32_t id, double value)
{
    if (id >= r->pos_cap) {
        size_t cap = r->pos_cap ? r->pos_cap : 64;
        while (cap <= id)
            cap *= 2;
        r->pos = realloc(r->pos, cap * sizeof *r->pos);
        assert_non_null(r->pos);
        memset(r->pos + r->pos_cap, 0, (cap - r->pos_cap) * sizeof *r->pos);
        r->pos_cap = cap;
    }
    if (r->pos[id] != 0) {
        r->value[r->pos[id] - 1] = value;
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->id = realloc(r->id, r->cap * sizeof *r->id);
        r->value = realloc(r->value, r->cap * sizeof *r->value);
        assert_non_null(r->id);
        assert_non_null(r->value);
    }
    r->id[r->n] = id;
    r->value[r->n++] = value;
    r->pos[id] = r->n;
}

/* Adds one field to the open point and to the reference. */
static void both_add(batch_t *b, struct ref_point *r, uint32_t id, double value)
{
    char name[32];
    int len = ref_name(name, sizeof name, id);
    assert_int_equal(batch_field_add(b, name, (size_t)len, value), 0);
    ref_add(r, id, value);
}

/* Point i of the batch has exactly the reference's fields: same names, order and values. */
static void check_point(const batch_t *b, size_t i, const struct ref_point *r)
{
    char name[32];
    const batch_point_t *p = &b->points[i];
    assert_int_equal(p->nfields, r->n);
    for (size_t k = 0; k < r->n; k++) {
        const batch_field_t *f = &b->fields[p->field0 + k];
        int len = ref_name(name, sizeof name, r->id[k]);
        assert_int_equal(f->name_len, (uint32_t)len);
        assert_string_equal(batch_str(b, f->name), name);
        assert_true(f->value == r->value[k]);
    }
}

static void ref_free(struct ref_point *r)
{
    free(r->id);
    free(r->value);
    free(r->pos);
    memset(r, 0, sizeof *r);
}

/* A point with 50,000 distinct channels, then 30,000 more fields that mostly repeat earlier
 * ones (every 7th a new channel): the last value wins at the first position, in order, exactly
 * as the reference's linear version has it. */
static void test_batch_wide_point(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    struct ref_point r = {0};
    assert_int_equal(batch_point_begin(&b, "wide", 4, 1000, 0), 0);
    for (uint32_t i = 0; i < 50000; i++)
        both_add(&b, &r, i, (double)i);
    for (uint32_t j = 0; j < 30000; j++) {
        uint32_t id = j % 7 == 0 ? 50000 + j : (j * 7919u) % 50000;
        both_add(&b, &r, id, 1e6 + j);
    }
    assert_int_equal(r.n, 50000 + (30000 + 6) / 7);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, r.n);
    check_point(&b, 0, &r);
    ref_free(&r);
    batch_deinit(&b);
}

/* An aborted wide point leaves nothing behind, its names included: the next point (begun
 * explicitly, or implicitly by a begin over an open point) sees the same names as new, and a
 * repeat within it updates its own field, not one of the dropped point's. */
static void test_batch_wide_abort(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    struct ref_point r0 = {0}, r1 = {0}, dropped = {0};
    assert_int_equal(batch_point_begin(&b, "a", 1, 1000, 0), 0);
    for (uint32_t i = 0; i < 20; i++)
        both_add(&b, &r0, i, (double)i);
    assert_int_equal(batch_point_commit(&b), 1);
    size_t str_len = b.str_len;

    assert_int_equal(batch_point_begin(&b, "b", 1, 2000, 1), 0);
    for (uint32_t i = 0; i < 1000; i++)
        both_add(&b, &dropped, i, -1.0);
    batch_point_abort(&b);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, 20);
    assert_int_equal(b.str_len, str_len);

    /* Begin over an open wide point drops it too. */
    assert_int_equal(batch_point_begin(&b, "c", 1, 3000, 2), 0);
    for (uint32_t i = 500; i < 700; i++)
        both_add(&b, &dropped, i, -2.0);
    assert_int_equal(batch_point_begin(&b, "d", 1, 4000, 3), 0);
    for (uint32_t i = 0; i < 40; i++)
        both_add(&b, &r1, 1000 - i, (double)i); /* names the dropped points had */
    both_add(&b, &r1, 990, 99.0);               /* a repeat of this point's 11th field */
    both_add(&b, &r1, 3, 98.0);                 /* a name only the dropped points had here */
    assert_int_equal(batch_point_commit(&b), 1);

    /* A wide point with no fields left is dropped whole; the batch stays as it was. */
    assert_int_equal(batch_point_begin(&b, "e", 1, 5000, 4), 0);
    assert_int_equal(batch_point_commit(&b), 0);

    assert_int_equal(b.npoints, 2);
    assert_int_equal(b.nfields, r0.n + r1.n);
    check_point(&b, 0, &r0);
    check_point(&b, 1, &r1);
    assert_string_equal(batch_str(&b, b.points[1].device), "d");
    ref_free(&r0);
    ref_free(&r1);
    ref_free(&dropped);
    batch_deinit(&b);
}

/* Many points alternating small and large (1 to 2,000 channels, across the size where the
 * names start being indexed), each with repeats drawn at random among its own channels, some
 * points aborted, the batch reset halfway: every kept point matches its reference. */
static void test_batch_mixed_points(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {3, 40, 1, 17, 2000, 16, 5, 300, 15, 64, 2, 1000};
    enum { NPOINTS = 120 };
    batch_t b;
    batch_init(&b);
    struct ref_point *r = calloc(NPOINTS, sizeof *r);
    assert_non_null(r);
    uint32_t rng = 12345;
    size_t kept = 0;
    for (size_t k = 0; k < NPOINTS; k++) {
        if (k == NPOINTS / 2) {
            for (size_t i = 0; i < kept; i++)
                check_point(&b, i, &r[i]);
            for (size_t i = 0; i < kept; i++)
                ref_free(&r[i]);
            batch_reset(&b);
            kept = 0;
        }
        uint32_t n = sizes[k % (sizeof sizes / sizeof *sizes)];
        assert_int_equal(batch_point_begin(&b, "dev", 3, (int64_t)k, (uint32_t)k), 0);
        /* 2n adds over n channel ids (offset per point so points differ): about n distinct. */
        for (uint32_t j = 0; j < 2 * n; j++) {
            rng = rng * 1103515245u + 12345u;
            both_add(&b, &r[kept], (uint32_t)k * 7 + (rng >> 8) % n, (double)(k * 100000 + j));
        }
        if (k % 9 == 4) {
            batch_point_abort(&b);
            ref_free(&r[kept]);
            continue;
        }
        assert_int_equal(batch_point_commit(&b), 1);
        kept++;
    }
    assert_int_equal(b.npoints, kept);
    size_t nf = 0;
    for (size_t i = 0; i < kept; i++) {
        assert_int_equal(b.points[i].field0, nf);
        check_point(&b, i, &r[i]);
        nf += r[i].n;
    }
    assert_int_equal(b.nfields, nf);
    for (size_t i = 0; i < kept; i++)
        ref_free(&r[i]);
    free(r);
    batch_deinit(&b);
}

/* Names chosen so that FNV-1a (offset basis 2166136261, the unseeded hash) of each has its low 14
 * bits zero: a client can make such names in a second. With the table's slot taken from those
 * bits, 8,000 of them share one home slot and form one run of occupied slots, so each add
 * probes (and compares) every earlier name: the quadratic cost the table is there to remove.
 * The hash is seeded per table and mixed, so their slots spread: the longest run of occupied
 * slots stays short (no timing: the table is read directly). */
static void test_batch_wide_crafted_names(void **state)
{
    (void)state;
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    enum { N = 8000 };
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "d", 1, 1000, 0), 0);
    uint64_t rng = 88172645463325252ull;
    char name[9];
    for (int made = 0; made < N;) {
        for (int i = 0; i < 7; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            name[i] = al[rng % 62];
        }
        uint32_t h = 2166136261u;
        for (int i = 0; i < 7; i++)
            h = (h ^ (unsigned char)name[i]) * 16777619u;
        /* (h ^ last) * P has its low 14 bits zero when h's low 14 bits are the last byte's. */
        if ((h & 0x3F00) != 0 || (h & 0xFF) == 0 || strchr(al, (int)(h & 0xFF)) == NULL)
            continue;
        name[7] = (char)(h & 0xFF);
        name[8] = '\0';
        assert_int_equal(batch_field_add(&b, name, 8, (double)made), 0);
        made++;
    }
    assert_true(b.hsize >= 2 * N);
    size_t run = 0, longest = 0;
    for (size_t s = 0; s < 2 * b.hsize; s++) { /* twice round: a run may wrap */
        run = b.hslots[s & (b.hsize - 1)] ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    print_message("crafted names: %zu slots, longest run %zu\n", b.hsize, longest);
    assert_true(longest < 400);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_true(b.points[0].nfields <= N);
    batch_deinit(&b);
}

/* sbuf_steal hands the data over and leaves the buffer empty; out of memory it returns NULL
 * and the emptied buffer still says so (api__body answers 500 by it: before session 26 the flag
 * was cleared with the data, and an out-of-memory /query answer went out as an empty 200). */
static void test_sbuf_steal(void **unused)
{
    (void)unused;
    sbuf_t s;
    sbuf_init(&s);
    size_t n = 99;
    assert_null(sbuf_steal(&s, &n)); /* empty: NULL, not out of memory */
    assert_int_equal(s.oom, 0);
    sbuf_printf(&s, "ab%d", 1);
    char *p = sbuf_steal(&s, &n);
    assert_non_null(p);
    assert_int_equal(n, 3);
    assert_string_equal(p, "ab1");
    assert_null(s.data);
    free(p);
    sbuf_printf(&s, "x");
    s.oom = 1; /* a later append failed */
    assert_null(sbuf_steal(&s, &n));
    assert_null(s.data);
    assert_int_equal(s.oom, 1);
    sbuf_deinit(&s);
    assert_int_equal(s.oom, 0);
}

/* Adds a committed point of one device with fields "name=value" (n of them). */
static void point_add(batch_t *b, const char *dev, int64_t ts, uint32_t item, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    assert_int_equal(batch_point_begin(b, dev, strlen(dev), ts, item), 0);
    for (int i = 0; i < n; i++) {
        const char *name = va_arg(ap, const char *);
        double v = va_arg(ap, double);
        assert_int_equal(batch_field_add(b, name, strlen(name), v), 0);
    }
    va_end(ap);
    assert_int_equal(batch_point_commit(b), 1);
}

/* The value of channel name in point i, NAN when it has none. */
static double point_value(const batch_t *b, size_t i, const char *name)
{
    const batch_point_t *p = &b->points[i];
    for (uint32_t f = p->field0; f < p->field0 + p->nfields; f++)
        if (strcmp(batch_str(b, b->fields[f].name), name) == 0)
            return b->fields[f].value;
    return NAN;
}

/* batch_merge_same_ts: points repeating a device and timestamp become one, where the first was,
 * the later value of a channel winning; other points keep their order; a batch without such
 * points is left as it was. */
static void test_batch_merge_same_ts(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    size_t merged = 99;
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0); /* empty */
    assert_int_equal(merged, 0);
    point_add(&b, "a", 1000, 0, 2, "x", 1.0, "y", 5.0);
    point_add(&b, "b", 1000, 1, 1, "x", 7.0);  /* same ts, another device */
    point_add(&b, "a", 2000, 2, 1, "x", 8.0);  /* same device, another ts */
    point_add(&b, "ab", 1000, 3, 1, "x", 9.0); /* a device whose id starts alike */
    const batch_field_t *fields = b.fields;
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(merged, 0);
    assert_int_equal(b.npoints, 4);
    assert_ptr_equal(b.fields, fields); /* untouched */

    point_add(&b, "a", 1000, 4, 1, "x", 2.0);
    point_add(&b, "a", 1000, 5, 2, "z", 4.0, "x", 3.0);
    point_add(&b, "b", 1000, 6, 1, "w", 6.0);
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(merged, 3);
    assert_int_equal(b.npoints, 4);
    static const char *const dev[] = {"a", "b", "a", "ab"};
    static const int64_t ts[] = {1000, 1000, 2000, 1000};
    static const uint32_t item[] = {0, 1, 2, 3};
    static const uint32_t nf[] = {3, 2, 1, 1};
    size_t fields_total = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(batch_str(&b, b.points[i].device), dev[i]);
        assert_int_equal(b.points[i].device_len, strlen(dev[i]));
        assert_int_equal(b.points[i].ts_ms, ts[i]);
        assert_int_equal(b.points[i].item, item[i]);
        assert_int_equal(b.points[i].nfields, nf[i]);
        assert_int_equal(b.points[i].field0, fields_total);
        fields_total += nf[i];
    }
    assert_int_equal(b.nfields, fields_total);
    /* a@1000: x as the last sent it, y from the first, z from the third; in first appearance */
    assert_string_equal(batch_str(&b, b.fields[0].name), "x");
    assert_true(point_value(&b, 0, "x") == 3.0);
    assert_true(point_value(&b, 0, "y") == 5.0);
    assert_true(point_value(&b, 0, "z") == 4.0);
    assert_true(point_value(&b, 1, "x") == 7.0);
    assert_true(point_value(&b, 1, "w") == 6.0);
    assert_true(point_value(&b, 2, "x") == 8.0);
    assert_true(point_value(&b, 3, "x") == 9.0);
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0); /* nothing left to merge */
    assert_int_equal(merged, 0);

    /* Many points of one key (the table's probes and the chain), then a point after them. */
    batch_reset(&b);
    for (uint32_t i = 0; i < 5000; i++)
        point_add(&b, "p", 42, i, 1, (i % 2) ? "odd" : "even", (double)i);
    point_add(&b, "q", 42, 5000, 1, "x", 1.0);
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(merged, 4999);
    assert_int_equal(b.npoints, 2);
    assert_true(point_value(&b, 0, "even") == 4998.0);
    assert_true(point_value(&b, 0, "odd") == 4999.0);
    assert_string_equal(batch_str(&b, b.points[1].device), "q");
    assert_int_equal(b.points[1].item, 5000);

    /* A batch found free of repeats is not scanned again (the store's merge after the JSON
     * handler's), until a point is begun: refilled after a reset to the same count, a repeat
     * is still found. */
    assert_int_equal(b.unique, 2);
    batch_reset(&b);
    point_add(&b, "r", 7, 0, 1, "x", 1.0);
    point_add(&b, "r", 7, 1, 1, "x", 2.0);
    assert_int_equal(b.unique, 0);
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(merged, 1);
    assert_true(point_value(&b, 0, "x") == 2.0);
    batch_deinit(&b);
}

/* batch_merge_same_ts against a plain reference: 3,000 devices at 4 timestamps, every key sent
 * 1-3 times, interleaved (the table grows past its 64 slots, keys share a timestamp or a device
 * and collide in it); each merged point must hold, for every channel, the value of the last item
 * of its key that sent it, and the keys must keep the order of their first items. Then a key
 * whose items, of 200 channels each, merge into one point of 400 fields (past the pipeline's 256
 * a point, PIPE_POINT_FIELDS: stored whole, not scored, docs/writing.md): every field kept. */
static void test_batch_merge_many_keys(void **state)
{
    (void)state;
    enum { NDEV = 3000, NTS = 4, NREP = 3 };
    batch_t b;
    batch_init(&b);
    /* want[k][c]: key k = dev * NTS + t, channel c of 3, the last value sent (NAN: none) */
    static double want[NDEV * NTS][3];
    static uint32_t first_item[NDEV * NTS];
    for (size_t k = 0; k < NDEV * NTS; k++) {
        want[k][0] = want[k][1] = want[k][2] = NAN;
        first_item[k] = UINT32_MAX;
    }
    uint32_t item = 0;
    unsigned long long x = 88172645463325252ULL; /* xorshift: the same order every run */
    size_t keys_sent = 0;
    for (int rep = 0; rep < NREP; rep++)
        for (size_t n = 0; n < NDEV * NTS; n++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t k = (size_t)(x % (NDEV * NTS));
            if (rep > 0 && x % 3 == 0)
                continue; /* some keys sent fewer times */
            char dev[32];
            snprintf(dev, sizeof dev, "dev-%zu", k / NTS);
            int c = (int)((x >> 20) % 3);
            static const char *const ch[] = {"a", "b", "c"};
            double v = (double)item;
            point_add(&b, dev, 1000 * (int64_t)(k % NTS), item, 1, ch[c], v);
            want[k][c] = v;
            if (first_item[k] == UINT32_MAX) {
                first_item[k] = item;
                keys_sent++;
            }
            item++;
        }
    size_t merged = 0, before = b.npoints;
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(b.npoints, keys_sent);
    assert_int_equal(merged, before - keys_sent);
    uint32_t last_item = 0;
    size_t fields = 0;
    for (size_t i = 0; i < b.npoints; i++) {
        const batch_point_t *p = &b.points[i];
        size_t d = (size_t)strtoul(batch_str(&b, p->device) + 4, NULL, 10);
        size_t k = d * NTS + (size_t)(p->ts_ms / 1000);
        assert_int_equal(p->item, first_item[k]);
        if (i > 0)
            assert_true(p->item > last_item); /* the first items' order */
        last_item = p->item;
        static const char *const ch[] = {"a", "b", "c"};
        uint32_t nf = 0;
        for (int c = 0; c < 3; c++) {
            double got = point_value(&b, i, ch[c]);
            if (isnan(want[k][c]))
                assert_true(isnan(got));
            else {
                assert_true(got == want[k][c]);
                nf++;
            }
        }
        assert_int_equal(p->nfields, nf);
        assert_int_equal(p->field0, fields);
        fields += nf;
        first_item[k] = UINT32_MAX; /* each key once */
    }
    assert_int_equal(b.nfields, fields);

    batch_reset(&b);
    for (int half = 0; half < 2; half++) {
        assert_int_equal(batch_point_begin(&b, "wide", 4, 5000, (uint32_t)half), 0);
        for (int c = 0; c < 200; c++) {
            char name[16];
            int len = snprintf(name, sizeof name, "c%d", half * 200 + c);
            assert_int_equal(batch_field_add(&b, name, (size_t)len, (double)c), 0);
        }
        assert_int_equal(batch_point_commit(&b), 1);
    }
    assert_int_equal(batch_merge_same_ts(&b, &merged), 0);
    assert_int_equal(merged, 1);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.points[0].nfields, 400);
    assert_true(point_value(&b, 0, "c399") == 199.0);
    batch_deinit(&b);
}

const struct CMUnitTest common_batch_tests[] = {
    cmocka_unit_test(test_batch),
    cmocka_unit_test(test_batch_filter),
    cmocka_unit_test(test_batch_wide_point),
    cmocka_unit_test(test_batch_wide_abort),
    cmocka_unit_test(test_batch_mixed_points),
    cmocka_unit_test(test_batch_wide_crafted_names),
    cmocka_unit_test(test_batch_merge_same_ts),
    cmocka_unit_test(test_batch_merge_many_keys),
    cmocka_unit_test(test_sbuf_steal),
};
const size_t common_batch_count = sizeof common_batch_tests / sizeof common_batch_tests[0];
