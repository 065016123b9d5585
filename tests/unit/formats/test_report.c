/* test_report.c - the run report's kernel and NaN/Inf members
 *
 * Tables of cases: the ranks' BLAS kernels (the same, different, missing,
 * NULL and empty names, a rank never added), rows holding NaN or Inf (in
 * memory and in a .npy file), NULL arguments.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TMP_PREFIX "/tmp/dcrun-test-report"
#include "check_main.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "tmpdir.h"

static const struct {
    const char *kernels[4]; /* per rank 0..3; NULL: not told */
    int differ;
    const char *text;
} kernel_cases[] = {
    {{"Haswell", "Haswell", "Haswell", "Haswell"}, 0, ""},
    {{"Haswell", "Zen", "Zen", NULL}, 1, "rank 0: Haswell, rank 1: Zen"},
    {{"Zen", NULL, "Sandybridge", "Zen"},
     1,
     "rank 0: Zen, rank 2: Sandybridge, rank 3: Zen"},
    {{NULL, NULL, NULL, NULL}, 0, ""},
    {{"", "Haswell", NULL, "Haswell"}, 0, ""},
    {{"Haswell", NULL, NULL, NULL}, 0, ""},
};

START_TEST (test_kernels)
{
    struct dc_report *r = dc_report_create ("infer");
    char buf[256];

    ck_assert_ptr_nonnull (r);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq (dc_report_add_rank (r, k, "h", "cpu", 10, 1, 1), 0);
        const char *name = kernel_cases[_i].kernels[k];
        int rc = dc_report_set_rank_kernel (r, k, name);
        ck_assert_int_eq (rc, name && name[0] ? 0 : -1);
    }
    ck_assert_int_eq (dc_report_kernels_differ (r, buf, sizeof (buf)),
                      kernel_cases[_i].differ);
    ck_assert_str_eq (buf, kernel_cases[_i].text);
    char *json = dc_report_print (r);
    ck_assert_ptr_nonnull (json);
    if (kernel_cases[_i].kernels[0] && kernel_cases[_i].kernels[0][0])
        ck_assert_ptr_nonnull (strstr (json, "\"blas_kernel\""));
    free (json);
    /* a short buffer: truncated, never overrun; still 1 when they differ */
    char small[8];
    ck_assert_int_eq (dc_report_kernels_differ (r, small, sizeof (small)),
                      kernel_cases[_i].differ);
    ck_assert (strlen (small) < sizeof (small));
    dc_report_destroy (r);
}
END_TEST

START_TEST (test_kernels_hostile)
{
    struct dc_report *r = dc_report_create ("infer");
    char buf[16] = "junk";

    ck_assert_int_eq (dc_report_set_rank_kernel (NULL, 0, "Zen"), -1);
    ck_assert_int_eq (dc_report_set_rank_kernel (r, 0, "Zen"),
                      -1); /* no rank 0 */
    ck_assert_int_eq (dc_report_kernels_differ (NULL, buf, sizeof (buf)), 0);
    ck_assert_str_eq (buf, "");
    ck_assert_int_eq (dc_report_kernels_differ (r, NULL, 0), 0);
    dc_report_set_nonfinite_rows (NULL, 3);
    dc_report_set_nonfinite_rows (r, 3);
    dc_report_set_nonfinite_rows (r, 4); /* replaces */
    char *json = dc_report_print (r);
    cJSON *j = cJSON_Parse (json);
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive (j, "nonfinite_rows");
    ck_assert (cJSON_IsNumber (nf) && nf->valuedouble == 4);
    cJSON_Delete (j);
    free (json);
    dc_report_destroy (r);
}
END_TEST

START_TEST (test_nonfinite)
{
    const float inf = INFINITY, nan = NAN;
    float y[5 * 3] = {0, 1, 2, nan, 0, 0, 0, 0, -inf, 3, 4, 5, nan, inf, nan};
    dc_error_t err;

    ck_assert_uint_eq (dc_nonfinite_rows (y, 5, 3), 3);
    ck_assert_uint_eq (dc_nonfinite_rows (y, 1, 3), 0);
    ck_assert_uint_eq (dc_nonfinite_rows (y, 0, 3), 0);
    ck_assert_uint_eq (dc_nonfinite_rows (NULL, 5, 3), 0);

    /* the same from a file, f4 and f2 */
    char path[512];
    size_t n = 99;
    int64_t shape[2] = {5, 3};
    for (int f2 = 0; f2 < 2; f2++) {
        snprintf (path, sizeof (path), "%s", tpath (f2 ? "y2.npy" : "y4.npy"));
        struct dc_npy_writer *w = dc_npy_writer_create (
            path, f2 ? DC_NPY_F2 : DC_NPY_F4, 2, shape, false, &err);
        ck_assert_msg (w != NULL, "%s", err.text);
        ck_assert_int_eq (dc_npy_writer_write_f32 (w, 0, 5, y, &err), 0);
        ck_assert_int_eq (dc_npy_writer_commit (w, &err), 0);
        dc_npy_writer_destroy (w);
        ck_assert_int_eq (dc_nonfinite_rows_file (path, &n, &err), 0);
        ck_assert_uint_eq (n, 3);
    }
    /* a missing file, NULL arguments: errors, no crash */
    snprintf (path, sizeof (path), "%s", tpath ("missing.npy"));
    ck_assert_int_eq (dc_nonfinite_rows_file (path, &n, &err), -1);
    ck_assert_int_eq (dc_nonfinite_rows_file (NULL, &n, &err), -1);
    ck_assert_int_eq (dc_nonfinite_rows_file (path, NULL, &err), -1);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("report");
    TCase *tc = tcase_create ("report");

    tcase_add_loop_test (tc, test_kernels, 0,
                         sizeof (kernel_cases) / sizeof (*kernel_cases));
    tcase_add_test (tc, test_kernels_hostile);
    tcase_add_test (tc, test_nonfinite);
    tcase_add_checked_fixture (tc, setup, teardown);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
