/* daemon/wpool.c: fixed worker pool with a bounded FIFO; see wpool.h.
 *
 * Lock: mu guards head, tail, queued, running and closing; it is a leaf lock (jobs run
 * without it). */
#include "wpool.h"
#include "err.h"
#include "nice.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    wpool_fn fn;
    void *arg;
    struct job *next;
};

struct wpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail; /* guarded by mu */
    size_t queued, running;  /* guarded by mu */
    size_t max_queued;
    int closing; /* guarded by mu */
    int nice;
    int nthreads;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    wpool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->closing)
            pthread_cond_wait(&p->cv, &p->mu);
        struct job *j = p->head;
        if (j == NULL)
            break; /* closing and drained */
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int wpool_create(wpool_t **out, int nthreads, size_t max_queued, const char *name, int nice)
{
    wpool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ERR_NOMEM;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (p->threads == NULL) {
        free(p);
        return ERR_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->max_queued = max_queued;
    p->nice = nice;
    for (int i = 0; i < nthreads; i++) {
        if (thread_create_niced(&p->threads[i], nice, worker, p) != 0) { /* only this worker */
            p->nthreads = i;
            wpool_destroy(p);
            return ERR_IO;
        }
        char tname[16];
        snprintf(tname, sizeof tname, "%.8s-%d", name, i % 100);
        pthread_setname_np(p->threads[i], tname);
        p->nthreads = i + 1;
    }
    *out = p;
    return 0;
}

int wpool_submit(wpool_t *p, wpool_fn fn, void *arg)
{
    struct job *j = malloc(sizeof *j);
    if (j == NULL)
        return ERR_NOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    int rc = p->closing ? ERR_CLOSED : p->queued >= p->max_queued ? ERR_BUSY : 0;
    if (rc == 0) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc)
        free(j);
    return rc;
}

size_t wpool_queued(wpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t wpool_running(wpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void wpool_destroy(wpool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
