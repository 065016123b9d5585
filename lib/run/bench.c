/* bench.c - what `dcrun bench` measures: gemm, the comm echo, launch */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/comm/proto.h"
#include "lib/model/layout.h"
#include "lib/util/strbuf.h"
#include "lib/comm/wire.h"
#include "lib/run/bench.h"

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dc_bench_median (double *v, long n)
{
    qsort (v, (size_t)n, sizeof (*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- gemm ---- */

/* device buffer of n floats filled with small pseudo-random values */
static float *dev_random (const struct dc_compute_ops *ops,
                          struct dc_compute *c, size_t n, unsigned seed,
                          dc_error_t *err)
{
    float *h = malloc (n * sizeof (float)), *d;
    if (!h) {
        errprintf (err, "out of memory (%zu floats)", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        h[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    if ((d = ops->alloc (c, n * sizeof (float), err)) &&
        ops->copy_in (c, d, h, n * sizeof (float), err) < 0) {
        ops->free (c, d);
        d = NULL;
    }
    free (h);
    return d;
}

int dc_bench_gemm (const struct dc_compute_ops *ops, struct dc_compute *c,
                   int m, int n, int k, long iters, double *gemm_s,
                   double *fused_s, dc_error_t *err)
{
    float *a = NULL, *b = NULL, *w = NULL, *bias = NULL, *out = NULL;
    int rc = DC_STATUS_GPU;
    double t0;

    if (!(a = dev_random (ops, c, (size_t)m * k, 1, err)) ||
        !(b = dev_random (ops, c, (size_t)k * n, 2, err)) ||
        !(w = dev_random (ops, c, (size_t)n * k, 3, err)) ||
        !(bias = dev_random (ops, c, (size_t)n, 4, err)) ||
        !(out = ops->alloc (c, (size_t)m * n * sizeof (float), err)))
        goto out;
    /* GEMM: one warm-up (plans, clocks), then the timed loop */
    if (ops->gemm (c, m, n, k, a, b, out, err) < 0 || ops->sync (c, err) < 0)
        goto out;
    t0 = dc_now ();
    for (long i = 0; i < iters; i++)
        if (ops->gemm (c, m, n, k, a, b, out, err) < 0)
            goto out;
    if (ops->sync (c, err) < 0)
        goto out;
    *gemm_s = (dc_now () - t0) / (double)iters;
    /* the fused layer op: y = relu (x . w^T + b) */
    if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL, err) <
            0 ||
        ops->sync (c, err) < 0)
        goto out;
    t0 = dc_now ();
    for (long i = 0; i < iters; i++)
        if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL,
                             err) < 0)
            goto out;
    if (ops->sync (c, err) < 0)
        goto out;
    *fused_s = (dc_now () - t0) / (double)iters;
    rc = DC_STATUS_OK;
out:
    ops->free (c, a);
    ops->free (c, b);
    ops->free (c, w);
    ops->free (c, bias);
    ops->free (c, out);
    return rc;
}

int dc_bench_gemm_run (struct dc_bench_gemm_run *g, dc_error_t *err)
{
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    int st;

    if (!(ops = dc_compute_find (g->device, err)))
        goto gpu;
    if (ops->probe (err) != 1) {
        errprefix (err, "%s: ", ops->name);
        goto gpu;
    }
    if (!strcmp (ops->name, "cpu") && g->dtype != DC_DTYPE_F32) {
        errprintf (err, "--dtype %s: the cpu back-end computes in f32",
                   dc_dtype_name (g->dtype));
        return DC_STATUS_USAGE;
    }
    bool gpu = strcmp (ops->name, "cpu") != 0;
    g->m = g->m ? g->m : gpu ? 8192 : 2048;
    g->n = g->n ? g->n : g->m;
    g->k = g->k ? g->k : g->m;
    g->iters = g->iters ? g->iters : gpu ? 20 : 3;
    struct dc_compute_opts o = {.dtype = g->dtype, .threads = g->threads};
    if (!(c = ops->create (&o, err)))
        goto gpu;
    g->backend = ops->name;
    snprintf (g->describe, sizeof (g->describe), "%s", ops->describe (c));
    g->peak = ops->peak_tflops ? ops->peak_tflops (c) : 0.0;
    st = dc_bench_gemm (ops, c, (int)g->m, (int)g->n, (int)g->k, g->iters,
                        &g->gemm_s, &g->fused_s, err);
    ops->destroy (c);
    if (st == DC_STATUS_OK) {
        double flop = 2.0 * (double)g->m * (double)g->n * (double)g->k;
        g->gemm_tflops = flop / g->gemm_s / 1e12;
        g->fused_tflops = flop / g->fused_s / 1e12;
        return st;
    }
gpu:
    errprefix (err, "bench: ");
    return DC_STATUS_GPU;
}

/* ---- comm: the stream comm between the hub (here) and the ranks ---- */

struct comm_run {
    struct dc_job *job;
    uint8_t *buf; /* one frame: the rank and the frame number, then bytes */
    long long bytes, frame, nframes;
    long long *sent, *got;
};

static long long frame_len (const struct comm_run *c, long long i)
{
    return i + 1 < c->nframes ? c->frame : c->bytes - c->frame * i;
}

static int comm_send_next (struct comm_run *c, int r, dc_error_t *err)
{
    long long i = c->sent[r];
    size_t len = (size_t)frame_len (c, i);

    if (len >= 16) {
        dc_put_u64 (c->buf, (uint64_t)r);
        dc_put_u64 (c->buf + 8, (uint64_t)i);
    }
    if (dc_comm_send (c->job->hub, r, DC_MSG_DATA, c->buf, len, err) < 0)
        return -1;
    c->sent[r]++;
    return 0;
}

/* Next message from a rank: DC_STATUS_OK with *m, or a status (err set)
 * when a rank was lost, failed, or a signal came. */
static int comm_next (struct comm_run *c, struct dc_comm_msg *m,
                      dc_error_t *err)
{
    double until = dc_now () + 60;

    for (;;) {
        int rc = dc_comm_recv (c->job->hub, m, 1000, err);
        if (rc < 0)
            return DC_STATUS_FAIL;
        int s = dc_job_check (c->job);
        if (s > 0) {
            if (rc > 0)
                free (m->data);
            const char *name = sigabbrev_np (s);
            errprintf (err, "interrupted by SIG%s", name ? name : "?");
            return DC_STATUS_SIGNAL;
        }
        if (rc == 0) {
            if (dc_now () > until) {
                errprintf (err, "no message from the ranks for 60 s");
                return DC_STATUS_FAIL;
            }
            continue;
        }
        if (m->type == DC_COMM_LOST) {
            errprintf (err, "rank %d on %s was lost: %s", m->src,
                       c->job->host[m->src],
                       dc_comm_lost_reason (c->job->hub, m->src));
            return DC_STATUS_FAIL;
        }
        if (m->type == DC_MSG_ERROR) {
            errprintf (err, "rank %d: %.*s", m->src, (int)m->len,
                       (const char *)m->data);
            free (m->data);
            return DC_STATUS_FAIL;
        }
        if (m->src < 0 || m->src >= c->job->plan->size) {
            free (m->data);
            continue;
        }
        return DC_STATUS_OK;
    }
}

/* One timed round: every rank gets bytes in frames and sends them back. */
static int comm_round (struct comm_run *c, double *seconds, dc_error_t *err)
{
    int size = c->job->plan->size, st;
    long long left = (long long)size * c->nframes;
    struct dc_comm_msg m;
    double t0 = dc_now ();

    for (int r = 0; r < size; r++) {
        c->sent[r] = c->got[r] = 0;
        while (c->sent[r] < c->nframes && c->sent[r] < DC_BENCH_COMM_WINDOW)
            if (comm_send_next (c, r, err) < 0)
                return DC_STATUS_FAIL;
    }
    while (left > 0) {
        if ((st = comm_next (c, &m, err)) != DC_STATUS_OK)
            return st;
        if (m.type != DC_MSG_DATA) {
            free (m.data);
            continue;
        }
        int r = m.src;
        long long i = c->got[r];
        bool good = i < c->nframes && (long long)m.len == frame_len (c, i) &&
                    (m.len < 16 || (dc_get_u64 (m.data) == (uint64_t)r &&
                                    dc_get_u64 (m.data + 8) == (uint64_t)i));
        free (m.data);
        if (!good) {
            errprintf (err, "rank %d sent back frame %lld wrong (%zu bytes)", r,
                       i, m.len);
            return DC_STATUS_FAIL;
        }
        c->got[r]++;
        left--;
        if (c->sent[r] < c->nframes && comm_send_next (c, r, err) < 0)
            return DC_STATUS_FAIL;
    }
    *seconds = dc_now () - t0;
    return DC_STATUS_OK;
}

/* The echo job to every rank; wait for every READY. */
static int comm_start (struct comm_run *c, dc_error_t *err)
{
    static const char job[] = "{\"mode\": \"echo\"}";
    int size = c->job->plan->size, ready = 0, st;
    struct dc_comm_msg m;

    for (int r = 0; r < size; r++)
        if (dc_comm_send (c->job->hub, r, DC_MSG_JOB, job, strlen (job), err) <
            0)
            return DC_STATUS_FAIL;
    while (ready < size) {
        if ((st = comm_next (c, &m, err)) != DC_STATUS_OK)
            return st;
        ready += m.type == DC_MSG_READY;
        free (m.data);
    }
    return DC_STATUS_OK;
}

int dc_bench_comm (struct dc_job *job, long long bytes, long long frame,
                   long iters, double *secs, dc_error_t *err)
{
    int size = job->plan->size, st;
    struct comm_run c = {.job = job, .bytes = bytes, .frame = frame};
    double warm;

    c.nframes = (bytes + frame - 1) / frame;
    if (!(c.buf = malloc ((size_t)frame)) ||
        !(c.sent = calloc ((size_t)size, sizeof (*c.sent))) ||
        !(c.got = calloc ((size_t)size, sizeof (*c.got)))) {
        errprintf (err, "out of memory");
        st = DC_STATUS_FAIL;
        goto out;
    }
    for (long long i = 0; i < frame; i++)
        c.buf[i] = (uint8_t)(i * 131 + 7);
    /* one warm-up round (page faults, pipe buffers), then the timed ones */
    if ((st = comm_start (&c, err)) != DC_STATUS_OK ||
        (st = comm_round (&c, &warm, err)) != DC_STATUS_OK)
        goto out;
    for (long i = 0; i < iters; i++)
        if ((st = comm_round (&c, &secs[i], err)) != DC_STATUS_OK)
            goto out;
    /* after DONE: wait for the ranks to leave, then stop what is left */
    for (int r = 0; r < size; r++)
        dc_comm_send (job->hub, r, DC_MSG_DONE, NULL, 0, NULL);
    if (!dc_job_drain (job, 5))
        dc_job_stop (job);
out:
    if (st != DC_STATUS_OK)
        dc_job_stop (job);
    free (c.buf);
    free (c.sent);
    free (c.got);
    return st;
}

int dc_bench_comm_run (struct dc_job *job, struct dc_bench_comm_res *r,
                       dc_error_t *err)
{
    int st;

    dc_bench_comm_defaults (&r->bytes, &r->frame, &r->iters);
    r->launcher = job->launcher;
    r->ranks = job->plan->size;
    if (!(r->secs = calloc ((size_t)r->iters, sizeof (*r->secs)))) {
        dc_job_stop (job);
        errprintf (err, "out of memory");
        return DC_STATUS_FAIL;
    }
    st = dc_bench_comm (job, r->bytes, r->frame, r->iters, r->secs, err);
    if (st == DC_STATUS_OK)
        dc_bench_comm_rates (r, r->secs);
    return st;
}

/* ---- launch ---- */

static int bench_exec (char **argv, double *seconds, int *status)
{
    double t0 = dc_now ();
    pid_t pid;

    fflush (NULL);
    if ((pid = fork ()) < 0)
        return -1;
    if (pid == 0) {
        int fd = open ("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2 (fd, 1); /* `true` prints nothing; exec's errors stay */
        execv (argv[0], argv);
        _exit (127);
    }
    while (waitpid (pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    *seconds = dc_now () - t0;
    return 0;
}

int dc_bench_launch (char **argv, long iters, double *med, double *min,
                     double *max, int *wstatus, dc_error_t *err)
{
    double *secs = calloc ((size_t)iters + 1, sizeof (*secs));

    *wstatus = 0;
    if (!secs) {
        errprintf (err, "bench: out of memory");
        return DC_STATUS_FAIL;
    }
    /* one warm-up (page cache, ssh host keys), then the timed runs */
    for (long i = 0; i <= iters; i++) {
        if (bench_exec (argv, &secs[i], wstatus) < 0) {
            errprintf (err, "bench: %s: %s", argv[0], strerror (errno));
            *wstatus = 0;
            free (secs);
            return DC_STATUS_FAIL;
        }
        if (!WIFEXITED (*wstatus) || WEXITSTATUS (*wstatus) != 0) {
            free (secs);
            return DC_STATUS_FAIL;
        }
    }
    *min = *max = secs[1];
    for (long i = 1; i <= iters; i++) {
        *min = secs[i] < *min ? secs[i] : *min;
        *max = secs[i] > *max ? secs[i] : *max;
    }
    *med = dc_bench_median (secs + 1, iters);
    free (secs);
    return DC_STATUS_OK;
}

void dc_bench_launch_defaults (long *iters)
{
    if (!*iters)
        *iters = 5;
}

int dc_bench_launch_run (char **argv, struct dc_bench_launch_res *r,
                         int *wstatus, dc_error_t *err)
{
    int st;

    dc_bench_launch_defaults (&r->iters);
    st = dc_bench_launch (argv, r->iters, &r->med, &r->min, &r->max, wstatus,
                          err);
    if (st != DC_STATUS_OK && *wstatus)
        errprintf (err, "bench: `dcrun exec -- true` failed (%s %d)",
                   WIFEXITED (*wstatus) ? "exit" : "signal",
                   WIFEXITED (*wstatus) ? WEXITSTATUS (*wstatus)
                                        : WTERMSIG (*wstatus));
    return st;
}

char **
dc_bench_exec_argv (const char *self, int argc, char **argv, const char *kind,
                    bool (*own) (const char *word, bool *takes_arg, void *arg),
                    void *arg)
{
    char **av = calloc ((size_t)(argc > 0 ? argc : 0) + 5, sizeof (*av));
    int k = 0;

    if (!av)
        return NULL;
    av[k++] = (char *)self;
    av[k++] = "exec";
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        bool takes_arg = false;
        if (!strcmp (w, "--")) /* nothing of bench's follows */
            break;
        if (w == kind || !strcmp (w, "--json") || !strcmp (w, "--dry-run"))
            continue;
        if (own (w, &takes_arg, arg)) {
            i += takes_arg;
            continue;
        }
        av[k++] = argv[i];
    }
    av[k++] = "--";
    av[k++] = "true";
    av[k] = NULL;
    return av;
}

/* ---- results ---- */

void dc_bench_comm_defaults (long long *bytes, long long *frame, long *iters)
{
    if (!*bytes)
        *bytes = 64LL << 20;
    if (!*frame)
        *frame = 1LL << 20;
    if (*frame > *bytes)
        *frame = *bytes;
    if (!*iters)
        *iters = 3;
}

void dc_bench_comm_rates (struct dc_bench_comm_res *r, double *secs)
{
    r->med = dc_bench_median (secs, r->iters);
    r->gbps = (double)r->bytes * r->ranks / r->med / 1e9;
}

static char *print_json (cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted (o) : NULL;

    cJSON_Delete (o);
    return s;
}

char *dc_bench_gemm_json (const struct dc_bench_gemm_run *g)
{
    cJSON *o = cJSON_CreateObject ();

    cJSON_AddStringToObject (o, "benchmark", "gemm");
    cJSON_AddStringToObject (o, "backend", g->backend);
    cJSON_AddStringToObject (o, "device", g->describe);
    cJSON_AddStringToObject (o, "dtype", dc_dtype_name (g->dtype));
    cJSON_AddNumberToObject (o, "m", (double)g->m);
    cJSON_AddNumberToObject (o, "n", (double)g->n);
    cJSON_AddNumberToObject (o, "k", (double)g->k);
    cJSON_AddNumberToObject (o, "iters", (double)g->iters);
    cJSON_AddNumberToObject (o, "gemm_seconds", g->gemm_s);
    cJSON_AddNumberToObject (o, "gemm_tflops", g->gemm_tflops);
    cJSON_AddNumberToObject (o, "linear_fwd_seconds", g->fused_s);
    cJSON_AddNumberToObject (o, "linear_fwd_tflops", g->fused_tflops);
    if (g->peak > 0)
        cJSON_AddNumberToObject (o, "peak_tflops", g->peak);
    else
        cJSON_AddNullToObject (o, "peak_tflops");
    return print_json (o);
}

char *dc_bench_comm_json (const struct dc_bench_comm_res *r)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *all;

    cJSON_AddStringToObject (o, "benchmark", "comm");
    cJSON_AddStringToObject (o, "comm", "stream");
    cJSON_AddStringToObject (o, "launcher", r->launcher);
    cJSON_AddNumberToObject (o, "ranks", r->ranks);
    cJSON_AddNumberToObject (o, "bytes_per_rank", (double)r->bytes);
    cJSON_AddNumberToObject (o, "frame_bytes", (double)r->frame);
    cJSON_AddNumberToObject (o, "frames_in_flight", DC_BENCH_COMM_WINDOW);
    cJSON_AddNumberToObject (o, "iters", (double)r->iters);
    cJSON_AddNumberToObject (o, "seconds", r->med);
    all = cJSON_AddArrayToObject (o, "seconds_all");
    for (long i = 0; i < r->iters; i++)
        cJSON_AddItemToArray (all, cJSON_CreateNumber (r->secs[i]));
    cJSON_AddNumberToObject (o, "to_ranks_gbps", r->gbps);
    cJSON_AddNumberToObject (o, "from_ranks_gbps", r->gbps);
    cJSON_AddNumberToObject (o, "total_gbps", 2 * r->gbps);
    return print_json (o);
}

char *dc_bench_launch_json (const struct dc_bench_launch_res *r)
{
    char *s;

    if (asprintf (&s,
                  "{\"benchmark\":\"launch\",\"launcher\":\"%s\",\"hosts\":%zu,"
                  "\"ranks\":%d,\"iters\":%ld,\"seconds\":%.6f,"
                  "\"min_seconds\":%.6f,\"max_seconds\":%.6f}",
                  r->launcher, r->hosts, r->ranks, r->iters, r->med, r->min,
                  r->max) < 0)
        return NULL;
    return s;
}

#define TEXT_MAX 4096 /* the longest text of a result */

char *dc_bench_gemm_text (const struct dc_bench_gemm_run *r)
{
    const char *dtype = dc_dtype_name (r->dtype);
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    dc_strbuf_printf (&b, "device      %s\n", r->describe);
    dc_strbuf_printf (&b, "shape       m=%ld n=%ld k=%ld, %s, %ld iterations\n",
                      r->m, r->n, r->k, dtype, r->iters);
    dc_strbuf_printf (&b, "gemm        %10.3f TFLOP/s  %10.3f ms\n",
                      r->gemm_tflops, r->gemm_s * 1e3);
    dc_strbuf_printf (
        &b, "linear_fwd  %10.3f TFLOP/s  %10.3f ms  (bias + relu fused)\n",
        r->fused_tflops, r->fused_s * 1e3);
    if (r->peak > 0)
        dc_strbuf_printf (
            &b,
            "peak        %10.3f TFLOP/s  (theoretical dense, %s); gemm "
            "at %.0f%%",
            r->peak, dtype, 100.0 * r->gemm_tflops / r->peak);
    else
        dc_strbuf_printf (&b, "peak        unknown for this device");
    return dc_strbuf_take (&b);
}

char *dc_bench_comm_text (const struct dc_bench_comm_res *r)
{
    char b1[32], b2[32];
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    dc_strbuf_printf (
        &b,
        "comm        stream, %d rank%s (%s launcher), this process the "
        "hub\n",
        r->ranks, r->ranks == 1 ? "" : "s", r->launcher);
    dc_strbuf_printf (&b,
                      "traffic     %s each way per rank in frames of %s, %d in "
                      "flight, both ways at once\n",
                      dc_layout_fmt_bytes ((double)r->bytes, b1, sizeof (b1)),
                      dc_layout_fmt_bytes ((double)r->frame, b2, sizeof (b2)),
                      DC_BENCH_COMM_WINDOW);
    dc_strbuf_printf (&b, "time        %10.3f ms  (median of %ld)\n",
                      r->med * 1e3, r->iters);
    dc_strbuf_printf (&b, "to ranks    %10.3f GB/s\n", r->gbps);
    dc_strbuf_printf (&b, "from ranks  %10.3f GB/s\n", r->gbps);
    dc_strbuf_printf (&b, "total       %10.3f GB/s", 2 * r->gbps);
    return dc_strbuf_take (&b);
}

char *dc_bench_launch_text (const struct dc_bench_launch_res *r)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    dc_strbuf_printf (
        &b,
        "launch      `dcrun exec -- true`, %d rank%s on %zu host%s "
        "(%s launcher)\n",
        r->ranks, r->ranks == 1 ? "" : "s", r->hosts, r->hosts == 1 ? "" : "s",
        r->launcher);
    dc_strbuf_printf (
        &b, "time        %10.3f s median of %ld  (min %.3f, max %.3f)", r->med,
        r->iters, r->min, r->max);
    return dc_strbuf_take (&b);
}
