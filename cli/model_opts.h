/* model_opts.h - the options infer and train share: the compute back-end,
 * the activation, progress and how the work is spread across ranks */
#ifndef DC_MODEL_OPTS_H
#define DC_MODEL_OPTS_H

#include <stdbool.h>

#include "cli.h"
#include "dist.h"
#include "gpu/compute.h"

struct cli_model_opts {
    const char *device;        /* --device cpu|cuda|auto */
    enum dc_dtype dtype;       /* --dtype */
    const char *activation;    /* --activation, NULL: the model's */
    long threads;              /* --threads, 0: the back-end's */
    bool progress;             /* --progress */
    double heartbeat_timeout;  /* --heartbeat-timeout, 0: 30 s */
    struct dc_run_split split; /* --split, --stages, ... */
};

/* The table (a struct cli_command's opts2, filling a struct
 * cli_model_opts at opts2_off in the command's ctx). */
extern const struct cli_opt cli_model_opts[];

/* --split layers|hybrid needs ranks: -1 after a usage error, else 0. */
int cli_split_check (const struct cli *cli, const struct cli_model_opts *m);

#endif
