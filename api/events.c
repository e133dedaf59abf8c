/* api/events.c: GET /v1/events, the fleet's events pushed as Server-Sent Events, and the hub
 * that holds them.
 *
 * The daemon publishes each event (an anomaly episode opening or ending, a maintenance period
 * beginning or ending) with api_events_publish: the message, formatted once as SSE text
 * ("id: RUN-SEQ\nevent: TYPE\ndata: JSON\n\n"), is copied into a ring of the newest
 * opts.ring messages. SEQ grows by one per message from 1 in this run; RUN (the run's start in
 * ms) tells a client resuming with Last-Event-ID whether its id is of this run at all.
 *
 * Each stream (a client) is a cursor into the ring: the next SEQ to look at and the bytes of it
 * already sent. libmicrohttpd calls the stream's content reader (reader()) on its worker
 * thread when the connection can take more; the reader copies what the client has not seen
 * (skipping messages its ?device= and ?types= filters leave out), or a keep-alive comment when
 * one is due, and when it has nothing it suspends the connection (an idle stream costs no
 * CPU). A publish resumes the suspended streams the message is for; the keep-alive thread (one per
 * hub) resumes those whose keep-alive is due. So nothing is copied per client beyond
 * libmicrohttpd's own buffer, and a publish never waits on a client: it holds mu for the copy into
 * the ring, the record of the message it pushes out (one lookup) and a walk over at most
 * max_streams cursors.
 *
 * A stream whose unsent output, not counting the message of its own being published, passes
 * opts.max_unsent bytes, or one of whose messages leaves the ring unsent, is cut off (counted
 * in dropped; so is one the kernel ended because its client stopped acknowledging for
 * http.dead_peer_timeout_s, ended_by_timeout): marked, its socket shut down (libmicrohttpd then
 * fails its next send and closes it, even while it waits for the client to read) and resumed if
 * suspended. A stream's messages are those of its types and its ?device= (others it skips
 * unsent, and they never cut it): each stream counts its own unsent bytes (added by the publish,
 * taken off by the reader) and the publish looks at the one message leaving the ring, so the
 * cost per message and stream is the same for either filter, two comparisons (the type's bit,
 * then the device's hash). The kernel's buffers are bounded too (SO_SNDBUF, see stream_socket)
 * so a client that stops reading is found within about max_unsent bytes of events.
 *
 * A stream resuming with Last-Event-ID older than the ring missed something only if one of its
 * messages left: the hub keeps, per type, the newest SEQ that left, and the same per device for
 * the o.ring devices whose messages left last (struct lost; resume_missed says what that
 * knows and what it cannot).
 *
 * Shutdown (api__events_close, from api_stop): closing is set, every suspended stream resumed;
 * their readers end the stream (the last chunk is sent) and never suspend again, so
 * libmicrohttpd stops with no suspended connection. A stream's record is freed by
 * libmicrohttpd's free callback for the response (before it closes the socket: a cut's
 * shutdown, or reap_gone's poll and shutdown, under mu with the record still listed, never
 * reaches another connection's descriptor).
 *
 * A stream's cursor is attached, read and detached through api/events_ring.h, which knows
 * nothing of libmicrohttpd beyond the connection it may be given: the reader and the handler
 * below wrap it, and tests/test_events.c drives the ring and resume rules through it alone.
 *
 * A reload changes max_unsent and keepalive_ms (api_events_set_limits): both are read under mu
 * only, by the publish, the reader and the keep-alive thread, so open streams follow the new
 * values from their next message or keep-alive check.
 *
 * Threads: api_events_publish any thread; reader and free_stream on libmicrohttpd workers, and
 * the attach (with its reap_gone) on the worker answering a new stream's request; the
 * keep-alive thread its own (it runs reap_gone every REAP_MS too). mu guards everything in the hub
 * but the counters (relaxed atomics); lock order: mu -> libmicrohttpd's own (suspend and resume are
 * called under mu, so a stream's suspended flag always says what libmicrohttpd did). */
#include "api_int.h"
#include "err.h"
#include "events_ring.h"
#include "log.h"
#include "mcond.h"
#include "nameidx.h"
#include "vtime.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const type_names[API_EVENT_COUNT] = {"anomaly", "maintenance", "state", "limit"};

/* The retry delay suggested to EventSource clients, and the bytes of a stream's prologue (the
 * retry line and a reset notice). */
#define RETRY_MS     3000
#define PROLOGUE_MAX 512

/* How often the keep-alive thread looks for streams whose client left (reap_gone), in ms, while
 * any is open. Without it such a stream was found at its second keep-alive after the client
 * left (the first write after a FIN succeeds): 30 s with the default 15 s, an hour with
 * events_keepalive_ms at its bound, and meanwhile its connection counted towards
 * http.max_connections and http.max_connections_per_ip, so a dashboard host reconnecting its
 * streams was refused every other connection there (session 47). */
#define REAP_MS 1000

/* The kernel send buffer of a stream's socket: what a client that stops reading holds there
 * is bounded (the kernel doubles it), beside what max_unsent bounds. */
#define STREAM_SNDBUF 65536

struct slot {
    uint64_t seq; /* 0: empty */
    /* device's key in lostidx. Its hash is also a ?device= stream's prefilter (most comparisons
     * end on it), which alone would need no secret; the seed is for lostidx. */
    nameidx_key_t dkey;
    int type;
    char *device; /* in the same block as text */
    char *text;
    size_t len;
};

/* What left the ring of one device: per type, the SEQ of the newest message that left (0:
 * none), for a ?device= stream resuming past the ring (resume_missed). The hub keeps o.ring of
 * them, the devices whose messages left most recently (a list, oldest first); a device
 * dropped for a newer one folds its SEQs into the hub's forgotten[], which then stands for
 * every device the hub does not hold (see lost_of). */
struct lost {
    nameidx_key_t key; /* in lostidx */
    uint64_t seq[API_EVENT_COUNT];
    struct lost *older, *newer;
    size_t len;
    char name[BATCH_NAME_MAX + 1];
};

struct api_events_client {
    struct api_events *hub;
    struct MHD_Connection *conn;
    int fd;          /* the connection's socket, for a cut; -1 unknown */
    uint64_t next;   /* the next SEQ to look at: never before the ring's oldest */
    size_t off;      /* bytes of message next already sent */
    uint64_t unsent; /* bytes of the messages it takes from next on, less off */
    int64_t last_ms; /* monotonic time of the last bytes handed to libmicrohttpd */
    int suspended;   /* we suspended the connection and have not resumed it */
    const char *cut; /* cut off: why (static; logged when the stream is freed); the reader
                        ends with an error */
    int gone;        /* its client had closed the connection (reap_gone): ended as a cut is,
                        not counted as one, nor towards max_streams (hub's ngone) */
    unsigned types;  /* filter: bit 1 << type of each type it asked for */
    char device[BATCH_NAME_MAX + 1]; /* filter; "" every device */
    nameidx_key_t dkey;              /* device's key in the hub's lostidx */
    char pre[PROLOGUE_MAX];          /* sent before the messages */
    size_t pre_len, pre_off;
    struct api_events_client *prev, *nextc;
};

struct api_events {
    api_events_opts_t o;
    char run[24];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the keep-alive thread: a stream came, or stop (mcond_init) */
    /* Guarded by mu. */
    struct slot *ring; /* o.ring slots; message SEQ in slot SEQ % o.ring */
    uint64_t head;     /* SEQ of the newest message (0: none yet) */
    /* Per type, the SEQ of the newest message of that type that left the ring (0: none): a
     * stream of every device resuming past the ring missed something only if a message of a
     * type it asked for is gone. */
    uint64_t evicted[API_EVENT_COUNT];
    /* The same per device (struct lost): o.ring records, nlost of them used, indexed by name
     * in lostidx (sized at create: it never grows), listed from oldest_lost to newest_lost. */
    struct lost *lost;
    size_t nlost;
    nameidx_t lostidx;
    struct lost *oldest_lost, *newest_lost;
    uint64_t forgotten[API_EVENT_COUNT]; /* per type, the newest SEQ of a dropped record */
    struct api_events_client *clients;
    unsigned nclients;
    unsigned ngone; /* of nclients, those reap_gone ended, until libmicrohttpd frees them */
    int closing, stop;
    pthread_t thread;
    int thread_on;
    atomic_uint_fast64_t messages, dropped;
    atomic_uint_fast64_t opened;                   /* streams attached (api_events_opened) */
    atomic_uint_fast64_t by_type[API_EVENT_COUNT]; /* of messages */
};

void api_events_opts_default(api_events_opts_t *o)
{
    o->ring = 1024;
    o->max_streams = 64;
    o->max_unsent = 1u << 20;
    o->keepalive_ms = 15000;
}

/* Resumes c's connection if we suspended it. Caller holds mu. */
static void wake(struct api_events_client *c)
{
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
    }
}

/* Whether slot s is a message c asked for (its types and device). Caller holds mu. */
static int wanted(const struct api_events_client *c, const struct slot *s)
{
    return (c->types >> s->type & 1u) &&
           (!c->device[0] || (s->dkey.h == c->dkey.h && strcmp(c->device, s->device) == 0));
}

static int lost_same(const void *item, const char *name, size_t len)
{
    const struct lost *e = item;
    return e->len == len && memcmp(e->name, name, len) == 0;
}

/* Takes e out of the list of records. Caller holds mu. */
static void lost_unlink(struct api_events *h, struct lost *e)
{
    *(e->older ? &e->older->newer : &h->oldest_lost) = e->newer;
    *(e->newer ? &e->newer->older : &h->newest_lost) = e->older;
    e->older = e->newer = NULL;
}

/* A record for a device the hub holds none of: a free one, else the oldest's, whose SEQs
 * go to forgotten[]. It starts from forgotten[]: what the device may have lost before (its
 * own record may be the one dropped). Caller holds mu. */
static struct lost *lost_add(struct api_events *h, nameidx_key_t key, const char *name, size_t len)
{
    struct lost *e;
    if (h->nlost < h->o.ring) {
        e = &h->lost[h->nlost++];
    } else {
        e = h->oldest_lost;
        for (int t = 0; t < API_EVENT_COUNT; t++)
            if (e->seq[t] > h->forgotten[t])
                h->forgotten[t] = e->seq[t];
        nameidx_del_key(&h->lostidx, e->key, e);
        lost_unlink(h, e);
    }
    e->key = key;
    e->len = len;
    memcpy(e->name, name, len + 1);
    memcpy(e->seq, h->forgotten, sizeof e->seq);
    (void)nameidx_add_key(&h->lostidx, key, e); /* never grows: sized for o.ring at create */
    return e;
}

/* Notes that message s leaves the ring: its device's record says so, and becomes the newest.
 * A device id longer than BATCH_NAME_MAX gets none: a record's name has no room for it, and no
 * stream asks for it (a ?device= is at most that long), so evicted[] is all that matters of
 * it. Caller holds mu. */
static void lost_note(struct api_events *h, const struct slot *s)
{
    size_t len = strlen(s->device);
    if (len > BATCH_NAME_MAX)
        return;
    struct lost *e = nameidx_find_key(&h->lostidx, s->dkey, s->device, len, lost_same);
    if (e)
        lost_unlink(h, e);
    else
        e = lost_add(h, s->dkey, s->device, len);
    e->seq[s->type] = s->seq;
    e->older = h->newest_lost;
    *(h->newest_lost ? &h->newest_lost->newer : &h->oldest_lost) = e;
    h->newest_lost = e;
}

/* Per type, the newest SEQ that may have left the ring of c's messages: of every device, or of
 * c's device (its record; one the hub does not hold may have lost up to forgotten[]). Caller
 * holds mu. */
static const uint64_t *lost_of(const struct api_events *h, const struct api_events_client *c)
{
    if (!c->device[0])
        return h->evicted;
    const struct lost *e =
        nameidx_find_key(&h->lostidx, c->dkey, c->device, strlen(c->device), lost_same);
    return e ? e->seq : h->forgotten;
}

/* The SEQ of the oldest message in the ring (head + 1 when it is empty). Caller holds mu. */
static uint64_t oldest_seq(const struct api_events *h)
{
    return h->head >= h->o.ring ? h->head - h->o.ring + 1 : 1;
}

/* Cuts c off (see the file comment). Caller holds mu. */
static void cut(struct api_events *h, struct api_events_client *c, const char *why)
{
    if (c->cut)
        return;
    c->cut = why;
    atomic_fetch_add_explicit(&h->dropped, 1, memory_order_relaxed);
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    wake(c);
}

/* Why a stream ended by the dead-peer timeout is cut (ended_by_timeout). */
#define TIMED_OUT "its client stopped acknowledging for http.dead_peer_timeout_s"

/* Ends the streams whose client has closed or reset its connection. Such a stream is otherwise
 * found only at its next keep-alive or message (up to http.events_keepalive_ms): until then it
 * held its place, so clients reconnecting faster than that (a browser reloading its dashboard,
 * a bridge on a flaky link) filled http.max_event_streams with streams of nobody and the next
 * were refused 503. Called when a new stream finds every place taken, and by the keep-alive
 * thread every REAP_MS (which frees their connections too): each stream's socket is
 * polled without waiting (nothing is read) and one whose peer has shut its side (POLLRDHUP: a
 * FIN, seen even behind unread bytes such as a TLS close_notify) or that is in error (a reset)
 * is ended now as a cut ends it (shutdown, resume: its reader ends it and libmicrohttpd frees
 * it), and no longer counted towards the bound. A client that half-closed its side on purpose
 * and still reads is ended too, then only: SSE has nothing to send upstream. An error that is
 * the kernel's dead-peer timeout (ETIMEDOUT) is no departure: that stream is cut off (counted),
 * as free_stream counts one libmicrohttpd found first. Caller holds mu. */
static void reap_gone(struct api_events *h)
{
    for (struct api_events_client *c = h->clients; c; c = c->nextc) {
        if (c->cut || c->fd < 0)
            continue;
        struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
        if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            continue;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if ((p.revents & POLLERR) && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
            soerr == ETIMEDOUT) {
            cut(h, c, TIMED_OUT); /* the kernel's dead-peer timeout, seen before libmicrohttpd */
            continue;
        }
        c->cut = "its client had closed the connection";
        c->gone = 1;
        h->ngone++;
        shutdown(c->fd, SHUT_RDWR);
        wake(c);
    }
}

/* The keep-alive thread: ends the streams whose client left (reap_gone) and resumes each
 * suspended stream whose keep-alive is due, then sleeps until the next one is, at most REAP_MS
 * while a stream is open. */
static void *keepalive_main(void *arg)
{
    struct api_events *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        int64_t now = vtime_mono_ms(), next = now + h->o.keepalive_ms;
        if (h->nclients > h->ngone && !h->closing) {
            reap_gone(h);
            if (next > now + REAP_MS)
                next = now + REAP_MS;
        }
        for (struct api_events_client *c = h->clients; c; c = c->nextc) {
            int64_t due = c->last_ms + h->o.keepalive_ms;
            if (c->suspended && due <= now)
                wake(c);
            else if (due > now && due < next)
                next = due;
        }
        struct timespec ts;
        mcond_deadline(&ts, next - now);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int api_events_create(api_events_t **out, const api_events_opts_t *o)
{
    if (o->ring == 0 || o->max_streams == 0 || o->keepalive_ms == 0)
        return ERR_INVAL;
    struct api_events *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ERR_NOMEM;
    h->o = *o;
    int rc = ERR_NOMEM; /* every failure but mcond_init's is a shortage */
    h->ring = calloc(o->ring, sizeof *h->ring);
    if (h->ring == NULL)
        goto fail_ring;
    /* The per-device records and their index, at their full size: a publish never allocates
     * for them (nameidx_add_key grows only past half of its slots). */
    size_t slots = 2;
    while (slots < 2 * o->ring)
        slots *= 2;
    h->lost = calloc(o->ring, sizeof *h->lost);
    /* Seeded: devices name the records (clients chose the names), and a crafted set sharing
     * a home slot would make every publish probe them all under mu. */
    (void)nameidx_init_seeded(&h->lostidx); /* the public fallback only if getrandom fails */
    h->lostidx.slots = calloc(slots, sizeof *h->lostidx.slots);
    h->lostidx.mask = slots - 1;
    if (h->lost == NULL || h->lostidx.slots == NULL)
        goto fail_lost;
    snprintf(h->run, sizeof h->run, "%" PRId64, vtime_now_ms());
    if (pthread_mutex_init(&h->mu, NULL))
        goto fail_mu;
    rc = mcond_init(&h->cv);
    if (rc)
        goto fail_cv;
    rc = ERR_NOMEM; /* what pthread_create lacks */
    if (pthread_create(&h->thread, NULL, keepalive_main, h))
        goto fail_thread;
    pthread_setname_np(h->thread, "http-events");
    h->thread_on = 1;
    *out = h;
    return 0;
fail_thread:
    pthread_cond_destroy(&h->cv);
fail_cv:
    pthread_mutex_destroy(&h->mu);
fail_mu:
fail_lost:
    nameidx_deinit(&h->lostidx);
    free(h->lost);
    free(h->ring);
fail_ring:
    free(h);
    return rc;
}

void api_events_destroy(api_events_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->thread_on)
        pthread_join(h->thread, NULL);
    for (size_t i = 0; i < h->o.ring; i++)
        free(h->ring[i].device); /* the block holding text too */
    free(h->ring);
    nameidx_deinit(&h->lostidx);
    free(h->lost);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int api_events_set_limits(api_events_t *h, size_t max_unsent, unsigned keepalive_ms)
{
    if (h == NULL)
        return 0;
    if (keepalive_ms == 0)
        return ERR_INVAL;
    pthread_mutex_lock(&h->mu);
    h->o.max_unsent = max_unsent;
    h->o.keepalive_ms = keepalive_ms;
    /* The keep-alive thread may sleep until a due time of the old interval: it looks again. */
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void api_events_publish(api_events_t *h, enum api_event_type type, const char *device,
                        const char *json)
{
    if (h == NULL || json == NULL || type < 0 || type >= API_EVENT_COUNT)
        return;
    /* The block is allocated outside mu: under it only the id is written and the JSON copied. */
    size_t jlen = strlen(json), dlen = strlen(device);
    size_t cap = jlen + dlen + 96;
    char *block = malloc(cap);
    if (block == NULL) {
        log_warn("http: event of '%s' not published: out of memory", device);
        return;
    }
    memcpy(block, device, dlen + 1);
    char *text = block + dlen + 1;
    nameidx_key_t dkey = nameidx_key(&h->lostidx, device, dlen); /* its seed is fixed: no mu */
    pthread_mutex_lock(&h->mu);
    uint64_t seq = ++h->head;
    int n = snprintf(text, cap - dlen - 1, "id: %s-%" PRIu64 "\nevent: %s\ndata: ", h->run, seq,
                     type_names[type]);
    memcpy(text + n, json, jlen);
    memcpy(text + n + jlen, "\n\n", 2);
    struct slot *s = &h->ring[seq % h->o.ring];
    const struct slot gone = *s; /* the message leaving the ring (seq 0: none) */
    if (gone.seq) {
        h->evicted[gone.type] = gone.seq;
        lost_note(h, &gone);
    }
    *s = (struct slot){.seq = seq,
                       .dkey = dkey,
                       .type = (int)type,
                       .device = block,
                       .text = text,
                       .len = (size_t)n + jlen + 2};
    for (struct api_events_client *c = h->clients; c; c = c->nextc) {
        if (c->next <= gone.seq) { /* at the oldest: every message before it was checked so */
            if (wanted(c, &gone)) {
                cut(h, c, "its next event left the ring (http.events_ring)");
                continue;
            }
            c->next = gone.seq + 1; /* not its message (so off is 0) */
        }
        if (!wanted(c, s)) {
            if (c->next == seq)
                c->next = seq + 1; /* caught up, and not its message: not even woken */
        } else if (c->unsent > h->o.max_unsent) {
            /* Not counting the new message: a stream that took everything before it is 0
             * behind, even for a message longer than max_unsent. Only its own message looks:
             * another's publish is no reason to cut it. */
            cut(h, c, "unsent output above http.events_max_unsent");
        } else {
            c->unsent += s->len;
            wake(c);
        }
    }
    pthread_mutex_unlock(&h->mu);
    atomic_fetch_add_explicit(&h->messages, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->by_type[type], 1, memory_order_relaxed);
    free(gone.device); /* the block holding its text too */
}

/* Copies up to max bytes of c's pending output into buf: the prologue, then the messages it
 * takes from its cursor on (never before the ring's oldest: the publish moves it on or cuts
 * c). Returns the bytes copied. Caller holds mu. */
static size_t take(struct api_events *h, struct api_events_client *c, char *buf, size_t max)
{
    size_t n = 0;
    if (c->pre_off < c->pre_len) {
        size_t k = c->pre_len - c->pre_off < max ? c->pre_len - c->pre_off : max;
        memcpy(buf, c->pre + c->pre_off, k);
        c->pre_off += k;
        n += k;
    }
    while (n < max && c->next <= h->head) {
        const struct slot *s = &h->ring[c->next % h->o.ring];
        if (!wanted(c, s)) {
            c->next++;
            continue;
        }
        size_t k = s->len - c->off < max - n ? s->len - c->off : max - n;
        memcpy(buf + n, s->text + c->off, k);
        n += k;
        c->off += k;
        c->unsent -= k;
        if (c->off == s->len) {
            c->next++;
            c->off = 0;
        }
    }
    return n;
}

uint64_t api_events_opened(api_events_t *h)
{
    return h ? (uint64_t)atomic_load(&h->opened) : 0;
}

size_t api__events_take(api_events_client_t *c, char *buf, size_t max)
{
    struct api_events *h = c->hub;
    pthread_mutex_lock(&h->mu);
    size_t n = c->cut ? 0 : take(h, c, buf, max);
    pthread_mutex_unlock(&h->mu);
    return n;
}

const char *api__events_cut_why(api_events_client_t *c)
{
    pthread_mutex_lock(&c->hub->mu);
    const char *why = c->cut;
    pthread_mutex_unlock(&c->hub->mu);
    return why;
}

const char *api__events_run(const api_events_t *h)
{
    return h->run;
}

ssize_t api__events_read(api_events_client_t *c, char *buf, size_t max)
{
    struct api_events *h = c->hub;
    static const char keepalive[] = ": keep-alive\n\n";
    pthread_mutex_lock(&h->mu);
    ssize_t ret;
    size_t n = c->cut ? 0 : take(h, c, buf, max);
    int64_t now = vtime_mono_ms();
    if (c->cut) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (n > 0) {
        ret = (ssize_t)n;
    } else if (h->closing) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (now - c->last_ms >= (int64_t)h->o.keepalive_ms && max >= sizeof keepalive - 1) {
        memcpy(buf, keepalive, sizeof keepalive - 1);
        ret = (ssize_t)(sizeof keepalive - 1);
    } else {
        /* Nothing to send: wait, suspended, for a publish or the keep-alive thread. */
        if (c->conn) {
            c->suspended = 1;
            MHD_suspend_connection(c->conn);
        }
        ret = 0;
    }
    if (ret > 0)
        c->last_ms = now;
    pthread_mutex_unlock(&h->mu);
    return ret;
}

/* libmicrohttpd's content reader of a stream (a worker thread; see the file comment). */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    return api__events_read(cls, buf, max);
}

/* Whether c's connection was ended by the kernel's dead-peer timeout (TCP_USER_TIMEOUT or
 * keep-alive, http.dead_peer_timeout_s: the client stopped acknowledging, its window closed or it
 * vanished), given the calling thread's errno when libmicrohttpd called free_stream. The
 * socket's pending error says it (SO_ERROR ETIMEDOUT) unless libmicrohttpd's failed send took
 * it; then only that send's errno, ETIMEDOUT, still the thread's when libmicrohttpd frees the
 * response (measured with 0.9.75: nothing between the send and the free callback sets errno),
 * says it. TCP_CLOSE alone does not: a client's reset and a full FIN exchange leave the socket
 * there too (measured: every departed client's was), with EPIPE or ECONNRESET from the failed
 * send. A stale ETIMEDOUT (an earlier call on the thread) would count a departure only if that
 * stream ended with no failed call of its own and was not cut or reaped first (free_stream's
 * !c->cut): a client leaving while libmicrohttpd sends fails that send, one leaving while the
 * stream waits is reaped (test_deadpeer.py's PausedReader pins both, after a timeout on the
 * same thread). TCP_INFO keeps nothing of the timeout (retransmits, probes 0 at the callback).
 * Called before the record is freed (its socket still open), without mu: it reads the socket
 * only. */
static int ended_by_timeout(const struct api_events_client *c, int err)
{
    if (c->fd < 0)
        return 0;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0)
        return soerr == ETIMEDOUT;
    struct tcp_info ti;
    len = sizeof ti;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return ti.tcpi_state == TCP_CLOSE && err == ETIMEDOUT;
}

void api__events_detach(api_events_client_t *c)
{
    struct api_events *h = c->hub;
    pthread_mutex_lock(&h->mu);
    if (c->prev)
        c->prev->nextc = c->nextc;
    else
        h->clients = c->nextc;
    if (c->nextc)
        c->nextc->prev = c->prev;
    h->nclients--;
    if (c->gone)
        h->ngone--;
    pthread_cond_broadcast(&h->cv); /* api__events_close may wait for the last one */
    pthread_mutex_unlock(&h->mu);
    if (c->cut && !c->gone) /* here, not under mu: a slow log never holds up a publish */
        log_info("http: event stream cut off: %s", c->cut);
    free(c);
}

/* libmicrohttpd's free callback of a stream's response: the stream is over. */
static void free_stream(void *cls)
{
    int err = errno; /* first: libmicrohttpd's failed send, if that ended it (ended_by_timeout) */
    struct api_events_client *c = cls;
    if (ended_by_timeout(c, err)) {
        pthread_mutex_lock(&c->hub->mu);
        if (!c->cut) { /* counted as cut off, logged by the detach; not when cut or gone before */
            c->cut = TIMED_OUT;
            atomic_fetch_add_explicit(&c->hub->dropped, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&c->hub->mu);
    }
    api__events_detach(c);
}

/* Whether s is a SEQ as the ids carry it: decimal digits only, no leading zero (but "0", the
 * id of a reset notice before any message). */
static int canonical_seq(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Whether a message c asks for, at or after SEQ from, left the ring: the hub knows it per type
 * of every device (evicted[]), per device for the o.ring devices whose messages left last,
 * and for any other device no more than that one of them may have (forgotten[]): so a stream
 * of one device resuming past the ring is told it missed something only if it did, or if
 * messages of more than o.ring devices left since from. Caller holds mu. */
static int resume_missed(const struct api_events *h, const struct api_events_client *c,
                         uint64_t from)
{
    if (from >= oldest_seq(h))
        return 0; /* the ring holds every message since */
    const uint64_t *lost = lost_of(h, c);
    for (int t = 0; t < API_EVENT_COUNT; t++)
        if ((c->types >> t & 1u) && lost[t] >= from)
            return 1;
    return 0;
}

/* Where a stream resuming after Last-Event-ID (id, NULL: none) starts: sets c->next (not
 * before the ring's oldest) and c->unsent, and a reset notice in c->pre when id is not of this
 * run or a message c asks for after it left the ring. Caller holds mu. */
static void resume_point(struct api_events *h, struct api_events_client *c, const char *id)
{
    c->next = h->head + 1;
    if (id == NULL)
        return;
    const char *why = "invalid";
    size_t rl = strlen(h->run);
    if (strncmp(id, h->run, rl) == 0 && id[rl] == '-') {
        const char *digits = id + rl + 1;
        char *end;
        errno = 0;
        unsigned long long seq = strtoull(digits, &end, 10);
        /* Only an id as we write it: strtoull alone takes a sign, leading blanks and zeros. */
        if (!canonical_seq(digits) || errno || *end || seq > h->head)
            why = "invalid";
        else if (!resume_missed(h, c, seq + 1)) {
            c->next = seq + 1 > oldest_seq(h) ? seq + 1 : oldest_seq(h);
            /* Once per attach, not per message: what is pending for it counts to its bound. */
            for (uint64_t q = c->next; q <= h->head; q++)
                if (wanted(c, &h->ring[q % h->o.ring]))
                    c->unsent += h->ring[q % h->o.ring].len;
            return;
        } else
            why = "too_old";
    } else if (strchr(id, '-')) {
        why = "other_run";
    }
    c->pre_len += (size_t)snprintf(c->pre + c->pre_len, sizeof c->pre - c->pre_len,
                                   "id: %s-%" PRIu64
                                   "\nevent: reset\ndata: {\"reason\":\"%s\",\"missed\":true,"
                                   "\"reread\":\"/v1/anomalies?active=true\"}\n\n",
                                   h->run, h->head, why);
}

/* Bounds what the kernel holds for a stream's client (see STREAM_SNDBUF) and returns the
 * socket, or -1. */
static int stream_socket(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return -1;
    int sz = STREAM_SNDBUF;
    (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    return ci->connect_fd;
}

int api__events_attach(api_events_t *h, struct MHD_Connection *conn, const char *device,
                       unsigned types, const char *last_id, api_events_client_t **out)
{
    struct api_events_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ERR_NOMEM;
    c->hub = h;
    c->conn = conn;
    c->fd = -1;
    c->types = types;
    if (device)
        snprintf(c->device, sizeof c->device, "%s", device);
    c->dkey = nameidx_key(&h->lostidx, c->device, strlen(c->device)); /* fixed seed: no mu */
    c->pre_len = (size_t)snprintf(c->pre, sizeof c->pre, "retry: %d\n\n", RETRY_MS);
    pthread_mutex_lock(&h->mu);
    if (!h->closing && h->nclients - h->ngone >= h->o.max_streams)
        reap_gone(h);
    if (h->closing || h->nclients - h->ngone >= h->o.max_streams) {
        int closing = h->closing;
        pthread_mutex_unlock(&h->mu);
        free(c);
        return closing ? ERR_CLOSED : ERR_BUSY;
    }
    resume_point(h, c, last_id);
    if (conn) /* a stream's only: not a 503's (its connection lives on) */
        c->fd = stream_socket(conn);
    c->last_ms = vtime_mono_ms();
    c->nextc = h->clients;
    if (h->clients)
        h->clients->prev = c;
    h->clients = c;
    h->nclients++;
    atomic_fetch_add(&h->opened, 1);
    pthread_cond_signal(&h->cv); /* its keep-alive is due sooner than the thread's next wake */
    pthread_mutex_unlock(&h->mu);
    *out = c;
    return 0;
}

void api__h_events(api_request_t *r)
{
    struct api_events *h = r->srv->opts.events;
    if (h == NULL) {
        api__error(r, 501, "event streams are not available");
        return;
    }
    char dev[BATCH_NAME_MAX + 1];
    const char *device = api__arg(r, "device", dev, sizeof dev);
    if (r->status)
        return;
    if (device && device[0] == '\0') {
        api__error(r, 400, "parameter 'device': is empty");
        return;
    }
    char tbuf[128];
    const char *tlist = api__arg(r, "types", tbuf, sizeof tbuf);
    unsigned types = API_EVENT_TYPES_DEFAULT;
    if (r->status || (tlist && api__arg_set(r, "types", tlist, type_names, API_EVENT_COUNT,
                                            "message type", &types)))
        return;
    if (strcmp(r->method, "HEAD") == 0) {
        /* The headers only, without a stream: libmicrohttpd answers a HEAD of a chunked
         * callback response with a stray last chunk ("0\r\n\r\n") after the headers, which a
         * client reusing the connection reads as its next answer's status line. */
        r->status = 200;
        r->content_type = "text/event-stream";
        return;
    }
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    struct api_events_client *c;
    int rc = api__events_attach(h, r->conn, device, types, last, &c);
    if (rc == ERR_NOMEM) {
        api__error(r, 500, "out of memory");
        return;
    }
    if (rc) {
        r->retry_after = rc == ERR_CLOSED ? 5 : 10;
        if (rc == ERR_CLOSED)
            api__error(r, 503, "server is shutting down");
        else
            api__error(r, 503, "too many event streams open (http.max_event_streams = %u)",
                       h->o.max_streams);
        return;
    }
    r->stream = c;
    r->status = 200;
    r->content_type = "text/event-stream";
}

struct MHD_Response *api__events_response(api_request_t *r)
{
    struct api_events_client *c = r->stream;
    r->stream = NULL; /* the response owns it now, or it is freed here */
    struct MHD_Response *resp =
        c ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, c, free_stream)
          : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT); /* HEAD */
    if (resp == NULL) {
        if (c)
            free_stream(c);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* A reverse proxy (nginx) must pass each message on, not buffer the stream. */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}

void api__events_drop(api_request_t *r)
{
    if (r->stream)
        free_stream(r->stream);
    r->stream = NULL;
}

void api__events_close(api_events_t *h, unsigned wait_ms)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->closing = 1;
    for (struct api_events_client *c = h->clients; c; c = c->nextc)
        wake(c);
    /* The readers end their streams; a client that does not read is closed by libmicrohttpd's
     * stop after the wait. */
    struct timespec ts;
    mcond_deadline(&ts, wait_ms);
    while (h->nclients > 0 && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&h->mu);
}

void api__events_metrics(api_events_t *h, sbuf_t *b)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    unsigned open = h->nclients;
    pthread_mutex_unlock(&h->mu);
    sbuf_printf(b,
                "# HELP vigil_event_streams Event streams (GET /v1/events) open now.\n"
                "# TYPE vigil_event_streams gauge\nvigil_event_streams %u\n"
                "# HELP vigil_event_stream_messages_total Events published to the event streams "
                "(each id once, whoever receives it).\n"
                "# TYPE vigil_event_stream_messages_total counter\n"
                "vigil_event_stream_messages_total %llu\n"
                "# HELP vigil_event_streams_dropped_total Event streams cut off for not reading "
                "(http.events_max_unsent, http.events_ring, http.dead_peer_timeout_s).\n"
                "# TYPE vigil_event_streams_dropped_total counter\n"
                "vigil_event_streams_dropped_total %llu\n"
                "# HELP vigil_event_stream_messages_by_type_total Events published to the event "
                "streams, by message type (event: anomaly, maintenance, state, limit).\n"
                "# TYPE vigil_event_stream_messages_by_type_total counter\n",
                open, (unsigned long long)atomic_load_explicit(&h->messages, memory_order_relaxed),
                (unsigned long long)atomic_load_explicit(&h->dropped, memory_order_relaxed));
    for (int t = 0; t < API_EVENT_COUNT; t++)
        sbuf_printf(b, "vigil_event_stream_messages_by_type_total{type=\"%s\"} %llu\n",
                    type_names[t],
                    (unsigned long long)atomic_load_explicit(&h->by_type[t], memory_order_relaxed));
}
