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

struct map_args {
    struct dc_map_opts o; /* what lib/run/map.h takes */
    bool progress;
};

#define F(kd, member, ...) CLI_AT (struct map_args, kd, member, __VA_ARGS__)
static const struct cli_opt map_opts[] = {
    {"input", 0, "X.npy",
     "input rows: an .npy of any plain dtype and shape (rows first)",
     F (CLI_STR, o.input)},
    {"output", 0, "Y.npy",
     "the chunks' outputs in row order, written when complete",
     F (CLI_STR, o.output)},
    {"chunk-rows", 0, "R", "rows per chunk (default: about 4 chunks per rank)",
     F (CLI_SIZE, o.chunk_rows, 1, 1L << 26)},
    {"retries", 0, "N",
     "times a failed chunk is retried on another rank (default 2)",
     F (CLI_INT, o.retries, 0, 1000)},
    {"chunk-timeout", 0, "S",
     "a chunk running longer than S seconds: CMD killed, the rank lost "
     "(default: none)",
     F (CLI_DOUBLE, o.chunk_timeout, 0.001, 1e7)},
    {"report", 0, "R.json",
     "write a run report (phases, ranks, chunks, output sha256)",
     F (CLI_STR, o.report)},
    {"trace", 0, "T.json",
     "write a Chrome trace (Perfetto): launch, load, each chunk on its "
     "rank, lost ranks, retries, the commit",
     F (CLI_STR, o.trace)},
    {"progress", 0, NULL,
     "progress line on stderr even when it is not a terminal",
     F (CLI_FLAG, progress)},
    {"heartbeat-timeout", 0, "S",
     "a rank silent for S seconds is lost (default 30)",
     F (CLI_DOUBLE, o.heartbeat_timeout, 0.1, 1e6)},
    {"files", 0, NULL,
     "--input lists files (one path a line) or is a folder; chunks are "
     "groups of files; CMD gets 'LIST OUT_DIR' and writes files into "
     "OUT_DIR; --output is a new folder of them all",
     F (CLI_FLAG, o.files)},
    {"io", 0, "direct|relay|auto",
     "data path: direct (each rank reads its chunks' rows from the input "
     "and writes CMD's rows into the output itself; a rank that cannot is "
     "an error), relay (rows through this process), auto (default: direct "
     "for each rank that sees the same files, relay for the others)",
     F (CLI_WORD, o.io_mode, .words = cli_io_words)},
    {0},
};
#undef F

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

    if ((rc = cli_parse (cli, &cmd_map, argc, argv, &a, &optindex)) != 0)
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
