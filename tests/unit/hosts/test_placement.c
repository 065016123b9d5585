/* test_placement.c - dc_plan_place: GPUs and CPU sets from a topology */
#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "gpu/probe.h"
#include "lib/hosts/hostfile.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/topo.h"

#define FIX(name) dc_srcpath ("tests/fixtures/" name)

static struct dc_topo *load (const char *path)
{
    dc_error_t err = {{0}};
    struct dc_topo *t = dc_probe_host (path, &err);
    ck_assert_msg (t != NULL, "%s: %s", path, err.text);
    return t;
}

/* Plan np ranks on -H list, place every host on topo. */
static struct dc_plan *place (const char *list, long np, bool over,
                              const struct dc_topo *t, struct dc_hosts **hp)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hosts_parse_list (list, &err);
    struct dc_plan_opts o = {.np = np, .oversubscribe = over};
    struct dc_plan *p;

    ck_assert_msg (h != NULL, "%s", err.text);
    p = dc_plan_create (h, &o, &err);
    ck_assert_msg (p != NULL, "%s", err.text);
    for (size_t i = 0; i < h->count; i++)
        ck_assert_msg (dc_plan_place (p, i, t, &err) == 0, "%s", err.text);
    *hp = h;
    return p;
}

static hwloc_bitmap_t bm (const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc ();
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (hwloc_bitmap_list_sscanf (b, s), 0);
    return b;
}

/* Every rank: cpus within its GPU's cpus, whole cores, and no two ranks of
 * one host overlap when there are enough cores.  Returns the PUs each rank
 * got (all equal in the tables below). */
static int check_placement (const struct dc_plan *p, const struct dc_topo *t,
                            bool disjoint)
{
    int pus = -1;
    for (int r = 0; r < p->size; r++) {
        const struct dc_rank *rk = &p->ranks[r];
        hwloc_bitmap_t c = bm (rk->cpus);
        for (int i = 0; i < rk->ngpus; i++) {
            int g = dc_topo_find_gpu (t, rk->gpus[i]);
            ck_assert_int_ge (g, 0);
            hwloc_bitmap_t gb = bm (t->gpus[g].cpus);
            ck_assert_msg (hwloc_bitmap_isincluded (c, gb),
                           "rank %d cpus %s outside GPU %d's %s", r, rk->cpus,
                           rk->gpus[i], t->gpus[g].cpus);
            hwloc_bitmap_free (gb);
        }
        /* whole cores: a core is in or out */
        for (int k = 0; k < t->cores; k++) {
            hwloc_bitmap_t cb = bm (t->core_cpus[k]);
            ck_assert (!hwloc_bitmap_intersects (c, cb) ||
                       hwloc_bitmap_isincluded (cb, c));
            hwloc_bitmap_free (cb);
        }
        for (int s = 0; disjoint && s < r; s++) {
            if (p->ranks[s].host != rk->host)
                continue;
            hwloc_bitmap_t d = bm (p->ranks[s].cpus);
            ck_assert_msg (!hwloc_bitmap_intersects (c, d),
                           "ranks %d (%s) and %d (%s) overlap", s,
                           p->ranks[s].cpus, r, rk->cpus);
            hwloc_bitmap_free (d);
        }
        if (r == 0)
            pus = hwloc_bitmap_weight (c);
        else
            ck_assert_int_eq (hwloc_bitmap_weight (c), pus);
        hwloc_bitmap_free (c);
    }
    return pus;
}

START_TEST (t_eight_ranks_eight_gpus)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    struct dc_hosts *h;
    struct dc_plan *p = place ("gpu8:8", 0, false, t, &h);
    int seen[8] = {0};

    ck_assert_int_eq (p->size, 8);
    for (int r = 0; r < 8; r++) {
        ck_assert_int_eq (p->ranks[r].ngpus, 1);
        seen[p->ranks[r].gpus[0]]++;
    }
    for (int g = 0; g < 8; g++)
        ck_assert_int_eq (seen[g], 1); /* distinct GPUs */
    /* 8 cores per socket, 4 ranks per socket: 2 cores (4 PUs) each */
    ck_assert_int_eq (check_placement (p, t, true), 4);
    ck_assert_str_eq (p->ranks[0].cpus, "0-1,16-17");
    ck_assert_str_eq (p->ranks[4].cpus, "8-9,24-25");
    ck_assert_str_eq (p->ranks[7].cpus, "14-15,30-31");
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_sixteen_ranks_eight_gpus)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    struct dc_hosts *h;
    struct dc_plan *p = place ("gpu8:16", 0, false, t, &h);
    int seen[8] = {0};

    for (int r = 0; r < 16; r++) {
        ck_assert_int_eq (p->ranks[r].ngpus, 1);
        seen[p->ranks[r].gpus[0]]++;
    }
    for (int g = 0; g < 8; g++)
        ck_assert_int_eq (seen[g], 2); /* shared two by two */
    /* 8 ranks per socket of 8 cores: one core (2 PUs) each, disjoint */
    ck_assert_int_eq (check_placement (p, t, true), 2);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_two_ranks_eight_gpus)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    struct dc_hosts *h;
    struct dc_plan *p = place ("gpu8:2", 0, false, t, &h);

    /* more GPUs than slots: 4 GPUs per rank, one socket each */
    ck_assert_int_eq (p->ranks[0].ngpus, 4);
    ck_assert_int_eq (p->ranks[1].gpus[0], 4);
    ck_assert_str_eq (p->ranks[0].cpus, "0-7,16-23");
    ck_assert_str_eq (p->ranks[1].cpus, "8-15,24-31");
    check_placement (p, t, true);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_no_gpu_host)
{
    struct dc_topo *t = load (FIX ("topo-nogpu.xml"));
    struct dc_hosts *h;
    struct dc_plan *p = place ("a:2,b:4", 0, false, t, &h);

    for (int r = 0; r < p->size; r++)
        ck_assert_int_eq (p->ranks[r].ngpus, 0);
    ck_assert_str_eq (p->ranks[0].cpus, "0-1");
    ck_assert_str_eq (p->ranks[1].cpus, "2-3");
    ck_assert_str_eq (p->ranks[2].cpus, "0"); /* host b: its own cores */
    ck_assert_str_eq (p->ranks[5].cpus, "3");
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_oversubscribed)
{
    struct dc_topo *t = load (FIX ("topo-nogpu.xml"));
    struct dc_hosts *h;
    struct dc_plan *p = place ("a:4", 10, true, t, &h);

    /* 10 ranks on 4 cores: one core each, round-robin */
    for (int r = 0; r < 10; r++) {
        char want[8];
        snprintf (want, sizeof (want), "%d", p->ranks[r].local_rank % 4);
        ck_assert_str_eq (p->ranks[r].cpus, want);
    }
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_hostfile_gpus_win)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    const char *text = "n1 slots=2 gpus=5,6\nn2 slots=1 gpus=9\n";
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse (text, strlen (text), "hf", &err);
    struct dc_plan_opts o = {0};
    struct dc_plan *p;

    ck_assert_msg (h != NULL, "%s", err.text);
    p = dc_plan_create (h, &o, &err);
    ck_assert_ptr_nonnull (p);
    ck_assert_int_eq (dc_plan_place (p, 0, t, &err), 0);
    ck_assert_int_eq (p->ranks[0].gpus[0], 5);
    ck_assert_int_eq (p->ranks[1].gpus[0], 6);
    ck_assert_str_eq (p->ranks[0].cpus, "8-11,24-27"); /* GPU 5's socket */
    ck_assert_str_eq (p->ranks[1].cpus, "12-15,28-31");
    /* gpus=9 on an 8-GPU host */
    errno = 0;
    ck_assert_int_eq (dc_plan_place (p, 1, t, &err), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_ptr_nonnull (strstr (err.text, "n2: gpus= names GPU 9 but the "
                                             "host has 8 GPUs"));
    ck_assert_int_eq (p->ranks[2].gpus[0], 9); /* left as it was */
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

/* A topology that came as JSON without core_cpus: one core per PU. */
START_TEST (t_from_json_without_cores)
{
    const char *s =
        "{\"host\":\"r\",\"packages\":1,\"numa_nodes\":1,\"cores\":2,"
        "\"pus\":4,\"memory_bytes\":1,\"cpus\":\"0-3\",\"gpus\":[{\"index\":0,"
        "\"model\":\"m\",\"memory_bytes\":null,\"pci_bus_id\":null,"
        "\"numa_node\":null,\"cpus\":null}]}";
    dc_error_t err = {{0}};
    struct dc_topo *t = dc_topo_from_json (s, strlen (s), "r", &err);
    struct dc_hosts *h;
    struct dc_plan *p;

    ck_assert_msg (t != NULL, "%s", err.text);
    p = place ("r:2", 0, false, t, &h);
    /* the GPU's locality is unknown: the whole host, split */
    ck_assert_int_eq (p->ranks[0].gpus[0], 0);
    ck_assert_int_eq (p->ranks[1].gpus[0], 0);
    ck_assert_str_eq (p->ranks[0].cpus, "0-1");
    ck_assert_str_eq (p->ranks[1].cpus, "2-3");
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_bad_topology)
{
    const char *s =
        "{\"host\":\"r\",\"packages\":1,\"numa_nodes\":1,\"cores\":1,"
        "\"pus\":1,\"memory_bytes\":1,\"cpus\":\"zz\",\"gpus\":[]}";
    dc_error_t err = {{0}};
    struct dc_topo *t = dc_topo_from_json (s, strlen (s), "r", &err);
    struct dc_hosts *h = dc_hosts_parse_list ("r:1", &err);
    struct dc_plan_opts o = {0};
    struct dc_plan *p = dc_plan_create (h, &o, &err);

    ck_assert_ptr_nonnull (t);
    ck_assert_int_eq (dc_plan_place (p, 0, t, &err), -1);
    ck_assert_ptr_nonnull (strstr (err.text, "r: topology:"));
    errno = 0;
    ck_assert_int_eq (dc_plan_place (NULL, 0, t, &err), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (dc_plan_place (p, 0, NULL, &err), -1);
    ck_assert_int_eq (dc_plan_place (p, 7, t, &err), -1);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_real_dgx2)
{
    const char *path =
        dc_srcpath ("../shared/topologies/nvidia-dgx2-16xV100.xml");
    struct dc_topo *t;
    struct dc_hosts *h;
    struct dc_plan *p;

    if (access (path, R_OK) != 0) {
        printf ("# skipped: %s not present\n", path);
        return;
    }
    t = load (path);
    p = place ("dgx:16", 0, false, t, &h);
    for (int r = 0; r < 16; r++) {
        ck_assert_int_eq (p->ranks[r].gpus[0], r);
        /* 8 ranks on 2 cores per socket: ranks share cores, on the
         * GPU's socket */
        ck_assert_str_eq (p->ranks[r].cpus,
                          r < 8 ? (r % 2 ? "1" : "0") : (r % 2 ? "25" : "24"));
    }
    check_placement (p, t, false);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
    dc_topo_destroy (t);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("placement");
    TCase *tc = tcase_create ("place");
    tcase_add_test (tc, t_eight_ranks_eight_gpus);
    tcase_add_test (tc, t_sixteen_ranks_eight_gpus);
    tcase_add_test (tc, t_two_ranks_eight_gpus);
    tcase_add_test (tc, t_no_gpu_host);
    tcase_add_test (tc, t_oversubscribed);
    tcase_add_test (tc, t_hostfile_gpus_win);
    tcase_add_test (tc, t_from_json_without_cores);
    tcase_add_test (tc, t_bad_topology);
    tcase_add_test (tc, t_real_dgx2);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
