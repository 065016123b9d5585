/* worker.h - what `dcrun worker` runs: the agent launchers start on each host
 *
 *   dcrun worker [--cpus LIST] [-e NAME=VALUE]... [--control stdin|none]
 *                -- CMD ARGS...
 *
 * The rank's agent on its host (lib/launch/agent.h does the work): runs
 * CMD in its own process group with the rank's environment, its output
 * going straight to the worker's stdout/stderr (the launcher's channel).
 * The worker's stdin is the control channel (lib/launch/control.h):
 * signals for the group, with --stdin the bytes of CMD's stdin and their
 * EOF; EOF of the channel (the SSH channel closed, the launcher gone)
 * stops the group (SIGTERM and SIGCONT, SIGKILL after DC_WORKER_KILL_GRACE_S)
 * and ends the worker.  The parent going away (PR_SET_PDEATHSIG), SIGTERM,
 * SIGINT and SIGHUP do the same.  With --exec, CMD's stdin and stdout are
 * the channel itself: the worker reads nothing, and the channel closing
 * (an error polling its stdout) stops CMD.  The worker is a child
 * subreaper (lib/launch/proctree.h): when CMD ends or is stopped, its
 * whole tree goes with it, and the worker exits with CMD's status, or
 * dies of CMD's signal.  --port-check PORT answers for MASTER_PORT on
 * rank 0's host and exits.
 *
 * With --place (what the head asks for remote ranks it could not place),
 * the worker is the placement agent of its host: it probes the host
 * (gpu/probe.c; $DCRUN_HWLOC_XMLFILE names an hwloc XML to load instead of
 * the live topology), places all DCRUN_LOCAL_SIZE ranks of the host with
 * dc_plan_place_local() (the function the head uses for its own host, so
 * the ranks of a host never overlap) and binds CMD to the cores of its
 * local rank (DCRUN_LOCAL_RANK): the cores next to its GPU(s).  It puts
 * that CPU set in DCRUN_CPUS, binds only to the CPUs of it that exist and
 * are allowed here (none: unbound, said at -v), and, when the head did not
 * know the host's GPUs (no --place-gpus), sets DCRUN_GPUS and
 * CUDA_VISIBLE_DEVICES to the rank's GPUs.  At -v it says what it did on
 * stderr.
 *
 * Under mpirun (OMPI_COMM_WORLD_*) and srun (SLURM_PROCID...) the rank
 * environment comes from theirs, and --control none is the default there
 * (their stdin is /dev/null for most ranks).
 *
 * The split: cli/cmd_worker.c parses the options into struct dc_worker,
 * answers --port-check, reads the environment block of --env-stdin and the
 * DCRUN_XENV_* variables (cli/job.c), then calls dc_worker_setup() and
 * dc_worker_run() and prints their errors; the code here never prints and
 * never exits.  Error texts start with "worker: " where the message is the
 * worker's (the --wdir one names the host instead), so the CLI prints them
 * as they are.
 */
#ifndef DC_RUN_WORKER_H
#define DC_RUN_WORKER_H

#include <stdbool.h>

#include "lib/hosts/plan.h"
#include "lib/hosts/rankenv.h"
#include "lib/util/error.h"

/* Seconds from SIGTERM to SIGKILL when the worker stops CMD's group. */
#define DC_WORKER_KILL_GRACE_S 2

/* The worker's command line (filled by the CLI) and what setup made of it. */
struct dc_worker {
    char *const *cmd;          /* CMD ARGS..., NULL-terminated */
    bool exec;                 /* --exec */
    bool stdin_data;           /* --stdin */
    const char *cpus;          /* --cpus, or after --place the CPUs bound to */
    int control;               /* --control: 1 stdin, 0 none, -1 the default */
    char **env;                /* -e NAME=VALUE entries (put as they are) */
    int nenv;                  /*   the caller owns the array and its strings */
    const char *wdir;          /* --wdir, NULL: stay */
    bool place;                /* --place */
    bool place_no_bind;        /* --place-no-bind */
    long place_slots;          /* --place-slots, 0: DCRUN_LOCAL_SIZE */
    const char *place_gpus;    /* --place-gpus, NULL: the probed GPUs */
    long gpus_per_rank;        /* --gpus-per-rank, 0: GPUs / slots */
    struct dc_plan_opts popts; /* --map-by ppr:... */
    enum dc_gpu_bind gpu_bind; /* --place-gpu-bind */
    /* set by dc_worker_setup, freed by dc_worker_fini */
    char *placed;          /* --place: the CPUs bound to (cpus points here) */
    dc_error_t place_note; /* --place: what it did, for -v ("" none) */
};

/* -e NAME=VALUE: add entry (borrowed: it must live as long as the
 * process, argv does) to w->env.  0, or -1 with errp filled when it has
 * no NAME= or when out of memory. */
int dc_worker_add_env (struct dc_worker *w, const char *entry,
                       dc_error_t *errp);

/* --control: "stdin" 1, "none" 0, -1 otherwise. */
int dc_worker_control_parse (const char *s);

/* --port-check PORT (MASTER_PORT as rank 0's host sees it; launch_ssh.c
 * asks before any rank starts): port when it is free here, 0 when it is
 * busy; with port 0 a free port.  -1 with errno set when none is found. */
int dc_worker_port_check (int port);

/* The rank environment from mpirun's or srun's variables (unless dcrun
 * passed its own through them), --control's default, the -e entries, the
 * folder (--wdir), the placement (--place, without --cpus).  Returns
 * DC_STATUS_OK, or DC_STATUS_LAUNCH / DC_STATUS_USAGE (a bad --place-gpus)
 * with errp filled.  Sets this process's environment and folder. */
int dc_worker_setup (struct dc_worker *w, dc_error_t *errp);

/* Under mpirun/srun with $DCRUN_IO (and not --exec): connect back to dcrun
 * (ctl, out and err, lib/launch/launch_io.h; the worker's own stderr goes
 * to err from here on), then run CMD under the agent (lib/launch/agent.h).
 * Returns enum dc_agent_rc: DC_AGENT_OK with *statusp CMD's wait status,
 * DC_AGENT_NOEXEC (CMD could not be bound or executed) or DC_AGENT_SETUP
 * (the connections or the agent itself) with errp filled. */
int dc_worker_run (const struct dc_worker *w, int *statusp, dc_error_t *errp);

/* The worker's own end after CMD's wait status: its exit status, or, when
 * CMD died of a signal, the same signal raised here (no core file); what
 * returns then is 128 + the signal, for a signal that does not end a
 * process. */
int dc_worker_end (int status);

/* Free what dc_worker_add_env and dc_worker_setup allocated. */
void dc_worker_fini (struct dc_worker *w);

/* ---- placement on a topology (the part of --place that probes nothing) */

struct dc_topo;

struct dc_worker_place_opts {
    const char *host; /* the host's name for the plan, NULL: none */
    int local_rank;   /* DCRUN_LOCAL_RANK */
    int local_size;   /* DCRUN_LOCAL_SIZE */
    int slots;        /* the host's slots, 0: local_size */
    const int *gpus;  /* the host's gpus= list, NULL: topo's GPUs */
    int ngpus;
    struct dc_plan_opts plan; /* gpus_per_rank, ppr */
    enum dc_gpu_bind gpu_bind;
};

struct dc_worker_placement {
    char *cpus; /* the rank's CPU set (DCRUN_CPUS), NULL: none known */
    char *gpus; /* the rank's GPUs, comma-separated, "" none */
    /* CUDA_VISIBLE_DEVICES as --gpu-bind has it (rankenv.h): host: the GPUs
     * of every local rank in local-rank order, so that cuda:LOCAL_RANK is
     * the rank's own (torchrun's contract); rank: its own; NULL: leave it
     * (none, or the rank has no GPU).  The worker sets DCRUN_GPUS and this
     * only when the head did not know the host's GPUs (no --place-gpus) */
    char *visible;
};

/* Place local rank o->local_rank of the host's o->local_size ranks on topo
 * with dc_plan_place_local(), as the head places its own host.  0 with *p
 * filled (free with dc_worker_placement_free), or -1 with errp filled and
 * *p empty. */
int dc_worker_place (const struct dc_topo *topo,
                     const struct dc_worker_place_opts *o,
                     struct dc_worker_placement *p, dc_error_t *errp);
void dc_worker_placement_free (struct dc_worker_placement *p);

/* The CPUs of list ("0-3,8") that this process may run on, as a new list
 * ("" when none); NULL when out of memory or list is bad. */
char *dc_worker_cpus_here (const char *list);

#endif
