/* tests/test_storage.c: unit tests of storage/ on temporary databases under /tmp: main().
 *
 * Each test makes its own directory with mkdtemp and removes it. Tests that need the writer in a
 * known state use the hooks of storage_int.h (hold the writer, run a pragma on its connection)
 * instead of timing, so nothing here depends on how fast the machine is.
 *
 * The tests are in tests/test_storage_<topic>.c (writes, queue, chunks, rows, pending, devices,
 * reload, readers, migrate, events, retention, compaction, idle, fulldisk, walline, snapshot), each
 * exporting its table, run below one after the other; the fixtures and helpers they share are
 * in tests/storage_fx.c and storage_fx.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_int.h"
#include "storage_fx.h"
#include "test_parts.h"

int main(void)
{
    log_set_level(LOG_LEVEL_WARN);
    store__test_wstate_on = 1; /* every store below publishes its writer's state (wst()) */
    /* The test files' tables, run as one group (as one table was before the split). */
    const struct test_part files[] = {
        {storage_writes_tests, storage_writes_ntests},
        {storage_queue_tests, storage_queue_ntests},
        {storage_chunks_tests, storage_chunks_ntests},
        {storage_rows_tests, storage_rows_ntests},
        {storage_pending_tests, storage_pending_ntests},
        {storage_devices_tests, storage_devices_ntests},
        {storage_reload_tests, storage_reload_ntests},
        {storage_readers_tests, storage_readers_ntests},
        {storage_migrate_tests, storage_migrate_ntests},
        {storage_events_tests, storage_events_ntests},
        {storage_evbounds_tests, storage_evbounds_ntests},
        {storage_retention_tests, storage_retention_ntests},
        {storage_compaction_tests, storage_compaction_ntests},
        {storage_idle_tests, storage_idle_ntests},
        {storage_fulldisk_tests, storage_fulldisk_ntests},
        {storage_walline_tests, storage_walline_ntests},
        {storage_snapshot_tests, storage_snapshot_ntests},
    };
    /* VIGIL_TEST_ONLY, one test (a shell pattern) when set: ctest unit_storage_failalloc runs
     * only the test that needs tests/fault/failalloc.c preloaded. */
    return test_parts_run(files, sizeof files / sizeof files[0], "VIGIL_TEST_ONLY");
}
