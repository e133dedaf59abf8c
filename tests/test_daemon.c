/* tests/test_daemon.c: unit tests of daemon/config.c: defaults, the INI file, overrides and the
 * errors a bad file gets (file, line, reason); of the token file (daemon/auth.c) with the API's
 * token lookup; and of the device and channel limits (daemon/quota.c), with the store reloading
 * its maps. The pipeline's own pieces (silence, maintenance overlap, shards, groups) are in
 * tests/test_daemon_pipeline.c (unit_daemon_pipeline). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "auth.h"
#include "batch.h"
#include "config.h"
#include "detector.h"
#include "err.h"
#include "nameidx.h"
#include "path.h"
#include "quota.h"

/* Writes text to a temporary file; returns its path in buf. */
static const char *write_conf(char *buf, size_t size, const char *text)
{
    snprintf(buf, size, "/tmp/vigil-test-conf-XXXXXX");
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return buf;
}

static void test_defaults_match_shipped_file(void **state)
{
    /* etc/vigild.conf documents every default: loading it must change nothing. */
    config_t a, b;
    config_default(&a);
    config_default(&b);
    char err[512] = "";
    int rc = config_load(&b, VIGIL_SOURCE_DIR "/etc/vigild.conf", err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(config_validate(&a, err, sizeof err), 0);
}

static void test_load_values(void **state)
{
    char path[64], err[512];
    write_conf(path, sizeof path,
               "[daemon]\ndata_dir = /var/lib/vigil\nlog_level = debug\n"
               "[http]\nlisten = [::1]:9000\nthreads = 8\n"
               "[storage]\nsync = normal\nqueue_max_readings = 5000\n");
    config_t c;
    config_default(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.data_dir, "/var/lib/vigil");
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(c.http_listen, "[::1]:9000");
    assert_int_equal(c.http_threads, 8);
    assert_int_equal(c.sync_full, 0);
    assert_int_equal(c.queue_max_readings, 5000);
    /* A later override wins, as a command-line flag does. */
    assert_int_equal(config_set(&c, "http", "listen", "127.0.0.1:1", err, sizeof err), 0);
    assert_string_equal(c.http_listen, "127.0.0.1:1");
    unlink(path);
}

/* data_dir loses its trailing slashes once, where it is set (file or --data-dir), so that the
 * paths joined to it show no "//"; "/" stays the root. */
static void test_data_dir_trailing_slash(void **state)
{
    (void)state;
    static const char *const in[][2] = {{"/var/lib/vigil/", "/var/lib/vigil"},
                                        {"data//", "data"},
                                        {"/", "/"},
                                        {"//", "/"},
                                        {"./", "."},
                                        {"/srv/vigil", "/srv/vigil"}};
    char err[256];
    config_t c;
    config_default(&c);
    for (size_t k = 0; k < sizeof in / sizeof in[0]; k++) {
        assert_int_equal(config_set(&c, "daemon", "data_dir", in[k][0], err, sizeof err), 0);
        assert_string_equal(c.data_dir, in[k][1]);
    }
}

/* The data folder's paths: "/" joins as "/vigil.db" (retention's clock, --restore's and
 * --check-config's messages showed "//vigil.db" before the review of files1). */
static void test_path_join(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(path_join(buf, sizeof buf, "/", "vigil.db"), 9);
    assert_string_equal(buf, "/vigil.db");
    path_join(buf, sizeof buf, "/var/lib/vigil", "retention-clock");
    assert_string_equal(buf, "/var/lib/vigil/retention-clock");
    path_join(buf, sizeof buf, "data", ".vigil.db.restore");
    assert_string_equal(buf, "data/.vigil.db.restore");
}

static void expect_error(const char *text, const char *line_part, const char *reason_part)
{
    char path[64], err[512];
    write_conf(path, sizeof path, text);
    config_t c;
    config_default(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s%s", path, line_part);
    if (strstr(err, want) == NULL || strstr(err, reason_part) == NULL)
        fail_msg("error '%s' lacks '%s' or '%s'", err, want, reason_part);
    unlink(path);
}

static void test_errors_name_file_line_reason(void **state)
{
    expect_error("[http]\nthreads = 4\nthredas = 2\n", ":3:", "unknown key 'thredas'");
    /* An unknown section is named at its own line, with keys or without (inih calls no
     * handler for an empty one: the reader sees it). */
    expect_error("[daemon]\n\n[nope]\nx = 1\n", ":3:", "unknown section [nope]");
    expect_error("[daemon]\nlog_level = info\n[retetion]\n", ":3:", "unknown section [retetion]");
    expect_error("[daemon]\n[retetion]\n\n[http]\nthreads = 2\n",
                 ":2:", "unknown section [retetion]");
    expect_error("threads = 2\n", ":1:", "'threads' comes before any [section]");
    /* A key given twice, in one section or in the section repeated. */
    expect_error("[http]\nthreads = 2\nthreads = 3\n",
                 ":3:", "http.threads is set twice (first on line 2)");
    expect_error("[http]\nthreads = 2\n[model]\nhidden = 8\n[http]\nthreads = 3\n",
                 ":6:", "http.threads is set twice (first on line 2)");
    /* A line longer than inih's buffer, which it would cut in two (the tail parsed as a line:
     * here "unknown key 'x'" on line 3, counted one too many); the line after it keeps its
     * number. */
    char text[4400];
    snprintf(text, sizeof text, "[http]\ncors_origins = https://%04200dx\nthreads = 1\n", 0);
    expect_error(text, ":2:", "line longer than");
    /* The first error is the one reported, whoever saw it (inih or the reader). */
    expect_error("[http]\nno equals sign\n[nope]\n", ":2:", "syntax error");
    expect_error("[nope]\nno equals sign\n", ":1:", "unknown section [nope]");
    /* cfg3: a malformed section line is not an unknown section; a '#' comment before the '='
     * of an unknown key is left out of its name. */
    expect_error("[daemon]\n[a ;b]\n", ":2:", "malformed section header: ';' inside");
    expect_error("[http] threads = 2\n", ":1:", "malformed section header: 'threads = 2'");
    expect_error("[storage]\nretetion_days # keep = 3\n",
                 ":2:", "unknown key 'retetion_days' in section [storage]");
    expect_error("[http]\nthreads = 0\n[nope]\n", ":2:", "from 1 to 64");
    expect_error("[http]\nthreads = many\n", ":2:", "not an integer");
    expect_error("[http]\nthreads = 0\n", ":2:", "from 1 to 64");
    expect_error("[storage]\nsync = sometimes\n", ":2:", "'full' or 'normal'");
    expect_error("[daemon]\nlog_level = loud\n", ":2:", "debug, info, warn (warning) or error");
    expect_error("[http]\nlisten = localhost\n", ":2:", "not ADDR:PORT");
    expect_error("[http]\nthis line has no equals sign\n", ":2:", "syntax error");
    expect_error("[model]\nkind = neural\n",
                 ":2:", "model.kind: 'neural' is not auto, lstm or linear");
    expect_error("[model]\nlstm_min_rows = -1\n",
                 ":2:", "model.lstm_min_rows: '-1' is not auto or an integer from 0 to 10000000");
    /* A '#' after a blank, or first, in a value: a comment inih would keep in the value (a
     * string setting took it silently); a ':' separator, which inih alone accepts. */
    expect_error("[daemon]\ndata_dir = /var/lib/vigil  # SSD\n",
                 ":2:", "daemon.data_dir: '/var/lib/vigil  # SSD' has a '#' after a blank");
    expect_error("[http]\nauth_file = # none\n", ":2:", "http.auth_file: '# none' has a '#'");
    expect_error("[http]\nthreads = 4\ncors_origins: https://a.example\n",
                 ":3:", "a ':' before any '='");
}

/* What the file may look like: a UTF-8 byte order mark, CRLF line ends, blanks around keys,
 * values and section lines, indented lines (each a line of its own: libinih would take an
 * indented line after a key as the continuation of its value), a ';' comment after a value
 * (after a blank), and a '#' with no blank before it, which is part of the value (README; a '#'
 * after a blank is refused: test_errors_name_file_line_reason). A directory is no file. */
static void test_load_forms(void **state)
{
    char path[64], err[512];
    write_conf(path, sizeof path,
               "\xEF\xBB\xBF[daemon]\r\n"
               "data_dir = /var/lib/vigil#2 ; a comment\r\n"
               "  log_level = warn   \r\n"
               "  [http]  ; a comment\r\n"
               "  listen = 127.0.0.1:9000 ; a comment\r\n"
               "\tthreads = 3\r\n"
               "auth_file =\r\n"
               "[storage]\n"
               "retention =\n"
               "snapshot_every = 1h\n");
    config_t c;
    config_default(&c);
    c.retention_ms = 5;
    if (config_load(&c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.data_dir, "/var/lib/vigil#2");
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    assert_string_equal(c.http_listen, "127.0.0.1:9000");
    assert_int_equal(c.http_threads, 3);
    assert_string_equal(c.auth_file, "");
    assert_int_equal(c.retention_ms, 0); /* empty: 0, as documented */
    assert_int_equal(c.snapshot_every_ms, 3600000);
    unlink(path);
    /* A directory opens, then reads as an empty file: it must be an error, not the defaults. */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/vigil-test-confdir-XXXXXX");
    assert_non_null(mkdtemp(dir));
    config_default(&c);
    assert_int_equal(config_load(&c, dir, err, sizeof err), -1);
    if (strstr(err, dir) == NULL || strstr(err, "cannot read") == NULL)
        fail_msg("error '%s' does not name '%s' and 'cannot read'", err, dir);
    rmdir(dir);
}

/* model.kind: each name maps to its enum detector_model_kind (auto the default). */
static void test_model_kind(void **state)
{
    config_t c;
    char err[512];
    config_default(&c);
    assert_int_equal(c.model_kind, DET_MODEL_AUTO);
    const char *names[] = {"lstm", "linear", "auto"};
    const int want[] = {DET_MODEL_LSTM, DET_MODEL_LINEAR, DET_MODEL_AUTO};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(config_set(&c, "model", "kind", names[k], err, sizeof err), 0);
        assert_int_equal(c.model_kind, want[k]);
    }
    /* Any case, as the booleans and storage.sync (cfg4); a bad name leaves the setting. */
    assert_int_equal(config_set(&c, "model", "kind", "LSTM", err, sizeof err), 0);
    assert_int_equal(c.model_kind, DET_MODEL_LSTM);
    assert_int_equal(config_set(&c, "model", "kind", "lstm2", err, sizeof err), -1);
    assert_int_equal(c.model_kind, DET_MODEL_LSTM);
}

/* model.lstm_min_rows: auto is detector_config's -1 (and the default), 0 and N as given; a bad
 * value leaves the setting as it was. */
static void test_model_lstm_min_rows(void **state)
{
    config_t c;
    char err[512];
    config_default(&c);
    struct detector_config dc;
    detector_config_default(&dc);
    assert_int_equal(c.model_lstm_min_rows, dc.lstm_min_rows);
    assert_int_equal(c.model_lstm_min_rows, -1);
    const char *good[] = {"0", "600", "10000000", "auto", "Auto"};
    const int want[] = {0, 600, 10000000, -1, -1};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(config_set(&c, "model", "lstm_min_rows", good[k], err, sizeof err), 0);
        assert_int_equal(c.model_lstm_min_rows, want[k]);
    }
    const char *bad[] = {"-1", "-2", "10000001", "autox", "", "12x", "1e3", "+600", "0600"};
    for (int k = 0; k < 9; k++) {
        assert_int_equal(config_set(&c, "model", "lstm_min_rows", bad[k], err, sizeof err), -1);
        assert_non_null(strstr(err, "model.lstm_min_rows"));
        assert_int_equal(c.model_lstm_min_rows, -1);
    }
    /* Not live: a reload names it as applied only after a restart (as model.kind). */
    assert_int_equal(config_is_live("model", "lstm_min_rows"), 0);
    config_t b = c;
    b.model_lstm_min_rows = 0;
    assert_int_equal(config_diff(&c, &b, NULL, NULL), 1);
}

/* model.trip_level: detector_config's default (0.8), a number from 0 to 1 written as digits with
 * at most one '.', 0 off; a bad value leaves the setting as it was. Not live (a restart). */
static void test_model_trip_level(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    config_default(&c);
    struct detector_config dc;
    detector_config_default(&dc);
    assert_true(c.model_trip_level == dc.trip_level);
    assert_true(c.model_trip_level == 0.8f);
    const char *good[] = {"0", "1", "0.95", ".5", "1.0", "0.8"};
    const float want[] = {0.0f, 1.0f, 0.95f, 0.5f, 1.0f, 0.8f};
    for (int k = 0; k < 6; k++) {
        assert_int_equal(config_set(&c, "model", "trip_level", good[k], err, sizeof err), 0);
        assert_true(c.model_trip_level == want[k]);
    }
    const char *bad[] = {"1.01", "-0.1", "nan",  "inf", "",    "0.8x",
                         "8e-1", "+0.8", "00.8", ".",   "0..8"};
    for (int k = 0; k < 11; k++) {
        assert_int_equal(config_set(&c, "model", "trip_level", bad[k], err, sizeof err), -1);
        assert_non_null(strstr(err, "model.trip_level"));
        assert_non_null(strstr(err, "is not a number from 0 to 1"));
        assert_true(c.model_trip_level == 0.8f);
    }
    assert_int_equal(config_is_live("model", "trip_level"), 0);
    config_t b = c;
    b.model_trip_level = 0.0f;
    assert_int_equal(config_diff(&c, &b, NULL, NULL), 1);
}

/* config_set's value checks (cfg4): plain decimal numbers only, any case for words, 0 with a
 * unit as off, C1 controls and invalid UTF-8 refused. Each row: section, key, value, 0 (taken)
 * or the words of the error. */
static void test_value_forms(void **state)
{
    static const char *const rows[][4] = {
        {"http", "threads", "12", NULL},
        {"http", "threads", "+4",
         "http.threads: '+4' is not an integer from 1 to 64 (write it "
         "without a '+' sign)"},
        {"http", "threads", "010", "(no leading zeros: numbers are decimal)"},
        {"http", "threads", " 4", "is not an integer"},
        {"http", "threads", "-0", "is not an integer"},
        {"storage", "max_batch_delay_ms", "0", NULL},
        {"storage", "max_batch_delay_ms", "00", "no leading zeros"},
        {"storage", "retention", "0s", NULL},
        {"storage", "retention", "0w", NULL},
        {"storage", "retention", "30d", NULL},
        {"storage", "retention", "030d", "no leading zeros"},
        {"storage", "retention", "+30d", "without a '+' sign"},
        {"storage", "retention", "0ms", "is not 0 (off)"},
        /* Each duration's error says its own bounds (session 50: max_ahead's said 1s). */
        {"storage", "retention", "36501d",
         "storage.retention: '36501d' is not 0 (off) or a "
         "duration from 1s to 36500d: a whole number"},
        {"storage", "max_ahead", "1d", NULL},
        /* Session 51: an empty value turns off only what is off by default; a guard on by
         * default (max_ahead, query_timeout) is turned off by 0 alone. */
        {"storage", "max_ahead", "0", NULL},
        {"storage", "max_ahead", "",
         "storage.max_ahead: an empty value would turn it off: leave the line out for the "
         "default 1d, or write 0 to turn it off on purpose"},
        {"http", "query_timeout", "",
         "http.query_timeout: an empty value would turn it off: leave the line out for the "
         "default 30s, or write 0 to turn it off on purpose"},
        {"storage", "retention", "", NULL},
        {"storage", "snapshot_every", "", NULL},
        {"storage", "max_ahead", "23h",
         "storage.max_ahead: '23h' is not 0 (off) or a duration "
         "from 1d to 36500d: a whole number"},
        {"http", "listen", "127.0.0.1:0", NULL},
        {"http", "listen", "127.0.0.1:080", "is not ADDR:PORT"},
        {"daemon", "log_level", "WARN", NULL},
        {"daemon", "log_level", "Warning", NULL},
        {"daemon", "log_level", "warningwarningxx", "is not debug"},
        {"model", "serving_precision", "Float16", NULL},
        {"pipeline", "event_continue_within", "AUTO", NULL},
        {"daemon", "data_dir", "/srv/caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", NULL},
        {"daemon", "data_dir", "/a\xc2\x85",
         "daemon.data_dir: the value has a control "
         "character (U+0085)"},
        {"daemon", "data_dir", "/a\xc2\x9f", "(U+009F)"},
        {"daemon", "data_dir", "/a\xc2\xa0", NULL}, /* U+00A0, no control */
        {"daemon", "data_dir", "/a\x80", "not valid UTF-8 (byte 0x80 at offset 2)"},
        {"daemon", "data_dir", "/a\xc3", "not valid UTF-8"},
        {"daemon", "data_dir", "/a\xe0\x9f\xbf", "not valid UTF-8"},
        {"daemon", "data_dir", "/a\xed\xbf\xbf", "not valid UTF-8"},
        {"daemon", "data_dir", "/a\xf0\x8f\xbf\xbf", "not valid UTF-8"},
        {"daemon", "data_dir", "/a\xf5\x80\x80\x80", "not valid UTF-8"},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        config_t c;
        char err[512] = "";
        config_default(&c);
        int rc = config_set(&c, rows[k][0], rows[k][1], rows[k][2], err, sizeof err);
        if (rows[k][3] == NULL ? rc != 0 : rc != -1 || strstr(err, rows[k][3]) == NULL)
            fail_msg("%s.%s = '%s': rc %d, '%s'", rows[k][0], rows[k][1], rows[k][2], rc, err);
    }
}

/* A value as long as its field holds comes whole from a file (cfg4: lines stopped at 198
 * characters, under http.cors_origins' 1,023 bytes); a line past 4,096 is the line's error. */
static void test_long_lines(void **state)
{
    char origins[1024], text[5200], path[64], err[512];
    size_t n = 0;
    for (int i = 0; n + 40 < sizeof origins; i++)
        n += (size_t)snprintf(origins + n, sizeof origins - n, "%shttps://host-%03d.example",
                              i ? "," : "", i);
    memset(origins + n, 'x', sizeof origins - 1 - n);
    origins[sizeof origins - 1] = '\0';
    snprintf(text, sizeof text, "[http]\ncors_origins = %s ; all\nthreads = 2\n", origins);
    write_conf(path, sizeof path, text);
    config_t c;
    config_default(&c);
    if (config_load(&c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.cors_origins, origins);
    assert_int_equal(c.http_threads, 2);
    unlink(path);
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    memcpy(text, "[http]\n; ", 9);
    memcpy(text + 4096 + 7, "\n", 2); /* line 2: 4,096 characters, "; " and x */
    write_conf(path, sizeof path, text);
    config_default(&c);
    if (config_load(&c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    unlink(path);
    memcpy(text + 4096 + 7, "x\n", 3);
    expect_error(text, ":2:", "line longer than 4096 characters");
}

static void test_validate(void **state)
{
    config_t c;
    char err[512];
    config_default(&c);
    c.max_batch = 2000000;
    c.queue_max_readings = 1000;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "http.max_batch"));
    /* http.max_inflight_bytes below 1 MiB refused, naming it (read69e 6: 1000, thought in KB,
     * passed and made every write a 413); 0 (no bound) and 1 MiB pass. */
    config_default(&c);
    c.max_inflight_bytes = 1000;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "http.max_inflight_bytes (1000) is below 1 MiB"));
    c.max_inflight_bytes = (1u << 20) - 1;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    c.max_inflight_bytes = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(config_inflight_small(&c), 0);
    c.max_inflight_bytes = 1u << 20;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(config_inflight_small(&c), 1); /* below 32 MiB * 8/7 */
    c.max_inflight_bytes = 512u << 20;
    assert_int_equal(config_inflight_small(&c), 0);
    config_t d;
    config_default(&d);
    assert_int_equal(config_load(&d, "/nonexistent/vigild.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_auth_file(void **state)
{
    char path[64], err[512], warn[600];
    const char *r = "read-token-0123456789", *w = "write-token-0123456789",
               *a = "admin-token-0123456789";
    char text[512];
    /* A '#' comment may follow a token (README's example file annotates each role so). */
    snprintf(text, sizeof text,
             "# tokens\n\nread %s   # dashboards\n\t write  %s \r\nadmin %s\t#ops, two words\n", r,
             w, a);
    write_conf(path, sizeof path, text);
    api_auth_t *auth = NULL;
    assert_int_equal(auth_load(path, &auth, warn, sizeof warn, err, sizeof err), 0);
    assert_int_equal(api_auth_count(auth), 3);
    assert_int_equal(api__auth_role(auth, r, strlen(r)), API_ROLE_READ);
    assert_int_equal(api__auth_role(auth, w, strlen(w)), API_ROLE_WRITE);
    assert_int_equal(api__auth_role(auth, a, strlen(a)), API_ROLE_ADMIN);
    /* Prefixes, extensions, case and empty strings match nothing. */
    assert_int_equal(api__auth_role(auth, a, strlen(a) - 1), API_ROLE_NONE);
    assert_int_equal(api__auth_role(auth, "admin-token-01234567890", 23), API_ROLE_NONE);
    assert_int_equal(api__auth_role(auth, "ADMIN-token-0123456789", 22), API_ROLE_NONE);
    assert_int_equal(api__auth_role(auth, "", 0), API_ROLE_NONE);
    api_auth_destroy(auth);
    unlink(path);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"read 0123456789abcdef\nroot 0123456789abcdeg\n", ":2: unknown role 'root'"},
        {"read\n", ":1: want 'ROLE TOKEN'"},
        {"read 0123456789abcdef x\n", ":1: want 'ROLE TOKEN'"},
        {"read 0123456789abcdef x # comment\n", ":1: want 'ROLE TOKEN'"},
        {"read 0123456789abcde\n", ":1: token of 15 characters"},
        {"read 0123456789abcdef\n#\nwrite 0123456789abcdef\n",
         ":3: duplicate token (first on line 1)"},
        {"\n# none\n", ": no tokens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_conf(path, sizeof path, bad[i].text);
        auth = NULL;
        assert_int_equal(auth_load(path, &auth, warn, sizeof warn, err, sizeof err), -1);
        assert_null(auth);
        assert_non_null(strstr(err, path));
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("%s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
        unlink(path);
    }
}

/* Adds a point of one device with the named channels (values 1, 2, ...) as item `item`. */
static void add_point(batch_t *b, const char *dev, const char *chans, uint32_t item)
{
    assert_int_equal(batch_point_begin(b, dev, strlen(dev), 1000 + item, item), 0);
    double v = 1;
    for (const char *c = chans; *c; c++)
        assert_int_equal(batch_field_add(b, c, 1, v++ + item * 10), 0);
    assert_int_equal(batch_point_commit(b), 1);
}

struct refusals {
    uint32_t items[16];
    char why[16][200];
    size_t n;
};

static void on_refused(void *arg, uint32_t item, const char *reason)
{
    struct refusals *r = arg;
    r->items[r->n] = item;
    snprintf(r->why[r->n], sizeof r->why[0], "%s", reason);
    r->n++;
}

static void test_quota(void **state)
{
    quota_t *q;
    assert_int_equal(quota_create(&q, 2, 3), 0);
    batch_t b;
    batch_init(&b);
    add_point(&b, "d1", "ab", 0);
    add_point(&b, "d2", "a", 1);
    add_point(&b, "d3", "a", 2);   /* a third device */
    add_point(&b, "d1", "c", 3);   /* d1's third channel */
    add_point(&b, "d1", "ad", 4);  /* d1's fourth channel: refused whole */
    add_point(&b, "d2", "abc", 5); /* d2 to three channels */
    struct refusals r = {.n = 0};
    assert_int_equal(quota_admit(q, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.items[0], 2);
    assert_non_null(strstr(r.why[0], "device limit reached: 2 devices"));
    assert_int_equal(r.items[1], 4);
    assert_non_null(strstr(r.why[1], "device 'd1' would have 4 channels"));
    /* The kept points, in order, each with its own fields. */
    static const uint32_t items[] = {0, 1, 3, 5};
    static const uint32_t nf[] = {2, 1, 1, 3};
    assert_int_equal(b.npoints, 4);
    assert_int_equal(b.nfields, 7);
    for (size_t i = 0; i < 4; i++) {
        const batch_point_t *p = &b.points[i];
        assert_int_equal(p->item, items[i]);
        assert_int_equal(p->nfields, nf[i]);
        for (uint32_t f = 0; f < p->nfields; f++)
            assert_true(b.fields[p->field0 + f].value == 1.0 + f + p->item * 10);
    }
    assert_int_equal(quota_devices(q), 2);
    /* Known devices and channels pass; a PUT of a third device does not. */
    batch_reset(&b);
    add_point(&b, "d1", "abc", 6);
    r.n = 0;
    assert_int_equal(quota_admit(q, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(quota_device_add(q, "d1"), 0);
    assert_int_equal(quota_device_add(q, "d3"), ERR_LIMIT);
    /* A deletion frees a place; raised limits apply to what comes next. */
    quota_device_remove(q, "d2");
    assert_int_equal(quota_device_add(q, "d3"), 0);
    quota_set_limits(q, 3, 4);
    batch_reset(&b);
    add_point(&b, "d1", "c", 7);  /* first point: not checked (first = 1) */
    add_point(&b, "d4", "a", 8);  /* third device */
    add_point(&b, "d1", "d", 9);  /* fourth channel */
    add_point(&b, "d5", "a", 10); /* fourth device */
    r.n = 0;
    assert_int_equal(quota_admit(q, &b, 1, on_refused, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0], 10);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.points[2].item, 9);
    /* A long name is quoted cut before a character, not inside it ("\xc3\xa9": bytes 40, 41). */
    batch_reset(&b);
    add_point(&b, "ddddddddddddddddddddddddddddddddddddddd\xc3\xa9z", "a", 11);
    r.n = 0;
    assert_int_equal(quota_admit(q, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 1);
    assert_non_null(strstr(r.why[0], "; 'ddddddddddddddddddddddddddddddddddddddd...' is not"));
    batch_deinit(&b);
    quota_destroy(q);
    quota_destroy(NULL);
}

#include "daemon_fx.h"
#include "store_hooks.h"

static void on_stored(void *arg, int status)
{
    __atomic_store_n((int *)arg, status == 0 ? 1 : 2, __ATOMIC_RELEASE);
}

static int found_device(void *arg, const store_device_info_t *info)
{
    *(int64_t *)arg = info->points;
    return 0;
}

/* The daemon's own listings need names and channels, not counters: while the store reloads its
 * maps (after a failed transaction; the store withdraws its counters meanwhile) quota_load, run
 * at vigild's start (where a failure ends the start) and at a SIGHUP on the loop thread, neither
 * waits for them nor fails. A trigger refuses device "bad": its batch fails, and the hook holds
 * the writer's reload that follows. Before session 33's review quota_load slept about a second
 * and returned ERR_IO. */
/* Opens a store in a new directory dir (a mkdtemp template) holding devices "a" (channels x,
 * y) and "b" (x), then makes its writer's maps reload stop and stay held: a trigger refuses
 * device "bad", whose batch (b, submitted; *done becomes 2 when it is refused) fails. */
static store_t *reload_held_open(char *dir, batch_t *b, int *done)
{
    store_t *s = dfx_store_open(dir, 2);
    batch_init(b);
    add_point(b, "a", "xy", 0);
    add_point(b, "b", "x", 1);
    assert_int_equal(store_write(s, b), 0);
    assert_int_equal(store__test_exec(s, "CREATE TRIGGER refuse_bad BEFORE INSERT ON devices"
                                         " WHEN NEW.name = 'bad'"
                                         " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    store__test_reload_hold(s, 1);
    batch_reset(b);
    add_point(b, "bad", "x", 2);
    assert_int_equal(store_submit(s, b, on_stored, done), 0);
    wait_reload_held(s);
    return s;
}

/* Releases the held reload of reload_held_open's store, checks the refused batch and the
 * counters of "a" once the reload has ended, then closes the store and removes dir. */
static void reload_held_close(store_t *s, char *dir, batch_t *b, int *done)
{
    store__test_reload_hold(s, 0);
    for (int i = 0; i < 10000 && !__atomic_load_n(done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_int_equal(*done, 2); /* the refused batch */
    int64_t points = 0;
    assert_int_equal(store_device_get(s, "a", found_device, &points), 0);
    assert_int_equal(points, 1);
    batch_deinit(b);
    dfx_store_remove(s, dir);
}

/* The daemon's own listings need names and channels, not counters: while the store reloads its
 * maps (after a failed transaction; the store withdraws its counters meanwhile) quota_load, run
 * at vigild's start (where a failure ends the start) and at a SIGHUP on the loop thread, neither
 * waits for them nor fails. A trigger refuses device "bad": its batch fails, and the hook holds
 * the writer's reload that follows. Before session 33's review quota_load slept about a second
 * and returned ERR_IO. */
static void test_quota_load_during_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-test-daemon-XXXXXX";
    batch_t b;
    int done = 0;
    store_t *s = reload_held_open(dir, &b, &done);

    quota_t *q;
    assert_int_equal(quota_create(&q, 3, 2), 0);
    assert_int_equal(quota_load(q, s), 0);
    assert_int_equal(quota_devices(q), 2);
    batch_reset(&b);
    add_point(&b, "a", "z", 3); /* a's third channel */
    struct refusals r = {.n = 0};
    assert_int_equal(quota_admit(q, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 1);
    /* pipe_for's check (backend.c) finds the device without the counters. */
    int64_t points = 0;
    assert_int_equal(store_device_find(s, "a", found_device, &points), 0);
    assert_int_equal(points, -1);
    assert_int_equal(store_device_find(s, "bad", found_device, &points), ERR_NOTFOUND);
    quota_destroy(q);
    reload_held_close(s, dir, &b, &done);
}

static int count_point(void *arg, int64_t ts_ms, size_t n, const char *const *names,
                       const double *values)
{
    (void)ts_ms, (void)n, (void)names, (void)values;
    (*(int *)arg)++;
    return 0;
}

/* A read that waits for the counters the store withdraws while it reloads its maps (a device
 * report, a device list, a query) and gives up after about a second says so with ERR_AGAIN, a
 * transient condition the API answers 503 with Retry-After (test_daemon_api.c), not
 * ERR_IO (500 "internal error", what it was before task err503). After the reload, each reads. */
static void test_reads_during_reload_again(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-test-daemon-XXXXXX";
    batch_t b;
    int done = 0;
    store_t *s = reload_held_open(dir, &b, &done);
    int64_t points = 0;
    assert_int_equal(store_device_get(s, "a", found_device, &points), ERR_AGAIN);
    assert_int_equal(store_device_list(s, NULL, 0, found_device, &points), ERR_AGAIN);
    store_query_t q = {.device = "a", .from_ms = 0, .to_ms = 1000000};
    int n = 0;
    assert_int_equal(store_query(s, &q, count_point, &n), ERR_AGAIN);
    assert_int_equal(store_device_get(s, "none", found_device, &points), ERR_NOTFOUND);
    store__test_reload_hold(s, 0);
    for (int i = 0; i < 10000 && !__atomic_load_n(&done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    n = 0;
    assert_int_equal(store_query(s, &q, count_point, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_device_list(s, NULL, 0, found_device, &points), 0);
    reload_held_close(s, dir, &b, &done);
}

/* quota.c's hook: the hash q keeps for a channel name (no header: for this test only). */
uint64_t quota__chan_hash(quota_t *q, const char *s, size_t n);

/* Adds a point of device dev whose channels are names[from, to) (value 1 each) as item. */
static void add_named_point(batch_t *b, const char *dev, char (*names)[16], int from, int to,
                            uint32_t item)
{
    assert_int_equal(batch_point_begin(b, dev, strlen(dev), 1000 + item, item), 0);
    for (int i = from; i < to; i++)
        assert_int_equal(batch_field_add(b, names[i], strlen(names[i]), 1.0), 0);
    assert_int_equal(batch_point_commit(b), 1);
}

/* The quota's channel hashes (quota.c's chan_hash) come from its device index's secret seed:
 * two quotas hash one name differently, neither with the public hash (FNV-1a from FNV's start
 * and nameidx's finalizer: what a client can compute), and one quota the same way every call.
 * Names brute-forced so their public hashes agree in the low 12 bits (one home slot in an
 * index hashing them publicly) are counted right: N of them as devices (the next refused), and
 * N as one device's channels, sent in two points, then again in reverse order (found in the
 * sorted hashes, not the previous point's memo), then one new channel refused. */
static void test_quota_seeded(void **state)
{
    (void)state;
    enum { N = 64, BITS = 12 };
    static char names[N][16];
    const uint64_t low = (1u << BITS) - 1;
    uint64_t want = 0;
    int found = 0;
    for (int t = 0; found < N && t < (1 << 22); t++) {
        int len = snprintf(names[found], sizeof names[found], "q%d", t);
        uint64_t h = nameidx_hash_seeded(0xcbf29ce484222325ULL, names[found], (size_t)len);
        if (found == 0)
            want = h & low;
        if ((h & low) == want)
            found++;
    }
    assert_int_equal(found, N);
    quota_t *q1, *q2;
    assert_int_equal(quota_create(&q1, N, N), 0);
    assert_int_equal(quota_create(&q2, N, N), 0);
    int differ = 0, public = 0;
    for (int i = 0; i < N; i++) {
        size_t len = strlen(names[i]);
        uint64_t h1 = quota__chan_hash(q1, names[i], len);
        assert_true(h1 == quota__chan_hash(q1, names[i], len));
        differ += h1 != quota__chan_hash(q2, names[i], len);
        public += h1 != nameidx_hash_seeded(0xcbf29ce484222325ULL, names[i], len);
    }
    assert_int_equal(differ, N);
    assert_int_equal(public, N);

    /* N devices of those names fill q1's device limit; one more is refused. */
    batch_t b;
    batch_init(&b);
    for (int i = 0; i < N; i++)
        add_named_point(&b, names[i], names, 0, 1, (uint32_t)i);
    add_named_point(&b, "one-more", names, 0, 1, N);
    struct refusals r = {.n = 0};
    assert_int_equal(quota_admit(q1, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0], N);
    assert_non_null(strstr(r.why[0], "device limit reached: 64 devices"));
    assert_int_equal(b.npoints, N);
    assert_int_equal(quota_devices(q1), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(quota_device_add(q1, names[i]), 0); /* each known */

    /* N channels of those names on one device of q2 fill its channel limit exactly. */
    batch_reset(&b);
    add_named_point(&b, "dev", names, 0, N / 2, 0);
    add_named_point(&b, "dev", names, N / 2, N, 1);
    r.n = 0;
    assert_int_equal(quota_admit(q2, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(b.npoints, 2);
    static char rev[N][16];
    for (int i = 0; i < N; i++)
        memcpy(rev[i], names[N - 1 - i], sizeof rev[i]);
    batch_reset(&b);
    add_named_point(&b, "dev", rev, 0, N, 2);
    add_named_point(&b, "dev", names, 0, N, 3);
    static char fresh[1][16] = {"q-new"};
    add_named_point(&b, "dev", fresh, 0, 1, 4);
    r.n = 0;
    assert_int_equal(quota_admit(q2, &b, 0, on_refused, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0], 4);
    assert_non_null(strstr(r.why[0], "device 'dev' would have 65 channels"));
    assert_int_equal(b.npoints, 2);
    batch_deinit(&b);
    quota_destroy(q1);
    quota_destroy(q2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_shipped_file),
        cmocka_unit_test(test_load_values),
        cmocka_unit_test(test_data_dir_trailing_slash),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_errors_name_file_line_reason),
        cmocka_unit_test(test_load_forms),
        cmocka_unit_test(test_model_kind),
        cmocka_unit_test(test_model_lstm_min_rows),
        cmocka_unit_test(test_model_trip_level),
        cmocka_unit_test(test_value_forms),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_auth_file),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_quota_load_during_reload),
        cmocka_unit_test(test_reads_during_reload_again),
        cmocka_unit_test(test_quota_seeded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
