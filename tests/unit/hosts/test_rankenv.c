/* test_rankenv.c - the rank environment contract (lib/hosts/rankenv.h) */
#include <string.h>

#include "check_main.h"
#include "lib/hosts/hostfile.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/rankenv.h"
#include "lib/hosts/sources.h"

static const char *find (char **env, const char *name)
{
    size_t n = strlen (name);
    for (int i = 0; env && env[i]; i++)
        if (!strncmp (env[i], name, n) && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

/* Each case: hostfile, --gpu-bind, rank, then NAME=VALUE expectations
 * ("NAME=" followed by nothing: the name must be absent). */
static const struct {
    const char *hosts;
    enum dc_gpu_bind bind;
    int rank;
    const char *want[6];
} cases[] = {
    {"a slots=2 gpus=5,7\nb slots=2 gpus=0,1\n",
     DC_GPU_BIND_HOST,
     1,
     {"CUDA_VISIBLE_DEVICES=5,7", "DCRUN_GPUS=7", "LOCAL_RANK=1",
      "GROUP_RANK=0", "RANK=1"}},
    {"a slots=2 gpus=5,7\nb slots=2 gpus=0,1\n",
     DC_GPU_BIND_HOST,
     2,
     {"CUDA_VISIBLE_DEVICES=0,1", "DCRUN_GPUS=0", "GROUP_RANK=1",
      "LOCAL_WORLD_SIZE=2", "WORLD_SIZE=4", "ROLE_RANK=2"}},
    {"a slots=2 gpus=5,7\n",
     DC_GPU_BIND_RANK,
     1,
     {"CUDA_VISIBLE_DEVICES=7", "DCRUN_GPUS=7"}},
    {"a slots=2 gpus=5,7\n",
     DC_GPU_BIND_NONE,
     0,
     {"CUDA_VISIBLE_DEVICES=", "DCRUN_GPUS=5"}},
    /* more ranks than GPUs: each GPU once, in local-rank order */
    {"a slots=4 gpus=3,2\n",
     DC_GPU_BIND_HOST,
     3,
     {"CUDA_VISIBLE_DEVICES=3,2", "DCRUN_GPUS=2"}},
    /* no GPUs: neither variable */
    {"a slots=2\n",
     DC_GPU_BIND_HOST,
     0,
     {"CUDA_VISIBLE_DEVICES=", "DCRUN_GPUS=", "OMP_NUM_THREADS=",
      "TORCHELASTIC_RESTART_COUNT=0", "ROLE_NAME=default"}},
};

START_TEST (t_cases)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse (
        cases[_i].hosts, strlen (cases[_i].hosts), "p", &err);
    struct dc_plan_opts po = {0};
    ck_assert_msg (h != NULL, "%s", err.text);
    struct dc_plan *p = dc_plan_create (h, &po, &err);
    ck_assert_msg (p != NULL, "%s", err.text);
    struct dc_rankenv_opts o = {.master_addr = "10.0.0.1",
                                .master_port = 29500,
                                .gpu_bind = cases[_i].bind};
    char **env = dc_rankenv_create (p, cases[_i].rank, &o, &err);
    ck_assert_msg (env != NULL, "%s", err.text);
    ck_assert_str_eq (find (env, "MASTER_ADDR"), "10.0.0.1");
    ck_assert_str_eq (find (env, "MASTER_PORT"), "29500");
    ck_assert_ptr_nonnull (find (env, "TORCHELASTIC_RUN_ID"));
    for (int k = 0; k < 6 && cases[_i].want[k]; k++) {
        const char *w = cases[_i].want[k], *eq = strchr (w, '=');
        char name[64];
        snprintf (name, sizeof (name), "%.*s", (int)(eq - w), w);
        const char *got = find (env, name);
        if (!eq[1])
            ck_assert_msg (got == NULL, "case %d: %s=%s set", _i, name, got);
        else
            ck_assert_msg (got && !strcmp (got, eq + 1),
                           "case %d: %s=%s, expected %s", _i, name,
                           got ? got : "(unset)", eq + 1);
    }
    dc_rankenv_free (env);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}
END_TEST

START_TEST (t_omp_and_hostile)
{
    dc_error_t err = {{0}};
    struct dc_hosts *h = dc_hostfile_parse ("a slots=1\n", 10, "p", &err);
    struct dc_plan_opts po = {0};
    struct dc_plan *p = dc_plan_create (h, &po, &err);
    struct dc_rankenv_opts o = {0};
    char **env;

    ck_assert_ptr_nonnull (p);
    free (p->ranks[0].cpus);
    p->ranks[0].cpus = strdup ("0-3,8");
    env = dc_rankenv_create (p, 0, &o, &err);
    ck_assert_str_eq (find (env, "OMP_NUM_THREADS"), "5");
    ck_assert_str_eq (find (env, "MASTER_ADDR"), "127.0.0.1");
    dc_rankenv_free (env);
    o.omp_given = true;
    env = dc_rankenv_create (p, 0, &o, &err);
    ck_assert_ptr_null (find (env, "OMP_NUM_THREADS"));
    dc_rankenv_free (env);
    /* out of range, NULL plan */
    ck_assert_ptr_null (dc_rankenv_create (p, 1, &o, &err));
    ck_assert_ptr_null (dc_rankenv_create (p, -1, &o, &err));
    ck_assert_ptr_null (dc_rankenv_create (NULL, 0, &o, &err));
    dc_rankenv_free (NULL);
    dc_plan_destroy (p);
    dc_hosts_destroy (h);
}
END_TEST

/* CPU lists: good, empty, NULL, hostile */
static const struct {
    const char *cpus;
    int want;
} cpu_cases[] = {
    {"0-3,8", 5},
    {"7", 1},
    {"", 0},
    {NULL, 0},
    {"3-1", 0},
    {"a", 0},
    {"1,,2", 0},
    {"-1", 0},
    {"0-", 0},
    {"1,", 1},
    {"0-99999999999999999999", 0},
    {"0-2000000", 0},
};

START_TEST (t_cpus)
{
    ck_assert_int_eq (dc_rankenv_count_cpus (cpu_cases[_i].cpus),
                      cpu_cases[_i].want);
}
END_TEST

/* names: rank variables, the deny list, and what gets through */
static const struct {
    const char *name;
    bool rank_var, denied;
} names[] = {
    {"RANK", true, true},
    {"RANK=3", true, true},
    {"MASTER_ADDR", true, true},
    {"DCRUN_GPUS=1", true, true},
    {"RANKS", false, false},
    {"SSH_AUTH_SOCK=/x", false, true},
    {"DISPLAY=:0", false, true},
    {"HOME=/root", false, true},
    {"_=/usr/bin/env", false, true},
    {"DBUS_SESSION_BUS_ADDRESS=x", false, true},
    {"NCCL_DEBUG=INFO", false, false},
    {"PATH=/bin", false, false},
    {"", false, false},
    {NULL, false, true},
};

START_TEST (t_names)
{
    ck_assert_msg (dc_rankenv_is_rank_var (names[_i].name) ==
                       names[_i].rank_var,
                   "%s", names[_i].name ? names[_i].name : "NULL");
    ck_assert_msg (dc_rankenv_export_denied (names[_i].name) ==
                       names[_i].denied,
                   "%s", names[_i].name ? names[_i].name : "NULL");
}
END_TEST

START_TEST (t_gpu_bind_and_exclude)
{
    enum dc_gpu_bind b;
    dc_error_t err = {{0}};

    ck_assert_int_eq (dc_rankenv_gpu_bind_parse ("rank", &b), 0);
    ck_assert_int_eq (b, DC_GPU_BIND_RANK);
    ck_assert_int_eq (dc_rankenv_gpu_bind_parse ("none", &b), 0);
    ck_assert_int_eq (b, DC_GPU_BIND_NONE);
    ck_assert_int_eq (dc_rankenv_gpu_bind_parse ("", &b), -1);
    ck_assert_int_eq (dc_rankenv_gpu_bind_parse (NULL, &b), -1);
    ck_assert_int_eq (dc_rankenv_gpu_bind_parse ("RANK", &b), -1);

    struct dc_hosts *h = dc_hosts_parse_list ("n[1-4],bob@m:2222", &err);
    ck_assert_msg (h != NULL, "%s", err.text);
    ck_assert_int_eq ((int)h->count, 5);
    ck_assert_int_eq (h->v[4].port, 2222);
    ck_assert_int_eq (h->v[4].slots, 1);
    struct dc_hosts *x = dc_hosts_exclude (h, "n[2-3]", &err);
    ck_assert_msg (x != NULL, "%s", err.text);
    ck_assert_int_eq ((int)x->count, 3);
    ck_assert_str_eq (x->v[1].name, "n4");
    dc_hosts_destroy (x);
    ck_assert_ptr_null (dc_hosts_exclude (h, "n[1-4],m", &err));
    ck_assert_ptr_nonnull (strstr (err.text, "no host"));
    ck_assert_ptr_null (dc_hosts_exclude (h, "", &err));
    ck_assert_ptr_null (dc_hosts_exclude (h, "n[", &err));
    ck_assert_ptr_null (dc_hosts_exclude (NULL, "a", &err));
    dc_hosts_destroy (h);
    ck_assert_ptr_null (dc_hosts_parse_list ("bob@m:0", &err));
    ck_assert_ptr_null (dc_hosts_parse_list ("bob@m:65536", &err));
    ck_assert_ptr_null (dc_hosts_parse_list ("bob@m:x", &err));
}
END_TEST

static const struct {
    const char *tpn;
    long node;
    int want;
} tpn_cases[] = {
    {"2(x3),1", 0, 2},
    {"2(x3),1", 2, 2},
    {"2(x3),1", 3, 1},
    {"2(x3),1", 4, -1}, /* no such node */
    {"4", 0, 4},
    {"1,2,3", 2, 3},
    {"1,2,3", -1, -1},
    {"", 0, -1},
    {NULL, 0, -1},
    {"0", 0, -1},
    {"-2", 0, -1},
    {"2(x0)", 0, -1},
    {"2(x-1),1", 0, -1},
    {"2(x3", 0, -1},
    {"2(x)", 0, -1},
    {"2(3)", 0, -1},
    {"2,", 0, -1},
    {",2", 0, -1},
    {"2x", 0, -1},
    {"99999999999999999999", 0, -1},
    {"1(x99999999999999999999)", 0, -1},
    {"1000001", 0, -1},
};

START_TEST (t_slurm_tpn)
{
    ck_assert_msg (
        dc_rankenv_slurm_local_size (tpn_cases[_i].tpn, tpn_cases[_i].node) ==
            tpn_cases[_i].want,
        "'%s' node %ld", tpn_cases[_i].tpn ? tpn_cases[_i].tpn : "NULL",
        tpn_cases[_i].node);
}
END_TEST

START_TEST (t_from_launcher)
{
    /* srun's task 3 of 5 on node 1 of "2,3": local size 3 */
    unsetenv ("OMPI_COMM_WORLD_RANK");
    unsetenv ("SLURM_PROCID");
    ck_assert (!dc_rankenv_from_launcher ());
    ck_assert_ptr_null (getenv ("DCRUN_RANK"));
    setenv ("SLURM_PROCID", "3", 1);
    setenv ("SLURM_STEP_ID", "0", 1);
    setenv ("SLURM_NTASKS", "5", 1);
    setenv ("SLURM_LOCALID", "1", 1);
    setenv ("SLURM_NODEID", "1", 1);
    setenv ("SLURM_STEP_TASKS_PER_NODE", "2,3", 1);
    ck_assert (dc_rankenv_from_launcher ());
    ck_assert_str_eq (getenv ("RANK"), "3");
    ck_assert_str_eq (getenv ("DCRUN_SIZE"), "5");
    ck_assert_str_eq (getenv ("LOCAL_RANK"), "1");
    ck_assert_str_eq (getenv ("LOCAL_WORLD_SIZE"), "3");
    ck_assert_str_eq (getenv ("GROUP_RANK"), "1");
    ck_assert_str_eq (getenv ("ROLE_WORLD_SIZE"), "5");
    ck_assert_str_eq (getenv ("TORCHELASTIC_RESTART_COUNT"), "0");
    ck_assert_ptr_nonnull (getenv ("DCRUN_HOST"));
    /* mpirun's names win */
    setenv ("OMPI_COMM_WORLD_RANK", "0", 1);
    setenv ("OMPI_COMM_WORLD_SIZE", "2", 1);
    setenv ("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
    setenv ("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    setenv ("OMPI_COMM_WORLD_NODE_RANK", "0", 1);
    ck_assert (dc_rankenv_from_launcher ());
    ck_assert_str_eq (getenv ("RANK"), "0");
    ck_assert_str_eq (getenv ("WORLD_SIZE"), "2");
    ck_assert_str_eq (getenv ("LOCAL_WORLD_SIZE"), "2");
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("rankenv");
    TCase *tc = tcase_create ("rankenv");

    tcase_add_loop_test (tc, t_cases, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_omp_and_hostile);
    tcase_add_loop_test (tc, t_cpus, 0,
                         sizeof (cpu_cases) / sizeof (cpu_cases[0]));
    tcase_add_loop_test (tc, t_names, 0, sizeof (names) / sizeof (names[0]));
    tcase_add_test (tc, t_gpu_bind_and_exclude);
    tcase_add_loop_test (tc, t_slurm_tpn, 0,
                         sizeof (tpn_cases) / sizeof (tpn_cases[0]));
    tcase_add_test (tc, t_from_launcher);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
