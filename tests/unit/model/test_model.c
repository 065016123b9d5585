/* test_model.c - the MLP: loading rules, forward against a float64
 * reference, backward against finite differences, optimizer steps against
 * a reference implementation, checkpoint + resume equal to one run */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "gpu/compute.h"
#include "lib/util/half.h"
#include "lib/model/model.h"
#include "lib/util/rng.h"
#include "lib/formats/safetensors.h"

#define DC_TMP_PREFIX "/tmp/test_model"
#include "tmpdir.h"

/* deterministic values in [-1, 1) */
static float frand (uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* An MLP with sizes[0] inputs, layers named PREFIX{2i} as nn.Sequential
 * with activations in between, weights scaled by 1/sqrt(in). */
static struct dc_safetensors *make_mlp (const char *prefix, const int *sizes,
                                        int nl, const char *dtype,
                                        uint64_t seed)
{
    struct dc_safetensors *st = dc_safetensors_create ();
    dc_error_t err;
    for (int i = 0; i < nl; i++) {
        int in = sizes[i], out = sizes[i + 1];
        float *w = malloc (sizeof (float) * (size_t)(in * out));
        float *b = malloc (sizeof (float) * (size_t)out);
        for (int k = 0; k < in * out; k++)
            w[k] = frand (&seed) * 1.5f / sqrtf ((float)in);
        for (int k = 0; k < out; k++)
            b[k] = frand (&seed) * 0.3f;
        char n[64];
        snprintf (n, sizeof (n), "%s%d.weight", prefix, 2 * i);
        ck_assert_ptr_nonnull (dc_safetensors_add (
            st, n, dtype, 2, (int64_t[]){out, in}, w, &err));
        snprintf (n, sizeof (n), "%s%d.bias", prefix, 2 * i);
        ck_assert_ptr_nonnull (
            dc_safetensors_add (st, n, dtype, 1, (int64_t[]){out}, b, &err));
        free (w);
        free (b);
    }
    return st;
}

/* ---- float64 reference ---- */

static double ref_act (enum dc_act a, double v)
{
    switch (a) {
    case DC_ACT_RELU:
        return v > 0 ? v : 0;
    case DC_ACT_GELU:
        return 0.5 * v *
               (1 + tanh (sqrt (2 / M_PI) * (v + 0.044715 * v * v * v)));
    case DC_ACT_TANH:
        return tanh (v);
    default:
        return v;
    }
}

static double ref_dact (enum dc_act a, double v)
{
    switch (a) {
    case DC_ACT_RELU:
        return v > 0 ? 1 : 0;
    case DC_ACT_GELU: {
        double c = sqrt (2 / M_PI), u = c * (v + 0.044715 * v * v * v);
        double t = tanh (u);
        return 0.5 * (1 + t) +
               0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v);
    }
    case DC_ACT_TANH:
        return 1 - tanh (v) * tanh (v);
    default:
        return 1;
    }
}

/* Parameters as doubles, in the trainer's flat layout (w then b). */
struct ref {
    int nl;
    int in[8], out[8];
    enum dc_act act[8];
    size_t off[8], np;
    double *p;
};

static void ref_from_model (struct ref *r, const struct dc_model *m)
{
    r->nl = m->nlayers;
    r->np = 0;
    for (int i = 0; i < r->nl; i++) {
        r->in[i] = m->layers[i].in;
        r->out[i] = m->layers[i].out;
        r->act[i] = m->layers[i].act;
        r->off[i] = r->np;
        r->np += (size_t)r->out[i] * (size_t)(r->in[i] + 1);
    }
    r->p = calloc (r->np, sizeof (double));
    for (int i = 0; i < r->nl; i++) {
        size_t nw = (size_t)r->out[i] * (size_t)r->in[i];
        for (size_t k = 0; k < nw; k++)
            r->p[r->off[i] + k] = m->layers[i].w->data[k];
        for (int k = 0; k < r->out[i]; k++)
            r->p[r->off[i] + nw + (size_t)k] = m->layers[i].b->data[k];
    }
}

/* forward of one row; a[l] holds layer l's input (a[0] = x), z[l] its
 * pre-activation; returns the output (a[nl]) */
static void ref_forward (const struct ref *r, const double *p, const float *x,
                         double a[][64], double z[][64])
{
    for (int k = 0; k < r->in[0]; k++)
        a[0][k] = x[k];
    for (int l = 0; l < r->nl; l++) {
        const double *w = p + r->off[l];
        const double *b = w + (size_t)r->out[l] * (size_t)r->in[l];
        for (int j = 0; j < r->out[l]; j++) {
            double s = b[j];
            for (int k = 0; k < r->in[l]; k++)
                s += w[(size_t)j * (size_t)r->in[l] + (size_t)k] * a[l][k];
            z[l][j] = s;
            a[l + 1][j] = ref_act (r->act[l], s);
        }
    }
}

/* mean loss over rows; with g, its gradient (np doubles) */
static double ref_loss (const struct ref *r, const double *p, const float *x,
                        const void *target, enum dc_loss kind, int rows,
                        double *g)
{
    double a[9][64], z[8][64], d[64], dn[64], loss = 0;
    int L = r->nl, out = r->out[L - 1];
    if (g)
        memset (g, 0, r->np * sizeof (double));
    for (int i = 0; i < rows; i++) {
        ref_forward (r, p, x + (size_t)i * (size_t)r->in[0], a, z);
        const double *y = a[L];
        if (kind == DC_LOSS_MSE) {
            const float *t = (const float *)target + (size_t)i * (size_t)out;
            for (int j = 0; j < out; j++) {
                loss += (y[j] - t[j]) * (y[j] - t[j]) / out / rows;
                d[j] = 2 * (y[j] - t[j]) / out / rows;
            }
        } else {
            int64_t lab = ((const int64_t *)target)[i];
            double mx = y[0], se = 0;
            for (int j = 1; j < out; j++)
                mx = y[j] > mx ? y[j] : mx;
            for (int j = 0; j < out; j++)
                se += exp (y[j] - mx);
            double lse = log (se) + mx;
            loss += (lse - y[lab]) / rows;
            for (int j = 0; j < out; j++)
                d[j] = (exp (y[j] - lse) - (j == lab)) / rows;
        }
        if (!g)
            continue;
        for (int l = L - 1; l >= 0; l--) {
            const double *w = p + r->off[l];
            double *gw = g + r->off[l];
            double *gb = gw + (size_t)r->out[l] * (size_t)r->in[l];
            for (int j = 0; j < r->out[l]; j++)
                d[j] *= ref_dact (r->act[l], z[l][j]);
            for (int k = 0; k < r->in[l]; k++)
                dn[k] = 0;
            for (int j = 0; j < r->out[l]; j++) {
                gb[j] += d[j];
                for (int k = 0; k < r->in[l]; k++) {
                    gw[(size_t)j * (size_t)r->in[l] + (size_t)k] +=
                        d[j] * a[l][k];
                    dn[k] += d[j] * w[(size_t)j * (size_t)r->in[l] + (size_t)k];
                }
            }
            memcpy (d, dn, sizeof (double) * (size_t)r->in[l]);
        }
    }
    return loss;
}

static const struct dc_compute_ops *cpu_ops (struct dc_compute **c)
{
    dc_error_t err;
    const struct dc_compute_ops *ops = dc_compute_find ("cpu", &err);
    ck_assert_msg (ops != NULL, "%s", err.text);
    struct dc_compute_opts o = {.dtype = DC_DTYPE_F32, .threads = 1};
    *c = ops->create (&o, &err);
    ck_assert_msg (*c != NULL, "%s", err.text);
    return ops;
}

/* ---- loading rules ---- */

START_TEST (t_load_names)
{
    dc_error_t err;
    static const int sz[] = {3, 5, 4, 2};
    /* nn.Sequential names, numeric (not lexicographic) order 0, 2, 10 */
    struct dc_safetensors *st = make_mlp ("", sz, 2, "F32", 1);
    float w[8] = {0}, b[2] = {0};
    dc_safetensors_add (st, "10.weight", "F32", 2, (int64_t[]){2, 4}, w, &err);
    dc_safetensors_add (st, "10.bias", "F32", 1, (int64_t[]){2}, b, &err);
    dc_safetensors_add (st, "other", "F32", 1, (int64_t[]){2}, b, &err);
    /* 0, 2, 10 is 3 -> 5 -> 4 -> 2; rename 2.* so it is 5 -> 4 */
    struct dc_model *m = dc_model_create (st, NULL, &err);
    ck_assert_msg (m != NULL, "%s", err.text);
    ck_assert_int_eq (m->nlayers, 3);
    ck_assert_str_eq (m->layers[0].name, "0");
    ck_assert_str_eq (m->layers[1].name, "2");
    ck_assert_str_eq (m->layers[2].name, "10");
    ck_assert_int_eq (dc_model_inputs (m), 3);
    ck_assert_int_eq (dc_model_outputs (m), 2);
    ck_assert_int_eq (m->layers[0].act, DC_ACT_RELU); /* default */
    ck_assert_int_eq (m->layers[2].act, DC_ACT_NONE);
    ck_assert_uint_eq (dc_model_nparams (m), 3 * 5 + 5 + 5 * 4 + 4 + 8 + 2);
    ck_assert_double_eq (dc_model_flops_per_row (m),
                         2.0 * (3 * 5 + 5 * 4 + 4 * 2));
    dc_model_destroy (m);

    /* a prefix, metadata activations, an override */
    st = make_mlp ("net.layers.", sz, 3, "BF16", 2);
    dc_safetensors_meta_set (st, "activation", "tanh");
    dc_safetensors_meta_set (st, "final_activation", "gelu");
    m = dc_model_create (st, NULL, &err);
    ck_assert_msg (m != NULL, "%s", err.text);
    ck_assert_str_eq (m->layers[1].name, "net.layers.2");
    ck_assert_int_eq (m->layers[0].act, DC_ACT_TANH);
    ck_assert_int_eq (m->layers[2].act, DC_ACT_GELU);
    dc_model_destroy (m);
    st = make_mlp ("", sz, 3, "F16", 2);
    dc_safetensors_meta_set (st, "activation", "tanh");
    m = dc_model_create (st, "none", &err);
    ck_assert_int_eq (m->layers[0].act, DC_ACT_NONE);
    dc_model_destroy (m);

    /* a bare nn.Linear */
    st = dc_safetensors_create ();
    dc_safetensors_add (st, "weight", "F32", 2, (int64_t[]){2, 3}, NULL, &err);
    dc_safetensors_add (st, "bias", "F32", 1, (int64_t[]){2}, NULL, &err);
    m = dc_model_create (st, NULL, &err);
    ck_assert_msg (m != NULL, "%s", err.text);
    ck_assert_int_eq (m->nlayers, 1);
    dc_model_destroy (m);
    dc_model_destroy (NULL);
}
END_TEST

static const struct {
    const char *what;
    int mutate;
    const char *want;
} bad_models[] = {
    {"no layers", 0, "no layers"},
    {"missing bias", 1, "tensor '2.bias' is missing"},
    {"do not chain", 2, "layers '0' and '2' do not chain"},
    {"bad activation", 3, "unknown activation 'swish'"},
    {"bad final activation", 4, "\"final_activation\": unknown activation"},
    {"two prefixes", 5, "different modules"},
    {"bias shape", 6, "tensor '0.bias' has shape [4]"},
    {"weight 1-D", 7, "expected [out, in]"},
    {"int weight", 8, "dtype I64"},
    {"same number", 9, "same layer number"},
    {"bad override", 10, "unknown activation 'sigmoid'"},
};

START_TEST (t_load_errors)
{
    int i = _i;
    dc_error_t err;
    float v[64] = {0};
    struct dc_safetensors *st = dc_safetensors_create ();
    const char *override = NULL;

#define ADD(n, nd, ...)                                                        \
    dc_safetensors_add (st, n, "F32", nd, (int64_t[]){__VA_ARGS__}, v, &err)
    switch (bad_models[i].mutate) {
    case 0:
        ADD ("encoder.weigh", 2, 2, 2);
        ADD ("x.bias", 1, 2);
        break;
    case 1:
        ADD ("0.weight", 2, 4, 3);
        ADD ("0.bias", 1, 4);
        ADD ("2.weight", 2, 2, 4);
        break;
    case 2:
        ADD ("0.weight", 2, 4, 3);
        ADD ("0.bias", 1, 4);
        ADD ("2.weight", 2, 2, 5);
        ADD ("2.bias", 1, 2);
        break;
    case 3:
    case 4:
        ADD ("0.weight", 2, 4, 3);
        ADD ("0.bias", 1, 4);
        dc_safetensors_meta_set (
            st, bad_models[i].mutate == 3 ? "activation" : "final_activation",
            "swish");
        break;
    case 10:
        ADD ("0.weight", 2, 4, 3);
        ADD ("0.bias", 1, 4);
        override = "sigmoid";
        break;
    case 5:
        ADD ("a.0.weight", 2, 4, 3);
        ADD ("a.0.bias", 1, 4);
        ADD ("b.1.weight", 2, 4, 4);
        ADD ("b.1.bias", 1, 4);
        break;
    case 6:
        ADD ("0.weight", 2, 3, 3);
        ADD ("0.bias", 1, 4);
        break;
    case 7:
        ADD ("0.weight", 1, 3);
        ADD ("0.bias", 1, 3);
        break;
    case 8: {
        /* an I64 tensor comes only from a file */
        dc_safetensors_destroy (st);
        FILE *f = fopen (tpath ("i.safetensors"), "wb");
        const char h[] = "{\"0.weight\":{\"dtype\":\"I64\",\"shape\":[1,1],"
                         "\"data_offsets\":[0,8]},\"0.bias\":{\"dtype\":"
                         "\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        uint64_t n = sizeof (h) - 1;
        fwrite (&n, 8, 1, f);
        fwrite (h, 1, n, f);
        fwrite (v, 1, 12, f);
        fclose (f);
        st = dc_safetensors_load (tpath ("i.safetensors"), &err);
        ck_assert_ptr_nonnull (st);
        break;
    }
    case 9:
        ADD ("1.weight", 2, 3, 3);
        ADD ("1.bias", 1, 3);
        ADD ("01.weight", 2, 3, 3);
        ADD ("01.bias", 1, 3);
        break;
    }
    if (bad_models[i].mutate == 4)
        dc_safetensors_meta_set (st, "activation", "relu");
    struct dc_model *m = dc_model_create (st, override, &err);
    ck_assert_msg (m == NULL, "%s: accepted", bad_models[i].what);
    ck_assert_msg (strstr (err.text, bad_models[i].want) != NULL,
                   "%s: '%s' lacks '%s'", bad_models[i].what, err.text,
                   bad_models[i].want);
    ck_assert_ptr_null (dc_model_create (NULL, NULL, &err));
    ck_assert_ptr_null (dc_model_load (tpath ("absent"), NULL, &err));
}
END_TEST

START_TEST (t_save_keeps_names)
{
    dc_error_t err;
    static const int sz[] = {3, 4, 2};
    struct dc_safetensors *st = make_mlp ("layers.", sz, 2, "F16", 3);
    dc_safetensors_meta_set (st, "activation", "gelu");
    struct dc_model *m = dc_model_create (st, NULL, &err);
    ck_assert_ptr_nonnull (m);
    ck_assert_int_eq (dc_model_save (m, tpath ("m.safetensors"), &err), 0);
    struct dc_model *b = dc_model_load (tpath ("m.safetensors"), NULL, &err);
    ck_assert_msg (b != NULL, "%s", err.text);
    ck_assert_str_eq (b->layers[1].w->name, "layers.2.weight");
    ck_assert_str_eq (b->layers[1].w->dtype, "F16");
    ck_assert_int_eq (b->act, DC_ACT_GELU);
    for (int k = 0; k < 8; k++) /* F16 in the file */
        ck_assert_float_eq (
            b->layers[1].w->data[k],
            dc_half_to_float (dc_half_from_float (m->layers[1].w->data[k])));
    dc_model_destroy (b);
    dc_model_destroy (m);
}
END_TEST

/* ---- forward ---- */

START_TEST (t_forward)
{
    static const enum dc_act acts[] = {DC_ACT_RELU, DC_ACT_GELU, DC_ACT_TANH,
                                       DC_ACT_NONE};
    static const char *const names[] = {"relu", "gelu", "tanh", "none"};
    static const int sz[] = {7, 33, 17, 5};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    int rows = 37;
    uint64_t s = 99;
    float *x = malloc (sizeof (float) * (size_t)(rows * sz[0]));
    float *y = malloc (sizeof (float) * (size_t)(rows * sz[3]));
    for (int i = 0; i < rows * sz[0]; i++)
        x[i] = frand (&s) * 2.0f;

    for (int a = 0; a < 4; a++) {
        struct dc_safetensors *st = make_mlp ("", sz, 3, "F32", 10 + a);
        dc_safetensors_meta_set (st, "activation", names[a]);
        if (a == 2)
            dc_safetensors_meta_set (st, "final_activation", "tanh");
        struct dc_model *m = dc_model_create (st, NULL, &err);
        ck_assert_ptr_nonnull (m);
        ck_assert_int_eq (m->layers[0].act, acts[a]);
        struct dc_layer_view lv[3];
        struct dc_mlp_view view;
        dc_model_view (m, lv, &view);
        struct dc_mlp_dev *net = ops->mlp_load (c, &view, &err);
        ck_assert_msg (net != NULL, "%s", err.text);
        ck_assert_int_eq (ops->mlp_infer (c, net, x, (size_t)rows, 0, y, &err),
                          0);
        ops->mlp_unload (c, net);
        struct ref r;
        ref_from_model (&r, m);
        double maxerr = 0, maxv = 0;
        for (int i = 0; i < rows; i++) {
            double aa[9][64], zz[8][64];
            ref_forward (&r, r.p, x + i * sz[0], aa, zz);
            for (int j = 0; j < sz[3]; j++) {
                double d = fabs (aa[3][j] - y[i * sz[3] + j]);
                maxerr = d > maxerr ? d : maxerr;
                maxv = fabs (aa[3][j]) > maxv ? fabs (aa[3][j]) : maxv;
            }
        }
        ck_assert_msg (maxerr <= 1e-5 * (maxv > 1 ? maxv : 1),
                       "%s: max error %g (max |y| %g)", names[a], maxerr, maxv);
        free (r.p);
        dc_model_destroy (m);
    }
    free (x);
    free (y);
    ops->destroy (c);
}
END_TEST

/* ---- backward against finite differences ---- */

START_TEST (t_backward)
{
    static const char *const names[] = {"tanh", "gelu", "relu", "none"};
    static const int sz[] = {4, 6, 5, 3};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    int rows = 9;
    uint64_t s = 7;
    float x[9 * 4], tf[9 * 3];
    int64_t tl[9];
    for (int i = 0; i < rows * 4; i++)
        x[i] = frand (&s) * 2;
    for (int i = 0; i < rows * 3; i++)
        tf[i] = frand (&s);
    for (int i = 0; i < rows; i++)
        tl[i] = i % 3;

    for (int a = 0; a < 4; a++)
        for (int lk = 0; lk < 2; lk++) {
            enum dc_loss kind = lk ? DC_LOSS_XENT : DC_LOSS_MSE;
            const void *tgt = lk ? (const void *)tl : (const void *)tf;
            struct dc_safetensors *st = make_mlp ("", sz, 3, "F32", 20 + a);
            dc_safetensors_meta_set (st, "activation", names[a]);
            struct dc_model *m = dc_model_create (st, NULL, &err);
            struct dc_train_opts o = {
                .loss = kind, .lr = 0.1, .batch_size = (size_t)rows};
            struct dc_trainer *t = dc_trainer_create (m, ops, c, &o, &err);
            ck_assert_msg (t != NULL, "%s", err.text);
            double ls;
            ck_assert_int_eq (dc_trainer_grad (t, x, tgt, (size_t)rows,
                                               (size_t)rows, &ls, &err),
                              0);
            size_t np = dc_model_nparams (m);
            float *g = malloc (np * sizeof (float));
            ck_assert_int_eq (dc_trainer_grads_get (t, g, &err), 0);
            struct ref r;
            ref_from_model (&r, m);
            double *ga = malloc (np * sizeof (double));
            double l0 = ref_loss (&r, r.p, x, tgt, kind, rows, ga);
            ck_assert_msg (fabs (ls / rows - l0) < 1e-5 * (1 + fabs (l0)),
                           "loss %g vs %g", ls / rows, l0);
            double worst = 0;
            for (size_t k = 0; k < np; k++) {
                double h = 1e-6, save = r.p[k];
                r.p[k] = save + h;
                double lp = ref_loss (&r, r.p, x, tgt, kind, rows, NULL);
                r.p[k] = save - h;
                double lm = ref_loss (&r, r.p, x, tgt, kind, rows, NULL);
                r.p[k] = save;
                double fd = (lp - lm) / (2 * h);
                double e = fabs (fd - g[k]) / (1e-3 + fabs (fd));
                /* the float64 analytic gradient matches too */
                ck_assert_msg (fabs (ga[k] - fd) < 1e-6 + 1e-4 * fabs (fd),
                               "reference gradient %zu: %g vs %g", k, ga[k],
                               fd);
                worst = e > worst ? e : worst;
            }
            ck_assert_msg (worst < 2e-3, "%s/%s: worst relative error %g",
                           names[a], lk ? "xent" : "mse", worst);
            free (ga);
            free (g);
            free (r.p);
            dc_trainer_destroy (t);
            dc_model_destroy (m);
        }
    ops->destroy (c);
}
END_TEST

/* ---- optimizer steps against a reference update ---- */

START_TEST (t_steps)
{
    static const int sz[] = {5, 8, 3};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    int rows = 12;
    uint64_t s = 3;
    float x[12 * 5], tf[12 * 3];
    for (int i = 0; i < rows * 5; i++)
        x[i] = frand (&s);
    for (int i = 0; i < rows * 3; i++)
        tf[i] = frand (&s);

    for (int opt = 0; opt < 3; opt++) {
        struct dc_safetensors *st = make_mlp ("", sz, 2, "F32", 40 + opt);
        dc_safetensors_meta_set (st, "activation", "tanh");
        struct dc_model *m = dc_model_create (st, NULL, &err);
        struct dc_train_opts o = {
            .loss = DC_LOSS_MSE,
            .optim = opt == 2 ? DC_OPTIM_ADAM : DC_OPTIM_SGD,
            .lr = opt == 2 ? 0.01 : 0.1,
            .momentum = opt == 1 ? 0.9 : 0,
            .batch_size = 4,
            .no_shuffle = true,
        };
        struct dc_trainer *t = dc_trainer_create (m, ops, c, &o, &err);
        ck_assert_ptr_nonnull (t);
        struct ref r;
        ref_from_model (&r, m);
        size_t np = r.np;
        double *g = calloc (np, sizeof (double));
        double *v = calloc (np, sizeof (double));
        double *v2 = calloc (np, sizeof (double));
        double first = 0, last = 0;
        /* 3 epochs of 3 batches of 4 rows, in file order */
        for (int step = 1; step <= 9; step++) {
            int b = (step - 1) % 3;
            const float *xb = x + b * 4 * 5;
            const float *tb = tf + b * 4 * 3;
            double ls;
            ck_assert_int_eq (dc_trainer_grad (t, xb, tb, 4, 4, &ls, &err), 0);
            ck_assert_int_eq (dc_trainer_apply (t, &err), 0);
            double l = ref_loss (&r, r.p, xb, tb, DC_LOSS_MSE, 4, g);
            if (step == 1)
                first = l; /* batch 0 in the first and the last epoch */
            if (step == 7)
                last = l;
            for (size_t k = 0; k < np; k++) {
                if (o.optim == DC_OPTIM_SGD) {
                    v[k] = o.momentum * v[k] + g[k];
                    r.p[k] -= o.lr * (o.momentum ? v[k] : g[k]);
                } else {
                    v[k] = 0.9 * v[k] + 0.1 * g[k];
                    v2[k] = 0.999 * v2[k] + 0.001 * g[k] * g[k];
                    double mh = v[k] / (1 - pow (0.9, step));
                    double vh = v2[k] / (1 - pow (0.999, step));
                    r.p[k] -= o.lr * mh / (sqrt (vh) + 1e-8);
                }
            }
        }
        ck_assert_msg (last < first, "loss did not fall: %g -> %g", first,
                       last);
        ck_assert_int_eq (dc_trainer_sync (t, &err), 0);
        double worst = 0;
        for (int l = 0; l < m->nlayers; l++) {
            size_t nw = (size_t)r.out[l] * (size_t)r.in[l];
            for (size_t k = 0; k < nw; k++) {
                double d = fabs (m->layers[l].w->data[k] - r.p[r.off[l] + k]);
                worst = d > worst ? d : worst;
            }
            for (int k = 0; k < r.out[l]; k++) {
                double d = fabs (m->layers[l].b->data[k] -
                                 r.p[r.off[l] + nw + (size_t)k]);
                worst = d > worst ? d : worst;
            }
        }
        ck_assert_msg (worst < 1e-4, "optimizer %d: weights differ by %g", opt,
                       worst);
        free (g);
        free (v);
        free (v2);
        free (r.p);
        dc_trainer_destroy (t);
        dc_model_destroy (m);
    }
    ops->destroy (c);
}
END_TEST

/* ---- checkpoint and resume ---- */

struct stop {
    int64_t at_step;
};

static int stop_cb (const struct dc_train_pos *pos, size_t rows, double loss,
                    void *arg)
{
    struct stop *s = arg;
    (void)rows;
    ck_assert (isfinite (loss));
    return pos->step == s->at_step;
}

START_TEST (t_resume)
{
    static const int sz[] = {4, 10, 3};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    size_t rows = 23;
    uint64_t s = 5;
    float x[23 * 4];
    int64_t lab[23];
    for (size_t i = 0; i < rows * 4; i++)
        x[i] = frand (&s);
    for (size_t i = 0; i < rows; i++)
        lab[i] = (int64_t)(i * 7 % 3);

    for (int opt = 0; opt < 2; opt++) {
        struct dc_train_opts o = {
            .loss = DC_LOSS_XENT,
            .optim = opt ? DC_OPTIM_ADAM : DC_OPTIM_SGD,
            .lr = opt ? 0.01 : 0.05,
            .momentum = opt ? 0 : 0.9,
            .batch_size = 5,
            .seed = 1234,
        };
        struct dc_train_run run = {
            .x = x, .target = lab, .rows = rows, .epochs = 4};
        struct dc_train_pos pos;

        /* one run from start to end */
        struct dc_model *m1 =
            dc_model_create (make_mlp ("", sz, 2, "F32", 60), NULL, &err);
        struct dc_trainer *t1 = dc_trainer_create (m1, ops, c, &o, &err);
        dc_train_pos_init (&pos, &o);
        ck_assert_int_eq (dc_trainer_run (t1, &run, &pos, &err), 0);
        ck_assert_int_eq (pos.epoch, 4);
        ck_assert_int_eq (pos.step, 20);

        /* interrupted after step 7 (checkpoints every 3 steps: last at 6) */
        struct dc_model *m2 =
            dc_model_create (make_mlp ("", sz, 2, "F32", 60), NULL, &err);
        struct dc_trainer *t2 = dc_trainer_create (m2, ops, c, &o, &err);
        struct stop stop = {.at_step = 7};
        run.checkpoint = tpath ("ckpt.safetensors");
        run.checkpoint_every = 3;
        run.step_cb = stop_cb;
        run.arg = &stop;
        dc_train_pos_init (&pos, &o);
        ck_assert_int_eq (dc_trainer_run (t2, &run, &pos, &err), 1);
        ck_assert_int_eq (pos.step, 7);
        dc_trainer_destroy (t2);
        dc_model_destroy (m2);

        /* a fresh process resumes from the checkpoint */
        struct dc_model *m3 =
            dc_model_create (make_mlp ("", sz, 2, "F32", 60), NULL, &err);
        struct dc_trainer *t3 = dc_trainer_create (m3, ops, c, &o, &err);
        ck_assert_int_eq (
            dc_trainer_checkpoint_load (t3, &pos, run.checkpoint, &err), 0);
        ck_assert_int_eq (pos.step, 6);
        ck_assert_int_eq (pos.epoch, 1);
        ck_assert_int_eq (pos.batch, 1);
        stop.at_step = -1;
        ck_assert_int_eq (dc_trainer_run (t3, &run, &pos, &err), 0);
        ck_assert_int_eq (pos.step, 20);
        for (int l = 0; l < 2; l++) {
            ck_assert_mem_eq (m1->layers[l].w->data, m3->layers[l].w->data,
                              m1->layers[l].w->nelem * sizeof (float));
            ck_assert_mem_eq (m1->layers[l].b->data, m3->layers[l].b->data,
                              m1->layers[l].b->nelem * sizeof (float));
        }
        /* a checkpoint made with other options is refused */
        struct dc_train_opts o2 = o;
        o2.batch_size = 6;
        struct dc_trainer *t4 = dc_trainer_create (m3, ops, c, &o2, &err);
        ck_assert_int_eq (
            dc_trainer_checkpoint_load (t4, &pos, run.checkpoint, &err), -1);
        ck_assert_ptr_nonnull (strstr (err.text, "--batch-size 5, not 6"));
        dc_trainer_destroy (t4);
        dc_trainer_destroy (t3);
        dc_model_destroy (m3);
        dc_trainer_destroy (t1);
        dc_model_destroy (m1);
    }
    ops->destroy (c);
}
END_TEST

START_TEST (t_bad_training)
{
    static const int sz[] = {2, 3};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    struct dc_model *m =
        dc_model_create (make_mlp ("", sz, 1, "F32", 1), NULL, &err);
    struct dc_train_opts o = {.loss = DC_LOSS_XENT, .lr = 0.1, .batch_size = 2};
    struct dc_trainer *t = dc_trainer_create (m, ops, c, &o, &err);
    float x[4] = {0};
    int64_t lab[2] = {0, 3};
    struct dc_train_run run = {.x = x, .target = lab, .rows = 2, .epochs = 1};
    struct dc_train_pos pos;
    dc_train_pos_init (&pos, &o);
    ck_assert_int_eq (dc_trainer_run (t, &run, &pos, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "label 3 of row 1"));
    double ls;
    ck_assert_int_eq (dc_trainer_grad (t, x, lab, 3, 3, &ls, &err), -1);
    ck_assert_int_eq (dc_trainer_grad (t, x, lab, 0, 0, &ls, &err), -1);
    ck_assert_int_eq (
        dc_trainer_checkpoint_load (t, &pos, tpath ("none"), &err), -1);
    /* a model file is not a checkpoint */
    ck_assert_int_eq (dc_model_save (m, tpath ("m.safetensors"), &err), 0);
    ck_assert_int_eq (
        dc_trainer_checkpoint_load (t, &pos, tpath ("m.safetensors"), &err),
        -1);
    ck_assert_ptr_nonnull (strstr (err.text, "not a dcrun checkpoint"));
    o.batch_size = 0;
    ck_assert_ptr_null (dc_trainer_create (m, ops, c, &o, &err));
    ck_assert_ptr_null (dc_trainer_create (NULL, ops, c, &o, &err));
    dc_trainer_destroy (t);
    dc_trainer_destroy (NULL);
    dc_model_destroy (m);
    ops->destroy (c);
}
END_TEST

/* ---- the micro-batch entry points: a model split into layer ranges
 * gives the bytes of dc_trainer_grad; bad arguments are refused ---- */

START_TEST (t_layers_split)
{
    static const int sz[] = {4, 6, 5, 3};
    dc_error_t err;
    struct dc_compute *c;
    const struct dc_compute_ops *ops = cpu_ops (&c);
    size_t rows = 9;
    uint64_t s = 11;
    float x[9 * 4], tf[9 * 3];
    for (size_t i = 0; i < rows * 4; i++)
        x[i] = frand (&s) * 2;
    for (size_t i = 0; i < rows * 3; i++)
        tf[i] = frand (&s);
    struct dc_safetensors *st = make_mlp ("", sz, 3, "F32", 5);
    dc_safetensors_meta_set (st, "activation", "gelu");
    struct dc_model *m = dc_model_create (st, NULL, &err);
    ck_assert_msg (m != NULL, "%s", err.text);
    struct dc_train_opts o = {
        .loss = DC_LOSS_MSE, .lr = 0.1, .batch_size = rows};
    struct dc_trainer *t = dc_trainer_create (m, ops, c, &o, &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    double want_loss, loss;
    ck_assert_int_eq (dc_trainer_grad (t, x, tf, rows, rows, &want_loss, &err),
                      0);
    size_t np = dc_model_nparams (m);
    float *want = malloc (np * 4), *got = malloc (np * 4),
          *host = malloc (np * 4);
    ck_assert_int_eq (dc_trainer_grads_get (t, want, &err), 0);
    /* the flat parameters: weight then bias, layer after layer */
    size_t off[4] = {0};
    for (int i = 0; i < 3; i++) {
        const struct dc_model_layer *l = &m->layers[i];
        size_t nw = (size_t)l->out * (size_t)l->in;
        memcpy (host + off[i], l->w->data, nw * 4);
        memcpy (host + off[i] + nw, l->b->data, (size_t)l->out * 4);
        off[i + 1] = off[i] + nw + (size_t)l->out;
    }
    float *p = ops->alloc (c, np * 4, &err), *g = ops->alloc (c, np * 4, &err);
    float *dx = ops->alloc (c, rows * 4 * 4, &err);
    float *z[3], *y[3], *da = ops->alloc (c, rows * 6 * 4, &err),
                        *db = ops->alloc (c, rows * 6 * 4, &err),
                        *tg = ops->alloc (c, rows * 3 * 4, &err);
    for (int i = 0; i < 3; i++) {
        z[i] = ops->alloc (c, rows * (size_t)sz[i + 1] * 4, &err);
        y[i] = ops->alloc (c, rows * (size_t)sz[i + 1] * 4, &err);
    }
    ck_assert_int_eq (ops->copy_in (c, p, host, np * 4, &err), 0);
    ck_assert_int_eq (ops->copy_in (c, dx, x, rows * 4 * 4, &err), 0);
    ck_assert_int_eq (ops->copy_in (c, tg, tf, rows * 3 * 4, &err), 0);
    for (int k = 1; k <= 3; k++) { /* stages [0, k) and [k, 3) */
        float *gx;
        ck_assert_int_eq (
            dc_model_layers_fwd (m, 0, k, ops, c, p, rows, dx, z, y, &err), 0);
        if (k < 3)
            ck_assert_int_eq (dc_model_layers_fwd (m, k, 3, ops, c, p + off[k],
                                                   rows, y[k - 1], z + k, y + k,
                                                   &err),
                              0);
        ck_assert_int_eq (ops->loss (c, DC_LOSS_MSE, (int)rows, 3, y[2], tg,
                                     rows, da, &loss, &err),
                          0);
        ck_assert (loss == want_loss);
        float *from = da, *other = db;
        if (k < 3) {
            ck_assert_int_eq (dc_model_layers_bwd (m, k, 3, ops, c, p + off[k],
                                                   g + off[k], rows, y[k - 1],
                                                   z + k, y + k, da, db, true,
                                                   &gx, &err),
                              0);
            ck_assert (gx == da || gx == db);
            from = gx;
            other = gx == da ? db : da;
        }
        ck_assert_int_eq (dc_model_layers_bwd (m, 0, k, ops, c, p, g, rows, dx,
                                               z, y, from, other, false, &gx,
                                               &err),
                          0);
        ck_assert_ptr_null (gx);
        ck_assert_int_eq (ops->copy_out (c, got, g, np * 4, &err), 0);
        ck_assert_msg (memcmp (got, want, np * 4) == 0,
                       "split at layer %d: other gradient bytes", k);
    }
    /* bad arguments: -1, EINVAL, a message */
    struct {
        const struct dc_model *m;
        int l0, l1;
        size_t rows;
        const float *p;
    } bad[] = {
        {NULL, 0, 1, rows, p}, {m, -1, 1, rows, p}, {m, 0, 4, rows, p},
        {m, 2, 2, rows, p},    {m, 0, 1, 0, p},     {m, 0, 1, rows, NULL},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        float *gx;
        errno = 0;
        err.text[0] = '\0';
        ck_assert_int_eq (dc_model_layers_fwd (bad[i].m, bad[i].l0, bad[i].l1,
                                               ops, c, bad[i].p, bad[i].rows,
                                               dx, z, y, &err),
                          -1);
        ck_assert_int_eq (errno, EINVAL);
        ck_assert (err.text[0] != '\0');
        errno = 0;
        ck_assert_int_eq (dc_model_layers_bwd (bad[i].m, bad[i].l0, bad[i].l1,
                                               ops, c, bad[i].p, g, bad[i].rows,
                                               dx, z, y, da, db, true, &gx,
                                               &err),
                          -1);
        ck_assert_int_eq (errno, EINVAL);
    }
    for (int i = 0; i < 3; i++) {
        ops->free (c, z[i]);
        ops->free (c, y[i]);
    }
    ops->free (c, p);
    ops->free (c, g);
    ops->free (c, dx);
    ops->free (c, da);
    ops->free (c, db);
    ops->free (c, tg);
    free (want);
    free (got);
    free (host);
    dc_trainer_destroy (t);
    dc_model_destroy (m);
    ops->destroy (c);
}
END_TEST

START_TEST (t_rng)
{
    struct dc_rng a, b;
    size_t p[100], q[100];
    int seen[100] = {0};
    dc_rng_seed (&a, 42);
    dc_rng_seed (&b, 42);
    ck_assert_uint_eq (dc_rng_next (&a), dc_rng_next (&b));
    dc_rng_permute (&a, p, 100);
    dc_rng_permute (&b, q, 100);
    ck_assert_mem_eq (p, q, sizeof (p));
    for (int i = 0; i < 100; i++)
        seen[p[i]]++;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq (seen[i], 1);
    dc_rng_seed (&b, 43);
    dc_rng_permute (&b, q, 100);
    ck_assert (memcmp (p, q, sizeof (p)) != 0);
    /* splitmix64 seeding: the first state word of seed 0 is the published
     * first splitmix64 output 0xe220a8397b1dcdaf */
    dc_rng_seed (&a, 0);
    ck_assert_uint_eq (a.s[0], 0xe220a8397b1dcdafULL);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt (dc_rng_below (&a, 7), 7);
}
END_TEST

/* ---- gradient buckets and the hook: what the overlap of a rank's
 * gradient sum with its backward pass relies on ---- */

/* sizes 4 -> 6 -> 5 -> 3: layer 0 has 30 floats at 0, layer 1 35 at 30,
 * layer 2 18 at 65 */
static const struct {
    size_t bytes;
    int max, nb; /* nb -1: refused */
    struct dc_grad_bucket want[3];
} bucket_cases[] = {
    /* one bucket per layer, last layer first */
    {0, 3, 3, {{65, 18, 2}, {30, 35, 1}, {0, 30, 0}}},
    {4, 3, 3, {{65, 18, 2}, {30, 35, 1}, {0, 30, 0}}},
    {18 * 4, 3, 3, {{65, 18, 2}, {30, 35, 1}, {0, 30, 0}}},
    /* layer 2 alone is too small: layer 1 joins it */
    {18 * 4 + 1, 3, 2, {{30, 53, 1}, {0, 30, 0}}},
    {40 * 4, 3, 2, {{30, 53, 1}, {0, 30, 0}}},
    /* the last bucket (layer 0's) may be smaller */
    {53 * 4, 3, 2, {{30, 53, 1}, {0, 30, 0}}},
    /* larger than the gradient: one bucket */
    {83 * 4, 3, 1, {{0, 83, 0}}},
    {(size_t)1 << 40, 1, 1, {{0, 83, 0}}},
    /* DDP-sized buckets on a small model: one */
    {DC_TRAIN_BUCKET_BYTES, 3, 1, {{0, 83, 0}}},
    /* not enough room */
    {0, 2, -1, {{0}}},
    {0, 0, -1, {{0}}},
    {0, -1, -1, {{0}}},
};

static struct dc_trainer *small_trainer (struct dc_model **m,
                                         const struct dc_compute_ops **ops,
                                         struct dc_compute **c, size_t B)
{
    static const int sz[] = {4, 6, 5, 3};
    static struct dc_train_opts o = {.loss = DC_LOSS_MSE, .lr = 0.1};
    dc_error_t err;

    *ops = cpu_ops (c);
    *m = dc_model_create (make_mlp ("", sz, 3, "F32", 5), NULL, &err);
    ck_assert_msg (*m != NULL, "%s", err.text);
    o.batch_size = B;
    struct dc_trainer *t = dc_trainer_create (*m, *ops, *c, &o, &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    return t;
}

START_TEST (t_buckets)
{
    struct dc_model *m;
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct dc_trainer *t = small_trainer (&m, &ops, &c, 4);
    struct dc_grad_bucket b[3];
    dc_error_t err;

    int nb = dc_trainer_buckets (t, bucket_cases[_i].bytes, b,
                                 bucket_cases[_i].max, &err);
    ck_assert_int_eq (nb, bucket_cases[_i].nb);
    if (nb < 0)
        ck_assert (strstr (err.text, "gradient buckets") ||
                   strstr (err.text, "invalid argument"));
    size_t end = dc_model_nparams (m);
    for (int k = 0; k < nb; k++) {
        ck_assert_uint_eq (b[k].off, bucket_cases[_i].want[k].off);
        ck_assert_uint_eq (b[k].n, bucket_cases[_i].want[k].n);
        ck_assert_int_eq (b[k].layer, bucket_cases[_i].want[k].layer);
        /* contiguous, backward order, covering the whole gradient */
        ck_assert_uint_eq (b[k].off + b[k].n, end);
        end = b[k].off;
    }
    if (nb > 0)
        ck_assert_uint_eq (end, 0);
    dc_trainer_destroy (t);
    dc_model_destroy (m);
    ops->destroy (c);
}
END_TEST

struct hook_log {
    struct dc_trainer *t;
    int layers[8], n;
    int fail_at;    /* the layer whose hook fails (-1: none) */
    float seen[83]; /* each layer's gradient as the hook saw it */
};

static int log_hook (void *arg, int layer, dc_error_t *errp)
{
    static const size_t off[] = {0, 30, 65, 83};
    struct hook_log *h = arg;

    ck_assert_int_lt (h->n, 8);
    h->layers[h->n++] = layer;
    if (layer == h->fail_at)
        return errprintf (errp, "hook: no sum for layer %d", layer);
    return dc_trainer_grads_get_range (h->t, off[layer],
                                       off[layer + 1] - off[layer],
                                       h->seen + off[layer], errp);
}

START_TEST (t_grad_hook)
{
    struct dc_model *m;
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct dc_trainer *t = small_trainer (&m, &ops, &c, 5);
    dc_error_t err;
    uint64_t s = 3;
    float x[5 * 4], tg[5 * 3], want[83], got[83];
    double l0, l1;

    for (size_t i = 0; i < 5 * 4; i++)
        x[i] = frand (&s);
    for (size_t i = 0; i < 5 * 3; i++)
        tg[i] = frand (&s);
    ck_assert_uint_eq (dc_model_nparams (m), 83);
    /* without a hook: the reference gradient */
    ck_assert_int_eq (dc_trainer_grad (t, x, tg, 5, 10, &l0, &err), 0);
    ck_assert_int_eq (dc_trainer_grads_get (t, want, &err), 0);
    /* with one: called once per layer, last layer first, each time with
     * that layer's gradient complete; the step's bytes are the same */
    struct hook_log h = {.t = t, .fail_at = -1};
    memset (got, 0, sizeof (got));
    ck_assert_int_eq (dc_trainer_grads_set (t, got, &err), 0);
    dc_trainer_set_grad_hook (t, log_hook, &h);
    ck_assert_int_eq (dc_trainer_grad (t, x, tg, 5, 10, &l1, &err), 0);
    ck_assert_int_eq (h.n, 3);
    ck_assert_int_eq (h.layers[0], 2);
    ck_assert_int_eq (h.layers[1], 1);
    ck_assert_int_eq (h.layers[2], 0);
    ck_assert (memcmp (h.seen, want, sizeof (want)) == 0);
    ck_assert_int_eq (dc_trainer_grads_get (t, got, &err), 0);
    ck_assert (memcmp (got, want, sizeof (want)) == 0);
    ck_assert (l0 == l1);
    /* a hook that fails stops the step with its error */
    h = (struct hook_log){.t = t, .fail_at = 1};
    ck_assert_int_eq (dc_trainer_grad (t, x, tg, 5, 10, &l1, &err), -1);
    ck_assert_str_eq (err.text, "hook: no sum for layer 1");
    ck_assert_int_eq (h.n, 2);
    /* removed: not called any more */
    dc_trainer_set_grad_hook (t, NULL, &h);
    h.n = 0;
    ck_assert_int_eq (dc_trainer_grad (t, x, tg, 5, 10, &l1, &err), 0);
    ck_assert_int_eq (h.n, 0);
    dc_trainer_set_grad_hook (NULL, log_hook, &h); /* no crash */
    /* ranges: inside the gradient only */
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 0, 83, got, &err), 0);
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 83, 0, got, &err), 0);
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 0, 84, got, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "invalid gradient range"));
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 84, 0, got, &err), -1);
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 80, SIZE_MAX, got, &err),
                      -1);
    ck_assert_int_eq (dc_trainer_grads_get_range (t, 0, 1, NULL, &err), -1);
    ck_assert_int_eq (dc_trainer_grads_get_range (NULL, 0, 1, got, &err), -1);
    struct dc_grad_bucket b[3];
    ck_assert_int_eq (dc_trainer_buckets (NULL, 0, b, 3, &err), -1);
    ck_assert_int_eq (dc_trainer_buckets (t, 0, NULL, 3, &err), -1);
    dc_trainer_destroy (t);
    dc_model_destroy (m);
    ops->destroy (c);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("model");
    TCase *tc = tcase_create ("model");
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_test (tc, t_load_names);
    tcase_add_loop_test (tc, t_load_errors, 0,
                         sizeof (bad_models) / sizeof (bad_models[0]));
    tcase_add_test (tc, t_save_keeps_names);
    tcase_add_test (tc, t_forward);
    tcase_add_test (tc, t_backward);
    tcase_add_test (tc, t_steps);
    tcase_add_test (tc, t_resume);
    tcase_add_test (tc, t_bad_training);
    tcase_add_test (tc, t_layers_split);
    tcase_add_loop_test (tc, t_buckets, 0,
                         sizeof (bucket_cases) / sizeof (bucket_cases[0]));
    tcase_add_test (tc, t_grad_hook);
    tcase_add_test (tc, t_rng);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
