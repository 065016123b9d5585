/* jobspec.c - a job as the command line asks for it (see jobspec.h) */
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
#include "lib/hosts/rankenv.h"
#include "lib/hosts/topo.h"
#include "lib/launch/launch_io.h"
#include "lib/run/job.h"
#include "lib/run/jobspec.h"
#include "lib/run/remote_probe.h"
#include "lib/run/status.h"
#include "lib/util/log.h"

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

void dc_jobspec_strv_free (char **v)
{
    for (int i = 0; v && v[i]; i++)
        free (v[i]);
    free (v);
}

/* The first line of a small file under /sys into buf ("" when none). */
static void read_line (const char *dir, const char *name, char *buf, size_t len)
{
    char path[512];
    FILE *f;

    buf[0] = '\0';
    snprintf (path, sizeof (path), "/sys/bus/pci/devices/%s/%s", dir, name);
    if ((f = fopen (path, "r"))) {
        if (!fgets (buf, (int)len, f))
            buf[0] = '\0';
        fclose (f);
    }
}

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
        char vendor[16], class[16];
        if (e->d_name[0] == '.')
            continue;
        read_line (e->d_name, "vendor", vendor, sizeof (vendor));
        read_line (e->d_name, "class", class, sizeof (class));
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

int dc_jobspec_local_gpus (void)
{
    return this_host_gpus ();
}

bool dc_jobspec_wanted (const struct dc_job_args *a)
{
    const char *s;

    if (a->hostfile || a->hosts || a->np > 1 || a->launcher)
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

/* The -x exports as the probe's environment: what the ranks will see. */
static char **probe_env (const struct dc_job_args *a)
{
    char **env = calloc ((size_t)a->nexports + 1, sizeof (*env));
    int k = 0;

    for (int i = 0; env && i < a->nexports; i++) {
        const char *x = a->exports[i];
        if (strchr (x, '='))
            env[k++] = strdup (x);
        else if (getenv (x))
            env[k++] = fmt ("%s=%s", x, getenv (x));
        if (k > 0 && !env[k - 1]) {
            dc_jobspec_strv_free (env);
            return NULL;
        }
    }
    return env;
}

/* The slots of host from its probe res: ppr objects times ppr_n, or its
 * GPUs (at most max_slots; 1 when it cannot be probed). */
static void set_slots (const struct dc_job_args *a, struct dc_host *host,
                       const struct dc_remote_result *res)
{
    int ppr = a->plan.ppr_n;

    if (ppr) {
        int objs = res->stage == DC_REMOTE_OK
                       ? dc_plan_ppr_objects (res->topo, a->plan.ppr_obj)
                       : 1;
        long sl = (long)ppr * objs;
        host->slots = (int)(sl < DC_MAX_SLOTS ? sl : DC_MAX_SLOTS);
        host->max_slots = 0;
        dc_log (DC_LOG_INFO, "%s: %d slots (ppr: %d %s%s)", host->name,
                host->slots, objs,
                a->plan.ppr_obj == DC_PPR_NUMA ? "NUMA nodes" : "packages",
                res->stage == DC_REMOTE_OK ? "" : ", not probed");
        return;
    }
    if (res->stage != DC_REMOTE_OK || !res->topo) {
        dc_log (DC_LOG_INFO, "%s: cannot probe (%s): 1 slot", host->name,
                res->reason);
        return;
    }
    int g = res->topo->ngpus;
    host->slots = g > 0 ? (g < DC_MAX_SLOTS ? g : DC_MAX_SLOTS) : 1;
    if (host->max_slots && host->slots > host->max_slots)
        host->slots = host->max_slots;
    dc_log (DC_LOG_INFO, "%s: %d slot%s (%d GPU%s, probed there)", host->name,
            host->slots, host->slots == 1 ? "" : "s", g, g == 1 ? "" : "s");
}

void dc_jobspec_probe_slots (const struct dc_job_args *a,
                             struct dc_hosts *hosts)
{
    const char *ln = a->launcher;
    bool ssh = ln && !strcmp (ln, "ssh");
    bool aut = !ln || !strcmp (ln, "auto");
    struct dc_hosts *sub = NULL;
    struct dc_remote_result *res = NULL;
    size_t *idx = NULL, n = 0;
    char **env = NULL;
    int ppr = a->plan.ppr_n;

    if (!ssh && !aut && !ppr)
        return;
    if (a->dry_run) { /* starts nothing, connects nowhere */
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
    if (n == 0 || !(env = probe_env (a)) || !(res = calloc (n, sizeof (*res))))
        goto out;
    dc_log (DC_LOG_INFO, "probing %zu host%s %s", n, n == 1 ? "" : "s",
            ppr ? "for --map-by ppr" : "without slots= for their GPUs");
    /* ppr: this host in-process unless the ranks go over ssh */
    dc_remote_probe_all_env (sub, &a->lo, ppr && !ssh, env, res);
    for (size_t i = 0; i < n; i++)
        set_slots (a, &hosts->v[idx[i]], &res[i]);
out:
    if (res)
        dc_remote_results_free (res, n);
    dc_jobspec_strv_free (env);
    dc_hosts_destroy (sub);
    free (idx);
}

/* MASTER_ADDR: an address of rank 0's host that every rank reaches, never
 * an ssh-config alias nor "localhost" when a rank is remote.  Every rank
 * here: 127.0.0.1.  Rank 0 here, others remote: this host's address that
 * the first remote host's packets come from.  Rank 0 remote: the numeric
 * address dcrun's own connection goes to (after ssh-config HostName). */
static void master_addr (const struct dc_job_args *a, struct dc_jobspec *js)
{
    const struct dc_plan *plan = js->plan;
    const char *h0 = dc_plan_host (plan, 0), *remote = NULL;
    char name[1024];
    dc_error_t err;
    int rc = 0;

    for (int r = 0; r < plan->size && !remote; r++)
        if (!dc_launch_is_local_host (dc_plan_host (plan, r)))
            remote = dc_plan_host (plan, r);
    snprintf (js->master_addr, sizeof (js->master_addr), "127.0.0.1");
    if (!remote)
        return;
    const char *target = dc_launch_is_local_host (h0) ? remote : h0;
    snprintf (name, sizeof (name), "%s", target);
#if HAVE_SSH
    if (!strcmp (js->launcher, "ssh") &&
        dc_launch_ssh_hostname (&a->lo, target, name, sizeof (name), &err) < 0)
        snprintf (name, sizeof (name), "%s", target);
#else
    (void)a;
#endif
    if (dc_launch_is_local_host (h0))
        rc = dc_rankenv_source_ip (name, js->master_addr,
                                   sizeof (js->master_addr), &err);
    else
        rc = dc_rankenv_host_ip (name, js->master_addr,
                                 sizeof (js->master_addr), &err);
    if (rc < 0) {
        dc_log (DC_LOG_INFO, "MASTER_ADDR: %s: using %s", err.text, h0);
        snprintf (js->master_addr, sizeof (js->master_addr), "%s", h0);
    }
}

/* The agent's words of rank k, placed on host h by its own agent:
 * `--place [--place-gpu-bind B] [--place-no-bind] [--place-slots S]
 * [--place-gpus LIST] [--map-by ppr:N:OBJ] [--gpus-per-rank N] [-v]`. */
static char **agent_words (const struct dc_job_args *a,
                           const struct dc_plan *plan, const struct dc_rank *rk,
                           const struct dc_host *h)
{
    char **v = calloc (16, sizeof (char *)), list[4096];
    int k = 0;
    size_t n = 0;

    if (!v)
        return NULL;
    v[k++] = strdup ("--place");
    if (a->gpu_bind != DC_GPU_BIND_HOST) {
        v[k++] = strdup ("--place-gpu-bind");
        v[k++] = strdup (a->gpu_bind == DC_GPU_BIND_RANK ? "rank" : "none");
    }
    if (a->no_bind)
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
    if (a->verbose > 0)
        v[k++] = strdup ("-v");
    for (int i = 0; i < k; i++)
        if (!v[i]) {
            for (int j = 0; j < k; j++)
                free (v[j]);
            free (v);
            return NULL;
        }
    return v;
}

/* The ranks the head could not place (remote hosts) are placed by their
 * host's agent.  Under Slurm, Slurm places them. */
static int make_worker_args (const struct dc_job_args *a, struct dc_jobspec *js)
{
    const struct dc_plan *plan = js->plan;

    if (!strcmp (js->launcher, "local") || !strcmp (js->launcher, "slurm"))
        return 0;
    if (!(js->worker_args = calloc ((size_t)plan->size, sizeof (char **))))
        return -1;
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        if (rk->cpus)
            continue; /* placed here */
        if (!(js->worker_args[r] =
                  agent_words (a, plan, rk, &js->hosts->v[rk->host])))
            return -1;
    }
    return 0;
}

int dc_jobspec_attach (const struct dc_job_args *a, struct dc_jobspec *js)
{
    if (make_worker_args (a, js) < 0)
        return -1;
    master_addr (a, js);
    return 0;
}

void dc_jobspec_detach (struct dc_jobspec *js)
{
    if (js->worker_args && js->plan)
        for (int r = 0; r < js->plan->size; r++)
            dc_jobspec_strv_free (js->worker_args[r]);
    free (js->worker_args);
    js->worker_args = NULL;
}

int dc_jobspec_init (const struct dc_job_args *a, struct dc_jobspec *js,
                     dc_error_t *err)
{
    int st =
        dc_job_prepare (js->hosts, js->plan, a->launcher, &js->launcher, err);

    if (st != DC_STATUS_OK)
        return st;
    js->master_port =
        a->master_port > 0 ? a->master_port : dc_launch_free_port ();
    if (dc_jobspec_attach (a, js) < 0) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    return DC_STATUS_OK;
}

void dc_jobspec_fini (struct dc_jobspec *js)
{
    dc_jobspec_detach (js);
    dc_plan_destroy (js->plan);
    dc_hosts_destroy (js->hosts);
    js->plan = NULL;
    js->hosts = NULL;
}

char *const *dc_jobspec_worker_args (const struct dc_jobspec *js, int r)
{
    if (!js || !js->worker_args || !js->plan || r < 0 || r >= js->plan->size)
        return NULL;
    return js->worker_args[r];
}

static char **run_rank_env (const struct dc_job *job, int r, void *arg)
{
    struct dc_jobspec_run *run = arg;

    run->js.master_port = job->master_port;
    return dc_jobspec_rank_env (&run->a, &run->js, r);
}

static char *const *run_worker_args (const struct dc_job *job, int r, void *arg)
{
    struct dc_jobspec_run *run = arg;

    (void)job;
    return dc_jobspec_worker_args (&run->js, r);
}

int dc_jobspec_job_init (struct dc_job *job, struct dc_jobspec_run *run,
                         struct dc_hosts *hosts, struct dc_plan *plan,
                         const char *self,
                         void (*on_line) (int r, const char *host,
                                          const char *line, size_t len,
                                          void *arg),
                         dc_error_t *err)
{
    const struct dc_job_args *a = &run->a;
    struct dc_job_opts o = {
        .launcher = a->launcher,
        .lo = a->lo,
        .no_bind = a->no_bind,
        .kill_grace = a->kill_grace,
        .self = self,
        .wdir = a->wdir,
        .rank_env = run_rank_env,
        .worker_args = run_worker_args,
        .on_line = on_line,
        .arg = run,
    };
    int st;

    /* the ranks start in the caller's folder on every host (--wdir) */
    if (!o.wdir && getcwd (run->cwd, sizeof (run->cwd)))
        o.wdir = run->cwd;
    /* the job owns hosts and plan from here on, even when it fails */
    if ((st = dc_job_init (job, hosts, plan, &o, err)) != DC_STATUS_OK)
        goto fail;
    /* local ranks: a --wdir that is not here fails before any starts (ssh
     * checks each host's before its ranks start) */
    if (a->wdir && !strcmp (job->launcher, "local") &&
        access (a->wdir, X_OK) < 0) {
        errprintf (err, "--wdir %s: %s", a->wdir, strerror (errno));
        st = DC_STATUS_LAUNCH;
        goto fail;
    }
    run->js.hosts = job->hosts;
    run->js.plan = job->plan;
    run->js.launcher = job->launcher;
    run->js.master_port = job->master_port;
    if (dc_jobspec_attach (a, &run->js) == 0)
        return DC_STATUS_OK;
    errprintf (err, "out of memory");
    st = DC_STATUS_FAIL;
fail:
    dc_jobspec_job_fini (job, run);
    return st;
}

void dc_jobspec_job_fini (struct dc_job *job, struct dc_jobspec_run *run)
{
    dc_jobspec_detach (&run->js); /* before the plan it borrows goes */
    memset (&run->js, 0, sizeof (run->js));
    dc_job_fini (job);
}

static bool has_wildcard (const char *s)
{
    return strpbrk (s, "*?[") != NULL;
}

const char *dc_jobspec_unset_export (const struct dc_job_args *a, int *i)
{
    while (*i < a->nexports) {
        const char *x = a->exports[(*i)++];
        if (!strchr (x, '=') && !has_wildcard (x) && !getenv (x))
            return x;
    }
    return NULL;
}

/* A growing NULL-terminated list of owned entries; nbase: how many came
 * from rankenv (what --export-all and patterns never replace). */
struct envv {
    char **v;
    int k, cap, nbase;
};

/* Add entry (owned) to e, growing it. */
static int env_push (struct envv *e, char *entry)
{
    if (!entry)
        return -1;
    if (e->k + 1 >= e->cap) {
        char **nv = realloc (e->v, (size_t)(e->cap = e->cap * 2 + 16) *
                                       sizeof (char *));
        if (!nv) {
            free (entry);
            return -1;
        }
        e->v = nv;
    }
    e->v[e->k++] = entry;
    e->v[e->k] = NULL;
    return 0;
}

/* True when rankenv's entries set the name of entry. */
static bool in_base (const struct envv *e, const char *entry)
{
    size_t len = strcspn (entry, "=");
    for (int i = 0; i < e->nbase; i++)
        if (!strncmp (e->v[i], entry, len) && e->v[i][len] == '=')
            return true;
    return false;
}

/* rankenv's contract for rank r into e. */
static int env_base (const struct dc_job_args *a, const struct dc_jobspec *js,
                     int r, struct envv *e)
{
    bool omp_given = getenv ("OMP_NUM_THREADS") != NULL;
    char run_id[64];
    dc_error_t err;

    for (int i = 0; i < a->nexports; i++)
        omp_given |= !strncmp (a->exports[i], "OMP_NUM_THREADS", 15);
    snprintf (run_id, sizeof (run_id), "dcrun-%d", js->master_port);
    struct dc_rankenv_opts o = {
        .master_addr = js->master_addr[0] ? js->master_addr : NULL,
        .master_port = js->master_port,
        .run_id = run_id,
        .gpu_bind = (enum dc_gpu_bind)a->gpu_bind,
        .omp_given = omp_given,
        .restart_count = js->restart_count,
        .max_restarts = js->max_restarts,
    };
    char **base = dc_rankenv_create (js->plan, r, &o, &err);
    if (!base)
        return -1;
    for (int i = 0; base[i]; i++)
        if (env_push (e, base[i]) < 0) {
            for (int j = i + 1; base[j]; j++)
                free (base[j]);
            free (base);
            return -1;
        }
    free (base);
    e->nbase = e->k;
    return 0;
}

/* -x PATTERN: a shell pattern over this environment; rank variables and
 * what the launchers use are never taken. */
static int env_pattern (const char *x, struct envv *e)
{
    extern char **environ;

    for (char **p = environ; p && *p; p++) {
        size_t n = strcspn (*p, "=");
        char name[256];
        if (!(*p)[n] || n >= sizeof (name))
            continue;
        memcpy (name, *p, n);
        name[n] = '\0';
        if (fnmatch (x, name, 0) == 0 && !dc_rankenv_is_rank_var (name) &&
            !in_base (e, name) && strncmp (name, "DCRUN_XENV_", 11) &&
            env_push (e, strdup (*p)) < 0)
            return -1;
    }
    return 0;
}

char **dc_jobspec_rank_env (const struct dc_job_args *a,
                            const struct dc_jobspec *js, int r)
{
    extern char **environ;
    struct envv e = {0};

    if (env_base (a, js, r, &e) < 0)
        goto fail;
    /* --export-all and patterns never replace what rankenv set
     * (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS) */
    for (char **p = environ; a->export_all && p && *p; p++)
        if (strchr (*p, '=') && !dc_rankenv_export_denied (*p) &&
            !in_base (&e, *p) && env_push (&e, strdup (*p)) < 0)
            goto fail;
    for (int i = 0; i < a->nexports; i++) {
        const char *x = a->exports[i];
        int rc = 0;
        if (!*x || *x == '=' || dc_rankenv_is_rank_var (x))
            continue; /* the CLI refuses these: never "=v", a second RANK= */
        if (strchr (x, '='))
            rc = env_push (&e, strdup (x));
        else if (has_wildcard (x))
            rc = env_pattern (x, &e);
        else if (getenv (x))
            rc = env_push (&e, fmt ("%s=%s", x, getenv (x)));
        if (rc < 0)
            goto fail;
    }
    return e.v;
fail:
    dc_jobspec_strv_free (e.v);
    return NULL;
}

/* Append a copy of s (NULL s: a failed copy) to v[*k]. */
static void put (char **v, int *k, const char *s, bool *oom)
{
    if (!s || !(v[*k] = strdup (s)))
        *oom = true;
    else
        (*k)++;
}

/* The launch options that shape the ranks, for the inner `dcrun exec`. */
static void driver_launch_args (const struct dc_job_args *a,
                                const char *launcher, char **v, int *k,
                                bool *oom)
{
    static const char *const gpu_bind[] = {"host", "rank", "none"};
    const struct dc_plan_opts *p = &a->plan;
    char ppr[64], gpr[32], grace[32], port[32];
    bool gb = a->gpu_bind > 0 && a->gpu_bind < 3;

    snprintf (ppr, sizeof (ppr), "ppr:%d:%s", p->ppr_n,
              p->ppr_obj == DC_PPR_NUMA ? "numa" : "package");
    snprintf (gpr, sizeof (gpr), "%d", p->gpus_per_rank);
    snprintf (grace, sizeof (grace), "%g", a->kill_grace);
    snprintf (port, sizeof (port), "%d", a->master_port);
    /* in this order; a NULL value: a flag */
    const struct {
        bool on;
        const char *opt, *val;
    } w[] = {
        {p->map_by == DC_MAP_BY_NODE, "--map-by", "node"},
        {p->map_by != DC_MAP_BY_NODE && p->ppr_n > 0, "--map-by", ppr},
        {p->oversubscribe, "--oversubscribe", NULL},
        {p->gpus_per_rank > 0, "--gpus-per-rank", gpr},
        {a->no_bind, "--bind", "none"},
        {gb, "--gpu-bind", gb ? gpu_bind[a->gpu_bind] : NULL},
        {a->export_all, "--export-all", NULL},
        {a->wdir != NULL, "--wdir", a->wdir},
        {a->exclude != NULL, "--exclude", a->exclude},
        {a->kill_grace > 0, "--kill-grace", grace},
        {a->master_port > 0, "--master-port", port},
        {a->lo.listen_addr != NULL, "--listen-addr", a->lo.listen_addr},
        {a->lo.mpirun_args != NULL, "--mpirun-args", a->lo.mpirun_args},
        {a->lo.srun_args != NULL, "--srun-args", a->lo.srun_args},
        /* the tasks form one MPI job */
        {!strcmp (launcher, "slurm"), "--srun-mpi",
         a->lo.srun_mpi ? a->lo.srun_mpi : "pmix"},
    };

    for (size_t i = 0; i < sizeof (w) / sizeof (w[0]); i++) {
        if (!w[i].on)
            continue;
        put (v, k, w[i].opt, oom);
        if (w[i].val)
            put (v, k, w[i].val, oom);
    }
    /* -x NAME=VALUE: the value goes through the environment, never on the
     * inner exec's command line (ps shows those); the name only */
    for (int i = 0; i < a->nexports; i++) {
        const char *x = a->exports[i];
        char *name = strndup (x, strcspn (x, "="));
        put (v, k, "-x", oom);
        put (v, k, name, oom);
        free (name);
    }
}

char **dc_jobspec_driver_argv (const struct dc_job_args *a,
                               const char *launcher, const char *self,
                               const char *command, char *const *own, int nown)
{
    char **v = calloc ((size_t)(64 + 2 * a->nexports + nown), sizeof (char *));
    char np[32];
    bool oom = !v;
    int k = 0;

    if (!v)
        return NULL;
    put (v, &k, self, &oom);
    put (v, &k, "exec", &oom);
    put (v, &k, "-L", &oom);
    put (v, &k, launcher, &oom);
    if (a->hostfile || a->hosts) {
        put (v, &k, a->hostfile ? "-f" : "-H", &oom);
        put (v, &k, a->hostfile ? a->hostfile : a->hosts, &oom);
    }
    if (a->np > 0) {
        snprintf (np, sizeof (np), "%ld", a->np);
        put (v, &k, "-n", &oom);
        put (v, &k, np, &oom);
    }
    driver_launch_args (a, launcher, v, &k, &oom);
    if (a->verbose)
        put (v, &k, "-v", &oom);
    put (v, &k, "--", &oom);
    put (v, &k, self, &oom);
    put (v, &k, command, &oom);
    for (int i = 0; i < nown; i++)
        put (v, &k, own[i], &oom);
    if (oom) {
        dc_jobspec_strv_free (v);
        return NULL;
    }
    return v;
}

/* A block's entries each have a name (checked before any is set). */
static bool block_named (const char *buf, long bytes)
{
    for (const char *p = buf; p < buf + bytes; p += strlen (p) + 1) {
        const char *eq = strchr (p, '=');
        if (!eq || eq == p)
            return false;
    }
    return true;
}

/* Set err and return st. */
static int env_fail (dc_error_t *err, int st, const char *f, ...)
    __attribute__ ((format (printf, 3, 4)));
static int env_fail (dc_error_t *err, int st, const char *f, ...)
{
    va_list ap;

    va_start (ap, f);
    verrprintf (err, f, ap);
    va_end (ap);
    return st;
}

int dc_jobspec_env_read (int fd, long bytes, dc_error_t *err)
{
    char *buf;
    size_t got = 0;

    if (bytes < 0 || bytes > DC_ENV_BLOCK_MAX)
        return env_fail (err, DC_STATUS_USAGE,
                         "worker: --env-stdin %ld: expected 0 to %d bytes",
                         bytes, DC_ENV_BLOCK_MAX);
    if (bytes == 0)
        return DC_STATUS_OK;
    if (!(buf = malloc ((size_t)bytes + 1)))
        return env_fail (err, DC_STATUS_FAIL, "worker: out of memory");
    while (got < (size_t)bytes) {
        ssize_t n = read (fd, buf + got, (size_t)bytes - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free (buf);
            return env_fail (err, DC_STATUS_LAUNCH,
                             "worker: the rank environment ended after %zu "
                             "of %ld bytes",
                             got, bytes);
        }
        got += (size_t)n;
    }
    buf[bytes] = '\0';
    const char *why = buf[bytes - 1] != '\0' ? "does not end with a NUL byte"
                      : !block_named (buf, bytes)
                          ? "holds an entry without a name"
                          : NULL;
    if (why) {
        free (buf);
        return env_fail (err, DC_STATUS_LAUNCH,
                         "worker: the rank environment %s", why);
    }
    /* every entry checked, then the environment: all or nothing */
    for (char *p = buf; p < buf + bytes; p += strlen (p) + 1)
        putenv (p); /* buf stays: the environment points into it */
    return DC_STATUS_OK;
}

void dc_jobspec_env_unwrap (void)
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

const char *dc_jobspec_self_path (void)
{
    static char buf[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", buf, sizeof (buf) - 1);

    if (n <= 0)
        return "dcrun";
    buf[n] = '\0';
    return buf;
}
