/* hostfile.h - the hostfile grammar of dcrun-hostfile(5)
 *
 *   # comment                      blank lines and comments are ignored
 *   node01 slots=4                 OpenMPI / DeepSpeed style, max_slots=M too
 *   node[02-04,07] slots=8 gpus=0-7
 *   alice@node05:2222 slots=2      user@host:port
 *   node06:4                       host:slots (Horovod, MPICH)
 *   localhost                      one slot
 *
 * host:N is the port when the entry has user@ or slots=, else the slots.
 * Errors read "FILE:LINE:COL: message".  Duplicate hosts (same name and port)
 * are an error naming both lines.  At most DC_HOSTS_MAX hosts; parsing and
 * duplicate checks take time linear in the number of hosts.
 */
#ifndef DC_HOSTFILE_H
#define DC_HOSTFILE_H

#include <stddef.h>

#include "lib/util/error.h"
#include "lib/hosts/hosts.h"

#define DC_HOSTFILE_MAX_BYTES (64 * 1024 * 1024)
#define DC_HOSTFILE_MAX_LINE 65536
/* gpus= lists are copied to every host of a range: at most this many
 * entries in all (64 MiB of ints) */
#define DC_HOSTFILE_MAX_GPU_ENTRIES (16 * 1024 * 1024)

struct dc_hosts *dc_hostfile_load (const char *path, dc_error_t *errp);

/* Parse text of len bytes; name is used in messages. */
struct dc_hosts *dc_hostfile_parse (const char *text, size_t len,
                                    const char *name, dc_error_t *errp);

#endif
