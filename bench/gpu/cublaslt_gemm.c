/* cublaslt_gemm.c - raw cuBLASLt GEMM, the peer of `dcrun bench gemm`
 *
 *   cublaslt_gemm M N K f32|tf32|f16|bf16 [ITERS]
 *
 * The shape dcrun's cuda back-end times: C[M][N] = A[M][K] . B[K][N] with
 * A and B in the dtype (f32 for f32 and tf32), f32 accumulation
 * (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 for tf32) and an
 * f32 output, column-major, no transposes, the best heuristic algorithm
 * with a 32 MiB workspace (as compute_cuda.c).  Random data in [-1, 1)
 * (zeros run faster), one warm-up, ITERS (default 20) timed with CUDA
 * events.  Prints one JSON object; exit 0 ok, 2 usage, 5 CUDA failure.
 *
 * Build: gcc -O2 -I/usr/local/cuda/include cublaslt_gemm.c
 *            -L/usr/local/cuda/lib64 -lcublasLt -lcudart
 */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKSPACE ((size_t)32 << 20)

static int cuda_ok (cudaError_t e, const char *call)
{
    if (e == cudaSuccess)
        return 1;
    printf ("{\"error\":\"%s: %s\"}\n", call, cudaGetErrorName (e));
    fprintf (stderr, "cublaslt_gemm: %s: %s\n", call, cudaGetErrorString (e));
    return 0;
}

static int blas_ok (cublasStatus_t s, const char *call)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 1;
    printf ("{\"error\":\"%s: %s\"}\n", call, cublasLtGetStatusName (s));
    fprintf (stderr, "cublaslt_gemm: %s: %s\n", call,
             cublasLtGetStatusString (s));
    return 0;
}

#define CK(call)                                                               \
    do {                                                                       \
        if (!cuda_ok ((call), #call))                                          \
            return 5;                                                          \
    } while (0)
#define CKB(call)                                                              \
    do {                                                                       \
        if (!blas_ok ((call), #call))                                          \
            return 5;                                                          \
    } while (0)

static uint64_t st = 1;

static float rnd (void) /* splitmix64 -> [-1, 1) */
{
    uint64_t z = (st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((z >> 40) * (2.0 / 16777216.0) - 1.0);
}

static uint16_t to_bf16 (float f)
{
    uint32_t u;
    memcpy (&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_f16 (float f) /* round to nearest even; tiny -> 0 */
{
    uint32_t u, sign, mant;
    int exp;
    memcpy (&u, &f, 4);
    sign = (u >> 16) & 0x8000;
    exp = (int)((u >> 23) & 0xFF) - 127 + 15;
    mant = u & 0x7FFFFF;
    if (exp <= 0)
        return (uint16_t)sign;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7C00);
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

/* n random elements of type t on the device */
static void *dev_random (size_t n, cudaDataType_t t, int *rc)
{
    size_t es = t == CUDA_R_32F ? 4 : 2;
    void *h = malloc (n * es), *d = NULL;

    *rc = 5;
    if (!h) {
        fprintf (stderr, "cublaslt_gemm: out of host memory\n");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float f = rnd ();
        if (t == CUDA_R_32F)
            ((float *)h)[i] = f;
        else if (t == CUDA_R_16BF)
            ((uint16_t *)h)[i] = to_bf16 (f);
        else
            ((uint16_t *)h)[i] = to_f16 (f);
    }
    if (cuda_ok (cudaMalloc (&d, n * es), "cudaMalloc") &&
        cuda_ok (cudaMemcpy (d, h, n * es, cudaMemcpyHostToDevice),
                 "cudaMemcpy"))
        *rc = 0;
    free (h);
    return *rc ? NULL : d;
}

int main (int argc, char **argv)
{
    long m, n, k, iters = 20;
    const char *dt;
    cudaDataType_t ab = CUDA_R_32F;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0, rc;
    size_t ws_bytes = WORKSPACE;
    void *a, *b, *c, *ws;
    float alpha = 1.0f, beta = 0.0f, ms = 0;
    cudaEvent_t e0, e1;
    cudaStream_t s;
    struct cudaDeviceProp prop;

    if (argc < 5 || argc > 6) {
        fprintf (stderr, "usage: cublaslt_gemm M N K f32|tf32|f16|bf16 "
                         "[ITERS]\n");
        return 2;
    }
    m = atol (argv[1]);
    n = atol (argv[2]);
    k = atol (argv[3]);
    dt = argv[4];
    if (argc == 6)
        iters = atol (argv[5]);
    if (m <= 0 || n <= 0 || k <= 0 || iters <= 0 || m > 65536 || n > 65536 ||
        k > 65536) {
        fprintf (stderr, "cublaslt_gemm: bad shape or ITERS\n");
        return 2;
    }
    if (!strcmp (dt, "tf32"))
        ct = CUBLAS_COMPUTE_32F_FAST_TF32;
    else if (!strcmp (dt, "f16"))
        ab = CUDA_R_16F;
    else if (!strcmp (dt, "bf16"))
        ab = CUDA_R_16BF;
    else if (strcmp (dt, "f32") != 0) {
        fprintf (stderr, "cublaslt_gemm: dtype %s: not f32, tf32, f16, bf16\n",
                 dt);
        return 2;
    }
    CK (cudaGetDeviceProperties (&prop, 0));
    if (!(a = dev_random ((size_t)m * k, ab, &rc)) ||
        !(b = dev_random ((size_t)k * n, ab, &rc)))
        return rc;
    CK (cudaMalloc (&c, (size_t)m * n * 4));
    CK (cudaMalloc (&ws, WORKSPACE));
    CK (cudaStreamCreate (&s));
    CKB (cublasLtCreate (&lt));
    CKB (cublasLtMatmulDescCreate (&desc, ct, CUDA_R_32F));
    CKB (cublasLtMatrixLayoutCreate (&la, ab, (uint64_t)m, (uint64_t)k, m));
    CKB (cublasLtMatrixLayoutCreate (&lb, ab, (uint64_t)k, (uint64_t)n, k));
    CKB (cublasLtMatrixLayoutCreate (&lc, CUDA_R_32F, (uint64_t)m, (uint64_t)n,
                                     m));
    CKB (cublasLtMatmulPreferenceCreate (&pref));
    CKB (cublasLtMatmulPreferenceSetAttribute (
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
        sizeof (ws_bytes)));
    CKB (cublasLtMatmulAlgoGetHeuristic (lt, desc, la, lb, lc, lc, pref, 1,
                                         &res, &nres));
    if (nres < 1) {
        printf ("{\"error\":\"no cuBLASLt algorithm\"}\n");
        return 5;
    }
    CK (cudaEventCreate (&e0));
    CK (cudaEventCreate (&e1));
    for (long i = -1; i < iters; i++) {
        if (i == 0)
            CK (cudaEventRecord (e0, s));
        CKB (cublasLtMatmul (lt, desc, &alpha, a, la, b, lb, &beta, c, lc, c,
                             lc, &res.algo, ws, WORKSPACE, s));
    }
    CK (cudaEventRecord (e1, s));
    CK (cudaEventSynchronize (e1));
    CK (cudaEventElapsedTime (&ms, e0, e1));
    double sec = ms / 1e3 / (double)iters;
    double tf = 2.0 * (double)m * (double)n * (double)k / sec / 1e12;
    printf ("{\"peer\":\"cublasLt\",\"device\":\"%s\",\"dtype\":\"%s\","
            "\"m\":%ld,\"n\":%ld,\"k\":%ld,\"iters\":%ld,"
            "\"gemm_seconds\":%.9g,\"gemm_tflops\":%.6g,\"cublaslt\":%zu}\n",
            prop.name, dt, m, n, k, iters, sec, tf, cublasLtGetVersion ());
    cublasLtMatmulPreferenceDestroy (pref);
    cublasLtMatrixLayoutDestroy (la);
    cublasLtMatrixLayoutDestroy (lb);
    cublasLtMatrixLayoutDestroy (lc);
    cublasLtMatmulDescDestroy (desc);
    cublasLtDestroy (lt);
    cudaFree (a);
    cudaFree (b);
    cudaFree (c);
    cudaFree (ws);
    return 0;
}
