/* infer.h - `dcrun infer` below the CLI: dc_infer_run picks how the rows
 * are computed and runs it
 *
 *   one process   no job: the model on this process's back-end, in blocks
 *   MPI           under mpirun or srun: MPI rank 0 is the hub, every rank
 *                 serves (lib/run/job.h, dc_job_mpi)
 *   driver        a job whose launcher is mpi or slurm: the inputs are
 *                 checked and DC_STATUS_DRIVER returned; the caller runs
 *                 the ranks through mpirun or srun
 *   pipeline      --split layers|hybrid|auto that does not fit data: the
 *                 hub of lib/run/pipeline.h
 *   data          the coordinator of lib/run/coordinator.h on the job's
 *                 stream hub
 *
 * Nothing prints: progress, the --dry-run plan, warnings (through dc_log)
 * and rank 0's own errors under MPI reach the caller through callbacks.
 */
#ifndef DC_RUN_INFER_H
#define DC_RUN_INFER_H

#include <stdbool.h>
#include <stddef.h>

#include "gpu/compute.h"
#include "lib/model/layout.h"
#include "lib/model/model.h"
#include "lib/run/coordinator.h"
#include "lib/run/job.h"
#include "lib/util/error.h"

enum dc_run_progress {
    DC_PROGRESS_START,  /* what: "infer" (one process) or "rows" */
    DC_PROGRESS_UPDATE, /* alive: ranks alive, -1 when not counted */
    DC_PROGRESS_DONE,
};

struct dc_infer_opts {
    /* files, back-end, chunk rows, test delay; check, progress, arg and
     * hosts are set by dc_infer_run */
    struct dc_coord_infer_opts io;
    enum dc_dtype dtype;      /* io.dtype as a value (one process) */
    const char *report;       /* --report FILE, NULL: none */
    const char *trace;        /* --trace FILE (Chrome trace), NULL: none */
    double heartbeat_timeout; /* seconds without a frame: rank lost; 0: 30 */
    struct dc_run_split split;
    bool dry_run; /* plan only: the dry_run_* callbacks */
    void (*progress) (enum dc_run_progress ev, const char *what, size_t done,
                      size_t total, int alive, void *arg);
    void (*dry_run_data) (const struct dc_job *job, size_t rows,
                          size_t chunk_rows, void *arg);
    void (*dry_run_layout) (const struct dc_job *job,
                            const struct dc_layout *lo,
                            const struct dc_model *m, size_t micro_rows,
                            size_t rows, void *arg);
    void (*on_rank_error) (const char *text, void *arg); /* MPI rank 0 */
    void *arg;
};

/* The options that cannot work together, before anything is read: --io
 * direct with --split layers|hybrid.  0, or -1 with the reason in err (a
 * usage error). */
int dc_infer_check (const struct dc_infer_opts *o, dc_error_t *err);

/* The data path --dry-run shows for a job: the mode and, for auto, how it
 * is decided (a static string); NULL for a split that is not plain data
 * parallel. */
const char *dc_infer_io_plan (const struct dc_infer_opts *o);

/* Before any work, in every mode: the files (no output is an input,
 * inputs are regular files, the output's folder takes a file); across
 * ranks (distributed), a batch of 0 rows gets its (0, outputs) output
 * here, with no rank started (*done; --dry-run: dry_run_data with job
 * NULL and 0 rows). */
int dc_infer_prepare (const struct dc_infer_opts *o, bool distributed,
                      bool *done, dc_error_t *err);

/* Run the inference: job NULL for one process or under MPI, else a job
 * from dc_job_init that is not launched yet (launched, stopped here; the
 * caller calls dc_job_fini).  Returns a dc_status; *sig the signal of
 * DC_STATUS_SIGNAL; err the message, with its subject, of a failure (and
 * of a success that lost ranks on the way).  An output not committed is
 * removed. */
int dc_infer_run (const struct dc_infer_opts *o, struct dc_job *job, int *sig,
                  dc_error_t *err);

/* After an inference that wrote its output: a warning (dc_warn) when the
 * ranks' BLAS kernels differ, one when the output holds NaN or Inf, and
 * "nonfinite_rows" in the report.  nonfinite: the count when the caller
 * has it, else NULL to count from the output (a regular file). */
void dc_infer_warn (struct dc_report *rep, const char *output,
                    const size_t *nonfinite);

#endif
