/* common/path.h: a file's path in a folder. */
#ifndef VIGIL_PATH_H
#define VIGIL_PATH_H

#include <stddef.h>

/* Writes "dir/name" to buf (size bytes, always NUL-terminated when size > 0); a dir that ends
 * with '/' (a data folder of "/") gives "dir" "name", "/vigil.db" and not "//vigil.db".
 * Returns what snprintf returns: the length of the whole path (cut short when >= size). Any
 * thread. */
int path_join(char *buf, size_t size, const char *dir, const char *name);

#endif
