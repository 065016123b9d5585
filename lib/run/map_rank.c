/* map_rank.c - the rank side of `dcrun map` (map_rank.h) */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/comm/wire.h"
#include "lib/formats/report.h"
#include "lib/run/map_npy.h"
#include "lib/run/map_rank.h"
#include "lib/run/ready.h"
#include "lib/util/file.h"
#include "lib/util/log.h"

extern char **environ;

#define LINE_MAX_BYTES 65536
#define STOP_WAIT_S 30.0 /* for CMD to exit after its stdin closes */
#define MAX_HELD 8       /* --io direct: outputs kept before the DATA */
#define COPY_BYTES ((size_t)1 << 20)

/* What the signal handler removes: set before a signal can find it. */
static char g_dir[4096], g_in[4200], g_out[4200];
static int g_hold = -1; /* g_dir held (dc_file_hold_dir) */
static volatile sig_atomic_t g_pgid;

/* MPI rank 0: the hub's cleanup and this rank's thread take turns on the
 * chunk files; once stopped, the thread makes none. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t g_stopped;
static const int g_sigs[3] = {SIGTERM, SIGINT, SIGHUP};
static struct sigaction g_old[3]; /* the handlers found */

struct dirent64_ {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Remove what folder dfd holds, depth folders down, with system calls
 * only (async-signal-safe). */
static void rm_under (int dfd, int depth)
{
    char buf[4096] __attribute__ ((aligned (8)));

    for (int pass = 0; pass < 64; pass++) {
        bool any = false;
        lseek (dfd, 0, SEEK_SET);
        long n;
        while ((n = syscall (SYS_getdents64, dfd, buf, sizeof (buf))) > 0)
            for (long off = 0; off < n;) {
                struct dirent64_ *d = (struct dirent64_ *)(buf + off);
                const char *e = d->d_name;
                off += d->d_reclen;
                if (e[0] == '.' && (!e[1] || (e[1] == '.' && !e[2])))
                    continue;
                any = true;
                if (unlinkat (dfd, e, 0) == 0 || depth <= 0)
                    continue;
                int sub = openat (
                    dfd, e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                    rm_under (sub, depth - 1);
                    close (sub);
                }
                unlinkat (dfd, e, AT_REMOVEDIR);
            }
        if (!any)
            break;
    }
}

/* Empty the folder path (keep it). */
static void empty_dir (const char *path)
{
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        rm_under (fd, 8);
        close (fd);
    }
}

static void cleanup_now (void) /* async-signal-safe */
{
    if (g_pgid > 0)
        kill (-(pid_t)g_pgid, SIGKILL);
    if (g_dir[0]) {
        empty_dir (g_dir);
        rmdir (g_dir);
    }
}

void dc_map_rank_cleanup (void)
{
    pthread_mutex_lock (&g_mu);
    g_stopped = true;
    cleanup_now ();
    pthread_mutex_unlock (&g_mu);
}

/* The job stops: no CMD and no chunk file left, then what the process
 * did before (MPI rank 0's hub: its signal pipe), or the default. */
static void on_signal (int sig)
{
    g_stopped = 1;
    cleanup_now ();
    for (int i = 0; i < 3; i++)
        if (g_sigs[i] == sig) {
            const struct sigaction *o = &g_old[i];
            if (!(o->sa_flags & SA_SIGINFO) && o->sa_handler != SIG_DFL) {
                if (o->sa_handler != SIG_IGN)
                    o->sa_handler (sig);
                return;
            }
        }
    signal (sig, SIG_DFL);
    raise (sig);
}

struct mrank {
    struct dc_comm *c;
    struct dc_wire_map spec;
    pid_t pid; /* persistent CMD, 0 when none */
    int to_cmd, from_cmd;
    char buf[LINE_MAX_BYTES];
    size_t blen;
    uint8_t *hdrbuf;
    /* --io direct (JOB "io"): the input and the output's temporary file,
     * opened here; the output's place once the hub tells it (have_out);
     * CMD's outputs kept until then */
    bool direct, have_out;
    bool netfs; /* the output's: flush each chunk before it is acknowledged */
    int in_fd, out_fd;
    struct dc_map_arr in;
    struct dc_wire_mapout out;
    struct held {
        uint64_t id, row0, rows;
        double secs;
    } held[MAX_HELD];
    int nheld;
};

/* The folder and whatever CMD left in it. */
static void remove_dir (void)
{
    sigset_t all, old;

    if (!g_dir[0])
        return;
    empty_dir (g_dir);
    rmdir (g_dir);
    if (g_hold >= 0) {
        close (g_hold);
        g_hold = -1;
    }
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    g_dir[0] = g_in[0] = g_out[0] = '\0';
    pthread_sigmask (SIG_SETMASK, &old, NULL);
}

static void describe_status (int status, char *buf, size_t len)
{
    if (WIFEXITED (status))
        snprintf (buf, len, "exited with status %d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status)) {
        const char *s = sigabbrev_np (WTERMSIG (status));
        snprintf (buf, len, "was killed by SIG%s", s ? s : "?");
    } else
        snprintf (buf, len, "ended (status %d)", status);
}

/* Fork CMD in a process group of its own: stdin from in_fd (-1:
 * /dev/null), stdout to out_fd (-1: the rank's stderr), stderr the
 * rank's.  envp NULL: environ.  The pid, or -1 with errp. */
static pid_t spawn (char *const *argv, char *const *envp, int in_fd, int out_fd,
                    int close1, int close2, dc_error_t *errp)
{
    int ep[2], e = 0;
    pid_t pid;

    if (pipe2 (ep, O_CLOEXEC) < 0)
        return errprintf (errp, "pipe: %s", strerror (errno));
    if ((pid = fork ()) < 0) {
        e = errno;
        close (ep[0]);
        close (ep[1]);
        return errprintf (errp, "fork: %s", strerror (e));
    }
    if (pid == 0) {
        setpgid (0, 0);
        signal (SIGPIPE, SIG_DFL);
        signal (SIGTERM, SIG_DFL);
        signal (SIGINT, SIG_DFL);
        signal (SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        if (close1 >= 0)
            close (close1);
        if (close2 >= 0)
            close (close2);
        int devnull = in_fd < 0 ? open ("/dev/null", O_RDONLY) : -1;
        if (dup2 (in_fd >= 0 ? in_fd : devnull, 0) < 0 ||
            dup2 (out_fd >= 0 ? out_fd : 2, 1) < 0)
            goto fail;
        /* nothing of the rank's (its frames) reaches CMD */
        if (ep[1] > 3)
            close_range (3, (unsigned)ep[1] - 1, 0);
        close_range ((unsigned)ep[1] + 1, ~0U, 0);
        execvpe (argv[0], argv, envp ? envp : environ);
    fail:
        e = errno;
        ssize_t w = write (ep[1], &e, sizeof (e));
        (void)w;
        _exit (127);
    }
    close (ep[1]);
    setpgid (pid, pid); /* either side may win the race */
    ssize_t n;
    while ((n = read (ep[0], &e, sizeof (e))) < 0 && errno == EINTR)
        ;
    close (ep[0]);
    if (n == (ssize_t)sizeof (e)) {
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return errprintf (errp, "%s: %s", argv[0], strerror (e));
    }
    return pid;
}

/* Kill CMD's process group and reap it. */
static void kill_cmd (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (-pid, SIGKILL);
    kill (pid, SIGKILL);
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Wait for pid up to seconds (< 0: forever): 1 with *status, 0 on
 * timeout. */
static int wait_for (pid_t pid, double seconds, int *status)
{
    double until = dc_now () + seconds;
    long ns = 1000000;

    for (;;) {
        pid_t w = waitpid (pid, status, WNOHANG);
        if (w == pid)
            return 1;
        if (w < 0 && errno != EINTR) {
            *status = 0;
            return 1;
        }
        if (seconds >= 0 && dc_now () >= until)
            return 0;
        struct timespec ts = {0, ns};
        nanosleep (&ts, NULL);
        if (ns < 20000000)
            ns *= 2;
    }
}

static int write_all (int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write (fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* n bytes from src at off to dst: at dst_off (pwrite), or appended when
 * dst_off < 0.  0, or -1 with errp. */
static int copy_rows (int src, uint64_t off, int dst, int64_t dst_off,
                      uint64_t n, dc_error_t *errp)
{
    size_t cap = n < COPY_BYTES ? (size_t)n : COPY_BYTES;
    uint8_t *buf = malloc (cap ? cap : 1);
    uint64_t done = 0;

    if (!buf)
        return errprintf (errp, "out of memory");
    while (done < n) {
        size_t want = n - done < cap ? (size_t)(n - done) : cap;
        ssize_t k = pread (src, buf, want, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            free (buf);
            return errprintf (errp, "reading rows: %s",
                              k < 0 ? strerror (errno) : "the file shrank");
        }
        size_t w = 0;
        while (w < (size_t)k) {
            ssize_t x = dst_off < 0
                            ? write (dst, buf + w, (size_t)k - w)
                            : pwrite (dst, buf + w, (size_t)k - w,
                                      (off_t)((uint64_t)dst_off + done + w));
            if (x < 0 && errno == EINTR)
                continue;
            if (x <= 0) {
                free (buf);
                return errprintf (errp, "writing rows: %s",
                                  x < 0 ? strerror (errno) : "short write");
            }
            w += (size_t)x;
        }
        done += (uint64_t)k;
    }
    free (buf);
    return 0;
}

/* The chunk's rows as an .npy at g_in. */
static int write_input (struct mrank *m, const struct dc_wire_chunk *ch,
                        dc_error_t *errp)
{
    const struct dc_wire_map *s = &m->spec;
    int64_t shape[DC_MAP_MAXDIM];
    uint8_t hdr[512 + DC_MAP_MAXDIM * 24];
    size_t hl;
    int fd, rc = -1;

    shape[0] = (int64_t)ch->rows;
    for (int i = 0; i < s->ndim; i++)
        shape[i + 1] = s->shape[i];
    if (!(hl = dc_map_npy_header (s->descr, s->ndim + 1, shape, hdr,
                                  sizeof (hdr))))
        return errprintf (errp, "the chunk's header is too long");
    pthread_mutex_lock (&g_mu);
    if (g_stopped) {
        pthread_mutex_unlock (&g_mu);
        return errprintf (errp, "stopped");
    }
    unlink (g_in);
    unlink (g_out);
    fd =
        open (g_in, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    pthread_mutex_unlock (&g_mu);
    if (fd < 0)
        return errprintf (errp, "%s: %s", g_in, strerror (errno));
    if (write_all (fd, hdr, hl) < 0)
        errprintf (errp, "%s: %s", g_in, strerror (errno));
    else if (m->direct) /* the rows from the input, read here */
        rc = copy_rows (m->in_fd, m->in.data_offset + ch->row0 * s->row_bytes,
                        fd, -1, ch->rows * s->row_bytes, errp);
    else if (write_all (fd, ch->data, (size_t)(ch->rows * s->row_bytes)) < 0)
        errprintf (errp, "%s: %s", g_in, strerror (errno));
    else
        rc = 0;
    if (close (fd) < 0 && rc == 0)
        rc = errprintf (errp, "%s: %s", g_in, strerror (errno));
    return rc;
}

/* Persistent mode: the request line, then CMD's lines until "done".
 * 0 done; -1 CMD died or timed out (errp, the rank leaves). */
static int ask_cmd (struct mrank *m, uint64_t id, dc_error_t *errp)
{
    char line[9000];
    int n = snprintf (line, sizeof (line), "%s %s\n", g_in, g_out);
    double until =
        m->spec.chunk_timeout > 0 ? dc_now () + m->spec.chunk_timeout : 0;
    char how[64];
    int status;

    if (n >= (int)sizeof (line))
        return errprintf (errp, "chunk paths too long");
    if (write_all (m->to_cmd, line, (size_t)n) < 0)
        goto died;
    for (;;) {
        char *nl;
        while ((nl = memchr (m->buf, '\n', m->blen))) {
            size_t ll = (size_t)(nl - m->buf);
            size_t t = ll;
            while (t > 0 && (m->buf[t - 1] == '\r' || m->buf[t - 1] == ' ' ||
                             m->buf[t - 1] == '\t'))
                t--;
            bool done = t == 4 && !memcmp (m->buf, "done", 4);
            if (!done) /* CMD's own output: on to the rank's stderr */
                write_all (2, m->buf, ll + 1);
            memmove (m->buf, nl + 1, m->blen - ll - 1);
            m->blen -= ll + 1;
            if (done)
                return 0;
        }
        if (m->blen == sizeof (m->buf)) { /* a very long line: pass it on */
            write_all (2, m->buf, m->blen);
            m->blen = 0;
        }
        int ms = -1;
        if (until > 0) {
            double left = until - dc_now ();
            if (left <= 0)
                goto timeout;
            ms = (int)(left * 1000) + 1;
        }
        struct pollfd p = {.fd = m->from_cmd, .events = POLLIN};
        int pr = poll (&p, 1, ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        ssize_t r =
            read (m->from_cmd, m->buf + m->blen, sizeof (m->buf) - m->blen);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto died;
        m->blen += (size_t)r;
    }
timeout:
    kill_cmd (m->pid);
    m->pid = 0;
    g_pgid = 0;
    return errprintf (errp,
                      "chunk %" PRIu64 " ran past --chunk-timeout %g s: "
                      "CMD killed",
                      id, m->spec.chunk_timeout);
died:
    if (!wait_for (m->pid, 2, &status)) {
        kill_cmd (m->pid);
        snprintf (how, sizeof (how), "closed its stdout");
    } else
        describe_status (status, how, sizeof (how));
    m->pid = 0;
    g_pgid = 0;
    return errprintf (errp, "%s %s with chunk %" PRIu64 " in hand",
                      m->spec.argv[0], how, id);
}

/* {in} and {out} replaced in every argument. */
static char *subst (const char *arg)
{
    size_t n = 0, li = strlen (g_in), lo = strlen (g_out);
    for (const char *p = arg; *p;)
        if (!strncmp (p, "{in}", 4)) {
            n += li;
            p += 4;
        } else if (!strncmp (p, "{out}", 5)) {
            n += lo;
            p += 5;
        } else {
            n++;
            p++;
        }
    char *s = malloc (n + 1), *q = s;
    if (!s)
        return NULL;
    for (const char *p = arg; *p;)
        if (!strncmp (p, "{in}", 4)) {
            memcpy (q, g_in, li);
            q += li;
            p += 4;
        } else if (!strncmp (p, "{out}", 5)) {
            memcpy (q, g_out, lo);
            q += lo;
            p += 5;
        } else
            *q++ = *p++;
    *q = '\0';
    return s;
}

static void strv_free (char **v)
{
    if (v) {
        for (size_t i = 0; v[i]; i++)
            free (v[i]);
        free (v);
    }
}

/* The environment with the chunk's variables first. */
static char **chunk_env (const struct dc_wire_chunk *ch)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **v = calloc (n + 4, sizeof (char *));
    size_t k = 0;
    if (!v)
        return NULL;
    if (asprintf (&v[k++], "DCRUN_CHUNK=%" PRIu64, ch->id) < 0 ||
        asprintf (&v[k++], "DCRUN_CHUNK_ROW0=%" PRIu64, ch->row0) < 0 ||
        asprintf (&v[k++], "DCRUN_CHUNK_ROWS=%" PRIu64, ch->rows) < 0) {
        v[k - 1] = NULL;
        strv_free (v);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strncmp (environ[i], "DCRUN_CHUNK=", 12) ||
            !strncmp (environ[i], "DCRUN_CHUNK_ROW0=", 17) ||
            !strncmp (environ[i], "DCRUN_CHUNK_ROWS=", 17))
            continue;
        if (!(v[k++] = strdup (environ[i]))) {
            strv_free (v);
            return NULL;
        }
    }
    v[k] = NULL;
    return v;
}

/* Per-chunk mode: run CMD for this chunk.  0 it ran (*why empty: exit 0;
 * else why the chunk failed); -1 fatal (errp: timeout, cannot start). */
static int run_chunk_cmd (struct mrank *m, const struct dc_wire_chunk *ch,
                          char *why, size_t whylen, dc_error_t *errp)
{
    const struct dc_wire_map *s = &m->spec;
    char **argv = calloc ((size_t)s->argc + 1, sizeof (char *));
    char **env = chunk_env (ch);
    int status, rc = -1;
    char how[64];
    pid_t pid;

    why[0] = '\0';
    if (!argv || !env) {
        errprintf (errp, "out of memory");
        goto out;
    }
    for (int i = 0; i < s->argc; i++)
        if (!(argv[i] = subst (s->argv[i]))) {
            errprintf (errp, "out of memory");
            goto out;
        }
    if ((pid = spawn (argv, env, -1, -1, -1, -1, errp)) < 0)
        goto out;
    pthread_mutex_lock (&g_mu);
    g_pgid = pid;
    if (g_stopped) { /* the hub's cleanup came first */
        pthread_mutex_unlock (&g_mu);
        kill_cmd (pid);
        errprintf (errp, "stopped");
        goto out;
    }
    pthread_mutex_unlock (&g_mu);
    if (!wait_for (pid, s->chunk_timeout > 0 ? s->chunk_timeout : -1,
                   &status)) {
        kill_cmd (pid);
        g_pgid = 0;
        errprintf (errp,
                   "chunk %" PRIu64 " ran past --chunk-timeout %g s: "
                   "CMD killed",
                   ch->id, s->chunk_timeout);
        goto out;
    }
    g_pgid = 0;
    kill (-pid, SIGKILL); /* nothing of the chunk's CMD lingers */
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        describe_status (status, how, sizeof (how));
        snprintf (why, whylen, "%s %s", s->argv[0], how);
    }
    rc = 0;
out:
    strv_free (argv);
    strv_free (env);
    return rc;
}

static int send_failed (struct mrank *m, const struct dc_wire_chunk *ch,
                        const char *why, dc_error_t *errp)
{
    struct dc_wire_mapres r = {.id = ch->id,
                               .row0 = ch->row0,
                               .rows = ch->rows,
                               .status = 1,
                               .text = why,
                               .text_len = strlen (why)};
    size_t len;
    uint8_t *buf;

    if (r.text_len > 1000)
        r.text_len = 1000;
    if (m->spec.files) {
        struct dc_wire_files f = {.id = ch->id,
                                  .first = ch->row0,
                                  .count = ch->rows,
                                  .status = 1,
                                  .text = why,
                                  .text_len = r.text_len};
        buf = dc_wire_files_new (&f, &len);
    } else
        buf = dc_wire_mapres_new (&r, &len);
    if (!buf)
        return errprintf (errp, "out of memory");
    int rc = dc_comm_send (m->c, DC_COMM_HUB, DC_MSG_RESULT, buf, len, errp);
    free (buf);
    return rc;
}

/* --io direct: the path a held output waits under. */
static void held_path (uint64_t id, char *buf, size_t len)
{
    snprintf (buf, len, "%s/held-%" PRIu64 ".npy", g_dir, id);
}

/* --io direct: CMD's output (fd, parsed into a) into the output at its
 * rows.  0 written; 1 it disagrees with the output (why); 2 no output
 * told yet (hold it); 3 writing failed (why). */
static int direct_output (struct mrank *m, uint64_t row0, int fd,
                          const struct dc_map_arr *a, char *why, size_t len)
{
    const struct dc_wire_mapout *o = &m->out;
    char x[600], y[600];
    dc_error_t e;
    bool same;

    if (!m->have_out)
        return 2;
    same = !strcmp (a->descr, o->descr) && a->ndim - 1 == o->ndim &&
           a->row_bytes == o->row_bytes;
    for (int i = 0; same && i < o->ndim; i++)
        same = a->shape[i + 1] == o->shape[i];
    if (!same) {
        /* the words of the hub's check (lib/run/sched_map.c) */
        dc_map_shape_str (a->ndim - 1, a->shape + 1, x, sizeof (x));
        dc_map_shape_str (o->ndim, o->shape, y, sizeof (y));
        dc_ready_why (
            why, len,
            "output of dtype %s and shape %s, but the first chunk's is %s %s",
            a->descr, x, o->descr, y);
        return 1;
    }
    if (copy_rows (fd, a->data_offset, m->out_fd,
                   (int64_t)(o->offset + row0 * o->row_bytes),
                   a->rows * a->row_bytes, &e) < 0 ||
        (m->netfs && fdatasync (m->out_fd) < 0 &&
         errprintf (&e, "fdatasync: %s", strerror (errno)) < 0)) {
        dc_ready_why (why, len, "writing into the output: %s", e.text);
        return 3;
    }
    return 0;
}

/* A RESULT's header for CMD's output a: its dtype and trailing shape. */
static struct dc_wire_mapres result_of (uint64_t id, uint64_t row0,
                                        uint64_t rows, double secs,
                                        const struct dc_map_arr *a,
                                        uint64_t status)
{
    struct dc_wire_mapres r = {.id = id,
                               .row0 = row0,
                               .rows = rows,
                               .seconds = secs,
                               .status = status,
                               .row_bytes = a->row_bytes,
                               .ndim = a->ndim - 1,
                               .text = a->descr,
                               .text_len = strlen (a->descr)};
    for (int i = 1; i < a->ndim; i++)
        r.shape[i - 1] = a->shape[i];
    return r;
}

/* A header-only RESULT: status DC_MAPRES_WRITTEN or DC_MAPRES_HELD. */
static int send_direct (struct mrank *m, uint64_t id, uint64_t row0,
                        uint64_t rows, double secs, const struct dc_map_arr *a,
                        uint64_t status, dc_error_t *errp)
{
    struct dc_wire_mapres r = result_of (id, row0, rows, secs, a, status);
    size_t hl = dc_wire_mapres_hdr_len (&r);
    uint8_t *msg = calloc (1, hl);
    if (!msg)
        return errprintf (errp, "out of memory");
    dc_wire_mapres_put (msg, &r);
    int rc = dc_comm_send (m->c, DC_COMM_HUB, DC_MSG_RESULT, msg, hl, errp);
    free (msg);
    return rc;
}

/* Open an .npy CMD wrote and parse its header: the fd, or -1 with why.
 * cmd: the chunk's own output of that command (its wordings). */
static int open_output (const char *path, const char *cmd, struct dc_map_arr *a,
                        char *why, size_t len)
{
    struct stat st;
    uint8_t *hb;
    dc_error_t e;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0) {
        if (cmd && errno == ENOENT)
            snprintf (why, len, "no output: %.100s did not write %.900s", cmd,
                      path);
        else
            snprintf (why, len, "output %.900s: %s", path, strerror (errno));
        return -1;
    }
    size_t want = DC_MAP_MAXHEADER + 12;
    if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        snprintf (why, len, "output %.900s: not a regular file", path);
        close (fd);
        return -1;
    }
    if ((uint64_t)st.st_size < want)
        want = (size_t)st.st_size;
    if (!(hb = malloc (want ? want : 1))) {
        snprintf (why, len, "out of memory");
        close (fd);
        return -1;
    }
    ssize_t n = pread (fd, hb, want, 0);
    if (n < 0 && cmd)
        snprintf (why, len, "output %.900s: %s", path, strerror (errno));
    else if (n < 0 ||
             dc_map_npy_parse (hb, (size_t)n, (uint64_t)st.st_size, a, &e) < 0)
        snprintf (why, len, "output is not a valid .npy: %s",
                  n < 0 ? strerror (errno) : e.text);
    else {
        free (hb);
        return fd;
    }
    free (hb);
    close (fd);
    return -1;
}

/* --io direct: the hub told where the output's rows go: the held outputs
 * go there now.  0, or -1 when the hub cannot be told (errp). */
static int flush_held (struct mrank *m, dc_error_t *errp)
{
    char path[4300], why[1200];
    struct dc_map_arr a;

    for (int i = 0; i < m->nheld; i++) {
        struct held *hd = &m->held[i];
        held_path (hd->id, path, sizeof (path));
        int fd = open_output (path, NULL, &a, why, sizeof (why)), d = 3;
        if (fd >= 0) {
            d = a.rows == hd->rows
                    ? direct_output (m, hd->row0, fd, &a, why, sizeof (why))
                    : 1;
            close (fd);
        }
        unlink (path);
        struct dc_wire_chunk ch = {
            .id = hd->id, .row0 = hd->row0, .rows = hd->rows};
        /* 1: the hub saw the same disagreement and failed it already */
        if ((d == 0 && send_direct (m, hd->id, hd->row0, hd->rows, hd->secs, &a,
                                    DC_MAPRES_WRITTEN, errp) < 0) ||
            (d == 3 && send_failed (m, &ch, why, errp) < 0))
            return -1;
    }
    m->nheld = 0;
    return 0;
}

/* --io direct: CMD's output (fd, parsed into a) into the output's rows,
 * or held (renamed) until the hub says where it goes.  0 with *status
 * DC_MAPRES_WRITTEN or DC_MAPRES_HELD; 1 the chunk failed (why). */
static int place_direct (struct mrank *m, const struct dc_wire_chunk *ch,
                         double secs, int fd, const struct dc_map_arr *a,
                         char *why, size_t len, uint64_t *status)
{
    char path[4300], old[4300];
    int d = direct_output (m, ch->row0, fd, a, why, len);

    if (d == 1 || d == 3)
        return 1;
    *status = d == 2 ? DC_MAPRES_HELD : DC_MAPRES_WRITTEN;
    if (d != 2)
        return 0;
    held_path (ch->id, path, sizeof (path));
    if (m->nheld == MAX_HELD) { /* the oldest: failed at the hub */
        held_path (m->held[0].id, old, sizeof (old));
        unlink (old);
        memmove (m->held, m->held + 1, sizeof (m->held[0]) * (MAX_HELD - 1));
        m->nheld--;
    }
    if (rename (g_out, path) < 0) {
        snprintf (why, len, "output %.900s: %s", g_out, strerror (errno));
        return 1;
    }
    m->held[m->nheld++] = (struct held){
        .id = ch->id, .row0 = ch->row0, .rows = ch->rows, .secs = secs};
    return 0;
}

/* Relayed: the RESULT with CMD's rows read from fd (*msglen long), or
 * NULL with why. */
static uint8_t *relay_msg (const struct dc_wire_chunk *ch, double secs, int fd,
                           const struct dc_map_arr *a, size_t *msglen,
                           char *why, size_t len)
{
    if (a->row_bytes > DC_WIRE_MAX_WIDTH ||
        a->rows * a->row_bytes > DC_PROTO_MAX_PAYLOAD - 8192) {
        snprintf (why, len,
                  "output rows of %" PRIu64 " bytes are too large for one "
                  "message: use a smaller --chunk-rows",
                  a->row_bytes);
        return NULL;
    }
    struct dc_wire_mapres r =
        result_of (ch->id, ch->row0, ch->rows, secs, a, 0);
    size_t hl = dc_wire_mapres_hdr_len (&r), off = 0;
    size_t bytes = (size_t)(a->rows * a->row_bytes);
    uint8_t *msg = malloc (hl + bytes + 1);
    if (!msg) {
        snprintf (why, len, "out of memory for %zu bytes", bytes);
        return NULL;
    }
    dc_wire_mapres_put (msg, &r);
    while (off < bytes) {
        ssize_t k = pread (fd, msg + hl + off, bytes - off,
                           (off_t)(a->data_offset + off));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            snprintf (why, len, "output %.900s: %s", g_out,
                      k < 0 ? strerror (errno)
                            : "shorter than its header says");
            free (msg);
            return NULL;
        }
        off += (size_t)k;
    }
    *msglen = hl + bytes;
    return msg;
}

/* Read g_out back and send it: 0 sent (done or failed), -1 comm failed. */
static int send_output (struct mrank *m, const struct dc_wire_chunk *ch,
                        double secs, dc_error_t *errp)
{
    struct dc_map_arr a;
    uint8_t *msg;
    uint64_t status;
    char why[1200];
    size_t len;
    int rc, fd = open_output (g_out, m->spec.argv[0], &a, why, sizeof (why));

    if (fd < 0)
        goto failed;
    if (a.rows != ch->rows) {
        snprintf (why, sizeof (why),
                  "output has %" PRIu64 " rows, expected %" PRIu64, a.rows,
                  ch->rows);
        goto failed;
    }
    if (m->direct && a.row_bytes > DC_WIRE_MAX_WIDTH) { /* as relayed */
        snprintf (why, sizeof (why),
                  "output rows of %" PRIu64 " bytes: dcrun map takes rows "
                  "of up to 16 MiB",
                  a.row_bytes);
        goto failed;
    }
    if (m->direct) {
        if (place_direct (m, ch, secs, fd, &a, why, sizeof (why), &status))
            goto failed;
        close (fd);
        unlink (g_out);
        return send_direct (m, ch->id, ch->row0, ch->rows, secs, &a, status,
                            errp);
    }
    if (!(msg = relay_msg (ch, secs, fd, &a, &len, why, sizeof (why))))
        goto failed;
    close (fd);
    unlink (g_out);
    rc = dc_comm_send (m->c, DC_COMM_HUB, DC_MSG_RESULT, msg, len, errp);
    free (msg);
    return rc;
failed:
    if (fd >= 0)
        close (fd);
    unlink (g_out);
    return send_failed (m, ch, why, errp);
}

/* --files: the chunk's files as in/K/NAME, their paths one a line in
 * g_in, and an empty folder g_out for CMD's files. */
static int write_files (const struct dc_wire_files *fm, dc_error_t *errp)
{
    char p[4600];
    int lfd = -1, fd;

    pthread_mutex_lock (&g_mu);
    if (g_stopped) {
        pthread_mutex_unlock (&g_mu);
        return errprintf (errp, "stopped");
    }
    empty_dir (g_dir);
    snprintf (p, sizeof (p), "%s/in", g_dir);
    if (mkdir (p, 0700) == 0 && mkdir (g_out, 0700) == 0)
        lfd = open (g_in, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    0600);
    pthread_mutex_unlock (&g_mu);
    if (lfd < 0)
        return errprintf (errp, "%s: %s", g_dir, strerror (errno));
    for (size_t k = 0; k < fm->nfiles; k++) {
        const struct dc_wire_file *f = &fm->files[k];
        snprintf (p, sizeof (p), "%s/in/%zu", g_dir, k);
        if (mkdir (p, 0700) < 0)
            goto fail;
        snprintf (p, sizeof (p), "%s/in/%zu/%.*s", g_dir, k, (int)f->name_len,
                  f->name);
        if ((fd = open (p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                        0600)) < 0)
            goto fail;
        int w = write_all (fd, f->data, (size_t)f->len);
        if (close (fd) < 0 || w < 0 || write_all (lfd, p, strlen (p)) < 0 ||
            write_all (lfd, "\n", 1) < 0)
            goto fail;
    }
    if (close (lfd) < 0) {
        lfd = -1;
        goto fail;
    }
    return 0;
fail:
    errprintf (errp, "%s: %s", p, strerror (errno));
    if (lfd >= 0)
        close (lfd);
    return -1;
}

static int cmp_names (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

/* --files: the names of the regular files CMD wrote into d, in *names
 * (*n of them).  0; 1 the chunk failed (why); -1 out of memory. */
static int list_outputs (struct mrank *m, DIR *d, char ***names, size_t *n,
                         char *why, size_t len)
{
    size_t cap = 0;
    uint64_t total = 0;
    int dfd = dirfd (d);
    struct dirent *e;

    while ((e = readdir (d))) {
        struct stat st;
        if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
            continue;
        if (fstatat (dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG (st.st_mode)) {
            snprintf (why, len,
                      "%s wrote %s into the output folder: only regular "
                      "files are gathered",
                      m->spec.argv[0], e->d_name);
            return 1;
        }
        total += (uint64_t)st.st_size + 512;
        if (total > DC_WIRE_MAX_FILES_BYTES - ((uint64_t)1 << 20)) {
            snprintf (why, len,
                      "output files of more than 1 GiB: too large for one "
                      "message, use a smaller --chunk-rows");
            return 1;
        }
        if (*n == cap) {
            char **v =
                realloc (*names, (cap = cap ? 2 * cap : 16) * sizeof (char *));
            if (!v)
                return -1;
            *names = v;
        }
        if (!((*names)[*n] = strdup (e->d_name)))
            return -1;
        (*n)++;
    }
    return 0;
}

/* --files: the n files named, read from folder dfd into files (calloc'd
 * by the caller).  0; 1 the chunk failed (why); -1 out of memory. */
static int read_outputs (int dfd, char **names, size_t n,
                         struct dc_wire_file *files, char *why, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        int fd = openat (dfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat (fd, &st) < 0) {
            snprintf (why, len, "output %s: %s", names[i], strerror (errno));
            if (fd >= 0)
                close (fd);
            return 1;
        }
        uint8_t *buf = malloc ((size_t)st.st_size + 1);
        size_t off = 0;
        while (buf && off < (size_t)st.st_size) {
            ssize_t k = read (fd, buf + off, (size_t)st.st_size - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            off += (size_t)k;
        }
        close (fd);
        files[i] = (struct dc_wire_file){.name = names[i],
                                         .name_len = strlen (names[i]),
                                         .data = buf,
                                         .len = off};
        if (!buf)
            return -1;
    }
    return 0;
}

/* --files: the files CMD wrote into g_out, sent back (0), or the chunk
 * failed (sent with the reason); -1 comm failed. */
static int send_files (struct mrank *m, const struct dc_wire_chunk *ch,
                       double secs, dc_error_t *errp)
{
    char why[1200] = "", **names = NULL;
    struct dc_wire_file *files = NULL;
    size_t n = 0, len = 0;
    uint8_t *msg = NULL;
    int rc, r = 1;
    DIR *d = opendir (g_out);

    if (!d)
        snprintf (why, sizeof (why), "output folder %.900s: %s", g_out,
                  strerror (errno));
    else
        r = list_outputs (m, d, &names, &n, why, sizeof (why));
    if (r == 0) {
        qsort (names, n, sizeof (char *), cmp_names);
        if (n && !(files = calloc (n, sizeof (*files))))
            r = -1;
        else
            r = read_outputs (dirfd (d), names, n, files, why, sizeof (why));
    }
    struct dc_wire_files fr = {.id = ch->id,
                               .first = ch->row0,
                               .count = ch->rows,
                               .seconds = secs,
                               .nfiles = n,
                               .files = files};
    if (r == 0 && !(msg = dc_wire_files_new (&fr, &len)))
        r = -1;
    if (r < 0)
        snprintf (why, sizeof (why), "out of memory for the output files");
    rc = r == 0
             ? dc_comm_send (m->c, DC_COMM_HUB, DC_MSG_RESULT, msg, len, errp)
             : send_failed (m, ch, why, errp);
    free (msg);
    if (d)
        closedir (d);
    for (size_t i = 0; i < n; i++) {
        free (names[i]);
        if (files)
            free ((void *)files[i].data);
    }
    free (names);
    free (files);
    return rc;
}

/* One chunk: 0 answered, -1 the rank leaves (errp; ERROR not sent). */
static int do_chunk (struct mrank *m, const struct dc_wire_chunk *ch,
                     const struct dc_wire_files *fm, dc_error_t *errp)
{
    char why[512];
    double t0 = dc_report_now ();

    if (fm) { /* --files */
        int r = write_files (fm, errp);
        if (r == 0 && m->spec.per_chunk)
            r = run_chunk_cmd (m, ch, why, sizeof (why), errp);
        else if (r == 0)
            r = ask_cmd (m, ch->id, errp);
        if (r < 0)
            return -1;
        if (fm && m->spec.per_chunk && why[0])
            r = send_failed (m, ch, why, errp);
        else
            r = send_files (m, ch, dc_report_now () - t0, errp);
        pthread_mutex_lock (&g_mu);
        empty_dir (g_dir); /* the chunk's files, CMD's files */
        pthread_mutex_unlock (&g_mu);
        return r < 0 ? -2 : 0;
    }
    if (write_input (m, ch, errp) < 0)
        return -1;
    if (m->spec.per_chunk) {
        if (run_chunk_cmd (m, ch, why, sizeof (why), errp) < 0) {
            unlink (g_in);
            return -1;
        }
        unlink (g_in);
        if (why[0]) {
            unlink (g_out);
            return send_failed (m, ch, why, errp) < 0 ? -2 : 0;
        }
    } else {
        int r = ask_cmd (m, ch->id, errp);
        unlink (g_in);
        if (r < 0)
            return -1;
    }
    return send_output (m, ch, dc_report_now () - t0, errp) < 0 ? -2 : 0;
}

static void stop_cmd (struct mrank *m, bool grace)
{
    int status;
    char how[64];

    if (m->to_cmd >= 0)
        close (m->to_cmd);
    m->to_cmd = -1;
    if (m->pid > 0) {
        if (grace && wait_for (m->pid, STOP_WAIT_S, &status)) {
            if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
                describe_status (status, how, sizeof (how));
                dc_log (DC_LOG_WARN, "map: %s %s after its stdin closed",
                        m->spec.argv[0], how);
            }
            kill (-m->pid, SIGKILL); /* what it left running */
        } else
            kill_cmd (m->pid);
    }
    m->pid = 0;
    g_pgid = 0;
    if (m->from_cmd >= 0)
        close (m->from_cmd);
    m->from_cmd = -1;
}

static int make_dir (const struct dc_worker_opts *o, bool files,
                     dc_error_t *errp)
{
    const char *base = o->tmpdir ? o->tmpdir : getenv ("TMPDIR");
    char dir[4096];
    sigset_t all, old;

    if (!base || !*base)
        base = "/tmp";
    if (strpbrk (base, " \t\n\r"))
        return errprintf (errp,
                          "TMPDIR '%s' holds a blank: the request lines "
                          "'IN OUT' are split on blanks",
                          base);
    if (snprintf (dir, sizeof (dir), "%s/dcrun-map-XXXXXX", base) >=
        (int)sizeof (dir) - 16)
        return errprintf (errp, "%s: path too long", base);
    /* folders of ranks that were killed (SIGKILL: mpirun a second after
     * its SIGTERM, or MPI_Abort) go first; this one is held while we live */
    dc_file_sweep_dirs (base, "dcrun-map-");
    if (!mkdtemp (dir)) /* 0700 */
        return errprintf (errp, "%s: %s", dir, strerror (errno));
    if (g_hold < 0)
        g_hold = dc_file_hold_dir (dir);
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    pthread_mutex_lock (&g_mu);
    if (g_stopped)
        rmdir (dir);
    else {
        snprintf (g_dir, sizeof (g_dir), "%s", dir);
        /* --files: the list of the chunk's files and CMD's folder */
        snprintf (g_in, sizeof (g_in), "%s/%s", dir,
                  files ? "list.txt" : "in.npy");
        snprintf (g_out, sizeof (g_out), "%s/%s", dir,
                  files ? "out" : "out.npy");
    }
    pthread_mutex_unlock (&g_mu);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (!g_dir[0])
        return errprintf (errp, "stopped");
    return 0;
}

/* --io direct: the token the hub wrote next to the output (this rank
 * sees its folder at the same path), the input the hub opened (same
 * size, time, dtype and shape) and the output's temporary file.  0, or
 * -1 with why (relayed rows, or refused under --io direct). */
static int dio_open (struct mrank *m, const struct dc_wire_io *io, char *why,
                     size_t len)
{
    struct stat st;
    dc_error_t e;

    if (dc_ready_probe (io, why, len) < 0)
        return -1;
    if ((m->in_fd = dc_map_npy_open (io->input, &m->in, &e)) < 0) {
        dc_ready_why (why, len, "%s", e.text);
        return -1;
    }
    if (fstat (m->in_fd, &st) < 0 || (uint64_t)st.st_size != io->input_size ||
        st.st_mtim.tv_sec != io->input_mtime_s ||
        st.st_mtim.tv_nsec != io->input_mtime_ns ||
        strcmp (m->in.descr, m->spec.descr) || m->in.rows != m->spec.rows ||
        m->in.row_bytes != m->spec.row_bytes) {
        dc_ready_why (
            why, len,
            "%s: not the head's file (its size, time or shape differ)",
            io->input);
        return -1;
    }
    if ((m->out_fd = open (io->output, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) <
            0 ||
        fstat (m->out_fd, &st) < 0 || !S_ISREG (st.st_mode)) {
        dc_ready_why (why, len, "%s: %s", io->output,
                      m->out_fd < 0 ? strerror (errno) : "not a regular file");
        return -1;
    }
    return 0;
}

/* SIGTERM, SIGINT and SIGHUP remove the folder: ours[i] where this
 * installed the handler.  A process that handles these itself (MPI rank
 * 0: the hub, this rank in a thread) gets its handler called after the
 * cleanup, and calls dc_map_rank_cleanup as it leaves. */
static void catch_signals (bool ours[3])
{
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};

    sigfillset (&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        if (sigaction (g_sigs[i], NULL, &g_old[i]) == 0 &&
            !(g_old[i].sa_flags & SA_SIGINFO) && g_old[i].sa_handler != SIG_IGN)
            ours[i] = sigaction (g_sigs[i], &sa, NULL) == 0;
}

/* The rank's steps below return 0; -1 failed here (errp: the hub is told
 * with an ERROR); -2 the hub went away or cannot be told. */

/* The command (DATA after JOB) into m->spec. */
static int recv_spec (struct mrank *m, dc_error_t *errp)
{
    struct dc_comm_msg msg = {0};
    dc_error_t e;
    int rc = -1;

    if (dc_comm_recv (m->c, &msg, -1, errp) <= 0)
        rc = -2;
    else if (msg.type != DC_MSG_DATA)
        errprintf (errp, "expected the command, got a %s message",
                   dc_proto_type_name (msg.type));
    else if (dc_wire_map_decode (msg.data, msg.len, &m->spec, &e) < 0)
        errprintf (errp, "%s", e.text);
    else
        rc = 0;
    free (msg.data);
    return rc;
}

/* The persistent CMD (not per chunk), its stdin and stdout on pipes. */
static int start_cmd (struct mrank *m, dc_error_t *errp)
{
    int in[2], outp[2];

    if (pipe2 (in, O_CLOEXEC) < 0)
        return errprintf (errp, "pipe: %s", strerror (errno));
    if (pipe2 (outp, O_CLOEXEC) < 0) {
        errprintf (errp, "pipe: %s", strerror (errno));
        close (in[0]);
        close (in[1]);
        return -1;
    }
    pid_t pid =
        spawn (m->spec.argv, NULL, in[0], outp[1], in[1], outp[0], errp);
    close (in[0]);
    close (outp[1]);
    m->to_cmd = in[1];
    m->from_cmd = outp[0];
    if (pid < 0)
        return -1;
    m->pid = pid;
    pthread_mutex_lock (&g_mu);
    g_pgid = pid;
    bool stopped = g_stopped;
    pthread_mutex_unlock (&g_mu);
    if (stopped)
        return errprintf (errp, "stopped");
    return 0;
}

/* READY: device "cmd" and, when the JOB offered it, whether this rank
 * reads and writes the files itself. */
static int send_ready (struct mrank *m, const struct dc_wire_io *io,
                       dc_error_t *errp)
{
    struct dc_wire_ready rd = {.inputs = -1, .outputs = -1, .parameters = -1};

    snprintf (rd.device, sizeof (rd.device), "cmd");
    if (io && io->on && !m->spec.files) {
        m->direct = dio_open (m, io, rd.io_why, sizeof (rd.io_why)) == 0;
        snprintf (rd.io, sizeof (rd.io), "%s", m->direct ? "direct" : "relay");
        m->netfs = m->direct && dc_file_network_fs (m->out_fd);
        if (m->direct)
            snprintf (rd.io_engine, sizeof (rd.io_engine), "pread");
    }
    return dc_ready_send (m->c, &rd, errp);
}

/* A CHUNK message: its rows (or files) through CMD, answered. */
static int take_chunk (struct mrank *m, const struct dc_comm_msg *msg,
                       dc_error_t *errp)
{
    struct dc_wire_chunk ch;
    struct dc_wire_files fm = {0};
    dc_error_t e;

    if (m->spec.files) {
        if (dc_wire_files_get (msg->data, msg->len, "CHUNK", &fm, &e) < 0)
            return errprintf (errp, "%s", e.text);
        ch = (struct dc_wire_chunk){
            .id = fm.id, .row0 = fm.first, .rows = fm.count};
    } else if (dc_wire_chunk_get (msg->data, msg->len,
                                  m->direct ? 0 : (size_t)m->spec.row_bytes,
                                  &ch, &e) < 0)
        return errprintf (errp, "%s", e.text);
    int r = do_chunk (m, &ch, m->spec.files ? &fm : NULL, errp);
    free (fm.files);
    return r;
}

/* The hub's messages until DONE. */
static int serve_chunks (struct mrank *m, dc_error_t *errp)
{
    dc_error_t e;
    int r;

    for (;;) {
        struct dc_comm_msg msg = {0};
        if (dc_comm_recv (m->c, &msg, -1, errp) < 0) {
            free (msg.data);
            return -2;
        }
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            stop_cmd (m, true);
            return 0;
        }
        if (msg.type == DC_MSG_DATA && m->direct) { /* the output's place */
            r = dc_wire_mapout_decode (msg.data, msg.len, &m->out, &e);
            free (msg.data);
            if (r < 0)
                return errprintf (errp, "%s", e.text);
            m->have_out = true;
            if (flush_held (m, errp) < 0)
                return -2;
            continue;
        }
        r = msg.type == DC_MSG_CHUNK ? take_chunk (m, &msg, errp) : 0;
        free (msg.data);
        if (r < 0)
            return r;
    }
}

int dc_worker_map_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                         const struct dc_wire_io *io, dc_error_t *errp)
{
    struct mrank *m = calloc (1, sizeof (*m));
    bool ours[3] = {false, false, false};
    char rows[32];
    int r;

    if (!m) {
        errprintf (errp, "out of memory");
        return dc_worker_fail (c, errp);
    }
    m->c = c;
    m->to_cmd = m->from_cmd = m->in_fd = m->out_fd = -1;
    catch_signals (ours);
    if ((r = recv_spec (m, errp)) == 0 &&
        (r = make_dir (o, m->spec.files, errp)) == 0) {
        snprintf (rows, sizeof (rows), "%" PRIu64, m->spec.rows);
        setenv ("DCRUN_MAP_ROWS", rows, 1);
        if (!m->spec.per_chunk)
            r = start_cmd (m, errp);
    }
    if (r == 0)
        r = send_ready (m, io, errp);
    if (r == 0)
        r = serve_chunks (m, errp);
    if (r == -1)
        dc_worker_fail (c, errp);
    stop_cmd (m, false);
    remove_dir ();
    for (int i = 0; i < 3; i++)
        if (ours[i])
            sigaction (g_sigs[i], &g_old[i], NULL);
    if (m->in_fd >= 0)
        close (m->in_fd);
    if (m->out_fd >= 0)
        close (m->out_fd);
    dc_wire_map_free (&m->spec);
    free (m);
    return r == 0 ? 0 : -1;
}
