/* test_check.c - what `dcrun check` judges of each host (check.h)
 *
 * A table of hosts: the probe failed (its reason kept, its stage named), a
 * version that differs (with its hint), gpus= naming a GPU the host lacks,
 * more slots than GPUs without gpus=, no GPUs, a good host; the table and
 * the JSON of those verdicts byte for byte; hostile reasons (a second hint
 * line, quotes); NULL and empty input; where the probe runs.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/run/check.h"

static struct dc_topo_gpu gpus2[2] = {{.index = 0}, {.index = 1}};
static struct dc_topo t2 = {.ngpus = 2, .gpus = gpus2, .cores = 8};
static struct dc_topo t0 = {.cores = 1};
static int gpu1[1] = {1}, gpu7[1] = {7};

static const struct {
    struct dc_host host;
    enum dc_check_stage stage;
    const char *version;
    const struct dc_topo *topo;
    const char *probe_reason;
    bool ok;
    const char *reason;
} cases[] = {
    {{.name = "down", .slots = 1},
     DC_CHECK_CONNECT,
     "",
     NULL,
     "connect: refused",
     false,
     "connect: refused"},
    {{.name = "old", .slots = 1},
     DC_CHECK_OK,
     "0.0.9",
     &t2,
     "",
     false,
     "dcrun 0.0.9 there, 1.0 here\nhint: install the same version on every "
     "host"},
    {{.name = "g7", .slots = 1, .gpus = gpu7, .ngpus = 1},
     DC_CHECK_OK,
     "1.0",
     &t2,
     "",
     false,
     "gpus= names GPU 7 but the host has 2 GPUs"},
    {{.name = "g1", .slots = 4, .gpus = gpu1, .ngpus = 1},
     DC_CHECK_OK,
     "1.0",
     &t2,
     "",
     true,
     "dcrun 1.0, 2 GPUs, 8 cores"},
    {{.name = "s3", .slots = 3},
     DC_CHECK_OK,
     "1.0",
     &t2,
     "",
     false,
     "3 slots but 2 GPUs: ranks would share GPUs"},
    {{.name = "cpu", .slots = 16},
     DC_CHECK_OK,
     "1.0",
     &t0,
     "",
     true,
     "dcrun 1.0, 0 GPUs, 1 cores"},
    {{.name = "g-on-cpu", .slots = 1, .gpus = gpu1, .ngpus = 1},
     DC_CHECK_OK,
     "1.0",
     &t0,
     "",
     false,
     "gpus= names GPU 1 but the host has 0 GPUs"},
    {{.name = "slow", .slots = 1},
     DC_CHECK_TIMEOUT,
     "1.0",
     NULL,
     "no answer in 23 s",
     false,
     "no answer in 23 s"},
};

START_TEST (test_judge)
{
    struct dc_check_host c = {.host = &cases[_i].host,
                              .stage = cases[_i].stage,
                              .version = cases[_i].version,
                              .topo = cases[_i].topo};

    snprintf (c.reason, sizeof (c.reason), "%s", cases[_i].probe_reason);
    ck_assert_int_eq (dc_check_judge (&c, 1, "1.0"), cases[_i].ok ? 0 : 1);
    ck_assert_int_eq (c.ok, cases[_i].ok);
    ck_assert_str_eq (c.reason, cases[_i].reason);
}
END_TEST

/* down, old, g1, slow: judged */
static void judged (struct dc_check_host *c)
{
    const int pick[4] = {0, 1, 3, 7};
    for (int i = 0; i < 4; i++) {
        int k = pick[i];
        c[i] = (struct dc_check_host){.host = &cases[k].host,
                                      .stage = cases[k].stage,
                                      .version = cases[k].version,
                                      .topo = cases[k].topo,
                                      .local = i == 2};
        snprintf (c[i].reason, sizeof (c[i].reason), "%s",
                  cases[k].probe_reason);
    }
    ck_assert_int_eq (dc_check_judge (c, 4, "1.0"), 3);
}

START_TEST (test_text)
{
    struct dc_check_host c[4];
    char *s;

    judged (c);
    s = dc_check_text (c, 4);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, "HOST                     STATUS DETAIL\n"
                         "down                     BAD    connect: refused\n"
                         "old                      BAD    dcrun 0.0.9 there, "
                         "1.0 here\n"
                         "                                hint: install the "
                         "same version on every host\n"
                         "g1                       OK     dcrun 1.0, 2 GPUs, "
                         "8 cores\n"
                         "slow                     BAD    no answer in 23 s\n");
    free (s);
}
END_TEST

START_TEST (test_json)
{
    struct dc_check_host c[4];
    char *s;

    judged (c);
    s = dc_check_json (c, 4);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (
        s,
        "{\"ok\":false,\"hosts\":["
        "{\"host\":\"down\",\"ok\":false,\"stage\":\"connect\",\"reason\":"
        "\"connect: refused\",\"version\":null,\"slots\":1,\"gpus\":null,"
        "\"local\":false},"
        "{\"host\":\"old\",\"ok\":false,\"stage\":\"mismatch\",\"reason\":"
        "\"dcrun 0.0.9 there, 1.0 here\",\"version\":\"0.0.9\",\"slots\":1,"
        "\"gpus\":2,\"local\":false},"
        "{\"host\":\"g1\",\"ok\":true,\"stage\":\"ok\",\"reason\":\"dcrun "
        "1.0, 2 GPUs, 8 cores\",\"version\":\"1.0\",\"slots\":4,\"gpus\":2,"
        "\"local\":true},"
        "{\"host\":\"slow\",\"ok\":false,\"stage\":\"timeout\",\"reason\":"
        "\"no answer in 23 s\",\"version\":\"1.0\",\"slots\":1,\"gpus\":null,"
        "\"local\":false}]}");
    free (s);
}
END_TEST

/* a reason with two hint lines and quotes: the table keeps the rest after
 * the first newline as it is, the JSON the first line, escaped */
START_TEST (test_hostile)
{
    struct dc_host h = {.name = "q\"h", .slots = 1};
    struct dc_check_host c = {
        .host = &h, .stage = DC_CHECK_FAILED, .version = ""};
    char *s;

    snprintf (c.reason, sizeof (c.reason), "said \"x\"\nline 2\nline 3");
    ck_assert_int_eq (dc_check_judge (&c, 1, "1.0"), 1);
    s = dc_check_text (&c, 1);
    ck_assert_str_eq (s, "HOST                     STATUS DETAIL\n"
                         "q\"h                      BAD    said \"x\"\n"
                         "                                line 2\nline 3\n");
    free (s);
    s = dc_check_json (&c, 1);
    ck_assert_str_eq (s, "{\"ok\":false,\"hosts\":[{\"host\":\"q\\\"h\",\"ok\":"
                         "false,\"stage\":\"failed\",\"reason\":\"said "
                         "\\\"x\\\"\",\"version\":null,\"slots\":1,\"gpus\":"
                         "null,\"local\":false}]}");
    free (s);
    ck_assert_str_eq (dc_check_stage_name ((enum dc_check_stage)99), "?");
    ck_assert_str_eq (dc_check_stage_name (DC_CHECK_NO_DCRUN), "dcrun");
}
END_TEST

START_TEST (test_null_empty)
{
    struct dc_check_host c = {.stage = DC_CHECK_OK, .version = "1.0"};
    char *s;

    errno = 0;
    ck_assert_int_eq (dc_check_judge (NULL, 1, "1.0"), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (dc_check_judge (&c, 1, NULL), -1);
    /* probed, but no host or topology: refused, not a crash */
    ck_assert_int_eq (dc_check_judge (&c, 1, "1.0"), -1);
    ck_assert_int_eq (dc_check_judge (NULL, 0, "1.0"), 0);
    ck_assert_ptr_null (dc_check_text (NULL, 1));
    ck_assert_ptr_null (dc_check_json (NULL, 1));
    s = dc_check_text (NULL, 0);
    ck_assert_str_eq (s, "HOST                     STATUS DETAIL\n");
    free (s);
    s = dc_check_json (NULL, 0);
    ck_assert_str_eq (s, "{\"ok\":true,\"hosts\":[]}");
    free (s);
}
END_TEST

START_TEST (test_probe_here)
{
    struct dc_host v[2] = {{.name = "localhost"}, {.name = "127.0.0.2"}};
    struct dc_hosts local = {.v = v, .count = 2};
    struct dc_host r[2] = {{.name = "localhost"},
                           {.name = "no-such-host.invalid"}};
    struct dc_hosts remote = {.v = r, .count = 2};

    ck_assert (dc_check_probe_here (NULL, &local));
    ck_assert (dc_check_probe_here ("auto", &local));
    ck_assert (dc_check_probe_here ("local", &remote));
    ck_assert (!dc_check_probe_here (NULL, &remote));
    ck_assert (!dc_check_probe_here ("ssh", &local));
    ck_assert (dc_check_probe_here (NULL, NULL));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("check");
    TCase *tc = tcase_create ("check");

    tcase_add_loop_test (tc, test_judge, 0,
                         (int)(sizeof (cases) / sizeof (cases[0])));
    tcase_add_test (tc, test_text);
    tcase_add_test (tc, test_json);
    tcase_add_test (tc, test_hostile);
    tcase_add_test (tc, test_null_empty);
    tcase_add_test (tc, test_probe_here);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
