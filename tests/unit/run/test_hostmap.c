/* test_hostmap.c - a command's host list and the rank map of `dcrun hosts`
 * (hostmap.h)
 *
 * Host lists as a table: -H with --exclude (some, all, a bad pattern), a
 * bad -H, a missing -f, this host; rank maps on a saved topology (GPUs and
 * CPU sets of every rank, this host with one slot per GPU), the plan's
 * errors prefixed with the subject, a bad placement; this host probed for
 * real when no topology is given.  No environment is read (a getenv that
 * knows nothing), so a Slurm allocation around the test changes nothing.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "gpu/probe.h"
#include "lib/run/hostmap.h"
#include "lib/run/status.h"

static const char *no_env (const char *name)
{
    (void)name;
    return NULL;
}

static const struct {
    const char *hostfile, *hosts, *exclude;
    int status;
    const char *want; /* names joined by ',' or a piece of the error */
} list_cases[] = {
    {NULL, "a:2,b,c", NULL, DC_STATUS_OK, "a,b,c"},
    {NULL, "a:2,b,c", "b", DC_STATUS_OK, "a,c"},
    {NULL, "n[1-4]", "n[2-3]", DC_STATUS_OK, "n1,n4"},
    {NULL, "a,b", "a,b", DC_STATUS_USAGE, "no host of the list"},
    {NULL, "a,b", "x[", DC_STATUS_USAGE, "--exclude"},
    {NULL, "a,b", "", DC_STATUS_USAGE, "--exclude: empty"},
    {NULL, "a[", NULL, DC_STATUS_INPUT, "unbalanced"},
    {NULL, "", NULL, DC_STATUS_INPUT, ""},
    {"/nonexistent/dcrun.hosts", NULL, NULL, DC_STATUS_INPUT, "nonexistent"},
};

START_TEST (test_list)
{
    struct dc_resolve_opts ro = {.hostfile = list_cases[_i].hostfile,
                                 .hosts = list_cases[_i].hosts,
                                 .getenv = no_env};
    dc_error_t err = {.text = ""};
    int status = -1;
    struct dc_hosts *h =
        dc_hostmap_hosts (&ro, list_cases[_i].exclude, &status, &err);

    if (list_cases[_i].status != DC_STATUS_OK) {
        ck_assert_msg (h == NULL, "case %d should fail", _i);
        ck_assert_int_eq (status, list_cases[_i].status);
        ck_assert_msg (strstr (err.text, list_cases[_i].want), "%s", err.text);
        return;
    }
    ck_assert_msg (h != NULL, "%s", err.text);
    char got[256] = "";
    for (size_t i = 0; i < h->count; i++)
        snprintf (got + strlen (got), sizeof (got) - strlen (got), "%s%s",
                  i ? "," : "", h->v[i].name);
    ck_assert_str_eq (got, list_cases[_i].want);
    dc_hosts_destroy (h);
}
END_TEST

static struct dc_topo *fixture (const char *name)
{
    dc_error_t err;
    struct dc_topo *t = dc_probe_host (dc_srcpath (name), &err);
    ck_assert_msg (t != NULL, "%s", err.text);
    return t;
}

START_TEST (test_map_topology)
{
    struct dc_topo *t = fixture ("tests/fixtures/topo-2s-8gpu.xml");
    struct dc_hostmap_opts o = {
        .resolve = {.hosts = "n1:4,n2:4", .getenv = no_env},
        .plan = {.np = 5},
        .topo = t,
    };
    struct dc_hostmap m;
    dc_error_t err;

    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_OK);
    ck_assert_ptr_null (m.probed);
    ck_assert_int_eq (m.plan->size, 5);
    /* four ranks of n1 take two GPUs each; the fifth is n2's first */
    ck_assert_int_eq (m.plan->ranks[0].ngpus, 2);
    ck_assert_int_eq (m.plan->ranks[3].gpus[1], 7);
    ck_assert_str_eq (m.plan->ranks[0].cpus, "0-3,16-19");
    ck_assert_str_eq (m.hosts->v[m.plan->ranks[4].host].name, "n2");
    ck_assert_int_eq (m.plan->ranks[4].node_rank, 1);
    dc_hostmap_destroy (&m);
    ck_assert_ptr_null (m.plan);
    dc_hostmap_destroy (&m); /* twice, and NULL: nothing */
    dc_hostmap_destroy (NULL);

    /* this host: one slot per GPU of the topology */
    o.resolve.hosts = NULL;
    o.plan.np = 0;
    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_OK);
    ck_assert_str_eq (m.hosts->origin, "this host");
    ck_assert_int_eq (m.plan->size, 8);
    ck_assert_int_eq (m.plan->ranks[7].gpus[0], 7);
    dc_hostmap_destroy (&m);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (test_map_errors)
{
    struct dc_topo *t = fixture ("tests/fixtures/topo-nogpu.xml");
    struct dc_hostmap_opts o = {
        .resolve = {.hosts = "a:2", .getenv = no_env},
        .plan = {.np = 3},
    };
    struct dc_hostmap m;
    dc_error_t err;

    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_INPUT);
    ck_assert_ptr_null (m.hosts);
    ck_assert_ptr_null (m.plan);
    ck_assert_msg (!strncmp (err.text, "hosts: -n 3 is more than", 24), "%s",
                   err.text);
    o.subject = "probe";
    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_INPUT);
    ck_assert_msg (!strncmp (err.text, "probe: -n 3", 11), "%s", err.text);
    /* --exclude leaves nothing: a usage error, no prefix */
    o.exclude = "a";
    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_USAGE);
    ck_assert_msg (!strncmp (err.text, "--exclude", 9), "%s", err.text);
    /* oversubscribed on a topology without GPUs: placed round the PUs */
    o.exclude = NULL;
    o.plan.oversubscribe = true;
    o.topo = t;
    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_OK);
    ck_assert_int_eq (m.plan->size, 3);
    ck_assert_int_eq (m.plan->ranks[2].ngpus, 0);
    ck_assert_ptr_nonnull (m.plan->ranks[2].cpus);
    dc_hostmap_destroy (&m);
    dc_topo_destroy (t);
}
END_TEST

/* no topology and the list is this host: it is probed (for real) */
START_TEST (test_map_probed)
{
    struct dc_hostmap_opts o = {.resolve = {.getenv = no_env}};
    struct dc_hostmap m;
    dc_error_t err;

    ck_assert_int_eq (dc_hostmap_create (&m, &o, &err), DC_STATUS_OK);
    ck_assert_ptr_nonnull (m.probed);
    ck_assert_int_eq (m.plan->size, m.probed->ngpus > 0 ? m.probed->ngpus : 1);
    dc_hostmap_destroy (&m);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("hostmap");
    TCase *tc = tcase_create ("hostmap");

    tcase_add_loop_test (tc, test_list, 0,
                         (int)(sizeof (list_cases) / sizeof (list_cases[0])));
    tcase_add_test (tc, test_map_topology);
    tcase_add_test (tc, test_map_errors);
    tcase_add_test (tc, test_map_probed);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
