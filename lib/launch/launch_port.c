/* launch_port.c - MASTER_PORT on rank 0's host for the driver launchers
 *
 * The ssh launcher asks rank 0's host which port is free there (or whether
 * the one given is) with its probe; mpirun and srun have no probe, so
 * before any rank starts their launcher runs `dcrun worker --port-check N`
 * alone on rank 0's host through the driver (a one-rank mpirun or srun
 * step) and reads its answer.  A rank 0 named as this host is answered
 * here without one.  See launch_io.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* True when name is this host by name (not any loopback address: the
 * test hosts 127.0.0.N stand for other machines). */
static bool named_here (const char *name)
{
    char me[256];

    if (!strcmp (name, "localhost") || !strcmp (name, "127.0.0.1") ||
        !strcmp (name, "::1"))
        return true;
    if (gethostname (me, sizeof (me)) < 0)
        return false;
    me[sizeof (me) - 1] = '\0';
    return !strcmp (name, me);
}

/* The environment of the check's mpirun: ours, and OpenMPI's two words
 * for root (calloc'ed vector of borrowed strings). */
static char **check_env (void)
{
    extern char **environ;
    size_t n = 0;

    while (environ[n])
        n++;
    char **env = calloc (n + 3, sizeof (*env));
    if (!env)
        return NULL;
    memcpy (env, environ, n * sizeof (*env));
    if (getuid () == 0) {
        env[n++] = "OMPI_ALLOW_RUN_AS_ROOT=1";
        env[n++] = "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";
    }
    return env;
}

/* The signal numbers waiting on opts.cancel_fd (dcrun's signal pipe,
 * launch.h): a SIGCHLD (the check's mpirun ending) is taken, any other
 * is left for the caller (*sig, sent again by check_run). */
static void take_signals (const struct dc_launch *l, int *sig)
{
    unsigned char c;

    while (l->opts.cancel_fd >= 0 && !*sig &&
           read (l->opts.cancel_fd, &c, 1) == 1)
        if (c != SIGCHLD)
            *sig = c;
}

/* Read the check's output (the last cap - 1 bytes, with mpirun's own
 * words) until EOF, the deadline or a signal (*sig).  0 at EOF. */
static int check_read (const struct dc_launch *l, int fd, char *out, size_t cap,
                       double deadline, int *sig)
{
    size_t len = 0;

    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = l->opts.cancel_fd, .events = POLLIN}};
        int ms = (int)((deadline - dc_now ()) * 1000);
        if (ms <= 0)
            return -1;
        int rc = poll (p, l->opts.cancel_fd >= 0 ? 2 : 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (p[1].revents & POLLIN) {
            take_signals (l, sig);
            if (*sig)
                return -1;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (len + 1 >= cap) { /* keep the end: the answer is last */
            memmove (out, out + cap / 2, len - cap / 2);
            len -= cap / 2;
        }
        ssize_t k = read (fd, out + len, cap - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    out[len] = '\0';
    return 0;
}

/* Run argv (mpirun) in its own group, its stdout and stderr into out;
 * its wait status in *ws.  A check past the deadline, or interrupted by
 * a signal of dcrun's signal pipe, is killed. */
static int check_run (const struct dc_launch *l, char **argv, char *out,
                      size_t cap, int *ws, dc_error_t *errp)
{
    double t = l->opts.connect_timeout > 0 ? l->opts.connect_timeout : 10;
    char **env = check_env ();
    int p[2], sig = 0;

    if (!env || pipe2 (p, O_CLOEXEC) < 0) {
        free (env);
        return errprintf (errp, "%s: %s", l->ops->name, strerror (errno));
    }
    pid_t pid = fork ();
    if (pid == 0) {
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        dup2 (p[1], 1);
        dup2 (p[1], 2);
        execvpe (argv[0], argv, env);
        _exit (127);
    }
    int e = errno;
    close (p[1]);
    free (env);
    if (pid < 0) {
        close (p[0]);
        return errprintf (errp, "%s: fork: %s", l->ops->name, strerror (e));
    }
    setpgid (pid, pid);
    int rc = check_read (l, p[0], out, cap, dc_now () + t + 20, &sig);
    close (p[0]);
    if (rc < 0) {
        kill (-pid, SIGTERM);
        usleep (100000);
        kill (-pid, SIGKILL);
    }
    while (waitpid (pid, ws, 0) < 0 && errno == EINTR)
        ;
    take_signals (l, &sig);
    if (sig) { /* for the caller's signal pipe again */
        raise (sig);
        errno = EINTR;
        return errprintf (errp, "%s: interrupted while starting", l->ops->name);
    }
    if (rc < 0) {
        errno = ETIMEDOUT;
        return errprintf (errp, "%s: no answer within %.0f s", l->ops->name,
                          t + 20);
    }
    return 0;
}

/* What `dcrun worker --port-check` said on host (out, mpirun's status
 * ws): 0 with l->port set, or -1 (errp). */
static int check_answer (struct dc_launch *l, const char *host, char *out,
                         int ws, dc_error_t *errp)
{
    const char *var = l->opts.port_var;
    int got = 0;

    for (char *s = out; s && *s;
         s = strchr (s, '\n') ? strchr (s, '\n') + 1 : NULL) {
        if (WIFEXITED (ws) && WEXITSTATUS (ws) == 0 &&
            sscanf (s, "port %d", &got) == 1 && got > 0 && got < 65536) {
            l->port = got;
            dc_log (DC_LOG_INFO, "%s: %s: %s %d, free there (rank 0's host)",
                    l->ops->name, host, var, got);
            return 0;
        }
        if (sscanf (s, "busy %d", &got) == 1) {
            errno = EADDRINUSE;
            return errprintf (errp,
                              "%s: %s %d is in use there (rank 0's host)\n"
                              "hint: choose a free port, or let dcrun pick "
                              "one",
                              host, var, got);
        }
    }
    out[strcspn (out, "\n")] = '\0';
    errno = EIO;
    return errprintf (errp, "%s: cannot check %s there (%s status %d%s%.300s)",
                      host, var, l->ops->name,
                      WIFEXITED (ws) ? WEXITSTATUS (ws) : -1,
                      out[0] ? ": " : "", out);
}

/* Entry e of a rank's environment as the rank gets it: opts.port_var
 * holds the port rank 0's host agreed to (l->port), once one was. */
const char *dc_iodrv_port_entry (const struct dc_launch *l, const char *e,
                                 char *buf, size_t cap)
{
    const char *var = l->opts.port_var;
    size_t vlen = var ? strlen (var) : 0;

    if (!vlen || l->port <= 0 || strncmp (e, var, vlen) || e[vlen] != '=')
        return e;
    snprintf (buf, cap, "%.100s=%d", var, l->port);
    return buf;
}

/* opts.port_var: before any rank starts, which port is free on rank 0's
 * host (or whether the one given with port_fixed is), as the ssh launcher
 * asks: a rank 0 named as this host is answered here, another host by a
 * one-rank run of `dcrun worker --port-check` there by the launcher's
 * driver.  0 with l->port set (or nothing to do), -1 (errp). */
int dc_iodrv_port (struct dc_launch *l, const struct dc_launch_rank *ranks,
                   int n, dc_iodrv_check_argv_f mk, dc_error_t *errp)
{
    const char *var = l->opts.port_var;
    size_t vlen = var ? strlen (var) : 0;
    int want = 0;

    if (!vlen || n < 1)
        return 0;
    const struct dc_launch_rank *r0 = &ranks[0];
    for (int e = 0; r0->env && r0->env[e]; e++)
        if (!strncmp (r0->env[e], var, vlen) && r0->env[e][vlen] == '=')
            want = atoi (r0->env[e] + vlen + 1);
    if (named_here (r0->host)) {
        if (want > 0 && dc_launch_port_free (want))
            l->port = want;
        else if (l->opts.port_fixed) {
            errno = EADDRINUSE;
            return errprintf (errp,
                              "%s %d is in use on this host (rank 0's)\n"
                              "hint: choose a free port, or let dcrun pick "
                              "one",
                              var, want);
        } else
            l->port = dc_launch_free_port ();
        return 0;
    }
    char **argv = NULL, out[2048];
    int ws = 0;
    if (mk (l, r0, l->opts.port_fixed ? want : 0, &argv, errp) < 0)
        return -1;
    int rc = check_run (l, argv, out, sizeof (out), &ws, errp);
    for (int i = 0; argv[i]; i++)
        free (argv[i]);
    free (argv);
    return rc < 0 ? -1 : check_answer (l, r0->host, out, ws, errp);
}
