/* cli.c - option parsing, messages and help shared by the subcommands */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lib/hosts/rankenv.h"
#include "lib/util/log.h"

/* -x VAR[=VALUE] or PATTERN: never a rank variable; a value is kept off
 * this process's command line. */
static int export_opt (struct cli *cli, const char *arg, void *base)
{
    struct cli_launch *l = base;

    if (dc_rankenv_is_rank_var (arg))
        return cli_usage_error (cli,
                                "-x '%.*s': a rank variable that dcrun "
                                "sets for each rank; it cannot be "
                                "exported",
                                (int)strcspn (arg, "="), arg);
    if (!*arg || *arg == '=')
        return cli_usage_error (cli,
                                "-x '%s': expected VAR or "
                                "VAR=VALUE",
                                arg);
    char **x = realloc (l->exports, (size_t)(l->nexports + 1) * sizeof (*x));
    if (!x)
        return cli_usage_error (cli, "out of memory");
    l->exports = x;
    /* owned (main frees them); a value is blanked in our own argv: ps and
     * /proc/PID/cmdline show what argv holds (a value may be a secret;
     * `-x NAME` takes it from the environment instead) */
    if (!(l->exports[l->nexports] = strdup (arg)))
        return cli_usage_error (cli, "out of memory");
    l->nexports++;
    char *eq = strchr (arg, '=');
    if (eq)
        memset (eq + 1, '*', strlen (eq + 1));
    return 0;
}

static int map_by_opt (struct cli *cli, const char *arg, void *base)
{
    struct cli_launch *l = base;
    dc_error_t err;

    if (dc_plan_parse_map_by (arg, &l->plan, &err) < 0)
        return cli_usage_error (cli, "%s", err.text);
    return 0;
}

static int wdir_opt (struct cli *cli, const char *arg, void *base)
{
    if (!*arg)
        return cli_usage_error (cli, "--wdir: empty folder name");
    ((struct cli_launch *)base)->wdir = arg;
    return 0;
}

static int connect_timeout_opt (struct cli *cli, const char *arg, void *base)
{
    struct cli_launch *l = base;

    l->lo.connect_timeout_set = true;
    return cli_parse_double (cli, "--connect-timeout", arg, 0.01, 3600,
                             &l->lo.connect_timeout);
}

#define G(kd, member, ...) CLI_AT (struct cli, kd, member, __VA_ARGS__)
static const struct cli_opt global_opts[] = {
    {"hostfile", 'f', "FILE", "hosts and slots from FILE",
     G (CLI_STR, hostfile)},
    {"hosts", 'H', "LIST",
     "comma-separated host[:slots] entries, ranges "
     "allowed",
     G (CLI_STR, hosts)},
    {"np", 'n', "N", "number of ranks (default: slots)",
     G (CLI_LONG, np, 1, 1000000)},
    {"launcher", 'L', "NAME", "local, ssh, mpi, slurm or auto",
     G (CLI_STR, launcher)},
    {"verbose", 'v', NULL, "say more (repeat for debug)",
     G (CLI_COUNT, verbose)},
    {"quiet", 'q', NULL, "only errors", G (CLI_FLAG, quiet)},
    {"json", 0, NULL, "machine-readable output", G (CLI_FLAG, json)},
    {"dry-run", 0, NULL, "print what would run, start nothing",
     G (CLI_FLAG, dry_run)},
    {"help", 'h', NULL, "this help", .kind = CLI_NONE},
    {0},
};
#undef G

static const struct cli_word bind_words[] = {
    {"auto", false}, {"none", true}, {"core", false}, {0}};

#define L(kd, member, ...) CLI_AT (struct cli_launch, kd, member, __VA_ARGS__)
static const struct cli_opt launch_opts[] = {
    {"map-by", 0, "slot|node|ppr:N:package|ppr:N:numa",
     "fill each host's slots first (slot), go round-robin (node), or N ranks "
     "per package or NUMA node of each host (ppr)",
     .fn = map_by_opt},
    {"oversubscribe", 0, NULL, "allow more ranks than slots",
     L (CLI_FLAG, plan.oversubscribe)},
    {"bind", 0, "auto|none",
     "bind each rank to the cores next to its GPU, decided on its own host "
     "(auto), or not (none)",
     L (CLI_BWORD, no_bind, .words = bind_words)},
    {"gpus-per-rank", 0, "N",
     "GPUs each rank gets (default: the host's GPUs / slots, at least 1)",
     L (CLI_INT, plan.gpus_per_rank, 1, 1024)},
    {"export", 'x', "VAR[=VALUE]",
     "pass VAR (from here, or set to VALUE) to every rank; VAR may be a "
     "shell pattern ('NCCL_*'); never a rank variable (RANK, MASTER_ADDR..)",
     .fn = export_opt},
    {"export-all", 0, NULL,
     "pass this whole environment but SSH_*, DISPLAY, TERM, HOME, USER, "
     "LOGNAME, SHELL, PWD, OLDPWD, SHLVL, _, XAUTHORITY, DBUS_* and the rank "
     "variables",
     L (CLI_FLAG, export_all)},
    {"gpu-bind", 0, "host|rank|none",
     "CUDA_VISIBLE_DEVICES: the GPUs of the rank's host, cuda:LOCAL_RANK its "
     "own (host, default); only its own (rank); untouched (none)",
     L (CLI_WORD, gpu_bind, .words = cli_gpu_bind_words)},
    {"master-port", 0, "PORT",
     "MASTER_PORT for every rank (default: a port free on rank 0's host, "
     "checked there); in use on rank 0's host: exit 4",
     L (CLI_INT, master_port, 1, 65535)},
    {"wdir", 0, "DIR",
     "ranks start in DIR (default: this folder, on every host)",
     .fn = wdir_opt},
    {"exclude", 0, "LIST",
     "leave out these hosts (ranges allowed) of the resolved host list",
     L (CLI_STR, exclude)},
    {"kill-grace", 0, "S",
     "seconds from SIGTERM to SIGKILL when stopping ranks (default 3)",
     L (CLI_DOUBLE, kill_grace, 0, 3600)},
    {"fanout", 0, "N", "ssh: hosts connecting at once (default 64)",
     L (CLI_INT, lo.fanout, 1, 4096)},
    {"connect-timeout", 0, "S",
     "ssh: bound on connect + login per host (default 10)",
     .fn = connect_timeout_opt},
    {"ssh-key", 'i', "FILE", "ssh: private key to try",
     L (CLI_STR, lo.ssh_key)},
    {"known-hosts", 0, "FILE",
     "ssh: host keys (default ~/.ssh/known_hosts); a host known only by "
     "other key types is a changed key, @revoked keys are refused, a line "
     "that cannot be parsed is an error",
     L (CLI_STR, lo.known_hosts)},
    {"ssh-config", 0, "FILE", "ssh: client config (default ~/.ssh/config)",
     L (CLI_STR, lo.ssh_config)},
    {"ssh-accept-new", 0, NULL,
     "ssh: add unknown host keys (a changed key is refused)",
     L (CLI_FLAG, lo.accept_new)},
    {"ssh-port", 0, "PORT",
     "ssh: port when the host list gives none (default 22)",
     L (CLI_INT, lo.ssh_port, 1, 65535)},
    {"remote-dcrun", 0, "PATH",
     "dcrun on the remote hosts (default: this binary's path)",
     L (CLI_STR, lo.remote_dcrun)},
    {"copy-dcrun", 0, NULL,
     "ssh: a host without --remote-dcrun's dcrun gets this binary (and "
     "its GPU modules) in a private temporary folder, removed at the end "
     "(the host needs the same shared libraries)",
     L (CLI_FLAG, lo.copy_dcrun)},
    {"mpirun-args", 0, "ARGS", "mpi: extra words for mpirun",
     L (CLI_STR, lo.mpirun_args)},
    {"listen-addr", 0, "ADDR",
     "mpi, slurm: the address of this host the ranks connect back to "
     "(default: loopback when every rank is here, else the one that "
     "reaches them)",
     L (CLI_STR, lo.listen_addr)},
    {"srun-mpi", 0, "TYPE", "slurm: srun --mpi=TYPE (pmix for MPI programs)",
     L (CLI_STR, lo.srun_mpi)},
    {"srun-args", 0, "ARGS", "slurm: extra words for srun",
     L (CLI_STR, lo.srun_args)},
    {0},
};
#undef L

int cli_error (int code, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    /* "message\nhint: ..." prints as two lines; the first gets the prefix */
    char *nl = strchr (buf, '\n');
    if (nl)
        *nl = '\0';
    fprintf (stderr, "dcrun: %s\n", buf);
    if (nl)
        fprintf (stderr, "%s\n", nl + 1);
    return code;
}

int cli_usage_error (const struct cli *cli, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    if (cli && cli->command) {
        fprintf (stderr, "dcrun: %s: %s\n", cli->command, buf);
        fprintf (stderr, "hint: run 'dcrun %s --help' for its options\n",
                 cli->command);
    } else {
        fprintf (stderr, "dcrun: %s\n", buf);
        fprintf (stderr, "hint: run 'dcrun --help' for the commands\n");
    }
    return -1;
}

int cli_parse_long (const struct cli *cli, const char *opt, const char *s,
                    long min, long max, long *val)
{
    char *end;
    long v;

    errno = 0;
    v = strtol (s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return cli_usage_error (cli,
                                "%s '%s': expected a number from %ld "
                                "to %ld",
                                opt, s, min, max);
    *val = v;
    return 0;
}

int cli_parse_double (const struct cli *cli, const char *opt, const char *s,
                      double min, double max, double *val)
{
    char *end;
    double v;

    errno = 0;
    v = strtod (s, &end);
    if (errno || end == s || *end || !isfinite (v) || v < min || v > max)
        return cli_usage_error (cli,
                                "%s '%s': expected a number from %g "
                                "to %g",
                                opt, s, min, max);
    *val = v;
    return 0;
}

static void print_opts (const struct cli_opt *opts)
{
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        char left[64];
        if (o->key > 0 && o->key < 128)
            snprintf (left, sizeof (left), "-%c, --%s%s%s", o->key, o->name,
                      o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf (left, sizeof (left), "    --%s%s%s", o->name,
                      o->arg ? " " : "", o->arg ? o->arg : "");
        if (strlen (left) > 24)
            printf ("  %s\n  %-24s  %s\n", left, "", o->help);
        else
            printf ("  %-24s  %s\n", left, o->help);
    }
}

void cli_print_help (const struct cli_command *cmd)
{
    if (!cmd) {
        printf ("Usage: dcrun [GLOBAL] COMMAND [OPTIONS] [-- CMD ARGS...]\n\n"
                "Run work across the GPUs of a cluster from one command.\n\n"
                "Commands:\n");
        for (int i = 0; cli_commands[i]; i++)
            printf ("  %-8s  %s\n", cli_commands[i]->name,
                    cli_commands[i]->summary);
        printf ("\nGlobal options (before or after COMMAND):\n");
        print_opts (global_opts);
        printf ("      --version             version and back-ends\n");
        printf ("\nHost list, first that applies: -f, -H, $DCRUN_HOSTFILE, "
                "the Slurm\nallocation, $PBS_NODEFILE, else this host.\n"
                "Exit status: 0 ok, 1 job failed, 2 usage, 3 bad input, "
                "4 launch or\nconnection failure, 5 GPU or compute failure, "
                "128+N signal N.\n"
                "See dcrun(1) and dcrun-hostfile(5).\n");
        return;
    }
    printf ("Usage: dcrun %s %s\n\n%s\n", cmd->name,
            cmd->usage ? cmd->usage : "", cmd->summary);
    if (cmd->opts && cmd->opts[0].name) {
        printf ("\nOptions:\n");
        print_opts (cmd->opts);
        print_opts (cmd->opts2);
    }
    if (cmd->launch_opts) {
        printf ("\nLaunch options:\n");
        print_opts (launch_opts);
    }
    printf ("\nGlobal options:\n");
    print_opts (global_opts);
}

/* An option of the command line: its row, the struct it fills, whether it
 * is the command's own (kept for starting the command on other ranks). */
struct opt_ent {
    const struct cli_opt *o;
    void *base;
    bool own;
};

/* Remember a command option as "--name" [value]. */
static void keep_own (struct cli *cli, const struct cli_opt *o, const char *arg)
{
    char **v;

    if (!(v = realloc (cli->own_args, (size_t)(cli->nown + 3) * sizeof (*v))))
        return;
    cli->own_args = v;
    if (asprintf (&v[cli->nown], "--%s", o->name) < 0)
        return;
    cli->nown++;
    if (o->arg && arg && (v[cli->nown] = strdup (arg)))
        cli->nown++;
    v[cli->nown] = NULL;
}

/* Add the rows of opts: getopt_long entries (key: the short option, else
 * 256 + the entry's index), short options, what each sets. */
static void add_opts (const struct cli_opt *opts, void *base, bool own,
                      struct opt_ent *ents, struct option *lo, int *n,
                      char *shorts, size_t *slen)
{
    for (const struct cli_opt *o = opts; o && o->name; o++, (*n)++) {
        ents[*n] = (struct opt_ent){o, base, own};
        lo[*n] =
            (struct option){o->name, o->arg ? required_argument : no_argument,
                            NULL, o->key ? o->key : 256 + *n};
        if (o->key) {
            shorts[(*slen)++] = (char)o->key;
            if (o->arg)
                shorts[(*slen)++] = ':';
        }
    }
}

/* The entry of getopt's answer c, or NULL. */
static const struct opt_ent *find_ent (const struct opt_ent *ents, int n, int c)
{
    if (c >= 256)
        return c - 256 < n ? &ents[c - 256] : NULL;
    for (int i = 0; i < n; i++)
        if (ents[i].o->key == c)
            return &ents[i];
    return NULL;
}

/* One option: help, a usage error of getopt's, or the option's field. */
static int one_opt (struct cli *cli, const struct cli_command *cmd,
                    const struct opt_ent *e, int c, char **argv, int at)
{
    if (c == ':')
        return cli_usage_error (cli, "option '%s' needs an argument", argv[at]);
    if (c == '?' && optopt && optopt < 128)
        return cli_usage_error (cli, "unknown option '-%c'", optopt);
    if (c == '?' || !e)
        return cli_usage_error (cli, "unknown option '%s'", argv[at]);
    if (c == 'h') {
        cli_print_help (cmd);
        return 1;
    }
    if (cli_opt_set (cli, e->o, optarg, e->base) < 0)
        return -1;
    if (e->own)
        keep_own (cli, e->o, optarg);
    return 0;
}

int cli_parse (struct cli *cli, const struct cli_command *cmd, int argc,
               char **argv, void *ctx, int *optindp)
{
    int n = 0, max = 1 + (int)(sizeof (global_opts) / sizeof (*global_opts) +
                               sizeof (launch_opts) / sizeof (*launch_opts));
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
        max++;
    for (const struct cli_opt *o = cmd->opts2; o && o->name; o++)
        max++;
    struct opt_ent *ents = calloc ((size_t)max, sizeof (*ents));
    struct option *lo = calloc ((size_t)max, sizeof (*lo));
    char *shorts = calloc ((size_t)max * 2 + 4, 1);
    size_t slen = 2;
    int rc = -1;

    if (!ents || !lo || !shorts) {
        cli_error (EXIT_FAIL, "out of memory");
        goto out;
    }
    memcpy (shorts, "+:", 2);
    add_opts (global_opts, cli, false, ents, lo, &n, shorts, &slen);
    add_opts (cmd->opts, ctx, true, ents, lo, &n, shorts, &slen);
    add_opts (cmd->opts2, (char *)ctx + cmd->opts2_off, true, ents, lo, &n,
              shorts, &slen);
    if (cmd->launch_opts)
        add_opts (launch_opts, &cli->launch, false, ents, lo, &n, shorts,
                  &slen);
    optind = 0; /* full re-initialisation (GNU) */
    opterr = 0;
    for (;;) {
        int prev = optind ? optind : 1;
        int c = getopt_long (argc, argv, shorts, lo, NULL);
        if (c == -1)
            break;
        if ((rc = one_opt (cli, cmd, find_ent (ents, n, c), c, argv,
                           prev < argc ? prev : argc - 1)) != 0)
            goto out;
        rc = -1;
    }
    *optindp = optind;
    rc = 0;
out:
    free (ents);
    free (lo);
    free (shorts);
    return rc;
}

int cli_parse_opts (struct cli *cli, const struct cli_command *cmd, int argc,
                    char **argv, void *ctx)
{
    int optindex, rc = cli_parse (cli, cmd, argc, argv, ctx, &optindex);

    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (optindex < argc) {
        cli_usage_error (cli, "unexpected argument '%s'", argv[optindex]);
        return EXIT_USAGE;
    }
    return -1;
}

static void log_print (enum dc_log_level level, const char *msg, void *arg)
{
    (void)arg;
    const char *tag = level == DC_LOG_ERR    ? "error: "
                      : level == DC_LOG_WARN ? "warning: "
                                             : "";
    fprintf (stderr, "dcrun: %s%s\n", tag, msg);
}

void cli_log_init (const struct cli *cli)
{
    enum dc_log_level level = DC_LOG_WARN;

    if (cli->quiet)
        level = DC_LOG_ERR;
    else if (cli->verbose == 1)
        level = DC_LOG_INFO;
    else if (cli->verbose > 1)
        level = DC_LOG_DEBUG;
    dc_log_set_level (level);
    dc_log_set_handler (log_print, NULL);
}
