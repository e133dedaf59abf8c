/* tests/fault/failaccept.c: an LD_PRELOAD library for test_accept.py that makes accept4 (libuv's
 * and libmicrohttpd's accept) fail on one listening port while a flag file exists, so a test can
 * make vigild's accept fail the way it does without descriptors or memory, on the stream socket
 * alone, and end it by deleting the file.
 *
 * VIGIL_FAILACCEPT_FLAG names the flag file; it holds "ERRNO PORT": the errno to fail with, by
 * name as flagfile.h maps them (EMFILE, ENFILE, ENOMEM, ENOBUFS, EACCES; anything else: EMFILE),
 * and the local port of the listening socket whose accepts fail (the test knows it only once vigild
 * is started). Other sockets' accepts, and all of them without the flag, go through to glibc's
 * (looked up with dlsym(RTLD_NEXT)). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include "flagfile.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The errno an accept on fd is to fail with now, or 0. */
static int must_fail(int fd)
{
    char text[32];
    if (!fault_flag_read("VIGIL_FAILACCEPT_FLAG", text, sizeof text))
        return 0;
    const char *port = strchr(text, ' ');
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (port == NULL || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    unsigned p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (p != (unsigned)strtoul(port + 1, NULL, 10))
        return 0;
    return fault_errno_named(text, EMFILE);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    int e = must_fail(fd);
    if (e) {
        errno = e;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return real(fd, addr, len, flags);
}
