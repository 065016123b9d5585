/* test_job.c - lib/run/job.c (placement, launcher pick and its checks, the
 * job's set-up and tear-down) and lib/run/bench.c's plain helpers, as
 * tables of cases with empty and hostile input.  No rank is started.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/sources.h"
#include "lib/run/bench.h"
#include "lib/run/job.h"

static struct dc_plan *plan_of (const char *list, struct dc_hosts **hp)
{
    struct dc_plan_opts po = {.np = 0};
    dc_error_t err;

    *hp = dc_hosts_parse_list (list, &err);
    ck_assert_msg (*hp != NULL, "%s: %s", list, err.text);
    struct dc_plan *p = dc_plan_create (*hp, &po, &err);
    ck_assert_msg (p != NULL, "%s: %s", list, err.text);
    return p;
}

static const struct {
    const char *hosts, *want;
    int status;
    const char *launcher; /* when OK */
    const char *text;     /* in err when not OK */
} prepare_cases[] = {
    {"localhost:2", NULL, DC_STATUS_OK, "local", NULL},
    {"localhost:2", "auto", DC_STATUS_OK, "local", NULL},
    {"localhost:2", "ssh", DC_STATUS_OK, "ssh", NULL},
    {"localhost,otherhost-x", NULL, DC_STATUS_OK, "ssh", NULL},
    {"otherhost-x:2", "local", DC_STATUS_USAGE, NULL,
     "'otherhost-x' is not this host"},
    {"localhost,otherhost-x", "local", DC_STATUS_USAGE, NULL,
     "\nhint: use -L ssh"},
    {"localhost", "nosuch", DC_STATUS_FAIL, NULL, "nosuch"},
    {"localhost", "", DC_STATUS_FAIL, NULL, NULL},
    {"localhost", "local\n-L ssh", DC_STATUS_FAIL, NULL, NULL},
};

START_TEST (t_prepare)
{
    struct dc_hosts *hosts;
    struct dc_plan *plan = plan_of (prepare_cases[_i].hosts, &hosts);
    const char *launcher = NULL;
    dc_error_t err = {.text = ""};

    unsetenv ("SLURM_JOB_ID");
    int st =
        dc_job_prepare (hosts, plan, prepare_cases[_i].want, &launcher, &err);
    ck_assert_msg (st == prepare_cases[_i].status, "case %d: status %d (%s)",
                   _i, st, err.text);
    if (st == DC_STATUS_OK)
        ck_assert_str_eq (launcher, prepare_cases[_i].launcher);
    else
        ck_assert_msg (err.text[0] != '\0', "case %d: no message", _i);
    if (prepare_cases[_i].text)
        ck_assert_msg (strstr (err.text, prepare_cases[_i].text), "case %d: %s",
                       _i, err.text);
    dc_plan_destroy (plan);
    dc_hosts_destroy (hosts);
}
END_TEST

/* dc_job_init owns hosts and plan, also when it fails; fini twice is
 * harmless and leaves no signal pipe behind. */
START_TEST (t_init_fini)
{
    struct dc_job_opts o = {.launcher = _i ? "local" : NULL};
    struct dc_hosts *hosts;
    struct dc_plan *plan =
        plan_of (_i ? "otherhost-x:2" : "localhost:3", &hosts);
    struct dc_job job;
    dc_error_t err;

    unsetenv ("SLURM_JOB_ID");
    int st = dc_job_init (&job, hosts, plan, &o, &err);
    ck_assert_int_eq (st, _i ? DC_STATUS_USAGE : DC_STATUS_OK);
    if (st == DC_STATUS_OK) {
        ck_assert_int_eq (job.plan->size, 3);
        for (int r = 0; r < 3; r++)
            ck_assert_str_eq (job.host[r], "localhost");
        ck_assert_int_gt (job.master_port, 0);
        ck_assert (!dc_job_via_driver (&job));
        ck_assert_int_eq (dc_job_check (&job), 0);
    }
    ck_assert_int_eq (job.sfd, -1);
    dc_job_fini (&job);
    dc_job_fini (&job);
    ck_assert_ptr_null (job.plan);
    ck_assert_int_eq (job.sfd, -1);
}
END_TEST

static const struct {
    struct dc_run_split s;
    bool wanted;
} split_cases[] = {
    {{.split = DC_SPLIT_DATA}, false},
    {{.split = DC_SPLIT_LAYERS}, true},
    {{.split = DC_SPLIT_HYBRID}, true},
    {{.split = DC_SPLIT_AUTO}, true},
    {{.split = DC_SPLIT_DATA, .max_mem = 1}, true},
    {{.split = DC_SPLIT_DATA, .stages = 2}, true},
    {{.split = DC_SPLIT_DATA, .micro_rows = 64}, false},
};

START_TEST (t_split_wanted)
{
    ck_assert_int_eq (dc_run_split_wanted (&split_cases[_i].s),
                      split_cases[_i].wanted);
}
END_TEST

START_TEST (t_bench_helpers)
{
    double one[] = {5}, two[] = {4, 2}, odd[] = {9, 1, 5}, same[] = {3, 3, 3};
    ck_assert_double_eq (dc_bench_median (one, 1), 5);
    ck_assert_double_eq (dc_bench_median (two, 2), 3);
    ck_assert_double_eq (dc_bench_median (odd, 3), 5);
    ck_assert_double_eq (dc_bench_median (same, 3), 3);

    static const struct {
        long long bytes, frame;
        long iters;
        long long wbytes, wframe;
        long witers;
    } c[] = {
        {0, 0, 0, 64LL << 20, 1LL << 20, 3},
        {100, 0, 0, 100, 100, 3}, /* a frame no larger than the bytes */
        {1, 1, 1, 1, 1, 1},
        {4096, 64, 9, 4096, 64, 9},
        {0, 128LL << 20, 0, 64LL << 20, 64LL << 20, 3},
    };
    for (size_t i = 0; i < sizeof (c) / sizeof (c[0]); i++) {
        long long b = c[i].bytes, f = c[i].frame;
        long it = c[i].iters;
        dc_bench_comm_defaults (&b, &f, &it);
        ck_assert_msg (b == c[i].wbytes && f == c[i].wframe &&
                           it == c[i].witers,
                       "case %zu: %lld %lld %ld", i, b, f, it);
    }
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("job");
    TCase *tc = tcase_create ("job");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_prepare, 0,
                         sizeof (prepare_cases) / sizeof (prepare_cases[0]));
    tcase_add_loop_test (tc, t_init_fini, 0, 2);
    tcase_add_loop_test (tc, t_split_wanted, 0,
                         sizeof (split_cases) / sizeof (split_cases[0]));
    tcase_add_test (tc, t_bench_helpers);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
