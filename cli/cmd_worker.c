/* cmd_worker.c - dcrun worker (internal): what launchers start on each host
 *
 * The options into struct dc_worker, --port-check, the environment block
 * of --env-stdin and DCRUN_XENV_* (job.c); the rest is lib/run/worker.h's
 * (its header comment says what the worker does), printed here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "job.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/topo.h"
#include "lib/launch/agent.h"
#include "lib/launch/launch_io.h"
#include "lib/run/worker.h"
#include "lib/util/log.h"
#include "status.h"

struct worker_args {
    struct dc_worker w;
    long env_stdin;  /* bytes of environment on stdin, -1 none */
    long port_check; /* --port-check, -1 not given */
};

static int env_opt (struct cli *cli, const char *arg, void *base)
{
    dc_error_t err;

    if (dc_worker_add_env (&((struct worker_args *)base)->w, arg, &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

static int control_opt (struct cli *cli, const char *arg, void *base)
{
    struct dc_worker *w = &((struct worker_args *)base)->w;

    if ((w->control = dc_worker_control_parse (arg)) < 0)
        return cli_usage_error (cli, "--control '%s': expected stdin or none",
                                arg);
    return 0;
}

static int map_by_opt (struct cli *cli, const char *arg, void *base)
{
    dc_error_t err;

    if (dc_plan_parse_map_by (arg, &((struct worker_args *)base)->w.popts,
                              &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

#define F(kd, member, ...) CLI_AT (struct worker_args, kd, member, __VA_ARGS__)
static const struct cli_opt worker_opts[] = {
    {"cpus", 0, "LIST", "bind CMD to these CPUs", F (CLI_STR, w.cpus)},
    {"env", 'e', "NAME=VALUE", "set in CMD's environment", .fn = env_opt},
    {"control", 0, "stdin|none",
     "read control lines from stdin, EOF ends the job (default stdin; none "
     "under mpirun/srun)",
     .fn = control_opt},
    {"env-stdin", 0, "BYTES",
     "read BYTES of NUL-terminated NAME=VALUE entries from stdin first",
     F (CLI_LONG, env_stdin, 0, DC_ENV_BLOCK_MAX)},
    {"wdir", 0, "DIR", "run CMD in DIR", F (CLI_STR, w.wdir)},
    {"place", 0, NULL,
     "probe this host and bind CMD next to its GPU (sets DCRUN_CPUS)",
     F (CLI_FLAG, w.place)},
    {"place-no-bind", 0, NULL,
     "--place: set the GPUs only, bind nothing (dcrun --bind none)",
     F (CLI_FLAG, w.place_no_bind)},
    {"place-slots", 0, "N",
     "--place: the host's slots (default DCRUN_LOCAL_SIZE)",
     F (CLI_LONG, w.place_slots, 1, DC_MAX_SLOTS)},
    {"place-gpus", 0, "LIST",
     "--place: the host's gpus= list (default: the probed GPUs)",
     F (CLI_STR, w.place_gpus)},
    {"gpus-per-rank", 0, "N", "--place: GPUs each rank gets",
     F (CLI_LONG, w.gpus_per_rank, 1, DC_TOPO_MAX_GPUS)},
    {"map-by", 0, "ppr:N:package|ppr:N:numa",
     "--place: N ranks per package (NUMA node), in local-rank order",
     .fn = map_by_opt},
    {"place-gpu-bind", 0, "host|rank|none",
     "--place: CUDA_VISIBLE_DEVICES as dcrun --gpu-bind (default host)",
     F (CLI_WORD, w.gpu_bind, .words = cli_gpu_bind_words)},
    {"exec", 0, NULL, "CMD's stdin and stdout are the channel (dcrun serve)",
     F (CLI_FLAG, w.exec)},
    {"stdin", 0, NULL,
     "CMD's stdin is what the control channel's stdin frames carry "
     "(default /dev/null)",
     F (CLI_FLAG, w.stdin_data)},
    {"port-check", 0, "PORT",
     "print 'port PORT' when a TCP port PORT is free on this host, 'busy "
     "PORT' when not (0: 'port N' for a free one) and exit",
     F (CLI_LONG, port_check, 0, 65535)},
    {0},
};
#undef F

/* Parse, set up (lib/run/worker.h), run CMD; print what went wrong. */
static int worker_main (struct cli *cli, struct worker_args *a, int argc,
                        char **argv)
{
    int optindex, rc, status = 0;
    dc_error_t err = {{0}};

    if ((rc = cli_parse (cli, &cmd_worker, argc, argv, a, &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a->port_check >= 0) {
        int p = dc_worker_port_check ((int)a->port_check);
        if (p < 0)
            return cli_error (EXIT_LAUNCH, "worker: no free TCP port: %s",
                              strerror (errno));
        printf ("%s %d\n", p > 0 ? "port" : "busy",
                p > 0 ? p : (int)a->port_check);
        return fflush (stdout) == 0 ? EXIT_OK : EXIT_LAUNCH;
    }
    if (optindex >= argc)
        return cli_usage_error (cli, "no command given"), EXIT_USAGE;
    /* the environment that stays off command lines (job.c) */
    cli_env_unwrap ();
    if (a->env_stdin > 0 && (rc = cli_env_read (0, a->env_stdin)) != EXIT_OK)
        return rc;
    a->w.cmd = argv + optindex;
    rc = dc_worker_setup (&a->w, &err);
    if (cli->verbose && a->w.place_note.text[0])
        fprintf (stderr, "dcrun: %s\n", a->w.place_note.text);
    if (rc != DC_STATUS_OK)
        return cli_status (NULL, rc, 0, &err);
    rc = dc_worker_run (&a->w, &status, &err);
    if (rc != DC_AGENT_OK)
        return cli_error (rc == DC_AGENT_NOEXEC ? 127 : EXIT_LAUNCH, "%s",
                          err.text);
    return dc_worker_end (status);
}

static int worker_run (struct cli *cli, int argc, char **argv)
{
    struct worker_args a = {.w.control = -1, .env_stdin = -1, .port_check = -1};

    cli_log_init (cli); /* lib's errors; its notes at -v only */
    if (!cli->verbose)
        dc_log_set_level (DC_LOG_ERR);
    int rc = worker_main (cli, &a, argc, argv);
    dc_worker_fini (&a.w);
    return rc;
}

const struct cli_command cmd_worker = {
    .name = "worker",
    .summary = "internal: what launchers start on each host",
    .usage = "[--exec | --stdin] [--cpus LIST] [-e NAME=VALUE]... "
             "[--env-stdin BYTES] [--control stdin|none] [--wdir DIR] "
             "[--place ...] -- CMD [ARGS...] | --port-check PORT",
    .opts = worker_opts,
    .run = worker_run,
};
