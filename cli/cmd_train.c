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
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "model_opts.h"
#include "status.h"
#include "lib/run/train.h"

struct train_args {
    struct dc_train_cfg c;   /* what lib/run/train.h takes */
    struct cli_model_opts m; /* shared with infer */
};

static int lr_opt (struct cli *cli, const char *arg, void *base)
{
    struct train_args *a = base;

    if (cli_parse_double (cli, "--lr", arg, 0, 1e6, &a->c.to.lr) < 0)
        return -1;
    if (!(a->c.to.lr > 0))
        return cli_usage_error (cli, "--lr must be above 0");
    return 0;
}

static int seed_opt (struct cli *cli, const char *arg, void *base)
{
    struct train_args *a = base;
    char *end;

    errno = 0;
    a->c.to.seed = strtoull (arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-')
        return cli_usage_error (
            cli, "--seed '%s': expected a non-negative integer", arg);
    return 0;
}

static const struct cli_word optimizers[] = {
    {"sgd", DC_OPTIM_SGD}, {"adam", DC_OPTIM_ADAM}, {0}};
static const struct cli_word losses[] = {
    {"mse", DC_LOSS_MSE}, {"xent", DC_LOSS_XENT}, {0}};

#define F(kd, member, ...) CLI_AT (struct train_args, kd, member, __VA_ARGS__)
static const struct cli_opt train_opts[] = {
    {"model", 0, "M.safetensors",
     "the MLP to start from (PyTorch nn.Sequential, safetensors)",
     F (CLI_STR, c.model)},
    {"input", 0, "X.npy", "input rows [rows, in]", F (CLI_STR, c.input)},
    {"target", 0, "T.npy",
     "targets: [rows, out] floats (mse) or [rows] int64 labels (xent)",
     F (CLI_STR, c.target)},
    {"output", 0, "M2.safetensors",
     "the trained model (same tensor names and dtypes)", F (CLI_STR, c.output)},
    {"epochs", 0, "E", "passes over the data (default 1)",
     F (CLI_I64, c.epochs, 1, 1L << 40)},
    {"batch-size", 0, "B", "rows per step (default 32)",
     F (CLI_SIZE, c.to.batch_size, 1, 1L << 24)},
    {"lr", 0, "LR", "learning rate (default 0.01 for sgd, 0.001 for adam)",
     .fn = lr_opt},
    {"momentum", 0, "M", "sgd momentum (default 0)",
     F (CLI_DOUBLE, c.to.momentum, 0, 0.999999)},
    {"optimizer", 0, "sgd|adam",
     "as torch.optim.SGD / torch.optim.Adam (default sgd)",
     F (CLI_WORD, c.to.optim, .words = optimizers)},
    {"loss", 0, "mse|xent",
     "mean squared error or softmax cross-entropy (default mse)",
     F (CLI_WORD, c.to.loss, .words = losses)},
    {"seed", 0, "S", "seed of the shuffling (default 0)", .fn = seed_opt},
    {"checkpoint-dir", 0, "D",
     "write D/" DC_TRAIN_CKPT_NAME " at each epoch's end",
     F (CLI_STR, c.ckpt_dir)},
    {"checkpoint-every", 0, "N", "and every N steps",
     F (CLI_I64, c.checkpoint_every, 1, 1L << 40)},
    {"resume", 0, NULL, "continue from the checkpoint in --checkpoint-dir",
     F (CLI_FLAG, c.resume)},
    {"log", 0, "loss.csv", "one line per step: epoch,batch,step,rows,loss",
     F (CLI_STR, c.log)},
    {"report", 0, "R.json", "write a run report", F (CLI_STR, c.report)},
    {"trace", 0, "T.json",
     "write a Chrome trace (Perfetto): launch, load, steps, lost ranks",
     F (CLI_STR, c.trace)},
    {"io", 0, "direct|relay|auto",
     "across ranks: each rank reads its rows of every batch from --input "
     "and --target itself (direct), or gets them from this process "
     "(relay); auto: direct for every rank that sees the same files "
     "(default)",
     F (CLI_WORD, c.io_mode, .words = cli_io_words)},
    {0},
};
#undef F

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

/* Open, the job, run: dc_train_run picks how. */
static int train_go (struct cli *cli, struct dc_train_cfg *cfg)
{
    struct cli_ranks *rk = cfg->arg;
    bool job = !dc_comm_mpi_wanted () && cli_job_wanted (cli);
    struct dc_train *t = NULL;
    struct dc_train_res res;
    dc_error_t err;
    int st, ex;

    cfg->dry_run = cli->dry_run;
    cfg->distributed = job;
    rk->job.sfd = -1;
    st = dc_train_open (cfg, &t, &res, &err);
    if (st != DC_STATUS_OK || res.served) {
        ex = cli_status (NULL, st, 0, &err);
        goto out;
    }
    if (job && (ex = cli_ranks_init (cli, rk)) != EXIT_OK)
        goto out;
    st = dc_train_run (t, job ? &rk->job : NULL, &res, &err);
    if (st == DC_STATUS_DRIVER)
        ex = cli_dist_exec_driver (rk);
    else
        ex = cli_status (NULL, st, res.signal, &err);
out:
    dc_train_close (t, ex);
    cli_ranks_fini (rk);
    return ex;
}

static int train_run (struct cli *cli, int argc, char **argv)
{
    struct cli_ranks rk = {.cli = cli};
    struct train_args a = {.m = {.device = "auto"},
                           .c = {.epochs = 1,
                                 .to.batch_size = 32,
                                 .on_step = on_step,
                                 .progress = cli_run_progress,
                                 .note = cli_note,
                                 .dry_run_ranks = cli_dry_run_ranks,
                                 .dry_run_layout = cli_dry_run_layout,
                                 .on_rank_error = cli_rank_error,
                                 .arg = &rk}};
    struct dc_train_cfg *c = &a.c;
    dc_error_t err;
    int rc;

    if ((rc = cli_parse_opts (cli, &cmd_train, argc, argv, &a)) >= 0)
        return rc;
    if (dc_train_check (c, &err) < 0) {
        cli_usage_error (cli, "%s", err.text);
        return EXIT_USAGE;
    }
    if (cli_split_check (cli, &a.m) < 0)
        return EXIT_USAGE;
    cli_log_init (cli);
    c->device = a.m.device;
    c->dtype = a.m.dtype;
    c->activation = a.m.activation;
    c->threads = (int)a.m.threads;
    c->heartbeat_timeout = a.m.heartbeat_timeout;
    c->split = a.m.split;
    rk.progress = a.m.progress;
    return train_go (cli, c);
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
    .opts2_off = offsetof (struct train_args, m),
    .launch_opts = true,
    .run = train_run,
};
