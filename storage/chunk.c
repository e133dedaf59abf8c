/* storage/chunk.c: the chunk codec, the format of one readings row (many timestamps of one
 * device).
 *
 * A chunk holds cells (ts, channel idx, value), at most one per (ts, idx). Its first timestamp t0
 * is the row's key and is not repeated inside. Format, all varints LEB128:
 *   varint n (points: distinct timestamps, >= 1), varint nch (channels present, >= 1)
 *   timestamps 2..n: delta-of-delta coded. delta_i = ts_i - ts_{i-1} (delta_0 = 0); the
 *     dod_i = delta_i - delta_{i-1} are written as zigzag varints, except that a zero is
 *     followed by a varint r: r more zeros follow (so a regular series costs a few bytes in all)
 *   then per channel, in increasing idx:
 *     varint idx (the first) or idx - previous idx (the others, >= 1)
 *     mode byte: low 3 bits: 0..4 DECIMAL with that many decimals, 5 PAIRS; bit 3: present at
 *       every point (else a bitmap of n bits follows, little-endian, bit i = point i present)
 *     values of the points where present, in ts order:
 *       DECIMAL d: the value is (double)k / 10^d exactly, |k| < 2^34; zigzag varint of k_0, then
 *         of k_i - k_{i-1} (a slowly moving sensor costs 1-2 bytes a value)
 *       PAIRS: each value as the pair coding of blob.c with idx 0 (a tag byte with its kind,
 *         then 1 to 8 bytes), for a channel that no single decimal count reproduces exactly
 * Arithmetic on timestamps and k is modulo 2^64 on both sides, so every int64 round-trips.
 *
 * Decimal coding instead of Gorilla's XOR of doubles: sensor values are short decimals whose
 * doubles have noisy mantissas, so XOR leaves 40-50 significant bits a value, while the delta of
 * k is a few bits; a channel of values that are not decimals falls back to the exact pair coding.
 *
 * Invariants: encode -> decode returns the very cells, bit for bit (checked while encoding:
 * a decimal form is used only when the decoder's expression gives back the same bits). The
 * decoder refuses anything malformed (ERR_CORRUPT) and bounds what it allocates. A decode of
 * some channels (a range read of a few) skips the others' bytes without reconstructing their
 * values, yet checks them as a full decode does: it refuses exactly the rows a full decode
 * refuses, and returns the full decode's cells of the channels selected.
 *
 * Threads: any; a codec (scratch buffers) belongs to one thread at a time. */
#include "storage_int.h"
#include "varint_int.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_PAIRS = 5, MODE_ALL = 8, MAX_DECIMALS = 4, VARINT_MAX = 10 /* any uint64_t */ };
/* A summed chunk opens with a 0 byte and the checksum, 4 bytes little-endian. */
enum { SUM_HEAD = 5 };

uint32_t store__chunk_sum(int64_t t0, const void *data, size_t len)
{
    /* FNV-1a, 32 bits, as prediction blocks (store__pred_sum), over t0's 8 bytes little-endian
     * and then the chunk's: a row moved to another key is caught as well as a flipped byte. */
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++)
        h = (h ^ (unsigned char)((uint64_t)t0 >> (8 * i))) * 16777619u;
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}
#define K_LIMIT ((int64_t)1 << 34)

static const double pow10_tab[MAX_DECIMALS + 1] = {1, 10, 100, 1000, 10000};

void store__codec_free(store_codec_t *c)
{
    free(c->out);
    free(c->cells);
    free(c->pi);
    free(c->cnt);
    free(c->colpi);
    free(c->colv);
    free(c->colk);
    free(c->ts);
    free(c->cover);
    memset(c, 0, sizeof *c);
}

static uint64_t zz(uint64_t u)
{
    return (u << 1) ^ (0 - (u >> 63));
}

static uint64_t unzz(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

static int same_bits(double a, double b)
{
    uint64_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

/* k with v == (double)k / 10^d exactly and |k| < 2^34: 0 and *k, or -1 when there is none. */
static int decimal_at(double v, int d, int64_t *k)
{
    double x = v * pow10_tab[d];
    if (!(fabs(x) < (double)K_LIMIT))
        return -1;
    *k = (int64_t)nearbyint(x);
    return same_bits((double)*k / pow10_tab[d], v) ? 0 : -1;
}

/* Encodes one channel's m values (their point indices pi[], values v[]) of a chunk of n points
 * at c->out + *off (room reserved by the caller). */
static void put_channel(store_codec_t *c, size_t *off, uint64_t idx_delta, size_t n,
                        const uint32_t *pi, const double *v, int64_t *k, size_t m)
{
    unsigned char *o = c->out;
    size_t w = *off;
    /* The channel's decimal count is the largest any value needs. Each value is tried at the
     * count so far first (a value with fewer decimals has that many too: the same decimal, so
     * the same nearest double; the check is what makes it so), and only a value that needs
     * more raises it, after which the values before it are redone at the new count. */
    int dmax = 0;
    size_t redo = 0; /* values [0, redo) were coded at a smaller count */
    for (size_t i = 0; i < m && dmax >= 0; i++) {
        int d = dmax;
        while (d <= MAX_DECIMALS && decimal_at(v[i], d, &k[i]))
            d++;
        if (d > MAX_DECIMALS)
            dmax = -1;
        else if (d > dmax) {
            dmax = d;
            redo = i;
        }
    }
    for (size_t i = 0; i < redo && dmax >= 0; i++)
        if (decimal_at(v[i], dmax, &k[i]))
            dmax = -1;
    w += store__varint_put(o + w, idx_delta);
    unsigned mode = dmax >= 0 ? (unsigned)dmax : MODE_PAIRS;
    if (m == n)
        mode |= MODE_ALL;
    o[w++] = (unsigned char)mode;
    if (m != n) {
        size_t nb = (n + 7) / 8;
        memset(o + w, 0, nb);
        for (size_t i = 0; i < m; i++)
            o[w + pi[i] / 8] |= (unsigned char)(1u << (pi[i] % 8));
        w += nb;
    }
    if (dmax >= 0) {
        uint64_t prev = 0;
        for (size_t i = 0; i < m; i++) {
            w += store__varint_put(o + w, zz((uint64_t)k[i] - prev));
            prev = (uint64_t)k[i];
        }
    } else {
        for (size_t i = 0; i < m; i++)
            w += store__pair_put(o + w, 0, v[i]);
    }
    *off = w;
}

int store__chunk_encode(store_codec_t *c, const store_cell_t *cells, size_t m,
                        const unsigned char **out, size_t *len)
{
    if (m == 0)
        return ERR_INVAL;
    /* Pass 1: point index of each cell, the largest idx. */
    if (store__grow((void **)&c->pi, &c->pi_cap, m, sizeof *c->pi))
        return ERR_NOMEM;
    size_t n = 0;
    int64_t maxidx = 0;
    for (size_t i = 0; i < m; i++) {
        /* What the decoder would refuse is refused here: cells out of order or repeated, an idx
         * out of range. */
        if (cells[i].idx < 0 || cells[i].idx >= STORE_CHUNK_IDX_MAX ||
            (i > 0 && (cells[i].ts < cells[i - 1].ts ||
                       (cells[i].ts == cells[i - 1].ts && cells[i].idx <= cells[i - 1].idx))))
            return ERR_INVAL;
        if (i == 0 || cells[i].ts != cells[i - 1].ts)
            n++;
        c->pi[i] = (uint32_t)(n - 1);
        if (cells[i].idx > maxidx)
            maxidx = cells[i].idx;
    }
    size_t nslots = (size_t)maxidx + 1;
    if (store__grow((void **)&c->cnt, &c->cnt_cap, nslots + 1, sizeof *c->cnt) ||
        store__grow((void **)&c->colpi, &c->colpi_cap, m, sizeof *c->colpi) ||
        store__grow((void **)&c->colv, &c->colv_cap, m, sizeof *c->colv) ||
        store__grow((void **)&c->colk, &c->colk_cap, m, sizeof *c->colk))
        return ERR_NOMEM;
    /* Pass 2: cells by channel (a counting sort, stable, so each column is in ts order). */
    memset(c->cnt, 0, (nslots + 1) * sizeof *c->cnt);
    for (size_t i = 0; i < m; i++)
        c->cnt[cells[i].idx + 1]++;
    size_t nch = 0;
    for (size_t s = 0; s < nslots; s++) {
        nch += c->cnt[s + 1] != 0;
        c->cnt[s + 1] += c->cnt[s];
    }
    for (size_t i = 0; i < m; i++) {
        size_t at = c->cnt[cells[i].idx]++;
        c->colpi[at] = c->pi[i];
        c->colv[at] = cells[i].v;
    }
    /* cnt[s] is now the end of column s; its start is cnt[s - 1] (0 for s == 0). Worst case
     * size: header 20, ts 10 a point, per channel 10 + 1 + bitmap, 9 bytes a value. */
    size_t need = SUM_HEAD + 20 + 10 * n + nch * (11 + (n + 7) / 8) + 9 * m;
    if (store__grow((void **)&c->out, &c->out_cap, need, 1))
        return ERR_NOMEM;
    size_t w = SUM_HEAD; /* the marker and the checksum, written last */
    w += store__varint_put(c->out + w, n);
    w += store__varint_put(c->out + w, nch);
    /* Timestamps. */
    uint64_t prev_ts = (uint64_t)cells[0].ts, prev_delta = 0;
    size_t zeros = 0;
    for (size_t i = 1; i < m; i++) {
        if (cells[i].ts == cells[i - 1].ts)
            continue;
        uint64_t delta = (uint64_t)cells[i].ts - prev_ts;
        uint64_t dod = delta - prev_delta;
        prev_ts = (uint64_t)cells[i].ts;
        prev_delta = delta;
        if (dod == 0) {
            zeros++;
            continue;
        }
        if (zeros) {
            w += store__varint_put(c->out + w, 0);
            w += store__varint_put(c->out + w, zeros - 1);
            zeros = 0;
        }
        w += store__varint_put(c->out + w, zz(dod));
    }
    if (zeros) {
        w += store__varint_put(c->out + w, 0);
        w += store__varint_put(c->out + w, zeros - 1);
    }
    /* Channels. */
    int64_t prev_idx = 0;
    for (size_t s = 0; s < nslots; s++) {
        size_t start = s ? c->cnt[s - 1] : 0, cm = c->cnt[s] - start;
        if (cm == 0)
            continue;
        put_channel(c, &w, (uint64_t)((int64_t)s - prev_idx), n, c->colpi + start, c->colv + start,
                    c->colk + start, cm);
        prev_idx = (int64_t)s;
    }
    uint32_t sum = store__chunk_sum(cells[0].ts, c->out + SUM_HEAD, w - SUM_HEAD);
    c->out[0] = 0;
    for (int i = 0; i < 4; i++)
        c->out[1 + i] = (unsigned char)(sum >> (8 * i));
    *out = c->out;
    *len = w;
    return 0;
}

/* The 8 bytes at p as a little-endian word (one load where the machine is little-endian). */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 0; i < 8; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

/* Skips count varints at *p (advancing it) with the checks store__varint_get makes: each ends
 * within VARINT_MAX bytes (at most VARINT_MAX - 1 bytes >= 0x80, then one below) and before end.
 * Returns 0, or -1 (*p unchanged). Eight bytes at a time while more than eight varints remain
 * (so every varint ending in the word is one of ours): bit 7 of each byte clear marks an end. */
static int varints_skip(const unsigned char **pp, const unsigned char *end, size_t count)
{
    const unsigned char *p = *pp;
    unsigned cont = 0; /* bytes >= 0x80 since the last end */
    while (count > 8 && end - p >= 8) {
        uint64_t ends = ~load_le64(p) & 0x8080808080808080u;
        p += 8;
        if (ends == 0) {
            if ((cont += 8) >= VARINT_MAX)
                return -1;
            continue;
        }
        /* Runs inside the word are shorter than 8; only the first continues one. */
        if (cont + (unsigned)__builtin_ctzll(ends) / 8 >= VARINT_MAX)
            return -1;
        count -= (size_t)__builtin_popcountll(ends);
        cont = 7 - (unsigned)(63 - __builtin_clzll(ends)) / 8;
    }
    while (count > 0) {
        if (p >= end)
            return -1;
        if (*p++ & 0x80) {
            if (++cont >= VARINT_MAX)
                return -1;
        } else {
            cont = 0;
            count--;
        }
    }
    *pp = p;
    return 0;
}

int store__chunk_decode(store_codec_t *c, int64_t t0, const void *data, size_t len,
                        const unsigned char *want, size_t nwant, const store_cell_t **cells,
                        size_t *ncells, size_t *npoints)
{
    if (data == NULL)
        return ERR_CORRUPT; /* SQLite's empty blob; NULL + len would be undefined */
    const unsigned char *p = data, *end = p + len;
    if (len > 0 && p[0] == 0) {
        /* A summed chunk (a varint n of an unsummed one is never 0: n >= 1). */
        if (len < SUM_HEAD + 2)
            return ERR_CORRUPT;
        uint32_t sum =
            (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
        p += SUM_HEAD;
        if (store__chunk_sum(t0, p, (size_t)(end - p)) != sum)
            return ERR_CORRUPT;
    }
    uint64_t n, nch;
    if (store__varint_get(&p, end, VARINT_MAX, &n) ||
        store__varint_get(&p, end, VARINT_MAX, &nch) || n == 0 || n > STORE_CHUNK_DECODE_MAX ||
        nch == 0 || nch > STORE_CHUNK_IDX_MAX || n * nch > STORE_CHUNK_DECODE_MAX)
        return ERR_CORRUPT;
    if (store__grow((void **)&c->ts, &c->ts_cap, n, sizeof *c->ts))
        return ERR_NOMEM;
    c->ts[0] = t0;
    uint64_t prev_ts = (uint64_t)t0, prev_delta = 0;
    for (size_t i = 1; i < n;) {
        uint64_t z, r = 0;
        if (store__varint_get(&p, end, VARINT_MAX, &z))
            return ERR_CORRUPT;
        if (z == 0 && (store__varint_get(&p, end, VARINT_MAX, &r) || r > n - i - 1))
            return ERR_CORRUPT;
        for (uint64_t k = 0; k <= r; k++, i++) {
            prev_delta += unzz(z);
            prev_ts += prev_delta;
            if ((int64_t)prev_ts <= c->ts[i - 1])
                return ERR_CORRUPT; /* timestamps strictly increase, without wrapping */
            c->ts[i] = (int64_t)prev_ts;
        }
    }
    /* Channels: the wanted ones decoded column by column into colpi/colv (cells in channel
     * order), with the column of each in colk; the others skipped, their bytes checked as a
     * decode would check them (so a row is refused whatever the mask). cover ORs the bitmaps:
     * every point must hold a value of some channel. */
    size_t nb = ((size_t)n + 7) / 8, m = 0, ncols = 0;
    int covered = 0; /* a channel is present at every point */
    if (store__grow((void **)&c->cover, &c->cover_cap, nb, 1) ||
        store__grow((void **)&c->cnt, &c->cnt_cap, n + 1, sizeof *c->cnt))
        return ERR_NOMEM;
    memset(c->cover, 0, nb);
    memset(c->cnt, 0, (n + 1) * sizeof *c->cnt);
    int64_t idx = 0;
    for (uint64_t ch = 0; ch < nch; ch++) {
        uint64_t dx;
        if (store__varint_get(&p, end, VARINT_MAX, &dx) || (ch > 0 && dx == 0) ||
            dx >= (uint64_t)STORE_CHUNK_IDX_MAX - (uint64_t)idx || p >= end)
            return ERR_CORRUPT;
        idx += (int64_t)dx;
        unsigned mode = *p++;
        if ((mode & 7) > MODE_PAIRS || mode > 15)
            return ERR_CORRUPT;
        const unsigned char *bitmap = NULL;
        size_t cm = (size_t)n;
        if (!(mode & MODE_ALL)) {
            if ((size_t)(end - p) < nb)
                return ERR_CORRUPT;
            bitmap = p;
            p += nb;
            cm = 0;
            for (size_t b = 0; b < nb; b++) {
                cm += (size_t)__builtin_popcount(bitmap[b]);
                c->cover[b] |= bitmap[b];
            }
            if (cm == 0 || (n % 8 && bitmap[nb - 1] >> (n % 8)))
                return ERR_CORRUPT;
        } else {
            covered = 1;
        }
        unsigned d = mode & 7;
        if (want != NULL && ((uint64_t)idx >= nwant || !want[idx])) {
            /* Not wanted: only its length is found (a varint ends at a byte below 0x80; a
             * pair's tag gives its size). */
            if (d <= MAX_DECIMALS) {
                if (varints_skip(&p, end, cm))
                    return ERR_CORRUPT;
            } else {
                for (size_t i = 0; i < cm; i++) {
                    int64_t zero;
                    double v;
                    if (store__pair_get(&p, end, &zero, &v) || zero != 0)
                        return ERR_CORRUPT;
                }
            }
            continue;
        }
        if (store__grow((void **)&c->colpi, &c->colpi_cap, m + cm, sizeof *c->colpi) ||
            store__grow((void **)&c->colv, &c->colv_cap, m + cm, sizeof *c->colv) ||
            store__grow((void **)&c->colk, &c->colk_cap, m + cm, sizeof *c->colk))
            return ERR_NOMEM;
        uint64_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (bitmap != NULL && !(bitmap[i / 8] >> (i % 8) & 1))
                continue;
            double v;
            if (d <= MAX_DECIMALS) {
                uint64_t z;
                if (store__varint_get(&p, end, VARINT_MAX, &z))
                    return ERR_CORRUPT;
                k += unzz(z);
                v = (double)(int64_t)k / pow10_tab[d];
            } else {
                int64_t zero;
                if (store__pair_get(&p, end, &zero, &v) || zero != 0)
                    return ERR_CORRUPT;
            }
            c->colpi[m] = (uint32_t)i;
            c->colv[m] = v;
            c->colk[m] = idx;
            c->cnt[i + 1]++;
            m++;
        }
        ncols++;
    }
    if (p != end)
        return ERR_CORRUPT;
    if (!covered) {
        /* A point without values; the bits past n are zero in every bitmap (checked above). */
        for (size_t b = 0; b < nb; b++)
            if (c->cover[b] != (b + 1 < nb || n % 8 == 0 ? 0xff : (1u << (n % 8)) - 1))
                return ERR_CORRUPT;
    }
    if (store__grow((void **)&c->cells, &c->cells_cap, m ? m : 1, sizeof *c->cells))
        return ERR_NOMEM;
    if (ncols <= 1) {
        /* One column is in ts order already. */
        for (size_t j = 0; j < m; j++)
            c->cells[j] = (store_cell_t){c->ts[c->colpi[j]], c->colk[j], c->colv[j]};
    } else {
        /* Point-major order: a stable counting sort by point (cnt[i + 1]: point i's cells)
         * keeps each point's channels in idx order. */
        for (size_t i = 0; i < n; i++)
            c->cnt[i + 1] += c->cnt[i];
        for (size_t j = 0; j < m; j++) {
            store_cell_t *cell = &c->cells[c->cnt[c->colpi[j]]++];
            cell->ts = c->ts[c->colpi[j]];
            cell->idx = c->colk[j];
            cell->v = c->colv[j];
        }
    }
    *cells = c->cells;
    *ncells = m;
    *npoints = (size_t)n;
    return 0;
}

size_t store__chunk_cut(const store_cell_t *cells, size_t m, size_t *npoints)
{
    size_t np = 0, i = 0;
    while (i < m) {
        size_t e = i + 1;
        while (e < m && cells[e].ts == cells[i].ts)
            e++;
        /* The point [i, e) joins the chunk if it keeps within the caps (the first always does). */
        if (np > 0 && (np + 1 > STORE_CHUNK_POINTS || e > STORE_CHUNK_CELLS ||
                       (uint64_t)cells[i].ts - (uint64_t)cells[0].ts > STORE_CHUNK_SPAN_MS))
            break;
        np++;
        i = e;
    }
    *npoints = np;
    return i;
}
