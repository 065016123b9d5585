/* cmd_exec.c - dcrun exec: run CMD once per rank, tagged output, exit status
 *
 * One event loop: poll() over a self-pipe of signals (SIGINT, SIGTERM,
 * SIGHUP, SIGCHLD) and the launcher's descriptors.  Output is cut into lines
 * per rank and stream and each line is written with one write(2), prefixed
 * "RANK@HOST: ", so no two ranks ever share a line.  A line longer than
 * LINE_MAX bytes is written in pieces of LINE_MAX.  A last line without its
 * newline (a prompt) of a rank that reads this terminal is shown after
 * PARTIAL_MS; whoever writes next on that stream ends it with a newline
 * first, and the prompt's line comes again whole when it ends.
 *
 * stdin goes to rank 0 (--stdin rank0, the default), to every rank (all) or
 * nowhere (none): the local launcher forwards it on a pipe, the others'
 * ranks get it framed on their worker's control channel
 * (lib/launch/control.h: the ssh channel, or the ctl connection back from
 * mpi and slurm ranks).  The exit status is the first failing rank's
 * (128+N for a signal), or 1 with --exit-status any.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "job.h"
#include "lib/util/clock.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/rankenv.h"
#include "lib/hosts/sources.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/log.h"
#include "lib/formats/report.h"
#include "lib/formats/trace.h"
#include <cjson/cJSON.h>
#include "lib/hosts/plan.h"
#include "lib/hosts/topo.h"
#include "gpu/probe.h"

#define LINE_MAX_BYTES 16384
#define MAX_POLLFDS 4096
#define PARTIAL_MS 100
#define STDIN_CHUNK 65536

enum {
    OPT_NO_TAG = 0x100,
    OPT_OUTPUT_DIR,
    OPT_KILL_ON_BAD_EXIT,
    OPT_NO_KILL_ON_BAD_EXIT,
    OPT_TIMEOUT,
    OPT_TRACE, /* --trace, --report: see exec_record () */
    OPT_REPORT,
    OPT_STDIN,
    OPT_TIMESTAMP_OUTPUT,
    OPT_EXIT_STATUS,
    OPT_MAX_RESTARTS,
};

enum { STDIN_RANK0 = 0, STDIN_ALL, STDIN_NONE };

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
    {"trace", required_argument, OPT_TRACE, "FILE.json",
     "write a Chrome trace (Perfetto): each rank's run, failures marked"},
    {"report", required_argument, OPT_REPORT, "FILE.json",
     "write a report: per rank host, exit status or signal, start, end"},
    {"stdin", required_argument, OPT_STDIN, "rank0|all|none",
     "where this stdin goes (default rank0, as mpirun and srun)"},
    {"timestamp-output", no_argument, OPT_TIMESTAMP_OUTPUT, NULL,
     "prefix each output line with the time it arrived"},
    {"max-restarts", required_argument, OPT_MAX_RESTARTS, "N",
     "when a rank fails, stop the job and start every rank again, up to N "
     "times (torchrun's --max-restarts; TORCHELASTIC_RESTART_COUNT)"},
    {"exit-status", required_argument, OPT_EXIT_STATUS, "first|any",
     "exit with the first failing rank's status (first, default; 128+N for "
     "signal N) or 1 when any rank fails (any)"},
    {0},
};

struct exec_args {
    bool no_tag;
    const char *output_dir;
    bool kill_on_bad_exit;
    double timeout;
    double kill_grace;
    const char *trace, *report; /* --trace, --report files, or NULL */
    int stdin_to;
    bool timestamps;
    bool exit_any;
    long max_restarts;
    int interrupted; /* out: the signal that stopped the last run, 0 */
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
    case OPT_TRACE:
        a->trace = arg;
        return 0;
    case OPT_REPORT:
        a->report = arg;
        return 0;
    case OPT_STDIN:
        if (!strcmp (arg, "rank0") || !strcmp (arg, "0"))
            a->stdin_to = STDIN_RANK0;
        else if (!strcmp (arg, "all"))
            a->stdin_to = STDIN_ALL;
        else if (!strcmp (arg, "none"))
            a->stdin_to = STDIN_NONE;
        else
            return cli_usage_error (cli,
                                    "--stdin '%s': expected rank0, all or "
                                    "none",
                                    arg);
        return 0;
    case OPT_TIMESTAMP_OUTPUT:
        a->timestamps = true;
        return 0;
    case OPT_MAX_RESTARTS:
        return cli_parse_long (cli, "--max-restarts", arg, 0, 1000,
                               &a->max_restarts);
    case OPT_EXIT_STATUS:
        if (!strcmp (arg, "any"))
            a->exit_any = true;
        else if (!strcmp (arg, "first"))
            a->exit_any = false;
        else
            return cli_usage_error (cli,
                                    "--exit-status '%s': expected first or "
                                    "any",
                                    arg);
        return 0;
    }
    return -1;
}

/* ---- output: whole lines, tagged ---- */

struct linebuf {
    char *buf;
    size_t len;
    size_t shown;   /* bytes of a partial line already written */
    double partial; /* when the partial line last grew, 0: none */
};

struct rankio {
    char tag[300]; /* "RANK@HOST: " */
    size_t taglen;
    struct linebuf lb[3]; /* [1] stdout, [2] stderr */
    int file[3];          /* --output-dir files, -1 when none */
    bool done;
    struct dc_launch_status st;
    double end;     /* when it ended (now_s), for --trace/--report */
    double seconds; /* from the start to its end */
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
    int open[3]; /* rank with a partial line out on stdout/stderr, -1 */
    double start;
    struct dc_launch *l;
    struct dc_launch_rank *lr;
    struct pollfd *fds;
    int sfd;         /* the signal pipe, -1 */
    int interrupted; /* the signal that stopped the job, 0 */
    bool timed_out;
    bool ssh;            /* the ssh launcher */
    bool local;          /* the local launcher */
    const char *wdir;    /* where the ranks start, NULL: here */
    bool fwd_stdin;      /* this stdin goes to ranks */
    char *inbuf;         /* a chunk of it */
    size_t inlen, inoff; /* its bytes, the next one to write */
    int in_rank;         /* --stdin all: the rank being written to */
    bool in_eof;         /* nothing more from this stdin */
    int master_port;     /* MASTER_PORT the ranks got */
};

/* True when rank r gets this stdin (--stdin rank0: rank 0 only). */
static bool stdin_wanted (const struct job *j, int r)
{
    return j->a->stdin_to == STDIN_ALL ||
           (j->a->stdin_to == STDIN_RANK0 && r == 0);
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

static size_t stamp (char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime (CLOCK_REALTIME, &ts);
    localtime_r (&ts.tv_sec, &tm);
    size_t n = strftime (buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf (buf + n, cap - n, ".%03ld ",
                           (long)(ts.tv_nsec / 1000000));
    return n;
}

/* Write tag + line[from..len] (+ '\n' when nl) with one write; a partial
 * line of another rank still open on that stream is ended first. */
static void emit (struct job *j, int rank, int stream, const char *line,
                  size_t from, size_t len, bool nl)
{
    struct rankio *io = &j->io[rank];
    char stackbuf[LINE_MAX_BYTES + 400];
    int fd = stream == DC_LAUNCH_STDERR ? 2 : 1;
    size_t n = 0;

    if (j->open[fd] >= 0 && j->open[fd] != rank) {
        /* end the other rank's prompt; its line comes again whole */
        stackbuf[n++] = '\n';
        j->io[j->open[fd]].lb[stream].shown = 0;
    }
    if (j->open[fd] != rank) {
        if (j->a->timestamps)
            n += stamp (stackbuf + n, 64);
        if (!j->a->no_tag) {
            memcpy (stackbuf + n, io->tag, io->taglen);
            n += io->taglen;
        }
    }
    memcpy (stackbuf + n, line + from, len - from);
    n += len - from;
    if (nl)
        stackbuf[n++] = '\n';
    j->open[fd] = nl ? -1 : rank;
    write_all (fd, stackbuf, n);
}

/* A whole line: what was not shown yet of it, and its newline. */
static void emit_line (struct job *j, int rank, int stream, const char *line,
                       size_t len)
{
    struct linebuf *lb = &j->io[rank].lb[stream];
    size_t from = lb->shown <= len ? lb->shown : 0;

    emit (j, rank, stream, line, from, len, true);
    lb->shown = 0;
    lb->partial = 0;
}

/* Partial lines that waited PARTIAL_MS: show them; returns the ms until
 * the next one is due (-1 none).  Only prompts someone can answer: of the
 * ranks that get stdin (nranks of them), while a terminal's stdin is open. */
static int flush_partial (struct job *j, double t, int nranks)
{
    int next = -1;

    for (int r = 0; r < nranks && r < j->size; r++)
        for (int s = 1; s <= 2; s++) {
            struct linebuf *lb = &j->io[r].lb[s];
            if (lb->partial <= 0 || lb->len <= lb->shown)
                continue;
            double due = lb->partial + PARTIAL_MS / 1000.0;
            if (t >= due) {
                emit (j, r, s, lb->buf, lb->shown, lb->len, false);
                lb->shown = lb->len;
                lb->partial = 0;
            } else {
                int ms = (int)ceil ((due - t) * 1000);
                if (next < 0 || ms < next)
                    next = ms;
            }
        }
    return next;
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
    lb->partial = lb->len > lb->shown ? dc_now () : 0;
}

static void terminate (struct dc_launch *l, struct job *j, int sig)
{
    if (!j->terminating) {
        j->terminating = true;
        dc_launch_signal (l, -1, sig);
        j->kill_at = dc_now () + j->a->kill_grace;
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
    io->end = dc_now ();
    io->seconds = dc_now () - j->start;
    if (st->failed_start || st->signaled || st->code != 0) {
        if (j->first_fail < 0)
            j->first_fail = st->rank;
        j->nfailed++;
    }
}

/* --json: one object, per rank its host, exit status or signal, seconds */
static void print_json (const struct job *j, int exitcode, double seconds)
{
    cJSON *o = cJSON_CreateObject (), *ranks = cJSON_CreateArray ();

    if (!o || !ranks) {
        cJSON_Delete (o);
        cJSON_Delete (ranks);
        return;
    }
    cJSON_AddNumberToObject (o, "exit", exitcode);
    cJSON_AddNumberToObject (o, "seconds", seconds);
    cJSON_AddNumberToObject (o, "master_port", j->master_port);
    for (int r = 0; r < j->size; r++) {
        const struct rankio *io = &j->io[r];
        cJSON *x = cJSON_CreateObject ();
        if (!x)
            break;
        cJSON_AddNumberToObject (x, "rank", r);
        cJSON_AddStringToObject (x, "host", dc_plan_host (j->plan, r));
        if (!io->done) {
            cJSON_AddNullToObject (x, "status");
            cJSON_AddNullToObject (x, "signal");
        } else if (io->st.signaled) {
            cJSON_AddNullToObject (x, "status");
            cJSON_AddNumberToObject (x, "signal", io->st.sig);
        } else {
            cJSON_AddNumberToObject (x, "status", io->st.code);
            cJSON_AddNullToObject (x, "signal");
        }
        if (io->st.failed_start)
            cJSON_AddStringToObject (x, "error", io->st.reason);
        cJSON_AddNumberToObject (x, "seconds", io->seconds);
        cJSON_AddItemToArray (ranks, x);
    }
    cJSON_AddItemToObject (o, "ranks", ranks);
    char *text = cJSON_PrintUnformatted (o);
    if (text) {
        printf ("%s\n", text);
        fflush (stdout);
    }
    free (text);
    cJSON_Delete (o);
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
    if (lo->port_var)
        printf ("MASTER_PORT: %s on rank 0's host (%s) before any rank "
                "starts\n",
                lo->port_fixed ? "checked" : "chosen", lr[0].host);
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

/* --trace and --report: each rank from the spawn (start, dc_now ()) to its
 * exit, on this host's clock.  The trace has one process per host
 * and one thread per rank (tid rank + 1), a failing rank marked by an
 * instant event.  -1 (printed) when a file cannot be written. */
static int exec_record (const struct exec_args *a, const struct job *j,
                        double start)
{
    struct dc_trace *t = a->trace ? dc_trace_create () : NULL;
    struct dc_report *rep = a->report ? dc_report_create ("exec") : NULL;
    dc_error_t err;
    int rc = 0, nhosts = 0;
    const char **hosts = calloc ((size_t)j->size, sizeof (*hosts));

    if ((a->trace && !t) || (a->report && !rep) || !hosts) {
        rc = cli_error (-1, "exec: out of memory for --trace/--report");
        goto out;
    }
    double now = dc_now ();
    for (int r = 0; r < j->size; r++) {
        const struct dc_launch_status *st = &j->io[r].st;
        const char *host = dc_plan_host (j->plan, r);
        double end = j->io[r].done ? j->io[r].end : now;
        bool failed =
            !j->io[r].done || st->failed_start || st->signaled || st->code != 0;
        int pid = 0;
        while (pid < nhosts && strcmp (hosts[pid], host))
            pid++;
        if (pid == nhosts) {
            hosts[nhosts++] = host;
            dc_trace_process_name (t, pid, host);
        }
        char name[32];
        snprintf (name, sizeof (name), "rank %d", r);
        dc_trace_thread_name (t, pid, r + 1, name);
        cJSON *args =
            dc_trace_span (t, pid, r + 1, name, "exec", 0, (end - start) * 1e6);
        if (st->failed_start)
            cJSON_AddStringToObject (args, "failed_start", st->reason);
        else if (st->signaled)
            cJSON_AddNumberToObject (args, "signal", st->sig);
        else if (j->io[r].done)
            cJSON_AddNumberToObject (args, "status", st->code);
        if (failed && t)
            cJSON_AddStringToObject (dc_trace_instant (t, pid, r + 1, "failed",
                                                       "exec",
                                                       (end - start) * 1e6),
                                     "rank", name);
        dc_report_add_exec_rank (
            rep, &(struct dc_report_exec_rank){
                     .rank = r,
                     .host = host,
                     .code = j->io[r].done ? st->code : -1,
                     .sig = st->sig,
                     .signaled = st->signaled,
                     .failed_start = st->failed_start || !j->io[r].done,
                     .reason = j->io[r].done ? st->reason : "never ended",
                     .start = 0,
                     .end = end - start,
                 });
    }
    if (rep)
        dc_report_set_total_seconds (rep, now - start);
    if ((t && dc_trace_write (t, a->trace, &err) < 0) ||
        (rep && dc_report_write (rep, a->report, &err) < 0))
        rc = cli_error (-1, "exec: %s", err.text);
out:
    free (hosts);
    dc_trace_destroy (t);
    dc_report_destroy (rep);
    return rc;
}

/* Per rank: its output buffers and tag, and what the launcher starts. */
static int job_ranks (struct cli *cli, struct job *j, const struct cli_job *job,
                      char **cmd)
{
    const struct dc_plan *plan = j->plan;

    if (!(j->io = calloc ((size_t)plan->size, sizeof (*j->io))) ||
        !(j->lr = calloc ((size_t)plan->size, sizeof (*j->lr))))
        return cli_error (-1, "exec: out of memory");
    for (int r = 0; r < plan->size; r++) {
        struct rankio *io = &j->io[r];
        io->file[1] = io->file[2] = -1;
        snprintf (io->tag, sizeof (io->tag), "%d@%s: ", r,
                  dc_plan_host (plan, r));
        io->taglen = strlen (io->tag);
        for (int s = 1; s <= 2; s++)
            if (!(io->lb[s].buf = malloc (LINE_MAX_BYTES + 1)))
                return cli_error (-1, "exec: out of memory");
    }
    for (int r = 0; r < plan->size; r++) {
        const struct dc_host *h = &plan->hosts->v[plan->ranks[r].host];
        struct dc_launch_rank *lr = &j->lr[r];
        lr->rank = r;
        lr->host = h->name;
        lr->user = h->user;
        lr->port = h->port;
        lr->cpus = cli->launch.no_bind ? NULL : plan->ranks[r].cpus;
        lr->worker_args = cli_job_worker_args (job, r);
        lr->argv = cmd;
        /* ssh ranks enter the folder through the worker, the others
         * start in this one */
        lr->wdir = j->ssh ? j->wdir : NULL;
        /* mpi, slurm: every rank reads its frames (one srun command for
         * all); those without stdin get its EOF at the start */
        lr->stdin_data =
            j->fwd_stdin && !j->local && (stdin_wanted (j, r) || !j->ssh);
        if (!(lr->env = cli_job_rank_env (cli, job, r)))
            return cli_error (-1, "exec: out of memory");
    }
    return 0;
}

static void job_free (struct job *j)
{
    free (j->inbuf);
    dc_launch_destroy (j->l);
    if (j->sfd >= 0)
        dc_sigpipe_destroy ();
    free (j->fds);
    for (int r = 0; j->lr && r < j->size; r++)
        cli_strv_free ((char **)j->lr[r].env);
    free (j->lr);
    for (int r = 0; j->io && r < j->size; r++)
        for (int s = 1; s <= 2; s++) {
            free (j->io[r].lb[s].buf);
            if (j->io[r].file[s] >= 0)
                close (j->io[r].file[s]);
        }
    free (j->io);
}

/* The signal pipe, the launcher, every rank started.  EXIT_OK or an exit
 * status after printing why. */
static int job_start (struct job *j, const char *lname,
                      const struct dc_launch_opts *base)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0};
    struct dc_launch_opts lo = *base;
    dc_error_t err;

    /* signals arrive on a pipe from here on; children reset them */
    signal (SIGPIPE, SIG_IGN);
    if ((j->sfd = dc_sigpipe_create (sigs)) < 0)
        return cli_error (EXIT_FAIL, "exec: signal pipe: %s", strerror (errno));
    lo.on_output = on_output;
    lo.on_exit = on_exit_cb;
    lo.arg = j;
    lo.nranks_total = j->size;
    lo.cancel_fd = j->sfd;
    lo.stdin_null = !j->fwd_stdin || !j->local;
    if (!(j->l = dc_launch_create (lname, &lo, &err)))
        return cli_error (EXIT_LAUNCH, "exec: %s", err.text);
    j->start = dc_now ();
    if (dc_launch_spawn (j->l, j->lr, j->size, &err) < 0) {
        int s = errno == EINTR ? dc_sigpipe_read () : 0;
        if (s > 0 && s != SIGCHLD)
            j->interrupted = s; /* never restarted */
        if (s > 0 && s != SIGCHLD)
            return cli_error (128 + s,
                              "exec: interrupted by SIG%s "
                              "while connecting: nothing runs",
                              cli_signame (s));
        return cli_error (EXIT_LAUNCH, "%s", err.text);
    }
    if (!(j->fds = calloc (MAX_POLLFDS, sizeof (*j->fds))))
        return cli_error (EXIT_FAIL, "exec: out of memory");
    if (j->fwd_stdin)
        for (int r = 0; r < j->size; r++)
            if (!stdin_wanted (j, r))
                dc_launch_close_stdin (j->l, r);
    return EXIT_OK;
}

/* This stdin: read a chunk when the last one is out; at EOF close the
 * ranks' stdin.  Then write what the ranks take: to rank 0, or with
 * --stdin all to each in turn (a rank that ended drops its share). */
static void stdin_pump (struct job *j, bool readable)
{
    if (j->in_eof)
        return;
    if (readable && j->inoff >= j->inlen) {
        ssize_t got = read (0, j->inbuf, STDIN_CHUNK);
        if (got > 0) {
            j->inlen = (size_t)got;
            j->inoff = 0;
            j->in_rank = 0;
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
            j->in_eof = true;
            for (int r = 0; r < j->size; r++)
                if (stdin_wanted (j, r))
                    dc_launch_close_stdin (j->l, r);
            return;
        }
    }
    while (j->inoff < j->inlen) {
        ssize_t w =
            j->io[j->in_rank].done
                ? (ssize_t)(j->inlen - j->inoff)
                : dc_launch_write (j->l, j->in_rank, j->inbuf + j->inoff,
                                   j->inlen - j->inoff);
        if (w < 0 && errno == EAGAIN)
            break;
        if (w < 0)
            w = (ssize_t)(j->inlen - j->inoff); /* the rank is gone: drop */
        j->inoff += (size_t)w;
        if (j->inoff >= j->inlen && j->a->stdin_to == STDIN_ALL &&
            j->in_rank + 1 < j->size) {
            j->in_rank++;
            j->inoff = 0;
        }
    }
}

/* Signals from the pipe: the first stops every rank with grace, the
 * second kills them. */
static void job_signals (struct job *j)
{
    int s;

    while ((s = dc_sigpipe_read ()) > 0) {
        if (s == SIGCHLD)
            continue;
        if (j->interrupted) {
            /* a second interrupt: no more grace */
            dc_launch_signal (j->l, -1, SIGKILL);
            j->killed = true;
            continue;
        }
        j->interrupted = s;
        terminate (j->l, j, SIGTERM);
    }
}

/* The poll timeout: --timeout, the kill grace, prompts due, stdin that
 * waits for room.  -2 when the loop must go round at once. */
static int job_timeout (struct job *j)
{
    double t = dc_now ();
    int timeout = -1;
    int pms =
        j->in_eof || !isatty (0)
            ? -1
            : flush_partial (j, t, j->a->stdin_to == STDIN_ALL ? j->size : 1);

    if (j->a->timeout > 0 && !j->terminating) {
        double left = j->start + j->a->timeout - t;
        if (left <= 0) {
            j->timed_out = true;
            terminate (j->l, j, SIGTERM);
            return -2;
        }
        timeout = (int)ceil (left * 1000);
    }
    if (j->terminating && !j->killed) {
        double left = j->kill_at - t;
        if (left <= 0) {
            dc_launch_signal (j->l, -1, SIGKILL);
            j->killed = true;
            return -2;
        }
        int ms = (int)ceil (left * 1000);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    if (pms >= 0 && (timeout < 0 || pms < timeout))
        timeout = pms;
    if (!j->in_eof && j->inoff < j->inlen)
        timeout = timeout < 0 || timeout > 10 ? 10 : timeout;
    return timeout;
}

/* Until every rank has ended.  EXIT_OK, or an exit status (printed). */
static int job_loop (struct job *j)
{
    int running = j->size;

    while (running > 0) {
        int timeout = job_timeout (j);
        if (timeout == -2)
            continue;
        j->fds[0] = (struct pollfd){.fd = j->sfd, .events = POLLIN};
        j->fds[1] =
            (struct pollfd){.fd = !j->in_eof && j->inoff >= j->inlen ? 0 : -1,
                            .events = POLLIN};
        int n = dc_launch_pollfds (j->l, j->fds + 2, MAX_POLLFDS - 2, &timeout);
        if (poll (j->fds, (nfds_t)n + 2, timeout) < 0 && errno != EINTR)
            return cli_error (EXIT_FAIL, "exec: poll: %s", strerror (errno));
        if (j->fds[0].revents & POLLIN)
            job_signals (j);
        stdin_pump (j, j->fds[1].revents != 0);
        running = dc_launch_progress (j->l, j->fds + 2, n);
        if (j->first_fail >= 0 && j->a->kill_on_bad_exit && !j->terminating)
            terminate (j->l, j, SIGTERM);
    }
    return EXIT_OK;
}

/* How the job ended, as an exit status, with its last line printed. */
static int job_result (const struct job *j)
{
    if (j->interrupted)
        return cli_error (128 + j->interrupted,
                          "exec: interrupted by SIG%s: every rank stopped",
                          cli_signame (j->interrupted));
    if (j->timed_out)
        return cli_error (EXIT_FAIL, "exec: timed out after %g s",
                          j->a->timeout);
    if (j->first_fail < 0)
        return EXIT_OK;
    int r = j->first_fail;
    const struct dc_launch_status *st = &j->io[r].st;
    const char *host = dc_plan_host (j->plan, r);
    /* mpirun's way: the first failing rank's status */
    int code = st->failed_start ? (st->code > 0 ? st->code : EXIT_FAIL)
               : st->signaled   ? 128 + st->sig
                                : st->code;
    if (j->a->exit_any || code <= 0 || code > 255)
        code = EXIT_FAIL;
    if (st->failed_start)
        return cli_error (code, "exec: rank %d on %s: %s", r, host, st->reason);
    if (st->signaled)
        return cli_error (code,
                          "exec: rank %d on %s killed by signal %d (SIG%s)", r,
                          host, st->sig, cli_signame (st->sig));
    return cli_error (code, "exec: rank %d on %s exited with status %d", r,
                      host, st->code);
}

static int run_job (struct cli *cli, struct exec_args *a,
                    const struct cli_job *job, char **cmd)
{
    struct job j = {.a = a,
                    .plan = job->plan,
                    .size = job->plan->size,
                    .first_fail = -1,
                    .open = {-1, -1, -1},
                    .sfd = -1,
                    .wdir = cli->launch.wdir,
                    .ssh = !strcmp (job->launcher, "ssh")};
    struct dc_launch_opts lo = cli->launch.lo;
    char cwd[PATH_MAX];
    int exitcode = EXIT_FAIL;

    /* stdin: forwarded by the local launcher, framed on the control
     * channel of the others' workers */
    j.local = !strcmp (job->launcher, "local");
    j.fwd_stdin = a->stdin_to != STDIN_NONE && !cli->dry_run;
    j.in_eof = !j.fwd_stdin;
    /* the working folder: the caller's, on every host (--wdir to choose) */
    if (j.ssh && !j.wdir && getcwd (cwd, sizeof (cwd)))
        j.wdir = cwd;
    if (job_ranks (cli, &j, job, cmd) < 0)
        goto out;
    if (!lo.remote_dcrun)
        lo.remote_dcrun = cli_self_path ();
    /* MASTER_PORT is checked on rank 0's host: ssh, mpi and slurm ask
     * that host's dcrun before any rank starts; here, for local ranks */
    if (!j.local) {
        lo.port_var = "MASTER_PORT";
        lo.port_fixed = cli->launch.master_port > 0;
    } else if (cli->launch.master_port > 0 && !cli->dry_run &&
               dc_launch_is_local_host (dc_plan_host (j.plan, 0)) &&
               !dc_launch_port_free (cli->launch.master_port)) {
        exitcode = cli_error (EXIT_LAUNCH,
                              "exec: MASTER_PORT %d is in use on this host "
                              "(rank 0's)\nhint: choose a free port, or let "
                              "dcrun pick one",
                              cli->launch.master_port);
        goto out;
    }
    if (cli->dry_run) {
        dry_run (job->launcher, j.lr, j.plan, &lo);
        exitcode = EXIT_OK;
        goto out;
    }
    if (a->output_dir && open_output_files (&j, a->output_dir) < 0) {
        exitcode = EXIT_INPUT;
        goto out;
    }
    /* ranks that are not ssh's start in this process's folder */
    if (j.wdir && !j.ssh && chdir (j.wdir) < 0) {
        exitcode = cli_error (EXIT_LAUNCH, "exec: --wdir %s: %s", j.wdir,
                              strerror (errno));
        goto out;
    }
    if (j.fwd_stdin && !(j.inbuf = malloc (STDIN_CHUNK))) {
        exitcode = cli_error (EXIT_FAIL, "exec: out of memory");
        goto out;
    }
    j.master_port = job->master_port;
    if ((exitcode = job_start (&j, job->launcher, &lo)) != EXIT_OK)
        goto out;
    if (j.l->port > 0) /* the one rank 0's host agreed to */
        j.master_port = j.l->port;
    if ((exitcode = job_loop (&j)) != EXIT_OK)
        goto out;
    exitcode = job_result (&j);
    if ((a->trace || a->report) && exec_record (a, &j, j.start) < 0 &&
        exitcode == EXIT_OK)
        exitcode = EXIT_INPUT;
    if (cli->json)
        print_json (&j, exitcode, dc_now () - j.start);
out:
    a->interrupted = j.interrupted;
    job_free (&j);
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
        char ip[64];
        /* a numeric address every task reaches, not a name */
        if (h && h->count > 0)
            setenv ("MASTER_ADDR",
                    dc_rankenv_host_ip (h->v[0].name, ip, sizeof (ip), NULL) ==
                            0
                        ? ip
                        : h->v[0].name,
                    0);
        dc_hosts_destroy (h);
    }
    if (a->master_port > 0) {
        char port[16];
        snprintf (port, sizeof (port), "%d", a->master_port);
        setenv ("MASTER_PORT", port, 1);
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
    /* rank 0's task checks MASTER_PORT on its host; in use, the whole
     * step is stopped (scancel --signal TERM) so that no task waits for a
     * rendezvous that cannot happen */
    const char *pr = getenv ("SLURM_PROCID");
    int mp = atoi (getenv ("MASTER_PORT"));
    if (pr && !strcmp (pr, "0") && mp > 0 && !dc_launch_port_free (mp)) {
        char host[256] = "?", step[64];
        const char *nn = getenv ("SLURMD_NODENAME");
        if (nn)
            snprintf (host, sizeof (host), "%s", nn);
        else
            gethostname (host, sizeof (host) - 1);
        free (av);
        cli_error (EXIT_LAUNCH,
                   "exec: %s: MASTER_PORT %d is in use there (rank 0's "
                   "host)\nhint: give a free one with --master-port, or "
                   "leave MASTER_PORT unset",
                   host, mp);
        snprintf (step, sizeof (step), "%s.%s",
                  getenv ("SLURM_JOB_ID") ? getenv ("SLURM_JOB_ID") : "0",
                  getenv ("SLURM_STEP_ID"));
        signal (SIGTERM, SIG_IGN);
        pid_t pid = fork ();
        if (pid == 0) {
            execlp ("scancel", "scancel", "-Q", "--signal", "TERM", step,
                    (char *)NULL);
            _exit (127);
        }
        if (pid > 0)
            while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return EXIT_LAUNCH;
    }
    av[k++] = (char *)cli_self_path ();
    av[k++] = "worker";
    av[k++] = "--control";
    av[k++] = "none";
    if (a->wdir) {
        av[k++] = "--wdir";
        av[k++] = (char *)a->wdir;
    }
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
    job.max_restarts = (int)a.max_restarts;
    /* --wdir by its full name (not for ssh: there it is relative to the
     * login folder), so that a restart, run from there, finds it again */
    char wabs[PATH_MAX];
    if (cli->launch.wdir && strcmp (job.launcher, "ssh") &&
        realpath (cli->launch.wdir, wabs))
        cli->launch.wdir = wabs;
    for (;;) {
        a.interrupted = 0;
        exitcode = run_job (cli, &a, &job, argv + optindex);
        if (exitcode == EXIT_OK || a.interrupted || cli->dry_run ||
            job.restart_count >= a.max_restarts)
            break;
        /* a rank failed: every rank again, as torchrun does */
        job.restart_count++;
        if (!cli->quiet)
            fprintf (stderr,
                     "dcrun: exec: restarting every rank (restart %d of "
                     "%ld)\n",
                     job.restart_count, a.max_restarts);
    }
    if (a.max_restarts > 0 && !cli->quiet && !a.interrupted && !cli->dry_run)
        fprintf (stderr, "dcrun: exec: %d of %ld restarts used\n",
                 job.restart_count, a.max_restarts);
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
