/* report.h - the run report of `--report FILE.json` (DESIGN.md section 4)
 *
 *   {"command": "infer", "hosts": [..], "layout": "data",
 *    "ranks": [{"rank", "host", "device", "rows", "seconds", "tflops",
 *               "chunks": [{"id", "start", "end", "compute",
 *                           "phases"?}],
 *               "phases"?: {"read", "copy_in", "compute", "copy_out",
 *                           "write", "busy"}}],
 *    "phases": {"launch", "load", "copy_in", "compute", "copy_out",
 *               "gather", "write"}  (seconds),
 *    "totals": {"rows", "seconds", "flop", "tflops"},
 *    "output": {"path", "shape", "dtype", "sha256"},
 *    "versions": {"dcrun", "cuda", "cublas", "openmpi", "hwloc",
 *                 "openblas"},
 *    ...command-specific members ("train": {...})}
 *
 * Built with cJSON; written atomically.  A version that does not apply
 * (no CUDA compiled in) is null.
 */
#ifndef DC_REPORT_H
#define DC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

enum dc_phase {
    DC_PHASE_LAUNCH = 0,
    DC_PHASE_LOAD,
    DC_PHASE_COPY_IN,
    DC_PHASE_COMPUTE,
    DC_PHASE_COPY_OUT,
    DC_PHASE_GATHER,
    DC_PHASE_WRITE,
    DC_PHASE_COUNT,
};

struct dc_report;
struct cJSON;

struct dc_report *dc_report_create (const char *command);
void dc_report_destroy (struct dc_report *r); /* accepts NULL */

/* Seconds since an arbitrary start (CLOCK_MONOTONIC). */
double dc_report_now (void);

void dc_report_phase_add (struct dc_report *r, enum dc_phase p, double seconds);
double dc_report_phase_get (const struct dc_report *r, enum dc_phase p);

int dc_report_add_host (struct dc_report *r, const char *host);
int dc_report_set_layout (struct dc_report *r, const char *layout);

/* One rank's share: rows, seconds of compute, flop done. */
int dc_report_add_rank (struct dc_report *r, int rank, const char *host,
                        const char *device, size_t rows, double seconds,
                        double flop);

int dc_report_set_output (struct dc_report *r, const char *path, int ndim,
                          const int64_t *shape, const char *dtype,
                          const char *sha256);

/* The math library kernel of a rank added before ("Haswell"): its
 * "blas_kernel".  NULL or "" leaves it out. */
int dc_report_set_rank_kernel (struct dc_report *r, int rank,
                               const char *kernel);

/* 1 when the ranks' "blas_kernel"s differ (their bytes may then differ in
 * the last bits), with buf naming them ("rank 0: Haswell, rank 2: Zen"),
 * else 0. */
int dc_report_kernels_differ (const struct dc_report *r, char *buf, size_t len);

/* "nonfinite_rows": output rows holding a NaN or an Inf. */
void dc_report_set_nonfinite_rows (struct dc_report *r, size_t rows);

/* Rows of y[rows][cols] holding a NaN or an Inf. */
size_t dc_nonfinite_rows (const float *y, size_t rows, size_t cols);

/* The same count over a whole .npy file (read in blocks): 0 with *rows,
 * -1 with errp. */
int dc_nonfinite_rows_file (const char *path, size_t *rows, dc_error_t *errp);

/* Totals over the run: wall seconds; flop and rows are summed from the
 * ranks; tflops = flop / compute phase seconds. */
void dc_report_set_total_seconds (struct dc_report *r, double seconds);

/* "totals"."rows" when the ranks' rows are not a partition of the batch:
 * in a layer layout each stage's "rows" are the rows that passed through
 * it (every row once per stage of its group), and the totals count the
 * batch's rows once. */
void dc_report_set_total_rows (struct dc_report *r, size_t rows);

/* Versions known here (dcrun, hwloc, openblas, and what the build has of
 * CUDA and OpenMPI); set adds or replaces one ("cuda", "13.0"). */
int dc_report_set_version (struct dc_report *r, const char *what,
                           const char *version);

/* The object for command-specific members (borrowed). */
struct cJSON *dc_report_extra (struct dc_report *r, const char *name);

/* The chunk timeline, on the hub's clock: seconds since the report was
 * created (at the start of the command).  chunk_sent notes that chunk id
 * went to rank; chunk_done that its result came back, with the rank's own
 * compute seconds.  Written as the rank's "chunks" member:
 * [{"id", "start", "end", "compute"}], "end" and "compute" null for a chunk
 * whose result never came (a lost rank).  At most DC_REPORT_MAX_CHUNKS are
 * kept (later ones are counted in "chunks_dropped"); NULL r is a no-op. */
#define DC_REPORT_MAX_CHUNKS 1000000
void dc_report_chunk_sent (struct dc_report *r, int rank, uint64_t id);
void dc_report_chunk_done (struct dc_report *r, int rank, uint64_t id,
                           double compute_seconds);

/* Per-chunk phase times measured on the rank (direct I/O, issue 13).
 * start is on the head's clock (a dc_report_now() value): when the chunk's
 * first phase began; the others are the rank's own seconds, laid end to end
 * from start in this order.  A value that is negative or not finite is
 * taken as 0. */
struct dc_chunk_phases {
    double
        start; /* head clock (dc_report_now), the chunk's first phase began */
    double read, copy_in, compute, copy_out, write; /* seconds on the rank */
};

/* The phases in order, by name ("read", "copy_in", "compute", "copy_out",
 * "write"), and their values in that order. */
#define DC_CHUNK_NPHASES 5
extern const char *const dc_chunk_phase_names[DC_CHUNK_NPHASES];
void dc_chunk_phases_get (const struct dc_chunk_phases *p,
                          double v[DC_CHUNK_NPHASES]);

/* Attach phases to chunk id of rank (its latest record, made by
 * dc_report_chunk_sent; one is made when there is none).  Written in the
 * chunk's object as "phases": {"start", "read", "copy_in", "compute",
 * "copy_out", "write"} ("start" in seconds since the report's zero, like
 * the chunk's "start"), summed per rank into the rank's "phases" object
 * with "busy" = their sum.  NULL r or p is a no-op. */
void dc_report_chunk_phases (struct dc_report *r, int rank, uint64_t id,
                             const struct dc_chunk_phases *p);

/* A chunk measured on the rank alone (a pipeline stage's micro-batch, sent
 * by another stage): its record starts at p->start (head clock) and ends
 * after its phases, "compute" being p->compute.  NULL r or p is a no-op. */
void dc_report_chunk_measured (struct dc_report *r, int rank, uint64_t id,
                               const struct dc_chunk_phases *p);

/* The chunk timeline as recorded, for the trace: n records (borrowed,
 * valid until the next chunk call or destroy).  start/end are seconds
 * since the report's zero; end < 0: no result; has_phases with phases
 * (phases.start then also seconds since the report's zero). */
struct dc_report_chunk {
    int rank;
    uint64_t id;
    double start, end, compute;
    bool has_phases;
    struct dc_chunk_phases phases;
};
const struct dc_report_chunk *dc_report_chunks (const struct dc_report *r,
                                                size_t *n);

/* dc_report_now() at create: the zero of the report's timeline. */
double dc_report_t0 (const struct dc_report *r);

/* Spans and instant events of the run for `--trace` (lib/formats/trace.h):
 * kept in memory, not written in the report's JSON.  Times are head clock
 * values (dc_report_now ()); stored as seconds since the report's zero.
 * rank -1 is the hub (the coordinator).  name and cat are cut at 23 and 15
 * bytes, detail at 159; n is written as the event's "n" argument (a step,
 * an attempt), NAN for none.  At most DC_REPORT_MAX_EVENTS are kept; NULL
 * r or name is a no-op. */
#define DC_REPORT_MAX_EVENTS 1000000
#define DC_REPORT_HUB (-1)
struct dc_report_event {
    int rank;
    char ph;           /* 'X' a span, 'i' an instant */
    double start, end; /* seconds since the report's zero; end = start: 'i' */
    double n;          /* NAN: none */
    char name[24], cat[16], detail[160];
};
void dc_report_span (struct dc_report *r, int rank, const char *name,
                     const char *cat, double start, double end, double n);
void dc_report_instant (struct dc_report *r, int rank, const char *name,
                        const char *cat, const char *detail);
const struct dc_report_event *dc_report_events (const struct dc_report *r,
                                                size_t *n);

/* The host of a rank that is not (or not yet) among the report's ranks, for
 * the trace (training reports name only the head). */
void dc_report_rank_host (struct dc_report *r, int rank, const char *host);
/* The host of rank (added or told), NULL when unknown. */
const char *dc_report_host_of (const struct dc_report *r, int rank);
/* The "hosts" list, "ranks" and so on as built so far (borrowed). */
const struct cJSON *dc_report_root (const struct dc_report *r);

/* One rank of `dcrun exec --report`: its host, how it ended (exit code, or
 * signal, or a failed start with reason) and when (seconds since the job's
 * start, the caller's zero).
 * A report of command "exec" holds ranks of
 * {"rank", "host", "status" | "signal" | "failed_start", "start", "end",
 * "seconds"} and no phases. */
struct dc_report_exec_rank {
    int rank;
    const char *host;
    int code; /* exit status, when !signaled && !failed_start */
    int sig;  /* when signaled */
    bool signaled;
    bool failed_start; /* with reason */
    const char *reason;
    double start, end; /* seconds since the job's start */
};
int dc_report_add_exec_rank (struct dc_report *r,
                             const struct dc_report_exec_rank *x);

/* Write the JSON (atomically: temporary file, rename). */
int dc_report_write (struct dc_report *r, const char *path, dc_error_t *errp);

/* The JSON text (caller frees), for tests. */
char *dc_report_print (struct dc_report *r);

#endif
