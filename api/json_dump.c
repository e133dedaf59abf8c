/* api/json_dump.c: jansson's text with each real number in its shortest form.
 *
 * jansson 2.14 writes a real with "%.17g" (JSON_REAL_PRECISION(17), the least that reads back
 * exactly), so an attribute sent as 0.1 came back as 0.10000000000000001 and a limit of 3.3 as
 * 3.2999999999999998 (read68b). Each real is rewritten with the fewest significant digits that
 * read back as the same double (as Python's repr, JavaScript and Go's strconv write it): the
 * value is unchanged, only its spelling. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "dnum.h"
#include "sbuf.h"

/* Writes d, finite and not 0, in its shortest exact form (dnum_shortest's digits, as /query
 * prints numbers) into out: fixed notation from 1e-4 to below 1e16, else exponent as printf
 * writes it ("1e-07"), and always with a '.' or an 'e' so that it reads back as a real. */
static void real_shortest(double d, char *out, size_t cap)
{
    char dig[20], t[48];
    int x, p = dnum_shortest(d, dig, &x);
    size_t k = 0;
    if (d < 0)
        t[k++] = '-';
    if (x >= -4 && x < 16) {
        if (x < 0) { /* 0.000ddd */
            t[k++] = '0';
            t[k++] = '.';
            for (int i = -1; i > x; i--)
                t[k++] = '0';
            memcpy(t + k, dig, (size_t)p);
            k += (size_t)p;
        } else { /* ddd.ddd, or ddd00.0 */
            for (int i = 0; i <= x; i++)
                t[k++] = i < p ? dig[i] : '0';
            t[k++] = '.';
            if (p > x + 1) {
                memcpy(t + k, dig + x + 1, (size_t)(p - x - 1));
                k += (size_t)(p - x - 1);
            } else {
                t[k++] = '0';
            }
        }
        t[k] = '\0';
    } else {
        t[k++] = dig[0];
        if (p > 1) {
            t[k++] = '.';
            memcpy(t + k, dig + 1, (size_t)(p - 1));
            k += (size_t)(p - 1);
        }
        snprintf(t + k, sizeof t - k, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    snprintf(out, cap, "%s", t);
}

char *api__json_dumps(const json_t *v, size_t flags)
{
    char *s = json_dumps(v, flags | JSON_REAL_PRECISION(17));
    if (s == NULL)
        return NULL;
    sbuf_t b;
    sbuf_init(&b);
    size_t i = 0, done = 0, n = strlen(s);
    while (i < n) {
        if (s[i] == '"') { /* a string: skipped whole, escapes and all */
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            i++;
            continue;
        }
        if (s[i] != '-' && (s[i] < '0' || s[i] > '9')) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && strchr("+-.0123456789eE", s[j]))
            j++;
        if (memchr(s + i, '.', j - i) || memchr(s + i, 'e', j - i) || memchr(s + i, 'E', j - i)) {
            double d = strtod(s + i, NULL);
            char t[40];
            if (isfinite(d) && d != 0) {
                real_shortest(d, t, sizeof t);
                if (sbuf_append(&b, s + done, i - done) < 0 || sbuf_append(&b, t, strlen(t)) < 0)
                    goto nomem;
                done = j;
            }
        }
        i = j;
    }
    if (done == 0) { /* nothing rewritten: jansson's text as it is */
        sbuf_deinit(&b);
        return s;
    }
    if (sbuf_append(&b, s + done, n - done) < 0)
        goto nomem;
    free(s);
    return sbuf_steal(&b, NULL);
nomem:
    sbuf_deinit(&b);
    free(s);
    return NULL;
}
