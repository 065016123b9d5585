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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TMP_PREFIX "/tmp/dcrun-test-trace"
#include "check_main.h"
#include "lib/formats/report.h"
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

/* ---- a run's trace from its report (dc_trace_from_report) ---- */

struct sp {
    int pid, tid;
    double ts, dur;
};

static int sp_cmp (const void *a, const void *b)
{
    const struct sp *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid - y->pid;
    if (x->tid != y->tid)
        return x->tid - y->tid;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->dur > y->dur ? -1 : x->dur < y->dur ? 1 : 0;
}

/* the spans of each thread nest: each inside the open one, or after it */
static bool nests (const cJSON *ev)
{
    int n = cJSON_GetArraySize (ev), k = 0;
    struct sp *v = calloc ((size_t)n + 1, sizeof (*v));
    const cJSON *e;
    bool ok = true;

    cJSON_ArrayForEach (e, ev)
    {
        if (strcmp (cJSON_GetObjectItemCaseSensitive (e, "ph")->valuestring,
                    "X"))
            continue;
        v[k++] = (struct sp){(int)numof (e, "pid"), (int)numof (e, "tid"),
                             numof (e, "ts"), numof (e, "dur")};
    }
    qsort (v, (size_t)k, sizeof (*v), sp_cmp);
    struct sp *stack[64];
    int depth = 0;
    for (int i = 0; i < k && ok; i++) {
        if (i > 0 && (v[i].pid != v[i - 1].pid || v[i].tid != v[i - 1].tid))
            depth = 0;
        while (depth > 0 &&
               stack[depth - 1]->ts + stack[depth - 1]->dur <= v[i].ts + 1e-3)
            depth--;
        if (depth > 0 && v[i].ts + v[i].dur > stack[depth - 1]->ts +
                                                  stack[depth - 1]->dur + 1e-3)
            ok = false;
        if (depth < 64)
            stack[depth++] = &v[i];
    }
    free (v);
    return ok;
}

/* count events of name (and cat, when not NULL) on tid (-1: any) */
static int count (const cJSON *ev, const char *ph, const char *name,
                  const char *cat, int tid, double *dur)
{
    const cJSON *e;
    int n = 0;

    if (dur)
        *dur = 0;
    cJSON_ArrayForEach (e, ev)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive (e, "cat");
        if (strcmp (cJSON_GetObjectItemCaseSensitive (e, "ph")->valuestring,
                    ph) ||
            strcmp (cJSON_GetObjectItemCaseSensitive (e, "name")->valuestring,
                    name) ||
            (cat && (!cJSON_IsString (c) || strcmp (c->valuestring, cat))) ||
            (tid >= 0 && numof (e, "tid") != tid))
            continue;
        n++;
        if (dur && !strcmp (ph, "X"))
            *dur += numof (e, "dur") / 1e6;
    }
    return n;
}

/* A hand-made run: rank 0 (localhost, with the hub) gets plain chunks, one
 * of which comes back twice as fast as it computed (results queued); rank
 * 1 (node2) measured phases, two chunks overlapping (a lane of their
 * own); rank 2 (node2) is lost with a chunk, which goes to rank 0 again
 * (a retry); spans and instants of the report's own. */
START_TEST (test_from_report)
{
    struct dc_report *r = dc_report_create ("infer");
    double t0 = dc_report_t0 (r);
    dc_error_t err;

    ck_assert_ptr_null (dc_trace_from_report (NULL, &err));
    ck_assert_int_eq (dc_trace_write_report (r, NULL, &err), -1);
    dc_report_add_host (r, "localhost");
    dc_report_add_host (r, "node2");
    dc_report_span (r, DC_REPORT_HUB, "launch", "launch", t0, t0 + 1e-6, NAN);
    dc_report_chunk_sent (r, 0, 0);
    dc_report_chunk_sent (r, 0, 1);
    dc_report_chunk_sent (r, 2, 2);
    dc_report_chunk_done (r, 0, 0, 1e-7);
    dc_report_chunk_done (r, 0, 1, 1e-7);
    dc_report_instant (r, 2, "lost", "lost", "killed by signal 9");
    dc_report_chunk_sent (r, 0, 2); /* the retry */
    dc_report_chunk_done (r, 0, 2, 1e-7);
    const struct dc_chunk_phases ph[] = {
        {.start = t0 + 2, .read = 0.1, .compute = 0.5, .write = 0.1},
        {.start = t0 + 2.5, .read = 0.1, .compute = 0.5, .write = 0.1},
        {.start = t0 + 3, .copy_in = 0.2, .compute = 0.2, .copy_out = 0.2},
    };
    for (int i = 0; i < 3; i++)
        dc_report_chunk_phases (r, 1, (uint64_t)(10 + i), &ph[i]);
    dc_report_span (r, 1, "step", "step", t0 + 4, t0 + 5, 7);
    dc_report_instant (r, DC_REPORT_HUB, "commit", "commit", "Y.npy");
    dc_report_add_rank (r, 0, "localhost", "cpu", 30, 3e-7, 1);
    dc_report_add_rank (r, 1, "node2", "cpu", 30, 1.2, 1);
    dc_report_rank_host (r, 2, "node2");
    ck_assert_str_eq (dc_report_host_of (r, 2), "node2");
    ck_assert_ptr_null (dc_report_host_of (r, 9));

    ck_assert_int_eq (dc_trace_write_report (r, tpath ("t.json"), &err), 0);
    size_t len;
    uint8_t *text = dc_file_read (tpath ("t.json"), 1 << 20, &len, &err);
    cJSON *j = cJSON_ParseWithLength ((const char *)text, len);
    ck_assert_ptr_nonnull (j);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive (j, "traceEvents");
    ck_assert (nests (ev));
    /* processes: localhost (with the hub) and node2 */
    ck_assert_ptr_nonnull (find (ev, "M", "process_name", 0, 0));
    ck_assert_ptr_nonnull (find (ev, "M", "process_name", 1, 0));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 0, DC_TRACE_HUB_TID));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 0, 1));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 1, 2));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 1, 3));
    ck_assert_ptr_nonnull (find (ev, "M", "thread_name", 1, 2 + 100000));
    /* a chunk span per record: 3 on rank 0, 3 on rank 1 (2 lanes), 1 lost */
    double d;
    ck_assert_int_eq (count (ev, "X", "chunk", "chunk", -1, NULL), 7);
    ck_assert_int_eq (count (ev, "X", "chunk", "chunk", 1, NULL), 3);
    ck_assert_int_eq (count (ev, "X", "compute", "compute", 1, &d), 3);
    ck_assert_double_eq_tol (d, 3e-7, 1e-9);
    ck_assert_int_eq (count (ev, "X", "chunk", "chunk", 2, NULL) +
                          count (ev, "X", "chunk", "chunk", 2 + 100000, NULL),
                      3);
    ck_assert_int_eq (count (ev, "X", "chunk", "chunk", 2 + 100000, NULL), 1);
    count (ev, "X", "compute", "phase", -1, &d);
    ck_assert_double_eq_tol (d, 1.2, 1e-9);
    ck_assert_int_eq (count (ev, "X", "copy_in", "phase", -1, NULL), 1);
    ck_assert_int_eq (count (ev, "X", "copy_out", "phase", -1, NULL), 1);
    /* the lost rank: its chunk ends at the loss; the retry on rank 0 */
    const cJSON *e = find (ev, "X", "chunk", 1, 3);
    const cJSON *l = find (ev, "i", "lost", 1, 3);
    ck_assert_ptr_nonnull (e);
    ck_assert_ptr_nonnull (l);
    ck_assert_double_eq_tol (numof (e, "ts") + numof (e, "dur"),
                             numof (l, "ts"), 1e-3);
    ck_assert_int_eq (count (ev, "i", "retry", "retry", 1, NULL), 1);
    /* the report's own events, with their arguments */
    e = find (ev, "X", "step", 1, 2);
    ck_assert_ptr_nonnull (e);
    ck_assert_double_eq_tol (numof (e, "ts"), 4e6, 1e-3);
    ck_assert_double_eq_tol (numof (e, "dur"), 1e6, 1e-3);
    ck_assert (numof (cJSON_GetObjectItemCaseSensitive (e, "args"), "n") == 7);
    e = find (ev, "i", "commit", 0, DC_TRACE_HUB_TID);
    ck_assert_str_eq (
        cJSON_GetObjectItemCaseSensitive (
            cJSON_GetObjectItemCaseSensitive (e, "args"), "detail")
            ->valuestring,
        "Y.npy");
    ck_assert_ptr_nonnull (find (ev, "X", "launch", 0, DC_TRACE_HUB_TID));
    cJSON_Delete (j);
    free (text);
    /* into a missing folder: fails, naming it */
    ck_assert_int_eq (dc_trace_write_report (r, tpath ("no/such/t.json"), &err),
                      -1);
    ck_assert_ptr_nonnull (strstr (err.text, "no/such"));
    dc_report_destroy (r);
}
END_TEST

/* hostile report events: NULL names, huge and NaN times, long names */
START_TEST (test_report_events_hostile)
{
    struct dc_report *r = dc_report_create ("train");
    char longname[400];
    size_t n;

    memset (longname, 'x', sizeof (longname) - 1);
    longname[sizeof (longname) - 1] = '\0';
    dc_report_span (NULL, 0, "a", "b", 0, 1, NAN);
    dc_report_instant (NULL, 0, "a", "b", "c");
    dc_report_span (r, 0, NULL, "b", 0, 1, NAN);
    dc_report_instant (r, 0, NULL, "b", NULL);
    ck_assert_ptr_null (dc_report_events (NULL, &n));
    ck_assert_uint_eq (n, 0);
    dc_report_span (r, 0, longname, longname, NAN, INFINITY, NAN);
    dc_report_span (r, 1, "s", NULL, dc_report_t0 (r) + 5, dc_report_t0 (r) + 1,
                    3); /* ends before it starts */
    dc_report_instant (r, -1, "i", "c", longname);
    dc_report_rank_host (r, 0, NULL);
    dc_report_rank_host (NULL, 0, "a");
    dc_report_rank_host (r, 0, longname);
    const struct dc_report_event *e = dc_report_events (r, &n);
    ck_assert_uint_eq (n, 3);
    ck_assert_uint_eq (strlen (e[0].name), sizeof (e[0].name) - 1);
    ck_assert (e[0].start == 0 && e[0].end == 0);
    ck_assert (e[1].end == e[1].start && e[1].n == 3);
    ck_assert_double_eq_tol (e[1].start, 5, 1e-6);
    ck_assert_uint_eq (strlen (e[2].detail), sizeof (e[2].detail) - 1);
    ck_assert_int_eq (e[2].ph, 'i');
    ck_assert_uint_eq (strlen (dc_report_host_of (r, 0)), 255);
    /* the trace of it parses */
    dc_error_t err;
    struct dc_trace *t = dc_trace_from_report (r, &err);
    ck_assert_ptr_nonnull (t);
    char *s = dc_trace_print (t);
    cJSON *j = cJSON_Parse (s);
    ck_assert_ptr_nonnull (j);
    ck_assert (nests (cJSON_GetObjectItemCaseSensitive (j, "traceEvents")));
    cJSON_Delete (j);
    free (s);
    dc_trace_destroy (t);
    dc_report_destroy (r);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("trace");
    TCase *tc = tcase_create ("trace");

    tcase_add_test (tc, test_events);
    tcase_add_test (tc, test_hostile);
    tcase_add_test (tc, test_from_report);
    tcase_add_test (tc, test_report_events_hostile);
    tcase_add_checked_fixture (tc, setup, teardown);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
