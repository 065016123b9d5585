/* serve.h - what every rank-side server shares: its options, how it finds
 * its compute back-end, and how it tells the hub that it fails.  The data
 * parallel rank is lib/run/rank.h, the pipeline stage lib/run/stage.h. */
#ifndef DC_SERVE_H
#define DC_SERVE_H

#include <stddef.h>

#include "gpu/compute.h"
#include "lib/comm/comm.h"
#include "lib/comm/wire.h"
#include "lib/model/model.h"
#include "lib/util/error.h"

/* How a worker finds its compute back-end (gpu/ is linked by the caller). */
typedef const struct dc_compute_ops *(*dc_compute_find_f) (const char *name,
                                                           dc_error_t *errp);

struct dc_worker_opts {
    dc_compute_find_f find;
    const char *tmpdir; /* for the model file; NULL: $TMPDIR or /tmp */
    double heartbeat;   /* seconds between heartbeats; 0: 1 */
};

/* Tell the hub why this rank stops (an ERROR message); returns -1. */
int dc_worker_fail (struct dc_comm *c, dc_error_t *errp);

/* Sleep ms milliseconds (the DCRUN_TEST_CHUNK_DELAY_MS test hook). */
void dc_worker_sleep_ms (int ms);

/* The rank's own GPUs as CUDA device 0 and on, whatever --gpu-bind gave:
 * the entries of vis (CUDA_VISIBLE_DEVICES) that own (DCRUN_GPUS) names,
 * in own's order, or own itself when vis is NULL (--gpu-bind none).
 * Entries are cut at commas; one of 64 bytes or more never matches, nor
 * one that would not fit in out (size bytes with its NUL).  Returns the
 * new CUDA_VISIBLE_DEVICES (own, or out), or NULL when it stays as it is
 * (no own, none of own's entries in vis). */
const char *dc_serve_gpus (const char *own, const char *vis, char *out,
                           size_t size);

/* The comm of `dcrun serve` (frames on fd 0 and fd_out): its rank and
 * size from DCRUN_RANK and DCRUN_SIZE (0 and 1 when unset or bad; *rank
 * set), after CUDA_VISIBLE_DEVICES is set by dc_serve_gpus from
 * DCRUN_GPUS.  Call it before anything opens CUDA.  NULL with errp on
 * failure. */
struct dc_comm *dc_serve_comm_create (int fd_out, long *rank, dc_error_t *errp);

/* Training options to and from the JOB message (lib/comm/wire.h). */
void dc_serve_train_pack (struct dc_wire_train *w,
                          const struct dc_train_opts *to);
void dc_serve_train_unpack (const struct dc_wire_train *w,
                            struct dc_train_opts *to);

#endif
