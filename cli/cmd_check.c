/* cmd_check.c - dcrun check: pre-flight every host in bounded time
 *
 * Every host at once (cli/remote.c): reachable, logged in, host key known,
 * `dcrun --version` there equal to this one, `dcrun probe --json` there
 * read, and its GPUs against the host's slots and gpus=.  One row per host,
 * OK or the reason; --json for one object.  Exit 0 when every host is fine,
 * 4 otherwise.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "lib/hosts/hosts.h"
#include "lib/launch/launch.h"
#include "remote.h"

/* Judge a host whose probe came back: fills r->reason, returns ok. */
static bool judge (struct remote_result *r)
{
    const struct dc_host *h = r->host;
    const struct dc_topo *t = r->topo;

    if (r->stage != REMOTE_OK)
        return false;
    if (strcmp (r->version, DCRUN_VERSION)) {
        snprintf (r->reason, sizeof (r->reason),
                  "dcrun %s there, %s here\nhint: install the same version "
                  "on every host",
                  r->version, DCRUN_VERSION);
        return false;
    }
    for (int i = 0; i < h->ngpus; i++)
        if (dc_topo_find_gpu (t, h->gpus[i]) < 0) {
            snprintf (r->reason, sizeof (r->reason),
                      "gpus= names GPU %d but the host has %d GPU%s",
                      h->gpus[i], t->ngpus, t->ngpus == 1 ? "" : "s");
            return false;
        }
    if (!h->gpus && t->ngpus > 0 && h->slots > t->ngpus) {
        snprintf (r->reason, sizeof (r->reason),
                  "%d slots but %d GPU%s: ranks would share GPUs", h->slots,
                  t->ngpus, t->ngpus == 1 ? "" : "s");
        return false;
    }
    snprintf (r->reason, sizeof (r->reason), "dcrun %s, %d GPU%s, %d cores",
              r->version, t->ngpus, t->ngpus == 1 ? "" : "s", t->cores);
    return true;
}

static const char *stage_name (enum remote_stage s)
{
    switch (s) {
    case REMOTE_OK:
        return "ok";
    case REMOTE_CONNECT:
        return "connect";
    case REMOTE_NO_DCRUN:
        return "dcrun";
    case REMOTE_FAILED:
        return "failed";
    case REMOTE_TIMEOUT:
        return "timeout";
    }
    return "?";
}

/* -L local: probe here; auto: here when every host is this host */
static bool probe_here (const struct cli *cli, const struct dc_hosts *hosts)
{
    const char *ln = cli->launcher;

    if (ln && !strcmp (ln, "local"))
        return true;
    if (ln && strcmp (ln, "auto"))
        return false;
    for (size_t i = 0; i < hosts->count; i++)
        if (!dc_launch_is_local_host (hosts->v[i].name))
            return false;
    return true;
}

static void print_json (const struct dc_hosts *hosts,
                        const struct remote_result *res, const bool *ok,
                        int bad)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON_AddBoolToObject (o, "ok", bad == 0);
    cJSON *arr = cJSON_AddArrayToObject (o, "hosts");
    for (size_t i = 0; i < hosts->count; i++) {
        const struct remote_result *r = &res[i];
        cJSON *j = cJSON_CreateObject ();
        cJSON_AddStringToObject (j, "host", r->host->name);
        cJSON_AddBoolToObject (j, "ok", ok[i]);
        cJSON_AddStringToObject (j, "stage",
                                 ok[i] ? "ok"
                                 : r->stage == REMOTE_OK
                                     ? "mismatch"
                                     : stage_name (r->stage));
        /* the reason without its hint line */
        char reason[sizeof (r->reason)];
        snprintf (reason, sizeof (reason), "%s", r->reason);
        reason[strcspn (reason, "\n")] = '\0';
        cJSON_AddStringToObject (j, "reason", reason);
        if (r->version[0])
            cJSON_AddStringToObject (j, "version", r->version);
        else
            cJSON_AddNullToObject (j, "version");
        cJSON_AddNumberToObject (j, "slots", r->host->slots);
        if (r->topo)
            cJSON_AddNumberToObject (j, "gpus", r->topo->ngpus);
        else
            cJSON_AddNullToObject (j, "gpus");
        cJSON_AddBoolToObject (j, "local", r->local);
        cJSON_AddItemToArray (arr, j);
    }
    char *text = cJSON_PrintUnformatted (o);
    if (text)
        printf ("%s\n", text);
    free (text);
    cJSON_Delete (o);
}

static void print_table (const struct dc_hosts *hosts,
                         const struct remote_result *res, const bool *ok)
{
    printf ("%-24s %-6s %s\n", "HOST", "STATUS", "DETAIL");
    for (size_t i = 0; i < hosts->count; i++) {
        const struct remote_result *r = &res[i];
        char reason[sizeof (r->reason)];
        snprintf (reason, sizeof (reason), "%s", r->reason);
        char *hint = strchr (reason, '\n');
        if (hint)
            *hint++ = '\0';
        printf ("%-24s %-6s %s\n", r->host->name, ok[i] ? "OK" : "BAD", reason);
        if (hint)
            printf ("%-24s %-6s %s\n", "", "", hint);
    }
}

static int check_run (struct cli *cli, int argc, char **argv)
{
    struct dc_hosts *hosts = NULL;
    struct remote_result *res = NULL;
    int optindex, rc, exitcode = EXIT_OK;

    if ((rc = cli_parse (cli, &cmd_check, argc, argv, NULL, NULL, &optindex)) !=
        0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    cli_log_init (cli);
    if (!(hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    if (!(res = calloc (hosts->count ? hosts->count : 1, sizeof (*res)))) {
        dc_hosts_destroy (hosts);
        return cli_error (EXIT_FAIL, "check: out of memory");
    }
    remote_probe_all (hosts, &cli->launch.lo, probe_here (cli, hosts), res);
    bool *ok = calloc (hosts->count ? hosts->count : 1, sizeof (bool));
    int bad = 0;
    for (size_t i = 0; ok && i < hosts->count; i++)
        if (!(ok[i] = judge (&res[i])))
            bad++;
    if (!ok) {
        exitcode = cli_error (EXIT_FAIL, "check: out of memory");
        goto out;
    }
    if (cli->json)
        print_json (hosts, res, ok, bad);
    else
        print_table (hosts, res, ok);
    if (bad)
        exitcode = cli_error (EXIT_LAUNCH,
                              "check: %d of %zu host%s not "
                              "ready",
                              bad, hosts->count, hosts->count == 1 ? "" : "s");
out:
    free (ok);
    remote_results_free (res, hosts->count);
    dc_hosts_destroy (hosts);
    return exitcode;
}

const struct cli_command cmd_check = {
    .name = "check",
    .summary = "pre-flight every host: reachable, dcrun version, GPUs vs "
               "slots",
    .usage = "[-f FILE | -H LIST] [--json] [ssh options]",
    .opts = NULL,
    .launch_opts = true,
    .run = check_run,
};
