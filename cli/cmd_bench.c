/* cmd_bench.c - dcrun bench KIND: built-in micro-benchmarks
 *
 * gemm: TFLOP/s of the compute back-end's GEMM (C = A . B) and of the fused
 * layer op (linear_fwd: y = relu (x . w^T + b)), with the device's peak
 * where known.
 * comm: GB/s of comm "stream" between this process (the hub) and the ranks
 * of the host list (`dcrun serve` in echo mode: each DATA frame comes back).
 * launch: seconds of `dcrun exec -- true` over the host list.
 * Kinds are a table; add a row for a new one.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "gpu/compute.h"
#include "job.h"
#include "lib/comm/comm.h"
#include "lib/model/layout.h"
#include "lib/run/rank.h"

enum {
    OPT_M = 0x100,
    OPT_N,
    OPT_K,
    OPT_DTYPE,
    OPT_DEVICE,
    OPT_ITERS,
    OPT_THREADS,
    OPT_BYTES,
    OPT_FRAME,
};

struct bench_args {
    long m, n, k; /* 0: the default for the device */
    long iters;   /* 0: the default for the device */
    long threads;
    enum dc_dtype dtype;
    const char *device;
    long long bytes; /* comm: per rank each way; 0: 64 MiB */
    long long frame; /* comm: frame payload; 0: 1 MiB */
    int argc;        /* bench's own command line, for launch */
    char **argv;
    const char *kind; /* the word naming the benchmark */
};

static const struct cli_opt bench_opts[] = {
    {"m", required_argument, OPT_M, "M",
     "rows of A and C (default 8192 on "
     "cuda, 2048 on cpu)"},
    {"n", required_argument, OPT_N, "N", "columns of B and C (default: M)"},
    {"k", required_argument, OPT_K, "K", "inner dimension (default: M)"},
    {"dtype", required_argument, OPT_DTYPE, "f32|tf32|f16|bf16",
     "input type; f32 accumulation (default f32; cpu: f32 only)"},
    {"device", required_argument, OPT_DEVICE, "cpu|cuda|auto",
     "compute back-end (default auto: cuda when a GPU is usable)"},
    {"iters", required_argument, OPT_ITERS, "N",
     "timed iterations after one warm-up (gemm: 20 on cuda, 3 on cpu; "
     "comm: 3; launch: 5)"},
    {"threads", required_argument, OPT_THREADS, "N",
     "CPU threads for the cpu back-end (default: OpenBLAS' own)"},
    {"bytes", required_argument, OPT_BYTES, "B",
     "comm: bytes each way per rank and iteration (default 64M; suffixes "
     "K, M, G)"},
    {"frame", required_argument, OPT_FRAME, "B",
     "comm: bytes per frame (default 1M, at most 64M)"},
    {0},
};

static int bench_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct bench_args *a = ctx;
    const long maxdim = 1L << 20;

    switch (key) {
    case OPT_M:
        return cli_parse_long (cli, "--m", arg, 1, maxdim, &a->m);
    case OPT_N:
        return cli_parse_long (cli, "--n", arg, 1, maxdim, &a->n);
    case OPT_K:
        return cli_parse_long (cli, "--k", arg, 1, maxdim, &a->k);
    case OPT_ITERS:
        return cli_parse_long (cli, "--iters", arg, 1, 100000, &a->iters);
    case OPT_THREADS:
        return cli_parse_long (cli, "--threads", arg, 1, 4096, &a->threads);
    case OPT_BYTES:
        if (dc_layout_parse_bytes (arg, &a->bytes) < 0 ||
            a->bytes > (16LL << 30))
            return cli_usage_error (cli,
                                    "--bytes '%s': expected a size "
                                    "from 1 to 16G (suffixes K, M, G)",
                                    arg);
        return 0;
    case OPT_FRAME:
        if (dc_layout_parse_bytes (arg, &a->frame) < 0 ||
            a->frame > (64LL << 20))
            return cli_usage_error (cli,
                                    "--frame '%s': expected a size "
                                    "from 1 to 64M (suffixes K, M)",
                                    arg);
        return 0;
    case OPT_DTYPE:
        if (dc_dtype_parse (arg, &a->dtype) < 0)
            return cli_usage_error (cli,
                                    "--dtype '%s': expected f32, tf32, "
                                    "f16 or bf16",
                                    arg);
        return 0;
    case OPT_DEVICE:
        if (strcmp (arg, "cpu") && strcmp (arg, "cuda") && strcmp (arg, "auto"))
            return cli_usage_error (cli,
                                    "--device '%s': expected cpu, cuda "
                                    "or auto",
                                    arg);
        a->device = arg;
        return 0;
    }
    return -1;
}

static double now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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

struct gemm_result {
    double gemm_s, fused_s; /* seconds per iteration */
};

static int time_gemm (const struct dc_compute_ops *ops, struct dc_compute *c,
                      int m, int n, int k, long iters, struct gemm_result *r,
                      dc_error_t *err)
{
    float *a = NULL, *b = NULL, *w = NULL, *bias = NULL, *out = NULL;
    int rc = -1;
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
    t0 = now ();
    for (long i = 0; i < iters; i++)
        if (ops->gemm (c, m, n, k, a, b, out, err) < 0)
            goto out;
    if (ops->sync (c, err) < 0)
        goto out;
    r->gemm_s = (now () - t0) / (double)iters;
    /* the fused layer op: y = relu (x . w^T + b) */
    if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL, err) <
            0 ||
        ops->sync (c, err) < 0)
        goto out;
    t0 = now ();
    for (long i = 0; i < iters; i++)
        if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL,
                             err) < 0)
            goto out;
    if (ops->sync (c, err) < 0)
        goto out;
    r->fused_s = (now () - t0) / (double)iters;
    rc = 0;
out:
    ops->free (c, a);
    ops->free (c, b);
    ops->free (c, w);
    ops->free (c, bias);
    ops->free (c, out);
    return rc;
}

static int print_gemm (const struct cli *cli, const struct dc_compute_ops *ops,
                       struct dc_compute *c, const struct bench_args *a,
                       const struct gemm_result *r)
{
    double flop = 2.0 * (double)a->m * (double)a->n * (double)a->k;
    double g = flop / r->gemm_s / 1e12, f = flop / r->fused_s / 1e12;
    double peak = ops->peak_tflops ? ops->peak_tflops (c) : 0.0;

    if (cli->json) {
        cJSON *o = cJSON_CreateObject ();
        char *s;
        cJSON_AddStringToObject (o, "benchmark", "gemm");
        cJSON_AddStringToObject (o, "backend", ops->name);
        cJSON_AddStringToObject (o, "device", ops->describe (c));
        cJSON_AddStringToObject (o, "dtype", dc_dtype_name (a->dtype));
        cJSON_AddNumberToObject (o, "m", (double)a->m);
        cJSON_AddNumberToObject (o, "n", (double)a->n);
        cJSON_AddNumberToObject (o, "k", (double)a->k);
        cJSON_AddNumberToObject (o, "iters", (double)a->iters);
        cJSON_AddNumberToObject (o, "gemm_seconds", r->gemm_s);
        cJSON_AddNumberToObject (o, "gemm_tflops", g);
        cJSON_AddNumberToObject (o, "linear_fwd_seconds", r->fused_s);
        cJSON_AddNumberToObject (o, "linear_fwd_tflops", f);
        if (peak > 0)
            cJSON_AddNumberToObject (o, "peak_tflops", peak);
        else
            cJSON_AddNullToObject (o, "peak_tflops");
        if (!(s = cJSON_PrintUnformatted (o))) {
            cJSON_Delete (o);
            return cli_error (EXIT_FAIL, "bench: out of memory");
        }
        printf ("%s\n", s);
        free (s);
        cJSON_Delete (o);
        return EXIT_OK;
    }
    printf ("device      %s\n", ops->describe (c));
    printf ("shape       m=%ld n=%ld k=%ld, %s, %ld iterations\n", a->m, a->n,
            a->k, dc_dtype_name (a->dtype), a->iters);
    printf ("gemm        %10.3f TFLOP/s  %10.3f ms\n", g, r->gemm_s * 1e3);
    printf ("linear_fwd  %10.3f TFLOP/s  %10.3f ms  (bias + relu fused)\n", f,
            r->fused_s * 1e3);
    if (peak > 0)
        printf ("peak        %10.3f TFLOP/s  (theoretical dense, %s); gemm at "
                "%.0f%%\n",
                peak, dc_dtype_name (a->dtype), 100.0 * g / peak);
    else
        printf ("peak        unknown for this device\n");
    return EXIT_OK;
}

static int bench_gemm (struct cli *cli, struct bench_args *a)
{
    const struct dc_compute_ops *ops;
    struct dc_compute *c;
    struct gemm_result r;
    dc_error_t err;
    int rc;

    if (!(ops = dc_compute_find (a->device, &err)))
        return cli_error (EXIT_GPU, "bench: %s", err.text);
    if (ops->probe (&err) != 1)
        return cli_error (EXIT_GPU, "bench: %s: %s", ops->name, err.text);
    if (!strcmp (ops->name, "cpu") && a->dtype != DC_DTYPE_F32) {
        cli_usage_error (cli, "--dtype %s: the cpu back-end computes in f32",
                         dc_dtype_name (a->dtype));
        return EXIT_USAGE;
    }
    bool gpu = strcmp (ops->name, "cpu") != 0;
    if (!a->m)
        a->m = gpu ? 8192 : 2048;
    if (!a->n)
        a->n = a->m;
    if (!a->k)
        a->k = a->m;
    if (!a->iters)
        a->iters = gpu ? 20 : 3;
    struct dc_compute_opts o = {.dtype = a->dtype, .threads = (int)a->threads};
    if (!(c = ops->create (&o, &err)))
        return cli_error (EXIT_GPU, "bench: %s", err.text);
    if (time_gemm (ops, c, (int)a->m, (int)a->n, (int)a->k, a->iters, &r,
                   &err) < 0)
        rc = cli_error (EXIT_GPU, "bench: %s", err.text);
    else
        rc = print_gemm (cli, ops, c, a, &r);
    ops->destroy (c);
    return rc;
}

/* ---- comm: the stream comm between the hub (here) and the ranks ---- */

#define COMM_WINDOW 4 /* frames in flight per rank */

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median (double *v, long n)
{
    qsort (v, (size_t)n, sizeof (*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct comm_run {
    struct cli_ranks *rk;
    uint8_t *buf; /* one frame: the rank and the frame number, then bytes */
    long long bytes, frame, nframes;
    long long *sent, *got;
    int lost; /* ranks that left (after DONE) */
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
    if (dc_comm_send (c->rk->hub, r, DC_MSG_DATA, c->buf, len, err) < 0)
        return -1;
    c->sent[r]++;
    return 0;
}

/* Next message from a rank, or an exit status (printed) when a rank was
 * lost, failed, or a signal came.  Returns 1 with *m, or -exitcode. */
static int comm_next (struct comm_run *c, struct dc_comm_msg *m)
{
    dc_error_t err;
    double until = now () + 60;

    for (;;) {
        int rc = dc_comm_recv (c->rk->hub, m, 1000, &err);
        if (rc < 0)
            return -cli_error (EXIT_FAIL, "bench: %s", err.text);
        int s = cli_ranks_check (c->rk);
        if (s > 0) {
            if (rc > 0)
                free (m->data);
            return -cli_error (128 + s, "bench: interrupted by SIG%s",
                               cli_signame (s));
        }
        if (rc == 0) {
            if (now () > until)
                return -cli_error (EXIT_FAIL, "bench: no message from the "
                                              "ranks for 60 s");
            continue;
        }
        if (m->type == DC_COMM_LOST) {
            return -cli_error (EXIT_FAIL, "bench: rank %d on %s was lost: %s",
                               m->src, c->rk->hosts[m->src],
                               dc_comm_lost_reason (c->rk->hub, m->src));
        }
        if (m->type == DC_MSG_ERROR) {
            int code = cli_error (EXIT_FAIL, "bench: rank %d: %.*s", m->src,
                                  (int)m->len, (const char *)m->data);
            free (m->data);
            return -code;
        }
        if (m->src < 0 || m->src >= c->rk->job.plan->size) {
            free (m->data);
            continue;
        }
        return 1;
    }
}

/* One timed round: every rank gets bytes in frames and sends them back. */
static int comm_round (struct comm_run *c, double *seconds)
{
    int size = c->rk->job.plan->size;
    long long left = (long long)size * c->nframes;
    struct dc_comm_msg m;
    dc_error_t err;
    double t0 = now ();

    for (int r = 0; r < size; r++) {
        c->sent[r] = c->got[r] = 0;
        while (c->sent[r] < c->nframes && c->sent[r] < COMM_WINDOW)
            if (comm_send_next (c, r, &err) < 0)
                return cli_error (EXIT_FAIL, "bench: %s", err.text);
    }
    while (left > 0) {
        int rc = comm_next (c, &m);
        if (rc < 0)
            return -rc;
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
        if (!good)
            return cli_error (EXIT_FAIL,
                              "bench: rank %d sent back frame %lld "
                              "wrong (%zu bytes)",
                              r, i, m.len);
        c->got[r]++;
        left--;
        if (c->sent[r] < c->nframes && comm_send_next (c, r, &err) < 0)
            return cli_error (EXIT_FAIL, "bench: %s", err.text);
    }
    *seconds = now () - t0;
    return EXIT_OK;
}

static int print_comm (const struct cli *cli, const struct comm_run *c,
                       const struct bench_args *a, double *secs)
{
    int size = c->rk->job.plan->size;
    double one = (double)c->bytes * size;
    double med = median (secs, a->iters);
    double gbps = one / med / 1e9;
    char b1[32], b2[32];

    if (cli->json) {
        cJSON *o = cJSON_CreateObject ();
        cJSON *all;
        char *s;
        cJSON_AddStringToObject (o, "benchmark", "comm");
        cJSON_AddStringToObject (o, "comm", "stream");
        cJSON_AddStringToObject (o, "launcher", c->rk->job.launcher);
        cJSON_AddNumberToObject (o, "ranks", size);
        cJSON_AddNumberToObject (o, "bytes_per_rank", (double)c->bytes);
        cJSON_AddNumberToObject (o, "frame_bytes", (double)c->frame);
        cJSON_AddNumberToObject (o, "frames_in_flight", COMM_WINDOW);
        cJSON_AddNumberToObject (o, "iters", (double)a->iters);
        cJSON_AddNumberToObject (o, "seconds", med);
        all = cJSON_AddArrayToObject (o, "seconds_all");
        for (long i = 0; i < a->iters; i++)
            cJSON_AddItemToArray (all, cJSON_CreateNumber (secs[i]));
        cJSON_AddNumberToObject (o, "to_ranks_gbps", gbps);
        cJSON_AddNumberToObject (o, "from_ranks_gbps", gbps);
        cJSON_AddNumberToObject (o, "total_gbps", 2 * gbps);
        if (!(s = cJSON_PrintUnformatted (o))) {
            cJSON_Delete (o);
            return cli_error (EXIT_FAIL, "bench: out of memory");
        }
        printf ("%s\n", s);
        free (s);
        cJSON_Delete (o);
        return EXIT_OK;
    }
    printf ("comm        stream, %d rank%s (%s launcher), this process the "
            "hub\n",
            size, size == 1 ? "" : "s", c->rk->job.launcher);
    printf ("traffic     %s each way per rank in frames of %s, %d in flight, "
            "both ways at once\n",
            dc_layout_fmt_bytes ((double)c->bytes, b1, sizeof (b1)),
            dc_layout_fmt_bytes ((double)c->frame, b2, sizeof (b2)),
            COMM_WINDOW);
    printf ("time        %10.3f ms  (median of %ld)\n", med * 1e3, a->iters);
    printf ("to ranks    %10.3f GB/s\n", gbps);
    printf ("from ranks  %10.3f GB/s\n", gbps);
    printf ("total       %10.3f GB/s\n", 2 * gbps);
    return EXIT_OK;
}

/* After DONE: wait for the ranks to leave, then stop what is left. */
static void comm_finish (struct comm_run *c)
{
    struct cli_ranks *rk = c->rk;
    double until = now () + 5;

    for (int r = 0; r < rk->job.plan->size; r++)
        dc_comm_send (rk->hub, r, DC_MSG_DONE, NULL, 0, NULL);
    while (dc_comm_stream_running (rk->hub) > 0 && now () < until) {
        struct dc_comm_msg m;
        if (dc_comm_recv (rk->hub, &m, 100, NULL) > 0)
            free (m.data);
        if (cli_ranks_check (rk) > 0)
            break;
    }
    if (dc_comm_stream_running (rk->hub) > 0)
        cli_ranks_stop (rk);
}

static int bench_comm (struct cli *cli, struct bench_args *a)
{
    static const char job[] = "{\"mode\": \"echo\"}";
    struct cli_ranks rk;
    struct comm_run c = {.rk = &rk};
    struct dc_comm_msg m;
    double *secs = NULL;
    dc_error_t err;
    int rc, size, ready = 0;

    if (!a->bytes)
        a->bytes = 64LL << 20;
    if (!a->frame)
        a->frame = 1LL << 20;
    if (a->frame > a->bytes)
        a->frame = a->bytes;
    if (!a->iters)
        a->iters = 3;
    if (!cli->hostfile && !cli->hosts) {
        /* local ranks: -n of them, 2 by default */
        static char local[32];
        snprintf (local, sizeof (local), "localhost:%ld",
                  cli->np > 0 ? cli->np : 2);
        cli->hosts = local;
    }
    c.bytes = a->bytes;
    c.frame = a->frame;
    c.nframes = (a->bytes + a->frame - 1) / a->frame;
    if ((rc = cli_ranks_init (cli, &rk)) != EXIT_OK)
        goto out;
    size = rk.job.plan->size;
    if (!(c.buf = malloc ((size_t)a->frame)) ||
        !(c.sent = calloc ((size_t)size, sizeof (*c.sent))) ||
        !(c.got = calloc ((size_t)size, sizeof (*c.got))) ||
        !(secs = calloc ((size_t)a->iters, sizeof (*secs)))) {
        rc = cli_error (EXIT_FAIL, "bench: out of memory");
        goto out;
    }
    for (long long i = 0; i < a->frame; i++)
        c.buf[i] = (uint8_t)(i * 131 + 7);
    if (cli->dry_run) {
        printf ("launcher: %s\nranks: %d, each `%s serve` in echo mode\n",
                rk.job.launcher, size, cli_self_path ());
        rc = EXIT_OK;
        goto out;
    }
    if ((rc = cli_ranks_launch (&rk, 30)) != EXIT_OK)
        goto out;
    for (int r = 0; r < size; r++)
        if (dc_comm_send (rk.hub, r, DC_MSG_JOB, job, strlen (job), &err) < 0) {
            rc = cli_error (EXIT_FAIL, "bench: %s", err.text);
            goto stop;
        }
    while (ready < size) {
        if ((rc = comm_next (&c, &m)) < 0) {
            rc = -rc;
            goto stop;
        }
        ready += m.type == DC_MSG_READY;
        free (m.data);
    }
    /* one warm-up round (page faults, pipe buffers), then the timed ones */
    double warm;
    if ((rc = comm_round (&c, &warm)) != EXIT_OK)
        goto stop;
    for (long i = 0; i < a->iters; i++)
        if ((rc = comm_round (&c, &secs[i])) != EXIT_OK)
            goto stop;
    comm_finish (&c);
    rc = print_comm (cli, &c, a, secs);
    goto out;
stop:
    cli_ranks_stop (&rk);
out:
    cli_ranks_fini (&rk);
    free (c.buf);
    free (c.sent);
    free (c.got);
    free (secs);
    return rc;
}

/* ---- launch: `dcrun exec -- true` over the host list ---- */

/* bench's command line without the kind and bench's own options: the
 * global and launch options, for exec */
static char **exec_argv (const struct bench_args *a, const char *kind)
{
    char **av = calloc ((size_t)a->argc + 5, sizeof (*av));
    int k = 0;

    if (!av)
        return NULL;
    av[k++] = (char *)cli_self_path ();
    av[k++] = "exec";
    for (int i = 1; i < a->argc; i++) {
        const char *w = a->argv[i];
        bool own = false, takes_arg = false;
        if (!strcmp (w, "--")) /* nothing of bench's follows */
            break;
        if (w == kind || !strcmp (w, "--json") || !strcmp (w, "--dry-run"))
            continue;
        for (const struct cli_opt *o = bench_opts; o->name; o++) {
            size_t n = strlen (o->name);
            if (!strncmp (w, "--", 2) && !strncmp (w + 2, o->name, n) &&
                (w[2 + n] == '\0' || w[2 + n] == '=')) {
                own = true;
                takes_arg = w[2 + n] == '\0' && o->has_arg;
            }
        }
        if (own) {
            i += takes_arg;
            continue;
        }
        av[k++] = a->argv[i];
    }
    av[k++] = "--";
    av[k++] = "true";
    av[k] = NULL;
    return av;
}

static int run_exec (char **av, double *seconds, int *status)
{
    double t0 = now ();
    pid_t pid;

    fflush (NULL);
    if ((pid = fork ()) < 0)
        return -1;
    if (pid == 0) {
        int fd = open ("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2 (fd, 1); /* `true` prints nothing; exec's errors stay */
        execv (av[0], av);
        _exit (127);
    }
    while (waitpid (pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    *seconds = now () - t0;
    return 0;
}

static int bench_launch (struct cli *cli, struct bench_args *a)
{
    struct cli_job job;
    char **av = NULL;
    double *secs = NULL;
    int rc, status, size;

    if (!a->iters)
        a->iters = 5;
    /* the host list and launcher as exec will see them; bad input here */
    if ((rc = cli_job_init (cli, &job)) != EXIT_OK)
        return rc;
    size = job.plan->size;
    if (!(av = exec_argv (a, a->kind)) ||
        !(secs = calloc ((size_t)a->iters + 1, sizeof (*secs)))) {
        rc = cli_error (EXIT_FAIL, "bench: out of memory");
        goto out;
    }
    if (cli->dry_run) {
        for (int i = 0; av[i]; i++)
            printf ("%s%s", i ? " " : "", av[i]);
        printf ("\n");
        rc = EXIT_OK;
        goto out;
    }
    /* one warm-up (page cache, ssh host keys), then the timed runs */
    for (long i = 0; i <= a->iters; i++) {
        if (run_exec (av, &secs[i], &status) < 0) {
            rc =
                cli_error (EXIT_FAIL, "bench: %s: %s", av[0], strerror (errno));
            goto out;
        }
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            rc = WIFEXITED (status) ? WEXITSTATUS (status) : EXIT_FAIL;
            cli_error (rc, "bench: `dcrun exec -- true` failed (%s %d)",
                       WIFEXITED (status) ? "exit" : "signal",
                       WIFEXITED (status) ? WEXITSTATUS (status)
                                          : WTERMSIG (status));
            goto out;
        }
    }
    double min = secs[1], max = secs[1];
    for (long i = 1; i <= a->iters; i++) {
        min = secs[i] < min ? secs[i] : min;
        max = secs[i] > max ? secs[i] : max;
    }
    double med = median (secs + 1, a->iters);
    if (cli->json) {
        printf ("{\"benchmark\":\"launch\",\"launcher\":\"%s\",\"hosts\":%zu,"
                "\"ranks\":%d,\"iters\":%ld,\"seconds\":%.6f,"
                "\"min_seconds\":%.6f,\"max_seconds\":%.6f}\n",
                job.launcher, job.hosts->count, size, a->iters, med, min, max);
    } else {
        printf ("launch      `dcrun exec -- true`, %d rank%s on %zu host%s "
                "(%s launcher)\n",
                size, size == 1 ? "" : "s", job.hosts->count,
                job.hosts->count == 1 ? "" : "s", job.launcher);
        printf ("time        %10.3f s median of %ld  (min %.3f, max %.3f)\n",
                med, a->iters, min, max);
    }
    rc = EXIT_OK;
out:
    cli_job_fini (&job);
    free (av);
    free (secs);
    return rc;
}

/* The benchmarks; `dcrun bench KIND`. */
static const struct {
    const char *name;
    int (*run) (struct cli *cli, struct bench_args *a);
} kinds[] = {
    {"gemm", bench_gemm},
    {"comm", bench_comm},
    {"launch", bench_launch},
};

static int bench_run (struct cli *cli, int argc, char **argv)
{
    struct bench_args a = {
        .dtype = DC_DTYPE_F32, .device = "auto", .argc = argc, .argv = argv};
    int optindex, rc;
    const char *kind;

    if ((rc = cli_parse (cli, &cmd_bench, argc, argv, bench_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex >= argc) {
        cli_usage_error (cli, "which benchmark? expected gemm, comm or "
                              "launch");
        return EXIT_USAGE;
    }
    kind = a.kind = argv[optindex];
    /* options may follow the kind (getopt stops at it): parse the rest */
    argc -= optindex;
    argv += optindex;
    if ((rc = cli_parse (cli, &cmd_bench, argc, argv, bench_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof (kinds) / sizeof (*kinds); i++)
        if (!strcmp (kinds[i].name, kind)) {
            cli_log_init (cli);
            return kinds[i].run (cli, &a);
        }
    cli_usage_error (cli,
                     "unknown benchmark '%s' (expected gemm, comm or "
                     "launch)",
                     kind);
    return EXIT_USAGE;
}

const struct cli_command cmd_bench = {
    .name = "bench",
    .summary = "micro-benchmarks: gemm (TFLOP/s), comm (GB/s between "
               "ranks), launch (s)",
    .usage = "gemm [--m M] [--n N] [--k K] [--dtype f32|tf32|f16|bf16] "
             "[--device cpu|cuda|auto] [--iters N] [--threads N] [--json]\n"
             "       dcrun bench comm [-H LIST|-n N] [--bytes B] [--frame B] "
             "[--iters N] [--json]\n"
             "       dcrun bench launch [-f FILE|-H LIST] [-L ...] "
             "[--iters N] [--json]",
    .opts = bench_opts,
    .launch_opts = true,
    .run = bench_run,
};
