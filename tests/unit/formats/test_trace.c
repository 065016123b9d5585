/* test_trace.c - Chrome Trace Event Format output
 *
 * The documented events (process and thread names, complete spans with
 * ts/dur in microseconds, thread-scoped instants) parse back with cJSON and
 * hold what was put in; NULL, hostile and out-of-range input; a write that
 * cannot be done names the path.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TMP_PREFIX "/tmp/dcrun-test-trace"
#include "check_main.h"
#include "lib/formats/trace.h"
#include "lib/util/file.h"
#include "tmpdir.h"

/* the event of phase ph and name name on (pid, tid), or NULL */
static const cJSON *find (const cJSON *events, const char *ph, const char *name,
                          int pid, int tid)
{
    const cJSON *e;
    cJSON_ArrayForEach (e, events)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive (e, "ph");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "name");
        const cJSON *pi = cJSON_GetObjectItemCaseSensitive (e, "pid");
        const cJSON *ti = cJSON_GetObjectItemCaseSensitive (e, "tid");
        if (cJSON_IsString (p) && !strcmp (p->valuestring, ph) &&
            cJSON_IsString (n) && !strcmp (n->valuestring, name) &&
            cJSON_IsNumber (pi) && pi->valuedouble == pid &&
            cJSON_IsNumber (ti) && ti->valuedouble == tid)
            return e;
    }
    return NULL;
}

static double numof (const cJSON *o, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive (o, name);
    ck_assert_msg (cJSON_IsNumber (n), "no number %s", name);
    return n->valuedouble;
}

START_TEST (test_events)
{
    struct dc_trace *t = dc_trace_create ();
    dc_error_t err;
    cJSON *args;

    ck_assert_ptr_nonnull (t);
    ck_assert_int_eq (dc_trace_process_name (t, 0, "node01"), 0);
    ck_assert_int_eq (dc_trace_process_name (t, 1, "node\"02\n"), 0);
    ck_assert_int_eq (dc_trace_thread_name (t, 0, DC_TRACE_HUB_TID, "hub"), 0);
    ck_assert_int_eq (dc_trace_thread_name (t, 1, 2, "rank 1"), 0);
    args = dc_trace_span (t, 1, 2, "rank 1", "exec", 1500, 250000);
    ck_assert_ptr_nonnull (args);
    cJSON_AddNumberToObject (args, "status", 3);
    ck_assert_ptr_nonnull (
        dc_trace_span (t, 0, 0, "load", "infer", NAN, -5)); /* clamped */
    args = dc_trace_instant (t, 1, 2, "failed", "exec", 251500);
    ck_assert_ptr_nonnull (args);
    ck_assert_int_eq (dc_trace_count (t), 7);
    ck_assert_int_eq (dc_trace_write (t, tpath ("t.json"), &err), 0);

    size_t len;
    uint8_t *text = dc_file_read (tpath ("t.json"), 1 << 20, &len, &err);
    ck_assert_ptr_nonnull (text);
    cJSON *j = cJSON_ParseWithLength ((const char *)text, len);
    ck_assert_ptr_nonnull (j);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive (j, "traceEvents");
    ck_assert (cJSON_IsArray (ev));
    ck_assert_int_eq (cJSON_GetArraySize (ev), 7);
    ck_assert_str_eq (
        cJSON_GetObjectItemCaseSensitive (j, "displayTimeUnit")->valuestring,
        "ms");
    const cJSON *e = find (ev, "M", "process_name", 1, 0);
    ck_assert_ptr_nonnull (e);
    ck_assert_str_eq (cJSON_GetObjectItemCaseSensitive (
                          cJSON_GetObjectItemCaseSensitive (e, "args"), "name")
                          ->valuestring,
                      "node\"02\n");
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 0, 0));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 1, 2));
    e = find (ev, "X", "rank 1", 1, 2);
    ck_assert_ptr_nonnull (e);
    ck_assert (numof (e, "ts") == 1500 && numof (e, "dur") == 250000);
    ck_assert_str_eq (cJSON_GetObjectItemCaseSensitive (e, "cat")->valuestring,
                      "exec");
    ck_assert (numof (cJSON_GetObjectItemCaseSensitive (e, "args"), "status") ==
               3);
    e = find (ev, "X", "load", 0, 0);
    ck_assert (numof (e, "ts") == 0 && numof (e, "dur") == 0);
    e = find (ev, "i", "failed", 1, 2);
    ck_assert_ptr_nonnull (e);
    ck_assert (numof (e, "ts") == 251500);
    ck_assert_str_eq (cJSON_GetObjectItemCaseSensitive (e, "s")->valuestring,
                      "t");
    cJSON_Delete (j);
    free (text);

    /* a write into a missing folder fails, naming the path */
    ck_assert_int_eq (dc_trace_write (t, tpath ("no/such/dir/t.json"), &err),
                      -1);
    ck_assert_ptr_nonnull (strstr (err.text, "no/such/dir"));
    dc_trace_destroy (t);
}
END_TEST

START_TEST (test_hostile)
{
    struct dc_trace *t = dc_trace_create ();
    dc_error_t err;

    ck_assert_int_eq (dc_trace_process_name (NULL, 0, "x"), -1);
    ck_assert_int_eq (dc_trace_process_name (t, 0, NULL), -1);
    ck_assert_int_eq (dc_trace_thread_name (t, 0, 0, NULL), -1);
    ck_assert_ptr_null (dc_trace_span (NULL, 0, 0, "x", "y", 0, 1));
    ck_assert_ptr_null (dc_trace_span (t, 0, 0, NULL, "y", 0, 1));
    ck_assert_ptr_null (dc_trace_span (t, 0, 0, "x", NULL, 0, 1));
    ck_assert_ptr_null (dc_trace_instant (t, 0, 0, NULL, "y", 0));
    ck_assert_int_eq (dc_trace_count (t), 0);
    ck_assert_int_eq (dc_trace_count (NULL), 0);
    ck_assert_ptr_null (dc_trace_print (NULL));
    ck_assert_int_eq (dc_trace_write (NULL, "x", &err), -1);
    ck_assert_int_eq (dc_trace_write (t, NULL, &err), -1);
    /* an empty trace is still a valid file */
    char *s = dc_trace_print (t);
    cJSON *j = cJSON_Parse (s);
    ck_assert_int_eq (cJSON_GetArraySize (
                          cJSON_GetObjectItemCaseSensitive (j, "traceEvents")),
                      0);
    cJSON_Delete (j);
    free (s);
    dc_trace_destroy (t);
    dc_trace_destroy (NULL);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("trace");
    TCase *tc = tcase_create ("trace");

    tcase_add_test (tc, test_events);
    tcase_add_test (tc, test_hostile);
    tcase_add_checked_fixture (tc, setup, teardown);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
