/* test_atomicfile.c - outputs never clobber: regular files replaced by a
 * rename, links' targets replaced (the link stays), devices and FIFOs
 * written in place, dangling links and folders refused; inputs that are
 * not regular files refused without blocking; a command's files checked
 * together (an output that is an input, through hard and symbolic links) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/util/file.h"

#define DC_TMP_PREFIX "/tmp/test_atomicfile"
#include "tmpdir.h"

static char *slurp (const char *path, size_t *n)
{
    static char buf[4096];
    int fd = open (path, O_RDONLY);
    ssize_t r;

    ck_assert_int_ge (fd, 0);
    r = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    ck_assert_int_ge (r, 0);
    buf[r] = '\0';
    if (n)
        *n = (size_t)r;
    return buf;
}

/* write "hello" to path through an atomic file and commit it */
static int put (const char *path, dc_error_t *err)
{
    struct dc_atomicfile *f = dc_atomicfile_create (path, err);
    int rc;

    if (!f)
        return -1;
    rc = dc_atomicfile_pwrite (f, "hello", 5, 0, err) == 0 &&
                 dc_atomicfile_commit (f, err) == 0
             ? 0
             : -1;
    dc_atomicfile_destroy (f);
    return rc;
}

START_TEST (t_replace_regular)
{
    dc_error_t err;
    struct stat a, b;

    write_file (tpath ("r"), "old contents", 12);
    ck_assert_int_eq (stat (tpath ("r"), &a), 0);
    ck_assert_int_eq (put (tpath ("r"), &err), 0);
    ck_assert_str_eq (slurp (tpath ("r"), NULL), "hello");
    ck_assert_int_eq (stat (tpath ("r"), &b), 0);
    ck_assert (a.st_ino != b.st_ino); /* a new file, renamed over */
    ck_assert_int_eq (count_files (), 1);
}
END_TEST

START_TEST (t_symlink_target_replaced)
{
    dc_error_t err;
    struct stat st;
    char buf[256];

    write_file (tpath ("target"), "old", 3);
    ck_assert_int_eq (symlink ("target", tpath ("link")), 0);
    ck_assert_int_eq (put (tpath ("link"), &err), 0);
    ck_assert_int_eq (lstat (tpath ("link"), &st), 0);
    ck_assert (S_ISLNK (st.st_mode));
    ssize_t n = readlink (tpath ("link"), buf, sizeof (buf) - 1);
    ck_assert_int_eq (n, 6);
    buf[n] = '\0';
    ck_assert_str_eq (buf, "target");
    ck_assert_str_eq (slurp (tpath ("target"), NULL), "hello");
    ck_assert_int_eq (count_files (), 2);
    /* a chain of links: the last file */
    ck_assert_int_eq (symlink ("link", tpath ("link2")), 0);
    write_file (tpath ("target"), "old", 3);
    ck_assert_int_eq (put (tpath ("link2"), &err), 0);
    ck_assert_str_eq (slurp (tpath ("target"), NULL), "hello");
    ck_assert_int_eq (lstat (tpath ("link2"), &st), 0);
    ck_assert (S_ISLNK (st.st_mode));
    ck_assert_int_eq (count_files (), 3);
}
END_TEST

/* Paths that are refused: nothing created, the message says why. */
static const struct {
    const char *name; /* in the private folder; NULL: the path as it is */
    const char *path;
    const char *msg;
} refused[] = {
    {"dangling", NULL, "does not exist"},
    {"loop", NULL, "symbolic links"},
    {"", NULL, "a folder"},
    {"nodir/x.npy", NULL, "No such file"},
    {"file/x.npy", NULL, "Not a directory"},
    {NULL, "", "empty output path"},
    {NULL, NULL, "empty output path"},
};

START_TEST (t_refused)
{
    dc_error_t err;
    char buf[512];
    const char *p = refused[_i].path;

    if (refused[_i].name) { /* tpath's buffers rotate: a copy */
        snprintf (buf, sizeof (buf), "%s", tpath (refused[_i].name));
        p = buf;
    }

    ck_assert_int_eq (symlink ("nothere", tpath ("dangling")), 0);
    ck_assert_int_eq (symlink ("loop", tpath ("loop")), 0);
    write_file (tpath ("file"), "x", 1);
    ck_assert_ptr_null (dc_atomicfile_create (p, &err));
    ck_assert_msg (strstr (err.text, refused[_i].msg), "%s: %s", p ? p : "",
                   err.text);
    ck_assert_int_eq (count_files (), 3);
    ck_assert (access (tpath ("nothere"), F_OK) < 0);
    int fd = dc_file_open_log (p, false, &err);
    ck_assert_int_eq (fd, -1);
    ck_assert_int_eq (count_files (), 3);
}
END_TEST

START_TEST (t_device_in_place)
{
    dc_error_t err;
    struct stat st;

    if (mknod (tpath ("null"), S_IFCHR | 0666, makedev (1, 3)) < 0) {
        /* not root: the real one, which must stay what it is */
        ck_assert_int_eq (symlink ("/dev/null", tpath ("null")), 0);
    }
    struct dc_atomicfile *f = dc_atomicfile_create (tpath ("null"), &err);
    ck_assert_msg (f != NULL, "%s", err.text);
    ck_assert (dc_atomicfile_in_place (f));
    ck_assert_ptr_null (dc_atomicfile_tmppath (f));
    ck_assert_int_eq (dc_atomicfile_truncate (f, 1000, &err), 0);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "abc", 3, 500, &err), 0);
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), 0);
    dc_atomicfile_destroy (f);
    ck_assert_int_eq (stat (tpath ("null"), &st), 0);
    ck_assert (S_ISCHR (st.st_mode));
    ck_assert_int_eq (stat ("/dev/null", &st), 0);
    ck_assert (S_ISCHR (st.st_mode));
    ck_assert_int_eq (count_files (), 1);
    /* /dev/full: the write fails at commit, the device stays */
    f = dc_atomicfile_create ("/dev/full", &err);
    ck_assert_ptr_nonnull (f);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "abc", 3, 0, &err), 0);
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "No space left"));
    dc_atomicfile_destroy (f);
    ck_assert_int_eq (stat ("/dev/full", &st), 0);
    ck_assert (S_ISCHR (st.st_mode));
}
END_TEST

START_TEST (t_fifo_in_place)
{
    dc_error_t err;
    char buf[64];
    struct stat st;

    ck_assert_int_eq (mkfifo (tpath ("fifo"), 0600), 0);
    /* a reader first, so that the writer's open does not wait */
    int rd = open (tpath ("fifo"), O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge (rd, 0);
    struct dc_atomicfile *f = dc_atomicfile_create (tpath ("fifo"), &err);
    ck_assert_msg (f != NULL, "%s", err.text);
    ck_assert (dc_atomicfile_in_place (f));
    /* out of order, as chunks arrive: the reader gets them in order */
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "world", 5, 6, &err), 0);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "hello ", 6, 0, &err), 0);
    ck_assert_int_eq (read (rd, buf, sizeof (buf)), -1); /* nothing yet */
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), 0);
    dc_atomicfile_destroy (f);
    ssize_t n = read (rd, buf, sizeof (buf));
    ck_assert_int_eq (n, 11);
    ck_assert (!memcmp (buf, "hello world", 11));
    ck_assert_int_eq (read (rd, buf, sizeof (buf)), 0); /* EOF */
    close (rd);
    ck_assert_int_eq (lstat (tpath ("fifo"), &st), 0);
    ck_assert (S_ISFIFO (st.st_mode));

    /* abandoned: the reader sees EOF and no byte */
    rd = open (tpath ("fifo"), O_RDONLY | O_NONBLOCK);
    f = dc_atomicfile_create (tpath ("fifo"), &err);
    ck_assert_ptr_nonnull (f);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "partial", 7, 0, &err), 0);
    dc_atomicfile_destroy (f);
    ck_assert_int_eq (read (rd, buf, sizeof (buf)), 0);
    close (rd);
    ck_assert_int_eq (count_files (), 1);
}
END_TEST

START_TEST (t_fsync_durable_names)
{
    /* the commit replaces, the old inode's readers keep the old bytes */
    dc_error_t err;
    write_file (tpath ("d"), "old", 3);
    int rd = open (tpath ("d"), O_RDONLY);
    ck_assert_int_eq (put (tpath ("d"), &err), 0);
    char buf[8] = {0};
    ck_assert_int_eq (read (rd, buf, sizeof (buf)), 3);
    ck_assert_str_eq (buf, "old");
    close (rd);
    ck_assert_str_eq (slurp (tpath ("d"), NULL), "hello");
}
END_TEST

/* A file the ranks write: named ".NAME.dcrun-XXXXXX", 0600, locked; the
 * sweep removes what a killed run left (unlocked) and keeps a live one; a
 * device cannot be shared; the signal cleanup takes the name away. */
START_TEST (t_shared)
{
    dc_error_t err;
    struct stat st;
    char names[256], left[512];
    struct dc_atomicfile *f = dc_atomicfile_create_shared (tpath ("o"), &err);

    ck_assert_ptr_nonnull (f);
    const char *tmp = dc_atomicfile_tmppath (f);
    ck_assert_ptr_nonnull (tmp);
    ck_assert_ptr_nonnull (strstr (tmp, "/.o.dcrun-"));
    ck_assert_int_eq (stat (tmp, &st), 0);
    ck_assert_int_eq (st.st_mode & 0777, 0600);
    snprintf (left, sizeof (left), "%s", tpath (".o.dcrun-abc123"));
    write_file (left, "stale", 5);
    ck_assert_int_eq (dc_atomicfile_sweep (tpath ("o"), names, sizeof (names)),
                      1);
    ck_assert_str_eq (names, ".o.dcrun-abc123");
    ck_assert_int_eq (stat (tmp, &st), 0); /* held: kept */
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "hello", 5, 0, &err), 0);
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), 0);
    dc_atomicfile_destroy (f);
    ck_assert_str_eq (slurp (tpath ("o"), NULL), "hello");
    ck_assert_int_eq (count_files (), 1);
    /* uncommitted: destroy removes it; a signal's cleanup too */
    f = dc_atomicfile_create_shared (tpath ("p"), &err);
    ck_assert_ptr_nonnull (f);
    ck_assert_int_eq (count_files (), 2);
    dc_file_signal_cleanup ();
    ck_assert_int_eq (count_files (), 1);
    dc_atomicfile_destroy (f);
    /* a device is written in place by its process: not shareable */
    ck_assert_ptr_null (dc_atomicfile_create_shared ("/dev/null", &err));
    ck_assert_int_eq (errno, ENOTSUP);
    ck_assert_int_eq (dc_atomicfile_sweep ("/dev/null", names, sizeof (names)),
                      0);
}
END_TEST

START_TEST (t_open_regular)
{
    dc_error_t err;
    size_t n;

    write_file (tpath ("r"), "data", 4);
    int fd = dc_file_open_regular (tpath ("r"), &err);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (fcntl (fd, F_GETFL) & O_NONBLOCK, 0);
    close (fd);
    /* a FIFO without a writer: at once, not a regular file */
    ck_assert_int_eq (mkfifo (tpath ("fifo"), 0600), 0);
    ck_assert_int_eq (dc_file_open_regular (tpath ("fifo"), &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "not a regular file"));
    ck_assert_ptr_null (dc_file_read (tpath ("fifo"), 100, &n, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "not a regular file"));
    ck_assert_int_eq (dc_file_open_regular ("/dev/zero", &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "not a regular file"));
    ck_assert_int_eq (dc_file_open_regular (tmpdir, &err), -1);
    ck_assert_int_eq (dc_file_open_regular (tpath ("none"), &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "No such file"));
    ck_assert_int_eq (dc_file_open_regular (NULL, &err), -1);
    ck_assert_int_eq (dc_file_open_regular ("", &err), -1);
    uint8_t *b = dc_file_read (tpath ("r"), 100, &n, &err);
    ck_assert_ptr_nonnull (b);
    ck_assert_uint_eq (n, 4);
    free (b);
    ck_assert_ptr_null (dc_file_read (tpath ("r"), 3, &n, &err));
}
END_TEST

START_TEST (t_open_log)
{
    dc_error_t err;
    int fd;

    fd = dc_file_open_log (tpath ("l"), false, &err);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, "a\n", 2), 2);
    close (fd);
    fd = dc_file_open_log (tpath ("l"), true, &err);
    ck_assert_int_eq (write (fd, "b\n", 2), 2);
    close (fd);
    ck_assert_str_eq (slurp (tpath ("l"), NULL), "a\nb\n");
    fd = dc_file_open_log (tpath ("l"), false, &err); /* truncated */
    close (fd);
    ck_assert_str_eq (slurp (tpath ("l"), NULL), "");
    /* a link to a file: that file; the link stays */
    ck_assert_int_eq (symlink ("l", tpath ("ln")), 0);
    fd = dc_file_open_log (tpath ("ln"), false, &err);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, "c\n", 2), 2);
    close (fd);
    ck_assert_str_eq (slurp (tpath ("l"), NULL), "c\n");
    /* devices in place */
    fd = dc_file_open_log ("/dev/null", false, &err);
    ck_assert_int_ge (fd, 0);
    close (fd);
    struct stat st;
    ck_assert_int_eq (stat ("/dev/null", &st), 0);
    ck_assert (S_ISCHR (st.st_mode));
    ck_assert_int_eq (count_files (), 2);
}
END_TEST

/* ---- dc_file_check ---- */

static const struct check_case {
    const char *what;
    struct {
        const char *what, *name;
        enum dc_file_role role;
    } f[4];
    const char *msg; /* NULL: accepted */
} checks[] = {
    {"distinct files",
     {{"--input", "x", DC_FILE_INPUT}, {"--output", "y", DC_FILE_OUTPUT}},
     NULL},
    {"output is the input",
     {{"--input", "x", DC_FILE_INPUT}, {"--output", "x", DC_FILE_OUTPUT}},
     "--output "},
    {"output is a hard link of the model",
     {{"--model", "m", DC_FILE_INPUT}, {"--output", "hard", DC_FILE_OUTPUT}},
     "are the same file"},
    {"output is a symlink to the input",
     {{"--input", "x", DC_FILE_INPUT}, {"--output", "sym", DC_FILE_OUTPUT}},
     "are the same file"},
    {"input through a symlink, output the file",
     {{"--input", "sym", DC_FILE_INPUT}, {"--log", "x", DC_FILE_OUTPUT}},
     "--log "},
    {"two outputs, one new name",
     {{"--output", "new", DC_FILE_OUTPUT}, {"--report", "new", DC_FILE_OUTPUT}},
     "--report "},
    {"two outputs, one new name through ./",
     {{"--output", "new", DC_FILE_OUTPUT},
      {"--report", "./new", DC_FILE_OUTPUT}},
     "are the same file"},
    {"the checkpoint is the model",
     {{"--model", "m", DC_FILE_INPUT},
      {"--checkpoint-dir", "hard", DC_FILE_INOUT}},
     "--checkpoint-dir "},
    {"a checkpoint not there yet",
     {{"--model", "m", DC_FILE_INPUT},
      {"--checkpoint-dir", "nodir/ck", DC_FILE_INOUT}},
     NULL},
    {"two inputs may be one file",
     {{"--input", "x", DC_FILE_INPUT}, {"--target", "x", DC_FILE_INPUT}},
     NULL},
    {"a device named twice",
     {{"--output", "/dev/null", DC_FILE_OUTPUT},
      {"--report", "/dev/null", DC_FILE_OUTPUT}},
     NULL},
    {"an input FIFO",
     {{"--input", "fifo", DC_FILE_INPUT}},
     "not a regular file"},
    {"an input device",
     {{"--input", "/dev/zero", DC_FILE_INPUT}},
     "not a regular file"},
    {"a missing input", {{"--input", "none", DC_FILE_INPUT}}, "No such file"},
    {"a missing output folder",
     {{"--output", "nodir/y", DC_FILE_OUTPUT}},
     "cannot create a file in"},
    {"a dangling output link",
     {{"--output", "dangling", DC_FILE_OUTPUT}},
     "does not exist"},
    {"an output folder", {{"--output", ".", DC_FILE_OUTPUT}}, "a folder"},
    {"unused options skipped",
     {{"--input", "x", DC_FILE_INPUT}, {"--report", NULL, DC_FILE_OUTPUT}},
     NULL},
};

START_TEST (t_check)
{
    const struct check_case *c = &checks[_i];
    struct dc_file_use v[4];
    char paths[4][512];
    size_t n = 0;
    dc_error_t err;

    write_file (tpath ("x"), "x", 1);
    write_file (tpath ("m"), "m", 1);
    ck_assert_int_eq (link (tpath ("m"), tpath ("hard")), 0);
    ck_assert_int_eq (symlink ("x", tpath ("sym")), 0);
    ck_assert_int_eq (symlink ("nothere", tpath ("dangling")), 0);
    ck_assert_int_eq (mkfifo (tpath ("fifo"), 0600), 0);
    for (; n < 4 && c->f[n].what; n++) {
        const char *p = c->f[n].name;
        if (p && p[0] != '/') {
            snprintf (paths[n], sizeof (paths[n]), "%s",
                      !strcmp (p, ".") ? tmpdir : tpath (p));
            if (!strncmp (p, "./", 2))
                snprintf (paths[n], sizeof (paths[n]), "%s/%s", tmpdir, p);
            p = paths[n];
        }
        v[n] = (struct dc_file_use){c->f[n].what, p, c->f[n].role};
    }
    int rc = dc_file_check (v, n, &err);
    if (!c->msg)
        ck_assert_msg (rc == 0, "%s: %s", c->what, err.text);
    else {
        ck_assert_msg (rc == -1, "%s: accepted", c->what);
        ck_assert_msg (strstr (err.text, c->msg), "%s: %s", c->what, err.text);
    }
    ck_assert_int_eq (count_files (), 6); /* nothing created */
}
END_TEST

START_TEST (t_check_edges)
{
    dc_error_t err;
    ck_assert_int_eq (dc_file_check (NULL, 0, &err), 0);
    ck_assert_int_eq (dc_file_check (NULL, 1, &err), -1);
    struct dc_file_use none = {"--x", NULL, DC_FILE_OUTPUT};
    ck_assert_int_eq (dc_file_check (&none, 1, &err), 0);
}
END_TEST

/* dc_file_hold_dir / dc_file_sweep_dirs: a folder held by a live process
 * stays, one whose holder is gone (owner file, lock free) goes with what
 * it holds, one without its owner file (being made) stays, as do names of
 * another prefix or length. */
START_TEST (t_sweep_dirs)
{
    char held[300], dead[300], young[300], other[300], longer[300], p[400];

    snprintf (held, sizeof (held), "%s/dcrun-map-AAAAAA", tmpdir);
    snprintf (dead, sizeof (dead), "%s/dcrun-map-BBBBBB", tmpdir);
    snprintf (young, sizeof (young), "%s/dcrun-map-CCCCCC", tmpdir);
    snprintf (other, sizeof (other), "%s/dcrun-mpi.DDDDDD", tmpdir);
    snprintf (longer, sizeof (longer), "%s/dcrun-map-EEEEEEE", tmpdir);
    ck_assert_int_eq (mkdir (held, 0700), 0);
    ck_assert_int_eq (mkdir (dead, 0700), 0);
    ck_assert_int_eq (mkdir (young, 0700), 0);
    ck_assert_int_eq (mkdir (other, 0700), 0);
    ck_assert_int_eq (mkdir (longer, 0700), 0);
    int fd = dc_file_hold_dir (held);
    ck_assert_int_ge (fd, 0);
    snprintf (p, sizeof (p), "%s/owner", held);
    ck_assert_int_eq (access (p, F_OK), 0);
    /* the dead one: its holder closed (as a killed process does) */
    int fd2 = dc_file_hold_dir (dead);
    ck_assert_int_ge (fd2, 0);
    snprintf (p, sizeof (p), "%s/out", dead);
    ck_assert_int_eq (mkdir (p, 0700), 0);
    snprintf (p, sizeof (p), "%s/out/part", dead);
    FILE *f = fopen (p, "w");
    ck_assert_ptr_nonnull (f);
    fclose (f);
    close (fd2);
    snprintf (p, sizeof (p), "%s/owner", other);
    f = fopen (p, "w");
    ck_assert_ptr_nonnull (f);
    fclose (f);
    dc_file_sweep_dirs (tmpdir, "dcrun-map-");
    ck_assert_int_eq (access (held, F_OK), 0);
    ck_assert_int_ne (access (dead, F_OK), 0);
    ck_assert_int_eq (access (young, F_OK), 0);
    ck_assert_int_eq (access (other, F_OK), 0);
    ck_assert_int_eq (access (longer, F_OK), 0);
    /* a second hold of a held folder is refused; NULLs are no-ops */
    ck_assert_int_eq (dc_file_hold_dir (held), -1);
    dc_file_sweep_dirs (NULL, "x");
    dc_file_sweep_dirs (tmpdir, NULL);
    close (fd);
    dc_file_sweep_dirs (tmpdir, "dcrun-map-");
    ck_assert_int_ne (access (held, F_OK), 0);
    rmdir (young);
    snprintf (p, sizeof (p), "%s/owner", other);
    unlink (p);
    rmdir (other);
    rmdir (longer);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("atomicfile");
    TCase *tc = tcase_create ("atomicfile");
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_test (tc, t_replace_regular);
    tcase_add_test (tc, t_symlink_target_replaced);
    tcase_add_loop_test (tc, t_refused, 0,
                         sizeof (refused) / sizeof (refused[0]));
    tcase_add_test (tc, t_device_in_place);
    tcase_add_test (tc, t_fifo_in_place);
    tcase_add_test (tc, t_fsync_durable_names);
    tcase_add_test (tc, t_shared);
    tcase_add_test (tc, t_open_regular);
    tcase_add_test (tc, t_open_log);
    tcase_add_loop_test (tc, t_check, 0, sizeof (checks) / sizeof (checks[0]));
    tcase_add_test (tc, t_check_edges);
    tcase_add_test (tc, t_sweep_dirs);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
