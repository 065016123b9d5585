/* test_plan.c - rank maps */
#include <string.h>

#include "check_main.h"
#include "lib/hosts/hostfile.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/sources.h"

/* Each case: hostfile text, options, and the expected "host:local:node"
 * of every rank joined by spaces, or an error word. */
static const struct {
    const char *hosts;
    long np;
    enum dc_map_by map_by;
    bool over;
    const char *want;
} cases[] = {
    {"a slots=2\nb slots=2\n", 0, DC_MAP_BY_SLOT, false,
     "a:0:0 a:1:0 b:0:1 b:1:1"},
    {"a slots=2\nb slots=2\n", 3, DC_MAP_BY_SLOT, false, "a:0:0 a:1:0 b:0:1"},
    {"a slots=2\nb slots=2\n", 0, DC_MAP_BY_NODE, false,
     "a:0:0 b:0:1 a:1:0 b:1:1"},
    {"a slots=1\nb slots=3\n", 4, DC_MAP_BY_NODE, false,
     "a:0:0 b:0:1 b:1:1 b:2:1"},
    {"a slots=2\nb slots=2\n", 1, DC_MAP_BY_SLOT, false, "a:0:0"},
    {"a slots=2\nb slots=2\n", 2, DC_MAP_BY_NODE, false, "a:0:0 b:0:1"},
    {"a slots=1\nb slots=1\n", 3, DC_MAP_BY_SLOT, false, "ERR more than"},
    {"a slots=1\nb slots=1\n", 3, DC_MAP_BY_SLOT, true, "a:0:0 b:0:1 a:1:0"},
    {"a slots=1\nb slots=1\n", 3, DC_MAP_BY_NODE, true, "a:0:0 b:0:1 a:1:0"},
    {"a slots=1 max_slots=1\nb slots=1\n", 3, DC_MAP_BY_SLOT, true,
     "a:0:0 b:0:1 b:1:1"},
    {"a slots=1 max_slots=1\n", 2, DC_MAP_BY_SLOT, true, "ERR max_slots"},
    /* a host without ranks does not get a node rank */
    {"a slots=2\nb slots=2\nc slots=1\n", 2, DC_MAP_BY_SLOT, false,
     "a:0:0 a:1:0"},
};

START_TEST (t_cases)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse (
        cases[_i].hosts, strlen (cases[_i].hosts), "p", &err);
    struct dc_plan_opts o = {
        .np = cases[_i].np,
        .map_by = cases[_i].map_by,
        .oversubscribe = cases[_i].over,
    };
    struct dc_plan *p;
    char got[512] = "";

    ck_assert_msg (h != NULL, "%s", err.text);
    p = dc_plan_create (h, &o, &err);
    if (!strncmp (cases[_i].want, "ERR ", 4)) {
        ck_assert_msg (p == NULL, "case %d should fail", _i);
        ck_assert_msg (strstr (err.text, cases[_i].want + 4), "%s", err.text);
        dc_hosts_destroy (h);
        return;
    }
    ck_assert_msg (p != NULL, "%s", err.text);
    for (int r = 0; r < p->size; r++) {
        char one[64];
        ck_assert_int_eq (p->ranks[r].rank, r);
        snprintf (one, sizeof (one), "%s%s:%d:%d", r ? " " : "",
                  dc_plan_host (p, r), p->ranks[r].local_rank,
                  p->ranks[r].node_rank);
        strcat (got, one);
    }
    ck_assert_str_eq (got, cases[_i].want);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}
END_TEST

START_TEST (t_local_size)
{
    const char *text = "a slots=3\nb slots=2\n";
    dc_error_t err;
    struct dc_hosts *h = dc_hostfile_parse (text, strlen (text), "p", &err);
    struct dc_plan_opts o = {0};
    struct dc_plan *p = dc_plan_create (h, &o, &err);

    ck_assert_int_eq (p->size, 5);
    ck_assert_int_eq (p->nnodes, 2);
    ck_assert_int_eq (p->ranks[0].local_size, 3);
    ck_assert_int_eq (p->ranks[4].local_size, 2);
    ck_assert_ptr_null (dc_plan_host (p, 5));
    ck_assert_ptr_null (dc_plan_host (p, -1));
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}
END_TEST

/* GPUs: from gpus= (split across slots), or from a probed count. */
START_TEST (t_gpus)
{
    const char *text = "a slots=4 gpus=0-7\nb slots=2 gpus=3\nc slots=4\n";
    dc_error_t err;
    struct dc_hosts *h = dc_hostfile_parse (text, strlen (text), "p", &err);
    struct dc_plan_opts o = {0};
    struct dc_plan *p = dc_plan_create (h, &o, &err);

    ck_assert_ptr_nonnull (p);
    /* 8 GPUs over 4 slots: two each, in order */
    ck_assert_int_eq (p->ranks[0].ngpus, 2);
    ck_assert_int_eq (p->ranks[0].gpus[0], 0);
    ck_assert_int_eq (p->ranks[0].gpus[1], 1);
    ck_assert_int_eq (p->ranks[3].gpus[0], 6);
    ck_assert_int_eq (p->ranks[3].gpus[1], 7);
    /* one GPU shared by both ranks of b */
    ck_assert_int_eq (p->ranks[4].ngpus, 1);
    ck_assert_int_eq (p->ranks[5].gpus[0], 3);
    /* c: unknown until probed, then local rank mod count */
    ck_assert_int_eq (p->ranks[6].ngpus, 0);
    ck_assert_int_eq (dc_plan_set_host_gpus (p, 2, 2, &err), 0);
    ck_assert_int_eq (p->ranks[6].gpus[0], 0);
    ck_assert_int_eq (p->ranks[7].gpus[0], 1);
    ck_assert_int_eq (p->ranks[8].gpus[0], 0);
    ck_assert_int_eq (p->ranks[9].gpus[0], 1);
    /* the hostfile's gpus= wins over a probed count */
    ck_assert_int_eq (dc_plan_set_host_gpus (p, 1, 8, &err), 0);
    ck_assert_int_eq (p->ranks[4].gpus[0], 3);
    ck_assert_int_eq (dc_plan_set_host_gpus (p, 9, 1, &err), -1);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}
END_TEST

START_TEST (t_hostile)
{
    dc_error_t err;
    struct dc_plan_opts o = {0};
    struct dc_hosts *empty = dc_hosts_create ("empty");

    ck_assert_ptr_null (dc_plan_create (NULL, &o, &err));
    ck_assert_ptr_null (dc_plan_create (empty, &o, &err));
    ck_assert_ptr_null (dc_plan_create (empty, NULL, &err));
    dc_plan_destroy (NULL);
    struct dc_hosts *h = dc_hosts_parse_list ("a", &err);
    o.np = -3;
    ck_assert_ptr_null (dc_plan_create (h, &o, &err));
    o.np = DC_MAX_SLOTS + 1;
    o.oversubscribe = true;
    ck_assert_ptr_null (dc_plan_create (h, &o, &err));
    dc_hosts_destroy (h);
    dc_hosts_destroy (empty);
}
END_TEST

/* slots_default: which hosts get their slots from a probe */
START_TEST (t_slots_default)
{
    static const struct {
        const char *text; /* -H list, or a hostfile when it has a newline */
        const char *want; /* slots_default of each host, '1' or '0' */
    } cases[] = {
        {"a", "1"},
        {"a:1", "0"},
        {"a,b:2,c", "101"},
        {"a,a", "0"}, /* named twice: 2 slots, given */
        {"n[1-3]", "111"},
        {"u@a", "1"},
        {"a\n", "1"},
        {"a slots=1\n", "0"},
        {"a:4\n", "0"},
        {"u@a:2222\n", "1"}, /* a port, not slots */
        {"a gpus=0,1\n", "0"},
        {"a max_slots=4\nb slots=2\n", "10"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        dc_error_t err = {{0}};
        const char *t = cases[i].text;
        struct dc_hosts *h = strchr (t, '\n')
                                 ? dc_hostfile_parse (t, strlen (t), "t", &err)
                                 : dc_hosts_parse_list (t, &err);
        char got[16] = "";
        ck_assert_msg (h != NULL, "case %zu: %s", i, err.text);
        for (size_t k = 0; k < h->count && k < sizeof (got) - 1; k++)
            got[k] = h->v[k].slots_default ? '1' : '0';
        ck_assert_msg (!strcmp (got, cases[i].want), "case %zu '%s': %s", i, t,
                       got);
        dc_hosts_destroy (h);
    }
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("plan");
    TCase *tc = tcase_create ("plan");

    tcase_add_loop_test (tc, t_cases, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_local_size);
    tcase_add_test (tc, t_gpus);
    tcase_add_test (tc, t_hostile);
    tcase_add_test (tc, t_slots_default);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
