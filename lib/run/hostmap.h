/* hostmap.h - a command's host list, and the rank map `dcrun hosts` prints
 *
 * dc_hostmap_hosts: the host list as DESIGN.md section 2 resolves it
 * (lib/hosts/resolve.h: -f, -H, the Slurm allocation, $PBS_NODEFILE, this
 * host), less the hosts that --exclude names.
 *
 * dc_hostmap_create: the rank map of `dcrun hosts`: that list; when it is
 * this host (no -f, -H or allocation), one slot per GPU of its topology
 * (the one given, else this host probed: a failed probe is only noted with
 * dc_info, and the host keeps one slot); the plan (lib/hosts/plan.h); and,
 * with a topology, every host's ranks placed on it (GPUs, CPU sets).
 */
#ifndef DC_RUN_HOSTMAP_H
#define DC_RUN_HOSTMAP_H

#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/resolve.h"
#include "lib/hosts/topo.h"
#include "lib/util/error.h"

/* The list, or NULL with *statusp (DC_STATUS_INPUT: the list is bad;
 * DC_STATUS_USAGE: --exclude is) and errp. */
struct dc_hosts *dc_hostmap_hosts (const struct dc_resolve_opts *ro,
                                   const char *exclude, int *statusp,
                                   dc_error_t *errp);

struct dc_hostmap_opts {
    struct dc_resolve_opts resolve; /* -f, -H (local_gpus is set here) */
    const char *exclude;            /* --exclude, NULL: none */
    struct dc_plan_opts plan;       /* -n, --map-by, --oversubscribe */
    const struct dc_topo *topo;     /* every host's; NULL: probe this host
                                       when the list is this host */
    const char *subject; /* prefixes the plan's errors (NULL: "hosts") */
};

struct dc_hostmap {
    struct dc_hosts *hosts;
    struct dc_plan *plan;   /* borrows hosts */
    struct dc_topo *probed; /* this host's topology, when probed */
};

/* Fill m: DC_STATUS_OK, or DC_STATUS_INPUT / DC_STATUS_USAGE with errp
 * (m then empty).  m is the caller's: dc_hostmap_destroy. */
int dc_hostmap_create (struct dc_hostmap *m, const struct dc_hostmap_opts *o,
                       dc_error_t *errp);

/* Free what m holds and empty it (accepts NULL). */
void dc_hostmap_destroy (struct dc_hostmap *m);

#endif
