/* tools/replay.c: vigil-replay, the daemon's detector over one CSV series, offline.
 *
 *   vigil-replay [-c FILE.ini] [-s key=value]... [-v] [--restart-every N] [--time-unit s|ms]
 *                INPUT.csv OUTPUT.csv
 *
 * INPUT has the header timestamp,<channel>,... and one reading per row, oldest first; the
 * channel count comes from the header, and an empty or unparsable cell is a missing value.
 * Cells may be quoted (RFC 4180, on one line; blanks around the quotes skipped). Refused, exit 1
 * with the file's line on stderr (the header is line 1; session 67: each ran silently wrong with
 * exit 0): a row whose cell count is not the header's, a timestamp that is no time or a whole
 * number that looks like epoch seconds without --time-unit, a decimal comma, a header whose time
 * column is not first. OUTPUT gets timestamp,anomaly_score,is_anomaly with one row per input
 * row, the timestamp copied verbatim (the contract of ../shared/eval/bench.py), and only when
 * every row was scored (a temporary file renamed at the end). -v appends debugging columns
 * (raw score, state, top channel, predictor kind, model version, the decision likelihood the
 * state follows) and prints each training to stderr.
 *
 * The detector is driven exactly as vigild drives it: detector_step_ts for each row in order
 * (with the row's timestamp, for retrain_seconds) and, when a step asks for training,
 * detector_job_create / _set_data / _run / _apply at once (the daemon runs set_data and run on
 * its training pool, with the window read from its store; here the window is the newest
 * `history` rows of the series, kept in a ring, carried forward as the detector carries them;
 * the result is the same because a job depends only on what it was given). Settings start from
 * detector_config_default(), the daemon's defaults; -c reads an INI file of the same keys
 * ([detector] section or none) and -s overrides one key.
 *
 * --restart-every N (N > 0) restarts the detector every N rows as a daemon restart does: after
 * row k N's step it saves the detector to a buffer (detector_save), destroys it and continues
 * with detector_load's copy; a training that step asked for runs on the loaded detector. The
 * outputs must be byte-identical to the run without (docs/reliability.md, "Restart
 * equivalence"; tests/restart_equivalence.py). N = 0, the default, never restarts.
 *
 * Invariants: row t's output depends only on rows 0..t (the detector is causal and nothing
 * here looks ahead). Threading: single-threaded; OpenBLAS is held to one thread so results are
 * reproducible. */
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detector.h"
#include "err.h"
#include "vtime.h"

/* ---- settings ---------------------------------------------------------------------------- */

enum ftype { F_INT, F_FLOAT, F_U64 };
struct field {
    const char *name;
    enum ftype type;
    size_t off;
};

#define FI(n, f)                                                                                   \
    {                                                                                              \
        n, F_INT, offsetof(struct detector_config, f)                                              \
    }
#define FF(n, f)                                                                                   \
    {                                                                                              \
        n, F_FLOAT, offsetof(struct detector_config, f)                                            \
    }
#define FU(n, f)                                                                                   \
    {                                                                                              \
        n, F_U64, offsetof(struct detector_config, f)                                              \
    }
static const struct field fields[] = {
    FI("warmup", warmup),
    FI("history", history),
    FI("retrain_every", retrain_every),
    FI("second_at", second_at),
    FI("n_hidden", n_hidden),
    FI("n_layers", n_layers),
    FI("train.window", train.window),
    FI("train.stride", train.stride),
    FI("train.batch", train.batch),
    FI("train.max_epochs", train.max_epochs),
    FI("train.patience", train.patience),
    FF("train.val_fraction", train.val_fraction),
    FF("train.lr", train.lr),
    FF("train.clip_norm", train.clip_norm),
    FF("train.huber_delta", train.huber_delta),
    FI("val_rows", val_rows),
    FI("calib_all", calib_all),
    FI("recalibrate", recalibrate),
    FI("err_window", err_window),
    FI("agg_top", agg_top),
    FI("err_short", err_short),
    FF("flat_rel", flat_rel),
    FF("flat_diff", flat_diff),
    FI("channel_fallback", channel_fallback),
    FI("horizon", horizon),
    FI("drift_all", drift_all),
    FF("clamp_margin", clamp_margin),
    FF("lstm_margin", lstm_margin),
    FF("level_weight", level_weight),
    FI("freeze", freeze),
    FI("accept_after", accept_after),
    FF("warn_level", warn_level),
    FF("alarm_level", alarm_level),
    FF("clear_level", clear_level),
    FI("clear_count", clear_count),
    FI("confirm", confirm),
    FI("hold_median", hold_median),
    FF("repeat_cap", repeat_cap),
    FI("refractory", refractory),
    FU("seed", seed),
    FI("retrain_seconds", retrain_seconds),
    FI("warm_epochs", warm_epochs),
    FI("tail_plain", tail_plain),
    FF("score_level", score_level),
    FI("open_median", open_median),
    FF("extrap_weight", extrap_weight),
    FI("serving_f16", serving_f16),
    FI("err_corr", err_corr),
    FI("op_point", op_point),
    FI("season_bins", season_bins),
    FI("burst_memory", burst_memory),
    FI("shift_len", shift_len),
    FI("season_opinion", season_opinion),
    FI("shift_plain", shift_plain),
    FI("shift_release", shift_release),
    FF("onset_record", onset_record),
    FI("settle_release", settle_release),
    FF("season_accum", season_accum),
    FF("record_open", record_open),
    FI("score_tails", score_tails),
    FI("warn_run", warn_run),
    FF("onset_quiet", onset_quiet),
    FI("warn_region", warn_region),
    FI("record_quiet", record_quiet),
    FI("onset_rate", onset_rate),
    FI("shift_confirm", shift_confirm),
    FF("shift_winsor", shift_winsor),
    FF("range_quiet", range_quiet),
    FI("offset_release", offset_release),
    FI("opinion_open", opinion_open),
    FI("hold_recent", hold_recent),
    FF("record_open_one", record_open_one),
    FI("onset_rhythm", onset_rhythm),
    FF("range_far", range_far),
    FI("range_open", range_open),
    FF("mean_far", mean_far),
    FI("rhythm_time", rhythm_time),
    FI("onset_now", onset_now),
    FI("onset_tie", onset_tie),
    FF("avg_epochs", avg_epochs),
    FI("lstm_min_rows", lstm_min_rows),
    FF("offset_trend", offset_trend),
    FI("record_young", record_young),
    FF("accept_grow", accept_grow),
    FF("hold_echo", hold_echo),
    FI("burst_wide", burst_wide),
    FF("hold_decay", hold_decay),
    FI("decay_run", decay_run),
    FI("spread_mean", spread_mean),
    FF("trip_level", trip_level),
};

static int config_set(struct detector_config *cfg, const char *key, const char *val)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].name, key) != 0)
            continue;
        char *end;
        errno = 0;
        void *p = (char *)cfg + fields[i].off;
        if (fields[i].type == F_INT)
            *(int *)p = (int)strtol(val, &end, 10);
        else if (fields[i].type == F_FLOAT)
            *(float *)p = strtof(val, &end);
        else
            *(uint64_t *)p = strtoull(val, &end, 10);
        return end != val && *end == '\0' && errno == 0 ? 0 : ERR_INVAL;
    }
    return ERR_NOTFOUND;
}

/* Prints every setting as "key = value", as cfg has it: a file -c reads back (read68d: the
 * settings were listed nowhere a user has, "tools/replay.c lists them all"). */
static void settings_print(FILE *out, const struct detector_config *cfg)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const void *p = (const char *)cfg + fields[i].off;
        if (fields[i].type == F_INT) {
            fprintf(out, "%s = %d\n", fields[i].name, *(const int *)p);
        } else if (fields[i].type == F_FLOAT) {
            const float v = *(const float *)p;
            char t[32];
            for (int d = 1; d <= 9; d++) { /* the fewest digits that read back as v */
                snprintf(t, sizeof t, "%.*g", d, (double)v);
                if (strtof(t, NULL) == v)
                    break;
            }
            fprintf(out, "%s = %s\n", fields[i].name, t);
        } else {
            fprintf(out, "%s = %llu\n", fields[i].name, (unsigned long long)*(const uint64_t *)p);
        }
    }
}

/* Why a setting was refused, naming it and the value as given. */
static void setting_error(int rc, const char *key, const char *val, char *why, size_t size)
{
    if (rc == ERR_NOTFOUND)
        snprintf(why, size, "unknown setting '%s' (vigil-replay --settings lists them)", key);
    else
        snprintf(why, size, "%s: not a number in range: '%s'", key, val);
}

/* An -c file being read: the line reached, and the first refused setting's line and reason, so
 * the error names the line (ini_parse returns only the first bad line's number, and calls no
 * handler for a line that is not key = value). A line longer than libinih's buffer (num - 1
 * characters) is given to it blank, its rest skipped, and the first such line remembered:
 * libinih would read the rest as lines of their own (a long comment's tail "not key = value",
 * every later line numbered one too high, a value cut short). A read error (a directory as the
 * file) would end the parse as the file's end does, so it is kept for the error too. */
struct ini_read {
    FILE *f;
    struct detector_config *cfg;
    int line, bad_line, long_line, long_max, read_errno;
    char why[300];
};

static char *ini_line(char *str, int num, void *stream)
{
    struct ini_read *r = stream;
    errno = 0;
    char *got = fgets(str, num, r->f);
    if (got == NULL) {
        if (ferror(r->f))
            r->read_errno = errno ? errno : EIO;
        return NULL;
    }
    r->line++;
    size_t n = strlen(str);
    if (num > 1 && n == (size_t)num - 1 && str[n - 1] != '\n') {
        int c = getc(r->f);
        if (c != '\n' && c != EOF) {
            while (c != '\n' && c != EOF)
                c = getc(r->f);
            if (r->long_line == 0) {
                r->long_line = r->line;
                r->long_max = num - 1;
            }
            str[0] = '\0';
        }
    }
    return got;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct ini_read *r = user;
    if (section[0] && strcmp(section, "detector") != 0)
        return 1;
    int rc = config_set(r->cfg, name, value);
    if (rc < 0 && r->bad_line == 0) {
        r->bad_line = r->line;
        setting_error(rc, name, value, r->why, sizeof r->why);
    }
    return rc == 0;
}

/* Applies the -c file at path; 0, or -1 with "-c FILE:LINE: reason" or "-c FILE: reason" on
 * stderr. */
static int load_ini(const char *path, struct detector_config *cfg)
{
    struct ini_read r = {.cfg = cfg};
    if ((r.f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "vigil-replay: -c %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(ini_line, &r, on_ini, &r);
    fclose(r.f);
    if (rc == 0 && r.long_line == 0 && r.read_errno == 0)
        return 0;
    if (r.read_errno)
        fprintf(stderr, "vigil-replay: -c %s: %s\n", path, strerror(r.read_errno));
    else if (rc < 0)
        fprintf(stderr, "vigil-replay: -c %s: %s\n", path, err_str(ERR_NOMEM));
    else if (r.long_line && (rc == 0 || r.long_line < rc))
        fprintf(stderr, "vigil-replay: -c %s:%d: longer than %d characters\n", path, r.long_line,
                r.long_max);
    else if (rc == r.bad_line)
        fprintf(stderr, "vigil-replay: -c %s:%d: %s\n", path, rc, r.why);
    else
        fprintf(stderr, "vigil-replay: -c %s:%d: not a [section] or key = value line\n", path, rc);
    return -1;
}

/* ---- CSV --------------------------------------------------------------------------------- */

/* Splits line in place at commas into at most max fields, RFC 4180's quoting understood: a
 * cell in double quotes may hold commas, and "" inside it is one quote (the quotes are taken off
 * in place). Spaces and tabs before an opening quote and after a closing one are skipped, as
 * Python's csv module and pandas do with skipinitialspace=True (session 68: `1, "1.5"` was read
 * as a missing value); an unquoted cell keeps its blanks (parse_cell skips them). Strips a
 * trailing CR/LF. Returns the count (max + 1: more cells than max), or -1 when a quote is not
 * closed on the line (a quoted cell across lines: not read) or text follows a closing quote. */
static int split(char *line, char **f, int max)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    int k = 0;
    char *p = line;
    for (;;) {
        if (k == max)
            return max + 1;
        f[k++] = p;
        char *q = p + strspn(p, " \t");
        if (*q == '"') {
            char *w = p, *r = q + 1;
            for (;;) {
                if (*r == '\0')
                    return -1;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            *w = '\0';
            r += strspn(r, " \t");
            if (*r == '\0')
                return k;
            if (*r != ',')
                return -1;
            p = r + 1;
            continue;
        }
        char *comma = strchr(p, ',');
        if (!comma)
            return k;
        *comma = '\0';
        p = comma + 1;
    }
}

/* Writes a cell as it was read: quoted again (RFC 4180) if it holds a comma or a quote. */
static void put_cell(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* Whether a header cell names a time column. */
static int time_name(const char *s)
{
    static const char *const names[] = {"timestamp", "time", "date", "datetime", "ts"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

/* Whether s reads as a number with a decimal comma ("60,1"): refused, not read as 60. */
static int decimal_comma(const char *s)
{
    const char *c = strchr(s, ',');
    if (!c || c == s || strchr(c + 1, ','))
        return 0;
    for (const char *q = s; *q; q++)
        if (q != c && !(*q >= '0' && *q <= '9') && !(q == s && (*q == '-' || *q == '+')))
            return 0;
    return c[1] != '\0';
}

static int parse_cell(const char *s, float *v)
{
    while (*s == ' ')
        s++;
    if (!*s)
        return 0;
    char *end;
    *v = strtof(s, &end);
    while (*end == ' ')
        end++;
    return end != s && *end == '\0';
}

/* What a whole number in the time column is (--time-unit): by default epoch milliseconds, but
 * one that would be a time between 1970-01-02 and 1973-03-03 as milliseconds is refused as
 * epoch seconds by its look (vtime_looks_like_secs, the rule of POST /v1/readings' ts; session
 * 68: 1796000000 was read as 1970-01-21); `s` reads numbers as epoch seconds (a fraction
 * allowed, rounded to the millisecond), `ms` as milliseconds whatever their size. */
enum time_unit { UNIT_GUESS, UNIT_S, UNIT_MS };

/* Whether s is a decimal number of seconds as --time-unit s takes it: digits, at most one '.'
 * and at least one digit, its value in ms (rounded) in *ms within Unix time to 9999. */
static int secs_read(const char *s, int64_t *ms)
{
    size_t whole = strspn(s, "0123456789"), frac = 0;
    if (s[whole] == '.')
        frac = 1 + strspn(s + whole + 1, "0123456789");
    if (s[whole + frac] != '\0' || whole + frac == 0 || (whole == 0 && frac == 1))
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end) * 1000.0;
    if (errno || *end != '\0' || !(v >= 0 && v <= (double)VTIME_MAX_MS))
        return 0;
    *ms = llround(v);
    return 1;
}

/* A row's timestamp in ms: a number (epoch milliseconds, or seconds by unit), RFC 3339, or
 * "YYYY-MM-DD HH:MM:SS" (UTC, as in the NAB files); DETECTOR_NO_TIME when it is none of these.
 * A time that is well formed but has no millisecond of Unix time (second 60, a leap second;
 * before 1970 or after 9999 by its offset) is no time too, as before, but said on stderr with
 * its line, as vigild refuses it: read silently as "no time", it changed retrain_seconds'
 * schedule unseen. *bad: 0, or 1 when the cell is not a time at all, 2 when it is a whole
 * number that looks like epoch seconds (UNIT_GUESS): both refused by the caller. */
static int64_t row_time(const char *s, enum time_unit unit, const char *file, long lineno, int *bad)
{
    *bad = 0;
    char buf[64];
    int64_t ms;
    size_t n = strlen(s);
    if (n + 2 > sizeof buf) {
        *bad = 1;
        return DETECTOR_NO_TIME;
    }
    memcpy(buf, s, n + 1);
    /* An unquoted cell keeps its blanks (split): trailing ones are dropped as leading ones are
     * skipped ("1700000000 ," was "not a time", read69a 3). */
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    /* A number: blanks, a sign, then digits and points only ("2020-02-08" is none). */
    const char *num = buf + strspn(buf, " \t");
    const int minus = *num == '-';
    num += *num == '+' || minus;
    const int number = *num != '\0' && strspn(num, "0123456789.") == strlen(num);
    if (number && unit == UNIT_S) {
        /* The number past its blanks and sign, as the guess reads it (read68e: " 1700000000"
         * was refused as seconds-like without --time-unit s, then as "not a time" with it). */
        if (!minus && secs_read(num, &ms))
            return ms;
        *bad = 1;
        return DETECTOR_NO_TIME;
    }
    if (n > 10 && buf[10] == ' ')
        buf[10] = 'T';
    int rc = vtime_parse(buf, &ms);
    if (rc == 0) {
        if (number && unit == UNIT_GUESS && vtime_looks_like_secs((double)ms)) {
            *bad = 2;
            return DETECTOR_NO_TIME;
        }
        return ms;
    }
    /* Not a well-formed timestamp: perhaps a time without its zone, read as UTC. */
    size_t len = n;
    if (!vtime_rfc3339_formed(buf, n, rc)) {
        memcpy(buf + n, "Z", 2);
        if ((rc = vtime_parse(buf, &ms)) == 0)
            return ms;
        len = n + 1;
    }
    if (!vtime_rfc3339_formed(buf, len, rc) || !strchr(buf, 'T')) {
        *bad = 1; /* not a time at all ("yesterday", 12.5, empty): refused */
        return DETECTOR_NO_TIME;
    }
    fprintf(stderr, "vigil-replay: %s: line %ld: timestamp '%s' read as no time: %s\n", file,
            lineno, s, vtime_rfc3339_why(buf, len, rc));
    return DETECTOR_NO_TIME;
}

/* The short form goes to stderr after a bad command line (exit 2); --help prints it with the
 * options explained on stdout (exit 0). vigil-replay(1) says the rest. */
static void usage(FILE *out, int full)
{
    fprintf(out, "usage: vigil-replay [-c FILE.ini] [-s key=value]... [-v] [--restart-every N]\n"
                 "                    [--inputs A,B] [--time-unit s|ms] INPUT.csv OUTPUT.csv\n"
                 "       vigil-replay [-c FILE.ini] [-s key=value]... --settings\n");
    if (!full)
        return;
    fprintf(out,
            "Runs vigild's anomaly detector over one series, offline: INPUT.csv has the\n"
            "header timestamp,<channel>,... (1 to %d channels) and one reading a row, oldest\n"
            "first; OUTPUT.csv gets timestamp,anomaly_score,is_anomaly, one row per input\n"
            "row.\n"
            "  -c FILE.ini          detector settings, key = value ([detector] or no section)\n"
            "  -s key=value         one detector setting (repeatable; -c and -s apply in\n"
            "                       order, a later one wins)\n"
            "  -v                   add raw,state,top_channel,kind,version,likelihood columns\n"
            "                       and print each training to stderr\n"
            "  --restart-every N    save and reload the detector every N rows, as a vigild\n"
            "                       restart does (same output; 0, the default: never)\n"
            "  --inputs A,B         the channels named are inputs (set points, controls):\n"
            "                       read by the model, never scored (vigild's \"inputs\"\n"
            "                       device attribute)\n"
            "  --time-unit s|ms     numbers in the time column are epoch seconds or\n"
            "                       milliseconds (default: milliseconds, and one that looks\n"
            "                       like seconds, 1970-01-02 to 1973-03-03 as ms, is refused)\n"
            "  --settings           print every detector setting as key = value, as the\n"
            "                       options before it leave them (a file for -c), and exit\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n"
            "OUTPUT.csv is written only when every row was scored (through a temporary file\n"
            "renamed at the end).\n"
            "Exit status: 0 done, 1 a file or the detector failed, 2 a bad command line.\n",
            DETECTOR_MAX_CHANNELS);
}

/* A daemon restart in the middle of the series: *d saved into *buf (grown as needed; caller
 * owns it, free with free), destroyed, and replaced by the detector loaded from those bytes. On
 * failure *d is unchanged (still the running detector). */
static int restart(detector_t **d, unsigned char **buf, size_t *cap)
{
    size_t need = detector_save_size(*d), len;
    if (need > *cap) {
        unsigned char *p = realloc(*buf, need);
        if (!p)
            return ERR_NOMEM;
        *buf = p;
        *cap = need;
    }
    detector_t *loaded;
    int rc = detector_save(*d, *buf, *cap, &len);
    if (rc < 0 || (rc = detector_load(&loaded, *buf, len)) < 0)
        return rc;
    detector_destroy(*d);
    *d = loaded;
    return 0;
}

/* The series' newest `history` rows, carried forward: the training window. */
struct series {
    float *ring; /* [cap, C] */
    float *win;  /* [cap, C] scratch: the window oldest first */
    int cap, head, len, C;
    float last[DETECTOR_MAX_CHANNELS];
};

static void series_push(struct series *s, const float *x, const uint8_t *present)
{
    float *row = s->ring + (size_t)s->head * (size_t)s->C;
    for (int c = 0; c < s->C; c++) {
        if (present[c] && isfinite(x[c]))
            s->last[c] = x[c];
        row[c] = s->last[c];
    }
    s->head = (s->head + 1) % s->cap;
    if (s->len < s->cap)
        s->len++;
}

static int train_now(detector_t *d, struct series *s, int verbose, long lineno, long row)
{
    detector_job_t *job;
    int rc = detector_job_create(&job, d);
    if (rc == ERR_RANGE)
        return 0; /* not enough history yet; the detector asks again later */
    if (rc < 0)
        return rc;
    const size_t C = (size_t)s->C;
    for (int k = 0; k < s->len; k++) {
        int r = (s->head - s->len + k + s->cap) % s->cap;
        memcpy(s->win + (size_t)k * C, s->ring + (size_t)r * C, sizeof(float) * C);
    }
    rc = detector_job_set_data(job, s->win, s->len);
    if (rc == ERR_RANGE) {
        detector_job_destroy(job);
        return 0;
    }
    struct detector_train_info info;
    if (rc == 0 && (rc = detector_job_run(job)) == 0)
        rc = detector_job_apply(d, job, &info);
    if (rc == 0 && verbose)
        fprintf(stderr,
                "line %ld (row %ld): training v%u swapped %d kind %d, nmse lstm %.4f linear "
                "%.4f persistence %.4f serving %.4f, %d epochs, %zu rows\n",
                lineno, row, info.version, info.swapped, (int)info.kind, info.val_mse_lstm,
                info.val_mse_linear, info.val_mse_persistence, info.val_mse_serving, info.epochs,
                info.rows);
    if (rc == 0 && verbose) {
        fprintf(stderr, "  persistence channels:");
        for (int c = 0; c < detector_channels(d); c++)
            if (info.persist[c])
                fprintf(stderr, " %d", c);
        fputc('\n', stderr);
        fprintf(stderr, "  seasonal channels (period):");
        for (int c = 0; c < detector_channels(d); c++)
            if (info.season_period[c] > 0)
                fprintf(stderr, " %d%s(%d)", c, info.season[c] ? "*" : "", info.season_period[c]);
        fputc('\n', stderr);
    }
    detector_job_destroy(job);
    return rc;
}

/* The temporary OUTPUT while it is written, for sig_remove_tmp (a handler has no argument: the
 * one mutable global here). Set by output_open, cleared by output_close once the name is gone. */
static const char *volatile sig_tmp;

/* SIGINT, SIGTERM, SIGHUP while the temporary OUTPUT exists: removes it, then dies of sig as it
 * would have (SA_RESETHAND). The review of int68: an interrupted run left OUTPUT.csv.XXXXXX.
 * unlink and raise are async-signal-safe. SIGKILL cannot be caught: it still leaves the file. */
static void sig_remove_tmp(int sig)
{
    const char *t = sig_tmp;
    if (t != NULL)
        unlink(t);
    raise(sig);
}

/* Installs sig_remove_tmp for the signals that end a run, except one the caller ignores (nohup's
 * SIGHUP stays ignored). */
static void sig_remove_tmp_install(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        struct sigaction old, sa = {0};
        if (sigaction(sigs[k], NULL, &old) != 0 || old.sa_handler == SIG_IGN)
            continue;
        sa.sa_handler = sig_remove_tmp;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[k], &sa, NULL);
    }
}

/* Opens OUTPUT for writing. A regular file (or a new one) is written as a temporary file beside
 * it, *tmp its name and *dst the name to rename it to (caller owns both; free with free), renamed
 * by output_close when every row was scored: a refused or failed input leaves no OUTPUT, and an
 * existing one as it was (session 68: the rows before a refused line were left, a plausible but
 * partial file). A symbolic link to a regular file (or to none yet) is followed: the temporary
 * file goes beside its target, which the rename replaces, the link kept. An existing file keeps
 * its permission bits. Any other path (/dev/stdout, a pipe), or an existing file in a folder
 * where no temporary file can be made (read-only), is written directly, *tmp NULL. NULL, with
 * the reason on stderr, on failure. */
static FILE *output_open(const char *path, char **tmp, char **dst)
{
    struct stat st;
    *tmp = *dst = NULL;
    char *real = NULL; /* a symbolic link's target (NULL for a dangling one: written directly) */
    const int link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    if (link)
        real = realpath(path, NULL);
    const char *target = real ? real : path;
    const int exists = stat(target, &st) == 0;
    if ((link && !real) || (exists && !S_ISREG(st.st_mode))) {
        free(real);
        FILE *out = fopen(path, "w");
        if (!out)
            fprintf(stderr, "vigil-replay: %s: %s\n", path, strerror(errno));
        return out;
    }
    /* An existing file this user may not write is refused as fopen refused it before session
     * 68 (read69a 2): the rename would replace a chmod a-w file the folder lets us replace. */
    if (exists && faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) != 0) {
        fprintf(stderr, "vigil-replay: %s: %s\n", path, strerror(errno));
        free(real);
        return NULL;
    }
    size_t n = strlen(target);
    char *name = malloc(n + sizeof ".XXXXXX");
    if (!name) {
        free(real);
        fprintf(stderr, "vigil-replay: %s\n", err_str(ERR_NOMEM));
        return NULL;
    }
    memcpy(name, target, n);
    memcpy(name + n, ".XXXXXX", sizeof ".XXXXXX");
    /* The handlers first, and the file made and named to them with the signals blocked: a
     * signal between mkstemp and sig_tmp left the file (it_replay's "killed" check failed once
     * under load, session 68). */
    sig_remove_tmp_install();
    sigset_t ends, was;
    sigemptyset(&ends);
    sigaddset(&ends, SIGINT);
    sigaddset(&ends, SIGTERM);
    sigaddset(&ends, SIGHUP);
    sigprocmask(SIG_BLOCK, &ends, &was);
    int fd = mkstemp(name);
    if (fd >= 0)
        sig_tmp = name;
    const int mk_errno = errno;
    sigprocmask(SIG_SETMASK, &was, NULL);
    errno = mk_errno;
    if (fd < 0 && exists && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        free(name); /* a writable file in a folder that is not: as before session 68 */
        free(real);
        FILE *out = fopen(path, "w");
        if (!out)
            fprintf(stderr, "vigil-replay: %s: %s\n", path, strerror(errno));
        return out;
    }
    FILE *out = NULL;
    if (fd >= 0) {
        mode_t mode;
        if (exists) {
            mode = st.st_mode & 07777;
        } else {
            mode_t mask = umask(0); /* the mode fopen would have given: 0666 less the umask */
            umask(mask);
            mode = 0666 & ~mask;
        }
        if (fchmod(fd, mode) != 0 || !(out = fdopen(fd, "w"))) {
            int e = errno;
            close(fd);
            unlink(name);
            errno = e;
        }
    }
    if (!out || !(*dst = strdup(target))) {
        fprintf(stderr, "vigil-replay: %s: %s\n", path, out ? err_str(ERR_NOMEM) : strerror(errno));
        if (out) {
            fclose(out);
            unlink(name);
        }
        sig_tmp = NULL; /* after the unlink, before the free: the handler reads it */
        free(name);
        free(real);
        return NULL;
    }
    free(real);
    *tmp = name;
    return out;
}

/* Closes output_open's out: with tmp, renames it to path when ok, else removes it. Returns 0, or
 * -1 with the reason on stderr when the close or rename fails (the temporary file removed). The
 * temporary file is synced before the rename (the review of int68): without, a crash soon after
 * could leave OUTPUT renamed but empty on file systems that do not order the two (XFS). */
static int output_close(FILE *out, const char *tmp, const char *path, int ok)
{
    int rc = tmp != NULL && ok && (fflush(out) != 0 || fsync(fileno(out)) != 0) ? -1 : 0;
    if (fclose(out) != 0)
        rc = -1;
    if (rc != 0 && ok)
        fprintf(stderr, "vigil-replay: %s: %s\n", path, strerror(errno));
    if (tmp == NULL)
        return rc == 0 ? 0 : -1;
    if (rc == 0 && ok && rename(tmp, path) != 0) {
        fprintf(stderr, "vigil-replay: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 || !ok)
        unlink(tmp);
    sig_tmp = NULL; /* after: a signal before it finds the name gone, and unlink fails harmlessly */
    return rc == 0 ? 0 : -1;
}

/* --inputs: marks the channels named in list (comma-separated) as inputs in cfg, as vigild's
 * "inputs" device attribute does: name[C] are the header's channel names. Returns 0, or -1
 * after a message naming what is wrong (a name not in the header, or every channel named). */
static int mark_inputs(struct detector_config *cfg, const char *list, char *const *name, int C,
                       const char *file)
{
    int n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int c = 0;
        while (c < C && !(strlen(name[c]) == len && strncmp(name[c], p, len) == 0))
            c++;
        if (c == C) {
            fprintf(stderr, "vigil-replay: --inputs: no channel '%.*s' in %s's header\n", (int)len,
                    p, file);
            return -1;
        }
        n += !cfg->input[c];
        cfg->input[c] = 1;
        p += len + (p[len] == ',');
    }
    if (n == C) {
        fprintf(stderr, "vigil-replay: --inputs: names every channel: one must be scored\n");
        return -1;
    }
    return 0;
}

/* A bad command line: "vigil-replay: " and the reason, naming the option, on one line, then the
 * short usage. Returns the exit status, 2. */
static int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vigil-replay: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage(stderr, 0);
    return 2;
}

int main(int argc, char **argv)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    int verbose = 0, i = 1;
    const char *inputs = NULL; /* --inputs: comma-separated channel names, or NULL */
    long restart_every = 0;
    enum time_unit unit = UNIT_GUESS;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout, 1);
            return 0;
        } else if (!strcmp(argv[i], "--settings")) {
            settings_print(stdout, &cfg); /* as the options before it left them */
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("vigil-replay %s\n", VIGIL_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (i + 1 == argc &&
                   (!strcmp(argv[i], "--restart-every") || !strcmp(argv[i], "--time-unit") ||
                    !strcmp(argv[i], "--inputs") || !strcmp(argv[i], "-c") ||
                    !strcmp(argv[i], "-s"))) {
            return cli_error("%s needs a value", argv[i]);
        } else if (!strcmp(argv[i], "--inputs")) {
            inputs = argv[++i];
        } else if (!strcmp(argv[i], "--time-unit")) {
            const char *u = argv[++i];
            if (strcmp(u, "s") != 0 && strcmp(u, "ms") != 0)
                return cli_error("--time-unit: not s or ms: '%s'", u);
            unit = u[0] == 's' ? UNIT_S : UNIT_MS;
        } else if (!strcmp(argv[i], "--restart-every")) {
            char *end;
            errno = 0;
            restart_every = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end != '\0' || restart_every < 0 || errno)
                return cli_error("--restart-every: not a whole number >= 0: '%s'", argv[i]);
        } else if (!strcmp(argv[i], "-c")) {
            if (load_ini(argv[++i], &cfg))
                return 2;
        } else if (!strcmp(argv[i], "-s")) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq)
                return cli_error("-s: not key=value: '%s'", kv);
            *eq = '\0';
            int rc = config_set(&cfg, kv, eq + 1);
            if (rc < 0) {
                char why[300];
                setting_error(rc, kv, eq + 1, why, sizeof why);
                return cli_error("-s: %s", why);
            }
        } else {
            return cli_error("unknown option '%s'", argv[i]);
        }
    }
    if (argc - i < 2)
        return cli_error("needs INPUT.csv and OUTPUT.csv");
    if (argc - i > 2)
        return cli_error("unexpected argument '%s'", argv[i + 2]);
    openblas_set_num_threads(1);
    FILE *in = fopen(argv[i], "r");
    if (!in) {
        fprintf(stderr, "vigil-replay: %s: %s\n", argv[i], strerror(errno));
        return 1;
    }
    char *tmp = NULL, *dst = NULL; /* the temporary file renamed to dst at the end, or NULL */
    FILE *out = output_open(argv[i + 1], &tmp, &dst);
    if (!out) {
        fclose(in);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    char *f[DETECTOR_MAX_CHANNELS + 2], *hf[DETECTOR_MAX_CHANNELS + 2], *hdr = NULL;
    int status = 1;
    detector_t *d = NULL;
    struct series series = {0};
    unsigned char *saved = NULL; /* --restart-every's buffer */
    size_t saved_cap = 0;
    if (getline(&line, &cap, in) < 0) {
        fprintf(stderr, "vigil-replay: %s: no header\n", argv[i]);
        goto out;
    }
    if (!(hdr = strdup(line))) {
        fprintf(stderr, "vigil-replay: %s\n", err_str(ERR_NOMEM));
        goto out;
    }
    const int bom = strncmp(hdr, "\xEF\xBB\xBF", 3) == 0; /* a UTF-8 BOM: not the name's */
    int nf = split(hdr + 3 * bom, hf, DETECTOR_MAX_CHANNELS + 2);
    int C = nf - 1;
    if (nf < 0) {
        fprintf(stderr,
                "vigil-replay: %s: line 1: a quote not closed on the line, or text after "
                "a closing quote\n",
                argv[i]);
        goto out;
    }
    if (C < 1 || C > DETECTOR_MAX_CHANNELS) {
        const char *sep = nf == 1 && strchr(hf[0], ';')    ? "; the header has ';' in it: the "
                                                             "cells must be comma-separated"
                          : nf == 1 && strchr(hf[0], '\t') ? "; the header has tabs in it: the "
                                                             "cells must be comma-separated"
                                                           : "";
        fprintf(stderr, "vigil-replay: %s: need 1..%d channels after the timestamp%s\n", argv[i],
                DETECTOR_MAX_CHANNELS, sep);
        goto out;
    }
    for (int c = 1; c < nf && !time_name(hf[0]); c++) {
        if (time_name(hf[c])) {
            fprintf(stderr,
                    "vigil-replay: %s: column %d '%s' looks like the timestamp, but the "
                    "first column ('%s') is read as it: put the timestamp column first\n",
                    argv[i], c + 1, hf[c], hf[0]);
            goto out;
        }
    }
    if (inputs && mark_inputs(&cfg, inputs, hf + 1, C, argv[i]))
        goto out;
    int rc = detector_create(&d, &cfg, C);
    if (rc < 0) {
        fprintf(stderr, "vigil-replay: detector: %s\n", err_str(rc));
        goto out;
    }
    series.C = C;
    series.cap = cfg.history;
    series.ring = malloc(sizeof(float) * (size_t)cfg.history * (size_t)C);
    series.win = malloc(sizeof(float) * (size_t)cfg.history * (size_t)C);
    if (!series.ring || !series.win) {
        fprintf(stderr, "vigil-replay: %s\n", err_str(ERR_NOMEM));
        goto out;
    }
    fprintf(out, "timestamp,anomaly_score,is_anomaly%s\n",
            verbose ? ",raw,state,top_channel,kind,version,likelihood" : "");
    float x[DETECTOR_MAX_CHANNELS];
    uint8_t present[DETECTOR_MAX_CHANNELS];
    struct detector_result res;
    long row = 0, lineno = 1; /* data rows; the file's lines (the header is line 1) */
    while (getline(&line, &cap, in) >= 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue; /* a blank line (one at the end of a file, say) is no row */
        row++;
        int k = split(line, f, DETECTOR_MAX_CHANNELS + 2), unreadable;
        if (k < 0) {
            fprintf(stderr,
                    "vigil-replay: %s: line %ld: a quote not closed on the line (a quoted "
                    "cell across lines is not read), or text after a closing quote\n",
                    argv[i], lineno);
            goto out;
        }
        if (k != nf) {
            fprintf(stderr, "vigil-replay: %s: line %ld: %s%d cells, the header has %d%s\n",
                    argv[i], lineno, k > DETECTOR_MAX_CHANNELS + 2 ? "more than " : "",
                    k > DETECTOR_MAX_CHANNELS + 2 ? k - 1 : k, nf,
                    k > nf ? " (decimal commas? write 60.1, not 60,1)" : "");
            goto out;
        }
        for (int c = 0; c < C; c++) {
            if (decimal_comma(f[c + 1])) {
                fprintf(stderr,
                        "vigil-replay: %s: line %ld, column '%s': '%s' has a decimal "
                        "comma: write it with a point\n",
                        argv[i], lineno, hf[c + 1], f[c + 1]);
                goto out;
            }
            present[c] = parse_cell(f[c + 1], &x[c]);
        }
        int64_t ts = row_time(f[0], unit, argv[i], lineno, &unreadable);
        if (unreadable == 2) {
            fprintf(stderr,
                    "vigil-replay: %s: line %ld: timestamp '%s' looks like epoch seconds "
                    "(as milliseconds it is between 1970-01-02 and 1973-03-03): give "
                    "--time-unit s, or --time-unit ms to read it as milliseconds\n",
                    argv[i], lineno, f[0]);
            goto out;
        }
        if (unreadable) {
            fprintf(stderr,
                    "vigil-replay: %s: line %ld: timestamp '%s' is not a time (epoch %s, RFC "
                    "3339, or YYYY-MM-DD HH:MM:SS; epoch %s: --time-unit %s)\n",
                    argv[i], lineno, f[0], unit == UNIT_S ? "seconds" : "milliseconds",
                    unit == UNIT_S ? "milliseconds" : "seconds", unit == UNIT_S ? "ms" : "s");
            goto out;
        }
        series_push(&series, x, present);
        if ((rc = detector_step_ts(d, ts, x, present, &res)) < 0 ||
            (restart_every > 0 && row % restart_every == 0 &&
             (rc = restart(&d, &saved, &saved_cap)) < 0) ||
            (res.want_train && (rc = train_now(d, &series, verbose, lineno, row)) < 0)) {
            fprintf(stderr, "vigil-replay: %s: line %ld: %s\n", argv[i], lineno, err_str(rc));
            goto out;
        }
        put_cell(out, f[0]);
        fprintf(out, ",%.6f,%d", (double)res.score, res.is_anomaly);
        if (verbose)
            fprintf(out, ",%.4f,%d,%d,%d,%u,%.4f", (double)res.raw, (int)res.state, res.top_channel,
                    (int)res.kind, res.version, (double)res.likelihood);
        if (getenv("VIGIL_DUMPZ"))
            for (int c = 0; c < C; c++)
                fprintf(out, ",%.5g", (double)res.contrib[c] * C * expm1((double)res.raw));
        fputc('\n', out);
    }
    status = 0;
out:
    detector_destroy(d);
    free(hdr);
    free(saved);
    free(series.ring);
    free(series.win);
    free(line);
    fclose(in);
    if (output_close(out, tmp, dst ? dst : argv[i + 1], status == 0) != 0)
        status = 1;
    free(tmp);
    free(dst);
    return status;
}
