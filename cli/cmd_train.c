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
#include "lib/run/train.h"
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

/* What the callbacks need. */
struct train_state {
    struct cli_ranks rk; /* first: dist.h's callbacks take it as arg */
    const struct cli *cli;
    FILE *log;
    int log_errno;   /* a --log line could not be written */
    int close_errno; /* nor the log closed */
    int64_t epochs;
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

static int on_step (const struct dc_train_step *p, void *arg)
{
    struct train_state *s = arg;
    struct cli_progress *pr = &s->rk.prog;

    if (s->log &&
        log_line (s, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%zu,%.9g\n", p->epoch,
                  p->batch, p->pos->step, p->rows, p->loss) < 0)
        return 1; /* stop here: the last checkpoint stays */
    if (p->epoch_end && !s->cli->quiet) {
        if (pr->on && pr->tty)
            fprintf (stderr, "\r%*s\r", pr->width, "");
        printf ("epoch %" PRId64 "/%" PRId64 " loss %.6g\n", p->epoch,
                s->epochs, p->epoch_loss);
        fflush (stdout);
    }
    char extra[64];
    snprintf (extra, sizeof (extra), "loss %.4g", p->loss);
    cli_progress_update (pr, p->done, extra);
    return 0;
}

/* Before the model is written: the log closed. */
static int on_trained (void *arg)
{
    struct train_state *s = arg;
    FILE *f = s->log;

    s->log = NULL;
    if (f && fclose (f) != 0) {
        s->close_errno = errno;
        return 1;
    }
    return 0;
}

static void on_note (const char *text, bool always, void *arg)
{
    struct train_state *s = arg;

    if (always || !s->cli->quiet)
        fprintf (stderr, "dcrun: %s\n", text);
}

static void dry_run_ranks (const struct dc_job *job, void *arg)
{
    (void)arg;
    printf ("launcher: %s\n", job->launcher);
    for (int r = 0; r < job->plan->size; r++)
        printf ("rank %d on %s: %s serve\n", r, job->host[r], cli_self_path ());
}

static char *join (const char *dir, const char *name)
{
    size_t n = strlen (dir) + strlen (name) + 2;
    char *p = malloc (n);
    if (p)
        snprintf (p, n, "%s/%s", dir, name);
    return p;
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

/* The options checked alone; EXIT_OK or EXIT_USAGE after saying why. */
static int train_check_opts (struct cli *cli, struct train_args *a)
{
    if (!a->model || !a->input || !a->target || !a->output) {
        cli_usage_error (cli, "--model, --input, --target and --output are "
                              "required");
        return EXIT_USAGE;
    }
    if ((a->resume || a->ckpt_every) && !a->ckpt_dir) {
        cli_usage_error (cli, "%s needs --checkpoint-dir",
                         a->resume ? "--resume" : "--checkpoint-every");
        return EXIT_USAGE;
    }
    if (a->momentum != 0 && a->optim == DC_OPTIM_ADAM) {
        cli_usage_error (cli, "--momentum applies to sgd; adam has its own");
        return EXIT_USAGE;
    }
    if ((a->m.split.split == DC_SPLIT_LAYERS ||
         a->m.split.split == DC_SPLIT_HYBRID) &&
        !cli_job_wanted (cli)) {
        cli_usage_error (cli, "--split %s needs ranks (-H, -f or -n)",
                         dc_split_name (a->m.split.split));
        return EXIT_USAGE;
    }
    if (!a->lr_set)
        a->lr = a->optim == DC_OPTIM_ADAM ? 0.001 : 0.01;
    return EXIT_OK;
}

/* The exit status of dc_train_run's status, after saying why. */
static int train_status (const struct train_args *a, struct train_state *s,
                         int st, const struct dc_train_res *res,
                         const char *ckpt, const dc_error_t *err)
{
    if (st == DC_STATUS_DRIVER)
        return cli_dist_exec_driver (&s->rk);
    if (res->stopped && s->log_errno)
        return cli_error (EXIT_FAIL,
                          "%s: write: %s: stopped at step %" PRId64 "%s",
                          a->log, strerror (s->log_errno), res->step,
                          ckpt ? "; the last checkpoint stays" : "");
    if (res->stopped)
        return cli_error (EXIT_FAIL, "%s: %s", a->log,
                          strerror (s->close_errno));
    return cli_status (NULL, st, res->signal, err);
}

/* Open, the log, the job, run: dc_train_run picks how. */
static int train_go (struct cli *cli, struct train_args *a, const char *ckpt)
{
    struct train_state s = {.cli = cli, .epochs = a->epochs};
    bool job = !dc_comm_mpi_wanted () && cli_job_wanted (cli);
    struct dc_train_cfg cfg = {
        .model = a->model,
        .input = a->input,
        .target = a->target,
        .output = a->output,
        .report = a->report,
        .checkpoint = ckpt,
        .ckpt_dir = a->ckpt_dir,
        .resume = a->resume,
        .epochs = a->epochs,
        .checkpoint_every = a->ckpt_every,
        .to = {.loss = a->loss,
               .optim = a->optim,
               .lr = a->lr,
               .momentum = a->momentum,
               .batch_size = (size_t)a->batch_size,
               .seed = a->seed},
        .device = a->m.device,
        .dtype = a->m.dtype,
        .activation = a->m.activation,
        .threads = (int)a->m.threads,
        .heartbeat_timeout = a->m.heartbeat_timeout,
        .split = a->m.split,
        .dry_run = cli->dry_run,
        .distributed = job,
        .on_step = on_step,
        .progress = cli_run_progress,
        .note = on_note,
        .on_trained = on_trained,
        .dry_run_ranks = dry_run_ranks,
        .dry_run_layout = cli_dry_run_layout,
        .on_rank_error = cli_rank_error,
        .arg = &s,
    };
    struct dc_train *t = NULL;
    struct dc_train_res res;
    dc_error_t err;
    int st, ex;

    s.rk.cli = cli;
    s.rk.progress = a->m.progress;
    s.rk.job.sfd = -1;
    st = dc_train_open (&cfg, &t, &res, &err);
    if (st != DC_STATUS_OK || res.served) {
        ex = cli_status (NULL, st, 0, &err);
        goto out;
    }
    if (a->log && (ex = log_open (&s, a->log, res.resumed)) != EXIT_OK)
        goto out;
    if (job && (ex = cli_ranks_init (cli, &s.rk)) != EXIT_OK)
        goto out;
    st = dc_train_run (t, job ? &s.rk.job : NULL, &res, &err);
    ex = train_status (a, &s, st, &res, ckpt, &err);
out:
    dc_train_close (t, ex);
    dc_job_fini (&s.rk.job);
    if (s.log)
        fclose (s.log);
    return ex;
}

static int train_run (struct cli *cli, int argc, char **argv)
{
    struct train_args a = {
        .m = {.device = "auto"},
        .epochs = 1,
        .batch_size = 32,
    };
    char *ckpt = NULL;
    int optindex, rc, ex;

    if ((rc = cli_parse (cli, &cmd_train, argc, argv, train_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    if ((ex = train_check_opts (cli, &a)) != EXIT_OK)
        return ex;
    cli_log_init (cli);
    if ((ex = train_check_files (&a)) != EXIT_OK)
        return ex;
    if (a.ckpt_dir && !(ckpt = join (a.ckpt_dir, CKPT_NAME)))
        return cli_error (EXIT_FAIL, "train: out of memory");
    ex = train_go (cli, &a, ckpt);
    free (ckpt);
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
