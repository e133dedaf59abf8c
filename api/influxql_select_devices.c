/* api/influxql_select_devices.c: which devices a SELECT reads, for influxql_select.c: the
 * statement's regular expressions on the device tag (compiled, and met by an id or not), the list
 * of every device's id (GROUP BY the device tag over a name that is no device, or a regex that
 * may select several). Moved unchanged out of influxql_select.c (session 48) to keep that file
 * under ~900 lines; whether the FROM name is a device's id is api__iq_is_device's
 * (influxql_stmt.c, session 49), which SHOW TAG VALUES shares.
 * Any thread; no lock. */
#include "influxql_select.h"

#include <stdlib.h>
#include <string.h>

/* An api__iq_devices callback: adds d's id to the struct id_list arg (nomem set, and the walk
 * stopped, when it cannot grow). */
int api__iq_id_collect(void *arg, const api_device_t *d)
{
    struct id_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **ids = realloc(l->ids, cap * sizeof *ids);
        if (ids == NULL) {
            l->nomem = 1;
            return 1;
        }
        l->ids = ids;
        l->cap = cap;
    }
    if ((l->ids[l->n] = strdup(d->id)) == NULL) {
        l->nomem = 1;
        return 1;
    }
    l->n++;
    return 0;
}

/* Compiles q's regexes into d. Returns 0 (d to api__iq_dev_re_free), or 1 with run->err (nothing
 * held). */
int api__iq_dev_re_comp(qrun_t *run, const select_t *q, struct dev_re *d)
{
    const char *src[2] = {q->device_re, q->device_re2};
    d->n = 0;
    d->either = q->device_re_or;
    for (int i = 0; i < 2 && src[i] != NULL; i++) {
        if (api__iq_regcomp(run, &d->re[i], src[i])) {
            if (i > 0)
                regfree(&d->re[0]);
            return 1;
        }
        d->n++;
    }
    return 0;
}

/* Frees d's regexes (d itself is the caller's). */
void api__iq_dev_re_free(struct dev_re *d)
{
    for (int i = 0; i < d->n; i++)
        regfree(&d->re[i]);
}

/* Whether id meets d (none: every id does). */
int api__iq_dev_re_match(const struct dev_re *d, const char *id)
{
    if (d == NULL || d->n == 0)
        return 1;
    int a = regexec(&d->re[0], id, 0, NULL, 0) == 0;
    if (d->n == 1 || a == d->either)
        return a;
    return regexec(&d->re[1], id, 0, NULL, 0) == 0;
}
