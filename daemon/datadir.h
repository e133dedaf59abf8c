/* daemon/datadir.h: what --check-config says about the data directory, without touching it. */
#ifndef VIGIL_DATADIR_H
#define VIGIL_DATADIR_H

#include <stddef.h>

/* Main thread. Checks, creating and changing nothing, what store_open would fail on in dir:
 * it exists and is a directory the process may read, write and enter, or it is missing and its
 * parent is such a directory (store_open creates only the last component); vigil.lock,
 * vigil.db, vigil.db-wal and vigil.db-shm, where present, are regular files (not symbolic
 * links) it may read and write; neither is on a kernel filesystem (proc, sysfs, cgroup, ...),
 * where root's permissions pass and nothing can be created. A permission error's reason ends
 * with the user the check ran as. Returns -1 with "DIR: reason" in err (note "") when a start
 * would fail. Returns 0 with note "" when it would not, or with note "DIR/vigil.lock is held:
 * ..." when a running vigild holds the directory, err then "DIR: reason" when a restart would
 * fail on it (else ""): not a failure, as the reload check (the unit's ExecReload=) runs beside
 * the service's own vigild and a reload does not reopen the directory. */
int datadir_check(const char *dir, char *err, size_t errsize, char *note, size_t notesize);

#endif
