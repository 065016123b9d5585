/* report_text.c - a read-back report as the table `dcrun report` prints
 * (see report_text.h) */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/formats/report_text.h"
#include "lib/util/strbuf.h"

/* a table of DC_REPORT_MAX_RANKS ranks is well under this */
#define TEXT_MAX ((size_t)256 << 20)

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
static void ranks_text (struct dc_strbuf *b, const struct dc_report_view *v)
{
    bool io = v->has_split || v->io[0];

    dc_strbuf_printf (b, "%-5s %-20s %-20s %10s %9s %9s %9s %6s", "RANK",
                      "HOST", "DEVICE", "ROWS", "BUSY_S", "IDLE_S", "TFLOP/S",
                      "SHARE");
    if (io)
        dc_strbuf_printf (b, "  %-6s %8s %9s %8s", "IO", "READ_S", "COMPUTE_S",
                          "WRITE_S");
    dc_strbuf_str (b, "\n");
    for (int i = 0; i < v->nranks; i++) {
        const struct dc_report_rank *k = &v->ranks[i];
        char dev[21], x[32], y[32], z[32];
        cut (dev, sizeof (dev), k->device);
        dc_strbuf_printf (
            b, "%-5d %-20s %-20s %10.0f %9.3f %9.3f %9.4f %5.1f%%", k->rank,
            k->host, dev, k->rows, k->busy, k->idle, k->tflops, 100 * k->share);
        if (io)
            dc_strbuf_printf (b, "  %-6s %8s %9s %8s", k->io[0] ? k->io : "-",
                              secs (x, sizeof (x), k->has_split, k->read),
                              secs (y, sizeof (y), k->has_split, k->compute),
                              secs (z, sizeof (z), k->has_split, k->write));
        dc_strbuf_printf (b, "%s\n", k->lost ? "  LOST" : "");
    }
}

static void exec_ranks_text (struct dc_strbuf *b,
                             const struct dc_report_view *v)
{
    dc_strbuf_printf (b, "%-5s %-20s %-24s %9s %9s %9s %9s\n", "RANK", "HOST",
                      "STATUS", "START_S", "END_S", "BUSY_S", "IDLE_S");
    for (int i = 0; i < v->nranks; i++) {
        const struct dc_report_rank *k = &v->ranks[i];
        char st[25];
        cut (st, sizeof (st), k->status);
        dc_strbuf_printf (b, "%-5d %-20s %-24s %9.3f %9.3f %9.3f %9.3f\n",
                          k->rank, k->host, st, k->start, k->end, k->busy,
                          k->idle);
    }
}

/* the bytes the head relayed, as "N MiB of rows through the head" */
static void relayed_text (struct dc_strbuf *b, double bytes)
{
    if (bytes >= 1 << 30)
        dc_strbuf_printf (b, ", %.2f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20)
        dc_strbuf_printf (b, ", %.1f MiB", bytes / (1 << 20));
    else
        dc_strbuf_printf (b, ", %.1f KiB", bytes / (1 << 10));
    dc_strbuf_printf (b, " of rows through the head (%.0f bytes)", bytes);
}

/* how the rows travelled, and the ranks' busy time split */
static void io_text (struct dc_strbuf *b, const struct dc_report_view *v)
{
    if (v->has_split)
        dc_strbuf_printf (
            b,
            "ranks' busy time: %.3f s: read %.3f s (%.0f%%), compute "
            "%.3f s (%.0f%%), write %.3f s (%.0f%%)\n",
            v->busy_sum, v->read_sum, pct (v->read_sum, v->busy_sum),
            v->compute_sum, pct (v->compute_sum, v->busy_sum), v->write_sum,
            pct (v->write_sum, v->busy_sum));
    if (!v->io[0])
        return;
    dc_strbuf_printf (b, "io: %s", v->io);
    if (v->io_mode[0])
        dc_strbuf_printf (b, " (--io %s)", v->io_mode);
    if (v->relayed_bytes >= 0)
        relayed_text (b, v->relayed_bytes);
    if (v->hub_cpu >= 0)
        dc_strbuf_printf (b,
                          ", the head's CPU %.3f s (%.0f%% of the wall time)",
                          v->hub_cpu, pct (v->hub_cpu, v->wall));
    dc_strbuf_str (b, "\n");
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].io_why[0])
            dc_strbuf_printf (b, "io: rank %d on %s: %s (%s)\n",
                              v->ranks[i].rank, v->ranks[i].host,
                              v->ranks[i].io, v->ranks[i].io_why);
}

static void heading_text (struct dc_strbuf *b, const struct dc_report_view *v,
                          const char *path)
{
    dc_strbuf_printf (b, "report: %s (%s", path, v->command);
    if (v->layout[0])
        dc_strbuf_printf (b, ", layout %s", v->layout);
    dc_strbuf_printf (b, ", %d ranks", v->job_ranks);
    if (v->job_ranks != v->nranks)
        dc_strbuf_printf (b, " (%d listed)", v->nranks);
    if (!v->exec)
        dc_strbuf_printf (b, ", %.0f rows", v->total_rows);
    dc_strbuf_printf (b, ", %.3f s)\n", v->wall);
}

static void phases_text (struct dc_strbuf *b, const struct dc_report_view *v)
{
    if (!v->has_phases)
        return;
    dc_strbuf_str (b, "phases:");
    for (int p = 0; p < DC_PHASE_COUNT; p++)
        if (v->phase[p] > 0)
            dc_strbuf_printf (b, " %s %.3f s (%.0f%%)",
                              dc_report_phase_name (p), v->phase[p],
                              pct (v->phase[p], v->wall));
    dc_strbuf_str (b, "\n");
}

char *dc_report_view_text (const struct dc_report_view *v, const char *path)
{
    struct dc_strbuf b = DC_STRBUF_INIT (TEXT_MAX);

    if (!v || !path) {
        errno = EINVAL;
        return NULL;
    }
    heading_text (&b, v, path);
    if (v->exec)
        exec_ranks_text (&b, v);
    else
        ranks_text (&b, v);
    phases_text (&b, v);
    io_text (&b, v);
    if (v->nspans)
        dc_strbuf_printf (&b, "chunks: %zu in the timeline\n", v->nspans);
    if (v->nlost == 0)
        dc_strbuf_str (&b, "lost: none\n");
    if (v->lost_text[0])
        dc_strbuf_printf (&b, "lost: %s\n", v->lost_text);
    for (int i = 0; i < v->nranks; i++)
        if (v->ranks[i].lost)
            dc_strbuf_printf (&b, "lost: rank %d on %s (%s)\n",
                              v->ranks[i].rank, v->ranks[i].host,
                              v->ranks[i].lost_reason);
    dc_strbuf_printf (&b, "bottleneck: %s\n", v->bottleneck);
    return dc_strbuf_take (&b);
}
