/* cmd_report.c - dcrun report R.json: a run report as a person reads it
 *
 * The table of ranks, the phases, the lost ranks and one line naming the
 * bottleneck (the rules are in lib/formats/report_read.h); --json prints
 * the same analysis as JSON; --svg FILE draws the timeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "lib/formats/report_read.h"
#include "lib/formats/report_text.h"

struct report_args {
    const char *svg;
};

static const struct cli_opt report_opts[] = {
    {"svg", 0, "FILE.svg",
     "also draw the timeline (ranks as rows, chunks as bars) into FILE.svg",
     CLI_AT (struct report_args, CLI_STR, svg)},
    {0},
};

static int report_run (struct cli *cli, int argc, char **argv)
{
    struct report_args a = {0};
    struct dc_report_view *v;
    dc_error_t err;
    int optindex, rc, exitcode = EXIT_OK;

    const char *path = NULL;
    for (;;) {
        if ((rc = cli_parse (cli, &cmd_report, argc, argv, &a, &optindex)) != 0)
            return rc > 0 ? EXIT_OK : EXIT_USAGE;
        if (optindex >= argc)
            break;
        if (path) {
            cli_usage_error (cli, "one report at a time");
            return EXIT_USAGE;
        }
        /* options may follow the report too ("R.json --svg T.svg"): parse
         * what follows it again, the report in the place of argv[0] */
        path = argv[optindex];
        argv += optindex;
        argc -= optindex;
    }
    if (!path) {
        cli_usage_error (cli, "no report given");
        return EXIT_USAGE;
    }
    if (!(v = dc_report_view_read (path, &err)))
        return cli_error (EXIT_INPUT, "%s", err.text);
    if (a.svg && dc_report_svg_write (v, a.svg, &err) < 0) {
        dc_report_view_destroy (v);
        return cli_error (EXIT_INPUT, "%s", err.text);
    }
    char *s =
        cli->json ? dc_report_view_json (v) : dc_report_view_text (v, path);
    if (!s)
        exitcode = cli_error (EXIT_FAIL, "report: out of memory");
    else
        printf (cli->json ? "%s\n" : "%s", s);
    free (s);
    dc_report_view_destroy (v);
    if (fflush (stdout) != 0 && exitcode == EXIT_OK)
        exitcode = cli_error (EXIT_FAIL, "report: writing the table failed");
    return exitcode;
}

const struct cli_command cmd_report = {
    .name = "report",
    .summary = "read a --report: ranks, phases, the bottleneck, an SVG "
               "timeline",
    .usage = "[--json] [--svg FILE.svg] REPORT.json",
    .opts = report_opts,
    .run = report_run,
};
