/* map_rank.h - the rank side of `dcrun map`: CMD under `dcrun serve`
 *
 * After JOB "mode": "map" the rank reads the MAP message (lib/comm/wire.h),
 * makes a private folder (0700, under the worker's tmpdir, $TMPDIR or
 * /tmp) and, in persistent mode, starts CMD with pipes on its stdin and
 * stdout.  For each CHUNK it writes the rows as an .npy in that folder
 * and either sends CMD the line "IN OUT" and waits for its line "done"
 * (other stdout lines go on to the rank's stderr, where the hub tags
 * them), or, per chunk, runs CMD with {in} and {out} replaced and waits
 * for it to exit 0.  Then it reads OUT back and sends a RESULT with its
 * dtype, trailing shape and rows; an output that is missing, not an
 * .npy, or of another number of rows is a failed chunk (RESULT status 1
 * and the reason), which the hub retries elsewhere.  CMD dying with a
 * chunk in hand, or a chunk running past the chunk timeout, is an ERROR:
 * the rank leaves and its chunks go to others.  Chunk files are removed
 * as soon as they are read; the folder goes on DONE, on any failure and
 * on SIGTERM, SIGINT or SIGHUP (the job's stop), unless the process
 * handles those itself (then see dc_map_rank_cleanup).
 *
 * --io direct|auto (JOB "io"): a rank that reads back the hub's token and
 * sees the same input says READY "io": "direct"; then its CHUNKs carry no
 * rows (it copies them from the input into the chunk's .npy) and it
 * writes CMD's rows into the output's temporary file at their offset
 * once the hub's DATA told the output's place (before that, CMD's output
 * waits in the folder), answering with header-only RESULTs.
 *
 * CMD's environment: the rank's, DCRUN_MAP_ROWS, and per chunk
 * DCRUN_CHUNK, DCRUN_CHUNK_ROW0, DCRUN_CHUNK_ROWS (per-chunk mode).
 */
#ifndef DC_MAP_RANK_H
#define DC_MAP_RANK_H

#include "lib/comm/comm.h"
#include "lib/run/serve.h"
#include "lib/util/error.h"

/* Serve a map job after its JOB message: 0 after DONE, -1 with errp
 * (the hub has been told with an ERROR where it can be). */
int dc_worker_map_serve (struct dc_comm *c, const struct dc_worker_opts *o,
                         const struct dc_wire_io *io, dc_error_t *errp);

/* Kill this process's CMD and remove its chunk files and folder (async-
 * signal-safe): for a process whose own signal handling stops the job
 * (MPI rank 0, whose rank runs in a thread), before it leaves. */
void dc_map_rank_cleanup (void);

#endif
