/* test_optval.c - the values of shared options, checked (optval.h)
 *
 * A table per option: every good value, near misses (case, spaces, a
 * prefix), empty, NULL and a hostile value (quotes, a newline, very long:
 * the error text is cut to fit, never overflows); the output is left alone
 * on an error.
 */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "lib/run/optval.h"

static char longval[2000];

static const struct {
    const char *arg;
    bool ok;
} device_cases[] = {
    {"cpu", true},  {"cuda", true},   {"auto", true},   {"CPU", false},
    {"gpu", false}, {" cpu", false},  {"cudax", false}, {"", false},
    {NULL, false},  {"a'\nb", false},
};

START_TEST (test_device)
{
    const char *dev = "unset";
    dc_error_t err = {.text = ""};
    const char *arg = device_cases[_i].arg;
    int rc = dc_optval_device (arg, &dev, &err);

    if (device_cases[_i].ok) {
        ck_assert_int_eq (rc, 0);
        ck_assert_ptr_eq (dev, arg);
        return;
    }
    ck_assert_int_eq (rc, -1);
    ck_assert_str_eq (dev, "unset");
    if (arg) {
        char want[128];
        snprintf (want, sizeof (want),
                  "--device '%s': expected cpu, cuda or auto", arg);
        ck_assert_str_eq (err.text, want);
    } else
        ck_assert_str_eq (err.text, "--device: no value");
}
END_TEST

START_TEST (test_dtype_activation_map_by)
{
    enum dc_dtype dt = DC_DTYPE_F32;
    enum dc_map_by mb = DC_MAP_BY_NODE;
    const char *act = "unset";
    dc_error_t err;

    ck_assert_int_eq (dc_optval_dtype ("bf16", &dt, &err), 0);
    ck_assert_int_eq (dt, DC_DTYPE_BF16);
    ck_assert_int_eq (dc_optval_dtype ("f64", &dt, &err), -1);
    ck_assert_int_eq (dt, DC_DTYPE_BF16);
    ck_assert_str_eq (err.text,
                      "--dtype 'f64': expected f32, tf32, f16 or bf16");
    ck_assert_int_eq (dc_optval_dtype (NULL, &dt, &err), -1);
    ck_assert_int_eq (dc_optval_dtype ("", &dt, &err), -1);

    ck_assert_int_eq (dc_optval_activation ("gelu", &act, &err), 0);
    ck_assert_str_eq (act, "gelu");
    ck_assert_int_eq (dc_optval_activation ("sigmoid", &act, &err), -1);
    ck_assert_str_eq (act, "gelu");
    ck_assert_str_eq (err.text, "--activation 'sigmoid': expected relu, "
                                "gelu, tanh or none");
    ck_assert_int_eq (dc_optval_activation (NULL, &act, &err), -1);

    ck_assert_int_eq (dc_optval_map_by ("slot", &mb, &err), 0);
    ck_assert_int_eq (mb, DC_MAP_BY_SLOT);
    ck_assert_int_eq (dc_optval_map_by ("node", &mb, &err), 0);
    ck_assert_int_eq (mb, DC_MAP_BY_NODE);
    ck_assert_int_eq (dc_optval_map_by ("core", &mb, &err), 0);
    ck_assert_int_eq (mb, DC_MAP_BY_SLOT);
    ck_assert_int_eq (dc_optval_map_by ("socket", &mb, &err), -1);
    ck_assert_int_eq (mb, DC_MAP_BY_SLOT);
    ck_assert_str_eq (err.text, "--map-by 'socket': expected slot or node");
    ck_assert_int_eq (dc_optval_map_by (NULL, &mb, &err), -1);
}
END_TEST

START_TEST (test_long)
{
    const char *dev = NULL;
    dc_error_t err;

    memset (longval, 'x', sizeof (longval) - 1);
    ck_assert_int_eq (dc_optval_device (longval, &dev, &err), -1);
    ck_assert_ptr_null (dev);
    ck_assert_uint_eq (strlen (err.text), sizeof (err.text) - 1);
    ck_assert (!strncmp (err.text, "--device 'xxx", 13));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("optval");
    TCase *tc = tcase_create ("optval");

    tcase_add_loop_test (
        tc, test_device, 0,
        (int)(sizeof (device_cases) / sizeof (device_cases[0])));
    tcase_add_test (tc, test_dtype_activation_map_by);
    tcase_add_test (tc, test_long);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
