/* model/detector_pred.c: the parameters of a serving predictor that is not an LSTM (the linear
 * baseline or persistence), kept with the model version that swapped it in so that a rollback
 * can return to it (the LSTM's are its checkpoint, model/ckpt.c).
 *
 * Layout, all little-endian:
 *   0  "VGSP"          magic (DETECTOR_PRED_MAGIC)
 *   4  u32 version     1
 *   8  u32 kind        enum detector_kind: 0 persistence, 1 linear (never the LSTM's)
 *  12  u32 C           channels
 *  16  f32 ab[C, C], b[C]   the linear baseline's coefficients (kind linear only; persistence
 *                           has no parameters)
 *  end u32 CRC-32 (IEEE) of every byte before it
 * Loading checks the length and the CRC before trusting anything, then the version, the kind,
 * the channels and the values (finite), so corrupt or truncated input is an error, never a
 * crash or a half-installed predictor: the detector changes only once all of it is checked.
 * Owner thread for the detector's calls (as detector.h); detector_pred_check any thread. */
#include <math.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"
#include "internal.h"

#define PRED_VERSION 1u
#define PRED_HEADER  16u

/* Bytes of kind's parameters for C channels. */
static size_t pred_size(enum detector_kind kind, size_t C)
{
    return PRED_HEADER + (kind == DET_KIND_LINEAR ? 4 * (C * C + C) : 0) + 4;
}

size_t detector_pred_size(const detector_t *d)
{
    return d->kind == DET_KIND_LSTM ? 0 : pred_size(d->kind, (size_t)d->C);
}

int detector_pred_save(const detector_t *d, void *buf, size_t cap, size_t *len)
{
    if (d->kind == DET_KIND_LSTM)
        return ERR_INVAL;
    const size_t C = (size_t)d->C, total = pred_size(d->kind, C);
    if (cap < total)
        return ERR_RANGE;
    unsigned char *p = buf;
    memcpy(p, DETECTOR_PRED_MAGIC, 4);
    model__put_u32(p + 4, PRED_VERSION);
    model__put_u32(p + 8, (uint32_t)d->kind);
    model__put_u32(p + 12, (uint32_t)C);
    if (d->kind == DET_KIND_LINEAR) {
        model__put_floats(p + PRED_HEADER, d->lin_ab, C * C);
        model__put_floats(p + PRED_HEADER + 4 * C * C, d->lin_b, C);
    }
    model__put_u32(p + total - 4, model__crc32(0, p, total - 4));
    *len = total;
    return 0;
}

int detector_pred_check(const void *buf, size_t len, enum detector_kind *kind, int *channels)
{
    const unsigned char *p = buf;
    if (!buf || len < PRED_HEADER + 4 || memcmp(p, DETECTOR_PRED_MAGIC, 4) != 0)
        return ERR_CORRUPT;
    if (model__get_u32(p + len - 4) != model__crc32(0, p, len - 4))
        return ERR_CORRUPT;
    if (model__get_u32(p + 4) != PRED_VERSION)
        return ERR_INVAL; /* a later vigild's format */
    const uint32_t k = model__get_u32(p + 8), C = model__get_u32(p + 12);
    if ((k != DET_KIND_PERSISTENCE && k != DET_KIND_LINEAR) || C < 1 || C > DETECTOR_MAX_CHANNELS ||
        len != pred_size((enum detector_kind)k, C))
        return ERR_CORRUPT;
    for (size_t i = PRED_HEADER; i + 4 < len; i += 4) {
        float f;
        model__get_floats(&f, p + i, 1);
        if (!isfinite(f))
            return ERR_CORRUPT;
    }
    *kind = (enum detector_kind)k;
    *channels = (int)C;
    return 0;
}

int detector_set_pred(detector_t *d, const void *buf, size_t len, uint32_t version,
                      enum detector_kind *kind)
{
    enum detector_kind k;
    int C;
    int rc = detector_pred_check(buf, len, &k, &C);
    if (rc)
        return rc;
    if (C != d->C)
        return ERR_INVAL;
    if (k == DET_KIND_LINEAR) {
        const unsigned char *p = buf;
        model__get_floats(d->lin_ab, p + PRED_HEADER, (size_t)C * C);
        model__get_floats(d->lin_b, p + PRED_HEADER + 4 * (size_t)C * C, (size_t)C);
    }
    /* The LSTM the detector keeps (d->lstm) stays, as after a training that swaps the linear
     * baseline in: detector_model answers NULL while another kind serves. */
    d->kind = k;
    detector__installed(d, version);
    if (kind)
        *kind = k;
    return 0;
}
