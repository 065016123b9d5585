/* bench.h - what `dcrun bench` measures, below the CLI
 *
 * gemm: seconds per GEMM and per fused layer op (linear_fwd) of a compute
 * back-end.  comm: the windowed echo protocol over a job's stream hub:
 * every rank (`dcrun serve` in echo mode) gets bytes in frames, DC_BENCH_
 * COMM_WINDOW in flight, and sends each back; a round's seconds.  launch:
 * the seconds of one command run to its end.  Each returns a dc_status
 * (status.h) and fills err; nothing prints: the results come back as JSON
 * or as text for the CLI to print.
 */
#ifndef DC_RUN_BENCH_H
#define DC_RUN_BENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "gpu/compute.h"
#include "lib/run/job.h"
#include "lib/util/error.h"

#define DC_BENCH_COMM_WINDOW 4 /* frames in flight per rank */

/* Seconds per iteration of gemm and of linear_fwd (relu) on m x k . k x n,
 * after one warm-up each.  DC_STATUS_GPU on a back-end error. */
int dc_bench_gemm (const struct dc_compute_ops *ops, struct dc_compute *c,
                   int m, int n, int k, long iters, double *gemm_s,
                   double *fused_s, dc_error_t *err);

/* What `dcrun bench gemm` asks and gets. */
struct dc_bench_gemm_run {
    const char *device; /* cpu, cuda, auto */
    enum dc_dtype dtype;
    int threads;
    long m, n, k, iters; /* 0: the back-end's default (set here) */
    /* results */
    const char *backend;
    char describe[256];
    double gemm_s, fused_s; /* seconds per iteration */
    double peak;            /* TFLOP/s, 0: unknown */
    double gemm_tflops, fused_tflops;
};

/* Find, probe and create the back-end, time it, destroy it.  Statuses:
 * GPU (a back-end that cannot run), USAGE (a dtype the cpu back-end does
 * not compute in: the text names --dtype). */
int dc_bench_gemm_run (struct dc_bench_gemm_run *g, dc_error_t *err);

/* Run argv iters + 1 times (the first a warm-up, its stdout to
 * /dev/null): the median, min and max of the timed runs.  DC_STATUS_FAIL
 * with *wstatus the wait status of a run that failed (0 when it could not
 * be started: err says why). */
int dc_bench_launch (char **argv, long iters, double *med, double *min,
                     double *max, int *wstatus, dc_error_t *err);

/* On a launched job: the echo job to every rank, one warm-up round, then
 * iters timed rounds of bytes per rank in frames of frame bytes (secs[i]),
 * then DONE.  On failure every rank is stopped (DC_STATUS_SIGNAL with
 * job->interrupted set when a signal came). */
int dc_bench_comm (struct dc_job *job, long long bytes, long long frame,
                   long iters, double *secs, dc_error_t *err);

/* What `dcrun bench comm` measured. */
struct dc_bench_comm_res {
    const char *launcher;
    int ranks;
    long long bytes, frame; /* per rank each way; per frame */
    long iters;
    double *secs;     /* of each timed round */
    double med, gbps; /* median seconds; GB/s each way */
};

/* dc_bench_comm on a launched job with r->bytes, r->frame and r->iters
 * (0: dc_bench_comm_defaults): fills r->launcher, r->ranks, r->secs
 * (malloc'd, free it; sorted), r->med and r->gbps. */
int dc_bench_comm_run (struct dc_job *job, struct dc_bench_comm_res *r,
                       dc_error_t *err);

/* Defaults of `dcrun bench comm`: 64 MiB in 1 MiB frames, 3 rounds. */
void dc_bench_comm_defaults (long long *bytes, long long *frame, long *iters);

/* r->med and r->gbps from secs (sorted here; r->secs keeps the order of
 * the rounds when it points elsewhere). */
void dc_bench_comm_rates (struct dc_bench_comm_res *r, double *secs);

/* What `dcrun bench launch` measured. */
struct dc_bench_launch_res {
    const char *launcher;
    size_t hosts;
    int ranks;
    long iters;           /* 0: the default, set by dc_bench_launch_defaults */
    double med, min, max; /* seconds of a run */
};

/* Defaults of `dcrun bench launch`: 5 runs. */
void dc_bench_launch_defaults (long *iters);

/* Time argv (dc_bench_exec_argv's `dcrun exec -- true`) r->iters times
 * (0: the default) after a warm-up: r->med, r->min, r->max.  DC_STATUS_FAIL
 * with err and *wstatus, the wait status of the run that failed (0: one could
 * not start). */
int dc_bench_launch_run (char **argv, struct dc_bench_launch_res *r,
                         int *wstatus, dc_error_t *err);

/* The command line `dcrun bench launch` times: self, "exec", the words of
 * bench's argv[1..argc-1] but kind, --json, --dry-run and bench's own
 * options (own (word, &takes_arg, arg) says which: takes_arg when the value
 * is the next word), then "-- true".  Stops at "--".  The array is malloc'd
 * (free it alone: the words are borrowed); NULL when out of memory. */
char **
dc_bench_exec_argv (const char *self, int argc, char **argv, const char *kind,
                    bool (*own) (const char *word, bool *takes_arg, void *arg),
                    void *arg);

/* The results as one line of JSON, or as the lines of text `dcrun bench`
 * prints, both without a final newline (malloc'd; NULL when out of
 * memory). */
char *dc_bench_gemm_json (const struct dc_bench_gemm_run *g);
char *dc_bench_comm_json (const struct dc_bench_comm_res *r);
char *dc_bench_launch_json (const struct dc_bench_launch_res *r);
char *dc_bench_gemm_text (const struct dc_bench_gemm_run *g);
char *dc_bench_comm_text (const struct dc_bench_comm_res *r);
char *dc_bench_launch_text (const struct dc_bench_launch_res *r);

/* The median of v[0..n-1] (sorts v). */
double dc_bench_median (double *v, long n);

#endif
