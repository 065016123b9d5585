/* coordinator.h - the head of a distributed `dcrun infer`: owns the input
 * and output files, hands chunks of rows to the ranks as they ask (faster
 * ranks take more), writes each result at its offset in the output's
 * temporary file, and renames it when every row is in.  A rank that is
 * lost has its chunks handed to the others; the job fails only when no
 * rank is left, and then no output file exists.
 */
#ifndef DC_COORDINATOR_H
#define DC_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/comm/comm.h"
#include "lib/util/error.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"

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

struct dc_coord;

/* What every coordinator loop does for its next message: wait up to 200 ms,
 * then ask check (may be NULL) whether a signal arrived.  1 with *m, 0 when
 * nothing came, -1 when comm failed or a signal stops the run (*sig set,
 * errno EINTR, errp "interrupted"). */
int dc_coord_recv (struct dc_comm *hub, struct dc_comm_msg *m,
                   int (*check) (void *arg), void *arg, int *sig,
                   dc_error_t *errp);

/* Open and check the input, the model and the output folder before any
 * rank is started: NULL with errp ("FILE: reason") on bad input. */
struct dc_coord *dc_coord_infer_create (const struct dc_coord_infer_opts *o,
                                        int size, dc_error_t *errp);
void dc_coord_destroy (struct dc_coord *co); /* accepts NULL; no output */

size_t dc_coord_rows (const struct dc_coord *co);
size_t dc_coord_chunk_rows (const struct dc_coord *co);

/* Run the job over hub.  0 when the output is complete and renamed; -1
 * otherwise (res->status says why, errp the message), and then no output
 * file exists.  report (may be NULL) gets ranks, phases and the output. */
int dc_coord_infer_run (struct dc_coord *co, struct dc_comm *hub,
                        struct dc_report *report, struct dc_coord_result *res,
                        dc_error_t *errp);

/* ---- training across ranks ---- */

struct dc_coord_train_opts {
    const char *device, *dtype, *activation;
    int threads;
    int delay_ms; /* test hook, as for infer */
    const struct dc_train_opts *to;
    int inputs, outputs;  /* of the model */
    const uint8_t *model; /* the model file's bytes */
    size_t model_len;
    const uint8_t *checkpoint; /* resume: the checkpoint's bytes, or NULL */
    size_t checkpoint_len;
    int (*check) (void *arg); /* as for infer: a signal stops the run */
    void *arg;
    const char *const *hosts; /* host of each rank */
};

struct dc_coord_train;

/* Send the job to every rank of hub and wait until they are ready. */
struct dc_coord_train *
dc_coord_train_start (struct dc_comm *hub, const struct dc_coord_train_opts *o,
                      dc_error_t *errp);

/* The grad_fn of struct dc_train_run (arg: the dc_coord_train): the batch
 * is split across the live ranks, which sum their gradients among
 * themselves and apply the update; the summed gradient comes back here
 * into t so the caller's replica applies the same update.  A rank lost in
 * the middle of a step: the survivors redo it.  No rank left: -1. */
int dc_coord_train_grad (void *arg, struct dc_trainer *t, const float *x,
                         const void *target, size_t rows, double *loss_sum,
                         dc_error_t *errp);

/* Lost ranks so far ("rank 1 on b (killed by signal 9), ..."), borrowed. */
const char *dc_coord_train_lost (const struct dc_coord_train *ct);
int dc_coord_train_nlost (const struct dc_coord_train *ct);
/* The signal that stopped the run, 0 when none. */
int dc_coord_train_signal (const struct dc_coord_train *ct);

/* Tell the ranks to leave (DONE) and free.  Accepts NULL. */
void dc_coord_train_finish (struct dc_coord_train *ct);

#endif
