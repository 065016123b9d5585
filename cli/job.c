/* job.c - host list, placement, launcher and rank environment of a job */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu/probe.h"
#include "job.h"
#include "remote.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/log.h"
#include "lib/hosts/topo.h"

static char *fmt (const char *f, ...) __attribute__ ((format (printf, 1, 2)));

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

static const char *pick_launcher (const struct cli *cli,
                                  const struct dc_plan *plan)
{
    const char *name = cli->launcher;

    if (name && strcmp (name, "auto") != 0)
        return name;
    const char **names = calloc ((size_t)plan->size + 1, sizeof (char *));
    if (!names)
        return NULL;
    for (int r = 0; r < plan->size; r++)
        names[r] = dc_plan_host (plan, r);
    name = dc_launch_auto (names, (size_t)plan->size);
    free (names);
    return name;
}

/* Place the ranks of the hosts that are this host on its topology. */
static int place_local (struct cli_job *job)
{
    struct dc_topo *topo = NULL;
    dc_error_t err;

    for (size_t h = 0; h < job->hosts->count; h++) {
        if (!dc_launch_is_local_host (job->hosts->v[h].name))
            continue;
        if (!topo && !(topo = dc_probe_host (NULL, &err))) {
            dc_log (DC_LOG_INFO, "cannot probe this host (%s): no placement",
                    err.text);
            return 0;
        }
        if (dc_plan_place (job->plan, h, topo, &err) < 0)
            dc_log (DC_LOG_INFO, "%s: no placement: %s", job->hosts->v[h].name,
                    err.text);
    }
    dc_topo_destroy (topo);
    return 0;
}

/* Hosts without slots= that the ranks reach over ssh (-L ssh: every one;
 * auto: those that are not this host) get one slot per GPU as their own
 * `dcrun probe` sees it (one when none), probed over ssh in parallel
 * before the launch (cli/remote.c: one more connection per such host).
 * A host that cannot be probed keeps 1 slot: the launch then says why. */
static void probe_slots (const struct cli *cli, struct dc_hosts *hosts)
{
    const char *ln = cli->launcher;
    bool ssh = ln && !strcmp (ln, "ssh");
    bool aut = !ln || !strcmp (ln, "auto");
    struct dc_hosts *sub = NULL;
    struct remote_result *res = NULL;
    size_t *idx = NULL, n = 0;
    char **env = NULL;
    int k = 0;

    int ppr = cli->launch.plan.ppr_n;

    if (!ssh && !aut && !ppr)
        return;
    if (cli->dry_run) { /* starts nothing, connects nowhere */
        dc_log (DC_LOG_INFO, "--dry-run: hosts are not probed for slots");
        return;
    }
    if (!(idx = calloc (hosts->count + 1, sizeof (*idx))) ||
        !(sub = dc_hosts_create ("probe")))
        goto out;
    for (size_t h = 0; h < hosts->count; h++) {
        const struct dc_host *host = &hosts->v[h];
        if (!ppr && (!host->slots_default ||
                     (!ssh && dc_launch_is_local_host (host->name))))
            continue;
        if (dc_hosts_add (sub, host) < 0)
            goto out;
        idx[n++] = h;
    }
    if (n == 0)
        goto out;
    /* the -x exports: the probe sees what the ranks will see */
    if (!(env = calloc ((size_t)cli->launch.nexports + 1, sizeof (*env))) ||
        !(res = calloc (n, sizeof (*res))))
        goto out;
    for (int i = 0; i < cli->launch.nexports; i++) {
        const char *x = cli->launch.exports[i];
        if (strchr (x, '='))
            env[k++] = strdup (x);
        else if (getenv (x))
            env[k++] = fmt ("%s=%s", x, getenv (x));
        if (k > 0 && !env[k - 1])
            goto out;
    }
    dc_log (DC_LOG_INFO, "probing %zu host%s %s", n, n == 1 ? "" : "s",
            ppr ? "for --map-by ppr" : "without slots= for their GPUs");
    /* ppr: this host in-process unless the ranks go over ssh */
    remote_probe_all_env (sub, &cli->launch.lo, ppr && !ssh, env, res);
    for (size_t i = 0; i < n; i++) {
        struct dc_host *host = &hosts->v[idx[i]];
        if (ppr) {
            int objs = res[i].stage == REMOTE_OK
                           ? dc_plan_ppr_objects (res[i].topo,
                                                  cli->launch.plan.ppr_obj)
                           : 1;
            long sl = (long)ppr * objs;
            host->slots = (int)(sl < DC_MAX_SLOTS ? sl : DC_MAX_SLOTS);
            host->max_slots = 0;
            dc_log (DC_LOG_INFO, "%s: %d slots (ppr: %d %s%s)", host->name,
                    host->slots, objs,
                    cli->launch.plan.ppr_obj == DC_PPR_NUMA ? "NUMA nodes"
                                                            : "packages",
                    res[i].stage == REMOTE_OK ? "" : ", not probed");
            continue;
        }
        if (res[i].stage != REMOTE_OK || !res[i].topo) {
            dc_log (DC_LOG_INFO, "%s: cannot probe (%s): 1 slot", host->name,
                    res[i].reason);
            continue;
        }
        int g = res[i].topo->ngpus;
        host->slots = g > 0 ? (g < DC_MAX_SLOTS ? g : DC_MAX_SLOTS) : 1;
        if (host->max_slots && host->slots > host->max_slots)
            host->slots = host->max_slots;
        dc_log (DC_LOG_INFO, "%s: %d slot%s (%d GPU%s, probed there)",
                host->name, host->slots, host->slots == 1 ? "" : "s", g,
                g == 1 ? "" : "s");
    }
out:
    if (res)
        remote_results_free (res, n);
    cli_strv_free (env);
    dc_hosts_destroy (sub);
    free (idx);
}

static void worker_args_free (struct cli_job *job)
{
    if (job->worker_args && job->plan)
        for (int r = 0; r < job->plan->size; r++)
            cli_strv_free (job->worker_args[r]);
    free (job->worker_args);
    job->worker_args = NULL;
}

/* The ranks the head could not place (remote hosts) are placed by their
 * host's agent: `dcrun worker --place [--place-no-bind] [--place-slots S]
 * [--place-gpus LIST] [--gpus-per-rank N] [-v]`.  Under Slurm, Slurm
 * places them. */
static int make_worker_args (const struct cli *cli, struct cli_job *job)
{
    const struct dc_plan *plan = job->plan;

    if (!strcmp (job->launcher, "local") || !strcmp (job->launcher, "slurm"))
        return 0;
    if (!(job->worker_args = calloc ((size_t)plan->size, sizeof (char **))))
        return -1;
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        const struct dc_host *h = &job->hosts->v[rk->host];
        char **v, list[4096];
        int k = 0;
        size_t n = 0;
        if (rk->cpus)
            continue; /* placed here */
        if (!(v = job->worker_args[r] = calloc (14, sizeof (char *))))
            return -1;
        v[k++] = strdup ("--place");
        if (cli->launch.no_bind)
            v[k++] = strdup ("--place-no-bind");
        if (h->slots != rk->local_size) {
            v[k++] = strdup ("--place-slots");
            v[k++] = fmt ("%d", h->slots);
        }
        if (h->gpus && h->ngpus > 0) {
            list[0] = '\0';
            for (int i = 0; i < h->ngpus && n < sizeof (list) - 16; i++)
                n += (size_t)snprintf (list + n, sizeof (list) - n, "%s%d",
                                       i ? "," : "", h->gpus[i]);
            v[k++] = strdup ("--place-gpus");
            v[k++] = strdup (list);
        }
        if (plan->ppr_n > 0) {
            v[k++] = strdup ("--map-by");
            v[k++] = fmt ("ppr:%d:%s", plan->ppr_n,
                          plan->ppr_obj == DC_PPR_NUMA ? "numa" : "package");
        }
        if (plan->gpus_per_rank > 0) {
            v[k++] = strdup ("--gpus-per-rank");
            v[k++] = fmt ("%d", plan->gpus_per_rank);
        }
        if (cli->verbose > 0)
            v[k++] = strdup ("-v");
        for (int i = 0; i < k; i++)
            if (!v[i])
                return -1;
    }
    return 0;
}

char *const *cli_job_worker_args (const struct cli_job *job, int r)
{
    if (!job || !job->worker_args || !job->plan || r < 0 ||
        r >= job->plan->size)
        return NULL;
    return job->worker_args[r];
}

int cli_job_init (struct cli *cli, struct cli_job *job)
{
    int exitcode = EXIT_OK;
    dc_error_t err;

    memset (job, 0, sizeof (*job));
    if (!(job->hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    probe_slots (cli, job->hosts);
    if (!(job->plan =
              cli_make_plan (cli, job->hosts, &cli->launch.plan, &exitcode)))
        goto fail;
    if (!(job->launcher = pick_launcher (cli, job->plan))) {
        exitcode = cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
        goto fail;
    }
    /* ssh and mpi start a dcrun worker on every host, this one included:
     * that agent places the ranks of its host (make_worker_args) */
    if ((!strcmp (job->launcher, "local") ||
         !strcmp (job->launcher, "slurm")) &&
        place_local (job) < 0) {
        exitcode = EXIT_INPUT;
        goto fail;
    }
    if (!dc_launch_find (job->launcher, &err)) {
        cli_usage_error (cli, "%s", err.text);
        exitcode = EXIT_USAGE;
        goto fail;
    }
    if (!strcmp (job->launcher, "local")) {
        for (int r = 0; r < job->plan->size; r++)
            if (!dc_launch_is_local_host (dc_plan_host (job->plan, r))) {
                cli_error (EXIT_USAGE,
                           "%s: host '%s' is not this host: the local "
                           "launcher runs every rank here\nhint: use -L ssh "
                           "(or -L auto)",
                           cli->command, dc_plan_host (job->plan, r));
                exitcode = EXIT_USAGE;
                goto fail;
            }
    }
    if (make_worker_args (cli, job) < 0) {
        exitcode = cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
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
    worker_args_free (job);
    dc_plan_destroy (job->plan);
    dc_hosts_destroy (job->hosts);
    job->plan = NULL;
    job->hosts = NULL;
}

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
