/* sched_pipe.c - pipeline scheduling for the hub (hub.h): micro-batches
 * per group, the job fails when a stage is lost */
#include <cjson/cJSON.h>
#include <errno.h>
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

static int result (void *s, struct dc_hub *h, int r, const uint8_t *data,
                   size_t len, dc_error_t *errp)
{
    struct dc_sched_pipe *sp = s;
    const struct dc_layout *lo = sp->lo;
    struct dc_wire_rows w;
    dc_error_t e;
    char who[300];

    name (s, h, r, who, sizeof (who));
    if (dc_wire_rows_get (data, len, (size_t)h->outputs * 4, "RESULT", &w, &e) <
        0) {
        h->res->status = DC_COORD_WORKER_ERROR;
        return errprintf (errp, "%s: %s", who, e.text);
    }
    size_t id = (size_t)w.id, mr = sp->micro_rows;
    if (dc_layout_stage (lo, r) != lo->nstages - 1 || w.id >= sp->nmb ||
        sp->done_mb[id] || w.row0 != id * mr ||
        w.rows != (id + 1 < sp->nmb ? mr : h->rows - id * mr)) {
        h->res->status = DC_COORD_WORKER_ERROR;
        return errprintf (errp, "%s: a result that matches no micro-batch",
                          who);
    }
    if (dc_hub_write (h, r, w.row0, w.rows, w.data, w.seconds, errp) < 0)
        return -1;
    int g = dc_layout_group (lo, r);
    sp->done_mb[id] = 1;
    sp->grows[g] += w.rows;
    sp->outstanding[g]--;
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
            sp->next++;
            sp->outstanding[q]++;
        }
    return 0;
}

static void report (void *s, struct dc_hub *h, struct dc_report *report)
{
    struct dc_sched_pipe *sp = s;
    const struct dc_layout *lo = sp->lo;
    int S = lo->nstages, size = h->size;
    double wall = h->t_last > h->t_first ? h->t_last - h->t_first : 0;

    for (int r = 0; r < size; r++) {
        size_t rows = sp->grows[dc_layout_group (lo, r)];
        dc_report_add_rank (report, r, dc_hub_host (h, r), "?", rows, 0,
                            (double)rows * lo->flops[dc_layout_stage (lo, r)]);
    }
    for (int r = 0; r < size; r++)
        dc_report_set_rank_kernel (report, r, h->ranks[r].kernel);
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
