/* train.c - `dcrun train` below the CLI: one process, data parallel,
 * pipeline, MPI or driver, picked in dc_train_run */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "lib/formats/trace.h"
#include "lib/formats/safetensors.h"
#include "lib/run/coordinator.h"
#include "lib/run/pipeline.h"
#include "lib/run/train.h"
#include "lib/util/file.h"
#include "lib/util/sha256.h"

struct dc_train {
    struct dc_train_cfg cfg;
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct dc_trainer *tr;
    struct dc_model *m;
    struct dc_npy *x, *tg;
    struct dc_report *rep;
    float *hx;
    void *ht;
    size_t rows;
    struct dc_train_pos pos;
    int64_t step0;
    double t0;
    double t_step; /* --trace: when the current step began */
    bool dist;
    /* the step callback's sums */
    double epoch_loss; /* sum of rows x loss in the current epoch */
    size_t epoch_rows;
    double first_loss, last_loss; /* epoch means */
    bool have_first;
    size_t rows_run;
    bool stopped;
    FILE *log;     /* --log */
    int log_errno; /* a --log line could not be written */
    /* across ranks */
    bool mpi;
    struct dc_job_mpi mpij;
    struct dc_job *job;
    struct dc_coord_train *ct;
    uint8_t *model, *ckpt;
    struct dc_layout *lo;
    struct dc_pipe_train *pt;
    char *ckpt_path; /* cfg.checkpoint when made from cfg.ckpt_dir */
};

static const char *signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}

static void note (const struct dc_train *t, bool always, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void note (const struct dc_train *t, bool always, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!t->cfg.note)
        return;
    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    t->cfg.note (buf, always, t->cfg.arg);
}

static void progress (const struct dc_train *t, enum dc_run_progress ev,
                      size_t done)
{
    size_t total = t->rows * (size_t)t->cfg.epochs;

    if (t->cfg.progress)
        t->cfg.progress (ev, "train", done, total, -1, t->cfg.arg);
}

/* One line of --log, written at once (line-buffered): a log that cannot
 * be written stops the run at the first line, not after it.  -1 with
 * t->log_errno set. */
static int __attribute__ ((format (printf, 2, 3)))
log_line (struct dc_train *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start (ap, fmt);
    n = vfprintf (t->log, fmt, ap);
    va_end (ap);
    if (n < 0 || fflush (t->log) != 0 || ferror (t->log)) {
        t->log_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* The log, opened before any work: no link followed to create it;
 * appended to when resuming. */
static int log_open (struct dc_train *t, dc_error_t *err)
{
    const char *path = t->cfg.log;
    bool append = t->pos.step > 0;
    int fd = dc_file_open_log (path, append, err);

    if (fd < 0)
        return DC_STATUS_INPUT;
    if (!(t->log = fdopen (fd, append ? "a" : "w"))) {
        errprintf (err, "%s: %s", path, strerror (errno));
        close (fd);
        return DC_STATUS_FAIL;
    }
    setvbuf (t->log, NULL, _IOLBF, 0);
    if (!append && log_line (t, "epoch,batch,step,rows,loss\n") < 0) {
        errprintf (err, "%s: write: %s", path, strerror (t->log_errno));
        return DC_STATUS_INPUT;
    }
    return DC_STATUS_OK;
}

/* ================= open: load, check, resume ================= */

static int check_target (const struct dc_train_cfg *a, const struct dc_npy *t,
                         size_t rows, int outn, dc_error_t *err)
{
    if (a->to.loss == DC_LOSS_XENT) {
        if (t->dtype != DC_NPY_I8 || t->ndim != 1 || t->rows != rows) {
            errprintf (err,
                       "%s: cross-entropy needs int64 labels of shape "
                       "(%zu,), got %s of %d dimensions and %zu rows",
                       a->target, rows, dc_npy_descr (t->dtype), t->ndim,
                       t->rows);
            return DC_STATUS_INPUT;
        }
        return DC_STATUS_OK;
    }
    if (t->dtype == DC_NPY_I8 || t->rows != rows ||
        t->row_elems != (size_t)outn || t->ndim < 1 || t->ndim > 2 ||
        (t->ndim == 1 && outn != 1)) {
        errprintf (err,
                   "%s: mse needs float targets of shape (%zu, %d), "
                   "got %s of %d dimensions, %zu rows of %zu",
                   a->target, rows, outn, dc_npy_descr (t->dtype), t->ndim,
                   t->rows, t->row_elems);
        return DC_STATUS_INPUT;
    }
    return DC_STATUS_OK;
}

/* The model, inputs and targets (all rows: shuffled access), checked. */
static int load_data (struct dc_train *t, dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    int st;

    if (!(t->m = dc_model_load (a->model, a->activation, err)) ||
        !(t->x = dc_npy_open (a->input, err)) ||
        !(t->tg = dc_npy_open (a->target, err)))
        return DC_STATUS_INPUT;
    int in = dc_model_inputs (t->m), outn = dc_model_outputs (t->m);
    const struct dc_npy *x = t->x;
    if (x->ndim != 2 || x->row_elems != (size_t)in || x->dtype == DC_NPY_I8 ||
        x->rows == 0) {
        errprintf (err,
                   "%s: expected float rows of shape (rows, %d) for "
                   "the model's %d inputs, got %s of %d dimensions, "
                   "%zu rows of %zu",
                   a->input, in, in, dc_npy_descr (x->dtype), x->ndim, x->rows,
                   x->row_elems);
        return DC_STATUS_INPUT;
    }
    size_t rows = t->rows = x->rows;
    if ((st = check_target (a, t->tg, rows, outn, err)) != DC_STATUS_OK)
        return st;
    bool xent = a->to.loss == DC_LOSS_XENT;
    size_t tbytes =
        xent ? rows * sizeof (int64_t) : rows * (size_t)outn * sizeof (float);
    if (!(t->hx = malloc (rows * (size_t)in * sizeof (float))) ||
        !(t->ht = malloc (tbytes))) {
        errprintf (err, "train: out of memory for %zu rows", rows);
        return DC_STATUS_FAIL;
    }
    if (dc_npy_read_f32 (t->x, 0, rows, t->hx, err) < 0 ||
        (xent ? dc_npy_read_i64 (t->tg, 0, rows, t->ht, err)
              : dc_npy_read_f32 (t->tg, 0, rows, t->ht, err)) < 0)
        return DC_STATUS_INPUT;
    for (size_t i = 0; xent && i < rows; i++) {
        int64_t l = ((const int64_t *)t->ht)[i];
        if (l < 0 || l >= outn) {
            errprintf (err,
                       "%s: label %" PRId64 " of row %zu is outside "
                       "[0, %d) (the model has %d outputs)",
                       a->target, l, i, outn, outn);
            return DC_STATUS_INPUT;
        }
    }
    return DC_STATUS_OK;
}

/* The back-end (the cpu one for the replica across ranks), the trainer,
 * the checkpoint folder, the checkpoint to resume from. */
static int make_trainer (struct dc_train *t, dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    struct dc_compute_opts co = {.dtype = t->dist ? DC_DTYPE_F32 : a->dtype,
                                 .threads = a->threads,
                                 .train_rows = DC_TRAIN_CPU_ROWS};
    const char *device = t->dist ? "cpu" : a->device;

    if (!(t->ops = dc_compute_find (device ? device : "auto", err)) ||
        !(t->c = t->ops->create (&co, err)) ||
        !(t->tr = dc_trainer_create (t->m, t->ops, t->c, &a->to, err))) {
        errprefix (err, "train: ");
        return DC_STATUS_GPU;
    }
    dc_train_pos_init (&t->pos, &a->to);
    if (a->ckpt_dir && mkdir (a->ckpt_dir, 0777) < 0 && errno != EEXIST) {
        errprintf (err, "%s: cannot create the folder: %s", a->ckpt_dir,
                   strerror (errno));
        return DC_STATUS_FAIL;
    }
    if (!a->resume || !a->checkpoint)
        return DC_STATUS_OK;
    if (access (a->checkpoint, F_OK) < 0)
        note (t, false, "train: no checkpoint %s: starting from the beginning",
              a->checkpoint);
    else if (dc_trainer_checkpoint_load (t->tr, &t->pos, a->checkpoint, err) <
             0)
        return DC_STATUS_INPUT;
    else
        note (t, false,
              "train: resuming from %s at epoch %" PRId64 ", step %" PRId64,
              a->checkpoint, t->pos.epoch + 1, t->pos.step);
    return DC_STATUS_OK;
}

/* Before any work: no output (the model, the log, the report, the
 * checkpoint) is an input or another output, inputs are regular files,
 * outputs' folders take files. */
static int check_files (const struct dc_train_cfg *a, dc_error_t *err)
{
    const struct dc_file_use files[] = {
        {"--model", a->model, DC_FILE_INPUT},
        {"--input", a->input, DC_FILE_INPUT},
        {"--target", a->target, DC_FILE_INPUT},
        {"--output", a->output, DC_FILE_OUTPUT},
        {"--log", a->log, DC_FILE_OUTPUT},
        {"--report", a->report, DC_FILE_OUTPUT},
        {"--trace", a->trace, DC_FILE_OUTPUT},
        {"--checkpoint-dir", a->checkpoint, DC_FILE_INOUT},
    };

    if (dc_file_check (files, sizeof (files) / sizeof (files[0]), err) < 0)
        return DC_STATUS_INPUT;
    return DC_STATUS_OK;
}

int dc_train_check (struct dc_train_cfg *cfg, dc_error_t *err)
{
    if (!cfg->model || !cfg->input || !cfg->target || !cfg->output)
        return errprintf (err, "--model, --input, --target and --output are "
                               "required");
    if ((cfg->resume || cfg->checkpoint_every) && !cfg->ckpt_dir)
        return errprintf (err, "%s needs --checkpoint-dir",
                          cfg->resume ? "--resume" : "--checkpoint-every");
    if (cfg->to.momentum != 0 && cfg->to.optim == DC_OPTIM_ADAM)
        return errprintf (err, "--momentum applies to sgd; adam has its own");
    if (!(cfg->to.lr > 0))
        cfg->to.lr = cfg->to.optim == DC_OPTIM_ADAM ? 0.001 : 0.01;
    return 0;
}

int dc_train_open (const struct dc_train_cfg *cfg, struct dc_train **tp,
                   struct dc_train_res *res, dc_error_t *err)
{
    struct dc_train *t;
    int st;

    memset (res, 0, sizeof (*res));
    err->text[0] = '\0';
    *tp = NULL;
    if (!(t = calloc (1, sizeof (*t))) ||
        (cfg->ckpt_dir && !cfg->checkpoint &&
         asprintf (&t->ckpt_path, "%s/" DC_TRAIN_CKPT_NAME, cfg->ckpt_dir) <
             0)) {
        free (t);
        errprintf (err, "train: out of memory");
        return DC_STATUS_FAIL;
    }
    t->cfg = *cfg;
    if (t->ckpt_path)
        t->cfg.checkpoint = t->ckpt_path;
    if ((st = check_files (&t->cfg, err)) != DC_STATUS_OK) {
        free (t->ckpt_path);
        free (t);
        return st;
    }
    if (dc_comm_mpi_wanted ()) {
        /* under mpirun/srun: ranks other than 0 serve and leave here */
        bool hub;
        t->mpij.on_error = cfg->on_rank_error;
        t->mpij.arg = cfg->arg;
        st = dc_job_mpi_start (&t->mpij, &hub, err);
        if (!hub || st != DC_STATUS_OK) {
            res->served = !hub;
            free (t->ckpt_path);
            free (t);
            if (st != DC_STATUS_OK)
                errprefix (err, "train: ");
            return st;
        }
        t->mpi = true;
    }
    *tp = t;
    t->dist = t->mpi || cfg->distributed;
    t->t0 = dc_report_now ();
    if (!(t->rep = dc_report_create ("train"))) {
        errprintf (err, "train: out of memory");
        return DC_STATUS_FAIL;
    }
    if ((st = load_data (t, err)) != DC_STATUS_OK ||
        (st = make_trainer (t, err)) != DC_STATUS_OK)
        return st;
    /* --trace: the head (the hub, or the one process's rank 0) loads */
    dc_report_span (t->rep, t->dist ? DC_REPORT_HUB : 0, "load", "load", t->t0,
                    dc_report_now (), NAN);
    t->step0 = t->pos.step;
    res->resumed = t->pos.step > 0;
    res->step = t->pos.step;
    if (cfg->log)
        return log_open (t, err);
    return DC_STATUS_OK;
}

/* ================= across ranks ================= */

/* The status of a distributed run that failed. */
static int dist_error (struct dc_train *t, dc_error_t *err)
{
    int sig = t->mpi ? t->mpij.interrupted : t->job ? t->job->interrupted : 0;

    if (sig > 0) {
        errprintf (err,
                   "train: interrupted by SIG%s: every rank stopped; "
                   "--resume continues from the last checkpoint",
                   signame (sig));
        return DC_STATUS_SIGNAL;
    }
    errprefix (err, "train: ");
    return errno == EHOSTDOWN ? DC_STATUS_FAIL : DC_STATUS_GPU;
}

static int launch_ranks (struct dc_train *t, dc_error_t *err)
{
    double tl = dc_report_now ();
    int st = dc_job_launch (t->job, t->cfg.heartbeat_timeout, err);

    dc_report_span (t->rep, DC_REPORT_HUB, "launch", "launch", tl,
                    dc_report_now (), NAN);
    for (int r = 0; r < t->job->plan->size; r++)
        dc_report_rank_host (t->rep, r, t->job->host[r]);
    if (st == DC_STATUS_SIGNAL)
        errprintf (err,
                   "train: interrupted by SIG%s while connecting: nothing "
                   "runs",
                   signame (t->job->interrupted));
    else if (st != DC_STATUS_OK)
        errprefix (err, "train: ");
    return st;
}

/* --split: plan the layout; a pipeline gets each rank its stage (and,
 * when resuming, the checkpoint's weights and optimizer state of its
 * layers); a layout that is data goes on as data parallel (*data). */
static int launch_pipe (struct dc_train *t, bool *data, dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    struct dc_safetensors *ck = NULL;
    int st;

    *data = false;
    /* activations: a group holds its share of a batch at once */
    if ((st = dc_job_layout (t->job, t->m, &a->split, a->device,
                             a->to.batch_size, &t->lo, err)) != DC_STATUS_OK) {
        errprefix (err, "train: ");
        return st;
    }
    if (a->dry_run) {
        if (a->dry_run_layout)
            a->dry_run_layout (t->job, t->lo, t->m, (size_t)a->split.micro_rows,
                               0, a->arg);
        return DC_STATUS_OK;
    }
    if (t->lo->split == DC_SPLIT_DATA) {
        dc_layout_destroy (t->lo);
        t->lo = NULL;
        *data = true;
        return DC_STATUS_OK;
    }
    if (t->pos.step > 0 && !(ck = dc_safetensors_load (a->checkpoint, err))) {
        errprefix (err, "train: ");
        return DC_STATUS_INPUT;
    }
    if ((st = launch_ranks (t, err)) != DC_STATUS_OK) {
        dc_safetensors_destroy (ck);
        return st;
    }
    struct dc_pipe_train_opts o = {
        .device = a->device,
        .dtype = dc_dtype_name (a->dtype),
        .threads = a->threads,
        .delay_ms = delay ? atoi (delay) : 0,
        .to = &a->to,
        .lo = t->lo,
        .micro_rows = (size_t)a->split.micro_rows,
        .m = t->m,
        .ck = ck,
        .check = dc_job_check,
        .arg = t->job,
        .hosts = t->job->host,
        .report = t->rep,
    };
    t->pt = dc_pipe_train_start (t->job->hub, &o, err);
    dc_safetensors_destroy (ck);
    if (!t->pt)
        return dist_error (t, err);
    return DC_STATUS_OK;
}

/* Start the ranks and hand them the job, the model and (when resuming) the
 * checkpoint; they answer when ready.  *planned: --dry-run printed the
 * plan, nothing more to do. */
static int launch (struct dc_train *t, bool *planned, dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    const char *delay = getenv ("DCRUN_TEST_CHUNK_DELAY_MS");
    bool resumed = t->pos.step > 0, data = true;
    size_t mlen = 0, clen = 0;
    int st;

    *planned = false;
    /* -L mpi, -L slurm: a data-parallel run goes to the driver (the ranks
     * run this command under it); a pipeline is planned here, its stages
     * started through the launcher like any rank */
    bool split = !t->mpi && dc_run_split_wanted (&a->split);
    if (!t->mpi && !split && dc_job_via_driver (t->job))
        return DC_STATUS_DRIVER;
    if (!(t->model = dc_file_read (a->model, (size_t)1 << 32, &mlen, err)) ||
        (resumed && !(t->ckpt = dc_file_read (a->checkpoint, (size_t)1 << 32,
                                              &clen, err)))) {
        errprefix (err, "train: ");
        return DC_STATUS_INPUT;
    }
    if (split) {
        if ((st = launch_pipe (t, &data, err)) != DC_STATUS_OK || !data ||
            a->dry_run) {
            *planned = a->dry_run;
            return st;
        }
        if (dc_job_via_driver (t->job))
            return DC_STATUS_DRIVER;
    }
    if (a->dry_run && !t->mpi) {
        if (a->dry_run_ranks)
            a->dry_run_ranks (t->job, a->arg);
        *planned = true;
        return DC_STATUS_OK;
    }
    if (!t->mpi && (st = launch_ranks (t, err)) != DC_STATUS_OK)
        return st;
    struct dc_coord_train_opts o = {
        .device = a->device,
        .dtype = dc_dtype_name (a->dtype),
        .activation = a->activation,
        .threads = a->threads,
        .delay_ms = delay ? atoi (delay) : 0,
        .to = &a->to,
        .inputs = dc_model_inputs (t->m),
        .outputs = dc_model_outputs (t->m),
        .model = t->model,
        .model_len = mlen,
        .checkpoint = t->ckpt,
        .checkpoint_len = clen,
        .check = t->mpi ? dc_job_mpi_check : dc_job_check,
        .arg = t->mpi ? (void *)&t->mpij : (void *)t->job,
        .hosts = t->mpi ? t->mpij.host : t->job->host,
        .report = t->rep,
        .io_mode = a->io_mode,
        .input_path = a->input,
        .target_path = a->target,
        .x = t->hx,
        .target = t->ht,
    };
    for (int r = 0; t->mpi && r < t->mpij.size; r++)
        if (t->mpij.host && t->mpij.host[r])
            dc_report_rank_host (t->rep, r, t->mpij.host[r]);
    if (!(t->ct = dc_coord_train_start (t->mpi ? t->mpij.hub : t->job->hub, &o,
                                        err)))
        return dist_error (t, err);
    return DC_STATUS_OK;
}

static void dist_report (struct dc_train *t)
{
    cJSON *x = dc_report_extra (t->rep, "distributed");

    dc_report_set_layout (t->rep, "data");
    for (size_t h = 0; !t->mpi && h < t->job->hosts->count; h++)
        dc_report_add_host (t->rep, t->job->hosts->v[h].name);
    if (x) {
        cJSON_AddNumberToObject (x, "ranks",
                                 t->mpi ? t->mpij.size : t->job->plan->size);
        cJSON_AddStringToObject (x, "lost_workers",
                                 dc_coord_train_lost (t->ct));
    }
    if (t->lo)
        dc_report_set_layout (t->rep, dc_split_name (t->lo->split));
    if (dc_coord_train_nlost (t->ct) > 0)
        note (t, true,
              "train: lost on the way (the others redid their steps): %s",
              dc_coord_train_lost (t->ct));
}

/* The end of a distributed run: stop the ranks of a failure, or let them
 * leave after DONE. */
static void dist_fini (struct dc_train *t, bool failed)
{
    if (t->ct) {
        dc_coord_train_finish (t->ct);
        t->ct = NULL;
    }
    free (t->model);
    free (t->ckpt);
    t->model = t->ckpt = NULL;
    if (t->mpi)
        return;
    dc_pipe_train_finish (t->pt);
    t->pt = NULL;
    dc_layout_destroy (t->lo);
    t->lo = NULL;
    if (!t->job)
        return;
    if (failed)
        dc_job_stop (t->job);
    else
        dc_job_drain (t->job, 5); /* the ranks leave after DONE */
}

/* ================= run ================= */

static int step_cb (const struct dc_train_pos *pos, size_t rows, double loss,
                    void *arg)
{
    struct dc_train *t = arg;
    size_t bs = t->cfg.to.batch_size;
    struct dc_train_step s = {
        .pos = pos, .rows = rows, .loss = loss, .epochs = t->cfg.epochs};
    size_t total = t->rows * (size_t)t->cfg.epochs;

    s.epoch_end = pos->batch == 0;
    s.epoch = (s.epoch_end ? pos->epoch - 1 : pos->epoch) + 1;
    s.batch = s.epoch_end ? (int64_t)((t->rows + bs - 1) / bs) : pos->batch;
    t->rows_run += rows;
    t->epoch_loss += loss * (double)rows;
    t->epoch_rows += rows;
    if (s.epoch_end) {
        s.epoch_loss = t->epoch_loss / (double)t->epoch_rows;
        if (!t->have_first) {
            t->first_loss = s.epoch_loss;
            t->have_first = true;
        }
        t->last_loss = s.epoch_loss;
        t->epoch_loss = 0;
        t->epoch_rows = 0;
    }
    /* --trace: the step on the head (the hub across ranks, else rank 0 of
     * one process, where it is all compute) */
    double now = dc_report_now ();
    dc_report_span (t->rep, t->dist ? DC_REPORT_HUB : 0, "step",
                    t->dist ? "coordinator" : "step", t->t_step, now,
                    (double)pos->step);
    if (!t->dist)
        dc_report_span (t->rep, 0, "compute", "compute", t->t_step, now, NAN);
    t->t_step = now;
    s.done = (size_t)pos->epoch * t->rows + (size_t)pos->batch * bs;
    if (s.done > total)
        s.done = total;
    if (t->log && log_line (t, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%zu,%.9g\n",
                            s.epoch, s.batch, pos->step, rows, loss) < 0) {
        t->stopped = true;
        return 1; /* stop here: the last checkpoint stays */
    }
    if (t->cfg.on_step)
        t->cfg.on_step (&s, t->cfg.arg);
    return 0;
}

static int write_report (struct dc_train *t, double t1, double t2,
                         dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    char host[256] = "localhost", hex[DC_SHA256_HEXLEN + 1];

    gethostname (host, sizeof (host) - 1);
    /* forward + backward: about 3 times the forward pass */
    double flop = 3.0 * dc_model_flops_per_row (t->m) * (double)t->rows_run;
    if (!t->dist || t->pt) /* data parallel: every rank, added before */
        dc_report_add_rank (t->rep, 0, host, t->ops->describe (t->c),
                            t->rows_run, t2 - t1, flop);
    int64_t np[1] = {(int64_t)dc_model_nparams (t->m)};
    bool ok = dc_sha256_file (a->output, hex, err) == 0;
    dc_report_set_output (t->rep, a->output, 1, np, "safetensors",
                          ok ? hex : NULL);
    cJSON *o = dc_report_extra (t->rep, "train");
    cJSON_AddNumberToObject (o, "epochs", (double)a->epochs);
    cJSON_AddNumberToObject (o, "steps", (double)t->pos.step);
    cJSON_AddNumberToObject (o, "steps_this_run",
                             (double)(t->pos.step - t->step0));
    cJSON_AddNumberToObject (o, "resumed_at_step", (double)t->step0);
    cJSON_AddNumberToObject (o, "batch_size", (double)a->to.batch_size);
    cJSON_AddStringToObject (o, "optimizer",
                             a->to.optim == DC_OPTIM_ADAM ? "adam" : "sgd");
    cJSON_AddStringToObject (o, "loss",
                             a->to.loss == DC_LOSS_XENT ? "xent" : "mse");
    cJSON_AddNumberToObject (o, "lr", a->to.lr);
    if (t->have_first) {
        cJSON_AddNumberToObject (o, "first_epoch_loss", t->first_loss);
        cJSON_AddNumberToObject (o, "last_epoch_loss", t->last_loss);
    }
    dc_report_set_total_seconds (t->rep, dc_report_now () - t->t0);
    if ((a->report && dc_report_write (t->rep, a->report, err) < 0) ||
        (a->trace && dc_trace_write_report (t->rep, a->trace, err) < 0))
        return DC_STATUS_FAIL;
    return DC_STATUS_OK;
}

/* Train, then write the model and the report. */
static int train (struct dc_train *t, dc_error_t *err)
{
    const struct dc_train_cfg *a = &t->cfg;
    double t1 = dc_report_now ();

    dc_report_phase_add (t->rep, DC_PHASE_LOAD, t1 - t->t0);
    t->t_step = t1;
    progress (t, DC_PROGRESS_START, 0);
    struct dc_train_run run = {
        .x = t->hx,
        .target = t->ht,
        .rows = t->rows,
        .epochs = a->epochs,
        .checkpoint_every = a->checkpoint_every,
        .checkpoint = a->checkpoint,
        .step_cb = step_cb,
        .arg = t,
        .grad_fn = t->pt ? dc_pipe_train_grad : NULL,
        /* data parallel: the ranks keep the model; the head fetches it for
         * checkpoints and at the end */
        .grad_idx_fn = t->ct ? dc_coord_train_grad_idx : NULL,
        .state_fn = t->ct ? dc_coord_train_state : NULL,
        .grad_arg = t->pt ? (void *)t->pt : (void *)t->ct,
    };
    int rc = dc_trainer_run (t->tr, &run, &t->pos, err);
    if (t->stopped) {
        errprintf (err, "%s: write: %s: stopped at step %" PRId64 "%s", a->log,
                   strerror (t->log_errno), t->pos.step,
                   a->checkpoint ? "; the last checkpoint stays" : "");
        return DC_STATUS_FAIL;
    }
    if (rc < 0 && t->dist)
        return dist_error (t, err);
    if (rc < 0) {
        errprefix (err, "train: ");
        return DC_STATUS_GPU;
    }
    if (t->dist) {
        dist_report (t);
        if (t->ct)
            dc_coord_train_report (t->ct, t->rep,
                                   dc_model_flops_per_row (t->m));
        dc_coord_train_finish (t->ct);
        t->ct = NULL;
    }
    double t2 = dc_report_now ();
    dc_report_phase_add (t->rep, DC_PHASE_COMPUTE, t2 - t1);
    progress (t, DC_PROGRESS_DONE, t->rows * (size_t)a->epochs);
    FILE *log = t->log;
    t->log = NULL;
    if (log && fclose (log) != 0) {
        errprintf (err, "%s: %s", a->log, strerror (errno));
        return DC_STATUS_FAIL;
    }
    /* the trained model: the input's names, dtypes and metadata */
    if (a->activation)
        dc_safetensors_meta_set (t->m->st, "activation", a->activation);
    if (dc_model_save (t->m, a->output, err) < 0)
        return DC_STATUS_FAIL;
    dc_report_instant (t->rep, DC_REPORT_HUB, "commit", "commit", a->output);
    dc_report_phase_add (t->rep, DC_PHASE_WRITE, dc_report_now () - t2);
    if (a->report || a->trace)
        return write_report (t, t1, t2, err);
    return DC_STATUS_OK;
}

int dc_train_run (struct dc_train *t, struct dc_job *job,
                  struct dc_train_res *res, dc_error_t *err)
{
    bool planned = false;
    int st = DC_STATUS_OK;

    err->text[0] = '\0';
    t->job = job;
    if (t->dist && (st = launch (t, &planned, err)) == DC_STATUS_OK && !planned)
        st = train (t, err);
    else if (!t->dist)
        st = train (t, err);
    res->step = t->pos.step;
    res->signal = t->mpi ? t->mpij.interrupted : job ? job->interrupted : 0;
    if (t->dist)
        dist_fini (t, st != DC_STATUS_OK);
    return st;
}

void dc_train_close (struct dc_train *t, int abort_code)
{
    if (!t)
        return;
    if (t->dist || t->mpi)
        dist_fini (t, abort_code != 0);
    if (t->mpi)
        dc_job_mpi_finish (&t->mpij, abort_code);
    dc_trainer_destroy (t->tr);
    if (t->ops && t->c)
        t->ops->destroy (t->c);
    free (t->hx);
    free (t->ht);
    dc_npy_close (t->x);
    dc_npy_close (t->tg);
    dc_model_destroy (t->m);
    dc_report_destroy (t->rep);
    if (t->log)
        fclose (t->log);
    free (t->ckpt_path);
    free (t);
}
