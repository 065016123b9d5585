/* launch.h - launchers: start one process per rank, give back its bytes
 *
 * A launcher (local, ssh, mpi, slurm) is an ops table filled with designated
 * initializers and listed in a static NULL-terminated registry (launch.c),
 * the entries under #if HAVE_SSH / HAVE_MPI from config.h.
 *
 * The caller owns the event loop.  Every launcher is single-threaded and
 * event driven, libsubprocess style:
 *
 *     l = dc_launch_create ("ssh", &opts, &err);
 *     dc_launch_spawn (l, ranks, nranks, &err);      start every rank
 *     loop:
 *         n = dc_launch_pollfds (l, fds, max);        what to poll for
 *         poll (fds, n + mine, timeout);
 *         dc_launch_progress (l, fds, n);             calls the callbacks
 *     dc_launch_destroy (l);
 *
 * Per rank the caller gets three byte channels: stdout and stderr through
 * on_output (raw bytes, any split), and a stdin/control channel through
 * dc_launch_write() / dc_launch_close_stdin().  A later framed protocol runs
 * over these.  When a rank has ended and both its output streams are drained,
 * on_exit reports its status (exit code or signal), exactly once per rank.
 *
 * Every rank runs under an agent, a child subreaper (lib/launch/proctree.h):
 * the local launcher's forked agent, `dcrun worker` on other hosts.  It runs
 * the rank's command in its own process group and, when the command ends or
 * the launcher is gone (EOF on the control channel, parent death), kills
 * the rank's whole tree, descendants that left the group included.  Signals
 * travel as the control line "signal N\n" (dc_launch_signal does that for
 * remote ranks; SIGKILL of an exec_in_place rank closes its channel).
 */
#ifndef DC_LAUNCH_H
#define DC_LAUNCH_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util/error.h"

enum dc_launch_stream {
    DC_LAUNCH_STDOUT = 1,
    DC_LAUNCH_STDERR = 2,
};

/* How a rank ended. */
struct dc_launch_status {
    int rank;
    bool signaled;     /* true: killed by signal sig; false: exited with code */
    int code;          /* exit code when !signaled */
    int sig;           /* signal number when signaled */
    bool failed_start; /* never started (exec failed, connection lost) */
    char reason[256];  /* why it failed to start, "" otherwise */
};

typedef void (*dc_launch_output_f) (int rank, enum dc_launch_stream stream,
                                    const char *data, size_t len, void *arg);
typedef void (*dc_launch_exit_f) (const struct dc_launch_status *st, void *arg);

/* What to start for one rank.  Strings are borrowed for the call. */
struct dc_launch_rank {
    int rank;
    const char *host;   /* host name as the hostfile gave it */
    const char *user;   /* ssh user, NULL: default */
    int port;           /* ssh port, 0: default */
    const char *cpus;   /* CPU list to bind to ("0-3,8"), NULL: no binding */
    char *const *env;   /* "NAME=VALUE" added to the rank's environment */
    char *const *argv;  /* the command, argv[0] looked up on PATH */
    const char *wdir;   /* the rank starts here (remote: worker --wdir; ssh
                           checks it exists before any rank starts); NULL:
                           the login folder, or this process's folder */
    bool exec_in_place; /* the command itself speaks on the stdin/stdout
                           channel (dcrun serve): a remote `dcrun worker
                           --exec` execs it in place instead of keeping
                           the channel for control lines; signals to such
                           a rank close its channel, which ends it */
    /* more words for a remote `dcrun worker` (--place ...), or NULL */
    char *const *worker_args;
    /* a remote rank's stdin is what dc_launch_write() sends, framed on its
     * control channel (worker --stdin, control.h: the ssh channel, or the
     * connect-back ctl connection of mpi and slurm ranks) until
     * dc_launch_close_stdin(); false: /dev/null.  slurm: the same for
     * every rank.  The local launcher has opts.stdin_null instead. */
    bool stdin_data;
};

/* Options of every launcher; each reads the ones it knows. */
struct dc_launch_opts {
    dc_launch_output_f on_output;
    dc_launch_exit_f on_exit;
    void *arg;
    int nranks_total; /* size of the job (for mpi/slurm) */
    /* ssh */
    double connect_timeout;   /* seconds, connect + auth per host; 0: 10 */
    bool connect_timeout_set; /* given by the user: wins over the ssh
                                 config's ConnectTimeout */
    int fanout;               /* hosts connecting at once; 0: 64 */
    const char *ssh_key;      /* -i */
    const char *known_hosts;  /* NULL: ~/.ssh/known_hosts */
    const char *ssh_config;   /* NULL: ~/.ssh/config */
    bool accept_new;          /* add unknown host keys */
    int ssh_port;             /* default port, 0: 22 */
    const char *remote_dcrun; /* dcrun on the hosts; NULL: this binary */
    /* ssh: the variable of the ranks' environment that holds a TCP port
     * for rank 0's host (MASTER_PORT), or NULL.  Before any rank starts,
     * rank 0's host is asked (`dcrun worker --port-check`): with
     * port_fixed, is the value given free there (busy: a launch failure
     * naming the host); else which port is free there, and every rank
     * gets that one (dc_launch.port says which). */
    const char *port_var;
    bool port_fixed;
    bool copy_dcrun; /* a host without remote_dcrun gets this
                        binary in a private temporary folder,
                        removed at the end */
    int cancel_fd;   /* readable: abandon a spawn in progress; -1 */
    bool stdin_null; /* local: the command's stdin is /dev/null and
                        the stdin channel is not used */
    /* mpi */
    const char *mpirun_args; /* extra words for mpirun */
    const char *workdir;     /* for files the launcher writes; NULL: TMPDIR */
    const char *listen_addr; /* mpi, slurm: connect-back address; NULL:
                                loopback or the one that reaches the ranks */
    /* slurm */
    const char *srun_mpi;  /* srun --mpi=TYPE (pmix), NULL: none given */
    const char *srun_args; /* extra words for srun */
};

struct dc_launch;

struct dc_launch_ops {
    const char *name;
    const char *summary;
    /* Allocate private state in l->data; check the options. */
    int (*init) (struct dc_launch *l, dc_error_t *errp);
    /* Start every rank.  Fails (and leaves nothing running) when any rank
     * cannot be started for a reason of the launcher: host unreachable,
     * login or host key refused.  A command that cannot be executed is
     * not a launcher failure: its rank ends with failed_start. */
    int (*spawn) (struct dc_launch *l, const struct dc_launch_rank *ranks,
                  int n, dc_error_t *errp);
    /* Fill fds (at most max) with what to poll; return the count.  Sets
     * *timeout_ms lower when the launcher needs a call sooner. */
    int (*pollfds) (struct dc_launch *l, struct pollfd *fds, int max,
                    int *timeout_ms);
    /* Handle what poll found (fds as filled, revents set), reap ranks, call
     * the callbacks.  Returns the number of ranks still running. */
    int (*progress) (struct dc_launch *l, const struct pollfd *fds, int n);
    /* Write to the stdin/control channel of a rank; -1 EAGAIN when full. */
    ssize_t (*write) (struct dc_launch *l, int rank, const void *buf,
                      size_t len);
    /* Optional: a descriptor that polls POLLOUT when write() to rank takes
     * bytes again (-1: none; the caller then retries on a timer). */
    int (*write_fd) (struct dc_launch *l, int rank);
    int (*close_stdin) (struct dc_launch *l, int rank);
    /* Send sig to the process group of a rank (rank -1: every rank). */
    int (*signal) (struct dc_launch *l, int rank, int sig);
    void (*fini) (struct dc_launch *l);
};

struct dc_launch {
    const struct dc_launch_ops *ops;
    struct dc_launch_opts opts;
    void *data; /* the launcher's own */
    int port;   /* opts.port_var: the port rank 0's host agreed to, 0 */
};

/* Registry: the launchers compiled in, NULL-terminated. */
extern const struct dc_launch_ops *const dc_launchers[];

/* The launcher called name, or NULL with errp listing those compiled in. */
const struct dc_launch_ops *dc_launch_find (const char *name, dc_error_t *errp);

/* Space-separated names of the launchers compiled in (static string). */
const char *dc_launch_names (void);

/* What -L auto picks: "slurm" inside a Slurm allocation (SLURM_JOB_ID set,
 * not already a step), "local" when every host is this host, else "ssh".
 * hosts[n] are host names. */
const char *dc_launch_auto (const char *const *hosts, size_t n);

/* True when name is this host: localhost, 127.x.y.z, ::1, own hostname. */
bool dc_launch_is_local_host (const char *name);

struct dc_launch *dc_launch_create (const char *name,
                                    const struct dc_launch_opts *o,
                                    dc_error_t *errp);
void dc_launch_destroy (struct dc_launch *l); /* accepts NULL */

int dc_launch_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                     int n, dc_error_t *errp);
int dc_launch_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                       int *timeout_ms);
int dc_launch_progress (struct dc_launch *l, const struct pollfd *fds, int n);
ssize_t dc_launch_write (struct dc_launch *l, int rank, const void *buf,
                         size_t len);
int dc_launch_close_stdin (struct dc_launch *l, int rank);
int dc_launch_signal (struct dc_launch *l, int rank, int sig);
/* The descriptor to poll for POLLOUT after dc_launch_write() said EAGAIN,
 * or -1 when the launcher has none. */
int dc_launch_write_fd (struct dc_launch *l, int rank);

/* Shell-quote argv into one command line for sh -c (caller frees). */
char *dc_launch_shell_join (char *const *argv);

/* The `dcrun worker` command line a remote launcher runs for rank r:
 * DCRUN worker [--cpus LIST] [WORKER_ARGS...] [-e NAME=VALUE]... -- CMD ARGS,
 * shell-quoted
 * (caller frees).  dcrun NULL: "dcrun". */
char *dc_launch_worker_cmdline (const char *dcrun,
                                const struct dc_launch_rank *r);

/* The host name a connection to host goes to after the ssh client config
 * (HostName), into buf.  Only with the ssh launcher compiled in. */
int dc_launch_ssh_hostname (const struct dc_launch_opts *o, const char *host,
                            char *buf, size_t len, dc_error_t *errp);

/* A free TCP port on this host (bound and released), -1 on error. */
int dc_launch_free_port (void);

/* True when TCP port can be bound on every IPv4 address of this host
 * (with SO_REUSEADDR, as servers bind: a port in TIME_WAIT is free, one
 * that a process listens on, on any address, is not). */
bool dc_launch_port_free (int port);

/* Parse a CPU list "0-3,8" into a cpu_set_t-sized mask and apply it to the
 * calling process with sched_setaffinity.  -1 with errno on a bad list. */
int dc_launch_bind_cpus (const char *cpus);

/* Self-pipe for signals: install handlers for the signals in sigs (ended
 * by 0) that write the signal number as one byte to a non-blocking pipe;
 * returns its read end.  Handlers, not signalfd, because libraries loaded
 * with the program (OpenBLAS) start threads that do not block signals.
 * One per process; dc_sigpipe_destroy() puts SIG_DFL back. */
int dc_sigpipe_create (const int *sigs);
/* Next signal number from the pipe, 0 when none is waiting. */
int dc_sigpipe_read (void);
void dc_sigpipe_destroy (void);

extern const struct dc_launch_ops dc_launch_local;
extern const struct dc_launch_ops dc_launch_ssh;
extern const struct dc_launch_ops dc_launch_mpi;
extern const struct dc_launch_ops dc_launch_slurm;

#endif
