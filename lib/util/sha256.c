/* sha256.c - SHA-256 through libcrypto's EVP interface */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/sha256.h"

struct dc_sha256 {
    EVP_MD_CTX *ctx;
};

struct dc_sha256 *dc_sha256_create (void)
{
    struct dc_sha256 *h = calloc (1, sizeof (*h));

    if (!h)
        return NULL;
    if (!(h->ctx = EVP_MD_CTX_new ()) ||
        EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1) {
        dc_sha256_destroy (h);
        errno = ENOMEM;
        return NULL;
    }
    return h;
}

int dc_sha256_update (struct dc_sha256 *h, const void *p, size_t n)
{
    if (!h || (n && !p) || EVP_DigestUpdate (h->ctx, p, n) != 1) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int dc_sha256_final (struct dc_sha256 *h, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!h || !hex || EVP_DigestFinal_ex (h->ctx, md, &n) != 1 || n != 32) {
        errno = EINVAL;
        return -1;
    }
    for (unsigned int i = 0; i < n; i++)
        snprintf (hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

void dc_sha256_destroy (struct dc_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free (h->ctx);
    free (h);
}

int dc_sha256_fd (int fd, uint64_t size, char *hex, dc_error_t *errp)
{
    size_t bufsize = 1 << 20;
    struct dc_sha256 *h = dc_sha256_create ();
    char *buf = malloc (bufsize);
    uint64_t off = 0;

    if (!h || !buf) {
        free (buf);
        dc_sha256_destroy (h);
        errno = ENOMEM;
        return errprintf (errp, "sha256: out of memory");
    }
    while (off < size) {
        size_t want = size - off < bufsize ? (size_t)(size - off) : bufsize;
        ssize_t r = pread (fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free (buf);
            dc_sha256_destroy (h);
            errno = e;
            return errprintf (errp, "sha256: read: %s",
                              r < 0 ? strerror (e) : "file shrank");
        }
        dc_sha256_update (h, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free (buf);
    int rc = dc_sha256_final (h, hex);
    dc_sha256_destroy (h);
    if (rc < 0)
        return errprintf (errp, "sha256: digest failed");
    return 0;
}

int dc_sha256_file (const char *path, char *hex, dc_error_t *errp)
{
    struct stat st;
    int fd = open (path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errprintf (errp, "%s: %s", path, strerror (errno));
    if (fstat (fd, &st) < 0) {
        int e = errno;
        close (fd);
        errno = e;
        return errprintf (errp, "%s: %s", path, strerror (e));
    }
    int rc = dc_sha256_fd (fd, (uint64_t)st.st_size, hex, errp);
    if (rc < 0)
        errprefix (errp, "%s: ", path);
    close (fd);
    return rc;
}
