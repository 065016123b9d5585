/* remote_probe.h - run `dcrun --version` and `dcrun probe --json` on every host
 * at once through the ssh launcher (dcrun check, dcrun probe -f,
 * the slots of hosts without slots=)
 *
 * One thread per host, each with its own ssh launcher (one rank: the host),
 * so that one bad host fails alone; connect + login are bounded by the
 * connect timeout, the remote commands by the connect timeout plus
 * DC_REMOTE_RUN_S.  Hosts that are this host are probed in-process when
 * local_inproc is true.
 */
#ifndef DC_RUN_REMOTE_PROBE_H
#define DC_RUN_REMOTE_PROBE_H

#include <stdbool.h>

#include "lib/hosts/hosts.h"
#include "lib/launch/launch.h"
#include "lib/hosts/topo.h"

#define DC_REMOTE_RUN_S 20

enum dc_remote_stage {
    DC_REMOTE_OK = 0,
    DC_REMOTE_CONNECT,  /* unreachable, login or host key refused */
    DC_REMOTE_NO_DCRUN, /* dcrun not found there */
    DC_REMOTE_FAILED,   /* dcrun there failed, or said something unreadable */
    DC_REMOTE_TIMEOUT,
};

struct dc_remote_result {
    const struct dc_host *host; /* borrowed */
    enum dc_remote_stage stage;
    char reason[600];
    char version[64];     /* "0.1.0", "" when unknown */
    struct dc_topo *topo; /* NULL unless stage is DC_REMOTE_OK */
    bool local;           /* probed in-process */
};

/* Fill res[hosts->count].  opts: the ssh options (callbacks are set here).
 * Never fails as a whole: each row says what happened. */
void dc_remote_probe_all (const struct dc_hosts *hosts,
                          const struct dc_launch_opts *opts, bool local_inproc,
                          struct dc_remote_result *res);
/* The same with env ("NAME=VALUE", NULL-terminated; NULL: none) in the
 * environment of the remote `dcrun probe` (-x DCRUN_HWLOC_XMLFILE=...). */
void dc_remote_probe_all_env (const struct dc_hosts *hosts,
                              const struct dc_launch_opts *opts,
                              bool local_inproc, char *const *env,
                              struct dc_remote_result *res);
void dc_remote_results_free (struct dc_remote_result *res, size_t n);

#endif
