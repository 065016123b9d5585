/* stage.h - a rank that holds one stage of a pipeline layout (the rank
 * side of lib/run/pipeline.h, which describes the protocol) */
#ifndef DC_STAGE_H
#define DC_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/comm/comm.h"
#include "lib/run/serve.h"
#include "lib/util/error.h"

/* True when the JOB payload asks for a pipeline stage. */
int dc_worker_pipe_wanted (const uint8_t *job, size_t len);

/* Serve a pipeline stage: job is the JOB payload already received; the
 * MODEL (the stage's tensors) comes next.  As dc_worker_serve. */
int dc_worker_pipe_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                          const uint8_t *job, size_t len, dc_error_t *errp);

#endif
