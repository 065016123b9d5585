/* test_hub.c - the coordinator of a distributed infer and its ranks over the
 * in-process comm "loop" (lib/comm/comm_loop.h): no sshd, pipes or MPI.
 *
 * Real ranks run dc_worker_serve on the cpu back-end in threads; scripted
 * ranks misbehave on purpose (die holding a chunk, send a bad or a
 * duplicate result).  Every case checks the output (complete and right, or
 * absent), the lost ranks and that the good ranks left on DONE.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu/compute.h"
#include "lib/comm/comm_loop.h"
#include "lib/run/coordinator.h"
#include "lib/util/file.h"
#include "lib/model/layout.h"
#include "lib/model/model.h"
#include "lib/formats/npy.h"
#include "lib/run/pipeline.h"
#include "lib/formats/safetensors.h"
#include "lib/run/rank.h"

#define DC_TMP_PREFIX "/tmp/test_hub"
#include "tmpdir.h"

#define IN 8
#define HID 16
#define OUT 4
#define ROWS 300
#define MAXR 4

static float w1[HID * IN], b1[HID], w2[OUT * HID], b2[OUT];
static float xin[ROWS * IN];

static float frand (uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffff) / 65536.0f - 0.5f;
}

/* reference forward pass in double (relu between the layers) */
static void ref_row (const float *x, double *y)
{
    double h[HID];
    for (int j = 0; j < HID; j++) {
        double s = b1[j];
        for (int k = 0; k < IN; k++)
            s += (double)w1[j * IN + k] * x[k];
        h[j] = s > 0 ? s : 0;
    }
    for (int j = 0; j < OUT; j++) {
        double s = b2[j];
        for (int k = 0; k < HID; k++)
            s += (double)w2[j * HID + k] * h[k];
        y[j] = s;
    }
}

static void make_files (void)
{
    uint64_t s = 42;
    dc_error_t err;
    struct dc_safetensors *st = dc_safetensors_create ();

    for (int i = 0; i < HID * IN; i++)
        w1[i] = frand (&s);
    for (int i = 0; i < HID; i++)
        b1[i] = frand (&s);
    for (int i = 0; i < OUT * HID; i++)
        w2[i] = frand (&s);
    for (int i = 0; i < OUT; i++)
        b2[i] = frand (&s);
    for (int i = 0; i < ROWS * IN; i++)
        xin[i] = frand (&s);
    ck_assert_ptr_nonnull (st);
    ck_assert_ptr_nonnull (dc_safetensors_add (st, "0.weight", "F32", 2,
                                               (int64_t[]){HID, IN}, w1, &err));
    ck_assert_ptr_nonnull (dc_safetensors_add (st, "0.bias", "F32", 1,
                                               (int64_t[]){HID}, b1, &err));
    ck_assert_ptr_nonnull (dc_safetensors_add (
        st, "2.weight", "F32", 2, (int64_t[]){OUT, HID}, w2, &err));
    ck_assert_ptr_nonnull (dc_safetensors_add (st, "2.bias", "F32", 1,
                                               (int64_t[]){OUT}, b2, &err));
    ck_assert_int_eq (dc_safetensors_save (st, tpath ("m.safetensors"), &err),
                      0);
    dc_safetensors_destroy (st);
    ck_assert_int_eq (dc_npy_save (tpath ("x.npy"), DC_NPY_F4, 2,
                                   (int64_t[]){ROWS, IN}, xin, &err),
                      0);
}

/* ---- ranks ---- */

enum script {
    REAL = 0,    /* dc_worker_serve */
    DIE_AT_ONCE, /* its process ends before READY */
    DIE_HOLDING, /* takes a chunk, then its process ends */
    BAD_RESULT,  /* answers with a result of the wrong size */
    DUP_RESULT,  /* answers every chunk right, twice */
    BAD_READY,   /* a READY whose "outputs" is a string */
    NAN_RESULT,  /* a result whose seconds are NaN */
    SAY_ERROR,   /* sends ERROR "boom" after MODEL, then waits for DONE */
};

struct rank_thread {
    pthread_t t;
    struct dc_comm *c;
    enum script script;
    int rc;
    int chunks; /* scripted ranks: chunks received */
    char err[DC_ERROR_SIZE];
};

static void *real_main (struct rank_thread *rt)
{
    struct dc_worker_opts o = {.find = dc_compute_find, .tmpdir = tmpdir};
    dc_error_t err = {""};

    rt->rc = dc_worker_serve (rt->c, &o, &err);
    snprintf (rt->err, sizeof (rt->err), "%s", err.text);
    return NULL;
}

static int send_result (struct dc_comm *c, const uint8_t *chunk, size_t len,
                        bool wrong, bool nan)
{
    uint64_t rows = dc_get_u64 (chunk + 16);
    const float *x = (const float *)(chunk + DC_CHUNK_HDR);
    size_t bytes = DC_RESULT_HDR + rows * OUT * 4;
    uint8_t *r = calloc (1, bytes);
    double secs = 0.001;
    int rc;

    ck_assert_uint_eq (len, DC_CHUNK_HDR + rows * IN * 4);
    memcpy (r, chunk, 24);
    memcpy (r + 24, &secs, 8);
    for (uint64_t i = 0; i < rows; i++) {
        double y[OUT];
        ref_row (x + i * IN, y);
        for (int j = 0; j < OUT; j++) {
            float f = (float)y[j];
            memcpy (r + DC_RESULT_HDR + (i * OUT + (uint64_t)j) * 4, &f, 4);
        }
    }
    if (wrong)
        dc_put_u64 (r + 16, rows + 1);
    if (nan) {
        secs = NAN;
        memcpy (r + 24, &secs, 8);
    }
    rc = dc_comm_send (c, DC_COMM_HUB, DC_MSG_RESULT, r, bytes, NULL);
    free (r);
    return rc;
}

static void *scripted_main (struct rank_thread *rt)
{
    struct dc_comm_msg m;
    char ready[128];

    if (rt->script == DIE_AT_ONCE)
        return NULL;
    snprintf (ready, sizeof (ready),
              "{\"device\": \"fake\", \"inputs\": %d, \"outputs\": %d}", IN,
              OUT);
    while (dc_comm_recv (rt->c, &m, 5000, NULL) == 1) {
        int type = m.type;
        if (type == DC_MSG_MODEL && rt->script == SAY_ERROR)
            dc_comm_send (rt->c, DC_COMM_HUB, DC_MSG_ERROR, "boom", 4, NULL);
        else if (type == DC_MSG_MODEL && rt->script == BAD_READY)
            dc_comm_send (rt->c, DC_COMM_HUB, DC_MSG_READY,
                          "{\"outputs\": \"4\"}", 16, NULL);
        else if (type == DC_MSG_MODEL)
            dc_comm_send (rt->c, DC_COMM_HUB, DC_MSG_READY, ready,
                          strlen (ready), NULL);
        else if (type == DC_MSG_CHUNK) {
            rt->chunks++;
            if (rt->script == DIE_HOLDING) {
                free (m.data);
                return NULL;
            }
            send_result (rt->c, m.data, m.len, rt->script == BAD_RESULT,
                         rt->script == NAN_RESULT);
            if (rt->script == DUP_RESULT)
                send_result (rt->c, m.data, m.len, false, false);
        }
        free (m.data);
        if (type == DC_MSG_DONE) {
            rt->rc = 0;
            return NULL;
        }
    }
    rt->rc = -1;
    return NULL;
}

static void *rank_main (void *arg)
{
    struct rank_thread *rt = arg;
    void *r = rt->script == REAL ? real_main (rt) : scripted_main (rt);
    dc_comm_destroy (rt->c); /* its "process" ends */
    return r;
}

/* ---- a job ---- */

static int stop_after; /* check(): SIGINT after this many calls, 0: never */
static int checks;

static int check_cb (void *arg)
{
    (void)arg;
    checks++;
    return stop_after && checks >= stop_after ? SIGINT : 0;
}

struct job {
    int size;
    struct rank_thread rt[MAXR];
    struct dc_coord_result res;
    dc_error_t err;
    int rc;
};

static const char *const hosts[MAXR] = {"a", "b", "c", "d"};

static void run_job (struct job *j, int size, const enum script *scripts,
                     int delay_ms)
{
    char mp[512], ip[512], op[512];
    struct dc_coord_infer_opts o = {
        .model_path = mp,
        .input_path = ip,
        .output_path = op,
        .out_dtype = DC_NPY_F4,
        .device = "cpu",
        .dtype = "f32",
        .threads = 1,
        .chunk_rows = 37,
        .delay_ms = delay_ms,
        .check = check_cb,
        .hosts = hosts,
    };
    struct dc_coord *co;
    struct dc_comm *hub;

    memset (j, 0, sizeof (*j));
    j->size = size;
    checks = 0;
    make_files ();
    snprintf (mp, sizeof (mp), "%s", tpath ("m.safetensors"));
    snprintf (ip, sizeof (ip), "%s", tpath ("x.npy"));
    snprintf (op, sizeof (op), "%s", tpath ("y.npy"));
    co = dc_coord_infer_create (&o, size, &j->err);
    ck_assert_msg (co != NULL, "create: %s", j->err.text);
    hub = dc_comm_loop_create (size, &j->err);
    ck_assert_ptr_nonnull (hub);
    for (int r = 0; r < size; r++) {
        j->rt[r].script = scripts ? scripts[r] : REAL;
        j->rt[r].rc = -2;
        ck_assert_ptr_nonnull (j->rt[r].c = dc_comm_loop_rank (hub, r, NULL));
        ck_assert_int_eq (
            pthread_create (&j->rt[r].t, NULL, rank_main, &j->rt[r]), 0);
    }
    j->rc = dc_coord_infer_run (co, hub, NULL, &j->res, &j->err);
    dc_coord_destroy (co);
    dc_comm_destroy (hub); /* ranks still waiting see the hub go */
    for (int r = 0; r < size; r++)
        pthread_join (j->rt[r].t, NULL);
}

/* the output exists, has ROWS x OUT and matches the reference */
static void check_output (void)
{
    dc_error_t err;
    struct dc_npy *a = dc_npy_open (tpath ("y.npy"), &err);
    float *y = malloc (ROWS * OUT * sizeof (float));

    ck_assert_msg (a != NULL, "output: %s", err.text);
    ck_assert_uint_eq (a->rows, ROWS);
    ck_assert_uint_eq (a->row_elems, OUT);
    ck_assert_int_eq (dc_npy_read_f32 (a, 0, ROWS, y, &err), 0);
    for (int i = 0; i < ROWS; i++) {
        double r[OUT];
        ref_row (xin + i * IN, r);
        for (int k = 0; k < OUT; k++)
            ck_assert_msg (fabs (y[i * OUT + k] - r[k]) < 1e-4,
                           "row %d col %d: %g vs %g", i, k, y[i * OUT + k],
                           r[k]);
    }
    free (y);
    dc_npy_close (a);
}

static bool output_exists (void)
{
    struct stat sb;
    return stat (tpath ("y.npy"), &sb) == 0;
}

START_TEST (t_three_real_ranks)
{
    struct job j;

    run_job (&j, 3, NULL, 0);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.status, DC_COORD_OK);
    ck_assert_uint_eq (j.res.rows, ROWS);
    ck_assert_int_eq (j.res.nlost, 0);
    ck_assert_str_ne (j.res.sha256, "");
    check_output ();
    /* the DONE drain: every rank left with 0 */
    for (int r = 0; r < 3; r++)
        ck_assert_msg (j.rt[r].rc == 0, "rank %d: %s", r, j.rt[r].err);
    /* only the output is left in the folder (model, input, output) */
    ck_assert_int_eq (count_files (), 3);
}
END_TEST

START_TEST (t_lost_rank_holding_a_chunk)
{
    struct job j;
    enum script s[3] = {REAL, DIE_HOLDING, REAL};

    run_job (&j, 3, s, 20); /* slow chunks: the scripted rank gets one */
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 1);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 1 on b"));
    ck_assert_int_ge (j.rt[1].chunks, 1);
    check_output ();
    ck_assert_int_eq (j.rt[0].rc, 0);
    ck_assert_int_eq (j.rt[2].rc, 0);
}
END_TEST

START_TEST (t_bad_result_drops_the_rank)
{
    struct job j;
    enum script s[3] = {REAL, REAL, BAD_RESULT};

    run_job (&j, 3, s, 20); /* slow chunks: the scripted rank gets one */
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 1);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 2 on c"));
    ck_assert_ptr_nonnull (strstr (j.res.lost, "bad result"));
    check_output ();
}
END_TEST

START_TEST (t_duplicate_result_ignored)
{
    struct job j;
    enum script s[2] = {DUP_RESULT, REAL};

    run_job (&j, 2, s, 1);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 0);
    ck_assert_int_ge (j.rt[0].chunks, 1);
    check_output ();
    ck_assert_int_eq (j.rt[0].rc, 0);
    ck_assert_int_eq (j.rt[1].rc, 0);
}
END_TEST

START_TEST (t_every_rank_lost)
{
    struct job j;
    enum script s[2] = {DIE_AT_ONCE, DIE_HOLDING};

    run_job (&j, 2, s, 0);
    ck_assert_int_eq (j.rc, -1);
    ck_assert_int_eq (j.res.status, DC_COORD_ALL_LOST);
    ck_assert_int_eq (j.res.nlost, 2);
    ck_assert_ptr_nonnull (strstr (j.err.text, "every rank was lost"));
    ck_assert (!output_exists ());
    ck_assert_int_eq (count_files (), 2); /* no temporary file either */
}
END_TEST

START_TEST (t_interrupt_leaves_no_output)
{
    struct job j;

    stop_after = 3;
    run_job (&j, 2, NULL, 20);
    stop_after = 0;
    ck_assert_int_eq (j.rc, -1);
    ck_assert_int_eq (j.res.status, DC_COORD_INTERRUPTED);
    ck_assert_int_eq (j.res.signal, SIGINT);
    ck_assert (!output_exists ());
    ck_assert_int_eq (count_files (), 2);
    /* the ranks saw the hub go and stopped */
    for (int r = 0; r < 2; r++)
        ck_assert_int_ne (j.rt[r].rc, 0);
}
END_TEST

/* A READY of the wrong types: the rank is dropped, its error named. */
START_TEST (t_bad_ready_drops_the_rank)
{
    struct job j;
    enum script s[2] = {BAD_READY, REAL};

    run_job (&j, 2, s, 0);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 1);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 0 on a"));
    ck_assert_ptr_nonnull (strstr (j.res.lost, "bad READY"));
    ck_assert_int_eq (j.rt[0].chunks, 0);
    check_output ();
}
END_TEST

/* NaN seconds in a result: a bad result, the rank dropped. */
START_TEST (t_nan_seconds_drop_the_rank)
{
    struct job j;
    enum script s[2] = {REAL, NAN_RESULT};

    run_job (&j, 2, s, 20); /* slow chunks: the scripted rank gets one */
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 1);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 1 on b"));
    ck_assert_ptr_nonnull (strstr (j.res.lost, "bad result"));
    check_output ();
}
END_TEST

/* ERROR from one rank: it is lost with its text, the others finish; from
 * every rank: the job fails with the error, not "every rank was lost". */
START_TEST (t_error_rank)
{
    struct job j;
    enum script one[2] = {SAY_ERROR, REAL}, all[2] = {SAY_ERROR, SAY_ERROR};

    run_job (&j, 2, one, 0);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_int_eq (j.res.nlost, 1);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 0 on a (boom)"));
    check_output ();
    ck_assert_int_eq (unlink (tpath ("y.npy")), 0);
    run_job (&j, 2, all, 0);
    ck_assert_int_eq (j.rc, -1);
    ck_assert_int_eq (j.res.status, DC_COORD_WORKER_ERROR);
    ck_assert_ptr_nonnull (strstr (j.err.text, "rank 0 on a: boom"));
    ck_assert (!output_exists ());
}
END_TEST

/* ---- pipeline layouts (lib/run/pipeline.c and the stages of worker_pipe.c) */

/* Run infer with split (layers or hybrid of 2 stages) on size ranks;
 * kill_rank >= 0: that rank's process dies before it starts. */
static void run_pipe_as (struct job *j, int size, enum dc_split split,
                         int kill_rank, enum script how)
{
    char mp[512], ip[512], op[512];
    struct dc_coord_infer_opts o = {
        .model_path = mp,
        .input_path = ip,
        .output_path = op,
        .out_dtype = DC_NPY_F4,
        .device = "cpu",
        .dtype = "f32",
        .threads = 1,
        .check = check_cb,
        .hosts = hosts,
    };
    struct dc_layout_layer ly[2] = {{"0", IN, HID}, {"2", HID, OUT}};
    struct dc_layout_opts lopts = {.split = split, .stages = 2, .rows = 64};
    struct dc_layout *lo;
    struct dc_pipe_infer *pi;
    struct dc_comm *hub;

    memset (j, 0, sizeof (*j));
    j->size = size;
    checks = 0;
    make_files ();
    snprintf (mp, sizeof (mp), "%s", tpath ("m.safetensors"));
    snprintf (ip, sizeof (ip), "%s", tpath ("x.npy"));
    snprintf (op, sizeof (op), "%s", tpath ("y.npy"));
    lo = dc_layout_plan (ly, 2, NULL, size, &lopts, &j->err);
    ck_assert_msg (lo != NULL, "layout: %s", j->err.text);
    ck_assert_int_eq (lo->nstages, 2);
    pi = dc_pipe_infer_create (&o, &j->err);
    ck_assert_msg (pi != NULL, "create: %s", j->err.text);
    hub = dc_comm_loop_create (size, &j->err);
    for (int r = 0; r < size; r++) {
        j->rt[r].script = r == kill_rank ? how : REAL;
        j->rt[r].rc = -2;
        ck_assert_ptr_nonnull (j->rt[r].c = dc_comm_loop_rank (hub, r, NULL));
        ck_assert_int_eq (
            pthread_create (&j->rt[r].t, NULL, rank_main, &j->rt[r]), 0);
    }
    j->rc = dc_pipe_infer_run (pi, hub, lo, 23, NULL, &j->res, &j->err);
    dc_pipe_infer_destroy (pi);
    dc_layout_destroy (lo);
    dc_comm_destroy (hub);
    for (int r = 0; r < size; r++)
        pthread_join (j->rt[r].t, NULL);
}

static void run_pipe (struct job *j, int size, enum dc_split split,
                      int kill_rank)
{
    run_pipe_as (j, size, split, kill_rank, DIE_AT_ONCE);
}

START_TEST (t_pipe_layers)
{
    struct job j;

    run_pipe (&j, 2, DC_SPLIT_LAYERS, -1);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    ck_assert_uint_eq (j.res.rows, ROWS);
    check_output ();
    for (int r = 0; r < 2; r++)
        ck_assert_msg (j.rt[r].rc == 0, "rank %d: %s", r, j.rt[r].err);
}
END_TEST

START_TEST (t_pipe_hybrid)
{
    struct job j;

    run_pipe (&j, 4, DC_SPLIT_HYBRID, -1);
    ck_assert_msg (j.rc == 0, "run: %s", j.err.text);
    check_output ();
    for (int r = 0; r < 4; r++)
        ck_assert_msg (j.rt[r].rc == 0, "rank %d: %s", r, j.rt[r].err);
}
END_TEST

/* A stage that fails stops the job with its error, the stage named. */
START_TEST (t_pipe_error_stage_fails)
{
    struct job j;

    run_pipe_as (&j, 2, DC_SPLIT_LAYERS, 1, SAY_ERROR);
    ck_assert_int_eq (j.rc, -1);
    ck_assert_int_eq (j.res.status, DC_COORD_WORKER_ERROR);
    ck_assert_ptr_nonnull (
        strstr (j.err.text, "stage 1 of 2 (rank 1 on b): boom"));
    ck_assert (!output_exists ());
}
END_TEST

START_TEST (t_pipe_lost_stage_fails)
{
    struct job j;

    run_pipe (&j, 2, DC_SPLIT_LAYERS, 1);
    ck_assert_int_eq (j.rc, -1);
    ck_assert_int_ne (j.res.status, DC_COORD_OK);
    ck_assert_ptr_nonnull (strstr (j.res.lost, "rank 1"));
    ck_assert (!output_exists ());
    ck_assert_int_eq (count_files (), 2);
}
END_TEST

/* ---- data-parallel training (dc_coord_train_*) ---- */

static float tgt[ROWS * OUT];

/* Train one epoch (sgd, mse, batches of 64) on the model file: in this
 * process (size 0) or over size loop ranks with scripts; the weights end
 * in w[] (every parameter, layer by layer).  Returns dc_trainer_run's. */
static int train_once (int size, const enum script *scripts, float *w,
                       size_t nw, struct job *j)
{
    struct dc_train_opts to = {.loss = DC_LOSS_MSE,
                               .optim = DC_OPTIM_SGD,
                               .lr = 0.05,
                               .batch_size = 64,
                               .seed = 7};
    const struct dc_compute_ops *ops = dc_compute_find ("cpu", NULL);
    struct dc_compute_opts copts = {.threads = 1};
    struct dc_compute *c = ops->create (&copts, NULL);
    struct dc_model *m = dc_model_load (tpath ("m.safetensors"), NULL, NULL);
    struct dc_trainer *t;
    struct dc_coord_train *ct = NULL;
    struct dc_comm *hub = NULL;
    struct dc_train_pos pos;
    uint8_t *bytes;
    size_t blen;
    int rc;

    ck_assert_ptr_nonnull (m);
    ck_assert_uint_eq (dc_model_nparams (m), nw);
    ck_assert_ptr_nonnull (t = dc_trainer_create (m, ops, c, &to, NULL));
    dc_train_pos_init (&pos, &to);
    memset (j, 0, sizeof (*j));
    if (size > 0) {
        struct dc_coord_train_opts o = {.device = "cpu",
                                        .dtype = "f32",
                                        .threads = 1,
                                        .to = &to,
                                        .inputs = IN,
                                        .outputs = OUT,
                                        .check = check_cb,
                                        .hosts = hosts};
        ck_assert_ptr_nonnull (bytes = dc_file_read (tpath ("m.safetensors"),
                                                     1 << 20, &blen, NULL));
        o.model = bytes;
        o.model_len = blen;
        hub = dc_comm_loop_create (size, NULL);
        for (int r = 0; r < size; r++) {
            j->rt[r].script = scripts ? scripts[r] : REAL;
            j->rt[r].c = dc_comm_loop_rank (hub, r, NULL);
            pthread_create (&j->rt[r].t, NULL, rank_main, &j->rt[r]);
        }
        ct = dc_coord_train_start (hub, &o, &j->err);
        free (bytes);
        ck_assert_msg (ct != NULL, "start: %s", j->err.text);
    }
    struct dc_train_run run = {.x = xin,
                               .target = tgt,
                               .rows = ROWS,
                               .epochs = 1,
                               .grad_fn = ct ? dc_coord_train_grad : NULL,
                               .grad_arg = ct};
    rc = dc_trainer_run (t, &run, &pos, &j->err);
    if (ct) {
        j->res.nlost = dc_coord_train_nlost (ct);
        snprintf (j->res.lost, sizeof (j->res.lost), "%s",
                  dc_coord_train_lost (ct));
        dc_coord_train_finish (ct);
        dc_comm_destroy (hub);
        for (int r = 0; r < size; r++)
            pthread_join (j->rt[r].t, NULL);
    }
    ck_assert_int_eq (dc_trainer_sync (t, NULL), 0);
    /* the weights, in the trainer's gradient layout */
    size_t k = 0;
    const char *names[4] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    struct dc_safetensors *st;
    ck_assert_int_eq (dc_model_save (m, tpath ("trained.safetensors"), NULL),
                      0);
    ck_assert_ptr_nonnull (
        st = dc_safetensors_load (tpath ("trained.safetensors"), NULL));
    for (int i = 0; i < 4; i++) {
        struct dc_tensor *tt = dc_safetensors_find (st, names[i]);
        ck_assert_ptr_nonnull (tt);
        memcpy (w + k, tt->data, tt->nelem * sizeof (float));
        k += tt->nelem;
    }
    ck_assert_uint_eq (k, nw);
    unlink (tpath ("trained.safetensors"));
    dc_safetensors_destroy (st);
    dc_trainer_destroy (t);
    dc_model_destroy (m);
    ops->destroy (c);
    return rc;
}

#define NW (HID * IN + HID + OUT * HID + OUT)

static void train_case (const enum script *scripts, int size, int nlost)
{
    static float w1r[NW], w2r[NW];
    struct job j1, j2;
    uint64_t s = 9;

    make_files ();
    for (int i = 0; i < ROWS * OUT; i++)
        tgt[i] = frand (&s);
    ck_assert_int_eq (train_once (0, NULL, w1r, NW, &j1), 0);
    ck_assert_msg (train_once (size, scripts, w2r, NW, &j2) == 0, "train: %s",
                   j2.err.text);
    ck_assert_int_eq (j2.res.nlost, nlost);
    double maxd = 0;
    for (int i = 0; i < NW; i++) {
        double d = fabs ((double)w1r[i] - w2r[i]);
        if (d > maxd)
            maxd = d;
    }
    /* the same training, summed in another order */
    ck_assert_msg (maxd < 1e-5, "max weight difference %g", maxd);
    for (int r = 0; r < size; r++)
        if (!scripts || scripts[r] == REAL)
            ck_assert_msg (j2.rt[r].rc == 0, "rank %d: %s", r, j2.rt[r].err);
}

START_TEST (t_train_two_ranks)
{
    train_case (NULL, 2, 0);
}
END_TEST

START_TEST (t_train_lost_rank_redone)
{
    enum script s[3] = {REAL, DIE_HOLDING, REAL};
    train_case (s, 3, 1);
}
END_TEST

/* ---- the transport itself ---- */

START_TEST (t_loop_lost_after_messages)
{
    struct dc_comm *hub = dc_comm_loop_create (2, NULL);
    struct dc_comm *r0 = dc_comm_loop_rank (hub, 0, NULL);
    struct dc_comm *r1 = dc_comm_loop_rank (hub, 1, NULL);
    struct dc_comm_msg m;
    dc_error_t err;

    ck_assert_ptr_null (dc_comm_loop_rank (hub, 0, &err)); /* once */
    ck_assert_ptr_null (dc_comm_loop_rank (hub, 2, &err)); /* range */
    ck_assert_ptr_null (dc_comm_loop_rank (r0, 1, &err));  /* not a hub */
    ck_assert_int_eq (
        dc_comm_send (r1, DC_COMM_HUB, DC_MSG_READY, "x", 1, NULL), 0);
    dc_comm_destroy (r1);
    ck_assert_int_eq (dc_comm_recv (hub, &m, 100, NULL), 1);
    ck_assert_int_eq (m.type, DC_MSG_READY); /* sent before the loss */
    ck_assert_int_eq (m.src, 1);
    free (m.data);
    ck_assert_int_eq (dc_comm_recv (hub, &m, 100, NULL), 1);
    ck_assert_int_eq (m.type, DC_COMM_LOST);
    ck_assert_str_eq (dc_comm_lost_reason (hub, 1), "exited");
    ck_assert_str_eq (dc_comm_lost_reason (hub, 0), "");
    ck_assert_int_eq (dc_comm_recv (hub, &m, 10, NULL), 0); /* once */
    /* to a lost rank: dropped, not an error */
    ck_assert_int_eq (dc_comm_send (hub, 1, DC_MSG_DONE, NULL, 0, NULL), 0);
    ck_assert_int_eq (dc_comm_send (hub, 5, DC_MSG_DONE, NULL, 0, &err), -1);
    ck_assert_int_eq (dc_comm_send (hub, 0, DC_MSG_DATA, NULL, 3, &err), -1);
    dc_comm_destroy (hub);
    ck_assert_int_eq (dc_comm_recv (r0, &m, 100, &err), -1);
    ck_assert_int_eq (errno, ECONNRESET);
    dc_comm_destroy (r0);
}
END_TEST

struct ar_arg {
    struct dc_comm *c;
    float v[3];
    int rc, err;
};

static void *ar_main (void *p)
{
    struct ar_arg *a = p;
    a->rc = dc_comm_allreduce (a->c, a->v, 3, NULL);
    a->err = errno;
    return NULL;
}

START_TEST (t_loop_allreduce)
{
    struct dc_comm *hub = dc_comm_loop_create (3, NULL);
    struct ar_arg a[3];
    pthread_t t[3];

    for (int r = 0; r < 3; r++) {
        a[r].c = dc_comm_loop_rank (hub, r, NULL);
        for (int k = 0; k < 3; k++)
            a[r].v[k] = (float)(r + 1) * (float)(k + 1);
    }
    for (int r = 0; r < 3; r++)
        pthread_create (&t[r], NULL, ar_main, &a[r]);
    for (int r = 0; r < 3; r++)
        pthread_join (t[r], NULL);
    for (int r = 0; r < 3; r++) {
        ck_assert_int_eq (a[r].rc, 0);
        for (int k = 0; k < 3; k++)
            ck_assert_float_eq (a[r].v[k], 6.0f * (float)(k + 1));
    }
    /* a rank lost during a reduction cancels it */
    pthread_create (&t[0], NULL, ar_main, &a[0]);
    while (dc_comm_loop_reducing (hub) < 1) { /* rank 0 is in */
        struct timespec ts = {0, 1000000};
        nanosleep (&ts, NULL);
    }
    dc_comm_loop_kill (hub, 2, "killed by signal 9");
    pthread_join (t[0], NULL);
    ck_assert_int_eq (a[0].rc, -1);
    ck_assert_int_eq (a[0].err, ECANCELED);
    for (int r = 0; r < 3; r++)
        dc_comm_destroy (a[r].c);
    dc_comm_destroy (hub);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("hub");
    TCase *tc = tcase_create ("infer");
    TCase *tl = tcase_create ("loop");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_test (tc, t_three_real_ranks);
    tcase_add_test (tc, t_lost_rank_holding_a_chunk);
    tcase_add_test (tc, t_bad_result_drops_the_rank);
    tcase_add_test (tc, t_duplicate_result_ignored);
    tcase_add_test (tc, t_every_rank_lost);
    tcase_add_test (tc, t_interrupt_leaves_no_output);
    tcase_add_test (tc, t_bad_ready_drops_the_rank);
    tcase_add_test (tc, t_nan_seconds_drop_the_rank);
    tcase_add_test (tc, t_error_rank);
    tcase_add_test (tc, t_train_two_ranks);
    tcase_add_test (tc, t_train_lost_rank_redone);
    tcase_add_test (tc, t_pipe_layers);
    tcase_add_test (tc, t_pipe_hybrid);
    tcase_add_test (tc, t_pipe_lost_stage_fails);
    tcase_add_test (tc, t_pipe_error_stage_fails);
    suite_add_tcase (s, tc);
    tcase_add_test (tl, t_loop_lost_after_messages);
    tcase_add_test (tl, t_loop_allreduce);
    suite_add_tcase (s, tl);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
