/* worker.h - a rank of `dcrun infer` / `dcrun train`: take work from the
 * coordinator over comm, compute it on the rank's back-end, send it back
 *
 * Messages (payloads little-endian, as on x86 and POWER LE):
 *   JOB    hub -> rank  JSON {"mode": "infer"|"train"|"echo", "device",
 *                       "dtype", "threads", "activation", "chunk_rows",
 *                       "delay_ms",
 *                       train: "loss", "optimizer", "lr", ...}
 *   MODEL  hub -> rank  the model file's bytes (safetensors)
 *   READY  rank -> hub  JSON {"device": "...", "inputs": N, "outputs": M}
 *   CHUNK  hub -> rank  u64 id, u64 row0, u64 rows, then rows x inputs f32
 *   RESULT rank -> hub  u64 id, u64 row0, u64 rows, f64 seconds, then
 *                       rows x outputs f32
 *   ERROR  rank -> hub  text of a fatal error; the rank then exits
 *   DONE   hub -> rank  no more work: exit 0
 *
 * Training (JOB "mode": "train", its options under "train"; with
 * "resume" a DATA message with the checkpoint follows MODEL):
 *   CHUNK  hub -> rank  a step: u64 attempt, u64 rows, u64 rows of the
 *                       global batch, u64 1 when the summed gradient is to
 *                       come back; rows x inputs f32; targets (f32 rows or
 *                       i64 labels).  The rank computes its gradient, sums
 *                       it with every rank (comm allreduce) and applies
 *                       the update.
 *   RESULT rank -> hub  u64 attempt, u64 status (0 done, 1 abandoned: a
 *                       rank was lost, nothing applied, redo), f64 loss
 *                       sum, then the summed gradient when asked
 *   HEARTBEAT rank -> hub, every second, from a thread of its own
 *
 * Echo (JOB "mode": "echo", `dcrun bench comm`): no MODEL; the rank sends
 * READY, then each DATA frame back to the hub as it came, until DONE.
 */
#ifndef DC_WORKER_H
#define DC_WORKER_H

#include <stdint.h>

#include "gpu/compute.h"
#include "lib/comm.h"
#include "lib/error.h"

#define DC_CHUNK_HDR 24  /* id, row0, rows */
#define DC_RESULT_HDR 32 /* id, row0, rows, seconds */
#define DC_STEP_HDR 32   /* attempt, rows, scale rows, send gradient back */
#define DC_TRAIN_RESULT_HDR 24 /* attempt, status (1: redo), f64 loss sum */

/* How a worker finds its compute back-end (gpu/ is linked by the caller). */
typedef const struct dc_compute_ops *(*dc_compute_find_f) (const char *name,
                                                          dc_error_t *errp);

struct dc_worker_opts {
    dc_compute_find_f find;
    const char *tmpdir;   /* for the model file; NULL: $TMPDIR or /tmp */
    double heartbeat;     /* seconds between heartbeats; 0: 1 */
};

/* Serve one job on c (a rank endpoint) until DONE.  Returns 0; -1 with
 * errp when the job failed here (the hub was told with an ERROR) or the
 * coordinator went away. */
int dc_worker_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                     dc_error_t *errp);

/* Tell the hub why this rank stops (an ERROR message); returns -1. */
int dc_worker_fail (struct dc_comm *c, dc_error_t *errp);

/* Sleep ms milliseconds (the DCRUN_TEST_CHUNK_DELAY_MS test hook). */
void dc_worker_sleep_ms (int ms);

/* Little-endian helpers shared with the coordinator. */
static inline void dc_put_u64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t dc_get_u64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
