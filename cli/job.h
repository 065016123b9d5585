/* job.h - what every command that starts ranks shares: the host list, the
 * rank map with GPU-aware placement, the launcher and the rank environment;
 * the CLI's side (errors, warnings, exit statuses) of lib/run/jobspec.h
 */
#ifndef DC_JOB_H
#define DC_JOB_H

#include <stdbool.h>

#include "cli.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/run/jobspec.h"

/* The job of a command (lib/run/jobspec.h's struct dc_jobspec under the
 * name the commands use): hosts, plan, launcher, MASTER_PORT and
 * MASTER_ADDR, the agents' words, exec's restarts. */
#define cli_job dc_jobspec

/* The job options of the command line for lib/run/jobspec.h. */
struct dc_job_args cli_job_args (const struct cli *cli);

/* True when the command line or the environment asks for ranks: -f, -H,
 * -n above 1, -L, $DCRUN_HOSTFILE, a Slurm allocation or $PBS_NODEFILE. */
bool cli_job_wanted (const struct cli *cli);

/* -L names a launcher (auto, or one of the table); else false after a
 * usage error. */
bool cli_launcher_ok (const struct cli *cli);

/* Host list, rank map (placed on the probed topology for hosts that are
 * this host), launcher.  EXIT_OK, or an exit status after printing why. */
int cli_job_init (struct cli *cli, struct cli_job *job);
#define cli_job_fini dc_jobspec_fini

/* The host list of a command (cli_resolve_hosts), with one slot per GPU
 * of this host when no list was given and the slots of remote hosts
 * without slots= probed (caller's; NULL after printing why, *exitp set). */
struct dc_hosts *cli_job_hosts (struct cli *cli, int *exitp);

/* For a job whose hosts, plan, launcher and master_port are set (by
 * cli_job_init, or lib/run/job.c for infer and train): the agents' words
 * (cli_job_worker_args), MASTER_ADDR, the -x checks.  EXIT_OK or an exit
 * status after printing why.  cli_job_detach frees what it made. */
int cli_job_attach (struct cli *cli, struct cli_job *job);
#define cli_job_detach dc_jobspec_detach

/* The `dcrun worker` words of rank r (borrowed from job; NULL when the
 * head placed it or no agent placement is wanted). */
#define cli_job_worker_args dc_jobspec_worker_args

/* The environment of rank r: lib/hosts/rankenv.h's contract (DCRUN_*, the
 * torchrun names, CUDA_VISIBLE_DEVICES by --gpu-bind, OMP_NUM_THREADS),
 * then --export-all and the -x exports (NAME, NAME=VALUE, or a shell
 * pattern over this environment; rank variables never).  NULL-terminated,
 * caller frees with cli_strv_free; NULL when out of memory. */
char **cli_job_rank_env (const struct cli *cli, const struct cli_job *job,
                         int r);
#define cli_strv_free dc_jobspec_strv_free

/* Check -x against this environment: a warning line for each -x NAME
 * that is unset here. */
void cli_job_check_exports (const struct cli *cli);

/* Worker side of the rank environment that stays off command lines
 * (lib/launch/launch_io.h): read `bytes` of NUL-terminated NAME=VALUE entries
 * from fd and put them in the environment (EXIT_OK, or an exit status
 * after printing why); and turn DCRUN_XENV_<k>=NAME=VALUE variables into
 * NAME=VALUE. */
int cli_env_read (int fd, long bytes);
#define cli_env_unwrap dc_jobspec_env_unwrap

/* Absolute path of this binary (static buffer), "dcrun" when unknown. */
#define cli_self_path dc_jobspec_self_path

/* "INT", "KILL", ... */
const char *cli_signame (int sig);

#endif
