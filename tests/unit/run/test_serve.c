/* test_serve.c - lib/run/serve.c: the rank's own GPUs first
 * (dc_serve_gpus) and the comm of `dcrun serve` from its environment
 * (dc_serve_comm_create), as tables of cases with empty and hostile input.
 */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/run/serve.h"

#define LONG64                                                                 \
    "0123456789012345678901234567890123456789012345678901234567890123"

static const struct {
    const char *own, *vis; /* DCRUN_GPUS, CUDA_VISIBLE_DEVICES */
    size_t size;           /* of out; 0: 1024 */
    const char *want;      /* NULL: left as it is */
} gpu_cases[] = {
    {NULL, NULL, 0, NULL},
    {NULL, "0,1", 0, NULL},
    {"", "0,1", 0, NULL},
    {"", NULL, 0, NULL},
    {"2", NULL, 0, "2"},                              /* --gpu-bind none */
    {"1,0", NULL, 0, "1,0"},                          /* as it is */
    {"1", "0,1,2,3", 0, "1"},                         /* --gpu-bind host */
    {"3,1", "0,1,2,3", 0, "3,1"},                     /* own's order */
    {"GPU-a,GPU-b", "GPU-b,GPU-a", 0, "GPU-a,GPU-b"}, /* UUIDs */
    {"1", "2,3", 0, NULL},                            /* none of them */
    {"1", "", 0, NULL},
    {"1,9", "1,2", 0, "1"}, /* only those in vis */
    {"1", "11,1", 0, "1"},  /* whole entries */
    {"11", "1,111", 0, NULL},
    {"1,", "1", 0, "1"},    /* a trailing comma */
    {",,,", "0", 0, NULL},  /* empty entries */
    {"0,1", "0,1", 4, "0"}, /* out too small: cut */
    {"0", "0", 2, NULL},
    {LONG64, LONG64, 0, NULL}, /* 64 bytes: never */
    {"1," LONG64, LONG64 ",1", 0, "1"},
};

START_TEST (t_gpus)
{
    char out[1024];
    size_t size = gpu_cases[_i].size ? gpu_cases[_i].size : sizeof (out);
    const char *got =
        dc_serve_gpus (gpu_cases[_i].own, gpu_cases[_i].vis, out, size);
    const char *want = gpu_cases[_i].want;

    ck_assert_msg (want ? got && !strcmp (got, want) : got == NULL,
                   "case %d: got '%s', expected '%s'", _i, got ? got : "(null)",
                   want ? want : "(null)");
    if (got && !gpu_cases[_i].vis)
        ck_assert_ptr_eq (got, gpu_cases[_i].own); /* own, not a copy */
}
END_TEST

static const struct {
    const char *rank, *size, *gpus, *vis; /* the environment, NULL: unset */
    long want_rank;
    int want_size;
    const char *want_vis; /* CUDA_VISIBLE_DEVICES after, NULL: unset */
} env_cases[] = {
    {NULL, NULL, NULL, NULL, 0, 1, NULL},
    {"3", "4", NULL, "0,1", 3, 4, "0,1"},
    {"", "", NULL, NULL, 0, 1, NULL},
    {"-1", "-2", NULL, NULL, 0, 1, NULL},
    {"2x", " 3", NULL, NULL, 0, 3, NULL}, /* strtol: leading blanks */
    {"99999999999999999999999", "1e3", NULL, NULL, 0, 1, NULL},
    {"1", "2", "1", "0,1", 1, 2, "1"},
    {"1", "2", "5", NULL, 1, 2, "5"},
    {"0", "2", "7", "0,1", 0, 2, "0,1"},
};

START_TEST (t_comm_env)
{
    long rank = -5;
    dc_error_t err;
    struct dc_comm *c;
    struct dc_comm_msg msg;
    int null_fd = open ("/dev/null", O_RDONLY);
    int out_fd = open ("/dev/null", O_WRONLY);
    int saved = dup (0);

    ck_assert (null_fd >= 0 && out_fd >= 0 && saved >= 0);
    ck_assert (dup2 (null_fd, 0) == 0); /* the reader thread sees EOF */
#define SET(name, v) (v ? setenv (name, v, 1) : unsetenv (name))
    SET ("DCRUN_RANK", env_cases[_i].rank);
    SET ("DCRUN_GPUS", env_cases[_i].gpus);
    SET ("CUDA_VISIBLE_DEVICES", env_cases[_i].vis);
    SET ("DCRUN_SIZE", env_cases[_i].size);
    c = dc_serve_comm_create (out_fd, &rank, &err);
    ck_assert_msg (c != NULL, "case %d: %s", _i, err.text);
    ck_assert_int_eq (rank, env_cases[_i].want_rank);
    ck_assert_int_eq (c->rank, env_cases[_i].want_rank);
    ck_assert_int_eq (c->size, env_cases[_i].want_size);
    /* the reader saw the end of fd 0: the hub is gone */
    ck_assert_int_lt (dc_comm_recv (c, &msg, 5000, &err), 0);
    ck_assert_msg (strstr (err.text, "closed the channel"), "%s", err.text);
    const char *vis = getenv ("CUDA_VISIBLE_DEVICES");
    const char *want = env_cases[_i].want_vis;
    ck_assert_msg (want ? vis && !strcmp (vis, want) : vis == NULL,
                   "case %d: CUDA_VISIBLE_DEVICES '%s'", _i,
                   vis ? vis : "(unset)");
    dc_comm_destroy (c);
    dup2 (saved, 0);
    close (saved);
    close (null_fd);
    close (out_fd);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("serve");
    TCase *tc = tcase_create ("serve");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_gpus, 0,
                         sizeof (gpu_cases) / sizeof (gpu_cases[0]));
    tcase_add_loop_test (tc, t_comm_env, 0,
                         sizeof (env_cases) / sizeof (env_cases[0]));
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
