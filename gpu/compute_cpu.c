/* compute_cpu.c - the "cpu" compute back-end: OpenBLAS, float32
 *
 * Device buffers are host memory (64-byte aligned, zeroed).
 *
 * Reproducible bytes.  OpenBLAS gives a row of C = X . W^T bytes that
 * depend on the number of rows M of the call, on the row's position in it
 * (its x86 kernels treat a row differently by its place in the micro-tile
 * and in the tail strips) and on the thread split.  So every GEMM of the
 * forward path (and dx of the backward) runs on exactly ROW_BLOCK rows
 * with ONE BLAS thread, and the blocks are aligned to row 0 of the whole
 * batch (mlp_infer's row0): global row r always sits at position
 * r % ROW_BLOCK of a ROW_BLOCK-row GEMM, next to rows of the batch or to
 * zero rows.  A row's bytes then depend only on the model, the row and the
 * BLAS kernel, never on chunks, ranks, layouts or threads.  Parallelism
 * comes from this back-end's own threads (opts.threads, default the CPUs
 * of the affinity mask) working on different blocks (mlp_infer: groups of
 * blocks, one layer at a time, so the threads read the same weights
 * together: measured faster than each thread running every layer of its
 * own blocks); OpenBLAS' pthread
 * build (0.3.21) allows concurrent calls from several threads when its own
 * thread count is 1 (each call then runs in the caller's thread with a
 * buffer from its locked memory pool).  dw = dz^T x sums over rows in a
 * fixed order: blocks in row order, output features in fixed slabs.
 * Training (opts.train_rows, lib/model's DC_TRAIN_CPU_ROWS) runs
 * linear_fwd and linear_bwd on blocks of that many rows instead: a rank's
 * share of a batch costs its rows, not a 1024-row block; the bytes then
 * depend on the rows of the call (never on the threads), mlp_infer's stay
 * as above.
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
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/compute.h"

#define BLAS_ENV "DCRUN_BLAS"

struct dc_compute {
    struct dc_compute_opts o;
    int threads; /* this back-end's threads (BLAS runs with one each) */
    size_t rb;   /* rows of linear_fwd's and linear_bwd's GEMMs */
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
};

/* Rows of every GEMM of the forward path (see the top of this file),
 * chosen by measuring bench/infer-cpu.sh; a multiple of every x86 sgemm
 * kernel's unroll.  DC_CPU_ROW_BLOCK in compute.h is the same number. */
#define ROW_BLOCK DC_CPU_ROW_BLOCK

/* Output features per dw slab in linear_bwd (fixed: the bytes of dw must
 * not depend on the thread count). */
#define DW_SLAB 64

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
            errprintf (&blas_why, "cannot load BLAS (%s=%s): %s", BLAS_ENV, env,
                       dlerror ());
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

/* CPUs this process may run on (its affinity mask), at least 1. */
static int affinity_cpus (void)
{
    cpu_set_t set;
    int n;

    if (sched_getaffinity (0, sizeof (set), &set) == 0 &&
        (n = CPU_COUNT (&set)) > 0)
        return n;
    return 1;
}

/* A parallel loop: items 0..n-1, each run once by one of up to `threads`
 * threads (the caller is one of them), fn (arg, item, thread index).
 * Which thread runs which item does not matter to the bytes: every item
 * is computed the same way wherever it runs.  A thread that cannot be
 * started leaves its share to the others. */
struct par {
    void (*fn) (void *arg, size_t item, int tid);
    void *arg;
    size_t n;
    atomic_size_t next;
};

struct par_thread {
    struct par *p;
    int tid;
};

static void *par_main (void *v)
{
    struct par_thread *t = v;
    size_t i;

    while ((i = atomic_fetch_add (&t->p->next, 1)) < t->p->n)
        t->p->fn (t->p->arg, i, t->tid);
    return NULL;
}

#define MAX_THREADS 256

static void par_run (int threads, size_t n,
                     void (*fn) (void *arg, size_t item, int tid), void *arg)
{
    pthread_t tids[MAX_THREADS];
    struct par_thread ts[MAX_THREADS];
    struct par p = {.fn = fn, .arg = arg, .n = n};
    int started = 0;

    atomic_init (&p.next, 0);
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if ((size_t)threads > n)
        threads = (int)n;
    for (int t = 1; t < threads; t++) {
        ts[t] = (struct par_thread){.p = &p, .tid = t};
        if (pthread_create (&tids[t], NULL, par_main, &ts[t]) != 0)
            break;
        started = t;
    }
    ts[0] = (struct par_thread){.p = &p, .tid = 0};
    par_main (&ts[0]);
    for (int t = 1; t <= started; t++)
        pthread_join (tids[t], NULL);
}

/* Threads a call may use: at most MAX_THREADS (scratch is per thread). */
static int nthreads (const struct dc_compute *c)
{
    return c->threads < MAX_THREADS ? c->threads : MAX_THREADS;
}

static struct dc_compute *cpu_create (const struct dc_compute_opts *o,
                                      dc_error_t *errp)
{
    struct dc_compute *c;

    if (o && o->dtype != DC_DTYPE_F32) {
        errno = EINVAL;
        errprintf (errp,
                   "cpu: dtype %s not supported (the cpu back-end "
                   "computes in f32)",
                   dc_dtype_name (o->dtype));
        return NULL;
    }
    if (o && (o->train_rows % 32 || o->train_rows > ROW_BLOCK)) {
        errno = EINVAL;
        errprintf (errp, "cpu: bad training row block %zu", o->train_rows);
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
    c->threads = c->o.threads > 0 ? c->o.threads : affinity_cpus ();
    c->rb = c->o.train_rows ? c->o.train_rows : ROW_BLOCK;
    if (c->threads > MAX_THREADS)
        c->threads = MAX_THREADS;
    /* one BLAS thread per call: our threads work on different blocks */
    if (blas.set_num_threads)
        blas.set_num_threads (1);
    if (blas.get_config && blas.get_corename)
        snprintf (c->desc, sizeof (c->desc),
                  "cpu: OpenBLAS (%s, %s), %d threads", blas.get_config (),
                  blas.get_corename (), c->threads);
    else
        snprintf (c->desc, sizeof (c->desc), "cpu: CBLAS (%s), %d threads",
                  blas.name, c->threads);
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
    case DC_ACT_RELU: /* as torch: NaN stays NaN, -0 stays -0 */
        return v < 0.0f ? 0.0f : v;
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
    case DC_ACT_RELU: /* as torch's threshold_backward: NaN passes */
        return z <= 0.0f ? 0.0f : 1.0f;
    case DC_ACT_GELU: {
        float t = tanhf (GELU_C * (z + GELU_A * z * z * z));
        return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * GELU_C *
                                       (1.0f + 3.0f * GELU_A * z * z);
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
        return errprintf (errp, "cpu: %s: unknown activation %d", op, (int)act);
    }
    return 0;
}

/* Bias, pre-activation and activation over m rows of y, in place. */
static void bias_act (int m, int n, const float *b, enum dc_act act, float *y,
                      float *z)
{
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
                yr[j] = yr[j] < 0.0f ? 0.0f : yr[j];
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

/* The layer op on one block of exactly ROW_BLOCK rows, no checks:
 * y = act (x . w^T + b); z (may be NULL) gets the pre-activation.  Every
 * forward GEMM goes through here. */
static void linear_rows (size_t rb, int n, int k, const float *x,
                         const float *w, const float *b, enum dc_act act,
                         float *y, float *z)
{
    blas.sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, n, k, 1.0f, x,
                k, w, k, 0.0f, y, n);
    bias_act ((int)rb, n, b, act, y, z);
}

static void linear_block (int n, int k, const float *x, const float *w,
                          const float *b, enum dc_act act, float *y, float *z)
{
    linear_rows (ROW_BLOCK, n, k, x, w, b, act, y, z);
}

/* Rows [lo, hi) of a call's m rows that block j holds when the call's
 * row 0 sits at position off of block 0. */
static void block_rows_n (size_t rb, size_t j, size_t off, size_t m, size_t *lo,
                          size_t *hi)
{
    size_t a = j * rb, e = a + rb;

    *lo = a > off ? a - off : 0;
    *hi = e - off < m ? e - off : m;
}

static void block_rows (size_t j, size_t off, size_t m, size_t *lo, size_t *hi)
{
    block_rows_n (ROW_BLOCK, j, off, m, lo, hi);
}

/* Copy rows [lo, hi) of src (width w) into a zeroed rb-row block at
 * their positions (pos of row lo). */
static void pad_in_n (size_t rb, float *blk, const float *src, size_t lo,
                      size_t hi, size_t pos, int w)
{
    memset (blk, 0, rb * (size_t)w * sizeof (float));
    memcpy (blk + pos * (size_t)w, src + lo * (size_t)w,
            (hi - lo) * (size_t)w * sizeof (float));
}

static void pad_in (float *blk, const float *src, size_t lo, size_t hi,
                    size_t pos, int w)
{
    pad_in_n (ROW_BLOCK, blk, src, lo, hi, pos, w);
}

struct fwd_job {
    int n, k;
    const float *x, *w, *b;
    enum dc_act act;
    float *y, *z;
    size_t m;
    size_t rb;      /* rows of each GEMM */
    float *scratch; /* x, y, z of the padded last block */
};

static void fwd_item (void *arg, size_t j, int tid)
{
    struct fwd_job *f = arg;
    size_t lo, hi;

    (void)tid;
    block_rows_n (f->rb, j, 0, f->m, &lo, &hi);
    if (hi - lo == f->rb) {
        linear_rows (f->rb, f->n, f->k, f->x + lo * (size_t)f->k, f->w, f->b,
                     f->act, f->y + lo * (size_t)f->n,
                     f->z ? f->z + lo * (size_t)f->n : NULL);
        return;
    }
    float *xb = f->scratch;
    float *yb = xb + (size_t)f->rb * (size_t)f->k;
    float *zb = yb + (size_t)f->rb * (size_t)f->n;
    pad_in_n (f->rb, xb, f->x, lo, hi, 0, f->k);
    linear_rows (f->rb, f->n, f->k, xb, f->w, f->b, f->act, yb,
                 f->z ? zb : NULL);
    memcpy (f->y + lo * (size_t)f->n, yb,
            (hi - lo) * (size_t)f->n * sizeof (float));
    if (f->z)
        memcpy (f->z + lo * (size_t)f->n, zb,
                (hi - lo) * (size_t)f->n * sizeof (float));
}

static int cpu_linear_fwd (struct dc_compute *c, int m, int n, int k,
                           const float *x, const float *w, const float *b,
                           enum dc_act act, float *y, float *z,
                           dc_error_t *errp)
{
    if (!c || !x || !w || !y)
        return einval (errp, "linear_fwd", "NULL argument");
    if (check_dims (errp, "linear_fwd", m, n, k) < 0 ||
        check_act (errp, "linear_fwd", act) < 0)
        return -1;
    struct fwd_job f = {.n = n,
                        .k = k,
                        .x = x,
                        .w = w,
                        .b = b,
                        .act = act,
                        .y = y,
                        .z = z,
                        .m = (size_t)m,
                        .rb = c->rb};
    size_t nb = ((size_t)m + c->rb - 1) / c->rb;
    size_t part = (size_t)m % c->rb;
    if (part) {
        size_t per = (size_t)c->rb * ((size_t)k + 2 * (size_t)n);
        if (!(f.scratch = malloc (per * sizeof (float)))) {
            errno = ENOMEM;
            return errprintf (errp, "cpu: linear_fwd: out of memory");
        }
    }
    /* the full blocks in parallel, then the partial last one (if any)
     * here, padded in the scratch */
    par_run (nthreads (c), part ? nb - 1 : nb, fwd_item, &f);
    if (part)
        fwd_item (&f, nb - 1, 0);
    free (f.scratch);
    return 0;
}

struct dx_job {
    int n, k;
    const float *dz, *w;
    float *dx;
    size_t m;
    size_t rb;      /* rows of each GEMM */
    float *scratch; /* the padded last block: dz, then dx */
};

static void dx_item (void *arg, size_t j, int tid)
{
    struct dx_job *d = arg;
    size_t lo, hi;

    (void)tid;
    block_rows_n (d->rb, j, 0, d->m, &lo, &hi);
    const float *dz = d->dz + lo * (size_t)d->n;
    float *dx = d->dx + lo * (size_t)d->k;
    if (hi - lo < d->rb) {
        pad_in_n (d->rb, d->scratch, d->dz, lo, hi, 0, d->n);
        dz = d->scratch;
        dx = d->scratch + (size_t)d->rb * (size_t)d->n;
    }
    /* dx[B][k] = dz[B][n] . w[n][k] */
    blas.sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d->rb, d->k,
                d->n, 1.0f, dz, d->n, d->w, d->k, 0.0f, dx, d->k);
    if (hi - lo < d->rb)
        memcpy (d->dx + lo * (size_t)d->k, dx,
                (hi - lo) * (size_t)d->k * sizeof (float));
}

struct dw_job {
    int n, k;
    const float *dz, *x;   /* [m][n], [m][k] */
    const float *dzp, *xp; /* the last block padded (NULL when full) */
    float *dw;
    size_t m, nb;
    size_t rb; /* rows of each GEMM */
};

/* dw rows [s*DW_SLAB, ...) = sum over blocks, in row order, of
 * dz_b[:, slab]^T . x_b: the same sums whatever the thread count. */
static void dw_item (void *arg, size_t s, int tid)
{
    struct dw_job *d = arg;
    int n0 = (int)s * DW_SLAB;
    int ns = d->n - n0 < DW_SLAB ? d->n - n0 : DW_SLAB;

    (void)tid;
    for (size_t j = 0; j < d->nb; j++) {
        const float *dz = d->dz + j * d->rb * (size_t)d->n;
        const float *x = d->x + j * d->rb * (size_t)d->k;
        if (j == d->nb - 1 && d->dzp) {
            dz = d->dzp;
            x = d->xp;
        }
        blas.sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, ns, d->k,
                    (int)d->rb, 1.0f, dz + n0, d->n, x, d->k, j ? 1.0f : 0.0f,
                    d->dw + (size_t)n0 * (size_t)d->k, d->k);
    }
}

static int cpu_linear_bwd (struct dc_compute *c, int m, int n, int k,
                           const float *x, const float *w, const float *z,
                           enum dc_act act, float *dy, float *dx, float *dw,
                           float *db, dc_error_t *errp)
{
    float *scratch = NULL;

    if (!c || !x || !w || !dy || !dw || !db)
        return einval (errp, "linear_bwd", "NULL argument");
    if (check_dims (errp, "linear_bwd", m, n, k) < 0 ||
        check_act (errp, "linear_bwd", act) < 0)
        return -1;
    if (act != DC_ACT_NONE && !z)
        return einval (errp, "linear_bwd",
                       "the pre-activation z is needed for this activation");

    size_t nb = ((size_t)m + c->rb - 1) / c->rb;
    size_t part = (size_t)m % c->rb;
    if (part) {
        /* the last block padded: dz and x for dw, then dx (dz, dx) */
        size_t per = (size_t)c->rb * (2 * (size_t)n + 2 * (size_t)k);
        if (!(scratch = malloc (per * sizeof (float)))) {
            errno = ENOMEM;
            return errprintf (errp, "cpu: linear_bwd: out of memory");
        }
    }

    /* dz = dy * act'(z), in place, and db = column sums of dz in row
     * order */
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
    /* dx[m][k] = dz[m][n] . w[n][k], in blocks of c->rb rows; the
     * partial last one after the others, with the scratch */
    if (dx) {
        struct dx_job d = {.n = n,
                           .k = k,
                           .dz = dy,
                           .w = w,
                           .dx = dx,
                           .m = (size_t)m,
                           .rb = c->rb,
                           .scratch = scratch};
        par_run (nthreads (c), part ? nb - 1 : nb, dx_item, &d);
        if (part)
            dx_item (&d, nb - 1, 0);
    }
    /* dw[n][k] = dz^T . x */
    struct dw_job d = {.n = n,
                       .k = k,
                       .dz = dy,
                       .x = x,
                       .dw = dw,
                       .m = (size_t)m,
                       .nb = nb,
                       .rb = c->rb};
    if (part) {
        float *dzp = scratch + (size_t)c->rb * ((size_t)n + (size_t)k);
        float *xp = dzp + (size_t)c->rb * (size_t)n;
        size_t lo = (nb - 1) * c->rb;
        pad_in_n (c->rb, dzp, dy, lo, (size_t)m, 0, n);
        pad_in_n (c->rb, xp, x, lo, (size_t)m, 0, k);
        d.dzp = dzp;
        d.xp = xp;
    }
    par_run (nthreads (c), ((size_t)n + DW_SLAB - 1) / DW_SLAB, dw_item, &d);
    free (scratch);
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
        if (l->in <= 0 || l->out <= 0 || !l->w || !l->b ||
            (unsigned)l->act > DC_ACT_TANH) {
            errno = EINVAL;
            errprintf (errp,
                       "cpu: mlp_load: layer %d: bad shape or "
                       "missing tensor",
                       i);
            return NULL;
        }
        if (i > 0 && l->in != view->layers[i - 1].out) {
            errno = EINVAL;
            errprintf (errp,
                       "cpu: mlp_load: layer %d has %d inputs but "
                       "layer %d has %d outputs",
                       i, l->in, i - 1, view->layers[i - 1].out);
            return NULL;
        }
    }
    if (!(net = calloc (1, sizeof (*net))) ||
        !(net->layers =
              calloc ((size_t)view->nlayers, sizeof (*net->layers)))) {
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
        if (!(d->w = cpu_alloc (c, wb, errp)) ||
            !(d->b = cpu_alloc (c, bb, errp))) {
            cpu_mlp_unload (c, net);
            return NULL;
        }
        memcpy (d->w, l->w, wb);
        memcpy (d->b, l->b, bb);
    }
    return net;
}

struct infer_job {
    const struct dc_mlp_dev *net;
    const float *x;
    float *y;
    size_t rows, off;
    size_t width;  /* widest of the input and every layer's output */
    size_t g0;     /* the group's first block */
    int layer;     /* the layer the threads run now */
    float *act[2]; /* per block of the group: ROW_BLOCK x width each */
};

/* One layer of block g0 + i of the group. */
static void infer_item (void *arg, size_t i, int tid)
{
    struct infer_job *f = arg;
    const struct dc_mlp_dev *net = f->net;
    const struct mlp_layer *l = &net->layers[f->layer];
    int in = net->layers[0].in, out = net->layers[net->nlayers - 1].out;
    size_t blk = (size_t)ROW_BLOCK * f->width, j = f->g0 + i, lo, hi;
    size_t pos = j == 0 ? f->off : 0;
    bool last = f->layer == net->nlayers - 1;
    const float *src;
    float *dst;

    (void)tid;
    block_rows (j, f->off, f->rows, &lo, &hi);
    bool full = hi - lo == ROW_BLOCK;
    if (f->layer > 0)
        src = f->act[(f->layer - 1) % 2] + i * blk;
    else if (full)
        src = f->x + lo * (size_t)in;
    else {
        /* act[1] is free until layer 1 writes it */
        pad_in (f->act[1] + i * blk, f->x, lo, hi, pos, in);
        src = f->act[1] + i * blk;
    }
    dst =
        last && full ? f->y + lo * (size_t)out : f->act[f->layer % 2] + i * blk;
    linear_block (l->out, l->in, src, l->w, l->b, l->act, dst, NULL);
    if (last && !full)
        memcpy (f->y + lo * (size_t)out, dst + pos * (size_t)out,
                (hi - lo) * (size_t)out * sizeof (float));
}

/* Blocks per group and thread: the threads run one layer at a time over
 * a group of blocks, so that they read the same weights together. */
#define GROUP_PER_THREAD 4

/* Rows in blocks of ROW_BLOCK aligned to row 0 of the batch (row0 is the
 * batch index of x's first row), in groups of blocks, layer by layer.
 * opts.chunk_rows does not matter here. */
static int cpu_mlp_infer (struct dc_compute *c, struct dc_mlp_dev *net,
                          const float *x, size_t rows, size_t row0, float *y,
                          dc_error_t *errp)
{
    struct infer_job f = {.net = net, .x = x, .y = y, .rows = rows};
    int threads;

    if (!c || !net || (rows && (!x || !y)))
        return einval (errp, "mlp_infer", "NULL argument");
    if (rows == 0)
        return 0;
    f.off = row0 % ROW_BLOCK;
    f.width = (size_t)net->layers[0].in;
    for (int i = 0; i < net->nlayers; i++)
        if ((size_t)net->layers[i].out > f.width)
            f.width = (size_t)net->layers[i].out;
    size_t nb = (f.off + rows + ROW_BLOCK - 1) / ROW_BLOCK;
    threads = nthreads (c);
    size_t group = (size_t)threads * GROUP_PER_THREAD;
    if (group > nb)
        group = nb;
    size_t bytes = group * ROW_BLOCK * f.width * sizeof (float);
    if (!(f.act[0] = malloc (bytes)) || !(f.act[1] = malloc (bytes))) {
        free (f.act[0]);
        errno = ENOMEM;
        return errprintf (errp,
                          "cpu: mlp_infer: out of memory for %zu "
                          "bytes of activations",
                          2 * bytes);
    }
    for (f.g0 = 0; f.g0 < nb; f.g0 += group) {
        size_t n = nb - f.g0 < group ? nb - f.g0 : group;
        for (f.layer = 0; f.layer < net->nlayers; f.layer++)
            par_run (threads, n, infer_item, &f);
    }
    free (f.act[0]);
    free (f.act[1]);
    return 0;
}

static void *cpu_host_alloc (struct dc_compute *c, size_t bytes,
                             dc_error_t *errp)
{
    void *p = NULL;
    int e;

    if (!c || bytes == 0) {
        einval (errp, "host_alloc", c ? "zero bytes" : "no instance");
        return NULL;
    }
    if ((e = posix_memalign (&p, 64, bytes)) != 0) {
        errno = e;
        errprintf (errp, "cpu: host_alloc: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    return p;
}

static void cpu_host_free (struct dc_compute *c, void *p)
{
    (void)c;
    free (p);
}

static int check_slot (int slot, const char *op, dc_error_t *errp)
{
    if (slot < 0 || slot >= DC_COMPUTE_SLOTS) {
        errno = EINVAL;
        return errprintf (errp, "cpu: %s: slot %d out of range", op, slot);
    }
    return 0;
}

/* No device to overlap with: computed here, mlp_wait has nothing to do. */
static int cpu_mlp_submit (struct dc_compute *c, struct dc_mlp_dev *net,
                           int slot, const float *x, size_t rows, size_t row0,
                           float *y, dc_error_t *errp)
{
    if (check_slot (slot, "mlp_submit", errp) < 0)
        return -1;
    return cpu_mlp_infer (c, net, x, rows, row0, y, errp);
}

static int cpu_mlp_wait (struct dc_compute *c, struct dc_mlp_dev *net, int slot,
                         dc_error_t *errp)
{
    if (!c || !net)
        return einval (errp, "mlp_wait", "NULL argument");
    return check_slot (slot, "mlp_wait", errp);
}

struct gemm_job {
    int m, n, k, parts;
    const float *a, *b;
    float *c;
};

static void gemm_item (void *arg, size_t p, int tid)
{
    struct gemm_job *g = arg;
    int r0 = (int)((long long)g->m * (long long)p / g->parts);
    int r1 = (int)((long long)g->m * (long long)(p + 1) / g->parts);

    (void)tid;
    if (r1 > r0)
        blas.sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, g->n,
                    g->k, 1.0f, g->a + (size_t)r0 * (size_t)g->k, g->k, g->b,
                    g->n, 0.0f, g->c + (size_t)r0 * (size_t)g->n, g->n);
}

/* `dcrun bench gemm`: the rows split across the threads, one BLAS thread
 * each (a benchmark: its bytes need not be reproducible). */
static int cpu_gemm (struct dc_compute *c, int m, int n, int k, const float *a,
                     const float *b, float *cc, dc_error_t *errp)
{
    if (!c || !a || !b || !cc)
        return einval (errp, "gemm", "NULL argument");
    if (check_dims (errp, "gemm", m, n, k) < 0)
        return -1;
    struct gemm_job g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = cc};
    g.parts = nthreads (c) < m ? nthreads (c) : m;
    par_run (g.parts, (size_t)g.parts, gemm_item, &g);
    return 0;
}

static const char *cpu_describe (struct dc_compute *c)
{
    return c ? c->desc : "cpu";
}

static const char *cpu_kernel (struct dc_compute *c)
{
    (void)c;
    return blas.get_corename ? blas.get_corename () : NULL;
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
    .kernel = cpu_kernel,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .mlp_submit = cpu_mlp_submit,
    .mlp_wait = cpu_mlp_wait,
};
