/* job.c - a job from the command line: lib/run/jobspec.h does the work,
 * this file prints its errors and warnings and picks the exit statuses */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "lib/run/job.h"
#include "status.h"

struct dc_job_args cli_job_args (const struct cli *cli)
{
    const struct cli_launch *l = &cli->launch;

    return (struct dc_job_args){
        .hostfile = cli->hostfile,
        .hosts = cli->hosts,
        .np = cli->np,
        .launcher = cli->launcher,
        .verbose = cli->verbose,
        .dry_run = cli->dry_run,
        .plan = l->plan,
        .lo = l->lo,
        .no_bind = l->no_bind,
        .kill_grace = l->kill_grace,
        .exports = l->exports,
        .nexports = l->nexports,
        .export_all = l->export_all,
        .gpu_bind = l->gpu_bind,
        .wdir = l->wdir,
        .exclude = l->exclude,
        .master_port = l->master_port,
    };
}

bool cli_job_wanted (const struct cli *cli)
{
    struct dc_job_args a = cli_job_args (cli);
    return dc_jobspec_wanted (&a);
}

bool cli_launcher_ok (const struct cli *cli)
{
    dc_error_t err;

    if (!cli->launcher || !strcmp (cli->launcher, "auto") ||
        dc_launch_find (cli->launcher, &err))
        return true;
    cli_usage_error (cli, "%s", err.text);
    return false;
}

struct dc_hosts *cli_job_hosts (struct cli *cli, int *exitp)
{
    struct dc_hosts *hosts = cli_resolve_hosts (cli, 0, exitp);
    struct dc_job_args a = cli_job_args (cli);
    int ngpus;

    /* no host list: this host with one slot per GPU, as `dcrun hosts` */
    if (hosts && !strcmp (hosts->origin, "this host") &&
        (ngpus = dc_jobspec_local_gpus ()) > 0) {
        dc_hosts_destroy (hosts);
        hosts = cli_resolve_hosts (cli, ngpus, exitp);
    }
    if (hosts)
        dc_jobspec_probe_slots (&a, hosts);
    return hosts;
}

int cli_job_attach (struct cli *cli, struct cli_job *job)
{
    struct dc_job_args a = cli_job_args (cli);

    if (dc_jobspec_attach (&a, job) < 0)
        return cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
    cli_job_check_exports (cli);
    return EXIT_OK;
}

int cli_job_init (struct cli *cli, struct cli_job *job)
{
    struct dc_job_args a = cli_job_args (cli);
    int exitcode = EXIT_OK, st;
    dc_error_t err;

    memset (job, 0, sizeof (*job));
    if (!(job->hosts = cli_job_hosts (cli, &exitcode)))
        return exitcode;
    job->plan = cli_make_plan (cli, job->hosts, &cli->launch.plan, &exitcode);
    if (job->plan && !cli_launcher_ok (cli))
        exitcode = EXIT_USAGE;
    else if (job->plan && (st = dc_jobspec_init (&a, job, &err)) != 0)
        exitcode = cli_status (cli->command, st, 0, &err);
    else if (job->plan) {
        cli_job_check_exports (cli);
        return EXIT_OK;
    }
    dc_jobspec_fini (job);
    return exitcode;
}

char **cli_job_rank_env (const struct cli *cli, const struct cli_job *job,
                         int r)
{
    struct dc_job_args a = cli_job_args (cli);
    return dc_jobspec_rank_env (&a, job, r);
}

void cli_job_check_exports (const struct cli *cli)
{
    struct dc_job_args a = cli_job_args (cli);
    const char *x;

    for (int i = 0; (x = dc_jobspec_unset_export (&a, &i));)
        fprintf (stderr,
                 "dcrun: warning: -x %s: not set here, not passed to the "
                 "ranks\n",
                 x);
}

int cli_env_read (int fd, long bytes)
{
    dc_error_t err;
    int st = dc_jobspec_env_read (fd, bytes, &err);

    return st == DC_STATUS_OK ? EXIT_OK : cli_status (NULL, st, 0, &err);
}

const char *cli_signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}
