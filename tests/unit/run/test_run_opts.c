/* test_run_opts.c - the option checks of lib/run's commands before any
 * file is read (dc_map_check, dc_infer_check, dc_train_check) and the data
 * path --dry-run shows (dc_map_io_plan, dc_infer_io_plan), as tables of
 * cases with missing, empty and conflicting options.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/run/infer.h"
#include "lib/run/map.h"
#include "lib/run/train.h"

static char *cmd[] = {"cat", NULL};

static const struct {
    const char *input, *output;
    int argc;
    bool files;
    enum dc_io_mode io;
    const char *err; /* NULL: good */
    const char *plan;
} map_cases[] = {
    {"x", "y", 1, false, DC_IO_AUTO, NULL, "auto: each rank copies"},
    {"x", "y", 1, false, DC_IO_RELAY, NULL, "relay"},
    {"x", "y", 1, false, DC_IO_DIRECT, NULL, "direct"},
    {"x", "y", 1, true, DC_IO_AUTO, NULL, "relay"},
    {"x", "y", 1, true, DC_IO_RELAY, NULL, "relay"},
    {"", "", 1, false, DC_IO_AUTO, NULL, "auto"}, /* the files say */
    {NULL, "y", 1, false, DC_IO_AUTO, "--input and --output are required",
     NULL},
    {"x", NULL, 1, false, DC_IO_AUTO, "--input and --output are required",
     NULL},
    {NULL, NULL, 0, true, DC_IO_DIRECT, "--input and --output are required",
     NULL},
    {"x", "y", 0, false, DC_IO_AUTO, "no command to run: dcrun map", NULL},
    {"x", "y", 0, true, DC_IO_DIRECT, "no command to run", NULL},
    {"x", "y", 1, true, DC_IO_DIRECT, "--io direct: not with --files", NULL},
};

START_TEST (t_map)
{
    struct dc_map_opts o = {.input = map_cases[_i].input,
                            .output = map_cases[_i].output,
                            .argc = map_cases[_i].argc,
                            .argv = cmd,
                            .files = map_cases[_i].files,
                            .io_mode = map_cases[_i].io};
    dc_error_t err = {.text = ""};
    int rc = dc_map_check (&o, &err);

    if (!map_cases[_i].err) {
        ck_assert_msg (rc == 0, "case %d: %s", _i, err.text);
        ck_assert_msg (!strncmp (dc_map_io_plan (&o), map_cases[_i].plan,
                                 strlen (map_cases[_i].plan)),
                       "case %d: %s", _i, dc_map_io_plan (&o));
    } else {
        ck_assert_int_eq (rc, -1);
        ck_assert_msg (strstr (err.text, map_cases[_i].err), "case %d: %s", _i,
                       err.text);
    }
}
END_TEST

static const struct {
    enum dc_io_mode io;
    enum dc_split split;
    const char *err;  /* NULL: good */
    const char *plan; /* NULL: none (a split) */
} infer_cases[] = {
    {DC_IO_AUTO, DC_SPLIT_DATA, NULL, "auto: each rank reads"},
    {DC_IO_RELAY, DC_SPLIT_DATA, NULL, "relay"},
    {DC_IO_DIRECT, DC_SPLIT_DATA, NULL, "direct"},
    {DC_IO_AUTO, DC_SPLIT_LAYERS, NULL, NULL},
    {DC_IO_RELAY, DC_SPLIT_HYBRID, NULL, NULL},
    {DC_IO_DIRECT, DC_SPLIT_AUTO, NULL, NULL},
    {DC_IO_DIRECT, DC_SPLIT_LAYERS, "--io direct: not with --split layers",
     NULL},
    {DC_IO_DIRECT, DC_SPLIT_HYBRID, "--io direct: not with --split hybrid",
     NULL},
};

START_TEST (t_infer)
{
    struct dc_infer_opts o = {.io.io_mode = infer_cases[_i].io,
                              .split.split = infer_cases[_i].split};
    dc_error_t err = {.text = ""};
    int rc = dc_infer_check (&o, &err);
    const char *plan = dc_infer_io_plan (&o);

    if (infer_cases[_i].err) {
        ck_assert_int_eq (rc, -1);
        ck_assert_msg (strstr (err.text, infer_cases[_i].err), "case %d: %s",
                       _i, err.text);
        return;
    }
    ck_assert_msg (rc == 0, "case %d: %s", _i, err.text);
    if (!infer_cases[_i].plan)
        ck_assert_msg (plan == NULL, "case %d: %s", _i, plan);
    else
        ck_assert_msg (plan && !strncmp (plan, infer_cases[_i].plan,
                                         strlen (infer_cases[_i].plan)),
                       "case %d: %s", _i, plan ? plan : "(null)");
}
END_TEST

static const struct {
    const char *model, *input, *target, *output, *dir;
    bool resume;
    int64_t every;
    enum dc_optim optim;
    double momentum, lr;
    const char *err; /* NULL: good */
    double want_lr;
} train_cases[] = {
    {"m", "x", "t", "o", NULL, false, 0, DC_OPTIM_SGD, 0, 0, NULL, 0.01},
    {"m", "x", "t", "o", NULL, false, 0, DC_OPTIM_ADAM, 0, 0, NULL, 0.001},
    {"m", "x", "t", "o", NULL, false, 0, DC_OPTIM_ADAM, 0, 0.5, NULL, 0.5},
    {"m", "x", "t", "o", NULL, false, 0, DC_OPTIM_SGD, 0.9, 2, NULL, 2},
    {"m", "x", "t", "o", "d", true, 5, DC_OPTIM_SGD, 0, 0, NULL, 0.01},
    {"", "", "", "", "", true, 1, DC_OPTIM_SGD, 0, 0, NULL, 0.01},
    {NULL, "x", "t", "o", NULL, false, 0, DC_OPTIM_SGD, 0, 0,
     "--model, --input, --target and --output are required", 0},
    {"m", NULL, "t", "o", "d", false, 0, DC_OPTIM_SGD, 0, 0, "are required", 0},
    {"m", "x", NULL, "o", NULL, false, 0, DC_OPTIM_SGD, 0, 0, "are required",
     0},
    {"m", "x", "t", NULL, NULL, true, 0, DC_OPTIM_ADAM, 0.5, 0, "are required",
     0},
    {"m", "x", "t", "o", NULL, true, 0, DC_OPTIM_SGD, 0, 0,
     "--resume needs --checkpoint-dir", 0},
    {"m", "x", "t", "o", NULL, true, 3, DC_OPTIM_SGD, 0, 0,
     "--resume needs --checkpoint-dir", 0},
    {"m", "x", "t", "o", NULL, false, 3, DC_OPTIM_SGD, 0, 0,
     "--checkpoint-every needs --checkpoint-dir", 0},
    {"m", "x", "t", "o", "d", false, 0, DC_OPTIM_ADAM, 0.5, 0,
     "--momentum applies to sgd; adam has its own", 0},
};

START_TEST (t_train)
{
    struct dc_train_cfg c = {.model = train_cases[_i].model,
                             .input = train_cases[_i].input,
                             .target = train_cases[_i].target,
                             .output = train_cases[_i].output,
                             .ckpt_dir = train_cases[_i].dir,
                             .resume = train_cases[_i].resume,
                             .checkpoint_every = train_cases[_i].every,
                             .to = {.optim = train_cases[_i].optim,
                                    .momentum = train_cases[_i].momentum,
                                    .lr = train_cases[_i].lr}};
    dc_error_t err = {.text = ""};
    int rc = dc_train_check (&c, &err);

    if (train_cases[_i].err) {
        ck_assert_int_eq (rc, -1);
        ck_assert_msg (strstr (err.text, train_cases[_i].err), "case %d: %s",
                       _i, err.text);
        ck_assert (c.to.lr == train_cases[_i].lr); /* untouched */
        return;
    }
    ck_assert_msg (rc == 0, "case %d: %s", _i, err.text);
    ck_assert_msg (c.to.lr == train_cases[_i].want_lr, "case %d: lr %g", _i,
                   c.to.lr);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("run_opts");
    TCase *tc = tcase_create ("run_opts");
    SRunner *sr;
    int nf;

    tcase_add_loop_test (tc, t_map, 0,
                         sizeof (map_cases) / sizeof (map_cases[0]));
    tcase_add_loop_test (tc, t_infer, 0,
                         sizeof (infer_cases) / sizeof (infer_cases[0]));
    tcase_add_loop_test (tc, t_train, 0,
                         sizeof (train_cases) / sizeof (train_cases[0]));
    suite_add_tcase (s, tc);
    sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    nf = srunner_ntests_failed (sr);
    srunner_free (sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
