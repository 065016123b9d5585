/* cmd_check.c - dcrun check: pre-flight every host in bounded time
 *
 * Every host at once (cli/remote.c), judged by lib/run/check.c: reachable,
 * logged in, host key known, `dcrun --version` there equal to this one, `dcrun
 * probe --json` there read, and its GPUs against the host's slots and gpus=.
 * One row per host, OK or the reason; --json for one object.  Exit 0 when every
 * host is fine, 4 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "lib/hosts/hosts.h"
#include "lib/run/check.h"
#include "remote.h"

/* the probe's stages, as lib/run/check.h names them */
static const enum dc_check_stage stage_of[] = {
    [REMOTE_OK] = DC_CHECK_OK,
    [REMOTE_CONNECT] = DC_CHECK_CONNECT,
    [REMOTE_NO_DCRUN] = DC_CHECK_NO_DCRUN,
    [REMOTE_FAILED] = DC_CHECK_FAILED,
    [REMOTE_TIMEOUT] = DC_CHECK_TIMEOUT,
};

/* every host probed at once, judged: the table or the JSON on stdout */
static int check_hosts (struct cli *cli, const struct dc_hosts *hosts,
                        struct remote_result *res, struct dc_check_host *c)
{
    size_t n = hosts->count;
    int bad;
    char *s;

    remote_probe_all (hosts, &cli->launch.lo,
                      dc_check_probe_here (cli->launcher, hosts), res);
    for (size_t i = 0; i < n; i++) {
        c[i] = (struct dc_check_host){.host = res[i].host,
                                      .stage = stage_of[res[i].stage],
                                      .version = res[i].version,
                                      .topo = res[i].topo,
                                      .local = res[i].local};
        snprintf (c[i].reason, sizeof (c[i].reason), "%s", res[i].reason);
    }
    if ((bad = dc_check_judge (c, n, DCRUN_VERSION)) < 0 ||
        !(s = cli->json ? dc_check_json (c, n) : dc_check_text (c, n)))
        return cli_error (EXIT_FAIL, "check: out of memory");
    printf (cli->json ? "%s\n" : "%s", s);
    free (s);
    if (bad)
        return cli_error (EXIT_LAUNCH, "check: %d of %zu host%s not ready", bad,
                          n, n == 1 ? "" : "s");
    return EXIT_OK;
}

static int check_run (struct cli *cli, int argc, char **argv)
{
    struct dc_hosts *hosts = NULL;
    struct remote_result *res = NULL;
    struct dc_check_host *c = NULL;
    int rc, exitcode = EXIT_OK;

    if ((rc = cli_parse_opts (cli, &cmd_check, argc, argv, NULL)) >= 0)
        return rc;
    cli_log_init (cli);
    if (!(hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    res = calloc (hosts->count ? hosts->count : 1, sizeof (*res));
    c = calloc (hosts->count ? hosts->count : 1, sizeof (*c));
    if (res && c)
        exitcode = check_hosts (cli, hosts, res, c);
    else
        exitcode = cli_error (EXIT_FAIL, "check: out of memory");
    free (c);
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
