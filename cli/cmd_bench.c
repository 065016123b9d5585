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
#include "compute_cli.h"
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
        return cli_parse_dtype (cli, arg, &a->dtype);
    case OPT_DEVICE:
        return cli_parse_device (cli, arg, &a->device);
    }
    return -1;
}

/* One line of JSON (lib/run/bench.h builds it). */
static int print_json (char *s)
{
    if (!s)
        return cli_error (EXIT_FAIL, "bench: out of memory");
    printf ("%s\n", s);
    free (s);
    return EXIT_OK;
}

static int print_gemm (const struct cli *cli, const struct dc_bench_gemm_run *r)
{
    const char *dtype = dc_dtype_name (r->dtype);

    if (cli->json)
        return print_json (dc_bench_gemm_json (r));
    printf ("device      %s\n", r->describe);
    printf ("shape       m=%ld n=%ld k=%ld, %s, %ld iterations\n", r->m, r->n,
            r->k, dtype, r->iters);
    printf ("gemm        %10.3f TFLOP/s  %10.3f ms\n", r->gemm_tflops,
            r->gemm_s * 1e3);
    printf ("linear_fwd  %10.3f TFLOP/s  %10.3f ms  (bias + relu fused)\n",
            r->fused_tflops, r->fused_s * 1e3);
    if (r->peak > 0)
        printf ("peak        %10.3f TFLOP/s  (theoretical dense, %s); gemm at "
                "%.0f%%\n",
                r->peak, dtype, 100.0 * r->gemm_tflops / r->peak);
    else
        printf ("peak        unknown for this device\n");
    return EXIT_OK;
}

static int bench_gemm (struct cli *cli, struct bench_args *a)
{
    struct dc_bench_gemm_run r = {.device = a->device,
                                  .dtype = a->dtype,
                                  .threads = (int)a->threads,
                                  .m = a->m,
                                  .n = a->n,
                                  .k = a->k,
                                  .iters = a->iters};
    dc_error_t err;
    int st = dc_bench_gemm_run (&r, &err);

    if (st == DC_STATUS_USAGE) {
        cli_usage_error (cli, "%s", err.text);
        return EXIT_USAGE;
    }
    if (st != DC_STATUS_OK)
        return cli_status (NULL, st, 0, &err);
    return print_gemm (cli, &r);
}

/* ---- comm: the stream comm between the hub (here) and the ranks ---- */

static int print_comm (const struct cli *cli, const struct dc_job *job,
                       const struct bench_args *a, double *secs)
{
    struct dc_bench_comm_res r = {.launcher = job->launcher,
                                  .ranks = job->plan->size,
                                  .bytes = a->bytes,
                                  .frame = a->frame,
                                  .iters = a->iters,
                                  .secs = secs};
    char b1[32], b2[32];

    dc_bench_comm_rates (&r, secs);
    if (cli->json)
        return print_json (dc_bench_comm_json (&r));
    printf ("comm        stream, %d rank%s (%s launcher), this process the "
            "hub\n",
            r.ranks, r.ranks == 1 ? "" : "s", job->launcher);
    printf ("traffic     %s each way per rank in frames of %s, %d in flight, "
            "both ways at once\n",
            dc_layout_fmt_bytes ((double)a->bytes, b1, sizeof (b1)),
            dc_layout_fmt_bytes ((double)a->frame, b2, sizeof (b2)),
            DC_BENCH_COMM_WINDOW);
    printf ("time        %10.3f ms  (median of %ld)\n", r.med * 1e3, a->iters);
    printf ("to ranks    %10.3f GB/s\n", r.gbps);
    printf ("from ranks  %10.3f GB/s\n", r.gbps);
    printf ("total       %10.3f GB/s\n", 2 * r.gbps);
    return EXIT_OK;
}

static int bench_comm (struct cli *cli, struct bench_args *a)
{
    struct cli_ranks rk = {.cli = cli};
    double *secs = NULL;
    dc_error_t err;
    int rc;

    dc_bench_comm_defaults (&a->bytes, &a->frame, &a->iters);
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
    cli_ranks_fini (&rk);
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
    double med, min, max;
    dc_error_t err;
    int rc, status, size;

    if (!a->iters)
        a->iters = 5;
    /* the host list and launcher as exec will see them; bad input here */
    if ((rc = cli_job_init (cli, &job)) != EXIT_OK)
        return rc;
    size = job.plan->size;
    if (!(av = exec_argv (a, a->kind))) {
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
    if (dc_bench_launch (av, a->iters, &med, &min, &max, &status, &err) !=
        DC_STATUS_OK) {
        if (!status) {
            rc = cli_status (NULL, DC_STATUS_FAIL, 0, &err);
            goto out;
        }
        rc = WIFEXITED (status) ? WEXITSTATUS (status) : EXIT_FAIL;
        cli_error (rc, "bench: `dcrun exec -- true` failed (%s %d)",
                   WIFEXITED (status) ? "exit" : "signal",
                   WIFEXITED (status) ? WEXITSTATUS (status)
                                      : WTERMSIG (status));
        goto out;
    }
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
