/* api/tls.c: the HTTPS certificate and key (http.tls_cert, http.tls_key), read and checked.
 *
 * libmicrohttpd takes the PEM texts in memory (MHD_OPTION_HTTPS_MEM_CERT / _KEY) and reports a
 * bad pair only as "cannot start". So the daemon loads both files here first, at start-up and
 * for --check-config: each file is parsed with GnuTLS (the library libmicrohttpd uses), so an
 * error names the file at fault (unreadable, not a PEM certificate, not an unencrypted private
 * key, key and certificate not a pair). The texts are kept for the life of the server; the key
 * is wiped from memory when it is freed. Loop thread (start-up); nothing here runs per request.
 */
#include "api_int.h"
#include "err.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Larger files are not certificates or keys. */
#define TLS_FILE_MAX (1u << 20)

/* Reads a whole file into a NUL-terminated buffer. Returns 0, or -1 with "WHAT: PATH: reason"
 * in err. */
static int read_file(const char *what, const char *path, char **out, size_t *len, char *err,
                     size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errsize, "%s: %s: cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    char *buf = malloc(TLS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TLS_FILE_MAX + 1, f) : 0;
    int bad = buf == NULL || ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errsize, "%s: %s: cannot read: %s", what, path,
                 buf ? strerror(errno) : "out of memory");
        free(buf);
        return -1;
    }
    if (n > TLS_FILE_MAX || n == 0) {
        snprintf(err, errsize, "%s: %s: %s", what, path,
                 n ? "larger than 1 MiB: not a PEM file" : "empty file");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void api_tls_destroy(api_tls_t *t)
{
    if (t == NULL)
        return;
    free(t->cert);
    if (t->key) {
        explicit_bzero(t->key, t->key_len); /* a secret: not left in freed memory */
        free(t->key);
    }
    free(t);
}

int api_tls_load(api_tls_t **out, const char *cert_path, const char *key_path, char *warn,
                 size_t warnsize, char *err, size_t errsize)
{
    *out = NULL;
    warn[0] = '\0';
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errsize, "http.tls_cert: this libmicrohttpd is built without TLS support");
        return -1;
    }
    api_tls_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errsize, "http.tls_cert: out of memory");
        return -1;
    }
    gnutls_x509_crt_t *crts = NULL;
    unsigned ncrt = 0;
    gnutls_x509_privkey_t pk = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    int rc = -1, g;
    if (read_file("http.tls_cert", cert_path, &t->cert, &t->cert_len, err, errsize) ||
        read_file("http.tls_key", key_path, &t->key, &t->key_len, err, errsize))
        goto out;
    struct stat st;
    if (stat(key_path, &st) == 0 && (st.st_mode & S_IROTH))
        snprintf(warn, warnsize, "http.tls_key: %s is readable by every user (chmod o-r)",
                 key_path);

    gnutls_datum_t cd = {(unsigned char *)t->cert, (unsigned)t->cert_len};
    gnutls_datum_t kd = {(unsigned char *)t->key, (unsigned)t->key_len};
    g = gnutls_x509_crt_list_import2(&crts, &ncrt, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0 || ncrt == 0) {
        snprintf(err, errsize, "http.tls_cert: %s: not a PEM certificate (GnuTLS: %s)", cert_path,
                 g < 0 ? gnutls_strerror(g) : "no certificate in the file");
        goto out;
    }
    if (strstr(t->key, "ENCRYPTED") != NULL) {
        snprintf(err, errsize,
                 "http.tls_key: %s: the private key is encrypted (vigild cannot ask for a "
                 "passphrase: store it unencrypted, readable only by vigild)",
                 key_path);
        goto out;
    }
    if ((g = gnutls_x509_privkey_init(&pk)) < 0 ||
        (g = gnutls_x509_privkey_import(pk, &kd, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errsize, "http.tls_key: %s: not a PEM private key (GnuTLS: %s)", key_path,
                 gnutls_strerror(g));
        goto out;
    }
    /* The pair, as libmicrohttpd will load it: a key that belongs to another certificate fails
     * here with GnuTLS's "key does not match". */
    if ((g = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
        (g = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errsize,
                 "http.tls_key: %s does not go with the certificate in %s (GnuTLS: %s)", key_path,
                 cert_path, gnutls_strerror(g));
        goto out;
    }
    time_t now = time(NULL), end = gnutls_x509_crt_get_expiration_time(crts[0]);
    if (end != (time_t)-1 && end < now && warn[0] == '\0')
        snprintf(warn, warnsize, "http.tls_cert: %s expired %.1f days ago; clients will refuse it",
                 cert_path, difftime(now, end) / 86400.0);
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (cred)
        gnutls_certificate_free_credentials(cred);
    if (pk)
        gnutls_x509_privkey_deinit(pk);
    for (unsigned i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    api_tls_destroy(t);
    return rc;
}
