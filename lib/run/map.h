/* map.h - `dcrun map` below the CLI: any program over the rows of an .npy
 *
 * dc_map_run splits the input's rows into chunks, starts `dcrun serve` on
 * every rank of the job (lib/run/job.h), where lib/run/map_rank.c runs
 * CMD on each chunk, and gathers the chunks' outputs, in row order, into
 * one .npy that is complete or absent.  The hub is lib/run/hub.c's loop
 * with the scheduler of lib/run/sched_map.c: chunks to whoever asks, a
 * lost rank's chunks to the others, a failed chunk retried on another
 * rank up to the retries.  The output's dtype and trailing shape come
 * from the first result; a chunk that disagrees fails.
 *
 * Nothing prints: progress and the --dry-run plan reach the caller
 * through callbacks, warnings through dc_log.
 */
#ifndef DC_RUN_MAP_H
#define DC_RUN_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/comm/wire.h"
#include "lib/run/hub.h"
#include "lib/run/infer.h"
#include "lib/run/job.h"
#include "lib/run/map_npy.h"
#include "lib/util/error.h"

struct dc_map_opts {
    const char *input, *output, *report;
    const char *trace; /* --trace T.json, NULL: none */
    bool files;        /* --files: input a list of files or a folder, output a
                          folder */
    int argc;
    char **argv;          /* CMD ARGS... */
    size_t chunk_rows;    /* 0: chosen from rows and ranks */
    int retries;          /* per failed chunk; < 0: 2 */
    double chunk_timeout; /* seconds, 0: none */
    double heartbeat_timeout;
    enum dc_io_mode io_mode; /* --io; --files: relay */
    bool dry_run;
    /* as struct dc_infer_opts' (what: "rows") */
    void (*progress) (enum dc_run_progress ev, const char *what, size_t done,
                      size_t total, int alive, void *arg);
    void (*dry_run_data) (const struct dc_job *job, size_t rows,
                          size_t chunk_rows, void *arg);
    void (*on_rank_error) (const char *text, void *arg); /* MPI rank 0 */
    void *arg;
};

/* True when CMD's arguments hold {in} or {out} (per-chunk mode). */
bool dc_map_per_chunk (int argc, char *const *argv);

/* The options that cannot work together, before anything is read: no
 * --input or --output, no CMD, --io direct with --files.  0, or -1 with
 * the reason in err (a usage error). */
int dc_map_check (const struct dc_map_opts *o, dc_error_t *err);

/* The data path --dry-run shows: the mode and, for auto, how it is
 * decided (a static string). */
const char *dc_map_io_plan (const struct dc_map_opts *o);

/* Check the files before any rank starts (an output that is an input, a
 * bad .npy, no rows): DC_STATUS_OK or DC_STATUS_INPUT (err). */
int dc_map_prepare (const struct dc_map_opts *o, dc_error_t *err);

/* Run the map on job (from dc_job_init, not launched; stopped here on
 * failure; the caller calls dc_job_fini), or, with job NULL under mpirun
 * or srun, as one MPI process (rank 0 is the hub and serves its own rank
 * in a thread; the others serve).  Returns a dc_status; *sig the signal
 * of DC_STATUS_SIGNAL; err the message (and of a success that lost ranks
 * on the way).  DC_STATUS_DRIVER for -L mpi and -L slurm: the inputs are
 * checked and the caller runs the ranks through mpirun or srun. */
int dc_map_run (const struct dc_map_opts *o, struct dc_job *job, int *sig,
                dc_error_t *err);

/* --files: the input's files, from a list (one path a line, relative to
 * this folder; blank lines skipped) or a folder (its regular files, in
 * name order): DC_STATUS_OK, or DC_STATUS_INPUT with err.  The caller
 * frees paths (each and the array) and sizes. */
int dc_map_list_files (const char *input, char ***paths, uint64_t **sizes,
                       size_t *n, dc_error_t *err);

/* The hub of a map over comm, whose size ranks serve already (their
 * `dcrun serve`, MPI processes, or threads over comm "loop" in the unit
 * tests): chunks out, results in, the output committed or removed, the
 * report written.  check (may be NULL) as for struct dc_coord_infer_opts.
 * Returns a dc_status, *sig and err as dc_map_run. */
int dc_map_hub (const struct dc_map_opts *o, struct dc_comm *comm, int size,
                const char *const *hosts, int (*check) (void *arg), void *arg,
                int *sig, dc_error_t *err);

/* ---- the hub's scheduler (lib/run/sched_map.c) ---- */

struct dc_map_chunk {
    size_t row0, rows;
    enum dc_chunk_state state;
    int owner;
    int failures;    /* failed results so far */
    int last_failed; /* the rank it last failed on, -1 */
    bool requeued;   /* lost or failed once: goes first */
};

struct dc_sched_map {
    int in_fd; /* the input, its header parsed into in */
    struct dc_map_arr in;
    struct dc_wire_map spec; /* argv borrowed from the options */
    int retries;
    size_t chunk_rows, nchunks;
    struct dc_map_chunk *chunks;
    /* the output: its temporary file made at the start (--io direct or
     * auto: a named one the ranks write, the offer in io), its header
     * with the first result (shaped) */
    const char *output;
    struct dc_map_out *out;
    bool shaped;
    enum dc_io_mode io_mode;
    struct dc_wire_io io; /* offered in JOB when io.on */
    int probe_fd;         /* the token file, -1 */
    char probe[4096];
    bool *told; /* [ranks] the output's place went to that direct rank */
    char out_descr[64];
    int out_ndim; /* trailing */
    int64_t out_shape[DC_MAP_MAXDIM];
    uint64_t out_row_bytes;
    int failed; /* chunk results that failed */
    /* --files: the input files (a chunk's rows are files) and the
     * output's temporary folder, renamed to output on commit */
    bool files;
    char **paths;
    uint64_t *sizes;
    size_t npaths;
    char *tmp;  /* the temporary folder, NULL until made */
    int tmp_fd; /* -1 */
    size_t out_files;
};
extern const struct dc_hub_sched dc_sched_map;

/* --io direct|auto: sweep what a killed run left next to the output,
 * make its shared temporary file and the token file, and fill the offer
 * (io); relay, or auto with a device or FIFO output: nothing here (the
 * output is made with the first result).  0, or -1 with errp (--io direct
 * to a device or FIFO: bad input). */
int dc_sched_map_io_open (struct dc_sched_map *sm, const char *input,
                          dc_error_t *errp);
void dc_sched_map_io_close (struct dc_sched_map *sm);

/* --files: make the output's temporary folder next to output (0, or -1
 * with errp); remove it and what it holds unless committed. */
int dc_sched_map_files_open (struct dc_sched_map *sm, dc_error_t *errp);
void dc_sched_map_files_close (struct dc_sched_map *sm);

#endif
