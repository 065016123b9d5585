/* job.h - what every command that starts ranks shares: the host list, the
 * rank map with GPU-aware placement, the launcher and the rank environment
 */
#ifndef DC_JOB_H
#define DC_JOB_H

#include <stdbool.h>

#include "cli.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"

struct cli_job {
    struct dc_hosts *hosts;
    struct dc_plan *plan;
    const char *launcher; /* the launcher's name, -L auto resolved */
    int master_port;      /* MASTER_PORT for torchrun-style programs */
};

/* True when the command line or the environment asks for ranks: -f, -H,
 * -n above 1, -L, $DCRUN_HOSTFILE, a Slurm allocation or $PBS_NODEFILE. */
bool cli_job_wanted (const struct cli *cli);

/* -L names a launcher (auto, or one of the table); else false after a
 * usage error. */
bool cli_launcher_ok (const struct cli *cli);

/* Host list, rank map (placed on the probed topology for hosts that are
 * this host), launcher.  EXIT_OK, or an exit status after printing why. */
int cli_job_init (struct cli *cli, struct cli_job *job);
void cli_job_fini (struct cli_job *job);

/* The environment of rank r: DCRUN_*, the torchrun names,
 * CUDA_VISIBLE_DEVICES, and the -x exports.  NULL-terminated, caller frees
 * with cli_strv_free; NULL when out of memory. */
char **cli_job_rank_env (const struct cli *cli, const struct cli_job *job,
                         int r);
void cli_strv_free (char **v);

/* Worker side of the rank environment that stays off command lines
 * (lib/launch/launch_io.h): read `bytes` of NUL-terminated NAME=VALUE entries
 * from fd and put them in the environment (EXIT_OK, or an exit status
 * after printing why); and turn DCRUN_XENV_<k>=NAME=VALUE variables into
 * NAME=VALUE. */
int cli_env_read (int fd, long bytes);
void cli_env_unwrap (void);

/* Absolute path of this binary (static buffer), "dcrun" when unknown. */
const char *cli_self_path (void);

/* "INT", "KILL", ... */
const char *cli_signame (int sig);

#endif
