/* common/posint.c: a positive whole number of digits only, with an upper bound (posint.h). The
 * digits are checked before strtoull reads them, which would skip blanks and take a sign (and
 * negate a "-"). Any thread; no state. */
#include "posint.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int posint_parse(const char *s, unsigned long long max, unsigned long long *out)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || s[digits] != '\0')
        return ERR_INVAL;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v > max)
        return ERR_RANGE;
    if (v == 0)
        return ERR_INVAL;
    *out = v;
    return 0;
}
