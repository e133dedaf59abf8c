/* daemon/config_int.h: config.c's private helpers defined in config_values.c (the parsers of
 * setting values); not part of config.h's interface. Each definition's comment says what it
 * accepts and returns. Any thread (no state). */
#ifndef VIGIL_CONFIG_INT_H
#define VIGIL_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

/* The length of the decimal number v starts with (no '+', no leading zeros), or 0. */
size_t config__decimal_len(const char *v, int minus_ok);
/* The " (...)" hint for a value that is almost a decimal number ("+4", "010"), else "". */
const char *config__number_hint(const char *v);
/* A duration ("30d"; "250ms" with ms_ok) into *out ms within [min, max], or 0. 0 or -1. */
int config__duration_parse(const char *v, long long min, long long max, int ms_ok, int64_t *out);
/* 1 when v is "off" or a numeric "ADDR:PORT" / "[ADDR6]:PORT", else 0. */
int config__listen_ok(const char *v);
/* The "; ..." hint for an address whose port is almost a number ("+80", "08470"), else "". */
const char *config__port_hint(const char *v);

#endif
