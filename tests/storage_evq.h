/* tests/storage_evq.h: the events' brute-force overlap check shared by test_storage_events.c
 * (the overlap bound's queries and migration) and test_storage_evbounds.c (the bound kept by
 * retention). Defined in test_storage_events.c. Include after storage_fx.h. */
#ifndef VIGIL_TESTS_STORAGE_EVQ_H
#define VIGIL_TESTS_STORAGE_EVQ_H

#define EVQ_MAX 512

/* One episode as the test wrote it: dev indexes evq_devs (created in this order, so device_id
 * order), end -1 while active. */
typedef struct evq_ep {
    int dev, live;
    int64_t id, start, end;
} evq_ep_t;

extern const char *const evq_devs[3];

typedef struct evq_got {
    size_t n;
    evq_ep_t e[EVQ_MAX];
} evq_got_t;

void evq_check_tie(store_t *s, const evq_ep_t *eps, size_t n, int dev, int active, int64_t from,
                   int64_t to, const char *tdev, int64_t tid, size_t limit, unsigned gone,
                   evq_got_t **out);
void evq_check(store_t *s, const evq_ep_t *eps, size_t n, int dev, int active, int64_t from,
               int64_t to, size_t limit, unsigned gone);
uint64_t evq_rand(uint64_t *x);

#endif
