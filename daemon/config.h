/* daemon/config.h: vigild's settings, from etc/vigild.conf (INI, read with inih) and the
 * command line. Loop thread only. */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>

typedef struct config {
    /* [daemon] */
    char data_dir[512];
    enum log_level log_level;
    int ingest_nice;
    /* [http] */
    char http_listen[128];
    int http_threads;
    int http_rt_priority;
    size_t max_body_bytes;
    size_t max_inflight_bytes; /* all request bodies together (api/bodymem.c); 0: no bound */
    size_t max_batch;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    size_t max_header_bytes;
    unsigned max_header_lines; /* header lines of a request's head */
    unsigned max_cookies;      /* cookies of a request's Cookie headers */
    unsigned http_timeout_s;
    unsigned http_request_timeout_s; /* a request's body must arrive within this (0: off) */
    unsigned http_dead_peer_s; /* an accepted socket's peer silent this long: closed (0: off) */
    /* /healthz goes 503 when work waits for the storage writer and no transaction finished for
     * this many seconds, and for this many seconds after a failed transaction while none commits
     * (without a systemd watchdog; with one, the watchdog's bound). */
    unsigned health_stall_s;
    size_t max_query_points;
    size_t max_scan_points;   /* points one page of readings in buckets (step=) reads at most */
    int64_t query_timeout_ms; /* the most ms one /query runs (0: no deadline) */
    char auth_file[512];      /* empty: no authentication */
    /* The config file's line setting auth_file, for its errors; 0: not set there. */
    int auth_file_line;
    int metrics_auth;
    size_t metrics_max_devices; /* per-device /metrics series while the fleet is at most this */
    char tls_cert[512];         /* PEM certificate file; empty (with tls_key): plain HTTP */
    char tls_key[512];          /* PEM private key file */
    char cors_origins[1024];    /* "", "*" or "https://a,https://b" (api_cors_check) */
    unsigned max_event_streams; /* GET /v1/events streams open at once (api_events_opts_t) */
    unsigned events_keepalive_ms;
    size_t events_ring;       /* messages kept for Last-Event-ID */
    size_t events_max_unsent; /* bytes a stream may fall behind before it is cut off */
    /* A device's state messages at most one per this many ms (0: every change). */
    unsigned events_state_min_ms;
    /* [pipeline] limit alarms: a forecast check per limit_check_every readings of a device
     * with limits, limit_horizon steps ahead (0: no forecast alarms). */
    int limit_check_every;
    int limit_horizon;
    /* [pipeline] an event continues the device's previous one (ended cleared) opening at most
     * this many readings after its end; -1 ("auto"): 2 x the detector's err_short; 0: never. */
    int event_continue_within;
    /* [stream] */
    char stream_listen[128];
    size_t max_line_bytes;
    unsigned stream_max_connections;
    unsigned stream_dead_peer_s; /* as http_dead_peer_s, for the stream socket's connections */
    /* [influx] */
    char device_tag[64];
    /* [storage] */
    int sync_full;
    size_t queue_max_readings;
    int max_batch_delay_ms;
    int cache_mb;
    int readers;
    size_t max_devices;
    size_t max_channels;
    size_t max_attrs_bytes;    /* a device's attributes as stored (compact JSON), in bytes */
    int64_t retention_ms;      /* readings older than this are deleted (0: kept forever) */
    int64_t max_ahead_ms;      /* readings stamped further ahead of now are refused (0: off) */
    int snapshots_keep;        /* newest snapshots kept after each one (0: all) */
    int64_t snapshot_every_ms; /* a scheduled snapshot this often (0: none) */
    /* [model] */
    int model_enabled;
    int model_workers;
    int model_train_threads;
    int model_train_nice;
    int model_warmup;
    int model_retrain_every;
    int model_retrain_seconds;
    int model_train_window;
    int model_hidden;
    int model_versions;
    size_t model_predictions; /* predictions kept per device (the ring GET .../predictions reads) */
    size_t model_group_rows;  /* readings a group's training pools at most (0: no bound) */
    int model_serving_f16;    /* model.serving_precision: 1 float16, 0 float32 (own LSTMs) */
    int model_kind;           /* model.kind: enum detector_model_kind (auto, lstm, linear) */
    /* model.lstm_min_rows: detector_config.lstm_min_rows (-1 auto, 0 always, N training rows) */
    int model_lstm_min_rows;
    float model_trip_level; /* model.trip_level: detector_config.trip_level (0: off) */
} config_t;

/* Fills c with the built-in defaults (those documented in etc/vigild.conf). */
void config_default(config_t *c);

/* Reads an INI file over c. Returns 0, or -1 with "FILE:LINE: reason" (or "FILE: reason" when
 * it cannot be opened or read, e.g. a directory) in err; c may then hold part of the file. An
 * unknown section (with keys or empty), a key before any section, an unknown key, a key set
 * twice, a bad value, a line longer than inih's buffer or a syntax error is an error. Indented
 * lines are lines of their own (no value continues on the next line). */
int config_load(config_t *c, const char *path, char *err, size_t errsize);

/* Sets one setting by section and key from a string, as the file would. Returns 0, or -1 with
 * the reason in err. */
int config_set(config_t *c, const char *section, const char *key, const char *value, char *err,
               size_t errsize);

/* Checks settings that depend on each other. Returns 0, or -1 with the reason in err. */
int config_validate(const config_t *c, char *err, size_t errsize);

/* The least http.max_inflight_bytes other than 0 (no bound): 1 MiB (config_validate). */
#define CONFIG_MIN_INFLIGHT_BYTES (1u << 20)

/* 1 when http.max_inflight_bytes is set below http.max_body_bytes * 8/7: a body within
 * max_body_bytes and larger than 1 MiB can then be refused (413) naming the inflight setting
 * (requests over 1 MiB share 7/8 of it). For a warning; any thread. */
int config_inflight_small(const config_t *c);

/* Whether a reload (SIGHUP) applies section.key to the running daemon (else: after a restart). */
int config_is_live(const char *section, const char *key);

/* Called by config_diff for each setting that differs, with live = config_is_live(...). */
typedef void (*config_change_cb)(void *arg, const char *section, const char *key, int live);

/* Compares two configurations setting by setting; calls cb (may be NULL) for each difference.
 * Returns the number of differences. */
int config_diff(const config_t *a, const config_t *b, config_change_cb cb, void *arg);

/* Copies the live settings (config_is_live) of src into dst, leaving the others. */
void config_copy_live(config_t *dst, const config_t *src);

#endif
