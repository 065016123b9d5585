/* dist_pipe.h - --split data|layers|hybrid|auto for infer and train
 *
 * Each rank's device memory: the smallest of its GPUs' memory when it has
 * GPUs and the device is not "cpu", else this host's memory divided among
 * the rank's host's ranks (the head's probe stands for every host: remote
 * hosts are taken to be like this one), capped by --max-device-memory.
 */
#ifndef DC_DIST_PIPE_H
#define DC_DIST_PIPE_H

#include "dist.h"
#include "lib/model/layout.h"
#include "lib/model/model.h"

struct cli_split {
    enum dc_split split;  /* default data */
    int stages;           /* --stages, 0: none */
    long long micro_rows; /* --micro-batch-rows, 0: chosen */
    long long max_mem;    /* --max-device-memory, 0: no cap */
};

/* Option parsers (a usage error printed on failure: -1). */
int cli_split_parse (const struct cli *cli, const char *arg,
                     struct cli_split *s);
int cli_split_parse_mem (const struct cli *cli, const char *arg,
                         struct cli_split *s);

/* True when the split options ask for more than plain data parallelism. */
bool cli_split_wanted (const struct cli_split *s);

/* Plan the layout of m on the ranks of rk for micro-batches of rows rows.
 * EXIT_OK with *lop, or an exit status after printing why (EXIT_INPUT for
 * a model that does not fit, EXIT_USAGE for a bad request). */
int cli_split_plan (struct cli_ranks *rk, const struct dc_model *m,
                    const struct cli_split *s, const char *device, size_t rows,
                    struct dc_layout **lop);

/* The layout, one line per rank (for --dry-run). */
void cli_split_print (const struct cli_ranks *rk, const struct dc_layout *lo,
                      const struct dc_model *m, size_t micro_rows,
                      size_t total_rows);

/* dcrun infer across ranks with a split.  Returns the exit status. */
int cli_pipe_infer (struct cli *cli, const struct dc_coord_infer_opts *io,
                    const struct cli_dist_opts *d, const struct cli_split *s);

#endif
