/* resolve.h - the host list of a command (DESIGN.md section 2), first that
 * applies: -f, -H, $DCRUN_HOSTFILE, the Slurm allocation (SLURM_JOB_NODELIST
 * and SLURM_TASKS_PER_NODE), $PBS_NODEFILE, else this host with one slot
 * per GPU (one when it has none). */
#ifndef DC_RESOLVE_H
#define DC_RESOLVE_H

#include "lib/hosts/hosts.h"
#include "lib/util/error.h"

typedef const char *(*dc_getenv_f) (const char *name);

struct dc_resolve_opts {
    const char *hostfile; /* -f, NULL when not given */
    const char *hosts;    /* -H, NULL when not given */
    int local_gpus;       /* GPUs of this host for the fallback (0: none) */
    dc_getenv_f getenv;   /* NULL: getenv(3) */
};

struct dc_hosts *dc_hosts_resolve (const struct dc_resolve_opts *o,
                                   dc_error_t *errp);

#endif
