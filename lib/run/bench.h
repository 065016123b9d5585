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

/* On a launched job: the echo job to every rank, one warm-up round, then
 * iters timed rounds of bytes per rank in frames of frame bytes (secs[i]),
 * then DONE.  On failure every rank is stopped (DC_STATUS_SIGNAL with
 * job->interrupted set when a signal came). */
int dc_bench_comm (struct dc_job *job, long long bytes, long long frame,
                   long iters, double *secs, dc_error_t *err);

/* Run argv (its stdout to /dev/null) to its end: the seconds and its wait
 * status.  -1 with errno when it cannot be started. */
int dc_bench_exec (char **argv, double *seconds, int *status);

/* The median of v[0..n-1] (sorts v). */
double dc_bench_median (double *v, long n);

#endif
