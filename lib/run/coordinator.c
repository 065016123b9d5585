/* coordinator.c - chunks out, results in, lost ranks survived */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/run/coordinator.h"
#include "lib/run/hub.h"
#include "lib/util/log.h"
#include "lib/model/model.h"
#include "lib/comm/wire.h"
#include "lib/run/serve.h"

#define MAX_CHUNK_BYTES (32u << 20) /* of input or output per chunk */
#define MAX_MODEL_BYTES ((size_t)DC_PROTO_MAX_PAYLOAD)

struct dc_coord {
    struct dc_coord_infer_opts o;
    int probe_fd; /* the token file of direct I/O, or -1 */
    char probe[4096];
    int size;
    struct dc_npy *in;
    struct dc_npy_writer *out;
    uint8_t *model;
    size_t model_len;
    int inputs, outputs;
    size_t rows;
    struct dc_sched_data sd; /* lib/run/sched_data.c */
};

void dc_coord_destroy (struct dc_coord *co)
{
    if (co) {
        if (co->probe_fd >= 0) {
            dc_file_on_signal_forget (co->probe);
            unlink (co->probe);
            close (co->probe_fd);
        }
        dc_npy_close (co->in);
        dc_npy_writer_destroy (co->out); /* uncommitted: no file */
        free (co->model);
        free (co->sd.chunks);
        free (co->sd.pending);
        free (co);
    }
}

size_t dc_coord_rows (const struct dc_coord *co)
{
    return co->rows;
}

size_t dc_coord_chunk_rows (const struct dc_coord *co)
{
    return co->sd.chunk_rows;
}

/* An absolute path for what ranks open: the real folder and the name. */
static int abs_path (const char *path, char *buf, size_t len, dc_error_t *errp)
{
    return dc_file_abs_path (path, buf, len, errp);
}

/* The token file next to the output's temporary file: ranks that read it
 * back see this folder at the same path.  Named like the temporary file
 * and locked, so dc_atomicfile_sweep removes one a killed run left. */
static int make_probe (struct dc_coord *co, const char *tmp, dc_error_t *errp)
{
    struct dc_wire_io *io = &co->sd.io;

    co->probe_fd = dc_file_token_create (tmp, co->probe, sizeof (co->probe),
                                         io->token, sizeof (io->token), errp);
    if (co->probe_fd < 0)
        return -1;
    return abs_path (co->probe, io->probe, sizeof (io->probe), errp);
}

/* The output: with --io direct|auto a named temporary file the ranks
 * write (dc_npy_writer_create_shared) and the offer to the ranks; with
 * relay, or auto where the output is a device or FIFO, the hub's own. */
static int open_output (struct dc_coord *co, dc_error_t *errp)
{
    const struct dc_coord_infer_opts *o = &co->o;
    struct dc_wire_io *io = &co->sd.io;
    int64_t shape[2] = {(int64_t)co->rows, co->outputs};
    struct stat st;
    char stale[1024];
    dc_error_t e;

    if (dc_atomicfile_sweep (o->output_path, stale, sizeof (stale)) > 0)
        dc_log (DC_LOG_WARN,
                "%s: removed what a killed run left next to it: %s",
                o->output_path, stale);
    if (o->io_mode != DC_IO_RELAY &&
        (co->out = dc_npy_writer_create_shared (o->output_path, o->out_dtype, 2,
                                                shape, true, &e))) {
        const char *tmp = dc_npy_writer_tmppath (co->out);
        if (fstat (co->in->fd, &st) < 0 || !realpath (o->input_path, io->input))
            return errprintf (errp, "%s: %s", o->input_path, strerror (errno));
        if (abs_path (tmp, io->output, sizeof (io->output), errp) < 0 ||
            make_probe (co, tmp, errp) < 0)
            return -1;
        io->on = true;
        io->required = o->io_mode == DC_IO_DIRECT;
        io->input_size = (uint64_t)st.st_size;
        io->input_mtime_s = st.st_mtim.tv_sec;
        io->input_mtime_ns = st.st_mtim.tv_nsec;
        /* --io direct: the ranks load the model themselves too */
        if (io->required && stat (o->model_path, &st) == 0 &&
            realpath (o->model_path, io->model)) {
            io->model_size = (uint64_t)st.st_size;
            io->model_mtime_s = st.st_mtim.tv_sec;
            io->model_mtime_ns = st.st_mtim.tv_nsec;
        } else
            io->model[0] = '\0';
        return 0;
    }
    if (o->io_mode == DC_IO_DIRECT)
        return errprintf (errp, "--io direct: %s", e.text);
    if (o->io_mode == DC_IO_AUTO && errno != ENOTSUP)
        return errprintf (errp, "%s", e.text);
    co->out = dc_npy_writer_create (o->output_path, o->out_dtype, 2, shape,
                                    true, errp);
    return co->out ? 0 : -1;
}

struct dc_coord *dc_coord_infer_create (const struct dc_coord_infer_opts *o,
                                        int size, dc_error_t *errp)
{
    struct dc_coord *co = calloc (1, sizeof (*co));
    struct dc_model *m = NULL;

    if (!co) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    co->o = *o;
    co->size = size;
    co->probe_fd = -1;
    if (size < 1) {
        errprintf (errp, "no ranks");
        goto fail;
    }
    if (!(m = dc_model_load (o->model_path, o->activation, errp)))
        goto fail;
    co->inputs = dc_model_inputs (m);
    co->outputs = dc_model_outputs (m);
    co->sd.flops_per_row = dc_model_flops_per_row (m);
    dc_model_destroy (m);
    if (!(co->model = dc_file_read (o->model_path, MAX_MODEL_BYTES,
                                    &co->model_len, errp)))
        goto fail;
    if (!(co->in = dc_npy_open (o->input_path, errp)))
        goto fail;
    if (co->in->dtype == DC_NPY_I8) {
        errprintf (errp, "%s: int64 array: inference needs floats",
                   o->input_path);
        goto fail;
    }
    if (co->in->ndim != 2 || co->in->row_elems != (size_t)co->inputs) {
        errprintf (errp,
                   "%s: shape does not fit the model: expected (rows, %d)",
                   o->input_path, co->inputs);
        goto fail;
    }
    co->rows = co->in->rows;
    if (co->rows == 0) {
        errprintf (errp, "%s: no rows", o->input_path);
        goto fail;
    }
    /* chunk size: about 4 chunks per rank so faster ranks take more, but
     * no chunk larger than MAX_CHUNK_BYTES either way */
    size_t width =
        (size_t)(co->inputs > co->outputs ? co->inputs : co->outputs);
    size_t cap = MAX_CHUNK_BYTES / (width * sizeof (float));
    size_t cr = o->chunk_rows;
    if (cr == 0) {
        cr = (co->rows + (size_t)size * 4 - 1) / ((size_t)size * 4);
        if (cr < 64)
            cr = 64;
    }
    if (cr > cap)
        cr = cap ? cap : 1;
    if (cr > co->rows)
        cr = co->rows;
    struct dc_sched_data *sd = &co->sd;
    sd->chunk_rows = cr;
    sd->nchunks = (co->rows + cr - 1) / cr;
    if (!(sd->chunks = calloc (sd->nchunks, sizeof (*sd->chunks))) ||
        !(sd->pending = calloc (sd->nchunks, sizeof (size_t)))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < sd->nchunks; i++) {
        sd->chunks[i].row0 = i * cr;
        sd->chunks[i].rows = i + 1 < sd->nchunks ? cr : co->rows - i * cr;
        sd->chunks[i].owner = -1;
        sd->pending[i] = i;
    }
    sd->pcount = sd->nchunks;
    sd->in = co->in;
    sd->inputs = co->inputs;
    sd->model = co->model;
    sd->model_len = co->model_len;
    if (open_output (co, errp) < 0)
        goto fail;
    return co;
fail:
    dc_coord_destroy (co);
    return NULL;
}

int dc_coord_infer_run (struct dc_coord *co, struct dc_comm *hub,
                        struct dc_report *report, struct dc_coord_result *res,
                        dc_error_t *errp)
{
    struct dc_hub h = {.comm = hub,
                       .size = co->size,
                       .o = &co->o,
                       .out = co->out,
                       .rows = co->rows,
                       .outputs = co->outputs,
                       .res = res};

    return dc_hub_run (&h, &dc_sched_data, &co->sd, report, errp);
}

/* ================= training ================= */

struct trank {
    bool ready, lost;
    bool replied;
    bool direct;    /* reads its rows itself */
    char engine[8]; /* with: pread or mpi-io */
    double sent;    /* --trace: when this attempt's share went out */
    char device[128];
    char error[DC_ERROR_SIZE];
    /* the report: rows and seconds of the steps it completed */
    size_t rows, cur_rows;
    uint64_t steps;
    double read, compute, allreduce, wait;
    double *ar_steps; /* allreduce seconds of each step */
    size_t nar, ar_cap;
};

struct dc_coord_train {
    struct dc_comm *hub;
    struct dc_coord_train_opts o;
    struct trank *r;
    uint64_t attempt;
    size_t np;
    int signal;
    int nlost;
    char lost[1024];
    uint8_t *buf;
    size_t bufcap;
    float *state; /* dc_coord_train_state */
};

static int t_alive (const struct dc_coord_train *ct)
{
    int n = 0;
    for (int r = 0; r < ct->hub->size; r++)
        if (!ct->r[r].lost)
            n++;
    return n;
}

static void t_lose (struct dc_coord_train *ct, int r, const char *why)
{
    if (ct->r[r].lost)
        return;
    ct->r[r].lost = true;
    size_t len = strlen (ct->lost);
    snprintf (ct->lost + len, sizeof (ct->lost) - len, "%srank %d on %s (%s)",
              len ? ", " : "", r,
              ct->o.hosts && ct->o.hosts[r] ? ct->o.hosts[r] : "?", why);
    ct->nlost++;
    dc_report_instant (ct->o.report, r, "lost", "lost", why); /* --trace */
    dc_log (DC_LOG_WARN, "rank %d on %s lost (%s): the others go on", r,
            ct->o.hosts && ct->o.hosts[r] ? ct->o.hosts[r] : "?", why);
}

/* Handle a message that is not a step result; returns -1 to stop. */
static int t_other (struct dc_coord_train *ct, struct dc_comm_msg *m)
{
    int r = m->src;

    if (r < 0 || r >= ct->hub->size)
        return 0;
    if (m->type == DC_MSG_ERROR) {
        snprintf (ct->r[r].error, sizeof (ct->r[r].error), "%.*s",
                  (int)(m->len < 400 ? m->len : 400),
                  m->data ? (const char *)m->data : "");
        t_lose (ct, r, ct->r[r].error);
    } else if (m->type == DC_COMM_LOST)
        t_lose (ct, r, dc_comm_lost_reason (ct->hub, r));
    return 0;
}

/* recv with interrupt checks: 1 message, 0 none yet, -1 stop */
static int t_recv (struct dc_coord_train *ct, struct dc_comm_msg *m,
                   dc_error_t *errp)
{
    return dc_coord_recv (ct->hub, m, ct->o.check, ct->o.arg, &ct->signal,
                          errp);
}

static int t_fail_all (struct dc_coord_train *ct, dc_error_t *errp)
{
    for (int r = 0; r < ct->hub->size; r++)
        if (ct->r[r].error[0])
            return errprintf (errp, "rank %d on %s: %s", r,
                              ct->o.hosts ? ct->o.hosts[r] : "?",
                              ct->r[r].error);
    errno = EHOSTDOWN;
    return errprintf (errp, "every rank was lost: %s", ct->lost);
}

/* --io direct|auto: offer the ranks the input and target files (the ones
 * the head opened: their real paths, sizes and times). */
static int t_offer_rows (const struct dc_coord_train_opts *o,
                         struct dc_wire_tio *io, dc_error_t *errp)
{
    struct stat sx, st;

    if (o->io_mode == DC_IO_RELAY || !o->input_path || !o->target_path ||
        !o->x || !o->target)
        return 0;
    if (!realpath (o->input_path, io->input) || stat (io->input, &sx) < 0)
        return errprintf (errp, "%s: %s", o->input_path, strerror (errno));
    if (!realpath (o->target_path, io->target) || stat (io->target, &st) < 0)
        return errprintf (errp, "%s: %s", o->target_path, strerror (errno));
    io->on = true;
    io->required = o->io_mode == DC_IO_DIRECT;
    io->input_size = (uint64_t)sx.st_size;
    io->input_mtime_s = sx.st_mtim.tv_sec;
    io->input_mtime_ns = sx.st_mtim.tv_nsec;
    io->target_size = (uint64_t)st.st_size;
    io->target_mtime_s = st.st_mtim.tv_sec;
    io->target_mtime_ns = st.st_mtim.tv_nsec;
    return 0;
}

struct dc_coord_train *
dc_coord_train_start (struct dc_comm *hub, const struct dc_coord_train_opts *o,
                      dc_error_t *errp)
{
    struct dc_coord_train *ct = calloc (1, sizeof (*ct));
    struct dc_wire_job *wj = calloc (1, sizeof (*wj));
    char *job = NULL;

    if (!ct || !wj || !(ct->r = calloc ((size_t)hub->size, sizeof (*ct->r)))) {
        free (ct);
        free (wj);
        errprintf (errp, "out of memory");
        return NULL;
    }
    ct->hub = hub;
    ct->o = *o;
    *wj = (struct dc_wire_job){.mode = DC_WIRE_TRAIN,
                               .threads = o->threads,
                               .delay_ms = o->delay_ms,
                               .has_train = true};
    snprintf (wj->device, sizeof (wj->device), "%s",
              o->device ? o->device : "auto");
    snprintf (wj->dtype, sizeof (wj->dtype), "%s", o->dtype ? o->dtype : "f32");
    snprintf (wj->activation, sizeof (wj->activation), "%s",
              o->activation ? o->activation : "");
    dc_serve_train_pack (&wj->train, o->to);
    wj->train.resume = o->checkpoint != NULL;
    if (t_offer_rows (o, &wj->tio, errp) < 0)
        goto fail;
    job = dc_wire_job_encode (wj);
    if (!job) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    double t_bcast = dc_report_now ();
    if (dc_comm_bcast (hub, DC_MSG_JOB, job, strlen (job), errp) < 0 ||
        dc_comm_bcast (hub, DC_MSG_MODEL, o->model, o->model_len, errp) < 0 ||
        (o->checkpoint && dc_comm_bcast (hub, DC_MSG_DATA, o->checkpoint,
                                         o->checkpoint_len, errp) < 0))
        goto fail;
    /* every rank ready (or lost) */
    for (;;) {
        int waiting = 0;
        for (int r = 0; r < hub->size; r++)
            if (!ct->r[r].ready && !ct->r[r].lost)
                waiting++;
        if (waiting == 0)
            break;
        struct dc_comm_msg m;
        int got = t_recv (ct, &m, errp);
        if (got < 0)
            goto fail;
        if (got == 0)
            continue;
        if (m.type == DC_MSG_READY && m.src >= 0 && m.src < hub->size) {
            struct dc_wire_ready rd;
            struct trank *tr = &ct->r[m.src];
            if (dc_wire_ready_decode (m.data, m.len, &rd, NULL) == 0) {
                if (rd.parameters >= 0)
                    ct->np = (size_t)rd.parameters;
                tr->direct = wj->tio.on && !strcmp (rd.io, "direct");
                snprintf (tr->engine, sizeof (tr->engine), "%s", rd.io_engine);
                snprintf (tr->device, sizeof (tr->device), "%s", rd.device);
                if (wj->tio.on && !tr->direct)
                    dc_log (DC_LOG_INFO, "rank %d on %s: relayed rows: %s",
                            m.src, o->hosts ? o->hosts[m.src] : "?",
                            rd.io_why[0] ? rd.io_why : "no direct rows");
                if (wj->tio.required && !tr->direct) {
                    errprintf (errp, "--io direct: rank %d on %s: %s", m.src,
                               o->hosts ? o->hosts[m.src] : "?",
                               rd.io_why[0] ? rd.io_why
                                            : "cannot read the rows itself");
                    free (m.data);
                    errno = EINVAL;
                    goto fail;
                }
            }
            tr->ready = true;
            /* --trace: from the job's broadcast to its READY */
            dc_report_span (o->report, m.src, "connect+load", "load", t_bcast,
                            dc_report_now (), NAN);
        } else
            t_other (ct, &m);
        free (m.data);
    }
    if (t_alive (ct) == 0) {
        t_fail_all (ct, errp);
        goto fail;
    }
    free (job);
    free (wj);
    return ct;
fail:
    free (job);
    free (wj);
    dc_coord_train_finish (ct);
    return NULL;
}

static double t_secs (double s)
{
    return isfinite (s) && s > 0 && s < 1e9 ? s : 0;
}

/* Rank r's step attempt, from its share's send to its result's arrival
 * here: the rank's read, compute and allreduce seconds at the end of it,
 * the wait before them (transfer, queueing).  Summed for the report when
 * the attempt completed; spans for --trace. */
static void t_account (struct dc_coord_train *ct, int r,
                       const struct dc_wire_tresult *w)
{
    struct dc_report *rep = ct->o.report;
    struct trank *tr = &ct->r[r];
    double s = tr->sent, e = dc_report_now ();
    double ar = t_secs (w->allreduce), cp = t_secs (w->compute);
    double rd = t_secs (w->read);

    double a0 = e - ar > s ? e - ar : s;   /* allreduce from */
    double c0 = a0 - cp > s ? a0 - cp : s; /* compute from */
    double r0 = c0 - rd > s ? c0 - rd : s; /* read from */
    if (w->status == 0) {
        tr->steps++;
        tr->rows += tr->cur_rows;
        tr->read += rd;
        tr->compute += cp;
        tr->allreduce += ar;
        tr->wait += r0 - s;
        if (tr->nar == tr->ar_cap) {
            size_t cap = tr->ar_cap ? 2 * tr->ar_cap : 64;
            double *p = cap < ((size_t)1 << 24)
                            ? realloc (tr->ar_steps, cap * sizeof (*p))
                            : NULL;
            if (p) {
                tr->ar_steps = p;
                tr->ar_cap = cap;
            }
        }
        if (tr->nar < tr->ar_cap)
            tr->ar_steps[tr->nar++] = ar;
    }
    if (!rep)
        return;
    dc_report_span (rep, r, w->status ? "step (redo)" : "step", "step", s, e,
                    (double)ct->attempt);
    if (r0 > s)
        dc_report_span (rep, r, "wait", "wait", s, r0, NAN);
    if (c0 > r0)
        dc_report_span (rep, r, "read", "read", r0, c0, NAN);
    dc_report_span (rep, r, "compute", "compute", c0, a0, NAN);
    dc_report_span (rep, r, "allreduce", "allreduce", a0, e, NAN);
}

static int t_grow (struct dc_coord_train *ct, size_t bytes, dc_error_t *errp)
{
    if (bytes > ct->bufcap) {
        uint8_t *p = realloc (ct->buf, bytes);
        if (!p)
            return errprintf (errp, "out of memory for a step");
        ct->buf = p;
        ct->bufcap = bytes;
    }
    return 0;
}

/* One step's shares out: rows a..b of the batch to each live rank in rank
 * order; with idx, a direct rank gets the rows' indices, a relayed one
 * the rows gathered from the head's arrays; without, rows a..b of x and
 * target.  want: the rank whose summed gradient is to come back (-1:
 * none). */
static int t_send_shares (struct dc_coord_train *ct, const float *x,
                          const void *target, const size_t *idx, size_t rows,
                          int want, dc_error_t *errp)
{
    int size = ct->hub->size, alive = t_alive (ct), k = 0;
    size_t in = (size_t)ct->o.inputs;
    size_t tsz = ct->o.to->loss == DC_LOSS_XENT
                     ? sizeof (int64_t)
                     : (size_t)ct->o.outputs * sizeof (float);

    for (int r = 0; r < size; r++) {
        ct->r[r].replied = ct->r[r].lost;
        if (ct->r[r].lost)
            continue;
        size_t a = rows * (size_t)k / (size_t)alive;
        size_t b = rows * (size_t)(k + 1) / (size_t)alive;
        size_t n = b - a;
        bool direct = idx && ct->r[r].direct;
        size_t bytes = DC_STEP_HDR + n * (direct ? 8 : in * 4 + tsz);
        struct dc_wire_step w = {.attempt = ct->attempt,
                                 .rows = n,
                                 .scale = rows,
                                 .want_grads = r == want};
        k++;
        if (t_grow (ct, bytes, errp) < 0)
            return -1;
        dc_wire_step_put (ct->buf, &w);
        uint8_t *px = ct->buf + DC_STEP_HDR;
        uint8_t *pt = px + n * in * 4;
        for (size_t i = 0; i < n; i++) {
            if (direct) {
                uint64_t v = idx[a + i];
                memcpy (px + 8 * i, &v, 8);
            } else if (idx) {
                size_t src = idx[a + i];
                memcpy (px + i * in * 4, ct->o.x + src * in, in * 4);
                memcpy (pt + i * tsz, (const uint8_t *)ct->o.target + src * tsz,
                        tsz);
            }
        }
        if (!idx) {
            memcpy (px, x + a * in, n * in * 4);
            memcpy (pt, (const uint8_t *)target + a * tsz, n * tsz);
        }
        ct->r[r].cur_rows = n;
        ct->r[r].sent = dc_report_now ();
        if (dc_comm_send (ct->hub, r, DC_MSG_CHUNK, ct->buf, bytes, errp) < 0)
            return -1;
    }
    return 0;
}

/* A step across the live ranks until an attempt completes; t (when
 * given) gets the summed gradient of one rank. */
static int t_step (struct dc_coord_train *ct, struct dc_trainer *t,
                   const float *x, const void *target, const size_t *idx,
                   size_t rows, double *loss_sum, dc_error_t *errp)
{
    int size = ct->hub->size;

    for (;;) { /* until a step attempt completes */
        int alive = t_alive (ct), want = -1;
        if (alive == 0)
            return t_fail_all (ct, errp);
        ct->attempt++;
        for (int r = 0; t && want < 0 && r < size; r++)
            if (!ct->r[r].lost)
                want = r;
        if (t_send_shares (ct, x, target, idx, rows, want, errp) < 0)
            return -1;
        bool have_grads = false, redo = false, ok = false;
        double ls = 0;
        for (;;) {
            int pending = 0;
            for (int r = 0; r < size; r++)
                if (!ct->r[r].replied && !ct->r[r].lost)
                    pending++;
            if (pending == 0)
                break;
            struct dc_comm_msg m;
            int got = t_recv (ct, &m, errp);
            if (got < 0)
                return -1;
            if (got == 0)
                continue;
            int r = m.src;
            struct dc_wire_tresult w;
            dc_error_t e;
            if (m.type == DC_MSG_RESULT && r >= 0 && r < size &&
                dc_wire_tresult_get (m.data, m.len, ct->np, true, &w, NULL) ==
                    0 &&
                w.attempt == ct->attempt) {
                ct->r[r].replied = true;
                t_account (ct, r, &w);
                if (w.status != 0)
                    redo = true;
                else {
                    ok = true;
                    ls += w.loss;
                    if (t && !have_grads && w.grad) {
                        if (dc_trainer_grads_set (t, (const float *)w.grad,
                                                  errp) < 0) {
                            free (m.data);
                            return -1;
                        }
                        have_grads = true;
                    }
                }
            } else if (m.type == DC_MSG_RESULT && r >= 0 && r < size &&
                       dc_wire_tresult_get (m.data, m.len, ct->np, true, &w,
                                            &e) < 0) {
                dc_log (DC_LOG_WARN, "rank %d: %s", r, e.text);
                dc_comm_drop (ct->hub, r, "sent a bad result");
            } else if (m.type != DC_MSG_RESULT)
                t_other (ct, &m);
            free (m.data);
        }
        /* the gradient wanted came back (or, without t, a rank applied) */
        if (!redo && (t ? have_grads : ok)) {
            *loss_sum = ls;
            return 0;
        }
        if (ok && redo) {
            /* cannot happen: a reduction completes for all or for none */
            errno = EPROTO;
            return errprintf (errp, "ranks disagree about step %llu",
                              (unsigned long long)ct->attempt);
        }
        dc_log (DC_LOG_INFO, "step redone by %d rank%s", t_alive (ct),
                t_alive (ct) == 1 ? "" : "s");
        dc_report_instant (ct->o.report, DC_REPORT_HUB, "retry", "retry",
                           "a rank was lost: the step is redone");
    }
}

int dc_coord_train_grad (void *arg, struct dc_trainer *t, const float *x,
                         const void *target, size_t rows, double *loss_sum,
                         dc_error_t *errp)
{
    return t_step (arg, t, x, target, NULL, rows, loss_sum, errp);
}

int dc_coord_train_grad_idx (void *arg, const size_t *idx, size_t rows,
                             double *loss_sum, dc_error_t *errp)
{
    struct dc_coord_train *ct = arg;

    if (!ct->o.x || !ct->o.target) {
        errno = EINVAL;
        return errprintf (errp, "no rows to train on");
    }
    return t_step (ct, NULL, NULL, NULL, idx, rows, loss_sum, errp);
}

int dc_coord_train_state (void *arg, struct dc_trainer *t, dc_error_t *errp)
{
    struct dc_coord_train *ct = arg;
    int size = ct->hub->size, nvec = dc_trainer_state_nvec (t);

    for (;;) {
        int from = -1;
        for (int r = 0; from < 0 && r < size; r++)
            if (!ct->r[r].lost)
                from = r;
        if (from < 0)
            return t_fail_all (ct, errp);
        if (dc_comm_send (ct->hub, from, DC_MSG_DATA, NULL, 0, errp) < 0)
            return -1;
        while (!ct->r[from].lost) {
            struct dc_comm_msg m;
            struct dc_wire_tstate w;
            dc_error_t e;
            int got = t_recv (ct, &m, errp);
            if (got < 0)
                return -1;
            if (got == 0)
                continue;
            if (m.type == DC_MSG_DATA && m.src == from) {
                int rc = -1;
                if (dc_wire_tstate_get (m.data, m.len, ct->np, &w, &e) < 0 ||
                    w.nvec != (uint64_t)nvec ||
                    w.step != (uint64_t)dc_trainer_steps (t)) {
                    dc_log (DC_LOG_WARN, "rank %d: %s", from,
                            w.nvec ? "a state of another step or optimizer"
                                   : e.text);
                    dc_comm_drop (ct->hub, from, "sent a bad state");
                } else {
                    /* aligned copy: the payload's offset is 16 */
                    size_t n = (size_t)nvec * ct->np;
                    float *p = realloc (ct->state, n * sizeof (float));
                    if (p) {
                        ct->state = p;
                        memcpy (p, w.v, n * sizeof (float));
                        rc = dc_trainer_state_set (t, p, (int64_t)w.step, errp);
                    } else
                        errprintf (errp, "out of memory for the state");
                    free (m.data);
                    return rc;
                }
            } else
                t_other (ct, &m);
            free (m.data);
        }
    }
}

void dc_coord_train_report (const struct dc_coord_train *ct,
                            struct dc_report *rep, double flops_per_row)
{
    cJSON *x = dc_report_extra (rep, "distributed");
    cJSON *a = x ? cJSON_AddArrayToObject (x, "rank_train") : NULL;
    int direct = 0, n = 0;

    if (!ct)
        return;
    for (int r = 0; r < ct->hub->size; r++) {
        const struct trank *tr = &ct->r[r];
        const char *host = ct->o.hosts && ct->o.hosts[r] ? ct->o.hosts[r] : "?";
        /* forward + backward: about 3 times the forward pass */
        dc_report_add_rank (rep, r, host, tr->device[0] ? tr->device : "?",
                            tr->rows, tr->compute,
                            3.0 * flops_per_row * (double)tr->rows);
        n += !tr->lost;
        direct += tr->direct && !tr->lost;
        cJSON *o = a ? cJSON_CreateObject () : NULL;
        if (!o)
            continue;
        cJSON_AddNumberToObject (o, "rank", r);
        cJSON_AddStringToObject (o, "host", host);
        cJSON_AddStringToObject (o, "io", tr->direct ? "direct" : "relay");
        if (tr->direct && tr->engine[0])
            cJSON_AddStringToObject (o, "engine", tr->engine);
        cJSON_AddNumberToObject (o, "rows", (double)tr->rows);
        cJSON_AddNumberToObject (o, "steps", (double)tr->steps);
        cJSON_AddNumberToObject (o, "read", tr->read);
        cJSON_AddNumberToObject (o, "compute", tr->compute);
        cJSON_AddNumberToObject (o, "allreduce", tr->allreduce);
        cJSON_AddNumberToObject (o, "wait", tr->wait);
        cJSON *s = cJSON_AddArrayToObject (o, "allreduce_steps");
        for (size_t i = 0; s && i < tr->nar; i++)
            cJSON_AddItemToArray (s, cJSON_CreateNumber (tr->ar_steps[i]));
        cJSON_AddBoolToObject (o, "lost", tr->lost);
        cJSON_AddItemToArray (a, o);
    }
    if (x)
        cJSON_AddStringToObject (x, "io",
                                 direct == n && n ? "direct"
                                 : direct         ? "mixed"
                                                  : "relay");
}

const char *dc_coord_train_lost (const struct dc_coord_train *ct)
{
    return ct ? ct->lost : "";
}

int dc_coord_train_nlost (const struct dc_coord_train *ct)
{
    return ct ? ct->nlost : 0;
}

int dc_coord_train_signal (const struct dc_coord_train *ct)
{
    return ct ? ct->signal : 0;
}

void dc_coord_train_finish (struct dc_coord_train *ct)
{
    if (!ct)
        return;
    for (int r = 0; r < ct->hub->size; r++)
        if (!ct->r[r].lost)
            dc_comm_send (ct->hub, r, DC_MSG_DONE, NULL, 0, NULL);
    for (int r = 0; ct->r && r < ct->hub->size; r++)
        free (ct->r[r].ar_steps);
    free (ct->state);
    free (ct->buf);
    free (ct->r);
    free (ct);
}
