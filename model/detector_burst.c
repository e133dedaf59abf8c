/* model/detector_burst.c: bursts the device has shown before (detector_config.burst_memory).
 *
 * The likelihood (detector_score.c) judges the short mean of the raw scores against a
 * parametric tail (Gaussian for the score, Student's t for the decision) fitted to the long
 * window's short means. Real residuals come in bursts that such a tail does not expect:
 * request counts, traffic, a machine's load steps or a compressor's cycling put an excursion at
 * a tail of 1e-6 every few hundred readings. Each such burst opens an episode, and the freeze
 * keeps its short means out of the long window (so that a lasting fault is not learnt), so the
 * window never learns that the bursts recur: the next one alarms again.
 *
 * With burst_memory the detector remembers its bursts. A burst is an episode that
 *   - lasted fewer than err_short readings and ended by itself (it fits in one short mean: a
 *     longer episode was a lasting change, a fault, which must alarm again if it comes back),
 *   - was followed by err_short readings without an episode (the device came back from it,
 *     and the short window no longer holds any of its readings; an episode that flickers off
 *     and on at a fault's onset is not a burst).
 * burst_wide (>= 2) widens the first: an episode shorter than burst_wide short windows that
 * ended by itself (not released, not accepted): a spike of request counts decays over 10-15
 * readings, longer than one short window.
 * It is recorded with the peak short mean its episode reached. A later short mean is judged
 * against the bursts of the last err_window readings since the last training (a training
 * rescales the raw scores, so the record is emptied with the long window): if m of them peaked
 * at or above it, the excursion is no larger than bursts the device has shown and come back
 * from, and their empirical rate is m among the window's n = ring_len / err_short independent
 * short means. The decision's tail is the larger of the parametric one and m / n: its
 * likelihood is capped at that tail's log scale (1e-10 and [0, 1], as in detector_score.c).
 * One burst in a full window is a tail of 1 / 200, a likelihood of 0.23, below any alarm
 * level: so an opening needs a short mean above every recent burst's peak, and a larger
 * excursion is judged by the parametric tail as before.
 *
 * What it does not touch: the reported score (it ranks onsets by the parametric tail; capped
 * too, NAB's tuned score fell: docs/detection.md, "Twelfth round"), the hold of an open episode
 * (judged on the median, uncapped) and the operating-point likelihood. A device with no burst
 * since its training is judged exactly as without it.
 *
 * State (in struct detector, detector_int.h): up to DETECTOR_MAX_BURSTS bursts, the newest
 * overwriting the oldest, the pending one and the open episode's peak.
 * Invariants: 0 <= burst_n <= DETECTOR_MAX_BURSTS, 0 <= burst_head < DETECTOR_MAX_BURSTS; the
 * burst_n entries before burst_head (circularly) are valid, newest first, and their burst_end
 * do not increase going back. No allocation.
 * Threading: owner thread of the detector. */
#include <math.h>

#include "detector_int.h"

void detector__burst_clear(detector_t *d)
{
    d->burst_n = d->burst_head = d->burst_pend = 0;
    d->ep_peak = d->pend_peak = 0.0f;
    d->pend_end = 0;
}

int detector__burst_span(const struct detector_config *cfg)
{
    return cfg->burst_wide > 1 ? cfg->burst_wide * cfg->err_short : cfg->err_short;
}

void detector__burst_note(detector_t *d, enum detector_state st, double mavg, int released)
{
    const int S = d->cfg.err_short;
    if (st == DET_ANOMALY) {
        float v = (float)mavg;
        if (d->det_state != DET_ANOMALY) {
            d->burst_pend = 0; /* back within err_short readings: the last one was no burst */
            d->ep_peak = v;
        } else {
            d->ep_peak = fmaxf(d->ep_peak, v);
        }
        return;
    }
    if (d->det_state == DET_ANOMALY) {
        /* An episode ends here. A burst is shorter than the short window (err_short readings):
         * a longer episode was a lasting change, a fault, which must alarm again if it comes
         * back. burst_wide: shorter than burst_wide short windows (a spike and its decay),
         * and ended by itself (a released or accepted one was a change of state). */
        const int wide = d->cfg.burst_wide > 1;
        const int by_itself =
            !wide || (!released && !d->ep_accepted && detector__ep_len(d) < d->cfg.accept_after);
        if (d->in_anomaly < detector__burst_span(&d->cfg) && by_itself) {
            d->burst_pend = 1;
            d->pend_peak = d->ep_peak;
            d->pend_end = d->n_seen;
        }
        return;
    }
    /* The device came back from it: err_short readings without an episode (the short window
     * no longer holds any reading of it). Only then is it a burst shown before. */
    if (d->burst_pend && d->n_seen - d->pend_end >= (uint64_t)S) {
        d->burst_pend = 0;
        detector__burst_keep(d, d->pend_peak, d->pend_end);
    }
}

void detector__burst_keep(detector_t *d, float peak, uint64_t end)
{
    d->burst_peak[d->burst_head] = peak;
    d->burst_end[d->burst_head] = end;
    d->burst_head = (d->burst_head + 1) % DETECTOR_MAX_BURSTS;
    if (d->burst_n < DETECTOR_MAX_BURSTS)
        d->burst_n++;
}

float detector__burst_cap(const detector_t *d, double mavg, float lik)
{
    if (d->burst_n == 0 || d->ring_len < 1)
        return lik;
    int m = 0;
    for (int i = 0; i < d->burst_n; i++) {
        int k = ((d->burst_head - 1 - i) % DETECTOR_MAX_BURSTS + DETECTOR_MAX_BURSTS) %
                DETECTOR_MAX_BURSTS;
        if (d->n_seen - d->burst_end[k] > (uint64_t)d->cfg.err_window)
            break; /* older than the long window (the rest are older still) */
        m += (double)d->burst_peak[k] >= mavg;
    }
    if (m == 0)
        return lik;
    double n = (double)d->ring_len / d->cfg.err_short;
    double p = n > m ? m / n : 1.0;
    double s = log(p + 1e-10) / log(1e-10);
    return s < lik ? (float)(s < 0.0 ? 0.0 : s) : lik;
}
