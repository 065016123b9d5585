/* test_plan_text.c - a rank map as `dcrun hosts` prints it (plan_text.h)
 *
 * Hand-made plans, the table byte for byte: ranks with and without GPUs
 * and CPU sets, a long GPU list cut at its column's buffer (19 of 30 GPUs),
 * a long host name; the JSON's members in the schema's order ("size"
 * first, "cpus" only when known); an empty plan; NULL.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/hosts/plan_text.h"

static struct dc_host host_v[2] = {
    {.name = "n1", .slots = 2},
    {.name = "a-host-name-longer-than-its-column", .slots = 1},
};
static struct dc_hosts hosts = {.v = host_v, .count = 2};
static int g01[2] = {0, 1};
static int many[30];

START_TEST (test_text)
{
    struct dc_rank ranks[3] = {
        {.rank = 0,
         .host = 0,
         .local_rank = 0,
         .node_rank = 0,
         .gpus = g01,
         .ngpus = 2,
         .cpus = "0-3"},
        {.rank = 1, .host = 0, .local_rank = 1, .node_rank = 0},
        {.rank = 2,
         .host = 1,
         .local_rank = 0,
         .node_rank = 1,
         .gpus = many,
         .ngpus = 30,
         .cpus = "0"},
    };
    struct dc_plan p = {.size = 3, .ranks = ranks, .hosts = &hosts};
    char *s;

    for (int i = 0; i < 30; i++)
        many[i] = 10 + i;
    s = dc_plan_to_text (&p);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (
        s, "RANK   HOST                     LOCAL  NODE  GPUS       CPUS\n"
           "0      n1                       0      0     0,1        0-3\n"
           "1      n1                       1      0     -          -\n"
           "2      a-host-name-longer-than-its-column 0      1     "
           "10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28 0\n");
    free (s);
}
END_TEST

START_TEST (test_json)
{
    struct dc_rank ranks[2] = {
        {.rank = 0,
         .host = 0,
         .local_rank = 0,
         .node_rank = 0,
         .gpus = g01,
         .ngpus = 2,
         .cpus = "0-3"},
        {.rank = 1, .host = 1, .local_rank = 0, .node_rank = 1},
    };
    struct dc_plan p = {.size = 2, .ranks = ranks, .hosts = &hosts};
    char *s = dc_plan_to_json (&p);

    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (
        s, "{\"size\":2,\"ranks\":[{\"rank\":0,\"host\":\"n1\",\"local_rank\":"
           "0,\"node_rank\":0,\"gpus\":[0,1],\"cpus\":\"0-3\"},{\"rank\":1,"
           "\"host\":\"a-host-name-longer-than-its-column\",\"local_rank\":0,"
           "\"node_rank\":1,\"gpus\":[]}]}");
    free (s);
}
END_TEST

START_TEST (test_empty_null)
{
    struct dc_plan p = {.size = 0, .hosts = &hosts};
    char *s;

    s = dc_plan_to_text (&p);
    ck_assert_str_eq (
        s, "RANK   HOST                     LOCAL  NODE  GPUS       CPUS\n");
    free (s);
    s = dc_plan_to_json (&p);
    ck_assert_str_eq (s, "{\"size\":0,\"ranks\":[]}");
    free (s);
    errno = 0;
    ck_assert_ptr_null (dc_plan_to_text (NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (dc_plan_to_json (NULL));
    ck_assert_int_eq (errno, EINVAL);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("plan_text");
    TCase *tc = tcase_create ("text");

    tcase_add_test (tc, test_text);
    tcase_add_test (tc, test_json);
    tcase_add_test (tc, test_empty_null);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
