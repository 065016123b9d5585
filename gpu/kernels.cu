/* kernels.cu - small CUDA kernels of the cuda compute back-end
 *
 * What cuBLASLt epilogues do not cover: dtype conversion, tanh, the
 * activation gradients, bias-gradient fallback, losses and optimizer steps.
 * Element-wise kernels use capped grids and grid-stride loops.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels.h"

#define DK_THREADS 256
#define DK_MAX_BLOCKS 65535

static unsigned blocks_for (size_t n)
{
    size_t b = (n + DK_THREADS - 1) / DK_THREADS;
    if (b < 1)
        b = 1;
    return b > DK_MAX_BLOCKS ? DK_MAX_BLOCKS : (unsigned)b;
}

/* GELU, tanh approximation (torch approximate='tanh') */
#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

__device__ __forceinline__ float act_fwd (int act, float v)
{
    switch (act) {
    case DK_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case DK_ACT_GELU:
        return 0.5f * v * (1.0f + tanhf (GELU_C * (v + GELU_A * v * v * v)));
    case DK_ACT_TANH:
        return tanhf (v);
    }
    return v;
}

__device__ __forceinline__ float act_grad (int act, float z)
{
    switch (act) {
    case DK_ACT_RELU:
        return z > 0.0f ? 1.0f : 0.0f;
    case DK_ACT_GELU: {
        float t = tanhf (GELU_C * (z + GELU_A * z * z * z));
        return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * GELU_C *
                                       (1.0f + 3.0f * GELU_A * z * z);
    }
    case DK_ACT_TANH: {
        float t = tanhf (z);
        return 1.0f - t * t;
    }
    }
    return 1.0f;
}

#define GRID_STRIDE(i, n)                                                      \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);    \
         i += (size_t)gridDim.x * blockDim.x)

__global__ void k_to_f16 (__half *dst, const float *src, size_t n)
{
    GRID_STRIDE (i, n)
    dst[i] = __float2half_rn (src[i]);
}

__global__ void k_to_bf16 (__nv_bfloat16 *dst, const float *src, size_t n)
{
    GRID_STRIDE (i, n)
    dst[i] = __float2bfloat16_rn (src[i]);
}

__global__ void k_act_fwd (int act, const float *z, float *y, size_t n)
{
    GRID_STRIDE (i, n)
    y[i] = act_fwd (act, z[i]);
}

template <typename T>
__global__ void k_act_to (int act, const float *z, T *dst, size_t n)
{
    GRID_STRIDE (i, n)
    dst[i] = (T)act_fwd (act, z[i]);
}

__global__ void k_act_bwd (int act, const float *z, float *dy, size_t n)
{
    GRID_STRIDE (i, n)
    dy[i] *= act_grad (act, z[i]);
}

/* one thread per column, rows in order: coalesced across the warp */
__global__ void k_colsum (const float *dz, float *db, int m, int n)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n;
         j += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int i = 0; i < m; i++)
            s += dz[(size_t)i * n + j];
        db[j] = s;
    }
}

__device__ double block_sum (double v, double *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync (0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads ();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync (0xffffffffu, v, o);
        if (threadIdx.x == 0)
            sh[0] = v;
    }
    __syncthreads ();
    v = sh[0];
    __syncthreads ();
    return v;
}

__device__ float block_max (float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf (v, __shfl_down_sync (0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads ();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1)
            v = fmaxf (v, __shfl_down_sync (0xffffffffu, v, o));
        if (threadIdx.x == 0)
            sh[0] = v;
    }
    __syncthreads ();
    v = sh[0];
    __syncthreads ();
    return v;
}

/* one block per row */
__global__ void k_mse (const float *y, const float *t, int m, int n, float g,
                       float *dy, double *acc)
{
    __shared__ double sh[32];
    for (int i = blockIdx.x; i < m; i += gridDim.x) {
        const size_t r = (size_t)i * n;
        double s = 0.0;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            float d = y[r + j] - t[r + j];
            s += (double)d * d;
            dy[r + j] = g * d;
        }
        s = block_sum (s, sh);
        if (threadIdx.x == 0)
            atomicAdd (acc, s / n);
    }
}

__global__ void k_xent (const float *y, const int64_t *lab, int m, int n,
                        double inv, float *dy, double *acc, int *bad)
{
    __shared__ double sh[32];
    __shared__ float shf[32];
    for (int i = blockIdx.x; i < m; i += gridDim.x) {
        const size_t r = (size_t)i * n;
        const int64_t l = lab[i];
        if (l < 0 || l >= n) {
            if (threadIdx.x == 0)
                atomicMin (bad, i);
            continue; /* uniform across the block */
        }
        float mx = -INFINITY;
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            mx = fmaxf (mx, y[r + j]);
        mx = block_max (mx, shf);
        double se = 0.0;
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            se += exp ((double)y[r + j] - mx);
        se = block_sum (se, sh);
        double lse = log (se) + mx;
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            dy[r + j] = (float)(exp ((double)y[r + j] - lse) * inv -
                                (j == l ? inv : 0.0));
        if (threadIdx.x == 0)
            atomicAdd (acc, lse - y[r + l]);
    }
}

__global__ void k_sgd (float *w, const float *g, float *v, size_t n, float lr,
                       float momentum)
{
    GRID_STRIDE (i, n)
    {
        if (v) {
            float b = momentum * v[i] + g[i];
            v[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * g[i];
        }
    }
}

__global__ void k_adam (float *w, const float *g, float *m, float *v, size_t n,
                        float step_size, float bc2_sqrt, float b1, float b2,
                        float eps)
{
    GRID_STRIDE (i, n)
    {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step_size * (mi / (sqrtf (vi) / bc2_sqrt + eps));
    }
}

extern "C" {

cudaError_t dk_to_half (void *dst, const float *src, size_t n, int bf16,
                        cudaStream_t stream)
{
    if (bf16)
        k_to_bf16<<<blocks_for (n), DK_THREADS, 0, stream>>> (
            (__nv_bfloat16 *)dst, src, n);
    else
        k_to_f16<<<blocks_for (n), DK_THREADS, 0, stream>>> ((__half *)dst, src,
                                                             n);
    return cudaGetLastError ();
}

cudaError_t dk_act_fwd (int act, const float *z, float *y, size_t n,
                        cudaStream_t stream)
{
    k_act_fwd<<<blocks_for (n), DK_THREADS, 0, stream>>> (act, z, y, n);
    return cudaGetLastError ();
}

cudaError_t dk_act_to_half (int act, const float *z, void *dst, size_t n,
                            int bf16, cudaStream_t stream)
{
    if (bf16)
        k_act_to<__nv_bfloat16><<<blocks_for (n), DK_THREADS, 0, stream>>> (
            act, z, (__nv_bfloat16 *)dst, n);
    else
        k_act_to<__half><<<blocks_for (n), DK_THREADS, 0, stream>>> (
            act, z, (__half *)dst, n);
    return cudaGetLastError ();
}

cudaError_t dk_act_bwd (int act, const float *z, float *dy, size_t n,
                        cudaStream_t stream)
{
    k_act_bwd<<<blocks_for (n), DK_THREADS, 0, stream>>> (act, z, dy, n);
    return cudaGetLastError ();
}

cudaError_t dk_colsum (const float *dz, float *db, int m, int n,
                       cudaStream_t stream)
{
    k_colsum<<<blocks_for ((size_t)n), DK_THREADS, 0, stream>>> (dz, db, m, n);
    return cudaGetLastError ();
}

cudaError_t dk_loss (int kind, const float *y, const void *target, int m, int n,
                     double scale_rows, float *dy, double *acc, int *bad,
                     cudaStream_t stream)
{
    unsigned grid = m < DK_MAX_BLOCKS ? (unsigned)m : DK_MAX_BLOCKS;
    if (kind == 0)
        k_mse<<<grid, DK_THREADS, 0, stream>>> (
            y, (const float *)target, m, n,
            (float)(2.0 / (scale_rows * (double)n)), dy, acc);
    else
        k_xent<<<grid, DK_THREADS, 0, stream>>> (
            y, (const int64_t *)target, m, n, 1.0 / scale_rows, dy, acc, bad);
    return cudaGetLastError ();
}

cudaError_t dk_sgd (float *w, const float *g, float *v, size_t n, float lr,
                    float momentum, cudaStream_t stream)
{
    k_sgd<<<blocks_for (n), DK_THREADS, 0, stream>>> (w, g, v, n, lr, momentum);
    return cudaGetLastError ();
}

cudaError_t dk_adam (float *w, const float *g, float *m, float *v, size_t n,
                     float step_size, float bc2_sqrt, float beta1, float beta2,
                     float eps, cudaStream_t stream)
{
    k_adam<<<blocks_for (n), DK_THREADS, 0, stream>>> (
        w, g, m, v, n, step_size, bc2_sqrt, beta1, beta2, eps);
    return cudaGetLastError ();
}

} /* extern "C" */
