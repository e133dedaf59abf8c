/* api/influxql_select_devices.c: which devices a SELECT reads, for influxql_select.c: the
 * statement's regular expressions on the device tag (compiled, and met by an id or not), the list
 * of every device's id (GROUP BY the device tag over a name that is no device, or a regex that
 * may select several), and whether the FROM name is a device's id. Moved unchanged out of
 * influxql_select.c (session 48) to keep that file under ~900 lines.
 * Any thread; reads through be.device_find or be.device_get; no lock. */
#include "influxql_select.h"
#include "err.h"

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

/* The device_get callback of api__iq_from_is_device: the device exists. */
static int exists_cb(void *arg, const api_device_t *d)
{
    (void)d;
    *(int *)arg = 1;
    return 0;
}

/* Whether q's FROM name is a device's id: 1, 0 (no such device, or no store), or the backend's
 * error (never taken for "no": the statement would read every device as the FROM name's
 * series). Whether the device exists needs no counters, so the lookup is device_find, which
 * answers at once while the store reloads them after a failed write; device_get (a backend
 * without device_find) waits for them and may give ERR_AGAIN. */
int api__iq_from_is_device(api_request_t *r, const select_t *q)
{
    const api_backend_t *be = &r->srv->be;
    int found = 0, rc = 0;
    if (be->device_find != NULL)
        rc = be->device_find(be->ctx, q->from, exists_cb, &found);
    else if (be->device_get != NULL)
        rc = be->device_get(be->ctx, q->from, r->read_deadline_us, exists_cb, &found);
    return rc == 0 || rc == ERR_NOTFOUND ? found : rc;
}
