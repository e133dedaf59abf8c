/* common/err.h: the error codes every vigil module returns.
 *
 * Functions return int: 0 on success, one of the negative ERR_ codes below on failure.
 * err_str() gives a static, human-readable message for a code. */
#ifndef VIGIL_ERR_H
#define VIGIL_ERR_H

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,        /* out of memory */
    ERR_INVAL = -2,        /* invalid argument or input */
    ERR_IO = -3,           /* I/O or database error */
    ERR_BUSY = -4,         /* queue full; try again later */
    ERR_NOSPACE = -5,      /* disk full */
    ERR_NOTFOUND = -6,     /* no such object */
    ERR_CORRUPT = -7,      /* corrupt or truncated data */
    ERR_RANGE = -8,        /* value out of range */
    ERR_CLOSED = -9,       /* the object is shutting down */
    ERR_LIMIT = -10,       /* a configured limit was exceeded */
    ERR_AGAIN = -11,       /* the store is reloading after a failed write; try again */
    ERR_TIMEOUT = -12,     /* the caller's deadline passed */
    ERR_UNPUBLISHED = -13, /* the store's last commit is not readable yet (the writer stalled
                            * between its COMMIT and publishing it); try again */
    ERR_RESOURCE = -14,    /* the process is out of file descriptors, or the system of them or
                            * of memory (EMFILE, ENFILE, ENOMEM), for now; try again */
    ERR_LOCKED = -15,      /* another process holds the database's lock (SQLITE_BUSY after the
                            * busy timeout: a write transaction, an exclusive lock); try again */
};

/* Any thread. Returns a static string; never NULL (unknown codes get "unknown error"). */
const char *err_str(int code);

/* Any thread. The code of a failed OS call's errno e: ERR_NOSPACE (ENOSPC, EDQUOT: the volume
 * is full), ERR_RESOURCE (EMFILE, ENFILE, ENOMEM: the next try may succeed), else ERR_IO. */
int err_from_errno(int e);

#endif
