/* cmd_bench.c - dcrun bench KIND: built-in micro-benchmarks
 *
 * gemm: TFLOP/s of the compute back-end's GEMM (C = A . B) and of the fused
 * layer op (linear_fwd: y = relu (x . w^T + b)), with the device's peak
 * where known.  Kinds are a table; add a row for a new one.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "gpu/compute.h"

enum {
    OPT_M = 0x100,
    OPT_N,
    OPT_K,
    OPT_DTYPE,
    OPT_DEVICE,
    OPT_ITERS,
    OPT_THREADS,
};

struct bench_args {
    long m, n, k; /* 0: the default for the device */
    long iters;   /* 0: the default for the device */
    long threads;
    enum dc_dtype dtype;
    const char *device;
};

static const struct cli_opt bench_opts[] = {
    {"m", required_argument, OPT_M, "M", "rows of A and C (default 8192 on "
                                         "cuda, 2048 on cpu)"},
    {"n", required_argument, OPT_N, "N", "columns of B and C (default: M)"},
    {"k", required_argument, OPT_K, "K", "inner dimension (default: M)"},
    {"dtype", required_argument, OPT_DTYPE, "f32|tf32|f16|bf16",
     "input type; f32 accumulation (default f32; cpu: f32 only)"},
    {"device", required_argument, OPT_DEVICE, "cpu|cuda|auto",
     "compute back-end (default auto: cuda when a GPU is usable)"},
    {"iters", required_argument, OPT_ITERS, "N",
     "timed iterations after one warm-up (default 20 on cuda, 3 on cpu)"},
    {"threads", required_argument, OPT_THREADS, "N",
     "CPU threads for the cpu back-end (default: OpenBLAS' own)"},
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
    case OPT_DTYPE:
        if (dc_dtype_parse (arg, &a->dtype) < 0)
            return cli_usage_error (cli, "--dtype '%s': expected f32, tf32, "
                                         "f16 or bf16",
                                    arg);
        return 0;
    case OPT_DEVICE:
        if (strcmp (arg, "cpu") && strcmp (arg, "cuda") && strcmp (arg, "auto"))
            return cli_usage_error (cli, "--device '%s': expected cpu, cuda "
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
    if ((d = ops->alloc (c, n * sizeof (float), err))
        && ops->copy_in (c, d, h, n * sizeof (float), err) < 0) {
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

    if (!(a = dev_random (ops, c, (size_t)m * k, 1, err))
        || !(b = dev_random (ops, c, (size_t)k * n, 2, err))
        || !(w = dev_random (ops, c, (size_t)n * k, 3, err))
        || !(bias = dev_random (ops, c, (size_t)n, 4, err))
        || !(out = ops->alloc (c, (size_t)m * n * sizeof (float), err)))
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
    if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL, err)
            < 0
        || ops->sync (c, err) < 0)
        goto out;
    t0 = now ();
    for (long i = 0; i < iters; i++)
        if (ops->linear_fwd (c, m, n, k, a, w, bias, DC_ACT_RELU, out, NULL,
                             err)
            < 0)
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
                   &err)
        < 0)
        rc = cli_error (EXIT_GPU, "bench: %s", err.text);
    else
        rc = print_gemm (cli, ops, c, a, &r);
    ops->destroy (c);
    return rc;
}

/* The benchmarks; `dcrun bench KIND`. */
static const struct {
    const char *name;
    int (*run) (struct cli *cli, struct bench_args *a);
} kinds[] = {
    {"gemm", bench_gemm},
};

static int bench_run (struct cli *cli, int argc, char **argv)
{
    struct bench_args a = {.dtype = DC_DTYPE_F32, .device = "auto"};
    int optindex, rc;
    const char *kind;

    if ((rc = cli_parse (cli, &cmd_bench, argc, argv, bench_opt, &a,
                         &optindex))
        != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex >= argc) {
        cli_usage_error (cli, "which benchmark? expected gemm");
        return EXIT_USAGE;
    }
    kind = argv[optindex];
    /* options may follow the kind (getopt stops at it): parse the rest */
    argc -= optindex;
    argv += optindex;
    if ((rc = cli_parse (cli, &cmd_bench, argc, argv, bench_opt, &a,
                         &optindex))
        != 0)
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
    cli_usage_error (cli, "unknown benchmark '%s' (expected gemm)", kind);
    return EXIT_USAGE;
}

const struct cli_command cmd_bench = {
    .name = "bench",
    .summary = "built-in micro-benchmarks: gemm (TFLOP/s of the compute "
               "back-end)",
    .usage = "gemm [--m M] [--n N] [--k K] [--dtype f32|tf32|f16|bf16] "
             "[--device cpu|cuda|auto] [--iters N] [--threads N] [--json]",
    .opts = bench_opts,
    .run = bench_run,
};
