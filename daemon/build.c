/* daemon/build.c: what identifies this build (build.h). The only file that includes
 * vigil_commit.h, which daemon/commit.cmake rewrites when the commit changes: a new commit
 * recompiles this file and relinks vigild (its only user: daemon/CMakeLists.txt),
 * an unchanged tree nothing. */
#include "build.h"

#include "vigil_commit.h" /* VIGIL_COMMIT */

#include <stdio.h>

#ifndef VIGIL_BUILD_TYPE
#define VIGIL_BUILD_TYPE "" /* built without daemon/CMakeLists.txt's definition */
#endif

const char *build_version(void)
{
    return VIGIL_VERSION;
}

const char *build_commit(void)
{
    return VIGIL_COMMIT;
}

const char *build_type(void)
{
    return VIGIL_BUILD_TYPE;
}

int build_describe(char *buf, size_t size)
{
    const char *c = build_commit(), *t = build_type();
    if (c[0] == '\0' && t[0] == '\0')
        return snprintf(buf, size, "%s", build_version());
    return snprintf(buf, size, "%s (%s%s%s%s)", build_version(), c[0] ? "commit " : "", c,
                    c[0] && t[0] ? ", " : "", t);
}
