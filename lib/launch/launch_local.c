/* launch_local.c - ranks as child processes of this one: fork/exec, pipes
 *
 * Each rank runs under an agent: a forked child of this process (no exec)
 * that is a child subreaper (lib/launch/proctree.h).  The agent forks the
 * rank's command in its own process group, with stdin/stdout/stderr on the
 * launcher's pipes, waits for it, then kills whatever it left behind (its
 * group, and descendants that called setsid or daemonized, reparented to
 * the agent) and exits with the command's status or dies of its signal.
 * The agent dies with the launcher: the parent-death signal, or EOF on a
 * pipe whose write end only the launcher holds, makes it send SIGTERM to
 * the rank's group, SIGKILL after AGENT_GRACE_MS, and kill the whole tree.
 *
 * The agent reports the rank's pid over a close-on-exec pipe; an exec
 * failure comes back over the same pipe as an errno (flux-core
 * libsubprocess/fork.c), so the caller gets "CMD: No such file or
 * directory", not a bare 127.  Signals go to the rank's process group.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/launch/launch.h"
#include "lib/launch/proctree.h"

#define PIPE_BYTES (1 << 20) /* stdin and stdout pipes of a rank */

/* After a rank's process is reaped, how long its pipes may stay open (held
 * by a background grandchild) before the rank is reported anyway. */
#define DRAIN_MS 1000

/* The agent, its launcher gone: from SIGTERM to SIGKILL of the rank. */
#define AGENT_GRACE_MS 1000

/* One record on the agent's report pipe: 'P' pid (the rank's command
 * started), 'x' errno (exec failed), 'b' errno (CPU binding failed).  One
 * write each, smaller than PIPE_BUF: never interleaved. */
#define REC_BYTES (1 + sizeof (int))

struct lrank {
    int rank;
    pid_t pid;  /* the agent, 0 when never started */
    pid_t pgid; /* the rank's process group (its command), 0: none */
    int fd_in, fd_out, fd_err;
    int fd_life; /* the agent sees EOF on it when we are gone */
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

static void send_rec (int fd, char what, int value)
{
    char rec[REC_BYTES];

    rec[0] = what;
    memcpy (rec + 1, &value, sizeof (value));
    if (write (fd, rec, sizeof (rec)) < 0) {
        /* the launcher gone: nobody to tell */
    }
}

/* In the rank's process: never returns.  Reports errno over errfd on
 * failure. */
static void child (const struct dc_launch_rank *r, int in, int out, int err,
                   int errfd)
{
    sigset_t none;

    setpgid (0, 0);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal (s, SIG_DFL);
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    prctl (PR_SET_PDEATHSIG, SIGKILL); /* the agent gone: go too */
    if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (err, 2) < 0)
        goto fail;
    if (r->cpus && dc_launch_bind_cpus (r->cpus) < 0) {
        send_rec (errfd, 'b', errno);
        _exit (127);
    }
    if (r->wdir && chdir (r->wdir) < 0) {
        send_rec (errfd, 'w', errno);
        _exit (127);
    }
    for (int i = 0; r->env && r->env[i]; i++)
        if (putenv (r->env[i]) < 0)
            goto fail;
    execvp (r->argv[0], r->argv);
fail:
    send_rec (errfd, 'x', errno);
    _exit (127);
}

/* The agent of one rank, in a forked child of the launcher: never returns.
 * Only system calls from here on (the launcher may have threads). */
static void agent (const struct dc_launch_rank *r, pid_t launcher, int in,
                   int out, int err, int exfd, int life)
{
    sigset_t mask;
    int keep[] = {in, out, err, exfd, life};

    sigfillset (&mask);
    sigprocmask (SIG_SETMASK, &mask, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal (s, SIG_DFL);
    /* its own group: a Ctrl-C at the terminal goes to dcrun, which stops
     * the ranks its own way */
    setpgid (0, 0);
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != launcher)
        _exit (127);
    dc_proctree_subreaper ();
    /* the launcher's other descriptors (pipes of the other ranks) must
     * not stay open here: close every one but ours */
    dc_proctree_close_fds (keep, 5);
    sigemptyset (&mask);
    sigaddset (&mask, SIGCHLD);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    sigaddset (&mask, SIGQUIT);
    sigprocmask (SIG_SETMASK, &mask, NULL);
    int sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    pid_t pid = fork ();
    if (pid < 0) {
        send_rec (exfd, 'x', errno);
        _exit (127);
    }
    if (pid == 0) {
        close (life);
        if (sfd >= 0)
            close (sfd);
        child (r, in, out, err, exfd);
    }
    setpgid (pid, pid);
    send_rec (exfd, 'P', (int)pid);
    close (exfd);
    close (in);
    close (out);
    close (err);

    int status = 0;
    bool done = false;
    double kill_at = 0;
    for (;;) {
        struct pollfd fds[2] = {
            {.fd = sfd, .events = POLLIN},
            {.fd = life, .events = POLLIN},
        };
        int timeout = sfd < 0 ? 100 : -1;
        if (kill_at > 0) {
            double left = kill_at - dc_now_ms ();
            timeout = left > 0 ? (int)left + 1 : 0;
        }
        poll (fds, 2, timeout);
        bool stop = false;
        if (sfd >= 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read (sfd, &si, sizeof (si)) == (ssize_t)sizeof (si))
                if (si.ssi_signo != SIGCHLD)
                    stop = true;
        }
        if (life >= 0 && fds[1].revents) {
            /* the launcher is gone (nothing is ever written here) */
            close (life);
            life = -1;
            stop = true;
        }
        if (getppid () != launcher)
            stop = true;
        if (stop && kill_at == 0) {
            kill (-pid, SIGTERM);
            kill (-pid, SIGCONT);
            kill_at = dc_now_ms () + AGENT_GRACE_MS;
        }
        /* reap the rank, and the orphans reparented here as they end */
        pid_t w;
        int ws;
        while ((w = waitpid (-1, &ws, WNOHANG)) > 0)
            if (w == pid) {
                status = ws;
                done = true;
                break;
            }
        if (done || (kill_at > 0 && dc_now_ms () >= kill_at))
            break;
    }
    if (!done) {
        kill (-pid, SIGCONT);
        kill (-pid, SIGKILL);
        while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    /* whatever the rank left behind, in its group or not, goes with it */
    dc_proctree_kill (pid);
    if (WIFSIGNALED (status)) {
        int sig = WTERMSIG (status);
        sigset_t none;
        prctl (PR_SET_DUMPABLE, 0); /* no core file of the agent */
        signal (sig, SIG_DFL);
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        kill (getpid (), sig);
        _exit (128 + sig);
    }
    _exit (WEXITSTATUS (status));
}

static int start_rank (struct lrank *lr, const struct dc_launch_rank *r,
                       bool stdin_null, dc_error_t *errp)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int pex[2] = {-1, -1}, plife[2] = {-1, -1};
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
    if (pipe2 (pout, O_CLOEXEC) < 0 || pipe2 (perr, O_CLOEXEC) < 0 ||
        pipe2 (pex, O_CLOEXEC) < 0 || pipe2 (plife, O_CLOEXEC) < 0) {
        errprintf (errp, "pipe: %s", strerror (errno));
        goto error;
    }
    pid_t me = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        errprintf (errp, "fork: %s", strerror (errno));
        goto error;
    }
    if (pid == 0) {
        close (pex[0]);
        close (plife[1]);
        agent (r, me, pin[0], pout[1], perr[1], pex[1], plife[0]);
    }
    lr->pid = pid;
    close_fd (&pin[0]);
    close_fd (&pout[1]);
    close_fd (&perr[1]);
    close_fd (&pex[1]);
    close_fd (&plife[0]);
    lr->fd_in = pin[1];
    lr->fd_out = pout[0];
    lr->fd_err = perr[0];
    lr->fd_life = plife[1];
    pin[1] = pout[0] = perr[0] = plife[1] = -1;
    /* records until EOF: the command exec'd (or the agent ended) */
    for (;;) {
        char rec[REC_BYTES];
        size_t got = 0;
        while (got < sizeof (rec)) {
            ssize_t n = read (pex[0], rec + got, sizeof (rec) - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got < sizeof (rec))
            break;
        int v;
        memcpy (&v, rec + 1, sizeof (v));
        if (rec[0] == 'P') {
            lr->pgid = (pid_t)v;
            continue;
        }
        lr->failed_start = true;
        if (rec[0] == 'b')
            snprintf (lr->reason, sizeof (lr->reason),
                      "cannot bind to CPUs %s: %s", r->cpus, strerror (v));
        else if (rec[0] == 'w')
            snprintf (lr->reason, sizeof (lr->reason),
                      "cannot run in folder %.200s: %s", r->wdir, strerror (v));
        else
            snprintf (lr->reason, sizeof (lr->reason), "%s: %s", r->argv[0],
                      strerror (v));
    }
    close_fd (&pex[0]);
    if (!lr->pgid && !lr->failed_start) {
        lr->failed_start = true;
        snprintf (lr->reason, sizeof (lr->reason),
                  "%s: the rank's agent "
                  "ended before starting it",
                  r->argv[0]);
    }
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
        close_fd (&plife[i]);
    }
    errno = e;
    return -1;
}

/* Stop a rank: sig to its group; SIGKILL also ends its agent's wait. */
static void kill_rank (struct lrank *lr, int sig)
{
    if (lr->pgid > 0)
        kill (-lr->pgid, sig); /* the group may outlive its leader */
    else if (lr->pid > 0 && sig == SIGKILL)
        kill (lr->pid, SIGTERM); /* the agent kills the rest */
}

static void local_kill_all (struct local *lo, int sig)
{
    for (int i = 0; i < lo->n; i++)
        if (lo->v[i].pid > 0 && !lo->v[i].reaped)
            kill_rank (&lo->v[i], sig);
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
        lr->fd_in = lr->fd_out = lr->fd_err = lr->fd_life = -1;
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
    close_fd (&lr->fd_life);
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

static int local_progress (struct dc_launch *l, const struct pollfd *fds, int n)
{
    struct local *lo = l->data;
    int running = 0;
    double t = dc_now_ms ();

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
        if (lr->reaped && ((lr->fd_out < 0 && lr->fd_err < 0) ||
                           t - lr->reaped_at > DRAIN_MS))
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
            kill_rank (lr, sig);
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
            kill_rank (lr, SIGKILL);
            close_fd (&lr->fd_life); /* the agent stops what is left */
            while (waitpid (lr->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        close_fd (&lr->fd_life);
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
