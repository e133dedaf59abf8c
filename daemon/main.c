/* daemon/main.c: vigild's entry point: command line, configuration, start-up and shutdown.
 *
 * Threads: the main thread runs the libuv loop (signals, the stream socket, completions from
 * the writer). libmicrohttpd runs its own thread pool for HTTP; storage runs one writer thread
 * and serves reads on the calling threads. Shutdown order (SIGTERM or SIGINT): stop accepting
 * HTTP and stream connections, let running requests finish, flush what each stream connection
 * parsed, then close storage (which commits everything queued) and exit 0. */
#include "api.h"
#include "backend.h"
#include "config.h"
#include "demo.h"
#include "err.h"
#include "log.h"
#include "pipeline.h"
#include "storage.h"
#include "stream.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    config_t cfg;
    store_t *store;
    api_server_t *api;
    stream_server_t *stream;
    backend_t backend;
    demo_t demo;
    int stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vigild [options]\n"
            "  --config FILE       read settings from FILE (INI; see etc/vigild.conf)\n"
            "  --data-dir DIR      where the database lives (default ./vigil-data)\n"
            "  --http ADDR:PORT    HTTP API address (default 127.0.0.1:8470)\n"
            "  --stream ADDR:PORT  line-protocol stream address, or 'off' (default "
            "127.0.0.1:8471)\n"
            "  --log-level LEVEL   debug, info, warn or error (default info)\n"
            "  --check-config      check the configuration and exit (0 when valid)\n"
            "  --demo              also run vigil-sim, a simulated pump fleet, into the stream\n"
            "  --version           print the version and exit\n"
            "  --help              print this help and exit\n"
            "Command-line options override the configuration file.\n");
}

/* Storage writer thread: a batch is committed; score it. */
static void on_commit(void *arg, const batch_t *b)
{
    pipeline_feed(arg, b);
}

/* Scores everything committed, saves every detector, waits for training, stops the pipeline.
 * Storage is still open, so what the pipeline saves is committed by store_close. */
static void stop_pipeline(struct daemon *d)
{
    if (d->backend.pipe == NULL)
        return;
    store_flush(d->store);
    pipeline_drain(d->backend.pipe);
    pipeline_save_all(d->backend.pipe);
    pipeline_destroy(d->backend.pipe);
    d->backend.pipe = NULL;
}

static void on_stream_closed(void *arg)
{
    struct daemon *d = arg;
    d->stream = NULL;
    d->backend.stream = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping) {
        log_warn("second signal %d while stopping; still flushing", signum);
        return;
    }
    d->stopping = 1;
    log_info("signal %d: stopping intake and flushing", signum);
    demo_stop(&d->demo);
    api_quiesce(d->api);
    if (d->stream)
        stream_set_api(d->stream, NULL);
    /* Running handlers finish (their writes commit); new connections are refused. The API is
     * stopped before storage closes so no handler can write to a closed store. */
    api_stop(d->api);
    d->api = NULL;
    if (d->stream)
        stream_shutdown(d->stream, on_stream_closed, d);
    else
        on_stream_closed(d);
}

static void on_hup(uv_signal_t *h, int signum)
{
    log_info("SIGHUP: configuration reload is not supported yet; restart to apply changes");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"data-dir", required_argument, NULL, 'd'},
                                             {"http", required_argument, NULL, 'H'},
                                             {"stream", required_argument, NULL, 'S'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"check-config", no_argument, NULL, 'C'},
                                             {"demo", no_argument, NULL, 'D'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct daemon d;
    memset(&d, 0, sizeof d);
    config_default(&d.cfg);
    const char *config_path = NULL;
    int check_only = 0, demo = 0;
    /* Flags are applied after the file, so collect them first. */
    const char *ov_data = NULL, *ov_http = NULL, *ov_stream = NULL, *ov_level = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:H:S:l:CDVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            ov_data = optarg;
            break;
        case 'H':
            ov_http = optarg;
            break;
        case 'S':
            ov_stream = optarg;
            break;
        case 'l':
            ov_level = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'D':
            demo = 1;
            break;
        case 'V':
            printf("vigild %s\n", VIGIL_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigild: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char err[512];
    if (config_path && config_load(&d.cfg, config_path, err, sizeof err)) {
        fprintf(stderr, "vigild: %s\n", err);
        return 1;
    }
    struct {
        const char *value, *section, *key, *flag;
    } ov[] = {{ov_data, "daemon", "data_dir", "--data-dir"},
              {ov_http, "http", "listen", "--http"},
              {ov_stream, "stream", "listen", "--stream"},
              {ov_level, "daemon", "log_level", "--log-level"}};
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        if (ov[i].value &&
            config_set(&d.cfg, ov[i].section, ov[i].key, ov[i].value, err, sizeof err)) {
            fprintf(stderr, "vigild: %s: %s\n", ov[i].flag, err);
            return 1;
        }
    }
    if (config_validate(&d.cfg, err, sizeof err)) {
        fprintf(stderr, "vigild: %s%s%s\n", config_path ? config_path : "", config_path ? ": " : "",
                err);
        return 1;
    }
    if (check_only) {
        printf("configuration ok\n");
        return 0;
    }
    log_set_level(d.cfg.log_level);

    store_opts_t so;
    store_opts_default(&so);
    so.dir = d.cfg.data_dir;
    so.queue_max = d.cfg.queue_max_readings;
    so.max_batch_delay_ms = d.cfg.max_batch_delay_ms;
    so.sync_full = d.cfg.sync_full;
    so.cache_mb = d.cfg.cache_mb;
    so.readers = d.cfg.readers;
    int rc = store_open(&d.store, &so, err, sizeof err);
    if (rc) {
        log_error("cannot open the database in %s: %s", d.cfg.data_dir, err);
        return 1;
    }
    uv_loop_init(&d.loop);
    d.backend.store = d.store;
    if (d.cfg.model_enabled) {
        pipeline_opts_t po;
        pipeline_opts_default(&po);
        po.workers = d.cfg.model_workers;
        po.train_threads = d.cfg.model_train_threads;
        po.versions = d.cfg.model_versions;
        po.det.warmup = d.cfg.model_warmup;
        po.det.retrain_every = d.cfg.model_retrain_every;
        po.det.n_hidden = d.cfg.model_hidden;
        if (po.det.history < po.det.warmup)
            po.det.history = po.det.warmup;
        rc = pipeline_create(&d.backend.pipe, &po, d.store);
        if (rc) {
            log_error("cannot start the model pipeline: %s", err_str(rc));
            store_close(d.store);
            return 1;
        }
        /* Every committed batch goes to the detectors, in commit order. */
        store_set_commit_hook(d.store, on_commit, d.backend.pipe);
        pipeline_restore(d.backend.pipe);
    }
    api_backend_t be;
    backend_init(&be, &d.backend);
    api_opts_t ao;
    api_opts_default(&ao);
    ao.listen = d.cfg.http_listen;
    ao.threads = d.cfg.http_threads;
    ao.max_body = d.cfg.max_body_bytes;
    ao.max_batch = d.cfg.max_batch;
    ao.max_conns = d.cfg.max_connections;
    ao.timeout_s = d.cfg.http_timeout_s;
    ao.max_query_limit = d.cfg.max_query_points;
    ao.device_tag = d.cfg.device_tag;
    if (strcmp(d.cfg.stream_listen, "off") != 0) {
        stream_opts_t sto = {.listen = d.cfg.stream_listen,
                             .max_line = d.cfg.max_line_bytes,
                             .max_conns = d.cfg.stream_max_connections,
                             .device_tag = d.cfg.device_tag};
        rc = stream_start(&d.stream, &d.loop, &sto, d.store, NULL, err, sizeof err);
        if (rc) {
            log_error("%s", err);
            goto fail;
        }
        d.backend.stream = d.stream;
    }
    rc = api_start(&d.api, &ao, &be, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        goto fail;
    }
    /* The stream counts its ingest in the API's metrics; connect them now both exist. */
    if (d.stream)
        stream_set_api(d.stream, d.api);

    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&d.sighup, on_hup, SIGHUP);
    log_info("vigild %s: data in %s, HTTP on %s (port %u), stream on %s (port %u)", VIGIL_VERSION,
             d.cfg.data_dir, d.cfg.http_listen, api_port(d.api), d.cfg.stream_listen,
             d.stream ? stream_port(d.stream) : 0);

    if (demo) {
        if (d.stream == NULL)
            log_error("--demo needs the stream socket (stream.listen is off)");
        else
            demo_start(&d.demo, &d.loop, stream_port(d.stream));
    }

    uv_run(&d.loop, UV_RUN_DEFAULT);

    stop_pipeline(&d);
    store_close(d.store);
    uv_loop_close(&d.loop);
    log_info("stopped cleanly");
    return 0;

fail:
    api_stop(d.api);
    if (d.stream) {
        stream_shutdown(d.stream, NULL, NULL);
        uv_run(&d.loop, UV_RUN_DEFAULT);
    }
    stop_pipeline(&d);
    store_close(d.store);
    uv_loop_close(&d.loop);
    return 1;
}
