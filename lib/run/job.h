/* job.h - the ranks of one job: hosts -> plan -> launcher -> hub
 *
 * What every command that starts ranks shares, below the CLI: the ranks
 * of a host list placed on this host's topology, the launcher picked, one
 * `dcrun serve` started per rank with comm "stream" over the launcher's
 * channels and this process as the hub.  Signals arrive on the launcher's
 * self-pipe; dc_job_check turns them into the job's interrupt.  A rank's
 * stderr comes back cut into lines through on_line (lib/ never prints).
 *
 * Functions return a dc_status (status.h) and fill err.
 */
#ifndef DC_RUN_JOB_H
#define DC_RUN_JOB_H

#include <pthread.h>
#include <stdbool.h>

#include "lib/comm/comm.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/launch/launch.h"
#include "lib/model/layout.h"
#include "lib/model/model.h"
#include "lib/run/status.h"
#include "lib/util/error.h"

struct dc_job;

struct dc_job_opts {
    const char *launcher;     /* -L; NULL or "auto": picked from the hosts */
    struct dc_launch_opts lo; /* the launch options (callbacks set here) */
    bool no_bind;             /* --bind none */
    double kill_grace;        /* seconds from SIGTERM to SIGKILL; 0: 3 */
    const char *self;         /* this program, started as `SELF serve` */
    const char *wdir;         /* the ranks' folder (--wdir or the caller's;
                                 ssh: missing there is a launch failure),
                                 NULL: the launcher's default */
    /* The environment of rank r (NULL-terminated, freed with
     * dc_job_strv_free); NULL when out of memory. */
    char **(*rank_env) (const struct dc_job *job, int r, void *arg);
    /* May be NULL: the words that make rank r's `dcrun worker` place it
     * on its own host (borrowed; NULL for a rank placed here). */
    char *const *(*worker_args) (const struct dc_job *job, int r, void *arg);
    /* One line of rank r's stderr (without its newline). */
    void (*on_line) (int r, const char *host, const char *line, size_t len,
                     void *arg);
    void *arg;
};

struct dc_job {
    struct dc_hosts *hosts;
    struct dc_plan *plan;
    const char *launcher; /* the launcher's name, auto resolved */
    int master_port;      /* MASTER_PORT for torchrun-style programs */
    const char **host;    /* host of each rank */
    struct dc_comm *hub;
    struct dc_launch *l;
    struct dc_launch_rank *lr;
    int sfd;         /* signal pipe, -1 */
    int interrupted; /* signal number */
    char **line;     /* ranks' stderr, cut into lines */
    size_t *linelen;
    struct dc_job_opts o;
};

/* Place the ranks of the hosts that are this host on its probed topology,
 * pick the launcher (want: -L, NULL or "auto"; the caller checked that a
 * named one exists) and check it can run the plan: DC_STATUS_USAGE for -L
 * local with remote hosts (the text then holds a "\nhint: " line). */
int dc_job_prepare (const struct dc_hosts *hosts, struct dc_plan *plan,
                    const char *want, const char **launcher, dc_error_t *err);

/* Take hosts and plan (freed by dc_job_fini, also on failure), prepare
 * them and make room for the ranks.  The job is zeroed first. */
int dc_job_init (struct dc_job *job, struct dc_hosts *hosts,
                 struct dc_plan *plan, const struct dc_job_opts *o,
                 dc_error_t *err);

/* Start `SELF serve` on every rank, the hub over their channels.
 * DC_STATUS_SIGNAL (job->interrupted set) when a signal came while
 * connecting. */
int dc_job_launch (struct dc_job *job, double heartbeat_timeout,
                   dc_error_t *err);

/* For the hubs' check callback (arg: the job): the signal that arrived,
 * 0 when none. */
int dc_job_check (void *arg);

/* Stop every rank: SIGTERM, SIGKILL after the grace (once). */
void dc_job_stop (struct dc_job *job);

/* After DONE: wait up to seconds for the ranks to leave; false when some
 * still run (or a signal came). */
bool dc_job_drain (struct dc_job *job, double seconds);

/* -L mpi and -L slurm: mpirun or srun starts the ranks themselves. */
bool dc_job_via_driver (const struct dc_job *job);

void dc_job_fini (struct dc_job *job);

void dc_job_strv_free (char **v);

/* --split data|layers|hybrid|auto, --stages, --micro-batch-rows,
 * --max-device-memory. */
struct dc_run_split {
    enum dc_split split;  /* default data */
    int stages;           /* --stages, 0: none */
    long long micro_rows; /* --micro-batch-rows, 0: chosen */
    long long max_mem;    /* --max-device-memory, 0: no cap */
};

/* True when the split options ask for more than plain data parallelism. */
bool dc_run_split_wanted (const struct dc_run_split *s);

/* Plan the layout of m on the ranks of job for micro-batches of rows rows.
 * Each rank's device memory: the smallest of its GPUs' memory when it has
 * GPUs and device is not "cpu", else this host's memory divided among the
 * rank's host's ranks (the head's probe stands for every host), capped by
 * max_mem.  DC_STATUS_INPUT for a model that does not fit, USAGE for a bad
 * request. */
int dc_job_layout (const struct dc_job *job, const struct dc_model *m,
                   const struct dc_run_split *s, const char *device,
                   size_t rows, struct dc_layout **lop, dc_error_t *err);

/* Under mpirun or srun (dc_comm_mpi_wanted): every process is one rank;
 * MPI rank 0 also runs the hub, with its own rank served in a thread. */
struct dc_job_mpi {
    int rank, size;
    struct dc_comm *hub;  /* rank 0 */
    struct dc_comm *self; /* rank 0's own rank endpoint */
    const char **host;    /* "(mpi)" for each rank (rank 0) */
    bool thread_started;
    pthread_t thread;
    int sfd;
    int interrupted;
    /* rank 0's own rank failed (the text of its error) */
    void (*on_error) (const char *text, void *arg);
    void *arg;
};

/* *hub true: this is MPI rank 0 and goes on as the hub (m->hub ready, its
 * own rank serving in a thread); false: this process was a rank and
 * served its part (the status says how that went: "rank N: ..." on
 * failure).  m->on_error and m->arg are kept; the rest is set here. */
int dc_job_mpi_start (struct dc_job_mpi *m, bool *hub, dc_error_t *err);

/* The hubs' check callback under MPI (arg: the dc_job_mpi). */
int dc_job_mpi_check (void *arg);

/* Rank 0 at the end: wait for its own rank, leave MPI.  A failed run
 * (abort_code not 0) aborts the MPI job with that code so no rank waits. */
void dc_job_mpi_finish (struct dc_job_mpi *m, int abort_code);

#endif
