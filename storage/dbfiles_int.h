/* storage/dbfiles_int.h: the database's files on disk: the data folder's lock (storage.c), the
 * files' modes, the lock holders, the paths and messages of SQLite's opens (dbfiles.c), and a
 * read-only open through a descriptor (fdvfs.c). Split from storage_int.h (session 60: it had
 * grown to 957 lines); included by the files that call these. */
#ifndef VIGIL_STORAGE_DBFILES_INT_H
#define VIGIL_STORAGE_DBFILES_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <sys/types.h>

/* storage.c */
/* Takes an exclusive flock on dir/vigil.lock into *fd (closing *fd releases it; *fd may be
 * open on failure). Returns 0, or ERR_IO ("in use by another vigild") / ERR_NOMEM. */
int store__lock_dir(const char *dir, int *fd, char *errmsg, size_t errsize);
/* Whether fd is the file at path now, not a link there (a lock on a file unlinked since guards
 * nothing; a copy renamed by name may have been swapped). Any thread. */
int store__fd_is_named(int fd, const char *path);

/* dbfiles.c (owning thread) */
/* Creates a missing db_path 0640 (O_EXCL, not through a link) before SQLite opens it, so that
 * it and its -wal and -shm are 0640 whatever the umask; of the three that are there, refuses a
 * link or what is not a regular file and takes the bits for other users off the others.
 * Returns 0, or ERR_IO with errmsg. */
int store__db_files_mode(const char *db_path, char *errmsg, size_t errsize);
/* Whether another process holds a POSIX lock on bytes [start, start + len) of path, and whose
 * pid; -1: held, by whom not known (a lock of an open file description, or a holder in another
 * pid namespace); 0: none, or no such file. F_GETLK takes nothing and sees other processes'
 * locks only. It open()s and close()s path, which drops every POSIX lock this process holds
 * on it (dbfiles.c's rule): only where no SQLite connection of this process has the file open
 * (--restore's check, before any; the final checkpoint's line, after the writer's close).
 * Any thread. */
pid_t store__lock_holder(const char *path, off_t start, off_t len);
/* Takes the bits for other users off fd's mode (path's, for the log) when it is a regular file
 * that has them, the group's kept, with one warning (a debug line when quiet); one it may not
 * chmod is warned about, only the first time when warned is not NULL (*warned set then; later
 * failures are debug lines). fd may be an O_PATH descriptor (chmod'ed through /proc/self/fd). */
void store__drop_other_bits(int fd, const char *path, int quiet, int *warned);
/* Takes the bits for other users off db_path's -wal and -shm when they are there (regular
 * files, not links): SQLite creates them with the main file's mode, which vigild could not
 * tighten when another user owns the main file, and gives an empty -wal that mode again at
 * each open. Call once the start's connections are open, and after a snapshot's; quiet (the
 * main file's warning covers them), and a file it cannot change is warned about once per
 * process. Opens each through an O_PATH descriptor only: closing a
 * normal one would drop SQLite's POSIX locks on the file (dbfiles.c). Any thread. */
void store__wal_files_mode(const char *db_path);

/* Records the data folder's and the database file's identity (device, inode) once open, for
 * store_files_check. Opening thread. */
void store__files_ids(store_t *s);
/* Opens *db read-only on the database read through fd, which stays the caller's (fdvfs.c):
 * nothing opened, closed or made beside it. Returns SQLite's code (*db to close either way). */
int store__open_fd(int fd, sqlite3 **db);
/* Every sqlite3_open_v2 of vigild's own database adds this: a symbolic link is refused. SQLite
 * refuses one in any component of the path: give it store__sqlite_path's. */
#define STORE_OPEN_NOFOLLOW SQLITE_OPEN_NOFOLLOW
/* path as SQLite's open (and VACUUM INTO, ATTACH: they take the connection's flags) must be
 * given it: its folder resolved (realpath), the file's own name kept, so that
 * STORE_OPEN_NOFOLLOW refuses only a link in the file's place; path itself, "./" in front of a
 * name beginning with "file:" (SQLite would read a URI), when the folder cannot be resolved.
 * Writes buf (size bytes); returns buf. Any thread. */
const char *store__sqlite_path(const char *path, char *buf, size_t size);
/* The words for a failed sqlite3_open_v2 (rc; db NULL when SQLite could not allocate it): a
 * symbolic link refused by STORE_OPEN_NOFOLLOW in store__db_files_mode's words, else SQLite's
 * message. Static or db's; valid until db's next call. */
const char *store__open_errmsg(sqlite3 *db, int rc);

#endif
