/* cmd_probe.c - dcrun probe: GPUs, NUMA nodes, cores and memory of a host */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"
#include "lib/hosts/topo_text.h"
#include "lib/run/probe_list.h"

struct probe_args {
    const char *topology;
};

static const struct cli_opt probe_opts[] = {
    {"topology", 0, "FILE.xml",
     "read a saved hwloc topology instead of probing this host",
     CLI_AT (struct probe_args, CLI_STR, topology)},
    {0},
};

/* -f / -H: every host at once, remote ones through the ssh launcher
 * (`dcrun probe --json` there), this host in-process unless -L ssh
 * (lib/run/probe_list.h); exit 4 when one could not be probed. */
static int probe_hosts (struct cli *cli)
{
    int exitcode = EXIT_OK, bad;
    struct dc_hosts *hosts = cli_resolve_hosts (cli, 0, &exitcode);
    bool viassh = cli->launcher && !strcmp (cli->launcher, "ssh");
    char *s;

    if (!hosts)
        return exitcode;
    size_t n = hosts->count;
    if (!(s = dc_probe_list (hosts, &cli->launch.lo, !viassh, cli->json, &bad)))
        exitcode = cli_error (EXIT_FAIL, "probe: out of memory");
    else {
        printf (cli->json ? "%s\n" : "%s", s);
        if (bad)
            exitcode =
                cli_error (EXIT_LAUNCH, "probe: %d of %zu host%s not probed",
                           bad, n, n == 1 ? "" : "s");
    }
    free (s);
    dc_hosts_destroy (hosts);
    return exitcode;
}

static int probe_run (struct cli *cli, int argc, char **argv)
{
    struct probe_args a = {0};
    struct dc_topo *topo;
    dc_error_t err;
    int rc;

    if ((rc = cli_parse_opts (cli, &cmd_probe, argc, argv, &a)) >= 0)
        return rc;
    cli_log_init (cli);
    if ((cli->hostfile || cli->hosts) && !a.topology)
        return probe_hosts (cli);
    if (!(topo = dc_probe_host (a.topology, &err)))
        return cli_error (EXIT_INPUT, "%s", err.text);
    char *s =
        cli->json ? dc_topo_to_json (topo, 0) : dc_topo_to_text (topo, NULL);
    dc_topo_destroy (topo);
    if (!s)
        return cli_error (EXIT_FAIL, "probe: out of memory");
    printf (cli->json ? "{\"hosts\":[%s]}\n" : "%s", s);
    free (s);
    return EXIT_OK;
}

const struct cli_command cmd_probe = {
    .name = "probe",
    .summary = "GPUs (model, memory, PCI bus id, NUMA node, local CPUs), "
               "NUMA nodes, cores, memory",
    .usage = "[-f FILE | -H LIST] [--topology FILE.xml] [--json] "
             "[ssh options]",
    .opts = probe_opts,
    .launch_opts = true,
    .run = probe_run,
};
