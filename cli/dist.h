/* dist.h - infer and train across the ranks of a host list
 *
 * The coordinator runs in this process; the job's launcher starts one
 * `dcrun serve` per rank and comm "stream" runs over its channels with
 * this process as the hub.  Signals arrive on the launcher's self-pipe:
 * Ctrl-C stops every rank (SIGTERM, then SIGKILL after the grace).
 */
#ifndef DC_DIST_H
#define DC_DIST_H

#include <stdbool.h>

#include "cli.h"
#include "compute_cli.h"
#include "job.h"
#include "lib/comm.h"
#include "lib/coordinator.h"

struct cli_ranks {
    struct cli *cli;
    struct cli_job job;
    const char **hosts;          /* host of each rank */
    struct dc_comm *hub;
    struct dc_launch *l;
    struct dc_launch_rank *lr;
    int sfd;                     /* signal pipe, -1 */
    int interrupted;             /* signal number */
    struct cli_progress prog;
    char **line;                 /* ranks' stderr, cut into lines */
    size_t *linelen;
};

/* Host list, rank map, launcher: EXIT_OK or an exit status (printed). */
int cli_ranks_init (struct cli *cli, struct cli_ranks *rk);

/* Start `dcrun serve` on every rank.  EXIT_OK, or an exit status. */
int cli_ranks_launch (struct cli_ranks *rk, double heartbeat_timeout);

/* For the coordinators' check callback (arg: the cli_ranks): the signal
 * that arrived, 0 when none. */
int cli_ranks_check (void *arg);

/* Stop every rank: SIGTERM, SIGKILL after --kill-grace. */
void cli_ranks_stop (struct cli_ranks *rk);

void cli_ranks_fini (struct cli_ranks *rk);

struct cli_dist_opts {
    double heartbeat_timeout; /* seconds without a frame: rank lost; 0: 30 */
    const char *report;       /* --report FILE, NULL: none */
    bool progress;            /* --progress */
};

/* Run a distributed inference.  Returns the exit status. */
int cli_dist_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *d);

#endif
