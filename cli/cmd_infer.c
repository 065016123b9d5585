/* cmd_infer.c - dcrun infer: batch inference of an MLP on one host
 *
 * Parses the options into struct dc_infer_opts; lib/run/infer.c picks how
 * the rows are computed and runs them; the rest is printed here.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "model_opts.h"
#include "status.h"
#include "lib/run/infer.h"

struct infer_args {
    struct dc_infer_opts o;  /* what lib/run/infer.h takes */
    struct cli_model_opts m; /* shared with train */
};

static const struct cli_word out_dtypes[] = {{"f4", DC_NPY_F4},
                                             {"f2", DC_NPY_F2},
                                             {"f32", DC_NPY_F4},
                                             {"f16", DC_NPY_F2},
                                             {0}}; /* f32, f16: aliases */

#define F(kd, member, ...) CLI_AT (struct infer_args, kd, member, __VA_ARGS__)
static const struct cli_opt infer_opts[] = {
    {"model", 0, "M.safetensors",
     "the MLP (PyTorch nn.Sequential of Linear layers, safetensors)",
     F (CLI_STR, o.io.model_path)},
    {"input", 0, "X.npy", "input rows [rows, inputs] (<f4, <f2 or <f8)",
     F (CLI_STR, o.io.input_path)},
    {"output", 0, "Y.npy", "output rows [rows, outputs], written when complete",
     F (CLI_STR, o.io.output_path)},
    {"chunk-rows", 0, "R", "rows per pipelined chunk (default: the back-end's)",
     F (CLI_SIZE, o.io.chunk_rows, 1, 1L << 30)},
    {"output-dtype", 0, "f4|f2", "output element type (default f4)",
     F (CLI_WORD, o.io.out_dtype, .words = out_dtypes)},
    {"report", 0, "R.json",
     "write a run report (phases, TFLOP/s, output sha256, versions)",
     F (CLI_STR, o.report)},
    {"io", 0, "direct|relay|auto",
     "ranks read and write their rows themselves (direct), or through "
     "this process (relay); auto: direct for every rank that sees the "
     "same files (default)",
     F (CLI_WORD, o.io.io_mode, .words = cli_io_words)},
    {"trace", 0, "T.json",
     "write a Chrome trace (Perfetto): launch, load, chunks, lost ranks",
     F (CLI_STR, o.trace)},
    {0},
};
#undef F

/* dc_infer_run picks one process, MPI, the driver, a pipeline or data
 * parallel; a job when the command line asks for ranks (not under MPI). */
static int infer_go (struct cli *cli, struct dc_infer_opts *o)
{
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    struct cli_ranks *rk = o->arg;
    bool job = !dc_comm_mpi_wanted () && cli_job_wanted (cli);
    dc_error_t err;
    bool done;
    int sig, st, ex;

    o->io.delay_ms = delay ? atoi (delay) : 0; /* test hook: per chunk */
    o->dry_run = cli->dry_run;
    rk->job.sfd = -1;
    st = dc_infer_prepare (o, dc_comm_mpi_wanted () || cli_job_wanted (cli),
                           &done, &err);
    if (st != DC_STATUS_OK || done)
        return cli_status (NULL, st, 0, &err);
    if (job && (ex = cli_ranks_init (cli, rk)) != EXIT_OK)
        return ex;
    st = dc_infer_run (o, job ? &rk->job : NULL, &sig, &err);
    if (cli->dry_run && st == DC_STATUS_OK && job && dc_infer_io_plan (o))
        printf ("io: %s\n", dc_infer_io_plan (o));
    if (st == DC_STATUS_DRIVER)
        ex = cli_dist_exec_driver (rk);
    else
        ex = cli_status (NULL, st, sig, &err);
    cli_ranks_fini (rk);
    return ex;
}

static int infer_run (struct cli *cli, int argc, char **argv)
{
    struct cli_ranks rk = {.cli = cli};
    struct infer_args a = {.m = {.device = "auto"},
                           .o = {.io.out_dtype = DC_NPY_F4,
                                 .progress = cli_run_progress,
                                 .dry_run_data = cli_dry_run_data,
                                 .dry_run_layout = cli_dry_run_layout,
                                 .on_rank_error = cli_rank_error,
                                 .arg = &rk}};
    struct dc_infer_opts *o = &a.o;
    dc_error_t err;
    int rc;

    if ((rc = cli_parse_opts (cli, &cmd_infer, argc, argv, &a)) >= 0)
        return rc;
    if (!o->io.model_path || !o->io.input_path || !o->io.output_path) {
        cli_usage_error (cli, "--model, --input and --output are required");
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if (cli_split_check (cli, &a.m) < 0)
        return EXIT_USAGE;
    o->io.device = a.m.device;
    o->dtype = a.m.dtype;
    o->io.dtype = dc_dtype_name (a.m.dtype);
    o->io.activation = a.m.activation;
    o->io.threads = (int)a.m.threads;
    o->heartbeat_timeout = a.m.heartbeat_timeout;
    o->split = a.m.split;
    rk.progress = a.m.progress;
    if (dc_infer_check (o, &err) < 0) {
        cli_usage_error (cli, "%s", err.text);
        return EXIT_USAGE;
    }
    return infer_go (cli, o);
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
    .opts2_off = offsetof (struct infer_args, m),
    .launch_opts = true,
    .run = infer_run,
};
