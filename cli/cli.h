/* cli.h - shared command-line plumbing: global options, exit codes, output
 *
 * cli/ is the only code that prints or picks exit codes.  Each subcommand is
 * a cmd_NAME.c with `int cmd_NAME (struct cli *cli, int argc, char **argv)`
 * listed in main.c's table; it declares its own options and calls
 * cli_parse(), which also accepts the global options anywhere.
 */
#ifndef DC_CLI_H
#define DC_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdbool.h>

#include "lib/util/error.h"
#include "lib/launch/launch.h"
#include "lib/hosts/plan.h"

/* Exit status (DESIGN.md section 2, documented in dcrun(1)). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,   /* a rank or the job failed */
    EXIT_USAGE = 2,  /* bad command line */
    EXIT_INPUT = 3,  /* bad input: hostfile, model, array, topology */
    EXIT_LAUNCH = 4, /* launch or connection failure */
    EXIT_GPU = 5,    /* GPU or compute failure */
};

/* Options of every command that starts ranks (exec, infer, train, check,
 * probe -f): placement, binding and the launchers' own (ssh, mpi). */
struct cli_launch {
    struct dc_plan_opts plan; /* --map-by, --oversubscribe */
    struct dc_launch_opts lo; /* ssh and mpi options */
    bool no_bind;             /* --bind none */
    double kill_grace;        /* --kill-grace, seconds; 0: 3 */
    char **exports;           /* -x VAR[=VALUE] or PATTERN, in order */
    int nexports;
    bool export_all;     /* --export-all */
    int gpu_bind;        /* --gpu-bind: enum dc_gpu_bind (rankenv.h) */
    const char *wdir;    /* --wdir, NULL: the caller's folder */
    const char *exclude; /* --exclude LIST (hostlist ranges) */
    int master_port;     /* --master-port, 0: a free one */
};

struct cli {
    const char *prog;    /* "dcrun" */
    const char *command; /* subcommand name */
    /* global options */
    const char *hostfile;     /* -f */
    const char *hosts;        /* -H */
    long np;                  /* -n, 0 when not given */
    const char *launcher;     /* -L, NULL = auto */
    int verbose;              /* -v count */
    bool quiet;               /* -q */
    bool json;                /* --json */
    bool dry_run;             /* --dry-run */
    struct cli_launch launch; /* when the command takes launch options */
    char **own_args;          /* the command's own options as given, for
                                 starting the same command on other ranks */
    int nown;
};

/* What an option sets in the struct its table fills (the command's ctx,
 * struct cli for the global options, struct cli_launch for the launch
 * options): cli_parse sets it, with the usage error named by the option. */
enum cli_kind {
    CLI_NONE,   /* nothing: fn does it (or -h) */
    CLI_STR,    /* const char *: the word itself (borrowed from argv) */
    CLI_FLAG,   /* bool: true */
    CLI_CLEAR,  /* bool: false */
    CLI_COUNT,  /* int: one more */
    CLI_LONG,   /* long, from min to max */
    CLI_INT,    /* int, from min to max */
    CLI_SIZE,   /* size_t, from min to max */
    CLI_I64,    /* int64_t (long long), from min to max */
    CLI_DOUBLE, /* double, from min to max */
    CLI_WORD,   /* an enum: the value of one of words */
    CLI_BWORD,  /* bool: the value of one of words */
    CLI_BYTES,  /* long long, 1 to max (a whole number of K, M or G) with
                   the suffixes of dc_layout_parse_bytes */
};

/* A word an option takes and the value it sets; a list ends with word
 * NULL.  A word whose value an earlier word has is an alias: taken, but
 * left out of the usage error ("expected f4 or f2"). */
struct cli_word {
    const char *word;
    int value;
};

struct cli;

/* An option that needs real code: base is the struct its table fills.
 * Returns 0, or -1 after cli_usage_error(). */
typedef int (*cli_opt_f) (struct cli *cli, const char *arg, void *base);

/* A subcommand option: its names, help text and what it sets. */
struct cli_opt {
    const char *name; /* long name */
    int key;          /* short option char, 0: none */
    const char *arg;  /* argument name for help, NULL: takes none */
    const char *help;
    enum cli_kind kind;
    size_t off;                   /* of the field in the table's struct */
    double min, max;              /* the numbers */
    const struct cli_word *words; /* CLI_WORD, CLI_BWORD */
    cli_opt_f fn;                 /* CLI_NONE: the code that sets it */
};

/* What an option of a table for struct T sets, after its help text:
 * {"lr", 0, "LR", "help", CLI_AT (T, CLI_DOUBLE, c.lr, 0, 1e6)}. */
#define CLI_AT(T, kd, member, ...)                                             \
    .kind = (kd), .off = offsetof (T, member), __VA_ARGS__

struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;           /* "[-f FILE|-H LIST] [--json]" */
    const struct cli_opt *opts;  /* terminated by {0} */
    const struct cli_opt *opts2; /* more, shared with other commands */
    size_t opts2_off;            /* of the struct opts2 fills, in ctx */
    bool launch_opts;            /* also takes the launch options */
    int (*run) (struct cli *cli, int argc, char **argv);
};

/* Parse argv (the words after the command name, argv[0] = command name):
 * each option sets its field (of ctx for the command's own options) or
 * calls its fn.  Handles -h/--help (prints help, returns 1 so the caller
 * exits 0).  Returns 0 and sets *optindp to the first operand, or -1 after
 * printing a usage error (exit 2). */
int cli_parse (struct cli *cli, const struct cli_command *cmd, int argc,
               char **argv, void *ctx, int *optindp);

/* Set o's field in base (the struct o's table fills) from arg, or call
 * its fn (fields.c).  Returns 0, or -1 after a usage error. */
int cli_opt_set (struct cli *cli, const struct cli_opt *o, const char *arg,
                 void *base);

/* Word lists for CLI_WORD: --io direct|relay|auto (enum dc_io_mode),
 * --gpu-bind host|rank|none (enum dc_gpu_bind). */
extern const struct cli_word cli_io_words[];
extern const struct cli_word cli_gpu_bind_words[];

/* cli_parse for a command without operands (a word left over is the usage
 * error "unexpected argument"): -1 to go on, else the exit status (0 after
 * --help, 2 after a usage error). */
int cli_parse_opts (struct cli *cli, const struct cli_command *cmd, int argc,
                    char **argv, void *ctx);

/* Print "dcrun: SUBJECT: message" (and "hint: ..." lines if the text has
 * them after a newline) to stderr.  Returns code, for `return cli_err ()`. */
int cli_error (int code, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Print a usage error with a hint to run --help; returns -1. */
int cli_usage_error (const struct cli *cli, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Strict number parsing for option values: -1 (with a usage error printed)
 * when s is not an integer in [min, max]. */
int cli_parse_long (const struct cli *cli, const char *opt, const char *s,
                    long min, long max, long *val);
int cli_parse_double (const struct cli *cli, const char *opt, const char *s,
                      double min, double max, double *val);

/* Print the help of a command (or of dcrun with cmd NULL). */
void cli_print_help (const struct cli_command *cmd);

/* The command table (main.c). */
extern const struct cli_command *const cli_commands[];

/* Install the log handler that prints lib/ messages per -v/-q. */
void cli_log_init (const struct cli *cli);

#endif

/* Host list and rank map from the global options, shared by every command
 * that places ranks.  On failure prints the error and returns NULL with
 * *exitp set (EXIT_INPUT for bad input, EXIT_USAGE for bad options). */
struct dc_hosts;
struct dc_plan;
struct dc_plan_opts;
struct dc_hosts *cli_resolve_hosts (const struct cli *cli, int local_gpus,
                                    int *exitp);
struct dc_plan *cli_make_plan (const struct cli *cli,
                               const struct dc_hosts *hosts,
                               const struct dc_plan_opts *o, int *exitp);

enum dc_map_by;
int cli_parse_map_by (const struct cli *cli, const char *arg,
                      enum dc_map_by *map_by);
