/* cmd_train.c - dcrun train: train an MLP on one host
 *
 * Mini-batch training (sgd with momentum or adam, mse or cross-entropy) of
 * the model in --model on the rows of --input and --target, shuffled each
 * epoch by a seeded generator; writes the trained model with the input's
 * tensor names, dtypes and metadata.  With --checkpoint-dir, a checkpoint
 * (weights, optimizer state, position, generator) is written every N steps
 * and at each epoch's end; --resume continues from it to the same result.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "compute_cli.h"
#include "dist.h"
#include "model_opts.h"
#include "status.h"
#include "lib/run/train.h"

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
    OPT_TRACE,
    OPT_IO,
};

#define CKPT_NAME "checkpoint.safetensors"

struct train_args {
    struct dc_train_cfg c; /* what lib/run/train.h takes */
    long epochs, batch_size, ckpt_every;
    bool lr_set;
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
    {"trace", required_argument, OPT_TRACE, "T.json",
     "write a Chrome trace (Perfetto): launch, load, steps, lost ranks"},
    {"io", required_argument, OPT_IO, "direct|relay|auto",
     "across ranks: each rank reads its rows of every batch from --input "
     "and --target itself (direct), or gets them from this process "
     "(relay); auto: direct for every rank that sees the same files "
     "(default)"},
    {0},
};

/* The options that name files. */
static const struct {
    int key;
    size_t off;
} paths[] = {
    {OPT_MODEL, offsetof (struct train_args, c.model)},
    {OPT_INPUT, offsetof (struct train_args, c.input)},
    {OPT_TARGET, offsetof (struct train_args, c.target)},
    {OPT_OUTPUT, offsetof (struct train_args, c.output)},
    {OPT_CKPT_DIR, offsetof (struct train_args, c.ckpt_dir)},
    {OPT_LOG, offsetof (struct train_args, c.log)},
    {OPT_REPORT, offsetof (struct train_args, c.report)},
    {OPT_TRACE, offsetof (struct train_args, c.trace)},
};

static int train_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct train_args *a = ctx;

    for (size_t i = 0; i < sizeof (paths) / sizeof (paths[0]); i++)
        if (paths[i].key == key) {
            *(const char **)((char *)a + paths[i].off) = arg;
            return 0;
        }
    switch (key) {
    case OPT_IO:
        if (!strcmp (arg, "direct"))
            a->c.io_mode = DC_IO_DIRECT;
        else if (!strcmp (arg, "relay"))
            a->c.io_mode = DC_IO_RELAY;
        else if (!strcmp (arg, "auto"))
            a->c.io_mode = DC_IO_AUTO;
        else
            return cli_usage_error (
                cli, "--io '%s': expected direct, relay or auto", arg);
        return 0;
    case OPT_EPOCHS:
        return cli_parse_long (cli, "--epochs", arg, 1, 1L << 40, &a->epochs);
    case OPT_BATCH_SIZE:
        return cli_parse_long (cli, "--batch-size", arg, 1, 1L << 24,
                               &a->batch_size);
    case OPT_LR:
        a->lr_set = true;
        if (cli_parse_double (cli, "--lr", arg, 0, 1e6, &a->c.to.lr) < 0)
            return -1;
        if (!(a->c.to.lr > 0))
            return cli_usage_error (cli, "--lr must be above 0");
        return 0;
    case OPT_MOMENTUM:
        return cli_parse_double (cli, "--momentum", arg, 0, 0.999999,
                                 &a->c.to.momentum);
    case OPT_OPTIMIZER:
        if (strcmp (arg, "sgd") && strcmp (arg, "adam"))
            return cli_usage_error (cli,
                                    "--optimizer '%s': expected sgd or "
                                    "adam",
                                    arg);
        a->c.to.optim = arg[0] == 'a' ? DC_OPTIM_ADAM : DC_OPTIM_SGD;
        return 0;
    case OPT_LOSS:
        if (strcmp (arg, "mse") && strcmp (arg, "xent"))
            return cli_usage_error (cli, "--loss '%s': expected mse or xent",
                                    arg);
        a->c.to.loss = arg[0] == 'x' ? DC_LOSS_XENT : DC_LOSS_MSE;
        return 0;
    case OPT_SEED: {
        char *end;
        errno = 0;
        a->c.to.seed = strtoull (arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-')
            return cli_usage_error (cli,
                                    "--seed '%s': expected a "
                                    "non-negative integer",
                                    arg);
        return 0;
    }
    case OPT_CKPT_EVERY:
        return cli_parse_long (cli, "--checkpoint-every", arg, 1, 1L << 40,
                               &a->ckpt_every);
    case OPT_RESUME:
        a->c.resume = true;
        return 0;
    }
    return cli_model_opt (cli, key, arg, &a->m) == 0 ? 0 : -1;
}

static void on_step (const struct dc_train_step *p, void *arg)
{
    struct cli_ranks *rk = arg;
    struct cli_progress *pr = &rk->prog;

    if (p->epoch_end && !rk->cli->quiet) {
        if (pr->on && pr->tty)
            fprintf (stderr, "\r%*s\r", pr->width, "");
        printf ("epoch %" PRId64 "/%" PRId64 " loss %.6g\n", p->epoch,
                p->epochs, p->epoch_loss);
        fflush (stdout);
    }
    char extra[64];
    snprintf (extra, sizeof (extra), "loss %.4g", p->loss);
    cli_progress_update (pr, p->done, extra);
}

/* The options checked alone; EXIT_OK or EXIT_USAGE after saying why. */
static int train_check_opts (struct cli *cli, struct train_args *a)
{
    if (!a->c.model || !a->c.input || !a->c.target || !a->c.output) {
        cli_usage_error (cli, "--model, --input, --target and --output are "
                              "required");
        return EXIT_USAGE;
    }
    if ((a->c.resume || a->ckpt_every) && !a->c.ckpt_dir) {
        cli_usage_error (cli, "%s needs --checkpoint-dir",
                         a->c.resume ? "--resume" : "--checkpoint-every");
        return EXIT_USAGE;
    }
    if (a->c.to.momentum != 0 && a->c.to.optim == DC_OPTIM_ADAM) {
        cli_usage_error (cli, "--momentum applies to sgd; adam has its own");
        return EXIT_USAGE;
    }
    if (cli_split_check (cli, &a->m) < 0)
        return EXIT_USAGE;
    if (!a->lr_set)
        a->c.to.lr = a->c.to.optim == DC_OPTIM_ADAM ? 0.001 : 0.01;
    return EXIT_OK;
}

/* Open, the log, the job, run: dc_train_run picks how. */
static int train_go (struct cli *cli, struct train_args *a, const char *ckpt)
{
    struct cli_ranks rk = {.cli = cli, .progress = a->m.progress};
    bool job = !dc_comm_mpi_wanted () && cli_job_wanted (cli);
    struct dc_train *t = NULL;
    struct dc_train_res res;
    dc_error_t err;
    int st, ex;

    struct dc_train_cfg cfg = a->c;
    cfg.checkpoint = ckpt;
    cfg.epochs = a->epochs;
    cfg.checkpoint_every = a->ckpt_every;
    cfg.to.batch_size = (size_t)a->batch_size;
    cfg.device = a->m.device;
    cfg.dtype = a->m.dtype;
    cfg.activation = a->m.activation;
    cfg.threads = (int)a->m.threads;
    cfg.heartbeat_timeout = a->m.heartbeat_timeout;
    cfg.split = a->m.split;
    cfg.dry_run = cli->dry_run;
    cfg.distributed = job;
    cfg.on_step = on_step;
    cfg.progress = cli_run_progress;
    cfg.note = cli_note;
    cfg.dry_run_ranks = cli_dry_run_ranks;
    cfg.dry_run_layout = cli_dry_run_layout;
    cfg.on_rank_error = cli_rank_error;
    cfg.arg = &rk;
    rk.job.sfd = -1;
    st = dc_train_open (&cfg, &t, &res, &err);
    if (st != DC_STATUS_OK || res.served) {
        ex = cli_status (NULL, st, 0, &err);
        goto out;
    }
    if (job && (ex = cli_ranks_init (cli, &rk)) != EXIT_OK)
        goto out;
    st = dc_train_run (t, job ? &rk.job : NULL, &res, &err);
    if (st == DC_STATUS_DRIVER)
        ex = cli_dist_exec_driver (&rk);
    else
        ex = cli_status (NULL, st, res.signal, &err);
out:
    dc_train_close (t, ex);
    cli_ranks_fini (&rk);
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
    if (a.c.ckpt_dir && asprintf (&ckpt, "%s/" CKPT_NAME, a.c.ckpt_dir) < 0)
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
             "[--resume] [--log loss.csv] [--report R.json] "
             "[--trace T.json] [--io direct|relay|auto]",
    .opts = train_opts,
    .opts2 = cli_model_opts,
    .launch_opts = true,
    .run = train_run,
};
