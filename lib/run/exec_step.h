/* exec_step.h - `dcrun exec` started by srun itself: one task of a step
 *
 * Under srun (SLURM_PROCID and SLURM_STEP_ID set, no host list given)
 * each task is one rank: it becomes `dcrun worker --control none`, which
 * takes the rank environment from SLURM_*.  MASTER_ADDR is the step's
 * first node and MASTER_PORT comes from the job and step ids, the same in
 * every task without talking; rank 0's task checks the port on its host.
 */
#ifndef DC_RUN_EXEC_STEP_H
#define DC_RUN_EXEC_STEP_H

#include <stddef.h>

/* Set MASTER_ADDR (the numeric address of the first node of
 * SLURM_STEP_NODELIST, else SLURM_JOB_NODELIST; kept when already set)
 * and MASTER_PORT (master_port when above 0, else kept when set, else
 * 20000 + (job * 31 + step) % 20000) in this environment. */
void dc_exec_step_master (int master_port);

/* On rank 0's task (SLURM_PROCID 0): MASTER_PORT when it is in use on
 * this host, with the host's name (SLURMD_NODENAME, else gethostname)
 * in host; 0 when free, not rank 0 or not set. */
int dc_exec_step_port_busy (char *host, size_t size);

/* Stop the whole step (scancel --signal TERM JOB.STEP), this task
 * ignoring SIGTERM, so that no task waits for a rendezvous that cannot
 * happen.  Waits for scancel. */
void dc_exec_step_cancel (void);

/* The words this task execs: self worker --control none [--wdir DIR]
 * [-e NAME=VALUE for each export with a value] -- CMD...  The array is
 * the caller's to free (the words are borrowed); NULL when out of
 * memory. */
char **dc_exec_step_argv (const char *self, const char *wdir,
                          char *const *exports, int nexports, char **cmd);

#endif
