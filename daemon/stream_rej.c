/* daemon/stream_rej.c: the refusals of one stream admission, answered in line order; see
 * stream_rej.h. */
#include "stream_rej.h"

#include <stdlib.h>
#include <string.h>

/* A kept refusal: its reason is at text + at, and at is also its order of arrival. */
struct rej {
    uint32_t item;
    int counted;
    size_t at;
};

static int rej_cmp(const void *a, const void *b)
{
    const struct rej *x = a, *y = b;
    return x->item != y->item ? (x->item < y->item ? -1 : 1) : (x->at > y->at) - (x->at < y->at);
}

void rej_init(rejects_t *r, rej_answer_fn answer, void *arg)
{
    *r = (rejects_t){.answer = answer, .arg = arg};
    sbuf_init(&r->text);
}

void rej_send(rejects_t *r)
{
    if (r->n > 1) /* not with r->v NULL (nothing kept yet): qsort's base is declared nonnull */
        qsort(r->v, r->n, sizeof *r->v, rej_cmp);
    for (size_t i = 0; i < r->n; i++)
        r->answer(r->arg, r->v[i].item, r->text.data + r->v[i].at, r->v[i].counted);
    r->n = 0;
    r->text.len = 0;
}

void rej_keep(rejects_t *r, uint32_t item, const char *reason, int counted)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct rej *v = realloc(r->v, cap * sizeof *v);
        if (v != NULL) {
            r->v = v;
            r->cap = cap;
        }
    }
    const size_t at = r->text.len;
    if (r->n == r->cap || sbuf_append(&r->text, reason, strlen(reason) + 1)) {
        rej_send(r);
        sbuf_deinit(&r->text); /* clears its oom too */
        sbuf_init(&r->text);
        r->answer(r->arg, item, reason, counted);
        return;
    }
    r->v[r->n++] = (struct rej){.item = item, .counted = counted, .at = at};
}

void rej_deinit(rejects_t *r)
{
    sbuf_deinit(&r->text);
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}
