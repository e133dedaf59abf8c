/* daemon/stream_rej.h: the refusals of one stream admission, kept and answered in line order.
 *
 * The admit hook refuses in passes (backend.c: the time window over every point, then the
 * quotas), so a later line's time refusal comes before an earlier line's quota refusal; the
 * stream promises its "error N" lines in line order, so stream.c keeps an admission's refusals
 * here and answers them sorted by line once the hook is done. The refusals of one line keep
 * their order of arrival. Memory: one entry and a copy of the reason per refusal, bounded by
 * the points of one read. Out of memory, rej_keep answers those kept and the new one at once
 * (in line order no more, as before this list). One owner; no locks. */
#ifndef VIGIL_STREAM_REJ_H
#define VIGIL_STREAM_REJ_H

#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* Answers one refusal: line item, its reason, counted (a limit refused it, not a failure of
 * the hook). */
typedef void (*rej_answer_fn)(void *arg, uint32_t item, const char *reason, int counted);

struct rej;

typedef struct rejects {
    rej_answer_fn answer;
    void *arg;
    sbuf_t text;   /* the reasons, each NUL-terminated */
    struct rej *v; /* the refusals kept, in order of arrival */
    size_t n, cap;
} rejects_t;

/* An empty list answering through answer(arg, ...); no allocation. */
void rej_init(rejects_t *r, rej_answer_fn answer, void *arg);

/* Keeps a refusal of line item (reason copied); out of memory, answers those kept (rej_send)
 * and this one now. */
void rej_keep(rejects_t *r, uint32_t item, const char *reason, int counted);

/* Answers the refusals kept so far sorted by line, and empties r. */
void rej_send(rejects_t *r);

/* Frees r's memory (without answering what it still holds). */
void rej_deinit(rejects_t *r);

#endif
