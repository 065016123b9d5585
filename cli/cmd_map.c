/* cmd_map.c - dcrun map: any program over the rows of an .npy, across the
 * ranks, gathered into one output (lib/run/map.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dist.h"
#include "fields.h"
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
    struct dc_map_opts o; /* what lib/run/map.h takes */
    bool progress;
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

static const struct cli_field map_fields[] = {
    CLI_FIELD (OPT_INPUT, CLI_STR, struct map_args, o.input),
    CLI_FIELD (OPT_OUTPUT, CLI_STR, struct map_args, o.output),
    CLI_FIELD (OPT_CHUNK_ROWS, CLI_SIZE, struct map_args, o.chunk_rows, 1,
               1L << 26),
    CLI_FIELD (OPT_RETRIES, CLI_INT, struct map_args, o.retries, 0, 1000),
    CLI_FIELD (OPT_CHUNK_TIMEOUT, CLI_DOUBLE, struct map_args, o.chunk_timeout,
               0.001, 1e7),
    CLI_FIELD (OPT_TRACE, CLI_STR, struct map_args, o.trace),
    CLI_FIELD (OPT_REPORT, CLI_STR, struct map_args, o.report),
    CLI_FIELD (OPT_PROGRESS, CLI_FLAG, struct map_args, progress),
    CLI_FIELD (OPT_FILES, CLI_FLAG, struct map_args, o.files),
    CLI_FIELD (OPT_HEARTBEAT_TIMEOUT, CLI_DOUBLE, struct map_args,
               o.heartbeat_timeout, 0.1, 1e6),
    CLI_FIELD (OPT_IO, CLI_WORD, struct map_args, o.io_mode,
               .words = cli_io_words),
    {0},
};

static int map_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    return cli_field_set (cli, map_opts, map_fields, key, arg, ctx) ? -1 : 0;
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
    struct cli_ranks rk = {.cli = cli};
    struct map_args a = {.o = {.retries = 2,
                               .progress = cli_run_progress,
                               .dry_run_data = cli_dry_run_data,
                               .on_rank_error = cli_rank_error,
                               .arg = &rk}};
    bool mpi = dc_comm_mpi_wanted (); /* every MPI process is one rank */
    int optindex, rc, st, sig, ex;
    dc_error_t err;

    if ((rc = cli_parse (cli, &cmd_map, argc, argv, map_opt, &a, &optindex)) !=
        0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    a.o.argc = argc - optindex;
    a.o.argv = argv + optindex;
    a.o.dry_run = cli->dry_run;
    if (dc_map_check (&a.o, &err) < 0) {
        cli_usage_error (cli, "%s", err.text);
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if ((st = dc_map_prepare (&a.o, &err)) != DC_STATUS_OK)
        return cli_status ("map", st, 0, &err);
    rk.progress = a.progress;
    rk.job.sfd = -1;
    if (!mpi && (ex = cli_ranks_init (cli, &rk)) != EXIT_OK) {
        cli_ranks_fini (&rk);
        return ex;
    }
    st = dc_map_run (&a.o, mpi ? NULL : &rk.job, &sig, &err);
    if (cli->dry_run && st == DC_STATUS_OK && !mpi)
        printf ("io: %s\n", dc_map_io_plan (&a.o));
    if (st == DC_STATUS_DRIVER) {
        /* mpirun or srun runs `dcrun map OPTIONS -- CMD ARGS...` */
        ex = keep_command (cli, a.o.argc, a.o.argv) < 0
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
