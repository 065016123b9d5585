/* dist.c - distributed infer: coordinator here, `dcrun serve` on each rank
 *
 * The job's launcher starts the ranks; comm "stream" runs over its
 * channels with this process as the hub.  Signals arrive on the launcher's
 * self-pipe: Ctrl-C stops every rank (SIGTERM, then SIGKILL after the
 * grace) and leaves no output file.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compute_cli.h"
#include "dist.h"
#include "job.h"
#include "status.h"
#include "lib/comm/comm.h"
#include "lib/launch/launch.h"
#include "lib/util/log.h"
#include "lib/formats/report.h"
#include "lib/run/rank.h"
#include "gpu/compute.h"

static void put_line (int r, const char *host, const char *s, size_t n,
                      void *arg)
{
    char tag[300];
    int t = snprintf (tag, sizeof (tag), "%d@%s: ", r, host);
    char *buf = malloc ((size_t)t + n + 1);

    (void)arg;
    if (!buf)
        return;
    memcpy (buf, tag, (size_t)t);
    memcpy (buf + t, s, n);
    buf[(size_t)t + n] = '\n';
    ssize_t w = write (2, buf, (size_t)t + n + 1);
    (void)w;
    free (buf);
}

int cli_ranks_check (void *arg)
{
    struct cli_ranks *d = arg;
    return dc_job_check (&d->job);
}

static void progress (size_t done, size_t total, int alive, void *arg)
{
    struct cli_ranks *d = arg;
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

static char **rank_env (const struct dc_job *job, int r, void *arg)
{
    struct cli_ranks *rk = arg;
    struct cli_job j = {.hosts = job->hosts,
                        .plan = job->plan,
                        .launcher = job->launcher,
                        .master_port = job->master_port};
    return cli_job_rank_env (rk->cli, &j, r);
}

int cli_ranks_init (struct cli *cli, struct cli_ranks *rk)
{
    int exitcode = EXIT_OK, st;
    struct dc_hosts *hosts;
    struct dc_plan *plan;
    dc_error_t err;
    struct dc_job_opts o = {
        .launcher = cli->launcher,
        .lo = cli->launch.lo,
        .no_bind = cli->launch.no_bind,
        .kill_grace = cli->launch.kill_grace,
        .self = cli_self_path (),
        .rank_env = rank_env,
        .on_line = put_line,
        .arg = rk,
    };

    memset (rk, 0, sizeof (*rk));
    rk->cli = cli;
    rk->job.sfd = -1;
    if (!(hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    if (!(plan = cli_make_plan (cli, hosts, &cli->launch.plan, &exitcode))) {
        dc_hosts_destroy (hosts);
        return exitcode;
    }
    if ((st = dc_job_init (&rk->job, hosts, plan, &o, &err)) != DC_STATUS_OK)
        return cli_status (cli, st, 0, &err);
    return EXIT_OK;
}

int cli_ranks_launch (struct cli_ranks *rk, double heartbeat_timeout)
{
    dc_error_t err;
    int st = dc_job_launch (&rk->job, heartbeat_timeout, &err);

    if (st == DC_STATUS_SIGNAL)
        return cli_error (128 + rk->job.interrupted,
                          "%s: interrupted by SIG%s while connecting: "
                          "nothing runs",
                          rk->cli->command, cli_signame (rk->job.interrupted));
    return cli_status (rk->cli, st, 0, &err);
}

static void dry_run (struct cli_ranks *d, const struct dc_coord *co)
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

void cli_infer_warn (struct dc_report *rep, const char *output,
                     const size_t *nonfinite)
{
    char kernels[512];
    size_t n = 0;
    struct stat st;
    dc_error_t err;

    if (dc_report_kernels_differ (rep, kernels, sizeof (kernels)))
        dc_warn ("infer: the ranks use different BLAS kernels (%s): the "
                 "bytes of their rows may differ in the last bits",
                 kernels);
    if (nonfinite)
        n = *nonfinite;
    else if (!output || stat (output, &st) < 0 || !S_ISREG (st.st_mode))
        return; /* a device or a FIFO cannot be read back */
    else if (dc_nonfinite_rows_file (output, &n, &err) < 0) {
        dc_warn ("infer: cannot check the output for NaN and Inf: %s",
                 err.text);
        return;
    }
    dc_report_set_nonfinite_rows (rep, n);
    if (n > 0)
        dc_warn ("infer: %zu row%s of %s hold%s NaN or Inf", n,
                 n == 1 ? "" : "s", output ? output : "the output",
                 n == 1 ? "s" : "");
}

int cli_dist_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *o)
{
    struct cli_ranks d;
    struct dc_coord_infer_opts co_opts = *io;
    struct dc_coord *co = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    int exitcode;
    dc_error_t err;
    double t0 = now_s ();

    if ((exitcode = cli_ranks_init (cli, &d)) != EXIT_OK)
        goto out;
    int size = d.job.plan->size;
    co_opts.hosts = d.job.host;
    co_opts.check = cli_ranks_check;
    co_opts.progress = progress;
    co_opts.arg = &d;
    if (!(co = dc_coord_infer_create (&co_opts, size, &err))) {
        exitcode = cli_error (EXIT_INPUT, "infer: %s", err.text);
        goto out;
    }
    if (dc_job_via_driver (&d.job)) {
        /* inputs checked here; the ranks themselves run under MPI */
        dc_coord_destroy (co);
        co = NULL;
        exitcode = cli_dist_exec_driver (&d);
        goto out;
    }
    if (cli->dry_run) {
        dry_run (&d, co);
        exitcode = EXIT_OK;
        goto out;
    }
    if (!(rep = dc_report_create ("infer"))) {
        exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    for (size_t h = 0; h < d.job.hosts->count; h++)
        dc_report_add_host (rep, d.job.hosts->v[h].name);
    dc_report_set_layout (rep, "data");
    if ((exitcode = cli_ranks_launch (&d, o->heartbeat_timeout)) != EXIT_OK)
        goto out;
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, now_s () - t0);
    cli_progress_init (&d.prog, o->progress, "rows", dc_coord_rows (co));
    int rc = dc_coord_infer_run (co, d.job.hub, rep, &res, &err);
    cli_progress_done (&d.prog, res.rows);
    if (rc < 0)
        dc_job_stop (&d.job);
    else
        cli_infer_warn (rep, io->output_path, NULL);
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
    dc_job_fini (&d.job);
    dc_report_destroy (rep);
    return exitcode;
}

/* ================= under mpirun or srun ================= */

static void *self_serve (void *arg)
{
    struct cli_mpi *m = arg;
    struct dc_worker_opts wo = {.find = dc_compute_find};
    dc_error_t err;

    if (dc_worker_serve (m->self, &wo, &err) < 0)
        fprintf (stderr, "dcrun: rank 0: %s\n", err.text);
    return NULL;
}

static pthread_t self_thread;

int cli_mpi_check (void *arg)
{
    struct cli_mpi *m = arg;
    int s;

    while ((s = dc_sigpipe_read ()) > 0)
        if (s != SIGCHLD && !m->interrupted)
            m->interrupted = s;
    return m->interrupted;
}

int cli_mpi_start (struct cli *cli, struct cli_mpi *m, int *exitp)
{
    dc_error_t err;

    memset (m, 0, sizeof (*m));
    m->sfd = -1;
    if (dc_comm_mpi_init (&m->rank, &m->size, &err) < 0) {
        *exitp = cli_error (EXIT_LAUNCH, "%s: %s", cli->command, err.text);
        return -1;
    }
    if (!(m->self = dc_comm_mpi_rank_create (&err))) {
        *exitp = cli_error (EXIT_FAIL, "%s: %s", cli->command, err.text);
        return -1;
    }
    if (m->rank != 0) {
        /* a rank: serve, then leave */
        struct dc_worker_opts wo = {.find = dc_compute_find};
        int rc = dc_worker_serve (m->self, &wo, &err);
        dc_comm_destroy (m->self);
        dc_comm_mpi_finalize ();
        *exitp = rc < 0 ? cli_error (EXIT_FAIL, "%s: rank %d: %s", cli->command,
                                     m->rank, err.text)
                        : EXIT_OK;
        return 0;
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, 0};
    if ((m->sfd = dc_sigpipe_create (sigs)) < 0 ||
        !(m->hub = dc_comm_mpi_hub_create (&err))) {
        *exitp = cli_error (EXIT_FAIL, "%s: %s", cli->command,
                            m->sfd < 0 ? strerror (errno) : err.text);
        return -1;
    }
    if (pthread_create (&self_thread, NULL, self_serve, m) != 0) {
        *exitp = cli_error (EXIT_FAIL, "%s: cannot start rank 0's thread",
                            cli->command);
        return -1;
    }
    m->thread_started = true;
    return 1;
}

int cli_mpi_finish (struct cli_mpi *m, int exitcode)
{
    if (exitcode != EXIT_OK) {
        /* ranks may wait for work that will not come: end the MPI job */
        fflush (NULL);
        dc_comm_mpi_abort (exitcode);
    }
    if (m->thread_started)
        pthread_join (self_thread, NULL);
    dc_comm_destroy (m->self);
    dc_comm_destroy (m->hub);
    if (m->sfd >= 0)
        dc_sigpipe_destroy ();
    dc_comm_mpi_finalize ();
    return exitcode;
}

int cli_mpi_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                   const struct cli_dist_opts *o)
{
    struct cli_mpi m;
    struct dc_coord_infer_opts co_opts = *io;
    struct dc_coord *co = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    const char **hosts = NULL;
    int exitcode = EXIT_OK;
    dc_error_t err;
    double t0 = now_s ();

    int role = cli_mpi_start (cli, &m, &exitcode);
    if (role <= 0)
        return exitcode; /* a rank that served, or a failure */
    if (!(hosts = calloc ((size_t)m.size, sizeof (*hosts)))) {
        exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    for (int r = 0; r < m.size; r++)
        hosts[r] = "(mpi)";
    co_opts.hosts = hosts;
    co_opts.check = cli_mpi_check;
    co_opts.arg = &m;
    if (!(co = dc_coord_infer_create (&co_opts, m.size, &err))) {
        exitcode = cli_error (EXIT_INPUT, "infer: %s", err.text);
        goto out;
    }
    if (!(rep = dc_report_create ("infer"))) {
        exitcode = cli_error (EXIT_FAIL, "infer: out of memory");
        goto out;
    }
    dc_report_set_layout (rep, "data");
    int rc = dc_coord_infer_run (co, m.hub, rep, &res, &err);
    if (rc == 0)
        cli_infer_warn (rep, io->output_path, NULL);
    dc_report_set_total_seconds (rep, now_s () - t0);
    if (rc == 0 && o->report && dc_report_write (rep, o->report, &err) < 0)
        exitcode = cli_error (EXIT_FAIL, "infer: %s", err.text);
    else if (rc < 0 && res.status == DC_COORD_INTERRUPTED)
        exitcode = cli_error (128 + res.signal,
                              "infer: interrupted by SIG%s: no output "
                              "written",
                              cli_signame (res.signal));
    else if (rc < 0)
        exitcode = cli_error (res.status == DC_COORD_WORKER_ERROR ? EXIT_GPU
                                                                  : EXIT_FAIL,
                              "infer: %s", err.text);
out:
    dc_coord_destroy (co); /* before any abort: no partial output */
    dc_report_destroy (rep);
    free (hosts);
    return cli_mpi_finish (&m, exitcode);
}

/* ================= -L mpi, -L slurm from the head ================= */

int cli_dist_exec_driver (struct cli_ranks *rk)
{
    struct cli *cli = rk->cli;
    const struct cli_launch *l = &cli->launch;
    const char *self = cli_self_path ();
    char **av =
        calloc ((size_t)(40 + 2 * l->nexports + cli->nown), sizeof (char *));
    char np[32];
    int k = 0;

    if (!av)
        return cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
    av[k++] = (char *)self;
    av[k++] = "exec";
    av[k++] = "-L";
    av[k++] = (char *)rk->job.launcher;
    if (cli->hostfile) {
        av[k++] = "-f";
        av[k++] = (char *)cli->hostfile;
    } else if (cli->hosts) {
        av[k++] = "-H";
        av[k++] = (char *)cli->hosts;
    }
    if (cli->np > 0) {
        snprintf (np, sizeof (np), "%ld", cli->np);
        av[k++] = "-n";
        av[k++] = np;
    }
    if (l->plan.map_by == DC_MAP_BY_NODE) {
        av[k++] = "--map-by";
        av[k++] = "node";
    }
    if (l->plan.oversubscribe)
        av[k++] = "--oversubscribe";
    if (l->no_bind) {
        av[k++] = "--bind";
        av[k++] = "none";
    }
    if (l->lo.mpirun_args) {
        av[k++] = "--mpirun-args";
        av[k++] = (char *)l->lo.mpirun_args;
    }
    if (!strcmp (rk->job.launcher, "slurm")) {
        /* the tasks form one MPI job */
        av[k++] = "--srun-mpi";
        av[k++] = "pmix";
    }
    for (int i = 0; i < l->nexports; i++) {
        av[k++] = "-x";
        av[k++] = l->exports[i];
    }
    if (cli->verbose)
        av[k++] = "-v";
    av[k++] = "--";
    av[k++] = (char *)self;
    av[k++] = (char *)cli->command;
    for (int i = 0; i < cli->nown; i++)
        av[k++] = cli->own_args[i];
    av[k] = NULL;
    if (cli->dry_run) {
        for (int i = 0; av[i]; i++)
            printf ("%s%s", i ? " " : "", av[i]);
        printf ("\n");
        free (av);
        return EXIT_OK;
    }
    fflush (NULL);
    execv (self, av);
    int e = errno;
    free (av);
    return cli_error (EXIT_LAUNCH, "%s: %s: %s", cli->command, self,
                      strerror (e));
}
