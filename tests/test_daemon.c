/* tests/test_daemon.c: unit tests of daemon/config.c: defaults, the INI file, overrides and the
 * errors a bad file gets (file, line, reason). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

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
    expect_error("[daemon]\n\n[nope]\nx = 1\n", ":4:", "unknown section [nope]");
    expect_error("[http]\nthreads = many\n", ":2:", "not an integer");
    expect_error("[http]\nthreads = 0\n", ":2:", "from 1 to 64");
    expect_error("[storage]\nsync = sometimes\n", ":2:", "'full' or 'normal'");
    expect_error("[daemon]\nlog_level = loud\n", ":2:", "debug, info, warn or error");
    expect_error("[http]\nlisten = localhost\n", ":2:", "not ADDR:PORT");
    expect_error("[http]\nthis line has no equals sign\n", ":2:", "syntax error");
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
    config_t d;
    config_default(&d);
    assert_int_equal(config_load(&d, "/nonexistent/vigild.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_shipped_file),
        cmocka_unit_test(test_load_values),
        cmocka_unit_test(test_errors_name_file_line_reason),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
