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

/* a description cut to n bytes with "...", not inside a UTF-8 character */
static void cut (char *dst, size_t n, const char *s)
{
    if (strlen (s) < n) {
        snprintf (dst, n, "%s", s);
        return;
    }
    size_t k = n - 4;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    snprintf (dst, n, "%.*s...", (int)k, s);
}

static double pct (double part, double whole)
{
    return whole > 0 ? 100 * part / whole : 0;
}

/* seconds, or "-" when the report does not say */
static const char *secs (char *buf, size_t len, bool known, double s)
{
    if (!known)
        return "-";
    snprintf (buf, len, "%.3f", s);
    return buf;
}

/* the ranks as infer and train report them: with their I/O way and their
 * read/compute/write split when the report has them */
static void print_ranks (const struct dc_report_view *v)
{
    bool io = v->has_split || v->io[0];

    printf ("%-5s %-20s %-20s %10s %9s %9s %9s %6s", "RANK", "HOST", "DEVICE",
            "ROWS", "BUSY_S", "IDLE_S", "TFLOP/S", "SHARE");
    if (io)
        printf ("  %-6s %8s %9s %8s", "IO", "READ_S", "COMPUTE_S", "WRITE_S");
    printf ("\n");
    for (int i = 0; i < v->nranks; i++) {
        const struct dc_report_rank *k = &v->ranks[i];
        char dev[21], a[32], b[32], c[32];
        cut (dev, sizeof (dev), k->device);
        printf ("%-5d %-20s %-20s %10.0f %9.3f %9.3f %9.4f %5.1f%%", k->rank,
                k->host, dev, k->rows, k->busy, k->idle, k->tflops,
                100 * k->share);
        if (io)
            printf ("  %-6s %8s %9s %8s", k->io[0] ? k->io : "-",
                    secs (a, sizeof (a), k->has_split, k->read),
                    secs (b, sizeof (b), k->has_split, k->compute),
                    secs (c, sizeof (c), k->has_split, k->write));
        printf ("%s\n", k->lost ? "  LOST" : "");
    }
}

/* how the rows travelled, and the ranks' busy time split */
static void print_io (const struct dc_report_view *v)
{
    if (v->has_split)
        printf ("ranks' busy time: %.3f s: read %.3f s (%.0f%%), compute "
                "%.3f s (%.0f%%), write %.3f s (%.0f%%)\n",
                v->busy_sum, v->read_sum, pct (v->read_sum, v->busy_sum),
                v->compute_sum, pct (v->compute_sum, v->busy_sum), v->write_sum,
                pct (v->write_sum, v->busy_sum));
    if (!v->io[0])
        return;
    printf ("io: %s", v->io);
    if (v->io_mode[0])
        printf (" (--io %s)", v->io_mode);
    if (v->relayed_bytes >= 0) {
        double b = v->relayed_bytes;
        if (b >= 1 << 30)
            printf (", %.2f GiB", b / (1 << 30));
        else if (b >= 1 << 20)
            printf (", %.1f MiB", b / (1 << 20));
        else
            printf (", %.1f KiB", b / (1 << 10));
        printf (" of rows through the head (%.0f bytes)", b);
    }
    if (v->hub_cpu >= 0)
        printf (", the head's CPU %.3f s (%.0f%% of the wall time)", v->hub_cpu,
                pct (v->hub_cpu, v->wall));
    printf ("\n");
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].io_why[0])
            printf ("io: rank %d on %s: %s (%s)\n", v->ranks[i].rank,
                    v->ranks[i].host, v->ranks[i].io, v->ranks[i].io_why);
}

static void print_table (const struct dc_report_view *v, const char *path)
{
    printf ("report: %s (%s", path, v->command);
    if (v->layout[0])
        printf (", layout %s", v->layout);
    printf (", %d ranks", v->job_ranks);
    if (v->job_ranks != v->nranks)
        printf (" (%d listed)", v->nranks);
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
    } else
        print_ranks (v);
    if (v->has_phases) {
        printf ("phases:");
        for (int p = 0; p < DC_PHASE_COUNT; p++)
            if (v->phase[p] > 0)
                printf (" %s %.3f s (%.0f%%)", dc_report_phase_name (p),
                        v->phase[p],
                        v->wall > 0 ? 100 * v->phase[p] / v->wall : 0);
        printf ("\n");
    }
    print_io (v);
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
