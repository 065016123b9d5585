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

enum {
    OPT_JSON = 0x1000,
    OPT_DRY_RUN,
    OPT_HELP,
    /* launch options: 0x2000 and up */
    OPT_L_MAP_BY = 0x2000,
    OPT_L_OVERSUBSCRIBE,
    OPT_L_BIND,
    OPT_L_KILL_GRACE,
    OPT_L_FANOUT,
    OPT_L_CONNECT_TIMEOUT,
    OPT_L_SSH_KEY,
    OPT_L_KNOWN_HOSTS,
    OPT_L_SSH_CONFIG,
    OPT_L_SSH_ACCEPT_NEW,
    OPT_L_SSH_PORT,
    OPT_L_REMOTE_DCRUN,
    OPT_L_COPY_DCRUN,
    OPT_L_MPIRUN_ARGS,
    OPT_L_EXPORT,
    OPT_L_SRUN_MPI,
    OPT_L_SRUN_ARGS,
    OPT_L_LISTEN_ADDR,
    OPT_L_EXPORT_ALL,
    OPT_L_GPU_BIND,
    OPT_L_WDIR,
    OPT_L_EXCLUDE,
    OPT_L_GPUS_PER_RANK,
    OPT_L_MASTER_PORT,
};

static const struct cli_opt global_opts[] = {
    {"hostfile", required_argument, 'f', "FILE", "hosts and slots from FILE"},
    {"hosts", required_argument, 'H', "LIST",
     "comma-separated host[:slots] entries, ranges allowed"},
    {"np", required_argument, 'n', "N", "number of ranks (default: slots)"},
    {"launcher", required_argument, 'L', "NAME",
     "local, ssh, mpi, slurm or auto"},
    {"verbose", no_argument, 'v', NULL, "say more (repeat for debug)"},
    {"quiet", no_argument, 'q', NULL, "only errors"},
    {"json", no_argument, OPT_JSON, NULL, "machine-readable output"},
    {"dry-run", no_argument, OPT_DRY_RUN, NULL,
     "print what would run, start nothing"},
    {"help", no_argument, 'h', NULL, "this help"},
    {0},
};

static const struct cli_opt launch_opts[] = {
    {"map-by", required_argument, OPT_L_MAP_BY,
     "slot|node|ppr:N:package|ppr:N:numa",
     "fill each host's slots first (slot), go round-robin (node), or N ranks "
     "per package or NUMA node of each host (ppr)"},
    {"oversubscribe", no_argument, OPT_L_OVERSUBSCRIBE, NULL,
     "allow more ranks than slots"},
    {"bind", required_argument, OPT_L_BIND, "auto|none",
     "bind each rank to the cores next to its GPU, decided on its own host "
     "(auto), or not (none)"},
    {"gpus-per-rank", required_argument, OPT_L_GPUS_PER_RANK, "N",
     "GPUs each rank gets (default: the host's GPUs / slots, at least 1)"},
    {"export", required_argument, 'x', "VAR[=VALUE]",
     "pass VAR (from here, or set to VALUE) to every rank; VAR may be a "
     "shell pattern ('NCCL_*'); never a rank variable (RANK, MASTER_ADDR..)"},
    {"export-all", no_argument, OPT_L_EXPORT_ALL, NULL,
     "pass this whole environment but SSH_*, DISPLAY, TERM, HOME, USER, "
     "LOGNAME, SHELL, PWD, OLDPWD, SHLVL, _, XAUTHORITY, DBUS_* and the rank "
     "variables"},
    {"gpu-bind", required_argument, OPT_L_GPU_BIND, "host|rank|none",
     "CUDA_VISIBLE_DEVICES: the GPUs of the rank's host, cuda:LOCAL_RANK its "
     "own (host, default); only its own (rank); untouched (none)"},
    {"master-port", required_argument, OPT_L_MASTER_PORT, "PORT",
     "MASTER_PORT for every rank (default: a port free on rank 0's host, "
     "checked there); in use on rank 0's host: exit 4"},
    {"wdir", required_argument, OPT_L_WDIR, "DIR",
     "ranks start in DIR (default: this folder, on every host)"},
    {"exclude", required_argument, OPT_L_EXCLUDE, "LIST",
     "leave out these hosts (ranges allowed) of the resolved host list"},
    {"kill-grace", required_argument, OPT_L_KILL_GRACE, "S",
     "seconds from SIGTERM to SIGKILL when stopping ranks (default 3)"},
    {"fanout", required_argument, OPT_L_FANOUT, "N",
     "ssh: hosts connecting at once (default 64)"},
    {"connect-timeout", required_argument, OPT_L_CONNECT_TIMEOUT, "S",
     "ssh: bound on connect + login per host (default 10)"},
    {"ssh-key", required_argument, 'i', "FILE", "ssh: private key to try"},
    {"known-hosts", required_argument, OPT_L_KNOWN_HOSTS, "FILE",
     "ssh: host keys (default ~/.ssh/known_hosts); a host known only by "
     "other key types is a changed key, @revoked keys are refused, a line "
     "that cannot be parsed is an error"},
    {"ssh-config", required_argument, OPT_L_SSH_CONFIG, "FILE",
     "ssh: client config (default ~/.ssh/config)"},
    {"ssh-accept-new", no_argument, OPT_L_SSH_ACCEPT_NEW, NULL,
     "ssh: add unknown host keys (a changed key is refused)"},
    {"ssh-port", required_argument, OPT_L_SSH_PORT, "PORT",
     "ssh: port when the host list gives none (default 22)"},
    {"remote-dcrun", required_argument, OPT_L_REMOTE_DCRUN, "PATH",
     "dcrun on the remote hosts (default: this binary's path)"},
    {"copy-dcrun", no_argument, OPT_L_COPY_DCRUN, NULL,
     "ssh: a host without --remote-dcrun's dcrun gets this binary (and "
     "its GPU modules) in a private temporary folder, removed at the end "
     "(the host needs the same shared libraries)"},
    {"mpirun-args", required_argument, OPT_L_MPIRUN_ARGS, "ARGS",
     "mpi: extra words for mpirun"},
    {"listen-addr", required_argument, OPT_L_LISTEN_ADDR, "ADDR",
     "mpi, slurm: the address of this host the ranks connect back to "
     "(default: loopback when every rank is here, else the one that "
     "reaches them)"},
    {"srun-mpi", required_argument, OPT_L_SRUN_MPI, "TYPE",
     "slurm: srun --mpi=TYPE (pmix for MPI programs)"},
    {"srun-args", required_argument, OPT_L_SRUN_ARGS, "ARGS",
     "slurm: extra words for srun"},
    {0},
};

/* -x VAR[=VALUE] or PATTERN: never a rank variable; a value is kept off
 * this process's command line. */
static int export_opt (struct cli *cli, const char *arg)
{
    struct cli_launch *l = &cli->launch;

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
    char *eq = strchr (arg, '=');
    if (!eq) {
        /* owned like the copies below (main frees them) */
        if (!(l->exports[l->nexports] = strdup (arg)))
            return cli_usage_error (cli, "out of memory");
        l->nexports++;
        return 0;
    }
    /* keep a copy and blank the value in our own argv: ps and
     * /proc/PID/cmdline show what argv holds (a value may be a
     * secret; `-x NAME` takes it from the environment instead) */
    char *copy = strdup (arg);
    if (!copy)
        return cli_usage_error (cli, "out of memory");
    l->exports[l->nexports++] = copy;
    memset (eq + 1, '*', strlen (eq + 1));
    return 0;
}

static int launch_opt (struct cli *cli, int key, const char *arg)
{
    struct cli_launch *l = &cli->launch;
    long v = 0;

    switch (key) {
    case OPT_L_MAP_BY: {
        dc_error_t err;
        if (dc_plan_parse_map_by (arg, &l->plan, &err) < 0)
            return cli_usage_error (cli, "%s", err.text);
        return 0;
    }
    case OPT_L_OVERSUBSCRIBE:
        l->plan.oversubscribe = true;
        return 0;
    case OPT_L_MASTER_PORT:
        if (cli_parse_long (cli, "--master-port", arg, 1, 65535, &v) < 0)
            return -1;
        l->master_port = (int)v;
        return 0;
    case OPT_L_GPUS_PER_RANK:
        if (cli_parse_long (cli, "--gpus-per-rank", arg, 1, 1024, &v) < 0)
            return -1;
        l->plan.gpus_per_rank = (int)v;
        return 0;
    case OPT_L_BIND:
        if (!strcmp (arg, "none"))
            l->no_bind = true;
        else if (!strcmp (arg, "auto") || !strcmp (arg, "core"))
            l->no_bind = false;
        else
            return cli_usage_error (cli, "--bind '%s': expected auto or none",
                                    arg);
        return 0;
    case OPT_L_EXPORT_ALL:
        l->export_all = true;
        return 0;
    case OPT_L_GPU_BIND: {
        enum dc_gpu_bind b;
        if (dc_rankenv_gpu_bind_parse (arg, &b) < 0)
            return cli_usage_error (cli,
                                    "--gpu-bind '%s': expected host, rank "
                                    "or none",
                                    arg);
        l->gpu_bind = (int)b;
        return 0;
    }
    case OPT_L_WDIR:
        if (!*arg)
            return cli_usage_error (cli, "--wdir: empty folder name");
        l->wdir = arg;
        return 0;
    case OPT_L_EXCLUDE:
        l->exclude = arg;
        return 0;
    case 'x':
        return export_opt (cli, arg);
    case OPT_L_KILL_GRACE:
        return cli_parse_double (cli, "--kill-grace", arg, 0, 3600,
                                 &l->kill_grace);
    case OPT_L_FANOUT:
        if (cli_parse_long (cli, "--fanout", arg, 1, 4096, &v) < 0)
            return -1;
        l->lo.fanout = (int)v;
        return 0;
    case OPT_L_CONNECT_TIMEOUT:
        l->lo.connect_timeout_set = true;
        return cli_parse_double (cli, "--connect-timeout", arg, 0.01, 3600,
                                 &l->lo.connect_timeout);
    case 'i':
        l->lo.ssh_key = arg;
        return 0;
    case OPT_L_KNOWN_HOSTS:
        l->lo.known_hosts = arg;
        return 0;
    case OPT_L_SSH_CONFIG:
        l->lo.ssh_config = arg;
        return 0;
    case OPT_L_SSH_ACCEPT_NEW:
        l->lo.accept_new = true;
        return 0;
    case OPT_L_SSH_PORT:
        if (cli_parse_long (cli, "--ssh-port", arg, 1, 65535, &v) < 0)
            return -1;
        l->lo.ssh_port = (int)v;
        return 0;
    case OPT_L_REMOTE_DCRUN:
        l->lo.remote_dcrun = arg;
        return 0;
    case OPT_L_COPY_DCRUN:
        l->lo.copy_dcrun = true;
        return 0;
    case OPT_L_MPIRUN_ARGS:
        l->lo.mpirun_args = arg;
        return 0;
    case OPT_L_SRUN_MPI:
        l->lo.srun_mpi = arg;
        return 0;
    case OPT_L_SRUN_ARGS:
        l->lo.srun_args = arg;
        return 0;
    case OPT_L_LISTEN_ADDR:
        l->lo.listen_addr = arg;
        return 0;
    }
    return 1; /* not a launch option */
}

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

/* Remember a command option as "--name" [value]. */
/* The command's option (of opts or opts2) with this key, or NULL. */
static const struct cli_opt *find_opt (const struct cli_command *cmd, int key)
{
    const struct cli_opt *tables[] = {cmd->opts, cmd->opts2};

    for (int t = 0; t < 2; t++)
        for (const struct cli_opt *o = tables[t]; o && o->name; o++)
            if (o->key == key)
                return o;
    return NULL;
}

/* Remember a command option as "--name" [value]. */
static void keep_own (struct cli *cli, const struct cli_command *cmd, int key,
                      const char *arg)
{
    const struct cli_opt *o = find_opt (cmd, key);
    char **v;

    if (!o ||
        !(v = realloc (cli->own_args, (size_t)(cli->nown + 3) * sizeof (*v))))
        return;
    cli->own_args = v;
    if (asprintf (&v[cli->nown], "--%s", o->name) < 0)
        return;
    cli->nown++;
    if (o->has_arg && arg && (v[cli->nown] = strdup (arg)))
        cli->nown++;
    v[cli->nown] = NULL;
}

static int count_opts (const struct cli_opt *o)
{
    int n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

static void add_short (char *s, size_t *len, const struct cli_opt *o)
{
    if (o->key > 0 && o->key < 128) {
        s[(*len)++] = (char)o->key;
        if (o->has_arg == required_argument)
            s[(*len)++] = ':';
    }
}

int cli_parse (struct cli *cli, const struct cli_command *cmd, int argc,
               char **argv, cli_opt_f cb, void *ctx, int *optindp)
{
    int ng = count_opts (global_opts);
    int nc1 = count_opts (cmd->opts);
    int nc = nc1 + count_opts (cmd->opts2);
    int nl = cmd->launch_opts ? count_opts (launch_opts) : 0;
    struct option *lo = calloc ((size_t)(ng + nc + nl + 1), sizeof (*lo));
    char *shorts = calloc ((size_t)(ng + nc + nl) * 2 + 4, 1);
    size_t slen = 0;
    int rc = -1;

    if (!lo || !shorts) {
        cli_error (EXIT_FAIL, "out of memory");
        goto out;
    }
    shorts[slen++] = '+';
    shorts[slen++] = ':';
    for (int i = 0; i < ng; i++) {
        lo[i] = (struct option){global_opts[i].name, global_opts[i].has_arg,
                                NULL, global_opts[i].key};
        add_short (shorts, &slen, &global_opts[i]);
    }
    for (int i = 0; i < nc; i++) {
        const struct cli_opt *o =
            i < nc1 ? &cmd->opts[i] : &cmd->opts2[i - nc1];
        lo[ng + i] = (struct option){o->name, o->has_arg, NULL, o->key};
        add_short (shorts, &slen, o);
    }
    for (int i = 0; i < nl; i++) {
        lo[ng + nc + i] =
            (struct option){launch_opts[i].name, launch_opts[i].has_arg, NULL,
                            launch_opts[i].key};
        add_short (shorts, &slen, &launch_opts[i]);
    }
    optind = 0; /* full re-initialisation (GNU) */
    opterr = 0;
    for (;;) {
        int prev = optind ? optind : 1;
        int c = getopt_long (argc, argv, shorts, lo, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'f':
            cli->hostfile = optarg;
            break;
        case 'H':
            cli->hosts = optarg;
            break;
        case 'n':
            if (cli_parse_long (cli, "-n", optarg, 1, 1000000, &cli->np) < 0)
                goto out;
            break;
        case 'L':
            cli->launcher = optarg;
            break;
        case 'v':
            cli->verbose++;
            break;
        case 'q':
            cli->quiet = true;
            break;
        case OPT_JSON:
            cli->json = true;
            break;
        case OPT_DRY_RUN:
            cli->dry_run = true;
            break;
        case 'h':
            cli_print_help (cmd);
            rc = 1;
            goto out;
        case ':':
            cli_usage_error (cli, "option '%s' needs an argument",
                             argv[prev < argc ? prev : argc - 1]);
            goto out;
        case '?':
            if (optopt && optopt < 128)
                cli_usage_error (cli, "unknown option '-%c'", optopt);
            else
                cli_usage_error (cli, "unknown option '%s'",
                                 argv[prev < argc ? prev : argc - 1]);
            goto out;
        default:
            if (cmd->launch_opts) {
                int lr = launch_opt (cli, c, optarg);
                if (lr < 0)
                    goto out;
                if (lr == 0)
                    break;
            }
            if (!cb || cb (cli, c, optarg, ctx) < 0)
                goto out;
            keep_own (cli, cmd, c, optarg);
            break;
        }
    }
    *optindp = optind;
    rc = 0;
out:
    free (lo);
    free (shorts);
    return rc;
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
