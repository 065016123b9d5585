/* dist.c - the CLI's side of runs across ranks (see dist.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "lib/run/dryrun.h"
#include "status.h"

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

int cli_ranks_init (struct cli *cli, struct cli_ranks *rk)
{
    bool progress = rk->progress;
    int exitcode = EXIT_OK, st;
    struct dc_hosts *hosts;
    struct dc_plan *plan;
    dc_error_t err;

    memset (rk, 0, sizeof (*rk));
    rk->cli = cli;
    rk->progress = progress;
    rk->job.sfd = -1;
    rk->spec.a = cli_job_args (cli);
    if (!(hosts = cli_job_hosts (cli, &exitcode)))
        return exitcode;
    plan = cli_make_plan (cli, hosts, &cli->launch.plan, &exitcode);
    if (!plan || !cli_launcher_ok (cli)) {
        exitcode = plan ? EXIT_USAGE : exitcode;
        dc_plan_destroy (plan);
        dc_hosts_destroy (hosts);
        return exitcode;
    }
    if ((st = dc_jobspec_job_init (&rk->job, &rk->spec, hosts, plan,
                                   cli_self_path (), put_line, &err)))
        return cli_status (cli->command, st, 0, &err);
    cli_job_check_exports (cli);
    return EXIT_OK;
}

void cli_ranks_fini (struct cli_ranks *rk)
{
    dc_jobspec_job_fini (&rk->job, &rk->spec);
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

/* Print a plan of lib/run/dryrun.h (text NULL: out of memory). */
void cli_put_text (char *text)
{
    if (!text)
        cli_error (EXIT_FAIL, "--dry-run: out of memory");
    fputs (text ? text : "", stdout);
    free (text);
}

void cli_dry_run_data (const struct dc_job *job, size_t rows, size_t chunk_rows,
                       void *arg)
{
    (void)arg;
    cli_put_text (dc_dryrun_data (job, rows, chunk_rows, cli_self_path ()));
}

void cli_dry_run_ranks (const struct dc_job *job, void *arg)
{
    (void)arg;
    cli_put_text (dc_dryrun_ranks (job, cli_self_path ()));
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
