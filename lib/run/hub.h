/* hub.h - the one coordinator loop of a distributed infer, with pluggable
 * scheduling
 *
 * dc_hub_run is what every layout's hub does: start the ranks (the
 * scheduler sends JOB and MODEL), then receive until every row is in:
 * READY (decoded and checked here, then the scheduler's), RESULT (the
 * scheduler's), ERROR and LOST (one rule below), a signal (interrupted,
 * no output); after each message the scheduler hands out work.  When
 * every row is in: DONE to the live ranks, commit the output, wait
 * briefly for the ranks to leave (when the comm reports exits), and fill
 * the result and the report.
 *
 * Lost ranks, defined once: a rank that sends ERROR or is lost (LOST) is
 * marked lost and named in res->lost ("NAME (why)") and the log; then the
 * scheduler's lost op decides: 0 the job goes on (data: the rank's chunks
 * go back to the queue), -1 the job stops (pipeline: res->status and errp
 * set by the scheduler).  When no rank is left the job fails: with the
 * first rank's error (DC_COORD_WORKER_ERROR) if one sent an error, else
 * "every rank was lost: ..." (DC_COORD_ALL_LOST).  A rank that leaves
 * after DONE is not a loss.
 *
 * Schedulers: lib/run/sched_data.c (chunks to whoever asks, re-queued on
 * loss) and lib/run/sched_pipe.c (micro-batches per group, fail on loss).
 */
#ifndef DC_HUB_H
#define DC_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/comm/comm.h"
#include "lib/comm/wire.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "lib/model/layout.h"
#include "lib/util/error.h"

/* --io: how rows reach the ranks of a data-parallel infer.  relay: through
 * the hub; direct: each rank reads its chunks' rows from the input and
 * writes its results into the output's temporary file (a shared
 * filesystem, or ranks on this host), a rank that cannot is an error;
 * auto: direct for each rank that sees the same files, relay for others. */
enum dc_io_mode { DC_IO_AUTO = 0, DC_IO_RELAY, DC_IO_DIRECT };
const char *dc_io_mode_name (enum dc_io_mode m);

struct dc_coord_infer_opts {
    const char *model_path;
    const char *input_path;
    const char *output_path;
    enum dc_npy_dtype out_dtype; /* DC_NPY_F4 or DC_NPY_F2 */
    const char *device;          /* cpu, cuda, auto */
    const char *dtype;           /* f32, tf32, f16, bf16 */
    const char *activation;      /* NULL: the model's metadata */
    int threads;                 /* per rank; 0: back-end default */
    size_t chunk_rows;           /* 0: chosen from rows, ranks, model */
    int delay_ms;                /* test hook: workers sleep per chunk */
    enum dc_io_mode io_mode;     /* data parallel only */
    /* Called when the hub's extra fd is readable or every 200 ms: return a
     * signal number to stop the job (interrupted), else 0. */
    int (*check) (void *arg);
    /* Progress: rows done of total, ranks alive. */
    void (*progress) (size_t done, size_t total, int alive, void *arg);
    void *arg;
    const char *const *hosts; /* host of each rank, for messages */
};

enum dc_coord_status {
    DC_COORD_OK = 0,
    DC_COORD_ALL_LOST,     /* every rank was lost before the end */
    DC_COORD_WORKER_ERROR, /* ranks failed with errors of their own */
    DC_COORD_INTERRUPTED,
    DC_COORD_IO_ERROR, /* reading the input or writing the output */
};

struct dc_coord_result {
    enum dc_coord_status status;
    int signal;  /* when interrupted */
    size_t rows; /* rows written */
    int64_t shape[2];
    int nlost;
    char lost[1024]; /* "rank 1 on host-b (killed by signal 9), ..." */
    char sha256[65]; /* of the output file */
    double seconds;  /* wall time of the run (after launch) */
};

/* What every coordinator loop does for its next message: wait up to 200 ms,
 * then ask check (may be NULL) whether a signal arrived.  1 with *m, 0 when
 * nothing came, -1 when comm failed or a signal stops the run (*sig set,
 * errno EINTR, errp "interrupted"). */
int dc_coord_recv (struct dc_comm *hub, struct dc_comm_msg *m,
                   int (*check) (void *arg), void *arg, int *sig,
                   dc_error_t *errp);

struct dc_hub_rank {
    bool ready, lost, done_sent;
    bool direct;     /* reads and writes rows itself (READY "io") */
    bool io_refused; /* --io direct and it cannot: error says why */
    int outstanding; /* work handed out, not back yet (the scheduler's) */
    size_t rows, chunks;
    double seconds;      /* compute, as the rank measured it */
    double read, write;  /* direct I/O on the rank */
    double clock_offset; /* head clock - rank clock, at READY */
    /* on the rank's clock: READY, the end of its last chunk, and the time
     * it waited for work in between (gaps between its chunks) */
    double ready_clock, last_end, wait;
    uint64_t relayed;  /* bytes of rows through the hub, both ways */
    char io_why[256];  /* why not direct, as the rank said */
    char io_engine[8]; /* direct: mmap, pread or mpi-io */
    char device[128];
    char kernel[64]; /* BLAS kernel, "" when not told */
    char error[DC_ERROR_SIZE];
};

struct dc_hub {
    struct dc_comm *comm;
    int size;
    const struct dc_coord_infer_opts *o;
    struct dc_npy_writer *out; /* committed when done == rows */
    size_t rows, done;
    int outputs;
    struct dc_hub_rank *ranks;
    struct dc_coord_result *res;
    struct dc_report
        *report; /* the run's (--report's chunk timeline), or NULL */
    double t0, t_first, t_last, t_write, busy;
    double cpu0; /* this process's CPU seconds at the start */
};

struct dc_hub_sched {
    /* JOB and MODEL to every rank: 0, or -1 with errp */
    int (*start) (void *s, struct dc_hub *h, dc_error_t *errp);
    /* READY from r (decoded): 0 accepted; 1 refused (the scheduler set
     * the rank's error and dropped it) */
    int (*ready) (void *s, struct dc_hub *h, int r,
                  const struct dc_wire_ready *rd);
    /* RESULT from r: 0 go on (taken, dropped, or the rank dropped); -1
     * stop, res->status and errp set */
    int (*result) (void *s, struct dc_hub *h, int r, const uint8_t *data,
                   size_t len, dc_error_t *errp);
    /* r was lost (error: it sent ERROR, whose text is why): 0 go on, -1
     * stop (res->status and errp set) */
    int (*lost) (void *s, struct dc_hub *h, int r, bool error, const char *why,
                 dc_error_t *errp);
    /* hand out work to every rank that can take it: 0, or -1 (errp) */
    int (*dispatch) (void *s, struct dc_hub *h, dc_error_t *errp);
    /* or, dispatch NULL (chunks): each ready rank holding fewer than most
     * gets the chunk idx next picks for it (false: none), sent by send
     * (0, or -1 with errp: res->status DC_COORD_IO_ERROR) */
    bool (*next) (void *s, const struct dc_hub *h, int r, size_t *idx);
    int (*send) (void *s, struct dc_hub *h, int r, size_t idx,
                 dc_error_t *errp);
    int most;
    /* the name of rank r in messages */
    void (*name) (void *s, const struct dc_hub *h, int r, char *buf,
                  size_t len);
    /* ranks and extras of the report (phases and output are the hub's) */
    void (*report) (void *s, struct dc_hub *h, struct dc_report *report);
    const char *on_loss; /* log: what happens to a lost rank's work */
    /* May be NULL (h->out is committed): commit the scheduler's own
     * output and fill res->sha256 (lib/run/sched_map.c) */
    int (*commit) (void *s, struct dc_hub *h, dc_error_t *errp);
};

/* Run the job.  h has comm, size, o, out, rows, outputs and res set (res
 * is cleared here); ranks are allocated here.  0 when the output is
 * complete and committed; -1 otherwise (res->status, errp). */
int dc_hub_run (struct dc_hub *h, const struct dc_hub_sched *ops, void *s,
                struct dc_report *report, dc_error_t *errp);

/* Write rows of r's result at row0 and account for them: -1 (errp,
 * res->status DC_COORD_IO_ERROR) when the output cannot be written. */
int dc_hub_write (struct dc_hub *h, int r, uint64_t row0, uint64_t rows,
                  const uint8_t *data, double seconds, dc_error_t *errp);
/* Account for rows that rank r wrote itself (direct I/O). */
void dc_hub_account (struct dc_hub *h, int r, uint64_t rows, double seconds);

/* Into a report's "distributed" object x: "chunks", "rank_chunks" (per
 * rank) and "lost_workers" (rank, host, reason of each rank lost before
 * the end): what every chunked scheduler reports. */
struct cJSON;
void dc_hub_report_chunks (const struct dc_hub *h, struct cJSON *x,
                           size_t nchunks);

/* Into x: "io_mode" (as asked: direct, relay or auto), "io" (how the
 * rows of the ranks that computed went: direct, relay or mixed) and
 * "rank_io" (per rank its way, why not direct, its read, compute and
 * write seconds and the bytes of its rows that passed the hub). */
void dc_hub_report_io (const struct dc_hub *h, struct cJSON *x,
                       const char *io_mode);

/* Note that work went out (the end of the load phase). */
void dc_hub_sent (struct dc_hub *h);

int dc_hub_alive (const struct dc_hub *h);
const char *dc_hub_host (const struct dc_hub *h, int r);
double dc_hub_now (void);

/* ---- the schedulers (their state is the caller's: coordinator.c and
 * pipeline.c embed it) ---- */

enum dc_chunk_state { DC_CHUNK_PENDING = 0, DC_CHUNK_ASSIGNED, DC_CHUNK_DONE };

/* What the chunked schedulers (data, map) share.  Rank r is handed a
 * chunk idx whose CHUNK message is bytes long: dc_hub_chunk_out puts it
 * on the timeline and counts the rows that pass the hub (not direct);
 * then the caller reads the rows into the message (not direct) and
 * dc_hub_chunk_send sends it: 0 and the chunk *state DC_CHUNK_ASSIGNED,
 * *owner r; -1 (errp). */
void dc_hub_chunk_out (struct dc_hub *h, int r, size_t idx, size_t bytes);
int dc_hub_chunk_send (struct dc_hub *h, int r, const uint8_t *buf,
                       size_t bytes, enum dc_chunk_state *state, int *owner,
                       dc_error_t *errp);

/* A chunk of rows row0.. (rows of row_bytes) to rank r: made, put on the
 * timeline, its rows read into dst by read (unless the rank is direct),
 * sent as with dc_hub_chunk_send. */
typedef int (*dc_hub_read_fn) (void *s, size_t row0, size_t rows, uint8_t *dst,
                               dc_error_t *errp);
int dc_hub_send_rows (struct dc_hub *h, int r, size_t idx, size_t row0,
                      size_t rows, size_t row_bytes, dc_hub_read_fn read,
                      void *s, enum dc_chunk_state *state, int *owner,
                      dc_error_t *errp);

/* The .name of a scheduler whose ranks are alike: "rank R on HOST". */
void dc_hub_name (void *s, const struct dc_hub *h, int r, char *buf,
                  size_t len);

/* READY's io from rank r, io the offer in JOB: 1 the rank is refused
 * (dropped: --io direct and it cannot), 0 it goes on (logged). */
int dc_hub_ready_io (struct dc_hub *h, int r, const struct dc_wire_io *io,
                     const struct dc_wire_ready *rd);

struct dc_chunk {
    size_t row0, rows;
    enum dc_chunk_state state;
    int owner;
};

/* Data parallel: every rank the whole model; chunks to whoever asks (at
 * most 2 outstanding per rank), a lost rank's chunks first to the others. */
struct dc_sched_data {
    struct dc_npy *in;
    int inputs;
    const uint8_t *model;
    size_t model_len;
    double flops_per_row;
    size_t chunk_rows, nchunks;
    struct dc_chunk *chunks;
    size_t *pending; /* ring of chunk indices */
    size_t phead, pcount;
    struct dc_wire_io io; /* offered to the ranks in JOB when io.on */
};
extern const struct dc_hub_sched dc_sched_data;

/* Layer layouts: each rank its stage (send_stages); micro-batches to the
 * groups whose stages are all ready, at most S + 1 in flight per group;
 * a lost or failed stage stops the job. */
struct dc_sched_pipe {
    struct dc_npy *in;
    int inputs;
    const struct dc_layout *lo;
    size_t micro_rows, nmb, next;
    int *outstanding, *ready; /* [groups] */
    size_t *grows;            /* [groups] rows done */
    uint8_t *done_mb;         /* [nmb] its rows are in */
    /* each stage tells its times of each micro-batch (a RESULT without
     * rows): a micro-batch is done when its rows and every stage's note
     * are in */
    uint8_t *noted; /* [nmb * nstages] */
    int *mb_group;  /* [nmb] the group it went to */
    int *nnotes;    /* [nmb] */
    /* the notes as they came, laid on the head's clock at the end */
    struct dc_pipe_note {
        int rank;
        uint64_t id;
        double start, compute, send; /* the stage's clock and seconds */
        double arrived;              /* the head's clock */
    } * log;                         /* [nmb * nstages] */
    size_t nlog;
    uint8_t *buf;
    /* JOB and MODEL to every rank */
    int (*send_stages) (void *arg, dc_error_t *errp);
    void *arg;
};
extern const struct dc_hub_sched dc_sched_pipe;

#endif
