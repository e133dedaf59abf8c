/* tests/test_storage_chunks.c: unit tests of storage/, the value and chunk codecs (encoding, masks,
 * cover, cut), wide points and compaction merges. The tests through a store's rows (overwrites
 * across chunks, compaction, range boundaries) are in tests/test_storage_rows.c.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"
#include "pending_int.h"

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Encodes (idx, v), checks the decoding gives the same idx and bits and consumes exactly what was
 * written, and that every truncation is refused. Returns the encoded length. */
static size_t pair_roundtrip(int64_t idx, double v)
{
    unsigned char buf[STORE_PAIR_MAX + 8];
    memset(buf, 0xee, sizeof buf);
    size_t n = store__pair_put(buf, idx, v);
    assert_true(n >= 2 && n <= STORE_PAIR_MAX);
    assert_int_equal(buf[n], 0xee);
    const unsigned char *p = buf;
    int64_t got_idx = -1;
    double got = 0;
    assert_int_equal(store__pair_get(&p, buf + n, &got_idx, &got), 0);
    assert_ptr_equal(p, buf + n);
    assert_int_equal(got_idx, idx);
    if (bits_of(got) != bits_of(v))
        fail_msg("%.17g (bits %016llx) came back as %.17g (bits %016llx)", v,
                 (unsigned long long)bits_of(v), got, (unsigned long long)bits_of(got));
    for (size_t cut = 0; cut < n; cut++) {
        p = buf;
        assert_int_equal(store__pair_get(&p, buf + cut, &got_idx, &got), -1);
    }
    return n;
}

/* xorshift64*: a reproducible stream for the random cases. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void test_value_encoding(void **state)
{
    (void)state;
    const double special[] = {0.0,
                              -0.0,
                              1.0,
                              -1.0,
                              0.1,
                              0.2,
                              0.1 + 0.2,
                              71.2,
                              -71.2,
                              0.031,
                              0.0001,
                              0.00001,
                              123456.7891,
                              -123456.789,
                              3.14159,
                              1e300,
                              -1e300,
                              DBL_MAX,
                              -DBL_MAX,
                              DBL_MIN,
                              -DBL_MIN,
                              5e-324,
                              DBL_MIN / 3,
                              -DBL_TRUE_MIN * 7,
                              FLT_MAX,
                              FLT_MIN,
                              FLT_TRUE_MIN,
                              (double)71.2f,
                              (double)0.1f,
                              17179869183.0,
                              17179869184.0,
                              -17179869184.0,
                              -17179869185.0,
                              1717986918.3,
                              1717986918.4,
                              9007199254740992.0,
                              9007199254740993.0,
                              1e15,
                              1e22,
                              2.5e-5,
                              299792458.0,
                              -273.15,
                              1013.25,
                              0.5,
                              1.0 / 3.0};
    const int64_t idxs[] = {0, 1, 30, 31, 32, 127, 158, 159, 300, 16414, 1LL << 40, INT64_MAX};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        for (size_t k = 0; k < sizeof idxs / sizeof idxs[0]; k++)
            pair_roundtrip(idxs[k], special[i]);
    /* The short forms are taken where they exist: tag + varint for decimals, 4 bytes for
     * floats, 8 raw bytes for the rest. */
    assert_int_equal(pair_roundtrip(0, 0.0), 2);
    assert_int_equal(pair_roundtrip(0, 0.031), 2);   /* zigzag(31) = 62 */
    assert_int_equal(pair_roundtrip(0, 71.2), 3);    /* 712 */
    assert_int_equal(pair_roundtrip(5, -273.15), 4); /* -27315 */
    assert_int_equal(pair_roundtrip(30, 1500.0), 3); /* 1500, d = 0 */
    assert_int_equal(pair_roundtrip(31, 71.2), 4);   /* idx in a varint after the tag */
    assert_int_equal(pair_roundtrip(0, -0.0), 5);    /* a float */
    assert_int_equal(pair_roundtrip(0, (double)71.2f), 5);
    assert_int_equal(pair_roundtrip(0, 0.1 + 0.2), 9); /* no decimal form reproduces it */
    assert_int_equal(pair_roundtrip(0, 1e300), 9);
    assert_int_equal(pair_roundtrip(0, 5e-324), 9);
    assert_int_equal(pair_roundtrip(0, 17179869183.0), 6);  /* k = 2^34 - 1: 5-byte varint */
    assert_int_equal(pair_roundtrip(0, -17179869183.0), 6); /* k = 1 - 2^34 */
    assert_int_equal(pair_roundtrip(0, -17179869184.0), 5); /* |k| = 2^34: a float */
    assert_int_equal(pair_roundtrip(0, 17179869184.0), 5);  /* 2^34: too large, but a float */
    assert_int_equal(pair_roundtrip(0, 17179869185.0), 9);

    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 200000; i++) {
        /* Decimals as a parser would produce them: k / 10^d rounded by strtod. */
        int d = (int)(rnd(&seed) % 7);
        int64_t k = (int64_t)(rnd(&seed) >> 29) - (1LL << 34);
        char text[64];
        snprintf(text, sizeof text, "%lld", (long long)k);
        size_t len = strlen(text);
        if (d > 0 && len > (size_t)d + (k < 0)) {
            memmove(text + len - d + 1, text + len - d, (size_t)d + 1);
            text[len - d] = '.';
        }
        double v = strtod(text, NULL);
        size_t n = pair_roundtrip((int64_t)(rnd(&seed) % 40), v);
        if (d <= 4 && fabs(v) < 1e9)
            assert_true(n <= 1 + 1 + 5); /* the decimal form was found */
        /* Arbitrary finite bit patterns. */
        double r = from_bits(rnd(&seed));
        if (isfinite(r))
            pair_roundtrip((int64_t)(rnd(&seed) % 400), r);
        /* Floats and small integers. */
        uint32_t fb = (uint32_t)rnd(&seed);
        float f;
        memcpy(&f, &fb, sizeof f);
        if (isfinite(f))
            assert_true(pair_roundtrip(3, (double)f) <= 5);
        pair_roundtrip(7, (double)(int32_t)rnd(&seed));
    }

    /* Malformed: a reserved kind, an idx or decimal varint that runs too long. */
    const unsigned char bad_kind[] = {7 << 5, 0, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char long_k[] = {0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    const unsigned char long_idx[] = {31 | 6 << 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff,        0xff, 0xff, 0x01, 0,    0,    0,
                                      0,           0,    0,    0,    0};
    const unsigned char *bad[] = {bad_kind, long_k, long_idx};
    const size_t badlen[] = {sizeof bad_kind, sizeof long_k, sizeof long_idx};
    for (size_t i = 0; i < 3; i++) {
        const unsigned char *p = bad[i];
        int64_t idx;
        double v;
        assert_int_equal(store__pair_get(&p, bad[i] + badlen[i], &idx, &v), -1);
    }
}

/* Values of every form through the store, merged with overwrites of other forms. */
/* Points of 40 channels written through the sorted multi-row path: the stored blob is the one
 * store__pair_put gives, and every value comes back bit for bit, channels past the inline idx
 * range included. */
static void test_wide_points_encoding(void **state)
{
    fx_t *f = *state;
    const double vals[] = {0.0,       -0.0,    71.2,          -273.15,       0.1 + 0.2,
                           1e300,     DBL_MIN, -DBL_TRUE_MIN, FLT_MAX,       1500.0,
                           1.0 / 3.0, 0.031,   -1e-5,         17179869184.0, (double)0.1f};
    const size_t nv = sizeof vals / sizeof vals[0];
    enum { NCH = 40, NPT = 30 };
    char names[NCH][8];
    const char *ch[NCH];
    for (int c = 0; c < NCH; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        ch[c] = names[c];
    }
    batch_t b;
    batch_init(&b);
    for (int t = 0; t < NPT; t++) {
        double v[NCH];
        for (int c = 0; c < NCH; c++)
            v[c] = vals[(size_t)(t + c) % nv];
        add_point(&b, "enc", t, NCH, ch, v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    got_t *g = malloc(sizeof *g);
    for (int c0 = 0; c0 < NCH; c0 += 8) {
        assert_int_equal(query(f->s, "enc", 0, NPT, ch + c0, 8, 0, 0, g), 0);
        assert_int_equal(g->n, NPT);
        for (int t = 0; t < NPT; t++) {
            assert_int_equal(g->nv[t], 8);
            for (int k = 0; k < 8; k++)
                assert_memory_equal(&g->vals[t][k], &vals[(size_t)(t + c0 + k) % nv],
                                    sizeof(double));
        }
    }
    free(g);
    /* One batch of one device: its pending readings, written out as one row holding all its
     * points, which decodes to exactly the values written. */
    assert_int_equal(store__test_pend_flush(f->s), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT t0, t_last, n, data FROM readings", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 0);
    assert_int_equal(sqlite3_column_int64(st, 1), NPT - 1);
    assert_int_equal(sqlite3_column_int64(st, 2), NPT);
    store_codec_t codec = {0};
    const store_cell_t *c;
    size_t nc, np;
    assert_int_equal(store__chunk_decode(&codec, 0, sqlite3_column_blob(st, 3),
                                         (size_t)sqlite3_column_bytes(st, 3), NULL, 0, &c, &nc,
                                         &np),
                     0);
    assert_int_equal(np, NPT);
    assert_int_equal(nc, NPT * NCH);
    for (size_t i = 0; i < nc; i++) {
        assert_int_equal(c[i].ts, (int64_t)(i / NCH));
        assert_int_equal(c[i].idx, (int64_t)(i % NCH));
        assert_int_equal(bits_of(c[i].v), bits_of(vals[(i / NCH + i % NCH) % nv]));
    }
    store__codec_free(&codec);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_compact_merge(void **state)
{
    fx_t *f = *state;
    const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    const double v1[] = {71.2, -0.0, 0.1 + 0.2, 1e300, 5e-324, (double)0.1f, 0.031, 1500};
    const double v2[] = {0.1 + 0.2, 71.2, -0.0, 0.031, 2.0, 1e300, 5e-324, (double)0.1f};
    write1(f->s, "mix", 10, 8, names, v1);
    /* Overwrite the odd channels with values of other forms, and add 40 more channels (idx >= 31
     * for some). */
    const char *odd[] = {"b", "d", "f", "h"};
    const double vo[] = {v2[1], v2[3], v2[5], v2[7]};
    write1(f->s, "mix", 10, 4, odd, vo);
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "mix", 3, 10, 0), 0);
    for (int k = 0; k < 40; k++) {
        char name[8];
        int len = snprintf(name, sizeof name, "x%d", k);
        assert_int_equal(batch_field_add(&b, name, (size_t)len, k % 2 ? k * 0.1 : -k * 1e-7), 0);
    }
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "mix", 0, 100, names, 8, 0, 0, g), 0);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->nv[0], 8);
    for (size_t i = 0; i < 8; i++) {
        double want = i % 2 ? v2[i] : v1[i];
        assert_int_equal(bits_of(g->vals[0][i]), bits_of(want));
    }
    const char *xs[] = {"x0", "x1", "x22", "x23", "x39"};
    assert_int_equal(query(f->s, "mix", 0, 100, xs, 5, 0, 0, g), 0);
    assert_int_equal(g->nv[0], 5);
    const int ks[] = {0, 1, 22, 23, 39};
    for (size_t i = 0; i < 5; i++) {
        int k = ks[i];
        assert_int_equal(bits_of(g->vals[0][i]), bits_of(k % 2 ? k * 0.1 : -k * 1e-7));
    }
    free(g);
    assert_int_equal(device(f->s, "mix", 0).points, 1);
}

/* ---- chunks (schema 3) ---- */

/* Decodes the chunk data (len bytes, first timestamp t0) with the selection want (nwant
 * entries; NULL: all) and checks that the cells are exactly those of cells (m, the full decode,
 * np points) whose channel is selected, in order and bit for bit. */
static void chunk_check_masked(const unsigned char *data, size_t len, const store_cell_t *cells,
                               size_t m, size_t np, const unsigned char *want, size_t nwant)
{
    store_codec_t dec = {0};
    const store_cell_t *c;
    size_t nc, gnp, k = 0;
    assert_int_equal(store__chunk_decode(&dec, cells[0].ts, data, len, want, nwant, &c, &nc, &gnp),
                     0);
    assert_int_equal(gnp, np);
    for (size_t i = 0; i < m; i++) {
        if (want != NULL && ((size_t)cells[i].idx >= nwant || !want[cells[i].idx]))
            continue;
        assert_true(k < nc);
        assert_int_equal(c[k].ts, cells[i].ts);
        assert_int_equal(c[k].idx, cells[i].idx);
        assert_int_equal(bits_of(c[k].v), bits_of(cells[i].v));
        k++;
    }
    assert_int_equal(nc, k);
    store__codec_free(&dec);
}

/* Encodes cells, decodes them, and checks every cell comes back bit for bit; every truncation
 * and a trailing byte are refused, also by a decode of the first cell's channel alone (which
 * skips the others' bytes). Returns the encoded length. */
static size_t chunk_roundtrip(const store_cell_t *cells, size_t m)
{
    store_codec_t enc = {0}, dec = {0};
    const unsigned char *data;
    size_t len;
    assert_int_equal(store__chunk_encode(&enc, cells, m, &data, &len), 0);
    unsigned char *copy = malloc(len + 1);
    memcpy(copy, data, len);
    const store_cell_t *c;
    size_t nc, np, want_np = 0;
    for (size_t i = 0; i < m; i++)
        want_np += i == 0 || cells[i].ts != cells[i - 1].ts;
    assert_int_equal(store__chunk_decode(&dec, cells[0].ts, copy, len, NULL, 0, &c, &nc, &np), 0);
    assert_int_equal(nc, m);
    assert_int_equal(np, want_np);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(c[i].ts, cells[i].ts);
        assert_int_equal(c[i].idx, cells[i].idx);
        assert_int_equal(bits_of(c[i].v), bits_of(cells[i].v));
    }
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(store__chunk_decode(&dec, cells[0].ts, copy, cut, NULL, 0, &c, &nc, &np),
                         ERR_CORRUPT);
    copy[len] = 0;
    assert_int_equal(store__chunk_decode(&dec, cells[0].ts, copy, len + 1, NULL, 0, &c, &nc, &np),
                     ERR_CORRUPT);
    size_t nwant = (size_t)cells[0].idx + 1;
    unsigned char *want = calloc(nwant, 1);
    want[cells[0].idx] = 1;
    chunk_check_masked(copy, len, cells, m, want_np, want, nwant);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(
            store__chunk_decode(&dec, cells[0].ts, copy, cut, want, nwant, &c, &nc, &np),
            ERR_CORRUPT);
    assert_int_equal(
        store__chunk_decode(&dec, cells[0].ts, copy, len + 1, want, nwant, &c, &nc, &np),
        ERR_CORRUPT);
    free(want);
    free(copy);
    store__codec_free(&enc);
    store__codec_free(&dec);
    return len;
}

static void test_chunk_codec(void **state)
{
    (void)state;
    const double edge[] = {0.0,
                           -0.0,
                           71.2,
                           -273.15,
                           0.1 + 0.2,
                           1e300,
                           -1e-300,
                           DBL_MIN,
                           DBL_TRUE_MIN,
                           -DBL_TRUE_MIN,
                           DBL_MAX,
                           -DBL_MAX,
                           FLT_MAX,
                           1500.0,
                           1.0 / 3.0,
                           0.031,
                           -1e-5,
                           17179869183.0,
                           -17179869184.0,
                           1717986918.3,
                           (double)0.1f,
                           12345.6789,
                           -0.0001,
                           1e-4,
                           INFINITY,
                           -INFINITY,
                           NAN,
                           from_bits(0x7ff8000000000123ull)};
    const size_t ne = sizeof edge / sizeof edge[0];
    enum { M = 4000 };
    store_cell_t *cells = malloc(M * sizeof *cells);
    /* 1. Every edge value in every channel, irregular timestamps across int64 (negatives, a
     * gap of 2^62, the extremes), sparse channels (bitmaps, n % 8 != 0), idx past 31. */
    const int64_t tss[] = {INT64_MIN,
                           INT64_MIN + 1,
                           -4611686018427387904LL,
                           -1000,
                           -1,
                           0,
                           1,
                           2,
                           3,
                           1000,
                           1001,
                           1003,
                           1732780800123LL,
                           4611686018427387904LL,
                           INT64_MAX - 1,
                           INT64_MAX};
    const size_t nts = sizeof tss / sizeof tss[0];
    const int64_t idxs[] = {0, 1, 5, 30, 31, 32, 200, 1000};
    size_t m = 0;
    for (size_t t = 0; t < nts; t++)
        for (size_t k = 0; k < 8; k++)
            if ((t + k) % 3 != 0 || k == 0)
                cells[m++] = (store_cell_t){tss[t], idxs[k], edge[(t * 8 + k) % ne]};
    chunk_roundtrip(cells, m);
    /* 2. One channel per edge value (each channel's values alike or mixed with decimals). */
    for (size_t e = 0; e < ne; e++) {
        m = 0;
        for (int64_t t = 0; t < 9; t++) {
            cells[m++] = (store_cell_t){t * 1000, 0, edge[e]};
            cells[m++] = (store_cell_t){t * 1000, 3, t % 2 ? edge[e] : 71.25};
        }
        chunk_roundtrip(cells, m);
    }
    /* 3. A single cell; decimals at the limits of k. */
    cells[0] = (store_cell_t){42, 7, -0.0};
    chunk_roundtrip(cells, 1);
    const double lim[] = {1717986.9183, -1717986.9184, 1717986.9184, 0.0001, 99999.9999};
    for (size_t i = 0; i < 5; i++)
        cells[i] = (store_cell_t){(int64_t)i, 0, lim[i]};
    chunk_roundtrip(cells, 5);
    /* 4. A regular 1 Hz series of a sensor's random walk (2 decimals) and a constant: the
     * timestamps cost a few bytes in all and a value about one byte. */
    double walk = 50;
    unsigned seed = 7;
    m = 0;
    for (int64_t t = 0; t < 1000; t++) {
        walk = round((walk + ((double)rand_r(&seed) / RAND_MAX - 0.5) * 0.2) * 100) / 100;
        cells[m++] = (store_cell_t){1732780800000LL + t * 1000, 0, walk};
        cells[m++] = (store_cell_t){1732780800000LL + t * 1000, 1, 1500.0};
    }
    size_t len = chunk_roundtrip(cells, m);
    assert_true(len < 1000 + 1000 + 40);
    /* 5. Malformed input is refused, not trusted: an empty chunk, a point without values, a
     * huge count. */
    store_codec_t dec = {0};
    const store_cell_t *c;
    size_t nc, np;
    const unsigned char bad1[] = {0, 1}, bad2[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 1},
                        bad3[] = {2, 1, 2, 0, 0x01, 0x00}; /* point 2 has no value */
    assert_int_equal(store__chunk_decode(&dec, 0, bad1, sizeof bad1, NULL, 0, &c, &nc, &np),
                     ERR_CORRUPT);
    assert_int_equal(store__chunk_decode(&dec, 0, bad2, sizeof bad2, NULL, 0, &c, &nc, &np),
                     ERR_CORRUPT);
    assert_int_equal(store__chunk_decode(&dec, 0, bad3, sizeof bad3, NULL, 0, &c, &nc, &np),
                     ERR_CORRUPT);
    /* An empty blob, which sqlite3_column_blob returns as NULL. */
    assert_int_equal(store__chunk_decode(&dec, 0, NULL, 0, NULL, 0, &c, &nc, &np), ERR_CORRUPT);
    /* The encoder refuses what it cannot code faithfully: nothing, cells out of order or
     * repeated, a negative or huge idx. */
    const unsigned char *data;
    size_t dlen;
    const store_cell_t unordered[] = {{5, 0, 1.0}, {4, 0, 1.0}},
                       twice[] = {{5, 1, 1.0}, {5, 1, 2.0}}, neg[] = {{5, 0, 1.0}, {5, -1, 1.0}},
                       huge[] = {{5, STORE_CHUNK_IDX_MAX, 1.0}};
    assert_int_equal(store__chunk_encode(&dec, unordered, 0, &data, &dlen), ERR_INVAL);
    assert_int_equal(store__chunk_encode(&dec, unordered, 2, &data, &dlen), ERR_INVAL);
    assert_int_equal(store__chunk_encode(&dec, twice, 2, &data, &dlen), ERR_INVAL);
    assert_int_equal(store__chunk_encode(&dec, neg, 2, &data, &dlen), ERR_INVAL);
    assert_int_equal(store__chunk_encode(&dec, huge, 1, &data, &dlen), ERR_INVAL);
    store__codec_free(&dec);
    free(cells);
}

/* Random chunks: a decode of any selection of channels gives the full decode's cells of those
 * channels. Channel j of a chunk is coded as j % 6 says (0..4: DECIMAL with that many
 * decimals, 5: PAIRS), present at every point when (j / 6) % 2 == 0 (else sparse: a bitmap), so
 * 12 or more channels take every path, each both decoded and skipped. */
static void test_chunk_decode_mask(void **state)
{
    (void)state;
    const size_t nchs[] = {1, 2, 3, 8, 12, 13, 40};
    unsigned seed = 11;
    enum { NMAX = 300, CHMAX = 40, IDXMAX = 4 * CHMAX };
    store_cell_t *cells = malloc(NMAX * CHMAX * sizeof *cells);
    unsigned char want[IDXMAX + 1];
    for (size_t t = 0; t < sizeof nchs / sizeof nchs[0]; t++) {
        for (int rep = 0; rep < 6; rep++) {
            size_t nch = nchs[t], n = 1 + (size_t)rand_r(&seed) % NMAX, m = 0;
            int64_t idx[CHMAX], ts = (int64_t)rand_r(&seed) - RAND_MAX / 2;
            for (size_t j = 0; j < nch; j++) /* increasing, gaps of 1 to 4 */
                idx[j] = (j ? idx[j - 1] : -1) + 1 + rand_r(&seed) % 4;
            for (size_t i = 0; i < n; i++) {
                ts += rep % 2 ? 1000 : 1 + rand_r(&seed) % 5000; /* regular or irregular */
                size_t m0 = m;
                for (size_t j = 0; j < nch; j++) {
                    int sparse = (j / 6) % 2 == 1;
                    if (sparse && rand_r(&seed) % 3 == 0)
                        continue;
                    int kind = (int)(j % 6);
                    double v;
                    if (kind < 5) {
                        static const double p10[] = {1, 10, 100, 1000, 10000};
                        v = (double)((int64_t)rand_r(&seed) % 2000001 - 1000000) / p10[kind];
                    } else {
                        uint64_t b = (uint64_t)rand_r(&seed) << 33 ^ (uint64_t)rand_r(&seed) << 11 ^
                                     (uint64_t)rand_r(&seed);
                        v = from_bits(b);
                    }
                    cells[m++] = (store_cell_t){ts, idx[j], v};
                }
                if (m == m0) /* every point holds a value */
                    cells[m++] = (store_cell_t){ts, idx[nch - 1], 0.5};
            }
            store_codec_t enc = {0};
            const unsigned char *data;
            size_t len;
            assert_int_equal(store__chunk_encode(&enc, cells, m, &data, &len), 0);
            unsigned char *copy = malloc(len);
            memcpy(copy, data, len);
            /* Everything (both ways), nothing (both ways), each channel alone, random subsets
             * (some with nwant short of the largest idx). */
            chunk_check_masked(copy, len, cells, m, n, NULL, 0);
            memset(want, 1, sizeof want);
            chunk_check_masked(copy, len, cells, m, n, want, sizeof want);
            memset(want, 0, sizeof want);
            chunk_check_masked(copy, len, cells, m, n, want, sizeof want);
            chunk_check_masked(copy, len, cells, m, n, want, 0);
            for (size_t j = 0; j < nch; j++) {
                memset(want, 0, sizeof want);
                want[idx[j]] = 1;
                chunk_check_masked(copy, len, cells, m, n, want, (size_t)idx[j] + 1);
            }
            for (int r = 0; r < 8; r++) {
                for (size_t i = 0; i < sizeof want; i++)
                    want[i] = rand_r(&seed) % 2 == 0;
                size_t nwant = r % 2 ? (size_t)rand_r(&seed) % (sizeof want) : sizeof want;
                chunk_check_masked(copy, len, cells, m, n, want, nwant);
            }
            free(copy);
            store__codec_free(&enc);
        }
    }
    free(cells);
    /* A skipped channel's varints are held to the full decode's limit (at most 9 bytes >= 0x80
     * before the one that ends a varint), wherever a long one falls among 8-byte words: 20
     * points 1 ms apart, channel 0 DECIMAL 0 at every point (values 0 but value j, which is
     * len bytes 0x80 and a 0x00), channel 1 likewise (all 0). Both decodes accept it exactly
     * when len <= 9; a decode of channel 1 alone gives its 20 cells. */
    for (size_t j = 0; j < 20; j++) {
        for (size_t run = 0; run <= 20; run++) {
            unsigned char buf[128];
            size_t w = 0;
            const unsigned char head[] = {20, 2, 2, 0, 17, 0, 8}; /* n, nch, ts, idx 0, mode */
            memcpy(buf, head, sizeof head);
            w = sizeof head;
            for (size_t i = 0; i < 20; i++) {
                for (size_t r = 0; i == j && r < run; r++)
                    buf[w++] = 0x80;
                buf[w++] = 0;
            }
            buf[w++] = 1; /* idx 1 */
            buf[w++] = 8;
            memset(buf + w, 0, 20);
            w += 20;
            store_codec_t dec = {0};
            const store_cell_t *c;
            size_t nc, np;
            unsigned char only1[2] = {0, 1};
            int full = store__chunk_decode(&dec, 5, buf, w, NULL, 0, &c, &nc, &np);
            int part = store__chunk_decode(&dec, 5, buf, w, only1, 2, &c, &nc, &np);
            assert_int_equal(full, run <= 9 ? 0 : ERR_CORRUPT);
            assert_int_equal(part, full);
            if (part == 0) {
                assert_int_equal(nc, 20);
                assert_int_equal(np, 20);
                for (size_t i = 0; i < 20; i++) {
                    assert_int_equal(c[i].ts, 5 + (int64_t)i);
                    assert_int_equal(c[i].idx, 1);
                }
            }
            store__codec_free(&dec);
        }
    }
}

/* Every point must hold a value of some channel, also when no channel is present at every point
 * (the decoder ORs the bitmaps then): rows of n = 1..17 points (n % 8 of every kind) and two
 * sparse DECIMAL 0 channels (idx 0 and 1, bitmaps a and b, values 0) are accepted exactly when a
 * | b covers the n points, by the full decode and by every selection, which then give the
 * selected channels' cells. */
static void test_chunk_decode_cover(void **state)
{
    (void)state;
    unsigned seed = 5;
    const unsigned char sel0[] = {1, 0}, sel1[] = {0, 1}, none[] = {0, 0};
    const unsigned char *sels[] = {sel0, sel1, none, sel1};
    const size_t nsel[] = {2, 2, 2, 1};
    for (size_t n = 1; n <= 17; n++) {
        size_t nb = (n + 7) / 8;
        uint32_t all = (uint32_t)((1u << n) - 1);
        for (int rep = 0; rep < 200; rep++) {
            uint32_t a = (uint32_t)rand_r(&seed) & all, b = (uint32_t)rand_r(&seed) & all;
            if (rep % 4 == 0) /* often exactly covered */
                b = (all & ~a) | ((uint32_t)rand_r(&seed) & a);
            if (a == 0 || b == 0)
                continue; /* an empty channel is refused on its own */
            unsigned char buf[64];
            size_t w = 0;
            buf[w++] = (unsigned char)n;
            buf[w++] = 2;
            if (n >= 2)
                buf[w++] = 2; /* dod +1: 1 ms apart */
            if (n >= 3) {
                buf[w++] = 0; /* then n - 3 more zeros */
                buf[w++] = (unsigned char)(n - 3);
            }
            for (int ch = 0; ch < 2; ch++) {
                uint32_t bits = ch ? b : a;
                buf[w++] = (unsigned char)ch; /* idx 0, then + 1 */
                buf[w++] = 0;                 /* DECIMAL 0, sparse */
                for (size_t k = 0; k < nb; k++)
                    buf[w++] = (unsigned char)(bits >> (8 * k));
                for (int k = __builtin_popcount(bits); k > 0; k--)
                    buf[w++] = 0;
            }
            int ok = (a | b) == all;
            store_codec_t dec = {0};
            const store_cell_t *c;
            size_t nc, np;
            assert_int_equal(store__chunk_decode(&dec, 7, buf, w, NULL, 0, &c, &nc, &np),
                             ok ? 0 : ERR_CORRUPT);
            if (ok)
                assert_int_equal(nc, (size_t)(__builtin_popcount(a) + __builtin_popcount(b)));
            for (size_t t = 0; t < sizeof sels / sizeof sels[0]; t++) {
                assert_int_equal(
                    store__chunk_decode(&dec, 7, buf, w, sels[t], nsel[t], &c, &nc, &np),
                    ok ? 0 : ERR_CORRUPT);
                if (!ok)
                    continue;
                assert_int_equal(np, n);
                size_t want_nc = 0;
                for (size_t k = 0; k < 2; k++)
                    if (k < nsel[t] && sels[t][k])
                        want_nc += (size_t)__builtin_popcount(k ? b : a);
                assert_int_equal(nc, want_nc);
                for (size_t k = 0; k < nc; k++) {
                    assert_true(c[k].idx < (int64_t)nsel[t] && sels[t][c[k].idx]);
                    assert_true((c[k].idx ? b : a) >> (c[k].ts - 7) & 1);
                    assert_true(k == 0 || c[k].ts > c[k - 1].ts);
                }
            }
            store__codec_free(&dec);
        }
    }
}

static void test_chunk_cut(void **state)
{
    (void)state;
    enum { M = 3 * STORE_CHUNK_POINTS };
    store_cell_t *cells = malloc(M * sizeof *cells);
    size_t np;
    /* Points: a regular series is cut every STORE_CHUNK_POINTS timestamps. */
    for (size_t i = 0; i < M; i++)
        cells[i] = (store_cell_t){(int64_t)i, 0, 1.0};
    assert_int_equal(store__chunk_cut(cells, M, &np), STORE_CHUNK_POINTS);
    assert_int_equal(np, STORE_CHUNK_POINTS);
    assert_int_equal(store__chunk_cut(cells, 10, &np), 10);
    /* Span: t_last - t0 stays within STORE_CHUNK_SPAN_MS (the boundary itself included). */
    cells[0].ts = 0;
    cells[1].ts = STORE_CHUNK_SPAN_MS;
    cells[2].ts = STORE_CHUNK_SPAN_MS + 1;
    assert_int_equal(store__chunk_cut(cells, 3, &np), 2);
    /* Cells: wide points are cut by values; one point alone may exceed the cap. */
    size_t per = STORE_CHUNK_CELLS / 2 + 1;
    assert_true(2 * per <= M || per > M);
    free(cells);
    cells = malloc(2 * per * sizeof *cells);
    for (size_t i = 0; i < 2 * per; i++)
        cells[i] = (store_cell_t){(int64_t)(i / per), (int64_t)(i % per), 2.0};
    assert_int_equal(store__chunk_cut(cells, 2 * per, &np), per);
    assert_int_equal(np, 1);
    free(cells);
}

/* Session 69: a chunk carries a checksum (over t0 and its bytes): a flipped bit anywhere after
 * its first byte is refused, by a full decode and by one of a channel alone, and so is the chunk
 * read under another key; a chunk without the head (an older vigild's) still decodes. */
static void test_chunk_checksum(void **state)
{
    (void)state;
    enum { NP = 60, NC = 3 };
    store_cell_t cells[NP * NC];
    for (size_t i = 0; i < NP * NC; i++)
        cells[i] = (store_cell_t){1000 + (int64_t)(i / NC) * 10, (int64_t)(i % NC),
                                  20.0 + (double)(i % 7) * 0.5};
    store_codec_t enc = {0}, dec = {0};
    const unsigned char *data;
    size_t len;
    assert_int_equal(store__chunk_encode(&enc, cells, NP * NC, &data, &len), 0);
    assert_int_equal(data[0], 0);
    unsigned char *copy = malloc(len);
    memcpy(copy, data, len);
    const unsigned char want[NC] = {0, 1, 0};
    const store_cell_t *c;
    size_t nc, np;
    assert_int_equal(store__chunk_decode(&dec, 1000, copy, len, NULL, 0, &c, &nc, &np), 0);
    assert_int_equal(nc, NP * NC);
    assert_int_equal(store__chunk_decode(&dec, 1001, copy, len, NULL, 0, &c, &nc, &np),
                     ERR_CORRUPT);
    for (size_t i = 1; i < len; i++)
        for (int b = 0; b < 8; b++) {
            copy[i] ^= (unsigned char)(1u << b);
            assert_int_equal(store__chunk_decode(&dec, 1000, copy, len, NULL, 0, &c, &nc, &np),
                             ERR_CORRUPT);
            assert_int_equal(store__chunk_decode(&dec, 1000, copy, len, want, NC, &c, &nc, &np),
                             ERR_CORRUPT);
            copy[i] ^= (unsigned char)(1u << b);
        }
    /* The old form: the same bytes without the head, decoded unchecked. */
    assert_int_equal(store__chunk_decode(&dec, 1000, copy + 5, len - 5, NULL, 0, &c, &nc, &np), 0);
    assert_int_equal(nc, NP * NC);
    for (size_t i = 0; i < nc; i++) {
        assert_int_equal(c[i].ts, cells[i].ts);
        assert_int_equal(bits_of(c[i].v), bits_of(cells[i].v));
    }
    free(copy);
    store__codec_free(&enc);
    store__codec_free(&dec);
}

/* Session 69: a damaged chunk in a store (a byte changed in its data) is not served: a query
 * of its range fails with ERR_CORRUPT and a message naming the device and the chunk's range,
 * counted in chunks_damaged at each read and logged once; a skip_damaged query (training's
 * window) leaves it out and returns the rest. A readings log row's checksum is checked. */
static void test_chunk_damaged_store(void **state)
{
    fx_t *f = *state;
    write_series(f->s, "dmg", 0, 1, 100, 0.0);
    assert_int_equal(store__test_pend_flush(f->s), 0);
    write_series(f->s, "dmg", 5000000, 1, 50, 0.0); /* past a chunk's span: a row of its own */
    assert_int_equal(store__test_pend_flush(f->s), 0);
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "dmg", &pts), 2);
    store_close(f->s);
    /* The first row's 11th byte changed (a value's bytes, past the head of 5). */
    exec_file(f->dir, "UPDATE readings SET data = substr(data, 1, 10) || CASE WHEN "
                      "substr(data, 11, 1) = x'00' THEN x'01' ELSE x'00' END || "
                      "substr(data, 12) WHERE t0 = (SELECT min(t0) FROM readings)");
    int64_t t_last = sql_int(f->dir, "SELECT t_last FROM readings ORDER BY t0 LIMIT 1");
    f->s = open_store(f->dir, 0);
    errcap_t e;
    errcap_start(&e, f->dir);
    got_t *g = calloc(1, sizeof *g);
    for (int i = 0; i < 2; i++)
        assert_int_equal(query(f->s, "dmg", 0, INT64_MAX, NULL, 0, 0, 0, g), ERR_CORRUPT);
    char want[160];
    snprintf(want, sizeof want, "device \"dmg\" from 0 to %lld ms", (long long)t_last);
    assert_non_null(strstr(store_errmsg(f->s), want));
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.chunks_damaged, 2);
    span_t sp = {0};
    store_query_t q = {"dmg", 0, INT64_MAX, NULL, 0, 0, 0, 0, 1};
    assert_int_equal(store_query(f->s, &q, count_point, &sp), 0);
    assert_int_equal(t_last, 99);
    assert_int_equal(sp.n, 50);
    assert_int_equal(sp.first, 5000000);
    char *log = errcap_stop(&e);
    assert_int_equal(count_in(log, "damaged readings chunk of device \"dmg\""), 1);
    free(log);
    free(g);
    /* A readings log row's head: a summed row is checked (its seq included), an older
     * vigild's row (opening with a device id) is not. */
    unsigned char row[12] = {0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7};
    uint32_t sum = store__chunk_sum(42, row + 5, 7);
    for (int i = 0; i < 4; i++)
        row[1 + i] = (unsigned char)(sum >> (8 * i));
    size_t head;
    assert_int_equal(store__pend_log_head(42, row, sizeof row, &head), 0);
    assert_int_equal(head, 5);
    assert_int_equal(store__pend_log_head(43, row, sizeof row, &head), ERR_CORRUPT);
    row[9] ^= 0x10;
    assert_int_equal(store__pend_log_head(42, row, sizeof row, &head), ERR_CORRUPT);
    assert_int_equal(store__pend_log_head(42, row + 5, 7, &head), 0);
    assert_int_equal(head, 0);
}

const struct CMUnitTest storage_chunks_tests[] = {
    cmocka_unit_test(test_value_encoding),
    cmocka_unit_test_setup_teardown(test_compact_merge, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wide_points_encoding, setup, teardown),
    cmocka_unit_test(test_chunk_codec),
    cmocka_unit_test(test_chunk_checksum),
    cmocka_unit_test_setup_teardown(test_chunk_damaged_store, setup, teardown),
    cmocka_unit_test(test_chunk_decode_mask),
    cmocka_unit_test(test_chunk_decode_cover),
    cmocka_unit_test(test_chunk_cut),
};
const size_t storage_chunks_ntests = sizeof storage_chunks_tests / sizeof storage_chunks_tests[0];
