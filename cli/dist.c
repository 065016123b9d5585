/* dist.c - the CLI's side of runs across ranks (see dist.h) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute_cli.h"
#include "dist.h"
#include "job.h"
#include "status.h"
#include "lib/comm/comm.h"
#include "lib/launch/launch.h"
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

static char **rank_env (const struct dc_job *job, int r, void *arg)
{
    struct cli_ranks *rk = arg;

    rk->cj.master_port = job->master_port;
    return cli_job_rank_env (rk->cli, &rk->cj, r);
}

static char *const *worker_args (const struct dc_job *job, int r, void *arg)
{
    struct cli_ranks *rk = arg;

    (void)job;
    return cli_job_worker_args (&rk->cj, r);
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
        .worker_args = worker_args,
        .on_line = put_line,
        .arg = rk,
    };

    bool progress = rk->progress;

    memset (rk, 0, sizeof (*rk));
    rk->cli = cli;
    rk->progress = progress;
    rk->job.sfd = -1;
    /* the ranks start in the caller's folder on every host (--wdir) */
    o.wdir = cli->launch.wdir;
    if (!o.wdir && getcwd (rk->cwd, sizeof (rk->cwd)))
        o.wdir = rk->cwd;
    if (!(hosts = cli_job_hosts (cli, &exitcode)))
        return exitcode;
    if (!(plan = cli_make_plan (cli, hosts, &cli->launch.plan, &exitcode))) {
        dc_hosts_destroy (hosts);
        return exitcode;
    }
    if (!cli_launcher_ok (cli)) {
        dc_plan_destroy (plan);
        dc_hosts_destroy (hosts);
        return EXIT_USAGE;
    }
    /* the job owns hosts and plan from here on, even when it fails */
    if ((st = dc_job_init (&rk->job, hosts, plan, &o, &err)) != DC_STATUS_OK) {
        exitcode = cli_status (cli->command, st, 0, &err);
        dc_job_fini (&rk->job);
        return exitcode;
    }
    /* local ranks: a --wdir that is not here fails before any starts (ssh
     * checks each host's before its ranks start) */
    if (cli->launch.wdir && !strcmp (rk->job.launcher, "local") &&
        access (cli->launch.wdir, X_OK) < 0) {
        exitcode = cli_error (EXIT_LAUNCH, "%s: --wdir %s: %s", cli->command,
                              cli->launch.wdir, strerror (errno));
        dc_job_fini (&rk->job);
        return exitcode;
    }
    rk->cj.hosts = rk->job.hosts;
    rk->cj.plan = rk->job.plan;
    rk->cj.launcher = rk->job.launcher;
    rk->cj.master_port = rk->job.master_port;
    if ((exitcode = cli_job_attach (cli, &rk->cj)) != EXIT_OK)
        cli_ranks_fini (rk); /* the caller does not on a failure */
    return exitcode;
}

void cli_ranks_fini (struct cli_ranks *rk)
{
    cli_job_detach (&rk->cj); /* before the plan it borrows goes */
    dc_job_fini (&rk->job);
}

int cli_ranks_launch (struct cli_ranks *rk, double heartbeat_timeout)
{
    dc_error_t err = {.text = ""}; /* printed on success too when set */
    int st = dc_job_launch (&rk->job, heartbeat_timeout, &err);

    if (st == DC_STATUS_SIGNAL)
        return cli_error (128 + rk->job.interrupted,
                          "%s: interrupted by SIG%s while connecting: "
                          "nothing runs",
                          rk->cli->command, cli_signame (rk->job.interrupted));
    return cli_status (rk->cli->command, st, 0, &err);
}

void cli_dry_run_data (const struct dc_job *job, size_t rows, size_t chunk_rows,
                       void *arg)
{
    const struct dc_plan *plan = job->plan;

    (void)arg;
    if (!job) {
        printf ("rows: 0: nothing to run\n");
        return;
    }
    printf ("launcher: %s\n", job->launcher);
    printf ("rows: %zu in chunks of %zu\n", rows, chunk_rows);
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

void cli_dry_run_ranks (const struct dc_job *job, void *arg)
{
    (void)arg;
    printf ("launcher: %s\n", job->launcher);
    for (int r = 0; r < job->plan->size; r++)
        printf ("rank %d on %s: %s serve\n", r, job->host[r], cli_self_path ());
}

void cli_run_progress (enum dc_run_progress ev, const char *what, size_t done,
                       size_t total, int alive, void *arg)
{
    struct cli_ranks *d = arg;
    char extra[64];

    if (ev == DC_PROGRESS_START)
        cli_progress_init (&d->prog, d->progress, what, total);
    else if (ev == DC_PROGRESS_DONE)
        cli_progress_done (&d->prog, done);
    else if (alive < 0)
        cli_progress_update (&d->prog, done, NULL);
    else {
        snprintf (extra, sizeof (extra), "%d rank%s alive", alive,
                  alive == 1 ? "" : "s");
        cli_progress_update (&d->prog, done, extra);
    }
}

void cli_note (const char *text, bool always, void *arg)
{
    struct cli_ranks *rk = arg;

    if (always || !rk->cli->quiet)
        fprintf (stderr, "dcrun: %s\n", text);
}

void cli_rank_error (const char *text, void *arg)
{
    (void)arg;
    fprintf (stderr, "dcrun: rank 0: %s\n", text);
}

int cli_mpi_start (struct cli *cli, struct dc_job_mpi *m, int *exitp)
{
    bool hub;
    dc_error_t err;
    int st;

    m->on_error = cli_rank_error;
    st = dc_job_mpi_start (m, &hub, &err);
    *exitp = cli_status (cli->command, st, 0, &err);
    if (!hub)
        return 0;
    return st == DC_STATUS_OK ? 1 : -1;
}

int cli_dist_exec_driver (struct cli_ranks *rk)
{
    struct cli *cli = rk->cli;
    struct dc_job_args a = cli_job_args (cli);
    const char *self = cli_self_path ();
    char **av = dc_jobspec_driver_argv (&a, rk->job.launcher, self,
                                        cli->command, cli->own_args, cli->nown);

    if (!av)
        return cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
    if (cli->dry_run) {
        char *line = dc_launch_shell_join (av);
        printf ("%s\n", line ? line : "");
        free (line);
        cli_strv_free (av);
        return EXIT_OK;
    }
    /* -x NAME=VALUE: the inner exec has NAME, the value comes from here */
    for (int i = 0; i < cli->launch.nexports; i++)
        if (strchr (cli->launch.exports[i], '='))
            putenv (cli->launch.exports[i]);
    fflush (NULL);
    execv (self, av);
    int e = errno;
    cli_strv_free (av);
    return cli_error (EXIT_LAUNCH, "%s: %s: %s", cli->command, self,
                      strerror (e));
}
