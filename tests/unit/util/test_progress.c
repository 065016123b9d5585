/* test_progress.c - the progress line's text and when it is due
 * (progress.h)
 *
 * A table of (rows done, total, seconds since the start, extra, final) and
 * the line, byte for byte: the ETA in seconds, minutes and hours, unknown
 * while nothing is done, a total of 0, the last line's "took"; a buffer too
 * small cuts the line; a line is due 0.2 s after the last on a terminal,
 * 1 s elsewhere.  Times are given, not measured.
 */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "lib/util/progress.h"

static const struct {
    size_t done, total;
    double el;
    const char *extra;
    bool final;
    const char *want;
} cases[] = {
    {0, 100, 1, NULL, false, "dcrun: infer: 0/100 rows (0%), 0 rows/s, ETA ?"},
    {50, 100, 10, NULL, false,
     "dcrun: infer: 50/100 rows (50%), 5 rows/s, ETA 10s"},
    {10, 100, 10, "2 ranks alive", false,
     "dcrun: infer: 10/100 rows (10%), 1 rows/s, ETA 1m30s, 2 ranks alive"},
    {1, 10000, 1, NULL, false,
     "dcrun: infer: 1/10000 rows (0%), 1 rows/s, ETA 2h46m"},
    {1, 100000000, 1, NULL, false,
     "dcrun: infer: 1/100000000 rows (0%), 1 rows/s, ETA ?"},
    {0, 0, 0, NULL, false, "dcrun: infer: 0/0 rows (100%), 0 rows/s, ETA ?"},
    {100, 100, 125, "loss 0.5", true,
     "dcrun: infer: 100/100 rows, 1 rows/s, took 2m05s, loss 0.5"},
    {100, 100, 0, NULL, true, "dcrun: infer: 100/100 rows, 0 rows/s, took 0s"},
};

START_TEST (test_line)
{
    struct dc_progress p;
    char buf[256];

    dc_progress_init (&p, false, "infer", cases[_i].total, 100.0);
    int n =
        dc_progress_line (&p, 100.0 + cases[_i].el, cases[_i].done,
                          cases[_i].extra, cases[_i].final, buf, sizeof (buf));
    ck_assert_str_eq (buf, cases[_i].want);
    ck_assert_int_eq (n, (int)strlen (cases[_i].want));
    ck_assert (p.last == 100.0 + cases[_i].el);
}
END_TEST

START_TEST (test_cut_and_due)
{
    struct dc_progress p;
    char small[12];

    dc_progress_init (&p, true, "rows", 10, 0);
    ck_assert (dc_progress_due (&p, 0.2));
    ck_assert_int_eq (
        dc_progress_line (&p, 1, 5, NULL, false, small, sizeof (small)), 11);
    ck_assert_str_eq (small, "dcrun: rows");
    ck_assert_int_eq (dc_progress_line (&p, 1, 5, NULL, false, NULL, 4), 0);
    /* a terminal: due 0.2 s after the last line */
    ck_assert (!dc_progress_due (&p, 1.1));
    ck_assert (dc_progress_due (&p, 1.25));
    /* elsewhere: a second */
    dc_progress_init (&p, false, "rows", 10, 0);
    p.last = 5;
    ck_assert (!dc_progress_due (&p, 5.5));
    ck_assert (dc_progress_due (&p, 6));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("progress");
    TCase *tc = tcase_create ("progress");

    tcase_add_loop_test (tc, test_line, 0,
                         (int)(sizeof (cases) / sizeof (cases[0])));
    tcase_add_test (tc, test_cut_and_due);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
