/* common/path.c: a file's path in a folder (path.h). */
#include "path.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int path_join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t len = strlen(dir);
    return snprintf(buf, size, "%s%s%s", dir, len > 0 && dir[len - 1] == '/' ? "" : "/", name);
}

int path_absolute(char *buf, size_t size, const char *path)
{
    char cwd[4096];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return snprintf(buf, size, "%s", path);
    const char *rel = path;
    while (rel[0] == '.' && (rel[1] == '/' || rel[1] == '\0'))
        for (rel++; *rel == '/'; rel++)
            ;
    if (rel[0] == '\0')
        return snprintf(buf, size, "%s", cwd);
    return path_join(buf, size, cwd, rel);
}
