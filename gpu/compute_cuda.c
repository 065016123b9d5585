/* compute_cuda.c - the "cuda" compute back-end: cuBLASLt + small kernels
 *
 * One device per instance (opts.device).  The host API is row-major; a
 * row-major X[r][c] is the column-major matrix X^T (c x r, ld c), so
 * y = x . w^T is computed as the column-major y^T = (w^T)^T-op . x^T with
 * M = n, N = m, K = k, and the bias (length n = rows of D) broadcast over
 * the columns of D, which is what cuBLASLt's BIAS epilogues do.
 *
 * dtypes: f32 (CUBLAS_COMPUTE_32F), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32),
 * f16 and bf16 (A and B converted on the device by kernels.cu, f32
 * accumulation with CUBLAS_COMPUTE_32F, f32 output).  Epilogues: BIAS,
 * RELU_BIAS, GELU_BIAS (cuBLASLt's GELU is the tanh approximation), and
 * BGRADB for the bias gradient in backward (a column-sum kernel when no
 * algorithm supports it); tanh and the activation gradients are kernels.
 *
 * Compute ops are queued on the instance stream; copies, alloc, loss and
 * sync wait for it.  mlp_infer runs chunks of rows through >= 2 streams
 * with pinned host staging buffers so that copy-in, compute and copy-out
 * of successive chunks overlap.  mlp_submit/mlp_wait do the same for one
 * call per slot: the caller's host buffers (pinned by host_alloc) copied
 * in and out on the slot's stream, an event after them, so the caller
 * reads the next chunk's rows while this one computes.
 *
 * Every CUDA or cuBLAS failure becomes "cuda device N (NAME): CALL: STATUS".
 */
#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/compute.h"
#include "gpu/kernels.h"

#define MAX_STREAMS 8
#define NPLANS 32
#define WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLASLt advice for Hopper */
#define CUDA_CHUNK_ROWS 8192

/* A cached matmul configuration (descriptor, layouts, algorithm). */
struct lt_key {
    cublasOperation_t ta, tb;
    uint64_t M, N, K;
    int64_t lda, ldb, ldd;
    cudaDataType_t at, bt, dt;
    cublasLtEpilogue_t epi;
    unsigned align;
};

struct lt_plan {
    bool used;
    struct lt_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

struct dc_compute {
    struct dc_compute_opts o;
    int dev;
    struct cudaDeviceProp prop;
    char desc[384];
    double peak;
    cublasLtHandle_t lt;
    cublasComputeType_t compute;
    cudaDataType_t abtype; /* CUDA_R_32F, CUDA_R_16F or CUDA_R_16BF */
    bool half;             /* f16 or bf16 inputs */
    int nstreams;
    cudaStream_t stream[MAX_STREAMS]; /* [0] is the instance stream */
    void *ws[MAX_STREAMS];
    void *scratch[3]; /* dtype conversion scratch on stream[0] */
    size_t scratch_bytes[3];
    double *d_acc;
    int *d_bad;
    struct lt_plan plans[NPLANS];
    int next_plan;
    cudaEvent_t done[DC_COMPUTE_SLOTS]; /* mlp_submit: after the copy out */
    bool inflight[DC_COMPUTE_SLOTS];
};

struct mlp_layer {
    int in, out;
    enum dc_act act;
    void *w;  /* [out][in], abtype */
    float *b; /* [out], f32 */
    void *bh; /* [out], abtype, half modes only */
};

struct stage {
    float *pin_in, *pin_out; /* pinned host staging */
    float *d_in, *d_out;     /* f32 device chunk in / out */
    void *d_inh;             /* converted input (half modes) */
    void *buf[2];            /* hidden activations (f32 sized) */
    float *tmp;              /* f32 pre-activation (half modes, tanh) */
};

struct dc_mlp_dev {
    int nlayers;
    struct mlp_layer *layers;
    int maxwidth;
    size_t chunk; /* rows the stages were sized for, 0 before first use */
    int nstages;
    struct stage st[MAX_STREAMS];
};

static int cuda_fail (struct dc_compute *c, dc_error_t *errp, const char *call,
                      cudaError_t e)
{
    errno = EIO;
    if (!c)
        return errprintf (errp, "cuda: %s: %s (%s)", call, cudaGetErrorName (e),
                          cudaGetErrorString (e));
    return errprintf (errp, "cuda device %d (%s): %s: %s (%s)", c->dev,
                      c->prop.name, call, cudaGetErrorName (e),
                      cudaGetErrorString (e));
}

static int blas_fail (struct dc_compute *c, dc_error_t *errp, const char *call,
                      cublasStatus_t s)
{
    errno = EIO;
    return errprintf (errp, "cuda device %d (%s): %s: %s", c->dev, c->prop.name,
                      call, cublasGetStatusName (s));
}

#define CK(call)                                                               \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess)                                                 \
            return cuda_fail (c, errp, #call, e_);                             \
    } while (0)

/* the name of the call without its arguments reads better in messages */
#define CKN(name, call)                                                        \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess)                                                 \
            return cuda_fail (c, errp, name, e_);                              \
    } while (0)

#define CKB(name, call)                                                        \
    do {                                                                       \
        cublasStatus_t s_ = (call);                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                       \
            return blas_fail (c, errp, name, s_);                              \
    } while (0)

static int einval (dc_error_t *errp, const char *op, const char *what)
{
    errno = EINVAL;
    return errprintf (errp, "cuda: %s: %s", op, what);
}

static int check_dims (dc_error_t *errp, const char *op, int m, int n, int k)
{
    if (m <= 0 || n <= 0 || k <= 0) {
        errno = EINVAL;
        return errprintf (errp, "cuda: %s: bad shape m=%d n=%d k=%d", op, m, n,
                          k);
    }
    return 0;
}

static int cuda_probe (dc_error_t *errp)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount (&n);

    if (e == cudaErrorInsufficientDriver || e == cudaErrorStubLibrary) {
        errprintf (errp, "no CUDA driver (cudaGetDeviceCount: error %d)",
                   (int)e);
        return 0;
    }
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        errprintf (errp,
                   "no CUDA device (cudaGetDeviceCount: error %d, "
                   "%d devices)",
                   (int)e, n);
        return 0;
    }
    if (e != cudaSuccess) {
        errprintf (errp, "CUDA not usable (cudaGetDeviceCount: error %d, %s)",
                   (int)e, cudaGetErrorName (e));
        return 0;
    }
    return 1;
}

/* Dense peak per SM per clock (flop) for the compute capabilities we know:
 * f32 FMA units, tf32 and f16/bf16 tensor cores. */
static double peak_per_sm_clock (int major, int minor, enum dc_dtype dt)
{
    static const struct {
        int major, minor;
        double f32, tf32, f16;
    } t[] = {
        {8, 0, 256, 1024, 2048}, /* A100 */
        {9, 0, 256, 2048, 4096}, /* H100, H200 */
    };
    for (size_t i = 0; i < sizeof (t) / sizeof (*t); i++)
        if (t[i].major == major && t[i].minor == minor)
            return dt == DC_DTYPE_F32    ? t[i].f32
                   : dt == DC_DTYPE_TF32 ? t[i].tf32
                                         : t[i].f16;
    return 0.0;
}

static void plan_drop (struct lt_plan *p)
{
    if (!p->used)
        return;
    if (p->la)
        cublasLtMatrixLayoutDestroy (p->la);
    if (p->lb)
        cublasLtMatrixLayoutDestroy (p->lb);
    if (p->ld)
        cublasLtMatrixLayoutDestroy (p->ld);
    if (p->desc)
        cublasLtMatmulDescDestroy (p->desc);
    memset (p, 0, sizeof (*p));
}

static void free_scratch (struct dc_compute *c)
{
    for (int i = 0; i < 3; i++) {
        cudaFree (c->scratch[i]);
        c->scratch[i] = NULL;
        c->scratch_bytes[i] = 0;
    }
}

static void cuda_destroy (struct dc_compute *c)
{
    if (!c)
        return;
    cudaSetDevice (c->dev);
    for (int i = 0; i < c->nstreams; i++)
        if (c->stream[i])
            cudaStreamSynchronize (c->stream[i]);
    for (int i = 0; i < NPLANS; i++)
        plan_drop (&c->plans[i]);
    free_scratch (c);
    for (int i = 0; i < DC_COMPUTE_SLOTS; i++)
        if (c->done[i])
            cudaEventDestroy (c->done[i]);
    cudaFree (c->d_acc);
    cudaFree (c->d_bad);
    for (int i = 0; i < c->nstreams; i++) {
        cudaFree (c->ws[i]);
        if (c->stream[i])
            cudaStreamDestroy (c->stream[i]);
    }
    if (c->lt)
        cublasLtDestroy (c->lt);
    free (c);
}

static int setup (struct dc_compute *c, dc_error_t *errp)
{
    int count = 0, clock_khz = 0;

    CKN ("cudaGetDeviceCount", cudaGetDeviceCount (&count));
    if (c->dev < 0 || c->dev >= count) {
        errno = ENODEV;
        return errprintf (errp, "cuda: device %d does not exist (%d visible)",
                          c->dev, count);
    }
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("cudaGetDeviceProperties", cudaGetDeviceProperties (&c->prop, c->dev));
    CKN ("cudaDeviceGetAttribute",
         cudaDeviceGetAttribute (&clock_khz, cudaDevAttrClockRate, c->dev));
    CKB ("cublasLtCreate", cublasLtCreate (&c->lt));
    for (int i = 0; i < c->nstreams; i++) {
        CKN ("cudaStreamCreateWithFlags",
             cudaStreamCreateWithFlags (&c->stream[i], cudaStreamNonBlocking));
        CKN ("cudaMalloc", cudaMalloc (&c->ws[i], WORKSPACE_BYTES));
    }
    CKN ("cudaMalloc", cudaMalloc ((void **)&c->d_acc, sizeof (double)));
    CKN ("cudaMalloc", cudaMalloc ((void **)&c->d_bad, sizeof (int)));
    c->peak = peak_per_sm_clock (c->prop.major, c->prop.minor, c->o.dtype) *
              c->prop.multiProcessorCount * clock_khz * 1e3 / 1e12;
    snprintf (c->desc, sizeof (c->desc),
              "cuda device %d: %s, %.1f GiB, sm_%d%d, %d SMs, cuBLASLt %zu, "
              "%s",
              c->dev, c->prop.name,
              (double)c->prop.totalGlobalMem / (1024.0 * 1024 * 1024),
              c->prop.major, c->prop.minor, c->prop.multiProcessorCount,
              cublasLtGetVersion (), dc_dtype_name (c->o.dtype));
    return 0;
}

static struct dc_compute *cuda_create (const struct dc_compute_opts *o,
                                       dc_error_t *errp)
{
    struct dc_compute *c;

    if (!(c = calloc (1, sizeof (*c)))) {
        errprintf (errp, "cuda: out of memory");
        return NULL;
    }
    if (o)
        c->o = *o;
    c->dev = c->o.device;
    snprintf (c->prop.name, sizeof (c->prop.name), "?");
    switch (c->o.dtype) {
    case DC_DTYPE_F32:
        c->compute = CUBLAS_COMPUTE_32F;
        c->abtype = CUDA_R_32F;
        break;
    case DC_DTYPE_TF32:
        c->compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        c->abtype = CUDA_R_32F;
        break;
    case DC_DTYPE_F16:
        c->compute = CUBLAS_COMPUTE_32F;
        c->abtype = CUDA_R_16F;
        c->half = true;
        break;
    case DC_DTYPE_BF16:
        c->compute = CUBLAS_COMPUTE_32F;
        c->abtype = CUDA_R_16BF;
        c->half = true;
        break;
    default:
        errprintf (errp, "cuda: unknown dtype %d", (int)c->o.dtype);
        free (c);
        errno = EINVAL;
        return NULL;
    }
    c->nstreams = c->o.streams > 0 ? c->o.streams : 2;
    if (c->nstreams < 2)
        c->nstreams = 2;
    if (c->nstreams > MAX_STREAMS)
        c->nstreams = MAX_STREAMS;
    if (setup (c, errp) < 0) {
        int e = errno;
        cuda_destroy (c);
        errno = e;
        return NULL;
    }
    return c;
}

static size_t elsize (cudaDataType_t t)
{
    return t == CUDA_R_32F ? 4 : 2;
}

static unsigned align_of (const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && (a & (al - 1)))
        al >>= 1;
    return al;
}

/* One cuBLASLt matmul, column-major: D[M][N] (ld ldd) = op(A) . op(B) with
 * the epilogue; bias is the bias (or bias gradient) vector.  Returns 0,
 * -1 on failure, -2 when no algorithm supports this configuration. */
struct mm {
    cublasOperation_t ta, tb;
    int M, N, K;
    const void *A;
    int lda;
    cudaDataType_t at;
    const void *B;
    int ldb;
    cudaDataType_t bt;
    void *D;
    int ldd;
    cudaDataType_t dt;
    cublasLtEpilogue_t epi;
    void *bias;
};

static int plan_make (struct dc_compute *c, struct lt_plan *p,
                      const struct lt_key *k, void *bias, dc_error_t *errp)
{
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    size_t wsb = WORKSPACE_BYTES;
    uint32_t al = k->align;
    cublasStatus_t s;

    memset (p, 0, sizeof (*p));
    p->key = *k;
    CKB ("cublasLtMatmulDescCreate",
         cublasLtMatmulDescCreate (&p->desc, c->compute, CUDA_R_32F));
    p->used = true; /* from here plan_drop cleans up */
    CKB ("cublasLtMatrixLayoutCreate",
         cublasLtMatrixLayoutCreate (
             &p->la, k->at, k->ta == CUBLAS_OP_N ? k->M : k->K,
             k->ta == CUBLAS_OP_N ? k->K : k->M, k->lda));
    CKB ("cublasLtMatrixLayoutCreate",
         cublasLtMatrixLayoutCreate (
             &p->lb, k->bt, k->tb == CUBLAS_OP_N ? k->K : k->N,
             k->tb == CUBLAS_OP_N ? k->N : k->K, k->ldb));
    CKB ("cublasLtMatrixLayoutCreate",
         cublasLtMatrixLayoutCreate (&p->ld, k->dt, k->M, k->N, k->ldd));
    CKB ("cublasLtMatmulDescSetAttribute",
         cublasLtMatmulDescSetAttribute (p->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                         &k->ta, sizeof (k->ta)));
    CKB ("cublasLtMatmulDescSetAttribute",
         cublasLtMatmulDescSetAttribute (p->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                         &k->tb, sizeof (k->tb)));
    CKB ("cublasLtMatmulDescSetAttribute",
         cublasLtMatmulDescSetAttribute (p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                         &k->epi, sizeof (k->epi)));
    if (bias)
        CKB ("cublasLtMatmulDescSetAttribute",
             cublasLtMatmulDescSetAttribute (p->desc,
                                             CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                             &bias, sizeof (bias)));
    CKB ("cublasLtMatmulPreferenceCreate",
         cublasLtMatmulPreferenceCreate (&pref));
    s = cublasLtMatmulPreferenceSetAttribute (
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof (wsb));
    const cublasLtMatmulPreferenceAttributes_t alattr[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
    };
    for (size_t i = 0; s == CUBLAS_STATUS_SUCCESS && i < 4; i++)
        s = cublasLtMatmulPreferenceSetAttribute (pref, alattr[i], &al,
                                                  sizeof (al));
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic (c->lt, p->desc, p->la, p->lb, p->ld,
                                            p->ld, pref, 1, &res, &nres);
    cublasLtMatmulPreferenceDestroy (pref);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED ||
        (s == CUBLAS_STATUS_SUCCESS && nres == 0)) {
        blas_fail (c, errp, "cublasLtMatmulAlgoGetHeuristic",
                   CUBLAS_STATUS_NOT_SUPPORTED);
        return -2;
    }
    CKB ("cublasLtMatmulAlgoGetHeuristic", s);
    p->algo = res.algo;
    return 0;
}

static int lt_matmul (struct dc_compute *c, const struct mm *m, int sidx,
                      dc_error_t *errp)
{
    const float alpha = 1.0f, beta = 0.0f;
    struct lt_key k;
    struct lt_plan *p = NULL;
    unsigned al;
    int rc;

    memset (&k, 0, sizeof (k)); /* compared with memcmp */
    k.ta = m->ta;
    k.tb = m->tb;
    k.M = (uint64_t)m->M;
    k.N = (uint64_t)m->N;
    k.K = (uint64_t)m->K;
    k.lda = m->lda;
    k.ldb = m->ldb;
    k.ldd = m->ldd;
    k.at = m->at;
    k.bt = m->bt;
    k.dt = m->dt;
    k.epi = m->epi;
    al = align_of (m->A);
    if (align_of (m->B) < al)
        al = align_of (m->B);
    if (align_of (m->D) < al)
        al = align_of (m->D);
    if (m->bias && align_of (m->bias) < al)
        al = align_of (m->bias);
    k.align = al;
    for (int i = 0; i < NPLANS; i++)
        if (c->plans[i].used && !memcmp (&c->plans[i].key, &k, sizeof (k))) {
            p = &c->plans[i];
            break;
        }
    if (!p) {
        p = &c->plans[c->next_plan];
        c->next_plan = (c->next_plan + 1) % NPLANS;
        plan_drop (p);
        if ((rc = plan_make (c, p, &k, m->bias, errp)) < 0) {
            plan_drop (p);
            return rc;
        }
    } else if (m->bias) {
        CKB ("cublasLtMatmulDescSetAttribute",
             cublasLtMatmulDescSetAttribute (p->desc,
                                             CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                             &m->bias, sizeof (m->bias)));
    }
    cublasStatus_t s = cublasLtMatmul (
        c->lt, p->desc, &alpha, m->A, p->la, m->B, p->lb, &beta, m->D, p->ld,
        m->D, p->ld, &p->algo, c->ws[sidx], WORKSPACE_BYTES, c->stream[sidx]);
    if (s != CUBLAS_STATUS_SUCCESS) {
        blas_fail (c, errp, "cublasLtMatmul", s);
        if (s == CUBLAS_STATUS_NOT_SUPPORTED) {
            plan_drop (p);
            return -2;
        }
        return -1;
    }
    return 0;
}

/* A scratch buffer of at least `bytes` on the device (conversions). */
static void *scratch (struct dc_compute *c, int i, size_t bytes,
                      dc_error_t *errp)
{
    if (c->scratch_bytes[i] >= bytes)
        return c->scratch[i];
    cudaFree (c->scratch[i]); /* synchronizes: earlier users are done */
    c->scratch[i] = NULL;
    c->scratch_bytes[i] = 0;
    cudaError_t e = cudaMalloc (&c->scratch[i], bytes);
    if (e != cudaSuccess) {
        cuda_fail (c, errp, "cudaMalloc", e);
        return NULL;
    }
    c->scratch_bytes[i] = bytes;
    return c->scratch[i];
}

/* src f32 as the instance's A/B type: itself, or converted into scratch i */
static const void *as_ab (struct dc_compute *c, const float *src, size_t n,
                          int i, dc_error_t *errp)
{
    void *d;
    cudaError_t e;

    if (!c->half)
        return src;
    if (!(d = scratch (c, i, n * 2, errp)))
        return NULL;
    if ((e = dk_to_half (d, src, n, c->abtype == CUDA_R_16BF, c->stream[0])) !=
        cudaSuccess) {
        cuda_fail (c, errp, "dk_to_half", e);
        return NULL;
    }
    return d;
}

static void *cuda_alloc (struct dc_compute *c, size_t bytes, dc_error_t *errp)
{
    void *p = NULL;
    cudaError_t e;

    if (!c || bytes == 0) {
        einval (errp, "alloc", c ? "zero bytes" : "no instance");
        return NULL;
    }
    cudaSetDevice (c->dev);
    if ((e = cudaMalloc (&p, bytes)) != cudaSuccess) {
        cuda_fail (c, errp, "cudaMalloc", e);
        return NULL;
    }
    if ((e = cudaMemsetAsync (p, 0, bytes, c->stream[0])) != cudaSuccess ||
        (e = cudaStreamSynchronize (c->stream[0])) != cudaSuccess) {
        cudaFree (p);
        cuda_fail (c, errp, "cudaMemsetAsync", e);
        return NULL;
    }
    return p;
}

static void cuda_free (struct dc_compute *c, void *p)
{
    if (c && p) {
        cudaSetDevice (c->dev);
        cudaFree (p);
    }
}

static int copy (struct dc_compute *c, void *dst, const void *src, size_t bytes,
                 enum cudaMemcpyKind kind, dc_error_t *errp)
{
    if (!c || (bytes && (!dst || !src)))
        return einval (errp, "copy", "NULL argument");
    if (!bytes)
        return 0;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("cudaMemcpyAsync",
         cudaMemcpyAsync (dst, src, bytes, kind, c->stream[0]));
    CKN ("cudaStreamSynchronize", cudaStreamSynchronize (c->stream[0]));
    return 0;
}

static int cuda_copy_in (struct dc_compute *c, void *dst, const void *src,
                         size_t bytes, dc_error_t *errp)
{
    return copy (c, dst, src, bytes, cudaMemcpyHostToDevice, errp);
}

static int cuda_copy_out (struct dc_compute *c, void *dst, const void *src,
                          size_t bytes, dc_error_t *errp)
{
    return copy (c, dst, src, bytes, cudaMemcpyDeviceToHost, errp);
}

static int cuda_sync (struct dc_compute *c, dc_error_t *errp)
{
    if (!c)
        return einval (errp, "sync", "no instance");
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    for (int i = 0; i < c->nstreams; i++)
        CKN ("cudaStreamSynchronize", cudaStreamSynchronize (c->stream[i]));
    return 0;
}

static int check_act (dc_error_t *errp, const char *op, enum dc_act act)
{
    if ((unsigned)act > DC_ACT_TANH) {
        errno = EINVAL;
        return errprintf (errp, "cuda: %s: unknown activation %d", op,
                          (int)act);
    }
    return 0;
}

/* Epilogue fusing the bias (when given) and act (relu, gelu); tanh and
 * none get the bias alone. */
static cublasLtEpilogue_t fwd_epilogue (enum dc_act act, bool bias)
{
    switch (act) {
    case DC_ACT_RELU:
        return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case DC_ACT_GELU:
        return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default:
        break;
    }
    return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

static int cuda_linear_fwd (struct dc_compute *c, int m, int n, int k,
                            const float *x, const float *w, const float *b,
                            enum dc_act act, float *y, float *z,
                            dc_error_t *errp)
{
    const void *xa, *wa;
    size_t mn = (size_t)m * (size_t)n;

    if (!c || !x || !w || !y)
        return einval (errp, "linear_fwd", "NULL argument");
    if (check_dims (errp, "linear_fwd", m, n, k) < 0 ||
        check_act (errp, "linear_fwd", act) < 0)
        return -1;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    if (!(xa = as_ab (c, x, (size_t)m * k, 0, errp)) ||
        !(wa = as_ab (c, w, (size_t)n * k, 1, errp)))
        return -1;
    struct mm mm = {
        .ta = CUBLAS_OP_T,
        .tb = CUBLAS_OP_N,
        .M = n,
        .N = m,
        .K = k,
        .A = wa,
        .lda = k,
        .at = c->abtype,
        .B = xa,
        .ldb = k,
        .bt = c->abtype,
        .D = z ? z : y,
        .ldd = n,
        .dt = CUDA_R_32F,
        .epi = z ? fwd_epilogue (DC_ACT_NONE, b != NULL)
                 : fwd_epilogue (act, b != NULL),
        .bias = (void *)b,
    };
    if (lt_matmul (c, &mm, 0, errp) < 0)
        return -1;
    if (z) {
        if (act != DC_ACT_NONE)
            CKN ("dk_act_fwd", dk_act_fwd (act, z, y, mn, c->stream[0]));
        else
            CKN ("cudaMemcpyAsync",
                 cudaMemcpyAsync (y, z, mn * sizeof (float),
                                  cudaMemcpyDeviceToDevice, c->stream[0]));
    } else if (act == DC_ACT_TANH) {
        CKN ("dk_act_fwd", dk_act_fwd (act, y, y, mn, c->stream[0]));
    }
    return 0;
}

static int cuda_linear_bwd (struct dc_compute *c, int m, int n, int k,
                            const float *x, const float *w, const float *z,
                            enum dc_act act, float *dy, float *dx, float *dw,
                            float *db, dc_error_t *errp)
{
    const void *xa, *wa = NULL, *dza;
    int rc;

    if (!c || !x || !w || !dy || !dw || !db)
        return einval (errp, "linear_bwd", "NULL argument");
    if (check_dims (errp, "linear_bwd", m, n, k) < 0 ||
        check_act (errp, "linear_bwd", act) < 0)
        return -1;
    if (act != DC_ACT_NONE && !z)
        return einval (errp, "linear_bwd",
                       "the pre-activation z is needed for this activation");
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    /* dz = dy * act'(z), in place */
    if (act != DC_ACT_NONE)
        CKN ("dk_act_bwd",
             dk_act_bwd (act, z, dy, (size_t)m * n, c->stream[0]));
    if (!(dza = as_ab (c, dy, (size_t)m * n, 0, errp)) ||
        !(xa = as_ab (c, x, (size_t)m * k, 1, errp)) ||
        (dx && !(wa = as_ab (c, w, (size_t)n * k, 2, errp))))
        return -1;
    /* dx[m][k] = dz . w: column-major dx^T (k x m) = w^T (k x n) . dz^T */
    if (dx) {
        struct mm mm = {
            .ta = CUBLAS_OP_N,
            .tb = CUBLAS_OP_N,
            .M = k,
            .N = m,
            .K = n,
            .A = wa,
            .lda = k,
            .at = c->abtype,
            .B = dza,
            .ldb = n,
            .bt = c->abtype,
            .D = dx,
            .ldd = k,
            .dt = CUDA_R_32F,
            .epi = CUBLASLT_EPILOGUE_DEFAULT,
        };
        if (lt_matmul (c, &mm, 0, errp) < 0)
            return -1;
    }
    /* dw[n][k] = dz^T . x: column-major dw^T (k x n) = x^T (k x m) . dz
     * (m x n, dz^T transposed); BGRADB sums op(B) = dz over m into db */
    struct mm mm = {
        .ta = CUBLAS_OP_N,
        .tb = CUBLAS_OP_T,
        .M = k,
        .N = n,
        .K = m,
        .A = xa,
        .lda = k,
        .at = c->abtype,
        .B = dza,
        .ldb = n,
        .bt = c->abtype,
        .D = dw,
        .ldd = k,
        .dt = CUDA_R_32F,
        .epi = CUBLASLT_EPILOGUE_BGRADB,
        .bias = db,
    };
    rc = lt_matmul (c, &mm, 0, errp);
    if (rc == -2) { /* no BGRADB algorithm here: plain matmul + kernel */
        mm.epi = CUBLASLT_EPILOGUE_DEFAULT;
        mm.bias = NULL;
        if (lt_matmul (c, &mm, 0, errp) < 0)
            return -1;
        CKN ("dk_colsum", dk_colsum (dy, db, m, n, c->stream[0]));
    } else if (rc < 0) {
        return -1;
    }
    return 0;
}

static int cuda_loss (struct dc_compute *c, enum dc_loss kind, int m, int n,
                      const float *y, const void *target, size_t scale_rows,
                      float *dy, double *loss_sum, dc_error_t *errp)
{
    int bad = INT_MAX;
    double acc = 0.0;
    cudaStream_t s;

    if (!c || !y || !target || !dy || !loss_sum)
        return einval (errp, "loss", "NULL argument");
    if (check_dims (errp, "loss", m, n, 1) < 0)
        return -1;
    if (scale_rows == 0)
        return einval (errp, "loss", "scale_rows is 0");
    if (kind != DC_LOSS_MSE && kind != DC_LOSS_XENT) {
        errno = EINVAL;
        return errprintf (errp, "cuda: loss: unknown loss %d", (int)kind);
    }
    s = c->stream[0];
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("cudaMemcpyAsync", cudaMemcpyAsync (c->d_acc, &acc, sizeof (acc),
                                             cudaMemcpyHostToDevice, s));
    CKN ("cudaMemcpyAsync", cudaMemcpyAsync (c->d_bad, &bad, sizeof (bad),
                                             cudaMemcpyHostToDevice, s));
    CKN ("dk_loss", dk_loss (kind == DC_LOSS_XENT, y, target, m, n,
                             (double)scale_rows, dy, c->d_acc, c->d_bad, s));
    CKN ("cudaMemcpyAsync", cudaMemcpyAsync (&acc, c->d_acc, sizeof (acc),
                                             cudaMemcpyDeviceToHost, s));
    CKN ("cudaMemcpyAsync", cudaMemcpyAsync (&bad, c->d_bad, sizeof (bad),
                                             cudaMemcpyDeviceToHost, s));
    CKN ("cudaStreamSynchronize", cudaStreamSynchronize (s));
    if (bad != INT_MAX) {
        int64_t lab = -1;
        const int64_t *t = target;
        cudaMemcpy (&lab, t + bad, sizeof (lab), cudaMemcpyDeviceToHost);
        errno = EINVAL;
        return errprintf (errp,
                          "cuda: loss: label %lld of row %d is outside "
                          "[0, %d)",
                          (long long)lab, bad, n);
    }
    *loss_sum = acc;
    return 0;
}

static int cuda_sgd (struct dc_compute *c, float *w, const float *g, float *v,
                     size_t n, float lr, float momentum, dc_error_t *errp)
{
    if (!c || !w || !g || (momentum != 0.0f && !v))
        return einval (errp, "sgd", "NULL argument");
    if (n == 0)
        return 0;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("dk_sgd", dk_sgd (w, g, momentum != 0.0f ? v : NULL, n, lr, momentum,
                           c->stream[0]));
    return 0;
}

static int cuda_adam (struct dc_compute *c, float *w, const float *g, float *m,
                      float *v, size_t n, float lr, float beta1, float beta2,
                      float eps, int64_t step, dc_error_t *errp)
{
    if (!c || !w || !g || !m || !v)
        return einval (errp, "adam", "NULL argument");
    if (step < 1)
        return einval (errp, "adam", "step counts from 1");
    if (n == 0)
        return 0;
    double bc1 = 1.0 - pow ((double)beta1, (double)step);
    double bc2 = 1.0 - pow ((double)beta2, (double)step);
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("dk_adam",
         dk_adam (w, g, m, v, n, (float)(lr / bc1), (float)sqrt (bc2), beta1,
                  beta2, eps, c->stream[0]));
    return 0;
}

static void stages_free (struct dc_mlp_dev *net)
{
    for (int s = 0; s < net->nstages; s++) {
        struct stage *st = &net->st[s];
        cudaFreeHost (st->pin_in);
        cudaFreeHost (st->pin_out);
        cudaFree (st->d_in);
        cudaFree (st->d_out);
        cudaFree (st->d_inh);
        cudaFree (st->buf[0]);
        cudaFree (st->buf[1]);
        cudaFree (st->tmp);
        memset (st, 0, sizeof (*st));
    }
    net->nstages = 0;
    net->chunk = 0;
}

static void cuda_mlp_unload (struct dc_compute *c, struct dc_mlp_dev *net)
{
    if (!net)
        return;
    if (c) {
        cudaSetDevice (c->dev);
        for (int i = 0; i < c->nstreams; i++)
            cudaStreamSynchronize (c->stream[i]);
        for (int i = 0; i < DC_COMPUTE_SLOTS; i++)
            c->inflight[i] = false;
    }
    stages_free (net);
    for (int i = 0; i < net->nlayers; i++) {
        cudaFree (net->layers[i].w);
        cudaFree (net->layers[i].b);
        cudaFree (net->layers[i].bh);
    }
    free (net->layers);
    free (net);
}

/* host f32 to a new device buffer of type t (converted on the device) */
static void *upload (struct dc_compute *c, const float *h, size_t n,
                     cudaDataType_t t, dc_error_t *errp)
{
    float *d32 = NULL;
    void *d = NULL;
    cudaError_t e;

    if ((e = cudaMalloc ((void **)&d32, n * sizeof (float))) != cudaSuccess) {
        cuda_fail (c, errp, "cudaMalloc", e);
        return NULL;
    }
    if ((e = cudaMemcpyAsync (d32, h, n * sizeof (float),
                              cudaMemcpyHostToDevice, c->stream[0])) !=
        cudaSuccess) {
        cuda_fail (c, errp, "cudaMemcpyAsync", e);
        goto fail;
    }
    if (t == CUDA_R_32F) {
        if ((e = cudaStreamSynchronize (c->stream[0])) != cudaSuccess) {
            cuda_fail (c, errp, "cudaStreamSynchronize", e);
            goto fail;
        }
        return d32;
    }
    if ((e = cudaMalloc (&d, n * 2)) != cudaSuccess) {
        cuda_fail (c, errp, "cudaMalloc", e);
        goto fail;
    }
    if ((e = dk_to_half (d, d32, n, t == CUDA_R_16BF, c->stream[0])) !=
            cudaSuccess ||
        (e = cudaStreamSynchronize (c->stream[0])) != cudaSuccess) {
        cuda_fail (c, errp, "dk_to_half", e);
        goto fail;
    }
    cudaFree (d32);
    return d;
fail:
    cudaFree (d32);
    cudaFree (d);
    return NULL;
}

static struct dc_mlp_dev *cuda_mlp_load (struct dc_compute *c,
                                         const struct dc_mlp_view *view,
                                         dc_error_t *errp)
{
    struct dc_mlp_dev *net;

    if (!c || !view || !view->layers || view->nlayers <= 0) {
        einval (errp, "mlp_load", "no layers");
        return NULL;
    }
    for (int i = 0; i < view->nlayers; i++) {
        const struct dc_layer_view *l = &view->layers[i];
        if (l->in <= 0 || l->out <= 0 || !l->w || !l->b ||
            (unsigned)l->act > DC_ACT_TANH) {
            errno = EINVAL;
            errprintf (errp,
                       "cuda: mlp_load: layer %d: bad shape or "
                       "missing tensor",
                       i);
            return NULL;
        }
        if (i > 0 && l->in != view->layers[i - 1].out) {
            errno = EINVAL;
            errprintf (errp,
                       "cuda: mlp_load: layer %d has %d inputs but "
                       "layer %d has %d outputs",
                       i, l->in, i - 1, view->layers[i - 1].out);
            return NULL;
        }
    }
    if (cudaSetDevice (c->dev) != cudaSuccess) {
        cuda_fail (c, errp, "cudaSetDevice", cudaGetLastError ());
        return NULL;
    }
    if (!(net = calloc (1, sizeof (*net))) ||
        !(net->layers =
              calloc ((size_t)view->nlayers, sizeof (*net->layers)))) {
        free (net);
        errno = ENOMEM;
        errprintf (errp, "cuda: mlp_load: out of memory");
        return NULL;
    }
    net->nlayers = view->nlayers;
    for (int i = 0; i < view->nlayers; i++) {
        const struct dc_layer_view *l = &view->layers[i];
        struct mlp_layer *d = &net->layers[i];
        d->in = l->in;
        d->out = l->out;
        d->act = l->act;
        if (!(d->w =
                  upload (c, l->w, (size_t)l->out * l->in, c->abtype, errp)) ||
            !(d->b = upload (c, l->b, (size_t)l->out, CUDA_R_32F, errp)) ||
            (c->half &&
             !(d->bh = upload (c, l->b, (size_t)l->out, c->abtype, errp)))) {
            cuda_mlp_unload (c, net);
            return NULL;
        }
        if (i < view->nlayers - 1 && l->out > net->maxwidth)
            net->maxwidth = l->out;
    }
    return net;
}

/* Size the per-stream staging for `chunk` rows. */
static int stages_make (struct dc_compute *c, struct dc_mlp_dev *net,
                        size_t chunk, dc_error_t *errp)
{
    size_t in = (size_t)net->layers[0].in;
    size_t out = (size_t)net->layers[net->nlayers - 1].out;
    size_t wid = net->maxwidth > 0 ? (size_t)net->maxwidth : 1;

    stages_free (net);
    net->nstages = c->nstreams;
    net->chunk = chunk;
    for (int s = 0; s < net->nstages; s++) {
        struct stage *st = &net->st[s];
        CKN ("cudaHostAlloc",
             cudaHostAlloc ((void **)&st->pin_in, chunk * in * 4,
                            cudaHostAllocDefault));
        CKN ("cudaHostAlloc",
             cudaHostAlloc ((void **)&st->pin_out, chunk * out * 4,
                            cudaHostAllocDefault));
        CKN ("cudaMalloc", cudaMalloc ((void **)&st->d_in, chunk * in * 4));
        CKN ("cudaMalloc", cudaMalloc ((void **)&st->d_out, chunk * out * 4));
        if (c->half)
            CKN ("cudaMalloc", cudaMalloc (&st->d_inh, chunk * in * 2));
        if (net->nlayers > 1) {
            CKN ("cudaMalloc", cudaMalloc (&st->buf[0], chunk * wid * 4));
            CKN ("cudaMalloc", cudaMalloc (&st->buf[1], chunk * wid * 4));
            if (c->half)
                CKN ("cudaMalloc",
                     cudaMalloc ((void **)&st->tmp, chunk * wid * 4));
        }
    }
    return 0;
}

/* Queue one chunk of mc rows from host hin (st->pin_in or a caller's
 * buffer) on stream s, its results to host hout. */
static int run_chunk (struct dc_compute *c, struct dc_mlp_dev *net, int s,
                      int mc, const float *hin, float *hout, dc_error_t *errp)
{
    struct stage *st = &net->st[s];
    cudaStream_t str = c->stream[s];
    int in = net->layers[0].in, out = net->layers[net->nlayers - 1].out;
    int bf16 = c->abtype == CUDA_R_16BF;
    const void *src = st->d_in;

    CKN ("cudaMemcpyAsync", cudaMemcpyAsync (st->d_in, hin, (size_t)mc * in * 4,
                                             cudaMemcpyHostToDevice, str));
    if (c->half) {
        CKN ("dk_to_half",
             dk_to_half (st->d_inh, st->d_in, (size_t)mc * in, bf16, str));
        src = st->d_inh;
    }
    for (int i = 0; i < net->nlayers; i++) {
        const struct mlp_layer *l = &net->layers[i];
        bool last = i == net->nlayers - 1;
        bool half_out = c->half && !last;
        size_t cnt = (size_t)mc * l->out;
        struct mm mm = {
            .ta = CUBLAS_OP_T,
            .tb = CUBLAS_OP_N,
            .M = l->out,
            .N = mc,
            .K = l->in,
            .A = l->w,
            .lda = l->in,
            .at = c->abtype,
            .B = src,
            .ldb = l->in,
            .bt = c->abtype,
            .ldd = l->out,
            .epi = fwd_epilogue (l->act, true),
        };
        if (last) {
            mm.D = st->d_out;
            mm.dt = CUDA_R_32F;
            mm.bias = l->b;
        } else if (half_out && l->act == DC_ACT_TANH) {
            mm.D = st->tmp; /* f32, then tanh into the half buffer */
            mm.dt = CUDA_R_32F;
            mm.bias = l->b;
        } else if (half_out) {
            mm.D = st->buf[i % 2];
            mm.dt = c->abtype;
            mm.bias = l->bh;
        } else {
            mm.D = st->buf[i % 2];
            mm.dt = CUDA_R_32F;
            mm.bias = l->b;
        }
        if (lt_matmul (c, &mm, s, errp) < 0)
            return -1;
        if (l->act == DC_ACT_TANH) {
            if (half_out)
                CKN ("dk_act_to_half",
                     dk_act_to_half (l->act, st->tmp, st->buf[i % 2], cnt, bf16,
                                     str));
            else
                CKN ("dk_act_fwd", dk_act_fwd (l->act, mm.D, mm.D, cnt, str));
        }
        src = last ? NULL : st->buf[i % 2];
    }
    CKN ("cudaMemcpyAsync",
         cudaMemcpyAsync (hout, st->d_out, (size_t)mc * out * 4,
                          cudaMemcpyDeviceToHost, str));
    return 0;
}

/* Rows per chunk of a call of `rows` rows (mlp_infer and mlp_submit cut
 * alike, so their bytes are the same). */
static size_t infer_chunk (const struct dc_compute *c, size_t rows)
{
    size_t chunk = c->o.chunk_rows ? c->o.chunk_rows : CUDA_CHUNK_ROWS;

    if (chunk > (size_t)INT_MAX / 2)
        chunk = (size_t)INT_MAX / 2;
    /* fewer rows than a chunk per stream: split them over the streams */
    if (rows < chunk * (size_t)c->nstreams)
        chunk = (rows + (size_t)c->nstreams - 1) / (size_t)c->nstreams;
    return chunk;
}

static int cuda_mlp_infer (struct dc_compute *c, struct dc_mlp_dev *net,
                           const float *x, size_t rows, size_t row0, float *y,
                           dc_error_t *errp)
{
    size_t chunk, in, out;

    (void)row0; /* cuBLAS: the same bytes for the same chunking */
    size_t pend_r0[MAX_STREAMS], pend_n[MAX_STREAMS];
    int ns, k = 0;

    if (!c || !net || (rows && (!x || !y)))
        return einval (errp, "mlp_infer", "NULL argument");
    if (rows == 0)
        return 0;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    in = (size_t)net->layers[0].in;
    out = (size_t)net->layers[net->nlayers - 1].out;
    chunk = infer_chunk (c, rows);
    if (chunk > net->chunk || chunk * 4 < net->chunk)
        if (stages_make (c, net, chunk, errp) < 0) {
            int e = errno;
            stages_free (net);
            errno = e;
            return -1;
        }
    chunk = chunk < net->chunk ? chunk : net->chunk;
    ns = net->nstages;
    for (int s = 0; s < ns; s++)
        pend_n[s] = 0;
    /* chunk j goes to stream j % ns; before reusing a stream's staging,
     * wait for its previous chunk and hand that chunk's rows to y */
    for (size_t r0 = 0; r0 < rows; r0 += chunk, k = (k + 1) % ns) {
        size_t mc = rows - r0 < chunk ? rows - r0 : chunk;
        struct stage *st = &net->st[k];
        if (pend_n[k]) {
            CKN ("cudaStreamSynchronize", cudaStreamSynchronize (c->stream[k]));
            memcpy (y + pend_r0[k] * out, st->pin_out,
                    pend_n[k] * out * sizeof (float));
            pend_n[k] = 0;
        }
        memcpy (st->pin_in, x + r0 * in, mc * in * sizeof (float));
        if (run_chunk (c, net, k, (int)mc, st->pin_in, st->pin_out, errp) < 0) {
            cuda_sync (c, NULL);
            return -1;
        }
        pend_r0[k] = r0;
        pend_n[k] = mc;
    }
    /* drain in submission order */
    for (int j = 0; j < ns; j++, k = (k + 1) % ns) {
        if (!pend_n[k])
            continue;
        CKN ("cudaStreamSynchronize", cudaStreamSynchronize (c->stream[k]));
        memcpy (y + pend_r0[k] * out, net->st[k].pin_out,
                pend_n[k] * out * sizeof (float));
        pend_n[k] = 0;
    }
    return 0;
}

static void *cuda_host_alloc (struct dc_compute *c, size_t bytes,
                              dc_error_t *errp)
{
    void *p = NULL;
    cudaError_t e;

    if (!c || bytes == 0) {
        einval (errp, "host_alloc", c ? "zero bytes" : "no instance");
        return NULL;
    }
    /* portable: pinned for every device's context, page-aligned */
    if ((e = cudaHostAlloc (&p, bytes, cudaHostAllocPortable)) != cudaSuccess) {
        cuda_fail (c, errp, "cudaHostAlloc", e);
        return NULL;
    }
    return p;
}

static void cuda_host_free (struct dc_compute *c, void *p)
{
    (void)c;
    if (p)
        cudaFreeHost (p);
}

static int check_slot (struct dc_compute *c, int slot, const char *op,
                       dc_error_t *errp)
{
    if (slot < 0 || slot >= DC_COMPUTE_SLOTS || slot >= c->nstreams) {
        errno = EINVAL;
        return errprintf (errp, "cuda: %s: slot %d out of range", op, slot);
    }
    return 0;
}

/* mlp_infer's chunks of x, queued on the slot's stream (each stream has
 * its own staging on the device), copied from x and into y directly: at
 * full speed when they are pinned (host_alloc). */
static int cuda_mlp_submit (struct dc_compute *c, struct dc_mlp_dev *net,
                            int slot, const float *x, size_t rows, size_t row0,
                            float *y, dc_error_t *errp)
{
    size_t chunk, in, out;

    (void)row0; /* cuBLAS: the same bytes for the same chunking */
    if (!c || !net || (rows && (!x || !y)))
        return einval (errp, "mlp_submit", "NULL argument");
    if (check_slot (c, slot, "mlp_submit", errp) < 0)
        return -1;
    if (c->inflight[slot])
        return einval (errp, "mlp_submit", "slot still in flight");
    if (rows == 0)
        return 0;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    in = (size_t)net->layers[0].in;
    out = (size_t)net->layers[net->nlayers - 1].out;
    chunk = infer_chunk (c, rows);
    if (chunk > net->chunk) { /* the other slot may use the staging */
        if (cuda_sync (c, errp) < 0)
            return -1;
        if (stages_make (c, net, chunk, errp) < 0) {
            int e = errno;
            stages_free (net);
            errno = e;
            return -1;
        }
    }
    if (!c->done[slot])
        CKN ("cudaEventCreateWithFlags",
             cudaEventCreateWithFlags (&c->done[slot], cudaEventDisableTiming));
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t mc = rows - r0 < chunk ? rows - r0 : chunk;
        if (run_chunk (c, net, slot, (int)mc, x + r0 * in, y + r0 * out, errp) <
            0) {
            cudaStreamSynchronize (c->stream[slot]);
            return -1;
        }
    }
    CKN ("cudaEventRecord", cudaEventRecord (c->done[slot], c->stream[slot]));
    c->inflight[slot] = true;
    return 0;
}

static int cuda_mlp_wait (struct dc_compute *c, struct dc_mlp_dev *net,
                          int slot, dc_error_t *errp)
{
    if (!c || !net)
        return einval (errp, "mlp_wait", "NULL argument");
    if (check_slot (c, slot, "mlp_wait", errp) < 0)
        return -1;
    if (!c->inflight[slot])
        return 0;
    c->inflight[slot] = false;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    CKN ("cudaEventSynchronize", cudaEventSynchronize (c->done[slot]));
    return 0;
}

static int cuda_gemm (struct dc_compute *c, int m, int n, int k, const float *a,
                      const float *b, float *cc, dc_error_t *errp)
{
    const void *aa, *ba;

    if (!c || !a || !b || !cc)
        return einval (errp, "gemm", "NULL argument");
    if (check_dims (errp, "gemm", m, n, k) < 0)
        return -1;
    CKN ("cudaSetDevice", cudaSetDevice (c->dev));
    if (!(aa = as_ab (c, a, (size_t)m * k, 0, errp)) ||
        !(ba = as_ab (c, b, (size_t)k * n, 1, errp)))
        return -1;
    /* column-major C^T (n x m) = B^T (n x k) . A^T (k x m) */
    struct mm mm = {
        .ta = CUBLAS_OP_N,
        .tb = CUBLAS_OP_N,
        .M = n,
        .N = m,
        .K = k,
        .A = ba,
        .lda = n,
        .at = c->abtype,
        .B = aa,
        .ldb = k,
        .bt = c->abtype,
        .D = cc,
        .ldd = n,
        .dt = CUDA_R_32F,
        .epi = CUBLASLT_EPILOGUE_DEFAULT,
    };
    return lt_matmul (c, &mm, 0, errp) < 0 ? -1 : 0;
}

static const char *cuda_describe (struct dc_compute *c)
{
    return c ? c->desc : "cuda";
}

static double cuda_peak (struct dc_compute *c)
{
    return c ? c->peak : 0.0;
}

const struct dc_compute_ops dc_compute_cuda = {
    .name = "cuda",
    .probe = cuda_probe,
    .create = cuda_create,
    .destroy = cuda_destroy,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_in = cuda_copy_in,
    .copy_out = cuda_copy_out,
    .sync = cuda_sync,
    .linear_fwd = cuda_linear_fwd,
    .linear_bwd = cuda_linear_bwd,
    .loss = cuda_loss,
    .sgd = cuda_sgd,
    .adam = cuda_adam,
    .mlp_load = cuda_mlp_load,
    .mlp_infer = cuda_mlp_infer,
    .mlp_unload = cuda_mlp_unload,
    .gemm = cuda_gemm,
    .describe = cuda_describe,
    .peak_tflops = cuda_peak,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .mlp_submit = cuda_mlp_submit,
    .mlp_wait = cuda_mlp_wait,
};
