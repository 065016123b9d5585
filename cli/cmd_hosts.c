/* cmd_hosts.c - dcrun hosts: expand the host list into ranks */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "gpu/probe.h"
#include "lib/hosts/plan_text.h"
#include "lib/run/hostmap.h"
#include "lib/run/optval.h"
#include "status.h"

struct hosts_args {
    struct dc_plan_opts plan;
    const char *topology; /* --topology FILE.xml */
};

static int map_by_opt (struct cli *cli, const char *arg, void *base)
{
    return cli_parse_map_by (cli, arg,
                             &((struct hosts_args *)base)->plan.map_by);
}

#define F(kd, member, ...) CLI_AT (struct hosts_args, kd, member, __VA_ARGS__)
static const struct cli_opt hosts_opts[] = {
    {"map-by", 0, "slot|node",
     "fill each host's slots first (slot, default) or go round-robin (node)",
     .fn = map_by_opt},
    {"oversubscribe", 0, NULL, "allow more ranks than slots",
     F (CLI_FLAG, plan.oversubscribe)},
    {"topology", 0, "FILE.xml",
     "place ranks as if every host had this saved hwloc topology",
     F (CLI_STR, topology)},
    {0},
};
#undef F

/* -f and -H both given: a usage error */
static bool both_lists (const struct cli *cli)
{
    if (!cli->hostfile || !cli->hosts)
        return false;
    cli_usage_error (cli, "-f and -H both given: use one");
    return true;
}

struct dc_hosts *cli_resolve_hosts (const struct cli *cli, int local_gpus,
                                    int *exitp)
{
    struct dc_resolve_opts ro = {.hostfile = cli->hostfile,
                                 .hosts = cli->hosts,
                                 .local_gpus = local_gpus};
    struct dc_hosts *hosts = NULL;
    dc_error_t err;
    int status;

    if (both_lists (cli))
        *exitp = EXIT_USAGE;
    else if (!(hosts =
                   dc_hostmap_hosts (&ro, cli->launch.exclude, &status, &err)))
        *exitp = cli_status (NULL, status, 0, &err);
    return hosts;
}

struct dc_plan *cli_make_plan (const struct cli *cli,
                               const struct dc_hosts *hosts,
                               const struct dc_plan_opts *o, int *exitp)
{
    struct dc_plan_opts po = *o;
    dc_error_t err;
    struct dc_plan *plan;

    po.np = cli->np;
    if (!(plan = dc_plan_create (hosts, &po, &err))) {
        cli_error (EXIT_INPUT, "%s: %s", cli->command, err.text);
        *exitp = EXIT_INPUT;
    }
    return plan;
}

int cli_parse_map_by (const struct cli *cli, const char *arg,
                      enum dc_map_by *map_by)
{
    dc_error_t err;

    if (dc_optval_map_by (arg, map_by, &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

static int hosts_run (struct cli *cli, int argc, char **argv)
{
    struct hosts_args a = {0};
    struct dc_hostmap m = {0};
    struct dc_topo *topo = NULL;
    dc_error_t err;
    int rc, exitcode = EXIT_OK;
    char *s = NULL;

    if ((rc = cli_parse_opts (cli, &cmd_hosts, argc, argv, &a)) >= 0)
        return rc;
    cli_log_init (cli);
    if (a.topology && !(topo = dc_probe_host (a.topology, &err)))
        return cli_error (EXIT_INPUT, "%s", err.text);
    struct dc_hostmap_opts o = {
        .resolve = {.hostfile = cli->hostfile, .hosts = cli->hosts},
        .exclude = cli->launch.exclude,
        .plan = a.plan,
        .topo = topo,
        .subject = cli->command,
    };
    o.plan.np = cli->np;
    if (both_lists (cli))
        exitcode = EXIT_USAGE;
    else if ((rc = dc_hostmap_create (&m, &o, &err)) != DC_STATUS_OK)
        exitcode = cli_status (NULL, rc, 0, &err);
    else if (!(s = cli->json ? dc_plan_to_json (m.plan)
                             : dc_plan_to_text (m.plan)))
        exitcode = cli_error (EXIT_FAIL, "hosts: out of memory");
    else
        printf (cli->json ? "%s\n" : "%s", s);
    free (s);
    dc_hostmap_destroy (&m);
    dc_topo_destroy (topo);
    return exitcode;
}

const struct cli_command cmd_hosts = {
    .name = "hosts",
    .summary = "expand the host list into ranks: rank, host, local rank, "
               "GPUs, CPU set",
    .usage = "[-f FILE | -H LIST] [-n N] [--map-by slot|node] "
             "[--oversubscribe] [--topology FILE.xml] [--json]",
    .opts = hosts_opts,
    .run = hosts_run,
};
