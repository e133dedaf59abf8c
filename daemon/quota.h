/* daemon/quota.h: limits on the devices and channels clients may create.
 *
 * A client that invents a new device id or channel name with every reading would grow the
 * database's maps, the writer's memory and the pipeline without bound. The quota keeps the set
 * of known devices and, per device, the hashes of its channel names, and admits a point only if
 * it creates no device beyond storage.max_devices and no channel beyond
 * storage.max_channels_per_device. A refused point is removed from its batch before the write
 * and reported, by item, like a parse error. The set is filled from storage at start and on
 * reload; in between it counts admitted points, so it can be ahead of storage by writes that
 * then failed and behind it by a deletion racing a write, never by more than the writes in
 * flight. Any thread (one mutex, a leaf). */
#ifndef VIGIL_QUOTA_H
#define VIGIL_QUOTA_H

#include "api.h"
#include "batch.h"
#include "storage.h"

#include <stddef.h>

typedef struct quota quota_t;

/* Creates an empty quota. Returns 0 or ERR_NOMEM. Caller owns *out; free with quota_destroy. */
int quota_create(quota_t **out, size_t max_devices, size_t max_channels);

/* Frees it. NULL is a no-op. */
void quota_destroy(quota_t *q);

/* Changes the limits (a reload). Devices and channels beyond new, lower limits stay; only new
 * ones are refused. */
void quota_set_limits(quota_t *q, size_t max_devices, size_t max_channels);

/* Replaces the known set with every device and channel in storage. Returns 0, ERR_IO or
 * ERR_NOMEM (the quota is then unchanged). */
int quota_load(quota_t *q, store_t *s);

/* Checks points [first, b->npoints) in order, registering what each admitted point creates.
 * Refused points are removed from b (the others keep their order) and reported through reject
 * with their item and a reason. Returns 0, or ERR_NOMEM (b is then unchanged; the request
 * should fail as a whole). */
int quota_admit(quota_t *q, batch_t *b, size_t first, api_reject_cb reject, void *arg);

/* Registers a device declared without readings (PUT). Returns 0 (also when it is known), or
 * ERR_LIMIT when it would exceed the device limit, or ERR_NOMEM. */
int quota_device_add(quota_t *q, const char *device);

/* Forgets a deleted device and its channels. */
void quota_device_remove(quota_t *q, const char *device);

/* The number of known devices. */
size_t quota_devices(quota_t *q);

#endif
