/* coordinator.c - chunks out, results in, lost ranks survived */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/run/coordinator.h"
#include "lib/util/log.h"
#include "lib/model/model.h"
#include "lib/comm/wire.h"

#define MAX_OUTSTANDING                                                        \
    2                               /* chunks a rank holds: one computing,     \
                                       one arriving */
#define MAX_CHUNK_BYTES (32u << 20) /* of input or output per chunk */
#define MAX_MODEL_BYTES ((size_t)DC_PROTO_MAX_PAYLOAD)

enum chunk_state { CHUNK_PENDING = 0, CHUNK_ASSIGNED, CHUNK_DONE };

struct chunk {
    size_t row0, rows;
    enum chunk_state state;
    int owner;
};

struct rank {
    bool ready, lost, done_sent;
    int outstanding;
    size_t rows, chunks;
    double seconds;
    char device[128];
    char kernel[64]; /* BLAS kernel, "" when not told */
    char error[DC_ERROR_SIZE];
};

struct dc_coord {
    struct dc_coord_infer_opts o;
    int size;
    struct dc_npy *in;
    struct dc_npy_writer *out;
    uint8_t *model;
    size_t model_len;
    int inputs, outputs;
    double flops_per_row;
    size_t rows, chunk_rows, nchunks;
    struct chunk *chunks;
    size_t *pending; /* ring of chunk indices */
    size_t phead, pcount;
    struct rank *ranks;
    struct dc_report *report; /* --report's chunk timeline, or NULL */
};

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int dc_coord_recv (struct dc_comm *hub, struct dc_comm_msg *m,
                   int (*check) (void *arg), void *arg, int *sig,
                   dc_error_t *errp)
{
    int got = dc_comm_recv (hub, m, 200, errp);

    if (got < 0)
        return -1;
    if (check && (*sig = check (arg)) > 0) {
        if (got > 0)
            free (m->data);
        errno = EINTR;
        return errprintf (errp, "interrupted");
    }
    return got;
}

void dc_coord_destroy (struct dc_coord *co)
{
    if (co) {
        dc_npy_close (co->in);
        dc_npy_writer_destroy (co->out); /* uncommitted: no file */
        free (co->model);
        free (co->chunks);
        free (co->pending);
        free (co->ranks);
        free (co);
    }
}

size_t dc_coord_rows (const struct dc_coord *co)
{
    return co->rows;
}

size_t dc_coord_chunk_rows (const struct dc_coord *co)
{
    return co->chunk_rows;
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
    if (size < 1) {
        errprintf (errp, "no ranks");
        goto fail;
    }
    if (!(m = dc_model_load (o->model_path, o->activation, errp)))
        goto fail;
    co->inputs = dc_model_inputs (m);
    co->outputs = dc_model_outputs (m);
    co->flops_per_row = dc_model_flops_per_row (m);
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
    co->chunk_rows = cr;
    co->nchunks = (co->rows + cr - 1) / cr;
    if (!(co->chunks = calloc (co->nchunks, sizeof (*co->chunks))) ||
        !(co->pending = calloc (co->nchunks, sizeof (size_t))) ||
        !(co->ranks = calloc ((size_t)size, sizeof (*co->ranks)))) {
        errprintf (errp, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < co->nchunks; i++) {
        co->chunks[i].row0 = i * cr;
        co->chunks[i].rows = i + 1 < co->nchunks ? cr : co->rows - i * cr;
        co->chunks[i].owner = -1;
        co->pending[i] = i;
    }
    co->pcount = co->nchunks;
    int64_t shape[2] = {(int64_t)co->rows, co->outputs};
    if (!(co->out = dc_npy_writer_create (o->output_path, o->out_dtype, 2,
                                          shape, true, errp)))
        goto fail;
    return co;
fail:
    dc_coord_destroy (co);
    return NULL;
}

static bool pop_pending (struct dc_coord *co, size_t *idx)
{
    if (co->pcount == 0)
        return false;
    *idx = co->pending[co->phead];
    co->phead = (co->phead + 1) % co->nchunks;
    co->pcount--;
    return true;
}

/* Requeued chunks go first: they are the oldest work. */
static void push_front (struct dc_coord *co, size_t idx)
{
    co->phead = (co->phead + co->nchunks - 1) % co->nchunks;
    co->pending[co->phead] = idx;
    co->pcount++;
}

static int send_chunk (struct dc_coord *co, struct dc_comm *hub, int r,
                       size_t idx, dc_error_t *errp)
{
    struct chunk *ch = &co->chunks[idx];
    size_t bytes = DC_CHUNK_HDR + ch->rows * (size_t)co->inputs * 4;
    uint8_t *buf = malloc (bytes);
    int rc = -1;

    if (!buf)
        return errprintf (errp, "out of memory for a chunk");
    /* timeline: the chunk leaves the hub (read, relay) from now on */
    dc_report_chunk_sent (co->report, r, idx);
    dc_put_u64 (buf, idx);
    dc_put_u64 (buf + 8, ch->row0);
    dc_put_u64 (buf + 16, ch->rows);
    if (dc_npy_read_f32 (co->in, ch->row0, ch->rows,
                         (float *)(buf + DC_CHUNK_HDR), errp) == 0 &&
        dc_comm_send (hub, r, DC_MSG_CHUNK, buf, bytes, errp) == 0) {
        ch->state = CHUNK_ASSIGNED;
        ch->owner = r;
        co->ranks[r].outstanding++;
        rc = 0;
    }
    free (buf);
    return rc;
}

static int dispatch (struct dc_coord *co, struct dc_comm *hub, int r,
                     dc_error_t *errp)
{
    struct rank *rk = &co->ranks[r];
    size_t idx;

    while (rk->ready && !rk->lost && rk->outstanding < MAX_OUTSTANDING &&
           pop_pending (co, &idx))
        if (send_chunk (co, hub, r, idx, errp) < 0)
            return -1;
    return 0;
}

static void lose (struct dc_coord *co, struct dc_comm *hub, int r,
                  const char *why, struct dc_coord_result *res)
{
    struct rank *rk = &co->ranks[r];

    if (rk->lost)
        return;
    rk->lost = true;
    rk->ready = false;
    for (size_t i = 0; i < co->nchunks; i++)
        if (co->chunks[i].state == CHUNK_ASSIGNED && co->chunks[i].owner == r) {
            co->chunks[i].state = CHUNK_PENDING;
            co->chunks[i].owner = -1;
            push_front (co, i);
        }
    rk->outstanding = 0;
    if (rk->done_sent)
        return; /* it ended after its work: not a loss */
    size_t len = strlen (res->lost);
    snprintf (res->lost + len, sizeof (res->lost) - len, "%srank %d on %s (%s)",
              len ? ", " : "", r,
              co->o.hosts && co->o.hosts[r] ? co->o.hosts[r] : "?", why);
    res->nlost++;
    dc_log (DC_LOG_WARN, "rank %d on %s lost (%s): its chunks go to the others",
            r, co->o.hosts && co->o.hosts[r] ? co->o.hosts[r] : "?", why);
    (void)hub;
}

static int alive (const struct dc_coord *co)
{
    int n = 0;
    for (int r = 0; r < co->size; r++)
        if (!co->ranks[r].lost)
            n++;
    return n;
}

static char *job_json (const struct dc_coord *co)
{
    cJSON *j = cJSON_CreateObject ();
    char *s;

    cJSON_AddStringToObject (j, "mode", "infer");
    cJSON_AddStringToObject (j, "device", co->o.device ? co->o.device : "auto");
    cJSON_AddStringToObject (j, "dtype", co->o.dtype ? co->o.dtype : "f32");
    if (co->o.activation)
        cJSON_AddStringToObject (j, "activation", co->o.activation);
    cJSON_AddNumberToObject (j, "threads", co->o.threads);
    cJSON_AddNumberToObject (j, "chunk_rows", (double)co->chunk_rows);
    cJSON_AddNumberToObject (j, "delay_ms", co->o.delay_ms);
    s = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    return s;
}

static int on_result (struct dc_coord *co, int r, const uint8_t *data,
                      size_t len, size_t *done, dc_error_t *errp)
{
    if (len < DC_RESULT_HDR)
        return errprintf (errp, "rank %d: short result of %zu bytes", r, len);
    uint64_t idx = dc_get_u64 (data);
    uint64_t row0 = dc_get_u64 (data + 8);
    uint64_t rows = dc_get_u64 (data + 16);
    double secs;
    memcpy (&secs, data + 24, sizeof (secs));
    if (idx >= co->nchunks || co->chunks[idx].row0 != row0 ||
        co->chunks[idx].rows != rows ||
        len != DC_RESULT_HDR + rows * (uint64_t)co->outputs * 4)
        return errprintf (errp, "rank %d: a result that matches no chunk", r);
    struct chunk *ch = &co->chunks[idx];
    if (ch->state == CHUNK_DONE || ch->owner != r) {
        /* a chunk that was given to another rank meanwhile: drop it */
        return 0;
    }
    if (dc_npy_writer_write_f32 (co->out, row0, rows,
                                 (const float *)(data + DC_RESULT_HDR),
                                 errp) < 0)
        return -2;
    ch->state = CHUNK_DONE;
    /* timeline: its result is in, with the rank's compute seconds */
    dc_report_chunk_done (co->report, r, idx, secs);
    co->ranks[r].outstanding--;
    co->ranks[r].rows += rows;
    co->ranks[r].chunks++;
    co->ranks[r].seconds += secs;
    *done += rows;
    return 0;
}

int dc_coord_infer_run (struct dc_coord *co, struct dc_comm *hub,
                        struct dc_report *report, struct dc_coord_result *res,
                        dc_error_t *errp)
{
    size_t done = 0;
    char *job = NULL;
    double t0 = now_s (), t_ready = 0, t_last = t0, t_write = 0;
    int rc = -1;

    memset (res, 0, sizeof (*res));
    co->report = report; /* send_chunk and on_result note the timeline */
    if (!(job = job_json (co))) {
        res->status = DC_COORD_IO_ERROR;
        return errprintf (errp, "out of memory");
    }
    if (dc_comm_bcast (hub, DC_MSG_JOB, job, strlen (job), errp) < 0 ||
        dc_comm_bcast (hub, DC_MSG_MODEL, co->model, co->model_len, errp) < 0) {
        res->status = DC_COORD_IO_ERROR;
        goto out;
    }
    while (done < co->rows) {
        struct dc_comm_msg m;
        if (alive (co) == 0) {
            bool errors = false;
            for (int r = 0; r < co->size; r++)
                if (co->ranks[r].error[0])
                    errors = true;
            if (errors) {
                res->status = DC_COORD_WORKER_ERROR;
                for (int r = 0; r < co->size; r++)
                    if (co->ranks[r].error[0]) {
                        errprintf (errp, "rank %d on %s: %s", r,
                                   co->o.hosts ? co->o.hosts[r] : "?",
                                   co->ranks[r].error);
                        break;
                    }
            } else {
                res->status = DC_COORD_ALL_LOST;
                errprintf (errp, "every rank was lost: %s", res->lost);
            }
            goto out;
        }
        int sig = 0;
        int got = dc_coord_recv (hub, &m, co->o.check, co->o.arg, &sig, errp);
        if (got < 0) {
            res->status = sig ? DC_COORD_INTERRUPTED : DC_COORD_IO_ERROR;
            res->signal = sig;
            if (sig)
                errprintf (errp, "interrupted: no output written");
            goto out;
        }
        if (co->o.progress)
            co->o.progress (done, co->rows, alive (co), co->o.arg);
        if (got == 0)
            continue;
        int r = m.src;
        if (r < 0 || r >= co->size) {
            free (m.data);
            continue;
        }
        switch (m.type) {
        case DC_MSG_READY: {
            cJSON *j = cJSON_ParseWithLength ((const char *)m.data, m.len);
            const cJSON *d = cJSON_GetObjectItemCaseSensitive (j, "device");
            const cJSON *no = cJSON_GetObjectItemCaseSensitive (j, "outputs");
            const cJSON *k = cJSON_GetObjectItemCaseSensitive (j, "kernel");
            if (cJSON_IsString (d))
                snprintf (co->ranks[r].device, sizeof (co->ranks[r].device),
                          "%s", d->valuestring);
            if (cJSON_IsString (k))
                snprintf (co->ranks[r].kernel, sizeof (co->ranks[r].kernel),
                          "%s", k->valuestring);
            if (!cJSON_IsNumber (no) || (int)no->valuedouble != co->outputs) {
                snprintf (co->ranks[r].error, sizeof (co->ranks[r].error),
                          "loaded a model of another shape");
                dc_comm_drop (hub, r, "model mismatch");
            } else if (!co->ranks[r].lost)
                co->ranks[r].ready = true;
            cJSON_Delete (j);
            if (t_ready == 0)
                t_ready = now_s ();
            if (dispatch (co, hub, r, errp) < 0) {
                free (m.data);
                res->status = DC_COORD_IO_ERROR;
                goto out;
            }
            break;
        }
        case DC_MSG_RESULT: {
            double tw = now_s ();
            int x = on_result (co, r, m.data, m.len, &done, errp);
            t_write += now_s () - tw;
            if (x == -2) {
                free (m.data);
                res->status = DC_COORD_IO_ERROR;
                goto out;
            }
            if (x < 0) {
                dc_log (DC_LOG_WARN, "%s", errp->text);
                dc_comm_drop (hub, r, "sent a bad result");
            }
            t_last = now_s ();
            if (dispatch (co, hub, r, errp) < 0) {
                free (m.data);
                res->status = DC_COORD_IO_ERROR;
                goto out;
            }
            break;
        }
        case DC_MSG_ERROR:
            snprintf (co->ranks[r].error, sizeof (co->ranks[r].error), "%.*s",
                      (int)(m.len < 400 ? m.len : 400),
                      m.data ? (const char *)m.data : "");
            lose (co, hub, r, co->ranks[r].error, res);
            break;
        case DC_COMM_LOST:
            lose (co, hub, r, dc_comm_lost_reason (hub, r), res);
            break;
        default:
            break;
        }
        free (m.data);
        /* a lost rank's chunks go to whoever is ready */
        if (co->pcount > 0)
            for (int q = 0; q < co->size; q++)
                if (dispatch (co, hub, q, errp) < 0) {
                    res->status = DC_COORD_IO_ERROR;
                    goto out;
                }
    }
    if (co->o.progress)
        co->o.progress (done, co->rows, alive (co), co->o.arg);
    /* every row is in: the ranks may go */
    for (int r = 0; r < co->size; r++)
        if (!co->ranks[r].lost) {
            co->ranks[r].done_sent = true;
            dc_comm_send (hub, r, DC_MSG_DONE, NULL, 0, NULL);
        }
    double tc = now_s ();
    if (dc_npy_writer_commit (co->out, errp) < 0) {
        res->status = DC_COORD_IO_ERROR;
        goto out;
    }
    t_write += now_s () - tc;
    /* wait (briefly) for the ranks to leave, so nothing is cut short */
    double until = now_s () + 5;
    while (hub->ops->reports_exit && alive (co) > 0 && now_s () < until) {
        struct dc_comm_msg m;
        int got = dc_comm_recv (hub, &m, 100, NULL);
        if (got < 0)
            break;
        if (got > 0) {
            if (m.type == DC_COMM_LOST && m.src >= 0 && m.src < co->size)
                co->ranks[m.src].lost = true;
            free (m.data);
        }
    }
    const char *sha = dc_npy_writer_sha256 (co->out);
    snprintf (res->sha256, sizeof (res->sha256), "%s", sha ? sha : "");
    res->rows = co->rows;
    res->shape[0] = (int64_t)co->rows;
    res->shape[1] = co->outputs;
    res->status = DC_COORD_OK;
    rc = 0;
out:
    res->seconds = now_s () - t0;
    if (report) {
        if (t_ready > 0) {
            dc_report_phase_add (report, DC_PHASE_LOAD, t_ready - t0);
            dc_report_phase_add (report, DC_PHASE_COMPUTE, t_last - t_ready);
        }
        dc_report_phase_add (report, DC_PHASE_WRITE, t_write);
        for (int r = 0; r < co->size; r++) {
            const struct rank *rk = &co->ranks[r];
            dc_report_add_rank (report, r, co->o.hosts ? co->o.hosts[r] : "?",
                                rk->device[0] ? rk->device : "?", rk->rows,
                                rk->seconds,
                                (double)rk->rows * co->flops_per_row);
            dc_report_set_rank_kernel (report, r, rk->kernel);
        }
        cJSON *x = dc_report_extra (report, "distributed");
        if (x) {
            cJSON_AddNumberToObject (x, "chunk_rows", (double)co->chunk_rows);
            cJSON_AddNumberToObject (x, "chunks", (double)co->nchunks);
            cJSON *chunks = cJSON_AddArrayToObject (x, "rank_chunks");
            cJSON *lost = cJSON_AddArrayToObject (x, "lost_workers");
            for (int r = 0; r < co->size; r++) {
                cJSON_AddItemToArray (
                    chunks, cJSON_CreateNumber ((double)co->ranks[r].chunks));
                if (co->ranks[r].lost && !co->ranks[r].done_sent) {
                    cJSON *l = cJSON_CreateObject ();
                    cJSON_AddNumberToObject (l, "rank", r);
                    cJSON_AddStringToObject (
                        l, "host", co->o.hosts ? co->o.hosts[r] : "?");
                    cJSON_AddStringToObject (
                        l, "reason",
                        co->ranks[r].error[0] ? co->ranks[r].error
                                              : dc_comm_lost_reason (hub, r));
                    cJSON_AddItemToArray (lost, l);
                }
            }
        }
        if (rc == 0)
            dc_report_set_output (report, co->o.output_path, 2, res->shape,
                                  co->o.out_dtype == DC_NPY_F2 ? "<f2" : "<f4",
                                  res->sha256);
    }
    free (job);
    return rc;
}

/* ================= training ================= */

struct trank {
    bool ready, lost;
    bool replied;
    char error[DC_ERROR_SIZE];
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

struct dc_coord_train *
dc_coord_train_start (struct dc_comm *hub, const struct dc_coord_train_opts *o,
                      dc_error_t *errp)
{
    struct dc_coord_train *ct = calloc (1, sizeof (*ct));
    cJSON *j = NULL, *t;
    char *job = NULL;

    if (!ct || !(ct->r = calloc ((size_t)hub->size, sizeof (*ct->r)))) {
        free (ct);
        errprintf (errp, "out of memory");
        return NULL;
    }
    ct->hub = hub;
    ct->o = *o;
    j = cJSON_CreateObject ();
    cJSON_AddStringToObject (j, "mode", "train");
    cJSON_AddStringToObject (j, "device", o->device ? o->device : "auto");
    cJSON_AddStringToObject (j, "dtype", o->dtype ? o->dtype : "f32");
    if (o->activation)
        cJSON_AddStringToObject (j, "activation", o->activation);
    cJSON_AddNumberToObject (j, "threads", o->threads);
    cJSON_AddNumberToObject (j, "delay_ms", o->delay_ms);
    t = cJSON_AddObjectToObject (j, "train");
    cJSON_AddStringToObject (t, "loss",
                             o->to->loss == DC_LOSS_XENT ? "xent" : "mse");
    cJSON_AddStringToObject (t, "optimizer",
                             o->to->optim == DC_OPTIM_ADAM ? "adam" : "sgd");
    cJSON_AddNumberToObject (t, "lr", o->to->lr);
    cJSON_AddNumberToObject (t, "momentum", o->to->momentum);
    cJSON_AddNumberToObject (t, "beta1", o->to->beta1);
    cJSON_AddNumberToObject (t, "beta2", o->to->beta2);
    cJSON_AddNumberToObject (t, "eps", o->to->eps);
    cJSON_AddNumberToObject (t, "batch_size", (double)o->to->batch_size);
    cJSON_AddNumberToObject (t, "seed", (double)o->to->seed);
    cJSON_AddBoolToObject (t, "resume", o->checkpoint != NULL);
    job = cJSON_PrintUnformatted (j);
    cJSON_Delete (j);
    if (!job) {
        errprintf (errp, "out of memory");
        goto fail;
    }
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
            cJSON *rj = cJSON_ParseWithLength ((const char *)m.data, m.len);
            const cJSON *p =
                cJSON_GetObjectItemCaseSensitive (rj, "parameters");
            if (cJSON_IsNumber (p))
                ct->np = (size_t)p->valuedouble;
            cJSON_Delete (rj);
            ct->r[m.src].ready = true;
        } else
            t_other (ct, &m);
        free (m.data);
    }
    if (t_alive (ct) == 0) {
        t_fail_all (ct, errp);
        goto fail;
    }
    free (job);
    return ct;
fail:
    free (job);
    dc_coord_train_finish (ct);
    return NULL;
}

int dc_coord_train_grad (void *arg, struct dc_trainer *t, const float *x,
                         const void *target, size_t rows, double *loss_sum,
                         dc_error_t *errp)
{
    struct dc_coord_train *ct = arg;
    int size = ct->hub->size;
    size_t in = (size_t)ct->o.inputs;
    size_t tsz = ct->o.to->loss == DC_LOSS_XENT
                     ? sizeof (int64_t)
                     : (size_t)ct->o.outputs * sizeof (float);

    for (;;) { /* until a step attempt completes */
        int alive = t_alive (ct);
        if (alive == 0)
            return t_fail_all (ct, errp);
        ct->attempt++;
        /* contiguous shares, in rank order */
        int k = 0;
        for (int r = 0; r < size; r++) {
            ct->r[r].replied = ct->r[r].lost;
            if (ct->r[r].lost)
                continue;
            size_t a = rows * (size_t)k / (size_t)alive;
            size_t b = rows * (size_t)(k + 1) / (size_t)alive;
            size_t n = b - a;
            size_t bytes = DC_STEP_HDR + n * (in * 4 + tsz);
            k++;
            if (bytes > ct->bufcap) {
                uint8_t *p = realloc (ct->buf, bytes);
                if (!p)
                    return errprintf (errp, "out of memory for a step");
                ct->buf = p;
                ct->bufcap = bytes;
            }
            dc_put_u64 (ct->buf, ct->attempt);
            dc_put_u64 (ct->buf + 8, n);
            dc_put_u64 (ct->buf + 16, rows);
            dc_put_u64 (ct->buf + 24, 1);
            memcpy (ct->buf + DC_STEP_HDR, x + a * in, n * in * 4);
            memcpy (ct->buf + DC_STEP_HDR + n * in * 4,
                    (const uint8_t *)target + a * tsz, n * tsz);
            if (dc_comm_send (ct->hub, r, DC_MSG_CHUNK, ct->buf, bytes, errp) <
                0)
                return -1;
        }
        bool have_grads = false, redo = false;
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
            if (m.type == DC_MSG_RESULT && r >= 0 && r < size &&
                m.len >= DC_TRAIN_RESULT_HDR &&
                dc_get_u64 (m.data) == ct->attempt) {
                uint64_t status = dc_get_u64 (m.data + 8);
                double part;
                memcpy (&part, m.data + 16, sizeof (part));
                ct->r[r].replied = true;
                if (status != 0)
                    redo = true;
                else {
                    ls += part;
                    if (!have_grads && m.len == DC_TRAIN_RESULT_HDR +
                                                    ct->np * sizeof (float)) {
                        if (dc_trainer_grads_set (
                                t,
                                (const float *)(m.data + DC_TRAIN_RESULT_HDR),
                                errp) < 0) {
                            free (m.data);
                            return -1;
                        }
                        have_grads = true;
                    }
                }
            } else if (m.type != DC_MSG_RESULT)
                t_other (ct, &m);
            free (m.data);
        }
        if (have_grads && !redo) {
            *loss_sum = ls;
            return 0;
        }
        if (have_grads && redo) {
            /* cannot happen: a reduction completes for all or for none */
            errno = EPROTO;
            return errprintf (errp, "ranks disagree about step %llu",
                              (unsigned long long)ct->attempt);
        }
        dc_log (DC_LOG_INFO, "step redone by %d rank%s", t_alive (ct),
                t_alive (ct) == 1 ? "" : "s");
    }
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
    free (ct->buf);
    free (ct->r);
    free (ct);
}
