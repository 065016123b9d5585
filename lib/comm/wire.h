/* wire.h - the payloads of the messages between the hub and the ranks
 *
 * Frames (type, source, destination, length) are lib/comm/proto.h; this
 * header is what goes inside them.  Payloads are little-endian, as on x86
 * and POWER LE.
 *
 * Data parallel (lib/run/rank.c, lib/run/coordinator.c):
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
 *
 * Pipeline layouts (lib/run/stage.c, lib/run/pipeline.c): see
 * lib/run/pipeline.h.
 */
#ifndef DC_WIRE_H
#define DC_WIRE_H

#include <stdint.h>

#define DC_CHUNK_HDR 24  /* id, row0, rows */
#define DC_RESULT_HDR 32 /* id, row0, rows, seconds */
#define DC_STEP_HDR 32   /* attempt, rows, scale rows, send gradient back */
#define DC_TRAIN_RESULT_HDR 24 /* attempt, status (1: redo), f64 loss sum */
#define DC_PIPE_HDR 32         /* id, row0, rows, seconds */
#define DC_PIPE_STEP_HDR 32    /* attempt, rows, batch rows, micro rows */

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
