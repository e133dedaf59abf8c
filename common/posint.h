/* common/posint.h: a positive whole number written as digits only, as the environment's numbers
 * are read (the test knobs, systemd's WATCHDOG_USEC and WATCHDOG_PID). strtol alone takes a
 * leading blank or a sign (" 3000", "+3000" as 3000) and "-5" silently as a negative (strtoull:
 * as a huge) number; none of the values read here is ever written so. Any thread; no state. */
#ifndef VIGIL_POSINT_H
#define VIGIL_POSINT_H

/* Parses s (not NULL), the digits 0-9 and nothing else, as a number from 1 to max (max >= 1;
 * unsigned, so systemd's 64-bit periods fit: WatchdogSec=infinity is 18446744073709551615):
 * leading zeros are taken ("007" is 7). Returns 0 with *out set; ERR_INVAL when s is empty, has
 * anything but digits (a sign, a blank, a unit) or is 0; ERR_RANGE when it is above max (also
 * past ULLONG_MAX). *out is left alone on failure. */
int posint_parse(const char *s, unsigned long long max, unsigned long long *out);

#endif
