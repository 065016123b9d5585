/* launch_local.c - ranks as child processes of this one: fork/exec, pipes
 *
 * Each rank runs in its own process group (setpgid in the child and the
 * parent, so signals reach the whole group whichever runs first), with
 * stdin/stdout/stderr on pipes.  An exec failure comes back over a
 * close-on-exec pipe as an errno (flux-core libsubprocess/fork.c), so the
 * caller gets "CMD: No such file or directory", not a bare 127.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

#define PIPE_BYTES (1 << 20) /* stdin and stdout pipes of a rank */

/* After a rank's process is reaped, how long its pipes may stay open (held
 * by a background grandchild) before the rank is reported anyway. */
#define DRAIN_MS 1000

struct lrank {
    int rank;
    pid_t pid;          /* 0 when never started */
    int fd_in, fd_out, fd_err;
    bool reaped;
    bool reported;
    int wstatus;
    double reaped_at;
    bool failed_start;
    char reason[256];
};

struct local {
    struct lrank *v;
    int n;
};

static double now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void close_fd (int *fd)
{
    if (*fd >= 0) {
        close (*fd);
        *fd = -1;
    }
}

static int local_init (struct dc_launch *l, dc_error_t *errp)
{
    if (!(l->data = calloc (1, sizeof (struct local))))
        return errprintf (errp, "out of memory");
    return 0;
}

/* In the child: never returns.  Reports errno over errfd on failure. */
static void child (const struct dc_launch_rank *r, int in, int out, int err,
                   int errfd)
{
    sigset_t all;
    int e;

    setpgid (0, 0);
    sigemptyset (&all);
    sigprocmask (SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal (s, SIG_DFL);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (err, 2) < 0)
        goto fail;
    if (r->cpus && dc_launch_bind_cpus (r->cpus) < 0) {
        e = errno;
        char c = 'b';
        if (write (errfd, &c, 1) < 0 || write (errfd, &e, sizeof (e)) < 0)
            _exit (127);
        _exit (127);
    }
    for (int i = 0; r->env && r->env[i]; i++)
        if (putenv (r->env[i]) < 0)
            goto fail;
    execvp (r->argv[0], r->argv);
fail:
    e = errno;
    char c = 'x';
    if (write (errfd, &c, 1) < 0 || write (errfd, &e, sizeof (e)) < 0)
        _exit (127);
    _exit (127);
}

static int start_rank (struct lrank *lr, const struct dc_launch_rank *r,
                       bool stdin_null, dc_error_t *errp)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int pex[2] = {-1, -1};
    char what = 0;
    int e = 0;

    if (stdin_null) {
        if ((pin[0] = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
            errprintf (errp, "/dev/null: %s", strerror (errno));
            goto error;
        }
    } else if (pipe2 (pin, O_CLOEXEC) < 0) {
        errprintf (errp, "pipe: %s", strerror (errno));
        goto error;
    }
    if (pipe2 (pout, O_CLOEXEC) < 0
        || pipe2 (perr, O_CLOEXEC) < 0 || pipe2 (pex, O_CLOEXEC) < 0) {
        errprintf (errp, "pipe: %s", strerror (errno));
        goto error;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        errprintf (errp, "fork: %s", strerror (errno));
        goto error;
    }
    if (pid == 0) {
        close (pex[0]);
        child (r, pin[0], pout[1], perr[1], pex[1]);
    }
    setpgid (pid, pid);
    lr->pid = pid;
    close (pin[0]);
    close (pout[1]);
    close (perr[1]);
    close (pex[1]);
    lr->fd_in = pin[1];
    lr->fd_out = pout[0];
    lr->fd_err = perr[0];
    ssize_t n;
    do
        n = read (pex[0], &what, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) {
        if (read (pex[0], &e, sizeof (e)) != (ssize_t)sizeof (e))
            e = EIO;
        lr->failed_start = true;
        if (what == 'b')
            snprintf (lr->reason, sizeof (lr->reason),
                      "cannot bind to CPUs %s: %s", r->cpus, strerror (e));
        else
            snprintf (lr->reason, sizeof (lr->reason), "%s: %s", r->argv[0],
                      strerror (e));
    }
    close (pex[0]);
    /* larger pipes for the framed protocol (comm "stream"): fewer wake-ups
     * per MiB; best effort, an unprivileged user's total is capped */
    if (!stdin_null)
        fcntl (lr->fd_in, F_SETPIPE_SZ, PIPE_BYTES);
    fcntl (lr->fd_out, F_SETPIPE_SZ, PIPE_BYTES);
    if (lr->fd_in >= 0)
        fcntl (lr->fd_in, F_SETFL, O_NONBLOCK);
    fcntl (lr->fd_out, F_SETFL, O_NONBLOCK);
    fcntl (lr->fd_err, F_SETFL, O_NONBLOCK);
    return 0;
error:
    e = errno;
    for (int i = 0; i < 2; i++) {
        close_fd (&pin[i]);
        close_fd (&pout[i]);
        close_fd (&perr[i]);
        close_fd (&pex[i]);
    }
    errno = e;
    return -1;
}

static void local_kill_all (struct local *lo, int sig)
{
    for (int i = 0; i < lo->n; i++)
        if (lo->v[i].pid > 0 && !lo->v[i].reaped)
            kill (-lo->v[i].pid, sig);
}

static int local_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                        int n, dc_error_t *errp)
{
    struct local *lo = l->data;

    if (lo->v) {
        errno = EBUSY;
        return errprintf (errp, "ranks already started");
    }
    if (!(lo->v = calloc ((size_t)(n ? n : 1), sizeof (*lo->v))))
        return errprintf (errp, "out of memory");
    for (int i = 0; i < n; i++) {
        struct lrank *lr = &lo->v[i];
        lr->rank = ranks[i].rank;
        lr->fd_in = lr->fd_out = lr->fd_err = -1;
        if (!ranks[i].argv || !ranks[i].argv[0]) {
            errno = EINVAL;
            errprintf (errp, "rank %d: no command", ranks[i].rank);
            goto fail;
        }
        if (start_rank (lr, &ranks[i], l->opts.stdin_null, errp) < 0) {
            errprefix (errp, "rank %d: ", ranks[i].rank);
            goto fail;
        }
        lo->n = i + 1;
    }
    lo->n = n;
    return 0;
fail:
    lo->n = n;
    local_kill_all (lo, SIGKILL);
    return -1;
}

static int local_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                          int *timeout_ms)
{
    struct local *lo = l->data;
    int k = 0;
    bool waiting = false;

    for (int i = 0; i < lo->n; i++) {
        struct lrank *lr = &lo->v[i];
        if (lr->fd_out >= 0 && k < max)
            fds[k++] = (struct pollfd){.fd = lr->fd_out, .events = POLLIN};
        if (lr->fd_err >= 0 && k < max)
            fds[k++] = (struct pollfd){.fd = lr->fd_err, .events = POLLIN};
        if (!lr->reported)
            waiting = true;
    }
    /* reaping is by waitpid: look again soon even without SIGCHLD */
    if (waiting && (*timeout_ms < 0 || *timeout_ms > 100))
        *timeout_ms = 100;
    return k;
}

static void drain (struct dc_launch *l, struct lrank *lr, int *fd,
                   enum dc_launch_stream s)
{
    char buf[65536];

    for (int loops = 0; *fd >= 0 && loops < 16; loops++) {
        ssize_t n = read (*fd, buf, sizeof (buf));
        if (n > 0) {
            if (l->opts.on_output)
                l->opts.on_output (lr->rank, s, buf, (size_t)n, l->opts.arg);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close_fd (fd);
    }
}

static void report (struct dc_launch *l, struct lrank *lr)
{
    struct dc_launch_status st = {.rank = lr->rank};

    lr->reported = true;
    close_fd (&lr->fd_in);
    close_fd (&lr->fd_out);
    close_fd (&lr->fd_err);
    if (lr->failed_start) {
        st.failed_start = true;
        st.code = 127;
        snprintf (st.reason, sizeof (st.reason), "%s", lr->reason);
    } else if (WIFSIGNALED (lr->wstatus)) {
        st.signaled = true;
        st.sig = WTERMSIG (lr->wstatus);
    } else
        st.code = WEXITSTATUS (lr->wstatus);
    if (l->opts.on_exit)
        l->opts.on_exit (&st, l->opts.arg);
}

static int local_progress (struct dc_launch *l, const struct pollfd *fds,
                           int n)
{
    struct local *lo = l->data;
    int running = 0;
    double t = now_ms ();

    (void)fds;
    (void)n;
    for (int i = 0; i < lo->n; i++) {
        struct lrank *lr = &lo->v[i];
        if (lr->reported)
            continue;
        drain (l, lr, &lr->fd_out, DC_LAUNCH_STDOUT);
        drain (l, lr, &lr->fd_err, DC_LAUNCH_STDERR);
        if (!lr->reaped && lr->pid > 0) {
            pid_t p = waitpid (lr->pid, &lr->wstatus, WNOHANG);
            if (p == lr->pid || (p < 0 && errno == ECHILD)) {
                lr->reaped = true;
                lr->reaped_at = t;
            }
        }
        if (lr->reaped
            && ((lr->fd_out < 0 && lr->fd_err < 0)
                || t - lr->reaped_at > DRAIN_MS))
            report (l, lr);
        else
            running++;
    }
    return running;
}

static struct lrank *find (struct local *lo, int rank)
{
    for (int i = 0; i < lo->n; i++)
        if (lo->v[i].rank == rank)
            return &lo->v[i];
    return NULL;
}

static ssize_t local_write (struct dc_launch *l, int rank, const void *buf,
                            size_t len)
{
    struct lrank *lr = find (l->data, rank);

    if (!lr || lr->fd_in < 0) {
        errno = lr ? EPIPE : ENOENT;
        return -1;
    }
    return write (lr->fd_in, buf, len);
}

static int local_write_fd (struct dc_launch *l, int rank)
{
    struct lrank *lr = find (l->data, rank);

    return lr ? lr->fd_in : -1;
}

static int local_close_stdin (struct dc_launch *l, int rank)
{
    struct lrank *lr = find (l->data, rank);

    if (!lr) {
        errno = ENOENT;
        return -1;
    }
    close_fd (&lr->fd_in);
    return 0;
}

static int local_signal (struct dc_launch *l, int rank, int sig)
{
    struct local *lo = l->data;

    for (int i = 0; i < lo->n; i++) {
        struct lrank *lr = &lo->v[i];
        if ((rank < 0 || lr->rank == rank) && lr->pid > 0 && !lr->reported)
            kill (-lr->pid, sig); /* the group may outlive its leader */
    }
    return 0;
}

static void local_fini (struct dc_launch *l)
{
    struct local *lo = l->data;

    if (!lo)
        return;
    for (int i = 0; i < lo->n; i++) {
        struct lrank *lr = &lo->v[i];
        if (lr->pid > 0 && !lr->reaped) {
            kill (-lr->pid, SIGKILL);
            waitpid (lr->pid, NULL, 0);
        }
        close_fd (&lr->fd_in);
        close_fd (&lr->fd_out);
        close_fd (&lr->fd_err);
    }
    free (lo->v);
    free (lo);
    l->data = NULL;
}

const struct dc_launch_ops dc_launch_local = {
    .name = "local",
    .summary = "fork/exec on this host",
    .init = local_init,
    .spawn = local_spawn,
    .pollfds = local_pollfds,
    .progress = local_progress,
    .write = local_write,
    .write_fd = local_write_fd,
    .close_stdin = local_close_stdin,
    .signal = local_signal,
    .fini = local_fini,
};
