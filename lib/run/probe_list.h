/* probe_list.h - what `dcrun probe -f/-H` and `dcrun check` list: every
 * host probed at once (lib/run/remote_probe.h).  probe: one table or one
 * {"hosts": [...]} with an entry per host, {"host": NAME, "error": REASON}
 * for those that could not be probed (lib/hosts/topo_text.h).  check: each
 * host judged (lib/run/check.h), one row per host, OK or the reason. */
#ifndef DC_RUN_PROBE_LIST_H
#define DC_RUN_PROBE_LIST_H

#include <stdbool.h>

#include "lib/hosts/hosts.h"
#include "lib/launch/launch.h"

/* Probe hosts (those that are this host in-process when local, the others
 * through the ssh launcher with lo) and list them as JSON or text.  Caller
 * frees; NULL when out of memory.  *bad: the hosts not probed. */
char *dc_probe_list (const struct dc_hosts *hosts,
                     const struct dc_launch_opts *lo, bool local, bool json,
                     int *bad);

/* Probe hosts (this host in-process as dc_check_probe_here says for
 * launcher, the others through the ssh launcher with lo), judge each
 * against version, list them as JSON or text.  Caller frees; NULL when out
 * of memory.  *bad: the hosts not ready. */
char *dc_check_list (const struct dc_hosts *hosts,
                     const struct dc_launch_opts *lo, const char *launcher,
                     const char *version, bool json, int *bad);

#endif
