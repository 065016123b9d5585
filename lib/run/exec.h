/* exec.h - `dcrun exec` below the CLI: run CMD once per rank, its output
 * as tagged lines, the job's end by mpirun's rules
 *
 * The caller builds the ranks (struct dc_launch_rank: host, argv, the rank
 * environment) and hands them here with the launcher's name and options.
 * dc_exec_run owns one event loop: poll() over a self-pipe of signals
 * (SIGINT, SIGTERM, SIGHUP, SIGCHLD), this stdin and the launcher's
 * descriptors, until every rank has ended.
 *
 *   output   cut into lines per rank and stream; each line goes out with
 *            one write(2) on out_fd or err_fd, prefixed "RANK@HOST: "
 *            (no_tag: not) and the time it arrived (timestamps), so no two
 *            ranks ever share a line.  A line longer than DC_EXEC_LINE_MAX
 *            bytes goes out in pieces of that size.  A last line without
 *            its newline (a prompt) of a rank that gets this stdin is shown
 *            after DC_EXEC_PARTIAL_MS while in_fd is an open terminal;
 *            whoever writes next on that stream ends it with a newline
 *            first, and the prompt's line comes again whole when it ends.
 *            The bytes of the launcher's driver (mpirun, srun) go to
 *            err_fd as they come.  output_dir: also DIR/rank-N.out and
 *            DIR/rank-N.err, the raw bytes (created, never through a link).
 *   stdin    in_fd to rank 0 (DC_EXEC_STDIN_RANK0), to every rank in turn
 *            (ALL) or nowhere (NONE): the local launcher forwards it on a
 *            pipe, the others' ranks get it framed on their worker's
 *            control channel (lib/launch/control.h); at its EOF the ranks'
 *            stdin is closed.
 *   stop     a failing rank stops every rank (kill_on_bad_exit), as do a
 *            first signal and the timeout: SIGTERM, then SIGKILL after
 *            kill_grace seconds; a second signal kills at once.
 *   end      the first failing rank's status (128+N for signal N), or 1
 *            with exit_any: res.code.
 *
 * These output lines are the ranks' data, like an output file.  dcrun's
 * own messages never print here: they come back in err (the text as dcrun
 * prints it after "dcrun: ").  A restart (--max-restarts) is a new run
 * with ranks the caller built again.
 */
#ifndef DC_RUN_EXEC_H
#define DC_RUN_EXEC_H

#include <stdbool.h>

#include "lib/hosts/plan.h"
#include "lib/launch/launch.h"
#include "lib/util/error.h"

#define DC_EXEC_LINE_MAX 16384
#define DC_EXEC_PARTIAL_MS 100

enum dc_exec_stdin {
    DC_EXEC_STDIN_RANK0 = 0,
    DC_EXEC_STDIN_ALL,
    DC_EXEC_STDIN_NONE,
};

struct dc_exec_opts {
    const char *launcher; /* "local", "ssh", "mpi", "slurm" */
    /* the launcher's options; on_output, on_exit, arg, nranks_total,
     * cancel_fd and stdin_null are set by dc_exec_run */
    struct dc_launch_opts lo;
    const struct dc_plan *plan;         /* the ranks' hosts (tags, results) */
    const struct dc_launch_rank *ranks; /* plan->size of them, borrowed */
    int out_fd, err_fd;                 /* the ranks' stdout and stderr lines */
    int in_fd; /* this stdin, forwarded as stdin_to says */
    enum dc_exec_stdin stdin_to;
    bool no_tag, timestamps;
    const char *output_dir; /* NULL: none */
    const char *chdir;      /* this process enters it after output_dir is
                               opened and before the ranks start (they
                               start here), NULL: stay */
    bool kill_on_bad_exit;
    double timeout;    /* seconds from the start, then stop; 0: none */
    double kill_grace; /* seconds from SIGTERM to SIGKILL */
    bool exit_any;     /* a failure is status 1, not the rank's */
    int master_port;   /* MASTER_PORT the ranks got, 0: none */
};

/* How one rank ended. */
struct dc_exec_rank_result {
    bool done; /* false: never ended (the job stopped before) */
    struct dc_launch_status st;
    double end;     /* dc_now () when it ended */
    double seconds; /* from the start to its end */
};

struct dc_exec_result {
    int size;
    struct dc_exec_rank_result *ranks; /* size of them */
    double start;                      /* dc_now () at the spawn */
    bool ran;        /* every rank ended: ranks[] say how (--json, --report) */
    int first_fail;  /* the first rank that failed, -1 */
    int nfailed;     /* ranks that failed */
    int code;        /* DC_STATUS_FAIL of a rank: its exit status (1..255) */
    int interrupted; /* the signal that stopped the job, 0 */
    bool timed_out;
    int master_port; /* the one rank 0's host agreed to, or the opts' */
};

struct dc_exec;

/* Fill lrs[r] for every rank of o->plan: host, user, port, its CPUs
 * (none with no_bind), cmd, wdir for ssh ranks (the others start in
 * this process's folder: o->chdir), stdin_data by o->launcher and
 * o->stdin_to (fwd: this stdin goes to ranks at all).  env and
 * worker_args are the caller's. */
void dc_exec_ranks (const struct dc_exec_opts *o, struct dc_launch_rank *lrs,
                    char *const *cmd, const char *wdir, bool no_bind, bool fwd);

/* MASTER_PORT (port; 0: dcrun picks one) on rank 0's host: the ssh
 * launcher asks that host's dcrun before any rank starts (o->lo.port_var
 * and port_fixed set here); for the others a rank 0 on this host is
 * checked here (when check).  DC_STATUS_OK, or DC_STATUS_LAUNCH with err
 * (a "hint: " line after a newline). */
int dc_exec_master_port (struct dc_exec_opts *o, int port, bool check,
                         dc_error_t *err);

/* The --dry-run plan of o (o->ranks filled, nothing started) as text:
 * the launcher, a table of the ranks (host, local rank, node, GPUs, CPUs),
 * then the driver's command line (mpi, slurm) or each rank's.  Caller
 * frees; NULL when out of memory. */
char *dc_exec_dry_run (const struct dc_exec_opts *o);

/* The buffers and per-rank results of a run of o (borrowed until
 * dc_exec_destroy; o->ranks too).  NULL with err when out of memory. */
struct dc_exec *dc_exec_create (const struct dc_exec_opts *o, dc_error_t *err);

/* Start every rank and run until each has ended.  Returns a dc_status:
 * DC_STATUS_OK; DC_STATUS_FAIL (a rank failed: res.code; the timeout;
 * out of memory, poll); DC_STATUS_SIGNAL (res.interrupted, before or
 * after the start); DC_STATUS_LAUNCH (the launcher, chdir);
 * DC_STATUS_INPUT (output_dir).  err says why when not OK.  Once only. */
int dc_exec_run (struct dc_exec *x, dc_error_t *err);

const struct dc_exec_result *dc_exec_result (const struct dc_exec *x);

/* --trace and --report of a run (either may be NULL): each rank from the
 * start to its end on this host's clock; the trace has one process per
 * host and one thread per rank (tid rank + 1), a failing rank marked by
 * an instant event.  0, or -1 with err when a file cannot be written. */
int dc_exec_record (const struct dc_exec *x, const char *trace,
                    const char *report, dc_error_t *err);

/* --json: one object, "exit" (exitcode), "seconds", "master_port" and
 * "ranks": per rank its "host", "status" or "signal" (null, null: never
 * ended), "error" of a failed start, "seconds".  One line without its
 * newline; caller frees; NULL when out of memory. */
char *dc_exec_json (const struct dc_exec *x, int exitcode, double seconds);

/* The launcher stopped (ranks left are killed), files closed, the signal
 * pipe given back.  Accepts NULL. */
void dc_exec_destroy (struct dc_exec *x);

/* --stdin's word: "rank0" (or "0"), "all", "none" into *to; -1 for any
 * other (NULL too), *to left alone. */
int dc_exec_stdin_parse (const char *word, enum dc_exec_stdin *to);

/* True when rank r gets this stdin under mode to. */
bool dc_exec_stdin_wanted (enum dc_exec_stdin to, int r);

#endif
