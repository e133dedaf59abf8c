/* common/err.c: static messages for the ERR_ codes, and the code of an errno. Any thread. */
#include "err.h"

#include <errno.h>

const char *err_str(int code)
{
    switch (code) {
    case ERR_OK:
        return "ok";
    case ERR_NOMEM:
        return "out of memory";
    case ERR_INVAL:
        return "invalid argument";
    case ERR_IO:
        return "I/O error";
    case ERR_BUSY:
        return "busy, try again later";
    case ERR_NOSPACE:
        return "no space left on device";
    case ERR_NOTFOUND:
        return "not found";
    case ERR_CORRUPT:
        return "corrupt or truncated data";
    case ERR_RANGE:
        return "value out of range";
    case ERR_CLOSED:
        return "shutting down";
    case ERR_LIMIT:
        return "limit exceeded";
    case ERR_AGAIN:
        return "store busy reloading after a failed write; try again";
    case ERR_TIMEOUT:
        return "deadline passed";
    case ERR_UNPUBLISHED:
        return "store busy publishing its last write; try again";
    case ERR_RESOURCE:
        return "out of file descriptors or memory; try again";
    case ERR_LOCKED:
        return "the database is locked by another process";
    }
    return "unknown error";
}

int err_from_errno(int e)
{
    return e == ENOSPC || e == EDQUOT                  ? ERR_NOSPACE
           : e == EMFILE || e == ENFILE || e == ENOMEM ? ERR_RESOURCE
                                                       : ERR_IO;
}
