/* test_bench.c - lib/run/bench.c's launch benchmark and the renderings of
 * the results (JSON and text), as tables of cases with empty and hostile
 * command lines.  The launch runs /bin/true and /bin/false only.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lib/run/bench.h"

/* bench's own options in these cases: --m and --iters take a value */
static bool own (const char *w, bool *takes_arg, void *arg)
{
    static const char *const with_arg[] = {"--m", "--iters", NULL};
    (void)arg;
    for (int i = 0; with_arg[i]; i++) {
        size_t n = strlen (with_arg[i]);
        if (!strncmp (w, with_arg[i], n) && (w[n] == '\0' || w[n] == '=')) {
            *takes_arg = w[n] == '\0';
            return true;
        }
    }
    return false;
}

static const struct {
    const char *words[8]; /* bench's argv, NULL-terminated */
    int kind;             /* index of the kind word, -1: none */
    const char *want;     /* the exec command line, words joined */
} argv_cases[] = {
    {{"bench", "launch", "-H", "a:2", "--iters", "3", NULL},
     1,
     "SELF exec -H a:2 -- true"},
    {{"bench", "--iters=3", "launch", "--json", "--dry-run", "-L", "ssh", NULL},
     2,
     "SELF exec -L ssh -- true"},
    /* nothing of bench's after "--" */
    {{"bench", "launch", "--", "-H", "x", NULL}, 1, "SELF exec -- true"},
    {{"bench", NULL}, -1, "SELF exec -- true"},
    {{NULL}, -1, "SELF exec -- true"},
    /* only the kind word itself is left out, not its twin */
    {{"bench", "launch", "-H", "launch", NULL},
     1,
     "SELF exec -H launch -- true"},
    /* an own option at the end without its value; a longer name is not own */
    {{"bench", "launch", "--itersx", "--iters", NULL},
     1,
     "SELF exec --itersx -- true"},
    {{"bench", "launch", "--m=5", "-n", "4", NULL},
     1,
     "SELF exec -n 4 -- true"},
};

START_TEST (t_exec_argv)
{
    char *words[8];
    int argc = 0;
    char joined[512] = "";

    while (argv_cases[_i].words[argc]) {
        /* copies: only the kind's own pointer is to be left out */
        words[argc] = strdup (argv_cases[_i].words[argc]);
        argc++;
    }
    words[argc] = NULL;
    const char *kind =
        argv_cases[_i].kind >= 0 ? words[argv_cases[_i].kind] : NULL;
    char **av = dc_bench_exec_argv ("SELF", argc, words, kind, own, NULL);
    ck_assert_ptr_nonnull (av);
    for (int i = 0; av[i]; i++) {
        if (i)
            strcat (joined, " ");
        strcat (joined, av[i]);
    }
    ck_assert_str_eq (joined, argv_cases[_i].want);
    free (av);
    for (int i = 0; i < argc; i++)
        free (words[i]);
}
END_TEST

START_TEST (t_launch_run)
{
    static const struct {
        const char *prog;
        long iters;
        int want_st;
        const char *want_err; /* substring of err.text on failure */
        int want_exit;        /* exit status of the failed run */
    } c[] = {
        {"/bin/true", 0, DC_STATUS_OK, NULL, 0}, /* 0: the default, 5 */
        {"/bin/true", 2, DC_STATUS_OK, NULL, 0},
        {"/bin/false", 3, DC_STATUS_FAIL,
         "bench: `dcrun exec -- true` failed (exit 1)", 1},
        {"/nonexistent/dcrun", 1, DC_STATUS_FAIL, "failed (exit 127)", 127},
    };
    for (size_t i = 0; i < sizeof (c) / sizeof (c[0]); i++) {
        char *argv[] = {(char *)c[i].prog, NULL};
        struct dc_bench_launch_res r = {.iters = c[i].iters};
        dc_error_t err = {.text = ""};
        int ws = -1;
        int st = dc_bench_launch_run (argv, &r, &ws, &err);
        ck_assert_msg (st == c[i].want_st, "case %zu: status %d: %s", i, st,
                       err.text);
        if (st == DC_STATUS_OK) {
            ck_assert_int_eq (r.iters, c[i].iters ? c[i].iters : 5);
            ck_assert (0 < r.min && r.min <= r.med && r.med <= r.max);
            continue;
        }
        ck_assert_msg (strstr (err.text, c[i].want_err), "case %zu: %s", i,
                       err.text);
        ck_assert (WIFEXITED (ws) && WEXITSTATUS (ws) == c[i].want_exit);
    }
}
END_TEST

START_TEST (t_results)
{
    struct dc_bench_launch_res l = {.launcher = "ssh",
                                    .hosts = 1,
                                    .ranks = 1,
                                    .iters = 2,
                                    .med = 0.5,
                                    .min = 0.25,
                                    .max = 1};
    char *s = dc_bench_launch_json (&l);
    cJSON *j = cJSON_Parse (s);
    ck_assert_ptr_nonnull (j);
    ck_assert_str_eq (cJSON_GetObjectItem (j, "launcher")->valuestring, "ssh");
    ck_assert_double_eq (cJSON_GetObjectItem (j, "min_seconds")->valuedouble,
                         0.25);
    ck_assert_int_eq (cJSON_GetObjectItem (j, "ranks")->valueint, 1);
    cJSON_Delete (j);
    free (s);
    s = dc_bench_launch_text (&l);
    ck_assert_ptr_nonnull (strstr (s, "1 rank on 1 host (ssh launcher)"));
    ck_assert (s[strlen (s) - 1] != '\n'); /* no final newline */
    free (s);

    /* rates: the median of the rounds, GB/s each way over every rank */
    double secs[] = {2, 1, 3};
    struct dc_bench_comm_res c = {.launcher = "local",
                                  .ranks = 2,
                                  .bytes = 1000000000LL,
                                  .frame = 1 << 20,
                                  .iters = 3,
                                  .secs = secs};
    dc_bench_comm_rates (&c, secs);
    ck_assert_double_eq (c.med, 2);
    ck_assert_double_eq (c.gbps, 1);
    s = dc_bench_comm_text (&c);
    ck_assert_ptr_nonnull (strstr (s, "2 ranks (local launcher)"));
    ck_assert_ptr_nonnull (strstr (s, "frames of 1.0 MiB"));
    ck_assert_ptr_nonnull (strstr (s, "total            2.000 GB/s"));
    ck_assert (s[strlen (s) - 1] != '\n');
    free (s);

    /* gemm: a known and an unknown peak */
    struct dc_bench_gemm_run g = {.dtype = DC_DTYPE_F32,
                                  .m = 2,
                                  .n = 3,
                                  .k = 4,
                                  .iters = 1,
                                  .backend = "cpu",
                                  .describe = "cpu: test",
                                  .gemm_tflops = 1,
                                  .peak = 4};
    s = dc_bench_gemm_text (&g);
    ck_assert_ptr_nonnull (strstr (s, "m=2 n=3 k=4, f32, 1 iterations"));
    ck_assert_ptr_nonnull (strstr (s, "gemm at 25%"));
    free (s);
    g.peak = 0;
    s = dc_bench_gemm_text (&g);
    ck_assert_ptr_nonnull (strstr (s, "peak        unknown for this device"));
    ck_assert (s[strlen (s) - 1] != '\n');
    free (s);
    s = dc_bench_gemm_json (&g);
    j = cJSON_Parse (s);
    ck_assert (cJSON_IsNull (cJSON_GetObjectItem (j, "peak_tflops")));
    cJSON_Delete (j);
    free (s);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("bench");
    TCase *tc = tcase_create ("bench");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_exec_argv, 0,
                         sizeof (argv_cases) / sizeof (argv_cases[0]));
    tcase_add_test (tc, t_launch_run);
    tcase_add_test (tc, t_results);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
