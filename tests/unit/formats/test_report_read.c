/* test_report_read.c - dcrun report: a report read back (report_read.h)
 *
 * Tables of hand-made reports, old (no I/O way, no phases) and new (the
 * distributed "io", "rank_io", the ranks' and chunks' "phases"): the
 * bottleneck each names (relay, waits, read, write, straggler, compute,
 * idle); the values the table prints (busy from the rank's phases, the
 * split, the I/O way mapped by rank number); bad members refused with
 * "R.json: reason"; hostile texts (control bytes, bad UTF-8, markup) made
 * printable and escaped in the SVG, tooltips included.
 *
 * The JSON is written with ' for " (q() swaps them) to stay readable.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_TMP_PREFIX "/tmp/dcrun-test-report-read"
#include "check_main.h"
#include "lib/formats/report_read.h"
#include "tmpdir.h"

/* s with ' turned into " (a static buffer per call, four in turn) */
static const char *q (const char *s)
{
    static char buf[4][8192];
    static int k;
    char *b = buf[k++ % 4];

    ck_assert_uint_lt (strlen (s), sizeof (buf[0]));
    for (size_t i = 0;; i++) {
        b[i] = s[i] == '\'' ? '"' : s[i];
        if (!s[i])
            break;
    }
    return b;
}

static struct dc_report_view *view (const char *js)
{
    dc_error_t err = {.text = ""};
    const char *t = q (js);
    struct dc_report_view *v =
        dc_report_view_parse (t, strlen (t), "R.json", &err);
    ck_assert_msg (v != NULL, "%s: %s", err.text, t);
    return v;
}

/* a rank: number, host, rows, compute seconds */
#define RK(n, h, rows, s)                                                      \
    "{'rank':" #n ",'host':'" h "','device':'cpu','rows':" #rows               \
    ",'seconds':" #s ",'tflops':0.5}"
/* a rank with its phases' totals: read, compute, write (busy their sum) */
#define RP(n, h, rows, s, r, c, w)                                             \
    "{'rank':" #n ",'host':'" h "','device':'cpu','rows':" #rows               \
    ",'seconds':" #s ",'tflops':0.5,'phases':{'read':" #r                      \
    ",'copy_in':0,'compute':" #c ",'copy_out':0,'write':" #w "}}"
/* the job's phases: launch, load, compute, gather, write */
#define PH(l, d, c, g, w)                                                      \
    "'phases':{'launch':" #l ",'load':" #d ",'copy_in':0,'compute':" #c        \
    ",'copy_out':0,'gather':" #g ",'write':" #w "}"
#define IO(io, mode, b0, b1)                                                   \
    "'distributed':{'io':'" io "','io_mode':'" mode "','hub_cpu_seconds':2,"   \
    "'rank_io':[{'io':'" io "','read':0,'compute':1,'write':0,"                \
    "'relayed_bytes':" #b0 "},{'io':'" io "','read':0,'compute':1,"            \
    "'write':0,'relayed_bytes':" #b1 "}]}"
#define TOT(s) "'totals':{'seconds':" #s "}"
#define INFER "{'command':'infer','ranks':["

static const struct {
    const char *json;
    enum dc_bottleneck kind;
    int culprit;
    const char *text[2]; /* parts of the line (NULL: none) */
} cases[] = {
    /* 0: relayed rows: the ranks busy 1 s of a 9.6 s compute phase */
    {INFER RP (0, "a", 1000, 1, 0, 1, 0) "," RP (
         1, "b", 1000, 1, 0, 1,
         0) "]," PH (0.1, 0.1, 9.6, 0, 0.2) "," IO ("relay", "relay", 805306368,
                                                    805306368) "," TOT (10) "}",
     DC_BN_RELAY,
     -1,
     {"the head relayed 1.50 GiB of rows: the relay took 86% of the wall time",
      "use --io direct (the ranks see the same files)"}},
    /* 1: mixed: the relayed rank and why */
    {INFER RP (0, "a", 1000, 1, 0, 1, 0) "," RP (
         1, "b", 1000, 1, 0, 1,
         0) "]," PH (0.1, 0.1, 9.6, 0,
                     0.2) ",'distributed':{'io':'mixed','io_mode':'auto',"
                          "'rank_io':[{'io':'direct','read':0,'compute':1,"
                          "'write':0,'relayed_bytes':0},{'io':'relay','why':"
                          "'cannot open /data/X.npy','read':0,'compute':1,"
                          "'write':0,'relayed_bytes':2048}]}," TOT (10) "}",
     DC_BN_RELAY,
     -1,
     {"the head relayed 2.0 KiB of rows",
      "rank 1 on b was relayed: cannot open /data/X.npy"}},
    /* 2: direct I/O, the same times: the ranks waited on the head */
    {INFER RP (0, "a", 1000, 1, 0, 1, 0) "," RP (
         1, "b", 1000, 1, 0, 1, 0) "]," PH (0.1, 0.1, 9.6, 0,
                                            0.2) "," IO ("direct", "direct", 0,
                                                         0) "," TOT (10) "}",
     DC_BN_WAIT,
     -1,
     {"the ranks waited on the head 86% of the wall time", "--chunk-rows"}},
    /* 3: the relay a third of the wall time and longer than any other */
    {INFER RP (0, "a", 1000, 2, 0, 2, 0) "," RP (
         1, "b", 1000, 2, 0, 2, 0) "]," PH (2, 1, 6, 0,
                                            1) "," IO ("relay", "relay", 1024,
                                                       1024) "," TOT (10) "}",
     DC_BN_RELAY,
     -1,
     {"the relay took 40% of the wall time", NULL}},
    /* 4: the same relay, but launch longer: not the relay; compute the
     * largest phase */
    {INFER RP (0, "a", 1000, 1, 0, 1, 0) "," RP (
         1, "b", 1000, 1, 0, 1, 0) "]," PH (4.5, 0.5, 5, 0,
                                            0) "," IO ("relay", "relay", 1024,
                                                       1024) "," TOT (10) "}",
     DC_BN_COMPUTE,
     -1,
     {"compute-bound: the compute phase took 50% of the wall time", NULL}},
    /* 5: reads take 3 of every 4 busy seconds */
    {INFER RP (0, "a", 1000, 1, 3, 1, 0) "," RP (
         1, "b", 1000, 1, 3, 1, 0) "," RP (2, "c", 1000, 1, 3, 1,
                                           0) "]," PH (0.2, 0.3, 4.2, 0,
                                                       0.1) "," TOT (5) "}",
     DC_BN_READ,
     -1,
     {"reading the input took 75% of the ranks' busy time (9 of 12 s)",
      "the storage is the limit"}},
    /* 6: writes */
    {INFER RP (0, "a", 1000, 1, 0, 1,
               3) "," RP (1, "b", 1000, 1, 0, 1,
                          3) "]," PH (0.2, 0.3, 4.2, 0, 0.1) "," TOT (5) "}",
     DC_BN_WRITE,
     -1,
     {"writing the output took 75% of the ranks' busy time",
      "the output's storage is the limit"}},
    /* 7: rank 3's reads make it 2.1x slower: busy from its phases */
    {INFER RP (0, "node01", 1000, 4, 0, 4, 0) "," RP (
         1, "node02", 1000, 4, 0, 4,
         0) "," RP (2, "node03", 1000, 4, 0, 4,
                    0) "," RP (3, "node07", 1000, 4, 4.4, 4,
                               0) "]," PH (0.2, 0.3, 8.5, 0,
                                           0.1) "," TOT (9.1) "}",
     DC_BN_STRAGGLER,
     3,
     {"rank 3 on node07 was 2.1x slower than the median", NULL}},
    /* 8: compute-bound, with a split */
    {INFER RP (0, "a", 1000, 9, 0.5, 9, 0.5) "," RP (
         1, "b", 1000, 9, 0.5, 9,
         0.5) "]," PH (0.2, 0.3, 10, 0, 0.1) "," IO ("direct", "auto", 0,
                                                     0) "," TOT (10.6) "}",
     DC_BN_COMPUTE,
     -1,
     {"compute-bound: the compute phase took 94% of the wall time, computing "
      "was 90% of the ranks' busy time, the ranks within 10% of each other",
      NULL}},
    /* 9: an old report (no "io"): the coordinator's relay */
    {INFER RK (0, "a", 1000, 1) "," RK (1, "b", 1000, 1) "]," PH (
         0.1, 0.1, 9.6, 0, 0.2) "," TOT (10) "}",
     DC_BN_RELAY,
     -1,
     {"the coordinator's relay took 86% of the wall time", "--io direct"}},
    /* 10: an old report without phases, even ranks */
    {INFER RK (0, "a", 1000, 9) "," RK (1, "b", 1000, 9.2) "]," TOT (10) "}",
     DC_BN_COMPUTE,
     -1,
     {"compute-bound: the ranks within 10% of each other", NULL}},
    /* 11: one process: no "within" */
    {INFER RP (0, "vm", 6000, 0.9, 0, 0.9, 0) "]," PH (0, 0.05, 0.9, 0,
                                                       0.05) "," TOT (1) "}",
     DC_BN_COMPUTE,
     -1,
     {"computing was 100% of the ranks' busy time (faster devices", NULL}},
    /* 12: "rank_io" without rank phases: the split from it */
    {INFER RK (0, "a", 1000, 1) "," RK (1, "b", 1000, 1) "]," PH (
         0.2, 0.3, 4.1, 0,
         0.1) ",'distributed':{'io':'direct','rank_io':[{'io':"
              "'direct','read':3,'compute':1,'write':0},{'io':"
              "'direct','read':3,'compute':1,'write':0}]}," TOT (5) "}",
     DC_BN_READ,
     -1,
     {"reading the input took 75% of the ranks' busy time", NULL}},
    /* 13: a rank that never became ready ("none") did no rows */
    {INFER RP (0, "a", 1000, 4, 0, 4, 0) "," RK (1, "b", 0, 0) "]," PH (
         0.2, 0.3, 4.2, 0,
         0.1) ",'distributed':{'io':'direct','rank_io':[{'io':"
              "'direct','read':0,'compute':4,'write':0},{'io':"
              "'none','read':0,'compute':0,'write':0}]}," TOT (5) "}",
     DC_BN_IDLE,
     1,
     {"1 of 2 ranks did no rows (rank 1 on b first, not ready before the "
      "work ended)",
      NULL}},
    /* 14: exec: no compute, no bottleneck */
    {"{'command':'exec','ranks':[{'rank':0,'host':'a','status':0,'start':0,"
     "'end':1},{'rank':1,'host':'b','status':0,'start':0,'end':1.05}],"
     "'totals':{'seconds':1.05}}",
     DC_BN_NONE,
     -1,
     {"no bottleneck: ranks within 10% of each other", NULL}},
    /* 15: train: one rank listed of four, load dominates */
    {"{'command':'train','ranks':[" RK (0, "vm", 6000, 0.1) "]," PH (
         0, 0.8, 0.1, 0,
         0.01) ",'distributed':{'ranks':4,'lost_workers':''}," TOT (1) "}",
     DC_BN_PHASE,
     -1,
     {"load took 80% of the wall time", NULL}},
};

START_TEST (test_rules)
{
    struct dc_report_view *v = view (cases[_i].json);

    ck_assert_msg (v->kind == cases[_i].kind, "case %d: kind %d: %s", _i,
                   v->kind, v->bottleneck);
    ck_assert_int_eq (v->culprit, cases[_i].culprit);
    for (int k = 0; k < 2; k++)
        ck_assert_msg (!cases[_i].text[k] ||
                           strstr (v->bottleneck, cases[_i].text[k]),
                       "case %d: %s", _i, v->bottleneck);
    /* the JSON and the SVG of every case */
    char *s = dc_report_view_json (v);
    cJSON *j = cJSON_Parse (s);
    ck_assert_ptr_nonnull (j);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive (j, "bottleneck");
    ck_assert_str_eq (cJSON_GetObjectItemCaseSensitive (b, "text")->valuestring,
                      v->bottleneck);
    cJSON_Delete (j);
    free (s);
    s = dc_report_svg (v);
    ck_assert_ptr_nonnull (s);
    ck_assert_ptr_nonnull (strstr (s, "</svg>\n"));
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

/* the values the table prints */
START_TEST (test_values)
{
    struct dc_report_view *v = view (cases[0].json);

    ck_assert_str_eq (v->io, "relay");
    ck_assert_str_eq (v->io_mode, "relay");
    ck_assert_double_eq (v->relayed_bytes, 2.0 * 805306368);
    ck_assert_double_eq (v->hub_cpu, 2);
    ck_assert_str_eq (v->ranks[1].io, "relay");
    ck_assert (v->ranks[1].has_split);
    ck_assert_double_eq (v->ranks[1].busy, 1);
    ck_assert_double_eq (v->ranks[1].idle, 9);
    ck_assert_double_eq_tol (v->relay, 8.6, 1e-9);
    dc_report_view_destroy (v);

    /* busy from the rank's phases (read + compute + write), idle the rest */
    v = view (cases[7].json);
    ck_assert_double_eq_tol (v->ranks[3].busy, 8.4, 1e-9);
    ck_assert_double_eq_tol (v->ranks[3].idle, 0.7, 1e-9);
    ck_assert_double_eq_tol (v->read_sum, 4.4, 1e-9);
    ck_assert_double_eq_tol (v->busy_sum, 20.4, 1e-9);
    ck_assert_int_eq (v->job_ranks, 4);
    dc_report_view_destroy (v);

    /* "rank_io" only: compute its seconds, busy read + compute + write */
    v = view (cases[12].json);
    ck_assert (v->has_split);
    ck_assert_double_eq (v->ranks[0].busy, 4);
    ck_assert_double_eq (v->ranks[0].read, 3);
    ck_assert_double_eq (v->ranks[0].compute, 1);
    ck_assert_double_eq (v->relayed_bytes, -1); /* not said */
    dc_report_view_destroy (v);

    /* an old report: no split, no way, busy its seconds */
    v = view (cases[10].json);
    ck_assert (!v->has_split);
    ck_assert_str_eq (v->io, "");
    ck_assert_str_eq (v->ranks[0].io, "");
    ck_assert_double_eq (v->ranks[1].busy, 9.2);
    ck_assert_double_eq (v->hub_cpu, -1);
    ck_assert_double_eq (v->relayed_bytes, -1);
    char *s = dc_report_view_json (v);
    ck_assert_ptr_null (strstr (s, "\"io\""));
    ck_assert_ptr_null (strstr (s, "\"ranks_busy\""));
    free (s);
    dc_report_view_destroy (v);

    /* a layer layout: every row through both stages, the totals count
     * them once: each stage's share is all of them */
    v = view (
        "{\"command\": \"infer\", \"layout\": \"layers\", "
        "\"totals\": {\"seconds\": 2, \"rows\": 100}, \"ranks\": ["
        "{\"rank\": 0, \"host\": \"a\", \"rows\": 100, \"seconds\": 1},"
        "{\"rank\": 1, \"host\": \"b\", \"rows\": 100, \"seconds\": 0.5}]}");
    ck_assert_double_eq (v->total_rows, 100);
    ck_assert_double_eq (v->ranks[0].share, 1);
    ck_assert_double_eq (v->ranks[1].share, 1);
    ck_assert_double_eq (v->ranks[1].idle, 1.5);
    dc_report_view_destroy (v);

    /* train: the job's ranks beyond those listed */
    v = view (cases[15].json);
    ck_assert_int_eq (v->nranks, 1);
    ck_assert_int_eq (v->job_ranks, 4);
    s = dc_report_view_json (v);
    ck_assert_ptr_nonnull (strstr (s, "\"job_ranks\":\t4"));
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

/* "rank_io" is in rank order: mapped by rank number, whatever the order
 * of "ranks"; extra entries and rank numbers out of range ignored */
START_TEST (test_rank_io_order)
{
    struct dc_report_view *v =
        view (INFER RK (2, "c", 10, 1) "," RK (0, "a", 10, 1) "," RK (
            1, "b", 10, 1) "," RK (77, "z", 10,
                                   1) "]," TOT (2) ",'distributed':{'io':"
                                                   "'mixed','rank_io':[{'io':"
                                                   "'direct'},{'io':'relay'},{"
                                                   "'io':'none'},{'io':7},{"
                                                   "'io':'x'},{'io':'y'}]}}");

    ck_assert_str_eq (v->ranks[0].io, "none");   /* rank 2 */
    ck_assert_str_eq (v->ranks[1].io, "direct"); /* rank 0 */
    ck_assert_str_eq (v->ranks[2].io, "relay");  /* rank 1 */
    ck_assert_str_eq (v->ranks[3].io, "");       /* rank 77: not in it */
    ck_assert (!v->ranks[0].has_split);          /* no read/write numbers */
    dc_report_view_destroy (v);
}
END_TEST

/* bad members: refused with "R.json: reason" */
static const struct {
    const char *json;
    const char *reason; /* as it is: not through q() */
} bad_cases[] = {
    {INFER RK (0, "a", 1, 1) "]," TOT (1) ",'distributed':3}",
     "\"distributed\" is not an object"},
    {INFER RK (0, "a", 1, 1) "]," TOT (1) ",'distributed':{'rank_io':{}}}",
     "\"rank_io\" is not a list"},
    {INFER RK (0, "a", 1, 1) "]," TOT (1) ",'distributed':{'rank_io':[3]}}",
     "\"rank_io\"[0] is not an object"},
    {INFER
     "{'rank':0,'host':'a','rows':1,'seconds':1,'phases':[]}]," TOT (1) "}",
     "rank 0: \"phases\" is not an object"},
    {INFER
     "{'rank':0,'host':'a','rows':1,'seconds':1,'phases':{'read':1}}]," TOT (
         1) "}",
     "rank 0: \"phases\" without \"read\", \"compute\" and \"write\""},
    {INFER "{'rank':0,'host':'a','rows':1,'seconds':1,'phases':{'read':-1,"
           "'compute':1,'write':0}}]," TOT (1) "}",
     "without \"read\""},
    {INFER "{'rank':0,'host':'a','rows':1,'seconds':1,'chunks':[{'start':0,"
           "'end':1,'phases':5}]}]," TOT (1) "}",
     "rank 0: a chunk's \"phases\" is not an object"},
    {INFER "{'rank':0,'host':'a','rows':1,'seconds':1,'chunks':[{'start':0,"
           "'end':1,'phases':{'read':1}}]}]," TOT (1) "}",
     "rank 0: a chunk's \"phases\" without a \"start\""},
    /* numbers no run has: refused, so that sums stay finite */
    {INFER RK (0, "a", 1e300, 1) "]," TOT (1) "}",
     "rank 0: no \"rows\" or \"seconds\""},
    {INFER RK (0, "a", 1, 1) "]," TOT (1e19) "}", "no \"totals\".\"seconds\""},
};

START_TEST (test_bad)
{
    dc_error_t err = {.text = ""};
    const char *js = q (bad_cases[_i].json);
    const char *want = bad_cases[_i].reason;
    ck_assert_ptr_null (dc_report_view_parse (js, strlen (js), "R.json", &err));
    ck_assert_msg (!strncmp (err.text, "R.json: ", 8) &&
                       strstr (err.text, want),
                   "case %d: %s", _i, err.text);
}
END_TEST

/* texts from the report made printable: control bytes, bytes that are not
 * well-formed UTF-8, C1 controls, U+FFFE; good UTF-8 kept */
static const struct {
    const char *host; /* raw bytes inside the JSON string */
    const char *want;
} text_cases[] = {
    {"node01", "node01"},
    {"n\\u001b[31mred", "n?[31mred"},
    {"tab\\there", "tab?here"},
    {"n\xc3\xb6"
     "de",
     "n\xc3\xb6"
     "de"}, /* good: kept */
    {"\xe2\x82\xac\xf0\x9f\x98\x80", "\xe2\x82\xac\xf0\x9f\x98\x80"},
    {"a\xff"
     "b",
     "a?b"}, /* not UTF-8 */
    {"a\xc0\xaf"
     "b",
     "a??b"}, /* overlong */
    {"a\xed\xa0\x80"
     "b",
     "a???b"}, /* a surrogate */
    {"a\xef\xbf\xbe"
     "b",
     "a???b"}, /* U+FFFE */
    {"a\xc2\x9b"
     "b",
     "a??b"},                       /* C1 CSI */
    {"a\xe2\x82", "a??"},           /* cut */
    {"a\xf4\x90\x80\x80", "a????"}, /* past U+10FFFF */
    {"", ""},
};

START_TEST (test_printable)
{
    char js[512];

    snprintf (js, sizeof (js),
              "{'command':'infer','ranks':[{'rank':0,'host':'%s','device':"
              "'%s','rows':1,'seconds':1}],'totals':{'seconds':1},"
              "'distributed':{'lost_workers':[{'rank':0,'reason':'%s'}]}}",
              text_cases[_i].host, text_cases[_i].host, text_cases[_i].host);
    struct dc_report_view *v = view (js);
    ck_assert_str_eq (v->ranks[0].host, text_cases[_i].want);
    ck_assert_str_eq (v->ranks[0].lost_reason,
                      text_cases[_i].host[0] ? text_cases[_i].want : "");
    if (text_cases[_i].host[0])
        ck_assert_str_eq (v->ranks[0].device, text_cases[_i].want);
    dc_report_view_destroy (v);
}
END_TEST

/* a host longer than the field: cut, and the cut never leaves half a
 * character */
START_TEST (test_printable_cut)
{
    char js[2048], host[700] = "";

    for (int i = 0; i < 300; i++)
        strcat (host, "\xc3\xa9"); /* é: 600 bytes */
    snprintf (js, sizeof (js),
              "{'command':'infer','ranks':[{'rank':0,'host':'%s','rows':1,"
              "'seconds':1}],'totals':{'seconds':1}}",
              host);
    struct dc_report_view *v = view (js);
    size_t n = strlen (v->ranks[0].host);
    ck_assert_uint_eq (n, 255);
    ck_assert_int_eq (v->ranks[0].host[n - 1], '?'); /* half an é */
    ck_assert_int_eq ((unsigned char)v->ranks[0].host[n - 2], 0xa9);
    dc_report_view_destroy (v);
}
END_TEST

/* every <title> of the SVG holds escaped text only */
static void titles_escaped (const char *svg)
{
    const char *p = svg;
    int n = 0;

    while ((p = strstr (p, "<title>"))) {
        const char *e = strstr (p, "</title>");
        ck_assert_ptr_nonnull (e);
        for (const char *c = p + 7; c < e; c++) {
            ck_assert_msg (*c != '<' && *c != '>' && *c != '"',
                           "raw markup in a title: %.60s", p);
            if (*c == '&')
                ck_assert_msg (
                    !strncmp (c, "&amp;", 5) || !strncmp (c, "&lt;", 4) ||
                        !strncmp (c, "&gt;", 4) || !strncmp (c, "&quot;", 6),
                    "a bare & in a title: %.60s", p);
        }
        p = e;
        n++;
    }
    ck_assert_int_gt (n, 0);
}

START_TEST (test_svg_escape)
{
    /* an exec rank that failed to start with markup in its reason: the
     * tooltip escapes it */
    struct dc_report_view *v = view (
        "{'command':'exec','ranks':[{'rank':0,'host':'a<i>','failed_start':"
        "'<b>&\\'x</b>','start':0,'end':1}],'totals':{'seconds':1}}");
    char *s = dc_report_svg (v);

    ck_assert_ptr_nonnull (s);
    ck_assert_ptr_null (strstr (s, "<b>"));
    ck_assert_ptr_null (strstr (s, "<i>"));
    ck_assert_ptr_nonnull (
        strstr (s, "failed to start: &lt;b&gt;&amp;&quot;x"));
    titles_escaped (s);
    free (s);
    dc_report_view_destroy (v);

    /* an infer rank's way, why and lost reason with markup */
    v = view (INFER RP (0, "h&1", 1, 1, 0, 1, 0) "]," TOT (
        1) ",'distributed':{'io':'<x>','rank_io':[{'io':'a<b','why':'<&>'}],"
           "'lost_workers':[{'rank':0,'reason':'</text><script>'}]}}");
    s = dc_report_svg (v);
    ck_assert_ptr_null (strstr (s, "<script>"));
    ck_assert_ptr_null (strstr (s, "a<b"));
    ck_assert_ptr_nonnull (strstr (s, "h&amp;1 (a&lt;b)"));
    titles_escaped (s);
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

static int count (const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr (p, what)); p++)
        n++;
    return n;
}

/* chunks with phases: one segment per phase that took time; a chunk
 * without phases: its compute; the rank's way on its label */
START_TEST (test_svg_phases)
{
    struct dc_report_view *v = view (
        INFER "{'rank':0,'host':'a','rows':2,'seconds':0.4,'chunks':["
              "{'id':0,'start':0.1,'end':0.5,'compute':0.2,'phases':{'start':"
              "0.15,'read':0.05,'copy_in':0,'compute':0.2,'copy_out':0,"
              "'write':0.1}},"
              "{'id':1,'start':0.5,'end':0.9,'compute':0.2,'phases':{'start':"
              "0.5,'read':0.1,'copy_in':0.01,'compute':0.2,'copy_out':0.01,"
              "'write':0}},"
              "{'id':2,'start':0.9,'end':1.0,'compute':0.05},"
              "{'id':3,'start':1.0,'end':null,'compute':null}]}]," PH (
                  0.05, 0.05, 1, 0,
                  0) "," TOT (1.2) ",'distributed':{'io':'direct','rank_io':"
                                   "[{'io':'direct','read':0.15,'compute':0.4,"
                                   "'write':0.1}]}}");
    char *s = dc_report_svg (v);

    ck_assert_uint_eq (v->nspans, 4);
    ck_assert (v->spans[0].has_phases && !v->spans[2].has_phases);
    ck_assert_double_eq (v->spans[0].pstart, 0.15);
    ck_assert_int_eq (count (s, "<title>chunk read "), 2);
    ck_assert_int_eq (count (s, "<title>chunk copy_in "), 1);
    ck_assert_int_eq (count (s, "<title>chunk compute "), 3);
    ck_assert_int_eq (count (s, "<title>chunk write "), 1);
    ck_assert_int_eq (count (s, "no result"), 1);
    ck_assert_int_eq (count (s, ">rank 0 @ a (direct)<"), 1);
    ck_assert_int_eq (count (s, ">read (rank)<"), 1);
    titles_escaped (s);
    free (s);
    dc_report_view_destroy (v);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("report_read");
    TCase *tc = tcase_create ("report_read");

    tcase_add_loop_test (tc, test_rules, 0, sizeof (cases) / sizeof (*cases));
    tcase_add_test (tc, test_values);
    tcase_add_test (tc, test_rank_io_order);
    tcase_add_loop_test (tc, test_bad, 0,
                         sizeof (bad_cases) / sizeof (*bad_cases));
    tcase_add_loop_test (tc, test_printable, 0,
                         sizeof (text_cases) / sizeof (*text_cases));
    tcase_add_test (tc, test_printable_cut);
    tcase_add_test (tc, test_svg_escape);
    tcase_add_test (tc, test_svg_phases);
    tcase_add_checked_fixture (tc, setup, teardown);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
