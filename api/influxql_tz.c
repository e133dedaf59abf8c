/* api/influxql_tz.c: whether tz('zone') names a zone influxd's Go (time.LoadLocation) finds,
 * remembered, so that a dashboard refreshing a tz() query every few seconds does not open
 * files under /usr/share/zoneinfo on each refresh.
 *
 * The answers (found or not) are kept in TZ_SLOTS slots, each for TZ_TTL_S seconds (a tzdata
 * update is seen within that time); the slot taken next is the oldest answer's. A name longer
 * than TZ_NAME_MAX is checked each time and not kept (the slots copy the names they keep, each
 * malloc'd, freed when its slot is taken again; what remains at exit is reachable).
 *
 * A check that could not be made (a zone file not opened for want of descriptors or memory:
 * EMFILE, ENFILE, ENOMEM) is neither an answer nor kept: the caller answers it as the
 * transient failure it is, and the next query checks again. Only "found" and "not found"
 * (ENOENT and the like) are remembered.
 *
 * Any thread: /query runs on libmicrohttpd's threads. Lock: tz_lock guards slots; it is never
 * held while a file is read, and no other lock is taken under it. */
#include "err.h"
#include "influxql.h"
#include "vtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_SLOTS    64
#define TZ_NAME_MAX 255
#define TZ_TTL_S    60

struct tz_slot {
    char *name; /* owned; NULL: empty */
    int known;  /* 1 found, 0 not */
    double at;  /* CLOCK_MONOTONIC seconds of the check */
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz_slot slots[TZ_SLOTS]; /* guarded by tz_lock */

/* Whether errno e, from opening or reading a zone file, says only that the process lacks what
 * the check needs now (descriptors, memory: EMFILE, ENFILE, ENOMEM), not whether the file is
 * there: common/err.c's mapping, the one the snapshots use. */
static int tz_transient(int e)
{
    return err_from_errno(e) == ERR_RESOURCE;
}

/* The check itself: Go's LoadLocation rules. 1, 0, or a negative errno when the check could not
 * be made (tz_transient). Opens files. */
static int tz_check(const char *name)
{
    static const char *const dirs[] = {"/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/",
                                       "/usr/lib/locale/TZ/"};
    if (strstr(name, "..") != NULL || name[0] == '/' || name[0] == '\\')
        return 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *path = malloc(strlen(dirs[i]) + strlen(name) + 1);
        if (path == NULL)
            return -ENOMEM;
        strcpy(path, dirs[i]);
        strcat(path, name);
        FILE *f = fopen(path, "rb");
        int e = errno;
        free(path);
        if (f == NULL && tz_transient(e))
            return -e; /* the file may well be there: no answer */
        if (f == NULL)
            continue;
        char magic[4];
        errno = 0;
        int tzif = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
        e = ferror(f) ? errno : 0;
        fclose(f);
        if (!tzif && tz_transient(e))
            return -e;
        if (tzif)
            return 1;
    }
    return 0;
}

/* Takes ownership of name (freed if not kept). */
static void tz_keep(char *name, int known, double at)
{
    pthread_mutex_lock(&tz_lock);
    struct tz_slot *take = NULL, *oldest = &slots[0];
    for (int i = 0; i < TZ_SLOTS && take == NULL; i++) {
        struct tz_slot *sl = &slots[i];
        if (sl->name != NULL && strcmp(sl->name, name) == 0)
            take = sl; /* another thread checked it meanwhile, or its answer expired */
        else if (sl->name == NULL || (oldest->name != NULL && sl->at < oldest->at))
            oldest = sl; /* an empty slot, else the oldest answer */
    }
    if (take == NULL)
        take = oldest;
    free(take->name);
    take->name = name;
    take->known = known;
    take->at = at;
    pthread_mutex_unlock(&tz_lock);
}

int api__iq_tz_known(const char *name)
{
    if (name[0] == '\0' || strcmp(name, "UTC") == 0 || strcmp(name, "Local") == 0)
        return 1;
    size_t len = strlen(name);
    if (len > TZ_NAME_MAX)
        return tz_check(name);
    double t = vtime_mono_s();
    pthread_mutex_lock(&tz_lock);
    for (int i = 0; i < TZ_SLOTS; i++) {
        if (slots[i].name != NULL && t - slots[i].at < TZ_TTL_S &&
            strcmp(slots[i].name, name) == 0) {
            int known = slots[i].known;
            pthread_mutex_unlock(&tz_lock);
            return known;
        }
    }
    pthread_mutex_unlock(&tz_lock);
    int known = tz_check(name);
    if (known < 0)
        return known; /* not kept: the next query checks again */
    char *copy = malloc(len + 1);
    if (copy != NULL) { /* out of memory: the answer stands, not kept */
        memcpy(copy, name, len + 1);
        tz_keep(copy, known, t);
    }
    return known;
}
