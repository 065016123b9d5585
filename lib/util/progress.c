/* progress.c - the progress line of infer and train, as text (see
 * progress.h) */
#include <stdio.h>
#include <string.h>

#include "lib/util/progress.h"

void dc_progress_init (struct dc_progress *p, bool tty, const char *what,
                       size_t total, double now)
{
    memset (p, 0, sizeof (*p));
    p->tty = tty;
    p->what = what;
    p->total = total;
    p->t0 = now;
}

bool dc_progress_due (const struct dc_progress *p, double now)
{
    return now - p->last >= (p->tty ? 0.2 : 1.0);
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

int dc_progress_line (struct dc_progress *p, double now, size_t done,
                      const char *extra, bool final, char *buf, size_t len)
{
    double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    const char *sep = extra ? ", " : "";
    char eta[32];
    int n;

    if (!buf || len == 0)
        return 0;
    if (!final) {
        fmt_eta (rate > 0 ? (double)(p->total - done) / rate : -1, eta,
                 sizeof (eta));
        n = snprintf (
            buf, len,
            "dcrun: %s: %zu/%zu rows (%.0f%%), %.0f rows/s, ETA %s%s%s",
            p->what, done, p->total,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0, rate,
            eta, sep, extra ? extra : "");
    } else {
        fmt_eta (el, eta, sizeof (eta));
        n = snprintf (
            buf, len, "dcrun: %s: %zu/%zu rows, %.0f rows/s, took %s%s%s",
            p->what, done, p->total, rate, eta, sep, extra ? extra : "");
    }
    p->last = now;
    if (n < 0)
        n = 0;
    return n >= (int)len ? (int)len - 1 : n;
}
