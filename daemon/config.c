/* daemon/config.c: the settings table, INI loading (inih) and validation.
 *
 * One table lists every setting with its section, key, kind and bounds, so the file parser,
 * the command-line overrides and the documentation in etc/vigild.conf agree. The parsers of
 * numbers, durations and listen addresses are in config_values.c (config_int.h). Loop thread. */
#include "config.h"
#include "config_int.h"
#include "api.h"
#include "detector.h"
#include "err.h"
#include "vtime.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind {
    K_STR,
    K_INT,
    K_SIZE,
    K_BOOL_SYNC,
    K_LEVEL,
    K_LISTEN,
    K_BOOL,
    K_DURATION,
    K_TIMEOUT, /* K_DURATION's form, ms too ("10ms"): 0 (off) or [min, max] ms */
    K_PRECISION,
    K_MODEL_KIND,
    K_AUTO_INT, /* "auto" (-1) or an integer in [min, max] */
    K_UNIT      /* a decimal number from 0 to 1 (a float): "0", "0.8", "1" */
};

struct setting {
    const char *section, *key;
    enum kind kind;
    size_t off, size; /* field offset; buffer size for strings */
    long long min, max;
};

#define S(sec, key, kind, field, min, max)                                                         \
    {                                                                                              \
        sec, key, kind, offsetof(config_t, field), sizeof(((config_t *)0)->field), min, max        \
    }

static const struct setting settings[] = {
    S("daemon", "data_dir", K_STR, data_dir, 1, 0),
    S("daemon", "log_level", K_LEVEL, log_level, 0, 0),
    S("daemon", "ingest_nice", K_INT, ingest_nice, 0, 19),
    S("http", "listen", K_LISTEN, http_listen, 0, 0),
    S("http", "threads", K_INT, http_threads, 1, 64),
    S("http", "rt_priority", K_INT, http_rt_priority, 0, 99),
    S("http", "max_body_bytes", K_SIZE, max_body_bytes, 1024, 1LL << 30),
    S("http", "max_inflight_bytes", K_SIZE, max_inflight_bytes, 0, 1LL << 40),
    S("http", "max_batch", K_SIZE, max_batch, 1, 10000000),
    S("http", "max_connections", K_INT, max_connections, 1, 100000),
    S("http", "max_connections_per_ip", K_INT, max_connections_per_ip, 0, 100000),
    S("http", "max_header_bytes", K_SIZE, max_header_bytes, 4096, 1 << 20),
    S("http", "max_header_lines", K_INT, max_header_lines, 1, 10000),
    S("http", "max_cookies", K_INT, max_cookies, 0, 10000),
    S("http", "timeout_s", K_INT, http_timeout_s, 1, 3600),
    /* a request's body, from the end of its head, whole: 0 (off) or 1 s to a day */
    S("http", "request_timeout_s", K_INT, http_request_timeout_s, 0, 86400),
    S("http", "dead_peer_timeout_s", K_INT, http_dead_peer_s, 0, 86400),
    S("http", "health_stall_s", K_INT, health_stall_s, 1, 86400),
    S("http", "max_query_points", K_SIZE, max_query_points, 1, 10000000),
    S("http", "max_scan_points", K_SIZE, max_scan_points, 1, 1000000000),
    /* the most one /query runs (api/influxql.c), 1 ms to 1 day, or 0 (off) */
    S("http", "query_timeout", K_TIMEOUT, query_timeout_ms, 1, 86400000),
    S("http", "auth_file", K_STR, auth_file, 0, 0),
    S("http", "metrics_auth", K_BOOL, metrics_auth, 0, 0),
    S("http", "metrics_max_devices", K_SIZE, metrics_max_devices, 0, 100000000),
    S("http", "tls_cert", K_STR, tls_cert, 0, 0),
    S("http", "tls_key", K_STR, tls_key, 0, 0),
    S("http", "cors_origins", K_STR, cors_origins, 0, 0),
    S("http", "max_event_streams", K_INT, max_event_streams, 1, 100000),
    S("http", "events_keepalive_ms", K_INT, events_keepalive_ms, 100, 3600000),
    S("http", "events_ring", K_SIZE, events_ring, 1, 1000000),
    S("http", "events_max_unsent", K_SIZE, events_max_unsent, 1024, 1LL << 30),
    S("http", "events_state_min_ms", K_INT, events_state_min_ms, 0, 3600000),
    /* Limit alarms (daemon/pipeline_limits.c): the forecast check's period in readings and its
     * look-ahead in steps (0: no forecast alarms); the forecast route's horizon bounds it */
    S("pipeline", "limit_check_every", K_INT, limit_check_every, 1, 1000000),
    S("pipeline", "limit_horizon", K_INT, limit_horizon, 0, 10000),
    /* Event chains (docs/reliability.md "One fault, one chain"): auto, 0 (none) or readings */
    S("pipeline", "event_continue_within", K_AUTO_INT, event_continue_within, 0, 1000000),
    S("stream", "listen", K_LISTEN, stream_listen, 0, 0),
    S("stream", "max_line_bytes", K_SIZE, max_line_bytes, 256, 16 << 20),
    S("stream", "max_connections", K_INT, stream_max_connections, 1, 100000),
    S("stream", "dead_peer_timeout_s", K_INT, stream_dead_peer_s, 0, 86400),
    S("influx", "device_tag", K_STR, device_tag, 1, 0),
    S("storage", "sync", K_BOOL_SYNC, sync_full, 0, 0),
    S("storage", "queue_max_readings", K_SIZE, queue_max_readings, 1000, 1000000000),
    S("storage", "max_batch_delay_ms", K_INT, max_batch_delay_ms, 0, 1000),
    S("storage", "cache_mb", K_INT, cache_mb, 1, 65536),
    S("storage", "readers", K_INT, readers, 1, 64),
    S("storage", "max_devices", K_SIZE, max_devices, 1, 100000000),
    S("storage", "max_channels_per_device", K_SIZE, max_channels, 1, 1000000),
    /* a device's attributes, compact JSON (api/handlers.c); up to http.max_body_bytes' maximum */
    S("storage", "max_attrs_bytes", K_SIZE, max_attrs_bytes, 2, 1LL << 30),
    /* A duration in ms, 1 s to 100 years (36500d), or 0 */
    S("storage", "retention", K_DURATION, retention_ms, 1000, 36500LL * 86400000),
    /* A reading stamped further ahead of vigild's clock is refused: a day (the scoring's future
     * bound, beyond any time-zone error and the stamps' catch-up) to 100 years, or 0 (off) */
    S("storage", "max_ahead", K_DURATION, max_ahead_ms, 86400000, 36500LL * 86400000),
    /* snapshots kept in data_dir/snapshots (daemon/snapshot.c); 0: all */
    S("storage", "snapshots_keep", K_INT, snapshots_keep, 0, 100000),
    /* A scheduled snapshot this often (daemon/snapsched.c), 1 s to 100 years, or 0 (off). 1 s,
     * not an hour, so a test can see two; production values are hours (README). */
    S("storage", "snapshot_every", K_DURATION, snapshot_every_ms, 1000, 36500LL * 86400000),
    S("model", "enabled", K_BOOL, model_enabled, 0, 0),
    S("model", "workers", K_INT, model_workers, 1, 64),
    S("model", "train_threads", K_INT, model_train_threads, 1, 64),
    S("model", "train_nice", K_INT, model_train_nice, 0, 19),
    S("model", "warmup", K_INT, model_warmup, 10, 10000000),
    S("model", "retrain_every", K_INT, model_retrain_every, 0, 100000000),
    S("model", "retrain_seconds", K_INT, model_retrain_seconds, 0, 100000000),
    S("model", "train_window", K_INT, model_train_window, 16, 10000000),
    S("model", "hidden", K_INT, model_hidden, 1, 1024),
    S("model", "versions", K_INT, model_versions, 1, 1000),
    S("model", "predictions", K_SIZE, model_predictions, 1, 1000000),
    S("model", "group_rows", K_SIZE, model_group_rows, 0, 100000000),
    /* float16 (1) or float32 (0) */
    S("model", "serving_precision", K_PRECISION, model_serving_f16, 0, 0),
    /* auto, lstm or linear (enum detector_model_kind) */
    S("model", "kind", K_MODEL_KIND, model_kind, 0, 0),
    /* auto (-1: as many training values as the LSTM has parameters), 0 (an LSTM at every
     * training) or N training rows (struct detector_config's lstm_min_rows and its bounds) */
    S("model", "lstm_min_rows", K_AUTO_INT, model_lstm_min_rows, 0, 10000000),
    /* detector_config.trip_level: a reading scored at least this is an anomaly alone; 0 off */
    S("model", "trip_level", K_UNIT, model_trip_level, 0, 1),
};

void config_default(config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "./vigil-data");
    c->log_level = LOG_LEVEL_INFO;
    c->ingest_nice = 5;
    snprintf(c->http_listen, sizeof c->http_listen, "127.0.0.1:8470");
    c->http_threads = 4;
    c->max_body_bytes = 32u << 20;
    c->max_inflight_bytes = 512u << 20;
    c->max_batch = 100000;
    c->max_connections = 1024;
    c->max_connections_per_ip = 256;
    c->max_header_bytes = 32768;
    c->max_header_lines = 100;
    c->max_cookies = 300;
    c->http_timeout_s = 60;
    c->http_request_timeout_s = 300;
    c->http_dead_peer_s = c->stream_dead_peer_s = 60;
    c->health_stall_s = 60;
    c->max_query_points = 100000;
    c->metrics_max_devices = 1000;
    api_opts_t ao;
    api_opts_default(&ao);
    c->max_scan_points = ao.max_scan_points;
    c->max_attrs_bytes = ao.max_attrs;
    c->query_timeout_ms = ao.query_timeout_ms;
    api_events_opts_t eo;
    api_events_opts_default(&eo);
    c->max_event_streams = eo.max_streams;
    c->events_keepalive_ms = eo.keepalive_ms;
    c->events_ring = eo.ring;
    c->events_max_unsent = eo.max_unsent;
    c->events_state_min_ms = 1000; /* pipeline_opts_default's */
    c->limit_check_every = 10;     /* pipeline_opts_default's */
    c->limit_horizon = 60;
    c->event_continue_within = -1; /* auto: pipeline_opts_default's */
    snprintf(c->stream_listen, sizeof c->stream_listen, "127.0.0.1:8471");
    c->max_line_bytes = 65536;
    c->stream_max_connections = 1024;
    snprintf(c->device_tag, sizeof c->device_tag, "device");
    c->sync_full = 1;
    c->queue_max_readings = 1000000;
    c->max_batch_delay_ms = 2;
    c->cache_mb = 64;
    c->readers = 4;
    c->max_devices = 100000;
    c->max_channels = 4096;
    c->retention_ms = 0;        /* keep forever */
    c->max_ahead_ms = 86400000; /* a day: a clock's glitch would pin the device's newest reading */
    c->snapshots_keep = 5;
    c->snapshot_every_ms = 0; /* no scheduled snapshots */
    struct detector_config dc;
    detector_config_default(&dc);
    c->model_enabled = 1;
    c->model_workers = 1;
    c->model_train_threads = 1;
    c->model_train_nice = 10;
    c->model_warmup = dc.warmup;
    c->model_retrain_every = dc.retrain_every;
    c->model_retrain_seconds = dc.retrain_seconds;
    c->model_train_window = dc.history;
    c->model_hidden = dc.n_hidden;
    c->model_versions = 10;
    c->model_predictions = 2000; /* pipeline_opts_default's */
    c->model_group_rows = 8000;  /* pipeline_opts_default's */
    c->model_serving_f16 = dc.serving_f16;
    c->model_kind = dc.model_kind;
    c->model_lstm_min_rows = dc.lstm_min_rows;
    c->model_trip_level = dc.trip_level;
}

#define NSETTINGS (sizeof settings / sizeof settings[0])

static int is_known_section(const char *name, size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].section) == n && memcmp(settings[i].section, name, n) == 0)
            return 1;
    return 0;
}

/* The index of section.key in settings, or -1. */
static int find_setting(const char *section, const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
            return (int)i;
    return -1;
}

/* Copies the len bytes of src to dst (size bytes, at least 5) for a message, a control
 * character or a byte above 0x7f written as \xHH, so that a key or section name with one
 * ("thr<TAB>eads", an ESC, a C1 control, invalid UTF-8) is shown, not played, in a terminal or
 * the journal; cut short if dst is full. */
static void printable(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 <= size; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(dst + n, size - n, "\\x%02x", ch);
        else
            dst[n++] = (char)ch;
    }
    dst[n] = '\0';
}

/* "unknown key 'KEY' in section [SECTION]" in err, and when KEY is a setting of other sections,
 * which ("retention" under [http]: "(a key of [storage])"), so a key under the wrong heading
 * is told from a misspelt one. */
static void unknown_key(const char *section, const char *key, char *err, size_t errsize)
{
    char shown[96];
    printable(shown, sizeof shown, key, strlen(key));
    size_t n = (size_t)snprintf(err, errsize, "unknown key '%s' in section [%s]", shown, section);
    int found = 0;
    for (size_t i = 0; i < NSETTINGS && n < errsize; i++)
        if (strcmp(settings[i].key, key) == 0)
            n += (size_t)snprintf(err + n, errsize - n, "%s[%s]", found++ ? " or " : " (a key of ",
                                  settings[i].section);
    if (found && n < errsize)
        snprintf(err + n, errsize - n, ")");
}

/* The length of the well-formed UTF-8 sequence at p (its first byte 0x80 or above), 2 to 4, or
 * 0: a stray continuation byte, a sequence cut short, an overlong form, a surrogate or a code
 * point above U+10FFFF (RFC 3629; the table of the Unicode standard's section 3.9). */
static size_t utf8_len(const unsigned char *p)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's bounds */
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        if (p[0] == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (p[0] == 0xed)
            hi = 0x9f; /* the surrogates U+D800..U+DFFF */
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        if (p[0] == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (p[0] == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return len;
}

/* A value holds no control character (below 0x20, 0x7f, or U+0080..U+009F) and is valid
 * UTF-8: none of the settings takes one, and inih passes on whatever is inside a value
 * ("127.0.0.1:8470<TAB>x", a stray CR, an ESC, a C1 control such as U+0085 NEL, bytes that are
 * not UTF-8); it strips the blanks (tab, CR, ...) around it, so a CRLF line end never reaches
 * here. A tab inside a value is refused too (a path or list with a tab is a paste error). The
 * command-line flags are checked the same way, with their own message, in main.c. Returns 0,
 * or -1 with "SECTION.KEY: reason" in err (the value is not echoed). With tab_ok, a tab
 * passes: the file's reader checks the rest first, before the messages that show the value
 * (a tab shows as a blank there: "127.0.0.1:0<TAB># lo" is named for its '#'). */
static int value_control_bad(const char *section, const char *key, const char *value, int tab_ok,
                             char *err, size_t errsize)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p < 0x20 && !(tab_ok && *p == '\t')) || *p == 0x7f) {
            snprintf(err, errsize, "%s.%s: the value has a control character (0x%02x%s)", section,
                     key, *p, *p == '\t' ? ", a tab" : "");
            return -1;
        }
        if (*p < 0x80)
            continue;
        size_t len = utf8_len(p);
        if (len == 0) {
            snprintf(err, errsize,
                     "%s.%s: the value is not valid UTF-8 (byte 0x%02x at offset %zu)", section,
                     key, *p, (size_t)(p - (const unsigned char *)value));
            return -1;
        }
        if (p[0] == 0xc2 && p[1] < 0xa0) { /* U+0080..U+009F, the C1 controls */
            snprintf(err, errsize, "%s.%s: the value has a control character (U+%04X)", section,
                     key, (unsigned)p[1]);
            return -1;
        }
        p += len - 1;
    }
    return 0;
}

/* Whether an empty value of duration s would turn off what its default keeps on (a guard:
 * storage.max_ahead's future-stamp bound, http.query_timeout's deadline), and then the error in
 * err. Empty is 0 (off) for every duration (config__duration_parse), which is the default of
 * the others (storage.retention, storage.snapshot_every): there it changes nothing. A guard
 * turned off by a line left blank (a template's unset variable) would go unnoticed, so it is
 * turned off only by 0, on purpose. */
static int empty_turns_off(const struct setting *s, char *err, size_t errsize)
{
    config_t d;
    config_default(&d);
    const int64_t def = *(const int64_t *)((const char *)&d + s->off);
    if (def == 0)
        return 0;
    char shown[24];
    vtime_format_duration(def, shown, sizeof shown);
    snprintf(err, errsize,
             "%s.%s: an empty value would turn it off: leave the line out for the default %s, or "
             "write 0 to turn it off on purpose",
             s->section, s->key, shown);
    return 1;
}

int config_set(config_t *c, const char *section, const char *key, const char *value, char *err,
               size_t errsize)
{
    if (*section == '\0') {
        char shown[96];
        printable(shown, sizeof shown, key, strlen(key));
        snprintf(err, errsize, "'%s' comes before any [section]", shown);
        return -1;
    }
    if (!is_known_section(section, strlen(section))) {
        snprintf(err, errsize, "unknown section [%s]", section);
        return -1;
    }
    int i = find_setting(section, key);
    if (i < 0) {
        unknown_key(section, key, err, errsize);
        return -1;
    }
    const struct setting *s = &settings[i];
    if (value_control_bad(section, key, value, 0, err, errsize))
        return -1;
    char *field = (char *)c + s->off;
    switch (s->kind) {
    case K_STR:
    case K_LISTEN:
        if (strlen(value) >= s->size || (s->min > 0 && *value == '\0')) {
            snprintf(err, errsize, "%s.%s: value must be 1 to %zu characters", section, key,
                     s->size - 1);
            return -1;
        }
        if (s->kind == K_LISTEN && !config__listen_ok(value)) {
            snprintf(err, errsize,
                     "%s.%s: '%s' is not ADDR:PORT (a numeric IPv4 address or [IPv6 address], "
                     "a port from 0 to 65535%s)",
                     section, key, value, config__port_hint(value));
            return -1;
        }
        if (s->kind == K_LISTEN && strcasecmp(value, "off") == 0)
            value = "off"; /* the one spelling main.c and config_validate compare with */
        memcpy(field, value, strlen(value) + 1);
        /* The data folder without a trailing '/', once here: the paths joined to it (logs,
         * answers) would show "dir//snapshots". "/" stays "/". */
        for (size_t n = strlen(field); field == c->data_dir && n > 1 && field[n - 1] == '/'; n--)
            field[n - 1] = '\0';
        return 0;
    case K_INT:
    case K_SIZE:
    case K_AUTO_INT: {
        if (s->kind == K_AUTO_INT && strcasecmp(value, "auto") == 0) {
            *(int *)field = -1;
            return 0;
        }
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        size_t digits = config__decimal_len(value, 1);
        if (errno || digits == 0 || value[digits] != '\0' || v < s->min || v > s->max) {
            snprintf(err, errsize, "%s.%s: '%s' is not %san integer from %lld to %lld%s", section,
                     key, value, s->kind == K_AUTO_INT ? "auto or " : "", s->min, s->max,
                     config__number_hint(value));
            return -1;
        }
        if (s->kind == K_SIZE)
            *(size_t *)field = (size_t)v;
        else
            *(int *)field = (int)v;
        return 0;
    }
    case K_BOOL_SYNC:
        if (strcasecmp(value, "full") == 0)
            *(int *)field = 1;
        else if (strcasecmp(value, "normal") == 0)
            *(int *)field = 0;
        else {
            snprintf(err, errsize, "%s.%s: '%s' is not 'full' or 'normal'", section, key, value);
            return -1;
        }
        return 0;
    case K_BOOL:
        if (strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0 ||
            strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0)
            *(int *)field = 1;
        else if (strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0 ||
                 strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0)
            *(int *)field = 0;
        else {
            snprintf(err, errsize, "%s.%s: '%s' is not true or false", section, key, value);
            return -1;
        }
        return 0;
    case K_DURATION:
    case K_TIMEOUT: {
        const int ms_ok = s->kind == K_TIMEOUT;
        if (*value == '\0' && empty_turns_off(s, err, errsize))
            return -1;
        if (config__duration_parse(value, s->min, s->max, ms_ok, (int64_t *)field)) {
            char lo[24], hi[24]; /* each setting's own bounds: max_ahead's are 1d to 36500d */
            vtime_format_duration(s->min, lo, sizeof lo);
            vtime_format_duration(s->max, hi, sizeof hi);
            snprintf(err, errsize,
                     "%s.%s: '%s' is not 0 (off) or a duration from %s to %s: a whole number "
                     "with one unit %s, e.g. %s%s",
                     section, key, value, lo, hi, ms_ok ? "ms, s, m, h or d" : "s, m, h, d or w",
                     ms_ok ? "30s" : "30d", config__number_hint(value));
            return -1;
        }
        return 0;
    }
    case K_PRECISION:
        if (strcasecmp(value, "float16") == 0)
            *(int *)field = 1;
        else if (strcasecmp(value, "float32") == 0)
            *(int *)field = 0;
        else {
            snprintf(err, errsize, "%s.%s: '%s' is not float16 or float32", section, key, value);
            return -1;
        }
        return 0;
    case K_MODEL_KIND: {
        static const char *const kinds[] = {
            [DET_MODEL_AUTO] = "auto", [DET_MODEL_LSTM] = "lstm", [DET_MODEL_LINEAR] = "linear"};
        for (int k = 0; k < (int)(sizeof kinds / sizeof kinds[0]); k++)
            if (strcasecmp(value, kinds[k]) == 0) {
                *(int *)field = k;
                return 0;
            }
        snprintf(err, errsize, "%s.%s: '%s' is not auto, lstm or linear", section, key, value);
        return -1;
    }
    case K_UNIT: {
        /* Digits, at most one '.', nothing else: no sign, exponent, "nan" or "inf" (strtof's),
         * and no leading zeros (as the integers). */
        const size_t ip = strspn(value, "0123456789");
        const size_t fp = value[ip] == '.' ? strspn(value + ip + 1, "0123456789") : 0;
        const size_t len = ip + (value[ip] == '.' ? 1 + fp : 0);
        const int ok = ip + fp > 0 && value[len] == '\0' && !(ip > 1 && value[0] == '0');
        const float v = ok ? strtof(value, NULL) : -1.0f;
        if (!(v >= (float)s->min && v <= (float)s->max)) {
            snprintf(err, errsize, "%s.%s: '%s' is not a number from %lld to %lld (e.g. 0.8)%s",
                     section, key, value, s->min, s->max, config__number_hint(value));
            return -1;
        }
        *(float *)field = v;
        return 0;
    }
    case K_LEVEL: {
        /* log_level_parse takes lower case; the setting, as every word a setting takes, any. */
        char lower[16];
        size_t n = strlen(value);
        for (size_t k = 0; k < n && k + 1 < sizeof lower; k++)
            lower[k] = (char)tolower((unsigned char)value[k]);
        lower[n < sizeof lower ? n : sizeof lower - 1] = '\0';
        if (n >= sizeof lower || log_level_parse(lower, (enum log_level *)field)) {
            snprintf(err, errsize, "%s.%s: '%s' is not debug, info, warn (warning) or error",
                     section, key, value);
            return -1;
        }
        return 0;
    }
    }
    return -1;
}

/* The longest line (before its "\n" or "\r\n") a file may have: room for the longest string
 * setting (http.cors_origins, 1,023 bytes) with its key and a comment. libinih's own limit is
 * 198 (INI_MAX_LINE 200, less the line end and the NUL); Debian's libinih lets ini_max_line
 * raise it at run time (the line buffer is then a variable-length array of that size in
 * ini_parse_stream's frame: 4 KiB on the loop thread's stack). */
#define CONFIG_LINE_MAX 4096
#define FIELD_FITS(f)   (sizeof(((config_t *)0)->f) + 64 <= CONFIG_LINE_MAX) /* 64: key, " = " */
_Static_assert(FIELD_FITS(data_dir) && FIELD_FITS(http_listen) && FIELD_FITS(auth_file) &&
                   FIELD_FITS(tls_cert) && FIELD_FITS(tls_key) && FIELD_FITS(cors_origins) &&
                   FIELD_FITS(stream_listen) && FIELD_FITS(device_tag),
               "a string setting's longest value must fit on a line");

/* Reading the file. inih parses; a reader of ours hands it the lines, so that it sees what
 * inih's handler cannot: an empty section (libinih calls the handler only for keys), a line
 * longer than inih's buffer (it would split it in two, the second part parsed as a line of its
 * own), a NUL byte (the line would end there), a read error (a directory reads as an empty
 * file). The reader counts the lines as inih does (one call per line), so its errors and the
 * handler's carry inih's line numbers. It drops each line's leading blanks: an indented line is
 * a line like another, never the continuation of the previous value that libinih
 * (INI_ALLOW_MULTILINE) would make of it, and no setting takes several lines. */
struct load_ctx {
    config_t *c;
    FILE *f;
    int line;      /* lines handed to inih: its lineno */
    int fail_line; /* the line of reason; 0: no error of ours */
    int read_errno;
    char reason[256];
    int set_on[NSETTINGS]; /* the line setting each one, 0: not in the file */
};

/* A section line (str, blanks before it dropped, its line end kept): '[', a name of one or more
 * characters other than '[', ']', ';' and '#', ']', then blanks and at most a comment (';' or
 * '#'). inih would take "[a ;b]" as a syntax error, "[a;b]" as section "a;b" and drop whatever
 * follows the ']' unseen ("[http] threads = 2" lost the key): each is a malformed section
 * header here, told apart from a well-formed unknown section. Returns 0, or -1 with the reason
 * in reason. */
static int section_line_bad(const char *str, char *reason, size_t size)
{
    const char *name = str + 1;
    size_t n = strcspn(name, "[];#\r\n");
    const char *p = name + n;
    if (*p != ']') {
        if (*p == '\0' || *p == '\r' || *p == '\n')
            snprintf(reason, size, "malformed section header: no closing ']'");
        else
            snprintf(reason, size,
                     "malformed section header: '%c' inside the brackets (write '[name]', a "
                     "comment after it: '[name] ; comment')",
                     *p);
        return -1;
    }
    if (n == 0) {
        snprintf(reason, size, "malformed section header: no name between '[' and ']'");
        return -1;
    }
    const char *rest = p + 1 + strspn(p + 1, " \t\v\f");
    size_t rest_len = strcspn(rest, "\r\n");
    if (rest_len > 0 && *rest != ';' && *rest != '#') {
        snprintf(reason, size,
                 "malformed section header: '%.*s' after ']' (only a comment may follow it; a "
                 "setting goes on a line of its own)",
                 (int)(rest_len > 60 ? 60 : rest_len), rest);
        return -1;
    }
    if (!is_known_section(name, n)) {
        char shown[96];
        printable(shown, sizeof shown, name, n);
        snprintf(reason, size, "unknown section [%s]", shown);
        return -1;
    }
    return 0;
}

/* An ini_reader: a line as fgets reads it, with the checks above. Returns NULL at the end or at
 * the first error (then lc->fail_line and lc->reason, or lc->read_errno, say which). A line is
 * read a byte at a time: fgets cannot tell a NUL byte from the end of what it read (a NUL would
 * cut a line short, hiding its rest, and a long line behind a NUL would escape the length
 * check). A line holds at most num - 2 characters before its "\n" or "\r\n", the last one too. */
static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *lc = stream;
    if (lc->fail_line)
        return NULL;
    size_t n = 0, cap = (size_t)num - 1;
    int ch = EOF;
    errno = 0;
    while (n < cap && (ch = getc(lc->f)) != EOF) {
        str[n++] = (char)ch;
        if (ch == '\n')
            break;
    }
    str[n] = '\0';
    if (ferror(lc->f)) {
        lc->read_errno = errno ? errno : EIO;
        return NULL;
    }
    if (n == 0)
        return NULL; /* the end */
    lc->line++;
    if (memchr(str, '\0', n) != NULL) {
        snprintf(lc->reason, sizeof lc->reason, "a NUL byte in the line");
        lc->fail_line = lc->line;
        return NULL;
    }
    if (n == cap && str[n - 1] != '\n') {
        /* The buffer is full: fine only if what is left is the "\n" of a "\r\n" (or nothing). */
        int next = getc(lc->f);
        if (!(str[n - 1] == '\r' && (next == '\n' || next == EOF))) {
            snprintf(lc->reason, sizeof lc->reason, "line longer than %d characters", num - 2);
            lc->fail_line = lc->line;
            return NULL;
        }
    }
    char *start = str;
    if (lc->line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
        start += 3; /* a UTF-8 byte order mark */
    start += strspn(start, " \t\v\f");
    memmove(str, start, strlen(start) + 1);
    if (str[0] == '[') {
        if (section_line_bad(str, lc->reason, sizeof lc->reason)) {
            lc->fail_line = lc->line;
            return NULL;
        }
    } else if (str[0] != ';' && str[0] != '#') {
        /* inih's key runs to the first '=' or ':' (or a ';' after a blank, its syntax error):
         * ':' is refused as a separator, one form for every line, the shipped file's. A
         * missing '=' before an address would otherwise read as key 'listen 127.0.0.1'. */
        const char *p = str;
        int was_space = 0;
        while (*p != '\0' && *p != '=' && *p != ':' && !(was_space && *p == ';')) {
            was_space = isspace((unsigned char)*p);
            p++;
        }
        if (*p == ':') {
            snprintf(lc->reason, sizeof lc->reason,
                     "a ':' before any '=': write 'key = value', not 'key: value'");
            lc->fail_line = lc->line;
            return NULL;
        }
    }
    return str;
}

/* A '#' after a blank in a value (or first in it) is where an operator meant a comment; inih
 * keeps it in the value, which a string setting took silently ("/var/lib/vigil  # SSD").
 * Returns the '#' or NULL. */
static const char *hash_after_blank(const char *value)
{
    for (const char *p = strchr(value, '#'); p != NULL; p = strchr(p + 1, '#'))
        if (p == value || isspace((unsigned char)p[-1]))
            return p;
    return NULL;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *lc = user;
    if (lc->fail_line)
        return 1; /* report only the first error */
    const char *hash = hash_after_blank(name);
    if (hash != NULL && *section != '\0') {
        /* "retetion_days # keep = 3": inih's key runs to the '=', comment and all. The key is
         * what precedes the comment: unknown, it is named alone; known, the '#' is the fault. */
        int n = (int)(hash - name);
        while (n > 0 && isspace((unsigned char)name[n - 1]))
            n--;
        char key[CONFIG_LINE_MAX + 1]; /* at most a line */
        snprintf(key, sizeof key, "%.*s", n, name);
        int k = find_setting(section, key);
        if (k < 0)
            unknown_key(section, key, lc->reason, sizeof lc->reason);
        else
            snprintf(lc->reason, sizeof lc->reason,
                     "%s.%s: a '#' after a blank before the '=': a '#' comment goes on a line of "
                     "its own (or write ' ; comment' after the value)",
                     settings[k].section, settings[k].key);
        lc->fail_line = lc->line;
        return 0;
    }
    int i = find_setting(section, name);
    if (i >= 0 && lc->set_on[i]) {
        snprintf(lc->reason, sizeof lc->reason, "%s.%s is set twice (first on line %d)", section,
                 name, lc->set_on[i]);
        lc->fail_line = lc->line;
        return 0;
    }
    /* Before the quote and '#' checks, whose messages show the value; config_set refuses a
     * tab. */
    if (i >= 0 && value_control_bad(section, name, value, 1, lc->reason, sizeof lc->reason)) {
        lc->fail_line = lc->line;
        return 0;
    }
    /* inih keeps quotes: data_dir = "/var/lib/vigil" was the relative directory '"' and its
     * subdirectories, created under the working directory. A flag's value stays literal. */
    size_t n = strlen(value);
    if (i >= 0 && n >= 2 && (*value == '"' || *value == '\'') && value[n - 1] == *value) {
        snprintf(lc->reason, sizeof lc->reason,
                 "%s.%s: %s is in quotes: write the value without them (they would be part of it)",
                 section, name, value);
        lc->fail_line = lc->line;
        return 0;
    }
    if (i >= 0 && hash_after_blank(value) != NULL) {
        snprintf(lc->reason, sizeof lc->reason,
                 "%s.%s: '%s' has a '#' after a blank: a '#' comment goes on a line of its own "
                 "(or write ' ; comment')",
                 section, name, value);
        lc->fail_line = lc->line;
        return 0;
    }
    if (config_set(lc->c, section, name, value, lc->reason, sizeof lc->reason)) {
        lc->fail_line = lc->line;
        return 0;
    }
    if (i >= 0)
        lc->set_on[i] = lc->line;
    return 1;
}

/* A file the config file names by a relative path (http.auth_file, http.tls_cert, .tls_key) is
 * looked for in the config file's folder, not the working directory: under systemd that is /, and
 * "auth_file = tokens" beside the file worked from its folder and failed as a service (session
 * 66, read66b). field (size bytes) becomes that absolute path; dir: the folder, absolute. data_dir
 * keeps the working directory (its default ./vigil-data and the demo's run from anywhere).
 * Returns 0, or -1 with "KEY: reason" in err. */
static int beside_config(char *field, size_t size, const char *key, const char *dir, char *err,
                         size_t errsize)
{
    if (field[0] == '\0' || field[0] == '/')
        return 0;
    char joined[sizeof((config_t *)0)->auth_file];
    const char *rel = strncmp(field, "./", 2) == 0 ? field + 2 : field;
    int n = snprintf(joined, sizeof joined, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", rel);
    if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof joined) {
        snprintf(err, errsize,
                 "http.%s: %s, taken from the config file's folder %s, is too long (at most %zu "
                 "bytes)",
                 key, field, dir, size - 1);
        return -1;
    }
    memcpy(field, joined, (size_t)n + 1);
    return 0;
}

/* The config file's folder as an absolute path, into dir (size bytes). Returns 0, or -1 with
 * the reason in err. */
static int config_dir(const char *path, char *dir, size_t size, char *err, size_t errsize)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (slash == path) /* a file in / */
        len = 1;
    char cwd[4096];
    int n;
    if (path[0] == '/')
        n = snprintf(dir, size, "%.*s", (int)len, path);
    else if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(err, errsize, "%s: cannot tell the working directory it is relative to: %s", path,
                 strerror(errno));
        return -1;
    } else if (len == 0 || (len == 1 && path[0] == '.'))
        n = snprintf(dir, size, "%s", cwd);
    else
        n = snprintf(dir, size, "%s%s%.*s", cwd, strcmp(cwd, "/") ? "/" : "", (int)len, path);
    if (n < 0 || (size_t)n >= size) {
        /* The reason first: the path may fill err (review of api66). */
        snprintf(err, errsize,
                 "a relative http.auth_file, tls_cert or tls_key is taken from the config file's "
                 "folder, a path longer than %zu bytes: give an absolute one (%s)",
                 size - 1, path);
        return -1;
    }
    return 0;
}

int config_load(config_t *c, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsize, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct load_ctx lc = {.c = c, .f = f};
    /* libinih's global, set before each parse (loop thread, as every config_load): the line
     * buffer it hands read_line, which refuses a longer line with FILE:LINE. */
    ini_max_line = CONFIG_LINE_MAX + 2;
    int line = ini_parse_stream(read_line, &lc, on_ini, &lc);
    fclose(f);
    if (line < 0) {
        snprintf(err, errsize, "%s: cannot read the file (out of memory)", path);
        return -1;
    }
    /* inih's syntax errors do not stop it: the first error is the one on the lowest line. */
    if (line > 0 && (lc.fail_line == 0 || line < lc.fail_line)) {
        snprintf(err, errsize, "%s:%d: syntax error (want 'key = value' or '[section]')", path,
                 line);
        return -1;
    }
    if (lc.fail_line) {
        snprintf(err, errsize, "%s:%d: %s", path, lc.fail_line, lc.reason);
        return -1;
    }
    if (lc.read_errno) {
        snprintf(err, errsize, "%s: cannot read: %s", path, strerror(lc.read_errno));
        return -1;
    }
    /* For the token file's errors, which come later (daemon/main.c load_auth). */
    int k = find_setting("http", "auth_file");
    c->auth_file_line = k >= 0 && c->auth_file[0] ? lc.set_on[k] : 0;
    /* The folder only when a path is relative: a config file deeper than a setting's room
     * (511 bytes) that names none loads as before (review of api66). */
    int rel = (c->auth_file[0] && c->auth_file[0] != '/') ||
              (c->tls_cert[0] && c->tls_cert[0] != '/') || (c->tls_key[0] && c->tls_key[0] != '/');
    char dir[sizeof c->auth_file], why[sizeof c->auth_file + 200];
    if (!rel)
        return 0;
    if (config_dir(path, dir, sizeof dir, err, errsize))
        return -1;
    if (beside_config(c->auth_file, sizeof c->auth_file, "auth_file", dir, why, sizeof why) ||
        beside_config(c->tls_cert, sizeof c->tls_cert, "tls_cert", dir, why, sizeof why) ||
        beside_config(c->tls_key, sizeof c->tls_key, "tls_key", dir, why, sizeof why)) {
        snprintf(err, errsize, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

/* The settings a reload (SIGHUP) applies to the running daemon; every other one needs a restart
 * (the README lists both). A setting is live when the code reading it can take a new value at
 * any time: atomics read per request, or state of the loop thread. */
static const char *const live_settings[] = {
    "daemon.log_level",         "http.max_body_bytes",
    "http.max_batch",           "http.max_query_points",
    "http.max_scan_points",     "http.query_timeout",
    "http.auth_file",           "http.metrics_auth",
    "http.metrics_max_devices", "http.cors_origins",
    "http.events_keepalive_ms", "http.events_max_unsent",
    "http.events_state_min_ms", "http.health_stall_s",
    "storage.max_devices",      "storage.max_channels_per_device",
    "storage.max_attrs_bytes",  "storage.snapshots_keep",
    "storage.snapshot_every",   "storage.max_ahead",
    "storage.retention",        "http.max_inflight_bytes",
};

int config_is_live(const char *section, const char *key)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", section, key);
    for (size_t i = 0; i < sizeof live_settings / sizeof live_settings[0]; i++)
        if (strcmp(live_settings[i], name) == 0)
            return 1;
    return 0;
}

static int setting_differs(const struct setting *s, const config_t *a, const config_t *b)
{
    const char *fa = (const char *)a + s->off, *fb = (const char *)b + s->off;
    if (s->kind == K_STR || s->kind == K_LISTEN)
        return strcmp(fa, fb) != 0;
    return memcmp(fa, fb, s->size) != 0;
}

int config_diff(const config_t *a, const config_t *b, config_change_cb cb, void *arg)
{
    int n = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (!setting_differs(s, a, b))
            continue;
        n++;
        if (cb)
            cb(arg, s->section, s->key, config_is_live(s->section, s->key));
    }
    return n;
}

void config_copy_live(config_t *dst, const config_t *src)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (config_is_live(s->section, s->key))
            memcpy((char *)dst + s->off, (const char *)src + s->off, s->size);
    }
    dst->auth_file_line = src->auth_file_line; /* follows auth_file, a live setting */
}

/* Whether two addresses config__listen_ok accepted would take the same socket: the same port,
 * not 0 (a port of the kernel's choosing each), on the same address or on a wildcard of the same
 * family.
 * Conservative: "0.0.0.0" against "[::]" (dual-stack or not) is let through to the bind. */
static int listen_clash(const char *a, const char *b)
{
    const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
    if (ca == NULL || cb == NULL || atol(ca + 1) != atol(cb + 1) || atol(ca + 1) == 0)
        return 0;
    size_t na = (size_t)(ca - a), nb = (size_t)(cb - b);
    if (na == nb && memcmp(a, b, na) == 0)
        return 1;
    if ((a[0] == '[') != (b[0] == '['))
        return 0;
    return strncmp(a, "0.0.0.0:", 8) == 0 || strncmp(b, "0.0.0.0:", 8) == 0 ||
           strncmp(a, "[::]:", 5) == 0 || strncmp(b, "[::]:", 5) == 0;
}

int config_validate(const config_t *c, char *err, size_t errsize)
{
    if (strcmp(c->http_listen, "off") == 0) {
        snprintf(err, errsize, "http.listen: the HTTP API cannot be turned off");
        return -1;
    }
    if (strcmp(c->stream_listen, "off") != 0 && listen_clash(c->http_listen, c->stream_listen)) {
        snprintf(err, errsize,
                 "http.listen (%s) and stream.listen (%s): the same port on one address "
                 "(0.0.0.0 and [::] are every address)",
                 c->http_listen, c->stream_listen);
        return -1;
    }
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        snprintf(err, errsize, "http.tls_cert and http.tls_key: set both (HTTPS) or neither");
        return -1;
    }
    if (api_cors_check(c->cors_origins, err, errsize))
        return -1;
    if (c->max_batch > c->queue_max_readings) {
        snprintf(err, errsize,
                 "http.max_batch (%zu) exceeds storage.queue_max_readings (%zu): a full batch "
                 "could never be queued",
                 c->max_batch, c->queue_max_readings);
        return -1;
    }
    /* Each body's first charge is its 16 KiB buffer: below 1 MiB every write was a 413 "(0 MB)"
     * (read69e 6: 1000, a value thought in KB, passed --check-config). */
    if (c->max_inflight_bytes > 0 && c->max_inflight_bytes < CONFIG_MIN_INFLIGHT_BYTES) {
        snprintf(err, errsize,
                 "http.max_inflight_bytes (%zu) is below 1 MiB (%u bytes): request bodies would "
                 "be refused (413); use 0 for no bound, or bytes (512 MiB is 536870912)",
                 c->max_inflight_bytes, CONFIG_MIN_INFLIGHT_BYTES);
        return -1;
    }
    return 0;
}

int config_inflight_small(const config_t *c)
{
    return c->max_inflight_bytes > 0 && c->max_inflight_bytes / 8 * 7 < c->max_body_bytes;
}
