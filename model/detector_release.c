/* model/detector_release.c: the one-sensor rules that let an episode go (offset_release,
 * offset_trend, hold_echo), moved out of detector_score.c, which asks them; hold_recent's cap
 * stays there (its likelihood is detector_likelihood.c's).
 *
 * Each is asked with the reading being scored; hold_echo's state (struct detector: eb_med,
 * eb_sd, ec_prev, ec_run, eb_gap) is kept here. No allocation.
 * Threading: owner thread of the detector. */
#include <math.h>

#include "detector_int.h"

/* offset_release: 1 when the error that holds an episode has become a steady offset, once
 * the episode has lasted offset_release readings: the device settled at a new level that the
 * serving predictor, which reverts to its training level, keeps missing by about the same
 * amount. The short window is judged on the norm of each reading's scaled error, sqrt(e^raw -
 * 1) (raw = log(1 + mean_c z_c^2)): an offset plus noise keeps it near the offset, so its
 * standard deviation there is the noise's, about 1 error scale however large the offset, while
 * an excursion that still moves (a burst, a wandering fault) spreads it far wider. OFFSET_SD
 * leaves room for an estimate from err_short readings and a new level somewhat noisier than
 * the old. The norms must also stay OFFSET_APART of their deviations away from 0: errors
 * around no offset (noise that a tight reference still finds high) have norms whose mean is
 * about 1.3 of their deviations (a half-normal's), an offset's many (measured:
 * docs/detection.md, "Thirty-first round"). */
#define OFFSET_SD    2.0
#define OFFSET_APART 3.0
int detector__error_is_offset(const detector_t *d)
{
    const int n = d->short_len;
    if (d->cfg.offset_release <= 0 || d->in_anomaly + 1 < d->cfg.offset_release ||
        d->in_anomaly + 1 < n)
        return 0;
    double a[DETECTOR_MAX_SHORT], m = 0.0, v = 0.0;
    for (int k = 0; k < n; k++) {
        double r = d->shortbuf[k];
        a[k] = sqrt(expm1(r > 0.0 ? r : 0.0));
        m += a[k];
    }
    m /= n;
    for (int k = 0; k < n; k++)
        v += (a[k] - m) * (a[k] - m);
    const double sd = n > 1 ? sqrt(v / (n - 1)) : INFINITY;
    return sd <= OFFSET_SD && m >= OFFSET_APART * sd;
}

/* offset_trend: 1 when some channel still moves away from its training level, so a steady
 * error is a drift, not a device settled at a new level: the least-squares line through the
 * context ring's readings (detector_trend) slopes away from lmean by offset_trend standard
 * errors or more. A drift of 0.05 noise deviations a reading is about 7 of them over 64
 * readings; a level that has settled, noise about 0 (docs/detection.md, "Sixtieth round"). */
int detector__channel_drifts(const detector_t *d)
{
    const double t = d->cfg.offset_trend;
    if (!(t > 0.0))
        return 0;
    for (int c = 0; c < d->C; c++) {
        double slope, se, level;
        if (detector_trend(d, c, &slope, &se, &level) < 0)
            continue;
        const double away = level >= d->lmean[c] ? slope : -slope;
        if (away >= t * se && away > 0.0)
            return 1;
    }
    return 0;
}

/* hold_echo applies on one sensor whose serving predictor is not its seasonal profile: a
 * cycle's values sweep a range, and being back inside the range before an episode does not say
 * the cycle is back (docs/detection.md, "Thirty-eighth round"). */
int detector__echo_applies(const detector_t *d)
{
    return d->cfg.hold_echo > 0.0f && d->C == 1 && !(d->season && d->season[0]);
}

/* hold_echo: counts the readings in a row whose error e (channel 0) has the sign of the one
 * before. A model that carries a burst in its state goes on predicting it (or over-corrects
 * it) once the values are back, and its error stays on one side, decaying or not (NAB's
 * Twitter series, docs/detection.md, "Sixty-fourth round"); a changed pattern inside the old
 * range (a control loop hunting) swings the error from one side to the other. Every reading,
 * inside an episode or not, so the run is there when asked. */
void detector__echo_note(detector_t *d, const float *e)
{
    const float z = e[0], p = d->ec_prev;
    const int echo = isfinite(z) && ((z > 0.0f && p > 0.0f) || (z < 0.0f && p < 0.0f));
    d->ec_run = echo ? (d->ec_run < (1 << 30) ? d->ec_run + 1 : d->ec_run) : 0;
    d->ec_prev = isfinite(z) ? z : 0.0f;
    d->eb_gap = d->det_state == DET_ANOMALY ? 0 : d->eb_gap < (1 << 30) ? d->eb_gap + 1 : d->eb_gap;
}

/* hold_echo: freezes, at an episode's opening, the level the values were at before it: the
 * median of the 4 err_short readings before the short window whose mean opened it (the
 * newest err_short - 1 context rows and x), and their spread, 1.4826 times their median
 * absolute deviation (a Gaussian's deviation). Four windows so a median and a MAD settle;
 * before the opening's window so the excursion's own first readings do not widen the spread.
 * An episode that opens while that span still reaches back into the previous one (within 5
 * err_short readings of its end, a warning between them or not) keeps that one's level: the
 * readings before it are the ended episode's, and a lasting fault's own level taken as
 * "before" would let the fault's next episode end on its own values (a split fault, measured:
 * docs/detection.md, "Sixty-fourth round"). Fewer than err_short readings: none (eb_sd 0, the
 * rule waits). A median absolute deviation of 0 with spread_mean set: the mean absolute
 * deviation's (the sixty-eighth round). */
void detector__echo_freeze(detector_t *d)
{
    const int S = d->cfg.err_short, skip = S - 1;
    if (d->eb_gap <= 5 * S && d->eb_sd > 0.0f)
        return;
    int n = d->ctx_len - skip;
    n = n > 4 * S ? 4 * S : n;
    d->eb_sd = 0.0f;
    if (n < S || n < 1) /* n >= 1 always (err_short >= 1): said for the compiler */
        return;
    float v[4 * DETECTOR_MAX_SHORT];
    for (int i = 0; i < n; i++) { /* insertion sort: once an episode, n <= 4 err_short */
        float x = detector__ctx_back(d, skip + i)[0];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    const float med = n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
    for (int i = 0; i < n; i++)
        v[i] = fabsf(v[i] - med);
    for (int i = 1; i < n; i++) { /* the deviations, sorted again */
        float x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    const float mad = n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
    d->eb_med = med;
    d->eb_sd = 1.4826f * mad;
    if (d->eb_sd == 0.0f && d->cfg.spread_mean) {
        /* spread_mean: half the readings or more sat on the median (a counter that mostly
         * reads 0, NAB's rogue_agent_key_updown): the rest still say how far the values stray,
         * and their mean absolute deviation does (0 still when every reading is the same). */
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += v[i];
        d->eb_sd = (float)(1.2533 * sum / n);
    }
}

/* hold_echo: 1 when the newest hold_recent readings (x and the context ring's newest
 * hold_recent - 1) are (a) each within hold_echo spreads of the level frozen at the opening,
 * after a burst: one of the err_short readings up to x outside them, and (b) an echo: their
 * errors all of one sign (detector__echo_note). A plant engineer's reading: the sensor went out and
 * is back where it was, and the model still misses it on the same side every time, as a model that
 * remembers the burst does; a fault that changes the pattern inside the old range makes the model
 * miss on both sides, and stays flagged. The burst in (a): a fault whose values never leave the
 * band (a sawtooth, a fast oscillation inside the old range) has one-sided runs of errors too, and
 * without it was ended and reopened again and again (review of the sixty-fourth round,
 * docs/detection.md); it also limits the rule to the err_short readings after the values' return,
 * where an echo lives. */
int detector__echo_back(const detector_t *d, const float *x)
{
    const int k = d->cfg.hold_recent, S = d->cfg.err_short;
    if (!detector__echo_applies(d) || !(d->eb_sd > 0.0f) || k < 1 || k >= S || d->ec_run < k - 1 ||
        d->ctx_len < S - 1)
        return 0;
    const float band = d->cfg.hold_echo * d->eb_sd;
    for (int i = 0; i < k; i++)
        if (!(fabsf((i ? detector__ctx_back(d, i - 1)[0] : x[0]) - d->eb_med) <= band))
            return 0;
    for (int i = k - 1; i < S - 1; i++) /* the burst: one reading out before them */
        if (!(fabsf(detector__ctx_back(d, i)[0] - d->eb_med) <= band))
            return 1;
    return 0;
}

/* hold_decay applies where hold_echo would (one sensor, no seasonal profile serving): the
 * level before the episode is hold_echo's (detector__echo_freeze), and a cycle's values sweep
 * a range, so coming back towards a level says nothing there either. */
int detector__decay_applies(const detector_t *d)
{
    return d->cfg.hold_decay > 0.0f && d->C == 1 && !(d->season && d->season[0]);
}

/* hold_decay: the episode's peak, the value farthest from the level frozen at its opening. The
 * opening reading starts it from the reading before (confirm 2 opens an episode on a spike's
 * second reading, and the spike's first is often its peak); every later reading of the episode,
 * and of the err_short readings after it, moves it on, so the rule still knows the peak when it
 * guards against a reopening. */
void detector__decay_note(detector_t *d, const float *x, int opening)
{
    const float dev = fabsf(x[0] - d->eb_med);
    if (opening) {
        const float prev = d->ctx_len > 0 ? fabsf(detector__ctx_back(d, 0)[0] - d->eb_med) : 0.0f;
        d->dk_peak = isfinite(prev) ? prev : 0.0f;
    }
    if (isfinite(dev) && dev > d->dk_peak)
        d->dk_peak = dev;
}

/* hold_decay: 1 when the newest decay_run values (x and the context ring's newest decay_run - 1)
 * have each come back hold_decay of the way from the peak to the level before the episode: a
 * spike of request counts (NAB's Twitter series) decays over 10-20 readings, and the model,
 * which carries the spike in its state, goes on missing the decay until the values are nearly
 * back; a fault that jumps and stays, or relaxes only part of the way, is still farther than
 * that from the old level. Each must also have come back DECAY_DROP spreads from the peak, and
 * there must be decay_run of them: a level shift of a few spreads is a noisy plateau, one of
 * whose readings now and then dips below half of its highest (a lasting fault ended and split,
 * tests/test_detector_hold.c, test_hold_decay_lasting); a spike's decay comes down by tens or
 * hundreds of spreads and stays down. No level (eb_sd 0): the rule waits, as hold_echo's does.
 * DECAY_DROP can be set at compile time (-DDECAY_DROP=6) for a sweep; the sixty-ninth round
 * (docs/detection.md) swept it. */
#ifndef DECAY_DROP
#define DECAY_DROP 8.0f
#endif
int detector__decay_back(const detector_t *d, const float *x)
{
    const int k = d->cfg.decay_run;
    if (!detector__decay_applies(d) || !(d->eb_sd > 0.0f) || k < 1 || d->ctx_len < k - 1)
        return 0;
    const float near = (1.0f - d->cfg.hold_decay) * d->dk_peak;
    for (int i = 0; i < k; i++) {
        const float dev = fabsf((i ? detector__ctx_back(d, i - 1)[0] : x[0]) - d->eb_med);
        if (!(dev <= near && d->dk_peak - dev >= DECAY_DROP * d->eb_sd))
            return 0;
    }
    return 1;
}
