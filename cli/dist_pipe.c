/* dist_pipe.c - the layout options and the --dry-run print of a layout */
#include "dist.h"
#include "lib/run/dryrun.h"

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
    (void)arg;
    cli_put_text (dc_dryrun_layout (job, lo, m, micro_rows, total_rows));
}
