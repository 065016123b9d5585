/* launch_io.c - connect-back channels of ranks started by mpirun or srun
 *
 * See launch_io.h for the protocol.  The head keeps one listening socket,
 * the driver process (its own process group, output on pipes) and per rank
 * three sockets.  A rank is reported when its worker has sent its status
 * and its output connections are drained (or DRAIN_MS later, should a
 * background grandchild hold them), or when the driver has ended and the
 * rank never sent a status.
 *
 * The listener binds to the loopback address when every rank is on this
 * host, else to the one address of this host that reaches them (or
 * opts.listen_addr); only when the ranks are reached through several
 * addresses does it listen on all of them.  A connection counts for a rank
 * only once its hello carries the job's token (compared in constant
 * time); until then it waits in a pending list that ranks never queue
 * behind: connections silent for PENDING_MS are closed, a full list drops
 * its oldest entry, and once every rank has its three connections the
 * listener and whatever is still pending are closed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lib/util/clock.h"
#include "lib/launch/control.h"
#include "lib/launch/launch_io.h"

#define DRAIN_MS 1000
#define MAX_ADDRS 8
#define TAIL_MAX 2048
#define CTL_MAX 128
#define OUT_MAX (DC_CTL_STDIN_MAX + 1024) /* one stdin frame + signals */
#define PENDING_MS 5000 /* a connection must say hello within this */
#define PENDING_MIN 256 /* room for pending connections beyond 3 per rank */

enum { K_CTL = 0, K_OUT = 1, K_ERR = 2 };

struct iorank {
    int rank;
    int fd[3]; /* K_CTL, K_OUT, K_ERR; -1 when closed or not yet there */
    bool seen[3];
    bool got_status;
    bool signaled;
    int value;
    bool lost; /* ctl closed without a status */
    double done_at;
    bool reported;
    char ctl[CTL_MAX];
    size_t ctllen;
    /* to the rank's worker on ctl (control.h): signals, with stdin_data
     * its stdin in frames; held until the rank connects */
    char *out;
    size_t outlen, outcap;
    bool stdin_data, stdin_eof;
};

struct pending {
    int fd;
    double since; /* accepted at (now_ms) */
    char buf[DC_IO_HELLO_MAX];
    size_t len;
};

struct iodrv {
    int lfd;
    int port;
    char token[33];
    char addrs[MAX_ADDRS * 64];
    char dir[PATH_MAX];
    int dirlock; /* the folder, flock'd while this job lives; -1 */
    char name[32];
    pid_t pid;
    int dfd[3]; /* driver stdout [1], stderr [2] */
    bool reaped;
    int dstatus;
    double reaped_at;
    char tail[TAIL_MAX];
    size_t taillen;
    struct iorank *v;
    int n;
    struct pending *pend;
    int npend, maxpend;
};

static void close_fd (int *fd)
{
    if (*fd >= 0) {
        close (*fd);
        *fd = -1;
    }
}

static const char *kinds[3] = {"ctl", "out", "err"};

/* ---- the job's folder (hostfile) ---- */

#define OWNER_FILE "owner"

static void rm_dir (const char *dir);

/* Folders dcrun-mpi.XXXXXX / dcrun-slurm.XXXXXX of runs that ended without
 * removing them (SIGKILL of the head): each is flock'd by its run while it
 * lives, and has its "owner" file once locked.  A folder of this user that
 * holds "owner" and whose lock is free is left over: removed. */
static void sweep_stale (const char *parent)
{
    DIR *dp = opendir (parent);
    struct dirent *e;

    if (!dp)
        return;
    while ((e = readdir (dp))) {
        char path[PATH_MAX], own[PATH_MAX + 16];
        const char *n = e->d_name, *dot;
        struct stat st;
        if (strncmp (n, "dcrun-", 6) || !(dot = strchr (n + 6, '.')) ||
            strlen (dot + 1) != 6 ||
            (strncmp (n + 6, "mpi.", 4) && strncmp (n + 6, "slurm.", 6)))
            continue;
        if (snprintf (path, sizeof (path), "%s/%s", parent, n) >=
                (int)sizeof (path) ||
            lstat (path, &st) < 0 || !S_ISDIR (st.st_mode) ||
            st.st_uid != geteuid ())
            continue;
        snprintf (own, sizeof (own), "%s/" OWNER_FILE, path);
        int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock (fd, LOCK_EX | LOCK_NB) == 0 && access (own, F_OK) == 0)
            rm_dir (path);
        close (fd); /* releases the lock */
    }
    closedir (dp);
}

/* ---- worker side ---- */

static int connect_one (const char *addr, double timeout_s)
{
    char host[128];
    const char *colon = strrchr (addr, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;

    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof (host)) {
        errno = EINVAL;
        return -1;
    }
    memcpy (host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (getaddrinfo (host, colon + 1, &hints, &ai) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = socket (ai->ai_family,
                     ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo (ai);
        return -1;
    }
    int rc = connect (fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo (ai);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof (err);
        rc = poll (&p, 1, (int)(timeout_s * 1000));
        if (rc == 0)
            err = ETIMEDOUT;
        else if (rc < 0 ||
                 getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err) {
            close (fd);
            errno = err;
            return -1;
        }
    } else if (rc < 0) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
    }
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    return fd;
}

int dc_io_connect (const char *addrs, const char *token, int rank,
                   const char *kind, double timeout_s, dc_error_t *errp)
{
    char list[MAX_ADDRS * 64], hello[DC_IO_HELLO_MAX];
    int fd = -1, e = ECONNREFUSED;

    if (!addrs || !*addrs || !token || strlen (token) != 32 || rank < 0 ||
        !kind) {
        errno = EINVAL;
        return errprintf (errp, "bad %s or %s", DC_IO_ENV, DC_IO_TOKEN_ENV);
    }
    int hn = snprintf (hello, sizeof (hello), "dcrun-io 1 %s %d %s\n", token,
                       rank, kind);
    if (hn < 0 || hn >= (int)sizeof (hello)) {
        errno = EINVAL;
        return errprintf (errp, "bad hello");
    }
    snprintf (list, sizeof (list), "%s", addrs);
    for (char *save, *a = strtok_r (list, ",", &save); a;
         a = strtok_r (NULL, ",", &save)) {
        if ((fd = connect_one (a, timeout_s)) >= 0)
            break;
        e = errno;
    }
    if (fd < 0) {
        errno = e;
        return errprintf (errp, "cannot connect back to dcrun at %s: %s", addrs,
                          strerror (e));
    }
    if (write (fd, hello, (size_t)hn) != hn) {
        e = errno;
        close (fd);
        errno = e;
        return errprintf (errp, "cannot connect back to dcrun: %s",
                          strerror (e));
    }
    return fd;
}

/* ---- head side ---- */

int dc_iodrv_init (struct dc_launch *l, dc_error_t *errp)
{
    struct iodrv *d = calloc (1, sizeof (*d));

    if (!d)
        return errprintf (errp, "out of memory");
    d->lfd = d->dirlock = -1;
    d->dfd[0] = d->dfd[1] = d->dfd[2] = -1;
    l->data = d;
    return 0;
}

/* The address of this host that host's packets come from, into buf. */
static int source_addr (const char *host, char *buf, size_t len)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM},
                    *ai = NULL;
    struct sockaddr_in me;
    socklen_t mlen = sizeof (me);
    int fd, rc = -1;

    if (dc_launch_is_local_host (host)) {
        snprintf (buf, len, "127.0.0.1");
        return 0;
    }
    if (getaddrinfo (host, "9", &hints, &ai) != 0)
        return -1;
    if ((fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            getsockname (fd, (struct sockaddr *)&me, &mlen) == 0 &&
            inet_ntop (AF_INET, &me.sin_addr, buf, (socklen_t)len))
            rc = 0;
        close (fd);
    }
    freeaddrinfo (ai);
    return rc;
}

static void add_addr (struct iodrv *d, const char *a, int *count)
{
    char item[64];

    if (*count >= MAX_ADDRS)
        return;
    snprintf (item, sizeof (item), "%s:%d", a, d->port);
    /* already there? */
    size_t il = strlen (item);
    for (const char *p = d->addrs; (p = strstr (p, item)); p += il)
        if ((p == d->addrs || p[-1] == ',') && (p[il] == ',' || !p[il]))
            return;
    size_t n = strlen (d->addrs);
    snprintf (d->addrs + n, sizeof (d->addrs) - n, "%s%s", n ? "," : "", item);
    (*count)++;
}

/* Where the ranks connect back: bind the listener and fill d->addrs.
 * opts.listen_addr when given; else loopback when every rank is on this
 * host; else the one source address that reaches every remote host; else
 * (several, or none found) every address, the ranks trying the list. */
static int listen_on (struct dc_launch *l, struct iodrv *d,
                      const struct dc_launch_rank *ranks, int n,
                      dc_error_t *errp)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof (a);
    char found[MAX_ADDRS][64];
    int nfound = 0, count = 0;
    bool all_local = true;
    const char *want = l->opts.listen_addr;

    if (want) {
        struct addrinfo hints = {.ai_family = AF_INET,
                                 .ai_socktype = SOCK_STREAM},
                        *ai = NULL;
        if (!*want || getaddrinfo (want, NULL, &hints, &ai) != 0 || !ai) {
            errno = EINVAL;
            return errprintf (errp,
                              "--listen-addr '%s': not an IPv4 "
                              "address or a host name that has one",
                              want);
        }
        a.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        freeaddrinfo (ai);
        if (a.sin_addr.s_addr != htonl (INADDR_ANY))
            inet_ntop (AF_INET, &a.sin_addr, found[nfound++],
                       sizeof (found[0]));
    }
    for (int i = 0; i < n; i++)
        if (!dc_launch_is_local_host (ranks[i].host))
            all_local = false;
    if (!want && all_local) {
        a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        snprintf (found[nfound++], sizeof (found[0]), "127.0.0.1");
    } else if (nfound == 0) {
        /* the source address toward every remote host (local ranks use
         * it too: it is this host's) */
        for (int i = 0; i < n && nfound < MAX_ADDRS; i++) {
            char buf[64];
            bool dup = false;
            if (dc_launch_is_local_host (ranks[i].host))
                continue;
            for (int k = 0; k < i && !dup; k++)
                dup = !strcmp (ranks[k].host, ranks[i].host);
            if (dup || source_addr (ranks[i].host, buf, sizeof (buf)) < 0)
                continue;
            for (int k = 0; k < nfound && !dup; k++)
                dup = !strcmp (found[k], buf);
            if (!dup)
                snprintf (found[nfound++], sizeof (found[0]), "%s", buf);
        }
        if (!want && nfound == 1)
            inet_pton (AF_INET, found[0], &a.sin_addr);
        else
            a.sin_addr.s_addr = htonl (INADDR_ANY);
        if (all_local && nfound < MAX_ADDRS)
            snprintf (found[nfound++], sizeof (found[0]), "127.0.0.1");
    }
    d->lfd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->lfd < 0)
        return errprintf (errp, "socket: %s", strerror (errno));
    if (bind (d->lfd, (struct sockaddr *)&a, sizeof (a)) < 0 ||
        listen (d->lfd, 1024) < 0 ||
        getsockname (d->lfd, (struct sockaddr *)&a, &alen) < 0) {
        char ip[64] = "?";
        inet_ntop (AF_INET, &a.sin_addr, ip, sizeof (ip));
        return errprintf (
            errp, "cannot listen on %s: %s%s", ip, strerror (errno),
            errno == EADDRNOTAVAIL ? "\nhint: --listen-addr takes an address "
                                     "of this host"
                                   : "");
    }
    d->port = ntohs (a.sin_port);
    for (int i = 0; i < nfound; i++)
        add_addr (d, found[i], &count);
    if (count == 0) {
        /* no route found: let the ranks try this host's name */
        char me[64];
        if (gethostname (me, sizeof (me)) < 0)
            snprintf (me, sizeof (me), "localhost");
        me[sizeof (me) - 1] = '\0';
        add_addr (d, me, &count);
    }
    return 0;
}

int dc_iodrv_prepare (struct dc_launch *l, const struct dc_launch_rank *ranks,
                      int n, dc_error_t *errp)
{
    struct iodrv *d = l->data;
    unsigned char rnd[16];

    if (d->v) {
        errno = EBUSY;
        return errprintf (errp, "ranks already started");
    }
    if (n <= 0) {
        errno = EINVAL;
        return errprintf (errp, "no ranks");
    }
    if (!(d->v = calloc ((size_t)n, sizeof (*d->v))) ||
        !(d->pend = calloc ((size_t)(3 * n + PENDING_MIN), sizeof (*d->pend))))
        return errprintf (errp, "out of memory");
    d->maxpend = 3 * n + PENDING_MIN;
    d->n = n;
    for (int i = 0; i < n; i++) {
        d->v[i].rank = ranks[i].rank;
        d->v[i].stdin_data = ranks[i].stdin_data;
        d->v[i].fd[0] = d->v[i].fd[1] = d->v[i].fd[2] = -1;
        if (!ranks[i].argv || !ranks[i].argv[0]) {
            errno = EINVAL;
            return errprintf (errp, "rank %d: no command", ranks[i].rank);
        }
    }
    if (getrandom (rnd, sizeof (rnd), 0) != (ssize_t)sizeof (rnd))
        return errprintf (errp, "getrandom: %s", strerror (errno));
    for (int i = 0; i < 16; i++)
        snprintf (d->token + 2 * i, 3, "%02x", rnd[i]);
    if (listen_on (l, d, ranks, n, errp) < 0)
        return -1;
    const char *tmp = getenv ("TMPDIR");
    const char *parent =
        l->opts.workdir ? l->opts.workdir : (tmp && *tmp ? tmp : "/tmp");
    sweep_stale (parent);
    snprintf (d->dir, sizeof (d->dir), "%s/dcrun-%s.XXXXXX", parent,
              l->ops->name);
    if (!mkdtemp (d->dir)) {
        int e = errno;
        errprintf (errp, "%s: %s", d->dir, strerror (e));
        d->dir[0] = '\0';
        errno = e;
        return -1;
    }
    /* held until this process ends, however it ends; then "owner" tells a
     * later run's sweep that the folder is complete and may go */
    if ((d->dirlock = open (d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
        flock (d->dirlock, LOCK_EX) == 0) {
        char path[PATH_MAX + 16];
        snprintf (path, sizeof (path), "%s/" OWNER_FILE, d->dir);
        int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dprintf (fd, "%ld\n", (long)getpid ());
            close (fd);
        }
    }
    return 0;
}

const char *dc_iodrv_addrs (struct dc_launch *l)
{
    return ((struct iodrv *)l->data)->addrs;
}

const char *dc_iodrv_dir (struct dc_launch *l)
{
    return ((struct iodrv *)l->data)->dir;
}

static void tail_add (struct iodrv *d, const char *p, size_t len)
{
    if (len >= TAIL_MAX) {
        p += len - (TAIL_MAX - 1);
        len = TAIL_MAX - 1;
    }
    if (d->taillen + len >= TAIL_MAX) {
        size_t drop = d->taillen + len - (TAIL_MAX - 1);
        memmove (d->tail, d->tail + drop, d->taillen - drop);
        d->taillen -= drop;
    }
    memcpy (d->tail + d->taillen, p, len);
    d->taillen += len;
    d->tail[d->taillen] = '\0';
}

/* The driver's last meaningful lines, joined with "; " (into buf). */
static const char *last_words (struct iodrv *d, char *buf, size_t len)
{
    char copy[TAIL_MAX];
    const char *lines[4];
    int nl = 0;

    memcpy (copy, d->tail, d->taillen + 1);
    for (char *save, *s = strtok_r (copy, "\n", &save); s;
         s = strtok_r (NULL, "\n", &save)) {
        s += strspn (s, " \t");
        if (!*s || strspn (s, "-=*") == strlen (s))
            continue;
        if (nl == 4) {
            memmove (lines, lines + 1, 3 * sizeof (*lines));
            nl = 3;
        }
        lines[nl++] = s;
    }
    buf[0] = '\0';
    for (int i = 0; i < nl; i++) {
        size_t k = strlen (buf);
        snprintf (buf + k, len - k, "%s%s", i ? "; " : "", lines[i]);
    }
    return buf;
}

static void driver_status (struct iodrv *d, char *buf, size_t len)
{
    char words[TAIL_MAX];

    if (!d->reaped)
        snprintf (buf, len, "%s is still running", d->name);
    else if (WIFSIGNALED (d->dstatus))
        snprintf (buf, len, "%s killed by signal %d", d->name,
                  WTERMSIG (d->dstatus));
    else
        snprintf (buf, len, "%s exited with status %d", d->name,
                  WEXITSTATUS (d->dstatus));
    last_words (d, words, sizeof (words));
    if (*words) {
        size_t k = strlen (buf);
        snprintf (buf + k, len - k, ": %s", words);
    }
}

static void drain_driver (struct dc_launch *l, struct iodrv *d)
{
    char buf[16384];

    for (int s = 1; s <= 2; s++)
        for (int loops = 0; d->dfd[s] >= 0 && loops < 16; loops++) {
            ssize_t n = read (d->dfd[s], buf, sizeof (buf));
            if (n > 0) {
                tail_add (d, buf, (size_t)n);
                if (l->opts.on_output)
                    l->opts.on_output (-1, s, buf, (size_t)n, l->opts.arg);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            close_fd (&d->dfd[s]);
        }
    if (!d->reaped && d->pid > 0) {
        pid_t p = waitpid (d->pid, &d->dstatus, WNOHANG);
        if (p == d->pid || (p < 0 && errno == ECHILD)) {
            d->reaped = true;
            d->reaped_at = dc_now_ms ();
        }
    }
}

static struct iorank *find (struct iodrv *d, int rank)
{
    if (rank >= 0 && rank < d->n && d->v[rank].rank == rank)
        return &d->v[rank];
    for (int i = 0; i < d->n; i++)
        if (d->v[i].rank == rank)
            return &d->v[i];
    return NULL;
}

/* Whether token a is the job's token b (32 hex digits), in time that does
 * not depend on where they differ. */
static bool token_eq (const char *a, const char *b)
{
    volatile unsigned char diff = 0;

    if (strlen (a) != 32 || strlen (b) != 32)
        return false;
    for (size_t i = 0; i < 32; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Queue bytes for the rank's worker (a message whole or not at all). */
static bool out_queue (struct iorank *r, const char *data, size_t len)
{
    size_t need = r->outlen + len;

    if (need > OUT_MAX)
        return false;
    if (need > r->outcap) {
        size_t cap = need < 64 ? 64 : need;
        char *b = realloc (r->out, cap);
        if (!b)
            return false;
        r->out = b;
        r->outcap = cap;
    }
    memcpy (r->out + r->outlen, data, len);
    r->outlen += len;
    return true;
}

/* Write what the ctl connection takes; a broken one drops the rest. */
static void out_flush (struct iorank *r)
{
    while (r->outlen > 0 && r->fd[K_CTL] >= 0 && !r->reported) {
        ssize_t n = write (r->fd[K_CTL], r->out, r->outlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            r->outlen = 0;
            return;
        }
        memmove (r->out, r->out + n, r->outlen - (size_t)n);
        r->outlen -= (size_t)n;
    }
}

/* A complete hello in p: attach the connection to its rank. */
static void hello (struct iodrv *d, struct pending *p)
{
    char token[40], kind[8];
    int version, rank, k = -1;

    p->buf[p->len - 1] = '\0';
    if (sscanf (p->buf, "dcrun-io %d %39s %d %7s", &version, token, &rank,
                kind) != 4 ||
        version != 1 || !token_eq (token, d->token)) {
        close_fd (&p->fd);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (!strcmp (kind, kinds[i]))
            k = i;
    struct iorank *r = find (d, rank);
    if (k < 0 || !r || r->seen[k] || r->reported) {
        close_fd (&p->fd);
        return;
    }
    r->fd[k] = p->fd;
    r->seen[k] = true;
    p->fd = -1;
    fcntl (r->fd[k], F_SETFL, fcntl (r->fd[k], F_GETFL) | O_NONBLOCK);
    if (k == K_CTL)
        out_flush (r); /* what waited for the rank to connect */
}

/* Read what a pending connection sent; true when it is done with (a
 * rank's now, or closed). */
static bool read_hello (struct iodrv *d, struct pending *p)
{
    while (p->fd >= 0 && p->len < sizeof (p->buf)) {
        /* byte by byte: what follows the hello belongs to the rank */
        ssize_t n = read (p->fd, p->buf + p->len, 1);
        if (n == 1) {
            if (p->buf[p->len++] == '\n') {
                hello (d, p);
                break;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        close_fd (&p->fd);
    }
    if (p->fd >= 0 && p->len >= sizeof (p->buf))
        close_fd (&p->fd); /* no newline in a hello's room */
    return p->fd < 0;
}

/* Whether every rank has its three connections (or is done). */
static bool all_connected (struct iodrv *d)
{
    for (int i = 0; i < d->n; i++) {
        struct iorank *r = &d->v[i];
        if (!r->reported && r->done_at == 0 &&
            !(r->seen[0] && r->seen[1] && r->seen[2]))
            return false;
    }
    return true;
}

static void accept_all (struct iodrv *d)
{
    double t = dc_now_ms ();

    for (;;) {
        int fd = accept4 (d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        struct pending p = {.fd = fd, .since = t};
        /* a rank sends its hello as it connects: most are done here */
        if (read_hello (d, &p))
            continue;
        if (d->npend >= d->maxpend) {
            /* full: the oldest goes, a newcomer may be a rank */
            int old = 0;
            for (int i = 1; i < d->npend; i++)
                if (d->pend[i].since < d->pend[old].since)
                    old = i;
            close_fd (&d->pend[old].fd);
            d->pend[old] = d->pend[--d->npend];
        }
        d->pend[d->npend++] = p;
    }
    for (int i = 0; i < d->npend; i++) {
        struct pending *p = &d->pend[i];
        if (!read_hello (d, p) && t - p->since > PENDING_MS)
            close_fd (&p->fd); /* silent too long: not a rank */
        if (p->fd < 0)
            d->pend[i--] = d->pend[--d->npend];
    }
    if (all_connected (d)) {
        /* nobody else is expected */
        for (int i = 0; i < d->npend; i++)
            close_fd (&d->pend[i].fd);
        d->npend = 0;
        close_fd (&d->lfd);
    }
}

static void ctl_lines (struct iorank *r)
{
    char *nl;

    while ((nl = memchr (r->ctl, '\n', r->ctllen))) {
        *nl = '\0';
        int v;
        if (sscanf (r->ctl, "exit %d", &v) == 1 && !r->got_status) {
            r->got_status = true;
            r->value = v;
        } else if (sscanf (r->ctl, "signal %d", &v) == 1 && !r->got_status) {
            r->got_status = true;
            r->signaled = true;
            r->value = v;
        }
        size_t used = (size_t)(nl - r->ctl) + 1;
        memmove (r->ctl, r->ctl + used, r->ctllen - used);
        r->ctllen -= used;
    }
    if (r->ctllen == sizeof (r->ctl))
        r->ctllen = 0;
}

static void pump (struct dc_launch *l, struct iorank *r)
{
    char buf[32768];

    out_flush (r);
    for (int k = 1; k <= 2; k++)
        for (int loops = 0; r->fd[k] >= 0 && loops < 16; loops++) {
            ssize_t n = read (r->fd[k], buf, sizeof (buf));
            if (n > 0) {
                if (l->opts.on_output)
                    l->opts.on_output (r->rank, k, buf, (size_t)n, l->opts.arg);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            close_fd (&r->fd[k]);
        }
    while (r->fd[K_CTL] >= 0) {
        ssize_t n = read (r->fd[K_CTL], r->ctl + r->ctllen,
                          sizeof (r->ctl) - r->ctllen);
        if (n > 0) {
            r->ctllen += (size_t)n;
            ctl_lines (r);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        close_fd (&r->fd[K_CTL]);
        if (!r->got_status)
            r->lost = true;
    }
    if ((r->got_status || r->lost) && r->done_at == 0)
        r->done_at = dc_now_ms ();
}

static void report (struct dc_launch *l, struct iodrv *d, struct iorank *r)
{
    struct dc_launch_status st = {.rank = r->rank};

    r->reported = true;
    for (int k = 0; k < 3; k++)
        close_fd (&r->fd[k]);
    if (r->got_status) {
        st.signaled = r->signaled;
        if (r->signaled)
            st.sig = r->value;
        else
            st.code = r->value;
    } else {
        char why[TAIL_MAX + 64];
        driver_status (d, why, sizeof (why));
        st.failed_start = true;
        st.code = 255;
        if (r->seen[K_CTL])
            snprintf (st.reason, sizeof (st.reason),
                      "its worker ended without a status (%.200s)", why);
        else
            snprintf (st.reason, sizeof (st.reason), "not started (%.220s)",
                      why);
    }
    if (l->opts.on_exit)
        l->opts.on_exit (&st, l->opts.arg);
}

int dc_iodrv_pollfds (struct dc_launch *l, struct pollfd *fds, int max,
                      int *timeout_ms)
{
    struct iodrv *d = l->data;
    int k = 0;
    bool waiting = false;

    if (d->lfd >= 0 && k < max)
        fds[k++] = (struct pollfd){.fd = d->lfd, .events = POLLIN};
    for (int s = 1; s <= 2; s++)
        if (d->dfd[s] >= 0 && k < max)
            fds[k++] = (struct pollfd){.fd = d->dfd[s], .events = POLLIN};
    for (int i = 0; i < d->n; i++) {
        struct iorank *r = &d->v[i];
        if (r->reported)
            continue;
        waiting = true;
        for (int j = 0; j < 3; j++)
            if (r->fd[j] >= 0 && k < max)
                fds[k++] = (struct pollfd){.fd = r->fd[j], .events = POLLIN};
    }
    /* pending connections last: they never push a rank out of fds */
    for (int i = 0; i < d->npend && k < max; i++)
        fds[k++] = (struct pollfd){.fd = d->pend[i].fd, .events = POLLIN};
    if (d->npend > 0)
        waiting = true; /* their deadline */
    /* the driver is reaped by waitpid, drains have deadlines */
    if (waiting && (*timeout_ms < 0 || *timeout_ms > 100))
        *timeout_ms = 100;
    return k;
}

int dc_iodrv_progress (struct dc_launch *l, const struct pollfd *fds, int n)
{
    struct iodrv *d = l->data;
    int running = 0;
    double t;

    (void)fds;
    (void)n;
    if (d->lfd >= 0)
        accept_all (d);
    drain_driver (l, d);
    t = dc_now_ms ();
    for (int i = 0; i < d->n; i++) {
        struct iorank *r = &d->v[i];
        if (r->reported)
            continue;
        pump (l, r);
        bool drained = r->fd[K_OUT] < 0 && r->fd[K_ERR] < 0;
        if (r->done_at > 0 && (drained || t - r->done_at > DRAIN_MS))
            report (l, d, r);
        else if (d->reaped && t - d->reaped_at > DRAIN_MS)
            report (l, d, r);
        else
            running++;
    }
    return running;
}

/* A signal after what is queued (a stdin frame must stay whole); a full
 * or broken socket: the driver's signal still goes. */
static void send_ctl (struct iorank *r, int sig)
{
    char line[32];
    int len = dc_ctl_signal (line, sizeof (line), sig);

    if (len > 0 && !r->reported && out_queue (r, line, (size_t)len))
        out_flush (r);
}

static struct iorank *find_rank (struct iodrv *d, int rank)
{
    for (int i = 0; i < d->n; i++)
        if (d->v[i].rank == rank)
            return &d->v[i];
    return NULL;
}

ssize_t dc_iodrv_write (struct dc_launch *l, int rank, const void *buf,
                        size_t len)
{
    struct iorank *r = find_rank (l->data, rank);
    char hdr[32];

    if (!r || !r->stdin_data || r->stdin_eof || r->reported || r->lost) {
        errno = r ? EPIPE : ENOENT;
        return -1;
    }
    out_flush (r);
    if (r->outlen > 0 || r->fd[K_CTL] < 0) { /* full, or not connected */
        errno = EAGAIN;
        return -1;
    }
    size_t n = len < DC_CTL_STDIN_MAX ? len : DC_CTL_STDIN_MAX;
    int h = dc_ctl_stdin_header (hdr, sizeof (hdr), n);
    if (h < 0 || !out_queue (r, hdr, (size_t)h) || !out_queue (r, buf, n)) {
        r->outlen = 0;
        errno = h < 0 ? EINVAL : ENOMEM;
        return -1;
    }
    out_flush (r);
    return (ssize_t)n;
}

int dc_iodrv_close_stdin (struct dc_launch *l, int rank)
{
    struct iorank *r = find_rank (l->data, rank);
    char msg[32];

    if (!r) {
        errno = ENOENT;
        return -1;
    }
    if (r->stdin_data && !r->stdin_eof && !r->reported) {
        int n = dc_ctl_stdin_eof (msg, sizeof (msg));
        r->stdin_eof = n > 0 && out_queue (r, msg, (size_t)n);
        out_flush (r);
    }
    return 0;
}

int dc_iodrv_signal (struct dc_launch *l, int rank, int sig)
{
    struct iodrv *d = l->data;

    for (int i = 0; i < d->n; i++)
        if (rank < 0 || d->v[i].rank == rank)
            send_ctl (&d->v[i], sig);
    /* every rank: the driver stops the job its way too (mpirun and srun
     * kill their ranks on SIGTERM); ranks not yet connected go with it */
    if (rank < 0 && d->pid > 0 && !d->reaped)
        kill (d->pid, sig == SIGKILL ? SIGTERM : sig);
    return 0;
}

static void rm_dir (const char *dir)
{
    char path[PATH_MAX + 64];
    static const char *const files[] = {"hostfile", "hostfile.slurm",
                                        OWNER_FILE, NULL};

    if (!*dir)
        return;
    for (int i = 0; files[i]; i++) {
        snprintf (path, sizeof (path), "%s/%s", dir, files[i]);
        unlink (path);
    }
    rmdir (dir);
}

int dc_iodrv_start (struct dc_launch *l, const char *driver_name,
                    char *const *argv, char *const *env, dc_error_t *errp)
{
    struct iodrv *d = l->data;
    int pout[2] = {-1, -1}, perr[2] = {-1, -1}, pex[2] = {-1, -1};
    char ioenv[sizeof (d->addrs) + 16], tokenv[64];

    snprintf (d->name, sizeof (d->name), "%s", driver_name);
    snprintf (ioenv, sizeof (ioenv), "%s=%s", DC_IO_ENV, d->addrs);
    snprintf (tokenv, sizeof (tokenv), "%s=%s", DC_IO_TOKEN_ENV, d->token);
    if (pipe2 (pout, O_CLOEXEC) < 0 || pipe2 (perr, O_CLOEXEC) < 0 ||
        pipe2 (pex, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd (&pout[i]);
            close_fd (&perr[i]);
            close_fd (&pex[i]);
        }
        errno = e;
        return errprintf (errp, "pipe: %s", strerror (e));
    }
    pid_t pid = fork ();
    if (pid < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd (&pout[i]);
            close_fd (&perr[i]);
            close_fd (&pex[i]);
        }
        errno = e;
        return errprintf (errp, "fork: %s", strerror (e));
    }
    if (pid == 0) {
        sigset_t all;
        setpgid (0, 0);
        sigemptyset (&all);
        sigprocmask (SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal (s, SIG_DFL);
        /* dcrun gone: the driver stops its job */
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        int devnull = open ("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2 (devnull, 0) < 0 || dup2 (pout[1], 1) < 0 ||
            dup2 (perr[1], 2) < 0)
            goto fail;
        putenv (ioenv);
        putenv (tokenv);
        /* "NAME=VALUE" sets, a bare "NAME" removes */
        for (int i = 0; env && env[i]; i++)
            if (strchr (env[i], '='))
                putenv (env[i]);
            else
                unsetenv (env[i]);
        execvp (argv[0], argv);
    fail:;
        int e = errno;
        if (write (pex[1], &e, sizeof (e)) < 0)
            _exit (127);
        _exit (127);
    }
    setpgid (pid, pid);
    d->pid = pid;
    close (pout[1]);
    close (perr[1]);
    close (pex[1]);
    d->dfd[1] = pout[0];
    d->dfd[2] = perr[0];
    fcntl (d->dfd[1], F_SETFL, O_NONBLOCK);
    fcntl (d->dfd[2], F_SETFL, O_NONBLOCK);
    int e;
    ssize_t r;
    do
        r = read (pex[0], &e, sizeof (e));
    while (r < 0 && errno == EINTR);
    close (pex[0]);
    if (r == (ssize_t)sizeof (e)) {
        waitpid (pid, NULL, 0);
        d->pid = 0;
        d->reaped = true;
        errno = e;
        return errprintf (errp, "%s: cannot run %s: %s", l->ops->name, argv[0],
                          strerror (e));
    }

    /* wait for every rank's three connections (or its end) */
    double wait_s = l->opts.connect_timeout + 1.0 + d->n / 16.0;
    double deadline = dc_now_ms () + wait_s * 1000;
    struct pollfd *fds =
        calloc ((size_t)(4 * d->n + d->maxpend + 8), sizeof (*fds));
    if (!fds)
        return errprintf (errp, "out of memory");
    int max = 4 * d->n + d->maxpend + 7;
    for (;;) {
        int left = 0;
        for (int i = 0; i < d->n; i++) {
            struct iorank *rk = &d->v[i];
            if (!rk->reported && !(rk->seen[0] && rk->seen[1] && rk->seen[2]) &&
                rk->done_at == 0)
                left++;
        }
        if (left == 0)
            break;
        double t = dc_now_ms ();
        if (d->reaped || t >= deadline) {
            char why[TAIL_MAX + 64];
            bool timed_out = !d->reaped;
            dc_iodrv_signal (l, -1, SIGTERM);
            driver_status (d, why, sizeof (why));
            free (fds);
            errno = EHOSTUNREACH;
            if (timed_out)
                return errprintf (errp,
                                  "%s: %d rank%s did not start within "
                                  "%g s (%s)",
                                  l->ops->name, left, left == 1 ? "" : "s",
                                  wait_s, why);
            return errprintf (errp, "%s: %d rank%s never started: %s",
                              l->ops->name, left, left == 1 ? "" : "s", why);
        }
        int timeout = (int)(deadline - t) + 1;
        fds[0] = (struct pollfd){.fd = l->opts.cancel_fd, .events = POLLIN};
        int k = dc_iodrv_pollfds (l, fds + 1, max, &timeout);
        if (poll (fds, (nfds_t)k + 1, timeout) < 0 && errno != EINTR)
            break;
        if (l->opts.cancel_fd >= 0 && (fds[0].revents & POLLIN)) {
            free (fds);
            dc_iodrv_signal (l, -1, SIGTERM);
            errno = EINTR;
            return errprintf (errp, "%s: interrupted while starting",
                              l->ops->name);
        }
        dc_iodrv_progress (l, fds + 1, k);
    }
    free (fds);
    return 0;
}

void dc_iodrv_fini (struct dc_launch *l)
{
    struct iodrv *d = l->data;

    if (!d)
        return;
    if (d->pid > 0 && !d->reaped) {
        /* let the driver stop its ranks, then make sure */
        kill (d->pid, SIGTERM);
        for (int i = 0; i < 50; i++) {
            if (waitpid (d->pid, NULL, WNOHANG) != 0)
                break;
            usleep (100000);
            if (i == 49) {
                kill (-d->pid, SIGKILL);
                waitpid (d->pid, NULL, 0);
            }
        }
    }
    for (int i = 0; i < d->n; i++) {
        for (int k = 0; k < 3; k++)
            close_fd (&d->v[i].fd[k]);
        free (d->v[i].out);
    }
    for (int i = 0; i < d->npend; i++)
        close_fd (&d->pend[i].fd);
    close_fd (&d->lfd);
    close_fd (&d->dfd[1]);
    close_fd (&d->dfd[2]);
    rm_dir (d->dir);
    close_fd (&d->dirlock);
    free (d->v);
    free (d->pend);
    free (d);
    l->data = NULL;
}

int dc_launch_driver_argv (struct dc_launch *l,
                           const struct dc_launch_rank *ranks, int n,
                           char ***argvp, dc_error_t *errp)
{
#if HAVE_MPI
    if (!strcmp (l->ops->name, "mpi"))
        return dc_launch_mpi_argv (l, ranks, n, NULL, argvp, errp);
#endif
    if (!strcmp (l->ops->name, "slurm"))
        return dc_launch_slurm_argv (l, ranks, n, NULL, argvp, errp);
    errno = ENOTSUP;
    return errprintf (errp, "%s: no driver command line", l->ops->name);
}
