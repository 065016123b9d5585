/* stage.c - the rank side of a pipeline stage (lib/run/pipeline.h) */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/model/model.h"
#include "lib/comm/wire.h"
#include "lib/run/pipeline.h"
#include "lib/run/stage.h"

#define MAX_ROWS (1u << 26)

enum { FWD = DC_WIRE_FWD, BWD = DC_WIRE_BWD };

struct pjob {
    char task[8];
    char device[16];
    char dtype[8];
    int threads, delay_ms;
    int stage, stages, prev, next;
    struct dc_train_opts to;
};

struct stage {
    struct dc_comm *c;
    const struct pjob *j;
    const struct dc_compute_ops *ops;
    struct dc_compute *dev;
    struct dc_model *m;
    int nin, nout;
    bool first, last;
    /* training */
    size_t np;
    size_t *off; /* [nlayers] offset of each layer's weight */
    float *params, *grads, *s1, *s2; /* device */
    float *gacc, *gtmp; /* host: gradient summed over micro-batches */
    int64_t step;
    /* the step in progress */
    uint64_t attempt;
    uint64_t batch_rows, micro_rows, nmicro, done_bwd;
    double loss;
    uint8_t *target; /* last stage: the group's targets */
    size_t tsz;
    struct micro *mb; /* [nmicro] */
    float *da, *db;   /* device [micro_rows][widest] */
    size_t widest;
};

struct micro {
    uint64_t rows;
    float *x;       /* device [rows][nin] */
    float **z, **y; /* device per layer */
};

/* The stage's view of a decoded JOB (dc_wire_job_decode checked the
 * stage, its neighbours and the train options). */
static int job_from_wire (const struct dc_wire_job *w, struct pjob *j,
                          dc_error_t *errp)
{
    memset (j, 0, sizeof (*j));
    snprintf (j->task, sizeof (j->task), "%s", dc_wire_mode_name (w->task));
    snprintf (j->device, sizeof (j->device), "%s", w->device);
    snprintf (j->dtype, sizeof (j->dtype), "%s", w->dtype);
    j->threads = w->threads;
    j->delay_ms = w->delay_ms;
    j->stage = w->stage;
    j->stages = w->stages;
    j->prev = w->prev;
    j->next = w->next;
    if (w->has_train) {
        dc_serve_train_unpack (&w->train, &j->to);
        if (j->to.beta1 == 0)
            j->to.beta1 = 0.9;
        if (j->to.beta2 == 0)
            j->to.beta2 = 0.999;
        if (j->to.eps == 0)
            j->to.eps = 1e-8;
        if (!(j->to.lr > 0))
            return errprintf (errp, "worker: train job without a batch size "
                                    "or lr");
    }
    return 0;
}

static struct dc_model *load_stage (const uint8_t *data, size_t len,
                                    const struct dc_worker_opts *o,
                                    dc_error_t *errp)
{
    const char *dir = o->tmpdir ? o->tmpdir : getenv ("TMPDIR");
    char path[4096];
    struct dc_model *m = NULL;
    int fd;

    snprintf (path, sizeof (path), "%s/dcrun-stage-XXXXXX.safetensors",
              dir && *dir ? dir : "/tmp");
    if ((fd = mkstemps (path, 12)) < 0) {
        errprintf (errp, "worker: %s: %s", path, strerror (errno));
        return NULL;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write (fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errprintf (errp, "worker: %s: %s", path, strerror (errno));
            close (fd);
            unlink (path);
            return NULL;
        }
        off += (size_t)n;
    }
    close (fd);
    m = dc_model_load (path, NULL, errp);
    unlink (path);
    return m;
}

static int send_ready (struct stage *st, const struct dc_wire_ready *rd,
                       dc_error_t *errp)
{
    char *s = dc_wire_ready_encode (rd);
    int rc;

    if (!s)
        return errprintf (errp, "worker: out of memory");
    rc = dc_comm_send (st->c, DC_COMM_HUB, DC_MSG_READY, s, strlen (s), errp);
    free (s);
    return rc;
}

/* Send rows of width w (with a pipeline header) to the next stage or the
 * hub; buf has DC_PIPE_HDR bytes of room before the rows.  Then tell the
 * hub what the micro-batch took here (a RESULT of the header alone):
 * compute seconds from start (this rank's clock) and the send's seconds. */
static int pass_on (struct stage *st, uint8_t *buf, uint64_t id, uint64_t row0,
                    uint64_t rows, double secs, double start, dc_error_t *errp)
{
    struct dc_wire_rows w = {
        .id = id, .row0 = row0, .rows = rows, .seconds = secs, .start = start};
    dc_wire_rows_put (buf, &w);
    size_t len = DC_PIPE_HDR + rows * (size_t)st->nout * sizeof (float);
    double t = dc_report_now ();
    if (dc_comm_send (st->c, st->last ? DC_COMM_HUB : st->j->next,
                      st->last ? DC_MSG_RESULT : DC_MSG_DATA, buf, len,
                      errp) < 0)
        return -1;
    uint8_t note[DC_PIPE_HDR];
    w.write = dc_report_now () - t;
    dc_wire_rows_put (note, &w);
    return dc_comm_send (st->c, DC_COMM_HUB, DC_MSG_RESULT, note, DC_PIPE_HDR,
                         errp);
}

static int serve_infer (struct stage *st, dc_error_t *errp)
{
    struct dc_layer_view *lv = NULL;
    struct dc_mlp_dev *net = NULL;
    struct dc_mlp_view view;
    uint8_t *out = NULL;
    size_t cap = 0;
    int rc = -1;

    if (!(lv = calloc ((size_t)st->m->nlayers, sizeof (*lv)))) {
        errprintf (errp, "worker: out of memory");
        goto done;
    }
    dc_model_view (st->m, lv, &view);
    if (!(net = st->ops->mlp_load (st->dev, &view, errp)))
        goto done;
    free (lv);
    lv = NULL;
    /* the device has its copy: the host one can go */
    dc_model_destroy (st->m);
    st->m = NULL;
    const char *kern = st->ops->kernel ? st->ops->kernel (st->dev) : NULL;
    struct dc_wire_ready rd = {
        .inputs = st->nin, .outputs = st->nout, .parameters = -1};
    snprintf (rd.device, sizeof (rd.device), "%s",
              st->ops->describe ? st->ops->describe (st->dev) : st->ops->name);
    snprintf (rd.kernel, sizeof (rd.kernel), "%s", kern ? kern : "");
    rd.clock = dc_report_now (); /* the hub's clock offset for --trace */
    if (send_ready (st, &rd, errp) < 0)
        goto quiet;
    for (;;) {
        struct dc_comm_msg msg;
        if (dc_comm_recv (st->c, &msg, -1, errp) < 0)
            goto quiet;
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            rc = 0;
            break;
        }
        if (msg.type != (st->first ? DC_MSG_CHUNK : DC_MSG_DATA)) {
            free (msg.data);
            continue;
        }
        struct dc_wire_rows mb;
        dc_error_t e;
        if (dc_wire_rows_get (msg.data, msg.len, (size_t)st->nin * 4,
                              "micro-batch", &mb, &e) < 0) {
            free (msg.data);
            errprintf (errp, "worker: stage %d: %s", st->j->stage, e.text);
            goto done;
        }
        uint64_t id = mb.id, row0 = mb.row0, rows = mb.rows;
        size_t need = DC_PIPE_HDR + (size_t)rows * (size_t)st->nout * 4;
        if (need > cap) {
            uint8_t *p = realloc (out, need);
            if (!p) {
                free (msg.data);
                errprintf (errp, "worker: out of memory");
                goto done;
            }
            out = p;
            cap = need;
        }
        if (st->j->delay_ms > 0)
            dc_worker_sleep_ms (st->j->delay_ms);
        double t0 = dc_report_now ();
        int r = st->ops->mlp_infer (st->dev, net, (const float *)mb.data,
                                    (size_t)rows, (size_t)row0,
                                    (float *)(out + DC_PIPE_HDR), errp);
        double secs = dc_report_now () - t0;
        free (msg.data);
        if (r < 0)
            goto done;
        if (pass_on (st, out, id, row0, rows, secs, t0, errp) < 0)
            goto quiet;
    }
done:
    if (rc < 0)
        dc_worker_fail (st->c, errp);
quiet:
    if (net)
        st->ops->mlp_unload (st->dev, net);
    free (lv);
    free (out);
    return rc;
}

/* ---- training ---- */

static void *dalloc (struct stage *st, size_t bytes, dc_error_t *errp)
{
    return st->ops->alloc (st->dev, bytes ? bytes : 4, errp);
}

static void dfree (struct stage *st, void *p)
{
    if (p)
        st->ops->free (st->dev, p);
}

static void micro_free (struct stage *st, struct micro *mb)
{
    dfree (st, mb->x);
    for (int i = 0; mb->z && i < st->m->nlayers; i++) {
        dfree (st, mb->z[i]);
        dfree (st, mb->y[i]);
    }
    free (mb->z);
    free (mb->y);
    memset (mb, 0, sizeof (*mb));
}

static void step_free (struct stage *st)
{
    for (uint64_t k = 0; st->mb && k < st->nmicro; k++)
        micro_free (st, &st->mb[k]);
    free (st->mb);
    st->mb = NULL;
    free (st->target);
    st->target = NULL;
    dfree (st, st->da);
    dfree (st, st->db);
    st->da = st->db = NULL;
    st->nmicro = 0;
}

/* A new step: attempt, rows of the micro-batches.  Called on the first
 * message of a step (CHUNK for the first and last stage, FWD otherwise). */
static int step_begin (struct stage *st, uint64_t attempt, uint64_t nmicro,
                       uint64_t micro_rows, uint64_t batch_rows,
                       dc_error_t *errp)
{
    if (st->mb && st->attempt == attempt)
        return 0;
    step_free (st);
    if (nmicro == 0 || nmicro > MAX_ROWS || micro_rows == 0 ||
        micro_rows > MAX_ROWS)
        return errprintf (errp, "worker: a malformed training step");
    st->attempt = attempt;
    st->nmicro = nmicro;
    st->micro_rows = micro_rows;
    st->batch_rows = batch_rows;
    st->done_bwd = 0;
    st->loss = 0;
    memset (st->gacc, 0, st->np * sizeof (float));
    if (!(st->mb = calloc (nmicro, sizeof (*st->mb))) ||
        !(st->da = dalloc (st, micro_rows * st->widest * 4, errp)) ||
        !(st->db = dalloc (st, micro_rows * st->widest * 4, errp)))
        return errprintf (errp, "worker: out of memory for a step");
    return 0;
}

static int forward (struct stage *st, uint64_t k, uint64_t rows, const float *x,
                    dc_error_t *errp)
{
    const struct dc_compute_ops *ops = st->ops;
    struct micro *mb = &st->mb[k];
    int L = st->m->nlayers;

    if (mb->x)
        return errprintf (errp, "worker: micro-batch %" PRIu64 " twice", k);
    mb->rows = rows;
    if (!(mb->x = dalloc (st, rows * (size_t)st->nin * 4, errp)) ||
        !(mb->z = calloc ((size_t)L, sizeof (float *))) ||
        !(mb->y = calloc ((size_t)L, sizeof (float *))))
        return errprintf (errp, "worker: out of memory");
    if (ops->copy_in (st->dev, mb->x, x, rows * (size_t)st->nin * 4, errp) < 0)
        return -1;
    for (int i = 0; i < L; i++) {
        size_t bytes = rows * (size_t)st->m->layers[i].out * 4;
        if (!(mb->z[i] = dalloc (st, bytes, errp)) ||
            !(mb->y[i] = dalloc (st, bytes, errp)))
            return -1;
    }
    return dc_model_layers_fwd (st->m, 0, L, ops, st->dev, st->params, rows,
                                mb->x, mb->z, mb->y, errp);
}

/* Backward of micro-batch k from st->da (the gradient at its output);
 * the gradient at its input is left in *dx (device) unless first. */
static int backward (struct stage *st, uint64_t k, float **dx, dc_error_t *errp)
{
    const struct dc_compute_ops *ops = st->ops;
    struct micro *mb = &st->mb[k];

    if (dc_model_layers_bwd (st->m, 0, st->m->nlayers, ops, st->dev, st->params,
                             st->grads, (size_t)mb->rows, mb->x, mb->z, mb->y,
                             st->da, st->db, !st->first, dx, errp) < 0)
        return -1;
    /* sum the micro-batch's gradient into the step's */
    if (ops->copy_out (st->dev, st->gtmp, st->grads, st->np * 4, errp) < 0)
        return -1;
    for (size_t i = 0; i < st->np; i++)
        st->gacc[i] += st->gtmp[i];
    st->done_bwd++;
    micro_free (st, mb);
    return 0;
}

static int send_train (struct stage *st, int dst, int kind, uint64_t k,
                       const float *dev, uint64_t rows, size_t width,
                       dc_error_t *errp)
{
    struct dc_wire_pdata w = {.kind = (uint64_t)kind,
                              .attempt = st->attempt,
                              .index = k,
                              .rows = rows,
                              .nmicro = st->nmicro};
    size_t len;
    uint8_t *buf = dc_wire_pdata_new (&w, width * 4, &len);
    int rc;

    if (!buf)
        return errprintf (errp, "worker: out of memory");
    /* the header is 40 bytes: copy out to an aligned buffer first */
    float *tmp = malloc (rows * width * 4 + 4);
    if (!tmp) {
        free (buf);
        return errprintf (errp, "worker: out of memory");
    }
    rc = st->ops->copy_out (st->dev, tmp, dev, rows * width * 4, errp);
    if (rc == 0) {
        memcpy (buf + DC_PIPE_DATA_HDR, tmp, rows * width * 4);
        rc = dc_comm_send (st->c, dst, DC_MSG_DATA, buf, len, errp);
    }
    free (tmp);
    free (buf);
    return rc;
}

/* Last stage: loss of micro-batch k, then its backward. */
static int loss_and_back (struct stage *st, uint64_t k, dc_error_t *errp)
{
    struct micro *mb = &st->mb[k];
    int L = st->m->nlayers;
    double ls = 0;
    void *tdev = dalloc (st, mb->rows * st->tsz, errp);
    float *dx;
    int rc = -1;

    if (!tdev)
        return -1;
    if (st->ops->copy_in (st->dev, tdev,
                          st->target + k * st->micro_rows * st->tsz,
                          mb->rows * st->tsz, errp) < 0 ||
        st->ops->loss (st->dev, st->j->to.loss, (int)mb->rows, st->nout,
                       mb->y[L - 1], tdev, (size_t)st->batch_rows, st->da, &ls,
                       errp) < 0)
        goto out;
    st->loss += ls;
    uint64_t rows = mb->rows;
    if (backward (st, k, &dx, errp) < 0)
        goto out;
    if (!st->first && send_train (st, st->j->prev, BWD, k, dx, rows,
                                  (size_t)st->nin, errp) < 0)
        goto out;
    rc = 0;
out:
    dfree (st, tdev);
    return rc;
}

static int step_result (struct stage *st, dc_error_t *errp)
{
    struct dc_wire_tresult w = {.attempt = st->attempt,
                                .status = 0,
                                .loss = st->loss,
                                .grad = (const uint8_t *)st->gacc,
                                .nparams = st->np};
    size_t len;
    uint8_t *buf = dc_wire_tresult_new (&w, &len);
    int rc;

    if (!buf)
        return errprintf (errp, "worker: out of memory");
    rc = dc_comm_send (st->c, DC_COMM_HUB, DC_MSG_RESULT, buf, len, errp);
    free (buf);
    step_free (st);
    return rc;
}

static int apply (struct stage *st, const uint8_t *data, size_t len,
                  dc_error_t *errp)
{
    const struct pjob *j = st->j;
    int rc;

    struct dc_wire_reduced w;
    dc_error_t e;

    if (dc_wire_reduced_get (data, len, st->np, &w, &e) < 0)
        return errprintf (errp, "worker: %s", e.text);
    memcpy (st->gtmp, w.grad, st->np * 4);
    if (st->ops->copy_in (st->dev, st->grads, st->gtmp, st->np * 4, errp) < 0)
        return -1;
    if (j->to.optim == DC_OPTIM_ADAM)
        rc = st->ops->adam (st->dev, st->params, st->grads, st->s1, st->s2,
                            st->np, (float)j->to.lr, (float)j->to.beta1,
                            (float)j->to.beta2, (float)j->to.eps, st->step + 1,
                            errp);
    else
        rc = st->ops->sgd (st->dev, st->params, st->grads, st->s1, st->np,
                           (float)j->to.lr, (float)j->to.momentum, errp);
    if (rc == 0)
        st->step++;
    return rc;
}

/* Upload the stage's weights and the optimizer state its model carries. */
static int train_setup (struct stage *st, dc_error_t *errp)
{
    const struct dc_compute_ops *ops = st->ops;
    int L = st->m->nlayers;
    size_t off = 0;

    st->widest = 1;
    if (!(st->off = calloc ((size_t)L, sizeof (size_t))))
        return errprintf (errp, "worker: out of memory");
    for (int i = 0; i < L; i++) {
        const struct dc_model_layer *l = &st->m->layers[i];
        st->off[i] = off;
        off += (size_t)l->out * ((size_t)l->in + 1);
        if ((size_t)l->out > st->widest)
            st->widest = (size_t)l->out;
        if ((size_t)l->in > st->widest)
            st->widest = (size_t)l->in;
    }
    st->np = off;
    st->tsz = st->j->to.loss == DC_LOSS_XENT ? sizeof (int64_t)
                                             : (size_t)st->nout * 4;
    bool mom = st->j->to.optim == DC_OPTIM_ADAM || st->j->to.momentum != 0;
    if (!(st->params = dalloc (st, st->np * 4, errp)) ||
        !(st->grads = dalloc (st, st->np * 4, errp)) ||
        (mom && !(st->s1 = dalloc (st, st->np * 4, errp))) ||
        (st->j->to.optim == DC_OPTIM_ADAM &&
         !(st->s2 = dalloc (st, st->np * 4, errp))))
        return -1;
    if (!(st->gacc = calloc (st->np ? st->np : 1, 4)) ||
        !(st->gtmp = calloc (st->np ? st->np : 1, 4)))
        return errprintf (errp, "worker: out of memory");
    for (int i = 0; i < L; i++) {
        const struct dc_model_layer *l = &st->m->layers[i];
        size_t nw = (size_t)l->out * (size_t)l->in;
        if (ops->copy_in (st->dev, st->params + st->off[i], l->w->data, nw * 4,
                          errp) < 0 ||
            ops->copy_in (st->dev, st->params + st->off[i] + nw, l->b->data,
                          (size_t)l->out * 4, errp) < 0)
            return -1;
    }
    /* state carried by the stage model (a resumed run) */
    const struct dc_safetensors *sf = st->m->st;
    const char *names[2] = {NULL, NULL};
    float *dst[2] = {st->s1, st->s2};
    if (st->j->to.optim == DC_OPTIM_ADAM) {
        names[0] = "optimizer.exp_avg";
        names[1] = "optimizer.exp_avg_sq";
    } else if (st->s1)
        names[0] = "optimizer.momentum";
    for (int i = 0; i < 2; i++) {
        const struct dc_tensor *t =
            names[i] ? dc_safetensors_find (sf, names[i]) : NULL;
        if (!names[i] || !t)
            continue;
        if (t->nelem != st->np || !t->data)
            return errprintf (errp, "worker: %s of %zu values, not %zu",
                              names[i], t->nelem, st->np);
        if (ops->copy_in (st->dev, dst[i], t->data, st->np * 4, errp) < 0)
            return -1;
    }
    const char *s = dc_safetensors_meta_get (sf, "dcrun.step");
    st->step = s ? strtoll (s, NULL, 10) : 0;
    return 0;
}

static void train_teardown (struct stage *st)
{
    step_free (st);
    dfree (st, st->params);
    dfree (st, st->grads);
    dfree (st, st->s1);
    dfree (st, st->s2);
    free (st->gacc);
    free (st->gtmp);
    free (st->off);
}

static int on_train_chunk (struct stage *st, const uint8_t *d, size_t len,
                           dc_error_t *errp)
{
    size_t width = st->first ? (size_t)st->nin * 4 : st->tsz;
    struct dc_wire_pstep w;
    dc_error_t e;
    if (dc_wire_pstep_get (d, len, width, &w, &e) < 0)
        return errprintf (errp, "worker: a malformed training %s", e.text);
    uint64_t attempt = w.attempt, rows = w.rows, batch = w.batch, mr = w.micro;
    uint64_t nmicro = (rows + mr - 1) / mr;
    if (step_begin (st, attempt, nmicro, mr, batch, errp) < 0)
        return -1;
    if (st->last) {
        if (!(st->target = malloc (rows * st->tsz)))
            return errprintf (errp, "worker: out of memory");
        memcpy (st->target, w.data, rows * st->tsz);
    }
    if (!st->first)
        return 0;
    /* stage 0: every micro-batch forward, each passed on at once */
    float *x = malloc (mr * (size_t)st->nin * 4);
    if (!x)
        return errprintf (errp, "worker: out of memory");
    for (uint64_t k = 0; k < nmicro; k++) {
        uint64_t n = k + 1 < nmicro ? mr : rows - k * mr;
        if (st->j->delay_ms > 0)
            dc_worker_sleep_ms (st->j->delay_ms);
        memcpy (x, w.data + k * mr * (size_t)st->nin * 4,
                n * (size_t)st->nin * 4);
        if (forward (st, k, n, x, errp) < 0 ||
            send_train (st, st->j->next, FWD, k,
                        st->mb[k].y[st->m->nlayers - 1], n, (size_t)st->nout,
                        errp) < 0) {
            free (x);
            return -1;
        }
    }
    free (x);
    return 0;
}

static int on_train_data (struct stage *st, const uint8_t *d, size_t len,
                          dc_error_t *errp)
{
    struct dc_wire_pdata w;
    dc_error_t e;
    if (dc_wire_pdata_get (d, len, (size_t)st->nin * 4, (size_t)st->nout * 4,
                           &w, &e) < 0)
        return errprintf (errp, "worker: stage %d: %s", st->j->stage, e.text);
    uint64_t kind = w.kind, attempt = w.attempt, k = w.index, rows = w.rows,
             nmicro = w.nmicro;
    size_t width = kind == DC_WIRE_FWD ? (size_t)st->nin : (size_t)st->nout;
    float *v = malloc (rows * width * 4 + 4);
    int rc = -1;
    if (!v)
        return errprintf (errp, "worker: out of memory");
    memcpy (v, w.data, rows * width * 4);
    if (kind == FWD) {
        /* the last stage has the step from the targets' CHUNK */
        if (!st->last && step_begin (st, attempt, nmicro, rows, 0, errp) < 0)
            goto out;
        if (!st->mb || attempt != st->attempt || k >= st->nmicro ||
            nmicro != st->nmicro || rows > st->micro_rows) {
            errprintf (errp, "worker: stage %d: a micro-batch of no step",
                       st->j->stage);
            goto out;
        }
        if (st->j->delay_ms > 0)
            dc_worker_sleep_ms (st->j->delay_ms);
        if (forward (st, k, rows, v, errp) < 0)
            goto out;
        if (st->last)
            rc = loss_and_back (st, k, errp);
        else
            rc = send_train (st, st->j->next, FWD, k,
                             st->mb[k].y[st->m->nlayers - 1], rows,
                             (size_t)st->nout, errp);
        if (rc < 0)
            goto out;
    } else {
        float *dx;
        if (!st->mb || attempt != st->attempt || k >= st->nmicro ||
            !st->mb[k].x || st->mb[k].rows != rows) {
            errprintf (errp, "worker: stage %d: a gradient of no micro-batch",
                       st->j->stage);
            goto out;
        }
        if (st->ops->copy_in (st->dev, st->da, v, rows * width * 4, errp) < 0 ||
            backward (st, k, &dx, errp) < 0 ||
            (!st->first && send_train (st, st->j->prev, BWD, k, dx, rows,
                                       (size_t)st->nin, errp) < 0))
            goto out;
    }
    rc = 0;
out:
    free (v);
    return rc;
}

static int serve_train (struct stage *st, dc_error_t *errp)
{
    int rc = -1;

    if (train_setup (st, errp) < 0)
        goto done;
    struct dc_wire_ready rd = {
        .inputs = st->nin, .outputs = st->nout, .parameters = (int64_t)st->np};
    snprintf (rd.device, sizeof (rd.device), "%s", st->ops->name);
    if (send_ready (st, &rd, errp) < 0)
        goto quiet;
    for (;;) {
        struct dc_comm_msg msg;
        int r = 0;
        if (dc_comm_recv (st->c, &msg, -1, errp) < 0)
            goto quiet;
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            rc = 0;
            break;
        }
        if (msg.type == DC_MSG_CHUNK)
            r = on_train_chunk (st, msg.data, msg.len, errp);
        else if (msg.type == DC_MSG_DATA)
            r = on_train_data (st, msg.data, msg.len, errp);
        else if (msg.type == DC_MSG_REDUCED)
            r = apply (st, msg.data, msg.len, errp);
        free (msg.data);
        if (r < 0)
            goto done;
        if (st->mb && st->nmicro > 0 && st->done_bwd == st->nmicro &&
            step_result (st, errp) < 0)
            goto quiet;
    }
done:
    if (rc < 0)
        dc_worker_fail (st->c, errp);
quiet:
    train_teardown (st);
    return rc;
}

int dc_worker_pipe_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                          const struct dc_wire_job *job, dc_error_t *errp)
{
    struct pjob j;
    struct stage st = {.c = c, .j = &j};
    struct dc_comm_msg msg = {0};
    struct dc_compute_opts co = {0};
    int rc = -1;

    if (job_from_wire (job, &j, errp) < 0)
        return dc_worker_fail (c, errp);
    co.threads = j.threads;
    /* training: the GEMM row blocks of single-process training (a
     * micro-batch of 64 rows in a 1024-row block computed 16 times the
     * work); inference keeps mlp_infer's 1024-row blocks, whose bytes
     * --split data gives */
    if (!strcmp (j.task, "train"))
        co.train_rows = DC_TRAIN_CPU_ROWS;
    if (dc_comm_recv (c, &msg, -1, errp) <= 0)
        return -1;
    if (msg.type != DC_MSG_MODEL) {
        free (msg.data);
        errprintf (errp, "worker: expected the model, got a %s message",
                   dc_proto_type_name (msg.type));
        return dc_worker_fail (c, errp);
    }
    st.m = load_stage (msg.data, msg.len, o, errp);
    free (msg.data);
    if (!st.m)
        return dc_worker_fail (c, errp);
    st.nin = dc_model_inputs (st.m);
    st.nout = dc_model_outputs (st.m);
    st.first = j.stage == 0;
    st.last = j.stage == j.stages - 1;
    if (dc_dtype_parse (j.dtype, &co.dtype) < 0) {
        errprintf (errp, "worker: unknown dtype '%s'", j.dtype);
        dc_worker_fail (c, errp);
        goto out;
    }
    if (!o->find || !(st.ops = o->find (j.device, errp)) ||
        !(st.dev = st.ops->create (&co, errp))) {
        dc_worker_fail (c, errp);
        goto out;
    }
    if (!strcmp (j.task, "train"))
        rc = serve_train (&st, errp);
    else
        rc = serve_infer (&st, errp);
out:
    if (st.ops && st.dev)
        st.ops->destroy (st.dev);
    dc_model_destroy (st.m);
    return rc;
}
