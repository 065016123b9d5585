/* stage.h - a rank that holds one stage of a pipeline layout (the rank
 * side of lib/run/pipeline.h, which describes the protocol) */
#ifndef DC_STAGE_H
#define DC_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/comm/comm.h"
#include "lib/comm/wire.h"
#include "lib/run/serve.h"
#include "lib/util/error.h"

/* Serve a pipeline stage: job is the JOB already received and decoded
 * (mode DC_WIRE_PIPELINE); the MODEL (the stage's tensors) comes next.
 * As dc_worker_serve. */
int dc_worker_pipe_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                          const struct dc_wire_job *job, dc_error_t *errp);

#endif
