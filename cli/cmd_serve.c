/* cmd_serve.c - dcrun serve (internal): one rank of a distributed infer or
 * train, speaking dcrun's framed protocol with the coordinator on its stdin
 * and stdout (DESIGN.md section 5, comm "stream").  Launchers start it;
 * users do not. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "gpu/compute.h"
#include "lib/comm/comm.h"
#include "lib/run/rank.h"

static int serve_run (struct cli *cli, int argc, char **argv)
{
    struct dc_worker_opts wo = {.find = dc_compute_find};
    struct dc_comm *c;
    dc_error_t err;
    int rc, fd_out;
    long rank;

    if ((rc = cli_parse_opts (cli, &cmd_serve, argc, argv, NULL)) >= 0)
        return rc;
    if (isatty (0) || isatty (1))
        return cli_error (EXIT_USAGE,
                          "serve: internal command of dcrun infer and train; "
                          "it speaks a binary protocol on stdin and stdout");
    cli_log_init (cli);
    signal (SIGPIPE, SIG_IGN);
    /* frames go to a private copy of stdout; anything a library prints
     * lands on stderr instead of corrupting the stream */
    if ((fd_out = dup (1)) < 0 || dup2 (2, 1) < 0)
        return cli_error (EXIT_FAIL, "serve: dup: %s", strerror (errno));
    if (!(c = dc_serve_comm_create (fd_out, &rank, &err)))
        return cli_error (EXIT_FAIL, "serve: %s", err.text);
    rc = dc_worker_serve (c, &wo, &err);
    dc_comm_destroy (c);
    if (rc < 0)
        return cli_error (EXIT_FAIL, "serve: rank %ld: %s", rank, err.text);
    return EXIT_OK;
}

const struct cli_command cmd_serve = {
    .name = "serve",
    .summary = "internal: one rank of a distributed infer or train (what "
               "launchers start)",
    .usage = "",
    .opts = NULL,
    .run = serve_run,
};
