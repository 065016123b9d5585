/* serve.c - what the rank-side servers share (serve.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/comm/comm.h"
#include "lib/run/serve.h"

int dc_worker_fail (struct dc_comm *c, dc_error_t *errp)
{
    dc_comm_send (c, DC_COMM_HUB, DC_MSG_ERROR, errp->text, strlen (errp->text),
                  NULL);
    return -1;
}

void dc_worker_sleep_ms (int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

void dc_serve_train_pack (struct dc_wire_train *w,
                          const struct dc_train_opts *to)
{
    memset (w, 0, sizeof (*w));
    snprintf (w->loss, sizeof (w->loss), "%s",
              to->loss == DC_LOSS_XENT ? "xent" : "mse");
    snprintf (w->optimizer, sizeof (w->optimizer), "%s",
              to->optim == DC_OPTIM_ADAM ? "adam" : "sgd");
    w->lr = to->lr;
    w->momentum = to->momentum;
    w->beta1 = to->beta1;
    w->beta2 = to->beta2;
    w->eps = to->eps;
    w->batch_size = to->batch_size;
    w->seed = to->seed;
}

void dc_serve_train_unpack (const struct dc_wire_train *w,
                            struct dc_train_opts *to)
{
    memset (to, 0, sizeof (*to));
    to->loss = !strcmp (w->loss, "xent") ? DC_LOSS_XENT : DC_LOSS_MSE;
    to->optim = !strcmp (w->optimizer, "adam") ? DC_OPTIM_ADAM : DC_OPTIM_SGD;
    to->lr = w->lr;
    to->momentum = w->momentum;
    to->beta1 = w->beta1;
    to->beta2 = w->beta2;
    to->eps = w->eps;
    to->batch_size = (size_t)w->batch_size;
    to->seed = w->seed;
}

static long env_long (const char *name, long dflt)
{
    const char *s = getenv (name);
    char *end;
    long v;

    if (!s || !*s)
        return dflt;
    errno = 0;
    v = strtol (s, &end, 10);
    return errno || *end || v < 0 ? dflt : v;
}

const char *dc_serve_gpus (const char *own, const char *vis, char *out,
                           size_t size)
{
    size_t n = 0;

    if (!own || !*own)
        return NULL;
    if (!vis)
        return own;
    for (const char *p = own; *p;) {
        size_t len = strcspn (p, ",");
        for (const char *q = vis; *q && len < 64;) {
            size_t vl = strcspn (q, ",");
            if (vl == len && !strncmp (q, p, len) && n + len + 2 < size) {
                n += (size_t)snprintf (out + n, size - n, "%s%.*s",
                                       n ? "," : "", (int)len, p);
                break;
            }
            q += vl + (q[vl] == ',');
        }
        p += len + (p[len] == ',');
    }
    return n > 0 ? out : NULL;
}

struct dc_comm *dc_serve_comm_create (int fd_out, long *rank, dc_error_t *errp)
{
    char buf[1024];
    const char *gpus =
        dc_serve_gpus (getenv ("DCRUN_GPUS"), getenv ("CUDA_VISIBLE_DEVICES"),
                       buf, sizeof (buf));

    if (gpus) /* before anything opens CUDA */
        setenv ("CUDA_VISIBLE_DEVICES", gpus, 1);
    *rank = env_long ("DCRUN_RANK", 0);
    return dc_comm_stream_rank_create (
        (int)*rank, (int)env_long ("DCRUN_SIZE", 1), 0, fd_out, errp);
}
