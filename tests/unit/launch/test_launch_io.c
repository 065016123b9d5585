/* test_launch_io.c - connect-back channels (launch_io.c) and the mpirun
 * command line (launch_mpi.c) */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "lib/launch/launch.h"
#include "lib/launch/launch_io.h"

static const char tok[] = "0123456789abcdef0123456789abcdef";

START_TEST (test_connect_bad)
{
    dc_error_t err;
    static const struct {
        const char *addrs, *token;
        int rank;
        const char *kind;
    } bad[] = {
        {NULL, tok, 0, "out"},           {"", tok, 0, "out"},
        {"127.0.0.1:1", NULL, 0, "out"}, {"127.0.0.1:1", "short", 0, "out"},
        {"127.0.0.1:1", tok, -1, "out"}, {"127.0.0.1:1", tok, 0, NULL},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        errno = 0;
        ck_assert_int_eq (dc_io_connect (bad[i].addrs, bad[i].token,
                                         bad[i].rank, bad[i].kind, 1, &err),
                          -1);
        ck_assert_int_eq (errno, EINVAL);
    }
    /* nothing listens on port 1; no colon; a name that does not resolve */
    static const char *const nowhere[] = {"127.0.0.1:1",
                                          "127.0.0.1",
                                          "host.invalid:5",
                                          ":5",
                                          "127.0.0.1:1,127.0.0.1:1",
                                          NULL};
    for (int i = 0; nowhere[i]; i++) {
        ck_assert_int_eq (dc_io_connect (nowhere[i], tok, 0, "out", 1, &err),
                          -1);
        ck_assert_msg (strstr (err.text, "cannot connect back"), "%s",
                       err.text);
    }
}
END_TEST

/* A launcher whose driver is sh running dcrun workers by hand. */
static const char *sh_script;

static int sh_spawn (struct dc_launch *l, const struct dc_launch_rank *ranks,
                     int n, dc_error_t *errp)
{
    char *argv[] = {"sh", "-c", (char *)sh_script, NULL};
    if (dc_iodrv_prepare (l, ranks, n, errp) < 0)
        return -1;
    return dc_iodrv_start (l, "sh", argv, NULL, errp);
}

static const struct dc_launch_ops sh_ops = {
    .name = "shdriver",
    .init = dc_iodrv_init,
    .spawn = sh_spawn,
    .pollfds = dc_iodrv_pollfds,
    .progress = dc_iodrv_progress,
    .signal = dc_iodrv_signal,
    .fini = dc_iodrv_fini,
};

struct got {
    char out[3][256];
    size_t outlen[3];
    char drv[1024];
    size_t drvlen;
    struct dc_launch_status st[3];
    int nexit;
};

static void got_output (int rank, enum dc_launch_stream s, const char *d,
                        size_t len, void *arg)
{
    struct got *g = arg;
    if (rank == -1) {
        if (g->drvlen + len < sizeof (g->drv)) {
            memcpy (g->drv + g->drvlen, d, len);
            g->drvlen += len;
        }
        return;
    }
    ck_assert_int_ge (rank, 0);
    ck_assert_int_lt (rank, 3);
    if (s == DC_LAUNCH_STDOUT && g->outlen[rank] + len < 256) {
        memcpy (g->out[rank] + g->outlen[rank], d, len);
        g->outlen[rank] += len;
    }
}

static void got_exit (const struct dc_launch_status *st, void *arg)
{
    struct got *g = arg;
    ck_assert_int_ge (st->rank, 0);
    ck_assert_int_lt (st->rank, 3);
    g->st[st->rank] = *st;
    g->nexit++;
}

static int run_loop (struct dc_launch *l)
{
    struct pollfd fds[64];
    int running = 1, loops = 0;
    while (running > 0 && loops++ < 1000) {
        int timeout = 100;
        int n = dc_launch_pollfds (l, fds, 64, &timeout);
        poll (fds, (nfds_t)n, timeout);
        running = dc_launch_progress (l, fds, n);
    }
    return running;
}

/* Hostile connections to the listening port: wrong token, garbage, a
 * hello with no newline, a rank out of range; none may become a rank. */
static void hostile (const char *addrs)
{
    int port = atoi (strrchr (addrs, ':') + 1);
    static const char *const hellos[] = {
        "dcrun-io 1 ffffffffffffffffffffffffffffffff 0 out\n",
        "GET / HTTP/1.0\r\n\r\n", "dcrun-io 2 x 0 out\n", "\n", NULL};
    for (int i = 0; hellos[i]; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons ((uint16_t)port)};
        a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge (fd, 0);
        ck_assert_int_eq (connect (fd, (struct sockaddr *)&a, sizeof (a)), 0);
        ck_assert_int_gt (write (fd, hellos[i], strlen (hellos[i])), 0);
        close (fd);
    }
}

START_TEST (test_driver_run)
{
    char script[2048];
    const char *b = getenv ("DCRUN_BUILDDIR");
    struct got g = {0};
    dc_error_t err;

    if (!b)
        return;
    /* three workers as mpirun would start them; rank 1 fails, rank 2 is
     * killed by a signal; the driver says something itself */
    snprintf (script, sizeof (script),
              "echo driver-says-hi; "
              "DCRUN_RANK=0 %1$s/cli/dcrun worker --control none -- "
              "sh -c 'echo out0; echo err0 >&2' & "
              "DCRUN_RANK=1 %1$s/cli/dcrun worker --control none -- "
              "sh -c 'echo out1; exit 5' & "
              "DCRUN_RANK=2 %1$s/cli/dcrun worker --control none -- "
              "sh -c 'kill -USR1 $$' & wait",
              b);
    sh_script = script;
    struct dc_launch_opts o = {.on_output = got_output,
                               .on_exit = got_exit,
                               .arg = &g,
                               .cancel_fd = -1,
                               .connect_timeout = 10};
    struct dc_launch l = {.ops = &sh_ops, .opts = o};
    char *argv[] = {"true", NULL};
    struct dc_launch_rank r[3] = {
        {.rank = 0, .host = "localhost", .argv = argv},
        {.rank = 1, .host = "localhost", .argv = argv},
        {.rank = 2, .host = "127.0.0.1", .argv = argv},
    };
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 3, &err), 0);
    ck_assert_ptr_null (strchr (dc_iodrv_addrs (&l), ','));
    ck_assert (!strncmp (dc_iodrv_addrs (&l), "127.0.0.1:", 10));
    hostile (dc_iodrv_addrs (&l));
    char *dargv[] = {"sh", "-c", script, NULL};
    ck_assert_msg (dc_iodrv_start (&l, "sh", dargv, NULL, &err) == 0, "%s",
                   err.text);
    ck_assert_int_eq (run_loop (&l), 0);
    ck_assert_int_eq (g.nexit, 3);
    ck_assert_str_eq (g.out[0], "out0\n");
    ck_assert_str_eq (g.out[1], "out1\n");
    ck_assert (!g.st[0].signaled && g.st[0].code == 0);
    ck_assert (!g.st[1].signaled && g.st[1].code == 5);
    ck_assert (g.st[2].signaled && g.st[2].sig == SIGUSR1);
    ck_assert_ptr_nonnull (strstr (g.drv, "driver-says-hi"));
    dc_iodrv_fini (&l);
    dc_iodrv_fini (&l); /* twice: data is NULL */
}
END_TEST

/* A TCP connection to addr:port, or -1 with errno. */
static int tcp_to (const char *addr, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons ((uint16_t)port)};
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (inet_pton (AF_INET, addr, &a.sin_addr), 1);
    if (connect (fd, (struct sockaddr *)&a, sizeof (a)) < 0) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int port_of (const char *addrs)
{
    return atoi (strrchr (addrs, ':') + 1);
}

/* Where the listener binds: loopback for local ranks (another loopback
 * address is refused), --listen-addr when given, everything only when
 * asked with 0.0.0.0; a bad --listen-addr is an error naming it. */
static const struct {
    const char *listen; /* opts.listen_addr */
    const char *host;   /* of every rank */
    const char *addrs;  /* prefix of dc_iodrv_addrs, NULL: prepare fails */
    const char *open;   /* an address that must connect */
    const char *closed; /* one that must be refused (NULL: none) */
    const char *err;    /* prepare's error */
} listens[] = {
    {NULL, "localhost", "127.0.0.1:", "127.0.0.1", "127.0.0.2", NULL},
    {NULL, "127.0.0.1", "127.0.0.1:", "127.0.0.1", "127.0.0.3", NULL},
    {"127.0.0.3", "localhost", "127.0.0.3:", "127.0.0.3", "127.0.0.1", NULL},
    {"0.0.0.0", "localhost", "127.0.0.1:", "127.0.0.2", NULL, NULL},
    {"", "localhost", NULL, NULL, NULL, "--listen-addr ''"},
    {"300.1.2.3", "localhost", NULL, NULL, NULL, "--listen-addr '300.1.2.3'"},
    {"no-such-host.invalid", "localhost", NULL, NULL, NULL,
     "not an IPv4 address"},
    {"192.0.2.1", "localhost", NULL, NULL, NULL, "cannot listen on 192.0.2.1"},
};

START_TEST (test_listen_addr)
{
    struct dc_launch_opts o = {.cancel_fd = -1,
                               .listen_addr = listens[_i].listen};
    struct dc_launch l = {.ops = NULL, .opts = o};
    char *argv[] = {"true", NULL};
    struct dc_launch_rank r[2] = {
        {.rank = 0, .host = listens[_i].host, .argv = argv},
        {.rank = 1, .host = listens[_i].host, .argv = argv},
    };
    dc_error_t err = {{0}};
    static const struct dc_launch_ops ops = {.name = "listentest"};

    l.ops = &ops;
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    int rc = dc_iodrv_prepare (&l, r, 2, &err);
    if (!listens[_i].addrs) {
        ck_assert_int_eq (rc, -1);
        ck_assert_msg (strstr (err.text, listens[_i].err), "'%s' lacks '%s'",
                       err.text, listens[_i].err);
        dc_iodrv_fini (&l);
        return;
    }
    ck_assert_msg (rc == 0, "%s", err.text);
    const char *addrs = dc_iodrv_addrs (&l);
    ck_assert_msg (
        !strncmp (addrs, listens[_i].addrs, strlen (listens[_i].addrs)),
        "addrs %s", addrs);
    int fd = tcp_to (listens[_i].open, port_of (addrs));
    ck_assert_msg (fd >= 0, "%s: %s", listens[_i].open, strerror (errno));
    close (fd);
    if (listens[_i].closed) {
        fd = tcp_to (listens[_i].closed, port_of (addrs));
        ck_assert_msg (fd < 0 && errno == ECONNREFUSED, "%s:%d is reachable",
                       listens[_i].closed, port_of (addrs));
    }
    dc_iodrv_fini (&l);
}
END_TEST

/* Another user's idle connections (the reproducer's 40, here 3 * 2 + 300:
 * more than the pending list holds) never keep the ranks out, and are
 * closed once every rank is connected. */
START_TEST (test_squatters)
{
    char script[2048];
    const char *b = getenv ("DCRUN_BUILDDIR");
    struct got g = {0};
    dc_error_t err;
    enum { NSQUAT = 300 };
    int squat[NSQUAT];

    if (!b)
        return;
    snprintf (script, sizeof (script),
              "DCRUN_RANK=0 %1$s/cli/dcrun worker --control none -- "
              "echo out0 & "
              "DCRUN_RANK=1 %1$s/cli/dcrun worker --control none -- "
              "echo out1 & wait",
              b);
    struct dc_launch_opts o = {.on_output = got_output,
                               .on_exit = got_exit,
                               .arg = &g,
                               .cancel_fd = -1,
                               .connect_timeout = 20};
    struct dc_launch l = {.ops = &sh_ops, .opts = o};
    char *argv[] = {"true", NULL};
    struct dc_launch_rank r[2] = {
        {.rank = 0, .host = "localhost", .argv = argv},
        {.rank = 1, .host = "localhost", .argv = argv},
    };
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 2, &err), 0);
    int port = port_of (dc_iodrv_addrs (&l));
    for (int i = 0; i < NSQUAT; i++) {
        squat[i] = tcp_to ("127.0.0.1", port);
        ck_assert_int_ge (squat[i], 0);
    }
    /* one that starts a hello and never ends it */
    ck_assert_int_eq (write (squat[0], "dcrun-io 1 ", 11), 11);
    char *dargv[] = {"sh", "-c", script, NULL};
    ck_assert_msg (dc_iodrv_start (&l, "sh", dargv, NULL, &err) == 0, "%s",
                   err.text);
    ck_assert_int_eq (run_loop (&l), 0);
    ck_assert_int_eq (g.nexit, 2);
    ck_assert_str_eq (g.out[0], "out0\n");
    ck_assert_str_eq (g.out[1], "out1\n");
    ck_assert (!g.st[0].failed_start && g.st[0].code == 0);
    ck_assert (!g.st[1].failed_start && g.st[1].code == 0);
    /* every squatter was closed by dcrun: EOF or reset, never data */
    for (int i = 0; i < NSQUAT; i++) {
        char c;
        ssize_t n = read (squat[i], &c, 1);
        ck_assert_msg (n == 0 || (n < 0 && errno == ECONNRESET),
                       "squatter %d: read %zd", i, n);
        close (squat[i]);
    }
    /* and nothing listens any more */
    ck_assert_int_lt (tcp_to ("127.0.0.1", port), 0);
    dc_iodrv_fini (&l);
}
END_TEST

/* A connection that says nothing is closed after 5 s even while ranks are
 * still expected: the driver holds one open (python reports whether dcrun
 * closed it) before it starts the only rank. */
START_TEST (test_silent_closed)
{
    char script[4096];
    const char *b = getenv ("DCRUN_BUILDDIR");
    struct got g = {0};
    dc_error_t err;

    if (!b || access ("/usr/bin/python3", X_OK) != 0)
        return;
    struct dc_launch_opts o = {.on_output = got_output,
                               .on_exit = got_exit,
                               .arg = &g,
                               .cancel_fd = -1,
                               .connect_timeout = 30};
    struct dc_launch l = {.ops = &sh_ops, .opts = o};
    char *argv[] = {"true", NULL};
    struct dc_launch_rank r[1] = {
        {.rank = 0, .host = "localhost", .argv = argv}};
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 1, &err), 0);
    snprintf (script, sizeof (script),
              "/usr/bin/python3 -c '\n"
              "import socket\n"
              "s = socket.create_connection((\"127.0.0.1\", %d))\n"
              "s.settimeout(20)\n"
              "try:\n"
              "    print(\"idle-closed\" if s.recv(1) == b\"\" else \"data\")\n"
              "except ConnectionResetError:\n"
              "    print(\"idle-closed\")\n"
              "except socket.timeout:\n"
              "    print(\"idle-open\")\n"
              "'; DCRUN_RANK=0 %s/cli/dcrun worker --control none -- "
              "echo out0",
              port_of (dc_iodrv_addrs (&l)), b);
    char *dargv[] = {"sh", "-c", script, NULL};
    ck_assert_msg (dc_iodrv_start (&l, "sh", dargv, NULL, &err) == 0, "%s",
                   err.text);
    ck_assert_int_eq (run_loop (&l), 0);
    ck_assert_msg (strstr (g.drv, "idle-closed"), "driver said '%s'", g.drv);
    ck_assert_str_eq (g.out[0], "out0\n");
    dc_iodrv_fini (&l);
}
END_TEST

START_TEST (test_driver_dies)
{
    struct got g = {0};
    dc_error_t err;
    struct dc_launch_opts o = {.on_output = got_output,
                               .on_exit = got_exit,
                               .arg = &g,
                               .cancel_fd = -1,
                               .connect_timeout = 5};
    struct dc_launch l = {.ops = &sh_ops, .opts = o};
    char *argv[] = {"true", NULL};
    struct dc_launch_rank r[1] = {
        {.rank = 0, .host = "localhost", .argv = argv}};
    char *dargv[] = {"sh", "-c",
                     "echo 'ssh: connect to host x: refused' "
                     ">&2; exit 255",
                     NULL};
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 1, &err), 0);
    ck_assert_int_eq (dc_iodrv_start (&l, "sh", dargv, NULL, &err), -1);
    ck_assert_msg (strstr (err.text, "1 rank never started: sh exited with "
                                     "status 255: ssh: connect to host x: "
                                     "refused"),
                   "%s", err.text);
    dc_iodrv_fini (&l);
    /* a driver that cannot be executed */
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 1, &err), 0);
    char *nx[] = {"/nonexistent/driver", NULL};
    ck_assert_int_eq (dc_iodrv_start (&l, "x", nx, NULL, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "No such file"));
    dc_iodrv_fini (&l);
    /* no ranks */
    ck_assert_int_eq (dc_iodrv_init (&l, &err), 0);
    ck_assert_int_eq (dc_iodrv_prepare (&l, r, 0, &err), -1);
    dc_iodrv_fini (&l);
}
END_TEST

#if HAVE_MPI
static int count (char **v, const char *w)
{
    int c = 0;
    for (int i = 0; v[i]; i++)
        c += !strcmp (v[i], w);
    return c;
}

static void free_argv (char **v)
{
    for (int i = 0; v && v[i]; i++)
        free (v[i]);
    free (v);
}

START_TEST (test_mpi_argv)
{
    dc_error_t err;
    struct dc_launch_opts o = {.cancel_fd = -1, .remote_dcrun = "/x/dcrun"};
    struct dc_launch *l = dc_launch_create ("mpi", &o, &err);
    ck_assert_ptr_nonnull (l);
    char *cmd[] = {"echo", "a b", NULL};
    char *env0[] = {"DCRUN_RANK=0", "CUDA_VISIBLE_DEVICES=0,1", NULL};
    struct dc_launch_rank r[3] = {
        {.rank = 0, .host = "n1", .argv = cmd, .env = env0, .cpus = "0-3"},
        {.rank = 1, .host = "n2", .user = "bob", .port = 2200, .argv = cmd},
        {.rank = 2, .host = "n1", .argv = cmd, .port = 2200},
    };
    char **v = NULL;
    ck_assert_int_eq (dc_launch_mpi_argv (l, r, 3, NULL, &v, &err), 0);
    ck_assert_str_eq (v[0], "mpirun");
    ck_assert_int_eq (count (v, "-np"), 3);
    ck_assert_int_eq (count (v, ":"), 2);
    ck_assert_int_eq (count (v, "n1:2"), 2); /* two ranks, two slots */
    ck_assert_int_eq (count (v, "bob@n2:1"), 1);
    ck_assert_int_eq (count (v, "CUDA_VISIBLE_DEVICES=0,1"), 1);
    ck_assert_int_eq (count (v, "-p 2200"), 1);
    ck_assert_int_eq (count (v, "0-3"), 1);
    ck_assert_int_eq (count (v, "/x/dcrun"), 3);
    ck_assert_int_eq (count (v, "a b"), 3);
    ck_assert_int_eq (count (v, DC_IO_TOKEN_ENV), 3);
    ck_assert_int_eq (count (v, "orte_abort_on_non_zero_status"), 1);
    ck_assert_int_eq (count (v, "btl"), 0); /* not every host is local */
    free_argv (v);
    /* hostile --mpirun-args; hosts on different ports */
    static const char *const bad_args[] = {"'open", "$(reboot)", "`x`", "a\"b",
                                           NULL};
    for (int i = 0; bad_args[i]; i++) {
        l->opts.mpirun_args = bad_args[i];
        v = NULL;
        ck_assert_int_eq (dc_launch_mpi_argv (l, r, 3, NULL, &v, &err), -1);
        ck_assert_ptr_null (v);
    }
    l->opts.mpirun_args = "--mca x 'y z'";
    ck_assert_int_eq (dc_launch_mpi_argv (l, r, 3, NULL, &v, &err), 0);
    ck_assert_int_eq (count (v, "y z"), 1);
    free_argv (v);
    l->opts.mpirun_args = NULL;
    r[2].port = 2300;
    ck_assert_int_eq (dc_launch_mpi_argv (l, r, 3, NULL, &v, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "different ssh ports"));
    /* every host local: loopback transport */
    struct dc_launch_rank lo[2] = {
        {.rank = 0, .host = "127.0.0.2", .argv = cmd},
        {.rank = 1, .host = "localhost", .argv = cmd},
    };
    ck_assert_int_eq (dc_launch_mpi_argv (l, lo, 2, NULL, &v, &err), 0);
    ck_assert_int_eq (count (v, "btl_tcp_if_include"), 1);
    free_argv (v);
    dc_launch_destroy (l);
}
END_TEST
#endif

START_TEST (test_slurm_argv)
{
    dc_error_t err;
    struct dc_launch_opts o = {
        .cancel_fd = -1, .srun_mpi = "pmix", .srun_args = "--overlap -c 2"};
    unsetenv ("SLURM_JOB_ID");
    ck_assert_ptr_null (dc_launch_create ("slurm", &o, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "not inside a Slurm allocation"));
    setenv ("SLURM_JOB_ID", "7", 1);
    struct dc_launch *l = dc_launch_create ("slurm", &o, &err);
    unsetenv ("SLURM_JOB_ID");
    ck_assert_ptr_nonnull (l);
    char *cmd[] = {"hostname", NULL};
    struct dc_launch_rank r[2] = {{.rank = 0, .host = "a", .argv = cmd},
                                  {.rank = 1, .host = "b", .argv = cmd}};
    char **v = NULL;
    ck_assert_int_eq (dc_launch_driver_argv (l, r, 2, &v, &err), 0);
    char *line = dc_launch_shell_join (v);
    ck_assert_str_eq (line, "srun --ntasks=2 --distribution=arbitrary "
                            "--kill-on-bad-exit=0 --export=ALL --mpi=pmix "
                            "--overlap -c 2 dcrun worker --control none -- "
                            "hostname");
    free (line);
    for (int i = 0; v[i]; i++)
        free (v[i]);
    free (v);
    ck_assert_int_eq (dc_launch_driver_argv (l, r, 0, &v, &err), -1);
    l->opts.srun_args = "'open";
    ck_assert_int_eq (dc_launch_driver_argv (l, r, 2, &v, &err), -1);
    dc_launch_destroy (l);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("launch_io");
    TCase *tc = tcase_create ("core");
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_connect_bad);
    tcase_add_test (tc, test_driver_run);
    tcase_add_test (tc, test_driver_dies);
    tcase_add_loop_test (tc, test_listen_addr, 0,
                         sizeof (listens) / sizeof (listens[0]));
    tcase_add_test (tc, test_squatters);
    tcase_add_test (tc, test_silent_closed);
    tcase_add_test (tc, test_slurm_argv);
#if HAVE_MPI
    tcase_add_test (tc, test_mpi_argv);
#endif
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
