/* exec_job.c - the ranks of one run of `dcrun exec` (exec_job.h) */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_job.h"
#include "lib/run/status.h"

int dc_exec_job_init (struct dc_exec_job *x, const struct dc_exec_opts *base,
                      const struct dc_job_args *a, const struct dc_jobspec *js,
                      char *const *cmd, dc_error_t *err)
{
    bool ssh = !strcmp (js->launcher, "ssh");
    const char *wdir = a->wdir;

    memset (x, 0, sizeof (*x));
    x->o = *base;
    x->o.launcher = js->launcher;
    x->o.lo = a->lo;
    x->o.plan = js->plan;
    x->o.master_port = js->master_port;
    x->ranks = calloc ((size_t)js->plan->size, sizeof (*x->ranks));
    if (!x->ranks)
        return errprintf (err, "exec: out of memory"), DC_STATUS_FAIL;
    x->n = js->plan->size;
    /* the working folder: the caller's, on every host (--wdir to choose) */
    if (ssh && !wdir && getcwd (x->cwd, sizeof (x->cwd)))
        wdir = x->cwd;
    dc_exec_ranks (&x->o, x->ranks, cmd, wdir, a->no_bind,
                   base->stdin_to != DC_EXEC_STDIN_NONE && !a->dry_run);
    for (int r = 0; r < x->n; r++) {
        x->ranks[r].worker_args = dc_jobspec_worker_args (js, r);
        if (!(x->ranks[r].env = dc_jobspec_rank_env (a, js, r)))
            return errprintf (err, "exec: out of memory"), DC_STATUS_FAIL;
    }
    x->o.ranks = x->ranks;
    x->o.chdir = ssh ? NULL : wdir;
    if (!x->o.lo.remote_dcrun)
        x->o.lo.remote_dcrun = dc_jobspec_self_path ();
    return dc_exec_master_port (&x->o, a->master_port, !a->dry_run, err);
}

void dc_exec_job_fini (struct dc_exec_job *x)
{
    for (int r = 0; x->ranks && r < x->n; r++)
        dc_jobspec_strv_free ((char **)x->ranks[r].env);
    free (x->ranks);
    x->ranks = NULL;
    x->n = 0;
}
