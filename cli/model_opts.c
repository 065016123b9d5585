/* model_opts.c - the options infer and train share */
#include <getopt.h>

#include "compute_cli.h"
#include "job.h"
#include "lib/comm/comm.h"
#include "lib/run/optval.h"
#include "model_opts.h"

enum {
    OPT_DTYPE = 0x3000,
    OPT_DEVICE,
    OPT_ACTIVATION,
    OPT_THREADS,
    OPT_PROGRESS,
    OPT_HEARTBEAT_TIMEOUT,
    OPT_SPLIT,
    OPT_STAGES,
    OPT_MICRO_ROWS,
    OPT_MAX_MEM,
};

const struct cli_opt cli_model_opts[] = {
    {"dtype", required_argument, OPT_DTYPE, "f32|tf32|f16|bf16",
     "compute type on the GPU, f32 accumulation (default f32)"},
    {"device", required_argument, OPT_DEVICE, "cpu|cuda|auto",
     "compute back-end (default auto: cuda when a GPU is usable)"},
    {"activation", required_argument, OPT_ACTIVATION, "A",
     "relu, gelu (tanh approximation), tanh or none between layers "
     "(default: the model's metadata, else relu)"},
    {"threads", required_argument, OPT_THREADS, "N",
     "CPU threads for the cpu back-end (default: OpenBLAS' own)"},
    {"progress", no_argument, OPT_PROGRESS, NULL,
     "progress line on stderr even when it is not a terminal"},
    {"heartbeat-timeout", required_argument, OPT_HEARTBEAT_TIMEOUT, "S",
     "across ranks: a rank silent for S seconds is lost (default 30)"},
    {"split", required_argument, OPT_SPLIT, "data|layers|hybrid|auto",
     "across ranks: rows (data, the default), consecutive layers per rank, "
     "groups of stages, or chosen from the model and device memory"},
    {"stages", required_argument, OPT_STAGES, "S",
     "--split hybrid: stages per group (ranks must be a multiple)"},
    {"micro-batch-rows", required_argument, OPT_MICRO_ROWS, "R",
     "rows per micro-batch flowing through a pipeline"},
    {"max-device-memory", required_argument, OPT_MAX_MEM, "BYTES",
     "cap each rank's device memory (suffixes K, M, G)"},
    {0},
};

int cli_model_opt (struct cli *cli, int key, const char *arg,
                   struct cli_model_opts *m)
{
    dc_error_t err;
    long v;

    switch (key) {
    case OPT_DTYPE:
        return cli_parse_dtype (cli, arg, &m->dtype);
    case OPT_DEVICE:
        return cli_parse_device (cli, arg, &m->device);
    case OPT_ACTIVATION:
        if (dc_optval_activation (arg, &m->activation, &err) < 0)
            return cli_usage_error (cli, "%s", err.text);
        return 0;
    case OPT_THREADS:
        return cli_parse_long (cli, "--threads", arg, 1, 4096, &m->threads);
    case OPT_PROGRESS:
        m->progress = true;
        return 0;
    case OPT_HEARTBEAT_TIMEOUT:
        return cli_parse_double (cli, "--heartbeat-timeout", arg, 0.1, 86400,
                                 &m->heartbeat_timeout);
    case OPT_SPLIT:
        return cli_split_parse (cli, arg, &m->split);
    case OPT_STAGES:
        if (cli_parse_long (cli, "--stages", arg, 1, 4096, &v) < 0)
            return -1;
        m->split.stages = (int)v;
        return 0;
    case OPT_MICRO_ROWS:
        if (cli_parse_long (cli, "--micro-batch-rows", arg, 1, 1L << 26, &v) <
            0)
            return -1;
        m->split.micro_rows = v;
        return 0;
    case OPT_MAX_MEM:
        return cli_split_parse_mem (cli, arg, &m->split);
    }
    return 1;
}

int cli_split_check (const struct cli *cli, const struct cli_model_opts *m)
{
    if ((m->split.split == DC_SPLIT_LAYERS ||
         m->split.split == DC_SPLIT_HYBRID) &&
        !cli_job_wanted (cli) && !dc_comm_mpi_wanted ())
        return cli_usage_error (cli, "--split %s needs ranks (-H, -f or -n)",
                                dc_split_name (m->split.split));
    return 0;
}
