/* test_report_text.c - the table of `dcrun report` (report_text.h)
 *
 * Views built by hand (the analysis is test_report_read's): an exec report,
 * an infer report with the I/O way and the read/compute/write split, a
 * train report with more ranks than listed and lost ranks, hostile texts (a
 * device and a status longer than their column, cut before a UTF-8
 * character, never inside it), and NULL input.  Each case is the whole
 * text, byte for byte.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/formats/report_text.h"

static void expect_text (const struct dc_report_view *v, const char *path,
                         const char *want)
{
    char *s = dc_report_view_text (v, path);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, want);
    free (s);
}

START_TEST (test_exec)
{
    struct dc_report_rank ranks[2] = {
        {.rank = 0,
         .host = "n1",
         .status = "exit 0",
         .start = 0.1,
         .end = 1.25,
         .busy = 1.15,
         .idle = 0.1},
        {.rank = 1,
         .host = "n2",
         .status = "signal 9",
         .start = 0.2,
         .end = 0.5,
         .busy = 0.3,
         .idle = 0.95,
         .lost = true,
         .lost_reason = "killed"},
    };
    struct dc_report_view v = {.command = "exec",
                               .exec = true,
                               .wall = 1.25,
                               .nranks = 2,
                               .ranks = ranks,
                               .job_ranks = 2,
                               .nlost = 1,
                               .bottleneck = "rank 1 failed"};
    expect_text (&v, "e.json",
                 "report: e.json (exec, 2 ranks, 1.250 s)\n"
                 "RANK  HOST                 STATUS                     "
                 "START_S     END_S    BUSY_S    IDLE_S\n"
                 "0     n1                   exit 0                       "
                 "0.100     1.250     1.150     0.100\n"
                 "1     n2                   signal 9                     "
                 "0.200     0.500     0.300     0.950\n"
                 "lost: rank 1 on n2 (killed)\n"
                 "bottleneck: rank 1 failed\n");
}
END_TEST

START_TEST (test_infer_io)
{
    struct dc_report_rank ranks[2] = {
        {.rank = 0,
         .host = "a",
         .device = "cpu",
         .rows = 600,
         .busy = 2,
         .idle = 0.5,
         .tflops = 0.25,
         .share = 0.6,
         .io = "direct",
         .has_split = true,
         .read = 0.5,
         .compute = 1.25,
         .write = 0.25},
        {.rank = 1,
         .host = "b",
         .device = "cpu",
         .rows = 400,
         .busy = 1,
         .idle = 1.5,
         .tflops = 0.125,
         .share = 0.4,
         .io = "relay",
         .io_why = "input not seen"},
    };
    struct dc_report_view v = {.command = "infer",
                               .layout = "data",
                               .wall = 2.5,
                               .total_rows = 1000,
                               .has_phases = true,
                               .nranks = 2,
                               .ranks = ranks,
                               .nspans = 7,
                               .job_ranks = 2,
                               .io = "mixed",
                               .io_mode = "auto",
                               .relayed_bytes = 3 << 20,
                               .hub_cpu = 0.25,
                               .has_split = true,
                               .busy_sum = 3,
                               .read_sum = 0.75,
                               .compute_sum = 1.5,
                               .write_sum = 0.75,
                               .bottleneck = "compute-bound"};
    v.phase[DC_PHASE_LAUNCH] = 0.5;
    v.phase[DC_PHASE_COMPUTE] = 2;
    expect_text (
        &v, "r.json",
        "report: r.json (infer, layout data, 2 ranks, 1000 rows, 2.500 s)\n"
        "RANK  HOST                 DEVICE                     ROWS    "
        "BUSY_S    IDLE_S   TFLOP/S  SHARE  IO       READ_S COMPUTE_S  "
        "WRITE_S\n"
        "0     a                    cpu                         600     "
        "2.000     0.500    0.2500  60.0%  direct    0.500     1.250    "
        "0.250\n"
        "1     b                    cpu                         400     "
        "1.000     1.500    0.1250  40.0%  relay         -         -        "
        "-\n"
        "phases: launch 0.500 s (20%) compute 2.000 s (80%)\n"
        "ranks' busy time: 3.000 s: read 0.750 s (25%), compute 1.500 s "
        "(50%), write 0.750 s (25%)\n"
        "io: mixed (--io auto), 3.0 MiB of rows through the head (3145728 "
        "bytes), the head's CPU 0.250 s (10% of the wall time)\n"
        "io: rank 1 on b: relay (input not seen)\n"
        "chunks: 7 in the timeline\n"
        "lost: none\n"
        "bottleneck: compute-bound\n");
}
END_TEST

START_TEST (test_train_lost)
{
    struct dc_report_rank ranks[1] = {
        {.rank = 0,
         .host = "h",
         .device = "cpu",
         .rows = 10,
         .busy = 1,
         .share = 1,
         .lost = true,
         .lost_reason = "silent 30 s"},
    };
    struct dc_report_view v = {.command = "train",
                               .wall = 1,
                               .total_rows = 10,
                               .nranks = 1,
                               .ranks = ranks,
                               .job_ranks = 3,
                               .nlost = 2,
                               .lost_text = "ranks 1, 2",
                               .relayed_bytes = -1,
                               .hub_cpu = -1,
                               .bottleneck = "a rank was lost"};
    expect_text (&v, "t.json",
                 "report: t.json (train, 3 ranks (1 listed), 10 rows, 1.000 "
                 "s)\n"
                 "RANK  HOST                 DEVICE                     ROWS "
                 "   BUSY_S    IDLE_S   TFLOP/S  SHARE\n"
                 "0     h                    cpu                          10 "
                 "    1.000     0.000    0.0000 100.0%  LOST\n"
                 "lost: ranks 1, 2\n"
                 "lost: rank 0 on h (silent 30 s)\n"
                 "bottleneck: a rank was lost\n");
}
END_TEST

/* a device of 30 bytes: 18 ASCII then "é" (2 bytes) straddling the cut at
 * 17 bytes + "...": cut before it */
START_TEST (test_cut_utf8)
{
    struct dc_report_rank ranks[1] = {
        {.rank = 0,
         .host = "h",
         .device = "0123456789abcdef\xc3\xa9zzzzzzzzzz"},
    };
    struct dc_report_view v = {.command = "infer",
                               .nranks = 1,
                               .ranks = ranks,
                               .job_ranks = 1,
                               .nlost = 0,
                               .bottleneck = "x"};
    char *s = dc_report_view_text (&v, "c.json");
    ck_assert_ptr_nonnull (s);
    ck_assert_ptr_nonnull (strstr (s, "\n0     h                    "
                                      "0123456789abcdef... "));
    free (s);
    /* a status cut at 24 bytes: 21 and "..." */
    struct dc_report_rank er[1] = {
        {.rank = 0,
         .host = "h",
         .status = "failed to start: no such file or directory"},
    };
    struct dc_report_view e = {.command = "exec",
                               .exec = true,
                               .nranks = 1,
                               .ranks = er,
                               .job_ranks = 1,
                               .bottleneck = "x"};
    s = dc_report_view_text (&e, "e.json");
    ck_assert_ptr_nonnull (s);
    ck_assert_ptr_nonnull (strstr (s, " failed to start: no s... "));
    free (s);
}
END_TEST

START_TEST (test_null)
{
    struct dc_report_view v = {.command = "infer"};

    errno = 0;
    ck_assert_ptr_null (dc_report_view_text (NULL, "r.json"));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (dc_report_view_text (&v, NULL));
    ck_assert_int_eq (errno, EINVAL);
    /* no ranks, empty texts: still a whole table */
    char *s = dc_report_view_text (&v, "");
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, "report:  (infer, 0 ranks, 0 rows, 0.000 s)\n"
                         "RANK  HOST                 DEVICE                "
                         "     ROWS    BUSY_S    IDLE_S   TFLOP/S  SHARE\n"
                         "lost: none\n"
                         "bottleneck: \n");
    free (s);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("report_text");
    TCase *tc = tcase_create ("text");

    tcase_add_test (tc, test_exec);
    tcase_add_test (tc, test_infer_io);
    tcase_add_test (tc, test_train_lost);
    tcase_add_test (tc, test_cut_utf8);
    tcase_add_test (tc, test_null);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
