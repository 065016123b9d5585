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
#include "lib/run/hub.h"
#include "lib/util/error.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"

/* struct dc_coord_infer_opts, struct dc_coord_result and dc_coord_recv
 * are in lib/run/hub.h (the loop that both infer layouts run). */

struct dc_coord;

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
    /* --trace: each rank's connect+load and, per step attempt, its span
     * (wait, compute, allreduce), lost ranks; NULL: none (borrowed) */
    struct dc_report *report;
    /* rows: --io direct|auto offers the ranks input_path and target_path
     * (they read their rows themselves when they see the same files);
     * x and target: the head's rows (all of them), for relayed ranks of
     * dc_coord_train_grad_idx */
    enum dc_io_mode io_mode;
    const char *input_path, *target_path;
    const float *x;
    const void *target;
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

/* The grad_idx_fn of struct dc_train_run: the batch's rows by index
 * (direct ranks read them, relayed ones get them from o->x and
 * o->target); the ranks sum their gradients and apply the update, nothing
 * comes back but the loss.  state_fn: the weights and optimizer state of
 * the lowest live rank into t. */
int dc_coord_train_grad_idx (void *arg, const size_t *idx, size_t rows,
                             double *loss_sum, dc_error_t *errp);
int dc_coord_train_state (void *arg, struct dc_trainer *t, dc_error_t *errp);

/* Every rank into the report: host, device, rows, compute seconds, and
 * under "distributed": "rank_train" (rows, steps, read, compute,
 * allreduce and wait seconds, the allreduce seconds of each step, io) and
 * "io" (direct, relay or mixed). */
void dc_coord_train_report (const struct dc_coord_train *ct,
                            struct dc_report *rep, double flops_per_row);

/* Lost ranks so far ("rank 1 on b (killed by signal 9), ..."), borrowed. */
const char *dc_coord_train_lost (const struct dc_coord_train *ct);
int dc_coord_train_nlost (const struct dc_coord_train *ct);
/* The signal that stopped the run, 0 when none. */
int dc_coord_train_signal (const struct dc_coord_train *ct);

/* Tell the ranks to leave (DONE) and free.  Accepts NULL. */
void dc_coord_train_finish (struct dc_coord_train *ct);

#endif
