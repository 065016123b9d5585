/* compute.h - compute back-end ops table (DESIGN.md section 5)
 *
 * One table per back-end ("cpu": OpenBLAS, "cuda": cuBLAS/cuBLASLt), found
 * through a static registry.  The API is row-major and float32 on the host
 * side; a back-end converts to its device dtype internally.  Weights are
 * stored as PyTorch stores nn.Linear weights: w[out][in].
 *
 * Plain C: no CUDA header here.  Functions return -1 (NULL) on failure and
 * fill errp with a message naming the call and the device.
 *
 * Pointers named *_dev are device buffers from ops->alloc (host memory for
 * the cpu back-end); everything else is host memory.
 */
#ifndef DC_COMPUTE_H
#define DC_COMPUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

enum dc_dtype {
    DC_DTYPE_F32 = 0,
    DC_DTYPE_TF32,
    DC_DTYPE_F16,
    DC_DTYPE_BF16,
};

enum dc_act {
    DC_ACT_NONE = 0,
    DC_ACT_RELU,
    DC_ACT_GELU, /* tanh approximation, as torch approximate='tanh' */
    DC_ACT_TANH,
};

enum dc_loss {
    DC_LOSS_MSE = 0, /* mean over all elements of (y - t)^2 */
    DC_LOSS_XENT,    /* softmax cross-entropy, int64 labels, mean over rows */
};

struct dc_compute_opts {
    enum dc_dtype dtype;
    int device;        /* CUDA device ordinal (after CUDA_VISIBLE_DEVICES); 0 */
    int threads;       /* CPU threads; 0 = back-end default */
    int streams;       /* CUDA streams for chunk overlap; 0 = default (2) */
    size_t chunk_rows; /* rows per pipelined chunk in mlp_infer; 0 = auto */
    /* cpu: rows of each GEMM of linear_fwd and linear_bwd (training), a
     * multiple of 32 up to DC_CPU_ROW_BLOCK; 0 = DC_CPU_ROW_BLOCK, whose
     * bytes are mlp_infer's.  Smaller blocks waste less on padding when a
     * rank's share of a batch is small (bytes then depend on the rows of
     * the call, not on the threads). */
    size_t train_rows;
};

/* Host view of an MLP, borrowed: the back-end copies what it needs. */
struct dc_layer_view {
    int in, out;
    const float *w;  /* [out][in] */
    const float *b;  /* [out] */
    enum dc_act act; /* applied after this layer */
};

struct dc_mlp_view {
    int nlayers;
    const struct dc_layer_view *layers;
};

/* Rows of every GEMM of the cpu back-end's forward path: rows are
 * computed in blocks of this many, aligned to row 0 of the batch. */
#define DC_CPU_ROW_BLOCK 1024

struct dc_compute; /* one back-end instance (opaque) */
struct dc_mlp_dev; /* an MLP resident on the device (opaque) */

struct dc_compute_ops {
    const char *name;

    /* 1 when usable on this host, 0 when not (errp says why). */
    int (*probe) (dc_error_t *errp);

    struct dc_compute *(*create) (const struct dc_compute_opts *o,
                                  dc_error_t *errp);
    void (*destroy) (struct dc_compute *c); /* accepts NULL */

    /* Device memory and copies (synchronous).  alloc returns zeroed
     * memory (optimizer state can start from it). */
    void *(*alloc) (struct dc_compute *c, size_t bytes, dc_error_t *errp);
    void (*free) (struct dc_compute *c, void *p_dev);
    int (*copy_in) (struct dc_compute *c, void *dst_dev, const void *src,
                    size_t bytes, dc_error_t *errp);
    int (*copy_out) (struct dc_compute *c, void *dst, const void *src_dev,
                     size_t bytes, dc_error_t *errp);
    int (*sync) (struct dc_compute *c, dc_error_t *errp);

    /* y[m][n] = act (x[m][k] . w[n][k]^T + b[n]).  z (may be NULL) receives
     * the pre-activation, which linear_bwd needs for relu/gelu/tanh. */
    int (*linear_fwd) (struct dc_compute *c, int m, int n, int k,
                       const float *x_dev, const float *w_dev,
                       const float *b_dev, enum dc_act act, float *y_dev,
                       float *z_dev, dc_error_t *errp);

    /* Backward of linear_fwd.  dy_dev [m][n] is overwritten with dz (the
     * gradient at the pre-activation).  dw[n][k] and db[n] are overwritten
     * (not accumulated).  dx_dev [m][k] may be NULL (first layer). */
    int (*linear_bwd) (struct dc_compute *c, int m, int n, int k,
                       const float *x_dev, const float *w_dev,
                       const float *z_dev, enum dc_act act, float *dy_dev,
                       float *dx_dev, float *dw_dev, float *db_dev,
                       dc_error_t *errp);

    /* Loss of y[m][n] against target and its gradient dy = dL/dy (scaled by
     * 1/scale_rows instead of 1/m, so ranks can share a global batch).
     * MSE: target_dev float [m][n]; XENT: target_dev int64 [m].
     * *loss_sum gets the sum over the m rows of the per-row loss (MSE: the
     * row's sum of squares divided by n). */
    int (*loss) (struct dc_compute *c, enum dc_loss kind, int m, int n,
                 const float *y_dev, const void *target_dev, size_t scale_rows,
                 float *dy_dev, double *loss_sum, dc_error_t *errp);

    /* SGD with momentum: v = momentum*v + g; w -= lr*v (v may be NULL when
     * momentum is 0).  Same as torch.optim.SGD. */
    int (*sgd) (struct dc_compute *c, float *w_dev, const float *g_dev,
                float *v_dev, size_t n, float lr, float momentum,
                dc_error_t *errp);

    /* Adam, as torch.optim.Adam (bias-corrected, step counts from 1). */
    int (*adam) (struct dc_compute *c, float *w_dev, const float *g_dev,
                 float *m_dev, float *v_dev, size_t n, float lr, float beta1,
                 float beta2, float eps, int64_t step, dc_error_t *errp);

    /* Inference: load an MLP onto the device once, then run host rows
     * through it; the cuda back-end overlaps copy-in, compute and copy-out
     * of successive chunks.  y has rows x (last layer out) floats.  row0
     * is the index of x's first row in the whole batch: the cpu back-end
     * computes rows in blocks of DC_CPU_ROW_BLOCK aligned to row 0 of the
     * batch, so the bytes of a row never depend on how the batch was cut
     * into calls (ranks, chunks, micro-batches) nor on the threads. */
    struct dc_mlp_dev *(*mlp_load) (struct dc_compute *c,
                                    const struct dc_mlp_view *net,
                                    dc_error_t *errp);
    int (*mlp_infer) (struct dc_compute *c, struct dc_mlp_dev *net,
                      const float *x, size_t rows, size_t row0, float *y,
                      dc_error_t *errp);
    void (*mlp_unload) (struct dc_compute *c, struct dc_mlp_dev *net);

    /* GEMM for `dcrun bench gemm`: C[m][n] = A[m][k] . B[k][n] in the
     * instance dtype on device buffers of floats (converted inside). */
    int (*gemm) (struct dc_compute *c, int m, int n, int k, const float *a_dev,
                 const float *b_dev, float *c_dev, dc_error_t *errp);

    /* Describe the device in one line (name, memory), borrowed string. */
    const char *(*describe) (struct dc_compute *c);

    /* The math library's kernel, e.g. OpenBLAS' "Haswell" (its bytes can
     * differ from another kernel's in the last bits), borrowed; NULL (or
     * a NULL op) when it does not apply. */
    const char *(*kernel) (struct dc_compute *c);

    /* Theoretical dense peak of the device in TFLOP/s for the instance
     * dtype, 0 when unknown.  May be NULL. */
    double (*peak_tflops) (struct dc_compute *c);

    /* Optional (NULL when a back-end lacks them; call them through the
     * front functions below, which fall back).
     *
     * host_alloc: host memory that the device copies from and to at full
     * speed without a staging copy (cuda: pinned, cudaHostAlloc; cpu:
     * 64-byte aligned malloc), at least 64-byte aligned, contents
     * undefined; host_free (accepts NULL) gives it back.
     *
     * mlp_submit: start the inference of `rows` rows of x into y (host
     * buffers, best from host_alloc) in slot `slot` (0 to
     * DC_COMPUTE_SLOTS - 1) and return at once (cuda: the copy in, the
     * compute and the copy out queued on the slot's stream, an event
     * after them; cpu: computed before it returns).  x must not change
     * and y must not be read until mlp_wait of that slot has returned 0.
     * One inference at a time per slot; no mlp_infer and no mlp_load or
     * mlp_unload while a slot is in flight.  row0 is the batch index of
     * x's first row, as for mlp_infer: the bytes of y are exactly
     * mlp_infer's for the same x, rows and row0 (issue 10: the cpu
     * back-end's GEMMs on DC_CPU_ROW_BLOCK-row blocks aligned to row 0 of
     * the batch; cuda: the same chunking of the rows as mlp_infer's).
     * mlp_wait: block until the slot's inference is done (0), or -1 with
     * errp; a slot with nothing in flight returns 0 at once.  A failure
     * comes back from mlp_submit (bad arguments, the cpu back-end's
     * compute, a queueing error) or from mlp_wait (the device's work). */
    void *(*host_alloc) (struct dc_compute *c, size_t bytes, dc_error_t *errp);
    void (*host_free) (struct dc_compute *c, void *p);
    int (*mlp_submit) (struct dc_compute *c, struct dc_mlp_dev *net, int slot,
                       const float *x, size_t rows, size_t row0, float *y,
                       dc_error_t *errp);
    int (*mlp_wait) (struct dc_compute *c, struct dc_mlp_dev *net, int slot,
                     dc_error_t *errp);
};

/* Slots of mlp_submit: chunk k computes in one while the rows of chunk
 * k+1 are read into the other's buffers. */
#define DC_COMPUTE_SLOTS 2

/* Front functions of the optional ops: a back-end without host_alloc gets
 * posix_memalign (64 bytes) and free; one without mlp_submit/mlp_wait
 * gets a synchronous mlp_infer in dc_compute_mlp_submit and a wait that
 * returns 0 (the same bytes, no overlap).  Memory from
 * dc_compute_host_alloc goes back with dc_compute_host_free on the same
 * ops and instance.  A slot out of range or a NULL argument is EINVAL. */
void *dc_compute_host_alloc (const struct dc_compute_ops *ops,
                             struct dc_compute *c, size_t bytes,
                             dc_error_t *errp);
void dc_compute_host_free (const struct dc_compute_ops *ops,
                           struct dc_compute *c, void *p);
int dc_compute_mlp_submit (const struct dc_compute_ops *ops,
                           struct dc_compute *c, struct dc_mlp_dev *net,
                           int slot, const float *x, size_t rows, size_t row0,
                           float *y, dc_error_t *errp);
int dc_compute_mlp_wait (const struct dc_compute_ops *ops, struct dc_compute *c,
                         struct dc_mlp_dev *net, int slot, dc_error_t *errp);

/* "cpu", "cuda" or "auto" (cuda when its probe says usable, else cpu).
 * Returns NULL with errp naming the back-ends compiled in, or, for "cuda",
 * saying why its module (dcrun_cuda.so, gpu/module.h) cannot be loaded.
 * Looking up "cuda" loads that module the first time; "auto" loads it only
 * when the CUDA runtime sees a device. */
const struct dc_compute_ops *dc_compute_find (const char *name,
                                              dc_error_t *errp);

int dc_dtype_parse (const char *s, enum dc_dtype *dtype);
const char *dc_dtype_name (enum dc_dtype dtype);
int dc_act_parse (const char *s, enum dc_act *act);
const char *dc_act_name (enum dc_act act);

#endif
