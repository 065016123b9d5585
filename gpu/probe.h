/* probe.h - what this host (or a saved topology) has, from hwloc and CUDA
 *
 * The result is a struct dc_topo (lib/hosts/topo.h): packages, NUMA nodes with
 * memory, cores with their PUs, and the GPUs with their model, memory, PCI
 * bus id, NUMA node and local CPUs.  Its JSON form, the host object of
 * `dcrun probe --json`, is written and read by dc_topo_to_json() and
 * dc_topo_from_json(): a remote probe runs dc_probe_host() on the remote
 * host and ships dc_topo_to_json (topo, DC_TOPO_JSON_FULL).
 *
 * GPUs: hwloc OS devices of type CUDA, NVML or OpenCL, counted once per PCI
 * device; where there are none (Debian's hwloc has no CUDA/NVML plugin),
 * NVIDIA PCI devices of class 0x0300 (VGA) or 0x0302 (3D), NVSwitches
 * (0x0680) and bridges excluded.  They are numbered in PCI bus order.  On
 * this host, with the CUDA back-end built in and a driver, the CUDA
 * runtime's devices are the list instead (CUDA order, so index is what
 * CUDA_VISIBLE_DEVICES means), with the locality of the PCI device of the
 * same bus id.  Without a driver (CUDA errors 34, 35, 100) there are no
 * CUDA devices: the probe says why at DC_LOG_INFO and goes on with hwloc.
 *
 * Saved topologies are validated before hwloc sees them (hwloc 2.9 crashes
 * on objects missing complete_cpuset or complete_nodeset): a broken file
 * is an error with the file's name, line and column, never a crash.
 */
#ifndef DC_PROBE_H
#define DC_PROBE_H

#include <stddef.h>

#include "lib/util/error.h"
#include "lib/hosts/topo.h"

#define DC_PROBE_MAX_XML (64 * 1024 * 1024)

/* The environment variable naming a saved topology for dc_probe_host(). */
#define DC_PROBE_XML_ENV "DCRUN_HWLOC_XMLFILE"

/* Probe this host, or the saved hwloc topology xmlfile when not NULL.
 * With xmlfile NULL, $DCRUN_HWLOC_XMLFILE (then hwloc's own
 * $HWLOC_XMLFILE) names a saved topology when set and not empty.  Returns
 * a new topology (dc_topo_destroy), or NULL with errp filled. */
struct dc_topo *dc_probe_host (const char *xmlfile, dc_error_t *errp);

/* Probe a saved topology held in memory (len bytes, need not be
 * NUL-terminated); name is used in messages and as the host name when the
 * topology has no HostName. */
struct dc_topo *dc_probe_xml_buffer (const char *xml, size_t len,
                                     const char *name, dc_error_t *errp);

/* Check that xml is a topology hwloc can load without crashing: well-formed
 * XML, a <topology> root of version 1.x or 2.x, a Machine object, and
 * cpuset/complete_cpuset/nodeset/complete_nodeset bitmaps on every object
 * that is not an I/O or Misc object.  0, or -1 with
 * "NAME:LINE:COL: message" in errp. */
int dc_probe_validate_xml (const char *xml, size_t len, const char *name,
                           dc_error_t *errp);

/* Number of devices the CUDA runtime sees (0 when built without CUDA or
 * without a driver; errp then says why).  Never fails. */
int dc_probe_cuda_count (dc_error_t *errp);

/* "hwloc X.Y.Z" of the library in use (static string). */
const char *dc_probe_hwloc_version (void);

#endif
