/* dist.h - infer and train across the ranks of a host list */
#ifndef DC_DIST_H
#define DC_DIST_H

#include <stdbool.h>

#include "cli.h"
#include "lib/coordinator.h"

struct cli_dist_opts {
    double heartbeat_timeout; /* seconds without a frame: rank lost; 0: 30 */
    const char *report;       /* --report FILE, NULL: none */
    bool progress;            /* --progress */
};

/* Run a distributed inference: the coordinator here, one `dcrun serve`
 * per rank started by the job's launcher.  Returns the exit status. */
int cli_dist_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *d);

#endif
