/* exec_job.h - the ranks of one run of `dcrun exec` over a job
 *
 * From exec's options as parsed (struct dc_exec_opts), the job's arguments
 * and the job of lib/run/jobspec.h: the engine's options with every rank
 * filled (dc_exec_ranks: host, binding, CMD, stdin; the jobspec: the rank
 * environment and the agents' words), the working folder (--wdir, else
 * the caller's folder on every ssh host), this binary as the remote dcrun
 * unless --remote-dcrun, and MASTER_PORT checked (dc_exec_master_port;
 * not for --dry-run).  Built anew for each run of --max-restarts.
 */
#ifndef DC_RUN_EXEC_JOB_H
#define DC_RUN_EXEC_JOB_H

#include <limits.h>

#include "lib/run/exec.h"
#include "lib/run/jobspec.h"
#include "lib/util/error.h"

struct dc_exec_job {
    struct dc_exec_opts o; /* for dc_exec_create or dc_exec_dry_run */
    struct dc_launch_rank *ranks;
    int n;
    char cwd[PATH_MAX]; /* the ssh ranks' folder without --wdir */
};

/* Fill x from base (exec's options), a (the job's: launcher options,
 * --wdir, --bind, --master-port, --dry-run) and js for CMD.  DC_STATUS_OK;
 * DC_STATUS_FAIL (out of memory) or DC_STATUS_LAUNCH (MASTER_PORT in use,
 * with a "hint: " line) with err.  dc_exec_job_fini after, also on
 * failure; x must not move in between (the ranks point into it). */
int dc_exec_job_init (struct dc_exec_job *x, const struct dc_exec_opts *base,
                      const struct dc_job_args *a, const struct dc_jobspec *js,
                      char *const *cmd, dc_error_t *err);
void dc_exec_job_fini (struct dc_exec_job *x);

#endif
