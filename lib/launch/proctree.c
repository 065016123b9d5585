/* proctree.c - kill a rank's whole process tree (see proctree.h)
 *
 * Only system calls: /proc is read with open/getdents64/read, never with
 * opendir or stdio, so that a forked child of a threaded process may call
 * every function here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/launch/proctree.h"

/* How long dc_proctree_kill keeps at it when a process will not go (one
 * in uninterruptible sleep): then it gives up rather than hang. */
#define KILL_ROUNDS 1000 /* of 10 ms */

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int dc_proctree_subreaper (void)
{
    return prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* A decimal number made only of digits, else -1. */
static long parse_pid (const char *s)
{
    long v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The parent of pid from /proc/PID/stat ("pid (comm) S ppid ..."), -1 when
 * it is gone or unreadable. */
static long parent_of (const char *pid)
{
    char path[64] = "/proc/", buf[512];
    size_t len = strlen (pid);

    if (len > 20)
        return -1;
    memcpy (path + 6, pid, len);
    memcpy (path + 6 + len, "/stat", 6);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: the last ')' ends it */
    char *p = NULL;
    for (char *q = buf; *q; q++)
        if (*q == ')')
            p = q;
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return -1;
    long v = 0;
    p += 4;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9' && v < 100000000; p++)
        v = v * 10 + (*p - '0');
    return v;
}

/* sig, then sig2 when not 0, to every child of ppid: one walk of /proc */
static int signal_children (pid_t ppid, int sig, int sig2)
{
    char buf[8192];
    int count = 0;
    int fd = open ("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    for (;;) {
        long n = syscall (SYS_getdents64, fd, buf, sizeof (buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close (fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
            off += d->d_reclen;
            long pid = parse_pid (d->d_name);
            if (pid <= 0 || pid == ppid)
                continue;
            if (parent_of (d->d_name) == (long)ppid &&
                kill ((pid_t)pid, sig) == 0) {
                count++;
                if (sig2)
                    kill ((pid_t)pid, sig2);
            }
        }
    }
    close (fd);
    return count;
}

int dc_proctree_signal_children (pid_t ppid, int sig)
{
    return signal_children (ppid, sig, 0);
}

/* Reap every child that has ended, adding them to *count; false when the
 * caller has no child left. */
static bool reap (int *count)
{
    pid_t w;

    while ((w = waitpid (-1, NULL, WNOHANG | __WALL)) > 0)
        (*count)++;
    return !(w < 0 && errno == ECHILD);
}

static void nap_ms (long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

int dc_proctree_kill (pid_t pgid)
{
    pid_t me = getpid ();
    int reaped = 0;

    if (pgid > 0) {
        kill (-pgid, SIGCONT);
        kill (-pgid, SIGKILL);
    }
    for (int round = 0; round < KILL_ROUNDS;) {
        if (!reap (&reaped))
            break; /* no child left: the common case costs no walk */
        /* the children of the caller now: the rank's leftovers, and those
         * reparented to it (setsid, double fork) since the last round */
        signal_children (me, SIGCONT, SIGKILL);
        int before = reaped;
        if (!reap (&reaped))
            break;
        if (reaped == before) {
            nap_ms (10);
            round++;
        }
    }
    return reaped;
}

void dc_proctree_close_fds (const int *keep, int n)
{
    int k[16];
    int m = 0;

    for (int i = 0; i < n && m < 16; i++)
        if (keep[i] >= 3)
            k[m++] = keep[i];
    /* sort the few descriptors kept */
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && k[j - 1] > k[j]; j--) {
            int t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
    unsigned lo = 3;
    for (int i = 0; i <= m; i++) {
        unsigned hi = i < m ? (unsigned)k[i] : ~0U;
        if (hi > lo &&
            syscall (SYS_close_range, lo, hi == ~0U ? hi : hi - 1, 0) < 0) {
            /* no close_range (Linux < 5.9): one by one */
            struct rlimit rl;
            unsigned max = 65536;
            if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < max)
                max = (unsigned)rl.rlim_cur;
            for (unsigned fd = lo; fd < (hi < max ? hi : max); fd++)
                close ((int)fd);
        }
        if (i < m)
            lo = (unsigned)k[i] + 1;
    }
}
