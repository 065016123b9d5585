/* cmd_train.c - dcrun train: train an MLP on one host
 *
 * Mini-batch training (sgd with momentum or adam, mse or cross-entropy) of
 * the model in --model on the rows of --input and --target, shuffled each
 * epoch by a seeded generator; writes the trained model with the input's
 * tensor names, dtypes and metadata.  With --checkpoint-dir, a checkpoint
 * (weights, optimizer state, position, generator) is written every N steps
 * and at each epoch's end; --resume continues from it to the same result.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "compute_cli.h"
#include "dist.h"
#include "model_opts.h"
#include "status.h"
#include "lib/util/file.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/run/pipeline.h"
#include "lib/formats/report.h"
#include "lib/util/sha256.h"

enum {
    OPT_MODEL = 0x100,
    OPT_INPUT,
    OPT_TARGET,
    OPT_OUTPUT,
    OPT_EPOCHS,
    OPT_BATCH_SIZE,
    OPT_LR,
    OPT_MOMENTUM,
    OPT_OPTIMIZER,
    OPT_LOSS,
    OPT_SEED,
    OPT_CKPT_DIR,
    OPT_CKPT_EVERY,
    OPT_RESUME,
    OPT_LOG,
    OPT_REPORT,
};

#define CKPT_NAME "checkpoint.safetensors"

struct train_args {
    const char *model, *input, *target, *output, *report, *log;
    const char *ckpt_dir;
    long epochs, batch_size, ckpt_every;
    double lr, momentum;
    bool lr_set, resume;
    unsigned long long seed;
    enum dc_optim optim;
    enum dc_loss loss;
    struct cli_model_opts m; /* shared with infer */
};

static const struct cli_opt train_opts[] = {
    {"model", required_argument, OPT_MODEL, "M.safetensors",
     "the MLP to start from (PyTorch nn.Sequential, safetensors)"},
    {"input", required_argument, OPT_INPUT, "X.npy", "input rows [rows, in]"},
    {"target", required_argument, OPT_TARGET, "T.npy",
     "targets: [rows, out] floats (mse) or [rows] int64 labels (xent)"},
    {"output", required_argument, OPT_OUTPUT, "M2.safetensors",
     "the trained model (same tensor names and dtypes)"},
    {"epochs", required_argument, OPT_EPOCHS, "E",
     "passes over the data "
     "(default 1)"},
    {"batch-size", required_argument, OPT_BATCH_SIZE, "B",
     "rows per step (default 32)"},
    {"lr", required_argument, OPT_LR, "LR",
     "learning rate (default 0.01 for sgd, 0.001 for adam)"},
    {"momentum", required_argument, OPT_MOMENTUM, "M",
     "sgd momentum (default 0)"},
    {"optimizer", required_argument, OPT_OPTIMIZER, "sgd|adam",
     "as torch.optim.SGD / torch.optim.Adam (default sgd)"},
    {"loss", required_argument, OPT_LOSS, "mse|xent",
     "mean squared error or softmax cross-entropy (default mse)"},
    {"seed", required_argument, OPT_SEED, "S",
     "seed of the shuffling (default 0)"},
    {"checkpoint-dir", required_argument, OPT_CKPT_DIR, "D",
     "write D/" CKPT_NAME " at each epoch's end"},
    {"checkpoint-every", required_argument, OPT_CKPT_EVERY, "N",
     "and every N steps"},
    {"resume", no_argument, OPT_RESUME, NULL,
     "continue from the checkpoint in --checkpoint-dir"},
    {"log", required_argument, OPT_LOG, "loss.csv",
     "one line per step: epoch,batch,step,rows,loss"},
    {"report", required_argument, OPT_REPORT, "R.json", "write a run report"},
    {0},
};

static int train_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct train_args *a = ctx;
    long v;

    switch (key) {
    case OPT_MODEL:
        a->model = arg;
        return 0;
    case OPT_INPUT:
        a->input = arg;
        return 0;
    case OPT_TARGET:
        a->target = arg;
        return 0;
    case OPT_OUTPUT:
        a->output = arg;
        return 0;
    case OPT_EPOCHS:
        return cli_parse_long (cli, "--epochs", arg, 1, 1L << 40, &a->epochs);
    case OPT_BATCH_SIZE:
        return cli_parse_long (cli, "--batch-size", arg, 1, 1L << 24,
                               &a->batch_size);
    case OPT_LR:
        a->lr_set = true;
        if (cli_parse_double (cli, "--lr", arg, 0, 1e6, &a->lr) < 0)
            return -1;
        if (!(a->lr > 0))
            return cli_usage_error (cli, "--lr must be above 0");
        return 0;
    case OPT_MOMENTUM:
        return cli_parse_double (cli, "--momentum", arg, 0, 0.999999,
                                 &a->momentum);
    case OPT_OPTIMIZER:
        if (!strcmp (arg, "sgd"))
            a->optim = DC_OPTIM_SGD;
        else if (!strcmp (arg, "adam"))
            a->optim = DC_OPTIM_ADAM;
        else
            return cli_usage_error (cli,
                                    "--optimizer '%s': expected sgd or "
                                    "adam",
                                    arg);
        return 0;
    case OPT_LOSS:
        if (!strcmp (arg, "mse"))
            a->loss = DC_LOSS_MSE;
        else if (!strcmp (arg, "xent"))
            a->loss = DC_LOSS_XENT;
        else
            return cli_usage_error (cli, "--loss '%s': expected mse or xent",
                                    arg);
        return 0;
    case OPT_SEED: {
        char *end;
        errno = 0;
        a->seed = strtoull (arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-')
            return cli_usage_error (cli,
                                    "--seed '%s': expected a "
                                    "non-negative integer",
                                    arg);
        return 0;
    }
    case OPT_CKPT_DIR:
        a->ckpt_dir = arg;
        return 0;
    case OPT_CKPT_EVERY:
        if (cli_parse_long (cli, "--checkpoint-every", arg, 1, 1L << 40, &v) <
            0)
            return -1;
        a->ckpt_every = v;
        return 0;
    case OPT_RESUME:
        a->resume = true;
        return 0;
    case OPT_LOG:
        a->log = arg;
        return 0;
    case OPT_REPORT:
        a->report = arg;
        return 0;
    }
    return cli_model_opt (cli, key, arg, &a->m) == 0 ? 0 : -1;
}

/* What the step callback needs. */
struct train_state {
    const struct cli *cli;
    FILE *log;
    struct cli_progress pr;
    size_t rows, batch;
    int64_t epochs;
    double epoch_loss; /* sum of rows x loss in the current epoch */
    size_t epoch_rows;
    double first_loss, last_loss; /* epoch means */
    bool have_first;
    int64_t steps_run;
    size_t rows_run;
    int log_errno; /* a --log line could not be written */
};

/* One line of --log, written at once (line-buffered): a log that cannot
 * be written stops the run at the first line, not after it.  -1 with
 * s->log_errno set. */
static int __attribute__ ((format (printf, 2, 3)))
log_line (struct train_state *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start (ap, fmt);
    n = vfprintf (s->log, fmt, ap);
    va_end (ap);
    if (n < 0 || fflush (s->log) != 0 || ferror (s->log)) {
        s->log_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* The log, opened before any work: no link followed to create it. */
static int log_open (struct train_state *s, const char *path, bool append)
{
    dc_error_t err;
    int fd = dc_file_open_log (path, append, &err);

    if (fd < 0)
        return cli_error (EXIT_INPUT, "%s", err.text);
    if (!(s->log = fdopen (fd, append ? "a" : "w"))) {
        close (fd);
        return cli_error (EXIT_FAIL, "%s: %s", path, strerror (errno));
    }
    setvbuf (s->log, NULL, _IOLBF, 0);
    if (!append && log_line (s, "epoch,batch,step,rows,loss\n") < 0)
        return cli_error (EXIT_INPUT, "%s: write: %s", path,
                          strerror (s->log_errno));
    return EXIT_OK;
}

static int step_cb (const struct dc_train_pos *pos, size_t rows, double loss,
                    void *arg)
{
    struct train_state *s = arg;
    bool epoch_end = pos->batch == 0;
    int64_t epoch = epoch_end ? pos->epoch - 1 : pos->epoch;
    int64_t batch =
        epoch_end ? (int64_t)((s->rows + s->batch - 1) / s->batch) : pos->batch;

    s->steps_run++;
    s->rows_run += rows;
    if (s->log && log_line (s, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%zu,%.9g\n",
                            epoch + 1, batch, pos->step, rows, loss) < 0)
        return 1; /* stop here: the last checkpoint stays */
    s->epoch_loss += loss * (double)rows;
    s->epoch_rows += rows;
    if (epoch_end) {
        double mean = s->epoch_loss / (double)s->epoch_rows;
        if (!s->have_first) {
            s->first_loss = mean;
            s->have_first = true;
        }
        s->last_loss = mean;
        if (!s->cli->quiet) {
            if (s->pr.on && s->pr.tty)
                fprintf (stderr, "\r%*s\r", s->pr.width, "");
            printf ("epoch %" PRId64 "/%" PRId64 " loss %.6g\n", epoch + 1,
                    s->epochs, mean);
            fflush (stdout);
        }
        s->epoch_loss = 0;
        s->epoch_rows = 0;
    }
    char extra[64];
    snprintf (extra, sizeof (extra), "loss %.4g", loss);
    size_t done = (size_t)pos->epoch * s->rows + (size_t)pos->batch * s->batch;
    cli_progress_update (&s->pr, done > s->pr.total ? s->pr.total : done,
                         extra);
    return 0;
}

static char *join (const char *dir, const char *name)
{
    size_t n = strlen (dir) + strlen (name) + 2;
    char *p = malloc (n);
    if (p)
        snprintf (p, n, "%s/%s", dir, name);
    return p;
}

static int check_target (const struct train_args *a, const struct dc_npy *t,
                         size_t rows, int outn)
{
    if (a->loss == DC_LOSS_XENT) {
        if (t->dtype != DC_NPY_I8 || t->ndim != 1 || t->rows != rows)
            return cli_error (EXIT_INPUT,
                              "%s: cross-entropy needs int64 labels of shape "
                              "(%zu,), got %s of %d dimensions and %zu rows",
                              a->target, rows, dc_npy_descr (t->dtype), t->ndim,
                              t->rows);
        return EXIT_OK;
    }
    if (t->dtype == DC_NPY_I8 || t->rows != rows ||
        t->row_elems != (size_t)outn || t->ndim < 1 || t->ndim > 2 ||
        (t->ndim == 1 && outn != 1))
        return cli_error (EXIT_INPUT,
                          "%s: mse needs float targets of shape (%zu, %d), "
                          "got %s of %d dimensions, %zu rows of %zu",
                          a->target, rows, outn, dc_npy_descr (t->dtype),
                          t->ndim, t->rows, t->row_elems);
    return EXIT_OK;
}

/* ---- across ranks ---- */

struct train_dist {
    struct cli_ranks rk;
    bool inited;
    bool mpi; /* under mpirun/srun: MPI rank 0 */
    struct dc_job_mpi m;
    const char **mpi_hosts;
    struct dc_coord_train *ct;
    uint8_t *model, *ckpt;
    struct dc_layout *lo; /* --split layers/hybrid: cli/dist_pipe.c */
    struct dc_pipe_train *pt;
};

/* The exit status of a distributed run that failed, after saying why. */
static int train_dist_error (struct train_dist *dj, const dc_error_t *err)
{
    int sig = dj->mpi ? dj->m.interrupted : dj->rk.job.interrupted;

    if (sig > 0)
        return cli_error (128 + sig,
                          "train: interrupted by SIG%s: every rank stopped; "
                          "--resume continues from the last checkpoint",
                          cli_signame (sig));
    if (errno == EHOSTDOWN)
        return cli_error (EXIT_FAIL, "train: %s", err->text);
    return cli_error (EXIT_GPU, "train: %s", err->text);
}

static void train_dist_report (struct train_dist *dj, struct dc_report *rep)
{
    cJSON *x = dc_report_extra (rep, "distributed");

    dc_report_set_layout (rep, "data");
    for (size_t h = 0; !dj->mpi && h < dj->rk.job.hosts->count; h++)
        dc_report_add_host (rep, dj->rk.job.hosts->v[h].name);
    if (x) {
        cJSON_AddNumberToObject (x, "ranks",
                                 dj->mpi ? dj->m.size : dj->rk.job.plan->size);
        cJSON_AddStringToObject (x, "lost_workers",
                                 dc_coord_train_lost (dj->ct));
    }
}

static int train_dist_fini (struct train_dist *dj, int ex)
{
    bool failed = ex != EXIT_OK;

    if (dj->ct) {
        dc_coord_train_finish (dj->ct);
        dj->ct = NULL;
    }
    free (dj->model);
    free (dj->ckpt);
    dj->model = dj->ckpt = NULL;
    if (dj->mpi) {
        free (dj->mpi_hosts);
        dc_job_mpi_finish (&dj->m, ex);
        return ex;
    }
    dc_pipe_train_finish (dj->pt);
    dj->pt = NULL;
    dc_layout_destroy (dj->lo);
    dj->lo = NULL;
    if (dj->inited) {
        if (failed)
            dc_job_stop (&dj->rk.job);
        else {
            /* the ranks leave after DONE: give them a moment */
            for (int i = 0; i < 100 && dj->rk.job.hub &&
                            dc_comm_stream_running (dj->rk.job.hub) > 0;
                 i++) {
                struct dc_comm_msg m;
                if (dc_comm_recv (dj->rk.job.hub, &m, 50, NULL) > 0)
                    free (m.data);
            }
        }
        dc_job_fini (&dj->rk.job);
    }
    return ex;
}

/* --split: plan the layout; a pipeline gets each rank its stage (and,
 * when resuming, the checkpoint's weights and optimizer state of its
 * layers); a layout that is data goes on as data parallel. */
static int train_pipe_launch (struct cli *cli, const struct train_args *a,
                              const struct dc_model *m,
                              const struct dc_train_opts *to, const char *ckpt,
                              bool resumed, struct train_dist *dj);

/* Start the ranks and hand them the job, the model and (when resuming) the
 * checkpoint; they answer when ready. */
static int train_launch (struct cli *cli, const struct train_args *a,
                         const struct dc_model *m,
                         const struct dc_train_opts *to, const char *ckpt,
                         bool resumed, struct train_dist *dj)
{
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    size_t mlen = 0, clen = 0;
    dc_error_t err;
    int ex;

    if (!dj->mpi) {
        if ((ex = cli_ranks_init (cli, &dj->rk)) != EXIT_OK)
            return ex;
        dj->inited = true;
        if (dc_job_via_driver (&dj->rk.job)) {
            ex = cli_dist_exec_driver (&dj->rk);
            return cli->dry_run && ex == EXIT_OK ? EXIT_FAIL : ex;
        }
    }
    if (!(dj->model = dc_file_read (a->model, (size_t)1 << 32, &mlen, &err)) ||
        (resumed &&
         !(dj->ckpt = dc_file_read (ckpt, (size_t)1 << 32, &clen, &err))))
        return cli_error (EXIT_INPUT, "train: %s", err.text);
    if (dc_run_split_wanted (&a->m.split))
        return train_pipe_launch (cli, a, m, to, ckpt, resumed, dj);
    if (cli->dry_run && !dj->mpi) {
        printf ("launcher: %s\n", dj->rk.job.launcher);
        for (int r = 0; r < dj->rk.job.plan->size; r++)
            printf ("rank %d on %s: %s serve\n", r, dj->rk.job.host[r],
                    cli_self_path ());
        return EXIT_FAIL; /* the caller stops here */
    }
    if (dj->mpi) {
        if (!(dj->mpi_hosts = calloc ((size_t)dj->m.size, sizeof (char *))))
            return cli_error (EXIT_FAIL, "train: out of memory");
        for (int r = 0; r < dj->m.size; r++)
            dj->mpi_hosts[r] = "(mpi)";
    } else if ((ex = cli_ranks_launch (&dj->rk, a->m.heartbeat_timeout)) !=
               EXIT_OK)
        return ex;
    struct dc_coord_train_opts o = {
        .device = a->m.device,
        .dtype = dc_dtype_name (a->m.dtype),
        .activation = a->m.activation,
        .threads = (int)a->m.threads,
        .delay_ms = delay ? atoi (delay) : 0,
        .to = to,
        .inputs = dc_model_inputs (m),
        .outputs = dc_model_outputs (m),
        .model = dj->model,
        .model_len = mlen,
        .checkpoint = dj->ckpt,
        .checkpoint_len = clen,
        .check = dj->mpi ? dc_job_mpi_check : cli_ranks_check,
        .arg = dj->mpi ? (void *)&dj->m : (void *)&dj->rk,
        .hosts = dj->mpi ? dj->mpi_hosts : dj->rk.job.host,
    };
    if (!(dj->ct = dc_coord_train_start (dj->mpi ? dj->m.hub : dj->rk.job.hub,
                                         &o, &err)))
        return train_dist_error (dj, &err);
    return EXIT_OK;
}

static int train_pipe_launch (struct cli *cli, const struct train_args *a,
                              const struct dc_model *m,
                              const struct dc_train_opts *to, const char *ckpt,
                              bool resumed, struct train_dist *dj)
{
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    struct dc_safetensors *ck = NULL;
    dc_error_t err;
    int ex, st;

    /* activations: a group holds its share of a batch at once */
    if ((st = dc_job_layout (&dj->rk.job, m, &a->m.split, a->m.device,
                             (size_t)a->batch_size, &dj->lo, &err)) !=
        DC_STATUS_OK)
        return cli_status (cli->command, st, 0, &err);
    if (cli->dry_run) {
        cli_dry_run_layout (&dj->rk.job, dj->lo, m,
                            (size_t)a->m.split.micro_rows, 0, NULL);
        return EXIT_FAIL; /* the caller stops here */
    }
    if (dj->lo->split == DC_SPLIT_DATA) {
        dc_layout_destroy (dj->lo);
        dj->lo = NULL;
        struct train_args b = *a;
        b.m.split = (struct dc_run_split){.split = DC_SPLIT_DATA};
        return train_launch (cli, &b, m, to, ckpt, resumed, dj);
    }
    if (resumed && !(ck = dc_safetensors_load (ckpt, &err)))
        return cli_error (EXIT_INPUT, "train: %s", err.text);
    if ((ex = cli_ranks_launch (&dj->rk, a->m.heartbeat_timeout)) != EXIT_OK) {
        dc_safetensors_destroy (ck);
        return ex;
    }
    struct dc_pipe_train_opts o = {
        .device = a->m.device,
        .dtype = dc_dtype_name (a->m.dtype),
        .threads = (int)a->m.threads,
        .delay_ms = delay ? atoi (delay) : 0,
        .to = to,
        .lo = dj->lo,
        .micro_rows = (size_t)a->m.split.micro_rows,
        .m = m,
        .ck = ck,
        .check = cli_ranks_check,
        .arg = &dj->rk,
        .hosts = dj->rk.job.host,
    };
    dj->pt = dc_pipe_train_start (dj->rk.job.hub, &o, &err);
    dc_safetensors_destroy (ck);
    if (!dj->pt)
        return train_dist_error (dj, &err);
    return EXIT_OK;
}

/* Before any work: no output (the model, the log, the report, the
 * checkpoint) is an input or another output, inputs are regular files,
 * outputs' folders take files. */
static int train_check_files (const struct train_args *a)
{
    char *ckpt = a->ckpt_dir ? join (a->ckpt_dir, CKPT_NAME) : NULL;
    const struct dc_file_use files[] = {
        {"--model", a->model, DC_FILE_INPUT},
        {"--input", a->input, DC_FILE_INPUT},
        {"--target", a->target, DC_FILE_INPUT},
        {"--output", a->output, DC_FILE_OUTPUT},
        {"--log", a->log, DC_FILE_OUTPUT},
        {"--report", a->report, DC_FILE_OUTPUT},
        {"--checkpoint-dir", ckpt, DC_FILE_INOUT},
    };
    dc_error_t err;
    int ex = EXIT_OK;

    if (a->ckpt_dir && !ckpt)
        return cli_error (EXIT_FAIL, "train: out of memory");
    if (dc_file_check (files, sizeof (files) / sizeof (files[0]), &err) < 0)
        ex = cli_error (EXIT_INPUT, "%s", err.text);
    free (ckpt);
    return ex;
}

static int train_run (struct cli *cli, int argc, char **argv)
{
    struct train_args a = {
        .m = {.device = "auto"},
        .epochs = 1,
        .batch_size = 32,
    };
    const struct dc_compute_ops *ops = NULL;
    struct dc_compute *c = NULL;
    struct dc_trainer *tr = NULL;
    struct dc_model *m = NULL;
    struct dc_npy *x = NULL, *tg = NULL;
    struct dc_report *rep = NULL;
    struct train_state st = {.cli = cli};
    struct train_dist dj = {.ct = NULL};
    bool dist = false;
    float *hx = NULL;
    void *ht = NULL;
    char *ckpt = NULL;
    dc_error_t err;
    int optindex, rc, ex = EXIT_OK;

    if ((rc = cli_parse (cli, &cmd_train, argc, argv, train_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    if (!a.model || !a.input || !a.target || !a.output) {
        cli_usage_error (cli, "--model, --input, --target and --output are "
                              "required");
        return EXIT_USAGE;
    }
    if ((a.resume || a.ckpt_every) && !a.ckpt_dir) {
        cli_usage_error (cli, "%s needs --checkpoint-dir",
                         a.resume ? "--resume" : "--checkpoint-every");
        return EXIT_USAGE;
    }
    if (a.momentum != 0 && a.optim == DC_OPTIM_ADAM) {
        cli_usage_error (cli, "--momentum applies to sgd; adam has its own");
        return EXIT_USAGE;
    }
    if (!a.lr_set)
        a.lr = a.optim == DC_OPTIM_ADAM ? 0.001 : 0.01;
    cli_log_init (cli);
    if ((ex = train_check_files (&a)) != EXIT_OK)
        return ex;
    if (dc_comm_mpi_wanted ()) {
        /* under mpirun/srun: ranks other than 0 serve and leave here */
        int role = cli_mpi_start (cli, &dj.m, &ex);
        if (role <= 0)
            return ex;
        dj.mpi = true;
    }
    if ((a.m.split.split == DC_SPLIT_LAYERS ||
         a.m.split.split == DC_SPLIT_HYBRID) &&
        !cli_job_wanted (cli)) {
        cli_usage_error (cli, "--split %s needs ranks (-H, -f or -n)",
                         dc_split_name (a.m.split.split));
        return EXIT_USAGE;
    }
    double t0 = dc_report_now ();
    if (!(rep = dc_report_create ("train"))) {
        ex = cli_error (EXIT_FAIL, "train: out of memory");
        goto out;
    }

    /* load: model, inputs and targets (all rows: shuffled access) */
    if (!(m = dc_model_load (a.model, a.m.activation, &err)) ||
        !(x = dc_npy_open (a.input, &err)) ||
        !(tg = dc_npy_open (a.target, &err))) {
        ex = cli_error (EXIT_INPUT, "%s", err.text);
        goto out;
    }
    int in = dc_model_inputs (m), outn = dc_model_outputs (m);
    if (x->ndim != 2 || x->row_elems != (size_t)in || x->dtype == DC_NPY_I8 ||
        x->rows == 0) {
        ex = cli_error (EXIT_INPUT,
                        "%s: expected float rows of shape (rows, %d) for "
                        "the model's %d inputs, got %s of %d dimensions, "
                        "%zu rows of %zu",
                        a.input, in, in, dc_npy_descr (x->dtype), x->ndim,
                        x->rows, x->row_elems);
        goto out;
    }
    size_t rows = x->rows;
    if ((ex = check_target (&a, tg, rows, outn)) != EXIT_OK)
        goto out;
    size_t tbytes = a.loss == DC_LOSS_XENT
                        ? rows * sizeof (int64_t)
                        : rows * (size_t)outn * sizeof (float);
    if (!(hx = malloc (rows * (size_t)in * sizeof (float))) ||
        !(ht = malloc (tbytes))) {
        ex = cli_error (EXIT_FAIL, "train: out of memory for %zu rows", rows);
        goto out;
    }
    if (dc_npy_read_f32 (x, 0, rows, hx, &err) < 0 ||
        (a.loss == DC_LOSS_XENT
             ? dc_npy_read_i64 (tg, 0, rows, ht, &err)
             : dc_npy_read_f32 (tg, 0, rows, ht, &err)) < 0) {
        ex = cli_error (EXIT_INPUT, "%s", err.text);
        goto out;
    }
    if (a.loss == DC_LOSS_XENT)
        for (size_t i = 0; i < rows; i++) {
            int64_t l = ((const int64_t *)ht)[i];
            if (l < 0 || l >= outn) {
                ex = cli_error (EXIT_INPUT,
                                "%s: label %" PRId64 " of row %zu is outside "
                                "[0, %d) (the model has %d outputs)",
                                a.target, l, i, outn, outn);
                goto out;
            }
        }

    /* across ranks, this process keeps a replica of the model on the cpu
     * back-end: it applies the ranks' summed gradient and writes the
     * checkpoints and the trained model */
    dist = dj.mpi || cli_job_wanted (cli);
    struct dc_compute_opts co = {.dtype = dist ? DC_DTYPE_F32 : a.m.dtype,
                                 .threads = (int)a.m.threads};
    if ((ex = cli_compute_open ("train", dist ? "cpu" : a.m.device, &co, &ops,
                                &c)) != EXIT_OK)
        goto out;
    struct dc_train_opts to = {
        .loss = a.loss,
        .optim = a.optim,
        .lr = a.lr,
        .momentum = a.momentum,
        .batch_size = (size_t)a.batch_size,
        .seed = a.seed,
    };
    if (!(tr = dc_trainer_create (m, ops, c, &to, &err))) {
        ex = cli_error (EXIT_GPU, "train: %s", err.text);
        goto out;
    }
    struct dc_train_pos pos;
    dc_train_pos_init (&pos, &to);
    if (a.ckpt_dir) {
        if (mkdir (a.ckpt_dir, 0777) < 0 && errno != EEXIST) {
            ex = cli_error (EXIT_FAIL, "%s: cannot create the folder: %s",
                            a.ckpt_dir, strerror (errno));
            goto out;
        }
        if (!(ckpt = join (a.ckpt_dir, CKPT_NAME))) {
            ex = cli_error (EXIT_FAIL, "train: out of memory");
            goto out;
        }
    }
    if (a.resume) {
        if (access (ckpt, F_OK) < 0) {
            if (!cli->quiet)
                fprintf (stderr,
                         "dcrun: train: no checkpoint %s: starting "
                         "from the beginning\n",
                         ckpt);
        } else if (dc_trainer_checkpoint_load (tr, &pos, ckpt, &err) < 0) {
            ex = cli_error (EXIT_INPUT, "%s", err.text);
            goto out;
        } else if (!cli->quiet) {
            fprintf (stderr,
                     "dcrun: train: resuming from %s at epoch %" PRId64
                     ", step %" PRId64 "\n",
                     ckpt, pos.epoch + 1, pos.step);
        }
    }
    if (a.log &&
        (ex = log_open (&st, a.log, a.resume && pos.step > 0)) != EXIT_OK)
        goto out;
    if (dist && (ex = train_launch (cli, &a, m, &to, ckpt, pos.step > 0,
                                    &dj)) != EXIT_OK) {
        if (cli->dry_run)
            ex = EXIT_OK;
        goto out;
    }
    double t1 = dc_report_now ();
    dc_report_phase_add (rep, DC_PHASE_LOAD, t1 - t0);

    st.rows = rows;
    st.batch = (size_t)a.batch_size;
    st.epochs = a.epochs;
    cli_progress_init (&st.pr, a.m.progress, "train", rows * (size_t)a.epochs);
    int64_t step0 = pos.step;
    struct dc_train_run run = {
        .x = hx,
        .target = ht,
        .rows = rows,
        .epochs = a.epochs,
        .checkpoint_every = a.ckpt_every,
        .checkpoint = ckpt,
        .step_cb = step_cb,
        .arg = &st,
        .grad_fn = !dist   ? NULL
                   : dj.pt ? dc_pipe_train_grad
                           : dc_coord_train_grad,
        .grad_arg = dj.pt ? (void *)dj.pt : (void *)dj.ct,
    };
    rc = dc_trainer_run (tr, &run, &pos, &err);
    if (st.log_errno) {
        ex = cli_error (EXIT_FAIL,
                        "%s: write: %s: stopped at step %" PRId64 "%s", a.log,
                        strerror (st.log_errno), pos.step,
                        ckpt ? "; the last checkpoint stays" : "");
        goto out;
    }
    if (rc < 0) {
        if (dist) {
            ex = train_dist_error (&dj, &err);
            goto out;
        }
        ex = cli_error (EXIT_GPU, "train: %s", err.text);
        goto out;
    }
    if (dist) {
        train_dist_report (&dj, rep);
        if (dj.lo)
            dc_report_set_layout (rep, dc_split_name (dj.lo->split));
        if (dc_coord_train_nlost (dj.ct) > 0)
            cli_error (EXIT_OK,
                       "train: lost on the way (the others redid "
                       "their steps): %s",
                       dc_coord_train_lost (dj.ct));
        dc_coord_train_finish (dj.ct);
        dj.ct = NULL;
    }
    double t2 = dc_report_now ();
    dc_report_phase_add (rep, DC_PHASE_COMPUTE, t2 - t1);
    cli_progress_done (&st.pr, rows * (size_t)a.epochs);
    if (st.log && fclose (st.log) != 0) {
        st.log = NULL;
        ex = cli_error (EXIT_FAIL, "%s: %s", a.log, strerror (errno));
        goto out;
    }
    st.log = NULL;

    /* the trained model: the input's names, dtypes and metadata */
    if (a.m.activation)
        dc_safetensors_meta_set (m->st, "activation", a.m.activation);
    if (dc_model_save (m, a.output, &err) < 0) {
        ex = cli_error (EXIT_FAIL, "%s", err.text);
        goto out;
    }
    dc_report_phase_add (rep, DC_PHASE_WRITE, dc_report_now () - t2);

    if (a.report) {
        char host[256] = "localhost", hex[DC_SHA256_HEXLEN + 1];
        gethostname (host, sizeof (host) - 1);
        /* forward + backward: about 3 times the forward pass */
        double flop = 3.0 * dc_model_flops_per_row (m) * (double)st.rows_run;
        dc_report_add_rank (rep, 0, host, ops->describe (c), st.rows_run,
                            t2 - t1, flop);
        int64_t np[1] = {(int64_t)dc_model_nparams (m)};
        bool ok = dc_sha256_file (a.output, hex, &err) == 0;
        dc_report_set_output (rep, a.output, 1, np, "safetensors",
                              ok ? hex : NULL);
        cJSON *o = dc_report_extra (rep, "train");
        cJSON_AddNumberToObject (o, "epochs", (double)a.epochs);
        cJSON_AddNumberToObject (o, "steps", (double)pos.step);
        cJSON_AddNumberToObject (o, "steps_this_run",
                                 (double)(pos.step - step0));
        cJSON_AddNumberToObject (o, "resumed_at_step", (double)step0);
        cJSON_AddNumberToObject (o, "batch_size", (double)a.batch_size);
        cJSON_AddStringToObject (o, "optimizer",
                                 a.optim == DC_OPTIM_ADAM ? "adam" : "sgd");
        cJSON_AddStringToObject (o, "loss",
                                 a.loss == DC_LOSS_XENT ? "xent" : "mse");
        cJSON_AddNumberToObject (o, "lr", a.lr);
        if (st.have_first) {
            cJSON_AddNumberToObject (o, "first_epoch_loss", st.first_loss);
            cJSON_AddNumberToObject (o, "last_epoch_loss", st.last_loss);
        }
        dc_report_set_total_seconds (rep, dc_report_now () - t0);
        if (dc_report_write (rep, a.report, &err) < 0) {
            ex = cli_error (EXIT_FAIL, "%s", err.text);
            goto out;
        }
    }
out:
    if (dist || dj.mpi)
        ex = train_dist_fini (&dj, ex);
    if (st.log)
        fclose (st.log);
    free (ckpt);
    free (hx);
    free (ht);
    dc_trainer_destroy (tr);
    if (ops && c)
        ops->destroy (c);
    dc_npy_close (x);
    dc_npy_close (tg);
    dc_model_destroy (m);
    dc_report_destroy (rep);
    return ex;
}

const struct cli_command cmd_train = {
    .name = "train",
    .summary = "train an MLP: --model M.safetensors --input X.npy --target "
               "T.npy --output M2.safetensors",
    .usage = "--model M.safetensors --input X.npy --target T.npy "
             "--output M2.safetensors [--epochs E] [--batch-size B] [--lr LR] "
             "[--momentum M] [--optimizer sgd|adam] [--loss mse|xent] "
             "[--seed S] [--checkpoint-dir D] [--checkpoint-every N] "
             "[--resume] [--log loss.csv] [--report R.json]",
    .opts = train_opts,
    .opts2 = cli_model_opts,
    .launch_opts = true,
    .run = train_run,
};
