/* test_compute_cpu.c - the cpu compute back-end against float64 references
 *
 * Forward ops against a float64 reference computed here, backward against
 * finite differences of that reference (float64, tiny problems), optimizer
 * steps against hand-written torch.optim formulas, hostile arguments.
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

static void setup (void)
{
    struct dc_compute_opts o = {.dtype = DC_DTYPE_F32, .threads = 1};
    dc_error_t err;

    ops = dc_compute_find ("cpu", &err);
    ck_assert_msg (ops != NULL, "%s", err.text);
    cc = ops->create (&o, &err);
    ck_assert_msg (cc != NULL, "%s", err.text);
}

static void teardown (void)
{
    ops->destroy (cc);
    cc = NULL;
}

/* deterministic pseudo-random values in [-1, 1) */
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

static double ref_act (enum dc_act act, double v)
{
    switch (act) {
    case DC_ACT_RELU:
        return v > 0 ? v : 0;
    case DC_ACT_GELU: /* torch approximate='tanh' */
        return 0.5 * v *
               (1.0 + tanh (sqrt (2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case DC_ACT_TANH:
        return tanh (v);
    case DC_ACT_NONE:
        break;
    }
    return v;
}

/* float64 reference of linear_fwd; x, w, b given in double */
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

/* max |a - b| relative to max |b| */
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

START_TEST (test_linear_fwd)
{
    /* shapes: odd sizes, a single row, a single output, wider than 64 */
    static const int shapes[][3] = {
        {7, 5, 9}, {1, 3, 4}, {6, 1, 2}, {33, 70, 65}};
    enum dc_act act = all_acts[_i % 4];
    const int *s = shapes[_i / 4];
    int m = s[0], n = s[1], k = s[2];
    dc_error_t err;

    float *x = rand_floats ((size_t)m * k, 2.0);
    float *w = rand_floats ((size_t)n * k, 1.0);
    float *b = rand_floats ((size_t)n, 1.0);
    float *y = calloc ((size_t)m * n, sizeof (float));
    float *z = calloc ((size_t)m * n, sizeof (float));
    double *xd = to_double (x, (size_t)m * k),
           *wd = to_double (w, (size_t)n * k);
    double *bd = to_double (b, (size_t)n);
    double *yd = calloc ((size_t)m * n, sizeof (double));
    double *zd = calloc ((size_t)m * n, sizeof (double));

    ref_linear (m, n, k, xd, wd, bd, act, yd, zd);
    ck_assert_int_eq (ops->linear_fwd (cc, m, n, k, x, w, b, act, y, z, &err),
                      0);
    ck_assert_msg (rel_err (y, yd, (size_t)m * n) < 1e-5, "%s y err %g",
                   dc_act_name (act), rel_err (y, yd, (size_t)m * n));
    ck_assert_msg (rel_err (z, zd, (size_t)m * n) < 1e-5, "%s z err %g",
                   dc_act_name (act), rel_err (z, zd, (size_t)m * n));
    /* z may be NULL */
    memset (y, 0, (size_t)m * n * sizeof (float));
    ck_assert_int_eq (
        ops->linear_fwd (cc, m, n, k, x, w, b, act, y, NULL, &err), 0);
    ck_assert (rel_err (y, yd, (size_t)m * n) < 1e-5);
    free (x), free (w), free (b), free (y), free (z);
    free (xd), free (wd), free (bd), free (yd), free (zd);
}
END_TEST

/* Known values of torch.nn.functional.gelu(x, approximate='tanh') */
START_TEST (test_gelu_values)
{
    static const struct {
        float x, y;
    } cases[] = {
        {-3.0f, -0.0036374331f}, {-1.0f, -0.1588079929f}, {0.0f, 0.0f},
        {0.5f, 0.3457140028f},   {1.0f, 0.8411920071f},   {3.0f, 2.9963626862f},
    };
    size_t n = sizeof (cases) / sizeof (cases[0]);
    dc_error_t err;
    float w = 1.0f, b = 0.0f;

    for (size_t i = 0; i < n; i++) {
        float y;
        ck_assert_int_eq (ops->linear_fwd (cc, 1, 1, 1, &cases[i].x, &w, &b,
                                           DC_ACT_GELU, &y, NULL, &err),
                          0);
        ck_assert_msg (fabsf (y - cases[i].y) < 1e-6f, "gelu(%g) = %.9g",
                       cases[i].x, y);
    }
}
END_TEST

/* L(x, w, b) = sum_ij g_ij * act (x w^T + b)_ij in float64 */
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

/* central difference of ref_obj with respect to v[idx] */
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
    enum dc_act act = all_acts[_i];
    const int m = 4, n = 3, k = 5;
    dc_error_t err;

    float *x = rand_floats (m * k, 2.0), *w = rand_floats (n * k, 1.0);
    float *b = rand_floats (n, 1.0), *g = rand_floats (m * n, 1.0);
    float y[m * n], z[m * n], dy[m * n], dx[m * k], dw[n * k], db[n];
    double *xd = to_double (x, m * k), *wd = to_double (w, n * k);
    double *bd = to_double (b, n), *gd = to_double (g, m * n);
    double rx[m * k], rw[n * k], rb[n];

    ck_assert_int_eq (ops->linear_fwd (cc, m, n, k, x, w, b, act, y, z, &err),
                      0);
    memcpy (dy, g, sizeof (dy));
    memset (dw, 0x7f, sizeof (dw)); /* overwritten, not accumulated */
    memset (db, 0x7f, sizeof (db));
    ck_assert_int_eq (
        ops->linear_bwd (cc, m, n, k, x, w, z, act, dy, dx, dw, db, &err), 0);
    for (int i = 0; i < m * k; i++)
        rx[i] = fd (m, n, k, xd, wd, bd, act, gd, xd, i);
    for (int i = 0; i < n * k; i++)
        rw[i] = fd (m, n, k, xd, wd, bd, act, gd, wd, i);
    for (int i = 0; i < n; i++)
        rb[i] = fd (m, n, k, xd, wd, bd, act, gd, bd, i);
    ck_assert_msg (rel_err (dx, rx, m * k) < 1e-4, "%s dx %g",
                   dc_act_name (act), rel_err (dx, rx, m * k));
    ck_assert_msg (rel_err (dw, rw, n * k) < 1e-4, "%s dw %g",
                   dc_act_name (act), rel_err (dw, rw, n * k));
    ck_assert_msg (rel_err (db, rb, n) < 1e-4, "%s db %g", dc_act_name (act),
                   rel_err (db, rb, n));

    /* dx may be NULL (first layer); dw and db are the same */
    float dw2[n * k], db2[n];
    memcpy (dy, g, sizeof (dy));
    ck_assert_int_eq (
        ops->linear_bwd (cc, m, n, k, x, w, z, act, dy, NULL, dw2, db2, &err),
        0);
    ck_assert (memcmp (dw, dw2, sizeof (dw)) == 0);
    ck_assert (memcmp (db, db2, sizeof (db)) == 0);
    free (x), free (w), free (b), free (g);
    free (xd), free (wd), free (bd), free (gd);
}
END_TEST

/* float64 reference losses: mean over all elements (MSE), mean over rows of
 * softmax cross-entropy (XENT), summed over rows as loss_sum documents */
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

START_TEST (test_loss)
{
    enum dc_loss kind = _i % 2 ? DC_LOSS_XENT : DC_LOSS_MSE;
    size_t scale = _i < 2 ? 5 : 20; /* own batch, or part of a larger one */
    const int m = 5, n = 4;
    float *y = rand_floats (m * n, 3.0), *tf = rand_floats (m * n, 1.0);
    int64_t lab[5] = {0, 3, 1, 2, 3};
    const void *t = kind == DC_LOSS_MSE ? (const void *)tf : (const void *)lab;
    float dy[m * n];
    double *yd = to_double (y, m * n), loss, rd[m * n];
    dc_error_t err;

    ck_assert_int_eq (ops->loss (cc, kind, m, n, y, t, scale, dy, &loss, &err),
                      0);
    double want = ref_loss (kind, m, n, yd, t);
    ck_assert_msg (fabs (loss - want) < 1e-6 * fabs (want), "loss %g want %g",
                   loss, want);
    /* gradient of the mean loss over the global batch of `scale` rows */
    for (int i = 0; i < m * n; i++) {
        double keep = yd[i], h = 1e-6, lp, lm;
        yd[i] = keep + h;
        lp = ref_loss (kind, m, n, yd, t);
        yd[i] = keep - h;
        lm = ref_loss (kind, m, n, yd, t);
        yd[i] = keep;
        rd[i] = (lp - lm) / (2 * h) / (double)scale;
    }
    ck_assert_msg (rel_err (dy, rd, m * n) < 1e-4, "dy err %g",
                   rel_err (dy, rd, m * n));
    free (y), free (tf), free (yd);
}
END_TEST

START_TEST (test_xent_stable)
{
    /* huge logits: a naive exp overflows */
    float y[6] = {1000.0f, 0.0f, -1000.0f, 88.0f, 89.0f, 90.0f};
    int64_t lab[2] = {0, 2};
    float dy[6];
    double loss;
    dc_error_t err;

    ck_assert_int_eq (
        ops->loss (cc, DC_LOSS_XENT, 2, 3, y, lab, 2, dy, &loss, &err), 0);
    double want = 0.0 + (log (exp (-2.0) + exp (-1.0) + 1.0));
    ck_assert_msg (fabs (loss - want) < 1e-6, "loss %g want %g", loss, want);
    for (int i = 0; i < 6; i++)
        ck_assert (isfinite (dy[i]));
    ck_assert (fabsf (dy[0]) < 1e-6f);
}
END_TEST

START_TEST (test_sgd)
{
    const size_t n = 11;
    float *w = rand_floats (n, 1.0), v[11] = {0};
    double wr[11], vr[11] = {0};
    const float lr = 0.05f, mom = 0.9f;
    dc_error_t err;

    for (size_t i = 0; i < n; i++)
        wr[i] = w[i];
    for (int step = 0; step < 5; step++) {
        float *g = rand_floats (n, 1.0);
        ck_assert_int_eq (ops->sgd (cc, w, g, v, n, lr, mom, &err), 0);
        for (size_t i = 0; i < n; i++) {
            /* torch.optim.SGD: buf = momentum * buf + g; p -= lr * buf */
            vr[i] = (double)mom * vr[i] + g[i];
            wr[i] -= (double)lr * vr[i];
        }
        free (g);
    }
    ck_assert (rel_err (w, wr, n) < 1e-6);
    /* momentum 0: plain step, v not needed */
    float g1[1] = {2.0f}, w1[1] = {1.0f};
    ck_assert_int_eq (ops->sgd (cc, w1, g1, NULL, 1, 0.25f, 0.0f, &err), 0);
    ck_assert_float_eq (w1[0], 0.5f);
    free (w);
}
END_TEST

START_TEST (test_adam)
{
    const size_t n = 9;
    float *w = rand_floats (n, 1.0), m[9] = {0}, v[9] = {0};
    double wr[9], mr[9] = {0}, vr[9] = {0};
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    dc_error_t err;

    for (size_t i = 0; i < n; i++)
        wr[i] = w[i];
    for (int step = 1; step <= 6; step++) {
        float *g = rand_floats (n, 1.0);
        ck_assert_int_eq (ops->adam (cc, w, g, m, v, n, (float)lr, (float)b1,
                                     (float)b2, (float)eps, step, &err),
                          0);
        for (size_t i = 0; i < n; i++) {
            /* torch.optim.Adam */
            mr[i] = b1 * mr[i] + (1 - b1) * g[i];
            vr[i] = b2 * vr[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = mr[i] / (1 - pow (b1, step));
            double vh = vr[i] / (1 - pow (b2, step));
            wr[i] -= lr * mh / (sqrt (vh) + eps);
        }
        free (g);
    }
    ck_assert_msg (rel_err (w, wr, n) < 1e-5, "adam err %g",
                   rel_err (w, wr, n));
    ck_assert (rel_err (m, mr, n) < 1e-5);
    free (w);
}
END_TEST

START_TEST (test_mlp_infer)
{
    /* 3 layers 6 -> 8 -> 5 -> 3, rows not a multiple of the chunk */
    static const int dims[] = {6, 8, 5, 3};
    static const size_t chunks[] = {0, 1, 4, 100};
    enum dc_act acts[] = {DC_ACT_RELU, DC_ACT_GELU, DC_ACT_NONE};
    const size_t rows = 10;
    struct dc_layer_view lv[3];
    float *x = rand_floats (rows * dims[0], 1.0);
    float y[10 * 3];
    double ref[10 * 3];
    dc_error_t err;

    for (int l = 0; l < 3; l++) {
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * dims[l + 1], 1.0),
            .b = rand_floats ((size_t)dims[l + 1], 1.0)};
    }
    /* reference: layer by layer in float64 */
    double *a = to_double (x, rows * dims[0]);
    for (int l = 0; l < 3; l++) {
        double *wd = to_double (lv[l].w, (size_t)dims[l] * dims[l + 1]);
        double *bd = to_double (lv[l].b, dims[l + 1]);
        double *o = malloc (rows * dims[l + 1] * sizeof (double));
        ref_linear ((int)rows, dims[l + 1], dims[l], a, wd, bd, acts[l], o,
                    NULL);
        free (a), free (wd), free (bd);
        a = o;
    }
    memcpy (ref, a, sizeof (ref));
    free (a);

    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    for (size_t c = 0; c < sizeof (chunks) / sizeof (*chunks); c++) {
        struct dc_compute_opts o = {.chunk_rows = chunks[c]};
        struct dc_compute *cx = ops->create (&o, &err);
        ck_assert_ptr_nonnull (cx);
        struct dc_mlp_dev *net = ops->mlp_load (cx, &view, &err);
        ck_assert_msg (net != NULL, "%s", err.text);
        memset (y, 0, sizeof (y));
        ck_assert_int_eq (ops->mlp_infer (cx, net, x, rows, 0, y, &err), 0);
        ck_assert_msg (rel_err (y, ref, rows * 3) < 1e-5, "chunk %zu err %g",
                       chunks[c], rel_err (y, ref, rows * 3));
        /* no rows: nothing to do */
        ck_assert_int_eq (ops->mlp_infer (cx, net, x, 0, 0, y, &err), 0);
        ops->mlp_unload (cx, net);
        ops->destroy (cx);
    }

    /* layers that do not chain: the error names both */
    lv[1].in = 7;
    ck_assert_ptr_null (ops->mlp_load (cc, &view, &err));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_msg (strstr (err.text, "layer 1 has 7 inputs but layer 0 has 8"),
                   "%s", err.text);
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    free (x);
}
END_TEST

START_TEST (test_gemm)
{
    const int m = 5, n = 7, k = 3;
    float *a = rand_floats (m * k, 1.0), *b = rand_floats (k * n, 1.0);
    float c[5 * 7];
    double r[5 * 7];
    dc_error_t err;

    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            r[i * n + j] = 0;
            for (int p = 0; p < k; p++)
                r[i * n + j] += (double)a[i * k + p] * b[p * n + j];
        }
    ck_assert_int_eq (ops->gemm (cc, m, n, k, a, b, c, &err), 0);
    ck_assert (rel_err (c, r, m * n) < 1e-6);
    free (a), free (b);
}
END_TEST

START_TEST (test_memory)
{
    dc_error_t err;
    float src[4] = {1, 2, 3, 4}, dst[4];
    float *d = ops->alloc (cc, sizeof (src), &err);

    ck_assert_ptr_nonnull (d);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq (d[i], 0.0f); /* zeroed */
    ck_assert_int_eq (ops->copy_in (cc, d, src, sizeof (src), &err), 0);
    ck_assert_int_eq (ops->copy_out (cc, dst, d, sizeof (src), &err), 0);
    ck_assert_int_eq (ops->sync (cc, &err), 0);
    ck_assert (memcmp (src, dst, sizeof (src)) == 0);
    ops->free (cc, d);
    ops->free (cc, NULL);
    ck_assert_ptr_null (ops->alloc (cc, 0, &err));
    ck_assert_int_eq (ops->copy_in (cc, NULL, src, 4, &err), -1);
    ck_assert_ptr_nonnull (strstr (ops->describe (cc), "OpenBLAS"));
}
END_TEST

/* Hostile arguments: errors with a reason, never a crash. */
START_TEST (test_hostile)
{
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 0, 0, 1}, b[2] = {0, 0}, y[4];
    float z[4], g[4] = {1, 1, 1, 1};
    int64_t bad[2] = {0, 2}, neg[2] = {-1, 0};
    double loss;
    dc_error_t err;
    struct dc_mlp_view empty = {0};
    struct dc_compute_opts f16 = {.dtype = DC_DTYPE_F16};

    err.text[0] = '\0';
    ck_assert_int_eq (
        ops->linear_fwd (cc, 0, 2, 2, x, w, b, DC_ACT_NONE, y, NULL, &err), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_nonnull (strstr (err.text, "bad shape"));
    ck_assert_int_eq (
        ops->linear_fwd (cc, 2, -1, 2, x, w, b, DC_ACT_NONE, y, NULL, &err),
        -1);
    ck_assert_int_eq (
        ops->linear_fwd (cc, 2, 2, 2, NULL, w, b, DC_ACT_NONE, y, NULL, &err),
        -1);
    ck_assert_int_eq (
        ops->linear_fwd (NULL, 2, 2, 2, x, w, b, DC_ACT_NONE, y, NULL, &err),
        -1);
    ck_assert_int_eq (
        ops->linear_fwd (cc, 2, 2, 2, x, w, b, (enum dc_act)9, y, NULL, &err),
        -1);
    ck_assert_int_eq (ops->linear_fwd (cc, 2, 2, 2, x, w, b, DC_ACT_RELU, y, z,
                                       NULL), /* errp may be NULL */
                      0);
    /* relu backward needs z */
    ck_assert_int_eq (ops->linear_bwd (cc, 2, 2, 2, x, w, NULL, DC_ACT_RELU, g,
                                       NULL, y, b, &err),
                      -1);
    ck_assert_int_eq (ops->linear_bwd (cc, 2, 2, 0, x, w, z, DC_ACT_RELU, g,
                                       NULL, y, b, &err),
                      -1);
    ck_assert_int_eq (ops->linear_bwd (cc, 2, 2, 2, x, w, z, DC_ACT_RELU, g,
                                       NULL, NULL, b, &err),
                      -1);
    /* labels outside [0, n) */
    ck_assert_int_eq (
        ops->loss (cc, DC_LOSS_XENT, 2, 2, x, bad, 2, y, &loss, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "label 2 of row 1"));
    ck_assert_int_eq (
        ops->loss (cc, DC_LOSS_XENT, 2, 2, x, neg, 2, y, &loss, &err), -1);
    ck_assert_int_eq (
        ops->loss (cc, DC_LOSS_MSE, 2, 2, x, x, 0, y, &loss, &err), -1);
    ck_assert_int_eq (
        ops->loss (cc, (enum dc_loss)7, 2, 2, x, x, 2, y, &loss, &err), -1);
    ck_assert_int_eq (
        ops->loss (cc, DC_LOSS_MSE, 0, 2, x, x, 2, y, &loss, &err), -1);
    ck_assert_int_eq (ops->sgd (cc, w, g, NULL, 4, 0.1f, 0.9f, &err), -1);
    ck_assert_int_eq (ops->sgd (cc, NULL, g, NULL, 4, 0.1f, 0.0f, &err), -1);
    ck_assert_int_eq (
        ops->adam (cc, w, g, z, y, 4, 0.1f, 0.9f, 0.999f, 1e-8f, 0, &err), -1);
    ck_assert_int_eq (
        ops->adam (cc, w, g, NULL, y, 4, 0.1f, 0.9f, 0.999f, 1e-8f, 1, &err),
        -1);
    ck_assert_int_eq (ops->gemm (cc, 0, 0, 0, x, w, y, &err), -1);
    ck_assert_int_eq (ops->gemm (cc, 2, 2, 2, x, NULL, y, &err), -1);
    ck_assert_ptr_null (ops->mlp_load (cc, &empty, &err));
    ck_assert_ptr_null (ops->mlp_load (cc, NULL, &err));
    ck_assert_int_eq (ops->mlp_infer (cc, NULL, x, 1, 0, y, &err), -1);
    /* the cpu back-end computes in f32 only */
    ck_assert_ptr_null (ops->create (&f16, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "f16"));
    ops->destroy (NULL);
    ops->mlp_unload (cc, NULL);
}
END_TEST

START_TEST (test_registry)
{
    dc_error_t err;
    enum dc_dtype dt;
    enum dc_act act;

    ck_assert_ptr_eq (dc_compute_find ("cpu", &err), ops);
    ck_assert_ptr_nonnull (dc_compute_find ("auto", &err));
    ck_assert_ptr_nonnull (dc_compute_find (NULL, &err));
    ck_assert_ptr_null (dc_compute_find ("tpu", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "'tpu'"));
    ck_assert_ptr_null (dc_compute_find ("", &err));
    ck_assert_int_eq (ops->probe (&err), 1);

    ck_assert_int_eq (dc_dtype_parse ("bf16", &dt), 0);
    ck_assert_int_eq (dt, DC_DTYPE_BF16);
    ck_assert_int_eq (dc_dtype_parse ("f64", &dt), -1);
    ck_assert_int_eq (dc_dtype_parse (NULL, &dt), -1);
    ck_assert_str_eq (dc_dtype_name (DC_DTYPE_TF32), "tf32");
    ck_assert_str_eq (dc_dtype_name ((enum dc_dtype)42), "?");
    ck_assert_int_eq (dc_act_parse ("gelu", &act), 0);
    ck_assert_int_eq (act, DC_ACT_GELU);
    ck_assert_int_eq (dc_act_parse ("GELU", &act), -1);
    ck_assert_int_eq (dc_act_parse ("", &act), -1);
    ck_assert_str_eq (dc_act_name (DC_ACT_TANH), "tanh");
}
END_TEST

/* ---- reproducible bytes: a row's bytes never depend on its neighbours,
 * the cut of the batch or the threads ---- */

#define RB DC_CPU_ROW_BLOCK
#define NBIG (3 * RB + 5 + 64)

/* Row counts to try: every one up to 70 and around each block boundary,
 * every 37th in between (a block is long: 3 blocks of every count would
 * take half a minute). */
static size_t next_count (size_t m)
{
    size_t r = m % RB;
    if (m < 70 || r < 4 || r > RB - 5)
        return m + 1;
    size_t n = m + 37;
    size_t edge = (m / RB + 1) * RB - 4; /* the next boundary's first */
    return n < edge ? n : edge;
}

static struct dc_compute *make_threads (int threads)
{
    struct dc_compute_opts o = {.dtype = DC_DTYPE_F32, .threads = threads};
    dc_error_t err;
    struct dc_compute *c = ops->create (&o, &err);
    ck_assert_msg (c != NULL, "%s", err.text);
    return c;
}

START_TEST (test_bytes_mlp_infer)
{
    static const int dims[] = {37, 50, 29, 11};
    enum dc_act acts[] = {DC_ACT_RELU, DC_ACT_GELU, DC_ACT_TANH};
    struct dc_layer_view lv[3];
    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    struct dc_compute *c1 = make_threads (1), *c2 = make_threads (2);
    float *x = rand_floats ((size_t)NBIG * dims[0], 1.0);
    float *ref = malloc ((size_t)NBIG * dims[3] * sizeof (float));
    float *y = malloc ((size_t)NBIG * dims[3] * sizeof (float));
    dc_error_t err;

    for (int l = 0; l < 3; l++)
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * dims[l + 1], 1.0),
            .b = rand_floats ((size_t)dims[l + 1], 1.0)};
    struct dc_mlp_dev *n1 = ops->mlp_load (c1, &view, &err);
    struct dc_mlp_dev *n2 = ops->mlp_load (c2, &view, &err);
    ck_assert_ptr_nonnull (n1);
    ck_assert_ptr_nonnull (n2);
    /* the whole batch in one call, one thread */
    ck_assert_int_eq (ops->mlp_infer (c1, n1, x, NBIG, 0, ref, &err), 0);
    /* every count of rows from 1 to 3 blocks + 5, at offsets that cut
     * blocks anywhere, 1 and 2 threads: the bytes of the whole batch */
    for (size_t m = 1; m <= 3 * RB + 5; m = next_count (m)) {
        size_t r0 = (m * 37) % (NBIG - m + 1);
        struct dc_compute *c = m % 2 ? c1 : c2;
        struct dc_mlp_dev *n = m % 2 ? n1 : n2;
        ck_assert_int_eq (
            ops->mlp_infer (c, n, x + r0 * dims[0], m, r0, y, &err), 0);
        ck_assert_msg (
            !memcmp (y, ref + r0 * dims[3], m * dims[3] * sizeof (float)),
            "%zu rows from row %zu (%d threads): other bytes", m, r0,
            m % 2 ? 1 : 2);
    }
    /* the whole batch with 2 threads */
    ck_assert_int_eq (ops->mlp_infer (c2, n2, x, NBIG, 0, y, &err), 0);
    ck_assert (!memcmp (y, ref, (size_t)NBIG * dims[3] * sizeof (float)));
    ops->mlp_unload (c1, n1);
    ops->mlp_unload (c2, n2);
    ops->destroy (c1);
    ops->destroy (c2);
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    free (x), free (y), free (ref);
}
END_TEST

/* linear_fwd blocks from its own row 0: the first m rows of a call of M
 * rows have the bytes of a call of m rows, with 1 or 2 threads; its
 * bytes are mlp_infer's; linear_bwd's dx, dw and db do not depend on the
 * threads. */
START_TEST (test_bytes_linear)
{
    const int n = 70, k = 45;
    struct dc_compute *c1 = make_threads (1), *c2 = make_threads (2);
    float *x = rand_floats ((size_t)NBIG * k, 1.0);
    float *w = rand_floats ((size_t)n * k, 0.5), *b = rand_floats (n, 0.5);
    float *ref = malloc ((size_t)NBIG * n * sizeof (float));
    float *zref = malloc ((size_t)NBIG * n * sizeof (float));
    float *y = malloc ((size_t)NBIG * n * sizeof (float));
    float *z = malloc ((size_t)NBIG * n * sizeof (float));
    dc_error_t err;

    ck_assert_int_eq (
        ops->linear_fwd (c1, NBIG, n, k, x, w, b, DC_ACT_GELU, ref, zref, &err),
        0);
    for (int m = 1; m <= 3 * RB + 5; m = (int)next_count ((size_t)m)) {
        struct dc_compute *c = m % 2 ? c2 : c1;
        ck_assert_int_eq (
            ops->linear_fwd (c, m, n, k, x, w, b, DC_ACT_GELU, y, z, &err), 0);
        ck_assert_msg (!memcmp (y, ref, (size_t)m * n * sizeof (float)) &&
                           !memcmp (z, zref, (size_t)m * n * sizeof (float)),
                       "linear_fwd of %d rows: other bytes", m);
    }
    /* the same layer through mlp_infer */
    struct dc_layer_view lv = {
        .in = k, .out = n, .w = w, .b = b, .act = DC_ACT_GELU};
    struct dc_mlp_view view = {.nlayers = 1, .layers = &lv};
    struct dc_mlp_dev *net = ops->mlp_load (c2, &view, &err);
    ck_assert_ptr_nonnull (net);
    ck_assert_int_eq (ops->mlp_infer (c2, net, x, NBIG, 0, y, &err), 0);
    ck_assert (!memcmp (y, ref, (size_t)NBIG * n * sizeof (float)));
    ops->mlp_unload (c2, net);

    /* backward, 1 and 2 threads, a partial last block */
    float *dy1 = rand_floats ((size_t)NBIG * n, 1.0);
    float *dy2 = malloc ((size_t)NBIG * n * sizeof (float));
    memcpy (dy2, dy1, (size_t)NBIG * n * sizeof (float));
    float *dx1 = malloc ((size_t)NBIG * k * 4),
          *dx2 = malloc ((size_t)NBIG * k * 4);
    float *dw1 = malloc ((size_t)n * k * 4), *dw2 = malloc ((size_t)n * k * 4);
    float db1[70], db2[70];
    ck_assert_int_eq (ops->linear_bwd (c1, NBIG, n, k, x, w, zref, DC_ACT_GELU,
                                       dy1, dx1, dw1, db1, &err),
                      0);
    ck_assert_int_eq (ops->linear_bwd (c2, NBIG, n, k, x, w, zref, DC_ACT_GELU,
                                       dy2, dx2, dw2, db2, &err),
                      0);
    ck_assert (!memcmp (dx1, dx2, (size_t)NBIG * k * 4));
    ck_assert (!memcmp (dw1, dw2, (size_t)n * k * 4));
    ck_assert (!memcmp (db1, db2, sizeof (db1)));
    ops->destroy (c1);
    ops->destroy (c2);
    free (x), free (w), free (b), free (ref), free (zref), free (y), free (z);
    free (dy1), free (dy2), free (dx1), free (dx2), free (dw1), free (dw2);
}
END_TEST

/* NaN goes through every activation as in PyTorch (relu(NaN) is NaN, not
 * 0); relu's gradient lets a NaN pre-activation through. */
START_TEST (test_act_nan)
{
    static const enum dc_act acts[] = {DC_ACT_NONE, DC_ACT_RELU, DC_ACT_GELU,
                                       DC_ACT_TANH};
    const float nan = NAN;
    float x[1] = {1.0f}, w[3] = {0.0f, 0.0f, 0.0f};
    float b[3] = {nan, -0.0f, -2.0f}, y[3], z[3];
    dc_error_t err;

    for (int a = 0; a < 4; a++) {
        ck_assert_int_eq (
            ops->linear_fwd (cc, 1, 3, 1, x, w, b, acts[a], y, z, &err), 0);
        ck_assert_msg (isnan (y[0]), "%s(NaN) = %g", dc_act_name (acts[a]),
                       y[0]);
        ck_assert (isnan (z[0]));
    }
    ck_assert_int_eq (
        ops->linear_fwd (cc, 1, 3, 1, x, w, b, DC_ACT_RELU, y, z, &err), 0);
    ck_assert (y[1] == 0.0f && y[2] == 0.0f && !signbit (y[2]));
    /* backward of relu at z = NaN: the gradient passes, as torch's */
    float dy[3] = {1.0f, 1.0f, 1.0f}, dw[3], db[3];
    ck_assert_int_eq (ops->linear_bwd (cc, 1, 3, 1, x, w, z, DC_ACT_RELU, dy,
                                       NULL, dw, db, &err),
                      0);
    ck_assert (dy[0] == 1.0f && dy[1] == 0.0f && dy[2] == 0.0f);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("compute_cpu");
    TCase *tc = tcase_create ("ops");

    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_loop_test (tc, test_linear_fwd, 0, 16);
    tcase_add_test (tc, test_gelu_values);
    tcase_add_loop_test (tc, test_linear_bwd, 0, 4);
    tcase_add_loop_test (tc, test_loss, 0, 4);
    tcase_add_test (tc, test_xent_stable);
    tcase_add_test (tc, test_sgd);
    tcase_add_test (tc, test_adam);
    tcase_add_test (tc, test_mlp_infer);
    tcase_add_test (tc, test_gemm);
    tcase_add_test (tc, test_memory);
    tcase_add_test (tc, test_hostile);
    tcase_add_test (tc, test_registry);
    tcase_add_test (tc, test_bytes_mlp_infer);
    tcase_add_test (tc, test_bytes_linear);
    tcase_add_test (tc, test_act_nan);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
