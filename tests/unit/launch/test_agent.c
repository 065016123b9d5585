/* test_agent.c - the agent of one rank (lib/launch/agent.h) in this
 * process: exit statuses, stdin frames (in pieces, binary, EOF), signal
 * messages, EOF and a hostile frame on the control channel, the channel's
 * output hanging up, a CMD that cannot run, the status line */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/launch/agent.h"
#include "lib/launch/control.h"

static char tmpdir[] = "/tmp/dcrun-agent-XXXXXX";

/* Run cmd under the agent with ctl_in (len bytes) waiting on the control
 * channel; close_ctl: the channel at EOF after them.  Returns the rc; the
 * wait status in *st. */
static int run (char *const *cmd, const char *ctl_in, size_t len,
                bool close_ctl, bool stdin_data, int watch, int status_fd,
                int *st, dc_error_t *err)
{
    int p[2];

    ck_assert_int_eq (pipe (p), 0);
    fcntl (p[1], F_SETPIPE_SZ, 1 << 20);
    fcntl (p[1], F_SETFL, O_NONBLOCK);
    for (size_t off = 0; off < len;) {
        ssize_t n = write (p[1], ctl_in + off, len - off);
        ck_assert_int_gt (n, 0);
        off += (size_t)n;
    }
    if (close_ctl)
        close (p[1]);
    struct dc_agent_opts o = {
        .cmd = cmd,
        .stdin_data = stdin_data,
        .ctl_fd = p[0],
        .watch_fd = watch,
        .out_fd = -1,
        .err_fd = -1,
        .status_fd = status_fd,
        .kill_grace = 0.3,
    };
    int rc = dc_agent_run (&o, st, err);
    close (p[0]);
    if (!close_ctl)
        close (p[1]);
    return rc;
}

START_TEST (test_exit_status)
{
    char *cmd[] = {"sh", "-c", "exit 3", NULL};
    int st, sp[2];
    char line[32] = "";
    dc_error_t err;

    ck_assert_int_eq (pipe (sp), 0);
    ck_assert_int_eq (run (cmd, "", 0, false, false, -1, sp[1], &st, &err),
                      DC_AGENT_OK);
    ck_assert (WIFEXITED (st));
    ck_assert_int_eq (WEXITSTATUS (st), 3);
    ck_assert_int_gt (read (sp[0], line, sizeof (line) - 1), 0);
    ck_assert_str_eq (line, "exit 3\n");
}
END_TEST

START_TEST (test_stdin_frames)
{
    /* every byte value, in frames of odd sizes, then EOF: the file holds
     * them in order and cat ends */
    char path[64], hdr[32], *ctl = malloc (200000), *want = malloc (150000);
    size_t n = 0, w = 0;
    for (size_t i = 0; i < 150000; i++)
        want[i] = (char)(i * 31 + 7);
    for (size_t off = 0; off < 150000;) {
        size_t k = off % 3 ? 777 : DC_CTL_STDIN_MAX;
        if (k > 150000 - off)
            k = 150000 - off;
        int h = dc_ctl_stdin_header (hdr, sizeof (hdr), k);
        memcpy (ctl + n, hdr, (size_t)h);
        n += (size_t)h;
        memcpy (ctl + n, want + off, k);
        n += k;
        off += k;
        w++;
    }
    n += (size_t)dc_ctl_stdin_eof (ctl + n, 32);
    snprintf (path, sizeof (path), "%s/in", tmpdir);
    char *cmd[] = {"sh", "-c", "cat > \"$0\"", path, NULL};
    int st;
    dc_error_t err;
    ck_assert_int_eq (run (cmd, ctl, n, false, true, -1, -1, &st, &err),
                      DC_AGENT_OK);
    ck_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0);
    FILE *f = fopen (path, "rb");
    ck_assert_ptr_nonnull (f);
    char *got = malloc (160000);
    ck_assert_uint_eq (fread (got, 1, 160000, f), 150000);
    fclose (f);
    ck_assert_int_eq (memcmp (got, want, 150000), 0);
    ck_assert_uint_gt (w, 4);
    free (got);
    free (ctl);
    free (want);
}
END_TEST

START_TEST (test_no_stdin)
{
    /* without stdin_data, frames are dropped and CMD reads /dev/null */
    char *cmd[] = {"sh", "-c", "read x && exit 9; exit 4", NULL};
    const char *ctl = "stdin 6\nhello\nstdin-eof\n";
    int st;
    dc_error_t err;
    ck_assert_int_eq (
        run (cmd, ctl, strlen (ctl), false, false, -1, -1, &st, &err),
        DC_AGENT_OK);
    ck_assert (WIFEXITED (st));
    ck_assert_int_eq (WEXITSTATUS (st), 4);
}
END_TEST

static const struct {
    const char *ctl;
    bool close_ctl;
    int sig; /* how sleep ends */
} stop_cases[] = {
    {"signal 10\n", false, SIGUSR1}, /* a signal message */
    {"", true, SIGTERM},             /* EOF: the head gone */
    {"stdin 12x\n", false, SIGTERM}, /* a hostile frame */
    {"nonsense\nsignal 0\nsignal 12\n", false, SIGUSR2}, /* skipped lines */
};

START_TEST (test_stop)
{
    char *cmd[] = {"sleep", "30", NULL};
    int st;
    dc_error_t err;
    ck_assert_int_eq (run (cmd, stop_cases[_i].ctl, strlen (stop_cases[_i].ctl),
                           stop_cases[_i].close_ctl, true, -1, -1, &st, &err),
                      DC_AGENT_OK);
    ck_assert_msg (WIFSIGNALED (st) && WTERMSIG (st) == stop_cases[_i].sig,
                   "case %d: status %#x", _i, st);
}
END_TEST

START_TEST (test_watch_hangup)
{
    /* 600 KB of stdin that CMD never reads: the agent stops reading the
     * channel; the channel's output hanging up still stops CMD */
    size_t n = 0, len = 600000;
    char *ctl = malloc (len + DC_CTL_STDIN_MAX + 64), hdr[32];
    while (n < len) {
        int h = dc_ctl_stdin_header (hdr, sizeof (hdr), DC_CTL_STDIN_MAX);
        memcpy (ctl + n, hdr, (size_t)h);
        memset (ctl + n + h, 'z', DC_CTL_STDIN_MAX);
        n += (size_t)h + DC_CTL_STDIN_MAX;
    }
    int wp[2];
    ck_assert_int_eq (pipe (wp), 0);
    close (wp[0]); /* the reader of the channel's output is gone */
    char *cmd[] = {"sleep", "30", NULL};
    int st;
    dc_error_t err;
    ck_assert_int_eq (run (cmd, ctl, n, false, true, wp[1], -1, &st, &err),
                      DC_AGENT_OK);
    ck_assert (WIFSIGNALED (st) && WTERMSIG (st) == SIGTERM);
    close (wp[1]);
    free (ctl);
}
END_TEST

START_TEST (test_noexec)
{
    char *cmd[] = {"/nonexistent/dcrun-agent-test", NULL};
    int st, sp[2];
    char line[32] = "";
    dc_error_t err;

    ck_assert_int_eq (pipe (sp), 0);
    ck_assert_int_eq (run (cmd, "", 0, false, false, -1, sp[1], &st, &err),
                      DC_AGENT_NOEXEC);
    ck_assert_ptr_nonnull (strstr (err.text, "/nonexistent/dcrun-agent-test"));
    ck_assert_ptr_nonnull (strstr (err.text, "No such file"));
    ck_assert_int_gt (read (sp[0], line, sizeof (line) - 1), 0);
    ck_assert_str_eq (line, "exit 127\n");
    /* no options, no command: an error, not a crash */
    ck_assert_int_eq (dc_agent_run (NULL, &st, &err), DC_AGENT_SETUP);
    struct dc_agent_opts o = {.ctl_fd = -1, .watch_fd = -1};
    ck_assert_int_eq (dc_agent_run (&o, &st, &err), DC_AGENT_SETUP);
    char *empty[] = {NULL};
    o.cmd = empty;
    ck_assert_int_eq (dc_agent_run (&o, &st, NULL), DC_AGENT_SETUP);
}
END_TEST

int main (void)
{
    if (!mkdtemp (tmpdir))
        return dc_check_skip ("cannot make a temporary folder");
    Suite *s = suite_create ("agent");
    TCase *tc = tcase_create ("agent");

    tcase_set_timeout (tc, 20);
    tcase_add_test (tc, test_exit_status);
    tcase_add_test (tc, test_stdin_frames);
    tcase_add_test (tc, test_no_stdin);
    tcase_add_loop_test (tc, test_stop, 0,
                         (int)(sizeof (stop_cases) / sizeof (stop_cases[0])));
    tcase_add_test (tc, test_watch_hangup);
    tcase_add_test (tc, test_noexec);
    suite_add_tcase (s, tc);
    int rc = dc_check_run (s);
    char path[64];
    snprintf (path, sizeof (path), "%s/in", tmpdir);
    unlink (path);
    rmdir (tmpdir);
    return rc;
}
