/* test_exec_job.c - the ranks of one run of `dcrun exec`
 * (lib/run/exec_job.c) over a real jobspec: the rank environment, the
 * working folder of local and ssh ranks, the remote dcrun, MASTER_PORT in
 * use, the --dry-run plan.  Nothing is started. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/hosts/hosts.h"
#include "lib/hosts/plan.h"
#include "lib/hosts/sources.h"
#include "lib/run/exec_job.h"
#include "lib/run/status.h"

static bool has (char *const *env, const char *entry)
{
    for (int i = 0; env && env[i]; i++)
        if (!strcmp (env[i], entry))
            return true;
    return false;
}

static const struct {
    const char *hosts, *launcher, *wdir, *remote;
    const char *chdir;     /* o.chdir; "CWD": this folder */
    const char *rank_wdir; /* the ranks' wdir; "CWD": this folder */
} cases[] = {
    {"localhost:2", "local", NULL, NULL, NULL, NULL},
    {"localhost:2", "local", "/tmp", NULL, "/tmp", NULL},
    {"localhost:1", "local", "", NULL, "", NULL}, /* empty: kept */
    {"otherhost-x:2", "ssh", NULL, NULL, NULL, "CWD"},
    {"otherhost-x:2", "ssh", "w d; rm -rf /", NULL, NULL, "w d; rm -rf /"},
    {"otherhost-x:1", "ssh", NULL, "/opt/dcrun", NULL, "CWD"},
};

START_TEST (t_ranks)
{
    char cwd[PATH_MAX];
    char *cmd[] = {"echo", "hi", NULL};
    dc_error_t err;
    struct dc_plan_opts po = {0};
    struct dc_hosts *hosts = dc_hosts_parse_list (cases[_i].hosts, &err);

    ck_assert_ptr_nonnull (getcwd (cwd, sizeof (cwd)));
    ck_assert_ptr_nonnull (hosts);
    struct dc_plan *plan = dc_plan_create (hosts, &po, &err);
    ck_assert_msg (plan != NULL, "%s", err.text);
    struct dc_jobspec js = {.hosts = hosts, .plan = plan};
    struct dc_job_args a = {.launcher = cases[_i].launcher,
                            .dry_run = true,
                            .wdir = cases[_i].wdir,
                            .lo.remote_dcrun = cases[_i].remote};
    struct dc_exec_opts base = {.kill_on_bad_exit = true,
                                .stdin_to = DC_EXEC_STDIN_ALL};
    struct dc_exec_job x;

    unsetenv ("SLURM_JOB_ID");
    ck_assert_int_eq (dc_jobspec_init (&a, &js, &err), DC_STATUS_OK);
    ck_assert_int_eq (dc_exec_job_init (&x, &base, &a, &js, cmd, &err),
                      DC_STATUS_OK);
    ck_assert_int_eq (x.n, plan->size);
    ck_assert_ptr_eq (x.o.ranks, x.ranks);
    ck_assert (x.o.kill_on_bad_exit);
    ck_assert_str_eq (x.o.launcher, cases[_i].launcher);
    ck_assert_int_eq (x.o.master_port, js.master_port);
    ck_assert_str_eq (x.o.lo.remote_dcrun, cases[_i].remote
                                               ? cases[_i].remote
                                               : dc_jobspec_self_path ());
    if (!cases[_i].chdir)
        ck_assert_ptr_null (x.o.chdir);
    else
        ck_assert_str_eq (x.o.chdir, cases[_i].chdir);
    for (int r = 0; r < x.n; r++) {
        char want[32];
        snprintf (want, sizeof (want), "RANK=%d", r);
        ck_assert_msg (has (x.ranks[r].env, want), "rank %d: no %s", r, want);
        ck_assert_ptr_eq (x.ranks[r].argv, cmd);
        ck_assert (!x.ranks[r].stdin_data); /* --dry-run: no stdin */
        const char *w = cases[_i].rank_wdir;
        if (!w)
            ck_assert_ptr_null (x.ranks[r].wdir);
        else
            ck_assert_str_eq (x.ranks[r].wdir, strcmp (w, "CWD") ? w : cwd);
    }
    char *text = dc_exec_dry_run (&x.o);
    ck_assert_ptr_nonnull (text);
    ck_assert_msg (strstr (text, hosts->v[0].name), "%s", text);
    free (text);
    dc_exec_job_fini (&x);
    dc_exec_job_fini (&x); /* twice: harmless */
    ck_assert_ptr_null (x.ranks);
    dc_jobspec_fini (&js);
}
END_TEST

/* MASTER_PORT in use on this host: DC_STATUS_LAUNCH before any rank
 * starts, with a hint; --dry-run does not check. */
START_TEST (t_port_in_use)
{
    int s = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof (sa);
    char *cmd[] = {"true", NULL};
    dc_error_t err;

    ck_assert_int_ge (s, 0);
    ck_assert_int_eq (bind (s, (struct sockaddr *)&sa, sizeof (sa)), 0);
    ck_assert_int_eq (listen (s, 1), 0);
    ck_assert_int_eq (getsockname (s, (struct sockaddr *)&sa, &len), 0);
    for (int dry = 0; dry < 2; dry++) {
        struct dc_plan_opts po = {0};
        struct dc_hosts *hosts = dc_hosts_parse_list ("localhost:1", &err);
        struct dc_plan *plan = dc_plan_create (hosts, &po, &err);
        struct dc_jobspec js = {.hosts = hosts, .plan = plan};
        struct dc_job_args a = {.launcher = "local",
                                .dry_run = dry,
                                .master_port = ntohs (sa.sin_port)};
        struct dc_exec_opts base = {0};
        struct dc_exec_job x;

        ck_assert_ptr_nonnull (plan);
        ck_assert_int_eq (dc_jobspec_init (&a, &js, &err), DC_STATUS_OK);
        int st = dc_exec_job_init (&x, &base, &a, &js, cmd, &err);
        if (dry)
            ck_assert_int_eq (st, DC_STATUS_OK);
        else {
            ck_assert_int_eq (st, DC_STATUS_LAUNCH);
            ck_assert_msg (strstr (err.text, "MASTER_PORT"), "%s", err.text);
        }
        dc_exec_job_fini (&x);
        dc_jobspec_fini (&js);
    }
    close (s);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("exec_job");
    TCase *tc = tcase_create ("core");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_ranks, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_port_in_use);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
