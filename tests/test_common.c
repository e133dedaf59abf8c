/* tests/test_common.c: unit tests of common/ (timestamps, durations, bucket aggregates, batches,
 * the name index, monotonic condition variables).
 *
 * The tests are in tests/test_common_<topic>.c (time, batch, nice, nameidx, mcond), declared in
 * tests/test_common_fx.h; main() runs them file by file, in the order of the single file they
 * were moved from; err_from_errno's test (common/err.c), log_due's (common/log.c) and
 * posint_parse's (common/posint.c) are here, after them. */

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <sched.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agg.h"
#include "batch.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "nameidx.h"
#include "nice.h"
#include "posint.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_common_fx.h"
#include "test_parts.h"

/* err_from_errno: the full volume, the passing shortage (a 503 with Retry-After: 1 to a
 * client), and everything else. */
static void test_err_from_errno(void **state)
{
    (void)state;
    assert_int_equal(err_from_errno(ENOSPC), ERR_NOSPACE);
    assert_int_equal(err_from_errno(EDQUOT), ERR_NOSPACE);
    assert_int_equal(err_from_errno(EMFILE), ERR_RESOURCE);
    assert_int_equal(err_from_errno(ENFILE), ERR_RESOURCE);
    assert_int_equal(err_from_errno(ENOMEM), ERR_RESOURCE);
    assert_int_equal(err_from_errno(EACCES), ERR_IO);
    assert_int_equal(err_from_errno(EIO), ERR_IO);
    assert_string_not_equal(err_str(ERR_RESOURCE), "unknown error");
}

/* log_due: the first call is due, then none until the period has passed, then one again; a
 * clock at 0 still counts as said. */
static void test_log_due_period(void **state)
{
    (void)state;
    _Atomic int64_t last = 0;
    assert_true(log_due(&last, 100, 60));
    assert_false(log_due(&last, 100, 60));
    assert_false(log_due(&last, 159, 60));
    assert_true(log_due(&last, 160, 60));
    assert_false(log_due(&last, 161, 60));
    _Atomic int64_t zero = 0;
    assert_true(log_due(&zero, 0, 60));
    assert_false(log_due(&zero, 0, 60)); /* stored as 1, not as "never" */
    assert_false(log_due(&zero, 60, 60));
    assert_true(log_due(&zero, 61, 60));
}

/* log_limit_take and log_limit_note (read66b's finding 7: one warning per device of a fleet
 * whose disk is full): the first `burst` of a period are said, the next ones only counted, and
 * the first line of the next period counts them; the period's last line says it is the last. */
static void test_log_limit_burst(void **state)
{
    (void)state;
    struct log_limit l = {0};
    uint64_t held = 99;
    char note[160];
    assert_int_equal(log_limit_take(&l, 100, 60, 3, &held), 1);
    assert_int_equal(held, 0);
    assert_string_equal(log_limit_note(note, sizeof note, 1, held, 3, 60), "");
    assert_int_equal(log_limit_take(&l, 100, 60, 3, &held), 2);
    assert_int_equal(log_limit_take(&l, 110, 60, 3, &held), 3);
    assert_string_equal(log_limit_note(note, sizeof note, 3, held, 3, 60),
                        " (the last such line for up to 60 s: later ones only counted)");
    for (int i = 0; i < 197; i++) /* the rest of a fleet of 200, in the same minute */
        assert_int_equal(log_limit_take(&l, 120, 60, 3, &held), 0);
    assert_int_equal(log_limit_take(&l, 159, 60, 3, &held), 0);
    assert_int_equal(log_limit_take(&l, 160, 60, 3, &held), 1); /* the next period */
    assert_int_equal(held, 198);
    assert_string_equal(log_limit_note(note, sizeof note, 1, held, 3, 60),
                        " (198 more since the line before, not logged one by one)");
    assert_string_equal(log_limit_note(note, sizeof note, 1, 2, 1, 60),
                        " (2 more since the line before, not logged one by one) (the last such "
                        "line for up to 60 s: later ones only counted)");
    char small[8]; /* truncated, still terminated */
    log_limit_note(small, sizeof small, 1, 2, 1, 60);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* log_limit_flush (task ops67): a flood that stops leaves its held count to no later line;
 * the flush says it once the period is over (or at a stop: every_s 0), once, and the next
 * period's first line then has nothing held before it. */
static void test_log_limit_flush(void **state)
{
    (void)state;
    struct log_limit l = {0};
    uint64_t held = 99;
    assert_int_equal(log_limit_flush(&l, 100, 60), 0); /* nothing said yet */
    assert_int_equal(log_limit_take(&l, 100, 60, 2, &held), 1);
    assert_int_equal(log_limit_take(&l, 100, 60, 2, &held), 2);
    assert_int_equal(log_limit_flush(&l, 159, 60), 0); /* nothing held */
    for (int i = 0; i < 7; i++)
        assert_int_equal(log_limit_take(&l, 120, 60, 2, &held), 0);
    assert_int_equal(log_limit_flush(&l, 159, 60), 0); /* the period goes on */
    assert_int_equal(log_limit_flush(&l, 160, 60), 7);
    assert_int_equal(log_limit_flush(&l, 161, 60), 0); /* said once */
    assert_int_equal(log_limit_take(&l, 170, 60, 2, &held), 1);
    assert_int_equal(held, 0);
    assert_int_equal(log_limit_take(&l, 170, 60, 2, &held), 2);
    assert_int_equal(log_limit_take(&l, 171, 60, 2, &held), 0);
    assert_int_equal(log_limit_flush(&l, 172, 0), 1); /* a stop: at once */
    assert_int_equal(log_limit_flush(&l, 172, 0), 0);
}

/* log_msg's line as printed for the message "%s" of msg: stderr sent to a temporary file for
 * the call. Returns the message (after "<level> "), caller frees. */
static char *logged(const char *msg)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    const int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    log_msg(LOG_LEVEL_ERROR, "%s", msg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char *line = calloc(1, 4096);
    assert_non_null(line);
    rewind(f);
    const size_t n = fread(line, 1, 4095, f);
    fclose(f);
    line[n] = '\0';
    const char *at = strstr(line, "error ");
    assert_non_null(at);
    memmove(line, at + 6, strlen(at + 6) + 1);
    return line;
}

/* A message over LOG_LINE_MAX bytes (task ops68): cut where a character begins, never inside
 * one, and marked; one that fits is printed whole. Before, vsnprintf cut it at 1,023 bytes,
 * here inside a two-byte "ä", and said nothing. */
static void test_log_msg_cut(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM"); /* the plain format, whoever runs the test */
    char msg[2048];
    /* "ä"s (2 bytes each): the 1,023rd byte (msg[1022]) begins one, so the old cut at 1,023
     * bytes ended in its first half. */
    for (size_t i = 0; i + 2 < sizeof msg; i += 2)
        memcpy(msg + i, "\xc3\xa4", 2);
    msg[sizeof msg - 1] = '\0';
    const size_t len = strlen(msg);
    char *line = logged(msg);
    const char *mark = strstr(line, "... (a line of ");
    assert_non_null(mark);
    char want[64];
    snprintf(want, sizeof want, "... (a line of %zu bytes, cut)\n", len);
    assert_string_equal(mark, want);
    const size_t kept = (size_t)(mark - line);
    assert_true(kept + strlen(want) - 1 <= LOG_LINE_MAX);
    assert_true(kept + strlen(want) - 1 > LOG_LINE_MAX - 4); /* no more cut than a character */
    assert_int_equal(kept % 2, 0);                           /* whole "ä"s */
    assert_memory_equal(line, msg, kept);
    free(line);
    /* Exactly LOG_LINE_MAX bytes: whole, no mark. */
    memset(msg, 'y', LOG_LINE_MAX);
    msg[LOG_LINE_MAX] = '\0';
    line = logged(msg);
    assert_int_equal(strlen(line), LOG_LINE_MAX + 1);
    assert_memory_equal(line, msg, LOG_LINE_MAX);
    free(line);
}

/* Two threads racing for one period, released together: exactly one wins each, over many
 * periods (one winner is what keeps the journal at one line a minute). The last to finish a
 * round opens the next, and they spin (yielding now and then, the machine may be shared)
 * rather than sleep: a futex barrier wakes them one by one, and a log_due without its
 * compare-exchange (load, check, store) then still passed; with this, it fails. */
#define DUE_ROUNDS 3000
struct due_race {
    atomic_int done;  /* calls finished, two a round */
    atomic_int round; /* the round the threads may run */
    _Atomic int64_t last;
    atomic_int wins[DUE_ROUNDS];
};

static void *due_racer(void *arg)
{
    struct due_race *r = arg;
    for (int i = 0; i < DUE_ROUNDS; i++) {
        for (unsigned spin = 1; atomic_load(&r->round) != i; spin++)
            if (spin % 1024 == 0)
                sched_yield();
        if (log_due(&r->last, 1000 + 60 * (int64_t)i, 60))
            atomic_fetch_add(&r->wins[i], 1);
        if (atomic_fetch_add(&r->done, 1) == 2 * i + 1)
            atomic_store(&r->round, i + 1);
    }
    return NULL;
}

static void test_log_due_race(void **state)
{
    (void)state;
    struct due_race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, due_racer, r), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    int races = 0;
    for (int i = 0; i < DUE_ROUNDS; i++)
        races += atomic_load(&r->wins[i]) != 1;
    assert_int_equal(races, 0);
    free(r);
}

/* log_limit_take from several threads at once (the pipeline's shards, its training threads and
 * the loop warn through one struct log_limit; review of ops66): every occurrence is either said
 * or counted in a later line's held, none lost or counted twice, across many periods' starts
 * (the racers cross them at their own pace, some a period behind); and the lines said are at
 * most burst a period: a period's reset of the count is one store, the places after it unique. */
#define LIMIT_THREADS 4
/* No yield: the racers contend (a held count kept by load and store lost some, 3 runs of 5). */
#define LIMIT_TAKES   200000
#define LIMIT_BURST   5u
#define LIMIT_PERIODS 40 /* periods each racer crosses: now = its take / (TAKES / PERIODS) */
struct limit_race {
    struct log_limit l;
    atomic_uint_fast64_t said, held; /* lines let through, and the held counts they carried */
};

static void *limit_racer(void *arg)
{
    struct limit_race *r = arg;
    for (int i = 0; i < LIMIT_TAKES; i++) {
        const int64_t k = i / (LIMIT_TAKES / LIMIT_PERIODS);
        uint64_t held = 0;
        if (log_limit_take(&r->l, 1000 + 60 * k, 60, LIMIT_BURST, &held) != 0) {
            atomic_fetch_add(&r->said, 1);
            atomic_fetch_add(&r->held, held);
        }
    }
    return NULL;
}

static void test_log_limit_race(void **state)
{
    (void)state;
    struct limit_race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_t t[LIMIT_THREADS];
    for (int i = 0; i < LIMIT_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, limit_racer, r), 0);
    for (int i = 0; i < LIMIT_THREADS; i++)
        pthread_join(t[i], NULL);
    uint64_t last = 0; /* a line a period on says what is still held */
    assert_int_equal(log_limit_take(&r->l, 1000 + 60 * (LIMIT_PERIODS + 1), 60, LIMIT_BURST, &last),
                     1);
    assert_true(atomic_load(&r->said) + atomic_load(&r->held) + last ==
                (uint64_t)LIMIT_THREADS * LIMIT_TAKES);
    assert_in_range(atomic_load(&r->said), LIMIT_BURST, LIMIT_BURST * LIMIT_PERIODS);
    free(r);
}

/* posint_parse (task knobs64): digits only, 1 to max. The test knobs (storage's
 * VIGIL_TEST_BUSY_MS and VIGIL_TEST_OPS_MAX read with strtol) took " 3000" and "+3000" as 3000;
 * WATCHDOG_USEC (strtoull) took "-5" as 2^64 - 5, and takes up to 2^64 - 1 (systemd's
 * WatchdogSec=infinity: review of knobs64, a signed bound refused it). Each refusal leaves *out
 * as it was. */
static void test_posint_parse(void **state)
{
    (void)state;
    unsigned long long v = 0;
    assert_int_equal(posint_parse("3000", 5000, &v), 0);
    assert_int_equal(v, 3000);
    assert_int_equal(posint_parse("1", 1, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(posint_parse("007", 10, &v), 0); /* leading zeros: decimal still */
    assert_int_equal(v, 7);
    assert_int_equal(posint_parse("9223372036854775807", LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MAX);
    assert_int_equal(posint_parse("18446744073709551615", ULLONG_MAX, &v), 0);
    assert_true(v == ULLONG_MAX);
    v = 42;
    const char *bad[] = {"",     " 3000", "+3000", "-5",  "3000 ", "3e3", "30s",
                         "0x10", "0",     "00",    "\t1", "1\n",   "-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(posint_parse(bad[i], 5000, &v), ERR_INVAL);
        assert_int_equal(v, 42);
    }
    assert_int_equal(posint_parse("5001", 5000, &v), ERR_RANGE);
    assert_int_equal(posint_parse("2", 1, &v), ERR_RANGE);
    assert_int_equal(posint_parse("9223372036854775808", LLONG_MAX, &v), ERR_RANGE);
    assert_int_equal(posint_parse("18446744073709551616", ULLONG_MAX, &v), ERR_RANGE);
    assert_int_equal(posint_parse("99999999999999999999999", ULLONG_MAX, &v), ERR_RANGE);
    assert_int_equal(v, 42);
}

static const struct CMUnitTest common_err_tests[] = {
    cmocka_unit_test(test_err_from_errno),  cmocka_unit_test(test_log_due_period),
    cmocka_unit_test(test_log_limit_burst), cmocka_unit_test(test_log_limit_race),
    cmocka_unit_test(test_log_limit_flush), cmocka_unit_test(test_log_due_race),
    cmocka_unit_test(test_log_msg_cut),     cmocka_unit_test(test_posint_parse),
};

int main(void)
{
    const struct test_part parts[] = {
        {common_time_tests, common_time_count},
        {common_batch_tests, common_batch_count},
        {common_nice_tests, common_nice_count},
        {common_nameidx_tests, common_nameidx_count},
        {common_mcond_tests, common_mcond_count},
        {common_err_tests, sizeof common_err_tests / sizeof common_err_tests[0]},
    };
    return test_parts_run(parts, sizeof parts / sizeof parts[0], NULL);
}
