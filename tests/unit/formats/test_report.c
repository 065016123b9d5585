/* test_report.c - the run report's kernel and NaN/Inf members; the
 * report read back (dcrun report): its checks, the bottleneck rules on
 * hand-made reports, the chunk timeline, the SVG
 *
 * Tables of cases: the ranks' BLAS kernels (the same, different, missing,
 * NULL and empty names, a rank never added), rows holding NaN or Inf (in
 * memory and in a .npy file), NULL arguments.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TMP_PREFIX "/tmp/dcrun-test-report"
#include "check_main.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"
#include "lib/formats/report_read.h"
#include "lib/util/file.h"
#include "tmpdir.h"

static const struct {
    const char *kernels[4]; /* per rank 0..3; NULL: not told */
    int differ;
    const char *text;
} kernel_cases[] = {
    {{"Haswell", "Haswell", "Haswell", "Haswell"}, 0, ""},
    {{"Haswell", "Zen", "Zen", NULL}, 1, "rank 0: Haswell, rank 1: Zen"},
    {{"Zen", NULL, "Sandybridge", "Zen"},
     1,
     "rank 0: Zen, rank 2: Sandybridge, rank 3: Zen"},
    {{NULL, NULL, NULL, NULL}, 0, ""},
    {{"", "Haswell", NULL, "Haswell"}, 0, ""},
    {{"Haswell", NULL, NULL, NULL}, 0, ""},
};

START_TEST (test_kernels)
{
    struct dc_report *r = dc_report_create ("infer");
    char buf[256];

    ck_assert_ptr_nonnull (r);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq (dc_report_add_rank (r, k, "h", "cpu", 10, 1, 1), 0);
        const char *name = kernel_cases[_i].kernels[k];
        int rc = dc_report_set_rank_kernel (r, k, name);
        ck_assert_int_eq (rc, name && name[0] ? 0 : -1);
    }
    ck_assert_int_eq (dc_report_kernels_differ (r, buf, sizeof (buf)),
                      kernel_cases[_i].differ);
    ck_assert_str_eq (buf, kernel_cases[_i].text);
    char *json = dc_report_print (r);
    ck_assert_ptr_nonnull (json);
    if (kernel_cases[_i].kernels[0] && kernel_cases[_i].kernels[0][0])
        ck_assert_ptr_nonnull (strstr (json, "\"blas_kernel\""));
    free (json);
    /* a short buffer: truncated, never overrun; still 1 when they differ */
    char small[8];
    ck_assert_int_eq (dc_report_kernels_differ (r, small, sizeof (small)),
                      kernel_cases[_i].differ);
    ck_assert (strlen (small) < sizeof (small));
    dc_report_destroy (r);
}
END_TEST

START_TEST (test_kernels_hostile)
{
    struct dc_report *r = dc_report_create ("infer");
    char buf[16] = "junk";

    ck_assert_int_eq (dc_report_set_rank_kernel (NULL, 0, "Zen"), -1);
    ck_assert_int_eq (dc_report_set_rank_kernel (r, 0, "Zen"),
                      -1); /* no rank 0 */
    ck_assert_int_eq (dc_report_kernels_differ (NULL, buf, sizeof (buf)), 0);
    ck_assert_str_eq (buf, "");
    ck_assert_int_eq (dc_report_kernels_differ (r, NULL, 0), 0);
    dc_report_set_nonfinite_rows (NULL, 3);
    dc_report_set_nonfinite_rows (r, 3);
    dc_report_set_nonfinite_rows (r, 4); /* replaces */
    char *json = dc_report_print (r);
    cJSON *j = cJSON_Parse (json);
    const cJSON *nf = cJSON_GetObjectItemCaseSensitive (j, "nonfinite_rows");
    ck_assert (cJSON_IsNumber (nf) && nf->valuedouble == 4);
    cJSON_Delete (j);
    free (json);
    dc_report_destroy (r);
}
END_TEST

START_TEST (test_nonfinite)
{
    const float inf = INFINITY, nan = NAN;
    float y[5 * 3] = {0, 1, 2, nan, 0, 0, 0, 0, -inf, 3, 4, 5, nan, inf, nan};
    dc_error_t err;

    ck_assert_uint_eq (dc_nonfinite_rows (y, 5, 3), 3);
    ck_assert_uint_eq (dc_nonfinite_rows (y, 1, 3), 0);
    ck_assert_uint_eq (dc_nonfinite_rows (y, 0, 3), 0);
    ck_assert_uint_eq (dc_nonfinite_rows (NULL, 5, 3), 0);

    /* the same from a file, f4 and f2 */
    char path[512];
    size_t n = 99;
    int64_t shape[2] = {5, 3};
    for (int f2 = 0; f2 < 2; f2++) {
        snprintf (path, sizeof (path), "%s", tpath (f2 ? "y2.npy" : "y4.npy"));
        struct dc_npy_writer *w = dc_npy_writer_create (
            path, f2 ? DC_NPY_F2 : DC_NPY_F4, 2, shape, false, &err);
        ck_assert_msg (w != NULL, "%s", err.text);
        ck_assert_int_eq (dc_npy_writer_write_f32 (w, 0, 5, y, &err), 0);
        ck_assert_int_eq (dc_npy_writer_commit (w, &err), 0);
        dc_npy_writer_destroy (w);
        ck_assert_int_eq (dc_nonfinite_rows_file (path, &n, &err), 0);
        ck_assert_uint_eq (n, 3);
    }
    /* a missing file, NULL arguments: errors, no crash */
    snprintf (path, sizeof (path), "%s", tpath ("missing.npy"));
    ck_assert_int_eq (dc_nonfinite_rows_file (path, &n, &err), -1);
    ck_assert_int_eq (dc_nonfinite_rows_file (NULL, &n, &err), -1);
    ck_assert_int_eq (dc_nonfinite_rows_file (path, NULL, &err), -1);
}
END_TEST

/* ---- dcrun report: the bottleneck rules on hand-made reports ---- */

#define PH(l, d, c, g, w)                                                      \
    "\"phases\":{\"launch\":" #l ",\"load\":" #d ",\"copy_in\":0,"             \
    "\"compute\":" #c ",\"copy_out\":0,\"gather\":" #g ",\"write\":" #w "}"
#define RK(n, h, rows, s)                                                      \
    "{\"rank\":" #n ",\"host\":\"" h "\",\"device\":\"cpu\",\"rows\":" #rows   \
    ",\"seconds\":" #s ",\"tflops\":0.5}"

static const struct {
    const char *json;
    enum dc_bottleneck kind;
    int culprit;
    const char *text; /* a part of the line */
} bn_cases[] = {
    /* four even ranks, compute dominates: no bottleneck */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "a", 1000, 9) "," RK (
         1, "b", 1000,
         9.2) "," RK (2, "c", 1000,
                      9.1) "," RK (3, "d", 1000,
                                   9) "]," PH (0.2, 0.3, 9.4, 0,
                                               0.1) ",\"totals\":{\"seconds\":"
                                                    "10}}",
     DC_BN_COMPUTE, -1, "compute-bound: the compute phase took 94%"},
    /* rank 3 on node07 takes 2.1x the median's time for its rows */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "node01", 1000, 4) "," RK (
         1, "node02", 1000,
         4) "," RK (2, "node03", 1000,
                    4) "," RK (3, "node07", 1000,
                               8.4) "]," PH (0.2, 0.3, 8.5, 0,
                                             0.1) ",\"totals\":{\"seconds\":9."
                                                  "1}}",
     DC_BN_STRAGGLER, 3, "rank 3 on node07 was 2.1x slower than the median"},
    /* the hub's relay: ranks compute 1 s of a 10 s compute phase */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "a", 1000, 1) "," RK (
         1, "b", 1000, 1) "]," PH (0.1, 0.1, 9.6, 0,
                                   0.2) ",\"totals\":{\"seconds\":10}}",
     DC_BN_RELAY, -1, "the coordinator's relay took 86% of the wall time"},
    /* load dominates */
    {"{\"command\":\"train\",\"ranks\":[" RK (0, "a", 10, 1) "," RK (
         1, "b", 10, 1) "]," PH (0.1, 7, 1.1, 0,
                                 0) ",\"totals\":{\"seconds\":8.2}}",
     DC_BN_PHASE, -1, "load took 85% of the wall time"},
    /* launch dominates */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "a", 10, 1) "]," PH (
         3, 0.1, 1, 0, 0) ",\"totals\":{\"seconds\":4.1}}",
     DC_BN_PHASE, -1, "launch took 73% of the wall time"},
    /* a lost rank, the others even */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "a", 1000, 9) "," RK (
         1, "b", 0,
         0) "," RK (2, "c", 1000,
                    9) "]," PH (0.2, 0.3, 9.4, 0,
                                0.1) ",\"totals\":{\"seconds\":10},"
                                     "\"distributed\":{\"lost_workers\":[{"
                                     "\"rank\":1,\"host\":\"b\","
                                     "\"reason\":\"killed by signal 9\"}]}}",
     DC_BN_LOST, 1, "rank 1 on b was lost (killed by signal 9)"},
    /* train's lost ranks as one text */
    {"{\"command\":\"train\",\"ranks\":[" RK (0, "a", 1000, 9) "]," PH (
         0.2, 0.3, 9.4, 0,
         0.1) ",\"totals\":{\"seconds\":10},"
              "\"distributed\":{\"lost_workers\":\"rank 1 on b (killed)\"}}",
     DC_BN_LOST, -1, "ranks were lost (rank 1 on b (killed))"},
    /* a rank that did nothing */
    {"{\"command\":\"infer\",\"ranks\":[" RK (0, "a", 1000, 9) "," RK (
         1, "b", 0, 0) "]," PH (0.2, 0.3, 9.4, 0,
                                0.1) ",\"totals\":{\"seconds\":10}}",
     DC_BN_IDLE, 1, "1 of 2 ranks did no rows (rank 1 on b first)"},
    /* nothing timed */
    {"{\"command\":\"infer\",\"ranks\":[],\"totals\":{\"seconds\":0}}",
     DC_BN_EMPTY, -1, "no timed work"},
    /* exec: a failed rank; then a slow one */
    {"{\"command\":\"exec\",\"ranks\":[{\"rank\":0,\"host\":\"a\","
     "\"status\":0,\"start\":0,\"end\":1},{\"rank\":1,\"host\":\"b\","
     "\"signal\":9,\"start\":0,\"end\":1}],\"totals\":{\"seconds\":1}}",
     DC_BN_FAILED, 1, "rank 1 on b failed (signal 9)"},
    {"{\"command\":\"exec\",\"ranks\":[{\"rank\":0,\"host\":\"a\","
     "\"status\":0,\"start\":0,\"end\":1},{\"rank\":1,\"host\":\"b\","
     "\"status\":0,\"start\":0,\"end\":1.1},{\"rank\":2,\"host\":\"c\","
     "\"status\":0,\"start\":0,\"end\":3}],\"totals\":{\"seconds\":3}}",
     DC_BN_STRAGGLER, 2, "rank 2 on c was 2.7x slower than the median"},
};

START_TEST (test_bottleneck)
{
    dc_error_t err;
    const char *js = bn_cases[_i].json;
    struct dc_report_view *v =
        dc_report_view_parse (js, strlen (js), "R.json", &err);

    ck_assert_msg (v != NULL, "case %d: %s", _i, err.text);
    ck_assert_msg (v->kind == bn_cases[_i].kind, "case %d: kind %d: %s", _i,
                   v->kind, v->bottleneck);
    ck_assert_int_eq (v->culprit, bn_cases[_i].culprit);
    ck_assert_msg (strstr (v->bottleneck, bn_cases[_i].text), "case %d: %s", _i,
                   v->bottleneck);
    /* the JSON and the SVG of every case are well formed */
    char *s = dc_report_view_json (v);
    cJSON *j = cJSON_Parse (s);
    ck_assert_ptr_nonnull (j);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive (j, "bottleneck");
    ck_assert_str_eq (cJSON_GetObjectItemCaseSensitive (b, "text")->valuestring,
                      v->bottleneck);
    ck_assert_int_eq (
        cJSON_GetArraySize (cJSON_GetObjectItemCaseSensitive (j, "ranks")),
        v->nranks);
    cJSON_Delete (j);
    free (s);
    s = dc_report_svg (v);
    ck_assert_ptr_nonnull (s);
    ck_assert_ptr_nonnull (strstr (s, "<svg "));
    ck_assert_ptr_nonnull (strstr (s, "</svg>\n"));
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

/* bad input: each refused with "R.json: reason", never a crash */
static const struct {
    const char *json;
    const char *reason;
} bad_cases[] = {
    {"", "not JSON"},
    {"{\"command\":", "not JSON"},
    {"[1,2]", "not a dcrun report"},
    {"{\"ranks\":[]}", "not a dcrun report"},
    {"{\"command\":\"infer\",\"ranks\":{}}", "not a dcrun report"},
    {"{\"command\":\"infer\",\"ranks\":[]}", "no \"totals\".\"seconds\""},
    {"{\"command\":\"infer\",\"ranks\":[],\"totals\":{\"seconds\":-1}}",
     "no \"totals\""},
    {"{\"command\":\"infer\",\"ranks\":[{\"rank\":0}],\"totals\":{"
     "\"seconds\":1}}",
     "ranks[0]: no \"rank\" or \"host\""},
    {"{\"command\":\"infer\",\"ranks\":[{\"rank\":0,\"host\":\"a\"}],"
     "\"totals\":{\"seconds\":1}}",
     "rank 0: no \"rows\" or \"seconds\""},
    {"{\"command\":\"infer\",\"ranks\":[{\"rank\":0,\"host\":\"a\",\"rows\":"
     "1,\"seconds\":\"x\"}],\"totals\":{\"seconds\":1}}",
     "no \"rows\" or \"seconds\""},
    {"{\"command\":\"infer\",\"ranks\":[" RK (
         0, "a", 1, 1) "],\"totals\":{"
                       "\"seconds\":1},\"phases\":[]}",
     "\"phases\" is not an object"},
    {"{\"command\":\"infer\",\"ranks\":[{\"rank\":0,\"host\":\"a\",\"rows\":"
     "1,\"seconds\":1,\"chunks\":3}],\"totals\":{\"seconds\":1}}",
     "\"chunks\" is not a list"},
    {"{\"command\":\"infer\",\"ranks\":[{\"rank\":0,\"host\":\"a\",\"rows\":"
     "1,\"seconds\":1,\"chunks\":[{\"start\":2,\"end\":1}]}],\"totals\":{"
     "\"seconds\":1}}",
     "ends before it starts"},
    {"{\"command\":\"exec\",\"ranks\":[{\"rank\":0,\"host\":\"a\"}],"
     "\"totals\":{\"seconds\":1}}",
     "no \"start\" and \"end\""},
    {"{\"command\":\"exec\",\"ranks\":[{\"rank\":0,\"host\":\"a\",\"start\":"
     "0,\"end\":1}],\"totals\":{\"seconds\":1}}",
     "no \"status\" or \"signal\""},
    {"{\"command\":\"infer\",\"ranks\":[],\"totals\":{\"seconds\":1},"
     "\"lost_workers\":5}",
     "\"lost_workers\" is not a list"},
};

START_TEST (test_bad_reports)
{
    dc_error_t err = {.text = ""};
    const char *js = bad_cases[_i].json;

    ck_assert_ptr_null (dc_report_view_parse (js, strlen (js), "R.json", &err));
    ck_assert_msg (!strncmp (err.text, "R.json: ", 8) &&
                       strstr (err.text, bad_cases[_i].reason),
                   "case %d: %s", _i, err.text);
}
END_TEST

START_TEST (test_read_hostile)
{
    dc_error_t err;

    ck_assert_ptr_null (dc_report_view_parse (NULL, 0, "R.json", &err));
    ck_assert_ptr_null (dc_report_view_read (NULL, &err));
    ck_assert_ptr_null (dc_report_view_read (tpath ("missing.json"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "missing.json"));
    ck_assert_ptr_null (dc_report_view_json (NULL));
    ck_assert_ptr_null (dc_report_svg (NULL));
    ck_assert_int_eq (dc_report_svg_write (NULL, "x", &err), -1);
    dc_report_view_destroy (NULL);
    /* markup in a host name is escaped in the SVG */
    const char *js = "{\"command\":\"infer\",\"ranks\":[" RK (
        0, "<b>&\\\"x", 1, 1) "],\"totals\":{\"seconds\":1}}";
    struct dc_report_view *v =
        dc_report_view_parse (js, strlen (js), "R.json", &err);
    ck_assert_msg (v != NULL, "%s", err.text);
    char *s = dc_report_svg (v);
    ck_assert_ptr_null (strstr (s, "<b>"));
    ck_assert_ptr_nonnull (strstr (s, "&lt;b&gt;&amp;&quot;x"));
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

/* the chunk timeline: recorded, written, read back, drawn */
START_TEST (test_chunks)
{
    struct dc_report *r = dc_report_create ("infer");
    dc_error_t err;

    dc_report_chunk_sent (NULL, 0, 0); /* no-ops */
    dc_report_chunk_done (NULL, 0, 0, 1);
    dc_report_chunk_sent (r, 0, 0);
    dc_report_chunk_sent (r, 1, 1);
    dc_report_chunk_sent (r, 0, 2);
    dc_report_chunk_done (r, 0, 0, 0.001);
    dc_report_chunk_done (r, 1, 1, 0.002);
    dc_report_chunk_done (r, 1, 7, 0.002); /* never sent: ignored */
    /* chunk 2 never comes back: an unfinished span */
    dc_report_add_rank (r, 0, "a", "cpu", 10, 0.001, 1e6);
    dc_report_add_rank (r, 1, "b", "cpu", 10, 0.002, 1e6);
    dc_report_set_total_seconds (r, 1);
    char *js = dc_report_print (r);
    cJSON *j = cJSON_Parse (js);
    const cJSON *r0 =
        cJSON_GetArrayItem (cJSON_GetObjectItemCaseSensitive (j, "ranks"), 0);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive (r0, "chunks");
    ck_assert_int_eq (cJSON_GetArraySize (c), 2);
    ck_assert (cJSON_IsNull (
        cJSON_GetObjectItemCaseSensitive (cJSON_GetArrayItem (c, 1), "end")));
    cJSON_Delete (j);
    struct dc_report_view *v =
        dc_report_view_parse (js, strlen (js), "R.json", &err);
    ck_assert_msg (v != NULL, "%s", err.text);
    ck_assert_uint_eq (v->nspans, 3);
    int unfinished = 0;
    for (size_t i = 0; i < v->nspans; i++) {
        ck_assert (v->spans[i].end >= v->spans[i].start);
        unfinished += v->spans[i].unfinished;
    }
    ck_assert_int_eq (unfinished, 1);
    ck_assert_int_eq (dc_report_svg_write (v, tpath ("t.svg"), &err), 0);
    size_t len;
    uint8_t *svg = dc_file_read (tpath ("t.svg"), 1 << 20, &len, &err);
    ck_assert_ptr_nonnull (svg);
    ck_assert_ptr_nonnull (strstr ((char *)svg, "no result"));
    free (svg);
    dc_report_view_destroy (v);
    free (js);
    dc_report_destroy (r);
}
END_TEST

/* per-chunk phases (dc_report_chunk_phases): a table of chunks, with and
 * without phases, hostile values (negative, NaN, Inf), chunks never sent */
static const struct {
    int rank;
    uint64_t id;
    bool sent;
    double read, copy_in, compute, copy_out, write;
} phase_cases[] = {
    {0, 0, true, 0.1, 0.2, 0.3, 0.4, 0.5},
    {0, 1, true, -1, NAN, 0.5, INFINITY, 0}, /* hostile: taken as 0 */
    {1, 2, false, 0.25, 0, 0.25, 0, 0},      /* never sent: a record made */
    {2, 3, true, 0, 0, 0, 0, 0},             /* sent, no phases below */
};

START_TEST (test_chunk_phases)
{
    struct dc_report *r = dc_report_create ("infer");
    double t0 = dc_report_t0 (r);
    size_t n;
    dc_error_t err;

    dc_report_chunk_phases (NULL, 0, 0, &(struct dc_chunk_phases){0});
    dc_report_chunk_phases (r, 0, 0, NULL); /* no-ops */
    ck_assert_ptr_null (dc_report_chunks (NULL, &n));
    ck_assert_uint_eq (n, 0);
    for (size_t i = 0; i < sizeof (phase_cases) / sizeof (*phase_cases); i++)
        if (phase_cases[i].sent)
            dc_report_chunk_sent (r, phase_cases[i].rank, phase_cases[i].id);
    for (size_t i = 0; i < sizeof (phase_cases) / sizeof (*phase_cases); i++) {
        if (phase_cases[i].rank == 2)
            continue;
        struct dc_chunk_phases p = {
            /* the made record's start is its phases' start: at t0, so
             * that its end (now) follows it */
            .start = phase_cases[i].sent ? t0 + 1.0 + (double)i : t0,
            .read = phase_cases[i].read,
            .copy_in = phase_cases[i].copy_in,
            .compute = phase_cases[i].compute,
            .copy_out = phase_cases[i].copy_out,
            .write = phase_cases[i].write,
        };
        dc_report_chunk_phases (r, phase_cases[i].rank, phase_cases[i].id, &p);
        dc_report_chunk_done (r, phase_cases[i].rank, phase_cases[i].id,
                              phase_cases[i].compute);
    }
    dc_report_chunk_done (r, 2, 3, 0.1);
    const struct dc_report_chunk *c = dc_report_chunks (r, &n);
    ck_assert_uint_eq (n, 4);
    ck_assert (c[0].has_phases && c[1].has_phases && c[3].has_phases);
    ck_assert (!c[2].has_phases); /* rank 2's chunk: the order of sends */
    ck_assert_double_eq_tol (c[0].phases.start, 1.0, 1e-9);
    ck_assert_double_eq (c[1].phases.read, 0);
    ck_assert_double_eq (c[1].phases.copy_in, 0);
    ck_assert_double_eq (c[1].phases.copy_out, 0);
    ck_assert_double_eq_tol (c[3].start, 0.0, 1e-9); /* made: its phases' */
    ck_assert_double_eq_tol (c[3].phases.start, 0.0, 1e-9);
    ck_assert_double_eq_tol (c[1].phases.start, 2.0, 1e-9);
    dc_report_add_rank (r, 0, "a", "cpu", 10, 1.0, 1e6);
    dc_report_add_rank (r, 1, "b", "cpu", 10, 0.5, 1e6);
    dc_report_add_rank (r, 2, "b", "cpu", 10, 0.1, 1e6);
    dc_report_set_total_seconds (r, 5);
    char *js = dc_report_print (r);
    cJSON *j = cJSON_Parse (js);
    ck_assert_ptr_nonnull (j);
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive (j, "ranks");
    const struct {
        int rank;
        double busy, compute; /* -1: no "phases" */
        int chunks_with_phases;
    } want[] = {{0, 2.0, 0.8, 2}, {1, 0.5, 0.25, 1}, {2, -1, -1, 0}};
    for (int k = 0; k < 3; k++) {
        const cJSON *o = cJSON_GetArrayItem (ranks, k);
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive (o, "phases");
        if (want[k].busy < 0) {
            ck_assert_ptr_null (ph);
        } else {
            ck_assert_ptr_nonnull (ph);
            ck_assert_double_eq_tol (
                cJSON_GetObjectItemCaseSensitive (ph, "busy")->valuedouble,
                want[k].busy, 1e-9);
            ck_assert_double_eq_tol (
                cJSON_GetObjectItemCaseSensitive (ph, "compute")->valuedouble,
                want[k].compute, 1e-9);
        }
        int with = 0;
        const cJSON *e;
        cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (o, "chunks"))
        {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (e, "phases");
            if (p) {
                with++;
                for (int q = 0; q < DC_CHUNK_NPHASES; q++)
                    ck_assert (
                        cJSON_IsNumber (cJSON_GetObjectItemCaseSensitive (
                            p, dc_chunk_phase_names[q])));
                ck_assert (cJSON_IsNumber (
                    cJSON_GetObjectItemCaseSensitive (p, "start")));
            }
        }
        ck_assert_int_eq (with, want[k].chunks_with_phases);
    }
    cJSON_Delete (j);
    /* dcrun report still reads it */
    struct dc_report_view *v =
        dc_report_view_parse (js, strlen (js), "R.json", &err);
    ck_assert_msg (v != NULL, "%s", err.text);
    dc_report_view_destroy (v);
    free (js);
    dc_report_destroy (r);
}
END_TEST

/* an exec report: written, read back */
/* a pipeline stage's chunks (dc_report_chunk_measured) and the rows
 * counted once (dc_report_set_total_rows): hostile values taken as 0, a
 * start that is not finite and NULL are no-ops */
START_TEST (test_stage_chunks)
{
    struct dc_report *r = dc_report_create ("infer");
    double t0 = dc_report_t0 (r);
    size_t n;

    dc_report_chunk_measured (NULL, 0, 0, &(struct dc_chunk_phases){0});
    dc_report_chunk_measured (r, 0, 0, NULL);
    dc_report_chunk_measured (r, 0, 0, &(struct dc_chunk_phases){.start = NAN});
    dc_report_set_total_rows (NULL, 5);
    dc_report_chunk_measured (
        r, 0, 7, &(struct dc_chunk_phases){.start = t0 + 2, .compute = 0.5});
    dc_report_chunk_measured (r, 1, 7,
                              &(struct dc_chunk_phases){.start = t0 + 3,
                                                        .compute = -1,
                                                        .write = INFINITY});
    const struct dc_report_chunk *c = dc_report_chunks (r, &n);
    ck_assert_uint_eq (n, 2);
    ck_assert (c[0].has_phases && c[1].has_phases);
    ck_assert_int_eq (c[0].rank, 0);
    ck_assert_uint_eq (c[0].id, 7);
    ck_assert_double_eq_tol (c[0].start, 2.0, 1e-9);
    ck_assert_double_eq_tol (c[0].end, 2.5, 1e-9);
    ck_assert_double_eq_tol (c[0].compute, 0.5, 1e-12);
    ck_assert_double_eq_tol (c[0].phases.start, 2.0, 1e-9);
    ck_assert_double_eq (c[1].compute, 0);
    ck_assert_double_eq (c[1].phases.write, 0);
    ck_assert_double_eq_tol (c[1].end, 3.0, 1e-9);
    /* two stages, 100 rows through each: the totals count them once */
    dc_report_add_rank (r, 0, "a", "cpu", 100, 0.5, 1e6);
    dc_report_add_rank (r, 1, "b", "cpu", 100, 0.25, 1e6);
    char *s = dc_report_print (r);
    cJSON *root = cJSON_Parse (s);
    const cJSON *tot = cJSON_GetObjectItem (root, "totals");
    ck_assert_double_eq (cJSON_GetObjectItem (tot, "rows")->valuedouble, 200);
    cJSON_Delete (root);
    free (s);
    dc_report_set_total_rows (r, 100);
    s = dc_report_print (r);
    root = cJSON_Parse (s);
    tot = cJSON_GetObjectItem (root, "totals");
    ck_assert_double_eq (cJSON_GetObjectItem (tot, "rows")->valuedouble, 100);
    ck_assert_double_eq (cJSON_GetObjectItem (tot, "flop")->valuedouble, 2e6);
    const cJSON *k0 =
        cJSON_GetArrayItem (cJSON_GetObjectItem (root, "ranks"), 0);
    ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (k0, "chunks")),
                      1);
    cJSON_Delete (root);
    free (s);
    dc_report_destroy (r);
}
END_TEST

START_TEST (test_exec_report)
{
    struct dc_report *r = dc_report_create ("exec");
    dc_error_t err;

    ck_assert_int_eq (dc_report_add_exec_rank (NULL, NULL), -1);
    ck_assert_int_eq (dc_report_add_exec_rank (r, NULL), -1);
    ck_assert_int_eq (
        dc_report_add_exec_rank (
            r,
            &(struct dc_report_exec_rank){
                .rank = 0, .host = "a", .code = 0, .start = 0, .end = 2}),
        0);
    ck_assert_int_eq (dc_report_add_exec_rank (
                          r, &(struct dc_report_exec_rank){.rank = 1,
                                                           .host = "b",
                                                           .signaled = true,
                                                           .sig = 9,
                                                           .start = 0,
                                                           .end = 1}),
                      0);
    ck_assert_int_eq (
        dc_report_add_exec_rank (
            r, &(struct dc_report_exec_rank){.rank = 2,
                                             .host = NULL,
                                             .failed_start = true,
                                             .reason = "no such file",
                                             .start = 0,
                                             .end = NAN}),
        0);
    dc_report_set_total_seconds (r, 2);
    char *js = dc_report_print (r);
    ck_assert_ptr_null (strstr (js, "\"phases\""));
    struct dc_report_view *v =
        dc_report_view_parse (js, strlen (js), "R.json", &err);
    ck_assert_msg (v != NULL, "%s", err.text);
    ck_assert_int_eq (v->nranks, 3);
    ck_assert_str_eq (v->ranks[1].status, "signal 9");
    ck_assert_str_eq (v->ranks[2].status, "failed to start: no such file");
    ck_assert_int_eq (v->kind, DC_BN_FAILED);
    ck_assert_int_eq (v->culprit, 1);
    dc_report_view_destroy (v);
    free (js);
    dc_report_destroy (r);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("report");
    TCase *tc = tcase_create ("report");

    tcase_add_loop_test (tc, test_kernels, 0,
                         sizeof (kernel_cases) / sizeof (*kernel_cases));
    tcase_add_test (tc, test_kernels_hostile);
    tcase_add_test (tc, test_nonfinite);
    tcase_add_loop_test (tc, test_bottleneck, 0,
                         sizeof (bn_cases) / sizeof (*bn_cases));
    tcase_add_loop_test (tc, test_bad_reports, 0,
                         sizeof (bad_cases) / sizeof (*bad_cases));
    tcase_add_test (tc, test_read_hostile);
    tcase_add_test (tc, test_chunks);
    tcase_add_test (tc, test_exec_report);
    tcase_add_test (tc, test_chunk_phases);
    tcase_add_test (tc, test_stage_chunks);
    tcase_add_checked_fixture (tc, setup, teardown);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
