/* dist.h - infer and train across the ranks of a host list
 *
 * The coordinator runs in this process; the job's launcher starts one
 * `dcrun serve` per rank and comm "stream" runs over its channels with
 * this process as the hub.  Signals arrive on the launcher's self-pipe:
 * Ctrl-C stops every rank (SIGTERM, then SIGKILL after the grace).
 */
#ifndef DC_DIST_H
#define DC_DIST_H

#include <stdbool.h>

#include "cli.h"
#include "compute_cli.h"
#include "job.h"
#include "lib/comm/comm.h"
#include "lib/formats/report.h"
#include "lib/run/coordinator.h"
#include "lib/run/job.h"

struct cli_ranks {
    struct cli *cli;
    struct dc_job job; /* lib/run/job.h */
    struct cli_progress prog;
};

/* Host list, rank map, launcher: EXIT_OK or an exit status (printed). */
int cli_ranks_init (struct cli *cli, struct cli_ranks *rk);

/* Start `dcrun serve` on every rank.  EXIT_OK, or an exit status. */
int cli_ranks_launch (struct cli_ranks *rk, double heartbeat_timeout);

/* For the coordinators' check callback (arg: the cli_ranks): the signal
 * that arrived, 0 when none. */
int cli_ranks_check (void *arg);

/* -L mpi and -L slurm: mpirun or srun starts the ranks, each the same
 * dcrun command, which then finds itself under MPI (cli_mpi_start).  The
 * driver runs through `dcrun exec` (whole tagged lines, every rank's
 * status): cli_dist_exec_driver execs it and returns only on failure (or
 * prints the command line with --dry-run). */
int cli_dist_exec_driver (struct cli_ranks *rk);

struct cli_dist_opts {
    double heartbeat_timeout; /* seconds without a frame: rank lost; 0: 30 */
    const char *report;       /* --report FILE, NULL: none */
    bool progress;            /* --progress */
};

/* Under mpirun or srun (dc_comm_mpi_wanted): every process is one rank;
 * MPI rank 0 also runs the coordinator, with its own rank in a thread. */
struct cli_mpi {
    int rank, size;
    struct dc_comm *hub;  /* rank 0 */
    struct dc_comm *self; /* rank 0's own rank endpoint */
    bool thread_started;
    int sfd;
    int interrupted;
};

/* Returns 1 when the caller is MPI rank 0 and goes on as the coordinator
 * (m->hub ready, its own rank serving in a thread); 0 when this process
 * was a rank and served its part, *exitp its exit status; -1 on error
 * (*exitp set, printed). */
int cli_mpi_start (struct cli *cli, struct cli_mpi *m, int *exitp);

/* Rank 0 at the end: wait for its own rank, leave MPI.  A failed run
 * (exitcode not 0) aborts the MPI job with that code so no rank waits. */
int cli_mpi_finish (struct cli_mpi *m, int exitcode);

/* The coordinators' check callback under MPI (arg: the cli_mpi). */
int cli_mpi_check (void *arg);

/* The same under mpirun or srun: every process calls it. */
int cli_mpi_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                   const struct cli_dist_opts *d);

/* After an inference that wrote its output: one warning line when the
 * ranks' BLAS kernels differ (the bytes may differ in the last bits), one
 * when the output holds NaN or Inf, and "nonfinite_rows" in the report.
 * nonfinite: the count when the caller has it, else NULL to count from
 * the output (a regular file; not counted otherwise). */
void cli_infer_warn (struct dc_report *rep, const char *output,
                     const size_t *nonfinite);

/* Run a distributed inference.  Returns the exit status. */
int cli_dist_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *d);

#endif
