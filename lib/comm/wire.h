/* wire.h - the protocol between the hub and the ranks: every message
 * payload, and the codec (lib/comm/wire.c) that writes and reads them
 *
 * Frames (type, source, destination, length) are lib/comm/proto.h; this
 * header is what goes inside them.  Numbers are little-endian u64 and
 * f64, as on x86 and POWER LE; rows follow the header as f32 (or i64
 * labels).  Every decoder checks the length before each read, checks a
 * count against a maximum and against the bytes that remain (no product
 * can overflow), and fails with errp naming the message and the field
 * ("RESULT: rows: 5 rows of 16 bytes need 80 bytes, 72 left").  Decoded
 * rows point into the caller's payload (no copy); payload offsets of rows
 * are multiples of 8.
 *
 * Data parallel (lib/run/rank.c, lib/run/coordinator.c):
 *   JOB    hub -> rank  JSON, struct dc_wire_job
 *   MODEL  hub -> rank  the model file's bytes (safetensors)
 *   READY  rank -> hub  JSON, struct dc_wire_ready
 *   CHUNK  hub -> rank  struct dc_wire_chunk: u64 id, u64 row0, u64 rows,
 *                       then rows x inputs f32
 *   RESULT rank -> hub  struct dc_wire_rows: u64 id, u64 row0, u64 rows,
 *                       f64 seconds (compute), f64 read, f64 write, f64
 *                       start (the rank's clock), then rows x outputs f32
 *   With direct I/O (JOB "io", READY "io": "direct") the rank reads the
 *   chunk's rows from the input and writes its results into the output's
 *   temporary file itself: CHUNK and RESULT carry their headers only.
 *   ERROR  rank -> hub  text of a fatal error; the rank then exits
 *   DONE   hub -> rank  no more work: exit 0
 *
 * Training (JOB "mode": "train", its options under "train"; with
 * "resume" a DATA message with the checkpoint follows MODEL):
 *   CHUNK  hub -> rank  struct dc_wire_step: u64 attempt, u64 rows, u64
 *                       rows of the global batch, u64 1 when the summed
 *                       gradient is to come back; rows x inputs f32;
 *                       targets (f32 rows or i64 labels).  The rank
 *                       computes its gradient, sums it with every rank
 *                       (comm allreduce) and applies the update.
 *   RESULT rank -> hub  struct dc_wire_tresult: u64 attempt, u64 status
 *                       (0 done, 1 abandoned: a rank was lost, nothing
 *                       applied, redo), f64 loss sum, f64 compute and
 *                       f64 allreduce seconds on the rank (for --trace),
 *                       f64 read seconds (direct rows), then the summed
 *                       gradient (parameters f32) when asked
 *   With direct rows (JOB "tio", READY "io": "direct") the rank reads its
 *   rows from the input and target files itself: the CHUNK carries, after
 *   its header, the rows' indices (u64 each) instead of the rows.
 *   DATA   hub -> rank  empty: send the trained state (checkpoints, the
 *                       end of the run)
 *   DATA   rank -> hub  struct dc_wire_tstate: u64 step, u64 vectors, then
 *                       vectors x parameters f32 (the weights, then the
 *                       optimizer's state vectors)
 *   HEARTBEAT rank -> hub, every second, from a thread of its own
 *
 * Echo (JOB "mode": "echo", `dcrun bench comm`): no MODEL; the rank sends
 * READY, then each DATA frame back to the hub as it came, until DONE.
 *
 * Pipeline layouts (lib/run/stage.c, lib/run/pipeline.c; JOB "mode":
 * "pipeline", "task" infer or train, with the rank's stage):
 *   CHUNK/DATA/RESULT  inference micro-batches: struct dc_wire_rows
 *                       (hub -> stage 0 -> ... -> last stage -> hub)
 *   RESULT stage -> hub  after passing micro-batch id on, each stage's note
 *                       of it: struct dc_wire_rows without rows (id, row0,
 *                       rows of the micro-batch), seconds: its compute on
 *                       this stage, start: when that compute began (the
 *                       stage's clock, READY "clock" gives the offset),
 *                       write: the seconds its send took; the hub counts
 *                       a micro-batch done when its rows and every stage's
 *                       note are in
 *   CHUNK  hub -> stage 0 and the last stage: struct dc_wire_pstep: u64
 *                       attempt, u64 rows, u64 batch rows, u64 micro rows,
 *                       then the inputs (stage 0) or targets (last stage)
 *   DATA   stage -> stage: struct dc_wire_pdata: u64 kind (1 forward
 *                       activations, 2 backward gradient), u64 attempt,
 *                       u64 micro-batch index, u64 rows, u64 micro-batches,
 *                       then rows x width f32
 *   RESULT stage -> hub  struct dc_wire_tresult (status 0, the gradient
 *                       of the stage's layers summed over micro-batches)
 *   REDUCED hub -> stage struct dc_wire_reduced: u64 attempt, then the
 *                       stage's summed gradient f32
 */
#ifndef DC_WIRE_H
#define DC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_CHUNK_HDR 24  /* id, row0, rows */
#define DC_RESULT_HDR 56 /* id, row0, rows, seconds, read, write, start */
#define DC_STEP_HDR 32   /* attempt, rows, scale rows, send gradient */
#define DC_TRAIN_RESULT_HDR                                                    \
    48 /* attempt, status, loss, compute, allreduce,                           \
          read */
#define DC_PIPE_HDR DC_RESULT_HDR /* micro-batches are struct dc_wire_rows */
#define DC_PIPE_STEP_HDR 32       /* attempt, rows, batch rows, micro rows */
#define DC_PIPE_DATA_HDR 40       /* kind, attempt, micro index, rows, micros */
#define DC_REDUCED_HDR 8          /* attempt */

/* Maxima of the counts a decoder accepts. */
#define DC_WIRE_MAX_ROWS ((uint64_t)1 << 26)
#define DC_WIRE_MAX_WIDTH ((uint64_t)1 << 24)  /* bytes of one row */
#define DC_WIRE_MAX_PARAMS ((uint64_t)1 << 28) /* f32: 1 GiB */
#define DC_WIRE_MAX_SECONDS (86400.0 * 365)
#define DC_WIRE_MAX_CLOCK 1e12 /* seconds of a monotonic clock */

/* Little-endian u64 (also used by lib/run/bench's echo frames). */
static inline void dc_put_u64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t dc_get_u64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- binary payloads ----
 *
 * dc_wire_X_put (buf, m) writes the header of X (DC_X_HDR bytes) into the
 * caller's buffer, which has room for the rows after it; the caller puts
 * the rows at buf + DC_X_HDR (often straight from a file or a device).
 * dc_wire_X_new (m, ..., &len) allocates header and rows, copying the rows
 * from m when m's pointer is not NULL: NULL when out of memory.
 * dc_wire_X_get (buf, len, ..., m, errp) checks and decodes: -1 with errp.
 */

/* CHUNK (data-parallel infer): rows x width bytes follow; width 0: none
 * (direct I/O), as for RESULT. */
struct dc_wire_chunk {
    uint64_t id, row0, rows;
    const uint8_t *data;
};
void dc_wire_chunk_put (uint8_t *buf, const struct dc_wire_chunk *m);
uint8_t *dc_wire_chunk_new (const struct dc_wire_chunk *m, size_t width,
                            size_t *len);
int dc_wire_chunk_get (const uint8_t *buf, size_t len, size_t width,
                       struct dc_wire_chunk *m, dc_error_t *errp);

/* RESULT of infer, and the micro-batches of pipeline inference.  seconds
 * (compute), read and write (direct I/O) must be finite, >= 0 and under
 * DC_WIRE_MAX_SECONDS; start (the rank's monotonic clock when the chunk's
 * first phase began, 0 when not told) finite, >= 0 and under
 * DC_WIRE_MAX_CLOCK. */
struct dc_wire_rows {
    uint64_t id, row0, rows;
    double seconds;
    double read, write, start;
    const uint8_t *data;
};
void dc_wire_rows_put (uint8_t *buf, const struct dc_wire_rows *m);
uint8_t *dc_wire_rows_new (const struct dc_wire_rows *m, size_t width,
                           size_t *len);
/* what names the message in errors ("RESULT", "micro-batch") */
int dc_wire_rows_get (const uint8_t *buf, size_t len, size_t width,
                      const char *what, struct dc_wire_rows *m,
                      dc_error_t *errp);

/* A data-parallel training step: rows x (in_width + target_width) bytes:
 * the inputs, then the targets.  rows <= max_rows; scale >= 1. */
struct dc_wire_step {
    uint64_t attempt, rows, scale, want_grads;
    const uint8_t *x, *target;
};
void dc_wire_step_put (uint8_t *buf, const struct dc_wire_step *m);
uint8_t *dc_wire_step_new (const struct dc_wire_step *m, size_t in_width,
                           size_t target_width, size_t *len);
int dc_wire_step_get (const uint8_t *buf, size_t len, size_t in_width,
                      size_t target_width, uint64_t max_rows,
                      struct dc_wire_step *m, dc_error_t *errp);

/* A training RESULT: nparams f32 follow, or none (grad NULL, nparams 0)
 * when the decoder allows it (grads_optional).  status is 0 or 1; the
 * loss may be anything (a diverging model's loss is NaN). */
struct dc_wire_tresult {
    uint64_t attempt, status;
    double loss;
    double compute, allreduce; /* the rank's seconds (0: not measured) */
    const uint8_t *grad;       /* nparams f32, or NULL */
    double read; /* seconds reading its rows (direct I/O); last on the wire */
    size_t nparams;
};
void dc_wire_tresult_put (uint8_t *buf, const struct dc_wire_tresult *m);
uint8_t *dc_wire_tresult_new (const struct dc_wire_tresult *m, size_t *len);
int dc_wire_tresult_get (const uint8_t *buf, size_t len, size_t nparams,
                         bool grads_optional, struct dc_wire_tresult *m,
                         dc_error_t *errp);

/* A pipeline training step: rows x width bytes (inputs or targets);
 * rows and micro >= 1, rows <= batch. */
struct dc_wire_pstep {
    uint64_t attempt, rows, batch, micro;
    const uint8_t *data;
};
void dc_wire_pstep_put (uint8_t *buf, const struct dc_wire_pstep *m);
uint8_t *dc_wire_pstep_new (const struct dc_wire_pstep *m, size_t width,
                            size_t *len);
int dc_wire_pstep_get (const uint8_t *buf, size_t len, size_t width,
                       struct dc_wire_pstep *m, dc_error_t *errp);

/* A pipeline training micro-batch between stages: rows x width bytes,
 * width picked by kind (fwd_width for DC_WIRE_FWD, bwd_width for
 * DC_WIRE_BWD). */
enum { DC_WIRE_FWD = 1, DC_WIRE_BWD = 2 };
struct dc_wire_pdata {
    uint64_t kind, attempt, index, rows, nmicro;
    const uint8_t *data;
};
void dc_wire_pdata_put (uint8_t *buf, const struct dc_wire_pdata *m);
uint8_t *dc_wire_pdata_new (const struct dc_wire_pdata *m, size_t width,
                            size_t *len);
int dc_wire_pdata_get (const uint8_t *buf, size_t len, size_t fwd_width,
                       size_t bwd_width, struct dc_wire_pdata *m,
                       dc_error_t *errp);

/* REDUCED: the attempt, then exactly nparams f32. */
struct dc_wire_reduced {
    uint64_t attempt;
    const uint8_t *grad;
    size_t nparams;
};
void dc_wire_reduced_put (uint8_t *buf, const struct dc_wire_reduced *m);
uint8_t *dc_wire_reduced_new (const struct dc_wire_reduced *m, size_t *len);
int dc_wire_reduced_get (const uint8_t *buf, size_t len, size_t nparams,
                         struct dc_wire_reduced *m, dc_error_t *errp);

/* A rank's trained state: step, then nvec x nparams f32 (1 <= nvec <= 3:
 * the weights, then the optimizer state). */
struct dc_wire_tstate {
    uint64_t step, nvec;
    const uint8_t *v;
    size_t nparams;
};
#define DC_TSTATE_HDR 16
void dc_wire_tstate_put (uint8_t *buf, const struct dc_wire_tstate *m);
int dc_wire_tstate_get (const uint8_t *buf, size_t len, size_t nparams,
                        struct dc_wire_tstate *m, dc_error_t *errp);

/* ---- JSON payloads ---- */

/* READY: every field optional (echo ranks send "{}"); a field present
 * must have its type; numbers are whole and in range. */
struct dc_wire_ready {
    char device[128];
    char kernel[64];
    int64_t inputs, outputs; /* -1 when absent */
    int64_t parameters;      /* -1 when absent */
    char io[8];              /* "direct" or "relay"; "" when absent */
    char io_why[256];        /* why not direct, when the JOB offered it */
    char io_engine[8];       /* direct: "mmap", "pread" or "mpi-io" */
    double clock;            /* the rank's monotonic clock at READY; 0 */
};
/* A malloc'ed JSON string; NULL when out of memory.  Empty strings and
 * negative numbers are left out. */
char *dc_wire_ready_encode (const struct dc_wire_ready *m);
int dc_wire_ready_decode (const uint8_t *buf, size_t len,
                          struct dc_wire_ready *m, dc_error_t *errp);

enum dc_wire_mode {
    DC_WIRE_INFER = 1,
    DC_WIRE_TRAIN,
    DC_WIRE_ECHO,
    DC_WIRE_PIPELINE,
    DC_WIRE_MAP, /* dcrun map: a MAP message (below) follows JOB */
};

/* Training options as they travel (lib/model's struct dc_train_opts is
 * above this layer; lib/run converts). */
struct dc_wire_train {
    char loss[8];      /* "mse" | "xent" */
    char optimizer[8]; /* "sgd" | "adam" */
    double lr, momentum, beta1, beta2, eps;
    uint64_t batch_size, seed;
    bool resume; /* a DATA message with the checkpoint follows MODEL */
};

/* Direct I/O offered by the JOB of a data-parallel infer: the rank opens
 * the input itself (the file the hub opened: same size and modification
 * time) and the output's temporary file, after reading back the token the
 * hub wrote into the probe file next to it (the same folder seen at the
 * same path).  required: --io direct, a rank that cannot is an error;
 * else (auto) it asks for relayed rows. */
#define DC_WIRE_PATH_MAX 4096
struct dc_wire_io {
    bool on, required;
    char input[DC_WIRE_PATH_MAX], output[DC_WIRE_PATH_MAX];
    char probe[DC_WIRE_PATH_MAX], token[65];
    uint64_t input_size;
    int64_t input_mtime_s, input_mtime_ns;
    /* required only: the rank loads the model from here (no MODEL
     * message), the file the hub read (same size and time); "" none */
    char model[DC_WIRE_PATH_MAX];
    uint64_t model_size;
    int64_t model_mtime_s, model_mtime_ns;
};

/* Direct rows offered by the JOB of a data-parallel train: the rank opens
 * the input and the target itself when it sees the head's files (same
 * size and modification time); required: --io direct. */
struct dc_wire_tio {
    bool on, required;
    char input[DC_WIRE_PATH_MAX], target[DC_WIRE_PATH_MAX];
    uint64_t input_size, target_size;
    int64_t input_mtime_s, input_mtime_ns, target_mtime_s, target_mtime_ns;
};

/* JOB.  Strings empty when absent: device "auto" and dtype "f32" are
 * filled in by the decoder. */
struct dc_wire_job {
    enum dc_wire_mode mode;
    enum dc_wire_mode task; /* pipeline: DC_WIRE_INFER or DC_WIRE_TRAIN */
    char device[16], dtype[8], activation[16];
    int threads;  /* 0..4096 */
    int delay_ms; /* 0..3600000 */
    uint64_t chunk_rows;
    /* pipeline: this rank's stage and its neighbours (-1: none) */
    int stage, stages, group, prev, next;
    bool has_train; /* mode train, or pipeline task train */
    struct dc_wire_train train;
    struct dc_wire_io io;   /* mode infer */
    struct dc_wire_tio tio; /* mode train */
};
char *dc_wire_job_encode (const struct dc_wire_job *m);
/* Checks types, ranges and consistency (a pipeline stage's neighbours;
 * train: a batch size, lr > 0, a known loss and optimizer). */
int dc_wire_job_decode (const uint8_t *buf, size_t len, struct dc_wire_job *m,
                        dc_error_t *errp);

const char *dc_wire_mode_name (enum dc_wire_mode mode);

/* ---- dcrun map (lib/run/map_rank.c, lib/run/sched_map.c) ----
 *
 * JOB "mode": "map", then:
 *   DATA   hub -> rank  JSON, struct dc_wire_map: CMD's argv, per-chunk
 *                       mode, the total rows, the input's dtype and
 *                       trailing shape, the chunk timeout
 *   READY  rank -> hub  "{}" once CMD runs (persistent mode) or at once
 *   CHUNK  hub -> rank  struct dc_wire_chunk, rows of row_bytes bytes
 *   RESULT rank -> hub  struct dc_wire_mapres: u64 id, u64 row0, u64 rows,
 *                       f64 seconds, u64 status (0 done, 1 the chunk
 *                       failed: the text says why), u64 row bytes, u64
 *                       ndim, u64 text length; ndim u64 (the output's
 *                       trailing shape); the text (the output's dtype,
 *                       or the reason) padded to 8 bytes; rows x row
 *                       bytes
 *   ERROR  rank -> hub  CMD died or a chunk ran past its timeout: the
 *                       rank leaves, its chunk goes to another
 *
 * With --io direct|auto the JOB carries "io" (struct dc_wire_io: the
 * input, the output's named temporary file, the probe and its token) and
 * READY "io": "direct" from a rank that sees them.  To a direct rank:
 *   CHUNK  hub -> rank  the header only: the rank reads the rows from the
 *                       input itself
 *   DATA   hub -> rank  JSON, struct dc_wire_mapout, once the first result
 *                       made the output: its dtype, trailing shape, row
 *                       bytes and data offset in the temporary file
 *   RESULT rank -> hub  header only, status DC_MAPRES_WRITTEN: the rank
 *                       wrote the rows into the output (dtype and shape as
 *                       the DATA said), or DC_MAPRES_HELD: no DATA yet, the
 *                       rank keeps CMD's output until it comes (the dtype
 *                       and shape tell the hub what to make) and answers
 *                       again then
 */
#define DC_WIRE_MAP_MAXARGS 4096
#define DC_WIRE_MAP_MAXARG 65536 /* bytes of one argument */
#define DC_WIRE_MAP_MAXDIM 32
#define DC_MAPRES_HDR 64
#define DC_WIRE_MAP_MAXTEXT 4096
#define DC_MAPRES_WRITTEN 2 /* RESULT status: rows in the output already */
#define DC_MAPRES_HELD 3    /* RESULT status: rows kept for the DATA */

struct dc_wire_map {
    int argc;
    char **argv;    /* argc strings and NULL; decode allocates it */
    bool per_chunk; /* {in} and {out} in the arguments */
    uint64_t rows;  /* of the whole input */
    char descr[64]; /* the input's dtype as .npy writes it ("<f4") */
    int ndim;       /* of the trailing shape (the input's shape[1:]) */
    int64_t shape[DC_WIRE_MAP_MAXDIM];
    uint64_t row_bytes;   /* 1..DC_WIRE_MAX_WIDTH */
    double chunk_timeout; /* seconds, 0: none */
    bool files;           /* --files: chunks of files (struct dc_wire_files) */
};
char *dc_wire_map_encode (const struct dc_wire_map *m);
/* Checks types and ranges (1..DC_WIRE_MAP_MAXARGS arguments, a dtype of
 * printable characters without quotes); free with dc_wire_map_free. */
int dc_wire_map_decode (const uint8_t *buf, size_t len, struct dc_wire_map *m,
                        dc_error_t *errp);
void dc_wire_map_free (struct dc_wire_map *m);

struct dc_wire_mapres {
    uint64_t id, row0, rows;
    double seconds;
    uint64_t status; /* 0 done, 1 failed, DC_MAPRES_WRITTEN, _HELD */
    uint64_t row_bytes;
    int ndim;
    int64_t shape[DC_WIRE_MAP_MAXDIM];
    const char *text; /* dtype or reason; decode: points into its buf */
    size_t text_len;
    const uint8_t *data; /* rows x row_bytes */
};
/* The header, shape and text of m: the bytes before the rows. */
size_t dc_wire_mapres_hdr_len (const struct dc_wire_mapres *m);
/* Writes what dc_wire_mapres_hdr_len counts into buf. */
void dc_wire_mapres_put (uint8_t *buf, const struct dc_wire_mapres *m);
/* Header and rows (copied from m->data when not NULL); NULL when out of
 * memory or m is out of range. */
uint8_t *dc_wire_mapres_new (const struct dc_wire_mapres *m, size_t *len);
int dc_wire_mapres_get (const uint8_t *buf, size_t len,
                        struct dc_wire_mapres *m, dc_error_t *errp);

/* --io direct: the output's place, for the ranks to write into. */
struct dc_wire_mapout {
    char descr[64];
    int ndim; /* trailing */
    int64_t shape[DC_WIRE_MAP_MAXDIM];
    uint64_t row_bytes, offset; /* offset: of row 0 in the file */
};
char *dc_wire_mapout_encode (const struct dc_wire_mapout *m);
int dc_wire_mapout_decode (const uint8_t *buf, size_t len,
                           struct dc_wire_mapout *m, dc_error_t *errp);

/* dcrun map --files: a chunk of files out, the files CMD wrote back.
 *   CHUNK  hub -> rank and RESULT rank -> hub: struct dc_wire_files: u64
 *          id, u64 first (the index of the chunk's first input file), u64
 *          count (its input files), f64 seconds, u64 status (0 done, 1
 *          failed: the text says why), u64 text length, u64 files; the
 *          text padded to 8 bytes; then per file u64 name length, u64
 *          bytes, the name and the bytes, each padded to 8.  A name is a
 *          file name, not a path: 1 to 255 bytes, no '/', no NUL, not "."
 *          or "..".  The MAP message says "files": true. */
#define DC_FILES_HDR 56
#define DC_WIRE_MAX_FILES ((uint64_t)1 << 20)
#define DC_WIRE_MAX_FILES_BYTES ((uint64_t)1 << 30) /* a whole message */

struct dc_wire_file {
    const char *name;
    size_t name_len;
    const uint8_t *data;
    uint64_t len;
};

struct dc_wire_files {
    uint64_t id, first, count;
    double seconds;
    uint64_t status; /* 0 done, 1 failed */
    const char *text;
    size_t text_len;
    size_t nfiles;
    struct dc_wire_file *files; /* get: allocated, free () it */
};
/* NULL when out of memory or out of range (a bad name included). */
uint8_t *dc_wire_files_new (const struct dc_wire_files *m, size_t *len);
/* what names the message in errors ("CHUNK", "RESULT"). */
int dc_wire_files_get (const uint8_t *buf, size_t len, const char *what,
                       struct dc_wire_files *m, dc_error_t *errp);
/* 1 when name (len bytes) is a plain file name. */
bool dc_wire_file_name_ok (const char *name, size_t len);

#endif
