/* test_json.c - the two cJSON habits (json.h)
 *
 * dc_json_push: an item appended, a NULL item (its builder ran out of
 * memory) refused, an item that cannot go into a NULL array deleted (no
 * leak under LeakSanitizer); dc_json_take: the unformatted text, the
 * document deleted, NULL with ENOMEM for no document.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/util/json.h"

START_TEST (test_push)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *a = cJSON_AddArrayToObject (o, "hosts");

    ck_assert (dc_json_push (a, cJSON_CreateNumber (1)));
    ck_assert (dc_json_push (a, cJSON_CreateString ("x\"y")));
    ck_assert (!dc_json_push (a, NULL));
    ck_assert (!dc_json_push (NULL, cJSON_CreateNumber (2)));
    ck_assert_int_eq (cJSON_GetArraySize (a), 2);
    char *s = dc_json_take (o);
    ck_assert_str_eq (s, "{\"hosts\":[1,\"x\\\"y\"]}");
    free (s);
}
END_TEST

START_TEST (test_take_nothing)
{
    errno = 0;
    ck_assert_ptr_null (dc_json_take (NULL));
    ck_assert_int_eq (errno, ENOMEM);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("json");
    TCase *tc = tcase_create ("json");

    tcase_add_test (tc, test_push);
    tcase_add_test (tc, test_take_nothing);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
