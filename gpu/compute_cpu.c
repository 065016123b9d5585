/* compute_cpu.c - the "cpu" compute back-end: OpenBLAS, float32
 *
 * Device buffers are host memory (64-byte aligned, zeroed).  Layer ops are
 * one cblas_sgemm each, followed by one pass over the output that adds the
 * bias, keeps the pre-activation when asked and applies the activation.
 * The number of OpenBLAS threads is set from opts.threads when it is > 0;
 * OpenBLAS' own default (OPENBLAS_NUM_THREADS, else all cores) otherwise.
 *
 * OpenBLAS is not linked: it starts its thread pool in a constructor, which
 * would cost every `dcrun worker` tens of milliseconds.  It is opened with
 * dlopen on the first probe or create of this back-end: $DCRUN_BLAS when
 * set (a file name or path), else libopenblas.so.0, else libblas.so.3 (the
 * Debian alternative, which OpenBLAS provides with its CBLAS symbols).
 * cblas_sgemm is required; the openblas_* calls are used when present.
 */
#include <cblas.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/compute.h"

#define BLAS_ENV "DCRUN_BLAS"

struct dc_compute {
    struct dc_compute_opts o;
    char desc[256];
};

struct mlp_layer {
    int in, out;
    float *w; /* [out][in] */
    float *b; /* [out] */
    enum dc_act act;
};

struct dc_mlp_dev {
    int nlayers;
    struct mlp_layer *layers;
    int maxwidth; /* widest hidden layer output */
};

/* Rows per chunk in mlp_infer when opts.chunk_rows is 0: enough rows for
 * sgemm to run at full speed, few enough that the scratch stays small. */
#define CPU_CHUNK_ROWS 2048

/* The BLAS entry points, resolved once by blas_load(). */
static struct {
    __typeof__ (cblas_sgemm) *sgemm;
    __typeof__ (openblas_set_num_threads) *set_num_threads; /* optional */
    __typeof__ (openblas_get_num_threads) *get_num_threads; /* optional */
    __typeof__ (openblas_get_config) *get_config;           /* optional */
    __typeof__ (openblas_get_corename) *get_corename;       /* optional */
    char name[128];
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static dc_error_t blas_why;

static void blas_open (void)
{
    static const char *const names[] = {"libopenblas.so.0", "libblas.so.3",
                                        NULL};
    const char *env = getenv (BLAS_ENV);
    void *h = NULL;
    const char *name = NULL;
    char first[DC_ERROR_SIZE] = "";

    if (env && env[0]) {
        name = env;
        if (!(h = dlopen (env, RTLD_NOW | RTLD_LOCAL))) {
            errprintf (&blas_why, "cannot load BLAS (%s=%s): %s", BLAS_ENV,
                       env, dlerror ());
            return;
        }
    }
    for (int i = 0; !h && names[i]; i++) {
        name = names[i];
        if (!(h = dlopen (name, RTLD_NOW | RTLD_LOCAL)) && !first[0])
            snprintf (first, sizeof (first), "%s", dlerror ());
    }
    if (!h) {
        errprintf (&blas_why, "cannot load OpenBLAS: %s", first);
        return;
    }
    /* POSIX: a function pointer is stored through a void * */
    *(void **)&blas.sgemm = dlsym (h, "cblas_sgemm");
    if (!blas.sgemm) {
        errprintf (&blas_why,
                   "%s has no cblas_sgemm (a CBLAS such as OpenBLAS is "
                   "needed)",
                   name);
        dlclose (h);
        return;
    }
    *(void **)&blas.set_num_threads = dlsym (h, "openblas_set_num_threads");
    *(void **)&blas.get_num_threads = dlsym (h, "openblas_get_num_threads");
    *(void **)&blas.get_config = dlsym (h, "openblas_get_config");
    *(void **)&blas.get_corename = dlsym (h, "openblas_get_corename");
    snprintf (blas.name, sizeof (blas.name), "%s", name);
}

/* 0 when the BLAS is loaded, -1 with errp saying why not (every time),
 * after prefix ("" for probe, whose callers name the back-end). */
static int blas_load (dc_error_t *errp, const char *prefix)
{
    pthread_once (&blas_once, blas_open);
    if (!blas.sgemm) {
        errno = ENOENT;
        return errprintf (errp, "%s%s", prefix, blas_why.text);
    }
    return 0;
}

static int cpu_probe (dc_error_t *errp)
{
    return blas_load (errp, "") == 0 ? 1 : 0;
}

static int einval (dc_error_t *errp, const char *op, const char *what)
{
    errno = EINVAL;
    return errprintf (errp, "cpu: %s: %s", op, what);
}

static int check_dims (dc_error_t *errp, const char *op, int m, int n, int k)
{
    if (m <= 0 || n <= 0 || k <= 0) {
        errno = EINVAL;
        return errprintf (errp, "cpu: %s: bad shape m=%d n=%d k=%d", op, m, n,
                          k);
    }
    return 0;
}

static struct dc_compute *cpu_create (const struct dc_compute_opts *o,
                                      dc_error_t *errp)
{
    struct dc_compute *c;

    if (o && o->dtype != DC_DTYPE_F32) {
        errno = EINVAL;
        errprintf (errp, "cpu: dtype %s not supported (the cpu back-end "
                         "computes in f32)", dc_dtype_name (o->dtype));
        return NULL;
    }
    if (o && o->threads < 0) {
        errno = EINVAL;
        errprintf (errp, "cpu: bad thread count %d", o->threads);
        return NULL;
    }
    if (blas_load (errp, "cpu: ") < 0)
        return NULL;
    if (!(c = calloc (1, sizeof (*c)))) {
        errprintf (errp, "cpu: out of memory");
        return NULL;
    }
    if (o)
        c->o = *o;
    if (c->o.threads > 0 && blas.set_num_threads)
        blas.set_num_threads (c->o.threads);
    if (blas.get_config && blas.get_corename && blas.get_num_threads)
        snprintf (c->desc, sizeof (c->desc),
                  "cpu: OpenBLAS (%s, %s), %d threads", blas.get_config (),
                  blas.get_corename (), blas.get_num_threads ());
    else
        snprintf (c->desc, sizeof (c->desc), "cpu: CBLAS (%s)", blas.name);
    return c;
}

static void cpu_destroy (struct dc_compute *c)
{
    free (c);
}

static void *cpu_alloc (struct dc_compute *c, size_t bytes, dc_error_t *errp)
{
    void *p = NULL;
    int e;

    if (!c || bytes == 0) {
        einval (errp, "alloc", c ? "zero bytes" : "no instance");
        return NULL;
    }
    if ((e = posix_memalign (&p, 64, bytes)) != 0) {
        errno = e;
        errprintf (errp, "cpu: alloc: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    memset (p, 0, bytes);
    return p;
}

static void cpu_free (struct dc_compute *c, void *p)
{
    (void)c;
    free (p);
}

static int cpu_copy (struct dc_compute *c, void *dst, const void *src,
                     size_t bytes, dc_error_t *errp)
{
    if (!c || (bytes && (!dst || !src)))
        return einval (errp, "copy", "NULL argument");
    if (bytes)
        memmove (dst, src, bytes);
    return 0;
}

static int cpu_sync (struct dc_compute *c, dc_error_t *errp)
{
    if (!c)
        return einval (errp, "sync", "no instance");
    return 0;
}

/* GELU, tanh approximation (torch.nn.GELU(approximate='tanh')). */
#define GELU_C 0.7978845608028654f /* sqrt (2 / pi) */
#define GELU_A 0.044715f

static inline float act_fwd (enum dc_act act, float v)
{
    switch (act) {
    case DC_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case DC_ACT_GELU:
        return 0.5f * v * (1.0f + tanhf (GELU_C * (v + GELU_A * v * v * v)));
    case DC_ACT_TANH:
        return tanhf (v);
    case DC_ACT_NONE:
        break;
    }
    return v;
}

/* d act / d z at z */
static inline float act_grad (enum dc_act act, float z)
{
    switch (act) {
    case DC_ACT_RELU:
        return z > 0.0f ? 1.0f : 0.0f;
    case DC_ACT_GELU: {
        float t = tanhf (GELU_C * (z + GELU_A * z * z * z));
        return 0.5f * (1.0f + t)
               + 0.5f * z * (1.0f - t * t) * GELU_C
                     * (1.0f + 3.0f * GELU_A * z * z);
    }
    case DC_ACT_TANH: {
        float t = tanhf (z);
        return 1.0f - t * t;
    }
    case DC_ACT_NONE:
        break;
    }
    return 1.0f;
}

static int check_act (dc_error_t *errp, const char *op, enum dc_act act)
{
    if ((unsigned)act > DC_ACT_TANH) {
        errno = EINVAL;
        return errprintf (errp, "cpu: %s: unknown activation %d", op,
                          (int)act);
    }
    return 0;
}

/* The layer op without argument checks: y = act (x . w^T + b). */
static void linear (int m, int n, int k, const float *x, const float *w,
                    const float *b, enum dc_act act, float *y, float *z)
{
    blas.sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k,
                w, k, 0.0f, y, n);
    /* one pass over the output: bias, pre-activation, activation */
    for (int i = 0; i < m; i++) {
        float *yr = y + (size_t)i * (size_t)n;
        float *zr = z ? z + (size_t)i * (size_t)n : NULL;
        if (b)
            for (int j = 0; j < n; j++)
                yr[j] += b[j];
        if (zr)
            memcpy (zr, yr, (size_t)n * sizeof (float));
        switch (act) {
        case DC_ACT_RELU:
            for (int j = 0; j < n; j++)
                yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
            break;
        case DC_ACT_GELU:
        case DC_ACT_TANH:
            for (int j = 0; j < n; j++)
                yr[j] = act_fwd (act, yr[j]);
            break;
        case DC_ACT_NONE:
            break;
        }
    }
}

static int cpu_linear_fwd (struct dc_compute *c, int m, int n, int k,
                           const float *x, const float *w, const float *b,
                           enum dc_act act, float *y, float *z,
                           dc_error_t *errp)
{
    if (!c || !x || !w || !y)
        return einval (errp, "linear_fwd", "NULL argument");
    if (check_dims (errp, "linear_fwd", m, n, k) < 0
        || check_act (errp, "linear_fwd", act) < 0)
        return -1;
    linear (m, n, k, x, w, b, act, y, z);
    return 0;
}

static int cpu_linear_bwd (struct dc_compute *c, int m, int n, int k,
                           const float *x, const float *w, const float *z,
                           enum dc_act act, float *dy, float *dx, float *dw,
                           float *db, dc_error_t *errp)
{
    if (!c || !x || !w || !dy || !dw || !db)
        return einval (errp, "linear_bwd", "NULL argument");
    if (check_dims (errp, "linear_bwd", m, n, k) < 0
        || check_act (errp, "linear_bwd", act) < 0)
        return -1;
    if (act != DC_ACT_NONE && !z)
        return einval (errp, "linear_bwd",
                       "the pre-activation z is needed for this activation");

    /* dz = dy * act'(z), in place, and db = column sums of dz */
    memset (db, 0, (size_t)n * sizeof (float));
    for (int i = 0; i < m; i++) {
        float *r = dy + (size_t)i * (size_t)n;
        if (act != DC_ACT_NONE) {
            const float *zr = z + (size_t)i * (size_t)n;
            for (int j = 0; j < n; j++)
                r[j] *= act_grad (act, zr[j]);
        }
        for (int j = 0; j < n; j++)
            db[j] += r[j];
    }
    /* dx[m][k] = dz[m][n] . w[n][k] */
    if (dx)
        blas.sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f,
                    dy, n, w, k, 0.0f, dx, k);
    /* dw[n][k] = dz^T . x[m][k] */
    blas.sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, dy, n,
                x, k, 0.0f, dw, k);
    return 0;
}

static int cpu_loss (struct dc_compute *c, enum dc_loss kind, int m, int n,
                     const float *y, const void *target, size_t scale_rows,
                     float *dy, double *loss_sum, dc_error_t *errp)
{
    double sum = 0.0;

    if (!c || !y || !target || !dy || !loss_sum)
        return einval (errp, "loss", "NULL argument");
    if (check_dims (errp, "loss", m, n, 1) < 0)
        return -1;
    if (scale_rows == 0)
        return einval (errp, "loss", "scale_rows is 0");

    if (kind == DC_LOSS_MSE) {
        const float *t = target;
        /* L = sum (y - t)^2 / (scale_rows * n) */
        float g = (float)(2.0 / ((double)scale_rows * (double)n));
        for (int i = 0; i < m; i++) {
            double rs = 0.0;
            for (int j = 0; j < n; j++) {
                size_t p = (size_t)i * (size_t)n + (size_t)j;
                float d = y[p] - t[p];
                rs += (double)d * (double)d;
                dy[p] = g * d;
            }
            sum += rs / n;
        }
    } else if (kind == DC_LOSS_XENT) {
        const int64_t *lab = target;
        double inv = 1.0 / (double)scale_rows;
        for (int i = 0; i < m; i++) {
            if (lab[i] < 0 || lab[i] >= n) {
                errno = EINVAL;
                return errprintf (errp,
                                  "cpu: loss: label %lld of row %d is "
                                  "outside [0, %d)",
                                  (long long)lab[i], i, n);
            }
        }
        for (int i = 0; i < m; i++) {
            const float *r = y + (size_t)i * (size_t)n;
            float *d = dy + (size_t)i * (size_t)n;
            float mx = r[0];
            double se = 0.0;
            for (int j = 1; j < n; j++)
                if (r[j] > mx)
                    mx = r[j];
            for (int j = 0; j < n; j++)
                se += exp ((double)r[j] - mx);
            double lse = log (se) + mx;
            sum += lse - r[lab[i]];
            for (int j = 0; j < n; j++)
                d[j] = (float)(exp ((double)r[j] - lse) * inv);
            d[lab[i]] -= (float)inv;
        }
    } else {
        errno = EINVAL;
        return errprintf (errp, "cpu: loss: unknown loss %d", (int)kind);
    }
    *loss_sum = sum;
    return 0;
}

static int cpu_sgd (struct dc_compute *c, float *w, const float *g, float *v,
                    size_t n, float lr, float momentum, dc_error_t *errp)
{
    if (!c || !w || !g || (momentum != 0.0f && !v))
        return einval (errp, "sgd", "NULL argument");
    if (momentum == 0.0f) {
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] + g[i];
        w[i] -= lr * v[i];
    }
    return 0;
}

static int cpu_adam (struct dc_compute *c, float *w, const float *g, float *m,
                     float *v, size_t n, float lr, float beta1, float beta2,
                     float eps, int64_t step, dc_error_t *errp)
{
    if (!c || !w || !g || !m || !v)
        return einval (errp, "adam", "NULL argument");
    if (step < 1)
        return einval (errp, "adam", "step counts from 1");
    /* as torch.optim.Adam (single-tensor, not amsgrad, no weight decay):
     * the bias corrections are computed in double, the rest in float */
    double bc1 = 1.0 - pow ((double)beta1, (double)step);
    double bc2 = 1.0 - pow ((double)beta2, (double)step);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt (bc2);
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float denom = sqrtf (v[i]) / bc2_sqrt + eps;
        w[i] -= step_size * (m[i] / denom);
    }
    return 0;
}

static void cpu_mlp_unload (struct dc_compute *c, struct dc_mlp_dev *net)
{
    (void)c;
    if (!net)
        return;
    for (int i = 0; i < net->nlayers; i++) {
        free (net->layers[i].w);
        free (net->layers[i].b);
    }
    free (net->layers);
    free (net);
}

static struct dc_mlp_dev *cpu_mlp_load (struct dc_compute *c,
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
        if (l->in <= 0 || l->out <= 0 || !l->w || !l->b
            || (unsigned)l->act > DC_ACT_TANH) {
            errno = EINVAL;
            errprintf (errp, "cpu: mlp_load: layer %d: bad shape or "
                             "missing tensor", i);
            return NULL;
        }
        if (i > 0 && l->in != view->layers[i - 1].out) {
            errno = EINVAL;
            errprintf (errp, "cpu: mlp_load: layer %d has %d inputs but "
                             "layer %d has %d outputs",
                       i, l->in, i - 1, view->layers[i - 1].out);
            return NULL;
        }
    }
    if (!(net = calloc (1, sizeof (*net)))
        || !(net->layers = calloc ((size_t)view->nlayers,
                                   sizeof (*net->layers)))) {
        free (net);
        errno = ENOMEM;
        errprintf (errp, "cpu: mlp_load: out of memory");
        return NULL;
    }
    net->nlayers = view->nlayers;
    for (int i = 0; i < view->nlayers; i++) {
        const struct dc_layer_view *l = &view->layers[i];
        struct mlp_layer *d = &net->layers[i];
        size_t wb = (size_t)l->out * (size_t)l->in * sizeof (float);
        size_t bb = (size_t)l->out * sizeof (float);
        d->in = l->in;
        d->out = l->out;
        d->act = l->act;
        if (!(d->w = cpu_alloc (c, wb, errp))
            || !(d->b = cpu_alloc (c, bb, errp))) {
            cpu_mlp_unload (c, net);
            return NULL;
        }
        memcpy (d->w, l->w, wb);
        memcpy (d->b, l->b, bb);
        if (i < view->nlayers - 1 && l->out > net->maxwidth)
            net->maxwidth = l->out;
    }
    return net;
}

/* Rows are computed in blocks whose size is a multiple of ROW_ALIGN, the
 * last block padded with zero rows: every row then goes through the same
 * GEMM kernel path whatever the chunking, so a row's output bytes do not
 * depend on which rows share its chunk (distributed runs give the bytes of
 * a single-process run). */
#define ROW_ALIGN 64

static int cpu_mlp_infer (struct dc_compute *c, struct dc_mlp_dev *net,
                          const float *x, size_t rows, float *y,
                          dc_error_t *errp)
{
    float *buf[2] = {NULL, NULL};
    float *xpad = NULL, *ypad = NULL;
    size_t chunk;
    int in, out, rc = -1;

    if (!c || !net || (rows && (!x || !y)))
        return einval (errp, "mlp_infer", "NULL argument");
    if (rows == 0)
        return 0;
    in = net->layers[0].in;
    out = net->layers[net->nlayers - 1].out;
    chunk = c->o.chunk_rows ? c->o.chunk_rows : CPU_CHUNK_ROWS;
    if (chunk > rows)
        chunk = rows;
    if (chunk > (size_t)INT32_MAX / 2)
        chunk = (size_t)INT32_MAX / 2;
    chunk = (chunk + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    if (net->nlayers > 1) {
        size_t bytes = chunk * (size_t)net->maxwidth * sizeof (float);
        for (int i = 0; i < 2; i++)
            if (!(buf[i] = cpu_alloc (c, bytes, errp)))
                goto out;
    }
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t m = rows - r0 < chunk ? rows - r0 : chunk;
        size_t mp = (m + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
        const float *src = x + r0 * (size_t)in;
        float *last = y + r0 * (size_t)out;
        if (mp != m) {
            /* the last, partial block: zero rows after the real ones */
            if (!xpad && (!(xpad = cpu_alloc (c, mp * (size_t)in * 4, errp))
                          || !(ypad = cpu_alloc (c, mp * (size_t)out * 4,
                                                 errp))))
                goto out;
            memcpy (xpad, src, m * (size_t)in * sizeof (float));
            memset (xpad + m * (size_t)in, 0,
                    (mp - m) * (size_t)in * sizeof (float));
            src = xpad;
            last = ypad;
        }
        for (int i = 0; i < net->nlayers; i++) {
            const struct mlp_layer *l = &net->layers[i];
            float *dst = i == net->nlayers - 1 ? last : buf[i % 2];
            linear ((int)mp, l->out, l->in, src, l->w, l->b, l->act, dst,
                    NULL);
            src = dst;
        }
        if (mp != m)
            memcpy (y + r0 * (size_t)out, ypad, m * (size_t)out * sizeof (float));
    }
    rc = 0;
out:
    free (buf[0]);
    free (buf[1]);
    free (xpad);
    free (ypad);
    return rc;
}

static int cpu_gemm (struct dc_compute *c, int m, int n, int k, const float *a,
                     const float *b, float *cc, dc_error_t *errp)
{
    if (!c || !a || !b || !cc)
        return einval (errp, "gemm", "NULL argument");
    if (check_dims (errp, "gemm", m, n, k) < 0)
        return -1;
    blas.sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a,
                k, b, n, 0.0f, cc, n);
    return 0;
}

static const char *cpu_describe (struct dc_compute *c)
{
    return c ? c->desc : "cpu";
}

const struct dc_compute_ops dc_compute_cpu = {
    .name = "cpu",
    .probe = cpu_probe,
    .create = cpu_create,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .sync = cpu_sync,
    .linear_fwd = cpu_linear_fwd,
    .linear_bwd = cpu_linear_bwd,
    .loss = cpu_loss,
    .sgd = cpu_sgd,
    .adam = cpu_adam,
    .mlp_load = cpu_mlp_load,
    .mlp_infer = cpu_mlp_infer,
    .mlp_unload = cpu_mlp_unload,
    .gemm = cpu_gemm,
    .describe = cpu_describe,
};
