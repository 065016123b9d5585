/* rankenv.h - the environment of a rank: the one place that owns the rank
 * environment contract (dcrun(1) ENVIRONMENT)
 *
 *   DCRUN_RANK DCRUN_SIZE DCRUN_LOCAL_RANK DCRUN_LOCAL_SIZE DCRUN_NODE_RANK
 *   DCRUN_HOST DCRUN_GPUS, torchrun's RANK WORLD_SIZE LOCAL_RANK
 *   LOCAL_WORLD_SIZE GROUP_RANK ROLE_RANK ROLE_WORLD_SIZE ROLE_NAME
 *   MASTER_ADDR MASTER_PORT TORCHELASTIC_RUN_ID TORCHELASTIC_RESTART_COUNT
 *   TORCHELASTIC_MAX_RESTARTS, OMP_NUM_THREADS (the rank's CPUs, unless the
 *   caller has it) and CUDA_VISIBLE_DEVICES by the GPU binding:
 *
 *   host (default)  the GPUs of every rank of the rank's host, in local-rank
 *                   order, so that cuda:LOCAL_RANK is the rank's own GPU
 *                   (torchrun's contract); DCRUN_GPUS lists its own ids
 *   rank            only the rank's own GPU(s): device 0 is its own
 *   none            CUDA_VISIBLE_DEVICES is not set
 */
#ifndef DC_RANKENV_H
#define DC_RANKENV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/hosts/plan.h"
#include "lib/util/error.h"

enum dc_gpu_bind {
    DC_GPU_BIND_HOST = 0,
    DC_GPU_BIND_RANK,
    DC_GPU_BIND_NONE,
};

struct dc_rankenv_opts {
    const char *master_addr; /* NULL: "127.0.0.1" */
    int master_port;
    const char *run_id; /* TORCHELASTIC_RUN_ID; NULL: "dcrun" */
    int restart_count;
    int max_restarts;
    enum dc_gpu_bind gpu_bind;
    bool omp_given; /* the caller sets OMP_NUM_THREADS: leave it */
};

/* "host", "rank", "none" (and srun's "single" for rank); -1 otherwise. */
int dc_rankenv_gpu_bind_parse (const char *s, enum dc_gpu_bind *out);

/* The NAME=VALUE entries of rank r, NULL-terminated; free with
 * dc_rankenv_free.  NULL (errp set) when out of memory or r is out of
 * range. */
char **dc_rankenv_create (const struct dc_plan *plan, int r,
                          const struct dc_rankenv_opts *o, dc_error_t *errp);
void dc_rankenv_free (char **env); /* accepts NULL */

/* True when name (a NAME, or NAME=VALUE) is one of the variables above:
 * -x must not override them, --export-all does not forward them. */
bool dc_rankenv_is_rank_var (const char *name);

/* True when name is on --export-all's deny list (SSH_*, DISPLAY, TERM,
 * HOME, USER, LOGNAME, SHELL, PWD, OLDPWD, SHLVL, _, XAUTHORITY, DBUS_*,
 * and the rank variables). */
bool dc_rankenv_export_denied (const char *name);

/* CPUs in a list such as "0-3,8": 5; 0 for NULL or a bad list. */
int dc_rankenv_count_cpus (const char *cpus);

/* A numeric IPv4 address of host (a name, already after ssh-config
 * HostName) into buf: what a connection to it reaches. */
int dc_rankenv_host_ip (const char *host, char *buf, size_t len,
                        dc_error_t *errp);

/* The tasks of node node_id in a Slurm step, from SLURM_STEP_TASKS_PER_NODE
 * ("2(x3),1": nodes 0-2 run 2, node 3 runs 1); -1 when the list is bad
 * (not counts 1..1000000, a repeat that is not "(xN)" with N >= 1) or
 * has no such node. */
int dc_rankenv_slurm_local_size (const char *tasks_per_node, long node_id);

/* Under mpirun (OMPI_COMM_WORLD_*) or srun (SLURM_PROCID, SLURM_STEP_ID):
 * set the rank environment above from theirs (DCRUN_*, RANK..., the rest
 * of torchrun's names; DCRUN_HOST this host's name unless set).  False,
 * and nothing set, when neither started this process. */
bool dc_rankenv_from_launcher (void);

/* The address of this host that packets to host come from (numeric). */
int dc_rankenv_source_ip (const char *host, char *buf, size_t len,
                          dc_error_t *errp);

#endif
