/* plan.h - the rank map: which rank runs where, with which GPUs and cores
 *
 * Ranks fill the slots of each host in turn (map-by slot, the default) or
 * go round-robin across hosts (map-by node).  More ranks than slots is an
 * error unless oversubscribe; max_slots= is a hard limit even then.
 */
#ifndef DC_PLAN_H
#define DC_PLAN_H

#include <stdbool.h>

#include "lib/util/error.h"
#include "lib/hosts/hosts.h"

enum dc_map_by {
    DC_MAP_BY_SLOT = 0,
    DC_MAP_BY_NODE,
};

/* --map-by ppr:N:package|numa: N ranks per package (NUMA node) of each
 * host; the host's slots are N times its packages (NUMA nodes), set by the
 * caller from the topology, and ranks fill them in order (local rank l on
 * object l / N). */
enum dc_ppr_obj {
    DC_PPR_NONE = 0,
    DC_PPR_PACKAGE,
    DC_PPR_NUMA,
};

struct dc_plan_opts {
    long np; /* ranks; 0 = every slot */
    enum dc_map_by map_by;
    bool oversubscribe;
    int gpus_per_rank; /* GPUs each rank gets; 0 = GPUs / slots, at least 1 */
    int ppr_n;         /* --map-by ppr:N:OBJ: N, 0 when not ppr */
    enum dc_ppr_obj ppr_obj;
};

/* Parse --map-by slot|node|ppr:N:package|ppr:N:numa into o.  0, or -1
 * with errp filled. */
int dc_plan_parse_map_by (const char *s, struct dc_plan_opts *o,
                          dc_error_t *errp);

/* Objects of the ppr kind on topo (packages or NUMA nodes), at least 1. */
struct dc_topo;
int dc_plan_ppr_objects (const struct dc_topo *topo, enum dc_ppr_obj obj);

struct dc_rank {
    int rank;
    size_t host;    /* index into the host list */
    int local_rank; /* among the ranks of its host */
    int local_size;
    int node_rank; /* index of its host among the hosts with ranks */
    int *gpus;     /* GPU indices on its host (may be empty) */
    int ngpus;
    char *cpus; /* CPU list such as "0-11", NULL when unknown */
};

struct dc_plan {
    int size;
    int nnodes;        /* hosts with at least one rank */
    int gpus_per_rank; /* from the options, 0 = GPUs / slots */
    int ppr_n;         /* from the options */
    enum dc_ppr_obj ppr_obj;
    struct dc_rank *ranks;        /* [size], ordered by rank */
    const struct dc_hosts *hosts; /* borrowed: outlive the plan */
};

/* Build the rank map.  hosts is borrowed for the life of the plan. */
struct dc_plan *dc_plan_create (const struct dc_hosts *hosts,
                                const struct dc_plan_opts *o, dc_error_t *errp);
void dc_plan_destroy (struct dc_plan *plan); /* accepts NULL */

/* Host name of rank r (borrowed). */
const char *dc_plan_host (const struct dc_plan *plan, int r);

/* Give the ranks of host h GPUs from a GPU count found by probing (used
 * when the host has no gpus= of its own).  Each rank gets the GPUs of its
 * slot: gpus_per_rank of them when the options gave it (local rank l gets
 * GPUs l*N .. l*N+N-1, mod ngpus), else ngpus / slots of them when there
 * are more GPUs than slots, else GPU local_rank mod ngpus. */
int dc_plan_set_host_gpus (struct dc_plan *plan, size_t h, int ngpus,
                           dc_error_t *errp);

/* Place the ranks of host h on its probed topology: GPUs from topo as
 * dc_plan_set_host_gpus() gives them (the hostfile's gpus= wins, and must
 * name GPUs topo has), and a CPU set for every rank: the cores local to its
 * GPU(s), divided without overlap among the ranks whose GPUs share that
 * locality (NUMA node or package), a rank taking whole cores (all their
 * PUs).  Ranks without a GPU share the host's cores the same way.  More
 * ranks than cores: ranks share cores round-robin.  topo is only read. */
struct dc_topo;
int dc_plan_place (struct dc_plan *plan, size_t h, const struct dc_topo *topo,
                   dc_error_t *errp);

/* The placement of one host's ranks as that host's agent computes it
 * (`dcrun worker --place`): local_size ranks on one host of `slots` slots
 * (0 = local_size) whose gpus= list is host_gpus (NULL = the topology's
 * GPUs), with o's gpus_per_rank and ppr (o may be NULL), placed on topo with
 * dc_plan_place() exactly as the head places the ranks of its own host, so the
 * ranks of a host never overlap.  On success *cpus and *gpus (a comma-separated
 * GPU list, "" for none) are new strings for local rank local_rank; *cpus is
 * NULL when the topology gave no CPU set.  0, or -1 with errp filled. */
int dc_plan_place_local (const struct dc_topo *topo, const char *hostname,
                         int local_rank, int local_size, int slots,
                         const int *host_gpus, int nhost_gpus,
                         const struct dc_plan_opts *o, char **cpus, char **gpus,
                         dc_error_t *errp);

#endif
