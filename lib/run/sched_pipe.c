/* sched_pipe.c - pipeline scheduling for the hub (hub.h): micro-batches
 * per group, the job fails when a stage is lost */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/run/hub.h"

static int start (void *s, struct dc_hub *h, dc_error_t *errp)
{
    struct dc_sched_pipe *sp = s;

    (void)h;
    return sp->send_stages (sp->arg, errp);
}

static int ready (void *s, struct dc_hub *h, int r,
                  const struct dc_wire_ready *rd)
{
    struct dc_sched_pipe *sp = s;

    (void)rd;
    if (!h->ranks[r].ready)
        sp->ready[dc_layout_group (sp->lo, r)]++;
    return 0;
}

static void name (void *s, const struct dc_hub *h, int r, char *buf, size_t len)
{
    const struct dc_layout *lo = ((struct dc_sched_pipe *)s)->lo;

    if (lo->ngroups > 1)
        snprintf (buf, len, "stage %d of %d in group %d (rank %d on %s)",
                  dc_layout_stage (lo, r), lo->nstages, dc_layout_group (lo, r),
                  r, dc_hub_host (h, r));
    else
        snprintf (buf, len, "stage %d of %d (rank %d on %s)",
                  dc_layout_stage (lo, r), lo->nstages, r, dc_hub_host (h, r));
}

/* A micro-batch whose rows and every stage's note are in is done. */
static void maybe_done (struct dc_sched_pipe *sp, struct dc_hub *h, size_t id)
{
    const struct dc_layout *lo = sp->lo;
    size_t mr = sp->micro_rows;
    size_t rows = id + 1 < sp->nmb ? mr : h->rows - id * mr;

    if (!sp->done_mb[id] || sp->nnotes[id] != lo->nstages)
        return;
    h->done += rows;
    h->t_last = dc_hub_now ();
    sp->grows[sp->mb_group[id]] += rows;
}

static int bad (struct dc_hub *h, const char *who, const char *what,
                dc_error_t *errp)
{
    h->res->status = DC_COORD_WORKER_ERROR;
    return errprintf (errp, "%s: %s", who, what);
}

/* A stage's note of micro-batch w: its compute and send seconds, on its
 * clock from start: the rank's totals, its wait since its previous
 * micro-batch, and the log for the timeline (laid out at the end). */
static void note (struct dc_sched_pipe *sp, struct dc_hub *h, int r,
                  const struct dc_wire_rows *w)
{
    struct dc_hub_rank *rk = &h->ranks[r];

    rk->rows += w->rows;
    rk->chunks++;
    rk->seconds += w->seconds;
    rk->write += w->write; /* sending it on */
    h->busy += w->seconds;
    if (w->start > 0 && rk->last_end > 0) {
        if (w->start > rk->last_end)
            rk->wait += w->start - rk->last_end;
        rk->last_end = w->start + w->seconds + w->write;
    }
    sp->log[sp->nlog++] = (struct dc_pipe_note){.rank = r,
                                                .id = w->id,
                                                .start = w->start,
                                                .compute = w->seconds,
                                                .send = w->write,
                                                .arrived = dc_hub_now ()};
}

/* The notes on the head's clock: a rank's clock offset is the smallest
 * (arrival - end of the send) over its notes and READY, so that no note
 * arrives before it was sent (on one host: about the same clock).  Each
 * micro-batch a chunk of the rank with its compute (--report's chunks),
 * its send a "transfer" span (--trace). */
static void timeline (struct dc_sched_pipe *sp, struct dc_hub *h)
{
    double *off = calloc ((size_t)h->size, sizeof (*off));

    if (!off || !h->report) {
        free (off);
        return;
    }
    for (int r = 0; r < h->size; r++)
        off[r] =
            h->ranks[r].ready_clock > 0 ? h->ranks[r].clock_offset : INFINITY;
    for (size_t i = 0; i < sp->nlog; i++) {
        const struct dc_pipe_note *n = &sp->log[i];
        double o = n->arrived - (n->start + n->compute + n->send);
        if (n->start > 0 && o < off[n->rank])
            off[n->rank] = o;
    }
    for (size_t i = 0; i < sp->nlog; i++) {
        const struct dc_pipe_note *n = &sp->log[i];
        double busy = n->compute + n->send;
        double t = n->start > 0 && isfinite (off[n->rank])
                       ? n->start + off[n->rank]
                       : n->arrived - busy;
        dc_report_chunk_measured (
            h->report, n->rank, n->id,
            &(struct dc_chunk_phases){.start = t, .compute = n->compute});
        /* sending it on: to the next stage, or the hub from the last */
        dc_report_span (h->report, n->rank, "transfer", "transfer",
                        t + n->compute, t + busy, (double)n->id);
    }
    free (off);
}

/* RESULT from rank r: the last stage's rows of a micro-batch, or a
 * stage's note (the header alone) of one it passed on. */
static int result (void *s, struct dc_hub *h, int r, const uint8_t *data,
                   size_t len, dc_error_t *errp)
{
    struct dc_sched_pipe *sp = s;
    const struct dc_layout *lo = sp->lo;
    int S = lo->nstages, k = dc_layout_stage (lo, r);
    bool is_note = len == DC_PIPE_HDR;
    struct dc_wire_rows w;
    dc_error_t e;
    char who[300];

    name (s, h, r, who, sizeof (who));
    if (dc_wire_rows_get (data, len, is_note ? 0 : (size_t)h->outputs * 4,
                          is_note ? "note" : "RESULT", &w, &e) < 0)
        return bad (h, who, e.text, errp);
    size_t id = (size_t)w.id, mr = sp->micro_rows;
    if (w.id >= sp->nmb || w.row0 != id * mr ||
        w.rows != (id + 1 < sp->nmb ? mr : h->rows - id * mr) ||
        id >= sp->next || sp->mb_group[id] != dc_layout_group (lo, r) ||
        (is_note ? sp->noted[id * (size_t)S + (size_t)k]
                 : k != S - 1 || sp->done_mb[id]))
        return bad (h, who, "a result that matches no micro-batch", errp);
    if (is_note) {
        sp->noted[id * (size_t)S + (size_t)k] = 1;
        sp->nnotes[id]++;
        note (sp, h, r, &w);
        maybe_done (sp, h, id);
        return 0;
    }
    /* the rows: written now, accounted with the notes */
    double tw = dc_hub_now ();
    if (dc_npy_writer_write_f32 (h->out, w.row0, w.rows, (const float *)w.data,
                                 errp) < 0) {
        h->res->status = DC_COORD_IO_ERROR;
        return -1;
    }
    h->t_write += dc_hub_now () - tw;
    h->ranks[r].relayed += w.rows * (uint64_t)h->outputs * 4;
    sp->done_mb[id] = 1;
    sp->outstanding[sp->mb_group[id]]--;
    maybe_done (sp, h, id);
    return 0;
}

/* A stage's layers are nowhere else: the job stops. */
static int lost (void *s, struct dc_hub *h, int r, bool error, const char *why,
                 dc_error_t *errp)
{
    char who[300];

    name (s, h, r, who, sizeof (who));
    if (error) {
        h->res->status = DC_COORD_WORKER_ERROR;
        return errprintf (errp, "%s: %s", who, why);
    }
    h->res->status = DC_COORD_ALL_LOST;
    h->res->nlost = 1;
    snprintf (h->res->lost, sizeof (h->res->lost), "%s was lost (%s)", who,
              why);
    errno = EHOSTDOWN;
    return errprintf (errp, "%s", h->res->lost);
}

/* Every group whose stages are all ready takes micro-batches, up to one
 * per stage and one waiting. */
static int dispatch (void *s, struct dc_hub *h, dc_error_t *errp)
{
    struct dc_sched_pipe *sp = s;
    const struct dc_layout *lo = sp->lo;
    int S = lo->nstages;

    for (int q = 0; q < lo->ngroups; q++)
        while (sp->ready[q] == S && sp->outstanding[q] < S + 1 &&
               sp->next < sp->nmb) {
            size_t row0 = sp->next * sp->micro_rows;
            size_t n = sp->next + 1 < sp->nmb ? sp->micro_rows : h->rows - row0;
            dc_wire_rows_put (sp->buf, &(struct dc_wire_rows){.id = sp->next,
                                                              .row0 = row0,
                                                              .rows = n});
            if (dc_npy_read_f32 (sp->in, row0, n,
                                 (float *)(sp->buf + DC_PIPE_HDR), errp) < 0 ||
                dc_comm_send (h->comm, dc_layout_rank (lo, q, 0), DC_MSG_CHUNK,
                              sp->buf, DC_PIPE_HDR + n * (size_t)sp->inputs * 4,
                              errp) < 0) {
                h->res->status = DC_COORD_IO_ERROR;
                return -1;
            }
            dc_hub_sent (h);
            sp->mb_group[sp->next] = q;
            sp->next++;
            sp->outstanding[q]++;
        }
    return 0;
}

/* Each stage as a rank of the report: its device, the rows that passed
 * through it, its compute seconds (and a chunk per micro-batch); the
 * totals count the batch's rows once.  "pipeline": the layout, the
 * ranks' compute, send and idle seconds within the compute phase (the
 * bubble: fill, drain and imbalance). */
static void report (void *s, struct dc_hub *h, struct dc_report *report)
{
    struct dc_sched_pipe *sp = s;
    const struct dc_layout *lo = sp->lo;
    int S = lo->nstages, size = h->size;
    double wall = h->t_last > h->t_first ? h->t_last - h->t_first : 0;

    for (int r = 0; r < size; r++) {
        const struct dc_hub_rank *rk = &h->ranks[r];
        dc_report_add_rank (
            report, r, dc_hub_host (h, r), rk->device[0] ? rk->device : "?",
            rk->rows, rk->seconds,
            (double)rk->rows * lo->flops[dc_layout_stage (lo, r)]);
        dc_report_set_rank_kernel (report, r, rk->kernel);
    }
    dc_report_set_total_rows (report, h->done);
    timeline (sp, h);
    cJSON *x = dc_report_extra (report, "pipeline");
    if (!x)
        return;
    cJSON_AddNumberToObject (x, "stages", S);
    cJSON_AddNumberToObject (x, "groups", lo->ngroups);
    cJSON_AddNumberToObject (x, "micro_batch_rows", (double)sp->micro_rows);
    cJSON_AddNumberToObject (x, "micro_batches", (double)sp->nmb);
    cJSON *st = cJSON_AddArrayToObject (x, "stage_layers");
    for (int k = 0; k < S; k++)
        cJSON_AddItemToArray (
            st, cJSON_CreateIntArray ((int[]){lo->l0[k], lo->l1[k]}, 2));
    cJSON_AddNumberToObject (x, "busy_seconds", h->busy);
    cJSON_AddNumberToObject (x, "compute_seconds", wall);
    /* the share of rank-seconds spent waiting: fill, drain and imbalance */
    cJSON_AddNumberToObject (x, "bubble",
                             wall > 0 ? 1.0 - h->busy / (wall * size) : 0);
    cJSON *a = cJSON_AddArrayToObject (x, "rank_times");
    for (int r = 0; a && r < size; r++) {
        const struct dc_hub_rank *rk = &h->ranks[r];
        cJSON *o = cJSON_CreateObject ();
        double idle = wall - rk->seconds - rk->write;
        cJSON_AddNumberToObject (o, "rank", r);
        cJSON_AddNumberToObject (o, "stage", dc_layout_stage (lo, r));
        cJSON_AddNumberToObject (o, "group", dc_layout_group (lo, r));
        cJSON_AddNumberToObject (o, "micro_batches", (double)rk->chunks);
        cJSON_AddNumberToObject (o, "compute", rk->seconds);
        cJSON_AddNumberToObject (o, "send", rk->write);
        cJSON_AddNumberToObject (o, "idle", idle > 0 ? idle : 0);
        cJSON_AddNumberToObject (o, "wait", rk->wait);
        cJSON_AddItemToArray (a, o);
    }
}

const struct dc_hub_sched dc_sched_pipe = {
    .start = start,
    .ready = ready,
    .result = result,
    .lost = lost,
    .dispatch = dispatch,
    .name = name,
    .report = report,
    .on_loss = "the pipeline stops",
};
