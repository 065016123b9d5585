/* commands.h - the subcommands (one cli/cmd_NAME.c each) */
#ifndef DC_COMMANDS_H
#define DC_COMMANDS_H

#include "cli.h"

extern const struct cli_command cmd_hosts;
extern const struct cli_command cmd_probe;
extern const struct cli_command cmd_check;
extern const struct cli_command cmd_exec;
extern const struct cli_command cmd_infer;
extern const struct cli_command cmd_map;
extern const struct cli_command cmd_train;
extern const struct cli_command cmd_bench;
extern const struct cli_command cmd_worker;
extern const struct cli_command cmd_serve;
extern const struct cli_command cmd_report;

#endif
