/* rankenv.c - the environment of a rank (rankenv.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/hosts/rankenv.h"

#define MAX_ENTRIES 32

static const char *const rank_vars[] = {
    "DCRUN_RANK",
    "DCRUN_SIZE",
    "DCRUN_LOCAL_RANK",
    "DCRUN_LOCAL_SIZE",
    "DCRUN_NODE_RANK",
    "DCRUN_HOST",
    "DCRUN_GPUS",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "ROLE_NAME",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_MAX_RESTARTS",
    NULL,
};

static size_t name_len (const char *s)
{
    return strcspn (s, "=");
}

static bool name_is (const char *s, size_t n, const char *name)
{
    return strlen (name) == n && !strncmp (s, name, n);
}

bool dc_rankenv_is_rank_var (const char *name)
{
    if (!name)
        return false;
    size_t n = name_len (name);
    for (int i = 0; rank_vars[i]; i++)
        if (name_is (name, n, rank_vars[i]))
            return true;
    return false;
}

bool dc_rankenv_export_denied (const char *name)
{
    static const char *const exact[] = {
        "DISPLAY", "TERM",   "HOME",  "USER", "LOGNAME",    "SHELL",
        "PWD",     "OLDPWD", "SHLVL", "_",    "XAUTHORITY", NULL,
    };
    static const char *const prefix[] = {"SSH_", "DBUS_", "DCRUN_XENV_", NULL};

    if (!name)
        return true;
    size_t n = name_len (name);
    for (int i = 0; exact[i]; i++)
        if (name_is (name, n, exact[i]))
            return true;
    for (int i = 0; prefix[i]; i++)
        if (!strncmp (name, prefix[i], strlen (prefix[i])))
            return true;
    return dc_rankenv_is_rank_var (name);
}

int dc_rankenv_gpu_bind_parse (const char *s, enum dc_gpu_bind *out)
{
    if (!s)
        return -1;
    if (!strcmp (s, "host") || !strcmp (s, "local"))
        *out = DC_GPU_BIND_HOST;
    else if (!strcmp (s, "rank") || !strcmp (s, "single"))
        *out = DC_GPU_BIND_RANK;
    else if (!strcmp (s, "none"))
        *out = DC_GPU_BIND_NONE;
    else
        return -1;
    return 0;
}

int dc_rankenv_count_cpus (const char *cpus)
{
    long count = 0;
    const char *p = cpus;

    if (!p || !*p)
        return 0;
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol (p, &end, 10), b;
        if (end == p || a < 0 || errno)
            return 0;
        p = end;
        b = a;
        if (*p == '-') {
            b = strtol (p + 1, &end, 10);
            if (end == p + 1 || b < a || errno)
                return 0;
            p = end;
        }
        count += b - a + 1;
        if (count > 1 << 20)
            return 0;
        if (*p == ',')
            p++;
        else if (*p)
            return 0;
    }
    return (int)count;
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

/* "NAME=a,b,c" from ids (NULL when out of memory). */
static char *id_list (const char *name, const int *ids, int n)
{
    size_t cap = strlen (name) + 2 + (size_t)n * 12, len;
    char *s = malloc (cap);

    if (!s)
        return NULL;
    len = (size_t)snprintf (s, cap, "%s=", name);
    for (int i = 0; i < n; i++)
        len +=
            (size_t)snprintf (s + len, cap - len, "%s%d", i ? "," : "", ids[i]);
    return s;
}

/* The GPUs of the ranks of rank r's host, in local-rank order, each once. */
static int host_gpus (const struct dc_plan *plan, int r, int **out)
{
    const struct dc_rank *me = &plan->ranks[r];
    int n = 0, cap = 0, *v = NULL;

    for (int lr = 0; lr < me->local_size; lr++)
        for (int q = 0; q < plan->size; q++) {
            const struct dc_rank *rk = &plan->ranks[q];
            if (rk->host != me->host || rk->local_rank != lr)
                continue;
            for (int i = 0; i < rk->ngpus; i++) {
                bool seen = false;
                for (int k = 0; k < n && !seen; k++)
                    seen = v[k] == rk->gpus[i];
                if (seen)
                    continue;
                if (n == cap) {
                    int *nv =
                        realloc (v, (size_t)(cap = cap * 2 + 8) * sizeof (int));
                    if (!nv) {
                        free (v);
                        return -1;
                    }
                    v = nv;
                }
                v[n++] = rk->gpus[i];
            }
        }
    *out = v;
    return n;
}

void dc_rankenv_free (char **env)
{
    for (int i = 0; env && env[i]; i++)
        free (env[i]);
    free (env);
}

char **dc_rankenv_create (const struct dc_plan *plan, int r,
                          const struct dc_rankenv_opts *o, dc_error_t *errp)
{
    static const struct dc_rankenv_opts dflt = {0};
    char **env;
    int k = 0;

    if (!o)
        o = &dflt;
    if (!plan || r < 0 || r >= plan->size) {
        errno = EINVAL;
        errprintf (errp, "rank environment: no rank %d", r);
        return NULL;
    }
    if (!(env = calloc (MAX_ENTRIES + 1, sizeof (char *)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    const struct dc_rank *rk = &plan->ranks[r];
    const char *host = dc_plan_host (plan, r);
    const char *addr = o->master_addr ? o->master_addr : "127.0.0.1";
    const char *run_id = o->run_id ? o->run_id : "dcrun";
    env[k++] = fmt ("DCRUN_RANK=%d", rk->rank);
    env[k++] = fmt ("DCRUN_SIZE=%d", plan->size);
    env[k++] = fmt ("DCRUN_LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("DCRUN_LOCAL_SIZE=%d", rk->local_size);
    env[k++] = fmt ("DCRUN_NODE_RANK=%d", rk->node_rank);
    env[k++] = fmt ("DCRUN_HOST=%s", host ? host : "");
    env[k++] = fmt ("RANK=%d", rk->rank);
    env[k++] = fmt ("WORLD_SIZE=%d", plan->size);
    env[k++] = fmt ("LOCAL_RANK=%d", rk->local_rank);
    env[k++] = fmt ("LOCAL_WORLD_SIZE=%d", rk->local_size);
    env[k++] = fmt ("GROUP_RANK=%d", rk->node_rank);
    env[k++] = fmt ("ROLE_RANK=%d", rk->rank);
    env[k++] = fmt ("ROLE_WORLD_SIZE=%d", plan->size);
    env[k++] = fmt ("ROLE_NAME=default");
    env[k++] = fmt ("MASTER_ADDR=%s", addr);
    env[k++] = fmt ("MASTER_PORT=%d", o->master_port);
    env[k++] = fmt ("TORCHELASTIC_RUN_ID=%s", run_id);
    env[k++] = fmt ("TORCHELASTIC_RESTART_COUNT=%d", o->restart_count);
    env[k++] = fmt ("TORCHELASTIC_MAX_RESTARTS=%d", o->max_restarts);
    int ncpus = dc_rankenv_count_cpus (rk->cpus);
    if (!o->omp_given && ncpus > 0)
        env[k++] = fmt ("OMP_NUM_THREADS=%d", ncpus);
    if (rk->ngpus > 0) {
        env[k++] = id_list ("DCRUN_GPUS", rk->gpus, rk->ngpus);
        if (o->gpu_bind == DC_GPU_BIND_RANK)
            env[k++] = id_list ("CUDA_VISIBLE_DEVICES", rk->gpus, rk->ngpus);
        else if (o->gpu_bind == DC_GPU_BIND_HOST) {
            int *ids = NULL, n = host_gpus (plan, r, &ids);
            env[k++] = n < 0 ? NULL : id_list ("CUDA_VISIBLE_DEVICES", ids, n);
            free (ids);
        }
    }
    for (int i = 0; i < k; i++)
        if (!env[i]) {
            for (int j = i + 1; j < k; j++)
                free (env[j]);
            env[i] = NULL;
            dc_rankenv_free (env);
            errprintf (errp, "out of memory");
            return NULL;
        }
    env[k] = NULL;
    return env;
}

int dc_rankenv_host_ip (const char *host, char *buf, size_t len,
                        dc_error_t *errp)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    int rc;

    if (!host || !*host)
        return errprintf (errp, "no host name");
    if ((rc = getaddrinfo (host, NULL, &hints, &ai)) != 0 || !ai)
        return errprintf (errp, "%s: cannot resolve: %s", host,
                          gai_strerror (rc));
    rc = getnameinfo (ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)len, NULL, 0,
                      NI_NUMERICHOST);
    freeaddrinfo (ai);
    if (rc != 0)
        return errprintf (errp, "%s: %s", host, gai_strerror (rc));
    return 0;
}

int dc_rankenv_source_ip (const char *host, char *buf, size_t len,
                          dc_error_t *errp)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM},
                    *ai = NULL;
    struct sockaddr_in me;
    socklen_t mlen = sizeof (me);
    int fd, rc;

    if (!host || !*host)
        return errprintf (errp, "no host name");
    if ((rc = getaddrinfo (host, "9", &hints, &ai)) != 0 || !ai)
        return errprintf (errp, "%s: cannot resolve: %s", host,
                          gai_strerror (rc));
    rc = -1;
    if ((fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            getsockname (fd, (struct sockaddr *)&me, &mlen) == 0 &&
            inet_ntop (AF_INET, &me.sin_addr, buf, (socklen_t)len))
            rc = 0;
        close (fd);
    }
    freeaddrinfo (ai);
    if (rc < 0)
        return errprintf (errp, "%s: no route from this host", host);
    return 0;
}

int dc_rankenv_slurm_local_size (const char *tpn, long node_id)
{
    const char *p = tpn;
    long idx = 0;
    int found = -1;

    if (!p || node_id < 0)
        return -1;
    while (*p) {
        char *end;
        long c, rep = 1;
        if (*p < '0' || *p > '9')
            return -1;
        errno = 0;
        c = strtol (p, &end, 10);
        if (errno || c < 1 || c > 1000000)
            return -1;
        p = end;
        if (!strncmp (p, "(x", 2)) {
            if (p[2] < '0' || p[2] > '9')
                return -1;
            rep = strtol (p + 2, &end, 10);
            if (errno || rep < 1 || rep > 1000000 || *end != ')')
                return -1;
            p = end + 1;
        }
        if (found < 0 && node_id < idx + rep)
            found = (int)c;
        idx += rep;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return -1; /* the whole list is checked, not only its head */
    }
    return found;
}

static void set_pair (const char *a, const char *b, const char *value)
{
    if (value) {
        setenv (a, value, 1);
        if (b)
            setenv (b, value, 1);
    }
}

/* srun's task: its rank, size, local rank, node and the tasks of its
 * node. */
static void from_slurm (void)
{
    const char *nodeid = getenv ("SLURM_NODEID");
    int n;

    set_pair ("DCRUN_RANK", "RANK", getenv ("SLURM_PROCID"));
    set_pair ("DCRUN_SIZE", "WORLD_SIZE", getenv ("SLURM_NTASKS"));
    set_pair ("DCRUN_LOCAL_RANK", "LOCAL_RANK", getenv ("SLURM_LOCALID"));
    set_pair ("DCRUN_NODE_RANK", NULL, nodeid);
    if (nodeid &&
        (n = dc_rankenv_slurm_local_size (getenv ("SLURM_STEP_TASKS_PER_NODE"),
                                          strtol (nodeid, NULL, 10))) > 0) {
        char buf[32];
        snprintf (buf, sizeof (buf), "%d", n);
        set_pair ("DCRUN_LOCAL_SIZE", "LOCAL_WORLD_SIZE", buf);
    }
}

bool dc_rankenv_from_launcher (void)
{
    char host[256];

    if (getenv ("OMPI_COMM_WORLD_RANK")) {
        set_pair ("DCRUN_RANK", "RANK", getenv ("OMPI_COMM_WORLD_RANK"));
        set_pair ("DCRUN_SIZE", "WORLD_SIZE", getenv ("OMPI_COMM_WORLD_SIZE"));
        set_pair ("DCRUN_LOCAL_RANK", "LOCAL_RANK",
                  getenv ("OMPI_COMM_WORLD_LOCAL_RANK"));
        set_pair ("DCRUN_LOCAL_SIZE", "LOCAL_WORLD_SIZE",
                  getenv ("OMPI_COMM_WORLD_LOCAL_SIZE"));
        set_pair ("DCRUN_NODE_RANK", NULL,
                  getenv ("OMPI_COMM_WORLD_NODE_RANK"));
    } else if (getenv ("SLURM_PROCID") && getenv ("SLURM_STEP_ID"))
        from_slurm ();
    else
        return false;
    if (gethostname (host, sizeof (host)) == 0) {
        host[sizeof (host) - 1] = '\0';
        setenv ("DCRUN_HOST", host, 0);
    }
    /* the rest of torchrun's names */
    set_pair ("GROUP_RANK", NULL, getenv ("DCRUN_NODE_RANK"));
    set_pair ("ROLE_RANK", NULL, getenv ("RANK"));
    set_pair ("ROLE_WORLD_SIZE", NULL, getenv ("WORLD_SIZE"));
    setenv ("ROLE_NAME", "default", 0);
    setenv ("TORCHELASTIC_RESTART_COUNT", "0", 0);
    setenv ("TORCHELASTIC_MAX_RESTARTS", "0", 0);
    setenv ("TORCHELASTIC_RUN_ID", "dcrun", 0);
    return true;
}
