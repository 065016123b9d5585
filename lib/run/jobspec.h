/* jobspec.h - a job as the command line asks for it, set up below the CLI
 *
 * struct dc_job_args holds what the options say about a job (the host list
 * is resolved by the caller; lib/hosts/resolve.h): the launcher, the
 * placement and the rank environment's exports.  From it and a host list:
 * the slots of hosts without slots= (their own GPUs, probed over ssh with
 * lib/run/remote_probe.h), the words of the agents that place remote ranks
 * (`dcrun worker --place ...`), MASTER_ADDR, each rank's environment
 * (lib/hosts/rankenv.h's contract, then --export-all and -x), and the
 * inner `dcrun exec` command line of -L mpi and -L slurm.  Nothing here
 * prints: the -x names unset here are returned for the caller to warn about.
 */
#ifndef DC_RUN_JOBSPEC_H
#define DC_RUN_JOBSPEC_H

#include <stdbool.h>

#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/launch/launch.h"
#include "lib/run/job.h"
#include "lib/util/error.h"

struct dc_job_args {
    const char *hostfile;     /* -f */
    const char *hosts;        /* -H */
    long np;                  /* -n, 0 when not given */
    const char *launcher;     /* -L, NULL or "auto": picked from the hosts */
    int verbose;              /* -v count, passed on to agents and drivers */
    bool dry_run;             /* --dry-run: nothing is probed */
    struct dc_plan_opts plan; /* --map-by, --oversubscribe, --gpus-per-rank */
    struct dc_launch_opts lo; /* the ssh and mpi options */
    bool no_bind;             /* --bind none */
    double kill_grace;        /* --kill-grace, seconds; 0: 3 */
    char *const *exports;     /* -x NAME, NAME=VALUE or PATTERN, in order */
    int nexports;
    bool export_all;     /* --export-all */
    int gpu_bind;        /* --gpu-bind: enum dc_gpu_bind */
    const char *wdir;    /* --wdir */
    const char *exclude; /* --exclude */
    int master_port;     /* --master-port, 0: a free one */
};

/* A job set up: its hosts, plan and launcher (the caller's or lib/run/job's)
 * and what dc_jobspec_attach adds. */
struct dc_jobspec {
    struct dc_hosts *hosts;
    struct dc_plan *plan;
    const char *launcher; /* the launcher's name, -L auto resolved */
    int master_port;      /* MASTER_PORT for torchrun-style programs */
    char master_addr[64]; /* rank 0's host as an address every rank reaches */
    /* per rank: the words that make a remote `dcrun worker` its host's
     * placement agent (--place ...), NULL for a rank placed here */
    char ***worker_args;
    int restart_count, max_restarts; /* exec --max-restarts */
};

/* True when the options or the environment (getenv) ask for ranks: -f,
 * -H, -n above 1, -L, $DCRUN_HOSTFILE, a Slurm allocation outside its job
 * steps, $PBS_NODEFILE, or more than one GPU on this host. */
bool dc_jobspec_wanted (const struct dc_job_args *a);

/* The GPUs of this host (a look at the PCI bus, then one probe, both
 * once), 0 when none or unknown. */
int dc_jobspec_local_gpus (void);

/* Give the hosts without slots= that the ranks reach over ssh (-L ssh:
 * every one; auto: those not this host), or every host under --map-by ppr,
 * their slots as their own `dcrun probe` sees them, probed in parallel
 * with the -x exports in the probe's environment.  A host that cannot be
 * probed keeps 1 slot (dc_log says why); --dry-run probes nothing. */
void dc_jobspec_probe_slots (const struct dc_job_args *a,
                             struct dc_hosts *hosts);

/* For js with hosts and plan set: pick the launcher (lib/run/job.h's
 * dc_job_prepare), MASTER_PORT (--master-port or a free one), then
 * dc_jobspec_attach.  A lib/run/status.h status, err set. */
int dc_jobspec_init (const struct dc_job_args *a, struct dc_jobspec *js,
                     dc_error_t *err);
/* What dc_jobspec_attach made, the plan and the hosts (js cleared). */
void dc_jobspec_fini (struct dc_jobspec *js);

/* For js with hosts, plan, launcher and master_port set: the agents'
 * words and MASTER_ADDR.  0, or -1 when out of memory. */
int dc_jobspec_attach (const struct dc_job_args *a, struct dc_jobspec *js);
/* What dc_jobspec_attach made (accepts a cleared js). */
void dc_jobspec_detach (struct dc_jobspec *js);

/* A job of lib/run/job.h (infer, train, map, bench) started from the
 * options: its rank environments and agents' words come from spec. */
struct dc_jobspec_run {
    struct dc_job_args a; /* the caller's */
    struct dc_jobspec js; /* borrows the job's hosts, plan and launcher */
    char cwd[4096];       /* the ranks' folder when no --wdir was given */
};

/* dc_job_init with a's options (the ranks in --wdir, or this folder on
 * every host), then a --wdir that is not here is a launch failure for
 * local ranks, then dc_jobspec_attach.  Takes hosts and plan; on failure
 * (a status, err set) everything is freed.  on_line: the ranks' stderr
 * lines (its arg is run). */
int dc_jobspec_job_init (struct dc_job *job, struct dc_jobspec_run *run,
                         struct dc_hosts *hosts, struct dc_plan *plan,
                         const char *self,
                         void (*on_line) (int r, const char *host,
                                          const char *line, size_t len,
                                          void *arg),
                         dc_error_t *err);
/* What dc_jobspec_job_init made (accepts a cleared or failed job). */
void dc_jobspec_job_fini (struct dc_job *job, struct dc_jobspec_run *run);

/* The `dcrun worker` words of rank r (borrowed; NULL when this host
 * placed it or no agent placement is wanted). */
char *const *dc_jobspec_worker_args (const struct dc_jobspec *js, int r);

/* The environment of rank r: lib/hosts/rankenv.h's contract, then
 * --export-all (minus rankenv's deny list) and the -x exports in order
 * (NAME, NAME=VALUE, or a shell pattern over this environment; a rank
 * variable is never taken, by name or pattern, nor is what rankenv set).
 * NULL-terminated, freed with dc_jobspec_strv_free; NULL when out of memory. */
char **dc_jobspec_rank_env (const struct dc_job_args *a,
                            const struct dc_jobspec *js, int r);
void dc_jobspec_strv_free (char **v); /* accepts NULL */

/* The next -x NAME (no value, no pattern) from *i on that is unset in this
 * environment, *i moved past it; NULL when none is left. */
const char *dc_jobspec_unset_export (const struct dc_job_args *a, int *i);

/* -L mpi and -L slurm: the inner command line `SELF exec -L LAUNCHER
 * [-f|-H] [-n] OPTIONS [-v] -- SELF COMMAND OWN...` that mpirun or srun
 * runs through.  -x NAME=VALUE passes NAME only: the caller puts the
 * entry in the environment.  NULL-terminated, freed with
 * dc_jobspec_strv_free; NULL when out of memory. */
char **dc_jobspec_driver_argv (const struct dc_job_args *a,
                               const char *launcher, const char *self,
                               const char *command, char *const *own, int nown);

/* Worker side of the rank environment that stays off command lines
 * (lib/launch/launch_io.h): read bytes of NUL-terminated NAME=VALUE
 * entries from fd into the environment, all or none (a lib/run/status.h
 * status with err set: USAGE for a bad size, LAUNCH for a short or bad
 * block); and turn DCRUN_XENV_<k>=NAME=VALUE variables into NAME=VALUE. */
int dc_jobspec_env_read (int fd, long bytes, dc_error_t *err);
void dc_jobspec_env_unwrap (void);

/* Absolute path of this program (static buffer), "dcrun" when unknown. */
const char *dc_jobspec_self_path (void);

#endif
