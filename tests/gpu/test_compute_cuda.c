/* test_compute_cuda.c - the cuda compute back-end against float64 references
 *
 * The comparisons of tests/unit/test_compute_cpu.c, for every dtype, with
 * per-dtype tolerances relative to the largest magnitude of the reference:
 * f32 1e-5, tf32 1e-2, f16 and bf16 2e-2.  Skips (exit 77) with the reason
 * when the back-end is not compiled in or no GPU is usable.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "gpu/compute.h"

static const struct dc_compute_ops *ops;
static struct dc_compute *cc;
static enum dc_dtype dtype;

static const enum dc_dtype dtypes[] = {DC_DTYPE_F32, DC_DTYPE_TF32,
                                       DC_DTYPE_F16, DC_DTYPE_BF16};

static double tol (void)
{
    switch (dtype) {
    case DC_DTYPE_F32:
        return 1e-5;
    case DC_DTYPE_TF32:
        return 1e-2;
    default:
        break;
    }
    return 2e-2;
}

static void open_dtype (int i)
{
    struct dc_compute_opts o = {.dtype = dtypes[i]};
    dc_error_t err;

    dtype = dtypes[i];
    cc = ops->create (&o, &err);
    ck_assert_msg (cc != NULL, "%s", err.text);
}

static void close_dtype (void)
{
    ops->destroy (cc);
    cc = NULL;
}

static uint64_t rng = 88172645463325252ULL;
static double urand (void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ULL << 52) - 1.0;
}

static float *rand_floats (size_t n, double scale)
{
    float *p = malloc (n * sizeof (float));
    ck_assert_ptr_nonnull (p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(scale * urand ());
    return p;
}

/* device copy of host memory */
static void *dev (const void *h, size_t bytes)
{
    dc_error_t err;
    void *d = ops->alloc (cc, bytes, &err);
    ck_assert_msg (d != NULL, "%s", err.text);
    ck_assert_msg (ops->copy_in (cc, d, h, bytes, &err) == 0, "%s", err.text);
    return d;
}

static void host (void *h, const void *d, size_t bytes)
{
    dc_error_t err;
    ck_assert_msg (ops->copy_out (cc, h, d, bytes, &err) == 0, "%s", err.text);
}

static double ref_act (enum dc_act act, double v)
{
    switch (act) {
    case DC_ACT_RELU:
        return v > 0 ? v : 0;
    case DC_ACT_GELU:
        return 0.5 * v *
               (1.0 + tanh (sqrt (2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case DC_ACT_TANH:
        return tanh (v);
    case DC_ACT_NONE:
        break;
    }
    return v;
}

static void ref_linear (int m, int n, int k, const double *x, const double *w,
                        const double *b, enum dc_act act, double *y, double *z)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = b ? b[j] : 0.0;
            for (int p = 0; p < k; p++)
                s += x[i * k + p] * w[j * k + p];
            if (z)
                z[i * n + j] = s;
            y[i * n + j] = ref_act (act, s);
        }
}

static double *to_double (const float *f, size_t n)
{
    double *d = malloc (n * sizeof (double));
    ck_assert_ptr_nonnull (d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

static double rel_err (const float *a, const double *b, size_t n)
{
    double e = 0.0, mx = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs ((double)a[i] - b[i]);
        if (d > e)
            e = d;
        if (fabs (b[i]) > mx)
            mx = fabs (b[i]);
    }
    return e / mx;
}

static const enum dc_act all_acts[] = {DC_ACT_NONE, DC_ACT_RELU, DC_ACT_GELU,
                                       DC_ACT_TANH};

/* _i = dtype * 4 + activation */
START_TEST (test_linear_fwd)
{
    const int m = 33, n = 70, k = 65;
    enum dc_act act = all_acts[_i % 4];
    dc_error_t err;

    open_dtype (_i / 4);
    float *x = rand_floats ((size_t)m * k, 1.0);
    float *w = rand_floats ((size_t)n * k, 0.5);
    float *b = rand_floats ((size_t)n, 1.0);
    float *y = calloc ((size_t)m * n, sizeof (float));
    float *z = calloc ((size_t)m * n, sizeof (float));
    double *xd = to_double (x, (size_t)m * k);
    double *wd = to_double (w, (size_t)n * k), *bd = to_double (b, n);
    double *yd = malloc ((size_t)m * n * sizeof (double));
    double *zd = malloc ((size_t)m * n * sizeof (double));
    float *dx = dev (x, (size_t)m * k * 4), *dw = dev (w, (size_t)n * k * 4);
    float *db = dev (b, (size_t)n * 4);
    float *dy = ops->alloc (cc, (size_t)m * n * 4, &err);
    float *dz = ops->alloc (cc, (size_t)m * n * 4, &err);

    ref_linear (m, n, k, xd, wd, bd, act, yd, zd);
    /* fused epilogue (no z) and the training form (z kept) */
    ck_assert_msg (
        ops->linear_fwd (cc, m, n, k, dx, dw, db, act, dy, NULL, &err) == 0,
        "%s", err.text);
    host (y, dy, (size_t)m * n * 4);
    ck_assert_msg (rel_err (y, yd, (size_t)m * n) < tol (), "%s %s err %g",
                   dc_dtype_name (dtype), dc_act_name (act),
                   rel_err (y, yd, (size_t)m * n));
    ck_assert_msg (
        ops->linear_fwd (cc, m, n, k, dx, dw, db, act, dy, dz, &err) == 0, "%s",
        err.text);
    host (y, dy, (size_t)m * n * 4);
    host (z, dz, (size_t)m * n * 4);
    ck_assert (rel_err (y, yd, (size_t)m * n) < tol ());
    ck_assert (rel_err (z, zd, (size_t)m * n) < tol ());
    ops->free (cc, dx), ops->free (cc, dw), ops->free (cc, db);
    ops->free (cc, dy), ops->free (cc, dz);
    free (x), free (w), free (b), free (y), free (z);
    free (xd), free (wd), free (bd), free (yd), free (zd);
    close_dtype ();
}
END_TEST

static double ref_obj (int m, int n, int k, const double *x, const double *w,
                       const double *b, enum dc_act act, const double *g)
{
    double *y = malloc ((size_t)m * n * sizeof (double)), s = 0.0;
    ref_linear (m, n, k, x, w, b, act, y, NULL);
    for (int i = 0; i < m * n; i++)
        s += g[i] * y[i];
    free (y);
    return s;
}

static double fd (int m, int n, int k, double *x, double *w, double *b,
                  enum dc_act act, const double *g, double *v, int idx)
{
    const double h = 1e-6;
    double keep = v[idx], lp, lm;
    v[idx] = keep + h;
    lp = ref_obj (m, n, k, x, w, b, act, g);
    v[idx] = keep - h;
    lm = ref_obj (m, n, k, x, w, b, act, g);
    v[idx] = keep;
    return (lp - lm) / (2 * h);
}

START_TEST (test_linear_bwd)
{
    enum dc_act act = all_acts[_i % 4];
    const int m = 8, n = 6, k = 5;
    dc_error_t err;

    open_dtype (_i / 4);
    double t = tol () > 1e-4 ? tol () : 1e-4;
    float *x = rand_floats (m * k, 1.0), *w = rand_floats (n * k, 1.0);
    float *b = rand_floats (n, 1.0), *g = rand_floats (m * n, 1.0);
    float hx[m * k], hw[n * k], hb[n];
    double *xd = to_double (x, m * k), *wd = to_double (w, n * k);
    double *bd = to_double (b, n), *gd = to_double (g, m * n);
    double rx[m * k], rw[n * k], rb[n];
    float *dx = dev (x, sizeof (float) * m * k);
    float *dw = dev (w, sizeof (float) * n * k);
    float *db = dev (b, sizeof (float) * n);
    float *dg = dev (g, sizeof (float) * m * n);
    float *dy = ops->alloc (cc, sizeof (float) * m * n, &err);
    float *dz = ops->alloc (cc, sizeof (float) * m * n, &err);
    float *gx = ops->alloc (cc, sizeof (float) * m * k, &err);
    float *gw = ops->alloc (cc, sizeof (float) * n * k, &err);
    float *gb = ops->alloc (cc, sizeof (float) * n, &err);

    ck_assert_msg (
        ops->linear_fwd (cc, m, n, k, dx, dw, db, act, dy, dz, &err) == 0, "%s",
        err.text);
    ck_assert_msg (ops->linear_bwd (cc, m, n, k, dx, dw, dz, act, dg, gx, gw,
                                    gb, &err) == 0,
                   "%s", err.text);
    host (hx, gx, sizeof (hx));
    host (hw, gw, sizeof (hw));
    host (hb, gb, sizeof (hb));
    for (int i = 0; i < m * k; i++)
        rx[i] = fd (m, n, k, xd, wd, bd, act, gd, xd, i);
    for (int i = 0; i < n * k; i++)
        rw[i] = fd (m, n, k, xd, wd, bd, act, gd, wd, i);
    for (int i = 0; i < n; i++)
        rb[i] = fd (m, n, k, xd, wd, bd, act, gd, bd, i);
    ck_assert_msg (rel_err (hx, rx, m * k) < t, "%s %s dx %g",
                   dc_dtype_name (dtype), dc_act_name (act),
                   rel_err (hx, rx, m * k));
    ck_assert_msg (rel_err (hw, rw, n * k) < t, "%s %s dw %g",
                   dc_dtype_name (dtype), dc_act_name (act),
                   rel_err (hw, rw, n * k));
    ck_assert_msg (rel_err (hb, rb, n) < t, "%s %s db %g",
                   dc_dtype_name (dtype), dc_act_name (act),
                   rel_err (hb, rb, n));
    ops->free (cc, dx), ops->free (cc, dw), ops->free (cc, db);
    ops->free (cc, dg), ops->free (cc, dy), ops->free (cc, dz);
    ops->free (cc, gx), ops->free (cc, gw), ops->free (cc, gb);
    free (x), free (w), free (b), free (g);
    free (xd), free (wd), free (bd), free (gd);
    close_dtype ();
}
END_TEST

static double ref_loss (enum dc_loss kind, int m, int n, const double *y,
                        const void *t)
{
    double s = 0.0;
    for (int i = 0; i < m; i++) {
        if (kind == DC_LOSS_MSE) {
            const float *tf = t;
            double rs = 0.0;
            for (int j = 0; j < n; j++)
                rs += (y[i * n + j] - tf[i * n + j]) *
                      (y[i * n + j] - tf[i * n + j]);
            s += rs / n;
        } else {
            const int64_t *lab = t;
            double se = 0.0;
            for (int j = 0; j < n; j++)
                se += exp (y[i * n + j]);
            s += log (se) - y[i * n + lab[i]];
        }
    }
    return s;
}

/* losses, optimizers and the hostile cases: dtype-independent (f32) */
START_TEST (test_loss)
{
    enum dc_loss kind = _i % 2 ? DC_LOSS_XENT : DC_LOSS_MSE;
    size_t scale = _i < 2 ? 5 : 20;
    const int m = 5, n = 300; /* wider than a block */
    float *y = rand_floats (m * n, 3.0), *tf = rand_floats (m * n, 1.0);
    int64_t lab[5] = {0, 299, 1, 150, 3};
    const void *t = kind == DC_LOSS_MSE ? (const void *)tf : (const void *)lab;
    size_t tb = kind == DC_LOSS_MSE ? sizeof (float) * m * n : sizeof (lab);
    float *dyh = malloc (sizeof (float) * m * n);
    double *yd = to_double (y, m * n), loss;
    double *rd = malloc (sizeof (double) * m * n);
    dc_error_t err;

    open_dtype (0);
    float *dy = dev (y, sizeof (float) * m * n);
    void *dt = dev (t, tb);
    float *dg = ops->alloc (cc, sizeof (float) * m * n, &err);
    ck_assert_msg (ops->loss (cc, kind, m, n, dy, dt, scale, dg, &loss, &err) ==
                       0,
                   "%s", err.text);
    host (dyh, dg, sizeof (float) * m * n);
    double want = ref_loss (kind, m, n, yd, t);
    ck_assert_msg (fabs (loss - want) < 1e-6 * fabs (want), "loss %g want %g",
                   loss, want);
    for (int i = 0; i < m * n; i++) {
        double keep = yd[i], h = 1e-6, lp, lm;
        yd[i] = keep + h;
        lp = ref_loss (kind, m, n, yd, t);
        yd[i] = keep - h;
        lm = ref_loss (kind, m, n, yd, t);
        yd[i] = keep;
        rd[i] = (lp - lm) / (2 * h) / (double)scale;
    }
    ck_assert_msg (rel_err (dyh, rd, m * n) < 1e-4, "dy err %g",
                   rel_err (dyh, rd, m * n));
    /* a label outside [0, n) */
    if (kind == DC_LOSS_XENT) {
        int64_t bad[5] = {0, 1, 300, 2, -1};
        void *dbad = dev (bad, sizeof (bad));
        ck_assert_int_eq (
            ops->loss (cc, kind, m, n, dy, dbad, scale, dg, &loss, &err), -1);
        ck_assert_msg (strstr (err.text, "label 300 of row 2"), "%s", err.text);
        ops->free (cc, dbad);
    }
    ops->free (cc, dy), ops->free (cc, dt), ops->free (cc, dg);
    free (y), free (tf), free (dyh), free (yd), free (rd);
    close_dtype ();
}
END_TEST

START_TEST (test_optimizers)
{
    const size_t n = 1000;
    float *w = rand_floats (n, 1.0), *w2 = malloc (n * 4), *h = malloc (n * 4);
    double *wr = to_double (w, n), *vr = calloc (n, 8), *mr = calloc (n, 8);
    double *wa = to_double (w, n), *va = calloc (n, 8);
    dc_error_t err;

    open_dtype (0);
    float *dw = dev (w, n * 4), *dv = ops->alloc (cc, n * 4, &err);
    float *dw2 = dev (w, n * 4), *dm = ops->alloc (cc, n * 4, &err);
    float *dv2 = ops->alloc (cc, n * 4, &err);
    for (int step = 1; step <= 5; step++) {
        float *g = rand_floats (n, 1.0);
        float *dg = dev (g, n * 4);
        ck_assert (ops->sgd (cc, dw, dg, dv, n, 0.05f, 0.9f, &err) == 0);
        ck_assert (ops->adam (cc, dw2, dg, dm, dv2, n, 1e-2f, 0.9f, 0.999f,
                              1e-8f, step, &err) == 0);
        for (size_t i = 0; i < n; i++) {
            vr[i] = 0.9 * vr[i] + g[i];
            wr[i] -= 0.05 * vr[i];
            mr[i] = 0.9 * mr[i] + 0.1 * g[i];
            va[i] = 0.999 * va[i] + 0.001 * (double)g[i] * g[i];
            wa[i] -= 1e-2 * (mr[i] / (1 - pow (0.9, step))) /
                     (sqrt (va[i] / (1 - pow (0.999, step))) + 1e-8);
        }
        ops->free (cc, dg);
        free (g);
    }
    host (h, dw, n * 4);
    ck_assert_msg (rel_err (h, wr, n) < 1e-5, "sgd %g", rel_err (h, wr, n));
    host (w2, dw2, n * 4);
    ck_assert_msg (rel_err (w2, wa, n) < 1e-5, "adam %g", rel_err (w2, wa, n));
    ops->free (cc, dw), ops->free (cc, dv), ops->free (cc, dw2);
    ops->free (cc, dm), ops->free (cc, dv2);
    free (w), free (w2), free (h), free (wr), free (vr), free (mr);
    free (wa), free (va);
    close_dtype ();
}
END_TEST

/* _i = dtype * 4 + chunking case */
START_TEST (test_mlp_infer)
{
    static const int dims[] = {40, 64, 33, 7};
    static const size_t chunks[] = {0, 1, 16, 1000};
    enum dc_act acts[] = {DC_ACT_RELU, DC_ACT_TANH, DC_ACT_GELU};
    const size_t rows = 100;
    struct dc_layer_view lv[3];
    float *x = rand_floats (rows * dims[0], 1.0);
    float *y = malloc (rows * 7 * sizeof (float));
    double *a = to_double (x, rows * dims[0]);
    dc_error_t err;

    dtype = dtypes[_i / 4];
    for (int l = 0; l < 3; l++)
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * dims[l + 1], 0.3),
            .b = rand_floats ((size_t)dims[l + 1], 0.5)};
    for (int l = 0; l < 3; l++) {
        double *wd = to_double (lv[l].w, (size_t)dims[l] * dims[l + 1]);
        double *bd = to_double (lv[l].b, dims[l + 1]);
        double *o = malloc (rows * dims[l + 1] * sizeof (double));
        ref_linear ((int)rows, dims[l + 1], dims[l], a, wd, bd, acts[l], o,
                    NULL);
        free (a), free (wd), free (bd);
        a = o;
    }
    struct dc_compute_opts o = {.dtype = dtype,
                                .chunk_rows = chunks[_i % 4],
                                .streams = _i % 2 ? 3 : 0};
    cc = ops->create (&o, &err);
    ck_assert_msg (cc != NULL, "%s", err.text);
    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    struct dc_mlp_dev *net = ops->mlp_load (cc, &view, &err);
    ck_assert_msg (net != NULL, "%s", err.text);
    for (int rep = 0; rep < 2; rep++) { /* staging reused */
        memset (y, 0, rows * 7 * sizeof (float));
        ck_assert_msg (ops->mlp_infer (cc, net, x, rows, 0, y, &err) == 0, "%s",
                       err.text);
        ck_assert_msg (rel_err (y, a, rows * 7) < 2 * tol (),
                       "%s chunk %zu err %g", dc_dtype_name (dtype),
                       chunks[_i % 4], rel_err (y, a, rows * 7));
    }
    /* fewer rows than before */
    ck_assert (ops->mlp_infer (cc, net, x, 3, 0, y, &err) == 0);
    ck_assert (rel_err (y, a, 3 * 7) < 2 * tol ());
    ops->mlp_unload (cc, net);
    lv[1].in = 5;
    ck_assert_ptr_null (ops->mlp_load (cc, &view, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "layer 1 has 5 inputs"));
    close_dtype ();
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    free (x), free (y), free (a);
}
END_TEST

START_TEST (test_gemm)
{
    const int m = 50, n = 70, k = 30;
    float *a = rand_floats (m * k, 1.0), *b = rand_floats (k * n, 1.0);
    float *c = malloc (sizeof (float) * m * n);
    double *r = calloc ((size_t)m * n, sizeof (double));
    dc_error_t err;

    open_dtype (_i);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                r[i * n + j] += (double)a[i * k + p] * b[p * n + j];
    float *da = dev (a, sizeof (float) * m * k);
    float *dbb = dev (b, sizeof (float) * k * n);
    float *dc = ops->alloc (cc, sizeof (float) * m * n, &err);
    ck_assert_msg (ops->gemm (cc, m, n, k, da, dbb, dc, &err) == 0, "%s",
                   err.text);
    host (c, dc, sizeof (float) * m * n);
    ck_assert_msg (rel_err (c, r, m * n) < tol (), "%s gemm err %g",
                   dc_dtype_name (dtype), rel_err (c, r, m * n));
    ck_assert_ptr_nonnull (strstr (ops->describe (cc), "cuda device"));
    ops->free (cc, da), ops->free (cc, dbb), ops->free (cc, dc);
    free (a), free (b), free (c), free (r);
    close_dtype ();
}
END_TEST

START_TEST (test_hostile)
{
    dc_error_t err;
    struct dc_compute_opts bad = {.device = 1000};
    float h[4] = {0};

    open_dtype (0);
    float *d = dev (h, sizeof (h));
    ck_assert_int_eq (
        ops->linear_fwd (cc, 0, 2, 2, d, d, d, DC_ACT_NONE, d, NULL, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "bad shape"));
    ck_assert_int_eq (
        ops->linear_fwd (cc, 2, 2, 2, NULL, d, d, DC_ACT_NONE, d, NULL, &err),
        -1);
    ck_assert_int_eq (ops->linear_bwd (cc, 2, 2, 2, d, d, NULL, DC_ACT_GELU, d,
                                       NULL, d, d, &err),
                      -1);
    ck_assert_int_eq (ops->gemm (cc, 2, 0, 2, d, d, d, &err), -1);
    ck_assert_ptr_null (ops->alloc (cc, 0, &err));
    ck_assert_ptr_null (ops->mlp_load (cc, NULL, &err));
    ops->free (cc, d);
    close_dtype ();
    ck_assert_ptr_null (ops->create (&bad, &err));
    ck_assert_msg (strstr (err.text, "device 1000"), "%s", err.text);
}
END_TEST

/* The cuda back-end's guarantee (README, dcrun(1)): the same bytes for
 * the same chunking and dtype, in every run, in another instance and
 * whatever the number of streams. */
START_TEST (test_determinism)
{
    static const int dims[] = {96, 256, 128, 10};
    enum dc_act acts[] = {DC_ACT_GELU, DC_ACT_RELU, DC_ACT_NONE};
    const size_t rows = 3000, chunk = 512;
    struct dc_layer_view lv[3];
    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    float *x = rand_floats (rows * dims[0], 1.0);
    float *ref = malloc (rows * 10 * sizeof (float));
    float *y = malloc (rows * 10 * sizeof (float));
    dc_error_t err;

    dtype = dtypes[_i];
    for (int l = 0; l < 3; l++)
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * dims[l + 1], 0.2),
            .b = rand_floats ((size_t)dims[l + 1], 0.5)};
    for (int run = 0; run < 3; run++) {
        struct dc_compute_opts o = {
            .dtype = dtype, .chunk_rows = chunk, .streams = run == 2 ? 3 : 2};
        struct dc_compute *c = ops->create (&o, &err);
        ck_assert_msg (c != NULL, "%s", err.text);
        struct dc_mlp_dev *net = ops->mlp_load (c, &view, &err);
        ck_assert_msg (net != NULL, "%s", err.text);
        for (int rep = 0; rep < 2; rep++) {
            float *dst = run == 0 && rep == 0 ? ref : y;
            ck_assert_msg (ops->mlp_infer (c, net, x, rows, 0, dst, &err) == 0,
                           "%s", err.text);
            if (dst == y)
                ck_assert_msg (!memcmp (y, ref, rows * 10 * sizeof (float)),
                               "%s: run %d, repeat %d: other bytes",
                               dc_dtype_name (dtype), run, rep);
        }
        ops->mlp_unload (c, net);
        ops->destroy (c);
    }
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    free (x), free (y), free (ref);
}
END_TEST

/* mlp_submit/mlp_wait from pinned host_alloc buffers: the bytes of
 * mlp_infer for the same rows, with both slots in flight at once; _i =
 * dtype * 2 + (default chunking, 64-row chunks on 3 streams). */
START_TEST (test_submit)
{
    static const int dims[] = {40, 64, 33, 7};
    static const size_t rows[] = {1, 7, 100, 3001};
    enum dc_act acts[] = {DC_ACT_GELU, DC_ACT_TANH, DC_ACT_RELU};
    const size_t maxr = 3001;
    struct dc_layer_view lv[3];
    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    float *x = rand_floats ((maxr + 1) * dims[0], 1.0); /* slot 1: from 1 */
    float *ref = malloc (maxr * 7 * sizeof (float));
    float *xs[DC_COMPUTE_SLOTS], *ys[DC_COMPUTE_SLOTS];
    dc_error_t err;

    dtype = dtypes[_i / 2];
    for (int l = 0; l < 3; l++)
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * dims[l + 1], 0.3),
            .b = rand_floats ((size_t)dims[l + 1], 0.5)};
    struct dc_compute_opts o = {.dtype = dtype,
                                .chunk_rows = _i % 2 ? 64 : 0,
                                .streams = _i % 2 ? 3 : 0};
    cc = ops->create (&o, &err);
    ck_assert_msg (cc != NULL, "%s", err.text);
    struct dc_mlp_dev *net = ops->mlp_load (cc, &view, &err);
    ck_assert_msg (net != NULL, "%s", err.text);
    ck_assert_ptr_nonnull (ops->host_alloc);
    ck_assert_ptr_nonnull (ops->mlp_submit);
    for (int s = 0; s < DC_COMPUTE_SLOTS; s++) {
        xs[s] = dc_compute_host_alloc (ops, cc, maxr * dims[0] * 4, &err);
        ys[s] = dc_compute_host_alloc (ops, cc, maxr * 7 * 4, &err);
        ck_assert_msg (xs[s] && ys[s], "%s", err.text);
        ck_assert ((uintptr_t)xs[s] % 64 == 0 && (uintptr_t)ys[s] % 64 == 0);
    }
    for (size_t r = 0; r < sizeof (rows) / sizeof (rows[0]); r++) {
        size_t n = rows[r], m = rows[(r + 1) % 4];
        memcpy (xs[0], x, n * dims[0] * sizeof (float));
        memcpy (xs[1], x + dims[0], m * dims[0] * sizeof (float));
        memset (ys[0], 0xff, n * 7 * sizeof (float));
        memset (ys[1], 0xff, m * 7 * sizeof (float));
        /* both slots in flight */
        ck_assert_msg (dc_compute_mlp_submit (ops, cc, net, 0, xs[0], n, 0,
                                              ys[0], &err) == 0,
                       "%s", err.text);
        ck_assert_msg (dc_compute_mlp_submit (ops, cc, net, 1, xs[1], m, 1,
                                              ys[1], &err) == 0,
                       "%s", err.text);
        ck_assert_int_eq (
            dc_compute_mlp_submit (ops, cc, net, 1, xs[1], m, 1, ys[1], &err),
            -1);
        ck_assert_msg (strstr (err.text, "in flight"), "%s", err.text);
        ck_assert_msg (dc_compute_mlp_wait (ops, cc, net, 1, &err) == 0, "%s",
                       err.text);
        ck_assert_msg (dc_compute_mlp_wait (ops, cc, net, 0, &err) == 0, "%s",
                       err.text);
        ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, net, 0, &err), 0);
        ck_assert (ops->mlp_infer (cc, net, x, n, 0, ref, &err) == 0);
        ck_assert_msg (!memcmp (ys[0], ref, n * 7 * sizeof (float)),
                       "%s: %zu rows in slot 0: other bytes than mlp_infer",
                       dc_dtype_name (dtype), n);
        ck_assert (ops->mlp_infer (cc, net, x + dims[0], m, 1, ref, &err) == 0);
        ck_assert_msg (!memcmp (ys[1], ref, m * 7 * sizeof (float)),
                       "%s: %zu rows in slot 1: other bytes than mlp_infer",
                       dc_dtype_name (dtype), m);
    }
    ck_assert_int_eq (dc_compute_mlp_submit (ops, cc, net, DC_COMPUTE_SLOTS,
                                             xs[0], 1, 0, ys[0], &err),
                      -1);
    ck_assert_msg (strstr (err.text, "out of range"), "%s", err.text);
    ck_assert_ptr_null (dc_compute_host_alloc (ops, cc, 0, &err));
    for (int s = 0; s < DC_COMPUTE_SLOTS; s++) {
        dc_compute_host_free (ops, cc, xs[s]);
        dc_compute_host_free (ops, cc, ys[s]);
    }
    ops->mlp_unload (cc, net);
    close_dtype ();
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    free (x), free (ref);
}
END_TEST

int main (void)
{
    dc_error_t err;
    Suite *s;
    TCase *tc;

    char why[sizeof (err.text) + 16];
    if (!(ops = dc_compute_find ("cuda", &err)) || ops->probe (&err) != 1) {
        /* not built, module not loaded, or no device */
        snprintf (why, sizeof (why), "no GPU: %s", err.text);
        return dc_check_skip (why);
    }
    s = suite_create ("compute_cuda");
    tc = tcase_create ("ops");
    tcase_set_timeout (tc, 120);
    tcase_add_loop_test (tc, test_linear_fwd, 0, 16);
    tcase_add_loop_test (tc, test_linear_bwd, 0, 16);
    tcase_add_loop_test (tc, test_loss, 0, 4);
    tcase_add_test (tc, test_optimizers);
    tcase_add_loop_test (tc, test_mlp_infer, 0, 16);
    tcase_add_loop_test (tc, test_determinism, 0, 4);
    tcase_add_loop_test (tc, test_submit, 0, 8);
    tcase_add_loop_test (tc, test_gemm, 0, 4);
    tcase_add_test (tc, test_hostile);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
