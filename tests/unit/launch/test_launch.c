/* test_launch.c - launcher registry, -L auto, helpers, the local launcher */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/launch/launch.h"

START_TEST (test_find)
{
    dc_error_t err;
    const struct dc_launch_ops *ops = dc_launch_find ("local", &err);
    ck_assert_ptr_nonnull (ops);
    ck_assert_str_eq (ops->name, "local");
    ck_assert_ptr_nonnull (ops->spawn);
    ck_assert_ptr_nonnull (ops->signal);
    ck_assert_ptr_null (dc_launch_find ("nosuch", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "unknown launcher 'nosuch'"));
    ck_assert_ptr_nonnull (strstr (err.text, "local"));
    ck_assert_ptr_null (dc_launch_find ("", &err));
    ck_assert_ptr_null (dc_launch_find (NULL, NULL));
    ck_assert_ptr_nonnull (strstr (dc_launch_names (), "local"));
    for (int i = 0; dc_launchers[i]; i++) {
        ck_assert_ptr_nonnull (dc_launchers[i]->name);
        ck_assert_ptr_nonnull (dc_launchers[i]->pollfds);
        ck_assert_ptr_nonnull (dc_launchers[i]->progress);
    }
}
END_TEST

static const struct {
    const char *name;
    bool local;
} local_cases[] = {
    {"localhost", true},
    {"127.0.0.1", true},
    {"127.0.0.4", true},
    {"127.255.1.2", true},
    {"::1", true},
    {"128.0.0.1", false},
    {"10.0.0.1", false},
    {"", false},
    {"node01.example.invalid", false},
    {"127.0.0.1.evil", false},
    {NULL, false},
};

START_TEST (test_is_local)
{
    for (size_t i = 0; i < sizeof (local_cases) / sizeof (local_cases[0]); i++)
        ck_assert_msg (dc_launch_is_local_host (local_cases[i].name) ==
                           local_cases[i].local,
                       "%s",
                       local_cases[i].name ? local_cases[i].name : "NULL");
    char me[256];
    ck_assert_int_eq (gethostname (me, sizeof (me)), 0);
    ck_assert (dc_launch_is_local_host (me));
}
END_TEST

START_TEST (test_auto)
{
    const char *loc[] = {"localhost", "127.0.0.2"};
    const char *rem[] = {"localhost", "node07.example.invalid"};

    unsetenv ("SLURM_JOB_ID");
    unsetenv ("SLURM_STEP_ID");
    ck_assert_str_eq (dc_launch_auto (loc, 2), "local");
    ck_assert_str_eq (dc_launch_auto (loc, 0), "local");
    ck_assert_str_eq (dc_launch_auto (rem, 2), "ssh");
    setenv ("SLURM_JOB_ID", "42", 1);
    ck_assert_str_eq (dc_launch_auto (rem, 2), "slurm");
    setenv ("SLURM_STEP_ID", "0", 1); /* already a step: not srun again */
    ck_assert_str_eq (dc_launch_auto (rem, 2), "ssh");
    unsetenv ("SLURM_JOB_ID");
    unsetenv ("SLURM_STEP_ID");
}
END_TEST

static const struct {
    const char *argv[5];
    const char *joined;
} join_cases[] = {
    {{"echo", "hello", NULL}, "echo hello"},
    {{"echo", "a b", NULL}, "echo 'a b'"},
    {{"echo", "it's", NULL}, "echo 'it'\\''s'"},
    {{"echo", "", NULL}, "echo ''"},
    {{"sh", "-c", "$(rm -rf /); `x`", NULL}, "sh -c '$(rm -rf /); `x`'"},
    {{"a=b", "x;y", "\n", NULL}, "a=b 'x;y' '\n'"},
    {{NULL}, ""},
};

START_TEST (test_shell_join)
{
    for (size_t i = 0; i < sizeof (join_cases) / sizeof (join_cases[0]); i++) {
        char *s = dc_launch_shell_join ((char *const *)join_cases[i].argv);
        ck_assert_ptr_nonnull (s);
        ck_assert_str_eq (s, join_cases[i].joined);
        free (s);
    }
    errno = 0;
    ck_assert_ptr_null (dc_launch_shell_join (NULL));
    ck_assert_int_eq (errno, EINVAL);
}
END_TEST

START_TEST (test_worker_cmdline)
{
    char *env[] = {"DCRUN_RANK=3", "X=a b", NULL};
    char *argv[] = {"echo", "hi there", NULL};
    struct dc_launch_rank r = {
        .rank = 3, .host = "h", .cpus = "0-3", .env = env, .argv = argv};
    char *s = dc_launch_worker_cmdline ("/opt/dc run/dcrun", &r);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, "'/opt/dc run/dcrun' worker --cpus 0-3 -e "
                         "DCRUN_RANK=3 -e 'X=a b' -- echo 'hi there'");
    free (s);
    r.cpus = NULL;
    r.env = NULL;
    s = dc_launch_worker_cmdline (NULL, &r);
    ck_assert_str_eq (s, "dcrun worker -- echo 'hi there'");
    free (s);
    r.argv = NULL;
    ck_assert_ptr_null (dc_launch_worker_cmdline (NULL, &r));
    ck_assert_ptr_null (dc_launch_worker_cmdline (NULL, NULL));
}
END_TEST

START_TEST (test_bind_bad)
{
    static const char *bad[] = {"",     "x",       "1-",  "-1",  "3-1",
                                "0,,1", "0-99999", "1 2", "0-1x"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        errno = 0;
        ck_assert_int_eq (dc_launch_bind_cpus (bad[i]), -1);
        ck_assert_int_eq (errno, EINVAL);
    }
    ck_assert_int_eq (dc_launch_bind_cpus (NULL), -1);
}
END_TEST

START_TEST (test_free_port)
{
    int p = dc_launch_free_port ();
    ck_assert_int_gt (p, 0);
    ck_assert_int_lt (p, 65536);
}
END_TEST

/* The local launcher end to end: output, exit status, exec failure. */
struct got {
    char out[4][256];
    size_t outlen[4];
    struct dc_launch_status st[4];
    int nexit;
};

static void got_output (int rank, enum dc_launch_stream s, const char *d,
                        size_t len, void *arg)
{
    struct got *g = arg;
    ck_assert_int_ge (rank, 0);
    ck_assert_int_lt (rank, 4);
    if (s == DC_LAUNCH_STDOUT && g->outlen[rank] + len < 256) {
        memcpy (g->out[rank] + g->outlen[rank], d, len);
        g->outlen[rank] += len;
    }
}

static void got_exit (const struct dc_launch_status *st, void *arg)
{
    struct got *g = arg;
    g->st[st->rank] = *st;
    g->nexit++;
}

START_TEST (test_local_run)
{
    struct got g = {0};
    struct dc_launch_opts o = {.on_output = got_output,
                               .on_exit = got_exit,
                               .arg = &g,
                               .cancel_fd = -1,
                               .stdin_null = true};
    char *a0[] = {"sh", "-c", "echo r$RR", NULL};
    char *a1[] = {"sh", "-c", "exit 7", NULL};
    char *a2[] = {"/nonexistent/x", NULL};
    char *a3[] = {"sh", "-c", "kill -TERM $$", NULL};
    char *e0[] = {"RR=zero", NULL};
    struct dc_launch_rank r[4] = {
        {.rank = 0, .host = "localhost", .argv = a0, .env = e0},
        {.rank = 1, .host = "localhost", .argv = a1},
        {.rank = 2, .host = "localhost", .argv = a2},
        {.rank = 3, .host = "localhost", .argv = a3},
    };
    dc_error_t err;
    struct dc_launch *l = dc_launch_create ("local", &o, &err);
    ck_assert_ptr_nonnull (l);
    ck_assert_int_eq (dc_launch_spawn (l, r, 4, &err), 0);
    int running = 4;
    for (int loops = 0; running > 0 && loops < 500; loops++) {
        struct pollfd fds[16];
        int timeout = 1000;
        int n = dc_launch_pollfds (l, fds, 16, &timeout);
        ck_assert_int_le (timeout, 100);
        poll (fds, (nfds_t)n, timeout);
        running = dc_launch_progress (l, fds, n);
    }
    ck_assert_int_eq (running, 0);
    ck_assert_int_eq (g.nexit, 4);
    ck_assert_str_eq (g.out[0], "rzero\n");
    ck_assert (!g.st[0].signaled && g.st[0].code == 0);
    ck_assert (!g.st[1].signaled && g.st[1].code == 7);
    ck_assert (g.st[2].failed_start);
    ck_assert_ptr_nonnull (strstr (g.st[2].reason, "/nonexistent/x: No such "
                                                   "file or directory"));
    ck_assert (g.st[3].signaled && g.st[3].sig == SIGTERM);
    dc_launch_destroy (l);
    dc_launch_destroy (NULL);
}
END_TEST

START_TEST (test_create_bad)
{
    dc_error_t err;
    ck_assert_ptr_null (dc_launch_create ("local", NULL, &err));
    struct dc_launch_opts o = {.cancel_fd = -1};
    ck_assert_ptr_null (dc_launch_create ("bogus", &o, &err));
    struct dc_launch *l = dc_launch_create ("local", &o, &err);
    ck_assert_int_eq (dc_launch_spawn (l, NULL, 1, &err), -1);
    char *argv[] = {NULL};
    struct dc_launch_rank r = {.rank = 0, .argv = argv};
    ck_assert_int_eq (dc_launch_spawn (l, &r, 1, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "no command"));
    dc_launch_destroy (l);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("launch");
    TCase *tc = tcase_create ("launch");

    tcase_add_test (tc, test_find);
    tcase_add_test (tc, test_is_local);
    tcase_add_test (tc, test_auto);
    tcase_add_test (tc, test_shell_join);
    tcase_add_test (tc, test_worker_cmdline);
    tcase_add_test (tc, test_bind_bad);
    tcase_add_test (tc, test_free_port);
    tcase_add_test (tc, test_local_run);
    tcase_add_test (tc, test_create_bad);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
