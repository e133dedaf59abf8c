/* storage/testhooks.c: the store's test hooks (declared in testhooks_int.h): the switches that
 * hold the writer, its maps reloads and its publications, make reloads or the maintenance
 * savepoint fail, shorten the reads' waits, and the counters tests read; and the hold points
 * (store__test_hold_point) at which a restore or a lock waits while a test changes a file. Kept
 * apart from storage.c, which opens the store and feeds its queue, because none of it runs unless a
 * test sets it. store__test_exec and store__test_pend_flush stay in storage.c beside the job
 * helpers they use.
 *
 * Threads: any thread; the flags are atomics or taken under the lock their comment names. */
#include "storage_int.h"
#include "log.h"
#include "posint.h"
#include "testhold.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int store__test_open_held;
int store__test_wstate_on;

void store__test_hold(store_t *s, int hold)
{
    pthread_mutex_lock(&s->qmu);
    s->hold = hold && !s->closing;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
}

void store__test_reload_hold(store_t *s, int hold)
{
    __atomic_store_n(&s->w.reload_hold, hold, __ATOMIC_RELEASE);
}

int store__test_reload_held(store_t *s)
{
    return __atomic_load_n(&s->w.reload_held, __ATOMIC_ACQUIRE);
}

void store__test_reload_fail(store_t *s, int n)
{
    __atomic_store_n(&s->w.reload_fail, n, __ATOMIC_RELEASE);
}

int store__test_reload_tries(store_t *s)
{
    return __atomic_load_n(&s->w.reload_tries, __ATOMIC_ACQUIRE);
}

void store__test_pend_wait_ms(store_t *s, int64_t ms)
{
    __atomic_store_n(&s->pwait_ms, ms, __ATOMIC_RELEASE);
}

void store__test_pend_sync_ms(store_t *s, int64_t ms)
{
    __atomic_store_n(&s->psync_ms, ms, __ATOMIC_RELEASE);
}

void store__test_pause(const int *hold, int *held)
{
    if (!__atomic_load_n(hold, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(held, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(hold, __ATOMIC_ACQUIRE))
        usleep(1000);
    __atomic_store_n(held, 0, __ATOMIC_RELEASE);
}

/* A test counter guarded by pmu. */
static int pmu_count(store_t *s, const int *n)
{
    pthread_mutex_lock(&s->pmu);
    int v = *n;
    pthread_mutex_unlock(&s->pmu);
    return v;
}

int store__test_pend_waits(store_t *s)
{
    return pmu_count(s, &s->pwaits);
}

int store__test_pend_stale(store_t *s)
{
    return pmu_count(s, &s->pstale);
}

int store__test_pend_syncs(store_t *s)
{
    return pmu_count(s, &s->psyncs);
}

void store__test_publish_hold(store_t *s, int hold)
{
    __atomic_store_n(&s->w.publish_hold, hold, __ATOMIC_RELEASE);
}

int store__test_publish_held(store_t *s)
{
    return __atomic_load_n(&s->w.publish_held, __ATOMIC_ACQUIRE);
}

void store__test_savepoint_break(store_t *s, int broken)
{
    __atomic_store_n(&s->w.sp_broken, broken, __ATOMIC_RELAXED);
}

void store__test_hold_point(const char *at)
{
    test_hold_wait(getenv("VIGIL_TEST_HOLD_DIR"), at, NULL, "storage");
}

/* $name as a number from 1 to max, a warning logged (a test hook: what it then does, what
 * says); unset or empty: max; anything else (digits only, common/posint.h: " 3000" and "+3000"
 * were taken by strtol): max, with a warning. */
static long env_lowered(const char *name, long max, const char *what)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return max;
    unsigned long long n;
    if (posint_parse(v, (unsigned long long)max, &n) != 0) {
        log_warn("storage: %s '%s' ignored (a test hook: 1 to %ld)", name, v, max);
        return max;
    }
    log_warn("storage: %s is %llu (a test hook): %s, not %ld", name, n, what, max);
    return (long)n; /* at most max */
}

int64_t store__test_busy_ms(void)
{
    return env_lowered("VIGIL_TEST_BUSY_MS", STORE_BUSY_TIMEOUT_MS,
                       "a wait for another process's lock gives up after that many ms");
}

size_t store__test_ops_max(void)
{
    return (size_t)env_lowered("VIGIL_TEST_OPS_MAX", STORE_OPS_MAX,
                               "the queue holds that many puts");
}
