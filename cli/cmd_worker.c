/* cmd_worker.c - dcrun worker (internal): what launchers start on each host
 *
 *   dcrun worker [--cpus LIST] [-e NAME=VALUE]... [--control stdin|none]
 *                -- CMD ARGS...
 *
 * The rank's agent on its host (lib/launch/agent.h does the work): runs
 * CMD in its own process group with the rank's environment, its output
 * going straight to the worker's stdout/stderr (the launcher's channel).
 * The worker's stdin is the control channel (lib/launch/control.h):
 * signals for the group, with --stdin the bytes of CMD's stdin and their
 * EOF; EOF of the channel (the SSH channel closed, the launcher gone)
 * stops the group (SIGTERM and SIGCONT, SIGKILL after KILL_GRACE_S) and
 * ends the worker.  The parent going away (PR_SET_PDEATHSIG), SIGTERM,
 * SIGINT and SIGHUP do the same.  With --exec, CMD's stdin and stdout are
 * the channel itself: the worker reads nothing, and the channel closing
 * (an error polling its stdout) stops CMD.  The worker is a child
 * subreaper (lib/launch/proctree.h): when CMD ends or is stopped, its
 * whole tree goes with it, and the worker exits with CMD's status, or
 * dies of CMD's signal.  --port-check PORT answers for MASTER_PORT on
 * rank 0's host and exits.
 *
 * With --place (what the head asks for remote ranks it could not place),
 * the worker is the placement agent of its host: it probes the host
 * (gpu/probe.c; $DCRUN_HWLOC_XMLFILE names an hwloc XML to load instead of
 * the live topology), places all DCRUN_LOCAL_SIZE ranks of the host with
 * dc_plan_place_local() (the function the head uses for its own host, so
 * the ranks of a host never overlap) and binds CMD to the cores of its
 * local rank (DCRUN_LOCAL_RANK): the cores next to its GPU(s).  It puts
 * that CPU set in DCRUN_CPUS, binds only to the CPUs of it that exist and
 * are allowed here (none: unbound, said at -v), and, when the head did not
 * know the host's GPUs (no --place-gpus), sets DCRUN_GPUS and
 * CUDA_VISIBLE_DEVICES to the rank's GPUs.  At -v it says what it did on
 * stderr.
 *
 * Under mpirun (OMPI_COMM_WORLD_*) and srun (SLURM_PROCID...) the rank
 * environment comes from theirs, and --control none is the default there
 * (their stdin is /dev/null for most ranks).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "gpu/probe.h"
#include "job.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/launch/agent.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/hosts/rankenv.h"
#include "lib/launch/proctree.h"
#include "lib/util/log.h"

#define KILL_GRACE_S 2

enum {
    OPT_CPUS = 0x100,
    OPT_CONTROL,
    OPT_EXEC,
    OPT_ENV_STDIN,
    OPT_WDIR,
    OPT_PLACE,
    OPT_PLACE_SLOTS,
    OPT_PLACE_NO_BIND,
    OPT_PLACE_GPUS,
    OPT_GPUS_PER_RANK,
    OPT_MAP_BY,
    OPT_PLACE_GPU_BIND,
    OPT_STDIN,
    OPT_PORT_CHECK,
};

static const struct cli_opt worker_opts[] = {
    {"cpus", required_argument, OPT_CPUS, "LIST", "bind CMD to these CPUs"},
    {"env", required_argument, 'e', "NAME=VALUE", "set in CMD's environment"},
    {"control", required_argument, OPT_CONTROL, "stdin|none",
     "read control lines from stdin, EOF ends the job (default stdin; none "
     "under mpirun/srun)"},
    {"env-stdin", required_argument, OPT_ENV_STDIN, "BYTES",
     "read BYTES of NUL-terminated NAME=VALUE entries from stdin first"},
    {"wdir", required_argument, OPT_WDIR, "DIR", "run CMD in DIR"},
    {"place", no_argument, OPT_PLACE, NULL,
     "probe this host and bind CMD next to its GPU (sets DCRUN_CPUS)"},
    {"place-no-bind", no_argument, OPT_PLACE_NO_BIND, NULL,
     "--place: set the GPUs only, bind nothing (dcrun --bind none)"},
    {"place-slots", required_argument, OPT_PLACE_SLOTS, "N",
     "--place: the host's slots (default DCRUN_LOCAL_SIZE)"},
    {"place-gpus", required_argument, OPT_PLACE_GPUS, "LIST",
     "--place: the host's gpus= list (default: the probed GPUs)"},
    {"gpus-per-rank", required_argument, OPT_GPUS_PER_RANK, "N",
     "--place: GPUs each rank gets"},
    {"map-by", required_argument, OPT_MAP_BY, "ppr:N:package|ppr:N:numa",
     "--place: N ranks per package (NUMA node), in local-rank order"},
    {"place-gpu-bind", required_argument, OPT_PLACE_GPU_BIND, "host|rank|none",
     "--place: CUDA_VISIBLE_DEVICES as dcrun --gpu-bind (default host)"},
    {"exec", no_argument, OPT_EXEC, NULL,
     "CMD's stdin and stdout are the channel (dcrun serve)"},
    {"stdin", no_argument, OPT_STDIN, NULL,
     "CMD's stdin is what the control channel's stdin frames carry "
     "(default /dev/null)"},
    {"port-check", required_argument, OPT_PORT_CHECK, "PORT",
     "print 'port PORT' when a TCP port PORT is free on this host, 'busy "
     "PORT' when not (0: 'port N' for a free one) and exit"},
    {0},
};

struct worker_args {
    bool exec;
    const char *cpus;
    int control; /* 1 stdin, 0 none, -1 not given */
    char **env;
    int nenv;
    long env_stdin; /* bytes of environment on stdin, -1 none */
    const char *wdir;
    bool place;
    bool place_no_bind;
    long place_slots;
    const char *place_gpus;
    long gpus_per_rank;
    struct dc_plan_opts popts; /* --map-by ppr:... */
    enum dc_gpu_bind gpu_bind; /* --place-gpu-bind */
    bool stdin_data;           /* --stdin */
    long port_check;           /* --port-check, -1 not given */
};

static int worker_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct worker_args *a = ctx;

    switch (key) {
    case OPT_CPUS:
        a->cpus = arg;
        return 0;
    case OPT_EXEC:
        a->exec = true;
        return 0;
    case OPT_STDIN:
        a->stdin_data = true;
        return 0;
    case OPT_PORT_CHECK:
        return cli_parse_long (cli, "--port-check", arg, 0, 65535,
                               &a->port_check);
    case OPT_WDIR:
        a->wdir = arg;
        return 0;
    case OPT_PLACE:
        a->place = true;
        return 0;
    case OPT_PLACE_NO_BIND:
        a->place_no_bind = true;
        return 0;
    case OPT_PLACE_SLOTS:
        return cli_parse_long (cli, "--place-slots", arg, 1, DC_MAX_SLOTS,
                               &a->place_slots);
    case OPT_PLACE_GPUS:
        a->place_gpus = arg;
        return 0;
    case OPT_MAP_BY: {
        dc_error_t err;
        if (dc_plan_parse_map_by (arg, &a->popts, &err) < 0)
            return cli_usage_error (cli, "%s", err.text);
        return 0;
    }
    case OPT_PLACE_GPU_BIND:
        if (dc_rankenv_gpu_bind_parse (arg, &a->gpu_bind) < 0)
            return cli_usage_error (cli,
                                    "--place-gpu-bind '%s': expected host, "
                                    "rank or none",
                                    arg);
        return 0;
    case OPT_GPUS_PER_RANK:
        return cli_parse_long (cli, "--gpus-per-rank", arg, 1, DC_TOPO_MAX_GPUS,
                               &a->gpus_per_rank);
    case OPT_ENV_STDIN:
        return cli_parse_long (cli, "--env-stdin", arg, 0, DC_ENV_BLOCK_MAX,
                               &a->env_stdin);
    case 'e': {
        if (!strchr (arg, '=') || *arg == '=')
            return cli_usage_error (cli, "-e '%s': expected NAME=VALUE", arg);
        char **v = realloc (a->env, (size_t)(a->nenv + 1) * sizeof (*v));
        if (!v)
            return cli_usage_error (cli, "out of memory");
        a->env = v;
        a->env[a->nenv++] = (char *)arg;
        return 0;
    }
    case OPT_CONTROL:
        if (!strcmp (arg, "stdin"))
            a->control = 1;
        else if (!strcmp (arg, "none"))
            a->control = 0;
        else
            return cli_usage_error (cli,
                                    "--control '%s': expected stdin or "
                                    "none",
                                    arg);
        return 0;
    }
    return -1;
}

/* Rank environment from mpirun's or srun's variables (rankenv.h).
 * Returns true when one of them started us. */
static bool env_from_launcher (void)
{
    /* dcrun started us through mpirun or srun and passed its own rank
     * environment (its rank map, node ranks and host names): keep it */
    if (getenv (DC_IO_ENV) && getenv ("DCRUN_RANK"))
        return true;
    return dc_rankenv_from_launcher ();
}

/* Under mpirun/srun with $DCRUN_IO: the ctl, out and err connections back
 * to dcrun (lib/launch/launch_io.h).  The worker's own messages go to err from
 * here on, so that they reach dcrun as the rank's stderr. */
static int io_connect (int io[3])
{
    static const char *const kinds[3] = {"ctl", "out", "err"};
    const char *addrs = getenv (DC_IO_ENV);
    const char *token = getenv (DC_IO_TOKEN_ENV);
    const char *rank = getenv ("DCRUN_RANK");
    dc_error_t err;

    for (int k = 0; k < 3; k++)
        if ((io[k] = dc_io_connect (addrs, token, rank ? atoi (rank) : -1,
                                    kinds[k], 10, &err)) < 0)
            return cli_error (-1, "worker: rank %s: %s", rank ? rank : "?",
                              err.text);
    unsetenv (DC_IO_ENV);
    unsetenv (DC_IO_TOKEN_ENV);
    dup2 (io[2], 2);
    return 0;
}

/* The rank's GPUs, where the head did not know them: DCRUN_GPUS and
 * CUDA_VISIBLE_DEVICES the same list (none: both left alone). */
/* The rank's GPUs, found here: DCRUN_GPUS is its own; CUDA_VISIBLE_DEVICES
 * follows --gpu-bind as lib/hosts/rankenv.h has it (host: the GPUs of
 * every rank of this host in local-rank order, so that cuda:LOCAL_RANK is
 * its own; rank: its own; none: untouched). */
static void set_rank_gpus (const char *own, const char *host_gpus,
                           enum dc_gpu_bind bind)
{
    if (!own || !*own)
        return;
    setenv ("DCRUN_GPUS", own, 1);
    if (bind == DC_GPU_BIND_RANK)
        setenv ("CUDA_VISIBLE_DEVICES", own, 1);
    else if (bind == DC_GPU_BIND_HOST)
        setenv ("CUDA_VISIBLE_DEVICES",
                host_gpus && *host_gpus ? host_gpus : own, 1);
}

/* Append the ids of list ("2,3") to out (size len) that it lacks. */
static void add_gpus (char *out, size_t len, const char *list)
{
    char id[16];
    const char *p = list;

    while (p && *p) {
        size_t n = strcspn (p, ",");
        if (n > 0 && n < sizeof (id)) {
            char pat[20];
            memcpy (id, p, n);
            id[n] = '\0';
            snprintf (pat, sizeof (pat), ",%s,", id);
            char have[4200];
            snprintf (have, sizeof (have), ",%s,", out);
            size_t used = strlen (out);
            if (!strstr (have, pat) && used + n + 2 < len)
                snprintf (out + used, len - used, "%s%s", used ? "," : "", id);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

/* The CPUs of list that this process may run on, as a new list ("" when
 * none), NULL when out of memory or a bad list. */
static char *cpus_here (const char *list)
{
    cpu_set_t allowed;
    char *out;
    size_t len, n = 0;
    long lo, hi;
    const char *p = list;

    if (sched_getaffinity (0, sizeof (allowed), &allowed) < 0)
        CPU_ZERO (&allowed);
    len = strlen (list) + 1;
    if (!(out = malloc (len * 4 + 16)))
        return NULL;
    out[0] = '\0';
    while (*p) {
        char *end;
        lo = strtol (p, &end, 10);
        if (end == p || lo < 0)
            goto bad;
        hi = lo;
        p = end;
        if (*p == '-') {
            hi = strtol (p + 1, &end, 10);
            if (end == p + 1 || hi < lo)
                goto bad;
            p = end;
        }
        for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
            if (CPU_ISSET ((int)c, &allowed)) {
                char buf[24];
                int k = snprintf (buf, sizeof (buf), "%s%ld", n ? "," : "", c);
                if (n + (size_t)k + 1 > len * 4 + 16)
                    goto bad;
                memcpy (out + n, buf, (size_t)k + 1);
                n += (size_t)k;
            }
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    return out;
bad:
    free (out);
    return NULL;
}

/* --place: probe this host, place the ranks of the host, pick ours.  Sets
 * DCRUN_CPUS (and the GPUs, see set_rank_gpus); *bindp is the CPU list to
 * bind to (NULL: stay unbound).  EXIT_OK or an exit status after printing
 * why. */
static int place_here (struct cli *cli, const struct worker_args *a,
                       char **bindp)
{
    const char *lr = getenv ("DCRUN_LOCAL_RANK");
    const char *ls = getenv ("DCRUN_LOCAL_SIZE");
    const char *rank = getenv ("DCRUN_RANK");
    char host[256] = "";
    long local_rank, local_size;
    int *hg = NULL, nhg = 0, rc = EXIT_OK;
    char *cpus = NULL, *gpus = NULL, *end;
    struct dc_topo *topo = NULL;
    dc_error_t err;

    *bindp = NULL;
    if (getenv ("DCRUN_HOST")) /* the host as the host list names it */
        snprintf (host, sizeof (host), "%s", getenv ("DCRUN_HOST"));
    else
        gethostname (host, sizeof (host) - 1);
    if (!lr || !ls || (local_rank = strtol (lr, &end, 10)) < 0 || *end ||
        (local_size = strtol (ls, &end, 10)) < 1 || *end ||
        local_size > DC_MAX_SLOTS || local_rank >= local_size)
        return cli_error (EXIT_LAUNCH,
                          "worker: --place: DCRUN_LOCAL_RANK and "
                          "DCRUN_LOCAL_SIZE missing or bad (%s of %s)",
                          lr ? lr : "unset", ls ? ls : "unset");
    if (a->place_gpus && *a->place_gpus &&
        dc_parse_int_list (a->place_gpus, DC_TOPO_MAX_GPUS - 1, &hg, &nhg,
                           &err) < 0)
        return cli_error (EXIT_USAGE, "worker: --place-gpus '%s': %s",
                          a->place_gpus, err.text);
    struct dc_plan_opts o = a->popts;
    o.gpus_per_rank = (int)a->gpus_per_rank;
    if (!(topo = dc_probe_host (NULL, &err))) {
        /* no topology: run unplaced, as the head does for its own host */
        if (cli->verbose)
            fprintf (stderr,
                     "dcrun: worker: rank %s on %s: cannot probe this "
                     "host (%s): not bound\n",
                     rank ? rank : "?", host, err.text);
        free (hg);
        return EXIT_OK;
    }
    if (dc_plan_place_local (topo, host, (int)local_rank, (int)local_size,
                             (int)a->place_slots, hg, nhg, &o, &cpus, &gpus,
                             &err) < 0) {
        rc = cli_error (EXIT_LAUNCH, "worker: %s: placement: %s", host,
                        err.text);
        goto out;
    }
    if (!a->place_gpus) {
        /* the GPUs of every rank of this host, in local-rank order */
        char all[4096] = "";
        for (long l = 0; l < local_size && a->gpu_bind == DC_GPU_BIND_HOST;
             l++) {
            char *oc = NULL, *og = NULL;
            if (dc_plan_place_local (topo, host, (int)l, (int)local_size,
                                     (int)a->place_slots, hg, nhg, &o, &oc, &og,
                                     &err) == 0)
                add_gpus (all, sizeof (all), og);
            free (oc);
            free (og);
        }
        set_rank_gpus (gpus, all, a->gpu_bind);
    }
    if (cpus && !a->place_no_bind) {
        char *here = cpus_here (cpus);
        setenv ("DCRUN_CPUS", cpus, 1);
        if (here && *here)
            *bindp = here;
        else
            free (here);
    }
    if (cli->verbose)
        fprintf (stderr,
                 "dcrun: worker: rank %s on %s: local rank %ld of %ld, "
                 "cpus %s, gpus %s, bound to %s\n",
                 rank ? rank : "?", host, local_rank, local_size,
                 cpus ? cpus : "-", gpus && *gpus ? gpus : "-",
                 *bindp             ? *bindp
                 : a->place_no_bind ? "nothing (--bind none)"
                                    : "nothing (none of those CPUs is here)");
out:
    free (hg);
    free (cpus);
    free (gpus);
    dc_topo_destroy (topo);
    return rc;
}

/* --port-check: MASTER_PORT as rank 0's host sees it (launch_ssh.c asks
 * before any rank starts). */
static int port_check (long port)
{
    int p = port > 0 ? (dc_launch_port_free ((int)port) ? (int)port : -1)
                     : dc_launch_free_port ();

    if (port > 0 && p < 0)
        printf ("busy %ld\n", port);
    else if (p > 0)
        printf ("port %d\n", p);
    else
        return cli_error (EXIT_LAUNCH, "worker: no free TCP port: %s",
                          strerror (errno));
    return fflush (stdout) == 0 ? EXIT_OK : EXIT_LAUNCH;
}

/* --wdir: enter it, or say which host lacks it. */
static int enter_wdir (const char *wdir)
{
    char host[256] = "";

    if (chdir (wdir) == 0) {
        setenv ("PWD", wdir, 1);
        return EXIT_OK;
    }
    int e = errno;
    if (getenv ("DCRUN_HOST"))
        snprintf (host, sizeof (host), "%s", getenv ("DCRUN_HOST"));
    else if (gethostname (host, sizeof (host) - 1) < 0)
        snprintf (host, sizeof (host), "?");
    return cli_error (EXIT_LAUNCH,
                      "%s: cannot run in folder %s: %s\nhint: "
                      "--wdir DIR names a folder that exists there",
                      host, wdir, strerror (e));
}

/* Options, the rank environment, the folder, the placement.  EXIT_OK with
 * w->cmd set to go on; otherwise the exit status (w->cmd NULL after
 * --help). */
static int worker_prepare (struct cli *cli, int argc, char **argv,
                           struct worker_args *a, char ***cmdp, char **placedp)
{
    int optindex, rc;

    if ((rc = cli_parse (cli, &cmd_worker, argc, argv, worker_opt, a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a->port_check >= 0)
        return port_check (a->port_check);
    if (optindex >= argc) {
        cli_usage_error (cli, "no command given");
        return EXIT_USAGE;
    }
    /* the environment that stays off command lines (job.c) */
    cli_env_unwrap ();
    if (a->env_stdin > 0 && (rc = cli_env_read (0, a->env_stdin)) != EXIT_OK)
        return rc;
    bool by_launcher = env_from_launcher ();
    if (a->control < 0)
        a->control = by_launcher ? 0 : 1;
    for (int i = 0; i < a->nenv; i++)
        putenv (a->env[i]);
    if (a->wdir && (rc = enter_wdir (a->wdir)) != EXIT_OK)
        return rc;
    if (a->place && !a->cpus) {
        rc = place_here (cli, a, placedp);
        if (rc != EXIT_OK)
            return rc;
        a->cpus = *placedp;
    }
    *cmdp = argv + optindex;
    return EXIT_OK;
}

/* The worker's own end: CMD's exit status, or it dies of CMD's signal. */
static int worker_finish (int status)
{
    if (!WIFSIGNALED (status))
        return WEXITSTATUS (status);
    int sig = WTERMSIG (status);
    sigset_t set;
    dc_sigpipe_destroy ();
    signal (sig, SIG_DFL);
    sigemptyset (&set);
    sigaddset (&set, sig);
    pthread_sigmask (SIG_UNBLOCK, &set, NULL);
    prctl (PR_SET_DUMPABLE, 0); /* no core file of the worker */
    raise (sig);
    /* still here (a signal that does not end a process): exit with the
     * shell's code, dumpable again so that exit handlers such as
     * LeakSanitizer's, which ptrace this process, do not spin */
    prctl (PR_SET_DUMPABLE, 1);
    return 128 + sig;
}

static int worker_main (struct cli *cli, struct worker_args *a, int argc,
                        char **argv, char **placedp)
{
    int io[3] = {-1, -1, -1}, rc, status = 0;
    char **cmd = NULL;
    dc_error_t err;

    if ((rc = worker_prepare (cli, argc, argv, a, &cmd, placedp)) != EXIT_OK ||
        !cmd)
        return rc;
    if (!a->exec && getenv (DC_IO_ENV) && io_connect (io) < 0)
        return EXIT_LAUNCH;
    /* the control channel: stdin, or the ctl connection to dcrun; over
     * ssh the session's stdout hangs up when the head closes the channel
     * (what it does to a rank whose control channel is stuck) */
    bool ctl_stdin = io[0] < 0 && a->control == 1;
    struct dc_agent_opts o = {
        .cmd = cmd,
        .cpus = a->cpus,
        .exec = a->exec,
        .stdin_data = a->stdin_data,
        .ctl_fd = io[0] >= 0  ? io[0]
                  : ctl_stdin ? 0
                              : -1,
        .watch_fd = a->exec || ctl_stdin ? 1 : -1,
        .out_fd = io[1],
        .err_fd = io[2],
        .status_fd = io[0],
        .kill_grace = KILL_GRACE_S,
    };
    rc = dc_agent_run (&o, &status, &err);
    if (rc == DC_AGENT_NOEXEC)
        return cli_error (127, "worker: %s", err.text);
    if (rc != DC_AGENT_OK)
        return cli_error (EXIT_LAUNCH, "worker: %s", err.text);
    return worker_finish (status);
}

static int worker_run (struct cli *cli, int argc, char **argv)
{
    struct worker_args a = {.control = -1, .env_stdin = -1, .port_check = -1};
    char *placed = NULL; /* --place: the CPUs to bind to */
    int rc;

    cli_log_init (cli); /* lib's errors; its notes at -v only */
    if (!cli->verbose)
        dc_log_set_level (DC_LOG_ERR);
    rc = worker_main (cli, &a, argc, argv, &placed);
    free (placed);
    free (a.env);
    return rc;
}

const struct cli_command cmd_worker = {
    .name = "worker",
    .summary = "internal: what launchers start on each host",
    .usage = "[--exec | --stdin] [--cpus LIST] [-e NAME=VALUE]... "
             "[--env-stdin BYTES] [--control stdin|none] [--wdir DIR] "
             "[--place ...] -- CMD [ARGS...] | --port-check PORT",
    .opts = worker_opts,
    .run = worker_run,
};
