/* launch.c - launcher registry, -L auto, and helpers shared by launchers */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "lib/launch/launch.h"
#include "lib/util/file.h"

/* launchers written so far (flipped to 1 as each lands) */
#define DC_HAVE_SSH_LAUNCHER 1
#define DC_HAVE_MPI_LAUNCHER 1
#define DC_HAVE_SLURM_LAUNCHER 1

/* The launchers compiled in, in the order the help lists them. */
const struct dc_launch_ops *const dc_launchers[] = {
    &dc_launch_local,
#if HAVE_SSH && DC_HAVE_SSH_LAUNCHER
    &dc_launch_ssh,
#endif
#if HAVE_MPI && DC_HAVE_MPI_LAUNCHER
    &dc_launch_mpi,
#endif
#if DC_HAVE_SLURM_LAUNCHER
    &dc_launch_slurm,
#endif
    NULL,
};

const char *dc_launch_names (void)
{
    static char buf[128];

    if (buf[0])
        return buf;
    for (int i = 0; dc_launchers[i]; i++) {
        size_t len = strlen (buf);
        snprintf (buf + len, sizeof (buf) - len, "%s%s", i ? " " : "",
                  dc_launchers[i]->name);
    }
    return buf;
}

const struct dc_launch_ops *dc_launch_find (const char *name, dc_error_t *errp)
{
    if (!name) {
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; dc_launchers[i]; i++)
        if (!strcmp (dc_launchers[i]->name, name))
            return dc_launchers[i];
    errno = ENOENT;
    if (!strcmp (name, "ssh") || !strcmp (name, "mpi") ||
        !strcmp (name, "slurm"))
        errprintf (errp,
                   "launcher '%s' is not available in this build "
                   "(have: %s)",
                   name, dc_launch_names ());
    else
        errprintf (errp, "unknown launcher '%s' (have: %s, auto)", name,
                   dc_launch_names ());
    return NULL;
}

bool dc_launch_is_local_host (const char *name)
{
    char me[256];

    if (!name || !*name)
        return false;
    if (!strcmp (name, "localhost") || !strcmp (name, "::1") ||
        !strncmp (name, "localhost.", 10))
        return true;
    struct in_addr a;
    if (inet_pton (AF_INET, name, &a) == 1)
        return (ntohl (a.s_addr) >> 24) == 127;
    if (gethostname (me, sizeof (me)) == 0) {
        me[sizeof (me) - 1] = '\0';
        if (!strcmp (name, me))
            return true;
        /* short name against a fully qualified one, either way */
        size_t n = strcspn (me, ".");
        size_t m = strcspn (name, ".");
        if (n == m && !strncmp (name, me, n) &&
            (me[n] == '\0' || name[m] == '\0'))
            return true;
    }
    return false;
}

const char *dc_launch_auto (const char *const *hosts, size_t n)
{
    const char *job = getenv ("SLURM_JOB_ID");
    const char *step = getenv ("SLURM_STEP_ID");

    if (job && *job && !(step && *step))
        return "slurm";
    for (size_t i = 0; i < n; i++)
        if (!dc_launch_is_local_host (hosts[i]))
            return "ssh";
    return "local";
}

struct dc_launch *dc_launch_create (const char *name,
                                    const struct dc_launch_opts *o,
                                    dc_error_t *errp)
{
    const struct dc_launch_ops *ops;
    struct dc_launch *l;

    if (!o) {
        errno = EINVAL;
        errprintf (errp, "no launcher options");
        return NULL;
    }
    if (!(ops = dc_launch_find (name, errp)))
        return NULL;
    if (!(l = calloc (1, sizeof (*l)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    l->ops = ops;
    l->opts = *o;
    if (l->opts.connect_timeout <= 0)
        l->opts.connect_timeout = 10;
    if (l->opts.fanout <= 0)
        l->opts.fanout = 64;
    if (ops->init && ops->init (l, errp) < 0) {
        int e = errno;
        free (l);
        errno = e;
        return NULL;
    }
    return l;
}

void dc_launch_destroy (struct dc_launch *l)
{
    if (!l)
        return;
    int e = errno;
    if (l->ops->fini)
        l->ops->fini (l);
    free (l);
    errno = e;
}

int dc_launch_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                     int n, dc_error_t *errp)
{
    if (!l || (!ranks && n > 0) || n < 0) {
        errno = EINVAL;
        return errprintf (errp, "invalid arguments");
    }
    return l->ops->spawn (l, ranks, n, errp);
}

int dc_launch_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                       int *timeout_ms)
{
    return l->ops->pollfds (l, fds, max, timeout_ms);
}

int dc_launch_progress (struct dc_launch *l, const struct pollfd *fds, int n)
{
    return l->ops->progress (l, fds, n);
}

ssize_t dc_launch_write (struct dc_launch *l, int rank, const void *buf,
                         size_t len)
{
    if (!l->ops->write) {
        errno = ENOTSUP;
        return -1;
    }
    return l->ops->write (l, rank, buf, len);
}

int dc_launch_write_fd (struct dc_launch *l, int rank)
{
    return l->ops->write_fd ? l->ops->write_fd (l, rank) : -1;
}

int dc_launch_close_stdin (struct dc_launch *l, int rank)
{
    if (!l->ops->close_stdin) {
        errno = ENOTSUP;
        return -1;
    }
    return l->ops->close_stdin (l, rank);
}

int dc_launch_signal (struct dc_launch *l, int rank, int sig)
{
    return l->ops->signal (l, rank, sig);
}

/* Characters that need no quoting in a POSIX shell word. */
static bool plain_word (const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-./=:,+@%",
                     *s))
            return false;
    return true;
}

char *dc_launch_shell_join (char *const *argv)
{
    size_t len = 1;

    if (!argv) {
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; argv[i]; i++) {
        len += 3;
        for (const char *p = argv[i]; *p; p++)
            len += *p == '\'' ? 4 : 1;
    }
    char *s = malloc (len);
    if (!s)
        return NULL;
    char *o = s;
    for (int i = 0; argv[i]; i++) {
        if (i)
            *o++ = ' ';
        if (plain_word (argv[i])) {
            size_t n = strlen (argv[i]);
            memcpy (o, argv[i], n);
            o += n;
            continue;
        }
        *o++ = '\'';
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                memcpy (o, "'\\''", 4);
                o += 4;
            } else
                *o++ = *p;
        }
        *o++ = '\'';
    }
    *o = '\0';
    return s;
}

char *dc_launch_worker_cmdline (const char *dcrun,
                                const struct dc_launch_rank *r)
{
    size_t n = 0, k = 0;

    if (!r || !r->argv || !r->argv[0]) {
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; r->env && r->env[i]; i++)
        n += 2;
    for (int i = 0; r->argv[i]; i++)
        n++;
    for (int i = 0; r->worker_args && r->worker_args[i]; i++)
        n++;
    char **av = calloc (n + 10, sizeof (char *));
    if (!av)
        return NULL;
    av[k++] = (char *)(dcrun ? dcrun : "dcrun");
    av[k++] = "worker";
    if (r->exec_in_place)
        av[k++] = "--exec";
    else if (r->stdin_data)
        av[k++] = "--stdin";
    if (r->cpus) {
        av[k++] = "--cpus";
        av[k++] = (char *)r->cpus;
    }
    if (r->wdir) {
        av[k++] = "--wdir";
        av[k++] = (char *)r->wdir;
    }
    for (int i = 0; r->worker_args && r->worker_args[i]; i++)
        av[k++] = r->worker_args[i];
    for (int i = 0; r->env && r->env[i]; i++) {
        av[k++] = "-e";
        av[k++] = r->env[i];
    }
    av[k++] = "--";
    for (int i = 0; r->argv[i]; i++)
        av[k++] = r->argv[i];
    av[k] = NULL;
    char *s = dc_launch_shell_join (av);
    free (av);
    return s;
}

bool dc_launch_port_free (int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd, one = 1;
    bool ok;

    if (port < 1 || port > 65535)
        return false;
    if ((fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return false;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    a.sin_addr.s_addr = htonl (INADDR_ANY);
    a.sin_port = htons ((uint16_t)port);
    ok = bind (fd, (struct sockaddr *)&a, sizeof (a)) == 0;
    close (fd);
    return ok;
}

int dc_launch_free_port (void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof (a);
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl (INADDR_ANY);
    if (bind (fd, (struct sockaddr *)&a, sizeof (a)) == 0 &&
        getsockname (fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs (a.sin_port);
    close (fd);
    return port;
}

int dc_launch_bind_cpus (const char *cpus)
{
    cpu_set_t set;
    const char *p = cpus;

    if (!cpus || !*cpus) {
        errno = EINVAL;
        return -1;
    }
    CPU_ZERO (&set);
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol (p, &end, 10), b;
        if (end == p || errno || a < 0 || a >= CPU_SETSIZE)
            goto bad;
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol (p, &end, 10);
            if (end == p || errno || b < a || b >= CPU_SETSIZE)
                goto bad;
            p = end;
        }
        for (long c = a; c <= b; c++)
            CPU_SET ((int)c, &set);
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    return sched_setaffinity (0, sizeof (set), &set);
bad:
    errno = EINVAL;
    return -1;
}

static int sigpipe_fd[2] = {-1, -1};
static int sigpipe_sigs[16];

static void sigpipe_handler (int sig)
{
    int e = errno;
    unsigned char c = (unsigned char)sig;

    /* the run stops: its named temporary files go now, whatever comes
     * next (mpirun's SIGKILL a second after its SIGTERM) */
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        dc_file_signal_cleanup ();
    if (write (sigpipe_fd[1], &c, 1) < 0) {
        /* full: the loop has enough to do */
    }
    errno = e;
}

int dc_sigpipe_create (const int *sigs)
{
    struct sigaction sa = {.sa_handler = sigpipe_handler,
                           .sa_flags = SA_RESTART};
    int n = 0;

    if (sigpipe_fd[0] >= 0) {
        errno = EBUSY;
        return -1;
    }
    if (pipe2 (sigpipe_fd, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    sigemptyset (&sa.sa_mask);
    for (; sigs && sigs[n] && n < 15; n++) {
        sigpipe_sigs[n] = sigs[n];
        sigaction (sigs[n], &sa, NULL);
    }
    sigpipe_sigs[n] = 0;
    /* unblock them in this thread, should the caller have blocked them */
    sigset_t set;
    sigemptyset (&set);
    for (int i = 0; i < n; i++)
        sigaddset (&set, sigs[i]);
    sigprocmask (SIG_UNBLOCK, &set, NULL);
    return sigpipe_fd[0];
}

int dc_sigpipe_read (void)
{
    unsigned char c;

    if (sigpipe_fd[0] < 0 || read (sigpipe_fd[0], &c, 1) != 1)
        return 0;
    return c;
}

void dc_sigpipe_destroy (void)
{
    if (sigpipe_fd[0] < 0)
        return;
    for (int i = 0; sigpipe_sigs[i]; i++)
        signal (sigpipe_sigs[i], SIG_DFL);
    close (sigpipe_fd[0]);
    close (sigpipe_fd[1]);
    sigpipe_fd[0] = sigpipe_fd[1] = -1;
}
