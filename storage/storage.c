/* storage/storage.c: opening and closing the store, the producer side of the writer queue
 * (store_submit, store_write, device put and delete, the asynchronous pipeline puts, flush),
 * stats and error messages. Its test hooks are in testhooks.c, but for store__test_exec and
 * store__test_pend_flush, which use the job helpers here.
 *
 * Invariants: qreadings counts the readings of queued jobs plus those of the writer's open
 * transaction, so queue_max bounds the memory held for the writer; qpending counts only the
 * queued ones. qops / qop_bytes do the same for the asynchronous puts, against their own bounds,
 * so a full reading queue never refuses them. Every submitted batch or waited-for job gets
 * exactly one callback, from the writer thread. Batch and asynchronous jobs are freed by the
 * writer; device, flush and test jobs are freed by the thread waiting for them.
 *
 * Threads: store_open / store_close on the owning thread; everything else any thread. Locks and
 * their order are listed in storage_int.h. */
#include "storage_int.h"
#include "compact_int.h"
#include "dbfiles_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "nice.h"
#include "path.h"
#include "vtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void store_opts_default(store_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->queue_max = 1000000;
    opts->max_batch_delay_ms = 2;
    opts->sync_full = 1;
    opts->cache_mb = 64;
    opts->readers = 4;
}

/* Error messages belong to the thread that met the failure. The writer's (a failed write, a
 * maintenance step, a reload) go to the store's slots, where any thread may read them: a client
 * whose write failed asks for them. Every other thread's (a read on a reader connection, the
 * open) go to its own buffer below, so a reader's message never shows in the writer's log lines
 * and the writer's never replaces what a reader met. Stores are told apart by serial, not by
 * address (a store closed and another opened may share one). */
static uint64_t serials;            /* the last serial given (atomic) */
static __thread uint64_t writer_of; /* the serial of the store whose writer this thread is */
/* A thread's own messages, one per store it met a failure on, for OWN_STORES stores: a thread
 * that reads two stores (the daemon's, a test's second) keeps each one's message. Beyond that
 * the oldest entry is reused (its store is then shown the writer's message). */
#define OWN_STORES 4
static __thread struct own_msg {
    uint64_t serial; /* of the store the message is from; 0: none */
    uint64_t used;   /* when last set (the thread's count): the oldest is reused */
    char msg[STORE_ERRMSG_LEN];
} own[OWN_STORES];
static __thread uint64_t own_sets;

void store__errmsg_writer(store_t *s)
{
    writer_of = s->serial;
}

/* The calling thread's message for s, or NULL. */
static struct own_msg *own_find(const store_t *s)
{
    for (int i = 0; i < OWN_STORES; i++)
        if (own[i].serial == s->serial)
            return &own[i];
    return NULL;
}

/* The calling thread's entry to set for s: its own, a free one, or the oldest. */
static struct own_msg *own_take(const store_t *s)
{
    struct own_msg *m = own_find(s);
    for (int i = 0; m == NULL && i < OWN_STORES; i++)
        if (own[i].serial == 0)
            m = &own[i];
    if (m != NULL)
        return m;
    m = &own[0];
    for (int i = 1; i < OWN_STORES; i++)
        if (own[i].used < m->used)
            m = &own[i];
    return m;
}

/* The calling thread's own message for s is forgotten: a thread that waited for a write that
 * failed is shown the writer's message. */
static void own_clear(store_t *s)
{
    struct own_msg *m = own_find(s);
    if (m != NULL)
        m->serial = 0;
}

void store__set_errmsg(store_t *s, const char *fmt, ...)
{
    char buf[STORE_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (writer_of != s->serial) {
        struct own_msg *m = own_take(s);
        memcpy(m->msg, buf, sizeof buf);
        m->serial = s->serial;
        m->used = ++own_sets;
        return;
    }
    pthread_mutex_lock(&s->smu);
    /* store_errmsg hands out pointers into the slots, so a new message goes to the next slot
     * instead of overwriting the one a reader may be printing; a repeat reuses its slot. */
    if (s->errmsg_cur < 0 || strcmp(s->errmsg[s->errmsg_cur], buf) != 0) {
        s->errmsg_cur = (s->errmsg_cur + 1) % STORE_ERRMSG_SLOTS;
        memcpy(s->errmsg[s->errmsg_cur], buf, sizeof buf);
    }
    pthread_mutex_unlock(&s->smu);
}

const char *store_errmsg(store_t *s)
{
    struct own_msg *mine = writer_of != s->serial ? own_find(s) : NULL;
    if (mine != NULL)
        return mine->msg;
    pthread_mutex_lock(&s->smu);
    const char *m = s->errmsg_cur < 0 ? "no error" : s->errmsg[s->errmsg_cur];
    pthread_mutex_unlock(&s->smu);
    return m;
}

/* dir/name; "./" in front of a dir beginning with "file:", which SQLite (built with
 * SQLITE_USE_URI, as Debian's is) would read as a URI, not as a file's path. */
static char *path_new(const char *dir, const char *name)
{
    const char *pre = strncmp(dir, "file:", 5) == 0 ? "./" : "";
    size_t len = strlen(pre), n = len + strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL) {
        memcpy(p, pre, len);
        path_join(p + len, n - len, dir, name);
    }
    return p;
}

/* Makes the store's locks and condition variables. Returns 0, or mcond_init's code (ERR_NOMEM,
 * ERR_INVAL) or ERR_NOMEM with none of them left made. */
static int sync_init(store_t *s)
{
    int rc = mcond_init(&s->qcond); /* the writer's timed waits (writer.c) */
    if (rc != 0)
        return rc;
    rc = ERR_NOMEM; /* what a pthread_*_init with default attributes can lack */
    if (pthread_mutex_init(&s->qmu, NULL))
        goto fail_qmu;
    if (pthread_mutex_init(&s->rmu, NULL))
        goto fail_rmu;
    if ((rc = mcond_init(&s->rcond)) != 0) /* reads' timed waits for a connection (query.c) */
        goto fail_rcond;
    rc = ERR_NOMEM;
    if (pthread_mutex_init(&s->smu, NULL))
        goto fail_smu;
    if (pthread_mutex_init(&s->pmu, NULL))
        goto fail_pmu;
    if ((rc = mcond_init(&s->pcond)) != 0) /* readers' timed waits for the counters (pending.c) */
        goto fail_pcond;
    return 0;
fail_pcond:
    pthread_mutex_destroy(&s->pmu);
fail_pmu:
    pthread_mutex_destroy(&s->smu);
fail_smu:
    pthread_cond_destroy(&s->rcond);
fail_rcond:
    pthread_mutex_destroy(&s->rmu);
fail_rmu:
    pthread_mutex_destroy(&s->qmu);
fail_qmu:
    pthread_cond_destroy(&s->qcond);
    return rc;
}

static void sync_deinit(store_t *s)
{
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->rcond);
    pthread_mutex_destroy(&s->smu);
    pthread_mutex_destroy(&s->pmu);
    pthread_cond_destroy(&s->pcond);
}

int store__fd_is_named(int fd, const char *path)
{
    struct stat held, named;
    return fstat(fd, &held) == 0 && lstat(path, &named) == 0 && held.st_dev == named.st_dev &&
           held.st_ino == named.st_ino;
}

/* Whether the file fd has flock'ed is still the one at path, after the test hold point
 * "lock-named" (tests change the name between the flock and this comparison). */
static int lock_still_named(int fd, const char *path)
{
    store__test_hold_point("lock-named");
    return store__fd_is_named(fd, path);
}

/* Takes dir/vigil.lock so a second vigild on the same directory fails at once with a clear
 * reason, instead of timing out on SQLite's write lock at every commit. */
int store__lock_dir(const char *dir, int *fd, char *errmsg, size_t errsize)
{
    char *path = path_new(dir, "vigil.lock");
    if (path == NULL) {
        snprintf(errmsg, errsize, "out of memory");
        return ERR_NOMEM;
    }
    /* Not through a symbolic link: a restore runs as root in a folder the service's user may
     * write, and O_CREAT would create the link's target. A refused restore removes the lock
     * it made while holding it (snapshot.c): a lock taken on a file no longer at that name is
     * taken again on the one there (bounded: the name changes only at such a restore's end). */
    int err = 0;
    for (int tries = 1;; tries++) {
        *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (*fd < 0) {
            snprintf(errmsg, errsize, "opening %s: %s", path, strerror(errno));
            err = ERR_IO;
        } else if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(errmsg, errsize, "%s: %s", path,
                     errno == EWOULDBLOCK ? "the data directory is in use by another vigild"
                                          : strerror(errno));
            err = ERR_IO;
        } else if (lock_still_named(*fd, path)) {
            store__drop_other_bits(*fd, path, 0, NULL); /* as the database's (dbfiles.c) */
        } else {
            close(*fd);
            *fd = -1;
            if (tries < 8)
                continue;
            snprintf(errmsg, errsize, "%s: removed each time it was locked", path);
            err = ERR_IO;
        }
        break;
    }
    free(path);
    return err;
}

/* Frees what store_open built; the writer thread must not be running. Returns 1 when the
 * final checkpoint left the WAL beside the database (said in the log), else 0. */
static int teardown(store_t *s)
{
    store__readers_close(s);
    store__writer_close(s);
    store__pend_index(s, 0);
    store__maps_free(&s->w);
    free(s->w.logbuf);
    free(s->w.pflush);
    free(s->w.created);
    free(s->w.dead);
    free(s->w.pcells);
    free(s->w.pdevs);
    free(s->w.pscratch);
    free(s->w.touched);
    store__codec_free(&s->w.codec);
    free(s->w.cells);
    free(s->w.mcells);
    free(s->w.ocells);
    store__compact_list_free(&s->w);
    free(s->w.pairs);
    free(s->w.ord);
    free(s->w.run_devs);
    free(s->w.nhash);
    free(s->dir);
    free(s->db_path);
    free(s->wal_path);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    sync_deinit(s);
    const int kept = s->wal_kept;
    free(s);
    return kept;
}

int store_open(store_t **out, const store_opts_t *opts, char *errmsg, size_t errsize)
{
    char dummy[8];
    if (errmsg == NULL) {
        errmsg = dummy;
        errsize = sizeof dummy;
    }
    errmsg[0] = '\0';
    *out = NULL;
    if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0') {
        snprintf(errmsg, errsize, "no data directory");
        return ERR_INVAL;
    }
    store_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errmsg, errsize, "out of memory");
        return ERR_NOMEM;
    }
    s->opts = *opts;
    s->busy_ms = store__test_busy_ms(); /* before any connection's busy handler */
    s->w.ret.retention_ms = opts->retention_ms > 0 ? opts->retention_ms : 0;
    if (s->opts.readers < 1)
        s->opts.readers = 1;
    if (s->opts.queue_max == 0)
        s->opts.queue_max = 1;
    if (s->opts.cache_mb < 1)
        s->opts.cache_mb = 1;
    s->errmsg_cur = -1;
    s->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
    s->lock_fd = -1;
    s->stats.queue_max = s->opts.queue_max;
    int err = sync_init(s);
    if (err) {
        free(s);
        snprintf(errmsg, errsize, "cannot create the store's locks: %s", err_str(err));
        return err;
    }
    err = ERR_NOMEM;
    s->dir = strdup(opts->dir);
    s->db_path = path_new(opts->dir, "vigil.db");
    s->wal_path = path_new(opts->dir, "vigil.db-wal");
    s->opts.dir = s->dir;
    if (s->dir == NULL || s->db_path == NULL || s->wal_path == NULL) {
        snprintf(errmsg, errsize, "out of memory");
        goto fail;
    }
    if (mkdir(s->dir, 0750) != 0 && errno != EEXIST) {
        /* ENOENT is the parent's (read68b: "creating DIR: No such file or directory" read as if
         * DIR itself should have been there; vigild --check-config named the parent). */
        const int e = errno;
        size_t end = strlen(s->dir);
        while (end > 1 && s->dir[end - 1] == '/') /* "a/b/": b's parent is a */
            end--;
        size_t cut = end;
        while (cut > 0 && s->dir[cut - 1] != '/')
            cut--;
        while (cut > 1 && s->dir[cut - 1] == '/')
            cut--;
        if (e == ENOENT && cut > 0)
            snprintf(errmsg, errsize, "creating %s: its parent %.*s does not exist", s->dir,
                     (int)cut, s->dir);
        else
            snprintf(errmsg, errsize, "creating %s: %s", s->dir, strerror(e));
        err = ERR_IO;
        goto fail;
    }
    err = store__lock_dir(s->dir, &s->lock_fd, errmsg, errsize);
    if (err)
        goto fail;
    err = store__db_files_mode(s->db_path, errmsg, errsize);
    if (err == 0)
        err = store__writer_open(s, errmsg, errsize);
    if (err == 0 && (err = store__maps_load(s)) != 0)
        snprintf(errmsg, errsize, "%s", store_errmsg(s));
    if (err == 0)
        err = store__readers_open(s, errmsg, errsize);
    if (err)
        goto fail;
    store__wal_files_mode(s->db_path); /* after every connection's open: see dbfiles.c */
    s->stats.devices = HASH_COUNT(s->w.devs);
    /* Counted for the log line below now: once started, the writer owns w.devs. */
    unsigned ndevs = HASH_COUNT(s->w.devs);
    s->hold = store__test_open_held; /* before the thread: it reads hold under qmu */
    s->ops_max = store__test_ops_max();
    s->wpub_on = store__test_wstate_on;
    store__wstate_publish(s); /* the thread is not running: no lock needed */
    if (s->opts.retention_ms > 0) {
        s->w.ret.clock_loaded = 1;
        store__retain_clock_load(s);
    }
    if (thread_create_niced(&s->thread, s->opts.writer_nice, store__writer_main, s) != 0) {
        snprintf(errmsg, errsize, "cannot start the writer thread");
        err = ERR_NOMEM;
        goto fail;
    }
    pthread_setname_np(s->thread, "store-writer");
    store__files_ids(s);
    log_info("storage: opened %s (%u devices)", s->db_path, ndevs);
    *out = s;
    return 0;
fail:
    (void)teardown(s);
    return err;
}

void store_stop_begin(store_t *s)
{
    if (s != NULL)
        __atomic_store_n(&s->stop_busy, 1, __ATOMIC_RELEASE);
}

int store_close(store_t *s)
{
    return store_close_wal(s, NULL);
}

int store_close_wal(store_t *s, int *wal_kept)
{
    if (wal_kept)
        *wal_kept = 0;
    if (s == NULL)
        return 0;
    store_stop_begin(s); /* a close without a stop before it (a failed start) is bounded too */
    pthread_mutex_lock(&s->qmu);
    s->closing = 1;
    s->hold = 0;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
    __atomic_store_n(&s->w.reload_hold, 0, __ATOMIC_RELEASE);  /* a stopped reload goes on */
    __atomic_store_n(&s->w.publish_hold, 0, __ATOMIC_RELEASE); /* so does a publication */
    pthread_join(s->thread, NULL);
    int err = s->close_err; /* the writer has ended: no race */
    /* Said once it is so: teardown's final checkpoint (and its warning) come first. */
    char path[4200];
    snprintf(path, sizeof path, "%s", s->db_path);
    const int kept = teardown(s);
    if (wal_kept)
        *wal_kept = kept;
    if (kept)
        log_warn("storage: closed %s, its WAL kept beside it (said above): %s alone is no copy "
                 "of the data",
                 path, path);
    else
        log_info("storage: closed %s", path);
    return err;
}

void store_set_commit_hook(store_t *s, store_commit_hook hook, void *arg)
{
    /* Under qmu so the writer, which reads the pair when it takes work, sees both or neither. */
    pthread_mutex_lock(&s->qmu);
    s->hook = hook;
    s->hook_arg = arg;
    pthread_mutex_unlock(&s->qmu);
}

/* Appends a job; the caller checked the limits under qmu. */
static void enqueue_locked(store_t *s, store_job_t *j)
{
    j->next = NULL;
    if (s->qtail != NULL)
        s->qtail->next = j;
    else
        s->qhead = j;
    s->qtail = j;
    s->qreadings += j->nreadings;
    s->qpending += j->nreadings;
    if (store__job_async(j)) {
        s->qops++;
        s->qops_pending++;
        s->qop_bytes += j->op_bytes;
        s->qop_bytes_pending += j->op_bytes;
    }
    /* The writer waits on qcond only for an empty queue or while coalescing. */
    if (s->qhead == j || s->writer_waiting)
        pthread_cond_signal(&s->qcond);
}

/* Whether submissions are refused now, without trying: the last commit found the disk full
 * less than STORE_NOSPACE_BACKOFF_MS ago. A refusal is noted (refused_ms): the health check
 * counts a client refused now as a failed write (daemon/health.c). qmu held. */
static int refusing_locked(store_t *s)
{
    int64_t now = vtime_mono_ms();
    if (s->nospace_until_ms == 0 || now >= s->nospace_until_ms)
        return 0;
    s->refused_ms = now;
    return 1;
}

int store_submit(store_t *s, batch_t *b, store_done_cb cb, void *arg)
{
    if (b->npoints == 0) {
        batch_reset(b);
        cb(arg, 0);
        return 0;
    }
    size_t merged;
    if (batch_merge_same_ts(b, &merged))
        return ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < b->npoints; i++)
        n += b->points[i].nfields;
    store_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return ERR_NOMEM;
    j->kind = JOB_BATCH;
    j->nreadings = n;
    j->cb = cb;
    j->arg = arg;
    int err = 0;
    pthread_mutex_lock(&s->qmu);
    if (s->closing)
        err = ERR_CLOSED;
    else if (refusing_locked(s))
        err = ERR_NOSPACE;
    else if (s->qreadings > 0 && s->qreadings + n > s->opts.queue_max)
        err = ERR_BUSY;
    if (err == 0) {
        j->batch = *b;
        batch_init(b);
        enqueue_locked(s, j);
    }
    pthread_mutex_unlock(&s->qmu);
    if (err)
        free(j);
    return err;
}

/* A thread blocked until the writer has handled its job. */
typedef struct waiter {
    pthread_mutex_t mu; /* guards: done, status */
    pthread_cond_t cond;
    int done, status;
} waiter_t;

static void waiter_init(waiter_t *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->done = 0;
    w->status = 0;
}

/* store_done_cb on the writer thread. */
static void waiter_done(void *arg, int status)
{
    waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static int waiter_wait(waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    return w->status;
}

int store_write(store_t *s, batch_t *b)
{
    waiter_t w;
    waiter_init(&w);
    own_clear(s);
    int err = store_submit(s, b, waiter_done, &w);
    if (err) {
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cond);
        return err;
    }
    return waiter_wait(&w);
}

/* Queues a device or test job (not counted against queue_max), waits for it, and frees it. */
static int run_sync(store_t *s, store_job_t *j, int *created)
{
    waiter_t w;
    waiter_init(&w);
    j->cb = waiter_done;
    j->arg = &w;
    own_clear(s);
    pthread_mutex_lock(&s->qmu);
    int closing = s->closing;
    if (!closing)
        enqueue_locked(s, j);
    pthread_mutex_unlock(&s->qmu);
    int err = ERR_CLOSED;
    if (closing) {
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cond);
    } else {
        err = waiter_wait(&w);
    }
    if (created != NULL)
        *created = err == 0 ? j->created : 0;
    store__job_free(j);
    return err;
}

void store__job_free(store_job_t *j)
{
    if (j == NULL)
        return;
    batch_deinit(&j->batch);
    free(j->device);
    free(j->text);
    free(j->blob);
    free(j);
}

static store_job_t *job_new(enum store_job_kind kind, const char *device, const char *text)
{
    store_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->kind = kind;
    if ((device != NULL && (j->device = strdup(device)) == NULL) ||
        (text != NULL && (j->text = strdup(text)) == NULL)) {
        store__job_free(j);
        return NULL;
    }
    return j;
}

int store_device_put(store_t *s, const char *device, const char *attrs_json, int *created)
{
    const char *why;
    int dummy;
    if (created == NULL)
        created = &dummy;
    *created = 0;
    if (device == NULL || batch_name_check(device, strlen(device), &why) != 0)
        return ERR_INVAL;
    if (attrs_json != NULL) {
        int err = store__json_object(s, attrs_json);
        if (err)
            return err;
    }
    store_job_t *j = job_new(JOB_PUT, device, attrs_json);
    return j ? run_sync(s, j, created) : ERR_NOMEM;
}

int store_device_delete(store_t *s, const char *device)
{
    if (device == NULL)
        return ERR_NOTFOUND;
    store_job_t *j = job_new(JOB_DELETE, device, NULL);
    return j ? run_sync(s, j, NULL) : ERR_NOMEM;
}

int store_flush(store_t *s)
{
    store_job_t *j = job_new(JOB_FLUSH, NULL, NULL);
    return j ? run_sync(s, j, NULL) : ERR_NOMEM;
}

int store_retention_sweep(store_t *s)
{
    if (__atomic_load_n(&s->w.ret.retention_ms, __ATOMIC_ACQUIRE) <= 0)
        return ERR_INVAL;
    store_job_t *j = job_new(JOB_RETAIN, NULL, NULL);
    return j ? run_sync(s, j, NULL) : ERR_NOMEM;
}

void store_retention_clock_ready(store_t *s)
{
    if (!__atomic_exchange_n(&s->w.ret.clock_loaded, 1, __ATOMIC_ACQ_REL))
        store__retain_clock_load(s);
}

void store_set_retention(store_t *s, int64_t retention_ms)
{
    /* Turned on in a process opened without it: the clock saved by a process before (this
     * boot's) is read now, before a sweep takes its horizon, as an open with it would have; else
     * a step forward held then, or made while no sweep ran, would be taken as the time and the
     * first sweep would delete by it. */
    if (retention_ms > 0)
        store_retention_clock_ready(s);
    __atomic_store_n(&s->w.ret.retention_ms, retention_ms > 0 ? retention_ms : 0, __ATOMIC_RELEASE);
    /* An idle writer waits until the next sweep it knew of: it reckons again. */
    pthread_mutex_lock(&s->qmu);
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
}

/* Builds an asynchronous job: copies device, info ("{}" when NULL) and blob. NULL: no memory. */
static store_job_t *op_new(enum store_job_kind kind, const char *device, const char *info,
                           const void *blob, size_t len)
{
    int bare = kind == JOB_DETECTOR || kind == JOB_PRED || kind == JOB_PRED_DROP ||
               kind == JOB_MAINT_DEL; /* no info */
    /* A maintenance period's text is its note, which may be absent (NULL). */
    const char *text = bare ? NULL : (info || kind == JOB_MAINT) ? info : "{}";
    store_job_t *j = job_new(kind, device, text);
    if (j == NULL)
        return NULL;
    /* A detector's empty state is still a value (blob NOT NULL); one byte keeps malloc honest. */
    if (blob != NULL || kind == JOB_DETECTOR) {
        if ((j->blob = malloc(len ? len : 1)) == NULL) {
            store__job_free(j);
            return NULL;
        }
        if (len && blob != NULL) /* else the caller fills it (store_detector_put) */
            memcpy(j->blob, blob, len);
        j->blob_len = len;
    }
    j->op_bytes = sizeof *j + strlen(device) + (j->text ? strlen(j->text) : 0) + len;
    return j;
}

int store__op_enqueue(store_t *s, store_job_t *j)
{
    int err = 0;
    pthread_mutex_lock(&s->qmu);
    if (s->closing)
        err = ERR_CLOSED;
    else if (refusing_locked(s))
        err = ERR_NOSPACE;
    else if (s->qops > 0 &&
             (s->qops >= s->ops_max || s->qop_bytes + j->op_bytes > STORE_OPS_BYTES_MAX))
        err = ERR_BUSY;
    else
        enqueue_locked(s, j);
    pthread_mutex_unlock(&s->qmu);
    if (err == ERR_BUSY) {
        pthread_mutex_lock(&s->smu);
        s->stats.ops_dropped++;
        pthread_mutex_unlock(&s->smu);
    }
    if (err)
        store__job_free(j);
    return err;
}

static int op_check(const char *device, const void *blob, size_t len)
{
    const char *why;
    if (device == NULL || batch_name_check(device, strlen(device), &why) != 0)
        return ERR_INVAL;
    if ((blob == NULL && len != 0) || len > STORE_BLOB_MAX)
        return ERR_INVAL;
    return 0;
}

int store_model_put(store_t *s, const char *device, int64_t version, const char *info_json,
                    const void *ckpt, size_t len, int keep_k)
{
    return store_model_put_keep(s, device, version, info_json, ckpt, len, keep_k, -1);
}

int store_model_put_keep(store_t *s, const char *device, int64_t version, const char *info_json,
                         const void *ckpt, size_t len, int keep_k, int64_t keep_version)
{
    int err = op_check(device, ckpt, len);
    if (err || keep_k < 0)
        return err ? err : ERR_INVAL;
    store_job_t *j = op_new(JOB_MODEL, device, info_json, ckpt, len);
    if (j == NULL)
        return ERR_NOMEM;
    j->u.model.version = version;
    j->u.model.created_ms = vtime_now_ms();
    j->u.model.keep_k = keep_k;
    j->u.model.keep_version = keep_version;
    return store__op_enqueue(s, j);
}

int store_event_put(store_t *s, const char *device, int64_t id, int64_t start_ts, int64_t end_ts,
                    const char *info_json)
{
    int err = op_check(device, NULL, 0);
    if (err || (end_ts != -1 && end_ts < start_ts))
        return err ? err : ERR_INVAL;
    store_job_t *j = op_new(JOB_EVENT, device, info_json, NULL, 0);
    if (j == NULL)
        return ERR_NOMEM;
    j->u.event.id = id;
    j->u.event.start_ts = start_ts;
    j->u.event.end_ts = end_ts;
    return store__op_enqueue(s, j);
}

/* Runs a maintenance job (or a database name's) as run_sync does, unless the last commit found
 * the disk full less than STORE_NOSPACE_BACKOFF_MS ago (as readings and puts are refused then).
 * Frees j. */
static int maint_run(store_t *s, store_job_t *j)
{
    pthread_mutex_lock(&s->qmu);
    int full = refusing_locked(s);
    pthread_mutex_unlock(&s->qmu);
    if (full) {
        store__job_free(j);
        return ERR_NOSPACE;
    }
    return run_sync(s, j, NULL);
}

int store_maint_put(store_t *s, const char *device, int64_t start_ms, int64_t end_ms,
                    const char *note)
{
    int err = op_check(device, NULL, 0);
    if (err || end_ms < start_ms)
        return err ? err : ERR_INVAL;
    store_job_t *j = op_new(JOB_MAINT, device, note, NULL, 0);
    if (j == NULL)
        return ERR_NOMEM;
    j->u.maint.start_ms = start_ms;
    j->u.maint.end_ms = end_ms;
    return maint_run(s, j);
}

int store_maint_delete(store_t *s, const char *device, int64_t start_ms)
{
    int err = op_check(device, NULL, 0);
    if (err)
        return err;
    store_job_t *j = op_new(JOB_MAINT_DEL, device, NULL, NULL, 0);
    if (j == NULL)
        return ERR_NOMEM;
    j->u.maint.start_ms = start_ms;
    return maint_run(s, j);
}

int store_dbname_put(store_t *s, const char *name)
{
    const char *why;
    if (name == NULL || strlen(name) > STORE_DBNAME_MAX ||
        batch_name_check(name, strlen(name), &why) != 0)
        return ERR_INVAL;
    store_job_t *j = job_new(JOB_DBNAME, NULL, name);
    return j ? maint_run(s, j) : ERR_NOMEM;
}

int store_detector_put(store_t *s, const char *device, int64_t last_ts, const void *blob,
                       size_t len, const void *ckpt, size_t ckpt_len)
{
    int err = op_check(device, blob, len);
    if (err == 0 && ((ckpt == NULL) != (ckpt_len == 0) || ckpt_len > STORE_BLOB_MAX))
        err = ERR_INVAL;
    if (err)
        return err;
    /* One allocation: the state, then the checkpoint (do_detector splits them). */
    store_job_t *j = op_new(JOB_DETECTOR, device, NULL, NULL, len + ckpt_len);
    if (j == NULL)
        return ERR_NOMEM;
    if (len)
        memcpy(j->blob, blob, len);
    if (ckpt_len)
        memcpy(j->blob + len, ckpt, ckpt_len);
    j->u.detector.saved_ms = vtime_now_ms();
    j->u.detector.last_ts = last_ts;
    j->u.detector.ckpt_len = ckpt_len;
    return store__op_enqueue(s, j);
}

void store__chunk_damaged(store_t *s, const char *device, int64_t t0, int64_t t_last)
{
    const char *dev = device ? device : "?";
    store__set_errmsg(s,
                      "damaged readings chunk of device \"%s\" from %lld to %lld ms (checksum "
                      "mismatch or malformed): its values are not served",
                      dev, (long long)t0, (long long)t_last);
    /* Logged once a row: a dashboard polling a damaged range would repeat it every few
     * seconds. The last STORE_DAMAGED_SEEN rows met are remembered (a hash of device and t0). */
    uint64_t h = 1469598103934665603ull ^ (uint64_t)t0;
    for (const char *c = dev; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    int seen = 0;
    pthread_mutex_lock(&s->smu);
    s->stats.chunks_damaged++;
    for (int i = 0; i < STORE_DAMAGED_SEEN && !seen; i++)
        seen = s->damaged_seen[i] == h;
    if (!seen)
        s->damaged_seen[s->damaged_next++ % STORE_DAMAGED_SEEN] = h;
    pthread_mutex_unlock(&s->smu);
    if (!seen)
        log_warn("storage: damaged readings chunk of device \"%s\" from %lld to %lld ms "
                 "(checksum mismatch or malformed): its values are not served (queries of "
                 "that range fail, training leaves it out) until a snapshot from before the "
                 "damage is restored (docs/reliability.md)",
                 dev, (long long)t0, (long long)t_last);
}

uint32_t store__pred_sum(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

int store_pred_put(store_t *s, const char *device, const store_pred_t *b, store_pred_cb cb,
                   void *arg)
{
    int err = op_check(device, b->blob, b->len);
    if (err == 0 &&
        (b->len == 0 || b->n < 1 || b->n > 65535 || b->nch < 1 || b->nch > 64 || b->t1 < b->t0))
        err = ERR_INVAL;
    if (err)
        return err;
    store_job_t *j = op_new(JOB_PRED, device, NULL, b->blob, b->len);
    if (j == NULL)
        return ERR_NOMEM;
    j->u.pred.seq = b->seq;
    j->u.pred.keep_from = b->keep_from;
    j->u.pred.t0 = b->t0;
    j->u.pred.t1 = b->t1;
    j->u.pred.n = b->n;
    j->u.pred.nch = b->nch;
    j->u.pred.sum = store__pred_sum(b->blob, b->len);
    j->u.pred.cb = cb;
    j->u.pred.arg = arg;
    return store__op_enqueue(s, j);
}

int store_preds_drop(store_t *s, const char *device)
{
    int err = op_check(device, NULL, 0);
    if (err)
        return err;
    store_job_t *j = op_new(JOB_PRED_DROP, device, NULL, NULL, 0);
    return j ? store__op_enqueue(s, j) : ERR_NOMEM;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

void store_stats_get(store_t *s, store_stats_t *out)
{
    pthread_mutex_lock(&s->qmu);
    uint64_t queued = s->qreadings, ops = s->qops;
    int64_t refused = s->refused_ms, until = s->nospace_until_ms;
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_lock(&s->smu);
    *out = s->stats;
    pthread_mutex_unlock(&s->smu);
    out->queue_readings = queued;
    out->ops_queued = ops;
    out->ops_max = s->ops_max;
    out->queue_max = s->opts.queue_max;
    out->write_refused_ms = refused;
    out->refusing_until_ms = until;
    out->maps_reload_fails = __atomic_load_n(&s->w.reload_fails, __ATOMIC_ACQUIRE);
    out->db_bytes = file_size(s->db_path) + file_size(s->wal_path);
}

int store__test_exec(store_t *s, const char *sql)
{
    store_job_t *j = job_new(JOB_EXEC, NULL, sql);
    return j ? run_sync(s, j, NULL) : ERR_NOMEM;
}

int store__test_pend_flush(store_t *s)
{
    store_job_t *j = job_new(JOB_PFLUSH, NULL, NULL);
    return j ? run_sync(s, j, NULL) : ERR_NOMEM;
}
