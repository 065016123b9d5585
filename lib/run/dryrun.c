/* dryrun.c - the --dry-run plans as text (see dryrun.h) */
#include <stdlib.h>

#include "lib/run/dryrun.h"
#include "lib/util/strbuf.h"

#define TEXT_MAX (64 << 20)

char *dc_dryrun_data (const struct dc_job *job, size_t rows, size_t chunk_rows,
                      const char *self)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!job) {
        dc_strbuf_str (&b, "rows: 0: nothing to run\n");
        return dc_strbuf_take (&b);
    }
    const struct dc_plan *plan = job->plan;
    dc_strbuf_printf (&b, "launcher: %s\n", job->launcher);
    dc_strbuf_printf (&b, "rows: %zu in chunks of %zu\n", rows, chunk_rows);
    for (int r = 0; r < plan->size; r++) {
        const struct dc_rank *rk = &plan->ranks[r];
        dc_strbuf_printf (&b, "rank %d on %s: gpus ", r,
                          dc_plan_host (plan, r));
        if (rk->ngpus == 0)
            dc_strbuf_str (&b, "-");
        for (int i = 0; i < rk->ngpus; i++)
            dc_strbuf_printf (&b, "%s%d", i ? "," : "", rk->gpus[i]);
        dc_strbuf_printf (&b, ", cpus %s: %s serve\n",
                          rk->cpus ? rk->cpus : "-", self);
    }
    return dc_strbuf_take (&b);
}

char *dc_dryrun_ranks (const struct dc_job *job, const char *self)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    dc_strbuf_printf (&b, "launcher: %s\n", job->launcher);
    for (int r = 0; r < job->plan->size; r++)
        dc_strbuf_printf (&b, "rank %d on %s: %s serve\n", r, job->host[r],
                          self);
    return dc_strbuf_take (&b);
}

char *dc_dryrun_layout (const struct dc_job *job, const struct dc_layout *lo,
                        const struct dc_model *m, size_t micro_rows,
                        size_t total_rows)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);
    char x[32], y[32], z[32];

    dc_strbuf_printf (&b, "launcher: %s\n", job->launcher);
    dc_strbuf_printf (&b, "layout: %s, %d stage%s x %d group%s, %s of weights",
                      dc_split_name (lo->split), lo->nstages,
                      lo->nstages == 1 ? "" : "s", lo->ngroups,
                      lo->ngroups == 1 ? "" : "s",
                      dc_layout_fmt_bytes (lo->total_bytes, x, sizeof (x)));
    if (micro_rows > 0 && lo->nstages > 1)
        dc_strbuf_printf (
            &b, ", micro-batches of %zu rows (%zu)", micro_rows,
            total_rows ? (total_rows + micro_rows - 1) / micro_rows : 0);
    dc_strbuf_str (&b, "\n");
    for (int r = 0; r < lo->size; r++) {
        int s = dc_layout_stage (lo, r);
        dc_strbuf_printf (
            &b, "rank %d on %s: stage %d group %d: layers %d-%d (", r,
            job->host[r], s, dc_layout_group (lo, r), lo->l0[s], lo->l1[s] - 1);
        for (int i = lo->l0[s]; i < lo->l1[s]; i++)
            dc_strbuf_printf (&b, "%s%s", i > lo->l0[s] ? ", " : "",
                              m->layers[i].name);
        dc_strbuf_printf (
            &b, "), weights %s, activations %s, memory %s, work %.1f%%\n",
            dc_layout_fmt_bytes (lo->weight_bytes[s], x, sizeof (x)),
            dc_layout_fmt_bytes (lo->act_bytes[s], y, sizeof (y)),
            lo->mem[r] > 0
                ? dc_layout_fmt_bytes ((double)lo->mem[r], z, sizeof (z))
                : "unknown",
            100.0 * dc_layout_share (lo, r));
    }
    return dc_strbuf_take (&b);
}
