/* proctree.h - an agent's hold on the process tree of its rank
 *
 * Every rank runs under an agent (the forked agent of the local launcher,
 * `dcrun worker` on remote hosts) that is a child subreaper: descendants
 * whose parent dies are reparented to the agent instead of init, so a
 * command that calls setsid() or daemonizes is still found.  When the rank
 * ends or the job stops, the agent kills the rank's process group, then every
 * process reparented to it, reaps them, and repeats until it has no child.
 *
 * Everything here is async-signal-safe (no malloc, no stdio): the local
 * launcher calls it in a forked child of a multi-threaded process.
 */
#ifndef DC_PROCTREE_H
#define DC_PROCTREE_H

#include <stdbool.h>
#include <sys/types.h>

/* Make the calling process a child subreaper.  -1 with errno on failure. */
int dc_proctree_subreaper (void);

/* Send sig to every process whose parent is ppid (found in /proc).
 * Returns how many were signalled, -1 with errno when /proc is unreadable. */
int dc_proctree_signal_children (pid_t ppid, int sig);

/* Kill what is left of a rank: SIGCONT and SIGKILL to the process group
 * pgid (0: none), then SIGCONT + SIGKILL to every child of the caller and
 * reap it, until the caller has no child left.  The caller must have
 * collected the statuses it wants (this reaps every child).  Returns the
 * number of processes reaped. */
int dc_proctree_kill (pid_t pgid);

/* Close every descriptor >= 3 but those in keep[n] (a forked agent that
 * does not exec must not hold the launcher's other pipes). */
void dc_proctree_close_fds (const int *keep, int n);

#endif
