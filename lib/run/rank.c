/* rank.c - the rank side of the distributed executor */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/log.h"
#include "lib/model/model.h"
#include "lib/formats/report.h"
#include "lib/run/map_rank.h"
#include "lib/run/rank.h"
#include "lib/run/stage.h"
#include "lib/comm/wire.h"

struct job {
    char mode[16];
    char device[16];
    char dtype[8];
    char activation[16];
    int threads;
    int delay_ms;
    size_t chunk_rows;
    /* train */
    struct dc_train_opts to;
    bool resume; /* a DATA message with the checkpoint follows MODEL */
};

static dc_compute_find_f worker_find;

struct beat {
    struct dc_comm *c;
    double period;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *beat_main (void *arg)
{
    struct beat *b = arg;
    struct timespec until;

    pthread_mutex_lock (&b->mu);
    while (!b->stop) {
        clock_gettime (CLOCK_REALTIME, &until);
        long ns = (long)(b->period * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec += ns % 1000000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&b->cv, &b->mu, &until);
        if (b->stop)
            break;
        pthread_mutex_unlock (&b->mu);
        if (dc_comm_send (b->c, DC_COMM_HUB, DC_MSG_HEARTBEAT, NULL, 0, NULL) <
            0) {
            pthread_mutex_lock (&b->mu);
            break;
        }
        pthread_mutex_lock (&b->mu);
    }
    pthread_mutex_unlock (&b->mu);
    return NULL;
}

/* The data-parallel rank's view of a decoded JOB. */
static void job_from_wire (const struct dc_wire_job *w, struct job *j)
{
    memset (j, 0, sizeof (*j));
    snprintf (j->mode, sizeof (j->mode), "%s", dc_wire_mode_name (w->mode));
    snprintf (j->device, sizeof (j->device), "%s", w->device);
    snprintf (j->dtype, sizeof (j->dtype), "%s", w->dtype);
    snprintf (j->activation, sizeof (j->activation), "%s", w->activation);
    j->threads = w->threads;
    j->delay_ms = w->delay_ms;
    j->chunk_rows = (size_t)w->chunk_rows;
    if (w->has_train) {
        dc_serve_train_unpack (&w->train, &j->to);
        j->resume = w->train.resume;
    }
}

/* Write bytes to a private file (path gets its name). */
/* Put bytes where dc_model_load and checkpoint loads can read them: an
 * in-memory file (memfd, path "/proc/self/fd/N"), else a private file in
 * the temporary folder.  Returns the memfd to close after loading, -2 for
 * a named file to unlink, -1 on error. */
static int write_tmp (const uint8_t *data, size_t len,
                      const struct dc_worker_opts *o, char *path,
                      size_t pathlen, dc_error_t *errp)
{
    const char *dir = o->tmpdir ? o->tmpdir : getenv ("TMPDIR");
    int fd, ret;

    if ((fd = memfd_create ("dcrun-model", MFD_CLOEXEC)) >= 0) {
        snprintf (path, pathlen, "/proc/self/fd/%d", fd);
        ret = fd;
    } else {
        snprintf (path, pathlen, "%s/dcrun-rank-XXXXXX.safetensors",
                  dir && *dir ? dir : "/tmp");
        if ((fd = mkostemps (path, 12, O_CLOEXEC)) < 0)
            return errprintf (errp, "worker: %s: %s", path, strerror (errno));
        ret = -2;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write (fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errprintf (errp, "worker: %s: %s", path, strerror (errno));
            close (fd);
            if (ret == -2)
                unlink (path);
            return -1;
        }
        off += (size_t)n;
    }
    if (ret == -2)
        close (fd);
    return ret;
}

static void drop_tmp (int how, const char *path)
{
    if (how >= 0)
        close (how);
    else if (how == -2)
        unlink (path);
}

static struct dc_model *load_model (const uint8_t *data, size_t len,
                                    const struct job *j,
                                    const struct dc_worker_opts *o,
                                    dc_error_t *errp)
{
    char path[4096];
    struct dc_model *m;

    int how = write_tmp (data, len, o, path, sizeof (path), errp);
    if (how == -1)
        return NULL;
    m = dc_model_load (path, j->activation[0] ? j->activation : NULL, errp);
    drop_tmp (how, path);
    return m;
}

static int serve_infer (struct dc_comm *c, const struct job *j,
                        struct dc_model *m, dc_error_t *errp)
{
    const struct dc_compute_ops *ops = NULL;
    struct dc_compute *dev = NULL;
    struct dc_mlp_dev *net = NULL;
    struct dc_layer_view *lv = NULL;
    struct dc_mlp_view view;
    uint8_t *out = NULL;
    size_t out_cap = 0;
    int rc = -1;
    int nin = dc_model_inputs (m), nout = dc_model_outputs (m);
    struct dc_compute_opts co = {.threads = j->threads};

    if (dc_dtype_parse (j->dtype, &co.dtype) < 0) {
        errprintf (errp, "worker: unknown dtype '%s'", j->dtype);
        return dc_worker_fail (c, errp);
    }
    if (!(ops = worker_find (j->device, errp)) ||
        !(dev = ops->create (&co, errp)))
        return dc_worker_fail (c, errp);
    if (!(lv = calloc ((size_t)m->nlayers, sizeof (*lv)))) {
        errprintf (errp, "worker: out of memory");
        goto done;
    }
    dc_model_view (m, lv, &view);
    if (!(net = ops->mlp_load (dev, &view, errp)))
        goto done;
    struct dc_wire_ready rd = {
        .inputs = nin, .outputs = nout, .parameters = -1};
    snprintf (rd.device, sizeof (rd.device), "%s",
              ops->describe ? ops->describe (dev) : ops->name);
    snprintf (rd.kernel, sizeof (rd.kernel), "%s",
              ops->kernel && ops->kernel (dev) ? ops->kernel (dev) : "");
    char *rs = dc_wire_ready_encode (&rd);
    if (!rs || dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, rs, strlen (rs),
                             errp) < 0) {
        free (rs);
        goto done;
    }
    free (rs);
    for (;;) {
        struct dc_comm_msg msg;
        if (dc_comm_recv (c, &msg, -1, errp) < 0)
            goto quiet; /* the coordinator went away */
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            rc = 0;
            break;
        }
        if (msg.type != DC_MSG_CHUNK) {
            free (msg.data);
            continue;
        }
        struct dc_wire_chunk ch;
        dc_error_t e;
        if (dc_wire_chunk_get (msg.data, msg.len, (size_t)nin * 4, &ch, &e) <
            0) {
            free (msg.data);
            errprintf (errp, "worker: %s", e.text);
            goto done;
        }
        uint64_t id = ch.id, row0 = ch.row0, rows = ch.rows;
        size_t need = DC_RESULT_HDR + (size_t)rows * (size_t)nout * 4;
        if (need > out_cap) {
            uint8_t *p = realloc (out, need);
            if (!p) {
                free (msg.data);
                errprintf (errp, "worker: out of memory");
                goto done;
            }
            out = p;
            out_cap = need;
        }
        if (j->delay_ms > 0) /* test hook: makes lost-worker tests exact */
            dc_worker_sleep_ms (j->delay_ms);
        double t0 = dc_report_now ();
        /* payload offsets are multiples of 8: aligned for floats */
        int r =
            ops->mlp_infer (dev, net, (const float *)ch.data, (size_t)rows,
                            (size_t)row0, (float *)(out + DC_RESULT_HDR), errp);
        double secs = dc_report_now () - t0;
        free (msg.data);
        if (r < 0)
            goto done;
        dc_wire_rows_put (
            out, &(struct dc_wire_rows){
                     .id = id, .row0 = row0, .rows = rows, .seconds = secs});
        if (dc_comm_send (c, DC_COMM_HUB, DC_MSG_RESULT, out, need, errp) < 0)
            goto quiet;
    }
done:
    if (rc < 0)
        dc_worker_fail (c, errp);
quiet:
    if (net)
        ops->mlp_unload (dev, net);
    if (ops && dev)
        ops->destroy (dev);
    free (lv);
    free (out);
    return rc;
}

static int serve_train (struct dc_comm *c, const struct job *j,
                        struct dc_model *m, const struct dc_worker_opts *o,
                        dc_error_t *errp)
{
    const struct dc_compute_ops *ops = NULL;
    struct dc_compute *dev = NULL;
    struct dc_trainer *t = NULL;
    float *g = NULL;
    uint8_t *out = NULL;
    int rc = -1;
    size_t nin = (size_t)dc_model_inputs (m);
    size_t nout = (size_t)dc_model_outputs (m);
    size_t np = dc_model_nparams (m);
    size_t tsz =
        j->to.loss == DC_LOSS_XENT ? sizeof (int64_t) : nout * sizeof (float);
    struct dc_compute_opts co = {.threads = j->threads};

    if (dc_dtype_parse (j->dtype, &co.dtype) < 0) {
        errprintf (errp, "worker: unknown dtype '%s'", j->dtype);
        return dc_worker_fail (c, errp);
    }
    if (!(ops = worker_find (j->device, errp)) ||
        !(dev = ops->create (&co, errp)))
        return dc_worker_fail (c, errp);
    if (!(t = dc_trainer_create (m, ops, dev, &j->to, errp)))
        goto done;
    if (j->resume) {
        /* the optimizer state and step of the checkpoint */
        struct dc_comm_msg msg;
        struct dc_train_pos pos;
        char path[4096];
        if (dc_comm_recv (c, &msg, -1, errp) <= 0)
            goto quiet;
        int how = -1;
        if (msg.type != DC_MSG_DATA ||
            (how = write_tmp (msg.data, msg.len, o, path, sizeof (path),
                              errp)) == -1) {
            free (msg.data);
            if (msg.type != DC_MSG_DATA)
                errprintf (errp, "worker: expected the checkpoint");
            goto done;
        }
        free (msg.data);
        int lr = dc_trainer_checkpoint_load (t, &pos, path, errp);
        drop_tmp (how, path);
        if (lr < 0)
            goto done;
    }
    if (!(g = malloc ((np ? np : 1) * sizeof (float))) ||
        !(out = malloc (DC_TRAIN_RESULT_HDR + np * sizeof (float)))) {
        errprintf (errp, "worker: out of memory");
        goto done;
    }
    struct dc_wire_ready rd = {.inputs = (int64_t)nin,
                               .outputs = (int64_t)nout,
                               .parameters = (int64_t)np};
    snprintf (rd.device, sizeof (rd.device), "%s", ops->name);
    char *ready = dc_wire_ready_encode (&rd);
    if (!ready || dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, ready,
                                strlen (ready), errp) < 0) {
        free (ready);
        goto quiet;
    }
    free (ready);
    for (;;) {
        struct dc_comm_msg msg;
        double ls = 0;
        if (dc_comm_recv (c, &msg, -1, errp) < 0)
            goto quiet;
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            rc = 0;
            break;
        }
        if (msg.type != DC_MSG_CHUNK) {
            free (msg.data);
            continue;
        }
        struct dc_wire_step sp;
        dc_error_t e;
        if (dc_wire_step_get (msg.data, msg.len, nin * 4, tsz, j->to.batch_size,
                              &sp, &e) < 0) {
            free (msg.data);
            errprintf (errp, "worker: a malformed training %s", e.text);
            goto done;
        }
        uint64_t attempt = sp.attempt, rows = sp.rows, scale = sp.scale;
        if (j->delay_ms > 0)
            dc_worker_sleep_ms (j->delay_ms);
        const float *x = (const float *)sp.x;
        const void *tg = sp.target;
        int r = 0;
        if (rows > 0)
            r = dc_trainer_grad (t, x, tg, (size_t)rows, (size_t)scale, &ls,
                                 errp) < 0 ||
                        dc_trainer_grads_get (t, g, errp) < 0
                    ? -1
                    : 0;
        else
            memset (g, 0, np * sizeof (float));
        free (msg.data);
        if (r < 0)
            goto done;
        /* every live rank sums its gradient with the others' */
        uint64_t status = 0;
        if (dc_comm_allreduce (c, g, np, errp) < 0) {
            if (errno != ECANCELED)
                goto quiet;
            status = 1; /* a rank was lost: the step is redone */
        } else if (dc_trainer_grads_set (t, g, errp) < 0 ||
                   dc_trainer_apply (t, errp) < 0)
            goto done;
        size_t len = DC_TRAIN_RESULT_HDR;
        dc_wire_tresult_put (out, &(struct dc_wire_tresult){.attempt = attempt,
                                                            .status = status,
                                                            .loss = ls});
        if (sp.want_grads && status == 0) {
            memcpy (out + DC_TRAIN_RESULT_HDR, g, np * sizeof (float));
            len += np * sizeof (float);
        }
        if (dc_comm_send (c, DC_COMM_HUB, DC_MSG_RESULT, out, len, errp) < 0)
            goto quiet;
    }
done:
    if (rc < 0)
        dc_worker_fail (c, errp);
quiet:
    dc_trainer_destroy (t);
    if (ops && dev)
        ops->destroy (dev);
    free (g);
    free (out);
    return rc;
}

/* JOB "echo" (dcrun bench comm): no model; READY, then every DATA frame
 * goes back to the hub as it came, until DONE. */
static int serve_echo (struct dc_comm *c, dc_error_t *errp)
{
    if (dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, "{}", 2, errp) < 0)
        return -1;
    for (;;) {
        struct dc_comm_msg msg;
        int rc = 0;
        if (dc_comm_recv (c, &msg, -1, errp) < 0)
            return -1; /* the coordinator went away */
        if (msg.type == DC_MSG_DONE) {
            free (msg.data);
            return 0;
        }
        if (msg.type == DC_MSG_DATA)
            rc = dc_comm_send (c, DC_COMM_HUB, DC_MSG_DATA, msg.data, msg.len,
                               errp);
        free (msg.data);
        if (rc < 0)
            return -1;
    }
}

int dc_worker_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                     dc_error_t *errp)
{
    struct beat b = {.c = c, .period = o->heartbeat > 0 ? o->heartbeat : 1};
    pthread_t bt;
    bool beating = false;
    struct dc_comm_msg msg = {0};
    struct job j;
    struct dc_model *m = NULL;
    int rc = -1;

    worker_find = o->find;
    pthread_mutex_init (&b.mu, NULL);
    pthread_cond_init (&b.cv, NULL);
    if (pthread_create (&bt, NULL, beat_main, &b) == 0)
        beating = true;
    /* JOB, then MODEL */
    if (dc_comm_recv (c, &msg, -1, errp) <= 0)
        goto out;
    if (msg.type != DC_MSG_JOB) {
        errprintf (errp, "worker: expected a job, got a %s message",
                   dc_proto_type_name (msg.type));
        dc_worker_fail (c, errp);
        goto out;
    }
    struct dc_wire_job wj;
    dc_error_t e;
    if (dc_wire_job_decode (msg.data, msg.len, &wj, &e) < 0) {
        errprintf (errp, "worker: %s", e.text);
        dc_worker_fail (c, errp);
        goto out;
    }
    if (wj.mode == DC_WIRE_PIPELINE) { /* lib/run/stage.h */
        rc = dc_worker_pipe_serve (c, o, &wj, errp);
        goto out;
    }
    if (wj.mode == DC_WIRE_MAP) { /* lib/run/map_rank.h */
        rc = dc_worker_map_serve (c, o, errp);
        goto out;
    }
    job_from_wire (&wj, &j);
    free (msg.data);
    msg.data = NULL;
    if (!strcmp (j.mode, "echo")) {
        rc = serve_echo (c, errp);
        goto out;
    }
    if (dc_comm_recv (c, &msg, -1, errp) <= 0)
        goto out;
    if (msg.type != DC_MSG_MODEL) {
        errprintf (errp, "worker: expected the model, got a %s message",
                   dc_proto_type_name (msg.type));
        dc_worker_fail (c, errp);
        goto out;
    }
    if (!(m = load_model (msg.data, msg.len, &j, o, errp))) {
        dc_worker_fail (c, errp);
        goto out;
    }
    free (msg.data);
    msg.data = NULL;
    if (!strcmp (j.mode, "train"))
        rc = serve_train (c, &j, m, o, errp);
    else
        rc = serve_infer (c, &j, m, errp);
out:
    free (msg.data);
    dc_model_destroy (m);
    if (beating) {
        pthread_mutex_lock (&b.mu);
        b.stop = true;
        pthread_cond_signal (&b.cv);
        pthread_mutex_unlock (&b.mu);
        pthread_join (bt, NULL);
    }
    pthread_mutex_destroy (&b.mu);
    pthread_cond_destroy (&b.cv);
    return rc;
}
