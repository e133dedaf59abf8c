/* daemon/wpool.h: a fixed pool of worker threads with a bounded FIFO of jobs.
 *
 * Used for model training (and anything else long that must never run on the loop or an HTTP
 * thread). wpool_submit is "any thread"; jobs run on the pool's threads. */
#ifndef VIGIL_WPOOL_H
#define VIGIL_WPOOL_H

#include <stddef.h>

typedef struct wpool wpool_t;

/* A job: runs on a worker thread. */
typedef void (*wpool_fn)(void *arg);

/* Starts nthreads workers and a queue of at most max_queued waiting jobs. The workers run at
 * the given nice increment over the creating thread's (0: the same; higher: yield the CPU to
 * everything else, as background work should; see thread_nice). Returns 0, ERR_NOMEM, ERR_IO (thread creation). Caller owns *out;
 * free with wpool_destroy. */
int wpool_create(wpool_t **out, int nthreads, size_t max_queued, const char *name, int nice);

/* Queues fn(arg). Returns 0, ERR_BUSY when the queue is full, ERR_CLOSED after wpool_destroy
 * began. On failure fn is never called. Any thread. */
int wpool_submit(wpool_t *p, wpool_fn fn, void *arg);

/* Jobs waiting (not running). Any thread. */
size_t wpool_queued(wpool_t *p);

/* Jobs running now. Any thread. */
size_t wpool_running(wpool_t *p);

/* Runs every queued job to completion, stops the threads and frees the pool. NULL is a no-op. */
void wpool_destroy(wpool_t *p);

#endif
