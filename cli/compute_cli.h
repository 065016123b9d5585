/* compute_cli.h - what dcrun infer and dcrun train share: opening the
 * compute back-end from --device/--dtype/--threads, the progress line */
#ifndef DC_COMPUTE_CLI_H
#define DC_COMPUTE_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "gpu/compute.h"

/* Parse --device (cpu, cuda, auto) and --dtype; -1 after a usage error. */
int cli_parse_device (const struct cli *cli, const char *arg,
                      const char **device);
int cli_parse_dtype (const struct cli *cli, const char *arg,
                     enum dc_dtype *dtype);

/* Find and create the back-end.  Returns EXIT_OK, or an exit status after
 * printing why (EXIT_GPU: the device cannot be used). */
int cli_compute_open (const char *command, const char *device,
                      const struct dc_compute_opts *o,
                      const struct dc_compute_ops **ops, struct dc_compute **c);

/* "rows done, rows/s, ETA" on stderr: redrawn in place on a terminal,
 * one line a second with --progress when stderr is not one, else off. */
struct cli_progress {
    bool on, tty;
    const char *what;
    size_t total;
    double t0, last;
    int width;
};

void cli_progress_init (struct cli_progress *p, bool force, const char *what,
                        size_t total);
void cli_progress_update (struct cli_progress *p, size_t done,
                          const char *extra);
void cli_progress_done (struct cli_progress *p, size_t done);

#endif
