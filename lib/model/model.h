/* model.h - the MLP of DESIGN.md section 4: load, save, train
 *
 * A model is a safetensors file holding P{i}.weight [out, in] and
 * P{i}.bias [out] for numeric i in increasing order, with any common
 * prefix P ("0.weight", "2.weight" as PyTorch's nn.Sequential saves them,
 * or "layers.0.weight"); a bare nn.Linear ("weight", "bias") is one layer.
 * Between layers the activation named by __metadata__ "activation" (relu,
 * gelu = tanh approximation as torch's approximate='tanh', tanh, none;
 * default relu) or the caller's override; after the last layer none unless
 * "final_activation" names one.  Tensors of other names are kept and saved
 * back untouched.
 *
 * Training runs on a compute back-end (gpu/compute.h).  One step is
 * dc_trainer_grad (forward, loss, backward for a share of a global batch:
 * gradients are of the loss averaged over scale_rows rows, so ranks can sum
 * them) followed by dc_trainer_apply (the optimizer update);
 * dc_trainer_run is the single-process loop over epochs and shuffled
 * mini-batches with checkpoints.
 */
#ifndef DC_MODEL_H
#define DC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/compute.h"
#include "lib/util/error.h"
#include "lib/util/rng.h"
#include "lib/formats/safetensors.h"

struct dc_model_layer {
    char *name; /* tensor name stem: "0", "layers.2" */
    int in, out;
    struct dc_tensor *w; /* borrowed from the model's tensors */
    struct dc_tensor *b;
    enum dc_act act; /* applied after this layer */
};

struct dc_model {
    struct dc_safetensors *st; /* owned: every tensor and the metadata */
    int nlayers;
    struct dc_model_layer *layers;
    enum dc_act act;       /* between layers */
    enum dc_act final_act; /* after the last one */
};

/* Parse an activation name (relu, gelu, gelu_tanh, tanh, none, identity). */
int dc_model_act_parse (const char *s, enum dc_act *act);

/* Load path; act_override (NULL: the file's metadata) names the activation
 * between layers.  NULL with errp ("FILE: reason") on any problem. */
struct dc_model *dc_model_load (const char *path, const char *act_override,
                                dc_error_t *errp);

/* The same from tensors already loaded; takes st (also on failure). */
struct dc_model *dc_model_create (struct dc_safetensors *st,
                                  const char *act_override, dc_error_t *errp);
void dc_model_destroy (struct dc_model *m); /* accepts NULL */

/* Save with the input's tensor names, dtypes and metadata (atomically). */
int dc_model_save (const struct dc_model *m, const char *path,
                   dc_error_t *errp);

int dc_model_inputs (const struct dc_model *m);
int dc_model_outputs (const struct dc_model *m);
size_t dc_model_nparams (const struct dc_model *m);
/* 2 * sum of in*out: multiply-adds of one row's forward pass, times 2 */
double dc_model_flops_per_row (const struct dc_model *m);

/* Fill view and layers[nlayers] (borrowing the weights) for ops->mlp_load. */
void dc_model_view (const struct dc_model *m, struct dc_layer_view *layers,
                    struct dc_mlp_view *view);

/* ---- training ---- */

enum dc_optim {
    DC_OPTIM_SGD = 0, /* torch.optim.SGD with momentum, no dampening */
    DC_OPTIM_ADAM,    /* torch.optim.Adam */
};

struct dc_train_opts {
    enum dc_loss loss;
    enum dc_optim optim;
    double lr;
    double momentum;     /* sgd */
    double beta1, beta2; /* adam; 0 = 0.9, 0.999 */
    double eps;          /* adam; 0 = 1e-8 */
    size_t batch_size;   /* rows per step (the last step of an epoch may
                            have fewer) */
    uint64_t seed;       /* shuffling */
    bool no_shuffle;     /* rows in file order */
};

/* Where a run stands: the next epoch and batch to run, optimizer steps
 * done, and the shuffling generator as of the start of that epoch. */
struct dc_train_pos {
    int64_t epoch;
    int64_t batch;
    int64_t step;
    struct dc_rng rng;
};

struct dc_trainer;

/* Rows of each GEMM of training on the cpu back-end (its train_rows): a
 * rank's share of a batch is padded to a multiple of this, not to the 1024
 * rows of inference, so 2 ranks each do half the work of one process. */
#define DC_TRAIN_CPU_ROWS 128

/* Upload m's weights to c and allocate gradients, optimizer state and
 * activations for batch_size rows.  m stays owned by the caller and must
 * outlive the trainer; dc_trainer_sync writes the weights back into it. */
struct dc_trainer *dc_trainer_create (struct dc_model *m,
                                      const struct dc_compute_ops *ops,
                                      struct dc_compute *c,
                                      const struct dc_train_opts *o,
                                      dc_error_t *errp);
void dc_trainer_destroy (struct dc_trainer *t); /* accepts NULL */

/* Forward, loss and backward for rows (<= batch_size) host rows x and
 * their targets (float [rows][outputs] for mse, int64 [rows] for xent).
 * Gradients are overwritten, of the loss averaged over scale_rows rows
 * (the global batch); *loss_sum gets the sum of the rows' losses. */
int dc_trainer_grad (struct dc_trainer *t, const float *x, const void *target,
                     size_t rows, size_t scale_rows, double *loss_sum,
                     dc_error_t *errp);

/* Gradients as one host vector of dc_model_nparams floats, layer by layer
 * (weight then bias): for summing across ranks between grad and apply. */
int dc_trainer_grads_get (struct dc_trainer *t, float *host, dc_error_t *errp);
int dc_trainer_grads_set (struct dc_trainer *t, const float *host,
                          dc_error_t *errp);

/* Gradient buckets, for summing across ranks while the backward pass goes
 * on (PyTorch DDP's overlap).  The backward pass completes the layers'
 * gradients last layer first; a bucket is a run of whole layers in that
 * order, closed once it holds at least bucket_bytes of gradient (with
 * DC_TRAIN_BUCKET_BYTES, 1 MiB: a bucket per large layer, small layers
 * merged with the next; the last bucket, the one that ends with layer 0,
 * may be smaller).  Bucket k
 * holds the floats off..off+n-1 of the gradient vector (dc_trainer_
 * grads_get's layout) and is complete once layer `layer`'s gradient is.
 * The cut depends on the model alone: every rank cuts the same buckets. */
#define DC_TRAIN_BUCKET_BYTES ((size_t)1 << 20)
struct dc_grad_bucket {
    size_t off, n;
    int layer; /* its lowest layer: complete when this one is */
};
/* Fill b[0..max-1] in backward order; returns the number of buckets (at
 * most the layers), -1 with errp on bad arguments or max too small. */
int dc_trainer_buckets (const struct dc_trainer *t, size_t bucket_bytes,
                        struct dc_grad_bucket *b, int max, dc_error_t *errp);
/* Called by dc_trainer_grad as soon as layer's gradient is complete (last
 * layer first), while the layers below still wait for their backward;
 * returning -1 (with errp) stops the step with that error.  fn NULL: no
 * hook (the default). */
typedef int (*dc_grad_hook_f) (void *arg, int layer, dc_error_t *errp);
void dc_trainer_set_grad_hook (struct dc_trainer *t, dc_grad_hook_f fn,
                               void *arg);
/* Floats off..off+n-1 of the gradient vector into host (a bucket). */
int dc_trainer_grads_get_range (struct dc_trainer *t, size_t off, size_t n,
                                float *host, dc_error_t *errp);

/* The trained state as host vectors of dc_model_nparams floats: the
 * weights (layer by layer, weight then bias), then the optimizer's state
 * vectors (momentum; Adam's two).  nvec: how many (1 to 3). */
int dc_trainer_state_nvec (const struct dc_trainer *t);
int64_t dc_trainer_steps (const struct dc_trainer *t);
int dc_trainer_state_get (struct dc_trainer *t, float *host, dc_error_t *errp);
/* Replace the weights and optimizer state (nvec vectors) and the step. */
int dc_trainer_state_set (struct dc_trainer *t, const float *host, int64_t step,
                          dc_error_t *errp);

/* One optimizer update with the current gradients. */
int dc_trainer_apply (struct dc_trainer *t, dc_error_t *errp);

/* Copy the weights from the device into the model's tensors. */
int dc_trainer_sync (struct dc_trainer *t, dc_error_t *errp);

/* Checkpoint: the model's tensors (as F32 under their own names), the
 * optimizer state ("optimizer.momentum" or "optimizer.exp_avg" and
 * "optimizer.exp_avg_sq", flat) and pos and options in __metadata__. */
int dc_trainer_checkpoint_save (struct dc_trainer *t,
                                const struct dc_train_pos *pos,
                                const char *path, dc_error_t *errp);
/* Restore weights, optimizer state and pos; the checkpoint must have been
 * made with the same layers, optimizer, loss, batch size and seed. */
int dc_trainer_checkpoint_load (struct dc_trainer *t, struct dc_train_pos *pos,
                                const char *path, dc_error_t *errp);

/* Start of a run: epoch 0, batch 0, the generator seeded from o->seed. */
void dc_train_pos_init (struct dc_train_pos *pos,
                        const struct dc_train_opts *o);

/* Called after each step; a non-zero return stops the run there (as an
 * interruption would), with pos at the next step. */
typedef int (*dc_train_step_f) (const struct dc_train_pos *pos, size_t rows,
                                double loss, void *arg);

struct dc_train_run {
    const float *x;     /* [rows][inputs] */
    const void *target; /* [rows][outputs] floats or [rows] int64 */
    size_t rows;
    int64_t epochs;           /* run until pos->epoch == epochs */
    int64_t checkpoint_every; /* steps; 0: at the end of each epoch only */
    const char *checkpoint;   /* path, NULL: no checkpoints */
    dc_train_step_f step_cb;
    void *arg;
    /* Across ranks: compute the batch's gradient elsewhere (the ranks of a
     * distributed run) and put the summed gradient into t with
     * dc_trainer_grads_set; *loss_sum as dc_trainer_grad gives it.  NULL:
     * t computes it (dc_trainer_grad). */
    int (*grad_fn) (void *arg, struct dc_trainer *t, const float *x,
                    const void *target, size_t rows, double *loss_sum,
                    dc_error_t *errp);
    void *grad_arg;
    /* Across ranks that keep the model and update it themselves: the
     * batch's rows as indices into x and target (idx[rows], the shuffled
     * order), no rows gathered here; t is not updated each step (its step
     * count is); state_fn (grad_arg) puts the ranks' weights and optimizer
     * state into t (dc_trainer_state_set) before each checkpoint and at
     * the end.  Used instead of grad_fn when set. */
    int (*grad_idx_fn) (void *arg, const size_t *idx, size_t rows,
                        double *loss_sum, dc_error_t *errp);
    int (*state_fn) (void *arg, struct dc_trainer *t, dc_error_t *errp);
};

/* Train from *pos to the end (or until step_cb stops it); *pos follows.
 * Returns 0, 1 when stopped by step_cb, -1 on error; a batch whose loss is
 * NaN or Inf stops the run before that step is applied or checkpointed
 * (-1, errno EDOM, errp naming the epoch and step).  The model's
 * tensors hold the final weights afterwards (dc_trainer_sync). */
int dc_trainer_run (struct dc_trainer *t, const struct dc_train_run *r,
                    struct dc_train_pos *pos, dc_error_t *errp);

/* ---- micro-batch entry points (a pipeline stage, lib/run/stage.c) ----
 *
 * Layers l0 .. l1-1 of m on one micro-batch of rows, on the device c of
 * ops, with the model's flat parameter layout (each layer's weight
 * [out][in], then its bias [out], layer after layer from layer l0):
 * params (and grads) point at layer l0's weight.  The same compute calls
 * as dc_trainer_grad, so the bytes are those of the whole model's step.
 *
 * dc_model_layers_fwd: x [rows][in of l0] in, z[i - l0] (before the
 * activation) and y[i - l0] (after it) [rows][out of i] out, for each
 * layer i; the caller allocates them on the device. */
int dc_model_layers_fwd (const struct dc_model *m, int l0, int l1,
                         const struct dc_compute_ops *ops, struct dc_compute *c,
                         const float *params, size_t rows, const float *x,
                         float *const *z, float *const *y, dc_error_t *errp);

/* Backward from da (the loss's gradient at layer l1-1's output, [rows]
 * [widest]); db a second buffer as large.  x, z and y as the forward left
 * them.  The gradient of each layer's weight and bias is written into
 * grads (not added); when want_dx, the gradient at x is left in *dx (da
 * or db), else *dx is NULL. */
int dc_model_layers_bwd (const struct dc_model *m, int l0, int l1,
                         const struct dc_compute_ops *ops, struct dc_compute *c,
                         const float *params, float *grads, size_t rows,
                         const float *x, float *const *z, float *const *y,
                         float *da, float *db, bool want_dx, float **dx,
                         dc_error_t *errp);

#endif
