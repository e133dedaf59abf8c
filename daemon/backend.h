/* daemon/backend.h: the wiring between the API and storage (and later the models). */
#ifndef VIGIL_BACKEND_H
#define VIGIL_BACKEND_H

#include "api.h"
#include "pipeline.h"
#include "quota.h"
#include "storage.h"
#include "stream.h"

typedef struct backend {
    store_t *store;
    stream_server_t *stream; /* may be NULL */
    pipeline_t *pipe;        /* may be NULL: the model routes then answer 501 */
    quota_t *quota;          /* may be NULL: no device and channel limits */
} backend_t;

/* Fills an api_backend_t whose functions call into b (which must outlive the API server). */
void backend_init(api_backend_t *out, backend_t *b);

#endif
