/* comm_loop.h - comm "loop": the hub and every rank in one process
 *
 * An in-process transport behind lib/comm/comm.h (as flux-core's
 * connector_loop.c is for its connectors), for unit tests of the hub, the
 * ranks and the pipeline stages without sshd, pipes or MPI.  Each endpoint
 * is used by one thread; endpoints of one loop may be used concurrently.
 *
 * Lost ranks behave as over the stream transport: a rank whose endpoint is
 * destroyed (its thread ended) or that the hub drops shows up at the hub
 * as one DC_COMM_LOST message, after every message it sent before; sends
 * to it are dropped; its own send and recv fail (EPIPE).  When the hub's
 * endpoint is destroyed, the ranks' recv fails (ECONNRESET) once their
 * queue is empty.  Allreduce sums the live ranks' buffers in rank order
 * and fails with ECANCELED when a rank is lost during it.
 */
#ifndef DC_COMM_LOOP_H
#define DC_COMM_LOOP_H

#include "lib/comm/comm.h"
#include "lib/util/error.h"

/* The hub endpoint of a new loop of size ranks (caller's: destroy with
 * dc_comm_destroy; the loop is freed with its last endpoint). */
struct dc_comm *dc_comm_loop_create (int size, dc_error_t *errp);

/* The endpoint of rank (once per rank; caller's, destroy when the rank
 * "exits"). */
struct dc_comm *dc_comm_loop_rank (struct dc_comm *hub, int rank,
                                   dc_error_t *errp);

/* Tests: the rank's "process" died (why, e.g. "killed by signal 9"): it is
 * lost as if its host went away. */
int dc_comm_loop_kill (struct dc_comm *hub, int rank, const char *why);

/* Tests: how many ranks wait in an allreduce now. */
int dc_comm_loop_reducing (struct dc_comm *hub);

#endif
