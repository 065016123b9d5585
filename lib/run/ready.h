/* ready.h - what a rank tells the hub in READY (lib/comm/wire.h): shared
 * by the ranks of infer and train (rank.c) and of map (map_rank.c).
 */
#ifndef DC_READY_H
#define DC_READY_H

#include <stddef.h>

#include "lib/comm/comm.h"
#include "lib/comm/wire.h"
#include "lib/util/error.h"

/* Encode rd and send it to the hub as READY.  0; -1 it could not be
 * made (errp: out of memory); -2 it could not be sent (errp). */
int dc_ready_send (struct dc_comm *c, const struct dc_wire_ready *rd,
                   dc_error_t *errp);

/* A short reason for READY's io_why into why (len bytes): cut to fit
 * without a fuss. */
void dc_ready_why (char *why, size_t len, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* --io direct|auto: read back the token the hub wrote next to the output
 * (io->probe): 0 this rank sees the output's folder; -1 it does not, why
 * (len bytes, for READY's io_why) says so. */
int dc_ready_probe (const struct dc_wire_io *io, char *why, size_t len);

#endif
