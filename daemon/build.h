/* daemon/build.h: what identifies this build of vigil: its version, the git commit it was built
 * from and its build type (vigild --version, the start-up line; vigil_build_info and /health
 * through api_opts_t). Any thread; the strings are static. */
#ifndef VIGIL_BUILD_H
#define VIGIL_BUILD_H

#include <stddef.h>

/* The release's version, the project's ("0.1.0"). */
const char *build_version(void);

/* The short commit of the git checkout built ("0123456789ab", "0123456789ab-dirty" when tracked
 * files differed from it), as of the last build (daemon/commit.cmake runs at each); "" when not
 * built from a git checkout (a release tarball). */
const char *build_commit(void);

/* CMake's build type ("Release", "RelWithDebInfo", "Debug", ...); "" when it had none. */
const char *build_type(void);

/* Writes "0.1.0 (commit 0123456789ab, Release)" to buf, the parts that are "" left out
 * ("0.1.0 (Release)", "0.1.0"), always NUL-terminated when size > 0: what --version and the
 * start-up line print after the program's name. Returns snprintf's: the whole length (cut short
 * when >= size). */
int build_describe(char *buf, size_t size);

#endif
