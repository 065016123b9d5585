/* test_hostlist.c - hostlist expansion and compression */
#include <string.h>

#include "check_main.h"
#include "lib/hosts/hostlist.h"

/* Expansion: expression, expected count, first, last, compressed form. */
static const struct {
    const char *expr;
    size_t count;
    const char *first;
    const char *last;
    const char *encoded;
} good[] = {
    {"node01", 1, "node01", "node01", "node01"},
    {"node[01-04,07]", 5, "node01", "node07", "node[01-04,07]"},
    {"rack[1-2]-gpu[01-16]", 32, "rack1-gpu01", "rack2-gpu16",
     "rack[1-2]-gpu[01-16]"},
    {"a,b,c[1-3]", 5, "a", "c3", "a,b,c[1-3]"},
    {"n[8-10]", 3, "n8", "n10", "n[8-10]"},
    {"n[08-10]", 3, "n08", "n10", "n[08-10]"},
    {"n[7],m", 2, "n7", "m", "n7,m"},
    {"n[1-3,5-6]x", 5, "n1x", "n6x", "n[1-3,5-6]x"},
    {"10.0.0.[1-3]", 3, "10.0.0.1", "10.0.0.3", "10.0.0.[1-3]"},
    {"login", 1, "login", "login", "login"},
    {"node[0-999999]", 1000000, "node0", "node999999", "node[0-999999]"},
    {"b[3-4],a[1-2]", 4, "b3", "a2", "b[3-4],a[1-2]"},
    {"x[1-2]y[1-2]z", 4, "x1y1z", "x2y2z", "x[1-2]y[1-2]z"},
    {"node9,node10", 2, "node9", "node10", "node[9-10]"},
    {"node09,node10", 2, "node09", "node10", "node[09-10]"},
    {"node1,node01", 2, "node1", "node01", "node[1,01]"},
};

/* Hostile input: expression and a word the error must contain. */
static const struct {
    const char *expr;
    const char *msg;
} bad[] = {
    {"", "empty"},
    {"node[1-4", "unbalanced"},
    {"node1-4]", "unbalanced"},
    {"node[[1-2]]", "expected a number"},
    {"node[4-1]", "reversed"},
    {"node[]", "expected a number"},
    {"node[1,]", "expected a number"},
    {"node[-3]", "expected a number"},
    {"node[1-]", "end of a range"},
    {"a,,b", "empty host name"},
    {"a,", "empty host name"},
    {",a", "empty host name"},
    {"n[0-999999],m[0-1]", "more than"},
    {"n[0-1000000]", "more than"},
    {"r[1-1000]-g[1-1001]", "more than"},
    {"node[1234567890123456789]", "too long"},
    {"n\xc3\xa9ud", "invalid byte"},
    {"a b", "invalid character"},
    {"a\tb", "invalid byte"},
    {"node[1x]", "expected ','"},
};

START_TEST (t_good)
{
    dc_error_t err = {{0}};
    struct dc_hostlist *hl = dc_hostlist_decode (good[_i].expr, &err);

    ck_assert_msg (hl != NULL, "%s: %s", good[_i].expr, err.text);
    ck_assert_uint_eq (dc_hostlist_count (hl), good[_i].count);
    ck_assert_str_eq (dc_hostlist_nth (hl, 0), good[_i].first);
    ck_assert_str_eq (dc_hostlist_nth (hl, good[_i].count - 1), good[_i].last);
    ck_assert_ptr_null (dc_hostlist_nth (hl, good[_i].count));
    char *s = dc_hostlist_encode (hl);
    ck_assert_ptr_nonnull (s);
    ck_assert_str_eq (s, good[_i].encoded);
    /* the encoded form expands back to the same hosts */
    struct dc_hostlist *back = dc_hostlist_decode (s, &err);
    ck_assert_msg (back != NULL, "%s: %s", s, err.text);
    ck_assert_uint_eq (dc_hostlist_count (back), dc_hostlist_count (hl));
    for (size_t i = 0; i < dc_hostlist_count (hl); i += 997)
        ck_assert_str_eq (dc_hostlist_nth (back, i), dc_hostlist_nth (hl, i));
    free (s);
    dc_hostlist_destroy (back);
    dc_hostlist_destroy (hl);
}
END_TEST

START_TEST (t_bad)
{
    dc_error_t err = {{0}};
    struct dc_hostlist *hl = dc_hostlist_decode (bad[_i].expr, &err);

    ck_assert_msg (hl == NULL, "'%s' should fail", bad[_i].expr);
    ck_assert_msg (strstr (err.text, bad[_i].msg) != NULL,
                   "'%s': error '%s' lacks '%s'", bad[_i].expr, err.text,
                   bad[_i].msg);
}
END_TEST

START_TEST (t_null)
{
    dc_error_t err = {{0}};
    struct dc_hostlist *hl = dc_hostlist_create ();

    ck_assert_ptr_null (dc_hostlist_decode (NULL, &err));
    ck_assert_int_eq (dc_hostlist_append (NULL, "a", &err), -1);
    ck_assert_int_eq (dc_hostlist_append (hl, NULL, NULL), -1);
    ck_assert_uint_eq (dc_hostlist_count (NULL), 0);
    ck_assert_ptr_null (dc_hostlist_nth (NULL, 0));
    ck_assert_ptr_null (dc_hostlist_encode (NULL));
    char *s = dc_hostlist_encode (hl);
    ck_assert_str_eq (s, "");
    free (s);
    dc_hostlist_destroy (NULL);
    dc_hostlist_destroy (hl);
}
END_TEST

START_TEST (t_append_rollback)
{
    dc_error_t err;
    struct dc_hostlist *hl = dc_hostlist_create ();

    ck_assert_int_eq (dc_hostlist_append (hl, "a[1-3]", &err), 0);
    /* a failing expression appends nothing, even its good first part */
    ck_assert_int_eq (dc_hostlist_append (hl, "b[1-2],c[3-1]", &err), -1);
    ck_assert_uint_eq (dc_hostlist_count (hl), 3);
    ck_assert_int_eq (dc_hostlist_push (hl, "z", &err), 0);
    char *s = dc_hostlist_encode (hl);
    ck_assert_str_eq (s, "a[1-3],z");
    free (s);
    dc_hostlist_destroy (hl);
}
END_TEST

START_TEST (t_name_too_long)
{
    char name[300];
    dc_error_t err;
    struct dc_hostlist *hl = dc_hostlist_create ();

    memset (name, 'a', sizeof (name) - 1);
    name[sizeof (name) - 1] = '\0';
    ck_assert_ptr_null (dc_hostlist_decode (name, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "longer than 255"));
    ck_assert_int_eq (dc_hostlist_push (hl, name, &err), -1);
    /* 250 characters plus a 6-digit number is too long as well */
    name[250] = '\0';
    strcat (name, "[1-2]");
    struct dc_hostlist *ok = dc_hostlist_decode (name, &err);
    ck_assert_ptr_nonnull (ok);
    dc_hostlist_destroy (ok);
    char big[300];
    snprintf (big, sizeof (big), "%.250s[100000-100001]", name);
    ck_assert_ptr_null (dc_hostlist_decode (big, &err));
    dc_hostlist_destroy (hl);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("hostlist");
    TCase *tc = tcase_create ("hostlist");

    tcase_set_timeout (tc, 60);
    tcase_add_loop_test (tc, t_good, 0, sizeof (good) / sizeof (good[0]));
    tcase_add_loop_test (tc, t_bad, 0, sizeof (bad) / sizeof (bad[0]));
    tcase_add_test (tc, t_null);
    tcase_add_test (tc, t_append_rollback);
    tcase_add_test (tc, t_name_too_long);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
