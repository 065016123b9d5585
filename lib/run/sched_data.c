/* sched_data.c - data-parallel scheduling for the hub (hub.h): chunks to
 * whoever asks, re-queued on loss */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/run/hub.h"
#include "lib/util/log.h"

#define MAX_OUTSTANDING                                                        \
    2 /* chunks a rank holds: one computing, one arriving                      \
       */

static bool pop_pending (void *s, const struct dc_hub *h, int r, size_t *idx)
{
    struct dc_sched_data *sd = s;

    (void)h, (void)r;
    if (sd->pcount == 0)
        return false;
    *idx = sd->pending[sd->phead];
    sd->phead = (sd->phead + 1) % sd->nchunks;
    sd->pcount--;
    return true;
}

/* Requeued chunks go first: they are the oldest work. */
static void push_front (struct dc_sched_data *sd, size_t idx)
{
    sd->phead = (sd->phead + sd->nchunks - 1) % sd->nchunks;
    sd->pending[sd->phead] = idx;
    sd->pcount++;
}

static int read_f32 (void *s, size_t row0, size_t rows, uint8_t *dst,
                     dc_error_t *errp)
{
    struct dc_sched_data *sd = s;

    return dc_npy_read_f32 (sd->in, row0, rows, (float *)dst, errp);
}

static int send_chunk (void *s, struct dc_hub *h, int r, size_t idx,
                       dc_error_t *errp)
{
    struct dc_sched_data *sd = s;
    struct dc_chunk *ch = &sd->chunks[idx];

    return dc_hub_send_rows (h, r, idx, ch->row0, ch->rows,
                             (size_t)sd->inputs * 4, read_f32, sd, &ch->state,
                             &ch->owner, errp);
}

static int start (void *s, struct dc_hub *h, dc_error_t *errp)
{
    struct dc_sched_data *sd = s;
    const struct dc_coord_infer_opts *o = h->o;
    struct dc_wire_job j = {.mode = DC_WIRE_INFER,
                            .threads = o->threads,
                            .delay_ms = o->delay_ms,
                            .chunk_rows = sd->chunk_rows,
                            .io = sd->io};
    char *job;
    int rc;

    snprintf (j.device, sizeof (j.device), "%s",
              o->device ? o->device : "auto");
    snprintf (j.dtype, sizeof (j.dtype), "%s", o->dtype ? o->dtype : "f32");
    snprintf (j.activation, sizeof (j.activation), "%s",
              o->activation ? o->activation : "");
    if (!(job = dc_wire_job_encode (&j)))
        return errprintf (errp, "out of memory");
    /* --io direct: the ranks read the model from its path, no MODEL */
    rc = dc_comm_bcast (h->comm, DC_MSG_JOB, job, strlen (job), errp) < 0 ||
                 (!sd->io.model[0] &&
                  dc_comm_bcast (h->comm, DC_MSG_MODEL, sd->model,
                                 sd->model_len, errp) < 0)
             ? -1
             : 0;
    free (job);
    return rc;
}

static int ready (void *s, struct dc_hub *h, int r,
                  const struct dc_wire_ready *rd)
{
    struct dc_sched_data *sd = s;

    if (dc_hub_ready_io (h, r, &sd->io, rd))
        return 1;
    if (rd->outputs != h->outputs) {
        snprintf (h->ranks[r].error, sizeof (h->ranks[r].error),
                  "loaded a model of another shape");
        dc_comm_drop (h->comm, r, "model mismatch");
        return 1;
    }
    return 0;
}

/* A rank that sends a bad result is dropped (its chunks go to others). */
static int bad_result (struct dc_hub *h, int r, const char *why)
{
    dc_log (DC_LOG_WARN, "rank %d: %s", r, why);
    dc_comm_drop (h->comm, r, "sent a bad result");
    return 0;
}

static int result (void *s, struct dc_hub *h, int r, const uint8_t *data,
                   size_t len, dc_error_t *errp)
{
    struct dc_sched_data *sd = s;
    struct dc_wire_rows w;
    dc_error_t e;

    bool direct = h->ranks[r].direct; /* wrote its rows itself */
    if (dc_wire_rows_get (data, len, direct ? 0 : (size_t)h->outputs * 4,
                          "RESULT", &w, &e) < 0)
        return bad_result (h, r, e.text);
    if (w.id >= sd->nchunks || sd->chunks[w.id].row0 != w.row0 ||
        sd->chunks[w.id].rows != w.rows)
        return bad_result (h, r, "a result that matches no chunk");
    struct dc_chunk *ch = &sd->chunks[w.id];
    if (ch->state == DC_CHUNK_DONE || ch->owner != r)
        return 0; /* a chunk given to another rank meanwhile: drop it */
    if (direct)
        dc_hub_account (h, r, w.rows, w.seconds);
    else if (dc_hub_write (h, r, w.row0, w.rows, w.data, w.seconds, errp) < 0)
        return -1;
    struct dc_hub_rank *rk = &h->ranks[r];
    rk->read += w.read;
    rk->write += w.write;
    /* idle: from the end of its previous chunk (or READY) to this one's
     * start, on the rank's own clock */
    if (w.start > 0 && rk->last_end > 0) {
        if (w.start > rk->last_end)
            rk->wait += w.start - rk->last_end;
        rk->last_end = w.start + w.read + w.seconds + w.write;
    }
    ch->state = DC_CHUNK_DONE;
    /* timeline: its result is in, with the rank's compute seconds */
    dc_report_chunk_done (h->report, r, w.id, w.seconds);
    /* the rank's phases, on the head's clock (offset measured at READY) */
    struct dc_chunk_phases p = {
        .read = w.read, .compute = w.seconds, .write = w.write};
    double busy = w.read + w.seconds + w.write, now = dc_report_now ();
    p.start = w.start > 0 ? w.start + h->ranks[r].clock_offset : now - busy;
    if (p.start + busy > now || p.start < now - 86400) /* clocks disagree */
        p.start = now - busy;
    dc_report_chunk_phases (h->report, r, w.id, &p);
    h->ranks[r].outstanding--;
    return 0;
}

static int lost (void *s, struct dc_hub *h, int r, bool error, const char *why,
                 dc_error_t *errp)
{
    struct dc_sched_data *sd = s;

    (void)error, (void)why, (void)errp;
    for (size_t i = 0; i < sd->nchunks; i++)
        if (sd->chunks[i].state == DC_CHUNK_ASSIGNED &&
            sd->chunks[i].owner == r) {
            sd->chunks[i].state = DC_CHUNK_PENDING;
            sd->chunks[i].owner = -1;
            push_front (sd, i);
        }
    h->ranks[r].outstanding = 0;
    return 0;
}

static void report (void *s, struct dc_hub *h, struct dc_report *report)
{
    struct dc_sched_data *sd = s;

    for (int r = 0; r < h->size; r++) {
        const struct dc_hub_rank *rk = &h->ranks[r];
        dc_report_add_rank (report, r, dc_hub_host (h, r),
                            rk->device[0] ? rk->device : "?", rk->rows,
                            rk->seconds, (double)rk->rows * sd->flops_per_row);
        dc_report_set_rank_kernel (report, r, rk->kernel);
    }
    cJSON *x = dc_report_extra (report, "distributed");
    if (!x)
        return;
    cJSON_AddNumberToObject (x, "chunk_rows", (double)sd->chunk_rows);
    dc_hub_report_io (
        h, x, sd->io.on ? (sd->io.required ? "direct" : "auto") : "relay");
    dc_hub_report_chunks (h, x, sd->nchunks);
}

const struct dc_hub_sched dc_sched_data = {
    .start = start,
    .ready = ready,
    .result = result,
    .lost = lost,
    .next = pop_pending,
    .send = send_chunk,
    .most = MAX_OUTSTANDING,
    .name = dc_hub_name,
    .report = report,
    .on_loss = "its chunks go to the others",
};
