/* serve.c - what the rank-side servers share (serve.h) */
#include <errno.h>
#include <stdio.h>
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
