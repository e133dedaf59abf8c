/* daemon/auth.c: the token file: lines "ROLE TOKEN" into an api_auth_t; see auth.h.
 *
 * Every line is checked and the first bad one reported with its number, so a typo stops the
 * start (or a reload is rejected) instead of locking a client out later. Loop thread. */
#include "auth.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses one line (NUL-terminated, without its newline) into the set. Returns 0 or -1 with the
 * reason in err. */
static int parse_line(api_auth_t *a, char *line, const int *lines, char *err, size_t errsize)
{
    char *save = NULL;
    char *role_s = strtok_r(line, " \t\r", &save);
    if (role_s == NULL || role_s[0] == '#')
        return 0;
    char *token = strtok_r(NULL, " \t\r", &save);
    /* A third word may only start a comment: a token holds no blank, so "# ..." after one is
     * unambiguous (README's example file annotates each role so). */
    char *extra = strtok_r(NULL, " \t\r", &save);
    api_role_t role;
    if (token == NULL || (extra != NULL && extra[0] != '#')) {
        snprintf(err, errsize, "want 'ROLE TOKEN' (two words)");
        return -1;
    }
    if (api_role_parse(role_s, &role)) {
        snprintf(err, errsize, "unknown role '%.32s' (want read, write or admin)", role_s);
        return -1;
    }
    size_t len = strlen(token);
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX) {
        snprintf(err, errsize, "token of %zu characters (want %d to %d)", len, AUTH_TOKEN_MIN,
                 AUTH_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7e) {
            snprintf(err, errsize, "token holds a byte that is not printable ASCII");
            return -1;
        }
    }
    size_t dup = 0;
    int rc = api_auth_add(a, role, token, &dup);
    if (rc == ERR_INVAL) {
        snprintf(err, errsize, "duplicate token (first on line %d)", lines[dup]);
        return -1;
    }
    if (rc) {
        snprintf(err, errsize, "%s", err_str(rc));
        return -1;
    }
    return 0;
}

int auth_load(const char *path, api_auth_t **out, char *warn, size_t warnsize, char *err,
              size_t errsize)
{
    warn[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        /* A relative path (--auth-file's: the config file's are made absolute, config_load)
         * is the working directory's, which under systemd is /: say which one was looked in. */
        int e = errno;
        char cwd[4096];
        if (path[0] != '/' && getcwd(cwd, sizeof cwd) != NULL)
            snprintf(err, errsize, "%s: cannot open: %s (looked in the working directory %s)", path,
                     strerror(e), cwd);
        else
            snprintf(err, errsize, "%s: cannot open: %s", path, strerror(e));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        snprintf(warn, warnsize, "%s: token file is readable by every user (chmod o-r)", path);
    api_auth_t *a = NULL;
    int *lines = NULL; /* line number of each token, for duplicate reports */
    size_t cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    int lineno = 0, rc = -1;
    if (api_auth_create(&a)) {
        snprintf(err, errsize, "%s: out of memory", path);
        goto out;
    }
    ssize_t n;
    while ((n = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if ((size_t)n != strlen(line)) {
            snprintf(err, errsize, "%s:%d: NUL byte in the line", path, lineno);
            goto out;
        }
        size_t before = api_auth_count(a);
        char why[160];
        if (parse_line(a, line, lines, why, sizeof why)) {
            snprintf(err, errsize, "%s:%d: %s", path, lineno, why);
            goto out;
        }
        if (api_auth_count(a) > before) {
            if (before == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                int *nl = realloc(lines, ncap * sizeof *nl);
                if (nl == NULL) {
                    snprintf(err, errsize, "%s: out of memory", path);
                    goto out;
                }
                lines = nl;
                cap = ncap;
            }
            lines[before] = lineno;
        }
    }
    if (ferror(f)) {
        snprintf(err, errsize, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (api_auth_count(a) == 0) {
        snprintf(err, errsize, "%s: no tokens (want lines 'ROLE TOKEN')", path);
        goto out;
    }
    *out = a;
    a = NULL;
    rc = 0;
out:
    if (line) {
        explicit_bzero(line, linecap);
        free(line);
    }
    free(lines);
    api_auth_destroy(a);
    fclose(f);
    return rc;
}
