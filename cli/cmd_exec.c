/* cmd_exec.c - dcrun exec: run CMD once per rank, tagged output, exit status
 *
 * One event loop: poll() over a self-pipe of signals (SIGINT, SIGTERM,
 * SIGHUP, SIGCHLD) and the launcher's descriptors.  Output is cut into lines
 * per rank and stream and each line is written with one write(2), prefixed
 * "RANK@HOST: ", so no two ranks ever share a line.  A line longer than
 * LINE_MAX bytes is written in pieces of LINE_MAX.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "job.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/log.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/topo.h"
#include "gpu/probe.h"

#define LINE_MAX_BYTES 16384
#define MAX_POLLFDS 4096

enum {
    OPT_NO_TAG = 0x100,
    OPT_OUTPUT_DIR,
    OPT_KILL_ON_BAD_EXIT,
    OPT_NO_KILL_ON_BAD_EXIT,
    OPT_TIMEOUT,
};

/* exec's own options; the launch options (placement, binding, -x, ssh,
 * mpirun and srun settings) are the shared ones of cli.c */
static const struct cli_opt exec_opts[] = {
    {"no-tag", no_argument, OPT_NO_TAG, NULL,
     "do not prefix output lines with RANK@HOST"},
    {"output-dir", required_argument, OPT_OUTPUT_DIR, "DIR",
     "also write DIR/rank-N.out and DIR/rank-N.err"},
    {"kill-on-bad-exit", no_argument, OPT_KILL_ON_BAD_EXIT, NULL,
     "stop every rank when one fails (default)"},
    {"no-kill-on-bad-exit", no_argument, OPT_NO_KILL_ON_BAD_EXIT, NULL,
     "let the other ranks run when one fails"},
    {"timeout", required_argument, OPT_TIMEOUT, "S",
     "stop the job after S seconds (exit 1)"},
    {0},
};

struct exec_args {
    bool no_tag;
    const char *output_dir;
    bool kill_on_bad_exit;
    double timeout;
    double kill_grace;
};

static int exec_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct exec_args *a = ctx;

    switch (key) {
    case OPT_NO_TAG:
        a->no_tag = true;
        return 0;
    case OPT_OUTPUT_DIR:
        a->output_dir = arg;
        return 0;
    case OPT_KILL_ON_BAD_EXIT:
        a->kill_on_bad_exit = true;
        return 0;
    case OPT_NO_KILL_ON_BAD_EXIT:
        a->kill_on_bad_exit = false;
        return 0;
    case OPT_TIMEOUT:
        return cli_parse_double (cli, "--timeout", arg, 0.001, 1e9,
                                 &a->timeout);
    }
    return -1;
}

/* ---- output: whole lines, tagged ---- */

struct linebuf {
    char *buf;
    size_t len;
};

struct rankio {
    char tag[300]; /* "RANK@HOST: " */
    size_t taglen;
    struct linebuf lb[3]; /* [1] stdout, [2] stderr */
    int file[3];          /* --output-dir files, -1 when none */
    bool done;
    struct dc_launch_status st;
};

struct job {
    struct exec_args *a;
    const struct dc_plan *plan;
    struct rankio *io;
    int size;
    int first_fail; /* rank, -1 */
    int nfailed;
    bool terminating;
    double kill_at; /* when to send SIGKILL, 0 none */
    bool killed;
};

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all (int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write (fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                poll (&pf, 1, 100);
                continue;
            }
            return; /* EPIPE and friends: the reader went away */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Write tag + line + '\n' with one write. */
static void emit_line (struct job *j, int rank, int stream, const char *line,
                       size_t len)
{
    struct rankio *io = &j->io[rank];
    char stackbuf[LINE_MAX_BYTES + 320];
    size_t n = 0;

    if (!j->a->no_tag) {
        memcpy (stackbuf, io->tag, io->taglen);
        n = io->taglen;
    }
    memcpy (stackbuf + n, line, len);
    n += len;
    stackbuf[n++] = '\n';
    write_all (stream == DC_LAUNCH_STDERR ? 2 : 1, stackbuf, n);
}

static void on_output (int rank, enum dc_launch_stream s, const char *data,
                       size_t len, void *arg)
{
    struct job *j = arg;

    if (rank == -1) {
        /* the launcher's driver itself (mpirun, srun) speaking */
        write_all (2, data, len);
        return;
    }
    if (rank < 0 || rank >= j->size ||
        (s != DC_LAUNCH_STDOUT && s != DC_LAUNCH_STDERR))
        return;
    struct rankio *io = &j->io[rank];
    struct linebuf *lb = &io->lb[s];
    if (io->file[s] >= 0)
        write_all (io->file[s], data, len);
    while (len > 0) {
        const char *nl = memchr (data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (lb->len + take >= LINE_MAX_BYTES) {
            /* too long for one line: write what fits as a piece */
            size_t room = LINE_MAX_BYTES - lb->len;
            memcpy (lb->buf + lb->len, data, room);
            emit_line (j, rank, s, lb->buf, LINE_MAX_BYTES);
            lb->len = 0;
            data += room;
            len -= room;
            continue;
        }
        memcpy (lb->buf + lb->len, data, take);
        lb->len += take;
        data += take;
        len -= take;
        if (nl) {
            emit_line (j, rank, s, lb->buf, lb->len);
            lb->len = 0;
            data++;
            len--;
        }
    }
}

static void terminate (struct dc_launch *l, struct job *j, int sig)
{
    if (!j->terminating) {
        j->terminating = true;
        dc_launch_signal (l, -1, sig);
        j->kill_at = now_s () + j->a->kill_grace;
    }
}

static void on_exit_cb (const struct dc_launch_status *st, void *arg)
{
    struct job *j = arg;

    if (st->rank < 0 || st->rank >= j->size)
        return;
    struct rankio *io = &j->io[st->rank];
    for (int s = 1; s <= 2; s++)
        if (io->lb[s].len > 0) {
            emit_line (j, st->rank, s, io->lb[s].buf, io->lb[s].len);
            io->lb[s].len = 0;
        }
    io->done = true;
    io->st = *st;
    if (st->failed_start || st->signaled || st->code != 0) {
        if (j->first_fail < 0)
            j->first_fail = st->rank;
        j->nfailed++;
    }
}

/* ---- rank environment ---- */

static int open_output_files (struct job *j, const char *dir)
{
    if (mkdir (dir, 0777) < 0 && errno != EEXIST)
        return cli_error (-1, "exec: %s: %s", dir, strerror (errno));
    for (int r = 0; r < j->size; r++)
        for (int s = 1; s <= 2; s++) {
            char path[PATH_MAX];
            snprintf (path, sizeof (path), "%s/rank-%d.%s", dir, r,
                      s == 1 ? "out" : "err");
            /* O_NOFOLLOW: never created through a link */
            j->io[r].file[s] = open (
                path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0666);
            if (j->io[r].file[s] < 0)
                return cli_error (-1, "exec: %s: %s", path, strerror (errno));
        }
    return 0;
}

static void dry_run (const char *lname, const struct dc_launch_rank *lr,
                     const struct dc_plan *plan,
                     const struct dc_launch_opts *lo)
{
    printf ("launcher: %s\n", lname);
    printf ("%-6s %-24s %-6s %-5s %-10s %s\n", "RANK", "HOST", "LOCAL", "NODE",
            "GPUS", "CPUS");
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        char gpus[64] = "-";
        size_t n = 0;
        for (int i = 0; i < rk->ngpus && n < sizeof (gpus) - 12; i++)
            n += (size_t)snprintf (gpus + n, sizeof (gpus) - n, "%s%d",
                                   i ? "," : "", rk->gpus[i]);
        /* ranks placed by their host's agent (dcrun worker --place) */
        bool on_host = lr[r].worker_args != NULL;
        if (on_host && rk->ngpus == 0)
            snprintf (gpus, sizeof (gpus), "on-host");
        printf ("%-6d %-24s %-6d %-5d %-10s %s\n", r, dc_plan_host (plan, r),
                rk->local_rank, rk->node_rank, gpus,
                rk->cpus  ? rk->cpus
                : on_host ? "on-host"
                          : "-");
    }
    if (!strcmp (lname, "mpi") || !strcmp (lname, "slurm")) {
        /* one driver command line for every rank */
        struct dc_launch *l;
        char **argv = NULL;
        dc_error_t err;
        if (!(l = dc_launch_create (lname, lo, &err)) ||
            dc_launch_driver_argv (l, lr, plan->size, &argv, &err) < 0) {
            printf ("(cannot make the %s command line: %s)\n", lname, err.text);
        } else {
            char *line = dc_launch_shell_join (argv);
            printf ("%s\n", line ? line : "");
            free (line);
            for (int i = 0; argv[i]; i++)
                free (argv[i]);
            free (argv);
        }
        dc_launch_destroy (l);
        return;
    }
    for (int r = 0; r < plan->size; r++)
        if (lr[r].worker_args) {
            printf ("on-host: GPUs and CPUs of remote ranks are decided on "
                    "their host by its dcrun worker (--place)\n");
            break;
        }
    for (int r = 0; r < plan->size; r++) {
        char *line;
        if (!strcmp (lname, "local")) {
            char *cmd = dc_launch_shell_join (lr[r].argv);
            char *env = dc_launch_shell_join (lr[r].env);
            printf ("rank %d: env %s %s\n", r, env ? env : "", cmd ? cmd : "");
            free (cmd);
            free (env);
        } else {
            line = dc_launch_worker_cmdline (lo->remote_dcrun, &lr[r]);
            printf ("rank %d on %s: %s\n", r, lr[r].host, line ? line : "");
            free (line);
        }
    }
}

static int run_job (struct cli *cli, struct exec_args *a,
                    const struct cli_job *job, char **cmd)
{
    const struct dc_plan *plan = job->plan;
    struct job j = {.a = a, .plan = plan, .size = plan->size, .first_fail = -1};
    struct dc_launch_rank *lr = NULL;
    struct dc_launch *l = NULL;
    struct pollfd *fds = NULL;
    const char *lname = job->launcher;
    struct dc_launch_opts lo = cli->launch.lo;
    int sfd = -1, exitcode = EXIT_FAIL, interrupted = 0;
    bool timed_out = false;
    dc_error_t err;

    if (!(j.io = calloc ((size_t)plan->size, sizeof (*j.io))) ||
        !(lr = calloc ((size_t)plan->size, sizeof (*lr)))) {
        exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
        goto out;
    }
    for (int r = 0; r < plan->size; r++) {
        j.io[r].file[1] = j.io[r].file[2] = -1;
        snprintf (j.io[r].tag, sizeof (j.io[r].tag), "%d@%s: ", r,
                  dc_plan_host (plan, r));
        j.io[r].taglen = strlen (j.io[r].tag);
        for (int s = 1; s <= 2; s++)
            if (!(j.io[r].lb[s].buf = malloc (LINE_MAX_BYTES + 1))) {
                exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
                goto out;
            }
    }
    for (int r = 0; r < plan->size; r++) {
        const struct dc_host *h = &plan->hosts->v[plan->ranks[r].host];
        lr[r].rank = r;
        lr[r].host = h->name;
        lr[r].user = h->user;
        lr[r].port = h->port;
        lr[r].cpus = cli->launch.no_bind ? NULL : plan->ranks[r].cpus;
        lr[r].worker_args = cli_job_worker_args (job, r);
        lr[r].argv = cmd;
        if (!(lr[r].env = cli_job_rank_env (cli, job, r))) {
            exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
            goto out;
        }
    }
    if (!lo.remote_dcrun)
        lo.remote_dcrun = cli_self_path ();
    if (cli->dry_run) {
        dry_run (lname, lr, plan, &lo);
        exitcode = EXIT_OK;
        goto out;
    }
    if (a->output_dir && open_output_files (&j, a->output_dir) < 0) {
        exitcode = EXIT_INPUT;
        goto out;
    }

    /* signals arrive on a pipe from here on; children reset them */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0};
    signal (SIGPIPE, SIG_IGN);
    if ((sfd = dc_sigpipe_create (sigs)) < 0) {
        exitcode =
            cli_error (EXIT_FAIL, "exec: signal pipe: %s", strerror (errno));
        goto out;
    }
    lo.on_output = on_output;
    lo.on_exit = on_exit_cb;
    lo.arg = &j;
    lo.nranks_total = plan->size;
    lo.cancel_fd = sfd;
    lo.stdin_null = true;
    if (!(l = dc_launch_create (lname, &lo, &err))) {
        exitcode = cli_error (EXIT_LAUNCH, "exec: %s", err.text);
        goto out;
    }
    double start = now_s ();
    if (dc_launch_spawn (l, lr, plan->size, &err) < 0) {
        int s = errno == EINTR ? dc_sigpipe_read () : 0;
        if (s > 0 && s != SIGCHLD)
            exitcode = cli_error (128 + s,
                                  "exec: interrupted by SIG%s "
                                  "while connecting: nothing runs",
                                  cli_signame (s));
        else
            exitcode = cli_error (EXIT_LAUNCH, "%s", err.text);
        goto out;
    }
    if (!(fds = calloc (MAX_POLLFDS, sizeof (*fds)))) {
        exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
        goto out;
    }
    int running = plan->size;
    while (running > 0) {
        int timeout = -1;
        double t = now_s ();
        if (a->timeout > 0 && !j.terminating) {
            double left = start + a->timeout - t;
            if (left <= 0) {
                timed_out = true;
                terminate (l, &j, SIGTERM);
                continue;
            }
            timeout = (int)ceil (left * 1000);
        }
        if (j.terminating && !j.killed) {
            double left = j.kill_at - t;
            if (left <= 0) {
                dc_launch_signal (l, -1, SIGKILL);
                j.killed = true;
                continue;
            }
            int ms = (int)ceil (left * 1000);
            if (timeout < 0 || ms < timeout)
                timeout = ms;
        }
        fds[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        int n = dc_launch_pollfds (l, fds + 1, MAX_POLLFDS - 1, &timeout);
        if (poll (fds, (nfds_t)n + 1, timeout) < 0 && errno != EINTR) {
            exitcode =
                cli_error (EXIT_FAIL, "exec: poll: %s", strerror (errno));
            goto out;
        }
        if (fds[0].revents & POLLIN) {
            int s;
            while ((s = dc_sigpipe_read ()) > 0) {
                if (s == SIGCHLD)
                    continue;
                if (interrupted) {
                    /* a second interrupt: no more grace */
                    dc_launch_signal (l, -1, SIGKILL);
                    j.killed = true;
                    continue;
                }
                interrupted = s;
                terminate (l, &j, SIGTERM);
            }
        }
        running = dc_launch_progress (l, fds + 1, n);
        if (j.first_fail >= 0 && a->kill_on_bad_exit && !j.terminating)
            terminate (l, &j, SIGTERM);
    }
    if (interrupted) {
        exitcode = cli_error (128 + interrupted,
                              "exec: interrupted by SIG%s: every rank stopped",
                              cli_signame (interrupted));
    } else if (timed_out) {
        exitcode =
            cli_error (EXIT_FAIL, "exec: timed out after %g s", a->timeout);
    } else if (j.first_fail >= 0) {
        int r = j.first_fail;
        const struct dc_launch_status *st = &j.io[r].st;
        const char *host = dc_plan_host (plan, r);
        if (st->failed_start)
            exitcode = cli_error (EXIT_FAIL, "exec: rank %d on %s: %s", r, host,
                                  st->reason);
        else if (st->signaled)
            exitcode = cli_error (EXIT_FAIL,
                                  "exec: rank %d on %s killed by signal %d "
                                  "(SIG%s)",
                                  r, host, st->sig, cli_signame (st->sig));
        else
            exitcode = cli_error (EXIT_FAIL,
                                  "exec: rank %d on %s exited with status %d",
                                  r, host, st->code);
    } else
        exitcode = EXIT_OK;
out:
    dc_launch_destroy (l);
    if (sfd >= 0)
        dc_sigpipe_destroy ();
    free (fds);
    for (int r = 0; lr && r < plan->size; r++)
        cli_strv_free ((char **)lr[r].env);
    free (lr);
    for (int r = 0; j.io && r < plan->size; r++)
        for (int s = 1; s <= 2; s++) {
            free (j.io[r].lb[s].buf);
            if (j.io[r].file[s] >= 0)
                close (j.io[r].file[s]);
        }
    free (j.io);
    return exitcode;
}

/* dcrun exec started by srun itself (a job step's task): be that one
 * rank.  The worker takes the rank environment from SLURM_*; MASTER_ADDR
 * is the step's first node and MASTER_PORT comes from the job and step
 * ids, the same in every task without talking. */
static int exec_as_step_task (const struct cli_launch *a, char **cmd)
{
    int n = 0;
    for (int i = 0; cmd[i]; i++)
        n++;
    char **av = calloc ((size_t)(n + 2 * a->nexports + 8), sizeof (char *));
    int k = 0;

    if (!av)
        return cli_error (EXIT_FAIL, "exec: out of memory");
    const char *nl = getenv ("SLURM_STEP_NODELIST");
    if (!nl)
        nl = getenv ("SLURM_JOB_NODELIST");
    if (nl) {
        dc_error_t err;
        struct dc_hosts *h = dc_hosts_from_slurm (nl, NULL, &err);
        if (h && h->count > 0)
            setenv ("MASTER_ADDR", h->v[0].name, 0);
        dc_hosts_destroy (h);
    }
    if (!getenv ("MASTER_PORT")) {
        unsigned long job = strtoul (
            getenv ("SLURM_JOB_ID") ? getenv ("SLURM_JOB_ID") : "0", NULL, 10);
        unsigned long step = strtoul (getenv ("SLURM_STEP_ID"), NULL, 10);
        char port[16];
        snprintf (port, sizeof (port), "%lu",
                  20000 + (job * 31 + step) % 20000);
        setenv ("MASTER_PORT", port, 1);
    }
    av[k++] = (char *)cli_self_path ();
    av[k++] = "worker";
    av[k++] = "--control";
    av[k++] = "none";
    for (int i = 0; i < a->nexports; i++) {
        const char *x = a->exports[i];
        if (strchr (x, '=')) {
            av[k++] = "-e";
            av[k++] = (char *)x;
        }
    }
    av[k++] = "--";
    for (int i = 0; i < n; i++)
        av[k++] = cmd[i];
    av[k] = NULL;
    execv (av[0], av);
    int e = errno;
    free (av);
    return cli_error (EXIT_LAUNCH, "exec: %s: %s", cli_self_path (),
                      strerror (e));
}

static int exec_run (struct cli *cli, int argc, char **argv)
{
    struct exec_args a = {.kill_on_bad_exit = true};
    struct cli_job job = {0};
    int optindex, rc, exitcode = EXIT_OK;

    if ((rc = cli_parse (cli, &cmd_exec, argc, argv, exec_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex >= argc) {
        cli_usage_error (cli, "no command given: dcrun exec [OPTIONS] -- CMD "
                              "ARGS...");
        return EXIT_USAGE;
    }
    a.kill_grace = cli->launch.kill_grace > 0 ? cli->launch.kill_grace : 3;
    cli_log_init (cli);
    if (getenv ("SLURM_PROCID") && getenv ("SLURM_STEP_ID") &&
        (!cli->launcher || !strcmp (cli->launcher, "auto") ||
         !strcmp (cli->launcher, "slurm")) &&
        !cli->hostfile && !cli->hosts && !cli->dry_run)
        return exec_as_step_task (&cli->launch, argv + optindex);
    /* host list, rank map placed on this host's topology, launcher */
    if ((exitcode = cli_job_init (cli, &job)) != EXIT_OK)
        return exitcode;
    exitcode = run_job (cli, &a, &job, argv + optindex);
    cli_job_fini (&job);
    return exitcode;
}

const struct cli_command cmd_exec = {
    .name = "exec",
    .summary = "run CMD once per rank with rank environment, tagged output "
               "and exit status",
    .usage = "[-f FILE | -H LIST] [-n N] [-L LAUNCHER] [OPTIONS] -- CMD "
             "[ARGS...]",
    .opts = exec_opts,
    .launch_opts = true,
    .run = exec_run,
};
