/* storage/pending.c: the newest readings of each device, kept in memory and in the readings log
 * until they fill a chunk row.
 *
 * Why: a group commit of a large fleet holds a few timestamps of each device. Writing them as
 * rows of their own costs a row, an index entry and a B-tree page per device per commit (and a
 * compaction later), so the writer's cost per reading grew with the fleet (docs/benchmarks.md).
 * Instead, a transaction appends each device's new readings to that device's pending buffer
 * (memory) and writes all of them together as one row of the readings log, the durable copy
 * (the transaction's COMMIT makes them durable, as before). A device's pending readings become a
 * chunk row (chunks.c) once they hold STORE_PEND_POINTS timestamps or STORE_PEND_BYTES bytes,
 * so rows written per reading no longer depend on the number of devices. What the log holds that
 * every device has moved into rows is deleted.
 *
 * Pending coding (per device, and the payload of a log segment): per point (timestamp, strictly
 * increasing), varint(ts - previous ts, modulo 2^64; the first point from pbase), varint(number of
 * pairs >= 1), then the pairs of blob.c sorted by idx, one per idx.
 * Log row (readings_log(seq, data)): the transaction's segments, each varint(device id),
 * zigzag varint(the ts its first point is coded from), varint(length), the pending bytes it
 * appended, after a head of LOG_HEAD bytes (a 0 and the row's checksum) in rows written since
 * session 69. devices.log_seq is the last log row that holds none of the device's pending
 * readings: replay at open appends, in seq order, the segments of rows after it.
 *
 * Invariants (between transactions): every pending point of a device is later than each of its
 * rows' timestamps, so a query is its rows followed by its pending points, and an overwrite or
 * late reading first moves the device's pending points into rows (store__pend_flush), after
 * which its runs in that transaction go to rows directly (chunks.c); d->points counts pending
 * points too. The log keeps every row from the oldest pending point's (w->phead) on, and always
 * its newest row, so max(seq) grows with every transaction that changes pending readings: that
 * is the generation a reader checks (below). Device ids are not reused while the store is open,
 * and a device created by transaction S has log_seq S - 1, so no segment of a deleted device is
 * ever replayed into another.
 *
 * Readers: a query reads a device's rows from its snapshot and its pending points from memory.
 * To see both as of the same commit, the reader reads max(seq) of readings_log in its snapshot
 * and copies the published pending bytes only if s->pgen equals it (else it retries with a new
 * snapshot). The writer publishes (vlen, vbase, pids, pgen under pmu) after COMMIT and before
 * any callback, and never changes the published bytes before the next publication: it appends
 * after vlen, reallocates under pmu, and after a flush appends no more in that transaction.
 *
 * A reader whose snapshot is ahead of pgen (the writer committed and has not published yet)
 * waits on pcond (store__pend_sync), broadcast at every publication, rather than polling; one
 * behind it retries with a new snapshot at once. Either wait (this one, store__pend_wait's
 * below) is made with the reader's transaction ended and its connection back in the pool
 * (query.c), so waiting reads never take the pool from reads that need no wait.
 *
 * While a maps reload has withdrawn them (pgen -1) a reader waits on pcond (store__pend_wait),
 * woken when they are published again or when the reload fails (pfails): it then answers
 * ERR_AGAIN at once rather than at its deadline (STORE_PEND_WAIT_MS, or the caller's own
 * deadline when that comes first: store__wait_deadline). A reader that arrives after a reload
 * failed, while the writer backs off before retrying it (pfailed, set at the failure and cleared
 * when the next reload begins or a publication), answers ERR_AGAIN at once as well: only a
 * reload that is running is waited for.
 *
 * Threads: writer thread, except store__pend_copy, store__pend_stats, store__pend_wait,
 * store__pend_sync and store__pend_decode (any thread). */
#include "storage_int.h"
#include "pending_int.h"
#include "varint_int.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "vtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Longest coding of a point's ts delta plus its pair count. */
#define POINT_HEAD_MAX 20
/* Longest segment header: device id, base, length. */
#define SEG_HEAD_MAX 30
/* A log row written since session 69 opens with a 0 byte and its checksum (store__chunk_sum of
 * its seq and the segments), 4 bytes little-endian; one without it (an older vigild's) opens
 * with a device id, never 0, and is read unchecked. */
#define LOG_HEAD 5
/* store__pend_replay's mark of a checksum mismatch (ERR_CORRUPT to its caller). */
#define ERR_CHECKSUM_ROW (-1000)

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static void plist_push(store_writer_t *w, store_dev_t *d)
{
    d->pprev = w->ptail;
    d->pnext = NULL;
    if (w->ptail != NULL)
        w->ptail->pnext = d;
    else
        w->phead = d;
    w->ptail = d;
    d->in_plist = 1;
}

static void plist_remove(store_writer_t *w, store_dev_t *d)
{
    if (!d->in_plist)
        return;
    if (d->pprev != NULL)
        d->pprev->pnext = d->pnext;
    else
        w->phead = d->pnext;
    if (d->pnext != NULL)
        d->pnext->pprev = d->pprev;
    else
        w->ptail = d->pprev;
    d->pprev = d->pnext = NULL;
    d->in_plist = 0;
}

/* Grows d's pending buffer to need bytes; a move happens under pmu (readers copy from it). */
static int pbuf_grow(store_t *s, store_dev_t *d, size_t need)
{
    if (need <= d->pcap)
        return 0;
    size_t cap = d->pcap ? d->pcap : 256;
    while (cap < need)
        cap *= 2;
    pthread_mutex_lock(&s->pmu);
    unsigned char *p = realloc(d->pbuf, cap);
    if (p != NULL) {
        d->pbuf = p;
        d->pcap = cap;
    }
    pthread_mutex_unlock(&s->pmu);
    return p != NULL ? 0 : ERR_NOMEM;
}

static int queue_flush(store_writer_t *w, store_dev_t *d)
{
    if (d->pflush_queued)
        return 0;
    if (store__grow((void **)&w->pflush, &w->pflush_cap, w->npflush + 1, sizeof *w->pflush))
        return ERR_NOMEM;
    w->pflush[w->npflush++] = d;
    d->pflush_queued = 1;
    return 0;
}

/* Starts d's pending readings at log row seq, coded from base. */
static void pend_start(store_writer_t *w, store_dev_t *d, uint64_t seq, int64_t base)
{
    d->pbase = base;
    d->pseq0 = seq;
    d->psince_ms = vtime_mono_ms();
    d->plogoff0 = w->log_total;
    plist_push(w, d);
}

static int full(const store_dev_t *d)
{
    return d->pnpts >= STORE_PEND_POINTS || d->plen >= STORE_PEND_BYTES;
}

int store__pend_append(store_t *s, store_dev_t *d, const store_cell_t *c, size_t n)
{
    store_writer_t *w = &s->w;
    if (n == 0)
        return 0;
    /* Coded first into scratch (bound: every cell its own point), so d's buffer grows only by
     * what the points take. */
    if (store__grow((void **)&w->pscratch, &w->pscratch_cap, n * (STORE_PAIR_MAX + POINT_HEAD_MAX),
                    1))
        return ERR_NOMEM;
    if (d->pnpts == 0)
        pend_start(w, d, w->seq, c[0].ts);
    int64_t prev = d->pnpts ? d->plast : d->pbase, from = prev;
    size_t points = 0;
    unsigned char *p = w->pscratch;
    for (size_t i = 0; i < n;) {
        size_t e = i + 1;
        while (e < n && c[e].ts == c[i].ts)
            e++;
        p += store__varint_put(p, (uint64_t)c[i].ts - (uint64_t)prev);
        p += store__varint_put(p, e - i);
        for (size_t k = i; k < e; k++)
            p += store__pair_put(p, c[k].idx, c[k].v);
        prev = c[i].ts;
        points++;
        i = e;
    }
    size_t len = (size_t)(p - w->pscratch);
    if (pbuf_grow(s, d, d->plen + len) ||
        store__grow((void **)&w->logbuf, &w->logcap, LOG_HEAD + w->loglen + SEG_HEAD_MAX + len,
                    1)) {
        if (d->pnpts == 0)
            plist_remove(w, d);
        return ERR_NOMEM;
    }
    if (w->loglen == 0)
        w->loglen = LOG_HEAD; /* the marker and the checksum, written with the row */
    unsigned char *q = w->logbuf + w->loglen;
    q += store__varint_put(q, (uint64_t)d->id);
    q += store__varint_put(q, zigzag(from));
    q += store__varint_put(q, len);
    memcpy(q, w->pscratch, len);
    w->loglen = (size_t)(q - w->logbuf) + len;
    memcpy(d->pbuf + d->plen, w->pscratch, len);
    d->plen += len;
    w->pend_bytes += len;
    d->pnpts += points;
    d->plast = prev;
    d->points += (int64_t)points;
    w->pchanged = 1;
    return full(d) ? queue_flush(w, d) : 0;
}

int store__pend_decode(const unsigned char *p, size_t len, int64_t base, store_cell_t **cells,
                       size_t *cap, size_t *ncells, size_t *npoints, int64_t *last)
{
    const unsigned char *end = p + len;
    size_t n = 0, np = 0;
    uint64_t ts = (uint64_t)base;
    while (p < end) {
        uint64_t dt, k;
        if (store__varint_get(&p, end, 10, &dt) || store__varint_get(&p, end, 10, &k) || k == 0 ||
            k > (uint64_t)(end - p))
            return ERR_CORRUPT;
        ts += dt;
        if (store__grow((void **)cells, cap, n + (size_t)k, sizeof **cells))
            return ERR_NOMEM;
        for (uint64_t i = 0; i < k; i++) {
            store_cell_t *c = &(*cells)[n++];
            c->ts = (int64_t)ts;
            if (store__pair_get(&p, end, &c->idx, &c->v))
                return ERR_CORRUPT;
        }
        np++;
    }
    *ncells = n;
    *npoints = np;
    *last = (int64_t)ts;
    return 0;
}

int store__pend_flush(store_t *s, store_dev_t *d)
{
    store_writer_t *w = &s->w;
    /* Readers may copy the published bytes until the commit: nothing is appended over them in
     * this transaction; d's runs go to rows directly. */
    d->pdirect_txn = w->txn;
    if (d->pnpts == 0)
        return 0;
    size_t nc, np;
    int64_t last;
    int err =
        store__pend_decode(d->pbuf, d->plen, d->pbase, &w->pcells, &w->pcells_cap, &nc, &np, &last);
    if (err) {
        store__set_errmsg(s, "decoding the pending readings of device %lld: %s", (long long)d->id,
                          err_str(err));
        return err;
    }
    d->points -= (int64_t)d->pnpts;
    err = store__put_rows(s, d, w->pcells, nc, 1);
    if (err)
        return err;
    w->pend_bytes -= d->plen;
    d->plen = d->pnpts = 0;
    d->log_seq = w->seq; /* written with the devices row: put_rows touched d */
    plist_remove(w, d);
    w->pchanged = 1;
    return store__pend_mark(w, d);
}

int store__pend_mark(store_writer_t *w, store_dev_t *d)
{
    if (d->pmark == w->txn)
        return 0;
    if (store__grow((void **)&w->pdevs, &w->pdevs_cap, w->npdevs + 1, sizeof *w->pdevs))
        return ERR_NOMEM;
    w->pdevs[w->npdevs++] = d;
    d->pmark = w->txn;
    return 0;
}

static void publish_dev(store_dev_t *d)
{
    d->vlen = d->plen;
    d->vbase = d->pbase;
    d->vpoints = d->points;
    d->vfirst = d->first_ts;
    d->vlast = d->last_ts;
}

/* The first sight of pgen -1 by pw's call (pmu held): the failed reloads so far, so that
 * store__pend_wait ends at a later one. */
static void pwait_note(const store_t *s, store_pwait_t *pw)
{
    if (pw != NULL && !pw->seen) {
        pw->seen = 1;
        pw->fails = s->pfails;
    }
}

int store__pend_stats(store_t *s, int64_t dev, int64_t *first, int64_t *last, int64_t *points,
                      store_pwait_t *pw)
{
    pthread_mutex_lock(&s->pmu);
    if (s->pgen == -1) {
        pwait_note(s, pw);
        pthread_mutex_unlock(&s->pmu);
        return -1; /* being rebuilt (a maps reload): pids may lack the device */
    }
    store_dev_t *d = NULL;
    HASH_FIND(hid, s->pids, &dev, sizeof dev, d);
    if (d != NULL) {
        *points = d->vpoints;
        *first = d->vpoints > 0 ? d->vfirst : -1;
        *last = d->vpoints > 0 ? d->vlast : -1;
    }
    pthread_mutex_unlock(&s->pmu);
    return d != NULL;
}

void store__wait_deadline(struct timespec *dl, int64_t ms, int64_t deadline_us)
{
    if (deadline_us > 0) {
        int64_t left_us = deadline_us - vtime_mono_us();
        int64_t left_ms = left_us > 0 ? (left_us + 999) / 1000 : 0;
        if (left_ms < ms)
            ms = left_ms;
    }
    mcond_deadline(dl, ms);
}

int store__pend_wait(store_t *s, store_pwait_t *pw)
{
    pthread_mutex_lock(&s->pmu);
    pwait_note(s, pw);
    if (!pw->started) {
        int64_t ms = __atomic_load_n(&s->pwait_ms, __ATOMIC_ACQUIRE);
        store__wait_deadline(&pw->dl, ms > 0 ? ms : STORE_PEND_WAIT_MS, pw->deadline_us);
        pw->started = 1;
    }
    int rc = 0;
    if (s->pgen == -1)
        s->pwaits++;
    /* pfailed: the last reload failed and the writer backs off before the next; waiting would
     * only run out the deadline (or meet the next failure, seconds later). */
    while (s->pgen == -1 && !s->pfailed && s->pfails == pw->fails && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->pcond, &s->pmu, &pw->dl);
    int err = 0;
    if (s->pgen == -1) {
        pw->failed = s->pfailed || s->pfails != pw->fails;
        err = ERR_AGAIN;
    }
    pthread_mutex_unlock(&s->pmu);
    return err;
}

int store__pend_sync(store_t *s, int64_t gen, const struct timespec *dl)
{
    pthread_mutex_lock(&s->pmu);
    int rc = 0;
    if (s->pgen != -1 && s->pgen < gen)
        s->psyncs++;
    while (s->pgen != -1 && s->pgen < gen && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->pcond, &s->pmu, dl);
    int err = s->pgen != -1 && s->pgen < gen ? ERR_AGAIN : 0;
    pthread_mutex_unlock(&s->pmu);
    return err;
}

void store__pend_reload_failed(store_t *s)
{
    pthread_mutex_lock(&s->pmu);
    s->pfails++;
    s->pfailed = 1; /* until the retry begins (store__pend_index) */
    pthread_cond_broadcast(&s->pcond);
    pthread_mutex_unlock(&s->pmu);
}

/* The oldest pending device is written out when it waited too long or pins too much log. */
static int stale(const store_writer_t *w, const store_dev_t *d, int64_t now)
{
    uint64_t span = w->log_total + w->loglen - d->plogoff0;
    return now - d->psince_ms >= STORE_PEND_AGE_MS ||
           (span > STORE_LOG_SPAN_BYTES && span > STORE_LOG_SPAN_LIVE * w->pend_bytes);
}

int store__pend_end_tx(store_t *s)
{
    store_writer_t *w = &s->w;
    int err = 0;
    for (size_t i = 0; i < w->npflush && err == 0; i++) {
        store_dev_t *d = w->pflush[i];
        if (d == NULL)
            continue;
        d->pflush_queued = 0;
        err = store__pend_flush(s, d);
    }
    w->npflush = 0;
    int64_t now = vtime_mono_ms();
    for (size_t k = 0; err == 0 && w->phead != NULL && k < STORE_PEND_STALE_PER_TX; k++) {
        if (!stale(w, w->phead, now))
            break;
        err = store__pend_flush(s, w->phead);
    }
    if (err || !w->pchanged)
        return err;
    if (w->loglen > 0) {
        uint32_t sum =
            store__chunk_sum((int64_t)w->seq, w->logbuf + LOG_HEAD, w->loglen - LOG_HEAD);
        w->logbuf[0] = 0;
        for (int i = 0; i < 4; i++)
            w->logbuf[1 + i] = (unsigned char)(sum >> (8 * i));
    }
    sqlite3_stmt *st = w->log_ins;
    sqlite3_bind_int64(st, 1, (int64_t)w->seq);
    sqlite3_bind_blob64(st, 2, w->loglen ? w->logbuf : (const void *)"", w->loglen, SQLITE_STATIC);
    err = store__step_done(s, st);
    /* Rows before the oldest pending point's are no device's; the newest row always stays. */
    uint64_t keep = w->phead != NULL ? w->phead->pseq0 : w->seq;
    if (err == 0 && keep > w->log_trunc) {
        sqlite3_bind_int64(w->log_del, 1, (int64_t)keep);
        err = store__step_done(s, w->log_del);
        if (err == 0)
            w->log_trunc = keep;
    }
    return err;
}

void store__pend_forget(store_writer_t *w, store_dev_t *d)
{
    plist_remove(w, d);
    w->pend_bytes -= d->plen;
    for (size_t i = 0; i < w->npflush; i++)
        if (w->pflush[i] == d)
            w->pflush[i] = NULL;
    d->pflush_queued = 0;
    w->pchanged = 1;
}

/* Adds d to pids (pmu held). 0 or ERR_NOMEM. */
static int pids_add(store_t *s, store_dev_t *d)
{
    HASH_ADD(hid, s->pids, id, sizeof d->id, d);
    if (d->hid.tbl == NULL)
        return ERR_NOMEM;
    d->in_pids = 1;
    return 0;
}

void store__pend_publish(store_t *s)
{
    store_writer_t *w = &s->w;
    int err = 0;
    pthread_mutex_lock(&s->pmu);
    for (size_t i = 0; i < w->ndead; i++)
        if (w->dead[i]->in_pids) {
            HASH_DELETE(hid, s->pids, w->dead[i]);
            w->dead[i]->in_pids = 0;
        }
    for (size_t i = 0; i < w->ncreated && err == 0; i++)
        if (!w->created[i]->pdead && !w->created[i]->in_pids)
            err = pids_add(s, w->created[i]);
    for (size_t i = 0; i < w->npdevs; i++)
        if (!w->pdevs[i]->pdead)
            publish_dev(w->pdevs[i]);
    int64_t was = s->pgen;
    if (w->pchanged)
        s->pgen = (int64_t)w->seq;
    if (err) {
        /* A device missing from pids would hide its pending readings: readers wait until the
         * maps (and pids) are rebuilt before the next transaction. */
        s->pgen = -1;
        w->maps_stale = 1;
    }
    if (s->pgen != -1)
        s->pfailed = 0;
    /* Readers waiting for the counters (store__pend_wait) or for this commit (pend_sync). */
    if (s->pgen != was)
        pthread_cond_broadcast(&s->pcond);
    pthread_mutex_unlock(&s->pmu);
    for (size_t i = 0; i < w->ndead; i++)
        store__dev_free(w->dead[i]);
    if (w->pchanged) {
        w->log_last = w->seq;
        w->log_total += w->loglen;
    }
    w->ndead = w->ncreated = w->npdevs = 0;
    w->loglen = 0;
    w->pchanged = 0;
}

void store__pend_index(store_t *s, int build)
{
    store_writer_t *w = &s->w;
    pthread_mutex_lock(&s->pmu);
    int64_t was = s->pgen;
    s->pgen = -1;
    s->pfailed = 0; /* a load begins (or ends): its readers wait for its outcome */
    HASH_CLEAR(hid, s->pids);
    int err = 0;
    if (build) {
        for (store_dev_t *d = w->devs; d != NULL && err == 0; d = d->hh.next) {
            err = pids_add(s, d);
            publish_dev(d);
        }
        if (err == 0)
            s->pgen = (int64_t)w->log_last;
        else
            w->maps_stale = 1;
    } else {
        for (store_dev_t *d = w->devs; d != NULL; d = d->hh.next)
            d->in_pids = 0;
    }
    /* A reload published (its waiters read), or a load withdrew the counters that readers in
     * store__pend_sync wait to see move (a commit not published, after undone maintenance):
     * they wait for the reload in store__pend_wait instead, on its own bound. */
    if (s->pgen != was)
        pthread_cond_broadcast(&s->pcond);
    pthread_mutex_unlock(&s->pmu);
}

void store__pend_free_lists(store_writer_t *w)
{
    for (size_t i = 0; i < w->ndead; i++)
        store__dev_free(w->dead[i]);
    w->ndead = w->ncreated = w->npflush = w->npdevs = 0;
    w->phead = w->ptail = NULL;
    w->loglen = 0;
    w->pend_bytes = 0;
    w->pchanged = 0;
}

int store__pend_log_head(int64_t seq, const unsigned char *p, size_t n, size_t *head)
{
    *head = 0;
    if (p == NULL || n == 0 || p[0] != 0)
        return 0; /* empty, or an unsummed row (it opens with a device id, never 0) */
    if (n < LOG_HEAD)
        return ERR_CORRUPT;
    uint32_t sum =
        (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
    if (store__chunk_sum(seq, p + LOG_HEAD, n - LOG_HEAD) != sum)
        return ERR_CORRUPT;
    *head = LOG_HEAD;
    return 0;
}

/* Appends one log segment's bytes to d (replay). */
static int replay_segment(store_t *s, store_dev_t *d, uint64_t seq, int64_t base,
                          const unsigned char *p, size_t len)
{
    store_writer_t *w = &s->w;
    size_t nc, np;
    int64_t last;
    int err = store__pend_decode(p, len, base, &w->pcells, &w->pcells_cap, &nc, &np, &last);
    if (err)
        return err;
    if (np == 0)
        return 0;
    if (d->pnpts > 0 && base != d->plast)
        return ERR_CORRUPT;
    if ((err = pbuf_grow(s, d, d->plen + len)) != 0)
        return err;
    if (d->pnpts == 0)
        pend_start(w, d, seq, base);
    memcpy(d->pbuf + d->plen, p, len);
    d->plen += len;
    w->pend_bytes += len;
    d->pnpts += np;
    d->plast = last;
    /* The devices row counts the rows only (flush_touched in writer.c): pending points are
     * added here. */
    if (d->points == 0)
        d->first_ts = base;
    d->points += (int64_t)np;
    d->last_ts = last;
    return full(d) ? queue_flush(w, d) : 0;
}

static store_dev_t *by_id(store_dev_t **v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo]->id == id ? v[lo] : NULL;
}

int store__pend_replay(store_t *s)
{
    store_writer_t *w = &s->w;
    sqlite3_stmt *st = w->log_scan;
    w->log_last = w->log_total = w->log_trunc = w->pend_bytes = 0;
    /* The maps list the devices in id order (store__maps_load): searched by id. */
    size_t ndev = HASH_COUNT(w->devs), i = 0;
    store_dev_t **v = malloc((ndev ? ndev : 1) * sizeof *v);
    if (v == NULL)
        return ERR_NOMEM;
    for (store_dev_t *d = w->devs; d != NULL; d = d->hh.next)
        v[i++] = d;
    int rc = SQLITE_DONE, err = 0, first = 1;
    uint64_t seq = 0, rows = 0;
    while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        seq = (uint64_t)sqlite3_column_int64(st, 0);
        const unsigned char *p = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        const unsigned char *end = p ? p + n : p; /* an empty blob is NULL */
        if (first)
            w->log_trunc = seq;
        first = 0;
        size_t head;
        if (store__pend_log_head((int64_t)seq, p, n, &head)) {
            err = ERR_CHECKSUM_ROW;
            break;
        }
        p += head;
        while (err == 0 && p < end) {
            uint64_t id, zb, len;
            if (store__varint_get(&p, end, 10, &id) || store__varint_get(&p, end, 10, &zb) ||
                store__varint_get(&p, end, 10, &len) || len > (uint64_t)(end - p)) {
                err = ERR_CORRUPT;
                break;
            }
            store_dev_t *d = by_id(v, ndev, (int64_t)id);
            if (d != NULL && seq > d->log_seq)
                err = replay_segment(s, d, seq, unzigzag(zb), p, (size_t)len);
            p += len;
        }
        w->log_total += n;
        w->log_last = seq;
        rows++;
    }
    free(v);
    if (err == 0 && rc != SQLITE_DONE)
        err = store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    sqlite3_reset(st);
    if (err) {
        if (err == ERR_CHECKSUM_ROW) {
            err = ERR_CORRUPT;
            log_warn("storage: readings log row %llu is damaged (checksum mismatch)",
                     (unsigned long long)seq);
            store__set_errmsg(s,
                              "replaying the readings log (row %llu): damaged (checksum "
                              "mismatch); restore a snapshot (docs/reliability.md)",
                              (unsigned long long)seq);
        } else {
            store__set_errmsg(s, "replaying the readings log (row %llu): %s",
                              (unsigned long long)seq,
                              err == ERR_CORRUPT ? "malformed" : err_str(err));
        }
        return err;
    }
    if (w->phead != NULL)
        log_debug("storage: %llu log rows replayed into pending readings",
                  (unsigned long long)rows);
    return 0;
}

int store__pend_copy(store_t *s, store_reader_t *r, int64_t dev, int64_t gen, store_pwait_t *pw,
                     size_t *len, int64_t *base)
{
    int err = 0;
    *len = 0;
    pthread_mutex_lock(&s->pmu);
    if (s->pgen != gen) {
        int withdrawn = s->pgen == -1;
        if (withdrawn)
            pwait_note(s, pw);
        else
            s->pstale++;
        pthread_mutex_unlock(&s->pmu);
        return withdrawn ? 2 : 1;
    }
    store_dev_t *d = NULL;
    HASH_FIND(hid, s->pids, &dev, sizeof dev, d);
    if (d != NULL && d->vlen > 0) {
        if (store__grow((void **)&r->pbuf, &r->pbuf_cap, d->vlen, 1)) {
            err = ERR_NOMEM;
        } else {
            memcpy(r->pbuf, d->pbuf, d->vlen);
            *len = d->vlen;
            *base = d->vbase;
        }
    }
    pthread_mutex_unlock(&s->pmu);
    return err;
}
