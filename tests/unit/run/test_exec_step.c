/* test_exec_step.c - `dcrun exec` as one task of a Slurm step
 * (lib/run/exec_step.c): MASTER_ADDR and MASTER_PORT from the step's
 * variables, rank 0's check of the port, the worker's words.  Tables of
 * cases, with missing, empty and hostile values; no Slurm needed. */
#include <check.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/run/exec_step.h"

static const char *const slurm_vars[] = {
    "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_JOB_ID",
    "SLURM_STEP_ID",       "SLURM_PROCID",       "SLURMD_NODENAME",
    "MASTER_ADDR",         "MASTER_PORT",        NULL,
};

static void clear_env (void)
{
    for (int i = 0; slurm_vars[i]; i++)
        unsetenv (slurm_vars[i]);
}

/* MASTER_PORT: given, kept, or from the job and step ids. */
START_TEST (test_master_port)
{
    static const struct {
        int given;
        const char *job, *step, *preset, *want;
    } cases[] = {
        {0, "100", "2", NULL, "23102"},   /* 20000 + (100*31 + 2) % 20000 */
        {0, NULL, "0", NULL, "20000"},    /* no job id: 0 */
        {0, "1000", "5", NULL, "31005"},  /* 31005 % 20000 */
        {0, "7", "1", "4242", "4242"},    /* already set: kept */
        {5555, "7", "1", "4242", "5555"}, /* --master-port wins */
        {0, "junk", "x", NULL, "20000"},  /* hostile ids: 0 */
        {0, "99999999999999999999", "1", NULL, NULL}, /* huge: a port */
    };

    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        clear_env ();
        if (cases[i].job)
            setenv ("SLURM_JOB_ID", cases[i].job, 1);
        setenv ("SLURM_STEP_ID", cases[i].step, 1);
        if (cases[i].preset)
            setenv ("MASTER_PORT", cases[i].preset, 1);
        dc_exec_step_master (cases[i].given);
        const char *got = getenv ("MASTER_PORT");
        ck_assert_msg (got != NULL, "case %zu: no MASTER_PORT", i);
        if (cases[i].want)
            ck_assert_msg (!strcmp (got, cases[i].want),
                           "case %zu: MASTER_PORT %s, expected %s", i, got,
                           cases[i].want);
        long p = atol (got);
        ck_assert_msg (p >= 1 && p <= 65535, "case %zu: port %ld", i, p);
        ck_assert_ptr_null (getenv ("MASTER_ADDR")); /* no node list */
    }
}
END_TEST

/* MASTER_ADDR: the first node of the step's list (numeric when it
 * resolves), else the job's; one already set is kept; a bad list none. */
START_TEST (test_master_addr)
{
    static const struct {
        const char *step_nl, *job_nl, *preset, *want;
    } cases[] = {
        {"localhost", NULL, NULL, "127.0.0.1"},
        {NULL, "localhost,other", NULL, "127.0.0.1"},
        {"localhost", "elsewhere", "10.1.2.3", "10.1.2.3"},
        {"no-such-host-dcrun.invalid", NULL, NULL,
         "no-such-host-dcrun.invalid"},
        {"node[", NULL, NULL, NULL}, /* not a host list */
        {"", NULL, NULL, NULL},
    };

    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        clear_env ();
        setenv ("SLURM_STEP_ID", "0", 1);
        if (cases[i].step_nl)
            setenv ("SLURM_STEP_NODELIST", cases[i].step_nl, 1);
        if (cases[i].job_nl)
            setenv ("SLURM_JOB_NODELIST", cases[i].job_nl, 1);
        if (cases[i].preset)
            setenv ("MASTER_ADDR", cases[i].preset, 1);
        dc_exec_step_master (0);
        const char *got = getenv ("MASTER_ADDR");
        if (!cases[i].want)
            ck_assert_msg (got == NULL, "case %zu: MASTER_ADDR %s", i, got);
        else
            ck_assert_msg (got && !strcmp (got, cases[i].want),
                           "case %zu: MASTER_ADDR %s, expected %s", i,
                           got ? got : "(unset)", cases[i].want);
    }
}
END_TEST

/* A port in use here: only rank 0's task reports it, with its host. */
START_TEST (test_port_busy)
{
    int s = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof (a);
    char port[16], host[64];

    ck_assert_int_ge (s, 0);
    a.sin_addr.s_addr = htonl (INADDR_ANY);
    ck_assert_int_eq (bind (s, (struct sockaddr *)&a, sizeof (a)), 0);
    ck_assert_int_eq (listen (s, 1), 0);
    ck_assert_int_eq (getsockname (s, (struct sockaddr *)&a, &len), 0);
    snprintf (port, sizeof (port), "%d", ntohs (a.sin_port));

    static const struct {
        const char *procid, *port, *node;
        bool busy;
    } cases[] = {
        {"0", NULL, "n01", true},   /* NULL: the bound port */
        {"1", NULL, "n01", false},  /* not rank 0 */
        {NULL, NULL, "n01", false}, /* no SLURM_PROCID */
        {"00", NULL, "n01", false}, /* not "0" */
        {"0", "0", "n01", false},   /* no port */
        {"0", "junk", "n01", false},
        {"0", NULL, NULL, true}, /* the host's own name */
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        clear_env ();
        if (cases[i].procid)
            setenv ("SLURM_PROCID", cases[i].procid, 1);
        setenv ("MASTER_PORT", cases[i].port ? cases[i].port : port, 1);
        if (cases[i].node)
            setenv ("SLURMD_NODENAME", cases[i].node, 1);
        memset (host, 'x', sizeof (host));
        int got = dc_exec_step_port_busy (host, sizeof (host));
        ck_assert_msg ((got > 0) == cases[i].busy, "case %zu: got %d", i, got);
        if (!cases[i].busy)
            continue;
        ck_assert_int_eq (got, atoi (port));
        ck_assert_msg (memchr (host, '\0', sizeof (host)) != NULL,
                       "case %zu: host not terminated", i);
        if (cases[i].node)
            ck_assert_str_eq (host, cases[i].node);
        else
            ck_assert_int_gt ((int)strlen (host), 0);
    }
    close (s);
}
END_TEST

/* The worker's words: --wdir when given, -e for exports with a value. */
START_TEST (test_argv)
{
    char *cmd[] = {"echo", "hi there", NULL};
    char *none[] = {NULL};
    char *exports[] = {"A=1", "B", "NCCL_*", "C=x=y", "D="};
    static const struct {
        const char *wdir;
        int nexports;
        bool empty_cmd;
        const char *want;
    } cases[] = {
        {NULL, 0, false, "self worker --control none -- echo|hi there"},
        {"/w d", 0, false,
         "self worker --control none --wdir /w d -- echo|hi there"},
        {NULL, 5, false,
         "self worker --control none -e A=1 -e C=x=y -e D= -- echo|hi "
         "there"},
        {NULL, 2, true, "self worker --control none -e A=1 --"},
    };

    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        char **av = dc_exec_step_argv ("self", cases[i].wdir, exports,
                                       cases[i].nexports,
                                       cases[i].empty_cmd ? none : cmd);
        char got[512] = "";
        ck_assert_ptr_nonnull (av);
        for (int k = 0; av[k]; k++) {
            bool in_cmd = k > 0 && !strcmp (av[k - 1], "echo");
            strcat (got, k == 0 ? "" : in_cmd ? "|" : " ");
            strcat (got, av[k]);
        }
        ck_assert_msg (!strcmp (got, cases[i].want), "case %zu: '%s'", i, got);
        free (av);
    }
    char **av = dc_exec_step_argv ("self", NULL, NULL, 0, NULL);
    ck_assert_ptr_nonnull (av);
    ck_assert_str_eq (av[4], "--");
    ck_assert_ptr_null (av[5]);
    free (av);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("exec_step");
    TCase *tc = tcase_create ("core");
    SRunner *sr;
    int nf;

    tcase_add_test (tc, test_master_port);
    tcase_add_test (tc, test_master_addr);
    tcase_add_test (tc, test_port_busy);
    tcase_add_test (tc, test_argv);
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
