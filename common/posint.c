/* common/posint.c: a positive whole number of digits only, with an upper bound (posint.h). The
 * digits are checked before strtoll reads them, which would skip blanks and take a sign. Any
 * thread; no state. */
#include "posint.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int posint_parse(const char *s, long long max, long long *out)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || s[digits] != '\0')
        return ERR_INVAL;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v > max)
        return ERR_RANGE;
    if (v == 0)
        return ERR_INVAL;
    *out = v;
    return 0;
}
