/* test_strbuf.c - lib/util/strbuf.c: appends, the maximum, failures that
 * stick, NULL and empty input, as a table of cases.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/strbuf.h"

enum op { ADD, STR, PRINTF_D, PRINTF_S, END };

static const struct {
    size_t max;
    struct {
        enum op op;
        const char *s; /* ADD: its first n bytes; PRINTF_S: the argument */
        size_t n;      /* ADD: bytes; PRINTF_D: the number */
    } ops[6];
    const char *want; /* NULL: take fails */
    int want_errno;
} cases[] = {
    {16, {{.op = END}}, "", 0}, /* nothing added: "" */
    {16,
     {{.op = STR, .s = "ab"},
      {.op = ADD, .s = "cdef", .n = 2},
      {.op = PRINTF_D, .n = 42},
      {.op = END}},
     "abcd42",
     0},
    {16,
     {{.op = STR, .s = ""}, {.op = ADD, .s = "x", .n = 0}, {.op = END}},
     "",
     0}, /* empty appends */
    {4,
     {{.op = STR, .s = "abcd"}, {.op = END}},
     "abcd",
     0}, /* exactly the max */
    {4,
     {{.op = STR, .s = "abc"}, {.op = STR, .s = "de"}, {.op = END}},
     NULL,
     E2BIG},
    /* a failure sticks: a later append that would fit does nothing */
    {4,
     {{.op = STR, .s = "abcdef"}, {.op = STR, .s = "a"}, {.op = END}},
     NULL,
     E2BIG},
    {0, {{.op = STR, .s = "a"}, {.op = END}}, NULL, E2BIG},
    {0, {{.op = STR, .s = ""}, {.op = END}}, "", 0},
    /* printf longer than its stack buffer */
    {1000,
     {{.op = PRINTF_S,
       .s = "012345678901234567890123456789012345678901234567890123456789012345"
            "6789"
            "012345678901234567890123456789012345678901234567890123456789012345"
            "6789"
            "012345678901234567890123456789012345678901234567890123456789012345"
            "6789"
            "012345678901234567890123456789012345678901234567890123456789012345"
            "678"
            "9"},
      {.op = STR, .s = "!"},
      {.op = END}},
     "<0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789>!",
     0},
    {100,
     {{.op = PRINTF_S,
       .s = "0123456789012345678901234567890123456789"
            "0123456789012345678901234567890123456789"
            "0123456789012345678901234567890123456789"},
      {.op = END}},
     NULL,
     E2BIG},
    /* NULL text: the buffer fails */
    {16,
     {{.op = STR, .s = "a"},
      {.op = STR, .s = NULL},
      {.op = STR, .s = "b"},
      {.op = END}},
     NULL,
     EINVAL},
    {16, {{.op = ADD, .s = NULL, .n = 3}, {.op = END}}, NULL, EINVAL},
};

START_TEST (t_cases)
{
    struct dc_strbuf b = DC_STRBUF_INIT (cases[_i].max);

    for (int k = 0; cases[_i].ops[k].op != END; k++) {
        const char *s = cases[_i].ops[k].s;
        switch (cases[_i].ops[k].op) {
        case ADD:
            dc_strbuf_add (&b, s, cases[_i].ops[k].n);
            break;
        case STR:
            dc_strbuf_str (&b, s);
            break;
        case PRINTF_D:
            dc_strbuf_printf (&b, "%zu", cases[_i].ops[k].n);
            break;
        case PRINTF_S:
            dc_strbuf_printf (&b, "<%s>", s);
            break;
        case END:
            break;
        }
    }
    ck_assert_int_eq (dc_strbuf_failed (&b), cases[_i].want == NULL);
    errno = 0;
    char *got = dc_strbuf_take (&b);
    if (!cases[_i].want) {
        ck_assert_ptr_null (got);
        ck_assert_int_eq (errno, cases[_i].want_errno);
    } else {
        ck_assert_ptr_nonnull (got);
        ck_assert_str_eq (got, cases[_i].want);
    }
    free (got);
    /* taken: the buffer is empty and usable again */
    ck_assert (!dc_strbuf_failed (&b));
    if (cases[_i].max > 0) {
        dc_strbuf_str (&b, "z");
        got = dc_strbuf_take (&b);
        ck_assert_str_eq (got, "z");
        free (got);
    }
    dc_strbuf_free (&b);
}
END_TEST

START_TEST (t_null)
{
    dc_strbuf_add (NULL, "a", 1);
    dc_strbuf_str (NULL, "a");
    dc_strbuf_printf (NULL, "%d", 1);
    dc_strbuf_free (NULL);
    ck_assert (dc_strbuf_failed (NULL));
    errno = 0;
    ck_assert_ptr_null (dc_strbuf_take (NULL));
    ck_assert_int_eq (errno, EINVAL);
    /* free leaves an empty buffer that keeps its max */
    struct dc_strbuf b = DC_STRBUF_INIT (2);
    dc_strbuf_str (&b, "ab");
    dc_strbuf_free (&b);
    dc_strbuf_str (&b, "cd");
    char *s = dc_strbuf_take (&b);
    ck_assert_str_eq (s, "cd");
    free (s);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("strbuf");
    TCase *tc = tcase_create ("strbuf");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_cases, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_null);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
