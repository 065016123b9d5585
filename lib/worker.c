/* worker.c - the rank side of the distributed executor */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/model.h"
#include "lib/worker.h"

struct job {
    char mode[16];
    char device[16];
    char dtype[8];
    char activation[16];
    int threads;
    int delay_ms;
    size_t chunk_rows;
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
        if (dc_comm_send (b->c, DC_COMM_HUB, DC_MSG_HEARTBEAT, NULL, 0, NULL)
            < 0) {
            pthread_mutex_lock (&b->mu);
            break;
        }
        pthread_mutex_lock (&b->mu);
    }
    pthread_mutex_unlock (&b->mu);
    return NULL;
}

/* Tell the hub why we stop; returns -1. */
static int fail (struct dc_comm *c, dc_error_t *errp)
{
    dc_comm_send (c, DC_COMM_HUB, DC_MSG_ERROR, errp->text,
                  strlen (errp->text), NULL);
    return -1;
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
#define STR(name, dst)                                                        \
    if ((v = cJSON_GetObjectItemCaseSensitive (o, name))                      \
        && cJSON_IsString (v))                                                \
        snprintf (dst, sizeof (dst), "%s", v->valuestring);
    STR ("mode", j->mode);
    STR ("device", j->device);
    STR ("dtype", j->dtype);
    STR ("activation", j->activation);
#undef STR
    if ((v = cJSON_GetObjectItemCaseSensitive (o, "threads"))
        && cJSON_IsNumber (v) && v->valuedouble >= 0 && v->valuedouble < 4096)
        j->threads = (int)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive (o, "delay_ms"))
        && cJSON_IsNumber (v) && v->valuedouble >= 0
        && v->valuedouble < 3600e3)
        j->delay_ms = (int)v->valuedouble;
    cJSON_Delete (o);
    if (strcmp (j->mode, "infer") != 0)
        return errprintf (errp, "worker: unknown job mode '%s'", j->mode);
    if (!j->device[0])
        snprintf (j->device, sizeof (j->device), "auto");
    if (!j->dtype[0])
        snprintf (j->dtype, sizeof (j->dtype), "f32");
    return 0;
}

/* Write the model bytes to a private file and load it. */
static struct dc_model *load_model (const uint8_t *data, size_t len,
                                    const struct job *j,
                                    const struct dc_worker_opts *o,
                                    dc_error_t *errp)
{
    const char *dir = o->tmpdir ? o->tmpdir : getenv ("TMPDIR");
    char path[4096];
    struct dc_model *m;
    int fd;

    snprintf (path, sizeof (path), "%s/dcrun-model-XXXXXX.safetensors",
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
    m = dc_model_load (path, j->activation[0] ? j->activation : NULL, errp);
    unlink (path);
    return m;
}

static void sleep_ms (int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
        return fail (c, errp);
    }
    if (!(ops = worker_find (j->device, errp))
        || !(dev = ops->create (&co, errp)))
        return fail (c, errp);
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
        if (rows == 0 || rows > (1u << 26)
            || msg.len != DC_CHUNK_HDR + rows * (uint64_t)nin * 4) {
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
            sleep_ms (j->delay_ms);
        double t0 = now_s ();
        /* payload offsets are multiples of 8: aligned for floats */
        int r = ops->mlp_infer (dev, net, (const float *)(msg.data + DC_CHUNK_HDR),
                                (size_t)rows, (float *)(out + DC_RESULT_HDR),
                                errp);
        double secs = now_s () - t0;
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
        fail (c, errp);
quiet:
    if (net)
        ops->mlp_unload (dev, net);
    if (ops && dev)
        ops->destroy (dev);
    free (lv);
    free (out);
    return rc;
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
        fail (c, errp);
        goto out;
    }
    if (parse_job (msg.data, msg.len, &j, errp) < 0) {
        fail (c, errp);
        goto out;
    }
    free (msg.data);
    msg.data = NULL;
    if (dc_comm_recv (c, &msg, -1, errp) <= 0)
        goto out;
    if (msg.type != DC_MSG_MODEL) {
        errprintf (errp, "worker: expected the model, got a %s message",
                   dc_proto_type_name (msg.type));
        fail (c, errp);
        goto out;
    }
    if (!(m = load_model (msg.data, msg.len, &j, o, errp))) {
        fail (c, errp);
        goto out;
    }
    free (msg.data);
    msg.data = NULL;
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
