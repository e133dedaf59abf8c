/* storage/store_fill.c: writes synthetic readings through store_submit and reports the rate and
 * the bytes on disk per reading, for docs/benchmarks.md.
 *
 * Usage: store_fill DIR DEVICES CHANNELS POINTS. Device i gets POINTS timestamps at 1 Hz, each
 * with CHANNELS random-walk values rounded to 2 decimals like real sensors. Batches of 5000
 * points are submitted with the default options; a full queue is retried after a short sleep.
 *
 * Threads: the main thread submits; done callbacks (writer thread) count completions under a
 * mutex. */
#include "batch.h"
#include "err.h"
#include "storage.h"
#include "vtime.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fill {
    pthread_mutex_t mu; /* guards: done, failed */
    pthread_cond_t cond;
    long done, failed;
} fill_t;

static void on_done(void *arg, int status)
{
    fill_t *f = arg;
    pthread_mutex_lock(&f->mu);
    f->done++;
    if (status != 0)
        f->failed++;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t file_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DIR DEVICES CHANNELS POINTS\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long ndev = atol(argv[2]), nch = atol(argv[3]), npts = atol(argv[4]);
    if (ndev < 1 || nch < 1 || npts < 1) {
        fprintf(stderr, "DEVICES, CHANNELS and POINTS must be positive\n");
        return 2;
    }
    store_opts_t opts;
    store_opts_default(&opts);
    opts.dir = dir;
    store_t *s;
    char errmsg[256];
    int err = store_open(&s, &opts, errmsg, sizeof errmsg);
    if (err) {
        fprintf(stderr, "store_open: %s: %s\n", err_str(err), errmsg);
        return 1;
    }
    fill_t f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    double *val = calloc((size_t)(ndev * nch), sizeof *val);
    char(*chname)[24] = calloc((size_t)nch, sizeof *chname);
    if (val == NULL || chname == NULL)
        return 1;
    for (long c = 0; c < nch; c++)
        snprintf(chname[c], sizeof chname[c], "ch%ld", c);
    unsigned seed = 12345;
    const int64_t t0 = 1795860000000LL;
    batch_t b;
    batch_init(&b);
    long submitted = 0;
    double start = vtime_mono_s(), cpu0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    /* Points go out in time order across devices, as live sensors would send them. */
    for (long t = 0; t < npts; t++) {
        for (long d = 0; d < ndev; d++) {
            char dev[32];
            int len = snprintf(dev, sizeof dev, "dev-%ld", d);
            if (batch_point_begin(&b, dev, (size_t)len, t0 + t * 1000, 0))
                return 1;
            for (long c = 0; c < nch; c++) {
                double *v = &val[d * nch + c];
                *v += ((double)rand_r(&seed) / RAND_MAX - 0.5);
                double r = round(*v * 100.0) / 100.0;
                if (batch_field_add(&b, chname[c], strlen(chname[c]), r))
                    return 1;
            }
            batch_point_commit(&b);
            if (b.npoints == 5000 || (t == npts - 1 && d == ndev - 1)) {
                while ((err = store_submit(s, &b, on_done, &f)) == ERR_BUSY)
                    usleep(1000);
                if (err) {
                    fprintf(stderr, "store_submit: %s\n", err_str(err));
                    return 1;
                }
                submitted++;
            }
        }
    }
    pthread_mutex_lock(&f.mu);
    while (f.done < submitted)
        pthread_cond_wait(&f.cond, &f.mu);
    pthread_mutex_unlock(&f.mu);
    store_stats_t st;
    store_stats_get(s, &st);
    /* Everything but the main thread's generation of the batches: the writer's CPU time. */
    double writer_cpu = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0 - cpu_s(CLOCK_THREAD_CPUTIME_ID);
    store_close(s);
    double secs = vtime_mono_s() - start;
    batch_deinit(&b);
    free(val);
    free(chname);
    if (f.failed) {
        fprintf(stderr, "%ld batches failed\n", f.failed);
        return 1;
    }
    double readings = (double)ndev * (double)nch * (double)npts;
    int64_t bytes = file_size(dir, "vigil.db") + file_size(dir, "vigil.db-wal");
    printf("readings=%.0f seconds=%.3f readings_per_s=%.0f bytes_per_reading=%.2f "
           "writer_cpu_s=%.3f writer_cpu_ns_per_reading=%.1f commits=%llu\n",
           readings, secs, readings / secs, (double)bytes / readings, writer_cpu,
           writer_cpu * 1e9 / readings, (unsigned long long)st.commits);
    return 0;
}
