/* job.c - a job from the command line: host list and rank map (placement
 * and launcher in lib/run/job.c), and the rank environment */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/run/job.h"
#include "status.h"

bool cli_job_wanted (const struct cli *cli)
{
    const char *s;

    if (cli->hostfile || cli->hosts || cli->np > 1 || cli->launcher)
        return true;
    if (((s = getenv ("DCRUN_HOSTFILE")) && *s) ||
        ((s = getenv ("PBS_NODEFILE")) && *s))
        return true;
    /* a Slurm allocation, but not inside one of its job steps */
    if (((s = getenv ("SLURM_JOB_NODELIST")) && *s) &&
        !getenv ("SLURM_STEP_ID"))
        return true;
    return false;
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

int cli_job_init (struct cli *cli, struct cli_job *job)
{
    int exitcode = EXIT_OK, st;
    dc_error_t err;

    memset (job, 0, sizeof (*job));
    if (!(job->hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    if (!(job->plan =
              cli_make_plan (cli, job->hosts, &cli->launch.plan, &exitcode)))
        goto fail;
    if (!cli_launcher_ok (cli)) {
        exitcode = EXIT_USAGE;
        goto fail;
    }
    if ((st = dc_job_prepare (job->hosts, job->plan, cli->launcher,
                              &job->launcher, &err)) != DC_STATUS_OK) {
        exitcode = cli_status (cli->command, st, 0, &err);
        goto fail;
    }
    job->master_port = dc_launch_free_port ();
    return EXIT_OK;
fail:
    cli_job_fini (job);
    return exitcode;
}

void cli_job_fini (struct cli_job *job)
{
    dc_plan_destroy (job->plan);
    dc_hosts_destroy (job->hosts);
    job->plan = NULL;
    job->hosts = NULL;
}

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

void cli_strv_free (char **v)
{
    for (int i = 0; v && v[i]; i++)
        free (v[i]);
    free (v);
}

char **cli_job_rank_env (const struct cli *cli, const struct cli_job *job,
                         int r)
{
    const struct dc_plan *plan = job->plan;
    const struct dc_rank *rk = &plan->ranks[r];
    const struct cli_launch *l = &cli->launch;
    char **env = calloc ((size_t)l->nexports + 16, sizeof (char *));
    int k = 0;

    if (!env)
        return NULL;
    env[k++] = fmt ("DCRUN_RANK=%d", rk->rank);
    env[k++] = fmt ("DCRUN_SIZE=%d", plan->size);
    env[k++] = fmt ("DCRUN_LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("DCRUN_LOCAL_SIZE=%d", rk->local_size);
    env[k++] = fmt ("DCRUN_NODE_RANK=%d", rk->node_rank);
    env[k++] = fmt ("DCRUN_HOST=%s", dc_plan_host (plan, r));
    env[k++] = fmt ("RANK=%d", rk->rank);
    env[k++] = fmt ("WORLD_SIZE=%d", plan->size);
    env[k++] = fmt ("LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("LOCAL_WORLD_SIZE=%d", rk->local_size);
    env[k++] = fmt ("MASTER_ADDR=%s", dc_plan_host (plan, 0));
    env[k++] = fmt ("MASTER_PORT=%d", job->master_port);
    if (rk->ngpus > 0) {
        char gpus[4096];
        size_t n = 0;
        gpus[0] = '\0';
        for (int i = 0; i < rk->ngpus && n < sizeof (gpus) - 16; i++)
            n += (size_t)snprintf (gpus + n, sizeof (gpus) - n, "%s%d",
                                   i ? "," : "", rk->gpus[i]);
        env[k++] = fmt ("CUDA_VISIBLE_DEVICES=%s", gpus);
    }
    for (int i = 0; i < l->nexports; i++) {
        const char *x = l->exports[i];
        if (strchr (x, '='))
            env[k++] = strdup (x);
        else if (getenv (x))
            env[k++] = fmt ("%s=%s", x, getenv (x));
    }
    for (int i = 0; i < k; i++)
        if (!env[i]) {
            cli_strv_free (env);
            return NULL;
        }
    env[k] = NULL;
    return env;
}

int cli_env_read (int fd, long bytes)
{
    char *buf;
    size_t got = 0;

    if (bytes < 0 || bytes > DC_ENV_BLOCK_MAX)
        return cli_error (EXIT_USAGE,
                          "worker: --env-stdin %ld: expected 0 "
                          "to %d bytes",
                          bytes, DC_ENV_BLOCK_MAX);
    if (bytes == 0)
        return EXIT_OK;
    if (!(buf = malloc ((size_t)bytes + 1)))
        return cli_error (EXIT_FAIL, "worker: out of memory");
    while (got < (size_t)bytes) {
        ssize_t n = read (fd, buf + got, (size_t)bytes - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free (buf);
            return cli_error (EXIT_LAUNCH,
                              "worker: the rank environment "
                              "ended after %zu of %ld bytes",
                              got, bytes);
        }
        got += (size_t)n;
    }
    buf[bytes] = '\0';
    if (buf[bytes - 1] != '\0') {
        free (buf);
        return cli_error (EXIT_LAUNCH, "worker: the rank environment does "
                                       "not end with a NUL byte");
    }
    /* every entry first, then the environment: all or nothing */
    for (char *p = buf; p < buf + bytes; p += strlen (p) + 1) {
        char *eq = strchr (p, '=');
        if (!eq || eq == p) {
            free (buf);
            return cli_error (EXIT_LAUNCH, "worker: the rank environment "
                                           "holds an entry without a name");
        }
    }
    for (char *p = buf; p < buf + bytes; p += strlen (p) + 1)
        putenv (p); /* buf stays: the environment points into it */
    return EXIT_OK;
}

void cli_env_unwrap (void)
{
    extern char **environ;
    size_t plen = strlen (DC_XENV_PREFIX), n = 0;
    char **names;

    for (char **e = environ; e && *e; e++)
        n += !strncmp (*e, DC_XENV_PREFIX, plen);
    if (n == 0 || !(names = calloc (n + 1, sizeof (*names))))
        return;
    n = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr (*e, '=');
        if (!strncmp (*e, DC_XENV_PREFIX, plen) && eq &&
            !(names[n] = strndup (*e, (size_t)(eq - *e))))
            break;
        n += names[n] != NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv (names[i]);
        const char *eq = v ? strchr (v, '=') : NULL;
        char *entry = v && eq && eq != v ? strdup (v) : NULL;
        unsetenv (names[i]);
        if (entry)
            putenv (entry);
        free (names[i]);
    }
    free (names);
}

const char *cli_self_path (void)
{
    static char buf[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", buf, sizeof (buf) - 1);

    if (n <= 0)
        return "dcrun";
    buf[n] = '\0';
    return buf;
}

const char *cli_signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}
