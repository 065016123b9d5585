/* file.c - temporary file in the target folder, renamed when complete
 *
 * Where the filesystem has O_TMPFILE the file has no name until commit
 * links it in: a process killed in the middle (SIGKILL, an MPI job torn
 * down) leaves nothing behind.  Elsewhere a named ".NAME.XXXXXX" file is
 * used and removed on destroy.  Devices, FIFOs and open descriptors are
 * written in place from an unnamed file under $TMPDIR (atomicfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/util/file.h"

/* the temporary files of outputs that ranks write themselves */
#define SHARED_TAG ".dcrun-"

struct dc_atomicfile {
    int fd;
    int target; /* in place: the device, FIFO or descriptor; else -1 */
    bool anon;  /* O_TMPFILE: no name yet */
    bool sig;   /* its name is removed by dc_file_signal_cleanup */
    bool committed;
    char *path; /* the file replaced (a link's target) */
    char *tmp;
};

/* ---- what a path names ---- */

enum kind {
    K_REPLACE,  /* nothing or a regular file at t->final: rename over it */
    K_IN_PLACE, /* a device, FIFO or descriptor: write to it */
};

struct target {
    enum kind kind;
    char *final; /* K_REPLACE: the path to rename over (caller frees) */
    bool exists; /* st is the (followed) file's */
    struct stat st;
};

/* The names of open descriptors: writing there means writing to what the
 * descriptor holds, whatever it is. */
static bool fd_alias (const char *path)
{
    static const char *const pfx[] = {
        "/dev/stdout",    "/dev/stderr",           "/dev/stdin", "/dev/fd/",
        "/proc/self/fd/", "/proc/thread-self/fd/", NULL};
    for (int i = 0; pfx[i]; i++)
        if (!strncmp (path, pfx[i], strlen (pfx[i])))
            return true;
    return false;
}

/* The real path of an existing file (through every link), the way the
 * kernel follows them (fs.protected_symlinks applies). */
static char *real_path (const char *path)
{
    char proc[64], buf[PATH_MAX];
    int fd = open (path, O_PATH | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return NULL;
    snprintf (proc, sizeof (proc), "/proc/self/fd/%d", fd);
    n = readlink (proc, buf, sizeof (buf) - 1);
    close (fd);
    if (n <= 0 || buf[0] != '/') {
        /* no /proc: the C library's way */
        return realpath (path, NULL);
    }
    buf[n] = '\0';
    return strdup (buf);
}

static int resolve (const char *path, struct target *t, dc_error_t *errp)
{
    struct stat lst;

    memset (t, 0, sizeof (*t));
    if (!path || !*path) {
        errno = EINVAL;
        return errprintf (errp, "empty output path");
    }
    if (lstat (path, &lst) < 0) {
        if (errno != ENOENT)
            return errprintf (errp, "%s: %s", path, strerror (errno));
        if (!(t->final = strdup (path)))
            goto nomem;
        t->kind = K_REPLACE;
        return 0;
    }
    if (stat (path, &t->st) < 0) {
        int e = errno;
        if (e == ENOENT && S_ISLNK (lst.st_mode)) {
            errno = ENOENT;
            return errprintf (errp,
                              "%s: a symbolic link to a file that does "
                              "not exist (nothing is created through "
                              "a link)",
                              path);
        }
        errno = e;
        return errprintf (errp, "%s: %s", path, strerror (e));
    }
    t->exists = true;
    if (S_ISDIR (t->st.st_mode)) {
        errno = EISDIR;
        return errprintf (errp, "%s: a folder, not a file", path);
    }
    if (S_ISCHR (t->st.st_mode) || S_ISFIFO (t->st.st_mode) ||
        (fd_alias (path) && S_ISREG (t->st.st_mode))) {
        t->kind = K_IN_PLACE;
        return 0;
    }
    if (!S_ISREG (t->st.st_mode)) {
        errno = EINVAL;
        return errprintf (errp,
                          "%s: not a regular file, character device or "
                          "FIFO: not written",
                          path);
    }
    t->kind = K_REPLACE;
    if (!S_ISLNK (lst.st_mode)) {
        if (!(t->final = strdup (path)))
            goto nomem;
        return 0;
    }
    if (!(t->final = real_path (path)))
        return errprintf (errp, "%s: cannot follow the link: %s", path,
                          strerror (errno));
    return 0;
nomem:
    errno = ENOMEM;
    return errprintf (errp, "%s: out of memory", path);
}

/* An unnamed file under $TMPDIR (or /tmp) for bytes written in place. */
static int anon_tmp (void)
{
    const char *d = getenv ("TMPDIR");
    char tmpl[PATH_MAX];
    int fd;

    if (!d || !*d)
        d = "/tmp";
    if ((fd = open (d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
        return fd;
    snprintf (tmpl, sizeof (tmpl), "%s/.dcrun-out.XXXXXX", d);
    if ((fd = mkostemp (tmpl, O_CLOEXEC)) >= 0)
        unlink (tmpl);
    return fd;
}

static struct dc_atomicfile *
create_in_place (const char *path, const struct target *t, dc_error_t *errp)
{
    struct dc_atomicfile *f = calloc (1, sizeof (*f));
    struct stat st;
    int e;

    if (!f || !(f->path = strdup (path))) {
        free (f);
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", path);
        return NULL;
    }
    f->fd = -1;
    /* a FIFO blocks here until a reader opens it, as for any writer */
    if ((f->target = open (path, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0) {
        e = errno;
        errprintf (errp, "%s: %s", path, strerror (e));
        goto fail;
    }
    if (fstat (f->target, &st) < 0 || st.st_ino != t->st.st_ino ||
        st.st_dev != t->st.st_dev) {
        e = EAGAIN;
        errprintf (errp, "%s: changed while it was opened", path);
        goto fail;
    }
    if (S_ISREG (st.st_mode)) /* /dev/stdout of `> file` or `>> file` */
        fcntl (f->target, F_SETFL, fcntl (f->target, F_GETFL) | O_APPEND);
    if ((f->fd = anon_tmp ()) < 0) {
        e = errno;
        errprintf (errp, "%s: cannot create a temporary file in %s: %s", path,
                   getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp",
                   strerror (e));
        goto fail;
    }
    return f;
fail:
    dc_atomicfile_destroy (f);
    errno = e;
    return NULL;
}

static struct dc_atomicfile *create (const char *path, bool shared,
                                     dc_error_t *errp)
{
    struct dc_atomicfile *f = NULL;
    struct target t;
    char *d = NULL, *b = NULL;

    if (resolve (path, &t, errp) < 0)
        return NULL;
    if (t.kind == K_IN_PLACE && shared) {
        errno = ENOTSUP;
        errprintf (errp,
                   "%s: a device, FIFO or descriptor is written in place by "
                   "this process: ranks cannot write it",
                   path);
        return NULL;
    }
    if (t.kind == K_IN_PLACE)
        return create_in_place (path, &t, errp);
    if (!(f = calloc (1, sizeof (*f))) || !(d = strdup (t.final)) ||
        !(b = strdup (t.final)))
        goto nomem;
    f->fd = f->target = -1;
    f->path = t.final;
    t.final = NULL;
    const char *dir = dirname (d);
    const char *base = basename (b);
    size_t n = strlen (dir) + strlen (base) + 24;
    if (!(f->tmp = malloc (n)))
        goto nomem;
    snprintf (f->tmp, n,
              shared ? "%s/.%s" SHARED_TAG "XXXXXX" : "%s/.%s.XXXXXX", dir,
              base);
    if (!shared &&
        (f->fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
        f->anon = true;
    else if ((f->fd = mkostemp (f->tmp, O_CLOEXEC)) < 0 ||
             (shared && flock (f->fd, LOCK_EX | LOCK_NB) < 0)) {
        int e = errno;
        if (f->fd >= 0)
            unlink (f->tmp);
        errprintf (errp, "%s: cannot create a temporary file in %s: %s", path,
                   dir, strerror (e));
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
    /* named: a signal that stops the process takes the name away */
    if (!f->anon && dc_file_on_signal_unlink (f->tmp) == 0)
        f->sig = true;
    return f;
nomem:
    free (t.final);
    free (d);
    free (b);
    dc_atomicfile_destroy (f);
    errno = ENOMEM;
    errprintf (errp, "%s: out of memory", path);
    return NULL;
}

struct dc_atomicfile *dc_atomicfile_create (const char *path, dc_error_t *errp)
{
    return create (path, false, errp);
}

struct dc_atomicfile *dc_atomicfile_create_shared (const char *path,
                                                   dc_error_t *errp)
{
    return create (path, true, errp);
}

#define SIGPATHS 4
static char sig_path[SIGPATHS][PATH_MAX];
static volatile sig_atomic_t sig_used[SIGPATHS];

int dc_file_on_signal_unlink (const char *path)
{
    static bool at_exit;

    /* and at exit: MPI libraries end a process with exit() when a peer
     * goes away (OpenMPI's abort), before the signal that stops the job */
    if (!at_exit && atexit (dc_file_signal_cleanup) == 0)
        at_exit = true;
    for (int i = 0; i < SIGPATHS; i++)
        if (!sig_used[i] && path && strlen (path) < PATH_MAX) {
            memcpy (sig_path[i], path, strlen (path) + 1);
            __atomic_thread_fence (__ATOMIC_SEQ_CST);
            sig_used[i] = 1;
            return 0;
        }
    return -1;
}

void dc_file_on_signal_forget (const char *path)
{
    for (int i = 0; i < SIGPATHS; i++)
        if (sig_used[i] && path && !strcmp (sig_path[i], path))
            sig_used[i] = 0;
}

void dc_file_signal_cleanup (void)
{
    for (int i = 0; i < SIGPATHS; i++)
        if (sig_used[i])
            unlink (sig_path[i]);
}

int dc_atomicfile_sweep (const char *path, char *names, size_t len)
{
    struct target t;
    int removed = 0;

    if (names && len)
        names[0] = '\0';
    if (resolve (path, &t, NULL) < 0 || t.kind != K_REPLACE || !t.final)
        goto out;
    char *d = strdup (t.final), *b = strdup (t.final), prefix[PATH_MAX];
    DIR *dir = d ? opendir (dirname (d)) : NULL;
    if (!dir || !b) {
        free (d), free (b);
        if (dir)
            closedir (dir);
        goto out;
    }
    snprintf (prefix, sizeof (prefix), ".%s" SHARED_TAG, basename (b));
    size_t pl = strlen (prefix);
    struct dirent *e;
    while ((e = readdir (dir))) {
        struct stat st;
        if (strncmp (e->d_name, prefix, pl) || strlen (e->d_name) != pl + 6)
            continue;
        int fd = openat (dirfd (dir), e->d_name,
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* ours, and no live run holds it */
        if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) &&
            st.st_uid == geteuid () && flock (fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat (dirfd (dir), e->d_name, 0) == 0) {
            size_t l = names ? strlen (names) : 0;
            if (names && l + 1 < len)
                snprintf (names + l, len - l, "%s%s", l ? ", " : "", e->d_name);
            removed++;
        }
        close (fd);
    }
    closedir (dir);
    free (d);
    free (b);
out:
    free (t.final);
    return removed;
}

int dc_atomicfile_pwrite (struct dc_atomicfile *f, const void *buf, size_t n,
                          uint64_t off, dc_error_t *errp)
{
    const char *p = buf;

    if (!f || f->fd < 0 || (n && !buf) || off > (uint64_t)INT64_MAX - n) {
        errno = EINVAL;
        return errprintf (errp, "%s: invalid write", f ? f->path : "(null)");
    }
    while (n > 0) {
        ssize_t w = pwrite (f->fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errprintf (errp, "%s: write: %s", f->path, strerror (errno));
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
                          f->path, (unsigned long long)size, strerror (errno));
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

bool dc_atomicfile_in_place (const struct dc_atomicfile *f)
{
    return f && f->target >= 0;
}

/* fsync where the file system can; EINVAL/EROFS/ENOTSUP mean "cannot". */
static int sync_fd (int fd)
{
    if (fsync (fd) == 0 || errno == EINVAL || errno == EROFS ||
        errno == ENOTSUP)
        return 0;
    return -1;
}

/* In place: copy the bytes, in order, to the target. */
static int commit_in_place (struct dc_atomicfile *f, dc_error_t *errp)
{
    char buf[1 << 16];
    off_t off = 0;

    for (;;) {
        ssize_t n = pread (f->fd, buf, sizeof (buf), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errprintf (errp, "%s: read back: %s", f->path,
                              strerror (errno));
        if (n == 0)
            break;
        off += n;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write (f->target, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return errprintf (errp, "%s: write: %s", f->path,
                                  w < 0 ? strerror (errno) : "no progress");
            done += w;
        }
    }
    struct stat st;
    if (fstat (f->target, &st) == 0 && S_ISREG (st.st_mode) &&
        sync_fd (f->target) < 0)
        return errprintf (errp, "%s: fsync: %s", f->path, strerror (errno));
    if (close (f->target) < 0) {
        f->target = -1;
        return errprintf (errp, "%s: close: %s", f->path, strerror (errno));
    }
    f->target = -1;
    close (f->fd);
    f->fd = -1;
    f->committed = true;
    return 0;
}

int dc_atomicfile_commit (struct dc_atomicfile *f, dc_error_t *errp)
{
    mode_t mask;

    if (!f || f->fd < 0 || f->committed) {
        errno = EINVAL;
        return errprintf (errp, "commit of a file that is not open");
    }
    if (f->target >= 0)
        return commit_in_place (f, errp);
    mask = umask (0);
    umask (mask);
    if (fchmod (f->fd, 0666 & ~mask) < 0)
        return errprintf (errp, "%s: chmod: %s", f->tmp, strerror (errno));
    /* the bytes on the disk before any name points at them */
    if (sync_fd (f->fd) < 0)
        return errprintf (errp, "%s: fsync: %s", f->path, strerror (errno));
    if (f->anon) {
        /* give the file its temporary name, then rename it over path */
        char proc[64];
        size_t n = strlen (f->tmp);
        snprintf (proc, sizeof (proc), "/proc/self/fd/%d", f->fd);
        for (int tries = 0;; tries++) {
            static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
            unsigned long r =
                (unsigned long)random () ^ (unsigned long)getpid ();
            for (size_t i = n - 6; i < n; i++, r /= 36)
                f->tmp[i] = digits[r % 36];
            if (linkat (AT_FDCWD, proc, AT_FDCWD, f->tmp, AT_SYMLINK_FOLLOW) ==
                0)
                break;
            if (errno != EEXIST || tries > 100)
                return errprintf (errp, "%s: cannot name the file: %s", f->path,
                                  strerror (errno));
        }
        f->anon = false; /* named now: destroy removes it if rename fails */
    }
    if (close (f->fd) < 0) {
        f->fd = -1;
        return errprintf (errp, "%s: close: %s", f->tmp, strerror (errno));
    }
    f->fd = -1;
    char *d = strdup (f->tmp);
    int dfd = d ? open (dirname (d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    free (d);
    if (rename (f->tmp, f->path) < 0) {
        int e = errno;
        if (dfd >= 0)
            close (dfd);
        errno = e;
        return errprintf (errp, "%s: cannot rename %s to it: %s", f->path,
                          f->tmp, strerror (e));
    }
    f->committed = true;
    if (f->sig) {
        dc_file_on_signal_forget (f->tmp);
        f->sig = false;
    }
    /* the new name on the disk too */
    if (dfd >= 0) {
        int rc = sync_fd (dfd), e = errno;
        close (dfd);
        if (rc < 0) {
            errno = e;
            return errprintf (errp, "%s: fsync of its folder: %s", f->path,
                              strerror (e));
        }
    }
    return 0;
}

void dc_atomicfile_destroy (struct dc_atomicfile *f)
{
    if (!f)
        return;
    int saved = errno;
    if (f->fd >= 0)
        close (f->fd);
    if (f->target >= 0)
        close (f->target);
    if (f->sig)
        dc_file_on_signal_forget (f->tmp);
    if (!f->committed && !f->anon && f->tmp)
        unlink (f->tmp);
    free (f->tmp);
    free (f->path);
    free (f);
    errno = saved;
}

/* ---- inputs ---- */

int dc_file_open_regular (const char *path, dc_error_t *errp)
{
    struct stat st;
    int fd, e;

    if (!path || !*path) {
        errno = EINVAL;
        return errprintf (errp, "no file given");
    }
    /* O_NONBLOCK: a FIFO without a writer must not block the open */
    if ((fd = open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 ||
        fstat (fd, &st) < 0) {
        e = errno;
        if (fd >= 0)
            close (fd);
        errno = e;
        return errprintf (errp, "%s: %s", path, strerror (e));
    }
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        errno = EINVAL;
        return errprintf (errp, "%s: not a regular file", path);
    }
    if (fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        e = errno;
        close (fd);
        errno = e;
        return errprintf (errp, "%s: %s", path, strerror (e));
    }
    return fd;
}

/* Whole small files (models, checkpoints) read into memory. */
uint8_t *dc_file_read (const char *path, size_t max, size_t *lenp,
                       dc_error_t *errp)
{
    int fd = dc_file_open_regular (path, errp);
    struct stat st;
    uint8_t *buf = NULL;
    size_t off = 0;

    if (fd < 0)
        return NULL;
    if (fstat (fd, &st) < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
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

/* ---- logs ---- */

int dc_file_open_log (const char *path, bool append, dc_error_t *errp)
{
    struct target t;
    int fd;

    if (resolve (path, &t, errp) < 0)
        return -1;
    if (t.kind == K_IN_PLACE) {
        if ((fd = open (path, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0)
            return errprintf (errp, "%s: %s", path, strerror (errno));
        struct stat st;
        if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode))
            fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_APPEND);
        return fd;
    }
    /* a link to a regular file: that file; nothing created through links */
    fd = open (t.final,
               O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC |
                   (append ? O_APPEND : O_TRUNC),
               0666);
    if (fd < 0) {
        int e = errno;
        errprintf (errp, "%s: %s", path,
                   e == ELOOP ? "a symbolic link appeared: not followed"
                              : strerror (e));
        free (t.final);
        errno = e;
        return -1;
    }
    free (t.final);
    return fd;
}

/* ---- the files of a command, together ---- */

struct ident {
    bool known;     /* dev/ino of the file, or of its folder + base */
    bool named;     /* a file that exists */
    bool shareable; /* a device or FIFO: several outputs may name it */
    dev_t dev;
    ino_t ino;
    char *base; /* not named: the name in the folder dev/ino */
};

/* Whether a new file can be made in dir (O_TMPFILE, else a named probe). */
static int probe_dir (const char *path, const char *dir, dc_error_t *errp)
{
    int fd = open (dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);

    if (fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != EACCES &&
        errno != EROFS && errno != ENOSPC && errno != EDQUOT) {
        /* no O_TMPFILE here: a named file */
        char tmpl[PATH_MAX];
        snprintf (tmpl, sizeof (tmpl), "%s/.dcrun-probe.XXXXXX", dir);
        if ((fd = mkostemp (tmpl, O_CLOEXEC)) >= 0)
            unlink (tmpl);
    }
    if (fd < 0)
        return errprintf (errp, "%s: cannot create a file in %s: %s", path, dir,
                          strerror (errno));
    close (fd);
    return 0;
}

static int check_one (const struct dc_file_use *u, struct ident *id,
                      dc_error_t *errp)
{
    struct stat st;

    memset (id, 0, sizeof (*id));
    if (u->role == DC_FILE_INPUT) {
        int fd = dc_file_open_regular (u->path, errp);
        if (fd < 0)
            return -1;
        if (fstat (fd, &st) < 0) {
            close (fd);
            return errprintf (errp, "%s: %s", u->path, strerror (errno));
        }
        close (fd);
        id->known = id->named = true;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return 0;
    }
    struct target t;
    if (u->role == DC_FILE_INOUT) {
        /* read when it exists, written later (its folder may come later) */
        if (stat (u->path, &st) == 0) {
            if (!S_ISREG (st.st_mode)) {
                errno = EINVAL;
                return errprintf (errp, "%s: not a regular file", u->path);
            }
            id->known = id->named = true;
            id->dev = st.st_dev;
            id->ino = st.st_ino;
        }
        return 0;
    }
    if (resolve (u->path, &t, errp) < 0)
        return -1;
    if (t.kind == K_IN_PLACE) {
        id->known = id->named = true;
        id->shareable = !S_ISREG (t.st.st_mode);
        id->dev = t.st.st_dev;
        id->ino = t.st.st_ino;
        if (S_ISCHR (t.st.st_mode)) {
            /* FIFOs would block: only devices are opened to try */
            int fd =
                open (u->path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd < 0)
                return errprintf (errp, "%s: %s", u->path, strerror (errno));
            close (fd);
        }
        return 0;
    }
    char *d = strdup (t.final), *b = strdup (t.final);
    int rc = -1;
    if (!d || !b) {
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", u->path);
        goto out;
    }
    const char *dir = dirname (d);
    if (probe_dir (u->path, dir, errp) < 0)
        goto out;
    if (t.exists) {
        id->known = id->named = true;
        id->dev = t.st.st_dev;
        id->ino = t.st.st_ino;
    } else if (stat (dir, &st) == 0 && (id->base = strdup (basename (b)))) {
        id->known = true;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
    }
    rc = 0;
out:
    free (d);
    free (b);
    free (t.final);
    return rc;
}

static bool same (const struct ident *a, const struct ident *b)
{
    if (!a->known || !b->known || a->named != b->named || a->dev != b->dev ||
        a->ino != b->ino)
        return false;
    return a->named || !strcmp (a->base, b->base);
}

int dc_file_check (const struct dc_file_use *v, size_t n, dc_error_t *errp)
{
    struct ident *id;
    int rc = 0;

    if (n == 0)
        return 0;
    if (!v || !(id = calloc (n, sizeof (*id)))) {
        errno = v ? ENOMEM : EINVAL;
        return errprintf (errp, v ? "out of memory" : "no files");
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (v[i].path && check_one (&v[i], &id[i], errp) < 0)
            rc = -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        for (size_t j = 0; j < i && rc == 0; j++) {
            if (!v[i].path || !v[j].path ||
                (v[i].role == DC_FILE_INPUT && v[j].role == DC_FILE_INPUT) ||
                (id[i].shareable && id[j].shareable) || !same (&id[i], &id[j]))
                continue;
            /* the one written first in the message */
            size_t o = v[i].role != DC_FILE_INPUT ? i : j, k = o == i ? j : i;
            errno = EEXIST;
            rc = errprintf (errp, "%s %s and %s %s are the same file",
                            v[o].what, v[o].path, v[k].what, v[k].path);
        }
    for (size_t i = 0; i < n; i++)
        free (id[i].base);
    free (id);
    return rc;
}

/* Filesystems whose writes other hosts see only after a flush. */
bool dc_file_network_fs (int fd)
{
    struct statfs sf;
    static const unsigned long magic[] = {
        0x6969,     /* NFS */
        0x0BD00BD0, /* Lustre */
        0x47504653, /* GPFS */
        0xFF534D42, /* CIFS */
        0xFE534D42, /* SMB2 */
        0x00C36400, /* Ceph */
        0x19830326, /* BeeGFS */
        0x65735546, /* FUSE */
    };
    if (fstatfs (fd, &sf) < 0)
        return true;
    for (size_t i = 0; i < sizeof (magic) / sizeof (magic[0]); i++)
        if ((unsigned long)sf.f_type == magic[i])
            return true;
    return false;
}

int dc_file_abs_path (const char *path, char *buf, size_t len, dc_error_t *errp)
{
    char *d = strdup (path), *b = strdup (path), *rd = NULL;
    int rc = -1;

    if (d && b && (rd = realpath (dirname (d), NULL))) {
        if ((size_t)snprintf (buf, len, "%s/%s", rd, basename (b)) < len)
            rc = 0;
        else
            errprintf (errp, "%s: path too long for the ranks", path);
    } else
        errprintf (errp, "%s: %s", path, strerror (errno));
    free (rd);
    free (d);
    free (b);
    return rc;
}

int dc_file_token_create (const char *near, char *path, size_t pathlen,
                          char *token, size_t toklen, dc_error_t *errp)
{
    unsigned char rnd[16];
    size_t n = strlen (near);
    int fd;

    if (n < 6 || n >= pathlen || toklen < 2 * sizeof (rnd) + 1)
        return errprintf (errp, "%s: path too long", near);
    memcpy (path, near, n + 1);
    memcpy (path + n - 6, "XXXXXX", 6);
    if ((fd = mkostemp (path, O_CLOEXEC)) < 0)
        return errprintf (errp, "%s: %s", path, strerror (errno));
    dc_file_on_signal_unlink (path);
    if (flock (fd, LOCK_EX | LOCK_NB) < 0 ||
        getrandom (rnd, sizeof (rnd), 0) != (ssize_t)sizeof (rnd)) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto fail;
    }
    for (size_t i = 0; i < sizeof (rnd); i++)
        snprintf (token + 2 * i, 3, "%02x", rnd[i]);
    if (write (fd, token, strlen (token)) != (ssize_t)strlen (token)) {
        errprintf (errp, "%s: cannot write the token", path);
        goto fail;
    }
    return fd;
fail:
    dc_file_on_signal_forget (path);
    unlink (path);
    close (fd);
    return -1;
}

/* ---- private folders held while their process lives ---- */

#define HOLD_OWNER "owner"

int dc_file_hold_dir (const char *dir)
{
    char path[PATH_MAX + 16];
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (flock (fd, LOCK_EX | LOCK_NB) < 0 ||
        snprintf (path, sizeof (path), "%s/" HOLD_OWNER, dir) >=
            (int)sizeof (path)) {
        int e = errno;
        close (fd);
        errno = e ? e : ENAMETOOLONG;
        return -1;
    }
    int o =
        open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (o >= 0) {
        dprintf (o, "%ld\n", (long)getpid ());
        close (o);
    }
    return fd;
}

/* Everything under the folder dfd (closed here), depth levels at most. */
static void rm_tree (int dfd, int depth)
{
    DIR *dp = fdopendir (dfd);
    struct dirent *e;

    if (!dp) {
        close (dfd);
        return;
    }
    while ((e = readdir (dp))) {
        if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
            continue;
        if (unlinkat (dfd, e->d_name, 0) == 0 || errno != EISDIR || depth <= 0)
            continue;
        int sub = openat (dfd, e->d_name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            rm_tree (sub, depth - 1);
        unlinkat (dfd, e->d_name, AT_REMOVEDIR);
    }
    closedir (dp);
}

void dc_file_sweep_dirs (const char *parent, const char *prefix)
{
    DIR *dp = parent && prefix ? opendir (parent) : NULL;
    size_t pl = prefix ? strlen (prefix) : 0;
    struct dirent *e;

    if (!dp)
        return;
    while ((e = readdir (dp))) {
        char path[PATH_MAX], own[PATH_MAX + 16];
        struct stat st;
        if (strncmp (e->d_name, prefix, pl) || strlen (e->d_name) != pl + 6 ||
            snprintf (path, sizeof (path), "%s/%s", parent, e->d_name) >=
                (int)sizeof (path) ||
            lstat (path, &st) < 0 || !S_ISDIR (st.st_mode) ||
            st.st_uid != geteuid ())
            continue;
        snprintf (own, sizeof (own), "%s/" HOLD_OWNER, path);
        int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock (fd, LOCK_EX | LOCK_NB) == 0 && access (own, F_OK) == 0) {
            int t = openat (fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (t >= 0)
                rm_tree (t, 8);
            rmdir (path);
        }
        close (fd); /* releases the lock */
    }
    closedir (dp);
}
