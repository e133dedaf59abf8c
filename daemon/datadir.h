/* daemon/datadir.h: what --check-config says about the data directory, without touching it. */
#ifndef VIGIL_DATADIR_H
#define VIGIL_DATADIR_H

#include <stddef.h>

/* Main thread. Checks, creating and changing nothing, what store_open would fail on in dir:
 * it exists and is a directory the process may read, write and enter, or it is missing and its
 * parent is such a directory (store_open creates only the last component); vigil.lock,
 * vigil.db, vigil.db-wal and vigil.db-shm, where present, are regular files (not symbolic
 * links) it may read and write. Returns 0, with note set to "" or to "DIR/vigil.lock is held:
 * another vigild runs on it", which is not a failure: the reload check (the unit's
 * ExecReload=) runs while the service's own vigild holds it. Returns -1 with "DIR: reason" in
 * err (note "") when a start would fail. */
int datadir_check(const char *dir, char *err, size_t errsize, char *note, size_t notesize);

#endif
