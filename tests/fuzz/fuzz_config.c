/* tests/fuzz/fuzz_config.c: libFuzzer target of the configuration file parser
 * (daemon/config.h, config_load: inih plus the settings table), then config_validate and
 * config_diff on what it loaded. The input is the file's contents, served from a memfd through
 * /proc/self/fd/N so config_load reads it by path, exactly as vigild does, without touching
 * the disk. Any file must load or be refused with "FILE:LINE: reason", never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("vigil-fuzz-config", 0);
        if (memfd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
    config_t c, d;
    char err[512];
    config_default(&c);
    config_default(&d);
    err[0] = '\0';
    int rc = config_load(&c, path, err, sizeof err);
    if (rc == 0) {
        char verr[256];
        (void)config_validate(&c, verr, sizeof verr);
        (void)config_diff(&c, &d, NULL, NULL);
        config_copy_live(&d, &c);
    } else if (rc != -1 || strncmp(err, path, strlen(path)) != 0) {
        abort(); /* an error always names the file (and the line) */
    }
    /* Every string setting stays NUL-terminated within its buffer. */
    if (!memchr(c.data_dir, 0, sizeof c.data_dir) ||
        !memchr(c.http_listen, 0, sizeof c.http_listen) ||
        !memchr(c.auth_file, 0, sizeof c.auth_file) ||
        !memchr(c.stream_listen, 0, sizeof c.stream_listen) ||
        !memchr(c.device_tag, 0, sizeof c.device_tag))
        abort();
    return 0;
}
