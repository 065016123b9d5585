/* main.c - dcrun: find the subcommand, dispatch, --help and --version */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "commands.h"
#include "lib/launch/launch.h"

/* Every subcommand, in the order --help lists them. */
const struct cli_command *const cli_commands[] = {
    &cmd_hosts, &cmd_probe, &cmd_check,  &cmd_exec,   &cmd_infer, &cmd_map,
    &cmd_train, &cmd_bench, &cmd_report, &cmd_worker, &cmd_serve, NULL,
};

static const struct cli_command *find_command (const char *name)
{
    for (int i = 0; cli_commands[i]; i++)
        if (!strcmp (cli_commands[i]->name, name))
            return cli_commands[i];
    return NULL;
}

/* Global options that take a separate argument word. */
static int takes_arg (const char *s)
{
    static const char *const with_arg[] = {
        "-f",      "-H",   "-n",         "-L", "--hostfile",
        "--hosts", "--np", "--launcher", NULL,
    };
    for (int i = 0; with_arg[i]; i++)
        if (!strcmp (s, with_arg[i]))
            return 1;
    return 0;
}

static void print_version (void)
{
    printf ("dcrun %s\n", DCRUN_VERSION);
    printf ("launchers: %s\n", dc_launch_names ());
    printf ("compute: cpu (OpenBLAS)%s\n",
            HAVE_CUDA ? " cuda (cuBLAS/cuBLASLt)" : "");
    printf ("hwloc %s (compiled against)\n", DCRUN_HWLOC_VERSION);
}

int main (int argc, char **argv)
{
    struct cli cli = {.prog = "dcrun"};
    int cmdidx = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp (a, "--"))
            break;
        if (a[0] == '-') {
            if (!strcmp (a, "--version") || !strcmp (a, "-V")) {
                print_version ();
                return EXIT_OK;
            }
            if (takes_arg (a))
                i++;
            continue;
        }
        cmdidx = i;
        break;
    }
    if (cmdidx < 0) {
        for (int i = 1; i < argc; i++) {
            if (!strcmp (argv[i], "--"))
                break;
            if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
                cli_print_help (NULL);
                return EXIT_OK;
            }
        }
        cli_usage_error (NULL, "no command given");
        return EXIT_USAGE;
    }
    const struct cli_command *cmd = find_command (argv[cmdidx]);
    if (!cmd) {
        if (!strcmp (argv[cmdidx], "help")) {
            const struct cli_command *c =
                cmdidx + 1 < argc ? find_command (argv[cmdidx + 1]) : NULL;
            cli_print_help (c);
            return EXIT_OK;
        }
        cli_usage_error (NULL, "unknown command '%s'", argv[cmdidx]);
        return EXIT_USAGE;
    }
    /* argv for the command: its name, then the global options that stood
     * before it, then everything after it */
    char **av = calloc ((size_t)argc + 1, sizeof (char *));
    if (!av)
        return cli_error (EXIT_FAIL, "out of memory");
    int ac = 0;
    av[ac++] = argv[cmdidx];
    for (int i = 1; i < cmdidx; i++)
        av[ac++] = argv[i];
    for (int i = cmdidx + 1; i < argc; i++)
        av[ac++] = argv[i];
    av[ac] = NULL;
    cli.command = cmd->name;
    int rc = cmd->run (&cli, ac, av);
    free (av);
    for (int i = 0; i < cli.nown; i++)
        free (cli.own_args[i]);
    free (cli.own_args);
    for (int i = 0; i < cli.launch.nexports; i++)
        free (cli.launch.exports[i]);
    free (cli.launch.exports);
    return rc;
}
