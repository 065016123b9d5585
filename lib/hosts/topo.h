/* topo.h - what one host has: packages, NUMA nodes, cores, GPUs
 *
 * A plain description that gpu/probe.c fills from hwloc (and the CUDA
 * runtime) and that plan.c reads for placement; lib/ never sees hwloc
 * topologies or CUDA headers.  CPU sets are hwloc list strings ("0-7,16-23",
 * OS indices of PUs).
 *
 * The JSON form is the host object of `dcrun probe --json`:
 *
 *   {"host": "...", "packages": N, "numa_nodes": N, "cores": N, "pus": N,
 *    "memory_bytes": N,
 *    "gpus": [{"index": 0, "model": "...", "memory_bytes": N|null,
 *              "pci_bus_id": "0000:34:00.0", "numa_node": 0|null,
 *              "cpus": "0-23"|null}]}
 *
 * GPUs the CUDA runtime saw also carry "cuda_index", "compute_capability"
 * ("9.0") and "multiprocessors"; "cuda_visible_devices" is present when that
 * variable was set.  With DC_TOPO_JSON_FULL, "numa" (per node: os_index,
 * memory_bytes, cpus) and "core_cpus" (the PUs of each core) are added: that
 * is what a remote probe ships so that the head node can place ranks.
 */
#ifndef DC_TOPO_H
#define DC_TOPO_H

#include <stdbool.h>

#include "lib/util/error.h"

#define DC_TOPO_MAX_GPUS 1024
#define DC_TOPO_MAX_CORES 65536
#define DC_TOPO_MAX_NUMA 4096
#define DC_TOPO_MAX_JSON (16 * 1024 * 1024)

struct dc_topo_gpu {
    int index;              /* 0.. in the order the host numbers them */
    char *model;            /* never NULL */
    long long memory_bytes; /* -1 when unknown */
    char pci_bus_id[32];    /* "0000:34:00.0", "" when unknown */
    int numa_node;          /* OS index, -1 when unknown or several */
    char *cpus;             /* PUs local to the GPU, NULL when unknown */
    /* from the CUDA runtime, when it saw this GPU */
    int cuda_index;         /* -1 when the runtime did not report it */
    int cc_major, cc_minor; /* compute capability */
    int multiprocessors;
};

struct dc_topo_numa {
    int os_index;
    long long memory_bytes;
    char *cpus;
};

struct dc_topo {
    char *host;
    int packages;
    int numa_nodes;
    int cores;
    int pus;
    long long memory_bytes;
    char *cpus;                /* every PU of the host */
    struct dc_topo_numa *numa; /* [numa_nodes] (may be NULL: not shipped) */
    char **core_cpus;          /* [cores] PUs of each core (may be NULL) */
    struct dc_topo_gpu *gpus;  /* [ngpus] */
    int ngpus;
    char *cuda_visible_devices; /* the variable's value, NULL when unset */
    /* PUs of each package [packages], NULL when not known (not shipped) */
    char **package_cpus;
};

struct dc_topo *dc_topo_create (void);
void dc_topo_destroy (struct dc_topo *topo); /* accepts NULL */

/* Append a GPU (strings copied); returns its slot or NULL. */
struct dc_topo_gpu *dc_topo_add_gpu (struct dc_topo *topo,
                                     const struct dc_topo_gpu *gpu);

enum {
    DC_TOPO_JSON_FULL = 1, /* add "numa" and "core_cpus" */
};

/* JSON text of the host object (caller frees), NULL on failure. */
char *dc_topo_to_json (const struct dc_topo *topo, int flags);

/* Parse a host object as dc_topo_to_json writes it (len bytes of text, at
 * most DC_TOPO_MAX_JSON); name is used in messages.  NULL with errp filled
 * when the text is not such an object. */
struct dc_topo *dc_topo_from_json (const char *text, size_t len,
                                   const char *name, dc_error_t *errp);

/* Index of the GPU with this index field, or -1. */
int dc_topo_find_gpu (const struct dc_topo *topo, int index);

#endif
