/* model_opts.c - the options infer and train share */
#include <getopt.h>
#include <stddef.h>

#include "compute_cli.h"
#include "job.h"
#include "lib/comm/comm.h"
#include "lib/run/optval.h"
#include "model_opts.h"

static int dtype_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_parse_dtype (cli, arg, &((struct cli_model_opts *)base)->dtype);
}

static int device_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_parse_device (cli, arg,
                             &((struct cli_model_opts *)base)->device);
}

static int activation_opt (struct cli *cli, const char *arg, void *base)
{
    dc_error_t err;

    if (dc_optval_activation (arg, &((struct cli_model_opts *)base)->activation,
                              &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

static int split_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_split_parse (cli, arg, &((struct cli_model_opts *)base)->split);
}

static int max_mem_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_split_parse_mem (cli, arg,
                                &((struct cli_model_opts *)base)->split);
}

#define F(kd, member, ...)                                                     \
    CLI_AT (struct cli_model_opts, kd, member, __VA_ARGS__)
const struct cli_opt cli_model_opts[] = {
    {"dtype", 0, "f32|tf32|f16|bf16",
     "compute type on the GPU, f32 accumulation (default f32)",
     .fn = dtype_opt},
    {"device", 0, "cpu|cuda|auto",
     "compute back-end (default auto: cuda when a GPU is usable)",
     .fn = device_opt},
    {"activation", 0, "A",
     "relu, gelu (tanh approximation), tanh or none between layers "
     "(default: the model's metadata, else relu)",
     .fn = activation_opt},
    {"threads", 0, "N",
     "CPU threads for the cpu back-end (default: OpenBLAS' own)",
     F (CLI_LONG, threads, 1, 4096)},
    {"progress", 0, NULL,
     "progress line on stderr even when it is not a terminal",
     F (CLI_FLAG, progress)},
    {"heartbeat-timeout", 0, "S",
     "across ranks: a rank silent for S seconds is lost (default 30)",
     F (CLI_DOUBLE, heartbeat_timeout, 0.1, 86400)},
    {"split", 0, "data|layers|hybrid|auto",
     "across ranks: rows (data, the default), consecutive layers per rank, "
     "groups of stages, or chosen from the model and device memory",
     .fn = split_opt},
    {"stages", 0, "S",
     "--split hybrid: stages per group (ranks must be a multiple)",
     F (CLI_INT, split.stages, 1, 4096)},
    {"micro-batch-rows", 0, "R",
     "rows per micro-batch flowing through a pipeline",
     F (CLI_I64, split.micro_rows, 1, 1L << 26)},
    {"max-device-memory", 0, "BYTES",
     "cap each rank's device memory (suffixes K, M, G)", .fn = max_mem_opt},
    {0},
};
#undef F

int cli_split_check (const struct cli *cli, const struct cli_model_opts *m)
{
    if ((m->split.split == DC_SPLIT_LAYERS ||
         m->split.split == DC_SPLIT_HYBRID) &&
        !cli_job_wanted (cli) && !dc_comm_mpi_wanted ())
        return cli_usage_error (cli, "--split %s needs ranks (-H, -f or -n)",
                                dc_split_name (m->split.split));
    return 0;
}
