/* daemon/main.c: vigild's entry point: command line (its messages in cli.c), configuration,
 * start-up and reload (the stop is daemon/stop.c's).
 *
 * Threads: the main thread runs the libuv loop (signals, the stream socket, completions from
 * the writer). libmicrohttpd runs its own thread pool for HTTP; storage runs one writer thread
 * and serves reads on the calling threads. The stop (SIGTERM or SIGINT), its order and the
 * teardown are in daemon/stop.c; the state both files share is struct daemon (vigild_int.h).
 *
 * Under systemd (Type=notify) the loop tells the service manager it is ready, pings the
 * watchdog and reports a status line (daemon/notify.c). SIGHUP reloads the configuration: the
 * file is read again with the same command-line overrides and, when valid, the settings that can
 * change live are applied (config_is_live); an invalid file is logged and the running
 * configuration kept. During the start (the database's opening, the detectors' restore) the
 * three signals are only noted (vigild__start_signals, stop.c): a SIGHUP then is ignored and
 * logged, a SIGTERM or SIGINT stops vigild cleanly before it serves, never by default action. */
#include "api.h"
#include "auth.h"
#include "backend.h"
#include "build.h"
#include "cli.h"
#include "config.h"
#include "datadir.h"
#include "demo.h"
#include "err.h"
#include "fdlimit.h"
#include "health.h"
#include "log.h"
#include "nice.h"
#include "notify.h"
#include "path.h"
#include "pipeline.h"
#include "storage.h"
#include "stream.h"
#include "vigild_int.h"
#include "vtime.h"

#include <cblas.h> /* openblas_set_num_threads */
#include <getopt.h>
#include <limits.h> /* PATH_MAX */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* How often the loop looks whether a maintenance boundary passed: the stream's messages come
 * at most this late after a period's from or until. A look before the fleet's earliest
 * boundary costs one atomic load. */
#define MAINT_TICK_MS 250

/* Seconds between STATUS= lines sent to systemd. */
#define STATUS_PERIOD_MS 5000

/* The watchdog stops pinging when work waits for the storage writer and no transaction has
 * finished for this many watchdog periods ($WATCHDOG_USEC, WatchdogSec=): long enough for the
 * slowest legitimate transaction (a large device deletion, a checkpoint on a slow disk), short
 * enough that a writer stuck for good is restarted within minutes. */
#define WRITER_STALL_PERIODS 4

/* How often the loop records the storage writer's progress for the health checks. */
#define HEALTH_TICK_MS 1000

/* Builds a configuration: defaults, then the file, then the command-line flags, validated.
 * Returns 0, or -1 with "FILE:LINE: reason", "--flag: reason" or "FILE: reason" in err. */
static int load_config(const struct daemon *d, config_t *c, char *err, size_t errsize)
{
    char why[400];
    config_default(c);
    if (d->config_path && config_load(c, d->config_path, err, errsize))
        return -1;
    for (size_t i = 0; i < OV_COUNT; i++) {
        const struct override *o = &d->ov[i];
        if (o->value && config_set(c, o->section, o->key, o->value, why, sizeof why)) {
            snprintf(err, errsize, "%s: %s", o->flag, why);
            return -1;
        }
    }
    if (config_validate(c, why, sizeof why)) {
        snprintf(err, errsize, "%s%s%s", d->config_path ? d->config_path : "",
                 d->config_path ? ": " : "", why);
        return -1;
    }
    if (config_inflight_small(c))
        log_warn("config: http.max_inflight_bytes (%zu) is below http.max_body_bytes (%zu) * "
                 "8/7: bodies over %zu bytes, though within max_body_bytes, are refused (413) "
                 "naming http.max_inflight_bytes",
                 c->max_inflight_bytes, c->max_body_bytes, c->max_inflight_bytes / 8 * 7);
    return 0;
}

/* Reads the token file the configuration names, if any, into *auth (NULL without one), adding
 * the --demo feed's own write token (demo_token, "" for none) when the file has tokens. Returns
 * 0, or -1 with "WHERE: FILE:LINE: reason" in err, WHERE naming the setting that named the
 * file: "--auth-file", or "http.auth_file (CONFIG line N)" (session 65: a missing file was
 * "/nonexistent: cannot open: ..." alone, which named neither). */
static int load_auth(const struct daemon *d, const config_t *c, const char *demo_token,
                     api_auth_t **auth, char *err, size_t errsize)
{
    *auth = NULL;
    if (c->auth_file[0] == '\0')
        return 0;
    /* The prefix first, auth_load's reason after it (on success err is not read). */
    int n;
    if (d->ov[OV_AUTH_FILE].value)
        n = snprintf(err, errsize, "--auth-file: ");
    else if (d->config_path && c->auth_file_line > 0)
        n = snprintf(err, errsize, "http.auth_file (%s line %d): ", d->config_path,
                     c->auth_file_line);
    else
        n = snprintf(err, errsize, "http.auth_file: ");
    if (n < 0 || (size_t)n >= errsize / 2)
        n = 0;
    char warn[600];
    if (auth_load(c->auth_file, auth, warn, sizeof warn, err + n, errsize - (size_t)n))
        return -1;
    if (warn[0])
        log_warn("%s", warn);
    if (*auth && demo_token[0] && api_auth_count(*auth) > 0) {
        size_t dup = 0;
        if (api_auth_add(*auth, API_ROLE_WRITE, demo_token, &dup)) {
            snprintf(err, errsize, "out of memory adding the demo feed's token");
            api_auth_destroy(*auth);
            *auth = NULL;
            return -1;
        }
    }
    return 0;
}

/* Loads the HTTPS certificate and key the configuration names, if any, into *tls (NULL for
 * plain HTTP). Returns 0, or -1 with "http.tls_cert: FILE: reason" in err. */
static int load_tls(const config_t *c, api_tls_t **tls, char *err, size_t errsize)
{
    *tls = NULL;
    if (c->tls_cert[0] == '\0')
        return 0;
    char warn[700];
    if (api_tls_load(tls, c->tls_cert, c->tls_key, warn, sizeof warn, err, errsize))
        return -1;
    if (warn[0])
        log_warn("%s", warn);
    return 0;
}

/* Loop thread (status timer). The line systemd shows in `systemctl status`. */
static void status_text(void *arg, char *buf, size_t size)
{
    struct daemon *d = arg;
    store_stats_t st;
    store_stats_get(d->store, &st);
    uint64_t now = uv_now(&d->loop);
    double rate = 0;
    if (d->status_ms && now > d->status_ms)
        rate = (double)(st.readings_written - d->status_written) * 1000.0 /
               (double)(now - d->status_ms);
    d->status_ms = now;
    d->status_written = st.readings_written;
    snprintf(buf, size, "serving: %llu devices, %.0f readings/s, write queue %llu/%llu",
             (unsigned long long)st.devices, rate, (unsigned long long)st.queue_readings,
             (unsigned long long)st.queue_max);
}

/* Loop thread (the stream, at a connection's first line): the API's current tokens, so both
 * protocols take the same tokens and a reload rotates them for both. -1: no tokens. */
static int stream_token_role(void *arg, const char *token, size_t len)
{
    struct daemon *d = arg;
    if (d->api)
        return api_token_role(d->api, token, len);
    return d->auth_on ? API_ROLE_NONE : -1; /* stopping: fail closed */
}

/* Loop thread (watchdog timer, before each ping): whether the storage writer makes progress
 * (daemon/health.c, with the watchdog's bound). Only a stall withholds the ping: a restart cures
 * a stuck writer, but not a full disk, a failing disk or maps that cannot be read, which /healthz
 * and /metrics report instead; restarting vigild for them would only lose what it holds. */
_Static_assert(NOTIFY_WHY_MAX >= HEALTH_WHY_MAX, "the watchdog cuts the health message");

static int writer_healthy(void *arg, char *why, size_t size)
{
    struct daemon *d = arg;
    return (health_writer(&d->health, why, size) & HEALTH_STALLED) == 0;
}

/* The stall bound: the watchdog's (WRITER_STALL_PERIODS of its periods) under one, else
 * http.health_stall_s. */
static int64_t stall_bound_ms(const struct daemon *d)
{
    if (d->notify.watchdog_usec)
        return (int64_t)(d->notify.watchdog_usec / 1000 * WRITER_STALL_PERIODS);
    return (int64_t)d->cfg.health_stall_s * 1000;
}

/* Loop thread: records the writer's progress (the result is for the probes to ask). */
static void on_health_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    char why[HEALTH_WHY_MAX];
    health_writer(&d->health, why, sizeof why);
}

/* Storage writer thread: a batch is committed; score it (the pipeline may take b). */
static void on_commit(void *arg, batch_t *b)
{
    pipeline_feed(arg, b);
}

/* Loop thread: the maintenance periods' boundaries that passed go to the event streams; the
 * devices' changed arrivals go to the store once their period has passed; the limited log
 * lines' counts left unsaid at their minute's end are said (the pipeline's and the stream's). */
static void on_maint_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (d->backend.pipe) {
        pipeline_maint_tick(d->backend.pipe);
        (void)pipeline_arrivals_flush(d->backend.pipe, 0);
        pipeline_log_flush(d->backend.pipe, 0);
    }
    if (d->stream)
        stream_log_flush(d->stream, 0);
}

/* http.events_keepalive_ms as it runs: an idle stream must send its keep-alive before
 * libmicrohttpd closes it as idle, so it is lowered to half of http.timeout_s when above it
 * (logged when warn: at the start, and at a reload that changed the setting, not every one). */
static unsigned events_keepalive(const config_t *c, int warn)
{
    if ((uint64_t)c->events_keepalive_ms * 2 <= (uint64_t)c->http_timeout_s * 1000)
        return c->events_keepalive_ms;
    unsigned ms = c->http_timeout_s * 500;
    if (warn)
        log_warn("http.events_keepalive_ms %u: lowered to %u ms, half of http.timeout_s",
                 c->events_keepalive_ms, ms);
    return ms;
}

/* Creates the hub of GET /v1/events (d->events) before the pipeline, whose restore's catch-up
 * may open or end episodes. Returns 0, or an ERR_ (logged). */
static int events_start(struct daemon *d)
{
    api_events_opts_t eo = {.ring = d->cfg.events_ring,
                            .max_streams = d->cfg.max_event_streams,
                            .max_unsent = d->cfg.events_max_unsent,
                            .keepalive_ms = events_keepalive(&d->cfg, 1)};
    int rc = api_events_create(&d->events, &eo);
    if (rc)
        log_error("cannot start the event streams' hub: %s", err_str(rc));
    return rc;
}

/* Names of changed settings, split by whether the reload applies them. */
struct changes {
    char live[512], restart[512];
};

static void on_change(void *arg, const char *section, const char *key, int live)
{
    struct changes *ch = arg;
    char *list = live ? ch->live : ch->restart;
    size_t n = strlen(list);
    snprintf(list + n, sizeof ch->live - n, "%s%s.%s", n ? ", " : "", section, key);
}

/* Loop thread. Reads the configuration again and applies what can change live. Returns 0, or
 * -1 with the reason in err; then nothing has changed. */
static int reload(struct daemon *d, char *err, size_t errsize)
{
    config_t nc, eff;
    if (load_config(d, &nc, err, errsize))
        return -1;
    /* What will run: the live settings of the file, the others as they are. */
    eff = d->cfg;
    config_copy_live(&eff, &nc);
    char why[400];
    if (config_validate(&eff, why, sizeof why)) {
        snprintf(err, errsize, "%s (with the settings that need a restart unchanged)", why);
        return -1;
    }
    /* The token file is read on every reload, changed or not: that is how tokens rotate. */
    api_auth_t *auth;
    if (load_auth(d, &eff, d->demo.token, &auth, err, errsize))
        return -1;
    struct changes ch = {{0}, {0}};
    config_diff(&d->cfg, &nc, on_change, &ch);
    const unsigned keepalive_was = d->cfg.events_keepalive_ms;
    config_copy_live(&d->cfg, &nc);
    log_set_level(d->cfg.log_level);
    api_set_limits(d->api, d->cfg.max_body_bytes, d->cfg.max_batch, d->cfg.max_query_points,
                   d->cfg.max_scan_points, d->cfg.query_timeout_ms, d->cfg.max_attrs_bytes);
    api_set_max_inflight(d->api, d->cfg.max_inflight_bytes);
    /* Open event streams follow the new bounds from their next message or keep-alive check. */
    api_events_set_limits(d->events, d->cfg.events_max_unsent,
                          events_keepalive(&d->cfg, d->cfg.events_keepalive_ms != keepalive_was));
    if (d->backend.pipe)
        pipeline_set_state_min_ms(d->backend.pipe, d->cfg.events_state_min_ms);
    atomic_store(&d->backend.metrics_max_devices, d->cfg.metrics_max_devices);
    atomic_store(&d->backend.max_ahead_ms, d->cfg.max_ahead_ms);
    /* Writes refuse by it from the next one, sweeps delete by it from their next step. In the
     * order that never has writes accept by a longer retention than the sweeps delete by (a
     * reading acknowledged, then deleted at once): a longer one (0: the longest) goes to the
     * sweeps first, a shorter one to the writes first. */
    const int64_t ret = d->cfg.retention_ms, was = atomic_load(&d->backend.retention_ms);
    const int longer = ret <= 0 || (was > 0 && ret > was);
    /* Turned on from 0: the saved retention clock is read before the writes below read the
     * clock (store_retention_now), so none races its seed (it is read once a process). */
    if (ret > 0 && was <= 0)
        store_retention_clock_ready(d->store);
    if (longer)
        store_set_retention(d->store, ret);
    atomic_store(&d->backend.retention_ms, ret);
    if (!longer)
        store_set_retention(d->store, ret);
    api_set_retention(d->api, ret);
    atomic_store(&d->backend.metrics_capped_logged, 0);
    health_set_stall(&d->health, stall_bound_ms(d));
    snapshots_set_keep(d->backend.snaps, d->cfg.snapshots_keep);
    snapsched_set_every(d->backend.sched, d->cfg.snapshot_every_ms);
    quota_set_limits(d->quota, d->cfg.max_devices, d->cfg.max_channels);
    /* Count again from storage: drops what failed writes or racing deletions left behind. */
    if (quota_load(d->quota, d->store))
        log_warn("reload: cannot recount devices and channels; keeping the running counts");
    if (api_set_cors(d->api, d->cfg.cors_origins))
        log_error("reload: cannot apply http.cors_origins (out of memory); the old list stays");
    size_t ntokens = api_auth_count(auth);
    api_set_auth(d->api, auth, d->cfg.metrics_auth);
    if (ntokens)
        log_info("authentication: %zu tokens from %s", ntokens, d->cfg.auth_file);
    else if (d->auth_on)
        log_warn("authentication is off: every client may read, write and delete");
    d->auth_on = ntokens > 0;
    log_info("configuration reloaded; applied: %s", ch.live[0] ? ch.live : "no change");
    if (ch.restart[0])
        log_warn("configuration reloaded; changed, but applied only after a restart: %s",
                 ch.restart);
    return 0;
}

static void on_hup(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping)
        return;
    notify_sendf(&d->notify, "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)vtime_mono_us());
    log_info("SIGHUP: reloading the configuration%s%s", d->config_path ? " from " : "",
             d->config_path ? d->config_path : "");
    char err[512], status[512];
    if (reload(d, err, sizeof err)) {
        log_error("reload rejected, the running configuration is kept: %s", err);
        notify_sendf(&d->notify, "READY=1\nSTATUS=reload rejected: %s", err);
        return;
    }
    status_text(d, status, sizeof status);
    notify_sendf(&d->notify, "READY=1\nSTATUS=%s", status);
}

/* The closing line of a stop that lost nothing. Its WAL kept beside vigil.db (a full volume,
 * another process's lock: the storage lines above say which) is said in it too, at warning
 * level: it is the line an operator (or systemctl status) reads last, and README says a clean
 * stop leaves vigil.db whole to copy (session 68's review: "stopped cleanly" alone followed
 * the storage's warning). Nothing is lost: the next start reads the WAL. */
static void stopped_cleanly(const struct daemon *d)
{
    if (d->wal_kept)
        log_warn("stopped cleanly, with the WAL kept beside %s/vigil.db (said above): copy "
                 "vigil.db only after a later stop that says nothing of it, or take a snapshot",
                 d->data_path);
    else
        log_info("stopped cleanly");
}

/* vigild --restore FILE: the snapshot becomes the data directory's database (store_restore),
 * for the next start. Returns the exit code. */
static int restore_snapshot(const char *data_dir, const char *file, int accept_damaged)
{
    char err[5000];
    int64_t bytes = 0, damaged = 0;
    if (store_restore(data_dir, file, accept_damaged, &bytes, &damaged, err, sizeof err)) {
        cli_error(0, "restore refused: %s", err);
        return 1;
    }
    /* --accept-damaged: each chunk named, on stderr, before the line that says it is done. */
    if (damaged > 0)
        fprintf(stderr,
                "vigild: warning: %lld damaged readings chunk%s restored as %s (not served, left "
                "out of training; a write into one's span replaces it): %s\n",
                (long long)damaged, damaged == 1 ? "" : "s", damaged == 1 ? "it is" : "they are",
                err);
    printf("restored %s into %s/vigil.db (%lld bytes); start vigild to serve it\n", file, data_dir,
           (long long)bytes);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"data-dir", required_argument, NULL, 'd'},
                                             {"http", required_argument, NULL, 'H'},
                                             {"stream", required_argument, NULL, 'S'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"auth-file", required_argument, NULL, 'A'},
                                             {"check-config", no_argument, NULL, 'C'},
                                             {"restore", required_argument, NULL, 'R'},
                                             {"accept-damaged", no_argument, NULL, 'a'},
                                             {"demo", no_argument, NULL, 'D'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct daemon d;
    memset(&d, 0, sizeof d);
    config_default(&d.cfg);
    int check_only = 0, demo = 0, early = 0; /* early: a stop signalled during the start */
    int accept_damaged = 0;                  /* --accept-damaged, with --restore */
    char ver[128]; /* build_describe's: the version, commit and build type */
    const char *restore = NULL;
    /* Flags are applied after the file, so collect them first. */
    d.ov[OV_DATA_DIR] = (struct override){NULL, "daemon", "data_dir", "--data-dir", 'd'};
    d.ov[OV_HTTP] = (struct override){NULL, "http", "listen", "--http", 'H'};
    d.ov[OV_STREAM] = (struct override){NULL, "stream", "listen", "--stream", 'S'};
    d.ov[OV_LOG_LEVEL] = (struct override){NULL, "daemon", "log_level", "--log-level", 'l'};
    d.ov[OV_AUTH_FILE] = (struct override){NULL, "http", "auth_file", "--auth-file", 'A'};
    int opt;
    char shortopt[3]; /* bad_option's "-x" */
    const char *optstring = ":c:d:H:S:l:A:CR:DVh";
    /* getopt's own messages would carry no journal priority: vigild words them (cli_error).
     * The leading ':' tells a missing value (':') from an unknown option ('?'). */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (optarg != NULL) { /* a flag with a value: the long name says which */
            const struct option *o = longopts;
            while (o->name != NULL && o->val != opt)
                o++;
            char flag[32];
            snprintf(flag, sizeof flag, "--%s", o->name ? o->name : "?");
            if (cli_flag_value_check(flag, optarg))
                return 2;
        }
        size_t i = 0;
        while (i < OV_COUNT && d.ov[i].opt != opt)
            i++;
        if (i < OV_COUNT) { /* a flag that overrides a setting */
            d.ov[i].value = optarg;
            continue;
        }
        switch (opt) {
        case 'c':
            d.config_path = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'R':
            restore = optarg;
            break;
        case 'a': /* long only: --accept-damaged */
            accept_damaged = 1;
            break;
        case 'D':
            demo = 1;
            break;
        case 'V':
            build_describe(ver, sizeof ver);
            printf("vigild %s\n", ver);
            return 0;
        case 'h':
            cli_usage(stdout);
            return 0;
        case ':': /* optopt: the short option's letter; a long one is argv[optind - 1] */
            cli_error(1, "%s needs a value",
                      cli_bad_option(argv, optind, optopt, optstring, shortopt));
            return 2;
        default: {
            char list[300];
            const char *word = argv[optind - 1];
            const struct option *o = longopts;
            while (o->name != NULL && (optopt == 0 || o->val != optopt))
                o++;
            if (optopt == 0 && cli_ambiguous(word, longopts, list, sizeof list))
                cli_error(1, "ambiguous option '%s': %s", word, list);
            else if (o->name != NULL && strncmp(word, "--", 2) == 0 && strchr(word, '='))
                cli_error(1, "'--%s' takes no value: '%s'", o->name, word); /* --demo=1 */
            else
                cli_error(1, "unknown option '%s'",
                          cli_bad_option(argv, optind, optopt, optstring, shortopt));
            return 2;
        }
        }
    }
    if (optind < argc) {
        cli_error(1, "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (accept_damaged && restore == NULL) {
        cli_error(1, "--accept-damaged goes with --restore FILE");
        return 2;
    }
    char err[512];
    /* Under systemd these stop the service: give them the journal's error priority. */
    if (load_config(&d, &d.cfg, err, sizeof err)) {
        cli_error(0, "%s", err);
        return 1;
    }
    if (restore)
        return restore_snapshot(d.cfg.data_dir, restore, accept_damaged);
    /* --demo without its feed would run a vigild nothing feeds, its reason one log line among
     * the start's: stop here (--check-config too), before the data directory is created. */
    if (demo && strcmp(d.cfg.stream_listen, "off") == 0) {
        cli_error(0, "--demo needs the stream socket, and stream.listen is off (give --stream "
                     "ADDR:PORT, or set [stream] listen)");
        return 1;
    }
    if (demo) {
        char exe[PATH_MAX];
        if (demo_locate(exe, sizeof exe, err, sizeof err)) {
            cli_error(0, "--demo: %s", err);
            return 1;
        }
    }
    /* Read the tokens before anything listens: a server never runs open by mistake. The
     * certificate and key too: a bad one stops the start, naming the file. */
    api_auth_t *auth = NULL;
    api_tls_t *tls = NULL;
    /* With tokens, --demo's feed gets a write token of its own (kept across reloads). */
    if (demo && d.cfg.auth_file[0] && demo_mint_token(&d.demo))
        return 1;
    if (load_auth(&d, &d.cfg, d.demo.token, &auth, err, sizeof err) ||
        load_tls(&d.cfg, &tls, err, sizeof err)) {
        cli_error(0, "%s", err);
        api_auth_destroy(auth);
        return 1;
    }
    /* The data folder absolute (read66b: a relative one named as written was relative to a
     * working directory the log does not say; under systemd, /): the store, the serving line,
     * and --check's answers (task ops68) name it so. */
    if ((size_t)path_absolute(d.data_path, sizeof d.data_path, d.cfg.data_dir) >=
        sizeof d.data_path)
        snprintf(d.data_path, sizeof d.data_path, "%s", d.cfg.data_dir);
    if (check_only) {
        api_auth_destroy(auth);
        api_tls_destroy(tls);
        /* What store_open would fail on, found before a start does (nothing is created). */
        char note[600]; /* the held lock's; err then has what a restart would fail on */
        if (datadir_check(d.data_path, err, sizeof err, note, sizeof note)) {
            cli_error(0, "data directory: %s", err);
            return 1;
        }
        printf("configuration ok%s%s\n", note[0] ? "; " : "", note);
        if (err[0]) /* a warning, exit 0: `systemctl reload` runs this beside the vigild */
            fprintf(stderr, "%svigild: warning: a restart would fail: %s\n",
                    log_journal_prefix(LOG_LEVEL_WARN), err);
        return 0;
    }
    /* From here a SIGHUP, SIGTERM or SIGINT no longer ends vigild by its default action: the
     * start notes it, and once the loop's handlers are in ignores the SIGHUP (logged) or stops
     * cleanly before serving (vigild__start_signals_end). */
    vigild__start_signals();
    log_set_level(d.cfg.log_level);
    if (notify_init(&d.notify, err, sizeof err))
        log_warn("systemd notification disabled: %s", err);
    /* Opening the database and restoring every detector (catching up on the readings stored
     * after its save) can outlast TimeoutStartSec=: keep extending it while we work. */
    notify_extend_start(&d.notify, "starting: opening the database");

    fdlimit_raise(&d.cfg);
    store_opts_t so;
    store_opts_default(&so);
    so.dir = d.data_path;
    so.queue_max = d.cfg.queue_max_readings;
    so.max_batch_delay_ms = d.cfg.max_batch_delay_ms;
    so.sync_full = d.cfg.sync_full;
    so.cache_mb = d.cfg.cache_mb;
    so.readers = d.cfg.readers;
    so.writer_nice = d.cfg.ingest_nice;
    so.retention_ms = d.cfg.retention_ms;
    int rc = store_open(&d.store, &so, err, sizeof err);
    if (rc) {
        /* SQLITE_BUSY past the 10 s busy timeout: the holder is another process (vigild's
         * own second start is refused before, by vigil.lock). */
        log_error("cannot open the database in %s: %s%s", d.data_path, err,
                  rc == ERR_LOCKED ? "; the database is locked by another process (an sqlite3 "
                                     "shell, a backup tool) holding a write transaction on it: "
                                     "start vigild again once it has let go"
                                   : "");
        api_auth_destroy(auth);
        api_tls_destroy(tls);
        notify_deinit(&d.notify); /* the start extension's thread, the socket */
        return 1;
    }
    uv_loop_init(&d.loop);
    d.backend.store = d.store;
    health_init(&d.health, d.store, stall_bound_ms(&d));
    d.backend.health = &d.health;
    d.backend.retention_ms = d.cfg.retention_ms;
    d.backend.max_ahead_ms = d.cfg.max_ahead_ms;
    atomic_store(&d.backend.metrics_max_devices, d.cfg.metrics_max_devices);
    rc = quota_create(&d.quota, d.cfg.max_devices, d.cfg.max_channels)
             ? ERR_NOMEM
             : quota_load(d.quota, d.store);
    if (rc)
        log_error("cannot count the stored devices and channels: %s", err_str(rc));
    else if ((rc = snapshots_create(&d.backend.snaps, d.store, d.cfg.data_dir,
                                    d.cfg.snapshots_keep)) != 0)
        log_error("cannot prepare snapshots: %s", err_str(rc));
    else
        rc = events_start(&d);
    if (rc) { /* what was set up goes, in teardown's order (the loop has no handle yet) */
        api_auth_destroy(auth);
        api_tls_destroy(tls);
        vigild__teardown(&d, 0);
        return 1;
    }
    d.backend.quota = d.quota;
    if (d.cfg.model_enabled) {
        pipeline_opts_t po;
        pipeline_opts_default(&po);
        po.workers = d.cfg.model_workers;
        po.train_threads = d.cfg.model_train_threads;
        po.train_nice = d.cfg.model_train_nice;
        po.shard_nice = d.cfg.ingest_nice;
        po.versions = d.cfg.model_versions;
        po.predictions = d.cfg.model_predictions;
        po.group_rows = d.cfg.model_group_rows;
        po.det.warmup = d.cfg.model_warmup;
        po.det.retrain_every = d.cfg.model_retrain_every;
        po.det.retrain_seconds = d.cfg.model_retrain_seconds;
        po.det.history = d.cfg.model_train_window;
        po.det.n_hidden = d.cfg.model_hidden;
        po.det.serving_f16 = d.cfg.model_serving_f16;
        po.det.model_kind = d.cfg.model_kind;
        po.det.lstm_min_rows = d.cfg.model_lstm_min_rows;
        po.det.trip_level = d.cfg.model_trip_level;
        po.hub = d.events;
        po.state_min_ms = d.cfg.events_state_min_ms;
        po.limit_check_every = d.cfg.limit_check_every;
        po.limit_horizon = d.cfg.limit_horizon;
        po.continue_within = d.cfg.event_continue_within;
        if (po.det.history < po.det.warmup)
            po.det.history = po.det.warmup;
        /* The pipeline runs model/ on its own shard and training threads: OpenBLAS's threads
         * would only oversubscribe the cores, and after each call they spin in sched_yield
         * (measured: a fifth of vigild's CPU at 1k devices serving their own LSTMs when
         * OPENBLAS_NUM_THREADS was not set; model/model.h asks callers for this). */
        openblas_set_num_threads(1);
        rc = pipeline_create(&d.backend.pipe, &po, d.store);
        if (rc) {
            log_error("cannot start the model pipeline: %s", err_str(rc));
            api_auth_destroy(auth);
            api_tls_destroy(tls);
            /* Also the loop and the notifier, which this path used to keep. */
            vigild__teardown(&d, 0);
            return 1;
        }
        /* Every committed batch goes to the detectors, in commit order. */
        store_set_commit_hook(d.store, on_commit, d.backend.pipe);
        if (vigild__start_stop() == 0) { /* a stop signalled by now needs no restore */
            notify_extend_start(&d.notify,
                                "starting: restoring detectors, catching up on readings");
            pipeline_restore(d.backend.pipe);
            d.restored = 1;
        }
    }
    /* A client that goes away while we answer it must not kill the daemon: writes to a closed
     * socket (stream acknowledgements, libmicrohttpd) fail with EPIPE instead of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    api_backend_t be;
    backend_init(&be, &d.backend);
    api_opts_t ao;
    api_opts_default(&ao);
    ao.listen = d.cfg.http_listen;
    ao.threads = d.cfg.http_threads;
    ao.io_nice = d.cfg.ingest_nice;
    ao.rt_priority = d.cfg.http_rt_priority;
    ao.max_body = d.cfg.max_body_bytes;
    ao.max_inflight = d.cfg.max_inflight_bytes;
    ao.max_batch = d.cfg.max_batch;
    ao.max_conns = d.cfg.max_connections;
    ao.max_conns_ip = d.cfg.max_connections_per_ip;
    ao.max_header = d.cfg.max_header_bytes;
    ao.max_lines = d.cfg.max_header_lines;
    ao.max_cookies = d.cfg.max_cookies;
    ao.timeout_s = d.cfg.http_timeout_s;
    ao.request_timeout_s = d.cfg.http_request_timeout_s;
    ao.dead_peer_s = d.cfg.http_dead_peer_s;
    ao.max_query_limit = d.cfg.max_query_points;
    ao.max_scan_points = d.cfg.max_scan_points;
    ao.max_attrs = d.cfg.max_attrs_bytes;
    ao.query_timeout_ms = d.cfg.query_timeout_ms;
    ao.device_tag = d.cfg.device_tag;
    ao.retention_ms = d.cfg.retention_ms;
    ao.metrics_auth = d.cfg.metrics_auth;
    ao.events = d.events;
    if (auth)
        log_info("authentication: %zu tokens from %s", api_auth_count(auth), d.cfg.auth_file);
    if (strcmp(d.cfg.stream_listen, "off") != 0) {
        stream_opts_t sto = {.listen = d.cfg.stream_listen,
                             .max_line = d.cfg.max_line_bytes,
                             .max_conns = d.cfg.stream_max_connections,
                             .dead_peer_s = d.cfg.stream_dead_peer_s,
                             .device_tag = d.cfg.device_tag,
                             .admit = be.admit,
                             .admit_ctx = be.ctx,
                             .token_role = stream_token_role,
                             .token_ctx = &d};
        rc = stream_start(&d.stream, &d.loop, &sto, d.store, NULL, err, sizeof err);
        if (rc) {
            log_error("%s", err);
            api_auth_destroy(auth);
            api_tls_destroy(tls);
            goto fail;
        }
        d.backend.stream = d.stream;
    }
    ao.cors = d.cfg.cors_origins;
    ao.commit = build_commit(); /* static strings */
    ao.build_type = build_type();
    ao.tls = tls;   /* api_start owns it from here */
    ao.auth = auth; /* and this */
    d.auth_on = auth != NULL;
    /* The loop's signal handlers go in before HTTP answers: a SIGTERM or SIGINT that comes as
     * soon as /healthz does (a test, an impatient operator) is then a clean stop once the loop
     * runs, never the default action's abrupt end. */
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_start(&d.sigterm, vigild__on_stop_signal, SIGTERM);
    uv_signal_start(&d.sigint, vigild__on_stop_signal, SIGINT);
    uv_signal_start(&d.sighup, on_hup, SIGHUP);
    d.signals_on = 1;
    early = vigild__start_signals_end(&d);
    if (early) { /* before HTTP: nothing was acknowledged; what was restored is saved */
        api_auth_destroy(auth);
        api_tls_destroy(tls);
        /* A stop, not a failed start: the pipeline's stop lines (the training waited for, the
         * due trainings not run, the "restart" ends left) say "at the stop", as stop.c's do. */
        pipeline_set_started(d.backend.pipe);
        goto fail;
    }
    rc = api_start(&d.api, &ao, &be, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        goto fail;
    }
    /* The stream counts its ingest in the API's metrics; connect them now both exist. */
    if (d.stream)
        stream_set_api(d.stream, d.api);
    rc =
        snapsched_start(&d.backend.sched, d.backend.snaps, d.backend.pipe, d.cfg.snapshot_every_ms);
    if (rc) {
        log_error("cannot start the snapshot schedule: %s", err_str(rc));
        goto fail;
    }

    /* With the stream off, say so ("stream on off (port 0)" read as a port bound to nothing). */
    char stream_at[160] = "stream off";
    if (d.stream)
        snprintf(stream_at, sizeof stream_at, "stream on %s (port %u)", d.cfg.stream_listen,
                 stream_port(d.stream));
    build_describe(ver, sizeof ver);
    log_info("vigild %s: data in %s, HTTP%s on %s (port %u), %s", ver, d.data_path,
             d.cfg.tls_cert[0] ? "S" : "", d.cfg.http_listen, api_port(d.api), stream_at);
    /* Listening, restored, signals handled: tell systemd, then keep it informed. */
    char status[512];
    status_text(&d, status, sizeof status);
    notify_extend_stop(&d.notify);
    health_progress_now(&d.health); /* the stall bound counts from READY, as before */
    notify_sendf(&d.notify, "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
    notify_start(&d.notify, &d.loop, STATUS_PERIOD_MS, status_text, writer_healthy, &d);
    uv_timer_init(&d.loop, &d.health_timer);
    d.health_timer.data = &d;
    uv_timer_start(&d.health_timer, on_health_tick, HEALTH_TICK_MS, HEALTH_TICK_MS);
    d.health_timer_on = 1;
    if (d.backend.pipe || d.stream) {
        uv_timer_init(&d.loop, &d.maint_timer);
        d.maint_timer.data = &d;
        uv_timer_start(&d.maint_timer, on_maint_tick, MAINT_TICK_MS, MAINT_TICK_MS);
        d.maint_timer_on = 1;
    }

    if (demo) { /* the stream is on and the feed was there (checked before the start) */
        demo_limits(&d.demo, &be);
        demo_start(&d.demo, &d.loop, stream_port(d.stream), d.auth_on, d.data_path);
    }

    /* The loop parses the stream's readings: a bulk thread like the writer and the shards. Set
     * last, so no thread it creates before this inherits the value. */
    thread_nice(d.cfg.ingest_nice);
    pipeline_set_started(d.backend.pipe); /* NULL (no pipeline): nothing */
    uv_run(&d.loop, UV_RUN_DEFAULT);

    if (vigild__teardown(&d, 1) != 0)
        return 1; /* systemd records a failed stop; teardown logged what was lost */
    stopped_cleanly(&d);
    return 0;

fail: /* a failed start, or a stop signalled during it (early) */
    api_stop(d.api);
    /* Every handle closed first, then one run of the loop to finish the closes: running it while
     * the stream still listens would never return (a failed HTTP listen used to hang here). */
    vigild__signals_close(&d);
    if (d.stream)
        stream_shutdown(d.stream, NULL, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (vigild__teardown(&d, early != 0) != 0 || !early)
        return 1;
    stopped_cleanly(&d);
    return 0;
}
