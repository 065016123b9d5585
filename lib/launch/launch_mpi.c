/* launch_mpi.c - ranks through OpenMPI's mpirun
 *
 * dcrun writes a hostfile from its own host list (each host with as many
 * slots as it has ranks) and starts one mpirun with one application
 * context per rank (MPMD: "-np 1 --host H:SLOTS -x ENV... dcrun worker ...
 * : ..."), which keeps dcrun's rank map exactly, whether the plan maps by
 * slot or by node: MPI_COMM_WORLD rank r is dcrun's rank r on its host.
 * The rank environment goes with -x (per context: mpirun's -x belongs to
 * the context it is in); the worker also reads OMPI_COMM_WORLD_*.  What
 * every rank shares (the -x exports among it, which may be secrets) never
 * stands on mpirun's command line: it is in mpirun's environment as
 * DCRUN_XENV_<k>=NAME=VALUE, exported by name, and the worker unwraps it
 * (launch_io.h); only per-rank values (DCRUN_RANK=3, ...) are words.
 *
 * Output and exit status come back over launch_io.c's connect-back channels
 * (whole lines per rank, an exact status for every rank), not through
 * mpirun's multiplexed output; what mpirun itself says is passed on.
 * mpirun runs with orte_abort_on_non_zero_status 0 so that dcrun, not
 * mpirun, decides whether one failing rank stops the others
 * (--kill-on-bad-exit).  SIGTERM to mpirun makes it stop every rank.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

#include "config.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

#if HAVE_MPI

struct argv_buf {
    char **v;
    int n, cap;
    bool failed;
};

static void push (struct argv_buf *b, const char *s)
{
    if (b->failed)
        return;
    if (b->n + 2 > b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        char **v = realloc (b->v, (size_t)cap * sizeof (*v));
        if (!v) {
            b->failed = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    if (!(b->v[b->n] = strdup (s))) {
        b->failed = true;
        return;
    }
    b->v[++b->n] = NULL;
}

static void pushf (struct argv_buf *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
static void pushf (struct argv_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start (ap, fmt);
    if (vasprintf (&s, fmt, ap) < 0)
        s = NULL;
    va_end (ap);
    if (!s) {
        b->failed = true;
        return;
    }
    push (b, s);
    free (s);
}

static void argv_free (struct argv_buf *b)
{
    for (int i = 0; i < b->n; i++)
        free (b->v[i]);
    free (b->v);
}

/* "user@host" or "host" into buf. */
static const char *host_spec (const struct dc_launch_rank *r, char *buf,
                              size_t len)
{
    if (r->user && *r->user)
        snprintf (buf, len, "%s@%s", r->user, r->host);
    else
        snprintf (buf, len, "%s", r->host);
    return buf;
}

/* Whether env entry k of rank 0 is the same in every rank. */
static bool shared_env (const struct dc_launch_rank *ranks, int n, int k)
{
    const char *e = ranks[0].env[k];

    for (int i = 1; i < n; i++) {
        bool found = false;
        for (int j = 0; ranks[i].env && ranks[i].env[j] && !found; j++)
            found = !strcmp (ranks[i].env[j], e);
        if (!found)
            return false;
    }
    return true;
}

static int mpi_init (struct dc_launch *l, dc_error_t *errp)
{
    return dc_iodrv_init (l, errp);
}

/* Ranks per host (slots[first[i]], first[i] the first rank of rank i's
 * host) and the one ssh port of the remote hosts (*port, 0: default).
 * -1 (errp) when remote hosts want different ports. */
static int mpi_hosts (const struct dc_launch *l,
                      const struct dc_launch_rank *ranks, int n, int *slots,
                      int *first, int *port, bool *all_local, dc_error_t *errp)
{
    *port = 0;
    *all_local = true;
    for (int i = 0; i < n; i++) {
        int p = ranks[i].port ? ranks[i].port : l->opts.ssh_port;
        first[i] = i;
        for (int k = 0; k < i; k++)
            if (!strcmp (ranks[k].host, ranks[i].host)) {
                first[i] = first[k];
                break;
            }
        slots[first[i]]++;
        if (dc_launch_is_local_host (ranks[i].host))
            continue;
        *all_local = false;
        if (p && *port && p != *port) {
            errno = EINVAL;
            return errprintf (errp,
                              "mpi: hosts with different ssh "
                              "ports (%d, %d): mpirun takes one",
                              *port, p);
        }
        if (p)
            *port = p;
    }
    return 0;
}

/* mpirun's hostfile: one line per host, its ranks as slots. */
static int write_hostfile (const char *hostfile,
                           const struct dc_launch_rank *ranks, int n,
                           const int *slots, const int *first, dc_error_t *errp)
{
    char spec[512];
    FILE *f = fopen (hostfile, "w");

    if (!f)
        return errprintf (errp, "%s: %s", hostfile, strerror (errno));
    fprintf (f, "# written by dcrun: one line per host, its ranks as "
                "slots\n");
    for (int i = 0; i < n; i++)
        if (first[i] == i)
            fprintf (f, "%s slots=%d\n",
                     host_spec (&ranks[i], spec, sizeof (spec)), slots[i]);
    if (fclose (f) != 0)
        return errprintf (errp, "%s: %s", hostfile, strerror (errno));
    return 0;
}

/* Entry e of a rank's environment as the rank gets it: opts.port_var
 * holds the port rank 0's host agreed to (l->port), once one was. */
static const char *port_entry (const struct dc_launch *l, const char *e,
                               char *buf, size_t cap)
{
    const char *var = l->opts.port_var;
    size_t vlen = var ? strlen (var) : 0;

    if (!vlen || l->port <= 0 || strncmp (e, var, vlen) || e[vlen] != '=')
        return e;
    snprintf (buf, cap, "%.100s=%d", var, l->port);
    return buf;
}

/* The app context of rank i: -np 1 --host HOST:SLOTS, its environment,
 * dcrun worker ... -- CMD. */
static void push_rank (struct argv_buf *b, const struct dc_launch *l,
                       const char *dcrun, const struct dc_launch_rank *ranks,
                       int n, int i, int slots)
{
    const struct dc_launch_rank *r = &ranks[i];
    char spec[512];

    if (i)
        push (b, ":");
    push (b, "-np");
    push (b, "1");
    push (b, "--host");
    pushf (b, "%s:%d", host_spec (r, spec, sizeof (spec)), slots);
    push (b, "-x");
    push (b, DC_IO_ENV);
    push (b, "-x");
    push (b, DC_IO_TOKEN_ENV);
    for (int k = 0; ranks[0].env && ranks[0].env[k]; k++)
        if (shared_env (ranks, n, k)) {
            push (b, "-x");
            pushf (b, "%s%d", DC_XENV_PREFIX, k);
        }
    for (int k = 0; r->env && r->env[k]; k++) {
        bool shared = false;
        for (int j = 0; ranks[0].env && ranks[0].env[j] && !shared; j++)
            shared = !strcmp (ranks[0].env[j], r->env[k]) &&
                     shared_env (ranks, n, j);
        if (shared)
            continue; /* in mpirun's environment */
        char pe[128];
        push (b, "-x");
        push (b, port_entry (l, r->env[k], pe, sizeof (pe)));
    }
    push (b, dcrun);
    push (b, "worker");
    push (b, "--control");
    push (b, "none");
    if (r->stdin_data)
        push (b, "--stdin");
    if (r->cpus) {
        push (b, "--cpus");
        push (b, r->cpus);
    }
    for (int k = 0; r->worker_args && r->worker_args[k]; k++)
        push (b, r->worker_args[k]);
    push (b, "--");
    for (int k = 0; r->argv[k]; k++)
        push (b, r->argv[k]);
}

/* What every mpirun of dcrun takes after its hostfile: the abort policy,
 * the ssh port of the remote hosts, TCP on lo for hosts of this machine,
 * then --mpirun-args.  -1 (errp) when those cannot be split into words. */
static int push_common (struct argv_buf *b, const struct dc_launch *l, int port,
                        bool all_local, dc_error_t *errp)
{
    const char *extra = l->opts.mpirun_args;

    /* dcrun decides what a failing rank does to the others */
    push (b, "--mca");
    push (b, "orte_abort_on_non_zero_status");
    push (b, "0");
    if (port && port != 22 && !(extra && strstr (extra, "plm_rsh"))) {
        push (b, "--mca");
        push (b, "plm_rsh_args");
        pushf (b, "-p %d", port);
    }
    if (all_local && !(extra && strstr (extra, "btl"))) {
        /* loopback "hosts" of one machine: no shared memory between
         * them (a name clash), TCP on lo */
        static const char *const lo[] = {"--mca",
                                         "btl",
                                         "self,tcp",
                                         "--mca",
                                         "btl_tcp_if_include",
                                         "lo",
                                         "--mca",
                                         "oob_tcp_if_include",
                                         "lo",
                                         NULL};
        for (int i = 0; lo[i]; i++)
            push (b, lo[i]);
    }
    if (extra && *extra) {
        wordexp_t we;
        if (wordexp (extra, &we, WRDE_NOCMD | WRDE_UNDEF) != 0) {
            errno = EINVAL;
            return errprintf (errp,
                              "--mpirun-args '%s': cannot split into "
                              "words (unbalanced quotes or $(...)?)",
                              extra);
        }
        for (size_t i = 0; i < we.we_wordc; i++)
            push (b, we.we_wordv[i]);
        wordfree (&we);
    }
    return 0;
}

int dc_launch_mpi_argv (struct dc_launch *l, const struct dc_launch_rank *ranks,
                        int n, const char *hostfile, char ***argvp,
                        dc_error_t *errp)
{
    struct argv_buf b = {0};
    const char *dcrun = l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun";
    int *slots = calloc ((size_t)n + 1, sizeof (int)); /* per first rank */
    int *first = calloc ((size_t)n + 1, sizeof (int)); /* rank -> first */
    int port = 0;
    bool all_local = true;

    if (!slots || !first) {
        free (slots);
        free (first);
        return errprintf (errp, "out of memory");
    }
    if (mpi_hosts (l, ranks, n, slots, first, &port, &all_local, errp) < 0 ||
        (hostfile &&
         write_hostfile (hostfile, ranks, n, slots, first, errp) < 0)) {
        free (slots);
        free (first);
        return -1;
    }
    push (&b, "mpirun");
    push (&b, "--hostfile");
    push (&b, hostfile ? hostfile : "HOSTFILE");
    if (push_common (&b, l, port, all_local, errp) < 0) {
        argv_free (&b);
        free (slots);
        free (first);
        return -1;
    }
    for (int i = 0; i < n; i++)
        push_rank (&b, l, dcrun, ranks, n, i, slots[first[i]]);
    free (slots);
    free (first);
    if (b.failed) {
        argv_free (&b);
        return errprintf (errp, "out of memory");
    }
    *argvp = b.v;
    return 0;
}

/* ---- MASTER_PORT on rank 0's host (opts.port_var) ---- */

/* True when name is this host by name (not any loopback address: the
 * test hosts 127.0.0.N stand for other machines). */
static bool named_here (const char *name)
{
    char me[256];

    if (!strcmp (name, "localhost") || !strcmp (name, "127.0.0.1") ||
        !strcmp (name, "::1"))
        return true;
    if (gethostname (me, sizeof (me)) < 0)
        return false;
    me[sizeof (me) - 1] = '\0';
    return !strcmp (name, me);
}

/* The environment of the check's mpirun: ours, and OpenMPI's two words
 * for root (calloc'ed vector of borrowed strings). */
static char **check_env (void)
{
    extern char **environ;
    size_t n = 0;

    while (environ[n])
        n++;
    char **env = calloc (n + 3, sizeof (*env));
    if (!env)
        return NULL;
    memcpy (env, environ, n * sizeof (*env));
    if (getuid () == 0) {
        env[n++] = "OMPI_ALLOW_RUN_AS_ROOT=1";
        env[n++] = "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";
    }
    return env;
}

/* The signal numbers waiting on opts.cancel_fd (dcrun's signal pipe,
 * launch.h): a SIGCHLD (the check's mpirun ending) is taken, any other
 * is left for the caller (*sig, sent again by check_run). */
static void take_signals (const struct dc_launch *l, int *sig)
{
    unsigned char c;

    while (l->opts.cancel_fd >= 0 && !*sig &&
           read (l->opts.cancel_fd, &c, 1) == 1)
        if (c != SIGCHLD)
            *sig = c;
}

/* Read the check's output (the last cap - 1 bytes, with mpirun's own
 * words) until EOF, the deadline or a signal (*sig).  0 at EOF. */
static int check_read (const struct dc_launch *l, int fd, char *out, size_t cap,
                       double deadline, int *sig)
{
    size_t len = 0;

    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = l->opts.cancel_fd, .events = POLLIN}};
        int ms = (int)((deadline - dc_now ()) * 1000);
        if (ms <= 0)
            return -1;
        int rc = poll (p, l->opts.cancel_fd >= 0 ? 2 : 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (p[1].revents & POLLIN) {
            take_signals (l, sig);
            if (*sig)
                return -1;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (len + 1 >= cap) { /* keep the end: the answer is last */
            memmove (out, out + cap / 2, len - cap / 2);
            len -= cap / 2;
        }
        ssize_t k = read (fd, out + len, cap - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    out[len] = '\0';
    return 0;
}

/* Run argv (mpirun) in its own group, its stdout and stderr into out;
 * its wait status in *ws.  A check past the deadline, or interrupted by
 * a signal of dcrun's signal pipe, is killed. */
static int check_run (const struct dc_launch *l, char **argv, char *out,
                      size_t cap, int *ws, dc_error_t *errp)
{
    double t = l->opts.connect_timeout > 0 ? l->opts.connect_timeout : 10;
    char **env = check_env ();
    int p[2], sig = 0;

    if (!env || pipe2 (p, O_CLOEXEC) < 0) {
        free (env);
        return errprintf (errp, "mpi: %s", strerror (errno));
    }
    pid_t pid = fork ();
    if (pid == 0) {
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        dup2 (p[1], 1);
        dup2 (p[1], 2);
        execvpe (argv[0], argv, env);
        _exit (127);
    }
    int e = errno;
    close (p[1]);
    free (env);
    if (pid < 0) {
        close (p[0]);
        return errprintf (errp, "mpi: fork: %s", strerror (e));
    }
    setpgid (pid, pid);
    int rc = check_read (l, p[0], out, cap, dc_now () + t + 20, &sig);
    close (p[0]);
    if (rc < 0) {
        kill (-pid, SIGTERM);
        usleep (100000);
        kill (-pid, SIGKILL);
    }
    while (waitpid (pid, ws, 0) < 0 && errno == EINTR)
        ;
    take_signals (l, &sig);
    if (sig) { /* for the caller's signal pipe again */
        raise (sig);
        errno = EINTR;
        return errprintf (errp, "mpi: interrupted while starting");
    }
    if (rc < 0) {
        errno = ETIMEDOUT;
        return errprintf (errp, "mpi: no answer within %.0f s", t + 20);
    }
    return 0;
}

/* What `dcrun worker --port-check` said on host (out, mpirun's status
 * ws): 0 with l->port set, or -1 (errp). */
static int check_answer (struct dc_launch *l, const char *host, char *out,
                         int ws, dc_error_t *errp)
{
    const char *var = l->opts.port_var;
    int got = 0;

    for (char *s = out; s && *s;
         s = strchr (s, '\n') ? strchr (s, '\n') + 1 : NULL) {
        if (WIFEXITED (ws) && WEXITSTATUS (ws) == 0 &&
            sscanf (s, "port %d", &got) == 1 && got > 0 && got < 65536) {
            l->port = got;
            dc_log (DC_LOG_INFO, "mpi: %s: %s %d, free there (rank 0's host)",
                    host, var, got);
            return 0;
        }
        if (sscanf (s, "busy %d", &got) == 1) {
            errno = EADDRINUSE;
            return errprintf (errp,
                              "%s: %s %d is in use there (rank 0's host)\n"
                              "hint: choose a free port, or let dcrun pick "
                              "one",
                              host, var, got);
        }
    }
    out[strcspn (out, "\n")] = '\0';
    errno = EIO;
    return errprintf (
        errp, "%s: cannot check %s there (mpirun status %d%s%.300s)", host, var,
        WIFEXITED (ws) ? WEXITSTATUS (ws) : -1, out[0] ? ": " : "", out);
}

/* opts.port_var: before any rank starts, which port is free on rank 0's
 * host (or whether the one given with port_fixed is), as the ssh launcher
 * asks: a rank 0 named as this host is answered here, another host by a
 * one-rank mpirun of `dcrun worker --port-check` there.  0 with l->port
 * set (or nothing to do), -1 (errp). */
static int mpi_port (struct dc_launch *l, const struct dc_launch_rank *ranks,
                     int n, dc_error_t *errp)
{
    const char *var = l->opts.port_var;
    size_t vlen = var ? strlen (var) : 0;
    int want = 0;

    if (!vlen || n < 1)
        return 0;
    const struct dc_launch_rank *r0 = &ranks[0];
    for (int e = 0; r0->env && r0->env[e]; e++)
        if (!strncmp (r0->env[e], var, vlen) && r0->env[e][vlen] == '=')
            want = atoi (r0->env[e] + vlen + 1);
    if (named_here (r0->host)) {
        if (want > 0 && dc_launch_port_free (want))
            l->port = want;
        else if (l->opts.port_fixed) {
            errno = EADDRINUSE;
            return errprintf (errp,
                              "%s %d is in use on this host (rank 0's)\n"
                              "hint: choose a free port, or let dcrun pick "
                              "one",
                              var, want);
        } else
            l->port = dc_launch_free_port ();
        return 0;
    }
    struct argv_buf b = {0};
    int slots = 1, first = 0, port = 0, ws = 0;
    bool all_local = true;
    char spec[512], out[2048];
    if (mpi_hosts (l, r0, 1, &slots, &first, &port, &all_local, errp) < 0)
        return -1;
    push (&b, "mpirun");
    if (push_common (&b, l, port, all_local, errp) < 0) {
        argv_free (&b);
        return -1;
    }
    push (&b, "-np");
    push (&b, "1");
    push (&b, "--host");
    pushf (&b, "%s:1", host_spec (r0, spec, sizeof (spec)));
    push (&b, l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun");
    push (&b, "worker");
    push (&b, "--port-check");
    pushf (&b, "%d", l->opts.port_fixed ? want : 0);
    int rc = b.failed ? errprintf (errp, "out of memory")
                      : check_run (l, b.v, out, sizeof (out), &ws, errp);
    argv_free (&b);
    return rc < 0 ? -1 : check_answer (l, r0->host, out, ws, errp);
}

static int mpi_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                      int n, dc_error_t *errp)
{
    char hostfile[4200];
    char **argv = NULL, pe[128];
    int rc;

    if (mpi_port (l, ranks, n, errp) < 0 ||
        dc_iodrv_prepare (l, ranks, n, errp) < 0)
        return -1;
    snprintf (hostfile, sizeof (hostfile), "%s/hostfile", dc_iodrv_dir (l));
    if (dc_launch_mpi_argv (l, ranks, n, hostfile, &argv, errp) < 0)
        return -1;
    /* the shared environment, and OpenMPI refuses root unless told twice */
    int ne = 0;
    for (int k = 0; ranks[0].env && ranks[0].env[k]; k++)
        ne++;
    char **env = calloc ((size_t)ne + 3, sizeof (*env));
    int k = 0;
    for (int i = 0; env && i < ne; i++)
        if (shared_env (ranks, n, i) &&
            asprintf (&env[k++], "%s%d=%s", DC_XENV_PREFIX, i,
                      port_entry (l, ranks[0].env[i], pe, sizeof (pe))) < 0) {
            env[--k] = NULL;
            for (int j = 0; j < k; j++)
                free (env[j]);
            free (env);
            env = NULL;
        }
    if (!env) {
        for (int i = 0; argv[i]; i++)
            free (argv[i]);
        free (argv);
        return errprintf (errp, "out of memory");
    }
    if (getuid () == 0) {
        env[k++] = strdup ("OMPI_ALLOW_RUN_AS_ROOT=1");
        env[k++] = strdup ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
    }
    rc = dc_iodrv_start (l, "mpirun", argv, env, errp);
    for (int i = 0; argv[i]; i++)
        free (argv[i]);
    free (argv);
    for (int i = 0; i < k; i++)
        free (env[i]);
    free (env);
    return rc;
}

const struct dc_launch_ops dc_launch_mpi = {
    .name = "mpi",
    .summary = "OpenMPI mpirun with a hostfile, dcrun worker per rank",
    .init = mpi_init,
    .spawn = mpi_spawn,
    .pollfds = dc_iodrv_pollfds,
    .progress = dc_iodrv_progress,
    .signal = dc_iodrv_signal,
    .write = dc_iodrv_write,
    .close_stdin = dc_iodrv_close_stdin,
    .fini = dc_iodrv_fini,
};

#endif /* HAVE_MPI */
