/* common/path.h: a file's path in a folder; a relative path made absolute. */
#ifndef VIGIL_PATH_H
#define VIGIL_PATH_H

#include <stddef.h>

/* Writes "dir/name" to buf (size bytes, always NUL-terminated when size > 0); a dir that ends
 * with '/' (a data folder of "/") gives "dir" "name", "/vigil.db" and not "//vigil.db".
 * Returns what snprintf returns: the length of the whole path (cut short when >= size). Any
 * thread. */
int path_join(char *buf, size_t size, const char *dir, const char *name);

/* Writes path to buf (size bytes, always NUL-terminated when size > 0) as the absolute path it
 * names now: as given when it begins with '/', else joined to the working directory, its
 * leading "./" dropped ("./x" is CWD/x, "." CWD itself; from "/", "/x" and not "//x"); not
 * resolved (links kept: under systemd's DynamicUser=, /var/lib/vigil is a link the operator
 * knows). A working directory that cannot be read leaves path as given. Returns what snprintf
 * returns: the length of the whole path (cut short when >= size; buf may be NULL when size is
 * 0). Any thread. */
int path_absolute(char *buf, size_t size, const char *path);

#endif
