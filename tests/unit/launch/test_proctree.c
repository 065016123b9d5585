/* test_proctree.c - lib/proctree: an agent kills its rank's whole tree */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/launch/proctree.h"

static bool gone (pid_t pid)
{
    return kill (pid, 0) < 0 && errno == ESRCH;
}

/* Children of processes that have none, or do not exist: nothing sent. */
START_TEST (test_no_children)
{
    static const pid_t cases[] = {999999999, 1 << 22};
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
        ck_assert_int_eq (dc_proctree_signal_children (cases[i], 0), 0);
    ck_assert_int_eq (dc_proctree_kill (0), 0); /* no child: nothing */
}
END_TEST

/* A grandchild that called setsid and lost its parent comes back to the
 * subreaper and is killed with the rest. */
START_TEST (test_setsid_grandchild)
{
    int p[2];
    pid_t b = 0;

    ck_assert_int_eq (dc_proctree_subreaper (), 0);
    ck_assert_int_eq (pipe (p), 0);
    pid_t a = fork ();
    ck_assert_int_ge (a, 0);
    if (a == 0) {
        pid_t c = fork ();
        if (c == 0) {
            setsid ();
            for (;;)
                pause ();
        }
        if (write (p[1], &c, sizeof (c)) < 0)
            _exit (1);
        _exit (0); /* the daemon is reparented to the test */
    }
    close (p[1]);
    ck_assert_int_eq (read (p[0], &b, sizeof (b)), (ssize_t)sizeof (b));
    close (p[0]);
    ck_assert_int_eq (waitpid (a, NULL, 0), a);
    ck_assert (!gone (b));
    ck_assert_int_ge (dc_proctree_signal_children (getpid (), 0), 1);
    ck_assert_int_eq (dc_proctree_kill (0), 1);
    ck_assert (gone (b));
}
END_TEST

/* A stopped process group (SIGSTOP) is killed, not left stopped. */
START_TEST (test_stopped_group)
{
    int st;
    pid_t c = fork ();

    ck_assert_int_ge (c, 0);
    if (c == 0) {
        setpgid (0, 0);
        raise (SIGSTOP);
        for (;;)
            pause ();
    }
    setpgid (c, c);
    ck_assert_int_eq (waitpid (c, &st, WUNTRACED), c);
    ck_assert (WIFSTOPPED (st));
    ck_assert_int_eq (dc_proctree_kill (c), 1);
    ck_assert (gone (c));
}
END_TEST

/* Every descriptor but those kept is closed (in a child: Check's own
 * descriptors must stay open here). */
START_TEST (test_close_fds)
{
    int st;
    pid_t c = fork ();

    ck_assert_int_ge (c, 0);
    if (c == 0) {
        int a[2], b[2];
        if (pipe (a) < 0 || pipe (b) < 0)
            _exit (2);
        int keep[] = {a[1], 1, -1};
        dc_proctree_close_fds (keep, 3);
        bool ok = fcntl (a[1], F_GETFD) >= 0 && fcntl (a[0], F_GETFD) < 0 &&
                  fcntl (b[0], F_GETFD) < 0 && fcntl (b[1], F_GETFD) < 0 &&
                  fcntl (0, F_GETFD) >= 0;
        _exit (ok ? 0 : 1);
    }
    ck_assert_int_eq (waitpid (c, &st, 0), c);
    ck_assert (WIFEXITED (st));
    ck_assert_int_eq (WEXITSTATUS (st), 0);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("proctree");
    TCase *tc = tcase_create ("proctree");

    tcase_add_test (tc, test_no_children);
    tcase_add_test (tc, test_setsid_grandchild);
    tcase_add_test (tc, test_stopped_group);
    tcase_add_test (tc, test_close_fds);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
