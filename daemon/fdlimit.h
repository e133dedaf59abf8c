/* daemon/fdlimit.h: the open-file limit at start. */
#ifndef VIGIL_FDLIMIT_H
#define VIGIL_FDLIMIT_H

#include "config.h"

/* Main thread, at start: raises the soft RLIMIT_NOFILE towards what c's limits need (as far as
 * the hard limit allows), and warns, with the numbers, when that is not enough: connections past
 * it are not refused with an answer but fail to be accepted (vigil_*_accept_errors_total). */
void fdlimit_raise(const struct config *c);

#endif
