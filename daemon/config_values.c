/* daemon/config_values.c: the parsers of setting values that are not a plain lookup: decimal
 * numbers (and the hints said when a value is almost one), durations and listen addresses.
 * Declared in config_int.h. Kept apart from config.c, which holds the settings table, config_set,
 * the file's reading and validation, because these are pure string checks that know nothing of
 * the table. Any thread (no state). */
#include "config_int.h"
#include "vtime.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The length of the decimal number v starts with: "0" or a digit 1-9 and more digits, after a
 * '-' with minus_ok; 0 when v starts with none. A '+' sign and leading zeros are refused where
 * numbers are read (settings and flags): "010" is ten to strtoll and eight to an operator used
 * to C or a shell, and "+4" or " 4" were taken by strtoll though no setting is written so. */
size_t config__decimal_len(const char *v, int minus_ok)
{
    size_t sign = minus_ok && *v == '-';
    size_t digits = strspn(v + sign, "0123456789");
    if (digits == 0 || (digits > 1 && v[sign] == '0') || (sign && v[1] == '0'))
        return 0;
    return sign + digits;
}

/* Why a value that is not a plain decimal number is refused: the " (...)" said after "is not an
 * integer ..." for the two forms an operator may mean as a number ("+4", "010"), else "". */
const char *config__number_hint(const char *v)
{
    if (*v == '+')
        return " (write it without a '+' sign)";
    if (*v == '-')
        v++;
    if (v[0] == '0' && v[1] >= '0' && v[1] <= '9')
        return " (no leading zeros: numbers are decimal)";
    return "";
}

/* Parses a duration: "" or 0 with or without a unit ("0", "0s", "0d": none), or a whole number
 * with one unit, s, m, h, d or w ("30d", "12h"), or ms too when ms_ok ("250ms"), into ms within
 * [min, max] (or 0). Returns 0 or -1. */
int config__duration_parse(const char *v, long long min, long long max, int ms_ok, int64_t *out)
{
    if (*v == '\0' || strcmp(v, "0") == 0 || (ms_ok && strcmp(v, "0ms") == 0) ||
        (v[0] == '0' && v[1] != '\0' && strchr("smhdw", v[1]) != NULL && v[2] == '\0')) {
        *out = 0;
        return 0;
    }
    /* common/vtime's grammar, less its unitless and "ms" forms: settings count from seconds. */
    size_t n = strlen(v);
    int64_t ms;
    if (config__decimal_len(v, 0) == 0 || n < 2 || v[n - 1] < 'a' || v[n - 1] > 'z' ||
        (!ms_ok && strcmp(v + n - 2, "ms") == 0) || vtime_parse_duration(v, &ms) != 0 || ms < min ||
        ms > max)
        return -1;
    *out = ms;
    return 0;
}

/* Checks "ADDR:PORT" / "[ADDR6]:PORT" / "off" (stream only) as api/server.c and
 * daemon/stream_listen.c will when they bind: a numeric address (inet_pton: "localhost" passed
 * here, then stopped the start after the database was opened) and a port of 1 to 5 digits, 0 to
 * 65535 (strtol took "+80" and " 80"). */
int config__listen_ok(const char *v)
{
    if (strcasecmp(v, "off") == 0) /* any case, as every word; stored as "off" (config_set) */
        return 1;
    const char *colon = strrchr(v, ':');
    if (colon == NULL)
        return 0;
    const char *port = colon + 1;
    size_t digits = config__decimal_len(port, 0);
    if (digits == 0 || digits > 5 || port[digits] != '\0' || atol(port) > 65535)
        return 0;
    char host[128];
    size_t n = (size_t)(colon - v);
    int v6 = n >= 2 && v[0] == '[' && v[n - 1] == ']';
    if (v6) {
        v++; /* the address between the brackets */
        n -= 2;
    }
    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, v, n);
    host[n] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) == 1;
}

/* Why an address config__listen_ok refused has a port an operator may mean as a number ("+80",
 * "08470"), said as the settings' numbers say it (config__number_hint), else "". Only a port of
 * digits after its address's ':' (after the ']' of an [IPv6 address]): "[::01]" has no port at
 * all, and "08x" more wrong with it than a zero. */
const char *config__port_hint(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || (v[0] == '[' && colon[-1] != ']'))
        return "";
    const char *digits = colon + 1 + (colon[1] == '+');
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || digits[n] != '\0')
        return "";
    if (colon[1] == '+')
        return "; write the port without a '+' sign";
    if (colon[1] == '0' && colon[2] >= '0' && colon[2] <= '9')
        return "; no leading zeros in the port: numbers are decimal";
    return "";
}
