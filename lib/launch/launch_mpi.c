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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

#include "config.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"

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
        push (b, dc_iodrv_port_entry (l, r->env[k], pe, sizeof (pe)));
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

/* The driver command that runs `dcrun worker --port-check PORT` on the
 * host of r0 alone (launch_io.h: dc_iodrv_port). */
static int mpi_check_argv (struct dc_launch *l, const struct dc_launch_rank *r0,
                           int port, char ***argvp, dc_error_t *errp)
{
    struct argv_buf b = {0};
    int slots = 1, first = 0, sshport = 0;
    bool all_local = true;
    char spec[512];

    if (mpi_hosts (l, r0, 1, &slots, &first, &sshport, &all_local, errp) < 0)
        return -1;
    push (&b, "mpirun");
    if (push_common (&b, l, sshport, all_local, errp) < 0) {
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
    pushf (&b, "%d", port);
    if (b.failed) {
        argv_free (&b);
        return errprintf (errp, "out of memory");
    }
    *argvp = b.v;
    return 0;
}

static int mpi_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                      int n, dc_error_t *errp)
{
    char hostfile[4200];
    char **argv = NULL, pe[128];
    int rc;

    if (dc_iodrv_port (l, ranks, n, mpi_check_argv, errp) < 0 ||
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
                      dc_iodrv_port_entry (l, ranks[0].env[i], pe,
                                           sizeof (pe))) < 0) {
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
