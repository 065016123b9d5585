/* test_map_npy.c - lib/run/map_npy: dtypes and .npy headers of any plain
 * dtype, hostile headers refused, the output written complete or not at
 * all */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/run/map_npy.h"

struct icase {
    const char *descr;
    size_t size; /* 0: refused */
    const char *err;
};

static const struct icase icases[] = {
    {"<f4", 4, NULL},
    {"<f8", 8, NULL},
    {"<f2", 2, NULL},
    {"|u1", 1, NULL},
    {"|b1", 1, NULL},
    {">i4", 4, NULL},
    {"<c16", 16, NULL},
    {"|S10", 10, NULL},
    {"<U3", 12, NULL},
    {"|V7", 7, NULL},
    {"<M8[ns]", 8, NULL},
    {"<m8[D]", 8, NULL},
    {"f4", 4, NULL},
    {"|O", 0, "object arrays are pickled"},
    {"", 0, "no dtype"},
    {"<", 0, "not a plain NumPy dtype"},
    {"<x4", 0, "not a plain NumPy dtype"},
    {"<f", 0, "no item size"},
    {"<f0", 0, "not a plain NumPy dtype"},
    {"<f4junk", 0, "not a plain NumPy dtype"},
    {"<f99999999999", 0, "not a plain NumPy dtype"},
    {"<M8[ns", 0, "not a plain NumPy dtype"},
    {"<i4[ns]", 0, "not a plain NumPy dtype"},
};

START_TEST (t_itemsize)
{
    const struct icase *c = &icases[_i];
    dc_error_t e = {.text = ""};
    size_t n = dc_map_itemsize (c->descr, &e);

    ck_assert_msg (n == c->size, "%s: %zu, expected %zu", c->descr, n, c->size);
    if (c->err)
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->descr,
                       e.text, c->err);
}
END_TEST

/* A header of version v around dict, then data bytes. */
static size_t mk (uint8_t *buf, size_t cap, int v, const char *dict,
                  size_t data)
{
    size_t dl = strlen (dict), pre = v == 1 ? 10 : 12;
    size_t hl = dl + 1;

    ck_assert (pre + hl + data <= cap);
    memcpy (buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)v;
    buf[7] = 0;
    buf[8] = (uint8_t)(hl & 0xff);
    buf[9] = (uint8_t)(hl >> 8);
    if (v != 1) {
        buf[10] = (uint8_t)(hl >> 16);
        buf[11] = 0;
    }
    memcpy (buf + pre, dict, dl);
    buf[pre + dl] = '\n';
    memset (buf + pre + hl, 0, data);
    return pre + hl + data;
}

struct pcase {
    const char *name;
    int version;
    const char *dict;
    size_t data;
    const char *err; /* NULL: accepted */
    uint64_t rows, row_bytes;
};

static const struct pcase pcases[] = {
    {"f4 (4, 3)", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 48, NULL, 4,
     12},
    {"1-D u1", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }",
     5, NULL, 5, 1},
    {"1-D in Fortran order", 1,
     "{'descr': '<i8', 'fortran_order': True, 'shape': (2,), }", 16, NULL, 2,
     8},
    {"version 2, 3-D", 2,
     "{'descr': '<U2', 'fortran_order': False, 'shape': (2, 2, 2), }", 64, NULL,
     2, 32},
    {"keys in any order", 3,
     "{'shape': (1, 1), 'fortran_order': False, 'descr': '>c8'}", 8, NULL, 1,
     8},
    {"no rows", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, NULL, 0,
     12},
    {"extra data", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 9, NULL, 1,
     4},
    {"0-D", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4,
     "a 0-d array has no rows", 0, 0},
    {"2-D in Fortran order", 1,
     "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
     "Fortran order", 0, 0},
    {"structured", 1,
     "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
     "structured dtypes", 0, 0},
    {"object", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
     16, "object arrays", 0, 0},
    {"data short", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 47,
     "data truncated", 0, 0},
    {"shape overflows", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (2, "
     "9223372036854775807, 4), }",
     0, "overflows", 0, 0},
    {"shape too large", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': "
     "(99999999999999999999,), }",
     0, "bad shape", 0, 0},
    {"negative shape", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", 0,
     "bad shape", 0, 0},
    {"no shape", 1, "{'descr': '<f8', 'fortran_order': False, }", 0,
     "lacks 'shape'", 0, 0},
    {"no descr", 1, "{'fortran_order': False, 'shape': (1,), }", 8,
     "lacks 'descr'", 0, 0},
    {"unknown key", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4,
     "unexpected key 'x'", 0, 0},
    {"duplicate key", 1,
     "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': "
     "(1,)}",
     8, "unexpected key 'descr'", 0, 0},
    {"not a dict", 1, "['descr']", 0, "not a dict", 0, 0},
    {"unterminated", 1, "{'descr': '<f4", 0, "bad descr", 0, 0},
    {"bad fortran_order", 1,
     "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4,
     "bad fortran_order", 0, 0},
    {"33 dimensions", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': "
     "(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}",
     4, "more than 32", 0, 0},
    {"version 9", 9, "{}", 0, "unknown .npy version 9", 0, 0},
};

START_TEST (t_parse)
{
    const struct pcase *c = &pcases[_i];
    uint8_t buf[1024];
    struct dc_map_arr a;
    dc_error_t e = {.text = ""};
    size_t len = mk (buf, sizeof (buf), c->version, c->dict, c->data);
    int rc = dc_map_npy_parse (buf, len, len, &a, &e);

    if (c->err) {
        ck_assert_msg (rc == -1, "%s: accepted", c->name);
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->name,
                       e.text, c->err);
        return;
    }
    ck_assert_msg (rc == 0, "%s: %s", c->name, e.text);
    ck_assert_uint_eq (a.rows, c->rows);
    ck_assert_uint_eq (a.row_bytes, c->row_bytes);
    ck_assert_uint_eq (a.data_offset, len - c->data);
}
END_TEST

START_TEST (t_short_buffers)
{
    uint8_t buf[256];
    struct dc_map_arr a;
    dc_error_t e;
    size_t len =
        mk (buf, sizeof (buf), 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);

    /* every prefix is refused, none read past its end */
    for (size_t n = 0; n < len - 4; n++)
        ck_assert_int_eq (dc_map_npy_parse (buf, n, n, &a, &e), -1);
    ck_assert_int_eq (dc_map_npy_parse (buf, len, len, &a, &e), 0);
    ck_assert_int_eq (
        dc_map_npy_parse ((const uint8_t *)"\x93NUMPZ\1\0\0\0", 10, 10, &a, &e),
        -1);
    ck_assert (strstr (e.text, "no magic"));
}
END_TEST

/* A header we write reads back; the output appears only on commit. */
START_TEST (t_header_and_output)
{
    int64_t shape[3] = {5, 2, 3};
    uint8_t hdr[1024];
    struct dc_map_arr a;
    dc_error_t e;
    size_t hl = dc_map_npy_header (">i2", 3, shape, hdr, sizeof (hdr));

    ck_assert_uint_gt (hl, 0);
    ck_assert_uint_eq (hl % 64, 0);
    ck_assert_int_eq (dc_map_npy_parse (hdr, hl, hl + 60, &a, &e), 0);
    ck_assert_str_eq (a.descr, ">i2");
    ck_assert_int_eq (a.ndim, 3);
    ck_assert_uint_eq (a.rows, 5);
    ck_assert_uint_eq (a.row_bytes, 12);
    ck_assert_uint_eq (dc_map_npy_header ("<f4", 1, shape, hdr, 16), 0);

    char dir[] = "/tmp/dcrun-test-mapnpy-XXXXXX", path[256];
    ck_assert_ptr_nonnull (mkdtemp (dir));
    snprintf (path, sizeof (path), "%s/y.npy", dir);
    int64_t tr[1] = {2};
    struct dc_map_out *w = dc_map_out_create (path, "<u2", 3, 1, tr, 4, &e);
    ck_assert_ptr_nonnull (w);
    uint8_t rows[12] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0};
    ck_assert_int_eq (dc_map_out_write (w, 1, 2, rows + 4, &e), 0);
    ck_assert_int_eq (dc_map_out_write (w, 2, 2, rows, &e), -1);
    ck_assert_int_eq (dc_map_out_write (w, 0, 1, rows, &e), 0);
    ck_assert_int_eq (access (path, F_OK), -1); /* not before commit */
    char sha[65];
    ck_assert_int_eq (dc_map_out_commit (w, sha, &e), 0);
    ck_assert_uint_eq (strlen (sha), 64);
    dc_map_out_destroy (w);
    int fd = dc_map_npy_open (path, &a, &e);
    ck_assert_int_ge (fd, 0);
    ck_assert_str_eq (a.descr, "<u2");
    ck_assert_uint_eq (a.rows, 3);
    ck_assert_int_eq (a.shape[1], 2);
    uint8_t back[12];
    ck_assert_int_eq (pread (fd, back, 12, (off_t)a.data_offset), 12);
    ck_assert (!memcmp (back, rows, 12));
    close (fd);
    unlink (path);

    /* destroyed without commit: nothing left */
    w = dc_map_out_create (path, "<f4", 1, 0, NULL, 4, &e);
    ck_assert_ptr_nonnull (w);
    dc_map_out_destroy (w);
    ck_assert_int_eq (access (path, F_OK), -1);
    ck_assert_int_eq (rmdir (dir), 0);
    ck_assert_int_eq (dc_map_npy_open ("/nonexistent/x.npy", &a, &e), -1);
    ck_assert (strstr (e.text, "/nonexistent/x.npy"));
}
END_TEST

/* dc_map_shape_str: the words of the shape checks, cut to fit */
static const struct {
    int ndim;
    int64_t shape[3];
    size_t len;
    const char *want;
} shapes[] = {
    {0, {0}, 64, "(rows)"},
    {1, {3}, 64, "(rows, 3)"},
    {3, {2, 0, 9223372036854775807}, 64, "(rows, 2, 0, 9223372036854775807)"},
    {2, {3, 4}, 8, "(rows, "},
    {2, {3, 4}, 1, ""},
    {1, {-1}, 64, "(rows, -1)"},
};

START_TEST (t_shape_str)
{
    char buf[64];

    memset (buf, 'z', sizeof (buf));
    dc_map_shape_str (shapes[_i].ndim, shapes[_i].shape, buf, shapes[_i].len);
    ck_assert_str_eq (buf, shapes[_i].want);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("map_npy");
    TCase *tc = tcase_create ("map_npy");

    tcase_add_loop_test (tc, t_itemsize, 0,
                         (int)(sizeof (icases) / sizeof (icases[0])));
    tcase_add_loop_test (tc, t_parse, 0,
                         (int)(sizeof (pcases) / sizeof (pcases[0])));
    tcase_add_test (tc, t_short_buffers);
    tcase_add_loop_test (tc, t_shape_str, 0,
                         (int)(sizeof (shapes) / sizeof (shapes[0])));
    tcase_add_test (tc, t_header_and_output);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
