/* dist.h - the CLI's side of runs across ranks: a job from the command
 * line (lib/run/job.h does the rest), the rank lines, progress and
 * --dry-run plans lib/run reports through callbacks, and the driver
 * command line of -L mpi and -L slurm.
 */
#ifndef DC_DIST_H
#define DC_DIST_H

#include <stdbool.h>

#include "cli.h"
#include "compute_cli.h"
#include "job.h"
#include "lib/run/infer.h"
#include "lib/run/job.h"

struct cli_ranks {
    struct cli *cli;
    struct dc_job job;          /* lib/run/job.h */
    struct dc_jobspec_run spec; /* the options, MASTER_ADDR, the agents' words
                                   (lib/run/jobspec.h) */
    struct cli_progress prog;
    bool progress; /* --progress */
};

/* Host list, rank map, launcher: EXIT_OK or an exit status (printed).
 * rk is cleared first but for rk->progress. */
int cli_ranks_init (struct cli *cli, struct cli_ranks *rk);
/* The job's ranks and what cli_ranks_init attached (accepts a cleared or
 * failed rk). */
void cli_ranks_fini (struct cli_ranks *rk);

/* Start `dcrun serve` on every rank.  EXIT_OK, or an exit status. */
int cli_ranks_launch (struct cli_ranks *rk, double heartbeat_timeout);

/* -L mpi and -L slurm: mpirun or srun starts the ranks, each the same
 * dcrun command, which then finds itself under MPI.  The driver runs
 * through `dcrun exec` (whole tagged lines, every rank's status): execs it
 * and returns only on failure (or prints the command line with
 * --dry-run). */
int cli_dist_exec_driver (struct cli_ranks *rk);

/* Under mpirun or srun: 1 when this is MPI rank 0 and goes on as the hub;
 * 0 when this process was a rank and served its part, *exitp its exit
 * status; -1 on error (*exitp set, printed). */
int cli_mpi_start (struct cli *cli, struct dc_job_mpi *m, int *exitp);

/* The callbacks of lib/run (arg: the cli_ranks): progress on stderr, the
 * --dry-run plans on stdout (job NULL: nothing to run), rank 0's own
 * errors under MPI. */
void cli_run_progress (enum dc_run_progress ev, const char *what, size_t done,
                       size_t total, int alive, void *arg);
void cli_dry_run_ranks (const struct dc_job *job, void *arg);
void cli_dry_run_data (const struct dc_job *job, size_t rows, size_t chunk_rows,
                       void *arg);
void cli_dry_run_layout (const struct dc_job *job, const struct dc_layout *lo,
                         const struct dc_model *m, size_t micro_rows,
                         size_t total_rows, void *arg);
void cli_rank_error (const char *text, void *arg);
/* Print and free a --dry-run text of lib/run/dryrun.h (NULL: out of
 * memory, said on stderr). */
void cli_put_text (char *text);
/* A note of lib/run on stderr; left out with -q unless always. */
void cli_note (const char *text, bool always, void *arg);

/* --split and --max-device-memory (a usage error printed: -1). */
int cli_split_parse (const struct cli *cli, const char *arg,
                     struct dc_run_split *s);
int cli_split_parse_mem (const struct cli *cli, const char *arg,
                         struct dc_run_split *s);

#endif
