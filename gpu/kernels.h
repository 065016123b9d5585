/* kernels.h - small CUDA kernels of the cuda compute back-end (kernels.cu)
 *
 * C-callable launchers; each enqueues on `stream` and returns the launch
 * status (cudaGetLastError).  Element counts are size_t; grids are capped
 * and kernels loop.  Included only by gpu/compute_cuda.c.
 */
#ifndef DC_KERNELS_H
#define DC_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation codes: the values of enum dc_act (compute.h). */
enum { DK_ACT_NONE = 0, DK_ACT_RELU, DK_ACT_GELU, DK_ACT_TANH };

/* dst[i] = (half or bfloat16) src[i]; bf16 selects bfloat16. */
cudaError_t dk_to_half (void *dst, const float *src, size_t n, int bf16,
                        cudaStream_t stream);

/* y[i] = act (z[i]); y may be z. */
cudaError_t dk_act_fwd (int act, const float *z, float *y, size_t n,
                        cudaStream_t stream);

/* dst[i] = (half or bfloat16) act (z[i]) */
cudaError_t dk_act_to_half (int act, const float *z, void *dst, size_t n,
                            int bf16, cudaStream_t stream);

/* dy[i] *= act'(z[i]) */
cudaError_t dk_act_bwd (int act, const float *z, float *dy, size_t n,
                        cudaStream_t stream);

/* db[j] = sum_i dz[i][j], dz row-major [m][n] */
cudaError_t dk_colsum (const float *dz, float *db, int m, int n,
                       cudaStream_t stream);

/* Loss (kind 0 mse, 1 softmax cross-entropy with int64 labels) of y[m][n]:
 * dy = dL/dy scaled by 1/scale_rows; *acc (device double, zeroed by the
 * caller) gets the sum of the per-row losses; *bad (device int, set to
 * INT_MAX by the caller) gets the first row whose label is outside [0, n). */
cudaError_t dk_loss (int kind, const float *y, const void *target, int m, int n,
                     double scale_rows, float *dy, double *acc, int *bad,
                     cudaStream_t stream);

/* v = momentum*v + g; w -= lr*v (v NULL when momentum is 0: w -= lr*g) */
cudaError_t dk_sgd (float *w, const float *g, float *v, size_t n, float lr,
                    float momentum, cudaStream_t stream);

/* torch.optim.Adam with step_size = lr / bc1, bc2_sqrt = sqrt (bc2) */
cudaError_t dk_adam (float *w, const float *g, float *m, float *v, size_t n,
                     float step_size, float bc2_sqrt, float beta1, float beta2,
                     float eps, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
