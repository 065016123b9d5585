/* exec.c - `dcrun exec` below the CLI: see exec.h */
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

#include <cjson/cJSON.h>

#include "lib/formats/report.h"
#include "lib/formats/trace.h"
#include "lib/launch/launch_io.h"
#include "lib/run/exec.h"
#include "lib/run/status.h"
#include "lib/util/clock.h"
#include "lib/util/strbuf.h"

#define MAX_POLLFDS 4096
#define STDIN_CHUNK 65536

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
};

struct dc_exec {
    const struct dc_exec_opts *o;
    struct dc_exec_result res;
    struct rankio *io;
    int size;
    bool terminating;
    double kill_at; /* when to send SIGKILL, 0 none */
    bool killed;
    int open[3]; /* rank with a partial line out on stdout/stderr, -1 */
    struct dc_launch *l;
    struct pollfd *fds;
    int sfd;             /* the signal pipe, -1 */
    bool local;          /* the local launcher */
    bool fwd_stdin;      /* this stdin goes to ranks */
    char *inbuf;         /* a chunk of it */
    size_t inlen, inoff; /* its bytes, the next one to write */
    int in_rank;         /* --stdin all: the rank being written to */
    bool in_eof;         /* nothing more from this stdin */
};

static const char *signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}

bool dc_exec_stdin_wanted (enum dc_exec_stdin to, int r)
{
    return to == DC_EXEC_STDIN_ALL || (to == DC_EXEC_STDIN_RANK0 && r == 0);
}

int dc_exec_stdin_parse (const char *word, enum dc_exec_stdin *to)
{
    static const struct {
        const char *word;
        enum dc_exec_stdin to;
    } words[] = {
        {"rank0", DC_EXEC_STDIN_RANK0},
        {"0", DC_EXEC_STDIN_RANK0},
        {"all", DC_EXEC_STDIN_ALL},
        {"none", DC_EXEC_STDIN_NONE},
    };

    for (size_t i = 0; word && i < sizeof (words) / sizeof (words[0]); i++)
        if (!strcmp (word, words[i].word)) {
            *to = words[i].to;
            return 0;
        }
    return -1;
}

static bool stdin_wanted (const struct dc_exec *x, int r)
{
    return dc_exec_stdin_wanted (x->o->stdin_to, r);
}

/* ---- output: whole lines, tagged ---- */

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
static void emit (struct dc_exec *x, int rank, int stream, const char *line,
                  size_t from, size_t len, bool nl)
{
    struct rankio *io = &x->io[rank];
    char stackbuf[DC_EXEC_LINE_MAX + 400];
    int fd = stream == DC_LAUNCH_STDERR ? x->o->err_fd : x->o->out_fd;
    size_t n = 0;

    if (x->open[stream] >= 0 && x->open[stream] != rank) {
        /* end the other rank's prompt; its line comes again whole */
        stackbuf[n++] = '\n';
        x->io[x->open[stream]].lb[stream].shown = 0;
    }
    if (x->open[stream] != rank) {
        if (x->o->timestamps)
            n += stamp (stackbuf + n, 64);
        if (!x->o->no_tag) {
            memcpy (stackbuf + n, io->tag, io->taglen);
            n += io->taglen;
        }
    }
    memcpy (stackbuf + n, line + from, len - from);
    n += len - from;
    if (nl)
        stackbuf[n++] = '\n';
    x->open[stream] = nl ? -1 : rank;
    write_all (fd, stackbuf, n);
}

/* A whole line: what was not shown yet of it, and its newline. */
static void emit_line (struct dc_exec *x, int rank, int stream,
                       const char *line, size_t len)
{
    struct linebuf *lb = &x->io[rank].lb[stream];
    size_t from = lb->shown <= len ? lb->shown : 0;

    emit (x, rank, stream, line, from, len, true);
    lb->shown = 0;
    lb->partial = 0;
}

/* Partial lines that waited DC_EXEC_PARTIAL_MS: show them; returns the ms
 * until the next one is due (-1 none).  Only prompts someone can answer:
 * of the ranks that get stdin (nranks of them). */
static int flush_partial (struct dc_exec *x, double t, int nranks)
{
    int next = -1;

    for (int r = 0; r < nranks && r < x->size; r++)
        for (int s = 1; s <= 2; s++) {
            struct linebuf *lb = &x->io[r].lb[s];
            if (lb->partial <= 0 || lb->len <= lb->shown)
                continue;
            double due = lb->partial + DC_EXEC_PARTIAL_MS / 1000.0;
            if (t >= due) {
                emit (x, r, s, lb->buf, lb->shown, lb->len, false);
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
    struct dc_exec *x = arg;

    if (rank == -1) {
        /* the launcher's driver itself (mpirun, srun) speaking */
        write_all (x->o->err_fd, data, len);
        return;
    }
    if (rank < 0 || rank >= x->size ||
        (s != DC_LAUNCH_STDOUT && s != DC_LAUNCH_STDERR))
        return;
    struct rankio *io = &x->io[rank];
    struct linebuf *lb = &io->lb[s];
    if (io->file[s] >= 0)
        write_all (io->file[s], data, len);
    while (len > 0) {
        const char *nl = memchr (data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (lb->len + take >= DC_EXEC_LINE_MAX) {
            /* too long for one line: write what fits as a piece */
            size_t room = DC_EXEC_LINE_MAX - lb->len;
            memcpy (lb->buf + lb->len, data, room);
            emit_line (x, rank, s, lb->buf, DC_EXEC_LINE_MAX);
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
            emit_line (x, rank, s, lb->buf, lb->len);
            lb->len = 0;
            data++;
            len--;
        }
    }
    lb->partial = lb->len > lb->shown ? dc_now () : 0;
}

static void terminate (struct dc_exec *x, int sig)
{
    if (!x->terminating) {
        x->terminating = true;
        dc_launch_signal (x->l, -1, sig);
        x->kill_at = dc_now () + x->o->kill_grace;
    }
}

static void on_exit_cb (const struct dc_launch_status *st, void *arg)
{
    struct dc_exec *x = arg;

    if (st->rank < 0 || st->rank >= x->size)
        return;
    struct rankio *io = &x->io[st->rank];
    for (int s = 1; s <= 2; s++)
        if (io->lb[s].len > 0) {
            emit_line (x, st->rank, s, io->lb[s].buf, io->lb[s].len);
            io->lb[s].len = 0;
        }
    struct dc_exec_rank_result *rr = &x->res.ranks[st->rank];
    rr->done = true;
    rr->st = *st;
    rr->end = dc_now ();
    rr->seconds = dc_now () - x->res.start;
    if (st->failed_start || st->signaled || st->code != 0) {
        if (x->res.first_fail < 0)
            x->res.first_fail = st->rank;
        x->res.nfailed++;
    }
}

/* ---- set-up and tear-down ---- */

struct dc_exec *dc_exec_create (const struct dc_exec_opts *o, dc_error_t *err)
{
    struct dc_exec *x = calloc (1, sizeof (*x));
    int size = o->plan->size;

    if (!x)
        goto oom;
    x->o = o;
    x->size = x->res.size = size;
    x->res.first_fail = -1;
    x->res.master_port = o->master_port;
    x->open[0] = x->open[1] = x->open[2] = -1;
    x->sfd = -1;
    x->local = !strcmp (o->launcher, "local");
    x->fwd_stdin = o->stdin_to != DC_EXEC_STDIN_NONE;
    x->in_eof = !x->fwd_stdin;
    if (!(x->io = calloc ((size_t)size, sizeof (*x->io))) ||
        !(x->res.ranks = calloc ((size_t)size, sizeof (*x->res.ranks))))
        goto oom;
    for (int r = 0; r < size; r++) {
        struct rankio *io = &x->io[r];
        io->file[1] = io->file[2] = -1;
        snprintf (io->tag, sizeof (io->tag), "%d@%s: ", r,
                  dc_plan_host (o->plan, r));
        io->taglen = strlen (io->tag);
        for (int s = 1; s <= 2; s++)
            if (!(io->lb[s].buf = malloc (DC_EXEC_LINE_MAX + 1)))
                goto oom;
    }
    return x;
oom:
    dc_exec_destroy (x);
    errprintf (err, "exec: out of memory");
    return NULL;
}

void dc_exec_destroy (struct dc_exec *x)
{
    if (!x)
        return;
    free (x->inbuf);
    dc_launch_destroy (x->l);
    if (x->sfd >= 0)
        dc_sigpipe_destroy ();
    free (x->fds);
    for (int r = 0; x->io && r < x->size; r++)
        for (int s = 1; s <= 2; s++) {
            free (x->io[r].lb[s].buf);
            if (x->io[r].file[s] >= 0)
                close (x->io[r].file[s]);
        }
    free (x->io);
    free (x->res.ranks);
    free (x);
}

const struct dc_exec_result *dc_exec_result (const struct dc_exec *x)
{
    return &x->res;
}

static int open_output_files (struct dc_exec *x, const char *dir,
                              dc_error_t *err)
{
    if (mkdir (dir, 0777) < 0 && errno != EEXIST)
        return errprintf (err, "exec: %s: %s", dir, strerror (errno));
    for (int r = 0; r < x->size; r++)
        for (int s = 1; s <= 2; s++) {
            char path[PATH_MAX];
            snprintf (path, sizeof (path), "%s/rank-%d.%s", dir, r,
                      s == 1 ? "out" : "err");
            /* O_NOFOLLOW: never created through a link */
            x->io[r].file[s] = open (
                path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0666);
            if (x->io[r].file[s] < 0)
                return errprintf (err, "exec: %s: %s", path, strerror (errno));
        }
    return 0;
}

/* The signal pipe, the launcher, every rank started.  A dc_status. */
static int job_start (struct dc_exec *x, dc_error_t *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0};
    struct dc_launch_opts lo = x->o->lo;

    /* signals arrive on a pipe from here on; children reset them */
    signal (SIGPIPE, SIG_IGN);
    if ((x->sfd = dc_sigpipe_create (sigs)) < 0) {
        errprintf (err, "exec: signal pipe: %s", strerror (errno));
        return DC_STATUS_FAIL;
    }
    lo.on_output = on_output;
    lo.on_exit = on_exit_cb;
    lo.arg = x;
    lo.nranks_total = x->size;
    lo.cancel_fd = x->sfd;
    lo.stdin_null = !x->fwd_stdin || !x->local;
    if (!(x->l = dc_launch_create (x->o->launcher, &lo, err))) {
        errprefix (err, "exec: ");
        return DC_STATUS_LAUNCH;
    }
    x->res.start = dc_now ();
    if (dc_launch_spawn (x->l, x->o->ranks, x->size, err) < 0) {
        int s = errno == EINTR ? dc_sigpipe_read () : 0;
        if (s > 0 && s != SIGCHLD) {
            x->res.interrupted = s; /* never restarted */
            errprintf (err,
                       "exec: interrupted by SIG%s while connecting: "
                       "nothing runs",
                       signame (s));
            return DC_STATUS_SIGNAL;
        }
        return DC_STATUS_LAUNCH;
    }
    if (!(x->fds = calloc (MAX_POLLFDS, sizeof (*x->fds)))) {
        errprintf (err, "exec: out of memory");
        return DC_STATUS_FAIL;
    }
    if (x->fwd_stdin)
        for (int r = 0; r < x->size; r++)
            if (!stdin_wanted (x, r))
                dc_launch_close_stdin (x->l, r);
    return DC_STATUS_OK;
}

/* ---- the loop ---- */

/* This stdin: read a chunk when the last one is out; at EOF close the
 * ranks' stdin.  Then write what the ranks take: to rank 0, or with
 * --stdin all to each in turn (a rank that ended drops its share). */
static void stdin_pump (struct dc_exec *x, bool readable)
{
    if (x->in_eof)
        return;
    if (readable && x->inoff >= x->inlen) {
        ssize_t got = read (x->o->in_fd, x->inbuf, STDIN_CHUNK);
        if (got > 0) {
            x->inlen = (size_t)got;
            x->inoff = 0;
            x->in_rank = 0;
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
            x->in_eof = true;
            for (int r = 0; r < x->size; r++)
                if (stdin_wanted (x, r))
                    dc_launch_close_stdin (x->l, r);
            return;
        }
    }
    while (x->inoff < x->inlen) {
        ssize_t w =
            x->res.ranks[x->in_rank].done
                ? (ssize_t)(x->inlen - x->inoff)
                : dc_launch_write (x->l, x->in_rank, x->inbuf + x->inoff,
                                   x->inlen - x->inoff);
        if (w < 0 && errno == EAGAIN)
            break;
        if (w < 0)
            w = (ssize_t)(x->inlen - x->inoff); /* the rank is gone: drop */
        x->inoff += (size_t)w;
        if (x->inoff >= x->inlen && x->o->stdin_to == DC_EXEC_STDIN_ALL &&
            x->in_rank + 1 < x->size) {
            x->in_rank++;
            x->inoff = 0;
        }
    }
}

/* Signals from the pipe: the first stops every rank with grace, the
 * second kills them. */
static void job_signals (struct dc_exec *x)
{
    int s;

    while ((s = dc_sigpipe_read ()) > 0) {
        if (s == SIGCHLD)
            continue;
        if (x->res.interrupted) {
            /* a second interrupt: no more grace */
            dc_launch_signal (x->l, -1, SIGKILL);
            x->killed = true;
            continue;
        }
        x->res.interrupted = s;
        terminate (x, SIGTERM);
    }
}

/* The poll timeout: the timeout, the kill grace, prompts due, stdin that
 * waits for room.  -2 when the loop must go round at once. */
static int job_timeout (struct dc_exec *x)
{
    double t = dc_now ();
    int timeout = -1;
    int pms =
        x->in_eof || !isatty (x->o->in_fd)
            ? -1
            : flush_partial (x, t,
                             x->o->stdin_to == DC_EXEC_STDIN_ALL ? x->size : 1);

    if (x->o->timeout > 0 && !x->terminating) {
        double left = x->res.start + x->o->timeout - t;
        if (left <= 0) {
            x->res.timed_out = true;
            terminate (x, SIGTERM);
            return -2;
        }
        timeout = (int)ceil (left * 1000);
    }
    if (x->terminating && !x->killed) {
        double left = x->kill_at - t;
        if (left <= 0) {
            dc_launch_signal (x->l, -1, SIGKILL);
            x->killed = true;
            return -2;
        }
        int ms = (int)ceil (left * 1000);
        if (timeout < 0 || ms < timeout)
            timeout = ms;
    }
    if (pms >= 0 && (timeout < 0 || pms < timeout))
        timeout = pms;
    if (!x->in_eof && x->inoff < x->inlen)
        timeout = timeout < 0 || timeout > 10 ? 10 : timeout;
    return timeout;
}

/* Until every rank has ended.  A dc_status. */
static int job_loop (struct dc_exec *x, dc_error_t *err)
{
    int running = x->size;

    while (running > 0) {
        int timeout = job_timeout (x);
        if (timeout == -2)
            continue;
        x->fds[0] = (struct pollfd){.fd = x->sfd, .events = POLLIN};
        x->fds[1] = (struct pollfd){
            .fd = !x->in_eof && x->inoff >= x->inlen ? x->o->in_fd : -1,
            .events = POLLIN};
        int n = dc_launch_pollfds (x->l, x->fds + 2, MAX_POLLFDS - 2, &timeout);
        if (poll (x->fds, (nfds_t)n + 2, timeout) < 0 && errno != EINTR) {
            errprintf (err, "exec: poll: %s", strerror (errno));
            return DC_STATUS_FAIL;
        }
        if (x->fds[0].revents & POLLIN)
            job_signals (x);
        stdin_pump (x, x->fds[1].revents != 0);
        running = dc_launch_progress (x->l, x->fds + 2, n);
        if (x->res.first_fail >= 0 && x->o->kill_on_bad_exit && !x->terminating)
            terminate (x, SIGTERM);
    }
    return DC_STATUS_OK;
}

/* How the job ended: a dc_status, res.code for a failing rank. */
static int job_result (struct dc_exec *x, dc_error_t *err)
{
    struct dc_exec_result *res = &x->res;

    if (res->interrupted) {
        errprintf (err, "exec: interrupted by SIG%s: every rank stopped",
                   signame (res->interrupted));
        return DC_STATUS_SIGNAL;
    }
    if (res->timed_out) {
        res->code = 1;
        errprintf (err, "exec: timed out after %g s", x->o->timeout);
        return DC_STATUS_FAIL;
    }
    if (res->first_fail < 0)
        return DC_STATUS_OK;
    int r = res->first_fail;
    const struct dc_launch_status *st = &res->ranks[r].st;
    const char *host = dc_plan_host (x->o->plan, r);
    /* mpirun's way: the first failing rank's status */
    int code = st->failed_start ? (st->code > 0 ? st->code : 1)
               : st->signaled   ? 128 + st->sig
                                : st->code;
    res->code = x->o->exit_any || code <= 0 || code > 255 ? 1 : code;
    if (st->failed_start)
        errprintf (err, "exec: rank %d on %s: %s", r, host, st->reason);
    else if (st->signaled)
        errprintf (err, "exec: rank %d on %s killed by signal %d (SIG%s)", r,
                   host, st->sig, signame (st->sig));
    else
        errprintf (err, "exec: rank %d on %s exited with status %d", r, host,
                   st->code);
    return DC_STATUS_FAIL;
}

int dc_exec_run (struct dc_exec *x, dc_error_t *err)
{
    const struct dc_exec_opts *o = x->o;
    int st;

    dc_error_clear (err);
    if (o->output_dir && open_output_files (x, o->output_dir, err) < 0)
        return DC_STATUS_INPUT;
    /* ranks that are not ssh's start in this process's folder */
    if (o->chdir && chdir (o->chdir) < 0) {
        errprintf (err, "exec: --wdir %s: %s", o->chdir, strerror (errno));
        return DC_STATUS_LAUNCH;
    }
    if (x->fwd_stdin && !(x->inbuf = malloc (STDIN_CHUNK))) {
        errprintf (err, "exec: out of memory");
        return DC_STATUS_FAIL;
    }
    if ((st = job_start (x, err)) != DC_STATUS_OK)
        return st;
    if (x->l->port > 0) /* the one rank 0's host agreed to */
        x->res.master_port = x->l->port;
    if ((st = job_loop (x, err)) != DC_STATUS_OK)
        return st;
    x->res.ran = true;
    return job_result (x, err);
}

/* ---- --trace and --report ---- */

/* Rank r's span (and its failure mark) in t, its line in rep. */
static void record_rank (const struct dc_exec *x, int r, struct dc_trace *t,
                         struct dc_report *rep, int pid, double now)
{
    const struct dc_exec_rank_result *rr = &x->res.ranks[r];
    const struct dc_launch_status *st = &rr->st;
    double start = x->res.start;
    double end = rr->done ? rr->end : now;
    bool failed = !rr->done || st->failed_start || st->signaled || st->code;
    char name[32];

    snprintf (name, sizeof (name), "rank %d", r);
    dc_trace_thread_name (t, pid, r + 1, name);
    cJSON *args =
        dc_trace_span (t, pid, r + 1, name, "exec", 0, (end - start) * 1e6);
    if (st->failed_start)
        cJSON_AddStringToObject (args, "failed_start", st->reason);
    else if (st->signaled)
        cJSON_AddNumberToObject (args, "signal", st->sig);
    else if (rr->done)
        cJSON_AddNumberToObject (args, "status", st->code);
    if (failed && t)
        cJSON_AddStringToObject (dc_trace_instant (t, pid, r + 1, "failed",
                                                   "exec", (end - start) * 1e6),
                                 "rank", name);
    dc_report_add_exec_rank (
        rep, &(struct dc_report_exec_rank){
                 .rank = r,
                 .host = dc_plan_host (x->o->plan, r),
                 .code = rr->done ? st->code : -1,
                 .sig = st->sig,
                 .signaled = st->signaled,
                 .failed_start = st->failed_start || !rr->done,
                 .reason = rr->done ? st->reason : "never ended",
                 .start = 0,
                 .end = end - start,
             });
}

int dc_exec_record (const struct dc_exec *x, const char *trace,
                    const char *report, dc_error_t *err)
{
    struct dc_trace *t = trace ? dc_trace_create () : NULL;
    struct dc_report *rep = report ? dc_report_create ("exec") : NULL;
    int rc = 0, nhosts = 0;
    const char **hosts = calloc ((size_t)x->size + 1, sizeof (*hosts));

    if ((trace && !t) || (report && !rep) || !hosts) {
        rc = errprintf (err, "exec: out of memory for --trace/--report");
        goto out;
    }
    double now = dc_now ();
    for (int r = 0; r < x->size; r++) {
        const char *host = dc_plan_host (x->o->plan, r);
        int pid = 0;
        while (pid < nhosts && strcmp (hosts[pid], host))
            pid++;
        if (pid == nhosts) {
            hosts[nhosts++] = host;
            dc_trace_process_name (t, pid, host);
        }
        record_rank (x, r, t, rep, pid, now);
    }
    if (rep)
        dc_report_set_total_seconds (rep, now - x->res.start);
    if ((t && dc_trace_write (t, trace, err) < 0) ||
        (rep && dc_report_write (rep, report, err) < 0)) {
        errprefix (err, "exec: ");
        rc = -1;
    }
out:
    free (hosts);
    dc_trace_destroy (t);
    dc_report_destroy (rep);
    return rc;
}

/* ---- before the start: the ranks, MASTER_PORT ---- */

void dc_exec_ranks (const struct dc_exec_opts *o, struct dc_launch_rank *lrs,
                    char *const *cmd, const char *wdir, bool no_bind, bool fwd)
{
    const struct dc_plan *plan = o->plan;
    bool ssh = !strcmp (o->launcher, "ssh");
    bool local = !strcmp (o->launcher, "local");

    for (int r = 0; r < plan->size; r++) {
        const struct dc_host *h = &plan->hosts->v[plan->ranks[r].host];
        struct dc_launch_rank *lr = &lrs[r];
        lr->rank = r;
        lr->host = h->name;
        lr->user = h->user;
        lr->port = h->port;
        lr->cpus = no_bind ? NULL : plan->ranks[r].cpus;
        lr->argv = cmd;
        /* ssh ranks enter the folder through the worker, the others
         * start in this one */
        lr->wdir = ssh ? wdir : NULL;
        /* stdin: forwarded by the local launcher, framed on the control
         * channel of the others' workers; mpi, slurm: every rank reads
         * its frames (one srun command for all), those without stdin get
         * its EOF at the start */
        lr->stdin_data =
            fwd && !local && (dc_exec_stdin_wanted (o->stdin_to, r) || !ssh);
    }
}

int dc_exec_master_port (struct dc_exec_opts *o, int port, bool check,
                         dc_error_t *err)
{
    /* ssh, mpi and slurm ask rank 0's host before any rank starts
     * (launch.h: port_var); here, for local ranks */
    if (strcmp (o->launcher, "local")) {
        o->lo.port_var = "MASTER_PORT";
        o->lo.port_fixed = port > 0;
    } else if (port > 0 && check &&
               dc_launch_is_local_host (dc_plan_host (o->plan, 0)) &&
               !dc_launch_port_free (port)) {
        errprintf (err,
                   "exec: MASTER_PORT %d is in use on this host (rank 0's)\n"
                   "hint: choose a free port, or let dcrun pick one",
                   port);
        return DC_STATUS_LAUNCH;
    }
    return DC_STATUS_OK;
}

/* ---- what the caller prints: --dry-run, --json ---- */

#define TEXT_MAX ((size_t)256 << 20)

/* The table of ranks: host, local rank, node, GPUs, CPUs. */
static void dry_run_table (struct dc_strbuf *b, const struct dc_exec_opts *o)
{
    const struct dc_plan *plan = o->plan;

    dc_strbuf_printf (b, "launcher: %s\n", o->launcher);
    dc_strbuf_printf (b, "%-6s %-24s %-6s %-5s %-10s %s\n", "RANK", "HOST",
                      "LOCAL", "NODE", "GPUS", "CPUS");
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        char gpus[64] = "-";
        size_t n = 0;
        for (int i = 0; i < rk->ngpus && n < sizeof (gpus) - 12; i++)
            n += (size_t)snprintf (gpus + n, sizeof (gpus) - n, "%s%d",
                                   i ? "," : "", rk->gpus[i]);
        /* ranks placed by their host's agent (dcrun worker --place) */
        bool on_host = o->ranks[r].worker_args != NULL;
        if (on_host && rk->ngpus == 0)
            snprintf (gpus, sizeof (gpus), "on-host");
        dc_strbuf_printf (b, "%-6d %-24s %-6d %-5d %-10s %s\n", r,
                          dc_plan_host (plan, r), rk->local_rank, rk->node_rank,
                          gpus,
                          rk->cpus  ? rk->cpus
                          : on_host ? "on-host"
                                    : "-");
    }
}

/* mpi, slurm: one driver command line for every rank. */
static void dry_run_driver (struct dc_strbuf *b, const struct dc_exec_opts *o)
{
    struct dc_launch *l;
    char **argv = NULL;
    dc_error_t err;

    if (!(l = dc_launch_create (o->launcher, &o->lo, &err)) ||
        dc_launch_driver_argv (l, o->ranks, o->plan->size, &argv, &err) < 0) {
        dc_strbuf_printf (b, "(cannot make the %s command line: %s)\n",
                          o->launcher, err.text);
    } else {
        char *line = dc_launch_shell_join (argv);
        dc_strbuf_printf (b, "%s\n", line ? line : "");
        free (line);
        for (int i = 0; argv[i]; i++)
            free (argv[i]);
        free (argv);
    }
    dc_launch_destroy (l);
}

/* local, ssh: each rank's command line. */
static void dry_run_ranks (struct dc_strbuf *b, const struct dc_exec_opts *o)
{
    const struct dc_launch_rank *lr = o->ranks;

    for (int r = 0; r < o->plan->size; r++)
        if (lr[r].worker_args) {
            dc_strbuf_str (b, "on-host: GPUs and CPUs of remote ranks are "
                              "decided on their host by its dcrun worker "
                              "(--place)\n");
            break;
        }
    if (o->lo.port_var)
        dc_strbuf_printf (b,
                          "MASTER_PORT: %s on rank 0's host (%s) before any "
                          "rank starts\n",
                          o->lo.port_fixed ? "checked" : "chosen", lr[0].host);
    for (int r = 0; r < o->plan->size; r++) {
        if (!strcmp (o->launcher, "local")) {
            char *cmd = dc_launch_shell_join (lr[r].argv);
            char *env = dc_launch_shell_join (lr[r].env);
            dc_strbuf_printf (b, "rank %d: env %s %s\n", r, env ? env : "",
                              cmd ? cmd : "");
            free (cmd);
            free (env);
        } else {
            char *line = dc_launch_worker_cmdline (o->lo.remote_dcrun, &lr[r]);
            dc_strbuf_printf (b, "rank %d on %s: %s\n", r, lr[r].host,
                              line ? line : "");
            free (line);
        }
    }
}

char *dc_exec_dry_run (const struct dc_exec_opts *o)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    dry_run_table (&b, o);
    if (!strcmp (o->launcher, "mpi") || !strcmp (o->launcher, "slurm")) {
        if (o->lo.port_var)
            dc_strbuf_printf (&b,
                              "MASTER_PORT: %s on rank 0's host (%s) before "
                              "any rank starts\n",
                              o->lo.port_fixed ? "checked" : "chosen",
                              o->ranks[0].host);
        dry_run_driver (&b, o);
    } else
        dry_run_ranks (&b, o);
    return dc_strbuf_take (&b);
}

/* Rank r of the --json object. */
static cJSON *json_rank (const struct dc_exec *x, int r)
{
    const struct dc_exec_rank_result *rr = &x->res.ranks[r];
    cJSON *o = cJSON_CreateObject ();

    if (!o)
        return NULL;
    cJSON_AddNumberToObject (o, "rank", r);
    cJSON_AddStringToObject (o, "host", dc_plan_host (x->o->plan, r));
    if (!rr->done) {
        cJSON_AddNullToObject (o, "status");
        cJSON_AddNullToObject (o, "signal");
    } else if (rr->st.signaled) {
        cJSON_AddNullToObject (o, "status");
        cJSON_AddNumberToObject (o, "signal", rr->st.sig);
    } else {
        cJSON_AddNumberToObject (o, "status", rr->st.code);
        cJSON_AddNullToObject (o, "signal");
    }
    if (rr->st.failed_start)
        cJSON_AddStringToObject (o, "error", rr->st.reason);
    cJSON_AddNumberToObject (o, "seconds", rr->seconds);
    return o;
}

char *dc_exec_json (const struct dc_exec *x, int exitcode, double seconds)
{
    cJSON *o = cJSON_CreateObject (), *ranks = cJSON_CreateArray ();

    if (!o || !ranks) {
        cJSON_Delete (o);
        cJSON_Delete (ranks);
        return NULL;
    }
    cJSON_AddNumberToObject (o, "exit", exitcode);
    cJSON_AddNumberToObject (o, "seconds", seconds);
    cJSON_AddNumberToObject (o, "master_port", x->res.master_port);
    for (int r = 0; r < x->size; r++) {
        cJSON *rank = json_rank (x, r);
        if (!rank)
            break;
        cJSON_AddItemToArray (ranks, rank);
    }
    cJSON_AddItemToObject (o, "ranks", ranks);
    char *text = cJSON_PrintUnformatted (o);
    cJSON_Delete (o);
    return text;
}
