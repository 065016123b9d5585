/* topo_text.h - a host's topology as `dcrun probe` prints it
 *
 * The table: one row per GPU (model, memory, PCI bus id, NUMA node, the
 * compute capability and multiprocessors when the CUDA runtime saw one,
 * local CPUs) or "HOST: no GPU", a line of packages, NUMA nodes, cores,
 * PUs and memory, one line per NUMA node, CUDA_VISIBLE_DEVICES when set.
 *
 * A listing of several hosts (`dcrun probe -f/-H`): the tables one after the
 * other, a blank line between them, "HOST: not probed: REASON" for a host
 * without a topology; as JSON, {"hosts": [...]}: each host the object of
 * dc_topo_to_json named as listed, or {"host": NAME, "error": REASON} with
 * the reason's first line.
 */
#ifndef DC_TOPO_TEXT_H
#define DC_TOPO_TEXT_H

#include <stddef.h>

#include "lib/hosts/topo.h"

/* One host of a listing (all borrowed). */
struct dc_topo_entry {
    const char *host;
    const struct dc_topo *topo; /* NULL: not probed */
    const char *reason;         /* why not (NULL: "") */
};

/* The table of t (caller frees), named host (NULL: t->host).  NULL with
 * errno (ENOMEM; EINVAL for a NULL t). */
char *dc_topo_to_text (const struct dc_topo *t, const char *host);

/* The listing of n hosts as text or as JSON (caller frees); NULL with
 * errno (ENOMEM; EINVAL for a NULL e with n > 0 or an entry without a
 * host). */
char *dc_topo_list_text (const struct dc_topo_entry *e, size_t n);
char *dc_topo_list_json (const struct dc_topo_entry *e, size_t n);

#endif
