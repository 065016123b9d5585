/* cmd_map.c - dcrun map: any program over the rows of an .npy, across the
 * ranks, gathered into one output (lib/run/map.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "job.h"
#include "status.h"
#include "lib/comm/comm.h"
#include "lib/run/map.h"

enum {
    OPT_INPUT = 0x100,
    OPT_OUTPUT,
    OPT_CHUNK_ROWS,
    OPT_RETRIES,
    OPT_CHUNK_TIMEOUT,
    OPT_REPORT,
    OPT_TRACE,
    OPT_PROGRESS,
    OPT_HEARTBEAT_TIMEOUT,
    OPT_IO,
    OPT_FILES,
};

struct map_args {
    const char *input, *output, *report, *trace;
    long chunk_rows, retries;
    double chunk_timeout, heartbeat_timeout;
    bool progress, files;
    enum dc_io_mode io; /* default auto */
};

static const struct cli_opt map_opts[] = {
    {"input", required_argument, OPT_INPUT, "X.npy",
     "input rows: an .npy of any plain dtype and shape (rows first)"},
    {"output", required_argument, OPT_OUTPUT, "Y.npy",
     "the chunks' outputs in row order, written when complete"},
    {"chunk-rows", required_argument, OPT_CHUNK_ROWS, "R",
     "rows per chunk (default: about 4 chunks per rank)"},
    {"retries", required_argument, OPT_RETRIES, "N",
     "times a failed chunk is retried on another rank (default 2)"},
    {"chunk-timeout", required_argument, OPT_CHUNK_TIMEOUT, "S",
     "a chunk running longer than S seconds: CMD killed, the rank lost "
     "(default: none)"},
    {"report", required_argument, OPT_REPORT, "R.json",
     "write a run report (phases, ranks, chunks, output sha256)"},
    {"trace", required_argument, OPT_TRACE, "T.json",
     "write a Chrome trace (Perfetto): launch, load, each chunk on its "
     "rank, lost ranks, retries, the commit"},
    {"progress", no_argument, OPT_PROGRESS, NULL,
     "progress line on stderr even when it is not a terminal"},
    {"heartbeat-timeout", required_argument, OPT_HEARTBEAT_TIMEOUT, "S",
     "a rank silent for S seconds is lost (default 30)"},
    {"files", no_argument, OPT_FILES, NULL,
     "--input lists files (one path a line) or is a folder; chunks are "
     "groups of files; CMD gets 'LIST OUT_DIR' and writes files into "
     "OUT_DIR; --output is a new folder of them all"},
    {"io", required_argument, OPT_IO, "direct|relay|auto",
     "data path: direct (each rank reads its chunks' rows from the input "
     "and writes CMD's rows into the output itself; a rank that cannot is "
     "an error), relay (rows through this process), auto (default: direct "
     "for each rank that sees the same files, relay for the others)"},
    {0},
};

static int map_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct map_args *a = ctx;

    switch (key) {
    case OPT_INPUT:
        a->input = arg;
        return 0;
    case OPT_OUTPUT:
        a->output = arg;
        return 0;
    case OPT_CHUNK_ROWS:
        return cli_parse_long (cli, "--chunk-rows", arg, 1, 1L << 26,
                               &a->chunk_rows);
    case OPT_RETRIES:
        return cli_parse_long (cli, "--retries", arg, 0, 1000, &a->retries);
    case OPT_CHUNK_TIMEOUT:
        return cli_parse_double (cli, "--chunk-timeout", arg, 0.001, 1e7,
                                 &a->chunk_timeout);
    case OPT_TRACE:
        a->trace = arg;
        return 0;
    case OPT_REPORT:
        a->report = arg;
        return 0;
    case OPT_PROGRESS:
        a->progress = true;
        return 0;
    case OPT_FILES:
        a->files = true;
        return 0;
    case OPT_HEARTBEAT_TIMEOUT:
        return cli_parse_double (cli, "--heartbeat-timeout", arg, 0.1, 1e6,
                                 &a->heartbeat_timeout);
    case OPT_IO:
        if (!strcmp (arg, "direct"))
            a->io = DC_IO_DIRECT;
        else if (!strcmp (arg, "relay"))
            a->io = DC_IO_RELAY;
        else if (!strcmp (arg, "auto"))
            a->io = DC_IO_AUTO;
        else
            return cli_usage_error (
                cli, "--io '%s': expected direct, relay or auto", arg);
        return 0;
    }
    return -1;
}

/* The driver's command line: the options as given, then -- CMD ARGS. */
static int keep_command (struct cli *cli, int n, char **cmd)
{
    char **v =
        realloc (cli->own_args, (size_t)(cli->nown + n + 2) * sizeof (char *));

    if (!v)
        return -1;
    cli->own_args = v; /* main frees each */
    for (int i = -1; i < n; i++) {
        if (!(v[cli->nown] = strdup (i < 0 ? "--" : cmd[i])))
            return -1;
        v[++cli->nown] = NULL;
    }
    return 0;
}

static int map_run (struct cli *cli, int argc, char **argv)
{
    struct map_args a = {.retries = 2};
    struct cli_ranks rk = {.cli = cli};
    int optindex, rc, st, sig, ex;
    dc_error_t err;

    if ((rc = cli_parse (cli, &cmd_map, argc, argv, map_opt, &a, &optindex)) !=
        0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (!a.input || !a.output) {
        cli_usage_error (cli, "--input and --output are required");
        return EXIT_USAGE;
    }
    if (optindex >= argc) {
        cli_usage_error (cli, "no command to run: dcrun map [options] -- "
                              "CMD ARGS...");
        return EXIT_USAGE;
    }
    if (a.files && a.io == DC_IO_DIRECT) {
        cli_usage_error (cli, "--io direct: not with --files (the files "
                              "travel through this process)");
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    struct dc_map_opts o = {
        .input = a.input,
        .output = a.output,
        .report = a.report,
        .trace = a.trace,
        .files = a.files,
        .argc = argc - optindex,
        .argv = argv + optindex,
        .chunk_rows = (size_t)a.chunk_rows,
        .retries = (int)a.retries,
        .chunk_timeout = a.chunk_timeout,
        .heartbeat_timeout = a.heartbeat_timeout,
        .io_mode = a.io,
        .dry_run = cli->dry_run,
        .progress = cli_run_progress,
        .dry_run_data = cli_dry_run_data,
        .on_rank_error = cli_rank_error,
        .arg = &rk,
    };
    if ((st = dc_map_prepare (&o, &err)) != DC_STATUS_OK)
        return cli_status ("map", st, 0, &err);
    if (dc_comm_mpi_wanted ()) { /* every MPI process is one rank */
        st = dc_map_run (&o, NULL, &sig, &err);
        return cli_status ("map", st, sig, &err);
    }
    rk.progress = a.progress;
    if ((ex = cli_ranks_init (cli, &rk)) != EXIT_OK) {
        cli_ranks_fini (&rk);
        return ex;
    }
    st = dc_map_run (&o, &rk.job, &sig, &err);
    if (cli->dry_run && st == DC_STATUS_OK)
        printf ("io: %s%s\n", dc_io_mode_name (a.files ? DC_IO_RELAY : a.io),
                !a.files && a.io == DC_IO_AUTO
                    ? ": each rank copies its chunks' rows from the input "
                      "and CMD's rows into the output itself when it sees "
                      "the input and the output's folder at the same "
                      "paths, else they pass through the head (decided "
                      "when the ranks start)"
                    : "");
    if (st == DC_STATUS_DRIVER) {
        /* mpirun or srun runs `dcrun map OPTIONS -- CMD ARGS...` */
        ex = keep_command (cli, argc - optindex, argv + optindex) < 0
                 ? cli_error (EXIT_FAIL, "map: out of memory")
                 : cli_dist_exec_driver (&rk);
    } else
        ex = cli_status ("map", st, sig, &err);
    cli_ranks_fini (&rk);
    return ex;
}

const struct cli_command cmd_map = {
    .name = "map",
    .summary = "run any program over the rows of an .npy across the ranks: "
               "--input X.npy --output Y.npy -- CMD ARGS...",
    .usage =
        "--input X.npy --output Y.npy [--chunk-rows R] [--retries N] "
        "[--chunk-timeout S] [--report R.json] [--trace T.json] [--progress] "
        "[--io direct|relay|auto] "
        "[--files] -- CMD ARGS...\n"
        "\n"
        "Persistent mode (no {in} or {out} in ARGS): CMD starts once per "
        "rank and reads\n"
        "lines 'IN.npy OUT.npy' on stdin; for each it writes OUT.npy "
        "(the same number\n"
        "of rows) and prints 'done'.  Per-chunk mode: CMD runs once per "
        "chunk with {in}\n"
        "and {out} replaced by the paths and succeeds by exiting 0.  CMD "
        "sees\n"
        "DCRUN_MAP_ROWS and, in per-chunk mode, DCRUN_CHUNK, "
        "DCRUN_CHUNK_ROW0 and\nDCRUN_CHUNK_ROWS.  With --files, rows "
        "are files: requests are 'LIST_PATH OUT_DIR'.\n"
        "--io direct: each rank copies its chunks' rows from the input and "
        "CMD's rows\ninto the output itself (a shared filesystem, or ranks "
        "on this host); no row\npasses this process.",
    .opts = map_opts,
    .launch_opts = true,
    .run = map_run,
};
