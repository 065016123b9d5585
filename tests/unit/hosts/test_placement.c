/* test_placement.c - dc_plan_place: GPUs and CPU sets from a topology */
#include <errno.h>
#include <hwloc.h>
#include <stdint.h>
#include <stdio.h>
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

/* True when the GPUs of each rank have one locality (check_placement's
 * "within its GPU's CPUs" then holds). */
static bool one_locality (const struct dc_plan *p, const struct dc_topo *t)
{
    for (int r = 0; r < p->size; r++)
        for (int i = 1; i < p->ranks[r].ngpus; i++) {
            const char *a =
                t->gpus[dc_topo_find_gpu (t, p->ranks[r].gpus[0])].cpus;
            const char *b =
                t->gpus[dc_topo_find_gpu (t, p->ranks[r].gpus[i])].cpus;
            if (!a || !b || strcmp (a, b) != 0)
                return false;
        }
    return true;
}

/* A topology of /work/shared/topologies (or ../shared/topologies of the
 * source tree), NULL when absent. */
static const char *shared_topo (const char *name)
{
    static char buf[4096];
    const char *p = dc_srcpath (name);
    if (access (p, R_OK) == 0)
        return p;
    snprintf (buf, sizeof (buf), "/work/shared/topologies/%s",
              strrchr (name, '/') + 1);
    return access (buf, R_OK) == 0 ? buf : NULL;
}

/* --gpus-per-rank: local rank l gets GPUs l*N .. l*N+N-1 (mod GPUs) */
START_TEST (t_gpus_per_rank)
{
    static const struct {
        const char *list;
        long np;
        int gpr;
        const char *want; /* GPUs of each rank, ";" between ranks */
    } cases[] = {
        {"a:8", 0, 1, "0;1;2;3;4;5;6;7"},
        {"a:4", 0, 1, "0;1;2;3"},
        {"a:4", 0, 2, "0,1;2,3;4,5;6,7"},
        {"a:2", 0, 4, "0,1,2,3;4,5,6,7"},
        {"a:2", 0, 3, "0,1,2;3,4,5"},
        {"a:1", 0, 8, "0,1,2,3,4,5,6,7"},
        {"a:4,b:4", 0, 1, "0;1;2;3;0;1;2;3"},
        {"a:3", 0, 3, "0,1,2;3,4,5;6,7,0"}, /* wraps: 9 > 8 GPUs */
    };
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));

    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        dc_error_t err = {{0}};
        struct dc_hosts *h = dc_hosts_parse_list (cases[i].list, &err);
        struct dc_plan_opts o = {.np = cases[i].np,
                                 .gpus_per_rank = cases[i].gpr};
        struct dc_plan *p;
        char got[256] = "";
        size_t n = 0;
        ck_assert_ptr_nonnull (h);
        ck_assert_msg ((p = dc_plan_create (h, &o, &err)) != NULL, "%s",
                       err.text);
        for (size_t k = 0; k < h->count; k++)
            ck_assert_msg (dc_plan_place (p, k, t, &err) == 0, "%s", err.text);
        for (int r = 0; r < p->size; r++)
            for (int g = 0; g < p->ranks[r].ngpus; g++)
                n += (size_t)snprintf (got + n, sizeof (got) - n, "%s%d",
                                       g ? "," : (r ? ";" : ""),
                                       p->ranks[r].gpus[g]);
        ck_assert_msg (!strcmp (got, cases[i].want), "case %zu: %s, want %s", i,
                       got, cases[i].want);
        if (one_locality (p, t))
            check_placement (p, t, true);
        dc_plan_destroy (p);
        dc_hosts_destroy (h);
    }
    /* out of range: an error, no plan */
    static const int bad[] = {-1, DC_TOPO_MAX_GPUS + 1, INT32_MIN};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        dc_error_t err = {{0}};
        struct dc_hosts *h = dc_hosts_parse_list ("a:2", &err);
        struct dc_plan_opts o = {.gpus_per_rank = bad[i]};
        ck_assert_ptr_null (dc_plan_create (h, &o, &err));
        ck_assert_ptr_nonnull (strstr (err.text, "--gpus-per-rank"));
        dc_hosts_destroy (h);
    }
    dc_topo_destroy (t);
}
END_TEST

/* The agent's placement of one local rank is the head's placement of that
 * rank, for every local size and rank: the ranks of a host never overlap
 * whichever side places them. */
static void agent_matches_head (const struct dc_topo *t, int size, int slots,
                                const char *gpus, int gpr)
{
    char list[128];
    dc_error_t err = {{0}};
    struct dc_hosts *h;
    struct dc_plan_opts o = {
        .np = size, .oversubscribe = true, .gpus_per_rank = gpr};
    struct dc_plan *p;
    int *hg = NULL, nhg = 0;

    if (gpus)
        snprintf (list, sizeof (list), "x slots=%d gpus=%s\n",
                  slots ? slots : size, gpus);
    else
        snprintf (list, sizeof (list), "x slots=%d\n", slots ? slots : size);
    h = dc_hostfile_parse (list, strlen (list), "t", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    if (gpus)
        ck_assert_int_eq (dc_parse_int_list (gpus, 1023, &hg, &nhg, &err), 0);
    ck_assert_msg ((p = dc_plan_create (h, &o, &err)) != NULL, "%s", err.text);
    ck_assert_msg (dc_plan_place (p, 0, t, &err) == 0, "%s", err.text);
    for (int r = 0; r < size; r++) {
        char *cpus = NULL, *g = NULL, want[256] = "";
        size_t n = 0;
        ck_assert_msg (dc_plan_place_local (t, "x", r, size, slots, hg, nhg, &o,
                                            &cpus, &g, &err) == 0,
                       "%s", err.text);
        for (int i = 0; i < p->ranks[r].ngpus; i++)
            n += (size_t)snprintf (want + n, sizeof (want) - n, "%s%d",
                                   i ? "," : "", p->ranks[r].gpus[i]);
        ck_assert_str_eq (g, want);
        ck_assert_str_eq (cpus, p->ranks[r].cpus);
        free (cpus);
        free (g);
    }
    /* few ranks for the cores: no two overlap */
    for (int r = 0; size <= t->cores / 2 && r < size; r++)
        for (int q = 0; q < r; q++) {
            hwloc_bitmap_t a = bm (p->ranks[r].cpus), b = bm (p->ranks[q].cpus);
            ck_assert_msg (!hwloc_bitmap_intersects (a, b),
                           "size %d: ranks %d and %d overlap: %s, %s", size, q,
                           r, p->ranks[q].cpus, p->ranks[r].cpus);
            hwloc_bitmap_free (a);
            hwloc_bitmap_free (b);
        }
    free (hg);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}

START_TEST (t_place_local)
{
    static const char *fixtures[] = {
        "tests/fixtures/topo-2s-8gpu.xml",
        "tests/fixtures/topo-nogpu.xml",
        "../shared/topologies/nvidia-dgx2-16xV100.xml",
        "../shared/topologies/ibm-power8-4xP100.xml",
    };
    for (size_t f = 0; f < sizeof (fixtures) / sizeof (fixtures[0]); f++) {
        const char *path = strncmp (fixtures[f], "../", 3)
                               ? dc_srcpath (fixtures[f])
                               : shared_topo (fixtures[f]);
        struct dc_topo *t;
        if (!path || access (path, R_OK) != 0) {
            printf ("# skipped: %s not present\n", fixtures[f]);
            continue;
        }
        t = load (path);
        for (int size = 1; size <= 17; size++) {
            agent_matches_head (t, size, 0, NULL, 0);
            agent_matches_head (t, size, 0, NULL, 1);
        }
        /* -n below the slots, and a gpus= list */
        agent_matches_head (t, 2, 8, NULL, 0);
        if (t->ngpus >= 4)
            agent_matches_head (t, 4, 0, "3,2,1,0", 0);
        dc_topo_destroy (t);
    }
}
END_TEST

START_TEST (t_place_local_bad)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    static const int g9[] = {9};
    static const struct {
        int lr, ls, slots, nhg, gpr;
        const int *hg;
    } cases[] = {
        {-1, 4, 0, 0, 0, NULL}, {4, 4, 0, 0, 0, NULL},
        {0, 0, 0, 0, 0, NULL},  {0, DC_MAX_SLOTS + 1, 0, 0, 0, NULL},
        {0, 4, -1, 0, 0, NULL}, {0, 4, 0, 2, 0, NULL},
        {0, 4, 0, -1, 0, NULL}, {0, 1, 0, 1, 0, g9}, /* no GPU 9 */
        {0, 1, 0, 0, -2, NULL},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        dc_error_t err = {{0}};
        char *c = (char *)"x", *g = (char *)"x";
        ck_assert_msg (
            dc_plan_place_local (
                t, NULL, cases[i].lr, cases[i].ls, cases[i].slots, cases[i].hg,
                cases[i].nhg,
                &(struct dc_plan_opts){.gpus_per_rank = cases[i].gpr}, &c, &g,
                &err) == -1,
            "case %zu", i);
        ck_assert_msg (err.text[0] != '\0', "case %zu: no message", i);
        if (c != (char *)"x")
            ck_assert_ptr_null (c);
        if (g != (char *)"x")
            ck_assert_ptr_null (g);
    }
    dc_error_t err = {{0}};
    char *c, *g;
    ck_assert_int_eq (
        dc_plan_place_local (NULL, "x", 0, 1, 0, NULL, 0, NULL, &c, &g, &err),
        -1);
    ck_assert_int_eq (
        dc_plan_place_local (t, "x", 0, 1, 0, NULL, 0, NULL, NULL, &g, &err),
        -1);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_parse_map_by)
{
    static const struct {
        const char *s;
        int rc, map_by, n, obj;
    } cases[] = {
        {"slot", 0, DC_MAP_BY_SLOT, 0, DC_PPR_NONE},
        {"core", 0, DC_MAP_BY_SLOT, 0, DC_PPR_NONE},
        {"node", 0, DC_MAP_BY_NODE, 0, DC_PPR_NONE},
        {"ppr:1:package", 0, DC_MAP_BY_SLOT, 1, DC_PPR_PACKAGE},
        {"ppr:4:socket", 0, DC_MAP_BY_SLOT, 4, DC_PPR_PACKAGE},
        {"ppr:2:numa", 0, DC_MAP_BY_SLOT, 2, DC_PPR_NUMA},
        {"ppr:0:numa", -1, 0, 0, 0},
        {"ppr:-1:numa", -1, 0, 0, 0},
        {"ppr:99999999999999999999:numa", -1, 0, 0, 0},
        {"ppr:2", -1, 0, 0, 0},
        {"ppr:2:", -1, 0, 0, 0},
        {"ppr::numa", -1, 0, 0, 0},
        {"ppr:2:core", -1, 0, 0, 0},
        {"ppr:2:numa:x", -1, 0, 0, 0},
        {"ppr: 2:numa", -1, 0, 0, 0},
        {"", -1, 0, 0, 0},
        {"SLOT", -1, 0, 0, 0},
        {NULL, -1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        struct dc_plan_opts o = {.map_by = DC_MAP_BY_NODE};
        dc_error_t err = {{0}};
        int rc = dc_plan_parse_map_by (cases[i].s, &o, &err);
        ck_assert_msg (rc == cases[i].rc, "case %zu '%s': %d", i,
                       cases[i].s ? cases[i].s : "(null)", rc);
        if (rc < 0) {
            ck_assert_msg (err.text[0], "case %zu: no message", i);
            continue;
        }
        ck_assert_int_eq (o.map_by, cases[i].map_by);
        ck_assert_int_eq (o.ppr_n, cases[i].n);
        ck_assert_int_eq ((int)o.ppr_obj, cases[i].obj);
    }
}
END_TEST

/* ppr:N:package|numa on the 2-package fixture: local rank l on object
 * l / N, the object's cores split among its N ranks, its GPUs in order */
START_TEST (t_ppr)
{
    static const struct {
        const char *map_by;
        int gpr;
        const char *want; /* "cpus/gpus" per rank, ";" between */
    } cases[] = {
        {"ppr:1:package", 0, "0-7,16-23/0;8-15,24-31/4"},
        {"ppr:2:package", 0,
         "0-3,16-19/0;4-7,20-23/1;8-11,24-27/4;"
         "12-15,28-31/5"},
        {"ppr:2:package", 2,
         "0-3,16-19/0,1;4-7,20-23/2,3;8-11,24-27/4,5;"
         "12-15,28-31/6,7"},
        {"ppr:1:numa", 0, "0-7,16-23/0;8-15,24-31/4"},
        {"ppr:4:package", 0,
         "0-1,16-17/0;2-3,18-19/1;4-5,20-21/2;"
         "6-7,22-23/3;8-9,24-25/4;10-11,26-27/5;"
         "12-13,28-29/6;14-15,30-31/7"},
    };
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));

    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        dc_error_t err = {{0}};
        struct dc_plan_opts o = {.gpus_per_rank = cases[i].gpr};
        char list[32], got[512] = "";
        size_t n = 0;
        ck_assert_int_eq (dc_plan_parse_map_by (cases[i].map_by, &o, &err), 0);
        snprintf (list, sizeof (list), "a:%d",
                  o.ppr_n * dc_plan_ppr_objects (t, o.ppr_obj));
        struct dc_hosts *h = dc_hosts_parse_list (list, &err);
        struct dc_plan *p = dc_plan_create (h, &o, &err);
        ck_assert_msg (p != NULL, "%s", err.text);
        ck_assert_msg (dc_plan_place (p, 0, t, &err) == 0, "%s", err.text);
        for (int r = 0; r < p->size; r++) {
            n += (size_t)snprintf (got + n, sizeof (got) - n, "%s%s/",
                                   r ? ";" : "", p->ranks[r].cpus);
            for (int g = 0; g < p->ranks[r].ngpus; g++)
                n += (size_t)snprintf (got + n, sizeof (got) - n, "%s%d",
                                       g ? "," : "", p->ranks[r].gpus[g]);
        }
        ck_assert_msg (!strcmp (got, cases[i].want), "%s: %s, want %s",
                       cases[i].map_by, got, cases[i].want);
        /* the agent computes the same, rank by rank */
        for (int r = 0; r < p->size; r++) {
            char *c = NULL, *g = NULL;
            ck_assert_int_eq (dc_plan_place_local (t, "a", r, p->size, 0, NULL,
                                                   0, &o, &c, &g, &err),
                              0);
            ck_assert_str_eq (c, p->ranks[r].cpus);
            free (c);
            free (g);
        }
        dc_plan_destroy (p);
        dc_hosts_destroy (h);
    }
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
    tcase_add_test (tc, t_gpus_per_rank);
    tcase_add_test (tc, t_place_local);
    tcase_add_test (tc, t_place_local_bad);
    tcase_add_test (tc, t_parse_map_by);
    tcase_add_test (tc, t_ppr);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
