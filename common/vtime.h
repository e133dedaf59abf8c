/* common/vtime.h: timestamps. vigil keeps time as int64 milliseconds since the Unix epoch (UTC).
 * Any thread; no state. */
#ifndef VIGIL_VTIME_H
#define VIGIL_VTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Earliest and latest accepted timestamps: 1970-01-01 and 9999-12-31 (ms). */
#define VTIME_MIN_MS 0LL
#define VTIME_MAX_MS 253402300799999LL

/* Wall-clock now in ms. */
int64_t vtime_now_ms(void);

/* Monotonic now in ms (CLOCK_MONOTONIC: for intervals and deadlines, never for timestamps). */
int64_t vtime_mono_ms(void);

/* Monotonic now in µs (CLOCK_MONOTONIC: request times and deadlines). */
int64_t vtime_mono_us(void);

/* Monotonic now in seconds, to the nanosecond (CLOCK_MONOTONIC: for measured durations). */
double vtime_mono_s(void);

/* Time elapsed since boot in ms, a suspend included (CLOCK_BOOTTIME: what the wall clock is
 * compared with to tell a step from elapsed time, vtime_steady_now; CLOCK_MONOTONIC stops
 * during a suspend, after which the wall clock would look stepped forward). */
int64_t vtime_boot_ms(void);

/* A wall clock that does not leap forward with the system's, for what must not run ahead on a
 * clock stepped forward by mistake (retention's horizon: a minute at a clock three days ahead
 * deleted three days of readings). Zero-initialised. Any thread (relaxed atomics: callers
 * racing a step may see it followed or not for a moment). */
typedef struct vtime_steady {
    _Atomic int64_t offset;      /* the wall clock less the monotonic one, as followed */
    _Atomic int64_t ahead_since; /* monotonic ms since when the wall clock is ahead; 0: it is not */
    _Atomic int set;             /* offset is valid */
} vtime_steady_t;

/* How far ahead the wall clock may be before it is held back (a minute: an NTP step of seconds
 * is followed at once, and retention works in coarser steps), and how long it must stay ahead
 * before the step is followed (a clock set right, not a mistake undone). */
#define VTIME_STEADY_SLACK_MS 60000LL
#define VTIME_STEADY_HOLD_MS  3600000LL

/* What vtime_steady_now's call saw first (one caller each): a step forward held back, or
 * followed after VTIME_STEADY_HOLD_MS. */
enum { VTIME_STEADY_SAME = 0, VTIME_STEADY_HELD = 1, VTIME_STEADY_TAKEN = 2 };

/* The wall clock at wall (vtime_now_ms()) and mono (vtime_boot_ms()), held: a step back is
 * followed at once, a step forward of more than VTIME_STEADY_SLACK_MS only once the wall clock
 * has stayed that far ahead for VTIME_STEADY_HOLD_MS; meanwhile the time returned advances as
 * the monotonic clock does. *event (may be NULL) gets a VTIME_STEADY_ value. */
int64_t vtime_steady_now(vtime_steady_t *g, int64_t wall, int64_t mono, int *event);

/* Starts g at wall (the time it would have held at mono, a vtime_boot_ms() reading): a clock
 * saved before a restart in the same boot, so that a step forward held then is held still. The
 * next vtime_steady_now then holds a wall clock ahead of it, as it would have. Call before any
 * vtime_steady_now on g. */
void vtime_steady_seed(vtime_steady_t *g, int64_t wall, int64_t mono);

/* The stamps of readings sent without a timestamp (their arrival): the wall clock, except that
 * they never go back. When the wall clock steps back (an NTP correction of a clock that ran
 * ahead), stamps go on from the millisecond after the newest given, advancing at half the rate
 * of the monotonic clock until the wall clock catches up (after twice the step): no stamp after
 * the step falls on or before a millisecond given before it, so none replaces a reading stamped
 * before the step, and a device's readings stay in order (a second apart, they are stamped half
 * a second apart for the while). Zero-initialised; not thread-safe (vtime_stamp_take is, for
 * the process's). */
/* The largest step back the stamps catch up on. A larger one (a clock set a year ahead, then
 * right) is followed at once: caught up, every stamp for twice the step would be ahead of its
 * arrival by up to the step, and one more than a day ahead is not scored (the pipeline's
 * PIPE_FUTURE_MS): a step of a year left such readings unscored for two. The devices' readings
 * then go behind their newest and become their timelines (pipeline_score.c). */
#define VTIME_STAMP_CATCHUP_MAX_MS 43200000LL /* 12 h */
typedef struct vtime_stamp {
    int64_t last;                /* the newest stamp given */
    int64_t anchor, anchor_mono; /* while catching up: the stamp and monotonic time of the step */
    int set, catching_up;
} vtime_stamp_t;

/* The stamp for wall (vtime_now_ms()) and mono (vtime_boot_ms()); *stepped (may be NULL) gets
 * how far back the wall clock stepped when this call saw it step, else 0. */
int64_t vtime_stamp_at(vtime_stamp_t *g, int64_t wall, int64_t mono, int64_t *stepped);

/* vtime_stamp_at shared by threads (vtime_stamp_take). word: the newest stamp given times two,
 * plus 1 while the stamps are not simply the wall clock (none given yet, or catching up); g,
 * under mu, the rest of the state (g.last is word's copy as of the last locked call). */
typedef struct vtime_stamp_sync {
    _Atomic int64_t word;
    pthread_mutex_t mu;
    vtime_stamp_t g;
} vtime_stamp_sync_t;
#define VTIME_STAMP_SYNC_INIT                                                                      \
    {                                                                                              \
        1, PTHREAD_MUTEX_INITIALIZER,                                                              \
        {                                                                                          \
            0, 0, 0, 0, 0                                                                          \
        }                                                                                          \
    }
/* A clock for vtime_stamp_take (the wall clock or the monotonic one, in ms). */
typedef int64_t (*vtime_clock_fn)(void *arg);

/* vtime_stamp_at for concurrent callers, with its clocks read through wall and mono (arg theirs):
 * while the wall clock goes forward, a call reads it and advances word with one compare-and-swap,
 * no lock; a call that finds the stamps catching up (or none given yet) or the wall clock behind
 * the newest stamp takes s->mu and runs vtime_stamp_at, the clocks read under it. Every stamp is
 * at least the newest given when its call began: stamps never go back. *stepped as for
 * vtime_stamp_at. Any thread. */
int64_t vtime_stamp_take(vtime_stamp_sync_t *s, vtime_clock_fn wall, vtime_clock_fn mono, void *arg,
                         int64_t *stepped);

/* The process's stamp now (vtime_stamp_take on the real clocks), for readings without a
 * timestamp; a step back of a second or more is logged (warning). Any thread; one stream line
 * costs one reading of the wall clock and one compare-and-swap, no lock. */
int64_t vtime_stamp_ms(void);

/* Parses an RFC 3339 timestamp ("2026-11-28T10:00:00.123Z", "...+02:00", fractions of any
 * length truncated to ms) of exactly len bytes into *ms. Returns 0; ERR_RANGE for a well-formed
 * timestamp at second 60 (a leap second: Unix time has none, so it has no millisecond of its
 * own); else ERR_INVAL (syntax, a date or time that does not exist, before 1970, after 9999). */
int vtime_parse_rfc3339(const char *s, size_t len, int64_t *ms);

/* What a client is told of vtime_parse_rfc3339's ERR_RANGE. */
#define VTIME_LEAP_SECOND_WHY                                                                      \
    "second 60 (a leap second) is refused: Unix time has none; send second 59.999 or epoch "       \
    "milliseconds"

/* vtime_rfc3339_why's answer for what is not a well-formed RFC 3339 timestamp, and the end of
 * its answers that say what is missing or wrong in one (VTIME_RFC3339_NOT). */
#define VTIME_RFC3339_NOT "not an RFC 3339 timestamp"
#define VTIME_RFC3339_WHY VTIME_RFC3339_NOT " between 1970 and 9999"

/* What a client is told of vtime_parse_rfc3339's failure rc on the len bytes at s: the leap
 * second's refusal, a well-formed time that its offset puts before 1970 or after 9999, what is
 * wrong first when a date is there ("no time after the date: ...", "an incomplete date: ..."
 * for one cut short as 2026-12, "no offset after the time:
 * ...", "'T' expected between date and time ...", "an offset without its colon: ..." for
 * +0100 or +01 (session 50), each ending "; " VTIME_RFC3339_NOT), or
 * VTIME_RFC3339_WHY. At most 110 bytes, so that a message quoting a value stays one short line.
 * A static string. Any thread. */
const char *vtime_rfc3339_why(const char *s, size_t len, int rc);

/* Whether vtime_parse_rfc3339's (or vtime_parse's) failure rc on the len bytes at s is of a
 * well-formed RFC 3339 timestamp that has no millisecond of Unix time here: a leap second, or
 * before 1970 or after 9999 once its offset is applied (vtime_rfc3339_why then says which). 0:
 * not a well-formed timestamp (a missing offset, another separator, anything else). Any thread. */
int vtime_rfc3339_formed(const char *s, size_t len, int rc);

/* Room for vtime_epoch_hint's text, and for vtime_parse_why's. */
#define VTIME_EPOCH_HINT_MAX 96
#define VTIME_WHY_MAX        160

/* Past 9999 in milliseconds, an epoch number is most likely microseconds (up to 1000 times
 * VTIME_MAX_MS: 1977 to 9999 in us) or nanoseconds (beyond: 1978 on in ns, what Go's and
 * InfluxDB's clients send). For the integer iv (is_int) or the real dv in either range, writes
 * "looks like epoch microseconds: send milliseconds, e.g. N" (or nanoseconds; N the value
 * scaled down to ms, truncated; a real's may be 1 ms off, it is an example) into buf and
 * returns it; else (at most 9999 in ms, past it in ns) NULL. Any thread. */
const char *vtime_epoch_hint(int is_int, int64_t iv, double dv, char *buf, size_t size);

/* Epoch seconds of any time from 1973-03-03 (1e8 s) on, read as ms, fall in [1e8, 1e11) ms:
 * 1970-01-02 to 1973-03-03. The first day of 1970 (below 1e8 ms) stays accepted: tests and
 * examples use small timestamps (ts 1000), and no clock that is set sends seconds there. */
#define VTIME_SECS_LO 100000000LL    /* 1970-01-02T03:46:40Z */
#define VTIME_SECS_HI 100000000000LL /* 1973-03-03T09:46:40Z */
/* The reason's first words, the same for JSON's ts and the read routes' from=/to= (each adds
 * what to send instead). */
#define VTIME_SECS_WHY "between 1970-01-02 and 1973-03-03 in milliseconds: looks like epoch seconds"

/* What a client is told of epoch milliseconds before 1970 or after 9999, by JSON's ts and the
 * read routes' from=/to= alike (session 49: JSON's negative ts said "out of range: epoch
 * milliseconds between 1970 and 9999", a parameter's "before 1970 as epoch milliseconds"), and
 * the range they name. */
#define VTIME_MS_RANGE        "send epoch milliseconds, from 0 (1970) to 253402300799999 (9999)"
#define VTIME_BEFORE_1970_WHY "before 1970 as epoch milliseconds, which start at 0 (1970-01-01)"
#define VTIME_AFTER_9999_WHY                                                                       \
    "after 9999 as epoch milliseconds, which end at 253402300799999 (9999-12-31)"

/* What a read's time parameter is told of "+0100" and " 0100" (its '+' unencoded): a sign or a
 * space before a time of 1970's first day, refused since session 50 (vtime_parse_param). */
#define VTIME_SIGN_FIRST_DAY_WHY                                                                   \
    "a sign before a time of 1970's first day: likely an offset alone; send a whole time, e.g. "   \
    "2026-11-28T10:00:00%2B01:00"
#define VTIME_SPACE_FIRST_DAY_WHY                                                                  \
    "a space (an unencoded '+') before a time of 1970's first day: likely an offset alone; send "  \
    "a whole time, '+' as %2B"

/* Whether ms, epoch milliseconds given as a number (an RFC 3339 time names its unit and is never
 * refused so), looks like epoch seconds: in [VTIME_SECS_LO, VTIME_SECS_HI). The one check of
 * POST /v1/readings' ts, maintenance periods' from/until and the read routes' times
 * (vtime_parse_param). Any thread, pure. */
static inline int vtime_looks_like_secs(double ms)
{
    return ms >= (double)VTIME_SECS_LO && ms < (double)VTIME_SECS_HI;
}

/* Parses a query-string time: integer epoch ms or RFC 3339 (when s holds a 'T', 't' or ':').
 * Returns 0, or ERR_RANGE or ERR_INVAL as vtime_parse_rfc3339 does. */
int vtime_parse(const char *s, int64_t *ms);

/* vtime_parse for a read's time parameter (from=, to=): a number (not RFC 3339) that
 * vtime_looks_like_secs is refused too (ERR_INVAL), as JSON's ts refuses it, and (session 50) a
 * number below VTIME_SECS_LO written with a sign or white space before it ("+0100", " 0100": an
 * offset alone, its '+' unencoded or not), which digits alone there are not. Any thread. */
int vtime_parse_param(const char *s, int64_t *ms);

/* What a client is told of vtime_parse's (or vtime_parse_param's) failure rc on s, what is
 * wrong first. First (session 49) what was likely meant as a time: white space at the end;
 * "a space before the offset" (a query's '+' is one), and (session 50) "a space and an offset
 * without its colon" ("...T10:00:00 0100"); "relative times (now, now-1h) are not
 * taken"; "not a finite number" (inf, nan); a number past a double (1e400) before 1970 or
 * after 9999; a number and a unit ("1796000000s": the milliseconds to send for ms, s, us, ns).
 * Then, for a decimal number (a sign, digits, a fraction, an exponent: "-5", "1796000000.123",
 * "1.796e9"; written into buf, VTIME_WHY_MAX bytes): VTIME_SIGN_FIRST_DAY_WHY (or
 * VTIME_SPACE_FIRST_DAY_WHY) for vtime_parse_param's "+0100" (" 0100") (session 50);
 * VTIME_BEFORE_1970_WHY when negative;
 * VTIME_SECS_WHY and "; send milliseconds, e.g. N" when vtime_looks_like_secs (N its value
 * times 1000, rounded); past 9999, "after 9999 as epoch milliseconds; " and vtime_epoch_hint's
 * text, or VTIME_AFTER_9999_WHY past both; "not a whole number of milliseconds" with a
 * fraction; "not an integer: send milliseconds as digits, e.g. N" for a whole number written
 * otherwise (1.796e12). Else vtime_rfc3339_why's answer when it says more than
 * VTIME_RFC3339_WHY (a leap second, out of range by its offset, a date alone or cut short, a
 * missing offset or 'T', an offset without its colon). NULL: nothing more to say than that s is not
 * epoch milliseconds or RFC 3339 (the caller's words). Any thread. */
const char *vtime_parse_why(const char *s, int rc, char *buf, size_t size);

/* Parses a duration: integer milliseconds ("60000"), or an integer with one unit, ms, s, m, h, d
 * or w ("250ms", "1m", "30d"; no sign, fraction or space), into *ms, which may be 0. Returns 0,
 * or ERR_INVAL (syntax, or more than INT64_MAX ms); the caller checks its own bounds. */
int vtime_parse_duration(const char *s, int64_t *ms);

/* ms > 0 as the largest whole unit vtime_parse_duration takes back: "30d", "12h", "90m", "45s",
 * "250ms". Any thread. */
void vtime_format_duration(int64_t ms, char *buf, size_t size);

/* The value of exactly n decimal digits at s (n <= 9), or -1 when one is not a digit (a '\0'
 * is not: a read stops at the end of a string). */
int vtime_digits(const char *s, int n);

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil); negative before 1970. m in 1..12, d in 1..31 (not checked). */
int64_t vtime_days_from_civil(int64_t y, int m, int d);

/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least 25 bytes). Returns buf. */
char *vtime_format(int64_t ms, char *buf, size_t size);

#endif
