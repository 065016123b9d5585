/* test_worker.c - lib/run/worker: the placement of `dcrun worker --place`
 * on the fixture topologies (disjoint CPU sets next to each rank's GPUs,
 * torchrun's CUDA_VISIBLE_DEVICES contract), the CPUs allowed here, and
 * dc_worker_setup's errors and environment. */
#include <arpa/inet.h>
#include <hwloc.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "gpu/probe.h"
#include "lib/hosts/topo.h"
#include "lib/launch/agent.h"
#include "lib/run/status.h"
#include "lib/run/worker.h"

#define FIX(name) dc_srcpath ("tests/fixtures/" name)

static struct dc_topo *load (const char *path)
{
    dc_error_t err = {{0}};
    struct dc_topo *t = dc_probe_host (path, &err);
    ck_assert_msg (t != NULL, "%s: %s", path, err.text);
    return t;
}

static hwloc_bitmap_t bm (const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc ();
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (hwloc_bitmap_list_sscanf (b, s), 0);
    return b;
}

/* Entry i of a comma-separated list into out; false when there is none. */
static bool list_item (const char *list, int i, char *out, size_t len)
{
    const char *p = list;
    for (int k = 0; k < i && p; k++)
        if ((p = strchr (p, ',')))
            p++;
    if (!p || !*p)
        return false;
    size_t n = strcspn (p, ",");
    ck_assert_uint_lt (n, len);
    memcpy (out, p, n);
    out[n] = '\0';
    return true;
}

/* The CPU sets of the GPUs in list ("3,5"), merged. */
static hwloc_bitmap_t gpu_cpus (const struct dc_topo *t, const char *list)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc ();
    char id[16];
    for (int i = 0; list_item (list, i, id, sizeof (id)); i++) {
        int g = dc_topo_find_gpu (t, atoi (id));
        ck_assert_msg (g >= 0, "no GPU %s on the topology", id);
        hwloc_bitmap_t gb = bm (t->gpus[g].cpus);
        hwloc_bitmap_or (b, b, gb);
        hwloc_bitmap_free (gb);
    }
    return b;
}

/* The cases: a host of `size` ranks on a fixture, with the head's options.
 * Every rank of the host is placed as its own worker would place it. */
static const struct place_case {
    const char *fixture;
    int size, slots, gpus_per_rank;
    bool disjoint; /* enough cores for every rank */
    int gpus_each; /* GPUs each rank gets */
} place_cases[] = {
    {"topo-2s-8gpu.xml", 8, 0, 0, true, 1},
    {"topo-2s-8gpu.xml", 4, 0, 0, true, 2},
    {"topo-2s-8gpu.xml", 2, 0, 4, true, 4},
    {"topo-2s-8gpu.xml", 1, 0, 0, true, 8},
    {"topo-2s-8gpu.xml", 2, 8, 0, true, 1}, /* -n 2 on 8 slots */
    {"topo-nogpu.xml", 4, 0, 0, true, 0},
    {"topo-pcionly.xml", 2, 0, 0, true, -1}, /* whatever it has */
};

/* Place every local rank of case c with gpu_bind; check what each gets. */
static void check_case (const struct place_case *c, enum dc_gpu_bind bind)
{
    char rel[256];
    snprintf (rel, sizeof (rel), "tests/fixtures/%s", c->fixture);
    struct dc_topo *t = load (dc_srcpath (rel));
    struct dc_worker_placement p[64];
    char first_visible[4096] = "";
    ck_assert_int_le (c->size, 64);

    for (int l = 0; l < c->size; l++) {
        struct dc_worker_place_opts o = {
            .host = "node1",
            .local_rank = l,
            .local_size = c->size,
            .slots = c->slots,
            .plan = {.gpus_per_rank = c->gpus_per_rank},
            .gpu_bind = bind,
        };
        dc_error_t err = {{0}};
        ck_assert_msg (dc_worker_place (t, &o, &p[l], &err) == 0,
                       "%s rank %d of %d: %s", c->fixture, l, c->size,
                       err.text);
        ck_assert_ptr_nonnull (p[l].gpus);
        int ngpus = *p[l].gpus ? 1 : 0;
        for (const char *s = p[l].gpus; *s; s++)
            ngpus += *s == ',';
        if (c->gpus_each >= 0)
            ck_assert_int_eq (ngpus, c->gpus_each);
        /* its CPUs are next to its GPUs */
        if (ngpus > 0 && p[l].cpus) {
            hwloc_bitmap_t cb = bm (p[l].cpus), gb = gpu_cpus (t, p[l].gpus);
            ck_assert_msg (hwloc_bitmap_isincluded (cb, gb),
                           "%s: rank %d cpus %s outside its GPUs' (%s)",
                           c->fixture, l, p[l].cpus, p[l].gpus);
            hwloc_bitmap_free (cb);
            hwloc_bitmap_free (gb);
        }
        /* CUDA_VISIBLE_DEVICES as --gpu-bind has it */
        if (ngpus == 0 || bind == DC_GPU_BIND_NONE) {
            ck_assert_ptr_null (p[l].visible);
        } else if (bind == DC_GPU_BIND_RANK) {
            ck_assert_str_eq (p[l].visible, p[l].gpus);
        } else {
            /* torchrun: one list for the host, cuda:LOCAL_RANK its own */
            char id[16];
            ck_assert_ptr_nonnull (p[l].visible);
            if (l == 0)
                snprintf (first_visible, sizeof (first_visible), "%s",
                          p[l].visible);
            ck_assert_str_eq (p[l].visible, first_visible);
            if (c->gpus_each == 1) {
                ck_assert (list_item (p[l].visible, l, id, sizeof (id)));
                ck_assert_str_eq (id, p[l].gpus);
            }
        }
    }
    /* the ranks of the host never overlap */
    for (int l = 0; l < c->size && c->disjoint; l++)
        for (int k = 0; k < l; k++) {
            if (!p[l].cpus || !p[k].cpus)
                continue;
            hwloc_bitmap_t a = bm (p[l].cpus), b = bm (p[k].cpus);
            ck_assert_msg (!hwloc_bitmap_intersects (a, b),
                           "%s: ranks %d (%s) and %d (%s) overlap", c->fixture,
                           k, p[k].cpus, l, p[l].cpus);
            hwloc_bitmap_free (a);
            hwloc_bitmap_free (b);
        }
    for (int l = 0; l < c->size; l++)
        dc_worker_placement_free (&p[l]);
    dc_topo_destroy (t);
}

START_TEST (t_place_fixtures)
{
    static const enum dc_gpu_bind binds[] = {DC_GPU_BIND_HOST, DC_GPU_BIND_RANK,
                                             DC_GPU_BIND_NONE};
    for (size_t i = 0; i < sizeof (place_cases) / sizeof (place_cases[0]); i++)
        for (size_t b = 0; b < 3; b++)
            check_case (&place_cases[i], binds[b]);
}
END_TEST

/* 8 ranks on the 2-socket, 8-GPU host: each its own GPU, in local-rank
 * order, and the host list is every GPU once. */
START_TEST (t_place_torchrun)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    for (int l = 0; l < 8; l++) {
        struct dc_worker_place_opts o = {.local_rank = l, .local_size = 8};
        struct dc_worker_placement p;
        dc_error_t err = {{0}};
        char want[8];
        ck_assert_int_eq (dc_worker_place (t, &o, &p, &err), 0);
        snprintf (want, sizeof (want), "%d", l);
        ck_assert_str_eq (p.gpus, want);
        ck_assert_str_eq (p.visible, "0,1,2,3,4,5,6,7");
        ck_assert_ptr_nonnull (p.cpus);
        dc_worker_placement_free (&p);
        dc_worker_placement_free (&p); /* twice: harmless */
    }
    /* the head's gpus= list: the ranks get those, in its order */
    static const int hg[] = {6, 2};
    for (int l = 0; l < 2; l++) {
        struct dc_worker_place_opts o = {
            .local_rank = l, .local_size = 2, .gpus = hg, .ngpus = 2};
        struct dc_worker_placement p;
        dc_error_t err = {{0}};
        ck_assert_int_eq (dc_worker_place (t, &o, &p, &err), 0);
        ck_assert_str_eq (p.gpus, l == 0 ? "6" : "2");
        ck_assert_str_eq (p.visible, "6,2");
        dc_worker_placement_free (&p);
    }
    dc_worker_placement_free (NULL);
    dc_topo_destroy (t);
}
END_TEST

START_TEST (t_place_bad)
{
    struct dc_topo *t = load (FIX ("topo-2s-8gpu.xml"));
    static const int g9[] = {9};
    static const struct {
        int lr, ls, slots, ngpus, gpr;
        const int *gpus;
    } cases[] = {
        {-1, 4, 0, 0, 0, NULL},
        {4, 4, 0, 0, 0, NULL},
        {0, 0, 0, 0, 0, NULL},
        {0, -3, 0, 0, 0, NULL},
        {0, DC_MAX_SLOTS + 1, 0, 0, 0, NULL},
        {0, 4, -1, 0, 0, NULL},
        {0, 1, 0, 1, 0, g9}, /* no GPU 9 */
        {0, 1, 0, -1, 0, NULL},
        {0, 1, 0, 0, -2, NULL},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        struct dc_worker_place_opts o = {
            .host = "h",
            .local_rank = cases[i].lr,
            .local_size = cases[i].ls,
            .slots = cases[i].slots,
            .gpus = cases[i].gpus,
            .ngpus = cases[i].ngpus,
            .plan = {.gpus_per_rank = cases[i].gpr},
        };
        struct dc_worker_placement p = {(char *)"x", (char *)"x", NULL};
        dc_error_t err = {{0}};
        ck_assert_msg (dc_worker_place (t, &o, &p, &err) == -1, "case %zu", i);
        ck_assert_msg (err.text[0] != '\0', "case %zu: no message", i);
        ck_assert_ptr_null (p.cpus);
        ck_assert_ptr_null (p.gpus);
        ck_assert_ptr_null (p.visible);
    }
    struct dc_worker_place_opts o = {.local_size = 1};
    struct dc_worker_placement p;
    dc_error_t err = {{0}};
    ck_assert_int_eq (dc_worker_place (NULL, &o, &p, &err), -1);
    ck_assert_ptr_null (p.cpus);
    ck_assert_int_eq (dc_worker_place (t, NULL, &p, &err), -1);
    ck_assert_int_eq (dc_worker_place (t, &o, NULL, &err), -1);
    ck_assert_int_eq (dc_worker_place (t, &o, &p, NULL), 0); /* no errp */
    dc_worker_placement_free (&p);
    dc_topo_destroy (t);
}
END_TEST

/* The CPUs of a list that this process may use. */
START_TEST (t_cpus_here)
{
    cpu_set_t set;
    int first = -1;
    ck_assert_int_eq (sched_getaffinity (0, sizeof (set), &set), 0);
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET (c, &set))
            first = c;
    ck_assert_int_ge (first, 0);
    char one[32], range[64];
    snprintf (one, sizeof (one), "%d", first);
    snprintf (range, sizeof (range), "%d-%d,99999", first, first);

    static const char *const bad[] = {
        "a", "-1", "3-1", "1-", "1,,2", "1;2", "1-2-3", "1,a",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++)
        ck_assert_msg (dc_worker_cpus_here (bad[i]) == NULL, "'%s'", bad[i]);
    ck_assert_ptr_null (dc_worker_cpus_here (NULL));

    const struct {
        const char *list, *want;
    } good[] = {
        {"", ""},
        {one, one},
        {range, one},         /* a CPU past CPU_SETSIZE is not here */
        {"99999-100010", ""}, /* none of them */
        {"4096", ""},         /* CPU_SETSIZE itself */
    };
    for (size_t i = 0; i < sizeof (good) / sizeof (good[0]); i++) {
        char *s = dc_worker_cpus_here (good[i].list);
        ck_assert_msg (s != NULL, "'%s'", good[i].list);
        ck_assert_str_eq (s, good[i].want);
        free (s);
    }
}
END_TEST

/* dc_worker_setup: errors with their status and text, and what --place
 * leaves in the environment (a fixture topology instead of this host). */
START_TEST (t_setup)
{
    char *cmd[] = {(char *)"true", NULL};
    char *none[] = {NULL};
    dc_error_t err = {{0}};
    struct dc_worker w = {.cmd = none, .control = -1};

    ck_assert_int_eq (dc_worker_setup (NULL, &err), DC_STATUS_USAGE);
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_USAGE);
    ck_assert_str_eq (err.text, "worker: no command given");

    unsetenv ("OMPI_COMM_WORLD_RANK");
    unsetenv ("SLURM_PROCID");
    unsetenv ("DCRUN_IO");
    w = (struct dc_worker){
        .cmd = cmd, .control = -1, .wdir = "/nonexistent/dcrun-test"};
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_LAUNCH);
    ck_assert_msg (strstr (err.text, ": cannot run in folder "
                                     "/nonexistent/dcrun-test: ") &&
                       strstr (err.text, "\nhint: --wdir DIR"),
                   "%s", err.text);
    ck_assert_int_eq (w.control, 1); /* not under mpirun/srun: stdin */
    dc_worker_fini (&w);

    /* --place without the local rank: exit 4 with the reason */
    unsetenv ("DCRUN_LOCAL_RANK");
    w = (struct dc_worker){.cmd = cmd, .control = 0, .place = true};
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_LAUNCH);
    ck_assert_ptr_nonnull (strstr (err.text, "missing or bad (unset of"));
    ck_assert_int_eq (w.control, 0);

    setenv ("DCRUN_LOCAL_RANK", "1", 1);
    setenv ("DCRUN_LOCAL_SIZE", "8", 1);
    setenv ("DCRUN_RANK", "9", 1);
    setenv ("DCRUN_HOST", "node7", 1);
    setenv (DC_PROBE_XML_ENV, FIX ("topo-2s-8gpu.xml"), 1);
    w.place_gpus = "a,b";
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_USAGE);
    ck_assert_ptr_nonnull (strstr (err.text, "worker: --place-gpus 'a,b': "));

    /* placed: the env of rank 1 of 8, a -e entry, a note for -v */
    static char e1[] = "DCRUN_TEST_E=1";
    unsetenv ("CUDA_VISIBLE_DEVICES");
    unsetenv ("DCRUN_CPUS");
    w = (struct dc_worker){.cmd = cmd, .control = -1, .place = true};
    ck_assert_int_eq (dc_worker_add_env (&w, e1, &err), 0);
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_OK);
    ck_assert_str_eq (getenv ("DCRUN_TEST_E"), "1");
    ck_assert_str_eq (getenv ("DCRUN_GPUS"), "1");
    ck_assert_str_eq (getenv ("CUDA_VISIBLE_DEVICES"), "0,1,2,3,4,5,6,7");
    ck_assert_ptr_nonnull (getenv ("DCRUN_CPUS"));
    static const char note[] = "worker: rank 9 on node7: local rank 1 of 8, "
                               "cpus ";
    ck_assert_msg (!strncmp (w.place_note.text, note, strlen (note)), "%s",
                   w.place_note.text);
    ck_assert_ptr_eq (w.cpus, w.placed); /* NULL when none of them is here */
    dc_worker_fini (&w);
    ck_assert_ptr_null (w.placed);
    dc_worker_fini (NULL);

    /* the head knew the GPUs: GPU variables left alone; --place-no-bind:
     * no DCRUN_CPUS, nothing bound */
    unsetenv ("DCRUN_GPUS");
    unsetenv ("CUDA_VISIBLE_DEVICES");
    unsetenv ("DCRUN_CPUS");
    w = (struct dc_worker){.cmd = cmd,
                           .control = -1,
                           .place = true,
                           .place_gpus = "",
                           .place_no_bind = true};
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_OK);
    ck_assert_ptr_null (getenv ("DCRUN_GPUS"));
    ck_assert_ptr_null (getenv ("CUDA_VISIBLE_DEVICES"));
    ck_assert_ptr_null (getenv ("DCRUN_CPUS"));
    ck_assert_ptr_null (w.cpus);
    ck_assert_ptr_nonnull (strstr (w.place_note.text, "nothing (--bind none)"));
    dc_worker_fini (&w);

    /* a topology that cannot be read: unplaced, said in the note */
    setenv (DC_PROBE_XML_ENV, FIX ("topo-bad-notxml.xml"), 1);
    w = (struct dc_worker){.cmd = cmd, .control = -1, .place = true};
    ck_assert_int_eq (dc_worker_setup (&w, &err), DC_STATUS_OK);
    ck_assert_ptr_null (w.cpus);
    ck_assert_ptr_nonnull (
        strstr (w.place_note.text, "cannot probe this host"));
    dc_worker_fini (&w);
}
END_TEST

/* -e entries, --control, --port-check. */
START_TEST (t_options)
{
    static const struct {
        const char *entry;
        bool ok;
    } envs[] = {
        {"A=1", true}, {"B=", true}, {"C==x", true}, {"=1", false},
        {"A", false},  {"", false},  {NULL, false},
    };
    struct dc_worker w = {0};
    int n = 0;
    for (size_t i = 0; i < sizeof (envs) / sizeof (envs[0]); i++) {
        dc_error_t err = {{0}};
        int rc = dc_worker_add_env (&w, envs[i].entry, &err);
        ck_assert_msg (rc == (envs[i].ok ? 0 : -1), "'%s'", envs[i].entry);
        if (envs[i].ok)
            ck_assert_str_eq (w.env[n++], envs[i].entry);
        else
            ck_assert_msg (strstr (err.text, "expected NAME=VALUE"), "%s",
                           err.text);
    }
    ck_assert_int_eq (w.nenv, n);
    ck_assert_int_eq (dc_worker_add_env (NULL, "A=1", NULL), -1);
    dc_worker_fini (&w);
    ck_assert_ptr_null (w.env);
    ck_assert_int_eq (w.nenv, 0);

    ck_assert_int_eq (dc_worker_control_parse ("stdin"), 1);
    ck_assert_int_eq (dc_worker_control_parse ("none"), 0);
    ck_assert_int_eq (dc_worker_control_parse ("NONE"), -1);
    ck_assert_int_eq (dc_worker_control_parse (""), -1);
    ck_assert_int_eq (dc_worker_control_parse ("stdin "), -1);
    ck_assert_int_eq (dc_worker_control_parse (NULL), -1);

    /* a free port is free; once listened on, busy */
    int port = dc_worker_port_check (0);
    ck_assert_int_gt (port, 0);
    ck_assert_int_eq (dc_worker_port_check (port), port);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons ((uint16_t)port)};
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (bind (fd, (struct sockaddr *)&sa, sizeof (sa)), 0);
    ck_assert_int_eq (listen (fd, 1), 0);
    ck_assert_int_eq (dc_worker_port_check (port), 0);
    close (fd);
}
END_TEST

/* CMD runs under the agent: its exit status, or why it could not. */
START_TEST (t_run)
{
    char *ok[] = {(char *)"sh", (char *)"-c", (char *)"exit 3", NULL};
    struct dc_worker w = {.cmd = ok, .control = 0};
    dc_error_t err = {{0}};
    int status = -1;

    unsetenv ("DCRUN_IO");
    ck_assert_int_eq (dc_worker_run (&w, &status, &err), 0);
    ck_assert (WIFEXITED (status));
    ck_assert_int_eq (WEXITSTATUS (status), 3);
    ck_assert_int_eq (dc_worker_end (status), 3);
}
END_TEST

/* the agent takes process-wide state once: a process of its own */
START_TEST (t_run_noexec)
{
    char *ok[] = {(char *)"true", NULL};
    char *bad[] = {(char *)"/nonexistent/dcrun-cmd", NULL};
    struct dc_worker w = {.cmd = bad, .control = 0};
    dc_error_t err = {{0}};
    int status = -1;

    unsetenv ("DCRUN_IO");
    ck_assert_int_eq (dc_worker_run (&w, &status, &err), DC_AGENT_NOEXEC);
    ck_assert_msg (!strncmp (err.text, "worker: ", 8) &&
                       strstr (err.text, "/nonexistent/dcrun-cmd"),
                   "%s", err.text);
    ck_assert_int_eq (dc_worker_run (NULL, &status, &err), DC_AGENT_SETUP);
    w.cmd = ok;
    ck_assert_int_eq (dc_worker_run (&w, NULL, &err), DC_AGENT_SETUP);
}
END_TEST

/* The worker's end: CMD's exit status as it is. */
START_TEST (t_end)
{
    ck_assert_int_eq (dc_worker_end (0), 0);
    ck_assert_int_eq (dc_worker_end (3 << 8), 3);
    ck_assert_int_eq (dc_worker_end (255 << 8), 255);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("worker");
    TCase *tc = tcase_create ("worker");
    tcase_add_test (tc, t_place_fixtures);
    tcase_add_test (tc, t_place_torchrun);
    tcase_add_test (tc, t_place_bad);
    tcase_add_test (tc, t_cpus_here);
    tcase_add_test (tc, t_setup);
    tcase_add_test (tc, t_options);
    tcase_add_test (tc, t_run);
    tcase_add_test (tc, t_run_noexec);
    tcase_add_test (tc, t_end);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
