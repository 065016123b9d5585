/* cmd_infer.c - dcrun infer: batch inference of an MLP on one host
 *
 * Reads the model (safetensors) and the input rows (.npy), runs them through
 * the compute back-end block by block, and writes the output rows to a
 * temporary file renamed to --output when complete.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "compute_cli.h"
#include "dist.h"
#include "model_opts.h"
#include "dist_pipe.h"
#include "job.h"
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
#define BLOCK_BYTES ((size_t)256 << 20)

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

/* Across the ranks of a host list: the coordinator runs here. */
static int infer_distributed (struct cli *cli, const struct infer_args *a)
{
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    struct dc_coord_infer_opts io = {
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
    };
    struct cli_dist_opts d = {
        .heartbeat_timeout = a->m.heartbeat_timeout,
        .report = a->report,
        .progress = a->m.progress,
    };
    if (cli_split_wanted (&a->m.split)) /* layouts: cli/dist_pipe.c */
        return cli_pipe_infer (cli, &io, &d, &a->m.split);
    if (dc_comm_mpi_wanted ())
        return cli_mpi_infer (cli, &io, &d);
    return cli_dist_infer (cli, &io, &d);
}

static void add_model_info (struct dc_report *rep, const char *path,
                            const struct dc_model *m, enum dc_dtype dtype)
{
    cJSON *o = dc_report_extra (rep, "model");
    cJSON *l;
    cJSON_AddStringToObject (o, "path", path);
    cJSON_AddNumberToObject (o, "inputs", dc_model_inputs (m));
    cJSON_AddNumberToObject (o, "outputs", dc_model_outputs (m));
    cJSON_AddNumberToObject (o, "parameters", (double)dc_model_nparams (m));
    l = cJSON_AddArrayToObject (o, "layers");
    for (int i = 0; i < m->nlayers; i++) {
        cJSON *e = cJSON_CreateObject ();
        cJSON_AddStringToObject (e, "name", m->layers[i].name);
        cJSON_AddNumberToObject (e, "in", m->layers[i].in);
        cJSON_AddNumberToObject (e, "out", m->layers[i].out);
        cJSON_AddStringToObject (e, "activation",
                                 dc_act_name (m->layers[i].act));
        cJSON_AddStringToObject (e, "dtype", m->layers[i].w->dtype);
        cJSON_AddItemToArray (l, e);
    }
    cJSON_AddStringToObject (o, "compute_dtype", dc_dtype_name (dtype));
}

static int infer_run (struct cli *cli, int argc, char **argv)
{
    struct infer_args a = {.m = {.device = "auto"}, .out_dtype = DC_NPY_F4};
    const struct dc_compute_ops *ops = NULL;
    struct dc_compute *c = NULL;
    struct dc_mlp_dev *net = NULL;
    struct dc_model *m = NULL;
    struct dc_npy *x = NULL;
    struct dc_npy_writer *w = NULL;
    struct dc_report *rep = NULL;
    float *hx = NULL, *hy = NULL;
    dc_error_t err;
    int optindex, rc, ex = EXIT_OK;

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
    if ((a.m.split.split == DC_SPLIT_LAYERS ||
         a.m.split.split == DC_SPLIT_HYBRID) &&
        !cli_job_wanted (cli)) {
        cli_usage_error (cli, "--split %s needs ranks (-H, -f or -n)",
                         dc_split_name (a.m.split.split));
        return EXIT_USAGE;
    }
    if ((rc = infer_preflight (cli, &a)) >= 0)
        return rc;
    if (dc_comm_mpi_wanted () || cli_job_wanted (cli))
        return infer_distributed (cli, &a);
    double t0 = dc_report_now (), t;
    if (!(rep = dc_report_create ("infer")))
        return cli_error (EXIT_FAIL, "infer: out of memory");

    /* load: the model and the input's header */
    if (!(m = dc_model_load (a.model, a.m.activation, &err))) {
        ex = cli_error (EXIT_INPUT, "%s", err.text);
        goto out;
    }
    if (!(x = dc_npy_open (a.input, &err))) {
        ex = cli_error (EXIT_INPUT, "%s", err.text);
        goto out;
    }
    int in = dc_model_inputs (m), outn = dc_model_outputs (m);
    if (x->ndim != 2 || x->row_elems != (size_t)in || x->dtype == DC_NPY_I8) {
        char shape[96] = "";
        for (int i = 0, n = 0; i < x->ndim && n < 64; i++)
            n += snprintf (shape + n, sizeof (shape) - (size_t)n, "%s%lld",
                           i ? ", " : "", (long long)x->shape[i]);
        ex = cli_error (EXIT_INPUT,
                        "%s: array of shape (%s) and dtype %s, but the model "
                        "takes float rows of %d inputs: expected (rows, %d)",
                        a.input, shape, dc_npy_descr (x->dtype), in, in);
        goto out;
    }
    size_t rows = x->rows;
    double flop_row = dc_model_flops_per_row (m);

    struct dc_compute_opts co = {
        .dtype = a.m.dtype,
        .threads = (int)a.m.threads,
        .chunk_rows = (size_t)a.chunk_rows,
    };
    if ((ex = cli_compute_open ("infer", a.m.device, &co, &ops, &c)) != EXIT_OK)
        goto out;
    {
        struct dc_layer_view *lv = calloc ((size_t)m->nlayers, sizeof (*lv));
        struct dc_mlp_view view;
        if (!lv) {
            ex = cli_error (EXIT_FAIL, "infer: out of memory");
            goto out;
        }
        dc_model_view (m, lv, &view);
        net = ops->mlp_load (c, &view, &err);
        free (lv);
        if (!net) {
            ex = cli_error (EXIT_GPU, "infer: %s", err.text);
            goto out;
        }
    }
    if (a.report)
        add_model_info (rep, a.model, m, a.m.dtype);
    dc_model_destroy (m); /* the back-end has its own copy */
    m = NULL;

    int64_t oshape[2] = {(int64_t)rows, outn};
    if (!(w = dc_npy_writer_create (a.output, a.out_dtype, 2, oshape,
                                    a.report != NULL, &err))) {
        ex = cli_error (EXIT_INPUT, "%s", err.text);
        goto out;
    }
    /* blocks: a sixteenth of the batch, at least a few back-end chunks,
     * at most BLOCK_BYTES of input and output */
    size_t per_row = ((size_t)in + (size_t)outn) * sizeof (float);
    size_t block = rows / 16;
    size_t minblock = a.chunk_rows ? 4 * (size_t)a.chunk_rows : 4096;
    if (block < minblock)
        block = minblock;
    if (block > BLOCK_BYTES / per_row)
        block = BLOCK_BYTES / per_row;
    if (block < 1)
        block = 1;
    if (block > rows)
        block = rows ? rows : 1;
    if (!(hx = malloc (block * (size_t)in * sizeof (float))) ||
        !(hy = malloc (block * (size_t)outn * sizeof (float)))) {
        ex = cli_error (EXIT_FAIL, "infer: out of memory for %zu-row blocks",
                        block);
        goto out;
    }
    t = dc_report_now ();
    dc_report_phase_add (rep, DC_PHASE_LOAD, t - t0);

    struct cli_progress pr;
    cli_progress_init (&pr, a.m.progress, "infer", rows);
    double tc = 0;
    size_t nonfinite = 0;
    for (size_t r0 = 0; r0 < rows; r0 += block) {
        size_t n = rows - r0 < block ? rows - r0 : block;
        double t1 = dc_report_now ();
        if (dc_npy_read_f32 (x, r0, n, hx, &err) < 0) {
            ex = cli_error (EXIT_INPUT, "%s", err.text);
            goto out;
        }
        double t2 = dc_report_now ();
        if (ops->mlp_infer (c, net, hx, n, r0, hy, &err) < 0) {
            ex = cli_error (EXIT_GPU, "infer: %s", err.text);
            goto out;
        }
        double t3 = dc_report_now ();
        if (dc_npy_writer_write_f32 (w, r0, n, hy, &err) < 0) {
            ex = cli_error (EXIT_FAIL, "%s", err.text);
            goto out;
        }
        double t4 = dc_report_now ();
        dc_report_phase_add (rep, DC_PHASE_LOAD, t2 - t1);
        dc_report_phase_add (rep, DC_PHASE_COMPUTE, t3 - t2);
        dc_report_phase_add (rep, DC_PHASE_WRITE, t4 - t3);
        tc += t3 - t2;
        nonfinite += dc_nonfinite_rows (hy, n, (size_t)outn);
        cli_progress_update (&pr, r0 + n, NULL);
    }
    t = dc_report_now ();
    if (dc_npy_writer_commit (w, &err) < 0) {
        ex = cli_error (EXIT_FAIL, "%s", err.text);
        goto out;
    }
    dc_report_phase_add (rep, DC_PHASE_WRITE, dc_report_now () - t);
    cli_progress_done (&pr, rows);
    cli_infer_warn (rep, a.output, &nonfinite);

    if (a.report) {
        char host[256] = "localhost";
        gethostname (host, sizeof (host) - 1);
        dc_report_add_rank (rep, 0, host, ops->describe (c), rows, tc,
                            flop_row * (double)rows);
        dc_report_set_rank_kernel (rep, 0,
                                   ops->kernel ? ops->kernel (c) : NULL);
        dc_report_set_output (rep, a.output, 2, oshape,
                              dc_npy_descr (a.out_dtype),
                              dc_npy_writer_sha256 (w));
        dc_report_set_total_seconds (rep, dc_report_now () - t0);
        if (dc_report_write (rep, a.report, &err) < 0) {
            ex = cli_error (EXIT_FAIL, "%s", err.text);
            goto out;
        }
    }
out:
    free (hx);
    free (hy);
    dc_npy_writer_destroy (w); /* without commit: no output file */
    if (net)
        ops->mlp_unload (c, net);
    if (ops && c)
        ops->destroy (c);
    dc_npy_close (x);
    dc_model_destroy (m);
    dc_report_destroy (rep);
    return ex;
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
