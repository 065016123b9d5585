/* atomicfile.c - temporary file in the target folder, renamed when complete
 *
 * Where the filesystem has O_TMPFILE the file has no name until commit
 * links it in: a process killed in the middle (SIGKILL, an MPI job torn
 * down) leaves nothing behind.  Elsewhere a named ".NAME.XXXXXX" file is
 * used and removed on destroy. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/atomicfile.h"

struct dc_atomicfile {
    int fd;
    bool anon; /* O_TMPFILE: no name yet */
    bool committed;
    char *path;
    char *tmp;
};

struct dc_atomicfile *dc_atomicfile_create (const char *path,
                                            dc_error_t *errp)
{
    struct dc_atomicfile *f;
    char *d = NULL, *b = NULL;

    if (!path || !*path) {
        errno = EINVAL;
        errprintf (errp, "empty output path");
        return NULL;
    }
    if (!(f = calloc (1, sizeof (*f))) || !(f->path = strdup (path))
        || !(d = strdup (path)) || !(b = strdup (path)))
        goto nomem;
    f->fd = -1;
    const char *dir = dirname (d);
    const char *base = basename (b);
    size_t n = strlen (dir) + strlen (base) + 16;
    if (!(f->tmp = malloc (n)))
        goto nomem;
    snprintf (f->tmp, n, "%s/.%s.XXXXXX", dir, base);
    if ((f->fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
        f->anon = true;
    else if ((f->fd = mkostemp (f->tmp, O_CLOEXEC)) < 0) {
        int e = errno;
        errprintf (errp, "%s: cannot create a temporary file in %s: %s",
                   path, dir, strerror (e));
        free (f->tmp);
        f->tmp = NULL;
        dc_atomicfile_destroy (f);
        free (d);
        free (b);
        errno = e;
        return NULL;
    }
    free (d);
    free (b);
    return f;
nomem:
    free (d);
    free (b);
    dc_atomicfile_destroy (f);
    errno = ENOMEM;
    errprintf (errp, "%s: out of memory", path);
    return NULL;
}

int dc_atomicfile_pwrite (struct dc_atomicfile *f, const void *buf, size_t n,
                          uint64_t off, dc_error_t *errp)
{
    const char *p = buf;

    if (!f || f->fd < 0 || (n && !buf) || off > (uint64_t)INT64_MAX - n) {
        errno = EINVAL;
        return errprintf (errp, "%s: invalid write",
                          f ? f->path : "(null)");
    }
    while (n > 0) {
        ssize_t w = pwrite (f->fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errprintf (errp, "%s: write: %s", f->path,
                              strerror (errno));
        }
        if (w == 0) {
            errno = EIO;
            return errprintf (errp, "%s: write returned 0", f->path);
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int dc_atomicfile_truncate (struct dc_atomicfile *f, uint64_t size,
                            dc_error_t *errp)
{
    if (!f || f->fd < 0 || size > (uint64_t)INT64_MAX) {
        errno = EINVAL;
        return errprintf (errp, "invalid truncate");
    }
    if (ftruncate (f->fd, (off_t)size) < 0)
        return errprintf (errp, "%s: cannot size the file to %llu bytes: %s",
                          f->path, (unsigned long long)size,
                          strerror (errno));
    return 0;
}

int dc_atomicfile_fd (const struct dc_atomicfile *f)
{
    return f ? f->fd : -1;
}

const char *dc_atomicfile_path (const struct dc_atomicfile *f)
{
    return f ? f->path : NULL;
}

const char *dc_atomicfile_tmppath (const struct dc_atomicfile *f)
{
    return f ? f->tmp : NULL;
}

int dc_atomicfile_commit (struct dc_atomicfile *f, dc_error_t *errp)
{
    mode_t mask;

    if (!f || f->fd < 0 || f->committed) {
        errno = EINVAL;
        return errprintf (errp, "commit of a file that is not open");
    }
    mask = umask (0);
    umask (mask);
    if (fchmod (f->fd, 0666 & ~mask) < 0)
        return errprintf (errp, "%s: chmod: %s", f->tmp, strerror (errno));
    if (f->anon) {
        /* give the file its temporary name, then rename it over path */
        char proc[64];
        size_t n = strlen (f->tmp);
        snprintf (proc, sizeof (proc), "/proc/self/fd/%d", f->fd);
        for (int tries = 0;; tries++) {
            static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
            unsigned long r = (unsigned long)random () ^ (unsigned long)getpid ();
            for (size_t i = n - 6; i < n; i++, r /= 36)
                f->tmp[i] = digits[r % 36];
            if (linkat (AT_FDCWD, proc, AT_FDCWD, f->tmp, AT_SYMLINK_FOLLOW)
                == 0)
                break;
            if (errno != EEXIST || tries > 100)
                return errprintf (errp, "%s: cannot name the file: %s",
                                  f->path, strerror (errno));
        }
        f->anon = false; /* named now: destroy removes it if rename fails */
    }
    if (close (f->fd) < 0) {
        f->fd = -1;
        return errprintf (errp, "%s: close: %s", f->tmp, strerror (errno));
    }
    f->fd = -1;
    if (rename (f->tmp, f->path) < 0)
        return errprintf (errp, "%s: cannot rename %s to it: %s", f->path,
                          f->tmp, strerror (errno));
    f->committed = true;
    return 0;
}

void dc_atomicfile_destroy (struct dc_atomicfile *f)
{
    if (!f)
        return;
    int saved = errno;
    if (f->fd >= 0)
        close (f->fd);
    if (!f->committed && !f->anon && f->tmp)
        unlink (f->tmp);
    free (f->tmp);
    free (f->path);
    free (f);
    errno = saved;
}

/* Whole small files (models, checkpoints) read into memory. */
uint8_t *dc_file_read (const char *path, size_t max, size_t *lenp,
                       dc_error_t *errp)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *buf = NULL;
    size_t off = 0;

    if (fd < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        errprintf (errp, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        errprintf (errp, "%s: larger than %zu bytes", path, max);
        goto fail;
    }
    if (!(buf = malloc (st.st_size ? (size_t)st.st_size : 1))) {
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read (fd, buf + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errprintf (errp, "%s: %s", path,
                       n < 0 ? strerror (errno) : "shorter than its size");
            goto fail;
        }
        off += (size_t)n;
    }
    close (fd);
    *lenp = off;
    return buf;
fail:
    free (buf);
    close (fd);
    return NULL;
}
