/* test_ready.c - what a rank tells the hub in READY (lib/run/ready.h):
 * the io probe against a table of token files, reasons cut to fit, and
 * READY over the in-process comm loop (lib/comm/comm_loop.h).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/comm/comm_loop.h"
#include "lib/run/ready.h"

#define DC_TMP_PREFIX "/tmp/test_ready"
#include "tmpdir.h"

static const struct {
    const char *name;
    const char *content; /* NULL: no file */
    const char *token;
    int rc;
    const char *why; /* in the reason */
} probes[] = {
    {"the same token", "abc123", "abc123", 0, ""},
    {"no token file", NULL, "abc123", -1,
     "(the output's folder is not shared)"},
    {"another token", "abc124", "abc123", -1, "another file than the head's"},
    {"an empty file", "", "abc123", -1, "another file than the head's"},
    {"a longer token", "abc123abc123", "abc123", -1, "another file"},
    {"hostile bytes", "\n\x01\xff", "abc123", -1, "another file"},
};

START_TEST (test_probe_table)
{
    struct dc_wire_io io = {.on = true};
    char why[256];

    snprintf (io.probe, sizeof (io.probe), "%s", tpath ("probe"));
    snprintf (io.token, sizeof (io.token), "%s", probes[_i].token);
    unlink (io.probe);
    if (probes[_i].content)
        write_file (io.probe, probes[_i].content, strlen (probes[_i].content));
    why[0] = '\0';
    ck_assert_msg (dc_ready_probe (&io, why, sizeof (why)) == probes[_i].rc,
                   "%s", probes[_i].name);
    ck_assert_msg (strstr (why, probes[_i].why), "%s: %s", probes[_i].name,
                   why);
    if (probes[_i].rc < 0)
        ck_assert_ptr_nonnull (strstr (why, io.probe));
    unlink (io.probe);
}
END_TEST

START_TEST (test_probe_not_a_file)
{
    struct dc_wire_io io = {.on = true};
    char why[256] = "";

    snprintf (io.probe, sizeof (io.probe), "%s", tmpdir); /* a folder */
    snprintf (io.token, sizeof (io.token), "abc");
    ck_assert_int_eq (dc_ready_probe (&io, why, sizeof (why)), -1);
    ck_assert_ptr_nonnull (strstr (why, "not shared"));
}
END_TEST

START_TEST (test_why_cut_to_fit)
{
    char why[8];
    char big[64];

    memset (big, 'x', sizeof (big) - 1);
    big[sizeof (big) - 1] = '\0';
    dc_ready_why (why, sizeof (why), "%s: %d", big, 1);
    ck_assert_str_eq (why, "xxxxxxx");
    dc_ready_why (why, sizeof (why), "%s", "");
    ck_assert_str_eq (why, "");
    dc_ready_why (why, 1, "%s", "abc");
    ck_assert_str_eq (why, "");
}
END_TEST

START_TEST (test_send_over_loop)
{
    dc_error_t e;
    struct dc_comm *hub = dc_comm_loop_create (1, &e);
    ck_assert_ptr_nonnull (hub);
    struct dc_comm *rank = dc_comm_loop_rank (hub, 0, &e);
    ck_assert_ptr_nonnull (rank);
    struct dc_wire_ready rd = {.inputs = 3, .outputs = -1, .parameters = -1};
    snprintf (rd.device, sizeof (rd.device), "cmd");
    snprintf (rd.io, sizeof (rd.io), "relay");
    snprintf (rd.io_why, sizeof (rd.io_why), "a \"quoted\"\n reason");

    ck_assert_int_eq (dc_ready_send (rank, &rd, &e), 0);
    struct dc_comm_msg m = {0};
    ck_assert_int_gt (dc_comm_recv (hub, &m, 5000, &e), 0);
    ck_assert_int_eq (m.type, DC_MSG_READY);
    ck_assert_int_eq (m.src, 0);
    struct dc_wire_ready got;
    ck_assert_int_eq (dc_wire_ready_decode (m.data, m.len, &got, &e), 0);
    ck_assert_int_eq (got.inputs, 3);
    ck_assert_int_eq (got.outputs, -1);
    ck_assert_str_eq (got.device, "cmd");
    ck_assert_str_eq (got.io, "relay");
    ck_assert_str_eq (got.io_why, rd.io_why);
    free (m.data);

    /* the hub gone: not sent (-2), with a reason */
    dc_comm_destroy (hub);
    e.text[0] = '\0';
    ck_assert_int_eq (dc_ready_send (rank, &rd, &e), -2);
    ck_assert_str_ne (e.text, "");
    dc_comm_destroy (rank);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("ready");
    TCase *tc = tcase_create ("ready");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_loop_test (tc, test_probe_table, 0,
                         (int)(sizeof (probes) / sizeof (probes[0])));
    tcase_add_test (tc, test_probe_not_a_file);
    tcase_add_test (tc, test_why_cut_to_fit);
    tcase_add_test (tc, test_send_over_loop);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
