/* worker.c - what `dcrun worker` runs: the agent launchers start on each host
 *
 * See worker.h.  Never prints: errors come back in a dc_error_t, the note
 * of --place in struct dc_worker for the CLI to print at -v.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu/probe.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/topo.h"
#include "lib/launch/agent.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/run/status.h"
#include "lib/run/worker.h"

/* This host as the host list names it ($DCRUN_HOST), else its name. */
static void host_name (char *host, size_t len)
{
    const char *h = getenv ("DCRUN_HOST");

    host[0] = '\0';
    if (h)
        snprintf (host, len, "%s", h);
    else if (gethostname (host, len - 1) < 0)
        snprintf (host, len, "?");
}

int dc_worker_add_env (struct dc_worker *w, const char *entry, dc_error_t *errp)
{
    char **v;

    if (!w || !entry || !strchr (entry, '=') || *entry == '=')
        return errprintf (errp, "-e '%s': expected NAME=VALUE",
                          entry ? entry : "(null)");
    if (!(v = realloc (w->env, (size_t)(w->nenv + 1) * sizeof (*v))))
        return errprintf (errp, "out of memory");
    w->env = v;
    w->env[w->nenv++] = (char *)entry;
    return 0;
}

int dc_worker_control_parse (const char *s)
{
    if (s && !strcmp (s, "stdin"))
        return 1;
    if (s && !strcmp (s, "none"))
        return 0;
    return -1;
}

int dc_worker_port_check (int port)
{
    if (port > 0)
        return dc_launch_port_free (port) ? port : 0;
    return dc_launch_free_port ();
}

/* Rank environment from mpirun's or srun's variables (rankenv.h).
 * Returns true when one of them started us. */
static bool env_from_launcher (void)
{
    /* dcrun started us through mpirun or srun and passed its own rank
     * environment (its rank map, node ranks and host names): keep it */
    if (getenv (DC_IO_ENV) && getenv ("DCRUN_RANK"))
        return true;
    return dc_rankenv_from_launcher ();
}

/* --wdir: enter it, or say which host lacks it. */
static int enter_wdir (const char *wdir, dc_error_t *errp)
{
    char host[256];

    if (chdir (wdir) == 0) {
        setenv ("PWD", wdir, 1);
        return DC_STATUS_OK;
    }
    int e = errno;
    host_name (host, sizeof (host));
    errprintf (errp,
               "%s: cannot run in folder %s: %s\nhint: "
               "--wdir DIR names a folder that exists there",
               host, wdir, strerror (e));
    return DC_STATUS_LAUNCH;
}

/* Append the ids of list ("2,3") to out (size len) that it lacks. */
static void add_gpus (char *out, size_t len, const char *list)
{
    char id[16];
    const char *p = list;

    while (p && *p) {
        size_t n = strcspn (p, ",");
        if (n > 0 && n < sizeof (id)) {
            char pat[20];
            memcpy (id, p, n);
            id[n] = '\0';
            snprintf (pat, sizeof (pat), ",%s,", id);
            char have[4200];
            snprintf (have, sizeof (have), ",%s,", out);
            size_t used = strlen (out);
            if (!strstr (have, pat) && used + n + 2 < len)
                snprintf (out + used, len - used, "%s%s", used ? "," : "", id);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

char *dc_worker_cpus_here (const char *list)
{
    cpu_set_t allowed;
    char *out;
    size_t len, n = 0;
    long lo, hi;
    const char *p = list;

    if (!list)
        return NULL;
    if (sched_getaffinity (0, sizeof (allowed), &allowed) < 0)
        CPU_ZERO (&allowed);
    len = strlen (list) + 1;
    if (!(out = malloc (len * 4 + 16)))
        return NULL;
    out[0] = '\0';
    while (*p) {
        char *end;
        lo = strtol (p, &end, 10);
        if (end == p || lo < 0)
            goto bad;
        hi = lo;
        p = end;
        if (*p == '-') {
            hi = strtol (p + 1, &end, 10);
            if (end == p + 1 || hi < lo)
                goto bad;
            p = end;
        }
        for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
            if (CPU_ISSET ((int)c, &allowed)) {
                char buf[24];
                int k = snprintf (buf, sizeof (buf), "%s%ld", n ? "," : "", c);
                if (n + (size_t)k + 1 > len * 4 + 16)
                    goto bad;
                memcpy (out + n, buf, (size_t)k + 1);
                n += (size_t)k;
            }
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    return out;
bad:
    free (out);
    return NULL;
}

void dc_worker_placement_free (struct dc_worker_placement *p)
{
    if (!p)
        return;
    free (p->cpus);
    free (p->gpus);
    free (p->visible);
    p->cpus = p->gpus = p->visible = NULL;
}

/* The GPUs of every local rank of the host, in local-rank order ("" when
 * none): what CUDA_VISIBLE_DEVICES is under --gpu-bind host. */
static char *host_gpus (const struct dc_topo *topo,
                        const struct dc_worker_place_opts *o,
                        const struct dc_plan_opts *po)
{
    char all[4096] = "";
    dc_error_t err;

    for (int l = 0; l < o->local_size; l++) {
        char *oc = NULL, *og = NULL;
        if (dc_plan_place_local (topo, o->host, l, o->local_size, o->slots,
                                 o->gpus, o->ngpus, po, &oc, &og, &err) == 0)
            add_gpus (all, sizeof (all), og);
        free (oc);
        free (og);
    }
    return strdup (all);
}

int dc_worker_place (const struct dc_topo *topo,
                     const struct dc_worker_place_opts *o,
                     struct dc_worker_placement *p, dc_error_t *errp)
{
    struct dc_plan_opts po;

    if (!p)
        return errprintf (errp, "no placement to fill");
    memset (p, 0, sizeof (*p));
    if (!topo || !o)
        return errprintf (errp, "no topology or no options");
    if (o->local_size < 1 || o->local_size > DC_MAX_SLOTS ||
        o->local_rank < 0 || o->local_rank >= o->local_size)
        return errprintf (errp, "local rank %d of %d: out of range",
                          o->local_rank, o->local_size);
    po = o->plan;
    if (dc_plan_place_local (topo, o->host, o->local_rank, o->local_size,
                             o->slots, o->gpus, o->ngpus, &po, &p->cpus,
                             &p->gpus, errp) < 0)
        return -1;
    if (p->gpus && *p->gpus) {
        char *all =
            o->gpu_bind == DC_GPU_BIND_HOST ? host_gpus (topo, o, &po) : NULL;
        if (o->gpu_bind == DC_GPU_BIND_RANK)
            p->visible = strdup (p->gpus);
        else if (o->gpu_bind == DC_GPU_BIND_HOST)
            p->visible = strdup (all && *all ? all : p->gpus);
        free (all);
        if (o->gpu_bind != DC_GPU_BIND_NONE && !p->visible) {
            dc_worker_placement_free (p);
            return errprintf (errp, "out of memory");
        }
    }
    return 0;
}

/* DCRUN_LOCAL_RANK and DCRUN_LOCAL_SIZE into o; -1 when missing or bad. */
static int local_rank_env (struct dc_worker_place_opts *o, dc_error_t *errp)
{
    const char *lr = getenv ("DCRUN_LOCAL_RANK");
    const char *ls = getenv ("DCRUN_LOCAL_SIZE");
    long local_rank, local_size;
    char *end;

    if (!lr || !ls || (local_rank = strtol (lr, &end, 10)) < 0 || *end ||
        (local_size = strtol (ls, &end, 10)) < 1 || *end ||
        local_size > DC_MAX_SLOTS || local_rank >= local_size)
        return errprintf (errp,
                          "worker: --place: DCRUN_LOCAL_RANK and "
                          "DCRUN_LOCAL_SIZE missing or bad (%s of %s)",
                          lr ? lr : "unset", ls ? ls : "unset");
    o->local_rank = (int)local_rank;
    o->local_size = (int)local_size;
    return 0;
}

/* The environment and the CPUs to bind to from placement p: DCRUN_GPUS and
 * CUDA_VISIBLE_DEVICES unless the head named the host's GPUs, DCRUN_CPUS
 * and w->placed unless --place-no-bind. */
static void apply_placement (struct dc_worker *w,
                             const struct dc_worker_placement *p)
{
    if (!w->place_gpus && p->gpus && *p->gpus) {
        setenv ("DCRUN_GPUS", p->gpus, 1);
        if (p->visible)
            setenv ("CUDA_VISIBLE_DEVICES", p->visible, 1);
    }
    if (p->cpus && !w->place_no_bind) {
        char *here = dc_worker_cpus_here (p->cpus);
        setenv ("DCRUN_CPUS", p->cpus, 1);
        if (here && *here)
            w->placed = here;
        else
            free (here);
    }
}

/* --place: probe this host, place the ranks of the host, pick ours (see
 * worker.h).  DC_STATUS_OK (also when the host cannot be probed: the rank
 * runs unplaced, as the head does for its own host) or an error status. */
static int place_here (struct dc_worker *w, dc_error_t *errp)
{
    const char *rank = getenv ("DCRUN_RANK");
    char host[256];
    int *hg = NULL, nhg = 0, rc = DC_STATUS_OK;
    struct dc_worker_place_opts o = {.host = host};
    struct dc_worker_placement p = {0};
    struct dc_topo *topo = NULL;
    dc_error_t err;

    host_name (host, sizeof (host));
    if (local_rank_env (&o, errp) < 0)
        return DC_STATUS_LAUNCH;
    if (w->place_gpus && *w->place_gpus &&
        dc_parse_int_list (w->place_gpus, DC_TOPO_MAX_GPUS - 1, &hg, &nhg,
                           &err) < 0) {
        errprintf (errp, "worker: --place-gpus '%s': %s", w->place_gpus,
                   err.text);
        return DC_STATUS_USAGE;
    }
    o.slots = (int)w->place_slots;
    o.gpus = hg;
    o.ngpus = nhg;
    o.plan = w->popts;
    o.plan.gpus_per_rank = (int)w->gpus_per_rank;
    o.gpu_bind = w->gpu_bind;
    if (!(topo = dc_probe_host (NULL, &err))) {
        errprintf (&w->place_note,
                   "worker: rank %s on %s: cannot probe this host (%s): "
                   "not bound",
                   rank ? rank : "?", host, err.text);
        free (hg);
        return DC_STATUS_OK;
    }
    if (dc_worker_place (topo, &o, &p, &err) < 0) {
        errprintf (errp, "worker: %s: placement: %s", host, err.text);
        rc = DC_STATUS_LAUNCH;
        goto out;
    }
    apply_placement (w, &p);
    errprintf (&w->place_note,
               "worker: rank %s on %s: local rank %d of %d, cpus %s, gpus "
               "%s, bound to %s",
               rank ? rank : "?", host, o.local_rank, o.local_size,
               p.cpus ? p.cpus : "-", p.gpus && *p.gpus ? p.gpus : "-",
               w->placed          ? w->placed
               : w->place_no_bind ? "nothing (--bind none)"
                                  : "nothing (none of those CPUs is here)");
out:
    free (hg);
    dc_worker_placement_free (&p);
    dc_topo_destroy (topo);
    return rc;
}

int dc_worker_setup (struct dc_worker *w, dc_error_t *errp)
{
    int rc;

    if (!w || !w->cmd || !w->cmd[0]) {
        errprintf (errp, "worker: no command given");
        return DC_STATUS_USAGE;
    }
    w->placed = NULL;
    w->place_note.text[0] = '\0';
    bool by_launcher = env_from_launcher ();
    if (w->control < 0)
        w->control = by_launcher ? 0 : 1;
    for (int i = 0; i < w->nenv; i++)
        putenv (w->env[i]);
    if (w->wdir && (rc = enter_wdir (w->wdir, errp)) != DC_STATUS_OK)
        return rc;
    if (w->place && !w->cpus) {
        if ((rc = place_here (w, errp)) != DC_STATUS_OK)
            return rc;
        w->cpus = w->placed;
    }
    return DC_STATUS_OK;
}

/* Under mpirun/srun with $DCRUN_IO: the ctl, out and err connections back
 * to dcrun (lib/launch/launch_io.h).  The worker's own messages go to err
 * from here on, so that they reach dcrun as the rank's stderr. */
static int io_connect (int io[3], dc_error_t *errp)
{
    static const char *const kinds[3] = {"ctl", "out", "err"};
    const char *addrs = getenv (DC_IO_ENV);
    const char *token = getenv (DC_IO_TOKEN_ENV);
    const char *rank = getenv ("DCRUN_RANK");
    dc_error_t err;

    for (int k = 0; k < 3; k++)
        if ((io[k] = dc_io_connect (addrs, token, rank ? atoi (rank) : -1,
                                    kinds[k], 10, &err)) < 0)
            return errprintf (errp, "worker: rank %s: %s", rank ? rank : "?",
                              err.text);
    unsetenv (DC_IO_ENV);
    unsetenv (DC_IO_TOKEN_ENV);
    dup2 (io[2], 2);
    return 0;
}

int dc_worker_run (const struct dc_worker *w, int *statusp, dc_error_t *errp)
{
    int io[3] = {-1, -1, -1}, rc;
    dc_error_t err;

    if (!w || !w->cmd || !w->cmd[0] || !statusp) {
        errprintf (errp, "worker: no command given");
        return DC_AGENT_SETUP;
    }
    if (!w->exec && getenv (DC_IO_ENV) && io_connect (io, errp) < 0)
        return DC_AGENT_SETUP;
    /* the control channel: stdin, or the ctl connection to dcrun; over
     * ssh the session's stdout hangs up when the head closes the channel
     * (what it does to a rank whose control channel is stuck) */
    bool ctl_stdin = io[0] < 0 && w->control == 1;
    struct dc_agent_opts o = {
        .cmd = w->cmd,
        .cpus = w->cpus,
        .exec = w->exec,
        .stdin_data = w->stdin_data,
        .ctl_fd = io[0] >= 0  ? io[0]
                  : ctl_stdin ? 0
                              : -1,
        .watch_fd = w->exec || ctl_stdin ? 1 : -1,
        .out_fd = io[1],
        .err_fd = io[2],
        .status_fd = io[0],
        .kill_grace = DC_WORKER_KILL_GRACE_S,
    };
    rc = dc_agent_run (&o, statusp, &err);
    if (rc != DC_AGENT_OK)
        errprintf (errp, "worker: %s", err.text);
    return rc;
}

int dc_worker_end (int status)
{
    if (!WIFSIGNALED (status))
        return WEXITSTATUS (status);
    int sig = WTERMSIG (status);
    sigset_t set;
    dc_sigpipe_destroy ();
    signal (sig, SIG_DFL);
    sigemptyset (&set);
    sigaddset (&set, sig);
    pthread_sigmask (SIG_UNBLOCK, &set, NULL);
    prctl (PR_SET_DUMPABLE, 0); /* no core file of the worker */
    raise (sig);
    /* still here (a signal that does not end a process): exit with the
     * shell's code, dumpable again so that exit handlers such as
     * LeakSanitizer's, which ptrace this process, do not spin */
    prctl (PR_SET_DUMPABLE, 1);
    return 128 + sig;
}

void dc_worker_fini (struct dc_worker *w)
{
    if (!w)
        return;
    if (w->cpus == w->placed)
        w->cpus = NULL;
    free (w->placed);
    w->placed = NULL;
    free (w->env);
    w->env = NULL;
    w->nenv = 0;
}
