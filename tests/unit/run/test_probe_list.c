/* test_probe_list.c - the listings of `dcrun probe -H` and `dcrun check`
 * (lib/run/probe_list.c):
 * this host probed in-process, as text and as JSON; a host that cannot be
 * reached counted as not probed, with its reason in the listing. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hosts/sources.h"
#include "lib/run/probe_list.h"

static const struct {
    const char *hosts;
    bool json;
    int bad; /* hosts not probed */
} cases[] = {
    {"localhost", false, 0},
    {"localhost", true, 0},
    /* a name that does not resolve: the ssh launcher cannot connect */
    {"localhost,no-such-host.invalid", true, 1},
};

START_TEST (t_list)
{
    dc_error_t err;
    struct dc_hosts *hosts = dc_hosts_parse_list (cases[_i].hosts, &err);
    struct dc_launch_opts lo = {
        .ssh_port = 1, .connect_timeout = 5, .connect_timeout_set = true};
    int bad = -1;

    ck_assert_msg (hosts != NULL, "%s", err.text);
    char *s = dc_probe_list (hosts, &lo, true, cases[_i].json, &bad);
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (bad, cases[_i].bad);
    ck_assert_msg (strstr (s, "localhost") != NULL, "%s", s);
    if (cases[_i].json) {
        cJSON *j = cJSON_Parse (s);
        ck_assert_msg (j != NULL, "not JSON: %s", s);
        cJSON *h = cJSON_GetObjectItem (j, "hosts");
        ck_assert (cJSON_IsArray (h));
        ck_assert_int_eq (cJSON_GetArraySize (h), (int)hosts->count);
        int errors = 0;
        for (int i = 0; i < cJSON_GetArraySize (h); i++)
            errors += cJSON_GetObjectItem (cJSON_GetArrayItem (h, i),
                                           "error") != NULL;
        ck_assert_int_eq (errors, cases[_i].bad);
        cJSON_Delete (j);
    }
    free (s);
    dc_hosts_destroy (hosts);
}
END_TEST

/* check: each host judged; one that cannot be reached is not ready and
 * has its row; the listing is JSON with --json. */
START_TEST (t_check)
{
    dc_error_t err;
    struct dc_hosts *hosts =
        dc_hosts_parse_list ("localhost,no-such-host.invalid", &err);
    struct dc_launch_opts lo = {.connect_timeout = 5,
                                .connect_timeout_set = true};
    int bad = -1;

    ck_assert_msg (hosts != NULL, "%s", err.text);
    for (int json = 0; json < 2; json++) {
        char *s =
            dc_check_list (hosts, &lo, NULL, "0.0.0-not-this-one", json, &bad);
        ck_assert_ptr_nonnull (s);
        ck_assert_int_ge (bad, 1);
        ck_assert_int_le (bad, 2);
        ck_assert_msg (strstr (s, "no-such-host.invalid"), "%s", s);
        ck_assert_msg (strstr (s, "localhost"), "%s", s);
        if (json) {
            cJSON *j = cJSON_Parse (s);
            ck_assert_msg (j != NULL, "not JSON: %s", s);
            cJSON_Delete (j);
        }
        free (s);
    }
    dc_hosts_destroy (hosts);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("probe_list");
    TCase *tc = tcase_create ("core");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_list, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_check);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
