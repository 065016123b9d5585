/* job.c - a job from the command line: host list and rank map (placement
 * and launcher in lib/run/job.c), and the rank environment */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gpu/probe.h"
#include "job.h"
#include "remote.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/log.h"
#include "lib/hosts/rankenv.h"
#include "lib/hosts/topo.h"
#include "lib/run/job.h"
#include "status.h"

/* NVIDIA display or 3D controllers on the PCI bus: a cheap look before a
 * probe (which costs ~0.15 s) for commands that would not probe at all. */
static int pci_gpus (void)
{
    DIR *d = opendir ("/sys/bus/pci/devices");
    struct dirent *e;
    int n = 0;

    /* a saved topology, or no /sys: let the probe say */
    if (getenv ("DCRUN_HWLOC_XMLFILE") || getenv ("HWLOC_XMLFILE") || !d) {
        if (d)
            closedir (d);
        return 2;
    }
    while ((e = readdir (d))) {
        char path[512], vendor[16] = "", class[16] = "";
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf (path, sizeof (path), "/sys/bus/pci/devices/%s/vendor",
                  e->d_name);
        if ((f = fopen (path, "r"))) {
            if (!fgets (vendor, sizeof (vendor), f))
                vendor[0] = '\0';
            fclose (f);
        }
        snprintf (path, sizeof (path), "/sys/bus/pci/devices/%s/class",
                  e->d_name);
        if ((f = fopen (path, "r"))) {
            if (!fgets (class, sizeof (class), f))
                class[0] = '\0';
            fclose (f);
        }
        n += !strncmp (vendor, "0x10de", 6) && !strncmp (class, "0x03", 4);
    }
    closedir (d);
    return n;
}

/* GPUs of this host (probed once), 0 when none or unknown. */
static int this_host_gpus (void)
{
    static int ngpus = -1;
    struct dc_topo *topo;
    dc_error_t err;

    if (ngpus < 0) {
        ngpus = 0;
        if (pci_gpus () > 0 && (topo = dc_probe_host (NULL, &err))) {
            ngpus = topo->ngpus > 0 ? topo->ngpus : 0;
            dc_topo_destroy (topo);
        }
    }
    return ngpus;
}
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
    /* no host list: this host, one rank per GPU */
    return pci_gpus () > 1 && this_host_gpus () > 1;
}

/* No host list: this host with one slot per GPU (one when none), as
 * `dcrun hosts` has it.  0, or -1 with *exitp set. */
static int cli_job_local_slots (struct cli *cli, struct dc_hosts **hostsp,
                                int *exitp)
{
    int ngpus;

    if (strcmp ((*hostsp)->origin, "this host") != 0 ||
        (ngpus = this_host_gpus ()) < 1)
        return 0;
    dc_hosts_destroy (*hostsp);
    return (*hostsp = cli_resolve_hosts (cli, ngpus, exitp)) ? 0 : -1;
}

/* MASTER_ADDR: an address of rank 0's host that every rank reaches, never
 * an ssh-config alias nor "localhost" when a rank is remote.  Every rank
 * here: 127.0.0.1.  Rank 0 here, others remote: this host's address that
 * the first remote host's packets come from.  Rank 0 remote: the numeric
 * address dcrun's own connection goes to (after ssh-config HostName). */
static void cli_job_master_addr (const struct cli *cli, struct cli_job *job)
{
    const struct dc_plan *plan = job->plan;
    const char *h0 = dc_plan_host (plan, 0), *remote = NULL;
    char name[1024];
    dc_error_t err;
    int rc = 0;

    for (int r = 0; r < plan->size && !remote; r++)
        if (!dc_launch_is_local_host (dc_plan_host (plan, r)))
            remote = dc_plan_host (plan, r);
    snprintf (job->master_addr, sizeof (job->master_addr), "127.0.0.1");
    if (!remote)
        return;
    const char *target = dc_launch_is_local_host (h0) ? remote : h0;
    snprintf (name, sizeof (name), "%s", target);
#if HAVE_SSH
    if (!strcmp (job->launcher, "ssh") &&
        dc_launch_ssh_hostname (&cli->launch.lo, target, name, sizeof (name),
                                &err) < 0)
        snprintf (name, sizeof (name), "%s", target);
#endif
    if (dc_launch_is_local_host (h0))
        rc = dc_rankenv_source_ip (name, job->master_addr,
                                   sizeof (job->master_addr), &err);
    else
        rc = dc_rankenv_host_ip (name, job->master_addr,
                                 sizeof (job->master_addr), &err);
    if (rc < 0) {
        dc_log (DC_LOG_INFO, "MASTER_ADDR: %s: using %s", err.text, h0);
        snprintf (job->master_addr, sizeof (job->master_addr), "%s", h0);
    }
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
        if (!(v = job->worker_args[r] = calloc (16, sizeof (char *))))
            return -1;
        v[k++] = strdup ("--place");
        if (cli->launch.gpu_bind != DC_GPU_BIND_HOST) {
            v[k++] = strdup ("--place-gpu-bind");
            v[k++] = strdup (cli->launch.gpu_bind == DC_GPU_BIND_RANK ? "rank"
                                                                      : "none");
        }
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

struct dc_hosts *cli_job_hosts (struct cli *cli, int *exitp)
{
    struct dc_hosts *hosts = cli_resolve_hosts (cli, 0, exitp);

    if (!hosts || cli_job_local_slots (cli, &hosts, exitp) < 0)
        return NULL;
    probe_slots (cli, hosts);
    return hosts;
}

int cli_job_attach (struct cli *cli, struct cli_job *job)
{
    if (make_worker_args (cli, job) < 0)
        return cli_error (EXIT_FAIL, "%s: out of memory", cli->command);
    cli_job_master_addr (cli, job);
    cli_job_check_exports (cli);
    return EXIT_OK;
}

void cli_job_detach (struct cli_job *job)
{
    worker_args_free (job);
}

int cli_job_init (struct cli *cli, struct cli_job *job)
{
    int exitcode = EXIT_OK, st;
    dc_error_t err;

    memset (job, 0, sizeof (*job));
    if (!(job->hosts = cli_job_hosts (cli, &exitcode)))
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
    job->master_port = cli->launch.master_port > 0 ? cli->launch.master_port
                                                   : dc_launch_free_port ();
    if ((exitcode = cli_job_attach (cli, job)) != EXIT_OK)
        goto fail;
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

static bool has_wildcard (const char *s)
{
    return strpbrk (s, "*?[") != NULL;
}

void cli_job_check_exports (const struct cli *cli)
{
    const struct cli_launch *l = &cli->launch;

    for (int i = 0; i < l->nexports; i++) {
        const char *x = l->exports[i];
        if (!strchr (x, '=') && !has_wildcard (x) && !getenv (x))
            fprintf (stderr,
                     "dcrun: warning: -x %s: not set here, not passed to "
                     "the ranks\n",
                     x);
    }
}

/* Add entry (owned) to env[*k], growing it. */
static int env_push (char ***env, int *k, int *cap, char *entry)
{
    if (!entry)
        return -1;
    if (*k + 1 >= *cap) {
        char **nv =
            realloc (*env, (size_t)(*cap = *cap * 2 + 16) * sizeof (char *));
        if (!nv) {
            free (entry);
            return -1;
        }
        *env = nv;
    }
    (*env)[(*k)++] = entry;
    (*env)[*k] = NULL;
    return 0;
}

/* True when the first n entries of env set the name of entry. */
static bool in_base (char **env, int n, const char *entry)
{
    size_t len = strcspn (entry, "=");
    for (int i = 0; i < n; i++)
        if (!strncmp (env[i], entry, len) && env[i][len] == '=')
            return true;
    return false;
}

char **cli_job_rank_env (const struct cli *cli, const struct cli_job *job,
                         int r)
{
    extern char **environ;
    const struct cli_launch *l = &cli->launch;
    bool omp_given = getenv ("OMP_NUM_THREADS") != NULL;
    dc_error_t err;

    for (int i = 0; i < l->nexports; i++)
        omp_given |= !strncmp (l->exports[i], "OMP_NUM_THREADS", 15);
    struct dc_rankenv_opts o = {
        .master_addr = job->master_addr[0] ? job->master_addr : NULL,
        .master_port = job->master_port,
        .gpu_bind = (enum dc_gpu_bind)l->gpu_bind,
        .omp_given = omp_given,
        .restart_count = job->restart_count,
        .max_restarts = job->max_restarts,
    };
    char run_id[64];
    snprintf (run_id, sizeof (run_id), "dcrun-%d", job->master_port);
    o.run_id = run_id;
    char **base = dc_rankenv_create (job->plan, r, &o, &err), **env = NULL;
    int k = 0, cap = 0;
    if (!base)
        return NULL;
    for (int i = 0; base[i]; i++)
        if (env_push (&env, &k, &cap, base[i]) < 0) {
            for (int j = i + 1; base[j]; j++)
                free (base[j]);
            free (base);
            goto fail;
        }
    free (base);
    int nbase = k;
    /* --export-all and patterns never replace what rankenv set
     * (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS) */
    for (char **e = environ; l->export_all && e && *e; e++)
        if (strchr (*e, '=') && !dc_rankenv_export_denied (*e) &&
            !in_base (env, nbase, *e) &&
            env_push (&env, &k, &cap, strdup (*e)) < 0)
            goto fail;
    for (int i = 0; i < l->nexports; i++) {
        const char *x = l->exports[i];
        if (strchr (x, '=')) {
            if (env_push (&env, &k, &cap, strdup (x)) < 0)
                goto fail;
        } else if (has_wildcard (x)) {
            /* a shell pattern over this environment; rank variables and
             * what the launchers use are never taken */
            for (char **e = environ; e && *e; e++) {
                size_t n = strcspn (*e, "=");
                char name[256];
                if (!(*e)[n] || n >= sizeof (name))
                    continue;
                memcpy (name, *e, n);
                name[n] = '\0';
                if (fnmatch (x, name, 0) == 0 &&
                    !dc_rankenv_is_rank_var (name) &&
                    !in_base (env, nbase, name) &&
                    strncmp (name, "DCRUN_XENV_", 11) &&
                    env_push (&env, &k, &cap, strdup (*e)) < 0)
                    goto fail;
            }
        } else if (getenv (x)) {
            if (env_push (&env, &k, &cap, fmt ("%s=%s", x, getenv (x))) < 0)
                goto fail;
        }
    }
    return env;
fail:
    cli_strv_free (env);
    return NULL;
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
