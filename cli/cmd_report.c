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

enum {
    OPT_SVG = 0x100,
};

static const struct cli_opt report_opts[] = {
    {"svg", required_argument, OPT_SVG, "FILE.svg",
     "also draw the timeline (ranks as rows, chunks as bars) into FILE.svg"},
    {0},
};

struct report_args {
    const char *svg;
};

static int report_opt (struct cli *cli, int key, const char *arg, void *ctx)
{
    struct report_args *a = ctx;

    (void)cli;
    if (key == OPT_SVG) {
        a->svg = arg;
        return 0;
    }
    return -1;
}

/* a device description cut to n bytes with "..." */
static void cut (char *dst, size_t n, const char *s)
{
    if (strlen (s) < n)
        snprintf (dst, n, "%s", s);
    else
        snprintf (dst, n, "%.*s...", (int)(n - 4), s);
}

static void print_table (const struct dc_report_view *v, const char *path)
{
    printf ("report: %s (%s", path, v->command);
    if (v->layout[0])
        printf (", layout %s", v->layout);
    printf (", %d ranks", v->nranks);
    if (!v->exec)
        printf (", %.0f rows", v->total_rows);
    printf (", %.3f s)\n", v->wall);
    if (v->exec) {
        printf ("%-5s %-20s %-24s %9s %9s %9s %9s\n", "RANK", "HOST", "STATUS",
                "START_S", "END_S", "BUSY_S", "IDLE_S");
        for (int i = 0; i < v->nranks; i++) {
            const struct dc_report_rank *k = &v->ranks[i];
            char st[25];
            cut (st, sizeof (st), k->status);
            printf ("%-5d %-20s %-24s %9.3f %9.3f %9.3f %9.3f\n", k->rank,
                    k->host, st, k->start, k->end, k->busy, k->idle);
        }
    } else {
        printf ("%-5s %-20s %-24s %10s %9s %9s %9s %6s\n", "RANK", "HOST",
                "DEVICE", "ROWS", "BUSY_S", "IDLE_S", "TFLOP/S", "SHARE");
        for (int i = 0; i < v->nranks; i++) {
            const struct dc_report_rank *k = &v->ranks[i];
            char dev[25];
            cut (dev, sizeof (dev), k->device);
            printf ("%-5d %-20s %-24s %10.0f %9.3f %9.3f %9.4f %5.1f%%%s\n",
                    k->rank, k->host, dev, k->rows, k->busy, k->idle, k->tflops,
                    100 * k->share, k->lost ? "  LOST" : "");
        }
    }
    if (v->has_phases) {
        printf ("phases:");
        for (int p = 0; p < DC_PHASE_COUNT; p++)
            if (v->phase[p] > 0)
                printf (" %s %.3f s (%.0f%%)", dc_report_phase_name (p),
                        v->phase[p],
                        v->wall > 0 ? 100 * v->phase[p] / v->wall : 0);
        printf ("\n");
    }
    if (v->nspans)
        printf ("chunks: %zu in the timeline\n", v->nspans);
    if (v->nlost == 0)
        printf ("lost: none\n");
    if (v->lost_text[0])
        printf ("lost: %s\n", v->lost_text);
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].lost)
            printf ("lost: rank %d on %s (%s)\n", v->ranks[i].rank,
                    v->ranks[i].host, v->ranks[i].lost_reason);
    printf ("bottleneck: %s\n", v->bottleneck);
}

static int report_run (struct cli *cli, int argc, char **argv)
{
    struct report_args a = {0};
    struct dc_report_view *v;
    dc_error_t err;
    int optindex, rc, exitcode = EXIT_OK;

    /* options may follow the report too ("R.json --svg T.svg"): parse
     * again after each operand */
    const char *path = NULL;
    char **av = calloc ((size_t)argc + 1, sizeof (*av));
    int ac = argc;
    if (!av)
        return cli_error (EXIT_FAIL, "report: out of memory");
    memcpy (av, argv, (size_t)argc * sizeof (*av));
    for (;;) {
        if ((rc = cli_parse (cli, &cmd_report, ac, av, report_opt, &a,
                             &optindex)) != 0) {
            free (av);
            return rc > 0 ? EXIT_OK : EXIT_USAGE;
        }
        if (optindex >= ac)
            break;
        if (path) {
            free (av);
            cli_usage_error (cli, "one report at a time");
            return EXIT_USAGE;
        }
        path = av[optindex];
        /* av[0] (the command name) and what follows the operand */
        memmove (av + 1, av + optindex + 1,
                 (size_t)(ac - optindex) * sizeof (*av));
        ac -= optindex;
    }
    free (av);
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
    if (cli->json) {
        char *s = dc_report_view_json (v);
        if (!s)
            exitcode = cli_error (EXIT_FAIL, "report: out of memory");
        else
            printf ("%s\n", s);
        free (s);
    } else
        print_table (v, path);
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
