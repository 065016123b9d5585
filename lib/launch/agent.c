/* agent.c - the agent of one rank on its host (agent.h) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/launch/agent.h"
#include "lib/launch/control.h"
#include "lib/launch/launch.h"
#include "lib/launch/proctree.h"
#include "lib/util/log.h"
#include "lib/util/clock.h"

/* The agent's state while CMD runs. */
struct agent {
    const struct dc_agent_opts *o;
    pid_t pid, parent;
    int sfd;
    bool ctl_open;   /* still reading the control channel */
    bool watch_chan; /* the channel's output hanging up ends the job */
    double grace;
    double kill_at; /* when SIGKILL goes, 0: not stopping */
    int status;
    struct dc_ctl_parser parser;
    int in_fd; /* stdin_data: the pipe to CMD's stdin, -1 */
    char *inq; /* bytes for it not written yet */
    size_t inqlen, inqcap;
    bool in_eof; /* close in_fd once inq is out */
};

static void kill_group (pid_t pgid, int sig)
{
    if (pgid > 0)
        kill (-pgid, sig);
}

/* Tell dcrun how CMD ended ("exit N" or "signal N"). */
static void send_status (int fd, bool signaled, int value)
{
    char line[32];
    int n = snprintf (line, sizeof (line), "%s %d\n",
                      signaled ? "signal" : "exit", value);

    if (fd >= 0 && write (fd, line, (size_t)n) < 0) {
        /* dcrun gone: nobody to tell */
    }
}

/* Signals on a pipe, the parent's death, the subreaper. */
static int agent_init (struct agent *a, dc_error_t *errp)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, 0};

    signal (SIGPIPE, SIG_IGN);
    if ((a->sfd = dc_sigpipe_create (sigs)) < 0)
        return errprintf (errp, "signal pipe: %s", strerror (errno));
    /* our parent (sshd's session, orted, slurmstepd) going away ends us */
    a->parent = getppid ();
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != a->parent)
        return errprintf (errp, "launcher gone");
    /* descendants that leave CMD's group are reparented here, not to init */
    if (dc_proctree_subreaper () < 0)
        return errprintf (errp, "cannot become a subreaper: %s",
                          strerror (errno));
    return 0;
}

/* The child: its own group, its stdin, bound, CMD.  On failure a record
 * on pex: 'b' (bind) or 'x' (exec) and errno. */
static void child_exec (const struct agent *a, int pin, int pex)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE, 0};
    const struct dc_agent_opts *o = a->o;
    char what = 'x';
    int e;

    setpgid (0, 0);
    for (int i = 0; sigs[i]; i++)
        signal (sigs[i], SIG_DFL);
    prctl (PR_SET_PDEATHSIG, SIGKILL); /* the agent gone: go too */
    if ((o->out_fd >= 0 && dup2 (o->out_fd, 1) < 0) ||
        (o->err_fd >= 0 && dup2 (o->err_fd, 2) < 0))
        _exit (127);
    /* exec: the channel is CMD's stdin; else the pipe, or /dev/null */
    int in = o->exec ? -1 : pin >= 0 ? pin : open ("/dev/null", O_RDONLY);
    if (in >= 0) {
        dup2 (in, 0);
        if (in > 2)
            close (in);
    }
    if (o->cpus && dc_launch_bind_cpus (o->cpus) < 0)
        what = 'b';
    else
        execvp (o->cmd[0], o->cmd);
    e = errno;
    if (write (pex, &what, 1) < 0 || write (pex, &e, sizeof (e)) < 0)
        _exit (127);
    _exit (127);
}

/* Fork and exec CMD: DC_AGENT_OK when it runs. */
static int spawn_cmd (struct agent *a, dc_error_t *errp)
{
    int pex[2], pin[2] = {-1, -1};

    if (pipe2 (pex, O_CLOEXEC) < 0 ||
        (a->o->stdin_data && pipe2 (pin, O_CLOEXEC) < 0))
        return errprintf (errp, "pipe: %s", strerror (errno));
    if ((a->pid = fork ()) < 0)
        return errprintf (errp, "fork: %s", strerror (errno));
    if (a->pid == 0) {
        close (pex[0]);
        child_exec (a, pin[0], pex[1]);
    }
    setpgid (a->pid, a->pid);
    close (pex[1]);
    if (pin[0] >= 0) {
        close (pin[0]);
        a->in_fd = pin[1];
        fcntl (a->in_fd, F_SETFL, O_NONBLOCK);
    }
    char what;
    int e;
    ssize_t n;
    do
        n = read (pex[0], &what, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) {
        if (read (pex[0], &e, sizeof (e)) != (ssize_t)sizeof (e))
            e = EIO;
        close (pex[0]);
        waitpid (a->pid, NULL, 0);
        send_status (a->o->status_fd, false, 127);
        errno = e;
        if (what == 'b')
            errprintf (errp, "cannot bind to CPUs %s: %s", a->o->cpus,
                       strerror (e));
        else
            errprintf (errp, "%s: %s", a->o->cmd[0], strerror (e));
        return DC_AGENT_NOEXEC;
    }
    close (pex[0]);
    return DC_AGENT_OK;
}

static void stdin_close (struct agent *a)
{
    if (a->in_fd >= 0)
        close (a->in_fd);
    a->in_fd = -1;
    a->inqlen = 0;
}

/* Stdin bytes of a frame: queued for CMD (dropped when it has no stdin
 * pipe or closed it). */
static void stdin_queue (struct agent *a, const char *data, size_t len)
{
    if (a->in_fd < 0 || a->in_eof)
        return;
    if (a->inqlen + len > a->inqcap) {
        size_t cap = (a->inqlen + len) * 2;
        char *q = realloc (a->inq, cap);
        if (!q) {
            stdin_close (a); /* out of memory: CMD sees EOF */
            return;
        }
        a->inq = q;
        a->inqcap = cap;
    }
    memcpy (a->inq + a->inqlen, data, len);
    a->inqlen += len;
}

/* Write what CMD's stdin takes; EOF after the last byte when asked. */
static void stdin_flush (struct agent *a)
{
    while (a->in_fd >= 0 && a->inqlen > 0) {
        ssize_t n = write (a->in_fd, a->inq, a->inqlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) { /* CMD closed its stdin: the rest is dropped */
            stdin_close (a);
            return;
        }
        memmove (a->inq, a->inq + n, a->inqlen - (size_t)n);
        a->inqlen -= (size_t)n;
    }
    if (a->in_eof && a->inqlen == 0)
        stdin_close (a);
}

/* Read the control channel.  True when the job must stop: EOF (the
 * launcher gone) or a stream that cannot be trusted. */
static bool control_read (struct agent *a)
{
    char buf[65536];
    ssize_t r = read (a->o->ctl_fd, buf, sizeof (buf));
    size_t off = 0;
    dc_error_t err;

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (r <= 0) {
        a->ctl_open = false;
        return true;
    }
    while (off < (size_t)r) {
        struct dc_ctl_msg m;
        ssize_t u =
            dc_ctl_parse (&a->parser, buf + off, (size_t)r - off, &m, &err);
        if (u < 0) {
            dc_log (DC_LOG_ERR, "worker: %s", err.text);
            a->ctl_open = false;
            return true;
        }
        off += (size_t)u;
        if (m.type == DC_CTL_SIGNAL)
            kill_group (a->pid, m.sig);
        else if (m.type == DC_CTL_STDIN)
            stdin_queue (a, m.data, m.len);
        else if (m.type == DC_CTL_STDIN_EOF)
            a->in_eof = true;
    }
    stdin_flush (a);
    return false;
}

/* The ms until the SIGKILL is due, -1 when none is. */
static int kill_timeout (const struct agent *a)
{
    if (a->kill_at <= 0)
        return -1;
    double left = a->kill_at - dc_now ();
    return left > 0 ? (int)(left * 1000) + 1 : 0;
}

/* Stop CMD with grace: SIGTERM now (and SIGCONT: a stopped CMD must wake
 * to take it), SIGKILL when the grace is over. */
static void stop_cmd (struct agent *a, bool stop)
{
    if (stop && a->kill_at == 0) {
        kill_group (a->pid, SIGTERM);
        kill_group (a->pid, SIGCONT);
        a->kill_at = dc_now () + a->grace;
    }
    if (a->kill_at > 0 && dc_now () >= a->kill_at) {
        kill_group (a->pid, SIGCONT);
        kill_group (a->pid, SIGKILL);
    }
}

/* One round: poll, control, stdin, signals, the grace, the reaping.
 * True when CMD has ended (a->status). */
static bool agent_round (struct agent *a)
{
    struct pollfd fds[4] = {
        {.fd = a->sfd, .events = POLLIN},
        /* stdin that CMD does not read holds back the channel */
        {.fd =
             a->ctl_open && a->inqlen < DC_AGENT_STDIN_MAX ? a->o->ctl_fd : -1,
         .events = POLLIN},
        {.fd = a->watch_chan ? a->o->watch_fd : -1, .events = 0},
        {.fd = a->inqlen > 0 ? a->in_fd : -1, .events = POLLOUT},
    };
    poll (fds, 4, kill_timeout (a));
    bool stop = getppid () != a->parent;
    if (fds[2].revents) {
        a->watch_chan = false;
        stop = true;
    }
    if (fds[0].revents & POLLIN) {
        int s;
        while ((s = dc_sigpipe_read ()) > 0)
            if (s != SIGCHLD)
                stop = true;
    }
    if (fds[1].revents && control_read (a))
        stop = true;
    if (fds[3].revents)
        stdin_flush (a);
    stop_cmd (a, stop);
    /* CMD, and the orphans reparented here as they end */
    pid_t p;
    int ws;
    while ((p = waitpid (-1, &ws, WNOHANG)) > 0)
        if (p == a->pid) {
            a->status = ws;
            return true;
        }
    return false;
}

int dc_agent_run (const struct dc_agent_opts *o, int *statusp, dc_error_t *errp)
{
    struct agent a = {.o = o, .sfd = -1, .in_fd = -1};
    int rc;

    if (!o || !o->cmd || !o->cmd[0] || !statusp) {
        errno = EINVAL;
        errprintf (errp, "agent: no command");
        return DC_AGENT_SETUP;
    }
    a.grace = o->kill_grace > 0 ? o->kill_grace : 2;
    if (agent_init (&a, errp) < 0)
        return DC_AGENT_SETUP;
    if ((rc = spawn_cmd (&a, errp)) != DC_AGENT_OK) {
        free (a.inq);
        return rc < 0 && rc != DC_AGENT_NOEXEC ? DC_AGENT_SETUP : rc;
    }
    if (o->out_fd > 2)
        close (o->out_fd); /* CMD holds it now */
    a.ctl_open = !o->exec && o->ctl_fd >= 0;
    a.watch_chan = o->watch_fd >= 0;
    if (a.ctl_open)
        fcntl (o->ctl_fd, F_SETFL, fcntl (o->ctl_fd, F_GETFL) | O_NONBLOCK);
    while (!agent_round (&a))
        ;
    /* whatever CMD left behind, in its group or not, goes with it */
    dc_proctree_kill (a.pid);
    if (o->status_fd >= 0) {
        fcntl (o->status_fd, F_SETFL,
               fcntl (o->status_fd, F_GETFL) & ~O_NONBLOCK);
        send_status (o->status_fd, WIFSIGNALED (a.status),
                     WIFSIGNALED (a.status) ? WTERMSIG (a.status)
                                            : WEXITSTATUS (a.status));
    }
    stdin_close (&a);
    free (a.inq);
    *statusp = a.status;
    return DC_AGENT_OK;
}
