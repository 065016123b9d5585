/* job.c - hosts -> plan -> launcher -> hub: the ranks of one job */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/compute.h"
#include "gpu/probe.h"
#include "lib/util/clock.h"
#include "lib/hosts/topo.h"
#include "lib/run/job.h"
#include "lib/run/rank.h"
#include "lib/util/log.h"

#define LINE_MAX_BYTES 4096

static const char *pick_launcher (const struct dc_plan *plan, const char *want)
{
    const char *name = want;

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
static void place_local (const struct dc_hosts *hosts, struct dc_plan *plan)
{
    struct dc_topo *topo = NULL;
    dc_error_t err;

    for (size_t h = 0; h < hosts->count; h++) {
        if (!dc_launch_is_local_host (hosts->v[h].name))
            continue;
        if (!topo && !(topo = dc_probe_host (NULL, &err))) {
            dc_log (DC_LOG_INFO, "cannot probe this host (%s): no placement",
                    err.text);
            return;
        }
        if (dc_plan_place (plan, h, topo, &err) < 0)
            dc_log (DC_LOG_INFO, "%s: no placement: %s", hosts->v[h].name,
                    err.text);
    }
    dc_topo_destroy (topo);
}

int dc_job_prepare (const struct dc_hosts *hosts, struct dc_plan *plan,
                    const char *want, const char **launcher, dc_error_t *err)
{
    if (!(*launcher = pick_launcher (plan, want))) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    /* ssh and mpi start a `dcrun worker` on every host, this one included:
     * that agent places the ranks of its host (dc_job_opts.worker_args) */
    if (!strcmp (*launcher, "local") || !strcmp (*launcher, "slurm"))
        place_local (hosts, plan);
    if (!dc_launch_find (*launcher, err))
        return DC_STATUS_FAIL;
    if (!strcmp (*launcher, "local")) {
        for (int r = 0; r < plan->size; r++)
            if (!dc_launch_is_local_host (dc_plan_host (plan, r))) {
                errprintf (err,
                           "host '%s' is not this host: the local "
                           "launcher runs every rank here\nhint: use -L ssh "
                           "(or -L auto)",
                           dc_plan_host (plan, r));
                return DC_STATUS_USAGE;
            }
    }
    return DC_STATUS_OK;
}

int dc_job_init (struct dc_job *job, struct dc_hosts *hosts,
                 struct dc_plan *plan, const struct dc_job_opts *o,
                 dc_error_t *err)
{
    int st;

    memset (job, 0, sizeof (*job));
    job->sfd = -1;
    job->hosts = hosts;
    job->plan = plan;
    job->o = *o;
    if ((st = dc_job_prepare (hosts, plan, o->launcher, &job->launcher, err)) !=
        DC_STATUS_OK)
        return st;
    job->master_port = dc_launch_free_port ();
    int size = plan->size;
    if (!(job->host = calloc ((size_t)size, sizeof (*job->host))) ||
        !(job->lr = calloc ((size_t)size, sizeof (*job->lr))) ||
        !(job->line = calloc ((size_t)size, sizeof (*job->line))) ||
        !(job->linelen = calloc ((size_t)size, sizeof (*job->linelen))))
        goto nomem;
    for (int r = 0; r < size; r++) {
        job->host[r] = dc_plan_host (plan, r);
        if (!(job->line[r] = malloc (LINE_MAX_BYTES + 1)))
            goto nomem;
    }
    return DC_STATUS_OK;
nomem:
    errprintf (err, "out of memory");
    return DC_STATUS_FAIL;
}

static void on_stderr (int r, const char *data, size_t len, void *arg)
{
    struct dc_job *job = arg;
    char *lb = job->line[r];
    size_t *ll = &job->linelen[r];

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' || *ll == LINE_MAX_BYTES) {
            if (job->o.on_line)
                job->o.on_line (r, job->host[r], lb, *ll, job->o.arg);
            *ll = 0;
            if (data[i] == '\n')
                continue;
        }
        lb[(*ll)++] = data[i];
    }
}

int dc_job_check (void *arg)
{
    struct dc_job *job = arg;
    int s;

    while ((s = dc_sigpipe_read ()) > 0)
        if (s != SIGCHLD && !job->interrupted)
            job->interrupted = s;
    return job->interrupted;
}

int dc_job_launch (struct dc_job *job, double heartbeat_timeout,
                   dc_error_t *err)
{
    int size = job->plan->size;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0};
    static char *serve_argv[3];

    signal (SIGPIPE, SIG_IGN);
    if ((job->sfd = dc_sigpipe_create (sigs)) < 0) {
        errprintf (err, "signal pipe: %s", strerror (errno));
        return DC_STATUS_FAIL;
    }
    if (!(job->hub =
              dc_comm_stream_hub_create (size, on_stderr, job, job->sfd, err)))
        return DC_STATUS_FAIL;
    struct dc_launch_opts lo = job->o.lo;
    lo.on_output = dc_comm_stream_on_output;
    lo.on_exit = dc_comm_stream_on_exit;
    lo.arg = job->hub;
    lo.nranks_total = size;
    lo.cancel_fd = job->sfd;
    lo.stdin_null = false;
    if (!lo.remote_dcrun)
        lo.remote_dcrun = job->o.self;
    serve_argv[0] = (char *)job->o.self;
    serve_argv[1] = "serve";
    serve_argv[2] = NULL;
    for (int r = 0; r < size; r++) {
        const struct dc_host *h = &job->hosts->v[job->plan->ranks[r].host];
        struct dc_launch_rank *lr = &job->lr[r];
        lr->rank = r;
        lr->host = h->name;
        lr->user = h->user;
        lr->port = h->port;
        lr->cpus = job->o.no_bind ? NULL : job->plan->ranks[r].cpus;
        lr->argv = serve_argv;
        lr->exec_in_place = true;
        /* the comm goes down the rank's stdin: under mpi and slurm, framed
         * on the connect-back control connection (ssh: the channel) */
        lr->stdin_data = true;
        lr->wdir = job->o.wdir;
        lr->worker_args =
            job->o.worker_args ? job->o.worker_args (job, r, job->o.arg) : NULL;
        if (!(lr->env = job->o.rank_env (job, r, job->o.arg))) {
            errprintf (err, "out of memory");
            return DC_STATUS_FAIL;
        }
    }
    if (!(job->l = dc_launch_create (job->launcher, &lo, err)))
        return DC_STATUS_LAUNCH;
    if (dc_launch_spawn (job->l, job->lr, size, err) < 0)
        return dc_job_check (job) > 0 ? DC_STATUS_SIGNAL : DC_STATUS_LAUNCH;
    dc_comm_stream_hub_attach (job->hub, job->l);
    dc_comm_stream_set_heartbeat (
        job->hub, heartbeat_timeout > 0 ? heartbeat_timeout : 30);
    return DC_STATUS_OK;
}

void dc_job_stop (struct dc_job *job)
{
    double grace = job->o.kill_grace > 0 ? job->o.kill_grace : 3;
    double until = dc_now () + grace;

    if (!job->l)
        return;
    dc_launch_signal (job->l, -1, SIGTERM);
    while (dc_comm_stream_running (job->hub) > 0 && dc_now () < until) {
        struct dc_comm_msg m;
        if (dc_comm_recv (job->hub, &m, 50, NULL) > 0)
            free (m.data);
    }
    if (dc_comm_stream_running (job->hub) > 0)
        dc_launch_signal (job->l, -1, SIGKILL);
}

bool dc_job_drain (struct dc_job *job, double seconds)
{
    double until = dc_now () + seconds;

    while (job->hub && dc_comm_stream_running (job->hub) > 0 &&
           dc_now () < until) {
        struct dc_comm_msg m;
        if (dc_comm_recv (job->hub, &m, 50, NULL) > 0)
            free (m.data);
        if (dc_job_check (job) > 0)
            break;
    }
    return !job->hub || dc_comm_stream_running (job->hub) == 0;
}

bool dc_job_via_driver (const struct dc_job *job)
{
    return !strcmp (job->launcher, "mpi") || !strcmp (job->launcher, "slurm");
}

void dc_job_strv_free (char **v)
{
    for (int i = 0; v && v[i]; i++)
        free (v[i]);
    free (v);
}

void dc_job_fini (struct dc_job *job)
{
    int size = job->plan ? job->plan->size : 0;

    dc_launch_destroy (job->l);
    dc_comm_destroy (job->hub);
    if (job->sfd >= 0)
        dc_sigpipe_destroy ();
    for (int r = 0; job->lr && r < size; r++)
        dc_job_strv_free ((char **)job->lr[r].env);
    for (int r = 0; job->line && r < size; r++)
        free (job->line[r]);
    free (job->line);
    free (job->linelen);
    free (job->lr);
    free (job->host);
    dc_plan_destroy (job->plan);
    dc_hosts_destroy (job->hosts);
    memset (job, 0, sizeof (*job));
    job->sfd = -1;
}

/* ---- layouts ---- */

bool dc_run_split_wanted (const struct dc_run_split *s)
{
    return s->split != DC_SPLIT_DATA || s->max_mem > 0 || s->stages > 0;
}

/* Device memory of every rank (see job.h). */
static void rank_memory (const struct dc_plan *plan, const char *device,
                         long long cap, long long *mem)
{
    struct dc_topo *topo = dc_probe_host (NULL, NULL);

    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *k = &plan->ranks[r];
        long long m = -1;
        if (topo && device && strcmp (device, "cpu") != 0)
            for (int i = 0; i < k->ngpus; i++) {
                int g = dc_topo_find_gpu (topo, k->gpus[i]);
                long long gm = g >= 0 ? topo->gpus[g].memory_bytes : -1;
                if (gm > 0 && (m < 0 || gm < m))
                    m = gm;
            }
        if (m < 0 && topo && topo->memory_bytes > 0)
            m = topo->memory_bytes / (k->local_size > 0 ? k->local_size : 1);
        if (cap > 0 && (m < 0 || m > cap))
            m = cap;
        mem[r] = m;
    }
    dc_topo_destroy (topo);
}

int dc_job_layout (const struct dc_job *job, const struct dc_model *m,
                   const struct dc_run_split *s, const char *device,
                   size_t rows, struct dc_layout **lop, dc_error_t *err)
{
    int size = job->plan->size;
    long long *mem = calloc ((size_t)size, sizeof (long long));
    struct dc_layout_layer *ly = calloc ((size_t)m->nlayers, sizeof (*ly));
    struct dc_layout_opts o = {
        .split = s->split, .stages = s->stages, .rows = rows};
    int st = DC_STATUS_OK;

    if (!mem || !ly) {
        errprintf (err, "out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    rank_memory (job->plan, device, s->max_mem, mem);
    for (int i = 0; i < m->nlayers; i++) {
        ly[i].name = m->layers[i].name;
        ly[i].in = m->layers[i].in;
        ly[i].out = m->layers[i].out;
    }
    if (!(*lop = dc_layout_plan (ly, m->nlayers, mem, size, &o, err)))
        st = errno == EFBIG ? DC_STATUS_INPUT : DC_STATUS_USAGE;
out:
    free (mem);
    free (ly);
    return st;
}

/* ---- under mpirun or srun ---- */

static void *self_serve (void *arg)
{
    struct dc_job_mpi *m = arg;
    struct dc_worker_opts wo = {.find = dc_compute_find};
    dc_error_t err;

    if (dc_worker_serve (m->self, &wo, &err) < 0 && m->on_error)
        m->on_error (err.text, m->arg);
    return NULL;
}

int dc_job_mpi_check (void *arg)
{
    struct dc_job_mpi *m = arg;
    int s;

    while ((s = dc_sigpipe_read ()) > 0)
        if (s != SIGCHLD && !m->interrupted)
            m->interrupted = s;
    return m->interrupted;
}

int dc_job_mpi_start (struct dc_job_mpi *m, bool *hub, dc_error_t *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, 0};
    void (*on_error) (const char *, void *) = m->on_error;
    void *arg = m->arg;

    memset (m, 0, sizeof (*m));
    m->on_error = on_error;
    m->arg = arg;
    m->sfd = -1;
    *hub = false;
    if (dc_comm_mpi_init (&m->rank, &m->size, err) < 0)
        return DC_STATUS_LAUNCH;
    if (!(m->self = dc_comm_mpi_rank_create (err)))
        return DC_STATUS_FAIL;
    if (m->rank != 0) {
        /* a rank: serve, then leave */
        struct dc_worker_opts wo = {.find = dc_compute_find};
        dc_error_t e;
        int rc = dc_worker_serve (m->self, &wo, &e);
        dc_comm_destroy (m->self);
        m->self = NULL;
        dc_comm_mpi_finalize ();
        if (rc < 0) {
            errprintf (err, "rank %d: %s", m->rank, e.text);
            return DC_STATUS_FAIL;
        }
        return DC_STATUS_OK;
    }
    *hub = true;
    if ((m->sfd = dc_sigpipe_create (sigs)) < 0) {
        errprintf (err, "%s", strerror (errno));
        return DC_STATUS_FAIL;
    }
    if (!(m->hub = dc_comm_mpi_hub_create (err)))
        return DC_STATUS_FAIL;
    if (!(m->host = calloc ((size_t)m->size, sizeof (*m->host)))) {
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    for (int r = 0; r < m->size; r++)
        m->host[r] = "(mpi)";
    if (pthread_create (&m->thread, NULL, self_serve, m) != 0) {
        errprintf (err, "cannot start rank 0's thread");
        return DC_STATUS_FAIL;
    }
    m->thread_started = true;
    return DC_STATUS_OK;
}

void dc_job_mpi_finish (struct dc_job_mpi *m, int abort_code)
{
    if (abort_code != 0) {
        /* ranks may wait for work that will not come: end the MPI job */
        fflush (NULL);
        dc_comm_mpi_abort (abort_code);
    }
    if (m->thread_started)
        pthread_join (m->thread, NULL);
    dc_comm_destroy (m->self);
    dc_comm_destroy (m->hub);
    free (m->host);
    if (m->sfd >= 0)
        dc_sigpipe_destroy ();
    dc_comm_mpi_finalize ();
}
