/* cmd_exec.c - dcrun exec: run CMD once per rank, tagged output, exit status
 *
 * One event loop: poll() over a self-pipe of signals (SIGINT, SIGTERM,
 * SIGHUP, SIGCHLD) and the launcher's descriptors.  Output is cut into lines per rank and
 * stream and each line is written with one write(2), prefixed "RANK@HOST: ",
 * so no two ranks ever share a line.  A line longer than LINE_MAX bytes is
 * written in pieces of LINE_MAX.
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
#include "lib/hosts.h"
#include "lib/launch.h"
#include "lib/launch_io.h"
#include "lib/log.h"
#include "lib/plan.h"
#include "lib/topo.h"
#include "gpu/probe.h"

#define LINE_MAX_BYTES 16384
#define MAX_POLLFDS 4096

enum {
    OPT_NO_TAG = 0x100,
    OPT_OUTPUT_DIR,
    OPT_KILL_ON_BAD_EXIT,
    OPT_NO_KILL_ON_BAD_EXIT,
    OPT_TIMEOUT,
    OPT_KILL_GRACE,
    OPT_BIND,
    OPT_MAP_BY,
    OPT_OVERSUBSCRIBE,
    OPT_FANOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_KNOWN_HOSTS,
    OPT_SSH_CONFIG,
    OPT_SSH_ACCEPT_NEW,
    OPT_SSH_PORT,
    OPT_REMOTE_DCRUN,
    OPT_MPIRUN_ARGS,
    OPT_SRUN_MPI,
    OPT_SRUN_ARGS,
};

static const struct cli_opt exec_opts[] = {
    {"export", required_argument, 'x', "VAR[=VALUE]",
     "pass VAR (from here, or set to VALUE) to every rank"},
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
    {"kill-grace", required_argument, OPT_KILL_GRACE, "S",
     "seconds from SIGTERM to SIGKILL (default 3)"},
    {"bind", required_argument, OPT_BIND, "auto|none",
     "bind ranks to their CPU set when known (auto) or not (none)"},
    {"map-by", required_argument, OPT_MAP_BY, "slot|node",
     "fill each host's slots first (slot) or go round-robin (node)"},
    {"oversubscribe", no_argument, OPT_OVERSUBSCRIBE, NULL,
     "allow more ranks than slots"},
    {"fanout", required_argument, OPT_FANOUT, "N",
     "ssh: hosts connecting at once (default 64)"},
    {"connect-timeout", required_argument, OPT_CONNECT_TIMEOUT, "S",
     "ssh: bound on connect + login per host (default 10)"},
    {"ssh-key", required_argument, 'i', "FILE", "ssh: private key to try"},
    {"known-hosts", required_argument, OPT_KNOWN_HOSTS, "FILE",
     "ssh: host keys (default ~/.ssh/known_hosts)"},
    {"ssh-config", required_argument, OPT_SSH_CONFIG, "FILE",
     "ssh: client config (default ~/.ssh/config)"},
    {"ssh-accept-new", no_argument, OPT_SSH_ACCEPT_NEW, NULL,
     "ssh: add unknown host keys (a changed key is refused)"},
    {"ssh-port", required_argument, OPT_SSH_PORT, "PORT",
     "ssh: port when the host list gives none (default 22)"},
    {"remote-dcrun", required_argument, OPT_REMOTE_DCRUN, "PATH",
     "dcrun on the remote hosts (default: this binary's path)"},
    {"mpirun-args", required_argument, OPT_MPIRUN_ARGS, "ARGS",
     "mpi: extra words for mpirun"},
    {"srun-mpi", required_argument, OPT_SRUN_MPI, "TYPE",
     "slurm: srun --mpi=TYPE for MPI programs (pmix)"},
    {"srun-args", required_argument, OPT_SRUN_ARGS, "ARGS",
     "slurm: extra words for srun"},
    {0},
};

struct exec_args {
    struct dc_plan_opts plan;
    struct dc_launch_opts lo;
    char **exports; /* -x, in order */
    int nexports;
    bool no_tag;
    const char *output_dir;
    bool kill_on_bad_exit;
    double timeout;
    double kill_grace;
    bool bind;
};

static int add_export (struct exec_args *a, const char *arg)
{
    char **v = realloc (a->exports, (size_t)(a->nexports + 1) * sizeof (*v));
    if (!v)
        return -1;
    a->exports = v;
    a->exports[a->nexports++] = (char *)arg;
    return 0;
}

static int exec_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct exec_args *a = ctx;
    long v;

    switch (key) {
    case 'x':
        if (!*arg || *arg == '=')
            return cli_usage_error (cli, "-x '%s': expected VAR or "
                                         "VAR=VALUE", arg);
        if (add_export (a, arg) < 0)
            return cli_usage_error (cli, "out of memory");
        return 0;
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
    case OPT_KILL_GRACE:
        return cli_parse_double (cli, "--kill-grace", arg, 0, 3600,
                                 &a->kill_grace);
    case OPT_BIND:
        if (!strcmp (arg, "none"))
            a->bind = false;
        else if (!strcmp (arg, "auto") || !strcmp (arg, "core"))
            a->bind = true;
        else
            return cli_usage_error (cli, "--bind '%s': expected auto or none",
                                    arg);
        return 0;
    case OPT_MAP_BY:
        return cli_parse_map_by (cli, arg, &a->plan.map_by);
    case OPT_OVERSUBSCRIBE:
        a->plan.oversubscribe = true;
        return 0;
    case OPT_FANOUT:
        if (cli_parse_long (cli, "--fanout", arg, 1, 4096, &v) < 0)
            return -1;
        a->lo.fanout = (int)v;
        return 0;
    case OPT_CONNECT_TIMEOUT:
        return cli_parse_double (cli, "--connect-timeout", arg, 0.01, 3600,
                                 &a->lo.connect_timeout);
    case 'i':
        a->lo.ssh_key = arg;
        return 0;
    case OPT_KNOWN_HOSTS:
        a->lo.known_hosts = arg;
        return 0;
    case OPT_SSH_CONFIG:
        a->lo.ssh_config = arg;
        return 0;
    case OPT_SSH_ACCEPT_NEW:
        a->lo.accept_new = true;
        return 0;
    case OPT_SSH_PORT:
        if (cli_parse_long (cli, "--ssh-port", arg, 1, 65535, &v) < 0)
            return -1;
        a->lo.ssh_port = (int)v;
        return 0;
    case OPT_REMOTE_DCRUN:
        a->lo.remote_dcrun = arg;
        return 0;
    case OPT_MPIRUN_ARGS:
        a->lo.mpirun_args = arg;
        return 0;
    case OPT_SRUN_MPI:
        a->lo.srun_mpi = arg;
        return 0;
    case OPT_SRUN_ARGS:
        a->lo.srun_args = arg;
        return 0;
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
    int first_fail;    /* rank, -1 */
    int nfailed;
    bool terminating;
    double kill_at;    /* when to send SIGKILL, 0 none */
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
    if (rank < 0 || rank >= j->size || (s != DC_LAUNCH_STDOUT
                                        && s != DC_LAUNCH_STDERR))
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

static char *fmt (const char *f, ...) __attribute__ ((format (printf, 1, 2)));
static char *fmt (const char *f, ...)
{
    va_list ap;
    char *s = NULL;

    va_start (ap, f);
    if (vasprintf (&s, f, ap) < 0)
        s = NULL;
    va_end (ap);
    return s;
}

static void free_strv (char **v)
{
    for (int i = 0; v && v[i]; i++)
        free (v[i]);
    free (v);
}

static char **rank_env (const struct exec_args *a, const struct dc_plan *plan,
                        int r, const char *master, int port)
{
    const struct dc_rank *rk = &plan->ranks[r];
    const char *host = dc_plan_host (plan, r);
    char **env = calloc ((size_t)a->nexports + 16, sizeof (char *));
    int k = 0;

    if (!env)
        return NULL;
    env[k++] = fmt ("DCRUN_RANK=%d", rk->rank);
    env[k++] = fmt ("DCRUN_SIZE=%d", plan->size);
    env[k++] = fmt ("DCRUN_LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("DCRUN_LOCAL_SIZE=%d", rk->local_size);
    env[k++] = fmt ("DCRUN_NODE_RANK=%d", rk->node_rank);
    env[k++] = fmt ("DCRUN_HOST=%s", host);
    env[k++] = fmt ("RANK=%d", rk->rank);
    env[k++] = fmt ("WORLD_SIZE=%d", plan->size);
    env[k++] = fmt ("LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("LOCAL_WORLD_SIZE=%d", rk->local_size);
    env[k++] = fmt ("MASTER_ADDR=%s", master);
    env[k++] = fmt ("MASTER_PORT=%d", port);
    if (rk->ngpus > 0) {
        char gpus[4096];
        size_t n = 0;
        gpus[0] = '\0';
        for (int i = 0; i < rk->ngpus && n < sizeof (gpus) - 16; i++)
            n += (size_t)snprintf (gpus + n, sizeof (gpus) - n, "%s%d",
                                   i ? "," : "", rk->gpus[i]);
        env[k++] = fmt ("CUDA_VISIBLE_DEVICES=%s", gpus);
    }
    for (int i = 0; i < a->nexports; i++) {
        const char *x = a->exports[i];
        if (strchr (x, '='))
            env[k++] = strdup (x);
        else if (getenv (x))
            env[k++] = fmt ("%s=%s", x, getenv (x));
    }
    for (int i = 0; i < k; i++)
        if (!env[i]) {
            free_strv (env);
            return NULL;
        }
    env[k] = NULL;
    return env;
}

static const char *signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}

/* Path of this binary, for --remote-dcrun's default (static buffer). */
static const char *self_path (void)
{
    static char buf[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", buf, sizeof (buf) - 1);
    if (n <= 0)
        return "dcrun";
    buf[n] = '\0';
    return buf;
}

static int open_output_files (struct job *j, const char *dir)
{
    if (mkdir (dir, 0777) < 0 && errno != EEXIST)
        return cli_error (-1, "exec: %s: %s", dir, strerror (errno));
    for (int r = 0; r < j->size; r++)
        for (int s = 1; s <= 2; s++) {
            char path[PATH_MAX];
            snprintf (path, sizeof (path), "%s/rank-%d.%s", dir, r,
                      s == 1 ? "out" : "err");
            j->io[r].file[s] =
                open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (j->io[r].file[s] < 0)
                return cli_error (-1, "exec: %s: %s", path, strerror (errno));
        }
    return 0;
}

static void dry_run (const char *lname, const struct dc_launch_rank *lr,
                     const struct dc_plan *plan, const struct exec_args *a)
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
        printf ("%-6d %-24s %-6d %-5d %-10s %s\n", r, dc_plan_host (plan, r),
                rk->local_rank, rk->node_rank, gpus,
                rk->cpus ? rk->cpus : "-");
    }
    if (!strcmp (lname, "mpi") || !strcmp (lname, "slurm")) {
        /* one driver command line for every rank */
        struct dc_launch *l;
        char **argv = NULL;
        dc_error_t err;
        if (!(l = dc_launch_create (lname, &a->lo, &err))
            || dc_launch_driver_argv (l, lr, plan->size, &argv, &err) < 0) {
            printf ("(cannot make the %s command line: %s)\n", lname,
                    err.text);
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
    for (int r = 0; r < plan->size; r++) {
        char *line;
        if (!strcmp (lname, "local")) {
            char *cmd = dc_launch_shell_join (lr[r].argv);
            char *env = dc_launch_shell_join (lr[r].env);
            printf ("rank %d: env %s %s\n", r, env ? env : "",
                    cmd ? cmd : "");
            free (cmd);
            free (env);
        } else {
            line = dc_launch_worker_cmdline (a->lo.remote_dcrun, &lr[r]);
            printf ("rank %d on %s: %s\n", r, lr[r].host, line ? line : "");
            free (line);
        }
    }
}

static int check_local_hosts (const struct dc_plan *plan)
{
    for (int r = 0; r < plan->size; r++)
        if (!dc_launch_is_local_host (dc_plan_host (plan, r))) {
            cli_error (EXIT_USAGE,
                       "exec: host '%s' is not this host: the local launcher "
                       "runs every rank here\nhint: use -L ssh (or -L auto)",
                       dc_plan_host (plan, r));
            return -1;
        }
    return 0;
}

static int run_job (struct cli *cli, struct exec_args *a, struct dc_plan *plan,
                    char **cmd)
{
    struct job j = {.a = a, .plan = plan, .size = plan->size,
                    .first_fail = -1};
    struct dc_launch_rank *lr = NULL;
    struct dc_launch *l = NULL;
    struct pollfd *fds = NULL;
    const char *lname = cli->launcher;
    int sfd = -1, exitcode = EXIT_FAIL, interrupted = 0;
    bool timed_out = false;
    dc_error_t err;

    if (!lname || !strcmp (lname, "auto")) {
        const char **names = calloc ((size_t)plan->size + 1, sizeof (char *));
        if (!names)
            return cli_error (EXIT_FAIL, "exec: out of memory");
        for (int r = 0; r < plan->size; r++)
            names[r] = dc_plan_host (plan, r);
        lname = dc_launch_auto (names, (size_t)plan->size);
        free (names);
    }
    if (!dc_launch_find (lname, &err))
        return cli_usage_error (cli, "%s", err.text), EXIT_USAGE;
    if (!strcmp (lname, "local") && check_local_hosts (plan) < 0)
        return EXIT_USAGE;

    if (!(j.io = calloc ((size_t)plan->size, sizeof (*j.io)))
        || !(lr = calloc ((size_t)plan->size, sizeof (*lr)))) {
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
    int port = dc_launch_free_port ();
    const char *master = plan->size > 0 ? dc_plan_host (plan, 0) : "localhost";
    for (int r = 0; r < plan->size; r++) {
        const struct dc_host *h = &plan->hosts->v[plan->ranks[r].host];
        lr[r].rank = r;
        lr[r].host = h->name;
        lr[r].user = h->user;
        lr[r].port = h->port;
        lr[r].cpus = a->bind ? plan->ranks[r].cpus : NULL;
        lr[r].argv = cmd;
        if (!(lr[r].env = rank_env (a, plan, r, master, port))) {
            exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
            goto out;
        }
    }
    if (!a->lo.remote_dcrun)
        a->lo.remote_dcrun = self_path ();
    if (cli->dry_run) {
        dry_run (lname, lr, plan, a);
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
        exitcode = cli_error (EXIT_FAIL, "exec: signal pipe: %s",
                              strerror (errno));
        goto out;
    }
    a->lo.on_output = on_output;
    a->lo.on_exit = on_exit_cb;
    a->lo.arg = &j;
    a->lo.nranks_total = plan->size;
    a->lo.cancel_fd = sfd;
    a->lo.stdin_null = true;
    if (!(l = dc_launch_create (lname, &a->lo, &err))) {
        exitcode = cli_error (EXIT_LAUNCH, "exec: %s", err.text);
        goto out;
    }
    double start = now_s ();
    if (dc_launch_spawn (l, lr, plan->size, &err) < 0) {
        int s = errno == EINTR ? dc_sigpipe_read () : 0;
        if (s > 0 && s != SIGCHLD)
            exitcode = cli_error (128 + s, "exec: interrupted by SIG%s "
                                           "while connecting: nothing runs",
                                  signame (s));
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
            exitcode = cli_error (EXIT_FAIL, "exec: poll: %s",
                                  strerror (errno));
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
                              signame (interrupted));
    } else if (timed_out) {
        exitcode = cli_error (EXIT_FAIL, "exec: timed out after %g s",
                              a->timeout);
    } else if (j.first_fail >= 0) {
        int r = j.first_fail;
        const struct dc_launch_status *st = &j.io[r].st;
        const char *host = dc_plan_host (plan, r);
        if (st->failed_start)
            exitcode = cli_error (EXIT_FAIL, "exec: rank %d on %s: %s", r,
                                  host, st->reason);
        else if (st->signaled)
            exitcode = cli_error (EXIT_FAIL,
                                  "exec: rank %d on %s killed by signal %d "
                                  "(SIG%s)",
                                  r, host, st->sig, signame (st->sig));
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
        free_strv ((char **)lr[r].env);
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
static int exec_as_step_task (const struct exec_args *a, char **cmd)
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
        unsigned long job = strtoul (getenv ("SLURM_JOB_ID") ? getenv (
                                         "SLURM_JOB_ID") : "0", NULL, 10);
        unsigned long step = strtoul (getenv ("SLURM_STEP_ID"), NULL, 10);
        char port[16];
        snprintf (port, sizeof (port), "%lu", 20000 + (job * 31 + step) % 20000);
        setenv ("MASTER_PORT", port, 1);
    }
    av[k++] = (char *)self_path ();
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
    return cli_error (EXIT_LAUNCH, "exec: %s: %s", self_path (), strerror (e));
}

/* GPU-aware placement of the ranks on hosts that are this host: probed
 * in-process (hwloc), so CUDA_VISIBLE_DEVICES and the CPU binding follow
 * the topology.  A probe that fails leaves the plan as it is. */
static void place_local (struct dc_plan *plan)
{
    struct dc_topo *topo = NULL;
    dc_error_t err;

    for (size_t h = 0; h < plan->hosts->count; h++) {
        if (!dc_launch_is_local_host (plan->hosts->v[h].name))
            continue;
        if (!topo && !(topo = dc_probe_host (NULL, &err))) {
            dc_info ("exec: no placement: %s", err.text);
            return;
        }
        if (dc_plan_place (plan, h, topo, &err) < 0)
            dc_info ("exec: %s: no placement: %s", plan->hosts->v[h].name,
                     err.text);
    }
    dc_topo_destroy (topo);
}

static int exec_run (struct cli *cli, int argc, char **argv)
{
    struct exec_args a = {
        .kill_on_bad_exit = true,
        .kill_grace = 3,
        .bind = true,
        .lo = {.cancel_fd = -1},
    };
    struct dc_hosts *hosts = NULL;
    struct dc_plan *plan = NULL;
    int optindex, rc, exitcode = EXIT_OK;

    if ((rc = cli_parse (cli, &cmd_exec, argc, argv, exec_opt, &a,
                         &optindex))
        != 0) {
        free (a.exports);
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (optindex >= argc) {
        free (a.exports);
        cli_usage_error (cli, "no command given: dcrun exec [OPTIONS] -- CMD "
                              "ARGS...");
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if (getenv ("SLURM_PROCID") && getenv ("SLURM_STEP_ID")
        && (!cli->launcher || !strcmp (cli->launcher, "auto")
            || !strcmp (cli->launcher, "slurm"))
        && !cli->hostfile && !cli->hosts && !cli->dry_run) {
        exitcode = exec_as_step_task (&a, argv + optindex);
        goto out;
    }
    if (!(hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        goto out;
    if (!(plan = cli_make_plan (cli, hosts, &a.plan, &exitcode)))
        goto out;
    place_local (plan);
    exitcode = run_job (cli, &a, plan, argv + optindex);
out:
    dc_plan_destroy (plan);
    dc_hosts_destroy (hosts);
    free (a.exports);
    return exitcode;
}

const struct cli_command cmd_exec = {
    .name = "exec",
    .summary = "run CMD once per rank with rank environment, tagged output "
               "and exit status",
    .usage = "[-f FILE | -H LIST] [-n N] [-L LAUNCHER] [OPTIONS] -- CMD "
             "[ARGS...]",
    .opts = exec_opts,
    .run = exec_run,
};
