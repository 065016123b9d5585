/* rank.h - a rank of `dcrun infer` / `dcrun train` (what `dcrun serve`
 * runs): take work from the hub over comm, compute it on the rank's
 * back-end, send it back.  The messages are in lib/comm/wire.h; a JOB
 * that asks for a pipeline stage is served by lib/run/stage.h.
 */
#ifndef DC_RANK_H
#define DC_RANK_H

#include "lib/comm/comm.h"
#include "lib/comm/wire.h"
#include "lib/run/serve.h"
#include "lib/util/error.h"

/* Serve one job on c (a rank endpoint) until DONE.  Returns 0; -1 with
 * errp when the job failed here (the hub was told with an ERROR) or the
 * coordinator went away. */
int dc_worker_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                     dc_error_t *errp);

#endif
