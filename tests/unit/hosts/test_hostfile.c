/* test_hostfile.c - hostfile grammar, -H lists, Slurm and PBS host lists */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/hosts/hostfile.h"
#include "lib/hosts/hosts.h"
#include "lib/hosts/sources.h"
#include "lib/hosts/resolve.h"

/* Good hostfiles: text, hosts, total slots, and facts about host 0/last. */
static const struct {
    const char *text;
    size_t count;
    long slots;
    const char *last;
    int last_port;
    const char *last_user;
} good[] = {
    {"node01 slots=4\n", 1, 4, "node01", 0, NULL},
    {"node01\n", 1, 1, "node01", 0, NULL},
    {"# c\n\n  \t\nnode01 slots=2 # trailing\n", 1, 2, "node01", 0, NULL},
    {"node[02-04,07] slots=8 gpus=0-7\n", 4, 32, "node07", 0, NULL},
    {"alice@node05:2222 slots=2\n", 1, 2, "node05", 2222, "alice"},
    {"node06:4\n", 1, 4, "node06", 0, NULL},
    {"node06:2200 slots=3\n", 1, 3, "node06", 2200, NULL},
    {"a slots=1 max_slots=4\nb max-slots=2", 2, 2, "b", 0, NULL},
    {"localhost", 1, 1, "localhost", 0, NULL},
    {"a\r\nb slots=2\r\n", 2, 3, "b", 0, NULL},
    {"h:2222 slots=1\nh:2223 slots=1\n", 2, 2, "h", 2223, NULL},
    {"rack[1-2]-gpu[1-2] slots=2\n", 4, 8, "rack2-gpu2", 0, NULL},
};

/* Bad hostfiles: text and the exact "FILE:LINE:COL:" prefix and a word. */
static const struct {
    const char *text;
    const char *where;
    const char *msg;
} bad[] = {
    {"node01 slots=0\n", "t.hosts:1:14:", "slots must be"},
    {"node01 slots=-1\n", "t.hosts:1:14:", "slots must be"},
    {"node01 slots=abc\n", "t.hosts:1:14:", "slots must be"},
    {"node01 slots=\n", "t.hosts:1:14:", "expected a value"},
    {"node01 slots=99999999999\n", "t.hosts:1:14:", "slots must be"},
    {"node01 colour=red\n", "t.hosts:1:8:", "unknown key 'colour'"},
    {"node01 slots\n", "t.hosts:1:8:", "expected key=value"},
    {"a\nnode01 slots=2 slots=3\n", "t.hosts:2:16:", "twice"},
    {"node01 slots=2\nnode01\n", "t.hosts:2:1:", "first on line 1"},
    {"node[01-03]\nnode02\n", "t.hosts:2:1:", "duplicate host 'node02'"},
    {"node[03-01]\n", "t.hosts:1:1:", "reversed"},
    {"node[01-03 slots=2\n", "t.hosts:1:1:", "unbalanced"},
    {"@node01\n", "t.hosts:1:1:", "user name"},
    {"node01:\n", "t.hosts:1:8:", "expected a number after ':'"},
    {"node01:x\n", "t.hosts:1:8:", "expected a number after ':'"},
    {"bob@node01:70000\n", "t.hosts:1:12:", "port"},
    {"node01 slots=4 max_slots=2\n", "t.hosts:1:1:", "less than"},
    {"node01 gpus=3-1\n", "t.hosts:1:13:", "reversed"},
    {"node01 gpus=0,0\n", "t.hosts:1:13:", "twice"},
    {"node01 gpus=a\n", "t.hosts:1:13:", "expected numbers"},
    {"node01 gpus=5000\n", "t.hosts:1:13:", "out of range"},
    {"n\xc3\xb6"
     "de\n",
     "t.hosts:1:2:", "invalid byte 0xc3"},
    {"# only a comment\n", "t.hosts:", "no hosts"},
    {"", "t.hosts:", "no hosts"},
    {":4\n", "t.hosts:1:1:", "expected a host name"},
};

START_TEST (t_good)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse (
        good[_i].text, strlen (good[_i].text), "t.hosts", &err);

    ck_assert_msg (h != NULL, "%s: %s", good[_i].text, err.text);
    ck_assert_uint_eq (h->count, good[_i].count);
    ck_assert_int_eq (dc_hosts_slots (h), good[_i].slots);
    const struct dc_host *last = &h->v[h->count - 1];
    ck_assert_str_eq (last->name, good[_i].last);
    ck_assert_int_eq (last->port, good[_i].last_port);
    if (good[_i].last_user)
        ck_assert_str_eq (last->user, good[_i].last_user);
    else
        ck_assert_ptr_null (last->user);
    dc_hosts_destroy (h);
}
END_TEST

START_TEST (t_bad)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse (bad[_i].text, strlen (bad[_i].text),
                                            "t.hosts", &err);

    ck_assert_msg (h == NULL, "'%s' should fail", bad[_i].text);
    ck_assert_msg (strncmp (err.text, bad[_i].where, strlen (bad[_i].where)) ==
                       0,
                   "'%s': '%s' does not start with '%s'", bad[_i].text,
                   err.text, bad[_i].where);
    ck_assert_msg (strstr (err.text, bad[_i].msg) != NULL,
                   "'%s': '%s' lacks '%s'", bad[_i].text, err.text,
                   bad[_i].msg);
}
END_TEST

START_TEST (t_fields)
{
    const char *text = "node[02-03] slots=8 max_slots=9 gpus=0-3,6\n";
    dc_error_t err;
    struct dc_hosts *h = dc_hostfile_parse (text, strlen (text), "f", &err);

    ck_assert_ptr_nonnull (h);
    ck_assert_str_eq (h->v[0].name, "node02");
    ck_assert_int_eq (h->v[0].slots, 8);
    ck_assert_int_eq (h->v[0].max_slots, 9);
    ck_assert_int_eq (h->v[0].ngpus, 5);
    ck_assert_int_eq (h->v[1].gpus[4], 6);
    ck_assert_int_eq (h->v[1].line, 1);
    dc_hosts_destroy (h);
}
END_TEST

START_TEST (t_hostile)
{
    dc_error_t err;
    /* NUL byte inside the text */
    const char nul[] = "node01\0 slots=2\n";
    ck_assert_ptr_null (dc_hostfile_parse (nul, sizeof (nul) - 1, "f", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "NUL"));
    /* NULL text */
    ck_assert_ptr_null (dc_hostfile_parse (NULL, 0, "f", &err));
    /* one huge line */
    size_t n = DC_HOSTFILE_MAX_LINE + 10;
    char *big = malloc (n + 1);
    memset (big, 'a', n);
    big[n] = '\0';
    ck_assert_ptr_null (dc_hostfile_parse (big, n, "f", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "longer than"));
    const char *dup = "n[1-2000]\nn1999\n";
    ck_assert_ptr_null (dc_hostfile_parse (dup, strlen (dup), "f", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "f:2:1: duplicate"));
    free (big);
}
END_TEST

/* A million hosts, the cap: parsed and checked for duplicates in linear
 * time (no timing here; the suite's timeout catches a quadratic check). */
START_TEST (t_million)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h;
    const char *one = "n[1-1000000]";
    const char *dup = "n[1-999999]\n# end\nn999999:2\n";
    const char *two = "n[1-1000000]\nm1\n";
    const char *gpus = "n[1-100000] gpus=0-1023\n";

    h = dc_hostfile_parse (one, strlen (one), "f", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, 1000000);
    ck_assert_str_eq (h->v[999999].name, "n1000000");
    ck_assert_int_eq (dc_hosts_find (h, "n777777", 0), 777776);
    ck_assert_int_eq (dc_hosts_find (h, "n777777", 22), -1);
    ck_assert_int_eq (dc_hosts_find (h, "n0", 0), -1);
    dc_hosts_destroy (h);
    /* the duplicate names both lines */
    ck_assert_ptr_null (dc_hostfile_parse (dup, strlen (dup), "f", &err));
    ck_assert_msg (strstr (err.text, "f:3:1: duplicate host 'n999999' (first "
                                     "on line 1)"),
                   "%s", err.text);
    /* one more than the cap */
    ck_assert_ptr_null (dc_hostfile_parse (two, strlen (two), "f", &err));
    ck_assert_msg (strstr (err.text, "f:2:1: more than 1000000 hosts"), "%s",
                   err.text);
    /* gpus= copied to every host is bounded too */
    ck_assert_ptr_null (dc_hostfile_parse (gpus, strlen (gpus), "f", &err));
    ck_assert_msg (strstr (err.text, "gpus= entries"), "%s", err.text);
    /* -H and Slurm lists of a million hosts */
    h = dc_hosts_parse_list ("n[1-1000000]:2", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_int_eq (dc_hosts_slots (h), 2000000);
    dc_hosts_destroy (h);
    h = dc_hosts_parse_list ("n[1-1000000],n[1-1000000]", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, 1000000);
    ck_assert_int_eq (dc_hosts_slots (h), 2000000);
    dc_hosts_destroy (h);
    ck_assert_ptr_null (dc_hosts_parse_list ("n[1-1000000],m1", &err));
    ck_assert_msg (strstr (err.text, "-H: more than 1000000 hosts"), "%s",
                   err.text);
    h = dc_hosts_from_slurm ("n[000001-999999]", "3(x999998),1", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_int_eq (dc_hosts_slots (h), 3 * 999998 + 1);
    dc_hosts_destroy (h);
}
END_TEST

/* Hostfiles that took minutes with a quadratic duplicate check (found by a
 * fuzzer; tests/fuzz/corpus/hostfile): each completes, good or bad. */
START_TEST (t_reproducers)
{
    static const char *const files[] = {
        "slow-unit-b3b8ea456aa628e2235702a4f49fa5da647639ae",
        "timeout-0a3e5ac0680e86e7b829897ea56cf9536d015ef1",
        "timeout-3d577dfc783a36b8836d7ac1e586edcd57434b20",
        "timeout-5c6d3985782007e493b01dff7f1e8fad01e29abb",
        "timeout-742bb87f18bd93e84d9e239f40706575e98351bf",
    };
    char path[512];

    for (size_t i = 0; i < sizeof (files) / sizeof (files[0]); i++) {
        dc_error_t err = {{0}};
        snprintf (path, sizeof (path), "tests/fuzz/corpus/hostfile/%s",
                  files[i]);
        struct dc_hosts *h = dc_hostfile_load (dc_srcpath (path), &err);
        /* a host list, or a message with the file and line */
        if (h) {
            ck_assert_uint_ge (h->count, 1);
            dc_hosts_destroy (h);
            continue;
        }
        ck_assert_msg (strstr (err.text, files[i]) &&
                           !strstr (err.text, "No such"),
                       "%s: %s", files[i], err.text);
        snprintf (path, sizeof (path), "%s:", files[i]);
        ck_assert_msg (strstr (err.text, path), "%s", err.text);
    }
}
END_TEST

START_TEST (t_load)
{
    dc_error_t err;
    struct dc_hosts *h;

    h = dc_hostfile_load (dc_srcpath ("hostfiles/cluster.hosts"), &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, 7);
    ck_assert_int_eq (dc_hosts_slots (h), 4 * 8 + 2 + 2 + 4);
    dc_hosts_destroy (h);
    ck_assert_ptr_null (dc_hostfile_load ("/nonexistent/hosts", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "No such file"));
    ck_assert_ptr_null (dc_hostfile_load ("/", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "directory"));
    ck_assert_ptr_null (dc_hostfile_load (NULL, &err));
    ck_assert_ptr_null (dc_hostfile_load ("", &err));
}
END_TEST

/* -H lists */
static const struct {
    const char *list;
    size_t count;
    long slots;
    const char *err; /* NULL when good */
} lists[] = {
    {"node[01-04,07]:8,login:2", 6, 42, NULL},
    {"a,b,c", 3, 3, NULL},
    {"a,a", 1, 2, NULL},
    {"bob@a:2", 1, 1, NULL}, /* user@host:N: N is the port */
    {"bob@a:70000", 0, 0, "expected a port"},
    {"a:0", 0, 0, "expected slots"},
    {"a:", 0, 0, "expected slots"},
    {"a,,b", 0, 0, "empty entry"},
    {"", 0, 0, "empty"},
    {"a[1-", 0, 0, "expected the end"},
    {"@a", 0, 0, "empty user"},
};

START_TEST (t_list)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hosts_parse_list (lists[_i].list, &err);

    if (lists[_i].err) {
        ck_assert_msg (h == NULL, "'%s' should fail", lists[_i].list);
        ck_assert_msg (strstr (err.text, lists[_i].err), "'%s': %s",
                       lists[_i].list, err.text);
        return;
    }
    ck_assert_msg (h != NULL, "%s: %s", lists[_i].list, err.text);
    ck_assert_uint_eq (h->count, lists[_i].count);
    ck_assert_int_eq (dc_hosts_slots (h), lists[_i].slots);
    dc_hosts_destroy (h);
}
END_TEST

/* Slurm allocations */
static const struct {
    const char *nodes, *tasks;
    size_t count;
    long slots;
    const char *err;
} slurm[] = {
    {"node[01-04]", "2(x3),1", 4, 7, NULL},
    {"node[01-02]", NULL, 2, 2, NULL},
    {"node[01-02]", "", 2, 2, NULL},
    {"a,b,c", "1,2,3", 3, 6, NULL},
    {"node[01-04]", "2(x3)", 0, 0, "names 3 nodes"},
    {"node[01-02]", "2(x3)", 0, 0, "more nodes"},
    {"node[01-02]", "2(3)", 0, 0, "expected a list"},
    {"node[01-02]", "x", 0, 0, "expected a list"},
    {"node[01-02]", "0,1", 0, 0, "expected a list"},
    {"node[01-", "1", 0, 0, "SLURM_JOB_NODELIST"},
};

START_TEST (t_slurm)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h =
        dc_hosts_from_slurm (slurm[_i].nodes, slurm[_i].tasks, &err);

    if (slurm[_i].err) {
        ck_assert_msg (h == NULL, "'%s' should fail", slurm[_i].tasks);
        ck_assert_msg (strstr (err.text, slurm[_i].err), "%s", err.text);
        return;
    }
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, slurm[_i].count);
    ck_assert_int_eq (dc_hosts_slots (h), slurm[_i].slots);
    dc_hosts_destroy (h);
}
END_TEST

static char pbs_path[64];

START_TEST (t_pbs)
{
    dc_error_t err;
    FILE *f;
    int fd;

    snprintf (pbs_path, sizeof (pbs_path), "/tmp/dcrun-pbs-XXXXXX");
    fd = mkstemp (pbs_path);
    ck_assert_int_ge (fd, 0);
    f = fdopen (fd, "w");
    fputs ("n1\nn1\nn2\n\nn1\n", f);
    fclose (f);
    struct dc_hosts *h = dc_hosts_from_pbs (pbs_path, &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, 2);
    ck_assert_int_eq (h->v[0].slots, 3);
    ck_assert_int_eq (h->v[1].slots, 1);
    dc_hosts_destroy (h);
    f = fopen (pbs_path, "w");
    fputs ("n1\nbad host\n", f);
    fclose (f);
    ck_assert_ptr_null (dc_hosts_from_pbs (pbs_path, &err));
    ck_assert_ptr_nonnull (strstr (err.text, ":2:"));
    unlink (pbs_path);
    ck_assert_ptr_null (dc_hosts_from_pbs (pbs_path, &err));
}
END_TEST

/* Resolution order, with a fake environment. */
static const char *const *fake_env;

static const char *env_lookup (const char *name)
{
    for (int i = 0; fake_env && fake_env[i]; i += 2)
        if (!strcmp (fake_env[i], name))
            return fake_env[i + 1];
    return NULL;
}

START_TEST (t_resolve)
{
    dc_error_t err;
    struct dc_resolve_opts o = {.getenv = env_lookup};
    struct dc_hosts *h;
    static const char *const slurm_env[] = {"SLURM_JOB_NODELIST",
                                            "sn[1-3]",
                                            "SLURM_TASKS_PER_NODE",
                                            "4(x3)",
                                            "PBS_NODEFILE",
                                            "/nonexistent",
                                            NULL};

    /* nothing: this host, one slot, or one per GPU */
    fake_env = NULL;
    h = dc_hosts_resolve (&o, &err);
    ck_assert_ptr_nonnull (h);
    ck_assert_int_eq (dc_hosts_slots (h), 1);
    dc_hosts_destroy (h);
    o.local_gpus = 4;
    h = dc_hosts_resolve (&o, &err);
    ck_assert_int_eq (dc_hosts_slots (h), 4);
    dc_hosts_destroy (h);
    /* Slurm before PBS */
    fake_env = slurm_env;
    h = dc_hosts_resolve (&o, &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_uint_eq (h->count, 3);
    ck_assert_int_eq (dc_hosts_slots (h), 12);
    dc_hosts_destroy (h);
    /* -H before the environment */
    o.hosts = "x:3";
    h = dc_hosts_resolve (&o, &err);
    ck_assert_str_eq (h->v[0].name, "x");
    dc_hosts_destroy (h);
    /* -f before -H */
    o.hostfile = dc_srcpath ("hostfiles/cluster.hosts");
    h = dc_hosts_resolve (&o, &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_str_eq (h->v[0].name, "node01");
    dc_hosts_destroy (h);
    /* PBS when there is no Slurm */
    static const char *const pbs_env[] = {"PBS_NODEFILE", "/nonexistent", NULL};
    o.hostfile = o.hosts = NULL;
    fake_env = pbs_env;
    ck_assert_ptr_null (dc_hosts_resolve (&o, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "PBS_NODEFILE"));
    /* DCRUN_HOSTFILE before Slurm */
    static const char *const dc_env[] = {"DCRUN_HOSTFILE", "/nonexistent/h",
                                         "SLURM_JOB_NODELIST", "a", NULL};
    fake_env = dc_env;
    ck_assert_ptr_null (dc_hosts_resolve (&o, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "/nonexistent/h"));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("hostfile");
    TCase *tc = tcase_create ("hostfile");

    tcase_set_timeout (tc, 60);
    tcase_add_loop_test (tc, t_good, 0, sizeof (good) / sizeof (good[0]));
    tcase_add_loop_test (tc, t_bad, 0, sizeof (bad) / sizeof (bad[0]));
    tcase_add_test (tc, t_fields);
    tcase_add_test (tc, t_hostile);
    tcase_add_test (tc, t_million);
    tcase_add_test (tc, t_reproducers);
    tcase_add_test (tc, t_load);
    tcase_add_loop_test (tc, t_list, 0, sizeof (lists) / sizeof (lists[0]));
    tcase_add_loop_test (tc, t_slurm, 0, sizeof (slurm) / sizeof (slurm[0]));
    tcase_add_test (tc, t_pbs);
    tcase_add_test (tc, t_resolve);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
