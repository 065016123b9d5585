/* cmd_serve.c - dcrun serve (internal): one rank of a distributed infer or
 * train, speaking dcrun's framed protocol with the coordinator on its stdin
 * and stdout (DESIGN.md section 5, comm "stream").  Launchers start it;
 * users do not. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "gpu/compute.h"
#include "lib/comm/comm.h"
#include "lib/run/rank.h"

static long env_long (const char *name, long dflt)
{
    const char *s = getenv (name);
    char *end;
    long v;

    if (!s || !*s)
        return dflt;
    errno = 0;
    v = strtol (s, &end, 10);
    return errno || *end || v < 0 ? dflt : v;
}

/* The rank's own GPU as CUDA device 0, whatever --gpu-bind gave: keep
 * from CUDA_VISIBLE_DEVICES the entries that DCRUN_GPUS names (its own,
 * in its order); without CUDA_VISIBLE_DEVICES (--gpu-bind none), make it
 * DCRUN_GPUS.  No DCRUN_GPUS (Slurm's own binding, no GPUs): untouched. */
static void own_gpus_first (void)
{
    const char *own = getenv ("DCRUN_GPUS");
    const char *vis = getenv ("CUDA_VISIBLE_DEVICES");
    char out[1024] = "", item[64];
    size_t n = 0;

    if (!own || !*own)
        return;
    if (!vis) {
        setenv ("CUDA_VISIBLE_DEVICES", own, 1);
        return;
    }
    for (const char *p = own; *p;) {
        size_t len = strcspn (p, ",");
        if (len < sizeof (item)) {
            memcpy (item, p, len);
            item[len] = '\0';
            for (const char *q = vis; *q;) {
                size_t vl = strcspn (q, ",");
                if (vl == len && !strncmp (q, item, len) &&
                    n + len + 2 < sizeof (out)) {
                    n += (size_t)snprintf (out + n, sizeof (out) - n, "%s%s",
                                           n ? "," : "", item);
                    break;
                }
                q += vl + (q[vl] == ',');
            }
        }
        p += len + (p[len] == ',');
    }
    if (n > 0)
        setenv ("CUDA_VISIBLE_DEVICES", out, 1);
}

static int serve_run (struct cli *cli, int argc, char **argv)
{
    struct dc_worker_opts wo = {.find = dc_compute_find};
    struct dc_comm *c;
    dc_error_t err;
    int optindex, rc, fd_out;

    if ((rc = cli_parse (cli, &cmd_serve, argc, argv, NULL, NULL, &optindex)) !=
        0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
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
    own_gpus_first (); /* before anything opens CUDA */
    long rank = env_long ("DCRUN_RANK", 0);
    long size = env_long ("DCRUN_SIZE", 1);
    if (!(c = dc_comm_stream_rank_create ((int)rank, (int)size, 0, fd_out,
                                          &err)))
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
