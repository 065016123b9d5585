/* dist.c - distributed infer: coordinator here, `dcrun serve` on each rank
 *
 * The job's launcher starts the ranks; comm "stream" runs over its
 * channels with this process as the hub.  Signals arrive on the launcher's
 * self-pipe: Ctrl-C stops every rank (SIGTERM, then SIGKILL after the
 * grace) and leaves no output file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compute_cli.h"
#include "dist.h"
#include "job.h"
#include "lib/comm.h"
#include "lib/launch.h"
#include "lib/report.h"

#define LINE_MAX_BYTES 4096

struct dist {
    struct cli *cli;
    struct cli_job job;
    struct cli_progress prog;
    int interrupted;
    /* stderr lines of the ranks, tagged */
    char **line;
    size_t *linelen;
};

static void put_line (struct dist *d, int r, const char *s, size_t n)
{
    char tag[300];
    int t = snprintf (tag, sizeof (tag), "%d@%s: ", r,
                      dc_plan_host (d->job.plan, r));
    char *buf = malloc ((size_t)t + n + 1);

    if (!buf)
        return;
    memcpy (buf, tag, (size_t)t);
    memcpy (buf + t, s, n);
    buf[(size_t)t + n] = '\n';
    ssize_t w = write (2, buf, (size_t)t + n + 1);
    (void)w;
    free (buf);
}

static void on_stderr (int r, const char *data, size_t len, void *arg)
{
    struct dist *d = arg;
    char *lb = d->line[r];
    size_t *ll = &d->linelen[r];

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' || *ll == LINE_MAX_BYTES) {
            put_line (d, r, lb, *ll);
            *ll = 0;
            if (data[i] == '\n')
                continue;
        }
        lb[(*ll)++] = data[i];
    }
}

static int check (void *arg)
{
    struct dist *d = arg;
    int s;

    while ((s = dc_sigpipe_read ()) > 0)
        if (s != SIGCHLD && !d->interrupted)
            d->interrupted = s;
    return d->interrupted;
}

static void progress (size_t done, size_t total, int alive, void *arg)
{
    struct dist *d = arg;
    char extra[64];

    (void)total;
    snprintf (extra, sizeof (extra), "%d rank%s alive", alive,
              alive == 1 ? "" : "s");
    cli_progress_update (&d->prog, done, extra);
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Stop every rank: SIGTERM, then SIGKILL after the grace. */
static void stop_ranks (struct dc_launch *l, struct dc_comm *hub,
                        double grace)
{
    double until = now_s () + grace;

    dc_launch_signal (l, -1, SIGTERM);
    while (dc_comm_stream_running (hub) > 0 && now_s () < until) {
        struct dc_comm_msg m;
        if (dc_comm_recv (hub, &m, 50, NULL) > 0)
            free (m.data);
    }
    if (dc_comm_stream_running (hub) > 0)
        dc_launch_signal (l, -1, SIGKILL);
}

static void dry_run (struct dist *d, const struct dc_coord *co)
{
    const struct dc_plan *plan = d->job.plan;

    printf ("launcher: %s\n", d->job.launcher);
    printf ("rows: %zu in chunks of %zu\n", dc_coord_rows (co),
            dc_coord_chunk_rows (co));
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        printf ("rank %d on %s: gpus ", r, dc_plan_host (plan, r));
        if (rk->ngpus == 0)
            printf ("-");
        for (int i = 0; i < rk->ngpus; i++)
            printf ("%s%d", i ? "," : "", rk->gpus[i]);
        printf (", cpus %s: %s serve\n", rk->cpus ? rk->cpus : "-",
                cli_self_path ());
    }
}

int cli_dist_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *o)
{
    struct dist d = {.cli = cli};
    struct dc_coord_infer_opts co_opts = *io;
    struct dc_coord *co = NULL;
    struct dc_comm *hub = NULL;
    struct dc_launch *l = NULL;
    struct dc_launch_rank *lr = NULL;
    struct dc_report *rep = NULL;
    const char **hosts = NULL;
    struct dc_coord_result res;
    int exitcode, sfd = -1;
    dc_error_t err;
    double t0 = now_s ();

    if ((exitcode = cli_job_init (cli, &d.job)) != EXIT_OK)
        return exitcode;
    int size = d.job.plan->size;
    if (!(hosts = calloc ((size_t)size, sizeof (*hosts)))
        || !(lr = calloc ((size_t)size, sizeof (*lr)))
        || !(d.line = calloc ((size_t)size, sizeof (*d.line)))
        || !(d.linelen = calloc ((size_t)size, sizeof (*d.linelen)))) {
        exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    for (int r = 0; r < size; r++) {
        hosts[r] = dc_plan_host (d.job.plan, r);
        if (!(d.line[r] = malloc (LINE_MAX_BYTES + 1))) {
            exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
            goto out;
        }
    }
    co_opts.hosts = hosts;
    co_opts.check = check;
    co_opts.progress = progress;
    co_opts.arg = &d;
    if (!(co = dc_coord_infer_create (&co_opts, size, &err))) {
        exitcode = cli_error (EXIT_INPUT, "infer: %s", err.text);
        goto out;
    }
    if (cli->dry_run) {
        dry_run (&d, co);
        exitcode = EXIT_OK;
        goto out;
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0};
    signal (SIGPIPE, SIG_IGN);
    if ((sfd = dc_sigpipe_create (sigs)) < 0) {
        exitcode = cli_error (EXIT_FAIL, "infer: signal pipe: %s",
                              strerror (errno));
        goto out;
    }
    if (!(hub = dc_comm_stream_hub_create (size, on_stderr, &d, sfd, &err))) {
        exitcode = cli_error (EXIT_FAIL, "infer: %s", err.text);
        goto out;
    }
    struct dc_launch_opts lo = cli->launch.lo;
    lo.on_output = dc_comm_stream_on_output;
    lo.on_exit = dc_comm_stream_on_exit;
    lo.arg = hub;
    lo.nranks_total = size;
    lo.cancel_fd = sfd;
    lo.stdin_null = false;
    if (!lo.remote_dcrun)
        lo.remote_dcrun = cli_self_path ();
    static char *serve_argv[3];
    serve_argv[0] = (char *)cli_self_path ();
    serve_argv[1] = "serve";
    serve_argv[2] = NULL;
    for (int r = 0; r < size; r++) {
        const struct dc_host *h = &d.job.hosts->v[d.job.plan->ranks[r].host];
        lr[r].rank = r;
        lr[r].host = h->name;
        lr[r].user = h->user;
        lr[r].port = h->port;
        lr[r].cpus = cli->launch.no_bind ? NULL : d.job.plan->ranks[r].cpus;
        lr[r].argv = serve_argv;
        lr[r].exec_in_place = true;
        if (!(lr[r].env = cli_job_rank_env (cli, &d.job, r))) {
            exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
            goto out;
        }
    }
    if (!(rep = dc_report_create ("infer"))) {
        exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    for (size_t h = 0; h < d.job.hosts->count; h++)
        dc_report_add_host (rep, d.job.hosts->v[h].name);
    dc_report_set_layout (rep, "data");
    if (!(l = dc_launch_create (d.job.launcher, &lo, &err))) {
        exitcode = cli_error (EXIT_LAUNCH, "infer: %s", err.text);
        goto out;
    }
    if (dc_launch_spawn (l, lr, size, &err) < 0) {
        int s = check (&d);
        if (s > 0)
            exitcode = cli_error (128 + s,
                                  "infer: interrupted by SIG%s while "
                                  "connecting: nothing runs",
                                  cli_signame (s));
        else
            exitcode = cli_error (EXIT_LAUNCH, "infer: %s", err.text);
        goto out;
    }
    dc_comm_stream_hub_attach (hub, l);
    dc_comm_stream_set_heartbeat (hub, o->heartbeat_timeout > 0
                                           ? o->heartbeat_timeout
                                           : 30);
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, now_s () - t0);
    cli_progress_init (&d.prog, o->progress, "rows", dc_coord_rows (co));
    int rc = dc_coord_infer_run (co, hub, rep, &res, &err);
    cli_progress_done (&d.prog, res.rows);
    if (rc < 0)
        stop_ranks (l, hub,
                    cli->launch.kill_grace > 0 ? cli->launch.kill_grace : 3);
    dc_report_set_total_seconds (rep, now_s () - t0);
    if (rc == 0 && o->report && dc_report_write (rep, o->report, &err) < 0) {
        exitcode = cli_error (EXIT_FAIL, "infer: %s", err.text);
        goto out;
    }
    switch (res.status) {
    case DC_COORD_OK:
        if (res.nlost > 0)
            exitcode = cli_error (EXIT_OK,
                                  "infer: %zu rows written to %s; lost on "
                                  "the way: %s",
                                  res.rows, io->output_path, res.lost);
        else
            exitcode = EXIT_OK;
        break;
    case DC_COORD_INTERRUPTED:
        exitcode = cli_error (128 + res.signal,
                              "infer: interrupted by SIG%s: every rank "
                              "stopped, no output written",
                              cli_signame (res.signal));
        break;
    case DC_COORD_WORKER_ERROR:
        exitcode = cli_error (EXIT_GPU, "infer: %s", err.text);
        break;
    case DC_COORD_ALL_LOST:
        exitcode = cli_error (EXIT_FAIL,
                              "infer: no output written: every rank was "
                              "lost: %s",
                              res.lost);
        break;
    default:
        exitcode = cli_error (EXIT_FAIL, "infer: %s", err.text);
        break;
    }
out:
    dc_coord_destroy (co); /* an output not committed is removed */
    dc_launch_destroy (l);
    dc_comm_destroy (hub);
    if (sfd >= 0)
        dc_sigpipe_destroy ();
    dc_report_destroy (rep);
    for (int r = 0; lr && r < d.job.plan->size; r++)
        cli_strv_free ((char **)lr[r].env);
    for (int r = 0; d.line && r < d.job.plan->size; r++)
        free (d.line[r]);
    free (d.line);
    free (d.linelen);
    free (lr);
    free (hosts);
    cli_job_fini (&d.job);
    return exitcode;
}
