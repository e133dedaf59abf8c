/* tests/fuzz/fuzz_seeds.c: writes the binary seed inputs of the model and storage fuzz targets
 * (valid checkpoints, safetensors files and saved detectors of small shapes; readings chunks
 * from the storage codec) into DIR/checkpoint, DIR/safetensors, DIR/detector and DIR/chunk, so
 * the fuzzers start from real formats instead of committed binary files. Usage: fuzz_seeds DIR
 * (the directories must exist). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_int.h" /* detector_rhythm_seed checks the onsets it kept */
#include "model.h"
#include "storage_int.h" /* the chunk codec: store__chunk_encode */

static int put(const char *dir, const char *sub, const char *name, const void *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* compact: the seeds are of the model's float16 serving form (checkpoint version 2). */
static int model_seeds(const char *dir, const struct model_config *cfg, int compact,
                       const char *name)
{
    model_t *m, *f32;
    if (model_create(&m, cfg) != 0)
        return -1;
    if (compact) {
        f32 = m;
        int rc = model_compact(&m, f32);
        model_destroy(f32);
        if (rc != 0)
            return -1;
    }
    size_t n = model_checkpoint_size(m), s = model_safetensors_size(m), len;
    uint8_t *buf = malloc(n > s ? n : s);
    int rc = -1;
    if (buf && model_checkpoint_save(m, buf, n, &len) == 0 &&
        put(dir, "checkpoint", name, buf, len) == 0 &&
        model_safetensors_export(m, buf, s, &len) == 0 &&
        put(dir, "safetensors", name, buf, len) == 0)
        rc = 0;
    free(buf);
    model_destroy(m);
    return rc;
}

/* The detectors' small shapes: a blob of a few kilobytes the fuzzer mutates quickly. */
static void small_config(struct detector_config *cfg)
{
    detector_config_default(cfg);
    cfg->warmup = 16;
    cfg->history = 32;
    cfg->err_window = 16;
    cfg->err_short = 4;
    cfg->n_hidden = 4;
}

/* Writes detector_save's bytes of d as DIR/detector/name and destroys d (rc != 0: only
 * destroys it, returning rc). */
static int save_seed(const char *dir, detector_t *d, const char *name, int rc)
{
    size_t n = detector_save_size(d), len;
    uint8_t *buf = rc == 0 ? malloc(n) : NULL;
    rc = buf && detector_save(d, buf, n, &len) == 0 ? put(dir, "detector", name, buf, len) : -1;
    free(buf);
    detector_destroy(d);
    return rc;
}

static int detector_seed(const char *dir, int channels, int with_lstm, const char *name)
{
    struct detector_config cfg;
    small_config(&cfg);
    detector_t *d;
    if (detector_create(&d, &cfg, channels) != 0)
        return -1;
    float x[8];
    int rc = 0;
    for (int t = 0; rc == 0 && t < 10; t++) {
        struct detector_result res;
        for (int c = 0; c < channels; c++)
            x[c] = (float)(t * (c + 1)) * 0.5f;
        rc = detector_step(d, x, NULL, &res);
    }
    if (rc == 0 && with_lstm) {
        struct model_config mc;
        model_config_default(&mc, channels, channels);
        mc.n_hidden = 4;
        model_t *m = NULL;
        rc = model_create(&m, &mc) != 0 ? -1 : detector_set_model(d, m, 1);
        model_destroy(m);
    }
    return save_seed(dir, d, name, rc);
}

/* A one-channel detector whose onset_rhythm state (format 33: rh_n, rh_at, rh_raw) holds
 * onsets: an LSTM serves from reading 0 and a spike comes every 20 readings (more than
 * onset_rhythm's 4 short windows apart), so the fuzzer mutates a blob whose onsets' counts and
 * sizes are set, not only rh_n 0. Fails when fewer than 3 onsets were kept (the seed would
 * no longer cover the state). */
static int detector_rhythm_seed(const char *dir, const char *name)
{
    struct detector_config cfg;
    small_config(&cfg);
    detector_t *d;
    struct model_config mc;
    model_config_default(&mc, 1, 1);
    mc.n_hidden = 4;
    if (detector_create(&d, &cfg, 1) != 0)
        return -1;
    model_t *m = NULL;
    int rc = model_create(&m, &mc) != 0 ? -1 : detector_set_model(d, m, 1);
    model_destroy(m);
    for (int t = 0; rc == 0 && t < 200; t++) {
        struct detector_result res;
        float x = t % 20 == 19 ? 8.0f : 0.1f * (float)(t % 3);
        rc = detector_step(d, &x, NULL, &res);
    }
    if (rc == 0 && d->rh_n < 3) {
        fprintf(stderr, "fuzz_seeds: %s kept %d onsets (3 wanted)\n", name, d->rh_n);
        rc = -1;
    }
    return save_seed(dir, d, name, rc);
}

/* One fuzz_chunk input of each mode for the m cells (sorted by (ts, idx), unique): the even
 * mode's (a mode byte, t0 little-endian, the chunk store__chunk_encode makes of them), under
 * name, and the odd mode's (a mode byte, then per cell a step byte, an idx byte and the value's
 * 8 bytes) for cells like the first 24 (the same values; steps and numbers as that mode can
 * say them), under name-cells. sel: the mode byte's selection bits (1-7). */
static int chunk_seed(const char *dir, const store_cell_t *cells, size_t m, unsigned sel,
                      const char *name)
{
    store_codec_t c = {0}, d = {0};
    const unsigned char *out;
    const store_cell_t *back;
    size_t len, nc, np;
    int rc = -1;
    /* A seed is a chunk the decoder takes back whole (checked: else fuzz_seeds fails). */
    if (store__chunk_encode(&c, cells, m, &out, &len) != 0 ||
        store__chunk_decode(&d, cells[0].ts, out, len, NULL, 0, &back, &nc, &np) != 0 || nc != m) {
        fprintf(stderr, "fuzz_seeds: chunk %s does not encode and decode back\n", name);
        goto done;
    }
    unsigned char *buf = malloc(1 + 8 + len);
    if (buf == NULL)
        goto done;
    buf[0] = (unsigned char)(sel << 1); /* even: decode */
    for (int i = 0; i < 8; i++)
        buf[1 + i] = (unsigned char)((uint64_t)cells[0].ts >> (8 * i));
    memcpy(buf + 9, out, len);
    rc = put(dir, "chunk", name, buf, 9 + len);
    free(buf);
    enum { NCELLS = 24 };
    unsigned char raw[1 + 10 * NCELLS];
    size_t k = m < NCELLS ? m : NCELLS;
    raw[0] = 1; /* odd: encode the cells described */
    for (size_t i = 0; rc == 0 && i < k; i++) {
        unsigned char *p = raw + 1 + 10 * i;
        int64_t step = i ? cells[i].ts - cells[i - 1].ts : 0;
        /* step byte: low 3 bits the step (0: same point), high 5 its multiplier */
        p[0] = step == 0 ? 0 : (unsigned char)((step < 8 ? step : 1) | (step >= 8 ? 31u << 3 : 0));
        p[1] = (unsigned char)(cells[i].idx & 31);
        memcpy(p + 2, &cells[i].v, 8);
    }
    char cname[128];
    snprintf(cname, sizeof cname, "%s-cells", name);
    if (rc == 0)
        rc = put(dir, "chunk", cname, raw, 1 + 10 * k);
done:
    store__codec_free(&c);
    store__codec_free(&d);
    return rc;
}

/* Chunks of the codec's every form: regular and irregular timestamps (delta-of-delta runs and
 * single values), channels present at every point and in a bitmap, sparse and dense channel
 * numbers, values of each decimal count and the exact pair coding (fractions, huge, negative
 * zero, infinities, NaN), one point and many, and timestamps near both ends of int64. */
static int chunk_seeds(const char *dir)
{
    enum { MAXC = 512 };
    store_cell_t *c = malloc(MAXC * sizeof *c);
    if (c == NULL)
        return -1;
    size_t m = 0;
    int rc = 0;
    /* A regular series of one integer channel (DECIMAL 0, one dod run). */
    for (int i = 0; i < 64; i++)
        c[m++] = (store_cell_t){1732780800000LL + 10000LL * i, 0, (double)(20 + i % 5)};
    rc |= chunk_seed(dir, c, m, 0x7f, "regular-int");
    /* Three channels with one, two and four decimals; the second missing at every third point;
     * irregular steps. */
    m = 0;
    int64_t ts = 1732780800000LL;
    for (int i = 0; i < 40; i++) {
        ts += 1000 + (i % 7) * 13;
        c[m++] = (store_cell_t){ts, 0, 21.5 + 0.1 * (i % 9)};
        if (i % 3)
            c[m++] = (store_cell_t){ts, 1, 0.25 * i};
        c[m++] = (store_cell_t){ts, 2, 3.1416 - 0.0001 * i};
    }
    rc |= chunk_seed(dir, c, m, 0x2b, "decimals-gaps");
    /* Values no decimal count reproduces (the pair coding), special ones among them. */
    m = 0;
    static const double odd[] = {1.0 / 3,   -0.0, 1e300,          -2.5e-310,     INFINITY,
                                 -INFINITY, NAN,  123456789012.5, 17179869184.0, -7.77777777};
    for (int i = 0; i < 30; i++)
        c[m++] = (store_cell_t){-5000000LL + 7 * i * i, 3, odd[i % 10]};
    rc |= chunk_seed(dir, c, m, 0x55, "pairs");
    /* One point of one channel. */
    c[0] = (store_cell_t){0, 5, 42.0};
    rc |= chunk_seed(dir, c, 1, 0x01, "one-cell");
    /* A wide point set: 40 channels, sparse numbers up to 4,000, a few at each point. */
    m = 0;
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 40; j++)
            if ((i + j) % 3 == 0)
                c[m++] = (store_cell_t){1700000000000LL + 60000LL * i, 100 * j, (double)(i * j)};
    rc |= chunk_seed(dir, c, m, 0x3c, "wide-sparse");
    /* Timestamps at both ends of int64 (the arithmetic is modulo 2^64). */
    m = 0;
    c[m++] = (store_cell_t){INT64_MIN, 0, 1.0};
    c[m++] = (store_cell_t){INT64_MIN + 1, 0, 2.0};
    c[m++] = (store_cell_t){0, 0, 3.0};
    c[m++] = (store_cell_t){INT64_MAX - 1, 0, 4.0};
    c[m++] = (store_cell_t){INT64_MAX, 1, 5.0};
    rc |= chunk_seed(dir, c, m, 0x7f, "extremes");
    free(c);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    struct model_config a = {2, 2, 1, 4, 1}, b = {3, 1, 2, 3, 7}, c = {1, 1, 1, 1, 3};
    if (model_seeds(argv[1], &a, 0, "i2-o2-l1-h4") || model_seeds(argv[1], &b, 0, "i3-o1-l2-h3") ||
        model_seeds(argv[1], &c, 0, "i1-o1-l1-h1") ||
        model_seeds(argv[1], &b, 1, "i3-o1-l2-h3-f16") ||
        detector_seed(argv[1], 2, 0, "c2-learning") || detector_seed(argv[1], 3, 1, "c3-lstm") ||
        detector_rhythm_seed(argv[1], "c1-rhythm") || chunk_seeds(argv[1]))
        return 1;
    return 0;
}
