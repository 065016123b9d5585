/* test_jobspec.c - lib/run/jobspec.c (the rank environment with -x names,
 * values and patterns, --export-all's deny list, rank variables refused,
 * the unset -x names, the agents' words and slots, the driver's command
 * line, the worker's environment block) and lib/run/dryrun.c, as tables
 * of cases with empty and hostile input.  No rank is started, nothing is
 * probed over the network.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/hosts/rankenv.h"
#include "lib/hosts/sources.h"
#include "lib/launch/launch_io.h"
#include "lib/run/dryrun.h"
#include "lib/run/jobspec.h"
#include "lib/run/status.h"

static struct dc_plan *plan_of (const char *list, struct dc_hosts **hp)
{
    struct dc_plan_opts po = {.np = 0};
    dc_error_t err;

    *hp = dc_hosts_parse_list (list, &err);
    ck_assert_msg (*hp != NULL, "%s: %s", list, err.text);
    struct dc_plan *p = dc_plan_create (*hp, &po, &err);
    ck_assert_msg (p != NULL, "%s: %s", list, err.text);
    return p;
}

/* How many entries of env set name, and the value of the last one. */
static int env_count (char **env, const char *name, const char **val)
{
    size_t n = strlen (name);
    int c = 0;

    *val = NULL;
    for (int i = 0; env && env[i]; i++)
        if (!strncmp (env[i], name, n) && env[i][n] == '=') {
            c++;
            *val = env[i] + n + 1;
        }
    return c;
}

/* The environment every rank_env case runs in. */
static void set_env (void)
{
    setenv ("JS_FOO_A", "1", 1);
    setenv ("JS_FOO_B", "2", 1);
    setenv ("JS_BAR", "3", 1);
    setenv ("RANK", "99", 1);             /* a rank variable here */
    setenv ("SSH_AUTH_SOCK", "/s", 1);    /* on the deny list */
    setenv ("DCRUN_XENV_7", "JS_X=1", 1); /* what the launchers use */
    setenv ("MASTER_PORT", "1", 1);       /* rankenv sets its own */
    setenv ("HOME", "/h", 1);             /* on the deny list */
    unsetenv ("JS_UNSET");
    unsetenv ("OMP_NUM_THREADS");
}

static const struct {
    const char *name;
    const char *exports[4];
    bool export_all;
    /* NAME=VALUE that must be there once, NAME that must not be */
    const char *want[4], *absent[4];
} env_cases[] = {
    {"-x NAME", {"JS_FOO_A"}, false, {"JS_FOO_A=1", "RANK=0"}, {"JS_FOO_B"}},
    {"-x pattern",
     {"JS_FOO_*"},
     false,
     {"JS_FOO_A=1", "JS_FOO_B=2"},
     {"JS_BAR"}},
    {"-x NAME=VALUE", {"JS_NEW=v=w"}, false, {"JS_NEW=v=w"}, {"JS_BAR"}},
    {"-x unset NAME", {"JS_UNSET"}, false, {"RANK=0"}, {"JS_UNSET"}},
    {"-x RANK: refused", {"RANK"}, false, {"RANK=0"}, {NULL}},
    {"-x RANK=5: refused", {"RANK=5"}, false, {"RANK=0"}, {NULL}},
    {"-x pattern over a rank variable", {"RAN*"}, false, {"RANK=0"}, {NULL}},
    {"-x '*' takes no launcher variable",
     {"*"},
     false,
     {"JS_BAR=3", "RANK=0"},
     {"DCRUN_XENV_7"}},
    {"-x '*' does not replace rankenv's",
     {"MASTER*", "TORCH*"},
     false,
     {"MASTER_PORT=4242", "RANK=0"},
     {NULL}},
    {"--export-all",
     {NULL},
     true,
     {"JS_BAR=3", "RANK=0"},
     {"SSH_AUTH_SOCK", "DCRUN_XENV_7", "HOME"}},
    {"-x OMP_NUM_THREADS=7 wins over rankenv's",
     {"OMP_NUM_THREADS=7"},
     false,
     {"OMP_NUM_THREADS=7"},
     {NULL}},
    {"hostile: an empty name, a bad pattern",
     {"", "[", "=x"},
     false,
     {"RANK=0"},
     {"JS_BAR", ""}},
};

START_TEST (t_rank_env)
{
    struct dc_hosts *hosts;
    struct dc_plan *plan = plan_of ("localhost:2", &hosts);
    struct dc_jobspec js = {.hosts = hosts, .plan = plan, .master_port = 4242};
    int n = 0;

    set_env ();
    while (n < 4 && env_cases[_i].exports[n])
        n++;
    struct dc_job_args a = {.exports = (char *const *)env_cases[_i].exports,
                            .nexports = n,
                            .export_all = env_cases[_i].export_all,
                            .gpu_bind = DC_GPU_BIND_NONE};
    char **env = dc_jobspec_rank_env (&a, &js, 0);
    const char *val;
    ck_assert_msg (env != NULL, "%s: NULL", env_cases[_i].name);
    for (int i = 0; i < 4 && env_cases[_i].want[i]; i++) {
        const char *w = env_cases[_i].want[i];
        char name[64];
        snprintf (name, sizeof (name), "%.*s", (int)strcspn (w, "="), w);
        ck_assert_msg (env_count (env, name, &val) == 1, "%s: %s not once",
                       env_cases[_i].name, name);
        ck_assert_msg (!strcmp (val, w + strlen (name) + 1), "%s: %s=%s",
                       env_cases[_i].name, name, val);
    }
    for (int i = 0; i < 4 && env_cases[_i].absent[i]; i++)
        ck_assert_msg (env_count (env, env_cases[_i].absent[i], &val) == 0,
                       "%s: %s=%s passed", env_cases[_i].name,
                       env_cases[_i].absent[i], val);
    /* MASTER_PORT and the run id come from the job */
    ck_assert (env_count (env, "MASTER_PORT", &val) == 1);
    ck_assert_str_eq (val, "4242");
    dc_jobspec_strv_free (env);
    dc_jobspec_strv_free (NULL);
    /* out of range: NULL, no crash */
    ck_assert_ptr_null (dc_jobspec_rank_env (&a, &js, 2));
    ck_assert_ptr_null (dc_jobspec_rank_env (&a, &js, -1));
    dc_plan_destroy (plan);
    dc_hosts_destroy (hosts);
}
END_TEST

/* The -x names that are unset here, in order; values and patterns never. */
START_TEST (t_unset_exports)
{
    char *x[] = {"JS_FOO_A", "JS_UNSET",  "JS_NEW=1",
                 "JS_NONE*", "JS_UNSET2", ""};
    struct dc_job_args a = {.exports = x, .nexports = 6};
    const char *got[8];
    int n = 0, i = 0;

    set_env ();
    unsetenv ("JS_UNSET2");
    while (n < 8 && (got[n] = dc_jobspec_unset_export (&a, &i)))
        n++;
    ck_assert_int_eq (n, 3);
    ck_assert_str_eq (got[0], "JS_UNSET");
    ck_assert_str_eq (got[1], "JS_UNSET2");
    ck_assert_str_eq (got[2], "");
    ck_assert_ptr_null (dc_jobspec_unset_export (&a, &i));
    struct dc_job_args none = {0};
    i = 0;
    ck_assert_ptr_null (dc_jobspec_unset_export (&none, &i));
}
END_TEST

static const struct {
    const char *hosts, *launcher;
    int gpu_bind, verbose;
    bool no_bind;
    const char *words; /* of rank 0, joined; NULL: placed here */
} agent_cases[] = {
    {"localhost:2", "local", 0, 0, false, NULL},
    {"otherhost-x:2", "ssh", 0, 0, false, "--place"},
    {"otherhost-x:3", "ssh", DC_GPU_BIND_RANK, 1, true,
     "--place --place-gpu-bind rank --place-no-bind -v"},
    /* a host with more slots than ranks: its agent is told the slots */
    {"otherhost-x:4", "ssh", DC_GPU_BIND_NONE, 0, false,
     "--place --place-gpu-bind none --place-slots 4"},
};

START_TEST (t_agents)
{
    struct dc_hosts *hosts;
    struct dc_plan_opts po = {.np = _i == 3 ? 2 : 0};
    dc_error_t err;

    hosts = dc_hosts_parse_list (agent_cases[_i].hosts, &err);
    ck_assert (hosts != NULL);
    struct dc_plan *plan = dc_plan_create (hosts, &po, &err);
    ck_assert_msg (plan != NULL, "%s", err.text);
    struct dc_jobspec js = {.hosts = hosts, .plan = plan};
    struct dc_job_args a = {.launcher = agent_cases[_i].launcher,
                            .gpu_bind = agent_cases[_i].gpu_bind,
                            .verbose = agent_cases[_i].verbose,
                            .no_bind = agent_cases[_i].no_bind};

    unsetenv ("SLURM_JOB_ID");
    ck_assert_int_eq (dc_jobspec_init (&a, &js, &err), DC_STATUS_OK);
    ck_assert_int_gt (js.master_port, 0);
    /* every rank here: 127.0.0.1; rank 0 on a host without an address:
     * its name (dc_log says why) */
    ck_assert_str_eq (js.master_addr, _i ? "otherhost-x" : "127.0.0.1");
    char *const *w = dc_jobspec_worker_args (&js, 0);
    if (!agent_cases[_i].words)
        ck_assert_ptr_null (w);
    else {
        char *line = dc_launch_shell_join (w);
        ck_assert (line != NULL);
        ck_assert_str_eq (line, agent_cases[_i].words);
        free (line);
    }
    /* out of range, NULL */
    ck_assert_ptr_null (dc_jobspec_worker_args (&js, plan->size));
    ck_assert_ptr_null (dc_jobspec_worker_args (&js, -1));
    ck_assert_ptr_null (dc_jobspec_worker_args (NULL, 0));
    dc_jobspec_fini (&js);
    dc_jobspec_fini (&js); /* twice: harmless */
    ck_assert_ptr_null (js.plan);
}
END_TEST

/* Slots: --dry-run and -L local probe nothing; the slots stay. */
START_TEST (t_probe_slots_none)
{
    struct dc_hosts *hosts;
    dc_error_t err;
    struct dc_job_args a[] = {
        {.launcher = "ssh", .dry_run = true},
        {.launcher = "local"},
        {.launcher = "mpi"},
    };

    hosts = dc_hosts_parse_list ("otherhost-x,otherhost-y:3", &err);
    ck_assert (hosts != NULL);
    for (size_t i = 0; i < sizeof (a) / sizeof (a[0]); i++) {
        dc_jobspec_probe_slots (&a[i], hosts);
        ck_assert_int_eq (hosts->v[0].slots, 1);
        ck_assert_int_eq (hosts->v[1].slots, 3);
    }
    dc_hosts_destroy (hosts);
}
END_TEST

static char *hx[] = {"A=1", "B"};
static char *own[] = {"--model", "m.safetensors"};
static const struct {
    struct dc_job_args a;
    const char *launcher;
    int nown;
    const char *want;
} driver_cases[] = {
    {{.hosts = "h[1-2]"}, "mpi", 0, "/d exec -L mpi -H 'h[1-2]' -- /d infer"},
    {{.hostfile = "hf", .np = 4, .verbose = 1},
     "slurm",
     2,
     "/d exec -L slurm -f hf -n 4 --srun-mpi pmix -v -- /d infer --model "
     "m.safetensors"},
    {{.plan = {.map_by = DC_MAP_BY_NODE, .oversubscribe = true},
      .no_bind = true,
      .gpu_bind = DC_GPU_BIND_RANK,
      .export_all = true,
      .kill_grace = 1.5,
      .master_port = 2900,
      .exports = hx,
      .nexports = 2},
     "mpi",
     0,
     "/d exec -L mpi --map-by node --oversubscribe --bind none --gpu-bind "
     "rank --export-all --kill-grace 1.5 --master-port 2900 -x A -x B -- /d "
     "infer"},
    {{.plan = {.ppr_n = 2, .ppr_obj = DC_PPR_NUMA, .gpus_per_rank = 2},
      .wdir = "/w d",
      .exclude = "h3",
      .lo = {.srun_mpi = "pmi2", .srun_args = "-p x"}},
     "slurm",
     0,
     "/d exec -L slurm --map-by ppr:2:numa --gpus-per-rank 2 --wdir '/w d' "
     "--exclude h3 --srun-args '-p x' --srun-mpi pmi2 -- /d infer"},
};

START_TEST (t_driver_argv)
{
    char **av =
        dc_jobspec_driver_argv (&driver_cases[_i].a, driver_cases[_i].launcher,
                                "/d", "infer", own, driver_cases[_i].nown);
    ck_assert (av != NULL);
    char *line = dc_launch_shell_join (av);
    ck_assert (line != NULL);
    ck_assert_str_eq (line, driver_cases[_i].want);
    /* the values of -x NAME=VALUE never on the command line */
    ck_assert_ptr_null (strstr (line, "A=1"));
    free (line);
    dc_jobspec_strv_free (av);
}
END_TEST

static const struct {
    const char *block;
    size_t len;
    long bytes; /* claimed */
    int status;
    const char *text;
    const char *set; /* a name set after; NULL: JS_EB_* stays unset */
} block_cases[] = {
    {"JS_EB_A=1\0JS_EB_B=x=y", 22, 22, DC_STATUS_OK, NULL, "JS_EB_B"},
    {"", 0, 0, DC_STATUS_OK, NULL, NULL},
    {"JS_EB_A=1", 9, 9, DC_STATUS_LAUNCH, "does not end with a NUL", NULL},
    {"JS_EB_A=1\0=bad", 15, 15, DC_STATUS_LAUNCH, "without a name", NULL},
    {"JS_EB_A=1\0noeq", 15, 15, DC_STATUS_LAUNCH, "without a name", NULL},
    {"JS_EB_A", 7, 10, DC_STATUS_LAUNCH, "ended after 7 of 10 bytes", NULL},
    {"", 0, -1, DC_STATUS_USAGE, "--env-stdin -1", NULL},
    {"", 0, DC_ENV_BLOCK_MAX + 1L, DC_STATUS_USAGE, "expected 0 to", NULL},
};

START_TEST (t_env_read)
{
    int fd[2];
    dc_error_t err = {.text = ""};

    unsetenv ("JS_EB_A");
    unsetenv ("JS_EB_B");
    ck_assert_int_eq (pipe (fd), 0);
    ck_assert_int_eq (write (fd[1], block_cases[_i].block, block_cases[_i].len),
                      (ssize_t)block_cases[_i].len);
    close (fd[1]);
    int st = dc_jobspec_env_read (fd[0], block_cases[_i].bytes, &err);
    close (fd[0]);
    ck_assert_msg (st == block_cases[_i].status, "case %d: %d (%s)", _i, st,
                   err.text);
    if (block_cases[_i].text)
        ck_assert_msg (strstr (err.text, block_cases[_i].text), "case %d: %s",
                       _i, err.text);
    if (block_cases[_i].set) {
        ck_assert_str_eq (getenv ("JS_EB_A"), "1");
        ck_assert_str_eq (getenv ("JS_EB_B"), "x=y");
    } else /* all or nothing */
        ck_assert_ptr_null (getenv ("JS_EB_A"));
}
END_TEST

START_TEST (t_env_unwrap)
{
    setenv ("DCRUN_XENV_0", "JS_UW=a=b", 1);
    setenv ("DCRUN_XENV_1", "noequals", 1);
    setenv ("DCRUN_XENV_2", "=x", 1);
    unsetenv ("JS_UW");
    dc_jobspec_env_unwrap ();
    ck_assert_str_eq (getenv ("JS_UW"), "a=b");
    ck_assert_ptr_null (getenv ("DCRUN_XENV_0"));
    ck_assert_ptr_null (getenv ("DCRUN_XENV_1"));
    ck_assert_ptr_null (getenv ("DCRUN_XENV_2"));
    ck_assert_ptr_null (getenv ("noequals"));
    dc_jobspec_env_unwrap (); /* nothing left: nothing happens */
    ck_assert_str_eq (getenv ("JS_UW"), "a=b");
}
END_TEST

static const struct {
    struct dc_job_args a;
    bool wanted;
} wanted_cases[] = {
    {{.hosts = "h1"}, true},
    {{.hostfile = "f"}, true},
    {{.np = 2}, true},
    {{.launcher = "local"}, true},
};

START_TEST (t_wanted)
{
    ck_assert_int_eq (dc_jobspec_wanted (&wanted_cases[_i].a),
                      wanted_cases[_i].wanted);
}
END_TEST

/* A Slurm allocation asks for ranks, but not from inside its job steps;
 * $DCRUN_HOSTFILE and $PBS_NODEFILE do; empty ones do not. */
START_TEST (t_wanted_env)
{
    struct dc_job_args a = {0};

    unsetenv ("SLURM_STEP_ID");
    unsetenv ("DCRUN_HOSTFILE");
    unsetenv ("PBS_NODEFILE");
    setenv ("SLURM_JOB_NODELIST", "n[1-2]", 1);
    ck_assert (dc_jobspec_wanted (&a));
    setenv ("DCRUN_HOSTFILE", "f", 1);
    setenv ("SLURM_STEP_ID", "0", 1);
    ck_assert (dc_jobspec_wanted (&a));
    unsetenv ("DCRUN_HOSTFILE");
    setenv ("PBS_NODEFILE", "p", 1);
    ck_assert (dc_jobspec_wanted (&a));
    unsetenv ("SLURM_JOB_NODELIST");
    unsetenv ("SLURM_STEP_ID");
    unsetenv ("PBS_NODEFILE");
}
END_TEST

START_TEST (t_dryrun)
{
    char *t = dc_dryrun_data (NULL, 0, 0, "/d");
    ck_assert_str_eq (t, "rows: 0: nothing to run\n");
    free (t);
    ck_assert (dc_jobspec_self_path ()[0] == '/');
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("jobspec");
    TCase *tc = tcase_create ("jobspec");
    SRunner *sr;
    int nf;

#define N(a) (int)(sizeof (a) / sizeof (a[0]))
    tcase_add_loop_test (tc, t_rank_env, 0, N (env_cases));
    tcase_add_test (tc, t_unset_exports);
    tcase_add_loop_test (tc, t_agents, 0, N (agent_cases));
    tcase_add_test (tc, t_probe_slots_none);
    tcase_add_loop_test (tc, t_driver_argv, 0, N (driver_cases));
    tcase_add_loop_test (tc, t_env_read, 0, N (block_cases));
    tcase_add_test (tc, t_env_unwrap);
    tcase_add_loop_test (tc, t_wanted, 0, N (wanted_cases));
    tcase_add_test (tc, t_wanted_env);
    tcase_add_test (tc, t_dryrun);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
