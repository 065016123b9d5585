/* launch_slurm.c - ranks through srun inside a Slurm allocation
 *
 * One `srun -n N --distribution=arbitrary` whose SLURM_HOSTFILE (written by
 * dcrun, one line per rank: its host) keeps dcrun's rank map; with
 * opts.srun_mpi, --mpi=TYPE (pmix for Debian's OpenMPI).  Every task runs
 * `dcrun worker --control none -- CMD`: the worker takes the rank
 * environment from SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID
 * (srun has no per-task environment), and CUDA_VISIBLE_DEVICES and CPU
 * binding are Slurm's (--gres, --cpu-bind).  What is the same for every rank
 * (MASTER_ADDR, MASTER_PORT, -x) is in srun's environment, which srun
 * exports.  Output and every rank's exit status come back over launch_io.c's
 * connect-back channels; srun runs with --kill-on-bad-exit=0 so that dcrun
 * decides what a failing rank does to the others.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"

/* Names whose value differs per rank: srun's tasks get them from the
 * worker, not from dcrun. */
static const char *const per_rank[] = {"DCRUN_RANK",
                                       "DCRUN_LOCAL_RANK",
                                       "DCRUN_LOCAL_SIZE",
                                       "DCRUN_NODE_RANK",
                                       "DCRUN_HOST",
                                       "RANK",
                                       "LOCAL_RANK",
                                       "LOCAL_WORLD_SIZE",
                                       "CUDA_VISIBLE_DEVICES",
                                       "GROUP_RANK",
                                       "ROLE_RANK",
                                       "DCRUN_GPUS",
                                       NULL};

static bool is_per_rank (const char *kv)
{
    size_t n = strcspn (kv, "=");
    for (int i = 0; per_rank[i]; i++)
        if (strlen (per_rank[i]) == n && !strncmp (kv, per_rank[i], n))
            return true;
    return false;
}

static int add (char ***v, int *n, const char *s)
{
    char **nv = realloc (*v, (size_t)(*n + 2) * sizeof (char *));
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup (s)))
        return -1;
    nv[++*n] = NULL;
    return 0;
}

/* The words v[0..k) into *argvp, or freed when one could not be added
 * (rc). */
static int give (char **v, int k, int rc, char ***argvp, dc_error_t *errp)
{
    if (rc) {
        for (int i = 0; i < k; i++)
            free (v[i]);
        free (v);
        return errprintf (errp, "out of memory");
    }
    *argvp = v;
    return 0;
}

int dc_launch_slurm_argv (struct dc_launch *l,
                          const struct dc_launch_rank *ranks, int n,
                          const char *hostfile, char ***argvp, dc_error_t *errp)
{
    char **v = NULL, buf[64];
    int k = 0, rc = 0;
    const char *dcrun = l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun";

    if (n <= 0 || !ranks[0].argv) {
        errno = EINVAL;
        return errprintf (errp, "slurm: no ranks");
    }
    if (hostfile) {
        FILE *f = fopen (hostfile, "w");
        if (!f)
            return errprintf (errp, "%s: %s", hostfile, strerror (errno));
        for (int i = 0; i < n; i++)
            fprintf (f, "%s\n", ranks[i].host);
        if (fclose (f) != 0)
            return errprintf (errp, "%s: %s", hostfile, strerror (errno));
    }
    snprintf (buf, sizeof (buf), "--ntasks=%d", n);
    rc |= add (&v, &k, "srun");
    rc |= add (&v, &k, buf);
    rc |= add (&v, &k, "--distribution=arbitrary");
    rc |= add (&v, &k, "--kill-on-bad-exit=0");
    rc |= add (&v, &k, "--export=ALL");
    if (l->opts.srun_mpi) {
        snprintf (buf, sizeof (buf), "--mpi=%s", l->opts.srun_mpi);
        rc |= add (&v, &k, buf);
    }
    if (l->opts.srun_args && *l->opts.srun_args) {
        wordexp_t we;
        if (wordexp (l->opts.srun_args, &we, WRDE_NOCMD | WRDE_UNDEF) != 0) {
            for (int i = 0; i < k; i++)
                free (v[i]);
            free (v);
            errno = EINVAL;
            return errprintf (errp,
                              "--srun-args '%s': cannot split into "
                              "words",
                              l->opts.srun_args);
        }
        for (size_t i = 0; i < we.we_wordc; i++)
            rc |= add (&v, &k, we.we_wordv[i]);
        wordfree (&we);
    }
    rc |= add (&v, &k, dcrun);
    rc |= add (&v, &k, "worker");
    rc |= add (&v, &k, "--control");
    rc |= add (&v, &k, "none");
    /* one command for every task (slurm_spawn checks they agree) */
    if (ranks[0].stdin_data)
        rc |= add (&v, &k, "--stdin");
    rc |= add (&v, &k, "--");
    for (int i = 0; ranks[0].argv[i]; i++)
        rc |= add (&v, &k, ranks[0].argv[i]);
    return give (v, k, rc, argvp, errp);
}

static int slurm_init (struct dc_launch *l, dc_error_t *errp)
{
    const char *job = getenv ("SLURM_JOB_ID");

    if (!job || !*job) {
        errno = EINVAL;
        return errprintf (errp, "slurm: not inside a Slurm allocation "
                                "(SLURM_JOB_ID is not set)\nhint: run dcrun "
                                "in an sbatch or salloc job, or use -L ssh");
    }
    return dc_iodrv_init (l, errp);
}

/* The srun step that runs `dcrun worker --port-check PORT` on the host of
 * r0 alone (launch_io.h: dc_iodrv_port); --overlap: the job's own steps
 * may hold every CPU. */
static int slurm_check_argv (struct dc_launch *l,
                             const struct dc_launch_rank *r0, int port,
                             char ***argvp, dc_error_t *errp)
{
    char **v = NULL, node[300], pb[16];
    int k = 0, rc = 0;

    snprintf (node, sizeof (node), "--nodelist=%s", r0->host);
    snprintf (pb, sizeof (pb), "%d", port);
    rc |= add (&v, &k, "srun");
    rc |= add (&v, &k, "--ntasks=1");
    rc |= add (&v, &k, "--nodes=1");
    rc |= add (&v, &k, node);
    rc |= add (&v, &k, "--overlap");
    rc |= add (&v, &k, "--export=ALL");
    rc |= add (&v, &k, l->opts.remote_dcrun ? l->opts.remote_dcrun : "dcrun");
    rc |= add (&v, &k, "worker");
    rc |= add (&v, &k, "--port-check");
    rc |= add (&v, &k, pb);
    return give (v, k, rc, argvp, errp);
}

static int slurm_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                        int n, dc_error_t *errp)
{
    char hostfile[4200], hf_env[4300], pe[128];
    char **argv = NULL, **env = NULL;
    int k = 0, rc = -1;

    for (int i = 1; i < n; i++)
        if (ranks[i].stdin_data != ranks[0].stdin_data) {
            errno = EINVAL;
            return errprintf (errp, "slurm: every rank must read stdin the "
                                    "same way (one command for all)");
        }
    for (int i = 1; i < n; i++)
        if (ranks[i].argv != ranks[0].argv) {
            errno = EINVAL;
            return errprintf (errp, "slurm: every rank must run the same "
                                    "command");
        }
    if (dc_iodrv_port (l, ranks, n, slurm_check_argv, errp) < 0 ||
        dc_iodrv_prepare (l, ranks, n, errp) < 0)
        return -1;
    snprintf (hostfile, sizeof (hostfile), "%s/hostfile.slurm",
              dc_iodrv_dir (l));
    if (dc_launch_slurm_argv (l, ranks, n, hostfile, &argv, errp) < 0)
        return -1;
    snprintf (hf_env, sizeof (hf_env), "SLURM_HOSTFILE=%s", hostfile);
    if (add (&env, &k, hf_env) < 0)
        goto nomem;
    /* what every rank shares goes in srun's environment; the per-rank
     * names are removed from it (the worker sets them from SLURM_*) */
    for (int i = 0; ranks[0].env && ranks[0].env[i]; i++)
        if (!is_per_rank (ranks[0].env[i]) &&
            add (&env, &k,
                 dc_iodrv_port_entry (l, ranks[0].env[i], pe, sizeof (pe))))
            goto nomem;
    for (int i = 0; per_rank[i]; i++)
        if (add (&env, &k, per_rank[i]) < 0)
            goto nomem;
    rc = dc_iodrv_start (l, "srun", argv, env, errp);
    goto out;
nomem:
    errprintf (errp, "out of memory");
out:
    for (int i = 0; argv && argv[i]; i++)
        free (argv[i]);
    free (argv);
    for (int i = 0; env && env[i]; i++)
        free (env[i]);
    free (env);
    return rc;
}

const struct dc_launch_ops dc_launch_slurm = {
    .name = "slurm",
    .summary = "srun inside a Slurm allocation, dcrun worker per rank",
    .init = slurm_init,
    .spawn = slurm_spawn,
    .pollfds = dc_iodrv_pollfds,
    .progress = dc_iodrv_progress,
    .signal = dc_iodrv_signal,
    .write = dc_iodrv_write,
    .close_stdin = dc_iodrv_close_stdin,
    .fini = dc_iodrv_fini,
};
