/* agent.h - the agent of one rank on its host: what `dcrun worker` runs
 *
 * dc_agent_run() starts CMD in its own process group (bound to cpus,
 * stdin from the control channel's stdin frames with stdin_data, the
 * channel itself with exec, else /dev/null) and stays with it as a child
 * subreaper (proctree.h) until it ends:
 *
 *   - the control channel (ctl_fd) carries the messages of control.h:
 *     signals for the group, stdin for CMD (at most DC_AGENT_STDIN_MAX
 *     bytes held that CMD has not read, then the channel is not read: the
 *     head's writes wait, flow control end to end), its EOF;
 *   - EOF on the control channel, the channel's output hanging up (watch_fd;
 *     the head closes a rank's channel when its SIGKILL cannot get
 *     through), the parent's death, SIGTERM, SIGINT or SIGHUP stop the
 *     group: SIGTERM and SIGCONT, SIGKILL kill_grace seconds later;
 *   - when CMD ends, whatever it left behind (its group, the descendants
 *     that left it) is killed, and with a status fd (status_fd, the
 *     connect-back ctl channel of mpirun/srun ranks, launch_io.h) the line
 *     "exit N" or "signal N" goes there.
 *
 * The process-wide state it takes: the signal pipe (launch.h), SIGPIPE
 * ignored, PR_SET_PDEATHSIG, the subreaper flag.  Never prints.
 */
#ifndef DC_LAUNCH_AGENT_H
#define DC_LAUNCH_AGENT_H

#include <stdbool.h>

#include "lib/util/error.h"

#define DC_AGENT_STDIN_MAX (256 * 1024)

struct dc_agent_opts {
    char *const *cmd;   /* argv, argv[0] looked up on PATH */
    const char *cpus;   /* bind CMD to these CPUs, NULL: unbound */
    bool exec;          /* CMD's stdin and stdout are the channel (fd 0, 1) */
    bool stdin_data;    /* CMD's stdin: the control channel's stdin frames */
    int ctl_fd;         /* the control channel, -1: none */
    int watch_fd;       /* hangs up when the channel is gone, -1: none */
    int out_fd, err_fd; /* CMD's stdout, stderr; -1: the agent's own.
                           out_fd is closed here once CMD holds it */
    int status_fd;      /* where "exit N"/"signal N" goes, -1: nowhere */
    double kill_grace;  /* seconds from SIGTERM to SIGKILL; 0: 2 */
};

enum dc_agent_rc {
    DC_AGENT_OK = 0,      /* CMD ran: *statusp is its wait status */
    DC_AGENT_SETUP = -1,  /* the agent itself could not start (errp) */
    DC_AGENT_NOEXEC = -2, /* CMD could not be bound or executed (errp) */
};

/* Run CMD as above.  Returns enum dc_agent_rc. */
int dc_agent_run (const struct dc_agent_opts *o, int *statusp,
                  dc_error_t *errp);

#endif
