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
#include "lib/run/bench.h"
#include "status.h"

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

static int print_gemm (const struct cli *cli, const struct dc_compute_ops *ops,
                       struct dc_compute *c, const struct bench_args *a,
                       double gemm_s, double fused_s)
{
    double flop = 2.0 * (double)a->m * (double)a->n * (double)a->k;
    double g = flop / gemm_s / 1e12, f = flop / fused_s / 1e12;
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
        cJSON_AddNumberToObject (o, "gemm_seconds", gemm_s);
        cJSON_AddNumberToObject (o, "gemm_tflops", g);
        cJSON_AddNumberToObject (o, "linear_fwd_seconds", fused_s);
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
    printf ("gemm        %10.3f TFLOP/s  %10.3f ms\n", g, gemm_s * 1e3);
    printf ("linear_fwd  %10.3f TFLOP/s  %10.3f ms  (bias + relu fused)\n", f,
            fused_s * 1e3);
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
    double gemm_s, fused_s;
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
    if (dc_bench_gemm (ops, c, (int)a->m, (int)a->n, (int)a->k, a->iters,
                       &gemm_s, &fused_s, &err) != DC_STATUS_OK)
        rc = cli_error (EXIT_GPU, "bench: %s", err.text);
    else
        rc = print_gemm (cli, ops, c, a, gemm_s, fused_s);
    ops->destroy (c);
    return rc;
}

/* ---- comm: the stream comm between the hub (here) and the ranks ---- */

static int print_comm (const struct cli *cli, const struct dc_job *job,
                       const struct bench_args *a, double *secs)
{
    int size = job->plan->size;
    double one = (double)a->bytes * size;
    double med = dc_bench_median (secs, a->iters);
    double gbps = one / med / 1e9;
    char b1[32], b2[32];

    if (cli->json) {
        cJSON *o = cJSON_CreateObject ();
        cJSON *all;
        char *s;
        cJSON_AddStringToObject (o, "benchmark", "comm");
        cJSON_AddStringToObject (o, "comm", "stream");
        cJSON_AddStringToObject (o, "launcher", job->launcher);
        cJSON_AddNumberToObject (o, "ranks", size);
        cJSON_AddNumberToObject (o, "bytes_per_rank", (double)a->bytes);
        cJSON_AddNumberToObject (o, "frame_bytes", (double)a->frame);
        cJSON_AddNumberToObject (o, "frames_in_flight", DC_BENCH_COMM_WINDOW);
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
            size, size == 1 ? "" : "s", job->launcher);
    printf ("traffic     %s each way per rank in frames of %s, %d in flight, "
            "both ways at once\n",
            dc_layout_fmt_bytes ((double)a->bytes, b1, sizeof (b1)),
            dc_layout_fmt_bytes ((double)a->frame, b2, sizeof (b2)),
            DC_BENCH_COMM_WINDOW);
    printf ("time        %10.3f ms  (median of %ld)\n", med * 1e3, a->iters);
    printf ("to ranks    %10.3f GB/s\n", gbps);
    printf ("from ranks  %10.3f GB/s\n", gbps);
    printf ("total       %10.3f GB/s\n", 2 * gbps);
    return EXIT_OK;
}

static int bench_comm (struct cli *cli, struct bench_args *a)
{
    struct cli_ranks rk;
    double *secs = NULL;
    dc_error_t err;
    int rc;

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
    if ((rc = cli_ranks_init (cli, &rk)) != EXIT_OK)
        goto out;
    if (!(secs = calloc ((size_t)a->iters, sizeof (*secs)))) {
        rc = cli_error (EXIT_FAIL, "bench: out of memory");
        goto out;
    }
    if (cli->dry_run) {
        printf ("launcher: %s\nranks: %d, each `%s serve` in echo mode\n",
                rk.job.launcher, rk.job.plan->size, cli_self_path ());
        rc = EXIT_OK;
        goto out;
    }
    if ((rc = cli_ranks_launch (&rk, 30)) != EXIT_OK)
        goto out;
    rc = dc_bench_comm (&rk.job, a->bytes, a->frame, a->iters, secs, &err);
    if (rc != DC_STATUS_OK)
        rc = cli_status (cli->command, rc, rk.job.interrupted, &err);
    else
        rc = print_comm (cli, &rk.job, a, secs);
out:
    dc_job_fini (&rk.job);
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
        if (dc_bench_exec (av, &secs[i], &status) < 0) {
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
    double med = dc_bench_median (secs + 1, a->iters);
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
