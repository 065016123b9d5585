/* cmd_check.c - dcrun check: pre-flight every host in bounded time
 *
 * Every host at once (lib/run/probe_list.c), judged by lib/run/check.c:
 * reachable, logged in, host key known, `dcrun --version` there equal to this
 * one, `dcrun probe --json` there read, and its GPUs against the host's slots
 * and gpus=. One row per host, OK or the reason; --json for one object.  Exit 0
 * when every host is fine, 4 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "lib/hosts/hosts.h"
#include "lib/run/probe_list.h"

static int check_run (struct cli *cli, int argc, char **argv)
{
    struct dc_hosts *hosts = NULL;
    int rc, bad, exitcode = EXIT_OK;
    char *s;

    if ((rc = cli_parse_opts (cli, &cmd_check, argc, argv, NULL)) >= 0)
        return rc;
    cli_log_init (cli);
    if (!(hosts = cli_resolve_hosts (cli, 0, &exitcode)))
        return exitcode;
    size_t n = hosts->count;
    if (!(s = dc_check_list (hosts, &cli->launch.lo, cli->launcher,
                             DCRUN_VERSION, cli->json, &bad)))
        exitcode = cli_error (EXIT_FAIL, "check: out of memory");
    else {
        printf (cli->json ? "%s\n" : "%s", s);
        if (bad)
            exitcode =
                cli_error (EXIT_LAUNCH, "check: %d of %zu host%s not ready",
                           bad, n, n == 1 ? "" : "s");
    }
    free (s);
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
