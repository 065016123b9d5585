/* cmd_exec.c - dcrun exec: run CMD once per rank, tagged output, exit status
 *
 * Parse, build the ranks (cli/job.c), hand them to the engine of
 * lib/run/exec.h (the event loop, tagged lines, stdin, timeouts, the exit
 * status rules); print its messages, --dry-run and --json, pick the exit
 * status, and run it again for --max-restarts with the ranks built anew.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "job.h"
#include "status.h"
#include "lib/hosts/plan.h"
#include "lib/launch/launch.h"
#include "lib/run/exec.h"
#include "lib/run/exec_job.h"
#include "lib/run/exec_step.h"
#include "lib/util/clock.h"

/* exec's options: the engine's (lib/run/exec.h) as parsed, and the CLI's */
struct exec_args {
    struct dc_exec_opts o;
    const char *trace, *report; /* --trace, --report files, or NULL */
    long max_restarts;
    int interrupted; /* out: the signal that stopped the last run, 0 */
};

static const struct cli_word stdin_words[] = {{"rank0", DC_EXEC_STDIN_RANK0},
                                              {"all", DC_EXEC_STDIN_ALL},
                                              {"none", DC_EXEC_STDIN_NONE},
                                              {"0", DC_EXEC_STDIN_RANK0},
                                              {0}};
static const struct cli_word exit_words[] = {
    {"first", false}, {"any", true}, {0}};

/* exec's own options; the launch options (placement, binding, -x, ssh,
 * mpirun and srun settings) are the shared ones of cli.c */
#define F(kd, member, ...) CLI_AT (struct exec_args, kd, member, __VA_ARGS__)
static const struct cli_opt exec_opts[] = {
    {"no-tag", 0, NULL, "do not prefix output lines with RANK@HOST",
     F (CLI_FLAG, o.no_tag)},
    {"output-dir", 0, "DIR", "also write DIR/rank-N.out and DIR/rank-N.err",
     F (CLI_STR, o.output_dir)},
    {"kill-on-bad-exit", 0, NULL, "stop every rank when one fails (default)",
     F (CLI_FLAG, o.kill_on_bad_exit)},
    {"no-kill-on-bad-exit", 0, NULL, "let the other ranks run when one fails",
     F (CLI_CLEAR, o.kill_on_bad_exit)},
    {"timeout", 0, "S", "stop the job after S seconds (exit 1)",
     F (CLI_DOUBLE, o.timeout, 0.001, 1e9)},
    {"trace", 0, "FILE.json",
     "write a Chrome trace (Perfetto): each rank's run, failures marked",
     F (CLI_STR, trace)},
    {"report", 0, "FILE.json",
     "write a report: per rank host, exit status or signal, start, end",
     F (CLI_STR, report)},
    {"stdin", 0, "rank0|all|none",
     "where this stdin goes (default rank0, as mpirun and srun)",
     F (CLI_WORD, o.stdin_to, .words = stdin_words)},
    {"timestamp-output", 0, NULL,
     "prefix each output line with the time it arrived",
     F (CLI_FLAG, o.timestamps)},
    {"max-restarts", 0, "N",
     "when a rank fails, stop the job and start every rank again, up to N "
     "times (torchrun's --max-restarts; TORCHELASTIC_RESTART_COUNT)",
     F (CLI_LONG, max_restarts, 0, 1000)},
    {"exit-status", 0, "first|any",
     "exit with the first failing rank's status (first, default; 128+N for "
     "signal N) or 1 when any rank fails (any)",
     F (CLI_BWORD, o.exit_any, .words = exit_words)},
    {0},
};
#undef F

/* The engine (lib/run/exec.h) over the ranks: its message printed, the
 * exit status picked, --trace/--report written, --json printed. */
static int run_engine (struct cli *cli, struct exec_args *a,
                       struct dc_exec_opts *o)
{
    dc_error_t err;
    struct dc_exec *x = dc_exec_create (o, &err);

    if (!x)
        return cli_error (EXIT_FAIL, "%s", err.text);
    int st = dc_exec_run (x, &err);
    const struct dc_exec_result *res = dc_exec_result (x);
    int exitcode = st == DC_STATUS_FAIL && res->code > 0
                       ? res->code
                       : cli_status_code (st, res->interrupted);
    if (st != DC_STATUS_OK)
        cli_error (exitcode, "%s", err.text);
    a->interrupted = res->interrupted;
    if (res->ran && (a->trace || a->report) &&
        dc_exec_record (x, a->trace, a->report, &err) < 0) {
        cli_error (-1, "%s", err.text);
        if (exitcode == EXIT_OK)
            exitcode = EXIT_INPUT;
    }
    char *json = res->ran && cli->json
                     ? dc_exec_json (x, exitcode, dc_now () - res->start)
                     : NULL;
    if (json) {
        printf ("%s\n", json);
        fflush (stdout);
    }
    free (json);
    dc_exec_destroy (x);
    return exitcode;
}

/* One run of every rank: the ranks built (lib/run/exec_job.h: the rank
 * environment, the agents' words, MASTER_PORT checked), then the
 * --dry-run plan printed or the engine run. */
static int run_job (struct cli *cli, struct exec_args *a,
                    const struct cli_job *job, char **cmd)
{
    struct dc_job_args ja = cli_job_args (cli);
    struct dc_exec_job x;
    dc_error_t err;
    int exitcode, st = dc_exec_job_init (&x, &a->o, &ja, job, cmd, &err);

    if (st != DC_STATUS_OK)
        exitcode = cli_error (st == DC_STATUS_LAUNCH ? EXIT_LAUNCH : EXIT_FAIL,
                              "%s", err.text);
    else if (cli->dry_run) {
        char *text = dc_exec_dry_run (&x.o);
        exitcode =
            text ? EXIT_OK : cli_error (EXIT_FAIL, "exec: out of memory");
        if (text)
            fputs (text, stdout);
        free (text);
    } else
        exitcode = run_engine (cli, a, &x.o);
    dc_exec_job_fini (&x);
    return exitcode;
}

/* dcrun exec started by srun itself (a job step's task): be that one
 * rank (lib/run/exec_step.h); rank 0's task with MASTER_PORT in use on its
 * host stops the whole step. */
static int exec_as_step_task (const struct cli_launch *a, char **cmd)
{
    char host[256];
    int mp;

    dc_exec_step_master (a->master_port);
    if ((mp = dc_exec_step_port_busy (host, sizeof (host))) > 0) {
        cli_error (EXIT_LAUNCH,
                   "exec: %s: MASTER_PORT %d is in use there (rank 0's "
                   "host)\nhint: give a free one with --master-port, or "
                   "leave MASTER_PORT unset",
                   host, mp);
        dc_exec_step_cancel ();
        return EXIT_LAUNCH;
    }
    char **av = dc_exec_step_argv (cli_self_path (), a->wdir, a->exports,
                                   a->nexports, cmd);
    if (!av)
        return cli_error (EXIT_FAIL, "exec: out of memory");
    execv (av[0], av);
    int e = errno;
    free (av);
    return cli_error (EXIT_LAUNCH, "exec: %s: %s", cli_self_path (),
                      strerror (e));
}

static int exec_run (struct cli *cli, int argc, char **argv)
{
    struct exec_args a = {
        .o = {.kill_on_bad_exit = true, .out_fd = 1, .err_fd = 2}};
    struct cli_job job = {0};
    int optindex, rc, exitcode = EXIT_OK;

    if ((rc = cli_parse (cli, &cmd_exec, argc, argv, &a, &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex >= argc) {
        cli_usage_error (cli, "no command given: dcrun exec [OPTIONS] -- CMD "
                              "ARGS...");
        return EXIT_USAGE;
    }
    a.o.kill_grace = cli->launch.kill_grace > 0 ? cli->launch.kill_grace : 3;
    cli_log_init (cli);
    if (getenv ("SLURM_PROCID") && getenv ("SLURM_STEP_ID") &&
        (!cli->launcher || !strcmp (cli->launcher, "auto") ||
         !strcmp (cli->launcher, "slurm")) &&
        !cli->hostfile && !cli->hosts && !cli->dry_run)
        return exec_as_step_task (&cli->launch, argv + optindex);
    /* host list, rank map placed on this host's topology, launcher */
    if ((exitcode = cli_job_init (cli, &job)) != EXIT_OK)
        return exitcode;
    job.max_restarts = (int)a.max_restarts;
    /* --wdir by its full name (not for ssh: there it is relative to the
     * login folder), so that a restart, run from there, finds it again */
    char wabs[PATH_MAX];
    if (cli->launch.wdir && strcmp (job.launcher, "ssh") &&
        realpath (cli->launch.wdir, wabs))
        cli->launch.wdir = wabs;
    for (;;) {
        a.interrupted = 0;
        exitcode = run_job (cli, &a, &job, argv + optindex);
        if (exitcode == EXIT_OK || a.interrupted || cli->dry_run ||
            job.restart_count >= a.max_restarts)
            break;
        /* a rank failed: every rank again, as torchrun does */
        job.restart_count++;
        if (!cli->quiet)
            fprintf (stderr,
                     "dcrun: exec: restarting every rank (restart %d of "
                     "%ld)\n",
                     job.restart_count, a.max_restarts);
    }
    if (a.max_restarts > 0 && !cli->quiet && !a.interrupted && !cli->dry_run)
        fprintf (stderr, "dcrun: exec: %d of %ld restarts used\n",
                 job.restart_count, a.max_restarts);
    cli_job_fini (&job);
    return exitcode;
}

const struct cli_command cmd_exec = {
    .name = "exec",
    .summary = "run CMD once per rank with rank environment, tagged output "
               "and exit status",
    .usage = "[-f FILE | -H LIST] [-n N] [-L LAUNCHER] [OPTIONS] -- CMD "
             "[ARGS...]",
    .opts = exec_opts,
    .launch_opts = true,
    .run = exec_run,
};
