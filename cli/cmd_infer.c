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
};

/* host memory per block of rows read, computed and written */

struct infer_args {
    const char *model, *input, *output, *report;
    enum dc_npy_dtype out_dtype;
    long chunk_rows;
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
    }
    return cli_model_opt (cli, key, arg, &a->m) == 0 ? 0 : -1;
}

/* Before any work, in every mode: the files (no output is an input, inputs
 * are regular files, the output's folder takes a file), and a batch of 0
 * rows gets its (0, outputs) output here, with no rank started.  -1 to go
 * on, else the exit status. */
static int infer_preflight (struct cli *cli, const struct infer_args *a)
{
    const struct dc_file_use files[] = {
        {"--model", a->model, DC_FILE_INPUT},
        {"--input", a->input, DC_FILE_INPUT},
        {"--output", a->output, DC_FILE_OUTPUT},
        {"--report", a->report, DC_FILE_OUTPUT},
    };
    struct dc_npy *x = NULL;
    struct dc_model *m = NULL;
    struct dc_npy_writer *w = NULL;
    struct dc_report *rep = NULL;
    dc_error_t err;
    int ex = -1;

    if (dc_file_check (files, sizeof (files) / sizeof (files[0]), &err) < 0)
        return cli_error (EXIT_INPUT, "%s", err.text);
    if (!dc_comm_mpi_wanted () && !cli_job_wanted (cli))
        return -1; /* one process: 0 rows are a loop of 0 blocks */
    if (!(x = dc_npy_open (a->input, &err)))
        return cli_error (EXIT_INPUT, "%s", err.text);
    if (x->rows > 0 || x->ndim != 2) {
        dc_npy_close (x); /* the coordinator checks the rest */
        return -1;
    }
    double t0 = dc_report_now ();
    const char *mr = getenv ("OMPI_COMM_WORLD_RANK");
    if (!mr)
        mr = getenv ("SLURM_PROCID");
    if (!(m = dc_model_load (a->model, a->m.activation, &err)))
        ex = cli_error (EXIT_INPUT, "%s", err.text);
    else if (x->row_elems != (size_t)dc_model_inputs (m) ||
             x->dtype == DC_NPY_I8)
        ex = cli_error (EXIT_INPUT,
                        "%s: shape does not fit the model: "
                        "expected float rows (rows, %d)",
                        a->input, dc_model_inputs (m));
    else if (cli->dry_run) {
        printf ("rows: 0: nothing to run\n");
        ex = EXIT_OK;
    } else if (dc_comm_mpi_wanted () && mr && atoi (mr) != 0)
        ex = EXIT_OK; /* under mpirun: rank 0 writes */
    else {
        int64_t shape[2] = {0, dc_model_outputs (m)};
        if (!(w = dc_npy_writer_create (a->output, a->out_dtype, 2, shape,
                                        a->report != NULL, &err)) ||
            dc_npy_writer_commit (w, &err) < 0)
            ex = cli_error (EXIT_INPUT, "%s", err.text);
        else if (a->report && (rep = dc_report_create ("infer"))) {
            dc_report_set_output (rep, a->output, 2, shape,
                                  dc_npy_descr (a->out_dtype),
                                  dc_npy_writer_sha256 (w));
            dc_report_set_total_seconds (rep, dc_report_now () - t0);
            ex = dc_report_write (rep, a->report, &err) < 0
                     ? cli_error (EXIT_FAIL, "%s", err.text)
                     : EXIT_OK;
        } else
            ex = EXIT_OK;
    }
    dc_report_destroy (rep);
    dc_npy_writer_destroy (w);
    dc_model_destroy (m);
    dc_npy_close (x);
    return ex;
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
            },
        .dtype = a->m.dtype,
        .report = a->report,
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
    int sig, st, ex;

    rk.job.sfd = -1;
    if (job && (ex = cli_ranks_init (cli, &rk)) != EXIT_OK)
        return ex;
    st = dc_infer_run (&o, job ? &rk.job : NULL, &sig, &err);
    if (st == DC_STATUS_DRIVER)
        ex = cli_dist_exec_driver (&rk);
    else
        ex = cli_status (NULL, st, sig, &err);
    dc_job_fini (&rk.job);
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
    if ((rc = infer_preflight (cli, &a)) >= 0)
        return rc;
    return infer_go (cli, &a);
}

const struct cli_command cmd_infer = {
    .name = "infer",
    .summary = "batch inference of an MLP: --model M.safetensors --input "
               "X.npy --output Y.npy",
    .usage = "--model M.safetensors --input X.npy --output Y.npy "
             "[--dtype f32|tf32|f16|bf16] [--device cpu|cuda|auto] "
             "[--chunk-rows R] [--output-dtype f4|f2] [--activation A] "
             "[--threads N] [--report R.json] [--progress]",
    .opts = infer_opts,
    .opts2 = cli_model_opts,
    .launch_opts = true,
    .run = infer_run,
};
