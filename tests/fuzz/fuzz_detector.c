/* tests/fuzz/fuzz_detector.c: libFuzzer target of the saved-detector loader (model/detector.h,
 * detector_load), which restores each device's detector from the database at start-up. Each
 * input is loaded as it is and with its trailing CRC-32 made consistent (to get past the CRC
 * into the bounds checks). Whatever loads must save again and load back, and then score a few
 * readings (a spike among them): the state the loader accepted is used as the daemon uses it
 * after a restart (onset_rhythm's kept onsets, the short window's hold, the records), so a
 * value that passes the checks but breaks an index or an assumption shows here. The scored state
 * must save and load back too (session 63): the daemon saves a detector after it stepped, so a
 * count loaded at its bound and stepped one past it would be a saved state the next start
 * refuses (the device's detector lost). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "err.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Scores a few readings, a spike among them, with d (its state as loaded). */
static void run(detector_t *d)
{
    float x[DETECTOR_MAX_CHANNELS];
    const int C = detector_channels(d);
    for (int t = 0; t < 4; t++) {
        struct detector_result res;
        for (int c = 0; c < C; c++)
            x[c] = t == 2 ? 50.0f : 0.1f * (float)c;
        if (detector_step(d, x, NULL, &res) != 0)
            abort();
    }
}

/* Saves d and loads it back (the loaded copy returned); any failure is a defect: d is a state
 * the loader accepted, or one scored from such a state. */
static detector_t *round_trip(const detector_t *d)
{
    size_t n = detector_save_size(d), got = 0;
    uint8_t *out = malloc(n ? n : 1);
    detector_t *back = NULL;
    if (!out || detector_save(d, out, n, &got) != 0 || detector_load(&back, out, got) != 0)
        abort();
    free(out);
    return back;
}

static void check(const uint8_t *buf, size_t len)
{
    detector_t *d = NULL;
    int rc = detector_load(&d, buf, len);
    if (rc == 0) {
        detector_t *d2 = round_trip(d);
        run(d2);
        /* The one count the loader bounds that the steps do not hold at its bound: the readings
         * seen (2^62, which a device never reaches; the bound keeps the arithmetic on it safe).
         * A state loaded within the run's readings of it is stepped past it: not a defect. */
        if (detector_seen(d2) <= ((uint64_t)1 << 62))
            detector_destroy(round_trip(d2));
        detector_destroy(d2);
        detector_destroy(d);
    } else if (rc != ERR_CORRUPT && rc != ERR_INVAL && rc != ERR_NOMEM) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    check(buf, size);
    if (size >= 16) {
        uint32_t crc = model__crc32(0, buf, size - 4);
        memcpy(buf + size - 4, &crc, 4); /* native order, as detector_io.c writes it */
        check(buf, size);
    }
    free(buf);
    return 0;
}
