/* tests/fuzz/fuzz_seeds.c: writes the binary seed inputs of the model fuzz targets (valid
 * checkpoints, safetensors files and saved detectors of small shapes) into
 * DIR/checkpoint, DIR/safetensors and DIR/detector, so the fuzzers start from real formats
 * instead of committed binary files. Usage: fuzz_seeds DIR (the directories must exist). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "detector_int.h" /* detector_rhythm_seed checks the onsets it kept */
#include "model.h"

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
        detector_rhythm_seed(argv[1], "c1-rhythm"))
        return 1;
    return 0;
}
