/* cmd_probe.c - dcrun probe: GPUs, NUMA nodes, cores and memory of a host */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"
#include "lib/hosts/topo_text.h"
#include "remote.h"

struct probe_args {
    const char *topology;
};

static const struct cli_opt probe_opts[] = {
    {"topology", 0, "FILE.xml",
     "read a saved hwloc topology instead of probing this host",
     CLI_AT (struct probe_args, CLI_STR, topology)},
    {0},
};

/* every host probed at once (this host in-process unless -L ssh): the
 * listing on stdout */
static int probe_list (struct cli *cli, const struct dc_hosts *hosts,
                       struct remote_result *res, struct dc_topo_entry *e)
{
    bool viassh = cli->launcher && !strcmp (cli->launcher, "ssh");
    size_t n = hosts->count;
    int bad = 0;
    char *s;

    remote_probe_all (hosts, &cli->launch.lo, !viassh, res);
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct dc_topo_entry){hosts->v[i].name, res[i].topo,
                                      res[i].reason};
        bad += !res[i].topo;
    }
    if (!(s = cli->json ? dc_topo_list_json (e, n) : dc_topo_list_text (e, n)))
        return cli_error (EXIT_FAIL, "probe: out of memory");
    printf (cli->json ? "%s\n" : "%s", s);
    free (s);
    if (bad)
        return cli_error (EXIT_LAUNCH, "probe: %d of %zu host%s not probed",
                          bad, n, n == 1 ? "" : "s");
    return EXIT_OK;
}

/* -f / -H: every host at once, remote ones through the ssh launcher
 * (`dcrun probe --json` there), this host in-process; one {"hosts": [...]}
 * with an entry per host, {"host": NAME, "error": REASON} for those that
 * could not be probed (exit 4 then). */
static int probe_hosts (struct cli *cli)
{
    int exitcode = EXIT_OK;
    struct dc_hosts *hosts = cli_resolve_hosts (cli, 0, &exitcode);
    struct remote_result *res;
    struct dc_topo_entry *e;

    if (!hosts)
        return exitcode;
    res = calloc (hosts->count ? hosts->count : 1, sizeof (*res));
    e = calloc (hosts->count ? hosts->count : 1, sizeof (*e));
    if (res && e)
        exitcode = probe_list (cli, hosts, res, e);
    else
        exitcode = cli_error (EXIT_FAIL, "probe: out of memory");
    free (e);
    remote_results_free (res, hosts->count);
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
