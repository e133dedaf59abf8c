/* tests/test_events.c: unit tests of the event hub behind GET /v1/events (api/events.c), without
 * HTTP: streams attached with no connection (api/events_ring.h) and their output taken as the
 * content reader would. The ring and its wrap-around, the exact resume after Last-Event-ID (the
 * next message after the id, each once), the reset notice for an id too old, of another run or
 * malformed, the ?device= filter, and the two cut-offs (a stream whose next message left the
 * ring; one more than events_max_unsent behind, a single longer message not counted), and that
 * only a stream's own messages (its types and device) count toward those and toward a reset. A
 * reload's new bounds (api_events_set_limits) reach open streams; the publish path's cost is
 * printed. The daemon tests (tests/integration/test_sse.py) cover the same through
 * libmicrohttpd and curl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "api_int.h"
#include "err.h"
#include "events_ring.h"

#define OUT_MAX 65536

/* A hub of ring messages, cutting streams more than max_unsent behind. */
static api_events_t *hub(size_t ring, size_t max_unsent)
{
    api_events_opts_t o;
    api_events_opts_default(&o);
    o.ring = ring;
    o.max_unsent = max_unsent;
    api_events_t *h = NULL;
    assert_int_equal(api_events_create(&h, &o), 0);
    return h;
}

/* Publishes message k of device as {"k": k}. */
static void publish(api_events_t *h, const char *device, int k)
{
    char js[64];
    snprintf(js, sizeof js, "{\"k\":%d}", k);
    api_events_publish(h, API_EVENT_ANOMALY, device, js);
}

/* A stream of the given types resuming after message seq of this run (seq < 0: no
 * Last-Event-ID). */
static api_events_client_t *attach_t(api_events_t *h, const char *device, unsigned types,
                                     long long seq)
{
    char id[64];
    snprintf(id, sizeof id, "%s-%lld", api__events_run(h), seq);
    api_events_client_t *c = NULL;
    assert_int_equal(api__events_attach(h, NULL, device, types, seq < 0 ? NULL : id, &c), 0);
    return c;
}

/* A stream of the default types (anomaly, maintenance), as attach_t. */
static api_events_client_t *attach(api_events_t *h, const char *device, long long seq)
{
    return attach_t(h, device, API_EVENT_TYPES_DEFAULT, seq);
}

/* A stream resuming after id as a client sent it. */
static api_events_client_t *attach_id(api_events_t *h, const char *id)
{
    api_events_client_t *c = NULL;
    assert_int_equal(api__events_attach(h, NULL, NULL, API_EVENT_TYPES_DEFAULT, id, &c), 0);
    return c;
}

/* Everything c has pending, taken chunk bytes at a time (as libmicrohttpd's buffer would),
 * into out (NUL-terminated). Returns its length. */
static size_t drain(api_events_client_t *c, char *out, size_t chunk)
{
    size_t n = 0, k;
    while ((k = api__events_take(c, out + n, chunk < OUT_MAX - 1 - n ? chunk : OUT_MAX - 1 - n)))
        n += k;
    out[n] = '\0';
    return n;
}

/* The SEQs of the messages (not resets) in text, in order, into seqs; returns how many. Each
 * message must be exactly as published: "id: RUN-SEQ\nevent: anomaly\ndata: {"k":K}\n\n" with
 * K == SEQ + offset (the publishing order of the test). */
static int seqs_of(const api_events_t *h, const char *text, long long offset, long long *seqs)
{
    int n = 0;
    char want[160];
    for (const char *at = strstr(text, "event: anomaly"); at;
         at = strstr(at + 1, "event: anomaly")) {
        const char *id = at;
        while (id > text && strncmp(id, "id: ", 4) != 0)
            id--;
        unsigned long long seq = 0;
        assert_int_equal(sscanf(id + 4 + strlen(api__events_run(h)), "-%llu", &seq), 1);
        snprintf(want, sizeof want, "id: %s-%llu\nevent: anomaly\ndata: {\"k\":%lld}\n\n",
                 api__events_run(h), seq, (long long)seq + offset);
        assert_memory_equal(id, want, strlen(want));
        seqs[n++] = (long long)seq;
    }
    return n;
}

/* Asserts that text holds exactly the messages first..last (consecutive, each once). */
static void assert_run(const api_events_t *h, const char *text, long long first, long long last)
{
    long long seqs[256];
    int n = seqs_of(h, text, 0, seqs);
    assert_int_equal(n, last >= first ? last - first + 1 : 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(seqs[i], first + i);
}

/* Asserts that text opens with the retry line, then a reset notice of reason why whose id is the
 * hub's newest message (head). */
static void assert_reset(const api_events_t *h, const char *text, const char *why, long long head)
{
    char want[256];
    snprintf(want, sizeof want,
             "retry: 3000\n\nid: %s-%lld\nevent: reset\ndata: {\"reason\":\"%s\",\"missed\":true,"
             "\"reread\":\"/v1/anomalies?active=true\"}\n\n",
             api__events_run(h), head, why);
    assert_memory_equal(text, want, strlen(want));
}

/* Attaches a stream of the default types of device resuming after SEQ after, and asserts how
 * it starts: with a too_old reset whose id is head, or (head 0) with no reset; detaches it. */
static void assert_resume(api_events_t *h, const char *device, long long after, long long head)
{
    static char out[OUT_MAX];
    api_events_client_t *c = attach(h, device, after);
    drain(c, out, 4096);
    if (head)
        assert_reset(h, out, "too_old", head);
    else
        assert_null(strstr(out, "event: reset"));
    api__events_detach(c);
}

static void test_resume_exact(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(8, 1 << 20);
    api_events_client_t *live = attach(h, NULL, -1);
    for (int k = 1; k <= 5; k++)
        publish(h, "a", k);
    drain(live, out, 7); /* in 7-byte pieces: a message split across takes */
    assert_memory_equal(out, "retry: 3000\n\n", 13);
    assert_run(h, out, 1, 5);
    /* Resuming after each id: exactly the messages after it, none before, each once. */
    for (long long seq = 0; seq <= 5; seq++) {
        api_events_client_t *c = attach(h, NULL, seq);
        drain(c, out, 4096);
        assert_null(strstr(out, "event: reset"));
        assert_run(h, out, seq + 1, 5);
        api__events_detach(c);
    }
    /* A stream that took everything gets the next message alone. */
    publish(h, "a", 6);
    drain(live, out, 4096);
    assert_run(h, out, 6, 6);
    assert_int_equal(drain(live, out, 4096), 0);
    api__events_detach(live);
    api_events_destroy(h);
}

static void test_ring_wraps(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(4, 1 << 20);
    for (int k = 1; k <= 10; k++)
        publish(h, "a", k); /* the ring holds 7..10 */
    api_events_client_t *c = attach(h, NULL, 6);
    drain(c, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_run(h, out, 7, 10);
    api__events_detach(c);
    /* After 5, message 6 is gone: a reset to resume from the newest, and nothing before it. */
    c = attach(h, NULL, 5);
    drain(c, out, 4096);
    assert_reset(h, out, "too_old", 10);
    assert_run(h, out, 0, -1);
    publish(h, "a", 11);
    drain(c, out, 4096);
    assert_run(h, out, 11, 11);
    api__events_detach(c);
    api_events_destroy(h);
}

static void test_reset_reasons(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(8, 1 << 20);
    for (int k = 1; k <= 3; k++)
        publish(h, "a", k);
    const char *run = api__events_run(h);
    /* Not an id as vigild writes them: a sign, a leading zero or blank, no or other digits,
     * beyond the newest, beyond 64 bits, no run at all. */
    const char *invalid[] = {"+2", "02", " 2", "", "2x", "4", "18446744073709551617", "-1"};
    char id[96];
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        snprintf(id, sizeof id, "%s-%s", run, invalid[i]);
        api_events_client_t *c = attach_id(h, id);
        drain(c, out, 4096);
        assert_reset(h, out, "invalid", 3);
        assert_run(h, out, 0, -1);
        api__events_detach(c);
    }
    const char *bare[] = {"garbage", run};
    for (size_t i = 0; i < 2; i++) {
        api_events_client_t *c = attach_id(h, bare[i]);
        drain(c, out, 4096);
        assert_reset(h, out, "invalid", 3);
        api__events_detach(c);
    }
    /* Another run's ids (an earlier start of vigild, or this run's digits with a suffix). */
    const char *other[] = {"1700000000000-2", "%sx-2", "%s0-2"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(id, sizeof id, other[i], run);
        api_events_client_t *c = attach_id(h, id);
        drain(c, out, 4096);
        assert_reset(h, out, "other_run", 3 + (long long)i);
        assert_run(h, out, 0, -1);
        publish(h, "a", 4 + (int)i); /* from the reset's id on: the next message */
        drain(c, out, 4096);
        assert_run(h, out, 4 + (long long)i, 4 + (long long)i);
        api__events_detach(c);
    }
    api_events_destroy(h);
}

static void test_device_filter(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(8, 1 << 20);
    api_events_client_t *a = attach(h, "a", -1), *all = attach(h, NULL, -1);
    for (int k = 1; k <= 6; k++)
        publish(h, k % 2 ? "a" : "pump-b", k);
    long long seqs[16];
    drain(a, out, 5);
    assert_int_equal(seqs_of(h, out, 0, seqs), 3);
    assert_int_equal(seqs[0] * 100 + seqs[1] * 10 + seqs[2], 135);
    drain(all, out, 4096);
    assert_run(h, out, 1, 6);
    /* Resuming with the filter: the device's messages after the id only. */
    api_events_client_t *b = attach(h, "pump-b", 2);
    drain(b, out, 4096);
    assert_int_equal(seqs_of(h, out, 0, seqs), 2);
    assert_int_equal(seqs[0] * 10 + seqs[1], 46);
    /* A device whose name another's begins with is another device. */
    api_events_client_t *pump = attach(h, "pump", 0);
    assert_int_equal(drain(pump, out, 4096), strlen("retry: 3000\n\n"));
    api__events_detach(pump);
    api__events_detach(b);
    api__events_detach(all);
    api__events_detach(a);
    api_events_destroy(h);
}

static void test_cut_when_behind_the_ring(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(4, 1 << 20);
    api_events_client_t *slow = attach(h, NULL, -1), *fast = attach(h, NULL, -1);
    for (int k = 1; k <= 4; k++) {
        publish(h, "a", k);
        drain(fast, out, 4096);
    }
    assert_null(api__events_cut_why(slow)); /* its next message (1) is still the oldest */
    publish(h, "a", 5);                     /* 1 leaves the ring */
    assert_non_null(api__events_cut_why(slow));
    assert_non_null(strstr(api__events_cut_why(slow), "left the ring"));
    assert_int_equal(api__events_take(slow, out, 4096), 0);
    drain(fast, out, 4096);
    assert_run(h, out, 5, 5);
    /* A stream that keeps up is never cut, however many pass through the ring. */
    for (int k = 6; k <= 40; k++) {
        publish(h, "a", k);
        drain(fast, out, 4096);
        assert_run(h, out, k, k);
    }
    assert_null(api__events_cut_why(fast));
    api__events_detach(slow);
    api__events_detach(fast);
    api_events_destroy(h);
}

/* A message of about 300 bytes: {"k": K, "pad": "xxx..."}. */
static void publish_long(api_events_t *h, int k)
{
    char js[400];
    int n = snprintf(js, sizeof js, "{\"k\":%d,\"pad\":\"", k);
    memset(js + n, 'x', 280);
    memcpy(js + n + 280, "\"}", 3);
    api_events_publish(h, API_EVENT_ANOMALY, "a", js);
}

static void test_cut_when_unsent_above_max(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(64, 100); /* max_unsent 100 bytes: each message is about 330 */
    api_events_client_t *keeps = attach(h, NULL, -1), *stops = attach(h, NULL, -1);
    api_events_client_t *part = attach(h, NULL, -1);
    /* Nobody is behind before the first: a message longer than max_unsent cuts nobody. */
    publish_long(h, 1);
    assert_null(api__events_cut_why(stops));
    assert_null(api__events_cut_why(part));
    size_t len = drain(keeps, out, 33);
    assert_true(len > 300);
    assert_non_null(strstr(out, "\"k\":1,"));
    char piece[16];
    assert_int_equal(api__events_take(part, piece, 16), 16); /* part of its prologue */
    drain(part, out, 4096);
    /* The second: stops is a whole message behind (above 100 bytes), keeps and part none. */
    publish_long(h, 2);
    assert_non_null(api__events_cut_why(stops));
    assert_non_null(strstr(api__events_cut_why(stops), "events_max_unsent"));
    assert_null(api__events_cut_why(keeps));
    assert_null(api__events_cut_why(part));
    /* part takes 60 bytes of the second: 270 of it unsent when the third comes. */
    assert_int_equal(api__events_take(part, out, 60), 60);
    drain(keeps, out, 4096);
    publish_long(h, 3);
    assert_non_null(api__events_cut_why(part));
    assert_null(api__events_cut_why(keeps));
    drain(keeps, out, 4096);
    assert_non_null(strstr(out, "\"k\":3,"));
    api__events_detach(part);
    api__events_detach(stops);
    api__events_detach(keeps);
    api_events_destroy(h);
}

/* Messages of the ?types= tests: message k of type t is {"k": k}, published by device "a". */
static const char *const tnames[API_EVENT_COUNT] = {"anomaly", "maintenance", "state"};
#define T_ANOMALY (1u << API_EVENT_ANOMALY)
#define T_STATE   (1u << API_EVENT_STATE)

/* Only a stream's own messages cut it for its unsent bytes: a stream of device a with one long
 * message of a's pending (above max_unsent, not cut: it had taken everything before) is not cut
 * off by b's message published before it reads, nor is a stream of state messages by an
 * anomaly; a's next message, the long one still unread, cuts it. */
static void test_unsent_cut_by_own_only(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(64, 100); /* the long message is about 330 bytes */
    api_events_client_t *a = attach(h, "a", -1), *st = attach_t(h, NULL, T_STATE, -1);
    api_events_client_t *a2 = attach(h, "a", -1);
    publish_long(h, 1);
    api_events_publish(h, API_EVENT_STATE, "a", "{\"k\":2}");
    publish(h, "b", 3);
    publish(h, "b", 4);
    assert_null(api__events_cut_why(a));
    assert_null(api__events_cut_why(a2));
    assert_null(api__events_cut_why(st));
    drain(a, out, 4096);
    assert_non_null(strstr(out, "\"k\":1,"));
    api_events_publish(h, API_EVENT_STATE, "b", "{\"k\":5}"); /* st's: one short message */
    assert_null(api__events_cut_why(st));
    publish(h, "a", 6);
    assert_null(api__events_cut_why(a)); /* took the long one */
    assert_non_null(api__events_cut_why(a2));
    drain(a, out, 4096);
    assert_non_null(strstr(out, "\"k\":6}"));
    api__events_detach(a2);
    api__events_detach(st);
    api__events_detach(a);
    api_events_destroy(h);
}

static void publish_t(api_events_t *h, enum api_event_type type, int k)
{
    char js[64];
    snprintf(js, sizeof js, "{\"k\":%d}", k);
    api_events_publish(h, type, "a", js);
}

/* The messages (not resets) in text, as a string of their types' initials in order ("asa"),
 * each checked to be exactly "id: RUN-SEQ\nevent: TYPE\ndata: {"k":SEQ}\n\n"; their SEQs into
 * seqs (room for 64). */
static const char *kinds_of(const api_events_t *h, const char *text, long long *seqs)
{
    static char kinds[65];
    size_t n = 0;
    char want[160];
    for (const char *id = strstr(text, "id: "); id; id = strstr(id + 1, "\nid: ")) {
        id += id[0] == '\n';
        unsigned long long seq = 0;
        assert_int_equal(sscanf(id + 4 + strlen(api__events_run(h)), "-%llu", &seq), 1);
        const char *ev = strstr(id, "\nevent: ") + 8;
        if (strncmp(ev, "reset", 5) == 0)
            continue;
        int t = 0;
        while (t < API_EVENT_COUNT && strncmp(ev, tnames[t], strlen(tnames[t])) != 0)
            t++;
        assert_true(t < API_EVENT_COUNT && n < 64);
        snprintf(want, sizeof want, "id: %s-%llu\nevent: %s\ndata: {\"k\":%llu}\n\n",
                 api__events_run(h), seq, tnames[t], seq);
        assert_memory_equal(id, want, strlen(want));
        seqs[n] = (long long)seq;
        kinds[n++] = tnames[t][0];
    }
    kinds[n] = '\0';
    return kinds;
}

/* A stream of anomaly only skips the state messages (and is not even woken for them when it
 * has taken everything); one of state only skips the anomalies; both get both, in order. */
static void test_types_filter(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(16, 1 << 20);
    api_events_client_t *an = attach_t(h, NULL, T_ANOMALY, -1);
    api_events_client_t *st = attach_t(h, NULL, T_STATE, -1);
    api_events_client_t *both = attach_t(h, NULL, T_ANOMALY | T_STATE, -1);
    api_events_client_t *dflt = attach(h, NULL, -1);
    const char *order = "sasssam"; /* published 1..7 */
    for (int k = 1; order[k - 1]; k++)
        publish_t(h,
                  order[k - 1] == 'a'   ? API_EVENT_ANOMALY
                  : order[k - 1] == 's' ? API_EVENT_STATE
                                        : API_EVENT_MAINTENANCE,
                  k);
    long long seqs[64];
    drain(an, out, 9);
    assert_string_equal(kinds_of(h, out, seqs), "aa");
    assert_int_equal(seqs[0] * 10 + seqs[1], 26);
    drain(st, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "ssss");
    assert_int_equal(seqs[0] * 1000 + seqs[1] * 100 + seqs[2] * 10 + seqs[3], 1345);
    drain(both, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "sasssa");
    drain(dflt, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "aam");
    /* Caught up: a state message leaves nothing pending for an, and the next anomaly comes. */
    publish_t(h, API_EVENT_STATE, 8);
    assert_int_equal(api__events_take(an, out, 4096), 0);
    publish_t(h, API_EVENT_ANOMALY, 9);
    drain(an, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "a");
    assert_int_equal(seqs[0], 9);
    api__events_detach(dflt);
    api__events_detach(both);
    api__events_detach(st);
    api__events_detach(an);
    api_events_destroy(h);
}

/* Messages of types a stream did not ask for leaving the ring are never missed: a resume
 * across them is exact (no reset), a stream behind them is not cut; a message of its types
 * that left still gets the reset, or the cut. */
static void test_types_resume_and_cut(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long long seqs[64];
    api_events_t *h = hub(4, 1 << 20);
    api_events_client_t *behind = attach_t(h, NULL, T_ANOMALY, -1);
    api_events_client_t *stbehind = attach_t(h, NULL, T_STATE, -1);
    publish_t(h, API_EVENT_ANOMALY, 1);
    drain(behind, out, 4096); /* took 1; then never reads while 2..7 pass */
    for (int k = 2; k <= 7; k++)
        publish_t(h, API_EVENT_STATE, k); /* the ring holds 4..7: 1, 2 and 3 left */
    assert_null(api__events_cut_why(behind));
    assert_non_null(api__events_cut_why(stbehind)); /* its 2 and 3 left */
    /* After 1: only state messages left since, so nothing missed and nothing to send (taken
     * before the next publish, or after it: either way past the gone ones). */
    api_events_client_t *c = attach_t(h, NULL, T_ANOMALY, 1), *c2 = attach_t(h, NULL, T_ANOMALY, 1);
    drain(c, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_string_equal(kinds_of(h, out, seqs), "");
    api_events_client_t *s = attach_t(h, NULL, T_STATE, 1); /* 2, 3 left: a reset */
    drain(s, out, 4096);
    assert_reset(h, out, "too_old", 7);
    assert_string_equal(kinds_of(h, out, seqs), "");
    publish_t(h, API_EVENT_ANOMALY, 8);
    assert_null(api__events_cut_why(c2));
    drain(c2, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_string_equal(kinds_of(h, out, seqs), "a");
    assert_int_equal(seqs[0], 8);
    api__events_detach(c2);
    drain(c, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "a");
    assert_int_equal(seqs[0], 8);
    drain(behind, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "a");
    assert_int_equal(seqs[0], 8);
    drain(s, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "");
    api__events_detach(s);
    api__events_detach(c);
    /* 8 (an anomaly) then 9..12 (state): 8 leaves the ring with 12. After 7, an anomaly stream
     * missed 8: a reset; after 8 it missed nothing. One behind 8 is cut when 8 leaves. */
    api_events_client_t *slow = attach_t(h, NULL, T_ANOMALY, 7);
    for (int k = 9; k <= 12; k++)
        publish_t(h, API_EVENT_STATE, k);
    assert_non_null(api__events_cut_why(slow));
    c = attach_t(h, NULL, T_ANOMALY, 7);
    drain(c, out, 4096);
    assert_reset(h, out, "too_old", 12);
    api__events_detach(c);
    c = attach_t(h, NULL, T_ANOMALY, 8);
    drain(c, out, 4096);
    assert_null(strstr(out, "event: reset"));
    s = attach_t(h, NULL, T_STATE, 8);
    drain(s, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_string_equal(kinds_of(h, out, seqs), "ssss");
    api__events_detach(s);
    api__events_detach(c);
    api__events_detach(slow);
    api__events_detach(stbehind);
    api__events_detach(behind);
    api_events_destroy(h);
}

/* http.events_max_unsent counts a stream's own types only: a default stream one anomaly
 * behind is not cut by a fleet's state messages it never asked for (each about 50 bytes here,
 * max_unsent 100), and is still cut once its own anomalies pass the bound. */
static void test_types_unsent(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long long seqs[64];
    api_events_t *h = hub(64, 100);
    api_events_client_t *an = attach(h, NULL, -1), *st = attach_t(h, NULL, T_STATE, -1);
    drain(an, out, 4096);
    drain(st, out, 4096);
    publish_t(h, API_EVENT_ANOMALY, 1); /* an does not read it */
    for (int k = 2; k <= 9; k++) {
        publish_t(h, API_EVENT_STATE, k);
        drain(st, out, 4096);
    }
    assert_null(api__events_cut_why(an));
    assert_null(api__events_cut_why(st));
    drain(an, out, 4096);
    assert_string_equal(kinds_of(h, out, seqs), "a");
    assert_int_equal(seqs[0], 1);
    /* Its own: 10 unread (52 bytes) when 11 comes is kept, 10 and 11 (104) when 12 comes cut. */
    for (int k = 10; k <= 11; k++)
        publish_t(h, API_EVENT_ANOMALY, k);
    assert_null(api__events_cut_why(an));
    publish_t(h, API_EVENT_ANOMALY, 12);
    assert_non_null(api__events_cut_why(an));
    assert_non_null(strstr(api__events_cut_why(an), "events_max_unsent"));
    assert_null(api__events_cut_why(st)); /* caught up: the anomalies are no lag of its own */
    api__events_detach(st);
    api__events_detach(an);
    api_events_destroy(h);
}

/* Takes exactly c's prologue and its next message, found in text (one drain of another stream
 * that saw it): c's cursor then stops on the message after it, whatever its device, as a
 * reader's full buffer leaves it. */
static void take_exactly_one(api_events_client_t *c, const char *text)
{
    static char out[OUT_MAX];
    size_t len = strlen("retry: 3000\n\n") + (size_t)(strstr(text, "\n\n") + 2 - text);
    assert_int_equal(api__events_take(c, out, len), len);
    assert_memory_equal(out + strlen("retry: 3000\n\n"), text, len - strlen("retry: 3000\n\n"));
}

/* ?device= counts as ?types= does: a burst of another device, larger than the ring and than
 * events_max_unsent, neither cuts a stream of one device (its cursor stopped on the first of
 * them) nor resets one resuming across it; the device's next message comes. Its own
 * device's burst still cuts it, by the ring or by the bound. */
static void test_device_burst(void **state)
{
    (void)state;
    static char out[OUT_MAX], one[OUT_MAX];
    long long seqs[16];
    api_events_t *h = hub(8, 200); /* each message about 50 bytes: 5 pass the bound */
    api_events_client_t *a = attach(h, "a", -1), *a_ring = attach(h, "a", -1);
    api_events_client_t *all = attach(h, NULL, -1), *peek = attach(h, "a", -1);
    publish(h, "a", 1);
    publish(h, "b", 2);
    drain(peek, one, 4096);
    take_exactly_one(a, one + strlen("retry: 3000\n\n"));
    for (int k = 3; k <= 20; k++)
        publish(h, "b", k); /* 2..12 left the ring */
    assert_null(api__events_cut_why(a));
    assert_non_null(api__events_cut_why(all)); /* b's are its messages */
    assert_non_null(strstr(api__events_cut_why(a_ring), "left the ring")); /* its 1 left */
    /* Resuming after 1 (2..12 gone, all b's): nothing missed, nothing pending. */
    api_events_client_t *r = attach(h, "a", 1), *rb = attach(h, "b", 1), *r0 = attach(h, "a", 0);
    drain(r, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_int_equal(seqs_of(h, out, 0, seqs), 0);
    drain(rb, out, 4096);
    assert_reset(h, out, "too_old", 20);
    drain(r0, out, 4096);
    assert_reset(h, out, "too_old", 20); /* its own 1 left */
    publish(h, "a", 21);
    for (api_events_client_t *c = a; c; c = c == a ? r : NULL) {
        drain(c, out, 4096);
        assert_null(strstr(out, "event: reset"));
        assert_int_equal(seqs_of(h, out, 0, seqs), 1);
        assert_int_equal(seqs[0], 21);
    }
    /* Its own: a not reading while a's come is cut once 200 bytes behind. */
    for (int k = 22; k <= 30 && !api__events_cut_why(a); k++)
        publish(h, "a", k);
    assert_non_null(strstr(api__events_cut_why(a), "events_max_unsent"));
    /* Resumed behind those (22..26, about 260 bytes): they count to its bound at once; a
     * stream of b resumed there has nothing pending. */
    api_events_client_t *late = attach(h, "a", 21), *lateb = attach(h, "b", 21);
    publish(h, "a", 27);
    assert_non_null(strstr(api__events_cut_why(late), "events_max_unsent"));
    assert_null(api__events_cut_why(lateb));
    api__events_detach(lateb);
    api__events_detach(late);
    api__events_detach(r0);
    api__events_detach(rb);
    api__events_detach(r);
    api__events_detach(peek);
    api__events_detach(all);
    api__events_detach(a_ring);
    api__events_detach(a);
    api_events_destroy(h);
}

/* A stream of one device resuming past the ring is told it missed something only if one of
 * its messages left, or messages of more devices than the ring holds left since its id (the
 * hub remembers the losses of that many devices, the latest: others may have lost up to the
 * newest it forgot, so it resets rather than risk a silent gap). */
static void test_device_resume_bound(void **state)
{
    (void)state;
    api_events_t *h = hub(4, 1 << 20);
    publish(h, "x", 1);
    for (int k = 2; k <= 9; k++) /* 1..5 leave: x, then d2..d5, four other devices */
        publish(h, k <= 5 ? (const char *[]){"d2", "d3", "d4", "d5"}[k - 2] : "y", k);
    assert_resume(h, "x", 1, 0); /* 2..5 were not x's */
    assert_resume(h, "q", 1, 0); /* nor q's */
    publish(h, "y", 10); /* 6, y's, leaves: a fifth device after 1 (and x's record dropped) */
    assert_resume(h, "x", 1, 10);
    assert_resume(h, "x", 6, 0); /* after 6: nothing of x's left since, the ring holds 7.. */
    /* x's record was dropped (its 1 forgotten); a state message of x's leaves and x has a
     * record again: it still tells an anomaly stream after 0 that 1 left. */
    api_events_publish(h, API_EVENT_STATE, "x", "{\"k\":11}");
    for (int k = 12; k <= 15; k++)
        publish(h, "y", k);
    assert_resume(h, "x", 0, 15);
    api_events_destroy(h);
}

/* A stream of one device resuming after an id older than the ring, with nothing of its lost,
 * starts at the ring's oldest: each of its messages still there comes once (a cursor left
 * before the oldest would read the slots of newer messages, some twice). */
static void test_device_resume_from_oldest(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    long long seqs[16];
    api_events_t *h = hub(4, 1 << 20);
    publish(h, "a", 1);
    for (int k = 2; k <= 7; k++)
        publish(h, k == 6 ? "a" : "b", k); /* 1..3 leave, 4..7 stay */
    api_events_client_t *c = attach(h, "a", 1);
    drain(c, out, 4096);
    assert_null(strstr(out, "event: reset"));
    assert_int_equal(seqs_of(h, out, 0, seqs), 1);
    assert_int_equal(seqs[0], 6);
    api__events_detach(c);
    api_events_destroy(h);
}

/* The per-device records are those of the devices whose messages left most recently: a device
 * losing a message again moves to the newest, so the records dropped for new devices are
 * others' (x's 5 kept, v's and y's dropped; a record kept in first-loss order would drop x's
 * and w's, and x, resuming after 5, would be reset for w's 6). */
static void test_device_records_recent(void **state)
{
    (void)state;
    static const char *const order[] = {"x", "w", "v", "y", "x", "w", "z", "u"};
    api_events_t *h = hub(4, 1 << 20);
    for (int k = 1; k <= 12; k++)
        publish(h, k <= 8 ? order[k - 1] : "q", k); /* 1..8 leave, in that order */
    assert_resume(h, "x", 5, 0);
    assert_resume(h, "x", 4, 12); /* its 5 left */
    api_events_destroy(h);
}

/* A device id longer than BATCH_NAME_MAX (no API path lets one in, but api_events_publish
 * takes any, and a hand-edited database could hold one; no ?device= can name it) leaving the
 * ring is no per-device record: the record's name has room for BATCH_NAME_MAX bytes, and
 * another device's record beside it stays exact (b, resuming after 1, is told its 2 left; a,
 * after 1, that nothing of its left since). */
static void test_long_device_left(void **state)
{
    (void)state;
    char longname[300 + 1];
    memset(longname, 'L', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    api_events_t *h = hub(2, 1 << 20);
    publish(h, "a", 1);
    publish(h, "b", 2);
    publish(h, longname, 3);
    publish(h, longname, 4); /* 1 (a's) and 2 (b's) left: a record each */
    publish(h, "y", 5);      /* 3 leaves: the long name's, in the oldest record's place */
    assert_resume(h, "b", 1, 5);
    assert_resume(h, "a", 1, 0);
    for (int k = 6; k <= 12; k++) /* every record replaced, unlinked and relinked again */
        publish(h, k % 2 ? longname : (const char *[]){"p", "q", "r"}[k % 3], k);
    assert_resume(h, "b", 1, 12);
    api_events_destroy(h);
}

/* api_events_set_limits (a reload) reaches an open stream: the new bound cuts it at the next
 * message, the new keep-alive is due from its last bytes; a zero keep-alive changes nothing. */
static void test_set_limits(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    api_events_t *h = hub(64, 1 << 20);
    api_events_client_t *slow = attach(h, NULL, -1), *idle = attach(h, NULL, -1);
    assert_true(api__events_read(idle, out, 4096) > 0); /* its retry line */
    for (int k = 1; k <= 4; k++)
        publish(h, "a", k); /* slow reads none: about 200 bytes behind */
    drain(idle, out, 4096);
    assert_null(api__events_cut_why(slow));
    usleep(20000);
    assert_int_equal(api__events_read(idle, out, 4096), 0); /* 15 s between keep-alives */
    assert_int_equal(api_events_set_limits(h, 100, 0), ERR_INVAL);
    publish(h, "a", 5);
    drain(idle, out, 4096);
    assert_null(api__events_cut_why(slow)); /* the refused change left 1 MiB */
    assert_int_equal(api_events_set_limits(h, 100, 5), 0);
    publish(h, "a", 6);
    assert_non_null(strstr(api__events_cut_why(slow), "events_max_unsent"));
    assert_null(api__events_cut_why(idle)); /* took everything before 6 */
    drain(idle, out, 4096);
    usleep(20000);
    assert_int_equal(api__events_read(idle, out, 4096), strlen(": keep-alive\n\n"));
    assert_memory_equal(out, ": keep-alive\n\n", strlen(": keep-alive\n\n"));
    assert_int_equal(api_events_set_limits(NULL, 100, 5), 0);
    api__events_detach(idle);
    api__events_detach(slow);
    api_events_destroy(h);
}

/* The publish path's cost with 64 streams open (16 of every device, 16 of one device, 16 of
 * state messages, 16 of one device's state messages), 2,000 devices, 1/4 of the messages
 * anomalies: printed, never asserted (a bound on time belongs in no test). Each stream reads
 * everything every 256 messages, as a live client would, so none is cut. */
static void test_publish_cost(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    enum { STREAMS = 64, DEVICES = 2000, MESSAGES = 200000, BATCH = 256 };
    api_events_t *h = hub(1024, 1 << 20);
    api_events_client_t *c[STREAMS];
    char dev[32];
    for (int i = 0; i < STREAMS; i++) {
        snprintf(dev, sizeof dev, "pump-%04d", i * 37 % DEVICES);
        c[i] = attach_t(h, i / 16 % 2 ? dev : NULL, i / 32 ? T_STATE : API_EVENT_TYPES_DEFAULT, -1);
    }
    struct timespec t0, t1;
    double ns = 0;
    for (int k = 1; k <= MESSAGES; k += BATCH) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int j = k; j < k + BATCH && j <= MESSAGES; j++) {
            snprintf(dev, sizeof dev, "pump-%04d", j * 7919 % DEVICES);
            api_events_publish(h, j % 4 ? API_EVENT_STATE : API_EVENT_ANOMALY, dev,
                               "{\"state\":\"warning\",\"previous\":\"normal\"}");
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        for (int i = 0; i < STREAMS; i++)
            drain(c[i], out, 16384);
    }
    for (int i = 0; i < STREAMS; i++) {
        assert_null(api__events_cut_why(c[i]));
        api__events_detach(c[i]);
    }
    print_message("publish with %d streams open: %.0f ns a message (%d messages)\n", STREAMS,
                  ns / MESSAGES, MESSAGES);
    api_events_destroy(h);
}

static void test_limits_and_close(void **state)
{
    (void)state;
    api_events_opts_t o;
    api_events_opts_default(&o);
    o.max_streams = 2;
    api_events_t *h = NULL;
    assert_int_equal(api_events_create(&h, &o), 0);
    assert_int_equal(api_events_opened(NULL), 0);
    assert_int_equal(api_events_opened(h), 0);
    api_events_client_t *c1 = attach(h, NULL, -1), *c2 = attach(h, NULL, -1), *c3 = NULL;
    const unsigned dflt = API_EVENT_TYPES_DEFAULT;
    assert_int_equal(api__events_attach(h, NULL, NULL, dflt, NULL, &c3), ERR_BUSY);
    /* The streams opened (pipeline_state.c's repeat): a refused one is not one. */
    assert_int_equal(api_events_opened(h), 2);
    api__events_detach(c2);
    c2 = attach(h, NULL, -1); /* its place is free again */
    /* Counted: a detach does not undo it. */
    assert_int_equal(api_events_opened(h), 3);
    api__events_close(h, 0);
    api__events_detach(c2);
    assert_int_equal(api__events_attach(h, NULL, NULL, dflt, NULL, &c3), ERR_CLOSED);
    assert_int_equal(api_events_opened(h), 3);
    api__events_detach(c1);
    api_events_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_reset_reasons),
        cmocka_unit_test(test_device_filter),
        cmocka_unit_test(test_cut_when_behind_the_ring),
        cmocka_unit_test(test_cut_when_unsent_above_max),
        cmocka_unit_test(test_unsent_cut_by_own_only),
        cmocka_unit_test(test_types_filter),
        cmocka_unit_test(test_types_resume_and_cut),
        cmocka_unit_test(test_types_unsent),
        cmocka_unit_test(test_device_burst),
        cmocka_unit_test(test_device_resume_bound),
        cmocka_unit_test(test_device_resume_from_oldest),
        cmocka_unit_test(test_device_records_recent),
        cmocka_unit_test(test_long_device_left),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_publish_cost),
        cmocka_unit_test(test_limits_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
