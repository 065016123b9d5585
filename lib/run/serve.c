/* serve.c - what the rank-side servers share (serve.h) */
#include <errno.h>
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
