/* fields.h - what an option of a table sets (struct cli_opt, cli.h)
 *
 * A path or word, a flag, a count, a bounded number (the usage error of
 * cli_parse_long / cli_parse_double, named by the option), a size or one
 * of a list of words; or the option's own code.  The fields are those of
 * the lib/run options the command fills, so nothing is copied afterwards.
 */
#ifndef DC_CLI_FIELDS_H
#define DC_CLI_FIELDS_H

#include "cli.h"

/* --io direct|relay|auto (enum dc_io_mode), for CLI_WORD. */
extern const struct cli_word cli_io_words[];
/* --gpu-bind host|rank|none (enum dc_gpu_bind), for CLI_WORD. */
extern const struct cli_word cli_gpu_bind_words[];

/* Set o's field in base (the struct o's table fills) from arg, or call
 * its fn.  Returns 0, or -1 after a usage error. */
int cli_opt_set (struct cli *cli, const struct cli_opt *o, const char *arg,
                 void *base);

#endif
