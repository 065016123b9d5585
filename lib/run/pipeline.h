/* pipeline.h - model-parallel layouts (layers, hybrid) over comm
 *
 * Every rank holds one stage of the model: the layers [l0, l1) of the
 * layout (lib/model/layout.h); rank r is stage r mod S of group r / S.  The
 * coordinator sends each rank a JOB with "mode": "pipeline" and a MODEL
 * that holds only its stage's tensors (a safetensors file whose metadata
 * gives the activations its layers need), so no rank ever receives, loads
 * or uploads more than its share of the model.
 *
 * Inference: micro-batches of rows go from the hub to stage 0 of a group
 * (CHUNK), from stage to stage (DATA frames rank to rank, relayed by the
 * hub), and from the last stage back to the hub (RESULT), which writes
 * them at their offsets.  A group has at most S + 1 micro-batches in
 * flight, so every stage is busy once the pipeline is full; groups take
 * micro-batches as they finish them.
 *
 *   CHUNK/DATA/RESULT payload: u64 id, u64 row0, u64 rows, f64 seconds
 *   (the compute time spent on this micro-batch by the stages so far),
 *   then rows x width f32.
 *
 * Training (see dc_pipe_train_grad): for each step the hub sends every
 * group its contiguous share of the batch: the inputs to stage 0, the
 * targets to the last stage (CHUNK; u64 attempt, rows, global batch rows,
 * micro rows, then the rows).  Micro-batches go forward stage to stage;
 * the last stage computes the loss and the backward pass starts at once,
 * each stage sending the gradient of its input back to the previous one
 * (DATA).  When every micro-batch is back, each rank sends the gradient of
 * its layers (summed over its micro-batches) to the hub (RESULT).  The hub
 * sums the gradients of each stage over the groups (the group reduction
 * is done at the hub: the stream comm's allreduce spans every rank),
 * sends each rank its stage's sum (REDUCED), and every rank applies the
 * optimizer to its own layers.  The hub puts the same sum into its CPU
 * replica of the whole model, which writes the checkpoints and the
 * trained model, exactly as data-parallel training does.
 *
 * A rank lost in a pipeline stops the job: its stage cannot be redone
 * elsewhere (the others do not hold its layers).
 */
#ifndef DC_PIPELINE_H
#define DC_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/comm/comm.h"
#include "lib/run/coordinator.h"
#include "lib/util/error.h"
#include "lib/model/layout.h"
#include "lib/model/model.h"
#include "lib/formats/report.h"
#include "lib/comm/wire.h"

/* ---- coordinator side (lib/run/pipeline.c) ---- */

/* The safetensors bytes of layers [l0, l1) of m, with the metadata that
 * makes their activations those of m.  With ck (a checkpoint's tensors,
 * may be NULL) the weights come from ck, and its optimizer state (the
 * "optimizer.*" slices of these layers) and "dcrun.step" are added.
 * Caller frees *bytes. */
int dc_pipe_stage_model (const struct dc_model *m, int l0, int l1,
                         const struct dc_safetensors *ck, uint8_t **bytes,
                         size_t *len, dc_error_t *errp);

struct dc_pipe_infer;

/* Load the model, open the input and the output's temporary file: NULL
 * with errp on bad input (nothing started yet). */
struct dc_pipe_infer *dc_pipe_infer_create (const struct dc_coord_infer_opts *o,
                                            dc_error_t *errp);
void dc_pipe_infer_destroy (struct dc_pipe_infer *pi); /* no output */

const struct dc_model *dc_pipe_infer_model (const struct dc_pipe_infer *pi);
size_t dc_pipe_infer_rows (const struct dc_pipe_infer *pi);

/* Run over hub with layout lo (layers or hybrid) in micro-batches of
 * micro_rows.  0 when the output is complete and renamed; -1 otherwise
 * (res->status and errp say why; res->lost names the stage), and then no
 * output file exists. */
int dc_pipe_infer_run (struct dc_pipe_infer *pi, struct dc_comm *hub,
                       const struct dc_layout *lo, size_t micro_rows,
                       struct dc_report *report, struct dc_coord_result *res,
                       dc_error_t *errp);

/* ---- training ---- */

struct dc_pipe_train_opts {
    const char *device, *dtype;
    int threads;
    int delay_ms;
    const struct dc_train_opts *to;
    const struct dc_layout *lo;
    size_t micro_rows;               /* rows per micro-batch; 0: batch / 4S */
    const struct dc_model *m;        /* the coordinator's model (names, acts) */
    const struct dc_safetensors *ck; /* resumed: the checkpoint's tensors
                                        (weights, optimizer state, step) */
    int (*check) (void *arg);
    void *arg;
    const char *const *hosts;
    /* --trace: each stage's connect+load and step spans; NULL: none */
    struct dc_report *report;
};

struct dc_pipe_train;

/* Send every rank its stage and wait until all are ready. */
struct dc_pipe_train *dc_pipe_train_start (struct dc_comm *hub,
                                           const struct dc_pipe_train_opts *o,
                                           dc_error_t *errp);

/* The grad_fn of struct dc_train_run (arg: the dc_pipe_train).  A lost
 * rank: -1 with errno EHOSTDOWN and errp naming its stage. */
int dc_pipe_train_grad (void *arg, struct dc_trainer *t, const float *x,
                        const void *target, size_t rows, double *loss_sum,
                        dc_error_t *errp);

int dc_pipe_train_signal (const struct dc_pipe_train *pt);
/* Seconds the stages computed, and the wall seconds of the steps. */
void dc_pipe_train_times (const struct dc_pipe_train *pt, double *busy,
                          double *wall);
/* Tell the ranks to leave (DONE) and free.  Accepts NULL. */
void dc_pipe_train_finish (struct dc_pipe_train *pt);

#endif
