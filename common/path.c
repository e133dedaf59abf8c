/* common/path.c: a file's path in a folder (path.h). */
#include "path.h"

#include <stdio.h>
#include <string.h>

int path_join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t len = strlen(dir);
    return snprintf(buf, size, "%s%s%s", dir, len > 0 && dir[len - 1] == '/' ? "" : "/", name);
}
