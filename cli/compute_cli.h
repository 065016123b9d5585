/* compute_cli.h - what dcrun infer and dcrun train share: the
 * --device/--dtype parsing, the progress line */
#ifndef DC_COMPUTE_CLI_H
#define DC_COMPUTE_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "gpu/compute.h"
#include "lib/util/progress.h"

/* Parse --device (cpu, cuda, auto) and --dtype; -1 after a usage error. */
int cli_parse_device (const struct cli *cli, const char *arg,
                      const char **device);
int cli_parse_dtype (const struct cli *cli, const char *arg,
                     enum dc_dtype *dtype);

/* "rows done, rows/s, ETA" on stderr: redrawn in place on a terminal,
 * one line a second with --progress when stderr is not one, else off. */
struct cli_progress {
    bool on, tty;         /* tty, width: read by cmd_train.c to clear it */
    int width;            /* of the last line drawn on the terminal */
    struct dc_progress p; /* the text (lib/util/progress.h) */
};

void cli_progress_init (struct cli_progress *p, bool force, const char *what,
                        size_t total);
void cli_progress_update (struct cli_progress *p, size_t done,
                          const char *extra);
void cli_progress_done (struct cli_progress *p, size_t done);

#endif
