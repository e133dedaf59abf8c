/* tests/test_detector_fx.h: what the parts of test_detector share: the fixtures of
 * tests/test_detector_fx.c, their constants, and each part's test table (run by
 * tests/test_detector.c's main). Include after <cmocka.h>, "detector.h" and "err.h". */
#ifndef VIGIL_TEST_DETECTOR_FX_H
#define VIGIL_TEST_DETECTOR_FX_H

#include <stddef.h>
#include <stdint.h>

/* Readings after a fault's onset within which it must be flagged as an anomaly. */
#define FAULT_LATENCY 20

uint64_t rng_next(uint64_t *s);
double gauss(uint64_t *s);
float *make_process(int n, uint64_t seed);
extern int trainings;
void train_on(detector_t *d, const float *x, int n, struct detector_train_info *info);
void step_ts(detector_t *d, int64_t ts_ms, const float *series, int t, int C,
             const uint8_t *present, struct detector_result *res);
void step(detector_t *d, const float *series, int t, int C, const uint8_t *present,
          struct detector_result *res);
/* A detector of C channels on cfg, its creation asserted (caller owns; detector_destroy it);
 * new_detector: on the defaults. */
detector_t *new_detector_cfg(const struct detector_config *cfg, int C);
detector_t *new_detector(int C);
/* x[n] (n > 1,401): an AR(1) level (0.5, innovations 0.1 drawn from seed) with a burst of two
 * readings of +by at 1,400 (test_trip_level's trip_run and the trip's format tests). */
void make_trip_burst(float *x, int n, uint64_t seed, float by);
/* A linear process, n readings of C = 4 channels: each channel relaxes towards its own level
 * and leans on the next one, x_t[c] = 0.8 x_{t-1}[c] + 0.15 x_{t-1}[c+1] + noise (around
 * levels 10 + c). The linear baseline is the exact model of it, so it validates better than a
 * briefly trained LSTM. Caller frees. (test_model_kind, and the io part's model_kind loads.) */
float *make_linear(int n, uint64_t seed);
/* The state machine's state after d's step that gave res: res->state but for trip_level's
 * one-reading trips (reported in anomaly, the machine not), each asserted to be a reading
 * reported at the trip level. The on-delay's tests judge this state: the trip bypasses the
 * on-delay by design, and the state machine beneath it is unchanged. */
enum detector_state machine_state(const detector_t *d, const struct detector_result *res);
void assert_same_result(const struct detector_result *a, const struct detector_result *b, int C);
/* model/detector_io.c's CRC (internal to the model library). */
uint32_t model__crc32(uint32_t crc, const void *buf, size_t n);

/* Format 6's config: up to serving_f16 (format 7's first field), with the struct's tail
 * padding (detector_load.c). */
#define CFG6_SIZE                                                                                  \
    ((offsetof(struct detector_config, serving_f16) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))

void cut_ep_accepted(unsigned char *buf, size_t *len);
/* v's bits as an int: the junk value cut_to_format (and cut_and_continue, load_older_format,
 * save_kept_and_cut) writes where a cut save had no field, a float that the field's check
 * would refuse or take as another setting. */
int float_bits(float v);
void config_as_format(struct detector_config *cfg, size_t field);
size_t cut_weights(unsigned char *buf, size_t len, int C, const struct detector_config *cfg);
/* A fleet of pumps run in step, as vigil-sim's are: the same dynamics and sensors, one speed
 * schedule for all (a 600-reading cycle and a 97-reading one), each pump from the same start,
 * each with its own noise. n readings of PUMP_C channels (speed, flow, pressure, current,
 * temperature, vibration, power, rpm) of pump m. */
#define PUMP_C 8

float *make_pump(int n, int m);
void as_format6(unsigned char *buf, size_t *len, uint32_t fmt);
int cut_to_format(unsigned char *buf, size_t *len, size_t field, int junk, uint32_t fmt);
void drop_before_contrib(unsigned char *buf, size_t *len, const detector_t *d, size_t n,
                         const void *expect);
void drop_opin_run(unsigned char *buf, size_t *len, detector_t *d);
int cut_and_continue(const struct detector_config *cfg, int C, const float *x, int n, int cut,
                     size_t field, int junk, uint32_t fmt, double *top, int *opened);
int load_older_format(const struct detector_config *cfg, const float *x, int n, int cut, int C,
                      size_t field, int junk, uint32_t fmt);
detector_t *reloaded(const detector_t *d);
void step_twin(detector_t *d, detector_t **e, int save_at, const float *x, int t, int C,
               struct detector_result *res);
int onset_run(const struct detector_config *cfg, float *x, int n, int C, int onset, int save_at,
              int *before, int *top, int *held);
/* season_opinion: one channel, a daily load curve of period OPIN_P: low for 80 readings, a
 * 20-reading ramp up by 2, high for 80, a ramp down, under an AR(1) wander (0.5, innovations
 * 0.2); a ramp's steps (0.1 a reading) are ordinary against the wander's, so the training at
 * 1,200 finds the period but the profile does not validate 10 % better as a one-step predictor
 * and is not chosen. From `stop` (the start of a low phase) the load curve fails to come: the
 * next ramp up (from stop + 80) does not happen, the channel stays low, every reading an
 * ordinary step from the last; or, with keep > 0, the curve flattens: from `stop` the day's
 * swing is keep times its own (keep 0: it fails to come). */
#define OPIN_P 200

float *make_slow_cycle(int n, int stop, uint64_t seed, double keep);
int load_recrc(const unsigned char *buf, size_t len, unsigned char *out);
float *make_step_drift(int n, int onset, double by, double drift, uint64_t seed);
void slow_cycle_cut(const struct detector_config *cfg, double keep, size_t field, uint32_t fmt);
float *make_end_pump(int n, int len, int noisier, uint64_t seed);
float *make_noisier(int n, double f, uint64_t seed);
void warn_run_config(struct detector_config *cfg, int wr);
enum detector_end first_end(detector_t *d, detector_t *a, const float *x, int from, int n);
void step_alike(detector_t **d, int n, const float *x, int t, int C, struct detector_result *r);
#define OR_ONSET 1400 /* after the training at 1,200 */

float *make_new_level(uint64_t seed, double step);
void assert_multichannel_same(const struct detector_config *on, size_t field, const char *name);
void assert_multichannel_unchanged(size_t field, const char *name);
#define HR_ONSET OR_ONSET /* make_new_level's onset, after the training at 1,200 */

#define HR_N 2000 /* make_new_level's length */

float *make_hold_case(uint64_t seed, int kind);
#define RH_PERIOD 288 /* a day at 5-minute readings */

#define RH_SPIKES 12

#define RH_N (150 + (RH_SPIKES - 1) * RH_PERIOD + 100)

float *make_routine(uint64_t seed, int big, int off, int *at);
#define PF_ONSET 2000 /* the fault's first reading */

#define PF_N 3000

float *make_hunting(uint64_t seed);
float *make_drift(uint64_t seed, double rate, int len);
int cfg_drift_run(const struct detector_config *cfg, float *x, int save_at, int *first_end,
                  enum detector_end *why);
/* accept_grow's error blocks in a save (format 43): two counts and four sums, right before
 * prev_contrib. */
#define GROW_STATE (2 * sizeof(int) + 4 * sizeof(double))

/* hold_echo's level and error run in a save (format 44): three floats and two counts, right
 * before prev_contrib. */
#define ECHO_STATE (3 * sizeof(float) + 2 * sizeof(int))

/* hold_decay's peak and the readings left unlearnt (format 47; format 46 had the readings since
 * the peak between them): a float and a count, right before prev_contrib. */
#define DECAY_STATE (sizeof(float) + sizeof(int))

void save_kept_and_cut(const struct detector_config *cfg, size_t field, int junk, uint32_t fmt,
                       struct detector_config *kept, struct detector_config *cut);
void drift_cut_and_kept(const struct detector_config *cfg, int cut_at, size_t field, uint32_t fmt,
                        struct detector_config *kept, struct detector_config *cut);
float *make_decay_case(uint64_t seed, int kind);
int run_to_decay_quiet(detector_t *d, const float *x);

extern const struct CMUnitTest detector_score_tests[];
extern const size_t detector_score_count;
extern const struct CMUnitTest detector_warn_tests[];
extern const size_t detector_warn_count;
extern const struct CMUnitTest detector_train_tests[];
extern const size_t detector_train_count;
extern const struct CMUnitTest detector_calib_tests[];
extern const size_t detector_calib_count;
extern const struct CMUnitTest detector_number_tests[];
extern const size_t detector_number_count;
extern const struct CMUnitTest detector_io_tests[];
extern const size_t detector_io_count;
extern const struct CMUnitTest detector_season_tests[];
extern const size_t detector_season_count;
extern const struct CMUnitTest detector_shift_tests[];
extern const size_t detector_shift_count;
extern const struct CMUnitTest detector_burst_tests[];
extern const size_t detector_burst_count;
extern const struct CMUnitTest detector_onset_tests[];
extern const size_t detector_onset_count;
extern const struct CMUnitTest detector_trip_tests[];
extern const size_t detector_trip_count;
extern const struct CMUnitTest detector_range_tests[];
extern const size_t detector_range_count;
extern const struct CMUnitTest detector_rank_tests[];
extern const size_t detector_rank_count;
extern const struct CMUnitTest detector_level_tests[];
extern const size_t detector_level_count;
extern const struct CMUnitTest detector_inputs_tests[];
extern const size_t detector_inputs_count;
extern const struct CMUnitTest detector_hold_tests[];
extern const size_t detector_hold_count;
extern const struct CMUnitTest detector_episode_tests[];
extern const size_t detector_episode_count;

#endif
