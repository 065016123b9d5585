/* infer.c - `dcrun infer` below the CLI: one process, MPI, driver,
 * pipeline or data parallel, picked in dc_infer_run */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "lib/formats/trace.h"
#include "lib/run/infer.h"
#include "lib/run/pipeline.h"
#include "lib/util/file.h"
#include "lib/util/log.h"

#define BLOCK_BYTES ((size_t)256 << 20)

static const char *signame (int sig)
{
    const char *s = sigabbrev_np (sig);
    return s ? s : "?";
}

static void progress (const struct dc_infer_opts *o, enum dc_run_progress ev,
                      const char *what, size_t done, size_t total, int alive)
{
    if (o->progress)
        o->progress (ev, what, done, total, alive, o->arg);
}

/* --report and --trace, when asked for: 0, or -1 with err. */
static int write_outputs (const struct dc_infer_opts *o,
                          const struct dc_report *rep, dc_error_t *err)
{
    if (o->report &&
        dc_report_write ((struct dc_report *)rep, o->report, err) < 0)
        return -1;
    return o->trace ? dc_trace_write_report (rep, o->trace, err) : 0;
}

void dc_infer_warn (struct dc_report *rep, const char *output,
                    const size_t *nonfinite)
{
    char kernels[512];
    size_t n = 0;
    struct stat st;
    dc_error_t err;

    if (dc_report_kernels_differ (rep, kernels, sizeof (kernels)))
        dc_warn ("infer: the ranks use different BLAS kernels (%s): the "
                 "bytes of their rows may differ in the last bits",
                 kernels);
    if (nonfinite)
        n = *nonfinite;
    else if (!output || stat (output, &st) < 0 || !S_ISREG (st.st_mode))
        return; /* a device or a FIFO cannot be read back */
    else if (dc_nonfinite_rows_file (output, &n, &err) < 0) {
        dc_warn ("infer: cannot check the output for NaN and Inf: %s",
                 err.text);
        return;
    }
    dc_report_set_nonfinite_rows (rep, n);
    if (n > 0)
        dc_warn ("infer: %zu row%s of %s hold%s NaN or Inf", n,
                 n == 1 ? "" : "s", output ? output : "the output",
                 n == 1 ? "s" : "");
}

/* A batch of 0 rows across ranks: its (0, outputs) output here. */
static int empty_output (const struct dc_infer_opts *o, struct dc_npy *x,
                         dc_error_t *err)
{
    const struct dc_coord_infer_opts *io = &o->io;
    struct dc_model *m = NULL;
    struct dc_npy_writer *w = NULL;
    struct dc_report *rep = NULL;
    double t0 = dc_report_now ();
    const char *mr = getenv ("OMPI_COMM_WORLD_RANK");
    int st = DC_STATUS_OK;

    if (!mr)
        mr = getenv ("SLURM_PROCID");
    if (!(m = dc_model_load (io->model_path, io->activation, err)))
        st = DC_STATUS_INPUT;
    else if (x->row_elems != (size_t)dc_model_inputs (m) ||
             x->dtype == DC_NPY_I8) {
        errprintf (err,
                   "%s: shape does not fit the model: expected float rows "
                   "(rows, %d)",
                   io->input_path, dc_model_inputs (m));
        st = DC_STATUS_INPUT;
    } else if (o->dry_run) {
        if (o->dry_run_data)
            o->dry_run_data (NULL, 0, 0, o->arg);
    } else if (dc_comm_mpi_wanted () && mr && atoi (mr) != 0)
        ; /* under mpirun: rank 0 writes */
    else {
        int64_t shape[2] = {0, dc_model_outputs (m)};
        if (!(w = dc_npy_writer_create (io->output_path, io->out_dtype, 2,
                                        shape, o->report != NULL, err)) ||
            dc_npy_writer_commit (w, err) < 0)
            st = DC_STATUS_INPUT;
        else if ((o->report || o->trace) &&
                 (rep = dc_report_create ("infer"))) {
            dc_report_set_output (rep, io->output_path, 2, shape,
                                  dc_npy_descr (io->out_dtype),
                                  dc_npy_writer_sha256 (w));
            dc_report_set_total_seconds (rep, dc_report_now () - t0);
            if (write_outputs (o, rep, err) < 0)
                st = DC_STATUS_FAIL;
        }
    }
    dc_report_destroy (rep);
    dc_npy_writer_destroy (w);
    dc_model_destroy (m);
    return st;
}

int dc_infer_check (const struct dc_infer_opts *o, dc_error_t *err)
{
    /* micro-batches go stage to stage through this process */
    if (o->io.io_mode == DC_IO_DIRECT && (o->split.split == DC_SPLIT_LAYERS ||
                                          o->split.split == DC_SPLIT_HYBRID))
        return errprintf (err,
                          "--io direct: not with --split %s (the "
                          "micro-batches pass through this process)",
                          dc_split_name (o->split.split));
    return 0;
}

const char *dc_infer_io_plan (const struct dc_infer_opts *o)
{
    if (dc_run_split_wanted (&o->split))
        return NULL;
    if (o->io.io_mode != DC_IO_AUTO)
        return dc_io_mode_name (o->io.io_mode);
    return "auto: each rank reads and writes its rows itself when it sees "
           "the input and the output's folder at the same paths, else they "
           "pass through the head (decided when the ranks start)";
}

int dc_infer_prepare (const struct dc_infer_opts *o, bool distributed,
                      bool *done, dc_error_t *err)
{
    const struct dc_file_use files[] = {
        {"--model", o->io.model_path, DC_FILE_INPUT},
        {"--input", o->io.input_path, DC_FILE_INPUT},
        {"--output", o->io.output_path, DC_FILE_OUTPUT},
        {"--report", o->report, DC_FILE_OUTPUT},
        {"--trace", o->trace, DC_FILE_OUTPUT},
    };
    struct dc_npy *x;
    int st;

    *done = false;
    err->text[0] = '\0';
    if (dc_file_check (files, sizeof (files) / sizeof (files[0]), err) < 0)
        return DC_STATUS_INPUT;
    if (!distributed)
        return DC_STATUS_OK; /* one process: 0 rows are a loop of 0 blocks */
    if (!(x = dc_npy_open (o->io.input_path, err)))
        return DC_STATUS_INPUT;
    if (x->rows > 0 || x->ndim != 2) {
        dc_npy_close (x); /* the coordinator checks the rest */
        return DC_STATUS_OK;
    }
    *done = true;
    st = empty_output (o, x, err);
    dc_npy_close (x);
    return st;
}

/* ================= one process ================= */

struct single {
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct dc_mlp_dev *net;
    struct dc_model *m;
    struct dc_npy *x;
    struct dc_npy_writer *w;
    struct dc_report *rep;
    float *hx, *hy;
    int in, outn;
    size_t rows, block;
    double flop_row;
};

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

/* The model and the input's header, the back-end, the output, blocks. */
static int single_load (const struct dc_infer_opts *o, struct single *s,
                        dc_error_t *err)
{
    const struct dc_coord_infer_opts *io = &o->io;

    if (!(s->m = dc_model_load (io->model_path, io->activation, err)) ||
        !(s->x = dc_npy_open (io->input_path, err)))
        return DC_STATUS_INPUT;
    s->in = dc_model_inputs (s->m);
    s->outn = dc_model_outputs (s->m);
    struct dc_npy *x = s->x;
    if (x->ndim != 2 || x->row_elems != (size_t)s->in ||
        x->dtype == DC_NPY_I8) {
        char shape[96] = "";
        for (int i = 0, n = 0; i < x->ndim && n < 64; i++)
            n += snprintf (shape + n, sizeof (shape) - (size_t)n, "%s%lld",
                           i ? ", " : "", (long long)x->shape[i]);
        errprintf (err,
                   "%s: array of shape (%s) and dtype %s, but the model "
                   "takes float rows of %d inputs: expected (rows, %d)",
                   io->input_path, shape, dc_npy_descr (x->dtype), s->in,
                   s->in);
        return DC_STATUS_INPUT;
    }
    s->rows = x->rows;
    s->flop_row = dc_model_flops_per_row (s->m);
    struct dc_compute_opts co = {
        .dtype = o->dtype,
        .threads = io->threads,
        .chunk_rows = io->chunk_rows,
    };
    if (!(s->ops = dc_compute_find (io->device ? io->device : "auto", err)) ||
        !(s->c = s->ops->create (&co, err))) {
        errprefix (err, "infer: ");
        return DC_STATUS_GPU;
    }
    struct dc_layer_view *lv = calloc ((size_t)s->m->nlayers, sizeof (*lv));
    struct dc_mlp_view view;
    if (!lv) {
        errprintf (err, "infer: out of memory");
        return DC_STATUS_FAIL;
    }
    dc_model_view (s->m, lv, &view);
    s->net = s->ops->mlp_load (s->c, &view, err);
    free (lv);
    if (!s->net) {
        errprefix (err, "infer: ");
        return DC_STATUS_GPU;
    }
    if (o->report)
        add_model_info (s->rep, io->model_path, s->m, o->dtype);
    dc_model_destroy (s->m); /* the back-end has its own copy */
    s->m = NULL;
    int64_t oshape[2] = {(int64_t)s->rows, s->outn};
    if (!(s->w = dc_npy_writer_create (io->output_path, io->out_dtype, 2,
                                       oshape, o->report != NULL, err)))
        return DC_STATUS_INPUT;
    /* blocks: a sixteenth of the batch, at least a few back-end chunks,
     * at most BLOCK_BYTES of input and output */
    size_t per_row = ((size_t)s->in + (size_t)s->outn) * sizeof (float);
    size_t block = s->rows / 16;
    size_t minblock = io->chunk_rows ? 4 * io->chunk_rows : 4096;
    if (block < minblock)
        block = minblock;
    if (block > BLOCK_BYTES / per_row)
        block = BLOCK_BYTES / per_row;
    if (block < 1)
        block = 1;
    if (block > s->rows)
        block = s->rows ? s->rows : 1;
    s->block = block;
    if (!(s->hx = malloc (block * (size_t)s->in * sizeof (float))) ||
        !(s->hy = malloc (block * (size_t)s->outn * sizeof (float)))) {
        errprintf (err, "infer: out of memory for %zu-row blocks", block);
        return DC_STATUS_FAIL;
    }
    return DC_STATUS_OK;
}

/* Every block: read, compute, write; then commit and report. */
static int single_loop (const struct dc_infer_opts *o, struct single *s,
                        double t0, dc_error_t *err)
{
    const struct dc_coord_infer_opts *io = &o->io;
    double tc = 0, t;
    size_t nonfinite = 0;

    progress (o, DC_PROGRESS_START, "infer", 0, s->rows, -1);
    for (size_t r0 = 0; r0 < s->rows; r0 += s->block) {
        size_t n = s->rows - r0 < s->block ? s->rows - r0 : s->block;
        double t1 = dc_report_now ();
        if (dc_npy_read_f32 (s->x, r0, n, s->hx, err) < 0)
            return DC_STATUS_INPUT;
        double t2 = dc_report_now ();
        if (s->ops->mlp_infer (s->c, s->net, s->hx, n, r0, s->hy, err) < 0) {
            errprefix (err, "infer: ");
            return DC_STATUS_GPU;
        }
        double t3 = dc_report_now ();
        if (dc_npy_writer_write_f32 (s->w, r0, n, s->hy, err) < 0)
            return DC_STATUS_FAIL;
        double t4 = dc_report_now ();
        dc_report_phase_add (s->rep, DC_PHASE_LOAD, t2 - t1);
        dc_report_phase_add (s->rep, DC_PHASE_COMPUTE, t3 - t2);
        dc_report_phase_add (s->rep, DC_PHASE_WRITE, t4 - t3);
        /* the block as rank 0's chunk, with its phases (--trace) */
        dc_report_chunk_phases (s->rep, 0, r0 / s->block,
                                &(struct dc_chunk_phases){.start = t1,
                                                          .read = t2 - t1,
                                                          .compute = t3 - t2,
                                                          .write = t4 - t3});
        dc_report_chunk_done (s->rep, 0, r0 / s->block, t3 - t2);
        tc += t3 - t2;
        nonfinite += dc_nonfinite_rows (s->hy, n, (size_t)s->outn);
        progress (o, DC_PROGRESS_UPDATE, "infer", r0 + n, s->rows, -1);
    }
    t = dc_report_now ();
    if (dc_npy_writer_commit (s->w, err) < 0)
        return DC_STATUS_FAIL;
    dc_report_instant (s->rep, DC_REPORT_HUB, "commit", "commit",
                       io->output_path);
    dc_report_phase_add (s->rep, DC_PHASE_WRITE, dc_report_now () - t);
    progress (o, DC_PROGRESS_DONE, "infer", s->rows, s->rows, -1);
    dc_infer_warn (s->rep, io->output_path, &nonfinite);
    if (!o->report && !o->trace)
        return DC_STATUS_OK;
    char host[256] = "localhost";
    int64_t oshape[2] = {(int64_t)s->rows, s->outn};
    gethostname (host, sizeof (host) - 1);
    dc_report_add_rank (s->rep, 0, host, s->ops->describe (s->c), s->rows, tc,
                        s->flop_row * (double)s->rows);
    dc_report_set_rank_kernel (s->rep, 0,
                               s->ops->kernel ? s->ops->kernel (s->c) : NULL);
    dc_report_set_output (s->rep, io->output_path, 2, oshape,
                          dc_npy_descr (io->out_dtype),
                          dc_npy_writer_sha256 (s->w));
    dc_report_set_total_seconds (s->rep, dc_report_now () - t0);
    if (write_outputs (o, s->rep, err) < 0)
        return DC_STATUS_FAIL;
    return DC_STATUS_OK;
}

static int infer_single (const struct dc_infer_opts *o, dc_error_t *err)
{
    struct single s = {.ops = NULL};
    double t0 = dc_report_now ();
    int st;

    if (!(s.rep = dc_report_create ("infer"))) {
        errprintf (err, "infer: out of memory");
        return DC_STATUS_FAIL;
    }
    if ((st = single_load (o, &s, err)) == DC_STATUS_OK) {
        dc_report_phase_add (s.rep, DC_PHASE_LOAD, dc_report_now () - t0);
        dc_report_span (s.rep, 0, "load", "load", t0, dc_report_now (), NAN);
        st = single_loop (o, &s, t0, err);
    }
    free (s.hx);
    free (s.hy);
    dc_npy_writer_destroy (s.w); /* without commit: no output file */
    if (s.net)
        s.ops->mlp_unload (s.c, s.net);
    if (s.ops && s.c)
        s.ops->destroy (s.c);
    dc_npy_close (s.x);
    dc_model_destroy (s.m);
    dc_report_destroy (s.rep);
    return st;
}

/* ================= across ranks ================= */

/* What the coordinators' callbacks get. */
struct dist {
    const struct dc_infer_opts *o;
    int (*check) (void *arg);
    void *check_arg;
    bool alive; /* show the ranks alive */
};

static int dist_check (void *arg)
{
    struct dist *d = arg;
    return d->check (d->check_arg);
}

static void dist_progress (size_t done, size_t total, int alive, void *arg)
{
    struct dist *d = arg;
    progress (d->o, DC_PROGRESS_UPDATE, "rows", done, total,
              d->alive ? alive : -1);
}

/* The status of a coordinator's run.  pipe: the pipeline's wording. */
static int run_status (const struct dc_coord_result *res, bool pipe,
                       const char *output, int *sig, dc_error_t *err)
{
    char text[sizeof (err->text)];

    snprintf (text, sizeof (text), "%s", err->text);
    switch (res->status) {
    case DC_COORD_OK:
        if (res->nlost > 0 && !pipe)
            errprintf (err,
                       "infer: %zu rows written to %s; lost on the way: %s",
                       res->rows, output, res->lost);
        else
            err->text[0] = '\0';
        return DC_STATUS_OK;
    case DC_COORD_INTERRUPTED:
        *sig = res->signal;
        errprintf (err,
                   "infer: interrupted by SIG%s: every rank stopped, no "
                   "output written",
                   signame (res->signal));
        return DC_STATUS_SIGNAL;
    case DC_COORD_WORKER_ERROR:
        errprintf (err, pipe ? "infer: %s: no output written" : "infer: %s",
                   text);
        return DC_STATUS_GPU;
    case DC_COORD_ALL_LOST:
        if (pipe)
            errprintf (err, "infer: %s: every rank stopped, no output written",
                       res->lost);
        else
            errprintf (err, "infer: no output written: every rank was lost: %s",
                       res->lost);
        return DC_STATUS_FAIL;
    default:
        errprintf (err, "infer: %s", text);
        return DC_STATUS_FAIL;
    }
}

/* Launch the job's ranks, the report's hosts and layout. */
static int dist_launch (const struct dc_infer_opts *o, struct dc_job *job,
                        struct dc_report *rep, const char *layout, int *sig,
                        dc_error_t *err)
{
    int st;

    for (size_t h = 0; h < job->hosts->count; h++)
        dc_report_add_host (rep, job->hosts->v[h].name);
    dc_report_set_layout (rep, layout);
    double tl = dc_report_now ();
    st = dc_job_launch (job, o->heartbeat_timeout, err);
    dc_report_span (rep, DC_REPORT_HUB, "launch", "launch", tl,
                    dc_report_now (), NAN);
    if (st == DC_STATUS_SIGNAL) {
        *sig = job->interrupted;
        errprintf (err,
                   "infer: interrupted by SIG%s while connecting: "
                   "nothing runs",
                   signame (job->interrupted));
    } else if (st != DC_STATUS_OK) {
        errprefix (err, "infer: ");
    }
    return st;
}

/* After a run: stop the ranks of a failure, warn, write the report. */
static int dist_after (const struct dc_infer_opts *o, struct dc_job *job,
                       struct dc_report *rep, int rc, double t0,
                       dc_error_t *err)
{
    if (rc < 0 && job)
        dc_job_stop (job);
    else if (rc == 0)
        dc_infer_warn (rep, o->io.output_path, NULL);
    dc_report_set_total_seconds (rep, dc_report_now () - t0);
    if (rc == 0 && write_outputs (o, rep, err) < 0) {
        errprefix (err, "infer: ");
        return DC_STATUS_FAIL;
    }
    return DC_STATUS_OK;
}

static int infer_data (const struct dc_infer_opts *o, struct dc_job *job,
                       int *sig, dc_error_t *err)
{
    struct dist d = {
        .o = o, .check = dc_job_check, .check_arg = job, .alive = true};
    struct dc_coord_infer_opts co_opts = o->io;
    struct dc_coord *co = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    double t0 = dc_report_now ();
    int st;

    co_opts.hosts = job->host;
    co_opts.check = dist_check;
    co_opts.progress = dist_progress;
    co_opts.arg = &d;
    if (!(co = dc_coord_infer_create (&co_opts, job->plan->size, err))) {
        errprefix (err, "infer: ");
        return DC_STATUS_INPUT;
    }
    if (dc_job_via_driver (job)) {
        /* inputs checked here; the ranks themselves run under MPI */
        st = DC_STATUS_DRIVER;
        goto out;
    }
    if (o->dry_run) {
        if (o->dry_run_data)
            o->dry_run_data (job, dc_coord_rows (co), dc_coord_chunk_rows (co),
                             o->arg);
        st = DC_STATUS_OK;
        goto out;
    }
    if (!(rep = dc_report_create ("infer"))) {
        errprintf (err, "infer: out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    if ((st = dist_launch (o, job, rep, "data", sig, err)) != DC_STATUS_OK)
        goto out;
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, dc_report_now () - t0);
    progress (o, DC_PROGRESS_START, "rows", 0, dc_coord_rows (co), -1);
    int rc = dc_coord_infer_run (co, job->hub, rep, &res, err);
    progress (o, DC_PROGRESS_DONE, "rows", res.rows, res.rows, -1);
    if ((st = dist_after (o, job, rep, rc, t0, err)) == DC_STATUS_OK)
        st = run_status (&res, false, o->io.output_path, sig, err);
out:
    dc_coord_destroy (co); /* an output not committed is removed */
    dc_report_destroy (rep);
    return st;
}

/* Default micro-batch: about 8 per rank, at least 64 rows, a multiple of
 * 64 (the cpu back-end's row block), at most 32 MiB of rows. */
static size_t default_micro (size_t rows, int size, int width)
{
    size_t mr = (rows + 8 * (size_t)size - 1) / (8 * (size_t)size);
    size_t cap = ((size_t)32 << 20) / ((size_t)width * 4);

    mr = (mr + 63) / 64 * 64;
    if (mr > cap)
        mr = cap > 0 ? cap : 1;
    if (mr > rows)
        mr = rows;
    return mr ? mr : 1;
}

/* The layout of the pipeline's model on the job; its micro-batch rows. */
static int pipe_plan (const struct dc_infer_opts *o, struct dc_job *job,
                      struct dc_pipe_infer *pi, struct dc_layout **lo,
                      size_t *micro, dc_error_t *err)
{
    const struct dc_model *m = dc_pipe_infer_model (pi);
    size_t rows = dc_pipe_infer_rows (pi);
    int width = dc_model_inputs (m), st;

    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].out > width)
            width = m->layers[i].out;
    *micro = o->split.micro_rows > 0 ? (size_t)o->split.micro_rows
             : o->io.chunk_rows      ? o->io.chunk_rows
                                : default_micro (rows, job->plan->size, width);
    if ((st = dc_job_layout (job, m, &o->split, o->io.device, *micro, lo,
                             err)) != DC_STATUS_OK) {
        errprefix (err, "infer: ");
    }
    return st;
}

static int infer_pipe (const struct dc_infer_opts *o, struct dc_job *job,
                       int *sig, dc_error_t *err)
{
    struct dist d = {.o = o, .check = dc_job_check, .check_arg = job};
    struct dc_coord_infer_opts po = o->io;
    struct dc_pipe_infer *pi = NULL;
    struct dc_layout *lo = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    double t0 = dc_report_now ();
    size_t micro;
    int st;

    po.hosts = job->host;
    po.check = dist_check;
    po.progress = dist_progress;
    po.arg = &d;
    if (!(pi = dc_pipe_infer_create (&po, err))) {
        errprefix (err, "infer: ");
        return DC_STATUS_INPUT;
    }
    if ((st = pipe_plan (o, job, pi, &lo, &micro, err)) != DC_STATUS_OK)
        goto out;
    size_t rows = dc_pipe_infer_rows (pi);
    if (o->dry_run) {
        if (o->dry_run_layout)
            o->dry_run_layout (job, lo, dc_pipe_infer_model (pi), micro, rows,
                               o->arg);
        goto out;
    }
    if (lo->split == DC_SPLIT_DATA) {
        /* it fits: the data-parallel executor does the rest */
        dc_pipe_infer_destroy (pi);
        dc_layout_destroy (lo);
        return infer_data (o, job, sig, err);
    }
    if (!(rep = dc_report_create ("infer"))) {
        errprintf (err, "infer: out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    if ((st = dist_launch (o, job, rep, dc_split_name (lo->split), sig, err)) !=
        DC_STATUS_OK)
        goto out;
    dc_report_phase_add (rep, DC_PHASE_LAUNCH, dc_report_now () - t0);
    progress (o, DC_PROGRESS_START, "rows", 0, rows, -1);
    int rc = dc_pipe_infer_run (pi, job->hub, lo, micro, rep, &res, err);
    progress (o, DC_PROGRESS_DONE, "rows", res.rows, res.rows, -1);
    if ((st = dist_after (o, job, rep, rc, t0, err)) == DC_STATUS_OK)
        st = run_status (&res, true, o->io.output_path, sig, err);
out:
    dc_pipe_infer_destroy (pi); /* an output not committed is removed */
    dc_layout_destroy (lo);
    dc_report_destroy (rep);
    return st;
}

/* Under mpirun or srun: every process calls it. */
static int infer_mpi (const struct dc_infer_opts *o, int *sig, dc_error_t *err)
{
    struct dc_job_mpi m = {.on_error = o->on_rank_error, .arg = o->arg};
    struct dist d = {.o = o, .check = dc_job_mpi_check, .check_arg = &m};
    struct dc_coord_infer_opts co_opts = o->io;
    struct dc_coord *co = NULL;
    struct dc_report *rep = NULL;
    struct dc_coord_result res;
    double t0 = dc_report_now ();
    bool hub;
    int st = dc_job_mpi_start (&m, &hub, err);

    if (!hub || st != DC_STATUS_OK) {
        /* a rank that served, or a failure */
        if (st != DC_STATUS_OK) {
            errprefix (err, "infer: ");
        }
        return st;
    }
    co_opts.hosts = m.host;
    co_opts.check = dist_check;
    co_opts.progress = NULL;
    co_opts.arg = &d;
    if (!(co = dc_coord_infer_create (&co_opts, m.size, err))) {
        errprefix (err, "infer: ");
        st = DC_STATUS_INPUT;
        goto out;
    }
    if (!(rep = dc_report_create ("infer"))) {
        errprintf (err, "infer: out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    dc_report_set_layout (rep, "data");
    int rc = dc_coord_infer_run (co, m.hub, rep, &res, err);
    if ((st = dist_after (o, NULL, rep, rc, t0, err)) != DC_STATUS_OK ||
        rc == 0)
        goto out;
    if (res.status == DC_COORD_INTERRUPTED) {
        *sig = res.signal;
        errprintf (err, "infer: interrupted by SIG%s: no output written",
                   signame (res.signal));
        st = DC_STATUS_SIGNAL;
    } else {
        errprefix (err, "infer: ");
        st = res.status == DC_COORD_WORKER_ERROR ? DC_STATUS_GPU
                                                 : DC_STATUS_FAIL;
    }
out:
    dc_coord_destroy (co); /* before any abort: no partial output */
    dc_report_destroy (rep);
    /* the abort code: the exit status of the status (status.h) */
    dc_job_mpi_finish (&m, st == DC_STATUS_SIGNAL ? 128 + *sig : (int)st);
    return st;
}

int dc_infer_run (const struct dc_infer_opts *o, struct dc_job *job, int *sig,
                  dc_error_t *err)
{
    *sig = 0;
    err->text[0] = '\0';
    if (dc_run_split_wanted (&o->split)) {
        /* under mpirun or srun every process is one data-parallel rank:
         * --split auto or hybrid (the head's plan came out data parallel,
         * or a run without a head) is that; a pipeline is not */
        if (dc_comm_mpi_wanted () &&
            (o->split.split == DC_SPLIT_LAYERS || o->split.stages > 0)) {
            errprintf (err, "infer: --split layers and --stages are not "
                            "available under mpirun or srun: run dcrun on "
                            "the head node with -L mpi or -L slurm");
            return DC_STATUS_USAGE;
        }
        if (dc_comm_mpi_wanted ())
            return infer_mpi (o, sig, err);
        if (job)
            return infer_pipe (o, job, sig, err);
    }
    if (dc_comm_mpi_wanted ())
        return infer_mpi (o, sig, err);
    if (!job)
        return infer_single (o, err);
    return infer_data (o, job, sig, err);
}
