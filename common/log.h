/* common/log.h: levelled logging to stderr.
 *
 * One fprintf per message, so lines from different threads never interleave. The level is
 * process-wide and set once at start-up (and on reload) from the loop thread; reads are
 * relaxed atomics, so any thread may log. Nothing is logged per reading. */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Any thread. Sets the minimum level printed. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Any thread. Parses "debug", "info", "warn" (or "warning", syslog's and journalctl's word for
 * it) or "error" into *out. Returns 0, or ERR_INVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* The bytes of a message log_msg prints at most: a longer one is cut where a UTF-8 character
 * begins and ends in "... (a line of N bytes, cut)", within these bytes. */
#define LOG_LINE_MAX 1023

/* Any thread. Prints "<time> <level> <message>\n" to stderr when level is enabled; when stderr
 * is systemd's journal stream ($JOURNAL_STREAM names it), "<prio><level> <message>\n" instead,
 * prio the syslog priority (sd-daemon(3)'s prefixes; the journal adds the time). A message over
 * LOG_LINE_MAX bytes is cut (see there). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Any thread. "<prio>" for level when stderr is the journal (as log_msg prefixes it), else "":
 * for the few lines printed without log_msg (a configuration that stops the start). */
const char *log_journal_prefix(enum log_level level);

/* Any thread. For a warning said at most once a period (every_s seconds): true when the period
 * since *last (seconds on the caller's clock, 0: never said) has passed at now_s, and then
 * *last is now_s (1 when now_s is 0, which would read as never). Of callers racing at the same
 * moment exactly one gets true: the others say their line at debug level, or count it. */
bool log_due(_Atomic int64_t *last, int64_t now_s, int64_t every_s);

/* A warning that may come once per device, all at once (a full disk fails every device's
 * training and save: read66b's finding 7): said for the first `burst` occurrences of each
 * period, then only counted until the next period. Zero-initialised; any thread. */
struct log_limit {
    _Atomic int64_t period_s; /* the current period's start (log_due's *last) */
    _Atomic uint64_t said;    /* occurrences in it (said or not) */
    _Atomic uint64_t held;    /* occurrences not said since the last line said */
};

/* Any thread. One occurrence (at now_s, seconds on the caller's clock) of l's warning, at most
 * burst lines a period of every_s seconds. Returns its place in its period (1 to burst) when
 * its line is to be said, *held (not NULL) then the occurrences not said since the line before
 * (for this line to count them); else 0, the occurrence counted among those held. Racing
 * callers may say a line or two more than burst across a period's start, never fewer. */
unsigned log_limit_take(struct log_limit *l, int64_t now_s, int64_t every_s, unsigned burst,
                        uint64_t *held);

/* Any thread. The occurrences l holds unsaid (a flood that stopped: no later line comes to
 * count them, task ops67) once l's period is over at now_s (every_s seconds since its first
 * line), or at once when every_s is 0 (a stop); they are then taken (one caller gets them, as
 * log_limit_take's next line would), for the caller to say in a line of its own. Returns 0
 * when none is held or the period goes on. */
uint64_t log_limit_flush(struct log_limit *l, int64_t now_s, int64_t every_s);

/* Any thread. What a line log_limit_take let through adds to say so (place and held as it
 * returned): "" for a line with nothing held before it that is not its period's last, else
 * " (N more since the line before, not logged one by one)" and/or " (the last such line for
 * up to every_s s: later ones only counted)" (up to: the period began at its first line, so the
 * next may come sooner), in buf (size bytes, NUL-terminated). Returns buf. */
const char *log_limit_note(char *buf, size_t size, unsigned place, uint64_t held, unsigned burst,
                           int64_t every_s);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
