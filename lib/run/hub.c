/* hub.c - the one coordinator loop (hub.h) */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lib/run/hub.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* user + system CPU seconds of the hub's thread: the loop, the relay and
 * the launcher's channels run here; not rank 0's own work under MPI */
static double cpu_seconds (void)
{
    struct rusage ru;

    if (getrusage (RUSAGE_THREAD, &ru) < 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double dc_hub_now (void)
{
    return dc_now ();
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

const char *dc_hub_host (const struct dc_hub *h, int r)
{
    return h->o->hosts && h->o->hosts[r] ? h->o->hosts[r] : "?";
}

int dc_hub_alive (const struct dc_hub *h)
{
    int n = 0;
    for (int r = 0; r < h->size; r++)
        if (!h->ranks[r].lost)
            n++;
    return n;
}

void dc_hub_sent (struct dc_hub *h)
{
    if (h->t_first == 0)
        h->t_first = dc_hub_now ();
}

void dc_hub_chunk_out (struct dc_hub *h, int r, size_t idx, size_t bytes)
{
    dc_report_chunk_sent (h->report, r, idx);
    if (!h->ranks[r].direct)
        h->ranks[r].relayed += bytes - DC_CHUNK_HDR;
}

int dc_hub_chunk_send (struct dc_hub *h, int r, const uint8_t *buf,
                       size_t bytes, enum dc_chunk_state *state, int *owner,
                       dc_error_t *errp)
{
    if (dc_comm_send (h->comm, r, DC_MSG_CHUNK, buf, bytes, errp) < 0)
        return -1;
    *state = DC_CHUNK_ASSIGNED;
    *owner = r;
    h->ranks[r].outstanding++;
    dc_hub_sent (h);
    return 0;
}

int dc_hub_send_rows (struct dc_hub *h, int r, size_t idx, size_t row0,
                      size_t rows, size_t row_bytes, dc_hub_read_fn read,
                      void *s, enum dc_chunk_state *state, int *owner,
                      dc_error_t *errp)
{
    struct dc_wire_chunk w = {.id = idx, .row0 = row0, .rows = rows};
    bool direct = h->ranks[r].direct; /* the rank reads the rows itself */
    size_t bytes;
    uint8_t *buf = dc_wire_chunk_new (&w, direct ? 0 : row_bytes, &bytes);
    int rc = -1;

    if (!buf)
        return errprintf (errp, "out of memory for a chunk");
    /* timeline: the chunk leaves the hub (read, relay) from now on */
    dc_hub_chunk_out (h, r, idx, bytes);
    if ((direct || read (s, row0, rows, buf + DC_CHUNK_HDR, errp) == 0) &&
        dc_hub_chunk_send (h, r, buf, bytes, state, owner, errp) == 0)
        rc = 0;
    free (buf);
    return rc;
}

void dc_hub_name (void *s, const struct dc_hub *h, int r, char *buf, size_t len)
{
    (void)s;
    snprintf (buf, len, "rank %d on %s", r, dc_hub_host (h, r));
}

int dc_hub_ready_io (struct dc_hub *h, int r, const struct dc_wire_io *io,
                     const struct dc_wire_ready *rd)
{
    struct dc_hub_rank *rk = &h->ranks[r];

    if (!io->on) /* direct I/O was not offered */
        rk->direct = false;
    if (io->required && !rk->direct) {
        snprintf (rk->error, sizeof (rk->error), "--io direct: %s",
                  rd->io_why[0] ? rd->io_why
                                : "the rank cannot read the files");
        rk->io_refused = true;
        dc_comm_drop (h->comm, r, "no direct I/O");
        return 1;
    }
    if (io->on)
        dc_log (DC_LOG_INFO, "rank %d on %s: io %s%s%s", r, dc_hub_host (h, r),
                rk->direct ? "direct" : "relay", rd->io_why[0] ? ": " : "",
                rd->io_why);
    return 0;
}

const char *dc_io_mode_name (enum dc_io_mode m)
{
    return m == DC_IO_RELAY ? "relay" : m == DC_IO_DIRECT ? "direct" : "auto";
}

int dc_hub_write (struct dc_hub *h, int r, uint64_t row0, uint64_t rows,
                  const uint8_t *data, double seconds, dc_error_t *errp)
{
    double tw = dc_hub_now ();

    if (dc_npy_writer_write_f32 (h->out, row0, rows, (const float *)data,
                                 errp) < 0) {
        h->res->status = DC_COORD_IO_ERROR;
        return -1;
    }
    h->t_write += dc_hub_now () - tw;
    h->ranks[r].relayed += rows * (uint64_t)h->outputs * 4;
    dc_hub_account (h, r, rows, seconds);
    return 0;
}

void dc_hub_account (struct dc_hub *h, int r, uint64_t rows, double seconds)
{
    h->t_last = dc_hub_now ();
    h->done += rows;
    h->busy += seconds;
    h->ranks[r].rows += rows;
    h->ranks[r].chunks++;
    h->ranks[r].seconds += seconds;
}

void dc_hub_report_chunks (const struct dc_hub *h, cJSON *x, size_t nchunks)
{
    cJSON_AddNumberToObject (x, "chunks", (double)nchunks);
    cJSON *chunks = cJSON_AddArrayToObject (x, "rank_chunks");
    cJSON *lostw = cJSON_AddArrayToObject (x, "lost_workers");
    for (int r = 0; r < h->size; r++) {
        cJSON_AddItemToArray (chunks,
                              cJSON_CreateNumber ((double)h->ranks[r].chunks));
        if (h->ranks[r].lost && !h->ranks[r].done_sent) {
            cJSON *l = cJSON_CreateObject ();
            cJSON_AddNumberToObject (l, "rank", r);
            cJSON_AddStringToObject (l, "host", dc_hub_host (h, r));
            cJSON_AddStringToObject (l, "reason",
                                     h->ranks[r].error[0]
                                         ? h->ranks[r].error
                                         : dc_comm_lost_reason (h->comm, r));
            cJSON_AddItemToArray (lostw, l);
        }
    }
}

/* The one rule for a rank that failed or went away (hub.h). */
static int lose (struct dc_hub *h, const struct dc_hub_sched *ops, void *s,
                 int r, bool error, const char *why, dc_error_t *errp)
{
    struct dc_hub_rank *rk = &h->ranks[r];
    struct dc_coord_result *res = h->res;
    char name[300];

    if (rk->lost)
        return 0;
    rk->lost = true;
    rk->ready = false;
    if (rk->done_sent)
        return 0; /* it ended after its work: not a loss */
    ops->name (s, h, r, name, sizeof (name));
    size_t len = strlen (res->lost);
    snprintf (res->lost + len, sizeof (res->lost) - len, "%s%s (%s)",
              len ? ", " : "", name, why);
    res->nlost++;
    dc_report_instant (h->report, r, "lost", "lost", why); /* --trace */
    dc_log (DC_LOG_WARN, "%s lost (%s): %s", name, why, ops->on_loss);
    return ops->lost (s, h, r, error, why, errp);
}

static int fail_all_lost (struct dc_hub *h, const struct dc_hub_sched *ops,
                          void *s, dc_error_t *errp)
{
    char name[300];

    for (int r = 0; r < h->size; r++)
        if (h->ranks[r].error[0]) {
            /* files the ranks cannot reach are no compute error */
            h->res->status = h->ranks[r].io_refused ? DC_COORD_IO_ERROR
                                                    : DC_COORD_WORKER_ERROR;
            ops->name (s, h, r, name, sizeof (name));
            return errprintf (errp, "%s: %s", name, h->ranks[r].error);
        }
    h->res->status = DC_COORD_ALL_LOST;
    return errprintf (errp, "every rank was lost: %s", h->res->lost);
}

/* One message from rank r: 0 go on, -1 stop (res->status, errp). */
static int on_message (struct dc_hub *h, const struct dc_hub_sched *ops,
                       void *s, struct dc_comm_msg *m, dc_error_t *errp)
{
    int r = m->src;
    struct dc_hub_rank *rk = &h->ranks[r];

    switch (m->type) {
    case DC_MSG_READY: {
        struct dc_wire_ready rd;
        dc_error_t e;
        if (dc_wire_ready_decode (m->data, m->len, &rd, &e) < 0) {
            snprintf (rk->error, sizeof (rk->error), "%s", e.text);
            dc_comm_drop (h->comm, r, "sent a bad READY");
            return 0;
        }
        snprintf (rk->device, sizeof (rk->device), "%s", rd.device);
        snprintf (rk->kernel, sizeof (rk->kernel), "%s", rd.kernel);
        snprintf (rk->io_why, sizeof (rk->io_why), "%s", rd.io_why);
        snprintf (rk->io_engine, sizeof (rk->io_engine), "%s", rd.io_engine);
        rk->direct = !strcmp (rd.io, "direct");
        /* the rank's clock to the head's: the READY's transit time is in
         * the error (below a millisecond on a LAN) */
        rk->clock_offset = rd.clock > 0 ? dc_hub_now () - rd.clock : 0;
        rk->ready_clock = rk->last_end = rd.clock;
        if (ops->ready (s, h, r, &rd) == 0 && !rk->lost) {
            rk->ready = true;
            /* --trace: from the job's start here to the rank's READY */
            dc_report_span (h->report, r, "connect+load", "load", h->t0,
                            dc_hub_now (), NAN);
        }
        return 0;
    }
    case DC_MSG_RESULT:
        return ops->result (s, h, r, m->data, m->len, errp);
    case DC_MSG_ERROR:
        snprintf (rk->error, sizeof (rk->error), "%.*s",
                  (int)(m->len < 400 ? m->len : 400),
                  m->data ? (const char *)m->data : "");
        return lose (h, ops, s, r, true, rk->error, errp);
    case DC_COMM_LOST:
        return lose (h, ops, s, r, false, dc_comm_lost_reason (h->comm, r),
                     errp);
    default:
        return 0;
    }
}

/* Wait (briefly) for the ranks to leave, so nothing is cut short. */
static void drain (struct dc_hub *h)
{
    double until = dc_hub_now () + 5;

    while (h->comm->ops->reports_exit && dc_hub_alive (h) > 0 &&
           dc_hub_now () < until) {
        struct dc_comm_msg m;
        int got = dc_comm_recv (h->comm, &m, 100, NULL);
        if (got < 0)
            break;
        if (got > 0) {
            if (m.type == DC_COMM_LOST && m.src >= 0 && m.src < h->size)
                h->ranks[m.src].lost = true;
            free (m.data);
        }
    }
}

static void report_run (struct dc_hub *h, const struct dc_hub_sched *ops,
                        void *s, struct dc_report *report, bool ok)
{
    struct dc_coord_result *res = h->res;

    if (h->t_first > 0) {
        dc_report_phase_add (report, DC_PHASE_LOAD, h->t_first - h->t0);
        dc_report_phase_add (report, DC_PHASE_COMPUTE,
                             h->t_last > h->t_first ? h->t_last - h->t_first
                                                    : 0);
    }
    dc_report_phase_add (report, DC_PHASE_WRITE, h->t_write);
    ops->report (s, h, report);
    /* what the head itself spent: relaying, writing, scheduling */
    cJSON *x = dc_report_extra (report, "distributed");
    if (x) {
        cJSON_DeleteItemFromObject (x, "hub_cpu_seconds");
        cJSON_AddNumberToObject (x, "hub_cpu_seconds",
                                 cpu_seconds () - h->cpu0);
    }
    if (ok)
        dc_report_set_output (report, h->o->output_path, 2, res->shape,
                              h->o->out_dtype == DC_NPY_F2 ? "<f2" : "<f4",
                              res->sha256);
}

/* A chunked scheduler's dispatch (ops->next, ops->send). */
static int hand_out (struct dc_hub *h, const struct dc_hub_sched *ops, void *s,
                     dc_error_t *errp)
{
    size_t idx;

    for (int r = 0; r < h->size; r++) {
        struct dc_hub_rank *rk = &h->ranks[r];
        while (rk->ready && !rk->lost && rk->outstanding < ops->most &&
               ops->next (s, h, r, &idx))
            if (ops->send (s, h, r, idx, errp) < 0) {
                h->res->status = DC_COORD_IO_ERROR;
                return -1;
            }
    }
    return 0;
}

int dc_hub_run (struct dc_hub *h, const struct dc_hub_sched *ops, void *s,
                struct dc_report *report, dc_error_t *errp)
{
    struct dc_coord_result *res = h->res;
    int rc = -1;

    memset (res, 0, sizeof (*res));
    res->status = DC_COORD_IO_ERROR;
    h->report = report; /* schedulers note the chunk timeline in it */
    h->t0 = dc_hub_now ();
    h->cpu0 = cpu_seconds ();
    h->t_first = h->t_last = h->t_write = h->busy = 0;
    h->done = 0;
    if (!(h->ranks = calloc ((size_t)h->size, sizeof (*h->ranks)))) {
        errprintf (errp, "out of memory");
        goto out;
    }
    if (ops->start (s, h, errp) < 0)
        goto out;
    while (h->done < h->rows) {
        struct dc_comm_msg m;
        int sig = 0;
        if (dc_hub_alive (h) == 0) {
            fail_all_lost (h, ops, s, errp);
            goto out;
        }
        int got =
            dc_coord_recv (h->comm, &m, h->o->check, h->o->arg, &sig, errp);
        if (got < 0) {
            if (sig) {
                res->status = DC_COORD_INTERRUPTED;
                res->signal = sig;
                errprintf (errp, "interrupted: no output written");
            }
            goto out;
        }
        if (h->o->progress)
            h->o->progress (h->done, h->rows, dc_hub_alive (h), h->o->arg);
        if (got == 0)
            continue;
        if (m.src < 0 || m.src >= h->size) {
            free (m.data);
            continue;
        }
        int x = on_message (h, ops, s, &m, errp);
        free (m.data);
        if (x < 0 || (ops->dispatch ? ops->dispatch (s, h, errp)
                                    : hand_out (h, ops, s, errp)) < 0)
            goto out;
    }
    if (h->o->progress)
        h->o->progress (h->done, h->rows, dc_hub_alive (h), h->o->arg);
    /* every row is in: the ranks may go */
    for (int r = 0; r < h->size; r++)
        if (!h->ranks[r].lost) {
            h->ranks[r].done_sent = true;
            dc_comm_send (h->comm, r, DC_MSG_DONE, NULL, 0, NULL);
        }
    double tc = dc_hub_now ();
    if ((ops->commit ? ops->commit (s, h, errp)
                     : dc_npy_writer_commit (h->out, errp)) < 0) {
        res->status = DC_COORD_IO_ERROR;
        goto out;
    }
    h->t_write += dc_hub_now () - tc;
    dc_report_instant (h->report, DC_REPORT_HUB, "commit", "commit",
                       h->o->output_path); /* --trace */
    drain (h);
    if (!ops->commit) {
        const char *sha = dc_npy_writer_sha256 (h->out);
        snprintf (res->sha256, sizeof (res->sha256), "%s", sha ? sha : "");
    }
    res->rows = h->rows;
    res->shape[0] = (int64_t)h->rows;
    res->shape[1] = h->outputs;
    res->status = DC_COORD_OK;
    rc = 0;
out:
    res->seconds = dc_hub_now () - h->t0;
    if (report && h->ranks)
        report_run (h, ops, s, report, rc == 0);
    free (h->ranks);
    h->ranks = NULL;
    return rc;
}

/* How the rows travelled: "io" (direct, relay or mixed) and per rank its
 * way, why not direct, its read/compute/write seconds and the bytes of its
 * rows that passed the hub. */
void dc_hub_report_io (const struct dc_hub *h, cJSON *x, const char *io_mode)
{
    int direct = 0, working = 0; /* ranks that computed chunks */
    cJSON *a = cJSON_CreateArray ();

    for (int r = 0; r < h->size; r++) {
        const struct dc_hub_rank *rk = &h->ranks[r];
        cJSON *o = cJSON_CreateObject ();
        if (rk->chunks) {
            working++;
            direct += rk->direct;
        }
        /* no READY (it started after the end): no way at all */
        cJSON_AddStringToObject (o, "io",
                                 !rk->device[0] ? "none"
                                 : rk->direct   ? "direct"
                                                : "relay");
        if (rk->io_why[0])
            cJSON_AddStringToObject (o, "why", rk->io_why);
        if (rk->direct && rk->io_engine[0])
            cJSON_AddStringToObject (o, "engine", rk->io_engine);
        cJSON_AddNumberToObject (o, "read", rk->read);
        cJSON_AddNumberToObject (o, "compute", rk->seconds);
        cJSON_AddNumberToObject (o, "write", rk->write);
        /* READY to the end of its last chunk = read + compute + write +
         * wait + what sending results took (the rest) */
        if (rk->last_end > rk->ready_clock) {
            cJSON_AddNumberToObject (o, "wait", rk->wait);
            cJSON_AddNumberToObject (o, "wall", rk->last_end - rk->ready_clock);
        }
        cJSON_AddNumberToObject (o, "relayed_bytes", (double)rk->relayed);
        cJSON_AddItemToArray (a, o);
    }
    cJSON_AddStringToObject (x, "io_mode", io_mode);
    cJSON_AddStringToObject (x, "io",
                             direct == working ? "direct"
                             : direct          ? "mixed"
                                               : "relay");
    cJSON_AddItemToObject (x, "rank_io", a);
}
