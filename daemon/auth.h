/* daemon/auth.h: reading the token file named by --auth-file or [http] auth_file.
 *
 * One token per line, "ROLE TOKEN" (ROLE: read, write or admin; TOKEN: 16 to 256 printable
 * characters without spaces); blank lines and lines starting with '#' are ignored. Loop thread
 * (start-up and reload). */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include "api.h"

#include <stddef.h>

/* Shortest and longest token accepted. */
#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256

/* Reads the file into a new token set. Returns 0 and *out (caller owns; free with
 * api_auth_destroy), or -1 with "FILE:LINE: reason" or "FILE: reason" in err. A file others
 * may read is accepted with a warning in *warn (empty when none). */
int auth_load(const char *path, api_auth_t **out, char *warn, size_t warnsize, char *err,
              size_t errsize);

#endif
