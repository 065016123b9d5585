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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli.h"
#include "commands.h"
#include "compute_cli.h"
#include "dist.h"
#include "job.h"
#include "lib/run/bench.h"
#include "status.h"

struct bench_args {
    struct dc_bench_gemm_run gemm; /* m, n, k, dtype, device (0: defaults) */
    struct dc_bench_comm_res comm; /* bytes, frame (0: defaults) */
    long iters;                    /* 0: the default of the benchmark */
    int argc;                      /* bench's own command line, for launch */
    char **argv;
    const char *kind; /* the word naming the benchmark */
};

static int dtype_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_parse_dtype (cli, arg, &((struct bench_args *)base)->gemm.dtype);
}

static int device_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_parse_device (cli, arg,
                             &((struct bench_args *)base)->gemm.device);
}

#define F(kd, member, ...) CLI_AT (struct bench_args, kd, member, __VA_ARGS__)
static const struct cli_opt bench_opts[] = {
    {"m", 0, "M", "rows of A and C (default 8192 on cuda, 2048 on cpu)",
     F (CLI_LONG, gemm.m, 1, 1L << 20)},
    {"n", 0, "N", "columns of B and C (default: M)",
     F (CLI_LONG, gemm.n, 1, 1L << 20)},
    {"k", 0, "K", "inner dimension (default: M)",
     F (CLI_LONG, gemm.k, 1, 1L << 20)},
    {"dtype", 0, "f32|tf32|f16|bf16",
     "input type; f32 accumulation (default f32; cpu: f32 only)",
     .fn = dtype_opt},
    {"device", 0, "cpu|cuda|auto",
     "compute back-end (default auto: cuda when a GPU is usable)",
     .fn = device_opt},
    {"iters", 0, "N",
     "timed iterations after one warm-up (gemm: 20 on cuda, 3 on cpu; "
     "comm: 3; launch: 5)",
     F (CLI_LONG, iters, 1, 100000)},
    {"threads", 0, "N",
     "CPU threads for the cpu back-end (default: OpenBLAS' own)",
     F (CLI_INT, gemm.threads, 1, 4096)},
    {"bytes", 0, "B",
     "comm: bytes each way per rank and iteration (default 64M; suffixes "
     "K, M, G)",
     F (CLI_BYTES, comm.bytes, 1, 16LL << 30)},
    {"frame", 0, "B", "comm: bytes per frame (default 1M, at most 64M)",
     F (CLI_BYTES, comm.frame, 1, 64LL << 20)},
    {0},
};
#undef F

/* The results as JSON or text (lib/run/bench.h builds them). */
static int print_result (char *s)
{
    if (!s)
        return cli_error (EXIT_FAIL, "bench: out of memory");
    puts (s);
    free (s);
    return EXIT_OK;
}

static int bench_gemm (struct cli *cli, struct bench_args *a)
{
    struct dc_bench_gemm_run *r = &a->gemm;
    dc_error_t err;
    int st;

    r->iters = a->iters;
    st = dc_bench_gemm_run (r, &err);

    if (st == DC_STATUS_USAGE) {
        cli_usage_error (cli, "%s", err.text);
        return EXIT_USAGE;
    }
    if (st != DC_STATUS_OK)
        return cli_status (NULL, st, 0, &err);
    return print_result (cli->json ? dc_bench_gemm_json (r)
                                   : dc_bench_gemm_text (r));
}

/* ---- comm: the stream comm between the hub (here) and the ranks ---- */

static int bench_comm (struct cli *cli, struct bench_args *a)
{
    struct cli_ranks rk = {.cli = cli};
    struct dc_bench_comm_res *r = &a->comm;
    dc_error_t err;
    int rc;

    r->iters = a->iters;
    if (!cli->hostfile && !cli->hosts) {
        /* local ranks: -n of them, 2 by default */
        static char local[32];
        snprintf (local, sizeof (local), "localhost:%ld",
                  cli->np > 0 ? cli->np : 2);
        cli->hosts = local;
    }
    if ((rc = cli_ranks_init (cli, &rk)) != EXIT_OK)
        goto out;
    if (cli->dry_run) {
        printf ("launcher: %s\nranks: %d, each `%s serve` in echo mode\n",
                rk.job.launcher, rk.job.plan->size, cli_self_path ());
        rc = EXIT_OK;
        goto out;
    }
    if ((rc = cli_ranks_launch (&rk, 30)) != EXIT_OK)
        goto out;
    if ((rc = dc_bench_comm_run (&rk.job, r, &err)) != DC_STATUS_OK)
        rc = cli_status (cli->command, rc, rk.job.interrupted, &err);
    else
        rc = print_result (cli->json ? dc_bench_comm_json (r)
                                     : dc_bench_comm_text (r));
out:
    cli_ranks_fini (&rk);
    free (r->secs);
    return rc;
}

/* ---- launch: `dcrun exec -- true` over the host list ---- */

/* Whether word is one of the options of the table opts (bench's own). */
static bool own_opt (const char *w, bool *takes_arg, void *opts)
{
    for (const struct cli_opt *o = opts; o->name; o++) {
        size_t n = strlen (o->name);
        if (!strncmp (w, "--", 2) && !strncmp (w + 2, o->name, n) &&
            (w[2 + n] == '\0' || w[2 + n] == '=')) {
            *takes_arg = w[2 + n] == '\0' && o->arg;
            return true;
        }
    }
    return false;
}

static int bench_launch (struct cli *cli, struct bench_args *a)
{
    struct cli_job job;
    char **av = NULL;
    struct dc_bench_launch_res r = {.iters = a->iters};
    dc_error_t err;
    int rc, status;

    /* the host list and launcher as exec will see them; bad input here */
    if ((rc = cli_job_init (cli, &job)) != EXIT_OK)
        return rc;
    r.launcher = job.launcher;
    r.hosts = job.hosts->count;
    r.ranks = job.plan->size;
    if (!(av = dc_bench_exec_argv (cli_self_path (), a->argc, a->argv, a->kind,
                                   own_opt, (void *)bench_opts))) {
        rc = cli_error (EXIT_FAIL, "bench: out of memory");
        goto out;
    }
    if (cli->dry_run) {
        for (int i = 0; av[i]; i++)
            printf ("%s%s", av[i], av[i + 1] ? " " : "\n");
        rc = EXIT_OK;
        goto out;
    }
    if ((rc = dc_bench_launch_run (av, &r, &status, &err)) != DC_STATUS_OK) {
        rc = cli_status (NULL, rc, 0, &err);
        if (status && WIFEXITED (status))
            rc = WEXITSTATUS (status); /* exec's own exit code */
        goto out;
    }
    rc = print_result (cli->json ? dc_bench_launch_json (&r)
                                 : dc_bench_launch_text (&r));
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
    struct bench_args a = {.gemm = {.dtype = DC_DTYPE_F32, .device = "auto"},
                           .argc = argc,
                           .argv = argv};
    int optindex, rc;
    const char *kind;

    if ((rc = cli_parse (cli, &cmd_bench, argc, argv, &a, &optindex)) != 0)
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
    if ((rc = cli_parse_opts (cli, &cmd_bench, argc, argv, &a)) >= 0)
        return rc;
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
