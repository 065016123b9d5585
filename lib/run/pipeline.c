/* pipeline.c - the coordinator side of the layers and hybrid layouts */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/file.h"
#include "lib/util/log.h"
#include "lib/run/pipeline.h"
#include "lib/run/hub.h"
#include "lib/run/serve.h"

#define MAX_MODEL_BYTES ((size_t)DC_PROTO_MAX_PAYLOAD)

static const char *act_str (enum dc_act a)
{
    switch (a) {
    case DC_ACT_RELU:
        return "relu";
    case DC_ACT_GELU:
        return "gelu";
    case DC_ACT_TANH:
        return "tanh";
    default:
        return "none";
    }
}

static const char *host_of (const char *const *hosts, int r)
{
    return hosts && hosts[r] ? hosts[r] : "?";
}

/* "stage 1 of 2 (rank 1 on host)" or "stage 1 of 2 in group 0 (...)" */
static void stage_name (const struct dc_layout *lo, const char *const *hosts,
                        int r, char *buf, size_t len)
{
    if (lo->ngroups > 1)
        snprintf (buf, len, "stage %d of %d in group %d (rank %d on %s)",
                  dc_layout_stage (lo, r), lo->nstages, dc_layout_group (lo, r),
                  r, host_of (hosts, r));
    else
        snprintf (buf, len, "stage %d of %d (rank %d on %s)",
                  dc_layout_stage (lo, r), lo->nstages, r, host_of (hosts, r));
}

/* Offsets of each layer's weights in the flat parameter vector. */
static size_t layer_off (const struct dc_model *m, int l)
{
    size_t off = 0;
    for (int i = 0; i < l; i++)
        off += (size_t)m->layers[i].out * ((size_t)m->layers[i].in + 1);
    return off;
}

int dc_pipe_stage_model (const struct dc_model *m, int l0, int l1,
                         const struct dc_safetensors *ck, uint8_t **bytes,
                         size_t *len, dc_error_t *errp)
{
    struct dc_safetensors *st = NULL;
    const char *dir = getenv ("TMPDIR");
    char path[4096], name[512];
    int fd, rc = -1;

    if (!m || l0 < 0 || l1 > m->nlayers || l0 >= l1 || !bytes || !len) {
        errno = EINVAL;
        return errprintf (errp, "stage model: invalid layers");
    }
    if (!(st = dc_safetensors_create ())) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    for (int i = l0; i < l1; i++) {
        const struct dc_model_layer *l = &m->layers[i];
        const struct dc_tensor *src[2] = {l->w, l->b};
        const char *sfx[2] = {"weight", "bias"};
        for (int k = 0; k < 2; k++) {
            const struct dc_tensor *t = src[k];
            const char *dtype = t->dtype;
            snprintf (name, sizeof (name), "%s%s%s", l->name,
                      l->name[0] ? "." : "", sfx[k]);
            if (ck) {
                t = dc_safetensors_find (ck, name);
                dtype = "F32";
                if (!t || t->nelem != src[k]->nelem || !t->data) {
                    errprintf (errp, "checkpoint: no tensor %s of %zu values",
                               name, src[k]->nelem);
                    goto out;
                }
            }
            if (!dc_safetensors_add (st, name, dtype, src[k]->ndim,
                                     src[k]->shape, t->data, errp))
                goto out;
        }
    }
    if (ck) {
        static const char *const opt[] = {
            "optimizer.momentum", "optimizer.exp_avg", "optimizer.exp_avg_sq"};
        size_t a = layer_off (m, l0), b = layer_off (m, l1);
        for (int k = 0; k < 3; k++) {
            const struct dc_tensor *t = dc_safetensors_find (ck, opt[k]);
            if (!t)
                continue;
            if (!t->data || t->nelem != layer_off (m, m->nlayers)) {
                errprintf (errp, "checkpoint: %s has %zu values", opt[k],
                           t->nelem);
                goto out;
            }
            int64_t shape[1] = {(int64_t)(b - a)};
            if (!dc_safetensors_add (st, opt[k], "F32", 1, shape, t->data + a,
                                     errp))
                goto out;
        }
        const char *step = dc_safetensors_meta_get (ck, "dcrun.step");
        if (step && dc_safetensors_meta_set (st, "dcrun.step", step) < 0)
            goto nomem;
    }
    if (dc_safetensors_meta_set (st, "activation", act_str (m->act)) < 0 ||
        dc_safetensors_meta_set (
            st, "final_activation",
            act_str (l1 == m->nlayers ? m->final_act : m->act)) < 0)
        goto nomem;
    snprintf (path, sizeof (path), "%s/dcrun-stage-XXXXXX.safetensors",
              dir && *dir ? dir : "/tmp");
    if ((fd = mkstemps (path, 12)) < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto out;
    }
    close (fd);
    if (dc_safetensors_save (st, path, errp) == 0 &&
        (*bytes = dc_file_read (path, MAX_MODEL_BYTES, len, errp)))
        rc = 0;
    unlink (path);
    goto out;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
out:
    dc_safetensors_destroy (st);
    return rc;
}

/* JOB of rank r: its stage and neighbours; train options when to. */
static char *stage_job (const struct dc_layout *lo, int r, const char *task,
                        const char *device, const char *dtype, int threads,
                        int delay_ms, const struct dc_train_opts *to)
{
    int s = dc_layout_stage (lo, r);
    struct dc_wire_job j = {.mode = DC_WIRE_PIPELINE,
                            .task = !strcmp (task, "train") ? DC_WIRE_TRAIN
                                                            : DC_WIRE_INFER,
                            .threads = threads,
                            .delay_ms = delay_ms,
                            .stage = s,
                            .stages = lo->nstages,
                            .group = dc_layout_group (lo, r),
                            .prev = s > 0 ? r - 1 : -1,
                            .next = s < lo->nstages - 1 ? r + 1 : -1,
                            .has_train = to != NULL};

    snprintf (j.device, sizeof (j.device), "%s", device ? device : "auto");
    snprintf (j.dtype, sizeof (j.dtype), "%s", dtype ? dtype : "f32");
    if (to)
        dc_serve_train_pack (&j.train, to);
    return dc_wire_job_encode (&j);
}

/* JOB and MODEL to every rank: each its stage's tensors. */
static int send_stages (struct dc_comm *hub, const struct dc_layout *lo,
                        const struct dc_model *m,
                        const struct dc_safetensors *ck, const char *task,
                        const char *device, const char *dtype, int threads,
                        int delay_ms, const struct dc_train_opts *to,
                        dc_error_t *errp)
{
    int rc = -1;
    uint8_t **bytes = calloc ((size_t)lo->nstages, sizeof (uint8_t *));
    size_t *lens = calloc ((size_t)lo->nstages, sizeof (size_t));

    if (!bytes || !lens) {
        errprintf (errp, "out of memory");
        goto out;
    }
    for (int s = 0; s < lo->nstages; s++)
        if (dc_pipe_stage_model (m, lo->l0[s], lo->l1[s], ck, &bytes[s],
                                 &lens[s], errp) < 0)
            goto out;
    for (int r = 0; r < lo->size; r++) {
        char *job =
            stage_job (lo, r, task, device, dtype, threads, delay_ms, to);
        int s = dc_layout_stage (lo, r);
        if (!job) {
            errprintf (errp, "out of memory");
            goto out;
        }
        int x = dc_comm_send (hub, r, DC_MSG_JOB, job, strlen (job), errp);
        free (job);
        if (x < 0 ||
            dc_comm_send (hub, r, DC_MSG_MODEL, bytes[s], lens[s], errp) < 0)
            goto out;
    }
    rc = 0;
out:
    for (int s = 0; bytes && s < lo->nstages; s++)
        free (bytes[s]);
    free (bytes);
    free (lens);
    return rc;
}

/* ================= inference ================= */

struct dc_pipe_infer {
    struct dc_coord_infer_opts o;
    struct dc_model *m;
    struct dc_npy *in;
    struct dc_npy_writer *out;
    size_t rows;
    int inputs, outputs;
};

void dc_pipe_infer_destroy (struct dc_pipe_infer *pi)
{
    if (pi) {
        dc_model_destroy (pi->m);
        dc_npy_close (pi->in);
        dc_npy_writer_destroy (pi->out);
        free (pi);
    }
}

const struct dc_model *dc_pipe_infer_model (const struct dc_pipe_infer *pi)
{
    return pi->m;
}

size_t dc_pipe_infer_rows (const struct dc_pipe_infer *pi)
{
    return pi->rows;
}

struct dc_pipe_infer *dc_pipe_infer_create (const struct dc_coord_infer_opts *o,
                                            dc_error_t *errp)
{
    struct dc_pipe_infer *pi = calloc (1, sizeof (*pi));

    if (!pi) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    pi->o = *o;
    if (!(pi->m = dc_model_load (o->model_path, o->activation, errp)) ||
        !(pi->in = dc_npy_open (o->input_path, errp)))
        goto fail;
    pi->inputs = dc_model_inputs (pi->m);
    pi->outputs = dc_model_outputs (pi->m);
    if (pi->in->dtype == DC_NPY_I8) {
        errprintf (errp, "%s: int64 array: inference needs floats",
                   o->input_path);
        goto fail;
    }
    if (pi->in->ndim != 2 || pi->in->row_elems != (size_t)pi->inputs) {
        errprintf (errp,
                   "%s: shape does not fit the model: expected (rows, %d)",
                   o->input_path, pi->inputs);
        goto fail;
    }
    if ((pi->rows = pi->in->rows) == 0) {
        errprintf (errp, "%s: no rows", o->input_path);
        goto fail;
    }
    int64_t shape[2] = {(int64_t)pi->rows, pi->outputs};
    if (!(pi->out = dc_npy_writer_create (o->output_path, o->out_dtype, 2,
                                          shape, true, errp)))
        goto fail;
    return pi;
fail:
    dc_pipe_infer_destroy (pi);
    return NULL;
}

struct stages_arg {
    struct dc_pipe_infer *pi;
    struct dc_comm *hub;
    const struct dc_layout *lo;
};

static int infer_stages (void *arg, dc_error_t *errp)
{
    struct stages_arg *a = arg;

    return send_stages (a->hub, a->lo, a->pi->m, NULL, "infer", a->pi->o.device,
                        a->pi->o.dtype, a->pi->o.threads, a->pi->o.delay_ms,
                        NULL, errp);
}

int dc_pipe_infer_run (struct dc_pipe_infer *pi, struct dc_comm *hub,
                       const struct dc_layout *lo, size_t micro_rows,
                       struct dc_report *report, struct dc_coord_result *res,
                       dc_error_t *errp)
{
    int G = lo->ngroups;
    size_t nmb = (pi->rows + micro_rows - 1) / micro_rows;
    struct stages_arg arg = {.pi = pi, .hub = hub, .lo = lo};
    struct dc_sched_pipe sp = {
        .in = pi->in,
        .inputs = pi->inputs,
        .lo = lo,
        .micro_rows = micro_rows,
        .nmb = nmb,
        .outstanding = calloc ((size_t)G, sizeof (int)),
        .ready = calloc ((size_t)G, sizeof (int)),
        .grows = calloc ((size_t)G, sizeof (size_t)),
        .done_mb = calloc (nmb ? nmb : 1, 1),
        .noted = calloc (nmb ? nmb : 1, (size_t)lo->nstages),
        .mb_group = calloc (nmb ? nmb : 1, sizeof (int)),
        .nnotes = calloc (nmb ? nmb : 1, sizeof (int)),
        .log = calloc (nmb ? nmb : 1,
                       (size_t)lo->nstages * sizeof (struct dc_pipe_note)),
        .buf = malloc (DC_PIPE_HDR + micro_rows * (size_t)pi->inputs * 4),
        .send_stages = infer_stages,
        .arg = &arg};
    struct dc_hub h = {.comm = hub,
                       .size = lo->size,
                       .o = &pi->o,
                       .out = pi->out,
                       .rows = pi->rows,
                       .outputs = pi->outputs,
                       .res = res};
    int rc = -1;

    memset (res, 0, sizeof (*res));
    res->status = DC_COORD_IO_ERROR;
    if (!sp.outstanding || !sp.ready || !sp.grows || !sp.done_mb || !sp.noted ||
        !sp.mb_group || !sp.nnotes || !sp.buf)
        errprintf (errp, "out of memory");
    else if (lo->size != hub->size || lo->nstages < 2)
        errprintf (errp, "pipeline: a layout of %d ranks in %d stages",
                   lo->size, lo->nstages);
    else
        rc = dc_hub_run (&h, &dc_sched_pipe, &sp, report, errp);
    free (sp.outstanding);
    free (sp.ready);
    free (sp.grows);
    free (sp.done_mb);
    free (sp.noted);
    free (sp.mb_group);
    free (sp.nnotes);
    free (sp.log);
    free (sp.buf);
    return rc;
}

/* ================= training ================= */

struct dc_pipe_train {
    struct dc_comm *hub;
    struct dc_pipe_train_opts o;
    const struct dc_layout *lo;
    uint64_t attempt;
    size_t np;
    size_t *soff;  /* [nstages + 1] offsets of each stage's parameters */
    float *gsum;   /* [np] */
    uint8_t **got; /* [size] each rank's RESULT of the step */
    size_t *gotlen;
    uint8_t *buf;
    size_t bufcap;
    int signal;
    double busy, wall;
};

static int t_recv (struct dc_pipe_train *pt, struct dc_comm_msg *m,
                   dc_error_t *errp)
{
    return dc_coord_recv (pt->hub, m, pt->o.check, pt->o.arg, &pt->signal,
                          errp);
}

/* A message that stops the job (a rank lost or failed): -1 with errp. */
static int t_fatal (struct dc_pipe_train *pt, struct dc_comm_msg *m,
                    dc_error_t *errp)
{
    char who[300];
    int r = m->src;

    if (r < 0 || r >= pt->lo->size)
        return 0;
    stage_name (pt->lo, pt->o.hosts, r, who, sizeof (who));
    if (m->type == DC_COMM_LOST) {
        errno = EHOSTDOWN;
        return errprintf (errp, "%s was lost (%s): the pipeline stops", who,
                          dc_comm_lost_reason (pt->hub, r));
    }
    if (m->type == DC_MSG_ERROR) {
        errno = EIO;
        return errprintf (errp, "%s: %.*s", who,
                          (int)(m->len < 400 ? m->len : 400),
                          m->data ? (const char *)m->data : "");
    }
    return 0;
}

struct dc_pipe_train *dc_pipe_train_start (struct dc_comm *hub,
                                           const struct dc_pipe_train_opts *o,
                                           dc_error_t *errp)
{
    struct dc_pipe_train *pt = calloc (1, sizeof (*pt));
    const struct dc_layout *lo = o->lo;
    int size = lo->size, waiting = size;
    bool *ready = NULL;

    if (!pt) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    pt->hub = hub;
    pt->o = *o;
    pt->lo = lo;
    pt->np = dc_model_nparams (o->m);
    if (size != hub->size || lo->nstages < 2) {
        errprintf (errp, "pipeline: a layout of %d ranks in %d stages", size,
                   lo->nstages);
        goto fail;
    }
    if (!(pt->soff = calloc ((size_t)lo->nstages + 1, sizeof (size_t))) ||
        !(pt->gsum = calloc (pt->np ? pt->np : 1, sizeof (float))) ||
        !(pt->got = calloc ((size_t)size, sizeof (uint8_t *))) ||
        !(pt->gotlen = calloc ((size_t)size, sizeof (size_t))) ||
        !(ready = calloc ((size_t)size, sizeof (bool)))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    for (int s = 0; s <= lo->nstages; s++)
        pt->soff[s] =
            layer_off (o->m, s < lo->nstages ? lo->l0[s] : o->m->nlayers);
    double t_send = dc_report_now (); /* --trace: connect+load from here */
    if (send_stages (hub, lo, o->m, o->ck, "train", o->device, o->dtype,
                     o->threads, o->delay_ms, o->to, errp) < 0)
        goto fail;
    while (waiting > 0) {
        struct dc_comm_msg m;
        int got = t_recv (pt, &m, errp);
        if (got < 0)
            goto fail;
        if (got == 0)
            continue;
        if (m.type == DC_MSG_READY && m.src >= 0 && m.src < size) {
            if (!ready[m.src]) {
                ready[m.src] = true;
                waiting--;
                dc_report_span (o->report, m.src, "connect+load", "load",
                                t_send, dc_report_now (), NAN);
            }
        } else if (t_fatal (pt, &m, errp) < 0) {
            free (m.data);
            goto fail;
        }
        free (m.data);
    }
    free (ready);
    return pt;
fail:
    free (ready);
    dc_pipe_train_finish (pt);
    return NULL;
}

/* pt->buf at least len bytes: 0, or -1 (errp: what for) */
static int grow_buf (struct dc_pipe_train *pt, size_t len, const char *what,
                     dc_error_t *errp)
{
    if (len > pt->bufcap) {
        uint8_t *p = realloc (pt->buf, len);
        if (!p)
            return errprintf (errp, "out of memory%s", what);
        pt->buf = p;
        pt->bufcap = len;
    }
    return 0;
}

static int send_step (struct dc_pipe_train *pt, int r, uint64_t rows,
                      uint64_t batch, uint64_t mr, const void *data,
                      size_t bytes, dc_error_t *errp)
{
    size_t len = DC_PIPE_STEP_HDR + bytes;

    if (grow_buf (pt, len, " for a step", errp) < 0)
        return -1;
    dc_wire_pstep_put (pt->buf, &(struct dc_wire_pstep){.attempt = pt->attempt,
                                                        .rows = rows,
                                                        .batch = batch,
                                                        .micro = mr});
    memcpy (pt->buf + DC_PIPE_STEP_HDR, data, bytes);
    return dc_comm_send (pt->hub, r, DC_MSG_CHUNK, pt->buf, len, errp);
}

/* The step's rows, split over the groups: each group's inputs to its
 * first stage, its targets to its last.  The results to wait for, or -1
 * (errp). */
static int send_steps (struct dc_pipe_train *pt, const float *x,
                       const void *target, size_t rows, dc_error_t *errp)
{
    const struct dc_layout *lo = pt->lo;
    int S = lo->nstages, G = lo->ngroups, pending = 0;
    size_t in = (size_t)dc_model_inputs (pt->o.m);
    size_t tsz = pt->o.to->loss == DC_LOSS_XENT
                     ? sizeof (int64_t)
                     : (size_t)dc_model_outputs (pt->o.m) * sizeof (float);

    for (int g = 0; g < G; g++) {
        size_t a = rows * (size_t)g / (size_t)G;
        size_t b = rows * (size_t)(g + 1) / (size_t)G;
        size_t n = b - a;
        if (n == 0)
            continue;
        size_t mr = pt->o.micro_rows;
        if (mr == 0)
            mr = (n + 2 * (size_t)S - 1) / (2 * (size_t)S);
        if (mr > n)
            mr = n;
        if (send_step (pt, dc_layout_rank (lo, g, 0), n, rows, mr, x + a * in,
                       n * in * sizeof (float), errp) < 0 ||
            send_step (pt, dc_layout_rank (lo, g, S - 1), n, rows, mr,
                       (const uint8_t *)target + a * tsz, n * tsz, errp) < 0)
            return -1;
        pending += S;
    }
    return pending;
}

/* A RESULT from rank r kept in pt->got[r]: 0, or -1 (errp, errno
 * EPROTO) when it is bad or of no step. */
static int take_result (struct dc_pipe_train *pt, struct dc_comm_msg *m,
                        double t0, dc_error_t *errp)
{
    int r = m->src, s = dc_layout_stage (pt->lo, r);
    size_t n = pt->soff[s + 1] - pt->soff[s];
    struct dc_wire_tresult w;
    dc_error_t e;

    if (dc_wire_tresult_get (m->data, m->len, n, false, &w, &e) < 0) {
        free (m->data);
        errno = EPROTO;
        return errprintf (errp, "rank %d: %s", r, e.text);
    }
    if (pt->got[r] || w.attempt != pt->attempt || w.status != 0) {
        free (m->data);
        errno = EPROTO;
        return errprintf (errp, "rank %d sent a result of no step", r);
    }
    pt->got[r] = m->data;
    pt->gotlen[r] = m->len;
    /* --trace: the stage's step, until its gradient came */
    dc_report_span (pt->o.report, r, "step", "step", t0, dc_report_now (),
                    (double)pt->attempt);
    return 0;
}

/* Wait for the pending results: 0, or -1 (errp). */
static int collect (struct dc_pipe_train *pt, int pending, double t0,
                    dc_error_t *errp)
{
    while (pending > 0) {
        struct dc_comm_msg m;
        int got = t_recv (pt, &m, errp);
        if (got < 0)
            return -1;
        if (got == 0)
            continue;
        if (m.type == DC_MSG_RESULT && m.src >= 0 && m.src < pt->lo->size) {
            if (take_result (pt, &m, t0, errp) < 0)
                return -1;
            pending--;
            continue;
        }
        int f = t_fatal (pt, &m, errp);
        free (m.data);
        if (f < 0)
            return -1;
    }
    return 0;
}

/* Sum each stage's gradient over the groups, in group order, into
 * pt->gsum: the loss summed over the last stages. */
static double sum_grads (struct dc_pipe_train *pt)
{
    const struct dc_layout *lo = pt->lo;
    int S = lo->nstages, G = lo->ngroups;
    double ls = 0;

    memset (pt->gsum, 0, pt->np * sizeof (float));
    for (int g = 0; g < G; g++)
        for (int s = 0; s < S; s++) {
            int r = dc_layout_rank (lo, g, s);
            if (!pt->got[r])
                continue;
            struct dc_wire_tresult w; /* checked when it came */
            dc_wire_tresult_get (pt->got[r], pt->gotlen[r],
                                 pt->soff[s + 1] - pt->soff[s], false, &w,
                                 NULL);
            const float *v = (const float *)w.grad;
            float *d = pt->gsum + pt->soff[s];
            size_t n = pt->soff[s + 1] - pt->soff[s];
            for (size_t i = 0; i < n; i++)
                d[i] += v[i];
            if (s == S - 1)
                ls += w.loss;
        }
    return ls;
}

/* Every rank applies its stage's sum; the replica the whole. */
static int send_reduced (struct dc_pipe_train *pt, dc_error_t *errp)
{
    for (int r = 0; r < pt->lo->size; r++) {
        int s = dc_layout_stage (pt->lo, r);
        size_t n = pt->soff[s + 1] - pt->soff[s];
        size_t len = DC_REDUCED_HDR + n * 4;
        if (grow_buf (pt, len, "", errp) < 0)
            return -1;
        dc_wire_reduced_put (pt->buf,
                             &(struct dc_wire_reduced){.attempt = pt->attempt});
        memcpy (pt->buf + DC_REDUCED_HDR, pt->gsum + pt->soff[s], n * 4);
        if (dc_comm_send (pt->hub, r, DC_MSG_REDUCED, pt->buf, len, errp) < 0)
            return -1;
    }
    return 0;
}

int dc_pipe_train_grad (void *arg, struct dc_trainer *t, const float *x,
                        const void *target, size_t rows, double *loss_sum,
                        dc_error_t *errp)
{
    struct dc_pipe_train *pt = arg;
    int pending, rc = -1;
    double t0 = dc_now ();

    pt->attempt++;
    if ((pending = send_steps (pt, x, target, rows, errp)) < 0)
        return -1;
    if (collect (pt, pending, t0, errp) == 0) {
        double ls = sum_grads (pt);
        if (send_reduced (pt, errp) == 0 &&
            dc_trainer_grads_set (t, pt->gsum, errp) == 0) {
            *loss_sum = ls;
            rc = 0;
        }
    }
    for (int r = 0; r < pt->lo->size; r++) {
        free (pt->got[r]);
        pt->got[r] = NULL;
    }
    pt->wall += dc_now () - t0;
    return rc;
}

int dc_pipe_train_signal (const struct dc_pipe_train *pt)
{
    return pt ? pt->signal : 0;
}

void dc_pipe_train_times (const struct dc_pipe_train *pt, double *busy,
                          double *wall)
{
    *busy = pt ? pt->busy : 0;
    *wall = pt ? pt->wall : 0;
}

void dc_pipe_train_finish (struct dc_pipe_train *pt)
{
    if (!pt)
        return;
    for (int r = 0; r < pt->hub->size; r++)
        dc_comm_send (pt->hub, r, DC_MSG_DONE, NULL, 0, NULL);
    for (int r = 0; pt->got && r < pt->lo->size; r++)
        free (pt->got[r]);
    free (pt->got);
    free (pt->gotlen);
    free (pt->soff);
    free (pt->gsum);
    free (pt->buf);
    free (pt);
}
