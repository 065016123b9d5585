/* model.c - MLP from safetensors tensors; training on a compute back-end */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/model.h"

#define BAD(...) errprintf (errp, __VA_ARGS__)

static const struct {
    const char *name;
    enum dc_act act;
} act_names[] = {
    {"relu", DC_ACT_RELU},   {"gelu", DC_ACT_GELU}, {"gelu_tanh", DC_ACT_GELU},
    {"tanh", DC_ACT_TANH},   {"none", DC_ACT_NONE}, {"identity", DC_ACT_NONE},
    {"linear", DC_ACT_NONE},
};

int dc_model_act_parse (const char *s, enum dc_act *act)
{
    for (size_t i = 0; s && i < sizeof (act_names) / sizeof (act_names[0]); i++)
        if (!strcmp (s, act_names[i].name)) {
            *act = act_names[i].act;
            return 0;
        }
    errno = EINVAL;
    return -1;
}

static const char *act_str (enum dc_act a)
{
    return a == DC_ACT_RELU   ? "relu"
           : a == DC_ACT_GELU ? "gelu"
           : a == DC_ACT_TANH ? "tanh"
                              : "none";
}

void dc_model_destroy (struct dc_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nlayers; i++)
        free (m->layers[i].name);
    free (m->layers);
    dc_safetensors_destroy (m->st);
    free (m);
}

struct cand {
    struct dc_tensor *w;
    size_t stem_len;   /* name without ".weight" */
    size_t prefix_len; /* stem without the index */
    uint64_t idx;
};

static int cmp_cand (const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* "P{i}.weight" -> stem, prefix and index; 0 when the name is not one. */
static int layer_name (struct dc_tensor *t, struct cand *c)
{
    const char *n = t->name;
    size_t len = strlen (n);

    if (!strcmp (n, "weight")) {
        *c = (struct cand){.w = t, .stem_len = 0, .prefix_len = 0, .idx = 0};
        return 1;
    }
    if (len < 8 || strcmp (n + len - 7, ".weight") != 0)
        return 0;
    size_t stem = len - 7, p = stem;
    while (p > 0 && n[p - 1] >= '0' && n[p - 1] <= '9')
        p--;
    if (p == stem || stem - p > 18 || (p > 0 && n[p - 1] != '.'))
        return 0;
    uint64_t idx = 0;
    for (size_t i = p; i < stem; i++)
        idx = idx * 10 + (uint64_t)(n[i] - '0');
    *c = (struct cand){.w = t, .stem_len = stem, .prefix_len = p, .idx = idx};
    return 1;
}

static int parse_meta_act (const struct dc_safetensors *st, const char *key,
                           enum dc_act dflt, enum dc_act *act, dc_error_t *errp)
{
    const char *v = dc_safetensors_meta_get (st, key);
    *act = dflt;
    if (v && dc_model_act_parse (v, act) < 0)
        return BAD ("__metadata__ \"%s\": unknown activation '%s' "
                    "(expected relu, gelu, tanh or none)",
                    key, v);
    return 0;
}

static void shape_str (const struct dc_tensor *t, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf (buf, size, "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += (size_t)snprintf (buf + n, size - n, "%s%" PRId64, i ? ", " : "",
                               t->shape[i]);
    if (n < size)
        snprintf (buf + n, size - n, "]");
}

/* The weight tensors of st that name layers, sorted by index into c
 * (st->n entries); their count in *ncp.  -1 (errno EINVAL) when there are
 * none, or they are not the layers of one MLP. */
static int find_layers (const struct dc_safetensors *st, struct cand *c,
                        size_t *ncp, dc_error_t *errp)
{
    size_t nc = 0;

    for (size_t i = 0; i < st->n; i++)
        if (layer_name (&st->v[i], &c[nc]))
            nc++;
    if (nc == 0)
        return BAD ("no layers: expected tensors named like 0.weight and "
                    "0.bias (nn.Sequential) or layers.0.weight\n"
                    "hint: save the model with safetensors.torch.save_file "
                    "(model.state_dict(), FILE)");
    qsort (c, nc, sizeof (*c), cmp_cand);
    for (size_t i = 1; i < nc; i++) {
        if (c[i].prefix_len != c[0].prefix_len ||
            memcmp (c[i].w->name, c[0].w->name, c[0].prefix_len) != 0)
            return BAD ("tensors '%s' and '%s' belong to different modules: "
                        "one MLP per file, its layers named PREFIX{i}.weight",
                        c[0].w->name, c[i].w->name);
        if (c[i].idx == c[i - 1].idx)
            return BAD ("tensors '%s' and '%s' have the same layer number",
                        c[i - 1].w->name, c[i].w->name);
    }
    if (nc > 4096)
        return BAD ("%zu layers: more than 4096", nc);
    *ncp = nc;
    return 0;
}

/* Layer i of m from candidate c: its name, weight [out, in], bias [out],
 * activation, and its chaining to layer i - 1. */
static int make_layer (struct dc_model *m, size_t i, const struct cand *c,
                       size_t nc, dc_error_t *errp)
{
    struct dc_model_layer *l = &m->layers[i];
    struct dc_tensor *w = c->w;
    char bname[512], s1[128], s2[128];

    if (!(l->name = strndup (w->name, c->stem_len))) {
        errno = ENOMEM;
        return BAD ("out of memory");
    }
    snprintf (bname, sizeof (bname), "%s%sbias", l->name,
              c->stem_len ? "." : "");
    if (!w->data)
        return BAD ("tensor '%s' has dtype %s: expected F32, F16 or BF16",
                    w->name, w->dtype);
    shape_str (w, s1, sizeof (s1));
    if (w->ndim != 2 || w->shape[0] <= 0 || w->shape[1] <= 0 ||
        w->shape[0] > INT_MAX || w->shape[1] > INT_MAX)
        return BAD ("tensor '%s' has shape %s: expected [out, in]", w->name,
                    s1);
    l->out = (int)w->shape[0];
    l->in = (int)w->shape[1];
    l->w = w;
    if (!(l->b = dc_safetensors_find (m->st, bname)))
        return BAD ("layer '%s': tensor '%s' is missing (layers need a bias)",
                    l->name, bname);
    if (!l->b->data)
        return BAD ("tensor '%s' has dtype %s: expected F32, F16 or BF16",
                    bname, l->b->dtype);
    shape_str (l->b, s2, sizeof (s2));
    if (l->b->ndim != 1 || l->b->shape[0] != l->out)
        return BAD ("tensor '%s' has shape %s but '%s' is %s: expected [%d]",
                    bname, s2, w->name, s1, l->out);
    l->act = i + 1 < nc ? m->act : m->final_act;
    if (i > 0 && l->in != m->layers[i - 1].out) {
        const struct dc_model_layer *prev = &m->layers[i - 1];
        shape_str (prev->w, s2, sizeof (s2));
        return BAD ("layers '%s' and '%s' do not chain: '%s' is %s (%d "
                    "outputs) but '%s' is %s (%d inputs)",
                    prev->name, l->name, prev->w->name, s2, prev->out, w->name,
                    s1, l->in);
    }
    return 0;
}

struct dc_model *dc_model_create (struct dc_safetensors *st,
                                  const char *act_override, dc_error_t *errp)
{
    struct dc_model *m = NULL;
    struct cand *c = NULL;
    size_t nc = 0;

    if (!st) {
        errno = EINVAL;
        BAD ("no tensors");
        return NULL;
    }
    if (!(m = calloc (1, sizeof (*m))) ||
        !(c = calloc (st->n ? st->n : 1, sizeof (*c)))) {
        free (m);
        dc_safetensors_destroy (st);
        errno = ENOMEM;
        BAD ("out of memory");
        return NULL;
    }
    m->st = st;
    errno = EINVAL;
    if (parse_meta_act (st, "activation", DC_ACT_RELU, &m->act, errp) < 0 ||
        parse_meta_act (st, "final_activation", DC_ACT_NONE, &m->final_act,
                        errp) < 0)
        goto fail;
    if (act_override && dc_model_act_parse (act_override, &m->act) < 0) {
        BAD ("unknown activation '%s' (expected relu, gelu, tanh or none)",
             act_override);
        goto fail;
    }
    if (find_layers (st, c, &nc, errp) < 0)
        goto fail;
    if (!(m->layers = calloc (nc, sizeof (*m->layers)))) {
        errno = ENOMEM;
        BAD ("out of memory");
        goto fail;
    }
    m->nlayers = (int)nc;
    for (size_t i = 0; i < nc; i++)
        if (make_layer (m, i, &c[i], nc, errp) < 0)
            goto fail;
    free (c);
    errno = 0;
    return m;
fail:
    free (c);
    dc_model_destroy (m);
    return NULL;
}

struct dc_model *dc_model_load (const char *path, const char *act_override,
                                dc_error_t *errp)
{
    struct dc_safetensors *st = dc_safetensors_load (path, errp);
    struct dc_model *m;

    if (!st)
        return NULL;
    if (!(m = dc_model_create (st, act_override, errp)))
        errprefix (errp, "%s: ", path);
    return m;
}

int dc_model_save (const struct dc_model *m, const char *path, dc_error_t *errp)
{
    if (!m) {
        errno = EINVAL;
        return BAD ("no model");
    }
    return dc_safetensors_save (m->st, path, errp);
}

int dc_model_inputs (const struct dc_model *m)
{
    return m && m->nlayers ? m->layers[0].in : 0;
}

int dc_model_outputs (const struct dc_model *m)
{
    return m && m->nlayers ? m->layers[m->nlayers - 1].out : 0;
}

size_t dc_model_nparams (const struct dc_model *m)
{
    size_t n = 0;
    for (int i = 0; m && i < m->nlayers; i++)
        n += (size_t)m->layers[i].out * ((size_t)m->layers[i].in + 1);
    return n;
}

double dc_model_flops_per_row (const struct dc_model *m)
{
    double f = 0;
    for (int i = 0; m && i < m->nlayers; i++)
        f += 2.0 * m->layers[i].in * (double)m->layers[i].out;
    return f;
}

void dc_model_view (const struct dc_model *m, struct dc_layer_view *layers,
                    struct dc_mlp_view *view)
{
    for (int i = 0; i < m->nlayers; i++)
        layers[i] = (struct dc_layer_view){
            .in = m->layers[i].in,
            .out = m->layers[i].out,
            .w = m->layers[i].w->data,
            .b = m->layers[i].b->data,
            .act = m->layers[i].act,
        };
    view->nlayers = m->nlayers;
    view->layers = layers;
}

/* ---- training ---- */

struct dc_trainer {
    struct dc_model *m;
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct dc_train_opts o;
    size_t np;      /* parameters */
    size_t *off;    /* per layer: weight offset; bias follows */
    float *params;  /* device, np */
    float *grads;   /* device, np */
    float *s1, *s2; /* optimizer state: momentum, or exp_avg + exp_avg_sq */
    float *x;       /* device [B][in] */
    float **z, **y; /* device per layer [B][out] */
    float *da, *db; /* device [B][widest] */
    void *target;   /* device [B][out] floats or [B] int64 */
    int64_t step;   /* optimizer steps done */
    dc_grad_hook_f hook; /* a layer's gradient is complete */
    void *hook_arg;
};

static void *dalloc (struct dc_trainer *t, size_t bytes, dc_error_t *errp)
{
    void *p = t->ops->alloc (t->c, bytes ? bytes : 4, errp);
    return p;
}

static void dfree (struct dc_trainer *t, void *p)
{
    if (p)
        t->ops->free (t->c, p);
}

void dc_trainer_destroy (struct dc_trainer *t)
{
    if (!t)
        return;
    dfree (t, t->params);
    dfree (t, t->grads);
    dfree (t, t->s1);
    dfree (t, t->s2);
    dfree (t, t->x);
    dfree (t, t->da);
    dfree (t, t->db);
    dfree (t, t->target);
    for (int i = 0; t->z && i < t->m->nlayers; i++) {
        dfree (t, t->z[i]);
        dfree (t, t->y[i]);
    }
    free (t->z);
    free (t->y);
    free (t->off);
    free (t);
}

static int upload (struct dc_trainer *t, dc_error_t *errp)
{
    for (int i = 0; i < t->m->nlayers; i++) {
        const struct dc_model_layer *l = &t->m->layers[i];
        size_t nw = (size_t)l->out * (size_t)l->in;
        if (t->ops->copy_in (t->c, t->params + t->off[i], l->w->data,
                             nw * sizeof (float), errp) < 0 ||
            t->ops->copy_in (t->c, t->params + t->off[i] + nw, l->b->data,
                             (size_t)l->out * sizeof (float), errp) < 0)
            return -1;
    }
    return 0;
}

static int zero_dev (struct dc_trainer *t, float *p, size_t n, dc_error_t *errp)
{
    float *z = calloc (n ? n : 1, sizeof (float));
    if (!z) {
        errno = ENOMEM;
        return BAD ("out of memory");
    }
    int rc = t->ops->copy_in (t->c, p, z, n * sizeof (float), errp);
    free (z);
    return rc;
}

struct dc_trainer *dc_trainer_create (struct dc_model *m,
                                      const struct dc_compute_ops *ops,
                                      struct dc_compute *c,
                                      const struct dc_train_opts *o,
                                      dc_error_t *errp)
{
    struct dc_trainer *t;

    if (!m || !ops || !c || !o || o->batch_size == 0 ||
        o->batch_size > INT_MAX / 2 || !(o->lr > 0) ||
        (o->optim != DC_OPTIM_SGD && o->optim != DC_OPTIM_ADAM) ||
        (o->loss != DC_LOSS_MSE && o->loss != DC_LOSS_XENT)) {
        errno = EINVAL;
        BAD ("invalid training options");
        return NULL;
    }
    if (!(t = calloc (1, sizeof (*t)))) {
        errno = ENOMEM;
        BAD ("out of memory");
        return NULL;
    }
    t->m = m;
    t->ops = ops;
    t->c = c;
    t->o = *o;
    if (t->o.beta1 == 0)
        t->o.beta1 = 0.9;
    if (t->o.beta2 == 0)
        t->o.beta2 = 0.999;
    if (t->o.eps == 0)
        t->o.eps = 1e-8;
    t->np = dc_model_nparams (m);
    size_t B = o->batch_size, widest = 1;
    int L = m->nlayers;
    if (!(t->off = calloc ((size_t)L, sizeof (size_t))) ||
        !(t->z = calloc ((size_t)L, sizeof (float *))) ||
        !(t->y = calloc ((size_t)L, sizeof (float *)))) {
        errno = ENOMEM;
        BAD ("out of memory");
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < L; i++) {
        const struct dc_model_layer *l = &m->layers[i];
        t->off[i] = off;
        off += (size_t)l->out * ((size_t)l->in + 1);
        if ((size_t)l->out > widest)
            widest = (size_t)l->out;
        if ((size_t)l->in > widest)
            widest = (size_t)l->in;
        if (!(t->z[i] =
                  dalloc (t, B * (size_t)l->out * sizeof (float), errp)) ||
            !(t->y[i] = dalloc (t, B * (size_t)l->out * sizeof (float), errp)))
            goto fail;
    }
    size_t out = (size_t)dc_model_outputs (m);
    if (!(t->params = dalloc (t, t->np * sizeof (float), errp)) ||
        !(t->grads = dalloc (t, t->np * sizeof (float), errp)) ||
        !(t->x = dalloc (t, B * (size_t)dc_model_inputs (m) * sizeof (float),
                         errp)) ||
        !(t->da = dalloc (t, B * widest * sizeof (float), errp)) ||
        !(t->db = dalloc (t, B * widest * sizeof (float), errp)) ||
        !(t->target = dalloc (t,
                              o->loss == DC_LOSS_MSE ? B * out * sizeof (float)
                                                     : B * sizeof (int64_t),
                              errp)))
        goto fail;
    if (o->optim == DC_OPTIM_ADAM || o->momentum != 0) {
        if (!(t->s1 = dalloc (t, t->np * sizeof (float), errp)) ||
            zero_dev (t, t->s1, t->np, errp) < 0)
            goto fail;
    }
    if (o->optim == DC_OPTIM_ADAM) {
        if (!(t->s2 = dalloc (t, t->np * sizeof (float), errp)) ||
            zero_dev (t, t->s2, t->np, errp) < 0)
            goto fail;
    }
    if (zero_dev (t, t->grads, t->np, errp) < 0 || upload (t, errp) < 0)
        goto fail;
    return t;
fail:
    dc_trainer_destroy (t);
    return NULL;
}

int dc_trainer_grad (struct dc_trainer *t, const float *x, const void *target,
                     size_t rows, size_t scale_rows, double *loss_sum,
                     dc_error_t *errp)
{
    const struct dc_compute_ops *ops;
    struct dc_model *m;

    if (!t || !x || !target || !loss_sum || rows == 0 ||
        rows > t->o.batch_size || scale_rows < rows) {
        errno = EINVAL;
        return BAD ("invalid gradient step (rows %zu, batch size %zu)", rows,
                    t ? t->o.batch_size : 0);
    }
    ops = t->ops;
    m = t->m;
    int L = m->nlayers, M = (int)rows;
    int in0 = dc_model_inputs (m), out = dc_model_outputs (m);
    if (ops->copy_in (t->c, t->x, x, rows * (size_t)in0 * sizeof (float),
                      errp) < 0 ||
        ops->copy_in (t->c, t->target, target,
                      t->o.loss == DC_LOSS_MSE
                          ? rows * (size_t)out * sizeof (float)
                          : rows * sizeof (int64_t),
                      errp) < 0)
        return -1;
    const float *in = t->x;
    for (int i = 0; i < L; i++) {
        const struct dc_model_layer *l = &m->layers[i];
        const float *w = t->params + t->off[i];
        const float *b = w + (size_t)l->out * (size_t)l->in;
        if (ops->linear_fwd (t->c, M, l->out, l->in, in, w, b, l->act, t->y[i],
                             t->z[i], errp) < 0)
            return -1;
        in = t->y[i];
    }
    if (ops->loss (t->c, t->o.loss, M, out, t->y[L - 1], t->target, scale_rows,
                   t->da, loss_sum, errp) < 0)
        return -1;
    float *cur = t->da, *other = t->db;
    for (int i = L - 1; i >= 0; i--) {
        const struct dc_model_layer *l = &m->layers[i];
        const float *w = t->params + t->off[i];
        float *gw = t->grads + t->off[i];
        float *gb = gw + (size_t)l->out * (size_t)l->in;
        if (ops->linear_bwd (t->c, M, l->out, l->in, i ? t->y[i - 1] : t->x, w,
                             t->z[i], l->act, cur, i ? other : NULL, gw, gb,
                             errp) < 0)
            return -1;
        if (t->hook && t->hook (t->hook_arg, i, errp) < 0)
            return -1;
        float *s = cur;
        cur = other;
        other = s;
    }
    return 0;
}

int dc_trainer_grads_get (struct dc_trainer *t, float *host, dc_error_t *errp)
{
    if (!t || !host) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    return t->ops->copy_out (t->c, host, t->grads, t->np * sizeof (float),
                             errp);
}

int dc_trainer_grads_get_range (struct dc_trainer *t, size_t off, size_t n,
                                float *host, dc_error_t *errp)
{
    if (!t || !host || off > t->np || n > t->np - off) {
        errno = EINVAL;
        return BAD ("invalid gradient range (%zu floats at %zu of %zu)", n, off,
                    t ? t->np : 0);
    }
    return t->ops->copy_out (t->c, host, t->grads + off, n * sizeof (float),
                             errp);
}

void dc_trainer_set_grad_hook (struct dc_trainer *t, dc_grad_hook_f fn,
                               void *arg)
{
    if (!t)
        return;
    t->hook = fn;
    t->hook_arg = fn ? arg : NULL;
}

int dc_trainer_buckets (const struct dc_trainer *t, size_t bucket_bytes,
                        struct dc_grad_bucket *b, int max, dc_error_t *errp)
{
    int nb = 0;

    if (!t || !b || max <= 0) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    size_t end = t->np; /* the open bucket: floats [start, end) */
    for (int i = t->m->nlayers - 1; i >= 0; i--) {
        size_t n = end - t->off[i];
        if (n * sizeof (float) < bucket_bytes && i > 0)
            continue; /* not full yet: the layer below joins */
        if (nb == max) {
            errno = EINVAL;
            return BAD ("more than %d gradient buckets", max);
        }
        b[nb++] = (struct dc_grad_bucket){.off = t->off[i], .n = n, .layer = i};
        end = t->off[i];
    }
    return nb;
}

int dc_trainer_grads_set (struct dc_trainer *t, const float *host,
                          dc_error_t *errp)
{
    if (!t || !host) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    return t->ops->copy_in (t->c, t->grads, host, t->np * sizeof (float), errp);
}

int dc_trainer_state_nvec (const struct dc_trainer *t)
{
    return t ? 1 + (t->s1 != NULL) + (t->s2 != NULL) : 0;
}

int64_t dc_trainer_steps (const struct dc_trainer *t)
{
    return t ? t->step : 0;
}

int dc_trainer_state_get (struct dc_trainer *t, float *host, dc_error_t *errp)
{
    if (!t || !host) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    float *v[3] = {t->params, t->s1, t->s2};
    for (int i = 0, k = 0; i < 3; i++)
        if (v[i] && t->ops->copy_out (t->c, host + (size_t)k++ * t->np, v[i],
                                      t->np * sizeof (float), errp) < 0)
            return -1;
    return t->ops->sync (t->c, errp);
}

int dc_trainer_state_set (struct dc_trainer *t, const float *host, int64_t step,
                          dc_error_t *errp)
{
    if (!t || !host || step < 0) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    float *v[3] = {t->params, t->s1, t->s2};
    for (int i = 0, k = 0; i < 3; i++)
        if (v[i] && t->ops->copy_in (t->c, v[i], host + (size_t)k++ * t->np,
                                     t->np * sizeof (float), errp) < 0)
            return -1;
    t->step = step;
    return 0;
}

int dc_trainer_apply (struct dc_trainer *t, dc_error_t *errp)
{
    int rc;

    if (!t) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    if (t->o.optim == DC_OPTIM_ADAM)
        rc = t->ops->adam (t->c, t->params, t->grads, t->s1, t->s2, t->np,
                           (float)t->o.lr, (float)t->o.beta1, (float)t->o.beta2,
                           (float)t->o.eps, t->step + 1, errp);
    else
        rc = t->ops->sgd (t->c, t->params, t->grads, t->s1, t->np,
                          (float)t->o.lr, (float)t->o.momentum, errp);
    if (rc == 0)
        t->step++;
    return rc;
}

int dc_trainer_sync (struct dc_trainer *t, dc_error_t *errp)
{
    if (!t) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    for (int i = 0; i < t->m->nlayers; i++) {
        const struct dc_model_layer *l = &t->m->layers[i];
        size_t nw = (size_t)l->out * (size_t)l->in;
        if (t->ops->copy_out (t->c, l->w->data, t->params + t->off[i],
                              nw * sizeof (float), errp) < 0 ||
            t->ops->copy_out (t->c, l->b->data, t->params + t->off[i] + nw,
                              (size_t)l->out * sizeof (float), errp) < 0)
            return -1;
    }
    return t->ops->sync (t->c, errp);
}

/* ---- checkpoints ---- */

static const char *optim_str (enum dc_optim o)
{
    return o == DC_OPTIM_ADAM ? "adam" : "sgd";
}

static const char *loss_str (enum dc_loss l)
{
    return l == DC_LOSS_XENT ? "xent" : "mse";
}

static int meta_fmt (struct dc_safetensors *st, const char *key,
                     const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int meta_fmt (struct dc_safetensors *st, const char *key,
                     const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    return dc_safetensors_meta_set (st, key, buf);
}

static int add_state (struct dc_trainer *t, struct dc_safetensors *st,
                      const char *name, const float *dev, dc_error_t *errp)
{
    int64_t shape[1] = {(int64_t)t->np};
    struct dc_tensor *x =
        dc_safetensors_add (st, name, "F32", 1, shape, NULL, errp);
    if (!x)
        return -1;
    return t->ops->copy_out (t->c, x->data, dev, t->np * sizeof (float), errp);
}

int dc_trainer_checkpoint_save (struct dc_trainer *t,
                                const struct dc_train_pos *pos,
                                const char *path, dc_error_t *errp)
{
    struct dc_safetensors *st;
    int rc = -1;

    if (!t || !pos || !path) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    if (dc_trainer_sync (t, errp) < 0)
        return -1;
    if (!(st = dc_safetensors_create ())) {
        errno = ENOMEM;
        return BAD ("out of memory");
    }
    for (int i = 0; i < t->m->nlayers; i++) {
        const struct dc_model_layer *l = &t->m->layers[i];
        if (!dc_safetensors_add (st, l->w->name, "F32", 2, l->w->shape,
                                 l->w->data, errp) ||
            !dc_safetensors_add (st, l->b->name, "F32", 1, l->b->shape,
                                 l->b->data, errp))
            goto out;
    }
    if (t->o.optim == DC_OPTIM_ADAM) {
        if (add_state (t, st, "optimizer.exp_avg", t->s1, errp) < 0 ||
            add_state (t, st, "optimizer.exp_avg_sq", t->s2, errp) < 0)
            goto out;
    } else if (t->s1 &&
               add_state (t, st, "optimizer.momentum", t->s1, errp) < 0)
        goto out;
    if (meta_fmt (st, "dcrun.checkpoint", "1") < 0 ||
        meta_fmt (st, "dcrun.epoch", "%" PRId64, pos->epoch) < 0 ||
        meta_fmt (st, "dcrun.batch", "%" PRId64, pos->batch) < 0 ||
        meta_fmt (st, "dcrun.step", "%" PRId64, pos->step) < 0 ||
        meta_fmt (st, "dcrun.rng",
                  "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                  pos->rng.s[0], pos->rng.s[1], pos->rng.s[2],
                  pos->rng.s[3]) < 0 ||
        meta_fmt (st, "dcrun.seed", "%" PRIu64, t->o.seed) < 0 ||
        meta_fmt (st, "dcrun.shuffle", "%d", !t->o.no_shuffle) < 0 ||
        meta_fmt (st, "dcrun.optimizer", "%s", optim_str (t->o.optim)) < 0 ||
        meta_fmt (st, "dcrun.loss", "%s", loss_str (t->o.loss)) < 0 ||
        meta_fmt (st, "dcrun.batch_size", "%zu", t->o.batch_size) < 0 ||
        meta_fmt (st, "dcrun.lr", "%.17g", t->o.lr) < 0 ||
        meta_fmt (st, "dcrun.momentum", "%.17g", t->o.momentum) < 0 ||
        meta_fmt (st, "activation", "%s", act_str (t->m->act)) < 0 ||
        meta_fmt (st, "final_activation", "%s", act_str (t->m->final_act)) <
            0) {
        errno = ENOMEM;
        BAD ("out of memory");
        goto out;
    }
    rc = dc_safetensors_save (st, path, errp);
out:
    dc_safetensors_destroy (st);
    return rc;
}

static int meta_i64 (const struct dc_safetensors *st, const char *key,
                     int64_t *v)
{
    const char *s = dc_safetensors_meta_get (st, key);
    char *end;
    if (!s)
        return -1;
    errno = 0;
    long long x = strtoll (s, &end, 10);
    if (errno || end == s || *end || x < 0)
        return -1;
    *v = x;
    return 0;
}

static int check_same (const struct dc_safetensors *st, const char *key,
                       const char *want, const char *opt, dc_error_t *errp)
{
    const char *v = dc_safetensors_meta_get (st, key);
    if (!v || strcmp (v, want) != 0) {
        errno = EINVAL;
        return BAD ("the checkpoint was made with %s %s, not %s", opt,
                    v ? v : "(unknown)", want);
    }
    return 0;
}

static int load_state (struct dc_trainer *t, const struct dc_safetensors *st,
                       const char *name, float *dev, dc_error_t *errp)
{
    const struct dc_tensor *x = dc_safetensors_find (st, name);
    if (!x || !x->data || x->nelem != t->np) {
        errno = EINVAL;
        return BAD ("tensor '%s' is missing or has the wrong size", name);
    }
    return t->ops->copy_in (t->c, dev, x->data, t->np * sizeof (float), errp);
}

int dc_trainer_checkpoint_load (struct dc_trainer *t, struct dc_train_pos *pos,
                                const char *path, dc_error_t *errp)
{
    struct dc_safetensors *st;
    struct dc_train_pos p;
    char buf[64];
    int rc = -1;

    if (!t || !pos || !path) {
        errno = EINVAL;
        return BAD ("invalid argument");
    }
    if (!(st = dc_safetensors_load (path, errp)))
        return -1;
    errno = EINVAL;
    if (!dc_safetensors_meta_get (st, "dcrun.checkpoint")) {
        BAD ("not a dcrun checkpoint (no dcrun.checkpoint metadata)");
        goto out;
    }
    if (check_same (st, "dcrun.optimizer", optim_str (t->o.optim),
                    "--optimizer", errp) < 0 ||
        check_same (st, "dcrun.loss", loss_str (t->o.loss), "--loss", errp) < 0)
        goto out;
    snprintf (buf, sizeof (buf), "%zu", t->o.batch_size);
    if (check_same (st, "dcrun.batch_size", buf, "--batch-size", errp) < 0)
        goto out;
    snprintf (buf, sizeof (buf), "%" PRIu64, t->o.seed);
    if (check_same (st, "dcrun.seed", buf, "--seed", errp) < 0)
        goto out;
    snprintf (buf, sizeof (buf), "%d", !t->o.no_shuffle);
    if (check_same (st, "dcrun.shuffle", buf, "shuffling", errp) < 0)
        goto out;
    const char *rng = dc_safetensors_meta_get (st, "dcrun.rng");
    if (meta_i64 (st, "dcrun.epoch", &p.epoch) < 0 ||
        meta_i64 (st, "dcrun.batch", &p.batch) < 0 ||
        meta_i64 (st, "dcrun.step", &p.step) < 0 || !rng ||
        strlen (rng) != 64) {
        BAD ("checkpoint position (dcrun.epoch, batch, step, rng) is "
             "missing or malformed");
        goto out;
    }
    for (int i = 0; i < 4; i++) {
        char w[17];
        char *end;
        memcpy (w, rng + 16 * i, 16);
        w[16] = '\0';
        p.rng.s[i] = strtoull (w, &end, 16);
        if (*end) {
            BAD ("checkpoint dcrun.rng is malformed");
            goto out;
        }
    }
    /* weights: same names and shapes as the model */
    for (int i = 0; i < t->m->nlayers; i++) {
        const struct dc_model_layer *l = &t->m->layers[i];
        const struct dc_tensor *pair[2] = {l->w, l->b};
        for (int k = 0; k < 2; k++) {
            const struct dc_tensor *x = dc_safetensors_find (st, pair[k]->name);
            if (!x || !x->data || x->nelem != pair[k]->nelem ||
                x->ndim != pair[k]->ndim ||
                memcmp (x->shape, pair[k]->shape,
                        sizeof (int64_t) * (size_t)x->ndim) != 0) {
                BAD ("tensor '%s' is missing or has another shape than in "
                     "the model",
                     pair[k]->name);
                goto out;
            }
            memcpy (pair[k]->data, x->data, x->nelem * sizeof (float));
        }
    }
    if (t->o.optim == DC_OPTIM_ADAM) {
        if (load_state (t, st, "optimizer.exp_avg", t->s1, errp) < 0 ||
            load_state (t, st, "optimizer.exp_avg_sq", t->s2, errp) < 0)
            goto out;
    } else if (t->s1 &&
               load_state (t, st, "optimizer.momentum", t->s1, errp) < 0)
        goto out;
    if (upload (t, errp) < 0)
        goto out;
    t->step = p.step;
    *pos = p;
    rc = 0;
out:
    if (rc < 0)
        errprefix (errp, "%s: ", path);
    dc_safetensors_destroy (st);
    return rc;
}

void dc_train_pos_init (struct dc_train_pos *pos, const struct dc_train_opts *o)
{
    memset (pos, 0, sizeof (*pos));
    dc_rng_seed (&pos->rng, o ? o->seed : 0);
}

/* dc_trainer_run's buffers and sizes: a batch's rows gathered in hx, ht. */
struct run_bufs {
    size_t *perm;
    float *hx;
    char *ht;
    size_t B, in, tsz;
    int64_t nb; /* batches per epoch */
};

/* The labels (cross entropy) and the position fit the data: 0, or -1
 * (errp, errno EINVAL). */
static int run_check (const struct dc_trainer *t, const struct dc_train_run *r,
                      const struct dc_train_pos *pos, int64_t nb, size_t out,
                      dc_error_t *errp)
{
    if (t->o.loss == DC_LOSS_XENT) {
        const int64_t *lab = r->target;
        for (size_t i = 0; i < r->rows; i++)
            if (lab[i] < 0 || lab[i] >= (int64_t)out) {
                errno = EINVAL;
                return BAD ("label %" PRId64 " of row %zu is outside [0, %zu) "
                            "(the model has %zu outputs)",
                            lab[i], i, out, out);
            }
    }
    if (pos->batch < 0 || pos->batch > nb) {
        errno = EINVAL;
        return BAD ("position batch %" PRId64 " is outside this data "
                    "(%" PRId64 " batches per epoch)",
                    pos->batch, nb);
    }
    return 0;
}

/* Batch b of the epoch (g: the rng at the epoch's end): its gradient,
 * the step, the checkpoint.  0 go on; 1 the callback stopped; -1 (errp). */
static int run_batch (struct dc_trainer *t, const struct dc_train_run *r,
                      struct dc_train_pos *pos, const struct run_bufs *rb,
                      int64_t b, const struct dc_rng *g, dc_error_t *errp)
{
    size_t r0 = (size_t)b * rb->B, in = rb->in, tsz = rb->tsz;
    size_t n = r->rows - r0 < rb->B ? r->rows - r0 : rb->B;
    double ls;

    for (size_t i = 0; !r->grad_idx_fn && i < n; i++) {
        size_t src = rb->perm[r0 + i];
        memcpy (rb->hx + i * in, r->x + src * in, in * sizeof (float));
        memcpy (rb->ht + i * tsz, (const char *)r->target + src * tsz, tsz);
    }
    if ((r->grad_idx_fn
             ? r->grad_idx_fn (r->grad_arg, rb->perm + r0, n, &ls, errp)
         : r->grad_fn
             ? r->grad_fn (r->grad_arg, t, rb->hx, rb->ht, n, &ls, errp)
             : dc_trainer_grad (t, rb->hx, rb->ht, n, n, &ls, errp)) < 0)
        return -1;
    if (!isfinite (ls)) {
        /* stop before the step is applied or saved: the last
         * checkpoint stays the last good state */
        errno = EDOM;
        return BAD ("the loss became %s at epoch %" PRId64 ", step %" PRId64
                    " (batch %" PRId64 "): training stopped, no model "
                    "written",
                    isnan (ls) ? "NaN" : "Inf", pos->epoch + 1, t->step + 1,
                    b + 1);
    }
    if (r->grad_idx_fn)
        t->step++; /* the ranks applied it */
    else if (dc_trainer_apply (t, errp) < 0)
        return -1;
    pos->step = t->step;
    pos->batch = b + 1;
    bool epoch_end = b + 1 == rb->nb;
    if (epoch_end) {
        pos->epoch++;
        pos->batch = 0;
        pos->rng = *g;
    }
    if (r->checkpoint &&
        (epoch_end ||
         (r->checkpoint_every > 0 && pos->step % r->checkpoint_every == 0)) &&
        ((r->grad_idx_fn && r->state_fn &&
          r->state_fn (r->grad_arg, t, errp) < 0) ||
         dc_trainer_checkpoint_save (t, pos, r->checkpoint, errp) < 0))
        return -1;
    if (r->step_cb && r->step_cb (pos, n, ls / (double)n, r->arg))
        return 1;
    return 0;
}

int dc_trainer_run (struct dc_trainer *t, const struct dc_train_run *r,
                    struct dc_train_pos *pos, dc_error_t *errp)
{
    struct run_bufs rb = {0};
    int rc = -1;

    if (!t || !r || !pos || !r->x || !r->target || r->rows == 0 ||
        r->epochs < 0) {
        errno = EINVAL;
        return BAD ("nothing to train on");
    }
    size_t B = rb.B = t->o.batch_size;
    size_t in = rb.in = (size_t)dc_model_inputs (t->m);
    size_t out = (size_t)dc_model_outputs (t->m);
    rb.tsz = t->o.loss == DC_LOSS_MSE ? out * sizeof (float) : sizeof (int64_t);
    int64_t nb = rb.nb = (int64_t)((r->rows + B - 1) / B);
    if (run_check (t, r, pos, nb, out, errp) < 0)
        return -1;
    if (!(rb.perm = malloc (r->rows * sizeof (size_t))) ||
        !(rb.hx = malloc (B * in * sizeof (float))) ||
        !(rb.ht = malloc (B * rb.tsz))) {
        errno = ENOMEM;
        BAD ("out of memory");
        goto out;
    }
    while (pos->epoch < r->epochs) {
        struct dc_rng g = pos->rng;
        if (t->o.no_shuffle)
            for (size_t i = 0; i < r->rows; i++)
                rb.perm[i] = i;
        else
            dc_rng_permute (&g, rb.perm, r->rows);
        if (pos->batch == nb) { /* a position past the last batch */
            pos->epoch++;
            pos->batch = 0;
            pos->rng = g;
            continue;
        }
        for (int64_t b = pos->batch; b < nb; b++) {
            int k = run_batch (t, r, pos, &rb, b, &g, errp);
            if (k < 0)
                goto out;
            if (k > 0) {
                rc = 1;
                goto sync;
            }
            if (b + 1 == nb)
                break;
        }
    }
    rc = 0;
sync:
    if ((r->grad_idx_fn && r->state_fn &&
         r->state_fn (r->grad_arg, t, errp) < 0) ||
        dc_trainer_sync (t, errp) < 0)
        rc = -1;
out:
    free (rb.perm);
    free (rb.hx);
    free (rb.ht);
    return rc;
}

/* ---- micro-batch entry points (model.h) ---- */

static int range_ok (const struct dc_model *m, int l0, int l1,
                     const struct dc_compute_ops *ops, struct dc_compute *c,
                     size_t rows, dc_error_t *errp)
{
    if (!m || !ops || !c || l0 < 0 || l1 > m->nlayers || l0 >= l1 ||
        rows == 0 || rows > INT_MAX) {
        errno = EINVAL;
        return BAD ("layers %d..%d of %d on %zu rows: invalid", l0, l1,
                    m ? m->nlayers : 0, rows);
    }
    return 0;
}

int dc_model_layers_fwd (const struct dc_model *m, int l0, int l1,
                         const struct dc_compute_ops *ops, struct dc_compute *c,
                         const float *params, size_t rows, const float *x,
                         float *const *z, float *const *y, dc_error_t *errp)
{
    if (range_ok (m, l0, l1, ops, c, rows, errp) < 0)
        return -1;
    if (!params || !x || !z || !y) {
        errno = EINVAL;
        return BAD ("layers forward: NULL argument");
    }
    const float *in = x;
    size_t off = 0;
    for (int i = l0; i < l1; i++) {
        const struct dc_model_layer *l = &m->layers[i];
        const float *w = params + off;
        const float *b = w + (size_t)l->out * (size_t)l->in;
        if (ops->linear_fwd (c, (int)rows, l->out, l->in, in, w, b, l->act,
                             y[i - l0], z[i - l0], errp) < 0)
            return -1;
        in = y[i - l0];
        off += (size_t)l->out * ((size_t)l->in + 1);
    }
    return 0;
}

int dc_model_layers_bwd (const struct dc_model *m, int l0, int l1,
                         const struct dc_compute_ops *ops, struct dc_compute *c,
                         const float *params, float *grads, size_t rows,
                         const float *x, float *const *z, float *const *y,
                         float *da, float *db, bool want_dx, float **dx,
                         dc_error_t *errp)
{
    if (range_ok (m, l0, l1, ops, c, rows, errp) < 0)
        return -1;
    if (!params || !grads || !x || !z || !y || !da || !db || !dx) {
        errno = EINVAL;
        return BAD ("layers backward: NULL argument");
    }
    size_t off = 0;
    for (int i = l0; i < l1; i++)
        off += (size_t)m->layers[i].out * ((size_t)m->layers[i].in + 1);
    float *cur = da, *other = db;
    for (int i = l1 - 1; i >= l0; i--) {
        const struct dc_model_layer *l = &m->layers[i];
        off -= (size_t)l->out * ((size_t)l->in + 1);
        const float *w = params + off;
        float *gw = grads + off;
        float *gb = gw + (size_t)l->out * (size_t)l->in;
        bool want = i > l0 || want_dx;
        if (ops->linear_bwd (c, (int)rows, l->out, l->in,
                             i > l0 ? y[i - l0 - 1] : x, w, z[i - l0], l->act,
                             cur, want ? other : NULL, gw, gb, errp) < 0)
            return -1;
        float *s = cur;
        cur = other;
        other = s;
    }
    *dx = want_dx ? cur : NULL;
    return 0;
}
