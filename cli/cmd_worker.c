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

enum {
    OPT_CPUS = 0x100,
    OPT_CONTROL,
    OPT_EXEC,
    OPT_ENV_STDIN,
    OPT_WDIR,
    OPT_PLACE,
    OPT_PLACE_SLOTS,
    OPT_PLACE_NO_BIND,
    OPT_PLACE_GPUS,
    OPT_GPUS_PER_RANK,
    OPT_MAP_BY,
    OPT_PLACE_GPU_BIND,
    OPT_STDIN,
    OPT_PORT_CHECK,
};

static const struct cli_opt worker_opts[] = {
    {"cpus", required_argument, OPT_CPUS, "LIST", "bind CMD to these CPUs"},
    {"env", required_argument, 'e', "NAME=VALUE", "set in CMD's environment"},
    {"control", required_argument, OPT_CONTROL, "stdin|none",
     "read control lines from stdin, EOF ends the job (default stdin; none "
     "under mpirun/srun)"},
    {"env-stdin", required_argument, OPT_ENV_STDIN, "BYTES",
     "read BYTES of NUL-terminated NAME=VALUE entries from stdin first"},
    {"wdir", required_argument, OPT_WDIR, "DIR", "run CMD in DIR"},
    {"place", no_argument, OPT_PLACE, NULL,
     "probe this host and bind CMD next to its GPU (sets DCRUN_CPUS)"},
    {"place-no-bind", no_argument, OPT_PLACE_NO_BIND, NULL,
     "--place: set the GPUs only, bind nothing (dcrun --bind none)"},
    {"place-slots", required_argument, OPT_PLACE_SLOTS, "N",
     "--place: the host's slots (default DCRUN_LOCAL_SIZE)"},
    {"place-gpus", required_argument, OPT_PLACE_GPUS, "LIST",
     "--place: the host's gpus= list (default: the probed GPUs)"},
    {"gpus-per-rank", required_argument, OPT_GPUS_PER_RANK, "N",
     "--place: GPUs each rank gets"},
    {"map-by", required_argument, OPT_MAP_BY, "ppr:N:package|ppr:N:numa",
     "--place: N ranks per package (NUMA node), in local-rank order"},
    {"place-gpu-bind", required_argument, OPT_PLACE_GPU_BIND, "host|rank|none",
     "--place: CUDA_VISIBLE_DEVICES as dcrun --gpu-bind (default host)"},
    {"exec", no_argument, OPT_EXEC, NULL,
     "CMD's stdin and stdout are the channel (dcrun serve)"},
    {"stdin", no_argument, OPT_STDIN, NULL,
     "CMD's stdin is what the control channel's stdin frames carry "
     "(default /dev/null)"},
    {"port-check", required_argument, OPT_PORT_CHECK, "PORT",
     "print 'port PORT' when a TCP port PORT is free on this host, 'busy "
     "PORT' when not (0: 'port N' for a free one) and exit"},
    {0},
};

struct worker_args {
    struct dc_worker w;
    long env_stdin;  /* bytes of environment on stdin, -1 none */
    long port_check; /* --port-check, -1 not given */
};

static int worker_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct worker_args *wa = ctx;
    struct dc_worker *a = &wa->w;
    dc_error_t err;

    switch (key) {
    case OPT_CPUS:
        a->cpus = arg;
        return 0;
    case OPT_EXEC:
        a->exec = true;
        return 0;
    case OPT_STDIN:
        a->stdin_data = true;
        return 0;
    case OPT_PORT_CHECK:
        return cli_parse_long (cli, "--port-check", arg, 0, 65535,
                               &wa->port_check);
    case OPT_WDIR:
        a->wdir = arg;
        return 0;
    case OPT_PLACE:
        a->place = true;
        return 0;
    case OPT_PLACE_NO_BIND:
        a->place_no_bind = true;
        return 0;
    case OPT_PLACE_SLOTS:
        return cli_parse_long (cli, "--place-slots", arg, 1, DC_MAX_SLOTS,
                               &a->place_slots);
    case OPT_PLACE_GPUS:
        a->place_gpus = arg;
        return 0;
    case OPT_MAP_BY:
        if (dc_plan_parse_map_by (arg, &a->popts, &err) < 0)
            return cli_usage_error (cli, "%s", err.text);
        return 0;
    case OPT_PLACE_GPU_BIND:
        if (dc_rankenv_gpu_bind_parse (arg, &a->gpu_bind) < 0)
            return cli_usage_error (cli,
                                    "--place-gpu-bind '%s': expected host, "
                                    "rank or none",
                                    arg);
        return 0;
    case OPT_GPUS_PER_RANK:
        return cli_parse_long (cli, "--gpus-per-rank", arg, 1, DC_TOPO_MAX_GPUS,
                               &a->gpus_per_rank);
    case OPT_ENV_STDIN:
        return cli_parse_long (cli, "--env-stdin", arg, 0, DC_ENV_BLOCK_MAX,
                               &wa->env_stdin);
    case 'e':
        if (dc_worker_add_env (a, arg, &err) < 0)
            return cli_usage_error (cli, "%s", err.text);
        return 0;
    case OPT_CONTROL:
        if ((a->control = dc_worker_control_parse (arg)) < 0)
            return cli_usage_error (
                cli, "--control '%s': expected stdin or none", arg);
        return 0;
    }
    return -1;
}

/* Parse, set up (lib/run/worker.h), run CMD; print what went wrong. */
static int worker_main (struct cli *cli, struct worker_args *a, int argc,
                        char **argv)
{
    int optindex, rc, status = 0;
    dc_error_t err = {{0}};

    if ((rc = cli_parse (cli, &cmd_worker, argc, argv, worker_opt, a,
                         &optindex)) != 0)
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
