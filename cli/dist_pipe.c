/* dist_pipe.c - the layout options and the --dry-run print of a layout */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

int cli_split_parse (const struct cli *cli, const char *arg,
                     struct dc_run_split *s)
{
    if (dc_split_parse (arg, &s->split) < 0)
        return cli_usage_error (cli,
                                "--split '%s': expected data, layers, "
                                "hybrid or auto",
                                arg);
    return 0;
}

int cli_split_parse_mem (const struct cli *cli, const char *arg,
                         struct dc_run_split *s)
{
    if (dc_layout_parse_bytes (arg, &s->max_mem) < 0)
        return cli_usage_error (cli,
                                "--max-device-memory '%s': expected "
                                "bytes, with K, M, G or T for powers "
                                "of 1024",
                                arg);
    return 0;
}

void cli_dry_run_layout (const struct dc_job *job, const struct dc_layout *lo,
                         const struct dc_model *m, size_t micro_rows,
                         size_t total_rows, void *arg)
{
    char a[32], b[32], c[32];

    (void)arg;
    printf ("launcher: %s\n", job->launcher);
    printf ("layout: %s, %d stage%s x %d group%s, %s of weights",
            dc_split_name (lo->split), lo->nstages, lo->nstages == 1 ? "" : "s",
            lo->ngroups, lo->ngroups == 1 ? "" : "s",
            dc_layout_fmt_bytes (lo->total_bytes, a, sizeof (a)));
    if (micro_rows > 0 && lo->nstages > 1)
        printf (", micro-batches of %zu rows (%zu)", micro_rows,
                total_rows ? (total_rows + micro_rows - 1) / micro_rows : 0);
    printf ("\n");
    for (int r = 0; r < lo->size; r++) {
        int s = dc_layout_stage (lo, r);
        printf ("rank %d on %s: stage %d group %d: layers %d-%d (", r,
                job->host[r], s, dc_layout_group (lo, r), lo->l0[s],
                lo->l1[s] - 1);
        for (int i = lo->l0[s]; i < lo->l1[s]; i++)
            printf ("%s%s", i > lo->l0[s] ? ", " : "", m->layers[i].name);
        printf ("), weights %s, activations %s, memory %s, work %.1f%%\n",
                dc_layout_fmt_bytes (lo->weight_bytes[s], a, sizeof (a)),
                dc_layout_fmt_bytes (lo->act_bytes[s], b, sizeof (b)),
                lo->mem[r] > 0
                    ? dc_layout_fmt_bytes ((double)lo->mem[r], c, sizeof (c))
                    : "unknown",
                100.0 * dc_layout_share (lo, r));
    }
}
