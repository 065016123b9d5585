/* launch_io.h - connect-back channels for launchers that start every rank
 * through one driver process (mpirun, srun)
 *
 * mpirun and srun multiplex the output of all ranks onto their own stdout
 * and stderr in chunks that may cut a line, and report only the first
 * failing rank.  So the ranks' `dcrun worker` connects back to dcrun
 * instead: three TCP connections per rank, each opened with the line
 *
 *     dcrun-io 1 TOKEN RANK out|err|ctl\n
 *
 * "out" and "err" become the command's stdout and stderr (raw bytes, one
 * connection per rank and stream, so lines are whole and never mixed), and
 * "ctl" carries "signal N" lines to the worker and, when the command has
 * ended, "exit N" or "signal N" back: an exact status for every rank.
 * EOF on ctl (dcrun gone) makes the worker kill its command's group.
 *
 * The worker finds dcrun in $DCRUN_IO ("ADDR:PORT[,ADDR:PORT]...", tried in
 * order) and proves it belongs to the job with $DCRUN_IO_TOKEN (32 hex
 * digits from getrandom, passed in the driver's environment, never on a
 * command line).  A connection with a wrong token, rank or kind is closed.
 *
 * The head side is a launcher core: launch_mpi.c and launch_slurm.c call
 * dc_iodrv_prepare(), build their driver's argv, then dc_iodrv_start(); the
 * other ops of their tables are the dc_iodrv_* functions below.
 */
#ifndef DC_LAUNCH_IO_H
#define DC_LAUNCH_IO_H

#include <poll.h>
#include <sys/types.h>

#include "lib/util/error.h"
#include "lib/launch/launch.h"

#define DC_IO_ENV "DCRUN_IO"
#define DC_IO_TOKEN_ENV "DCRUN_IO_TOKEN"
#define DC_IO_HELLO_MAX 160

/* The rank environment never travels on a command line (values of -x may
 * be secrets): over ssh it is written to the worker's stdin before
 * anything else, as NUL-terminated "NAME=VALUE" entries announced by
 * `dcrun worker --env-stdin BYTES`; through mpirun, what every rank shares
 * is in mpirun's environment as DC_XENV_PREFIX<k>=NAME=VALUE, exported
 * by name (-x DCRUN_XENV_<k>), and the worker unwraps it. */
#define DC_XENV_PREFIX "DCRUN_XENV_"
#define DC_ENV_BLOCK_MAX (1024 * 1024)

/* ---- worker side ---- */

/* Connect to the first address of addrs that answers within timeout_s and
 * send the hello line.  Returns the socket (blocking, close-on-exec), or -1
 * with errp filled. */
int dc_io_connect (const char *addrs, const char *token, int rank,
                   const char *kind, double timeout_s, dc_error_t *errp);

/* ---- head side ---- */

/* Allocate the core state in l->data (init op). */
int dc_iodrv_init (struct dc_launch *l, dc_error_t *errp);

/* Listen, make the token and the address list for ranks[n], and a private
 * directory for the launcher's files (dc_iodrv_dir). */
int dc_iodrv_prepare (struct dc_launch *l, const struct dc_launch_rank *ranks,
                      int n, dc_error_t *errp);

/* "ADDR:PORT,..." that the ranks connect to (borrowed). */
const char *dc_iodrv_addrs (struct dc_launch *l);

/* The private directory (borrowed, removed by fini). */
const char *dc_iodrv_dir (struct dc_launch *l);

/* Run argv (argv[0] on PATH) in its own process group with extra env
 * ("NAME=VALUE", DCRUN_IO and DCRUN_IO_TOKEN added), then wait until every
 * rank has connected, within opts.connect_timeout plus 1 s per 16 ranks.
 * Fails (nothing left running) when the driver ends first, when no rank
 * connects in time, or on opts.cancel_fd (errno EINTR); errp then carries
 * the driver's last words. */
int dc_iodrv_start (struct dc_launch *l, const char *driver_name,
                    char *const *argv, char *const *env, dc_error_t *errp);

int dc_iodrv_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                      int *timeout_ms);
int dc_iodrv_progress (struct dc_launch *l, const struct pollfd *fds, int n);
int dc_iodrv_signal (struct dc_launch *l, int rank, int sig);
/* A rank's stdin (dc_launch_rank.stdin_data: its worker runs with
 * --stdin) in frames on its ctl connection (control.h); EAGAIN until the
 * rank has connected and while a frame is on its way. */
ssize_t dc_iodrv_write (struct dc_launch *l, int rank, const void *buf,
                        size_t len);
int dc_iodrv_close_stdin (struct dc_launch *l, int rank);
void dc_iodrv_fini (struct dc_launch *l);

/* The mpirun command line for ranks[n] of an mpi launcher l (NULL-ended,
 * the caller frees each word and the array); the hostfile is written to
 * hostfile when not NULL ("HOSTFILE" stands in the line otherwise). */
int dc_launch_mpi_argv (struct dc_launch *l, const struct dc_launch_rank *ranks,
                        int n, const char *hostfile, char ***argvp,
                        dc_error_t *errp);

/* The srun command line (same conventions; hostfile gets one line per
 * rank, for SLURM_HOSTFILE). */
int dc_launch_slurm_argv (struct dc_launch *l,
                          const struct dc_launch_rank *ranks, int n,
                          const char *hostfile, char ***argvp,
                          dc_error_t *errp);

/* The driver command line of an mpi or slurm launcher for ranks[n], for
 * --dry-run (as dc_launch_mpi_argv, nothing written). */
int dc_launch_driver_argv (struct dc_launch *l,
                           const struct dc_launch_rank *ranks, int n,
                           char ***argvp, dc_error_t *errp);

/* opts.port_var (MASTER_PORT), before any rank starts: which port is
 * free on rank 0's host, or whether the one given with opts.port_fixed is
 * (the value of port_var in ranks[0].env), as the ssh launcher asks its
 * probe.  A rank 0 named as this host (localhost, 127.0.0.1, ::1, its
 * hostname) is answered here; another host by the launcher's driver
 * running `dcrun worker --port-check PORT` there alone: mk makes that
 * command (a NULL-terminated vector of malloc'ed words, freed here).  The
 * check's SIGCHLD is taken off opts.cancel_fd; another signal there
 * interrupts it (errno EINTR) and is raised again.  0 with l->port set
 * (untouched without port_var), -1 (errp; errno EADDRINUSE: busy). */
typedef int (*dc_iodrv_check_argv_f) (struct dc_launch *l,
                                      const struct dc_launch_rank *r0, int port,
                                      char ***argvp, dc_error_t *errp);
int dc_iodrv_port (struct dc_launch *l, const struct dc_launch_rank *ranks,
                   int n, dc_iodrv_check_argv_f mk, dc_error_t *errp);

/* Entry e of a rank's environment as the rank gets it: "PORT_VAR=l->port"
 * once a port was agreed, else e itself (buf: cap bytes of room). */
const char *dc_iodrv_port_entry (const struct dc_launch *l, const char *e,
                                 char *buf, size_t cap);

#endif
