/* compute_cli.c - back-end selection and progress for infer and train */
#include <stdio.h>
#include <unistd.h>

#include "compute_cli.h"
#include "lib/run/optval.h"
#include "lib/util/clock.h"

int cli_parse_device (const struct cli *cli, const char *arg,
                      const char **device)
{
    dc_error_t err;

    if (dc_optval_device (arg, device, &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

int cli_parse_dtype (const struct cli *cli, const char *arg,
                     enum dc_dtype *dtype)
{
    dc_error_t err;

    if (dc_optval_dtype (arg, dtype, &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

void cli_progress_init (struct cli_progress *p, bool force, const char *what,
                        size_t total)
{
    p->tty = isatty (STDERR_FILENO);
    p->on = p->tty || force;
    p->width = 0;
    dc_progress_init (&p->p, p->tty, what, total, dc_now ());
}

static void draw (struct cli_progress *p, double now, size_t done,
                  const char *extra, bool final)
{
    char line[256];
    int n =
        dc_progress_line (&p->p, now, done, extra, final, line, sizeof (line));

    if (p->tty) {
        int pad = p->width > n ? p->width - n : 0;
        fprintf (stderr, "\r%s%*s%s", line, pad, "", final ? "\n" : "");
        p->width = n;
    } else {
        fprintf (stderr, "%s\n", line);
    }
    fflush (stderr);
}

void cli_progress_update (struct cli_progress *p, size_t done,
                          const char *extra)
{
    double now = dc_now ();

    if (p->on && dc_progress_due (&p->p, now))
        draw (p, now, done, extra, false);
}

void cli_progress_done (struct cli_progress *p, size_t done)
{
    if (p->on)
        draw (p, dc_now (), done, NULL, true);
}
