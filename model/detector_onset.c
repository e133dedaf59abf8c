/* model/detector_onset.c: how an onset's reported score is ranked (onset_record, onset_quiet,
 * record_quiet, onset_rate, onset_rhythm, onset_tie) and each channel's range of values that
 * range_quiet, range_far and mean_far judge a reading against; moved out of detector_score.c,
 * which asks these for every onset (a reading at score_level that the onset filter leaves
 * uncapped, or a range_far or mean_far one) and notes every scored reading here. A rank stays in
 * [red, 1], so it orders onsets without changing which readings reach red; what opens, holds
 * and ends an episode is decided in detector_score.c, which also reads record_excess
 * (record_open) and range_excess (range_open). onset_now's test (onset_past) stays there; the
 * likelihood it uses is detector_likelihood.c's.
 *
 * Each function is asked with the reading being scored, x, before it joins the context ring.
 * State (struct detector): the record's reference rec_max and rec_n (kept by
 * detector_likelihood.c's short window), the onsets' rate ons_rate, their schedule rh_* and the
 * channels' ranges vr_*. Invariant: each reading joins the ranges once, as it leaves the short
 * window. No allocation. Threading: owner thread of the detector. */
#include <math.h>
#include <string.h>

#include "detector_int.h"

/* The excess of the short window's largest raw score over the largest raw score of every
 * reading that left the short window since the training (onset_record's reference), or NAN
 * while fewer than err_short readings make that reference. */
double detector__record_excess(const detector_t *d)
{
    if (d->rec_n < d->cfg.err_short)
        return NAN;
    return detector__short_max(d) - d->rec_max;
}

/* range_quiet: the readings of the short window other than x, the one being scored (not yet
 * in the context ring), are the context ring's newest w (at most its capacity). */
static int range_rows(const detector_t *d)
{
    int w = d->cfg.err_short - 1;
    return w < d->ctx_cap ? w : d->ctx_cap;
}

/* range_quiet: 1 when a channel of the short window (x and the newest range_rows readings)
 * lies outside the range it has shown since the detector began scoring, or when there is no
 * range yet (no opinion). Exact comparisons: a counter one above its maximum has left it. */
static int beyond_range(const detector_t *d, const float *x)
{
    if (d->vr_n == 0)
        return 1;
    const int w = range_rows(d), n = w < d->ctx_len ? w : d->ctx_len;
    for (int k = -1; k < n; k++) {
        const float *v = k < 0 ? x : detector__ctx_back(d, k);
        for (int c = 0; c < d->C; c++)
            if (!d->cfg.input[c] && (v[c] < d->vr_lo[c] || v[c] > d->vr_hi[c]))
                return 1;
    }
    return 0;
}

/* range_quiet: the reading that leaves the short window after this one (the oldest of its
 * range_rows, or x itself with a short window of one) joins each channel's range. Each
 * reading leaves exactly once, as the context ring moves on by one reading a scored one. */
void detector__range_note(detector_t *d, const float *x)
{
    if (!(d->cfg.range_quiet > 0.0f))
        return;
    const int w = range_rows(d);
    if (w > d->ctx_len)
        return; /* the ring does not reach back yet to the reading that leaves */
    const float *v = w == 0 ? x : detector__ctx_back(d, w - 1);
    for (int c = 0; c < d->C; c++) {
        d->vr_lo[c] = d->vr_n == 0 || v[c] < d->vr_lo[c] ? v[c] : d->vr_lo[c];
        d->vr_hi[c] = d->vr_n == 0 || v[c] > d->vr_hi[c] ? v[c] : d->vr_hi[c];
    }
    d->vr_n = d->vr_n < (1 << 30) ? d->vr_n + 1 : d->vr_n;
}

/* range_far: the readings a channel's range must hold before a reading beyond it is news. A
 * device with exponential tails (heavier than Gaussian) goes beyond its range of n readings by
 * a share f of the width with a chance of about n^-(1 + f) a reading (the maximum of n such
 * readings is near log n scales, and so is the width), so from n0 readings on it does so about
 * n0^-f / f times in all its life: once in ten devices at n0 = 400 and f = 1/2. */
#define RANGE_FAR_MIN 400

/* range_far: how far x goes beyond the values each channel has shown since the detector began
 * scoring (range_note's range, widened by the short window's readings that have not joined it
 * yet), in shares of that range's width: the largest over the channels (*top: its channel),
 * or 0 (*top -1) while the range is younger than RANGE_FAR_MIN readings. A flat channel (width
 * 0) has no opinion: its error scale's floor judges it. */
double detector__range_excess(const detector_t *d, const float *x, int *top)
{
    *top = -1;
    if (!(d->cfg.range_far > 0.0f) || !(d->cfg.range_quiet > 0.0f) || d->vr_n < RANGE_FAR_MIN)
        return 0.0;
    const int w = range_rows(d), n = w < d->ctx_len ? w : d->ctx_len;
    double best = 0.0;
    for (int c = 0; c < d->C; c++) {
        if (d->cfg.input[c] || (x[c] >= d->vr_lo[c] && x[c] <= d->vr_hi[c]))
            continue; /* within the older range: most readings stop here */
        double lo = d->vr_lo[c], hi = d->vr_hi[c];
        for (int k = 0; k < n; k++) {
            lo = fmin(lo, detector__ctx_back(d, k)[c]);
            hi = fmax(hi, detector__ctx_back(d, k)[c]);
        }
        const double ex = x[c] < lo ? lo - x[c] : x[c] - hi, u = ex / (hi - lo);
        if (hi > lo && u > best) {
            best = u;
            *top = c;
        }
    }
    return best;
}

/* range_far: the rank of a reading u widths beyond its range (u at least the share f): f / u
 * of the way below 1 from score_level, so score_level at the share, growing with the excess. */
float detector__far_rank(const detector_t *d, double u, float red)
{
    return (float)(red + (1.0 - red) * (1.0 - d->cfg.range_far / u));
}

/* mean_far: how far the short window's mean (x and the newest range_rows readings) goes
 * beyond the values each channel has shown before them (range_note's range), in shares of that
 * range's width: the largest over the channels, or 0 while the range is younger than
 * RANGE_FAR_MIN readings or the ring does not yet hold the window. A mean is never beyond the
 * readings it averages, so it leaves the older range only when every recent reading has, on
 * average: a level the device holds, not a spike. A flat channel (width 0) has no opinion. */
double detector__mean_excess(const detector_t *d, const float *x)
{
    const int w = range_rows(d);
    if (!(d->cfg.mean_far > 0.0f) || !(d->cfg.range_quiet > 0.0f) || d->vr_n < RANGE_FAR_MIN ||
        w > d->ctx_len)
        return 0.0;
    double best = 0.0;
    for (int c = 0; c < d->C; c++) {
        if (d->cfg.input[c])
            continue; /* an input is never scored */
        double m = x[c];
        for (int k = 0; k < w; k++)
            m += detector__ctx_back(d, k)[c];
        m /= w + 1;
        const double lo = d->vr_lo[c], hi = d->vr_hi[c];
        const double ex = m < lo ? lo - m : m > hi ? m - hi : 0.0;
        if (hi > lo && ex / (hi - lo) > best)
            best = ex / (hi - lo);
    }
    return best;
}

/* onset_rhythm: an onset keeps a schedule when it is the third repeat at one interval: its gap
 * g to an earlier kept onset matches the gap from that one to an earlier one, and from that one
 * to an earlier one again, each within RHYTHM_TOL of g (a few percent: a nightly job at 03:30
 * give or take 45 minutes, a daily flush whose start drifts with its predecessors' run times),
 * and g is at least RHYTHM_MIN_SHORTS short windows (an excursion and its aftermath are one
 * event; onsets that close are a spell, not a schedule). Other onsets between the repeats do
 * not break the schedule. One repeat is not a schedule: two onsets a day apart after one a day
 * earlier happen by chance on a device with many onsets (measured: docs/detection.md,
 * "Thirty-sixth round"). The routine also keeps its size: an onset whose short window's
 * largest raw score exceeds the largest of the repeats' by more than RHYTHM_SIZE (log 2: twice
 * 1 + z^2) is news however punctual (the nightly job that failed wildly). */
#define RHYTHM_TOL        (1.0 / 32.0)
#define RHYTHM_MIN_SHORTS 4
#define RHYTHM_REPEATS    3
#define RHYTHM_SIZE       0.6931471805599453

/* Gaps g and h (in one unit, both > 0) match: within RHYTHM_TOL of the larger. */
static int gaps_match(int64_t g, int64_t h)
{
    const int64_t hi = g > h ? g : h, lo = g > h ? h : g;
    return lo > 0 && (double)(hi - lo) <= RHYTHM_TOL * (double)hi;
}

/* The kept onsets a schedule is judged on, oldest first, each at its place on the schedule's
 * axis (pos: its timestamp in ms under rhythm_time when this reading has one, else its reading
 * count) and its reading count (at); the current reading's place in *now. Under time, onsets
 * kept without a timestamp are left out: a gap half in counts, half in ms means nothing.
 * Returns how many. */
static int rhythm_axis(const detector_t *d, int64_t *pos, uint64_t *at, float *raw, int64_t *now)
{
    const int by_time = d->cfg.rhythm_time && d->rh_now != DETECTOR_NO_TIME;
    int n = 0;
    *now = by_time ? d->rh_now : (int64_t)d->n_seen;
    for (int i = 0; i < d->rh_n; i++) {
        if (by_time && d->rh_ts[i] == DETECTOR_NO_TIME)
            continue;
        pos[n] = by_time ? d->rh_ts[i] : (int64_t)d->rh_at[i];
        at[n] = d->rh_at[i];
        raw[n++] = d->rh_raw[i];
    }
    return n;
}

/* 1 when this reading, an onset, keeps a schedule of the kept onsets (rhythm_axis, oldest
 * first): for some kept onset a, walking back from a finds RHYTHM_REPEATS - 1 more at gaps
 * matching g = now - a (the first match each time), and the short window is no larger than
 * theirs. The minimum gap is counted in readings whatever the axis: it keeps an excursion and
 * its aftermath, which span err_short readings however long they take, from being a schedule
 * of their own. A feed that drops readings shortens the count, not the time, so the minimum
 * only lets fewer gaps through, never a spell that was not one. */
static int keeps_schedule(const detector_t *d)
{
    const uint64_t min = (uint64_t)RHYTHM_MIN_SHORTS * (uint64_t)d->cfg.err_short;
    const double now = detector__short_max(d);
    int64_t pos[DETECTOR_RHYTHM_N], t_now;
    uint64_t at[DETECTOR_RHYTHM_N];
    float raw[DETECTOR_RHYTHM_N];
    const int n = rhythm_axis(d, pos, at, raw, &t_now);
    for (int a = n - 1; a >= 0; a--) {
        const int64_t g = t_now - pos[a];
        if (d->n_seen - at[a] < min || g <= 0)
            continue;
        int k = a;
        float big = raw[a];
        int reps = 1;
        for (int b = a - 1; b >= 0 && reps < RHYTHM_REPEATS; b--) {
            const int64_t h = pos[k] - pos[b];
            if (at[k] - at[b] >= min && gaps_match(g, h)) {
                k = b;
                big = raw[b] > big ? raw[b] : big;
                reps++;
            } else if ((double)h > (1.0 + RHYTHM_TOL) * (double)g) {
                break; /* older ones are farther still */
            }
        }
        if (reps >= RHYTHM_REPEATS && now <= big + RHYTHM_SIZE)
            return 1;
    }
    return 0;
}

/* onset_rhythm: keeps this reading's count, timestamp and short-window size when it is an
 * onset, the oldest of DETECTOR_RHYTHM_N dropped. */
void detector__rhythm_note(detector_t *d, int onset)
{
    if (!d->cfg.onset_rhythm || !onset)
        return;
    if (d->rh_n == DETECTOR_RHYTHM_N) {
        memmove(d->rh_at, d->rh_at + 1, sizeof(uint64_t) * (DETECTOR_RHYTHM_N - 1));
        memmove(d->rh_raw, d->rh_raw + 1, sizeof(float) * (DETECTOR_RHYTHM_N - 1));
        memmove(d->rh_ts, d->rh_ts + 1, sizeof(int64_t) * (DETECTOR_RHYTHM_N - 1));
        d->rh_n--;
    }
    d->rh_raw[d->rh_n] = (float)detector__short_max(d);
    d->rh_ts[d->rh_n] = d->rh_now;
    d->rh_at[d->rh_n++] = d->n_seen;
}

/* onset_tie: 1 when the short window's largest raw score equals, to the float, the largest of
 * the readings that left it since the training (record_excess exactly 0). A raw score is a
 * function of the reading, the prediction and the error scale; the same float twice is the same
 * error again: a fixed-size spike, a sensor at its bound, or the raw score's cap (Z2_CAP). Over
 * NAB in seeds 1-3 the four onsets of this kind are all outside the labelled windows (measured:
 * docs/detection.md, "Forty-eighth round"). */
static int ties_record(const detector_t *d)
{
    return d->cfg.onset_tie && d->rec_n >= d->cfg.err_short &&
           (float)detector__short_max(d) == d->rec_max;
}

/* onset_record: the reported score of an onset (lik at or above red, not capped), ranked by
 * what a maintenance engineer asks first of a new excursion: has the device done this since its
 * training? g grows with the excess e of the short window's largest raw score over the largest
 * of the readings that left it since the training (raw scores are log(1 + z^2), so e is the log
 * of the ratio of the two 1 + z^2: e = 1 is a squared error e times the largest seen); g is 0
 * for an excursion no larger than one the device has shown, and 1/2 (no opinion) while fewer
 * than err_short readings make the reference. l is the likelihood's own place above red. The
 * result stays in [red, 1], so which readings reach red, and the onset filter, are unchanged.
 * onset_quiet k shares the (1 - r) part between l and the quiet before the onset, q = 1 -
 * exp(-s / err_window), s = since_red (the readings since the previous one that reached red; the
 * training resets it to "never", q = 1): most excursions within the record that NAB's labels
 * call false come in bursty spells, a few hundred readings after the previous one, while most of
 * the labelled ones come after a long quiet (measured: docs/detection.md, "Twenty-fourth
 * round"). err_window is the likelihood's own memory: a spell it still holds is not a quiet.
 * record_quiet weighs g by q as well, and counts q's readings across trainings (quiet_n): most
 * records that NAB's labels call false are set in a bursty spell or are the first onset after a
 * training that follows one, while the labelled ones come after a long quiet of the device's
 * (measured: docs/detection.md, "Twenty-fifth round"). A training changes the model, not how
 * long the device has been quiet; a record in a spell is as unsurprising as the spell.
 * onset_rate divides g by 1 + n, n the device's earlier onsets with an exponential memory of
 * err_window readings (ons_rate, onset_rate_note): the quiet sees only the last gap, so a
 * device that sets off onsets every few hundred readings looks quiet again soon after each;
 * its count does not. Among the records NAB's labels call false, the count is two to three
 * times the found windows' (medians 2.2-2.8 against 0.85-1.04, seeds 1-3), a wider split than
 * the gap's (measured: docs/detection.md, "Twenty-sixth round"). range_quiet takes that share
 * of q's credit in p from an onset whose short window stays within the range every channel has
 * shown since the detector began scoring (beyond_range): a long quiet makes an excursion news
 * when it goes where the device has never been; most onsets NAB's labels call false return
 * within it, most found windows leave it (measured: docs/detection.md, "Thirtieth round").
 * onset_rhythm ranks an onset that keeps a schedule (keeps_schedule) at red: the quiet before
 * a nightly job's spike is a day long every day, and the spike is as large as every night's;
 * taking only the quiet's credit away left its l part above NAB's tuned thresholds (measured:
 * docs/detection.md, "Thirty-sixth round"). value_rec (mean_far): the onset is a short mean
 * beyond every value the device has shown, a record of its values rather than of the model's
 * errors, and takes g at 1 (weighed by the quiet and the rate as any record). past (onset_now,
 * onset_past): the error's onset is marked on a reading back in the noise, and l earns
 * nothing. onset_tie ranks an onset that ties the record (ties_record) at red, as a schedule
 * kept: the device has shown exactly this error since its training. */
float detector__onset_rank(const detector_t *d, const float *x, float lik, float red, int value_rec,
                           int past)
{
    if ((d->cfg.onset_rhythm && keeps_schedule(d)) || (!value_rec && ties_record(d)))
        return red; /* the device's routine, not news: the lowest rank an onset has */
    const double r = d->cfg.onset_record, k = d->cfg.onset_quiet;
    double e = detector__record_excess(d);
    double g = value_rec ? 1.0 : isnan(e) ? 0.5 : e > 0.0 ? -expm1(-e) : 0.0;
    double l = red < 1.0f && !past ? ((double)lik - red) / (1.0 - red) : 0.0;
    double q =
        -expm1(-(double)(d->cfg.record_quiet ? d->quiet_n : d->since_red) / d->cfg.err_window);
    if (d->cfg.record_quiet)
        g *= q;
    if (d->cfg.onset_rate)
        g /= 1.0 + d->ons_rate;
    if (d->cfg.range_quiet > 0.0f && !beyond_range(d, x))
        q *= 1.0 - d->cfg.range_quiet; /* after g took it: this weighs the quiet's own credit */
    double p = (1.0 - k) * (l < 1.0 ? l : 1.0) + k * q;
    double s = red + (1.0 - red) * (r * g + (1.0 - r) * p);
    return (float)(s < 1.0 ? s : 1.0);
}

/* onset_rate: counts this reading into ons_rate when it is an onset (onset_rank ranked it), and
 * ages every count by one reading, so each onset weighs exp(-age / err_window). Below 1e-30 the
 * count is 0: it no longer moves a score and would only sink into subnormals. */
void detector__onset_rate_note(detector_t *d, int onset)
{
    if (!d->cfg.onset_rate)
        return;
    double n = (d->ons_rate + onset) * d->ons_decay;
    d->ons_rate = n < 1e-30 ? 0.0 : n;
}
