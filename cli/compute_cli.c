/* compute_cli.c - back-end selection and progress for infer and train */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "compute_cli.h"
#include "lib/formats/report.h"

int cli_parse_device (const struct cli *cli, const char *arg,
                      const char **device)
{
    if (strcmp (arg, "cpu") && strcmp (arg, "cuda") && strcmp (arg, "auto"))
        return cli_usage_error (cli,
                                "--device '%s': expected cpu, cuda or "
                                "auto",
                                arg);
    *device = arg;
    return 0;
}

int cli_parse_dtype (const struct cli *cli, const char *arg,
                     enum dc_dtype *dtype)
{
    if (dc_dtype_parse (arg, dtype) < 0)
        return cli_usage_error (cli,
                                "--dtype '%s': expected f32, tf32, f16 "
                                "or bf16",
                                arg);
    return 0;
}

void cli_progress_init (struct cli_progress *p, bool force, const char *what,
                        size_t total)
{
    memset (p, 0, sizeof (*p));
    p->tty = isatty (STDERR_FILENO);
    p->on = p->tty || force;
    p->what = what;
    p->total = total;
    p->t0 = dc_report_now ();
}

static void fmt_eta (double s, char *buf, size_t size)
{
    if (s < 0 || s > 1e7)
        snprintf (buf, size, "?");
    else if (s >= 3600)
        snprintf (buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf (buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf (buf, size, "%.0fs", s);
}

static void draw (struct cli_progress *p, size_t done, const char *extra,
                  bool final)
{
    double now = dc_report_now (), el = now - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32], line[256];

    int n;
    if (!final) {
        fmt_eta (rate > 0 ? (double)(p->total - done) / rate : -1, eta,
                 sizeof (eta));
        n = snprintf (
            line, sizeof (line),
            "dcrun: %s: %zu/%zu rows (%.0f%%), %.0f rows/s, ETA %s%s%s",
            p->what, done, p->total,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate,
            eta, extra ? ", " : "", extra ? extra : "");
    } else {
        fmt_eta (el, eta, sizeof (eta));
        n = snprintf (line, sizeof (line),
                      "dcrun: %s: %zu/%zu rows, %.0f rows/s, took %s%s%s",
                      p->what, done, p->total, rate, eta, extra ? ", " : "",
                      extra ? extra : "");
    }
    if (n >= (int)sizeof (line))
        n = (int)sizeof (line) - 1;
    if (p->tty) {
        int pad = p->width > n ? p->width - n : 0;
        fprintf (stderr, "\r%s%*s%s", line, pad, "", final ? "\n" : "");
        p->width = n;
    } else {
        fprintf (stderr, "%s\n", line);
    }
    fflush (stderr);
    p->last = now;
}

void cli_progress_update (struct cli_progress *p, size_t done,
                          const char *extra)
{
    if (!p->on)
        return;
    double now = dc_report_now ();
    if (now - p->last < (p->tty ? 0.2 : 1.0))
        return;
    draw (p, done, extra, false);
}

void cli_progress_done (struct cli_progress *p, size_t done)
{
    if (p->on)
        draw (p, done, NULL, true);
}
