/* model/ckpt.c: vigil's own checkpoint format, to and from byte buffers.
 *
 * Layout, all little-endian:
 *   0  "VGLM"            magic
 *   4  u32 version       1: float32 parameters; 2: float16 (a compact model, model_compact)
 *   8  u32 I, O, L, H    shape
 *  24  u64 seed          creation seed (informational)
 *  32  u64 n_params      must equal the count the shape implies
 *  40  u64 total length  of the whole checkpoint, CRC included
 *  48  f32 mean[I], scale[I], then params[n_params] (layout of internal.h): f32 (version 1)
 *      or IEEE binary16 bits as u16 (version 2), always in that canonical order (a compact
 *      model's gate matrices are in panels in memory, f16.c: save and load map through
 *      model__f16_index, so the bytes do not depend on the in-memory layout)
 *  end u32 CRC-32 (IEEE) of every byte before it
 * A float32 model writes version 1, so checkpoints of float32 models read as before.
 * Loading checks the length before reading anything, the CRC before trusting anything, then
 * the shape and the values (finite weights, positive scales), so corrupt or truncated input is
 * an error, never a crash or a half-built model. Any thread. */
#include <math.h>
#include <string.h>
#include <zlib.h>

#include "err.h"
#include "internal.h"

#define CKPT_MAGIC   "VGLM"
#define CKPT_VERSION 1u /* float32 parameters */
#define CKPT_F16     2u /* float16 parameters */
#define CKPT_HEADER  48u

uint32_t model__crc32(uint32_t crc, const void *buf, size_t n)
{
    /* zlib's: the same CRC (IEEE, reflected, inverted in and out), several bytes a step. The
     * half-byte table this replaced checked a 13-70 KB saved detector at some 0.1-0.5 ms, a
     * third of the start's restore at 2,000 devices (docs/reliability.md, "Startup (session
     * 42)"); tests/test_model_io.c keeps it as the reference. zlib answers 0 for a NULL
     * buffer whatever the crc, hence the early return for nothing to add. */
    if (n == 0)
        return crc;
    return (uint32_t)crc32_z(crc, buf, n);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void model__put_floats(unsigned char *p, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        model__put_u32(p + 4 * i, u);
    }
}

void model__get_floats(float *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = model__get_u32(p + 4 * i);
        memcpy(&f[i], &u, 4);
    }
}

/* Bytes of a checkpoint of I inputs and np parameters of pb bytes each. */
static size_t ckpt_size(size_t I, size_t np, size_t pb)
{
    return CKPT_HEADER + 4 * 2 * I + pb * np + 4;
}

size_t model_checkpoint_size(const model_t *m)
{
    return ckpt_size((size_t)m->cfg.n_inputs, m->n_params, m->compact ? 2 : 4);
}

int model_checkpoint_save(const model_t *m, void *buf, size_t cap, size_t *len)
{
    size_t total = model_checkpoint_size(m);
    if (cap < total)
        return ERR_RANGE;
    unsigned char *p = buf;
    memcpy(p, CKPT_MAGIC, 4);
    model__put_u32(p + 4, m->compact ? CKPT_F16 : CKPT_VERSION);
    model__put_u32(p + 8, (uint32_t)m->cfg.n_inputs);
    model__put_u32(p + 12, (uint32_t)m->cfg.n_outputs);
    model__put_u32(p + 16, (uint32_t)m->cfg.n_layers);
    model__put_u32(p + 20, (uint32_t)m->cfg.n_hidden);
    put_u64(p + 24, m->cfg.seed);
    put_u64(p + 32, m->n_params);
    put_u64(p + 40, total);
    const size_t I = (size_t)m->cfg.n_inputs;
    if (m->compact) {
        model__put_floats(p + CKPT_HEADER, m->block, 2 * I);
        unsigned char *q = p + CKPT_HEADER + 8 * I;
        for (size_t i = 0; i < m->n_params; i++) { /* canonical order (f16.c: panels) */
            const uint16_t h = m->params16[model__f16_index(m, i)];
            q[2 * i] = (unsigned char)(h & 0xff);
            q[2 * i + 1] = (unsigned char)(h >> 8);
        }
    } else {
        model__put_floats(p + CKPT_HEADER, m->block, 2 * I + m->n_params);
    }
    model__put_u32(p + total - 4, model__crc32(0, p, total - 4));
    *len = total;
    return 0;
}

/* The header after its magic and length field (the caller checked both): version, shape and
 * the header's own sums, as the load and the peek both judge them. A header whose length is not
 * the one its shape implies (the weights cut short, the length field rewritten to match) says
 * nothing. */
static int ckpt_head(const unsigned char *p, size_t len, struct model_config *c, int *f16)
{
    const uint32_t version = model__get_u32(p + 4);
    if (version != CKPT_VERSION && version != CKPT_F16)
        return ERR_INVAL;
    uint32_t dims[4];
    for (int i = 0; i < 4; i++) {
        dims[i] = model__get_u32(p + 8 + 4 * i);
        if (dims[i] > MODEL_MAX_HIDDEN)
            return ERR_CORRUPT;
    }
    *c = (struct model_config){(int)dims[0], (int)dims[1], (int)dims[2], (int)dims[3],
                               get_u64(p + 24)};
    if (model__config_check(c) < 0)
        return ERR_CORRUPT;
    *f16 = version == CKPT_F16;
    const size_t np = model__param_count(c);
    if (get_u64(p + 32) != np || len != ckpt_size((size_t)c->n_inputs, np, *f16 ? 2 : 4))
        return ERR_CORRUPT;
    return 0;
}

int model_checkpoint_peek(const void *buf, size_t len, struct model_config *cfg)
{
    const unsigned char *p = buf;
    if (!buf || !cfg || len < CKPT_HEADER + 4 || memcmp(p, CKPT_MAGIC, 4) != 0 ||
        get_u64(p + 40) != len)
        return ERR_CORRUPT;
    struct model_config c;
    int f16, rc = ckpt_head(p, len, &c, &f16);
    if (rc == 0)
        *cfg = c;
    return rc;
}

int model_checkpoint_load(model_t **out, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (!buf || len < CKPT_HEADER + 4 || memcmp(p, CKPT_MAGIC, 4) != 0)
        return ERR_CORRUPT;
    if (get_u64(p + 40) != len)
        return ERR_CORRUPT;
    if (model__get_u32(p + len - 4) != model__crc32(0, p, len - 4))
        return ERR_CORRUPT;
    struct model_config cfg;
    int f16;
    int rc = ckpt_head(p, len, &cfg, &f16);
    if (rc)
        return rc;
    const size_t np = model__param_count(&cfg);
    const size_t I = (size_t)cfg.n_inputs;
    model_t *m = model__alloc(&cfg, f16);
    if (!m)
        return ERR_NOMEM;
    /* The float32 values (mean and scale, and a version 1's parameters) must be finite, the
     * scales positive; a version 2's halves must be finite (exponent not all ones). */
    size_t nf = 2 * I + (f16 ? 0 : np);
    model__get_floats(m->block, p + CKPT_HEADER, nf);
    int bad = 0;
    for (size_t i = 0; i < nf; i++)
        if (!isfinite(m->block[i]) || (i >= I && i < 2 * I && !(m->block[i] > 0.0f)))
            bad = 1;
    if (f16) {
        const unsigned char *q = p + CKPT_HEADER + 8 * I;
        for (size_t i = 0; i < np; i++) { /* each half to its place in the panel layout */
            const uint16_t h = (uint16_t)(q[2 * i] | (q[2 * i + 1] << 8));
            m->params16[model__f16_index(m, i)] = h;
            if ((h & 0x7c00u) == 0x7c00u)
                bad = 1;
        }
    }
    if (bad) {
        model_destroy(m);
        return ERR_CORRUPT;
    }
    *out = m;
    return 0;
}
