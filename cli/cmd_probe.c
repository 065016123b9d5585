/* cmd_probe.c - dcrun probe: GPUs, NUMA nodes, cores and memory of a host */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"
#include "remote.h"
#include <cjson/cJSON.h>

enum {
    OPT_TOPOLOGY = 0x100,
};

struct probe_args {
    const char *topology;
};

static const struct cli_opt probe_opts[] = {
    {"topology", required_argument, OPT_TOPOLOGY, "FILE.xml",
     "read a saved hwloc topology instead of probing this host"},
    {0},
};

static int probe_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct probe_args *a = ctx;

    (void)cli;
    if (key == OPT_TOPOLOGY) {
        a->topology = arg;
        return 0;
    }
    return -1;
}

static const char *human_bytes (long long b, char *buf, size_t len)
{
    if (b < 0)
        snprintf (buf, len, "-");
    else if (b >= (1LL << 30))
        snprintf (buf, len, "%.1f GiB", (double)b / (1 << 30));
    else
        snprintf (buf, len, "%.1f MiB", (double)b / (1 << 20));
    return buf;
}

static const char *plural (int n)
{
    return n == 1 ? "" : "s";
}

static void print_table (const struct dc_topo *t)
{
    char mem[32];
    bool cuda = false;

    for (int i = 0; i < t->ngpus; i++)
        if (t->gpus[i].cuda_index >= 0)
            cuda = true;
    if (t->ngpus == 0) {
        printf ("%s: no GPU\n", t->host);
    } else {
        printf ("%-4s %-28s %-10s %-13s %-5s %sCPUS\n", "GPU", "MODEL",
                "MEMORY", "PCI BUS ID", "NUMA", cuda ? "CC    SMS  " : "");
        for (int i = 0; i < t->ngpus; i++) {
            const struct dc_topo_gpu *g = &t->gpus[i];
            char numa[16] = "-", cc[16] = "-";
            if (g->numa_node >= 0)
                snprintf (numa, sizeof (numa), "%d", g->numa_node);
            printf ("%-4d %-28s %-10s %-13s %-5s ", g->index, g->model,
                    human_bytes (g->memory_bytes, mem, sizeof (mem)),
                    g->pci_bus_id[0] ? g->pci_bus_id : "-", numa);
            if (cuda) {
                if (g->cuda_index >= 0)
                    snprintf (cc, sizeof (cc), "%d.%d", g->cc_major,
                              g->cc_minor);
                printf ("%-5s %-4d ", cc, g->multiprocessors);
            }
            printf ("%s", g->cpus ? g->cpus : "-");
            printf ("\n");
        }
    }
    printf ("%s: %d package%s, %d NUMA node%s, %d core%s, %d PU%s (cpus %s), "
            "%s memory\n",
            t->host, t->packages, plural (t->packages), t->numa_nodes,
            plural (t->numa_nodes), t->cores, plural (t->cores), t->pus,
            plural (t->pus), t->cpus ? t->cpus : "-",
            human_bytes (t->memory_bytes, mem, sizeof (mem)));
    for (int i = 0; t->numa && i < t->numa_nodes; i++)
        printf ("  numa %d: %s, cpus %s\n", t->numa[i].os_index,
                human_bytes (t->numa[i].memory_bytes, mem, sizeof (mem)),
                t->numa[i].cpus ? t->numa[i].cpus : "-");
    if (t->cuda_visible_devices)
        printf ("  CUDA_VISIBLE_DEVICES=%s\n", t->cuda_visible_devices);
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
    bool local = cli->launcher && !strcmp (cli->launcher, "local");
    bool viassh = cli->launcher && !strcmp (cli->launcher, "ssh");
    int bad = 0;

    if (!hosts)
        return exitcode;
    if (!(res = calloc (hosts->count ? hosts->count : 1, sizeof (*res)))) {
        dc_hosts_destroy (hosts);
        return cli_error (EXIT_FAIL, "probe: out of memory");
    }
    remote_probe_all (hosts, &cli->launch.lo, local || !viassh, res);
    if (cli->json) {
        cJSON *o = cJSON_CreateObject ();
        cJSON *arr = cJSON_AddArrayToObject (o, "hosts");
        for (size_t i = 0; i < hosts->count; i++) {
            cJSON *h = NULL;
            char *text = res[i].topo ? dc_topo_to_json (res[i].topo, 0) : NULL;
            if (text && (h = cJSON_Parse (text)))
                cJSON_ReplaceItemInObjectCaseSensitive (
                    h, "host", cJSON_CreateString (hosts->v[i].name));
            if (!h) {
                h = cJSON_CreateObject ();
                cJSON_AddStringToObject (h, "host", hosts->v[i].name);
                char reason[sizeof (res[i].reason)];
                snprintf (reason, sizeof (reason), "%s", res[i].reason);
                reason[strcspn (reason, "\n")] = '\0';
                cJSON_AddStringToObject (h, "error", reason);
                bad++;
            }
            free (text);
            cJSON_AddItemToArray (arr, h);
        }
        char *s = cJSON_PrintUnformatted (o);
        if (s)
            printf ("%s\n", s);
        free (s);
        cJSON_Delete (o);
    } else {
        for (size_t i = 0; i < hosts->count; i++) {
            if (i)
                printf ("\n");
            if (res[i].topo) {
                free (res[i].topo->host);
                res[i].topo->host = strdup (hosts->v[i].name);
                print_table (res[i].topo);
            } else {
                printf ("%s: not probed: %s\n", hosts->v[i].name,
                        res[i].reason);
                bad++;
            }
        }
    }
    if (bad)
        exitcode = cli_error (EXIT_LAUNCH,
                              "probe: %d of %zu host%s not "
                              "probed",
                              bad, hosts->count, hosts->count == 1 ? "" : "s");
    remote_results_free (res, hosts->count);
    dc_hosts_destroy (hosts);
    return exitcode;
}

static int probe_run (struct cli *cli, int argc, char **argv)
{
    struct probe_args a = {0};
    struct dc_topo *topo;
    dc_error_t err;
    int optindex, rc;

    if ((rc = cli_parse (cli, &cmd_probe, argc, argv, probe_opt, &a,
                         &optindex)) != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if ((cli->hostfile || cli->hosts) && !a.topology)
        return probe_hosts (cli);
    if (!(topo = dc_probe_host (a.topology, &err)))
        return cli_error (EXIT_INPUT, "%s", err.text);
    if (cli->json) {
        char *s = dc_topo_to_json (topo, 0);
        if (!s) {
            dc_topo_destroy (topo);
            return cli_error (EXIT_FAIL, "probe: out of memory");
        }
        printf ("{\"hosts\":[%s]}\n", s);
        free (s);
    } else {
        print_table (topo);
    }
    dc_topo_destroy (topo);
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
