/* common/testhold.c: the test hook that holds a thread at a named point (testhold.h). */
#include "testhold.h"
#include "log.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int test_hold_wait(const char *dir, const char *at, const atomic_int *stop, const char *who)
{
    char flag[4200], held[4210];
    if (dir == NULL || dir[0] == '\0' ||
        snprintf(flag, sizeof flag, "%s/%s", dir, at) >= (int)sizeof flag ||
        access(flag, F_OK) != 0)
        return 0;
    if (who)
        log_warn("%s: VIGIL_TEST_HOLD_DIR is set (a test hook): waiting at '%s'", who, at);
    snprintf(held, sizeof held, "%s.held", flag);
    FILE *f = fopen(held, "w");
    if (f)
        fclose(f);
    struct timespec nap = {0, 100 * 1000000L};
    for (int i = 0; i < 600 && access(flag, F_OK) == 0 && !(stop && atomic_load(stop)); i++)
        nanosleep(&nap, NULL);
    unlink(held);
    return 1;
}
