/* daemon/snapshot.c: online backups (snapshot.h): where the copy goes, its name, one at a
 * time, the keep limit, the metrics.
 *
 * The copy itself is storage's (store_snapshot: VACUUM INTO on a read-only connection of its
 * own, one read transaction, so ingest goes on). It is written to ".vigil-STAMP.db.tmp" in the
 * snapshots folder and linked to "vigil-STAMP.db" once synced, then the folder is synced: a
 * crash leaves at most a hidden temporary file (removed at the next start or snapshot), never a
 * file named like a snapshot that is not one. Only names of that exact form are listed and
 * pruned: files an operator put there are left alone. The name comes from the clock, never
 * from the client. STAMP has milliseconds, so names sort in time order and two snapshots within
 * one second do not collide. The wall clock can be stepped back, though: a name is never reused
 * (publish moves the stamp on), the snapshot just made is never pruned, and the last success
 * read at start comes from the files' modification times capped at now.
 *
 * Before the copy the pipeline's detectors are saved (pipeline_save_all, as a clean stop does)
 * and the saves waited for (store_flush), so a restore resumes from detectors as of the copy,
 * not from the last periodic save with a catch-up over everything after it. Saving takes each
 * device's mutex in turn (as its periodic save does), never the pipeline's shards' queues, so
 * ingest and scoring go on; the saves are asynchronous puts through the writer, committed with
 * the readings.
 *
 * Lock: mu guards running, closing, keep and the metrics fields; a leaf lock, never held during
 * the copy or the saves (running marks the one snapshot in progress). Any thread. */
#include "snapshot.h"
#include "err.h"
#include "log.h"
#include "path.h"
#include "vtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* "vigil-" "YYYYMMDDTHHMMSS.mmmZ" ".db" */
#define SNAP_PREFIX     "vigil-"
#define SNAP_SUFFIX     ".db"
#define SNAP_STAMP_LEN  20
#define SNAP_NAME_LEN   (sizeof SNAP_PREFIX - 1 + SNAP_STAMP_LEN + sizeof SNAP_SUFFIX - 1)
#define SNAP_TMP_SUFFIX ".tmp"
/* Most snapshot files read from the folder (listed, pruned). */
#define SNAP_LIST_MAX 10000

struct snapshots {
    store_t *store;
    char *dir;         /* data_dir/snapshots */
    atomic_int cancel; /* set by snapshots_close: the running copy stops */
    pthread_mutex_t mu;
    int running, closing, keep;
    int64_t last_ok_ms;  /* wall-clock end of the last successful snapshot (at start: the newest
                          * file's modification time, at most now); 0: none */
    double last_seconds; /* duration of the last snapshot, successful or not */
    uint64_t n_ok, n_failed;
};

static int64_t newest_ms(const snapshots_t *s);
static void sweep_tmp(const snapshots_t *s);

int snapshots_create(snapshots_t **out, store_t *store, const char *data_dir, int keep)
{
    snapshots_t *s = calloc(1, sizeof *s);
    /* Absolute, so the answers name the file wherever the client runs from: a relative data
     * folder is taken from the working directory (the default ./vigil-data is CWD/vigil-data),
     * an absolute one kept as configured (path_absolute). */
    const int len = path_absolute(NULL, 0, data_dir);
    const size_t n = (len > 0 ? (size_t)len : 0) + 1 + sizeof "snapshots";
    char *abs = malloc(n);
    if (s == NULL || abs == NULL || (s->dir = malloc(n)) == NULL) {
        free(abs);
        free(s);
        return ERR_NOMEM;
    }
    path_absolute(abs, n, data_dir);
    path_join(s->dir, n, abs, "snapshots");
    free(abs);
    s->store = store;
    s->keep = keep;
    pthread_mutex_init(&s->mu, NULL);
    sweep_tmp(s); /* a crash's, not to wait for the first snapshot: they can be large */
    s->last_ok_ms = newest_ms(s);
    *out = s;
    return 0;
}

void snapshots_destroy(snapshots_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

void snapshots_set_keep(snapshots_t *s, int keep)
{
    pthread_mutex_lock(&s->mu);
    s->keep = keep;
    pthread_mutex_unlock(&s->mu);
}

void snapshots_close(snapshots_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->cancel, 1);
}

static int cancelled(void *arg)
{
    return atomic_load_explicit(&((snapshots_t *)arg)->cancel, memory_order_relaxed);
}

/* Whether name is a snapshot's: exactly "vigil-YYYYMMDDTHHMMSS.mmmZ.db". */
static int is_snapshot_name(const char *name)
{
    static const char form[] = "ddddddddTdddddd.dddZ";
    if (strlen(name) != SNAP_NAME_LEN || strncmp(name, SNAP_PREFIX, sizeof SNAP_PREFIX - 1) != 0 ||
        strcmp(name + SNAP_NAME_LEN - (sizeof SNAP_SUFFIX - 1), SNAP_SUFFIX) != 0)
        return 0;
    const char *p = name + sizeof SNAP_PREFIX - 1;
    for (size_t i = 0; i < SNAP_STAMP_LEN; i++) {
        int digit = p[i] >= '0' && p[i] <= '9';
        if (form[i] == 'd' ? !digit : p[i] != form[i])
            return 0;
    }
    return 1;
}

/* Whether name is a snapshot's temporary file: "." + a snapshot's name + ".tmp", or what SQLite
 * makes beside it while the copy is written (its "-journal", "-wal" or "-shm"). read68b: a
 * kill -9 during a snapshot left the .tmp-journal for good (only the exact .tmp was swept). */
static int is_tmp_name(const char *name)
{
    static const char *const beside[] = {"", "-journal", "-wal", "-shm"};
    const size_t tmplen = 1 + SNAP_NAME_LEN + sizeof SNAP_TMP_SUFFIX - 1;
    char base[SNAP_NAME_LEN + 1];
    size_t len = strlen(name), i = 0;
    while (i < sizeof beside / sizeof beside[0] &&
           (len != tmplen + strlen(beside[i]) || strcmp(name + tmplen, beside[i]) != 0))
        i++;
    if (i == sizeof beside / sizeof beside[0] || name[0] != '.' ||
        strncmp(name + 1 + SNAP_NAME_LEN, SNAP_TMP_SUFFIX, sizeof SNAP_TMP_SUFFIX - 1) != 0)
        return 0;
    memcpy(base, name + 1, SNAP_NAME_LEN);
    base[SNAP_NAME_LEN] = '\0';
    return is_snapshot_name(base);
}

/* The RFC 3339 time of a snapshot's name ("2026-11-30T07:15:02.123Z") into buf[25]. */
static void name_time(const char *name, char *buf)
{
    const char *p = name + sizeof SNAP_PREFIX - 1;
    snprintf(buf, 25, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s.%.3sZ", p, p + 4, p + 6, p + 9, p + 11, p + 13,
             p + 16);
}

static int by_name_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* Why a listing of the folder stopped short (read_names' *why) when it met more than
 * SNAP_LIST_MAX snapshots; otherwise *why is an errno. */
#define LIST_TOO_MANY (-1)

/* The snapshot names in the folder, newest first, into *names (caller frees each and the
 * array); removes stale temporary files when sweep_tmp (no snapshot runs: they are a crash's).
 * *why (if not NULL) is 0 when every name was read, else why not: LIST_TOO_MANY (more than
 * SNAP_LIST_MAX), or the errno of the failure (opendir's, readdir's, ENOMEM), and then the
 * names are a subset in directory order. Returns the count, or -1 with errno (and *why) set
 * when the folder cannot be opened (ENOENT: no folder yet). */
static long read_names(const snapshots_t *s, char ***names, int sweep_tmp, int *why)
{
    *names = NULL;
    DIR *dir = opendir(s->dir);
    if (dir == NULL) {
        if (why)
            *why = errno;
        return -1;
    }
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    int stop = ENOMEM; /* the loop's breaks but the two below: an allocation failed */
    for (;;) {
        errno = 0;
        if ((e = readdir(dir)) == NULL) {
            stop = errno;
            break;
        }
        if (sweep_tmp && is_tmp_name(e->d_name)) {
            unlinkat(dirfd(dir), e->d_name, 0);
            continue;
        }
        if (!is_snapshot_name(e->d_name))
            continue;
        if (n == SNAP_LIST_MAX) {
            stop = LIST_TOO_MANY;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **t = realloc(v, ncap * sizeof *t);
            if (t == NULL)
                break;
            v = t;
            cap = ncap;
        }
        if ((v[n] = strdup(e->d_name)) == NULL)
            break;
        n++;
    }
    closedir(dir);
    if (n)
        qsort(v, n, sizeof *v, by_name_desc);
    *names = v;
    if (why)
        *why = stop;
    return (long)n;
}

static void free_names(char **names, long n)
{
    for (long i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Removes the temporary files a crash left in the folder. Only while no snapshot runs (at
 * start, or with the running mark taken). */
static void sweep_tmp(const snapshots_t *s)
{
    char **names;
    long n = read_names(s, &names, 1, NULL);
    free_names(names, n);
}

/* The time of the newest snapshot in the folder (0: none), so that after a restart the last
 * success is still the age of the newest backup: a restart must not make a stale backup look
 * fresh (nor a fresh one stale) to the VigilSnapshotStale alert. The files' modification times,
 * not their names, and none later than now: a name made before the clock was stepped back is in
 * the future, and would keep the alert quiet until the clock caught up with it. */
static int64_t newest_ms(const snapshots_t *s)
{
    char **names;
    long n = read_names(s, &names, 0, NULL);
    int64_t now = vtime_now_ms(), ms = 0;
    for (long i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
        if (stat(path, &st) != 0)
            continue;
        int64_t t = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        if (t > ms)
            ms = t < now ? t : now;
    }
    free_names(names, n);
    return ms;
}

/* Deletes the snapshots beyond the newest keep (0: none deleted), never the one just made
 * (kept, the first of keep): after the clock was stepped back its name sorts below older ones,
 * and it would be deleted while the answer says where it is. */
static void prune(snapshots_t *s, int keep, const char *made)
{
    if (keep <= 0)
        return;
    char **names;
    int why = 0;
    long n = read_names(s, &names, 0, &why);
    if (why != 0) { /* the newest of a subset are not the newest: nothing deleted */
        if (why == LIST_TOO_MANY)
            log_warn("snapshot: %s not pruned: its listing was incomplete (more than %d "
                     "snapshots)",
                     s->dir, SNAP_LIST_MAX);
        else
            log_warn("snapshot: %s not pruned: %s it: %s", s->dir,
                     n < 0 ? "cannot open" : "cannot read all of", strerror(why));
        free_names(names, n);
        return;
    }
    long kept = 1; /* made */
    for (long i = 0; i < n; i++) {
        if (strcmp(names[i], made) == 0 || kept++ < keep)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
        if (unlink(path) == 0)
            log_info("snapshot: deleted %s (storage.snapshots_keep = %d)", path, keep);
        else
            log_warn("snapshot: cannot delete %s: %s", path, strerror(errno));
    }
    free_names(names, n);
}

/* Creates the folder (0700) if missing. Returns 0 or ERR_IO / ERR_NOSPACE with errmsg, which
 * says when the data folder itself is gone (read68b: "creating .../snapshots: No such file or
 * directory" after the data folder was moved, with no word of the move). */
static int make_dir(const snapshots_t *s, char *errmsg, size_t errsize)
{
    if (mkdir(s->dir, 0700) == 0 || errno == EEXIST)
        return 0;
    int e = errno;
    char why[512] = ""; /* store_files_check's longest: 413 bytes */
    if (e == ENOENT && s->store && store_files_check(s->store, why, sizeof why) == 0)
        why[0] = '\0';
    snprintf(errmsg, errsize, "creating %s: %s%s%s", s->dir, strerror(e), why[0] ? ": " : "", why);
    return err_from_errno(e);
}

/* path = "DIR/vigil-STAMP.db" for the UTC time ms. */
static void snap_path(const snapshots_t *s, int64_t ms, const char *pre, const char *post,
                      char *path, size_t psize)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(path, psize, "%s/%s" SNAP_PREFIX "%04d%02d%02dT%02d%02d%02d.%03dZ" SNAP_SUFFIX "%s",
             s->dir, pre, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (int)(ms % 1000), post);
}

/* Gives tmp the snapshot's name for the time ms (filled into path), then syncs the folder so
 * the name is durable. A name never replaces a file: after the clock was stepped back the
 * name can be an older snapshot's, so the link is made without replacing (link, which fails
 * when the name exists) and the stamp moved on by 1 ms until a name is free. Returns 0 or
 * ERR_IO; tmp is removed either way. */
static int publish(const snapshots_t *s, const char *tmp, int64_t ms, char *path, size_t psize,
                   char *errmsg, size_t errsize)
{
    int rc = -1;
    for (int i = 0; i < 1000 && rc != 0; i++, ms++) {
        snap_path(s, ms, "", "", path, psize);
        rc = link(tmp, path);
        if (rc != 0 && errno != EEXIST)
            break;
    }
    if (rc != 0)
        snprintf(errmsg, errsize, "naming %s: %s", tmp, strerror(errno));
    unlink(tmp);
    if (rc != 0)
        return ERR_IO;
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* the file's data is synced already: at worst the name is lost */
        close(fd);
    }
    return 0;
}

/* Saves every detector and waits for the saves to commit. Returns the milliseconds taken. */
static int64_t save_detectors(snapshots_t *s, pipeline_t *pipe)
{
    int64_t t0 = vtime_mono_ms();
    if (pipe == NULL)
        return 0;
    (void)pipeline_save_all(pipe, NULL, NULL); /* each failure logged; the copy goes on */
    int rc = store_flush(s->store);
    if (rc) /* the copy is consistent still; its detectors are those of the last good save */
        log_warn("snapshot: saving the detectors first: %s", err_str(rc));
    return vtime_mono_ms() - t0;
}

/* Copies the database to a new snapshot file; fills path. Returns 0 or an ERR_ with errmsg. */
static int copy(snapshots_t *s, int64_t now_ms, char *path, size_t psize, int64_t *bytes,
                char *errmsg, size_t errsize)
{
    char tmp[4096];
    snap_path(s, now_ms, ".", SNAP_TMP_SUFFIX, tmp, sizeof tmp);
    int rc = store_snapshot(s->store, tmp, cancelled, s, bytes, errmsg, errsize);
    if (rc == 0)
        rc = publish(s, tmp, now_ms, path, psize, errmsg, errsize);
    return rc;
}

/* The JSON answer of a successful snapshot. */
static char *answer(const char *path, int64_t bytes, int64_t took_ms, int64_t now_ms)
{
    char t[32];
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:s}", "path", path, "bytes", (json_int_t)bytes, "took_ms",
                  (json_int_t)took_ms, "time", vtime_format(now_ms, t, sizeof t));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* Takes the running mark. Returns 0, ERR_CLOSED or ERR_BUSY; *keep the limit to apply. */
static int begin(snapshots_t *s, int *keep)
{
    pthread_mutex_lock(&s->mu);
    int rc = s->closing ? ERR_CLOSED : s->running ? ERR_BUSY : 0;
    if (rc == 0)
        s->running = 1;
    *keep = s->keep;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Drops the running mark and counts the result. */
static void end(snapshots_t *s, int rc, int64_t took_ms)
{
    pthread_mutex_lock(&s->mu);
    s->running = 0;
    s->last_seconds = (double)took_ms / 1000.0;
    if (rc == 0) {
        s->n_ok++;
        s->last_ok_ms = vtime_now_ms();
    } else {
        s->n_failed++;
    }
    pthread_mutex_unlock(&s->mu);
}

int snapshots_take(snapshots_t *s, pipeline_t *pipe, char **out)
{
    *out = NULL;
    int keep;
    int rc = begin(s, &keep);
    if (rc) {
        *out =
            strdup(rc == ERR_BUSY ? "another snapshot is being taken" : "vigild is shutting down");
        return rc;
    }
    int64_t t0 = vtime_mono_ms();
    char errmsg[5000] = "", path[4096] = "";
    int64_t bytes = 0, save_ms = 0;
    rc = make_dir(s, errmsg, sizeof errmsg);
    if (rc == 0) {
        sweep_tmp(s);
        save_ms = save_detectors(s, pipe);
        /* A stop that came during the saves: no copy started (the copy itself polls too). */
        rc = cancelled(s)
                 ? ERR_CLOSED
                 : copy(s, vtime_now_ms(), path, sizeof path, &bytes, errmsg, sizeof errmsg);
    }
    int64_t took_ms = vtime_mono_ms() - t0;
    if (rc == 0) {
        log_info("snapshot: %s, %lld bytes in %lld ms (detectors saved in %lld ms)", path,
                 (long long)bytes, (long long)took_ms, (long long)save_ms);
        prune(s, keep, strrchr(path, '/') + 1);
        /* Made, whatever becomes of its answer: a snapshot that could not be answered (out of
         * memory) is counted as made and answered as such (api/admin.c: a 500 saying so), not
         * as a failure the client retries, which would make a second one. */
        *out = answer(path, bytes, took_ms, vtime_now_ms());
        if (*out == NULL)
            log_warn("snapshot: %s made, but its answer could not be built (out of memory)", path);
    } else {
        if (rc == ERR_CLOSED)
            snprintf(errmsg, sizeof errmsg, "vigild is shutting down: snapshot cancelled");
        log_warn("snapshot failed: %s", errmsg);
        *out = strdup(errmsg);
    }
    end(s, rc, took_ms);
    return rc;
}

int snapshots_list(snapshots_t *s, char **out)
{
    *out = NULL;
    char **names;
    int why = 0;
    long n = read_names(s, &names, 0, &why);
    if (n < 0 && why != ENOENT) { /* out of descriptors: a 503 with Retry-After (api/admin.c) */
        char msg[600];
        snprintf(msg, sizeof msg, "reading %s: %s", s->dir, strerror(why));
        *out = strdup(msg);
        return err_from_errno(why) == ERR_RESOURCE ? ERR_RESOURCE : ERR_IO;
    }
    json_t *arr = json_array(), *o = json_pack("{s:s, s:o}", "dir", s->dir, "snapshots", arr);
    for (long i = 0; o && i < n; i++) {
        char path[4096], t[32];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
        if (stat(path, &st) != 0)
            continue; /* pruned meanwhile */
        name_time(names[i], t);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "name", names[i], "bytes",
                                             (json_int_t)st.st_size, "time", t));
    }
    free_names(names, n);
    *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return *out ? 0 : ERR_NOMEM;
}

void snapshots_metrics(snapshots_t *s, sbuf_t *out)
{
    pthread_mutex_lock(&s->mu);
    double last_ok = (double)s->last_ok_ms / 1000.0, secs = s->last_seconds;
    unsigned long long ok = s->n_ok, failed = s->n_failed;
    int running = s->running;
    pthread_mutex_unlock(&s->mu);
    sbuf_printf(out,
                "# HELP vigil_snapshot_last_success_timestamp_seconds End of the last successful "
                "snapshot (POST /v1/admin/snapshot or storage.snapshot_every), Unix time; at "
                "start, the newest in the snapshots folder; 0: none.\n"
                "# TYPE vigil_snapshot_last_success_timestamp_seconds gauge\n"
                "vigil_snapshot_last_success_timestamp_seconds %.3f\n"
                "# HELP vigil_snapshot_duration_seconds Duration of the last snapshot.\n"
                "# TYPE vigil_snapshot_duration_seconds gauge\n"
                "vigil_snapshot_duration_seconds %.3f\n"
                "# HELP vigil_snapshots_total Snapshots taken, by result.\n"
                "# TYPE vigil_snapshots_total counter\n"
                "vigil_snapshots_total{result=\"ok\"} %llu\n"
                "vigil_snapshots_total{result=\"failed\"} %llu\n"
                "# HELP vigil_snapshot_in_progress 1 while a snapshot is being taken.\n"
                "# TYPE vigil_snapshot_in_progress gauge\n"
                "vigil_snapshot_in_progress %d\n",
                last_ok, secs, ok, failed, running);
}
