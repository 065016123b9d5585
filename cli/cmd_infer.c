/* cmd_infer.c - dcrun infer: batch inference of an MLP on one host
 *
 * Reads the model (safetensors) and the input rows (.npy), runs them through
 * the compute back-end block by block, and writes the output rows to a
 * temporary file renamed to --output when complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "compute_cli.h"
#include "dist.h"
#include "model_opts.h"
#include "job.h"
#include "status.h"
#include "lib/util/file.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"

enum {
    OPT_MODEL = 0x100,
    OPT_INPUT,
    OPT_OUTPUT,
    OPT_CHUNK_ROWS,
    OPT_OUTPUT_DTYPE,
    OPT_REPORT,
    OPT_IO,
    OPT_TRACE,
};

/* host memory per block of rows read, computed and written */

struct infer_args {
    const char *model, *input, *output, *report, *trace;
    enum dc_npy_dtype out_dtype;
    long chunk_rows;
    enum dc_io_mode io;
    struct cli_model_opts m; /* shared with train */
};

static const struct cli_opt infer_opts[] = {
    {"model", required_argument, OPT_MODEL, "M.safetensors",
     "the MLP (PyTorch nn.Sequential of Linear layers, safetensors)"},
    {"input", required_argument, OPT_INPUT, "X.npy",
     "input rows [rows, inputs] (<f4, <f2 or <f8)"},
    {"output", required_argument, OPT_OUTPUT, "Y.npy",
     "output rows [rows, outputs], written when complete"},
    {"chunk-rows", required_argument, OPT_CHUNK_ROWS, "R",
     "rows per pipelined chunk (default: the back-end's)"},
    {"output-dtype", required_argument, OPT_OUTPUT_DTYPE, "f4|f2",
     "output element type (default f4)"},
    {"report", required_argument, OPT_REPORT, "R.json",
     "write a run report (phases, TFLOP/s, output sha256, versions)"},
    {"io", required_argument, OPT_IO, "direct|relay|auto",
     "ranks read and write their rows themselves (direct), or through "
     "this process (relay); auto: direct for every rank that sees the "
     "same files (default)"},
    {"trace", required_argument, OPT_TRACE, "T.json",
     "write a Chrome trace (Perfetto): launch, load, chunks, lost ranks"},
    {0},
};

static int infer_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct infer_args *a = ctx;

    switch (key) {
    case OPT_MODEL:
        a->model = arg;
        return 0;
    case OPT_INPUT:
        a->input = arg;
        return 0;
    case OPT_OUTPUT:
        a->output = arg;
        return 0;
    case OPT_CHUNK_ROWS:
        return cli_parse_long (cli, "--chunk-rows", arg, 1, 1L << 30,
                               &a->chunk_rows);
    case OPT_OUTPUT_DTYPE:
        if (!strcmp (arg, "f4") || !strcmp (arg, "f32"))
            a->out_dtype = DC_NPY_F4;
        else if (!strcmp (arg, "f2") || !strcmp (arg, "f16"))
            a->out_dtype = DC_NPY_F2;
        else
            return cli_usage_error (cli,
                                    "--output-dtype '%s': expected f4 "
                                    "or f2",
                                    arg);
        return 0;
    case OPT_REPORT:
        a->report = arg;
        return 0;
    case OPT_IO:
        if (!strcmp (arg, "direct"))
            a->io = DC_IO_DIRECT;
        else if (!strcmp (arg, "relay"))
            a->io = DC_IO_RELAY;
        else if (!strcmp (arg, "auto"))
            a->io = DC_IO_AUTO;
        else
            return cli_usage_error (
                cli, "--io '%s': expected direct, relay or auto", arg);
        return 0;
    case OPT_TRACE:
        a->trace = arg;
        return 0;
    }
    return cli_model_opt (cli, key, arg, &a->m) == 0 ? 0 : -1;
}

/* dc_infer_run picks one process, MPI, the driver, a pipeline or data
 * parallel; a job when the command line asks for ranks (not under MPI). */
static int infer_go (struct cli *cli, const struct infer_args *a)
{
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    struct cli_ranks rk = {.cli = cli, .progress = a->m.progress};
    struct dc_infer_opts o = {
        .io =
            {
                .model_path = a->model,
                .input_path = a->input,
                .output_path = a->output,
                .out_dtype = a->out_dtype,
                .device = a->m.device,
                .dtype = dc_dtype_name (a->m.dtype),
                .activation = a->m.activation,
                .threads = (int)a->m.threads,
                .chunk_rows = (size_t)a->chunk_rows,
                /* test hook: each rank sleeps this long per chunk */
                .delay_ms = delay ? atoi (delay) : 0,
                .io_mode = a->io,
            },
        .dtype = a->m.dtype,
        .report = a->report,
        .trace = a->trace,
        .heartbeat_timeout = a->m.heartbeat_timeout,
        .split = a->m.split,
        .dry_run = cli->dry_run,
        .progress = cli_run_progress,
        .dry_run_data = cli_dry_run_data,
        .dry_run_layout = cli_dry_run_layout,
        .on_rank_error = cli_rank_error,
        .arg = &rk,
    };
    bool job = !dc_comm_mpi_wanted () && cli_job_wanted (cli);
    dc_error_t err;
    bool done;
    int sig, st, ex;

    rk.job.sfd = -1;
    st = dc_infer_prepare (&o, dc_comm_mpi_wanted () || cli_job_wanted (cli),
                           &done, &err);
    if (st != DC_STATUS_OK || done)
        return cli_status (NULL, st, 0, &err);
    if (job && (ex = cli_ranks_init (cli, &rk)) != EXIT_OK)
        return ex;
    st = dc_infer_run (&o, job ? &rk.job : NULL, &sig, &err);
    if (cli->dry_run && st == DC_STATUS_OK && job &&
        !dc_run_split_wanted (&a->m.split))
        printf ("io: %s%s\n", dc_io_mode_name (a->io),
                a->io == DC_IO_AUTO ? ": each rank reads and writes its rows "
                                      "itself when it sees the input and "
                                      "the output's folder at the same "
                                      "paths, else they pass through the "
                                      "head (decided when the ranks start)"
                                    : "");
    if (st == DC_STATUS_DRIVER)
        ex = cli_dist_exec_driver (&rk);
    else
        ex = cli_status (NULL, st, sig, &err);
    cli_ranks_fini (&rk);
    return ex;
}

static int infer_run (struct cli *cli, int argc, char **argv)
{
    struct infer_args a = {.m = {.device = "auto"}, .out_dtype = DC_NPY_F4};
    int optindex, rc;

    if ((rc = cli_parse (cli, &cmd_infer, argc, argv, infer_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    if (!a.model || !a.input || !a.output) {
        cli_usage_error (cli, "--model, --input and --output are required");
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if (cli_split_check (cli, &a.m) < 0)
        return EXIT_USAGE;
    if (a.io == DC_IO_DIRECT && (a.m.split.split == DC_SPLIT_LAYERS ||
                                 a.m.split.split == DC_SPLIT_HYBRID)) {
        /* micro-batches go stage to stage through this process */
        cli_usage_error (cli,
                         "--io direct: not with --split %s (the "
                         "micro-batches pass through this process)",
                         dc_split_name (a.m.split.split));
        return EXIT_USAGE;
    }
    return infer_go (cli, &a);
}

const struct cli_command cmd_infer = {
    .name = "infer",
    .summary = "batch inference of an MLP: --model M.safetensors --input "
               "X.npy --output Y.npy",
    .usage = "--model M.safetensors --input X.npy --output Y.npy "
             "[--dtype f32|tf32|f16|bf16] [--device cpu|cuda|auto] "
             "[--chunk-rows R] [--output-dtype f4|f2] [--activation A] "
             "[--threads N] [--io direct|relay|auto] [--report R.json] "
             "[--trace T.json] [--progress]",
    .opts = infer_opts,
    .opts2 = cli_model_opts,
    .launch_opts = true,
    .run = infer_run,
};
