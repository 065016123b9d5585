/* bench.h - what `dcrun bench` measures, below the CLI
 *
 * gemm: seconds per GEMM and per fused layer op (linear_fwd) of a compute
 * back-end.  comm: the windowed echo protocol over a job's stream hub:
 * every rank (`dcrun serve` in echo mode) gets bytes in frames, DC_BENCH_
 * COMM_WINDOW in flight, and sends each back; a round's seconds.  launch:
 * the seconds of one command run to its end.  Each returns a dc_status
 * (status.h) and fills err; nothing prints.
 */
#ifndef DC_RUN_BENCH_H
#define DC_RUN_BENCH_H

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
    const double *secs; /* of each timed round */
    double med, gbps;   /* median seconds; GB/s each way */
};

/* Defaults of `dcrun bench comm`: 64 MiB in 1 MiB frames, 3 rounds. */
void dc_bench_comm_defaults (long long *bytes, long long *frame, long *iters);

/* r->med and r->gbps from secs (sorted here; r->secs keeps the order of
 * the rounds when it points elsewhere). */
void dc_bench_comm_rates (struct dc_bench_comm_res *r, double *secs);

/* The results as one line of JSON (malloc'd; NULL when out of memory). */
char *dc_bench_gemm_json (const struct dc_bench_gemm_run *g);
char *dc_bench_comm_json (const struct dc_bench_comm_res *r);

/* The median of v[0..n-1] (sorts v). */
double dc_bench_median (double *v, long n);

#endif
