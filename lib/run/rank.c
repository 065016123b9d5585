/* rank.c - the rank side of the distributed executor */
#include <cjson/cJSON.h>
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
#include "lib/run/rank.h"
#include "lib/run/stage.h"

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

static int parse_job (const uint8_t *data, size_t len, struct job *j,
                      dc_error_t *errp)
{
    cJSON *o = cJSON_ParseWithLength ((const char *)data, len);
    const cJSON *v;

    memset (j, 0, sizeof (*j));
    if (!cJSON_IsObject (o)) {
        cJSON_Delete (o);
        return errprintf (errp, "worker: the job description is not JSON");
    }
#define STR(name, dst)                                                         \
    if ((v = cJSON_GetObjectItemCaseSensitive (o, name)) &&                    \
        cJSON_IsString (v))                                                    \
        snprintf (dst, sizeof (dst), "%s", v->valuestring);
    STR ("mode", j->mode);
    STR ("device", j->device);
    STR ("dtype", j->dtype);
    STR ("activation", j->activation);
#undef STR
    if ((v = cJSON_GetObjectItemCaseSensitive (o, "threads")) &&
        cJSON_IsNumber (v) && v->valuedouble >= 0 && v->valuedouble < 4096)
        j->threads = (int)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive (o, "delay_ms")) &&
        cJSON_IsNumber (v) && v->valuedouble >= 0 && v->valuedouble < 3600e3)
        j->delay_ms = (int)v->valuedouble;
    if (!strcmp (j->mode, "train")) {
        char loss[8] = "", optim[8] = "";
        const cJSON *t = cJSON_GetObjectItemCaseSensitive (o, "train");
#define NUM(name, dst)                                                         \
    if ((v = cJSON_GetObjectItemCaseSensitive (t, name)) &&                    \
        cJSON_IsNumber (v))                                                    \
        dst = v->valuedouble;
        NUM ("lr", j->to.lr);
        NUM ("momentum", j->to.momentum);
        NUM ("beta1", j->to.beta1);
        NUM ("beta2", j->to.beta2);
        NUM ("eps", j->to.eps);
        double bs = 0, seed = 0;
        NUM ("batch_size", bs);
        NUM ("seed", seed);
#undef NUM
        j->to.batch_size = bs >= 1 && bs < 1e9 ? (size_t)bs : 0;
        j->to.seed = (uint64_t)seed;
        if ((v = cJSON_GetObjectItemCaseSensitive (t, "loss")) &&
            cJSON_IsString (v))
            snprintf (loss, sizeof (loss), "%s", v->valuestring);
        if ((v = cJSON_GetObjectItemCaseSensitive (t, "optimizer")) &&
            cJSON_IsString (v))
            snprintf (optim, sizeof (optim), "%s", v->valuestring);
        j->resume =
            cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (t, "resume"));
        j->to.loss = !strcmp (loss, "xent") ? DC_LOSS_XENT : DC_LOSS_MSE;
        j->to.optim = !strcmp (optim, "adam") ? DC_OPTIM_ADAM : DC_OPTIM_SGD;
        if (j->to.batch_size == 0) {
            cJSON_Delete (o);
            return errprintf (errp, "worker: train job without a batch size");
        }
    }
    cJSON_Delete (o);
    if (strcmp (j->mode, "infer") != 0 && strcmp (j->mode, "train") != 0 &&
        strcmp (j->mode, "echo") != 0)
        return errprintf (errp, "worker: unknown job mode '%s'", j->mode);
    if (!j->device[0])
        snprintf (j->device, sizeof (j->device), "auto");
    if (!j->dtype[0])
        snprintf (j->dtype, sizeof (j->dtype), "f32");
    return 0;
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
    cJSON *ready = cJSON_CreateObject ();
    cJSON_AddStringToObject (ready, "device",
                             ops->describe ? ops->describe (dev) : ops->name);
    if (ops->kernel && ops->kernel (dev))
        cJSON_AddStringToObject (ready, "kernel", ops->kernel (dev));
    cJSON_AddNumberToObject (ready, "inputs", nin);
    cJSON_AddNumberToObject (ready, "outputs", nout);
    char *rs = cJSON_PrintUnformatted (ready);
    cJSON_Delete (ready);
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
        if (msg.len < DC_CHUNK_HDR) {
            free (msg.data);
            errprintf (errp, "worker: short chunk of %zu bytes", msg.len);
            goto done;
        }
        uint64_t id = dc_get_u64 (msg.data);
        uint64_t row0 = dc_get_u64 (msg.data + 8);
        uint64_t rows = dc_get_u64 (msg.data + 16);
        if (rows == 0 || rows > (1u << 26) ||
            msg.len != DC_CHUNK_HDR + rows * (uint64_t)nin * 4) {
            free (msg.data);
            errprintf (errp, "worker: chunk of %llu rows in %zu bytes",
                       (unsigned long long)rows, msg.len);
            goto done;
        }
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
        int r = ops->mlp_infer (
            dev, net, (const float *)(msg.data + DC_CHUNK_HDR), (size_t)rows,
            (size_t)row0, (float *)(out + DC_RESULT_HDR), errp);
        double secs = dc_report_now () - t0;
        free (msg.data);
        if (r < 0)
            goto done;
        dc_put_u64 (out, id);
        dc_put_u64 (out + 8, row0);
        dc_put_u64 (out + 16, rows);
        memcpy (out + 24, &secs, sizeof (secs));
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
    char ready[256];
    snprintf (ready, sizeof (ready),
              "{\"device\": \"%s\", \"inputs\": %zu, \"outputs\": %zu, "
              "\"parameters\": %zu}",
              ops->name, nin, nout, np);
    if (dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, ready, strlen (ready),
                      errp) < 0)
        goto quiet;
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
        uint64_t attempt = 0, rows = 0, scale = 0, want_grads = 0;
        if (msg.len >= DC_STEP_HDR) {
            attempt = dc_get_u64 (msg.data);
            rows = dc_get_u64 (msg.data + 8);
            scale = dc_get_u64 (msg.data + 16);
            want_grads = dc_get_u64 (msg.data + 24);
        }
        if (msg.len < DC_STEP_HDR || rows > j->to.batch_size || scale == 0 ||
            msg.len != DC_STEP_HDR + rows * (nin * 4 + tsz)) {
            free (msg.data);
            errprintf (errp, "worker: a malformed training step");
            goto done;
        }
        if (j->delay_ms > 0)
            dc_worker_sleep_ms (j->delay_ms);
        const float *x = (const float *)(msg.data + DC_STEP_HDR);
        const void *tg = msg.data + DC_STEP_HDR + rows * nin * 4;
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
        dc_put_u64 (out, attempt);
        dc_put_u64 (out + 8, status);
        memcpy (out + 16, &ls, sizeof (ls));
        if (want_grads && status == 0) {
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
    if (dc_worker_pipe_wanted (msg.data, msg.len)) { /* lib/run/stage.h */
        rc = dc_worker_pipe_serve (c, o, msg.data, msg.len, errp);
        goto out;
    }
    if (parse_job (msg.data, msg.len, &j, errp) < 0) {
        dc_worker_fail (c, errp);
        goto out;
    }
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
