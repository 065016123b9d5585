/* test_npy.c - .npy reader and writer: round trips, every rejection */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "check_main.h"
#include "lib/util/file.h"
#include "lib/util/half.h"
#include "lib/formats/npy.h"
#include "lib/util/sha256.h"

#define DC_TMP_PREFIX "/tmp/test_npy"
#include "tmpdir.h"

/* An .npy file with the given version, dictionary text (padded to 64 with
 * a final newline when pad) and data_bytes zero bytes of data. */
static void make_npy (const char *path, int version, const char *dict, int pad,
                      size_t data_bytes)
{
    size_t pre = version == 1 ? 10 : 12;
    size_t dl = strlen (dict);
    size_t hl = dl;
    if (pad)
        hl = ((pre + dl + 1 + 63) / 64) * 64 - pre;
    size_t total = pre + hl + data_bytes;
    unsigned char *b = calloc (1, total);
    memcpy (b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    b[8] = hl & 0xff;
    b[9] = (hl >> 8) & 0xff;
    if (version != 1) {
        b[10] = (hl >> 16) & 0xff;
        b[11] = (hl >> 24) & 0xff;
    }
    memcpy (b + pre, dict, dl);
    if (pad) {
        memset (b + pre + dl, ' ', hl - dl);
        b[pre + hl - 1] = '\n';
    }
    for (size_t i = 0; i < data_bytes; i++)
        b[pre + hl + i] = (unsigned char)i;
    write_file (path, b, total);
    free (b);
}

START_TEST (t_header_as_numpy)
{
    /* np.save('a.npy', np.zeros((3, 4), np.float32)) with NumPy 1.24 */
    const char want[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', "
                        "'fortran_order': False, 'shape': (3, 4), }";
    float z[12] = {0};
    int64_t shape[2] = {3, 4};
    dc_error_t err;
    char buf[256];

    mode_t old = umask (027);
    ck_assert_int_eq (
        dc_npy_save (tpath ("a.npy"), DC_NPY_F4, 2, shape, z, &err), 0);
    umask (old);
    int fd = open (tpath ("a.npy"), O_RDONLY);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (read (fd, buf, sizeof (buf)), 128 + 48);
    close (fd);
    ck_assert_mem_eq (buf, want, sizeof (want) - 1);
    for (size_t i = sizeof (want) - 1; i < 127; i++)
        ck_assert_int_eq (buf[i], ' ');
    ck_assert_int_eq (buf[127], '\n');
    struct stat sb;
    ck_assert_int_eq (stat (tpath ("a.npy"), &sb), 0);
    ck_assert_int_eq (sb.st_mode & 0777, 0640);
}
END_TEST

static const struct {
    enum dc_npy_dtype dtype;
    int ndim;
    int64_t shape[3];
} rt_cases[] = {
    {DC_NPY_F4, 2, {5, 3}},      {DC_NPY_F4, 1, {7}},
    {DC_NPY_F4, 0, {0}},         {DC_NPY_F4, 3, {2, 3, 4}},
    {DC_NPY_F2, 2, {4, 6}},      {DC_NPY_F8, 2, {3, 5}},
    {DC_NPY_I8, 1, {9}},         {DC_NPY_F4, 2, {0, 8}},
    {DC_NPY_F4, 2, {100000, 1}},
};

START_TEST (t_roundtrip)
{
    int i = _i;
    size_t n = 1;
    dc_error_t err;
    for (int d = 0; d < rt_cases[i].ndim; d++)
        n *= (size_t)rt_cases[i].shape[d];
    float *f = malloc ((n + 1) * sizeof (float));
    int64_t *l = malloc ((n + 1) * sizeof (int64_t));
    for (size_t k = 0; k < n; k++) {
        f[k] = (float)k * 0.25f - 3.0f; /* exact in f16 for small k */
        l[k] = (int64_t)k * 1000000007LL - 5;
    }
    const void *data = rt_cases[i].dtype == DC_NPY_I8 ? (void *)l : (void *)f;
    ck_assert_int_eq (dc_npy_save (tpath ("r.npy"), rt_cases[i].dtype,
                                   rt_cases[i].ndim, rt_cases[i].shape, data,
                                   &err),
                      0);
    struct dc_npy *a = dc_npy_open (tpath ("r.npy"), &err);
    ck_assert_msg (a != NULL, "%s", err.text);
    ck_assert_int_eq (a->dtype, rt_cases[i].dtype);
    ck_assert_int_eq (a->ndim, rt_cases[i].ndim);
    ck_assert_int_eq (a->version, 1);
    ck_assert_int_eq (a->data_offset % 64, 0);
    for (int d = 0; d < a->ndim; d++)
        ck_assert_int_eq (a->shape[d], rt_cases[i].shape[d]);
    ck_assert_uint_eq (a->rows * a->row_elems, n);
    if (rt_cases[i].dtype == DC_NPY_I8) {
        int64_t *back = calloc (n + 1, sizeof (int64_t));
        ck_assert_int_eq (dc_npy_read_i64 (a, 0, a->rows, back, &err), 0);
        ck_assert_mem_eq (back, l, n * sizeof (int64_t));
        free (back);
        ck_assert_int_eq (dc_npy_read_f32 (a, 0, 1, (float *)l, &err), -1);
        ck_assert_ptr_nonnull (strstr (err.text, "integer array"));
    } else {
        float *back = calloc (n + 1, sizeof (float));
        ck_assert_int_eq (dc_npy_read_f32 (a, 0, a->rows, back, &err), 0);
        ck_assert_mem_eq (back, f, n * sizeof (float));
        /* a range of rows in the middle */
        if (a->rows >= 3) {
            memset (back, 0, n * sizeof (float));
            ck_assert_int_eq (dc_npy_read_f32 (a, 1, 2, back, &err), 0);
            ck_assert_mem_eq (back, f + a->row_elems,
                              2 * a->row_elems * sizeof (float));
        }
        ck_assert_int_eq (dc_npy_read_i64 (a, 0, 1, l, &err), -1);
        free (back);
    }
    /* out of range */
    ck_assert_int_eq (dc_npy_read_f32 (a, a->rows, 1, f, &err), -1);
    ck_assert_int_eq (errno, ERANGE);
    ck_assert_int_eq (dc_npy_read_f32 (a, 1, SIZE_MAX, f, &err), -1);
    if (a->dtype != DC_NPY_I8)
        ck_assert_int_eq (dc_npy_read_f32 (a, a->rows, 0, f, &err), 0);
    dc_npy_close (a);
    free (f);
    free (l);
}
END_TEST

START_TEST (t_versions)
{
    /* formats 2.0 and 3.0 carry a 4-byte header length */
    dc_error_t err;
    for (int v = 1; v <= 3; v++) {
        make_npy (tpath ("v.npy"), v,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                  1, 16);
        struct dc_npy *a = dc_npy_open (tpath ("v.npy"), &err);
        ck_assert_msg (a != NULL, "v%d: %s", v, err.text);
        ck_assert_int_eq (a->version, v);
        ck_assert_int_eq (a->rows, 2);
        ck_assert_int_eq (a->data_offset % 64, 0);
        float x[4];
        ck_assert_int_eq (dc_npy_read_f32 (a, 0, 2, x, &err), 0);
        unsigned char b[4] = {0, 1, 2, 3};
        ck_assert_mem_eq (&x[0], b, 4);
        dc_npy_close (a);
    }
    /* keys in any order, double quotes, no trailing comma, Python 2 longs,
     * unaligned header */
    make_npy (tpath ("o.npy"), 1,
              "{\"shape\": (3L,2L), \"fortran_order\": False, "
              "\"descr\": \"<f8\"}\n",
              0, 48);
    struct dc_npy *a = dc_npy_open (tpath ("o.npy"), &err);
    ck_assert_msg (a != NULL, "%s", err.text);
    ck_assert_int_eq (a->dtype, DC_NPY_F8);
    ck_assert_int_eq (a->row_elems, 2);
    dc_npy_close (a);
}
END_TEST

START_TEST (t_conversions)
{
    /* f2 and f8 are converted on read; f32 rounds to f16 on write */
    static const float vals[] = {0.0f,  -0.0f,   1.0f,     -2.5f,    65504.0f,
                                 1e-7f, 6.1e-5f, 3.14159f, INFINITY, -INFINITY};
    size_t n = sizeof (vals) / sizeof (vals[0]);
    int64_t shape[1] = {(int64_t)n};
    dc_error_t err;
    float back[16];

    for (int k = 0; k < 2; k++) {
        enum dc_npy_dtype dt = k ? DC_NPY_F8 : DC_NPY_F2;
        ck_assert_int_eq (
            dc_npy_save (tpath ("c.npy"), dt, 1, shape, vals, &err), 0);
        struct dc_npy *a = dc_npy_open (tpath ("c.npy"), &err);
        ck_assert_ptr_nonnull (a);
        ck_assert_int_eq (dc_npy_read_f32 (a, 0, n, back, &err), 0);
        for (size_t i = 0; i < n; i++) {
            float want = dt == DC_NPY_F8
                             ? vals[i]
                             : dc_half_to_float (dc_half_from_float (vals[i]));
            ck_assert_msg (memcmp (&want, &back[i], 4) == 0, "%d %zu: %g != %g",
                           k, i, back[i], want);
        }
        dc_npy_close (a);
    }
    /* known f16 bit patterns (as numpy.float16) */
    ck_assert_uint_eq (dc_half_from_float (1.0f), 0x3c00);
    ck_assert_uint_eq (dc_half_from_float (65504.0f), 0x7bff);
    ck_assert_uint_eq (dc_half_from_float (65520.0f), 0x7c00);
    ck_assert_uint_eq (dc_half_from_float (5.960464477539063e-08f), 0x0001);
    ck_assert_uint_eq (dc_half_from_float (2.98023223876953125e-08f), 0);
    ck_assert_uint_eq (dc_half_from_float (1.0009765625f), 0x3c01);
    ck_assert_uint_eq (dc_half_from_float (1.00048828125f), 0x3c00); /* tie */
    ck_assert_uint_eq (dc_half_from_float (NAN) & 0x7e00, 0x7e00);
    ck_assert_uint_eq (dc_bfloat_from_float (1.0f), 0x3f80);
    ck_assert_uint_eq (dc_bfloat_from_float (1.00390625f), 0x3f80); /* tie */
    ck_assert_uint_eq (dc_bfloat_from_float (1.01171875f), 0x3f82); /* tie */
    ck_assert (isnan (dc_bfloat_to_float (dc_bfloat_from_float (NAN))));
    /* every finite f16 survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7c00) != 0x7c00)
            ck_assert_uint_eq (dc_half_from_float (dc_half_to_float (h)), h);
}
END_TEST

START_TEST (t_writer_offsets_hash)
{
    int64_t shape[2] = {10, 3};
    float rows[30];
    dc_error_t err;
    char hex[65];

    for (int i = 0; i < 30; i++)
        rows[i] = (float)i;
    /* in order: hash while writing */
    struct dc_npy_writer *w =
        dc_npy_writer_create (tpath ("w.npy"), DC_NPY_F4, 2, shape, true, &err);
    ck_assert_msg (w != NULL, "%s", err.text);
    ck_assert_int_eq (dc_npy_writer_data_offset (w) % 64, 0);
    ck_assert_uint_eq (dc_npy_writer_row_bytes (w), 12);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 0, 4, rows, &err), 0);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 4, 6, rows + 12, &err), 0);
    ck_assert_ptr_null (dc_npy_writer_sha256 (w));
    ck_assert (access (tpath ("w.npy"), F_OK) != 0); /* not yet */
    ck_assert_int_eq (dc_npy_writer_commit (w, &err), 0);
    ck_assert_int_eq (dc_sha256_file (tpath ("w.npy"), hex, &err), 0);
    ck_assert_str_eq (dc_npy_writer_sha256 (w), hex);
    dc_npy_writer_destroy (w);

    /* out of order (chunks from several workers): same file, same hash */
    w = dc_npy_writer_create (tpath ("x.npy"), DC_NPY_F4, 2, shape, true, &err);
    ck_assert_ptr_nonnull (w);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 7, 3, rows + 21, &err), 0);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 0, 7, rows, &err), 0);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 9, 2, rows, &err), -1);
    ck_assert_int_eq (dc_npy_writer_commit (w, &err), 0);
    ck_assert_str_eq (dc_npy_writer_sha256 (w), hex);
    ck_assert_int_eq (dc_npy_writer_commit (w, &err), -1);
    dc_npy_writer_destroy (w);
    ck_assert_int_eq (count_files (), 2);
}
END_TEST

START_TEST (t_writer_abandoned)
{
    int64_t shape[2] = {4, 4};
    float rows[16] = {0};
    dc_error_t err;

    /* destroy without commit: nothing under the final name, no temp left */
    write_file (tpath ("keep.npy"), "old", 3);
    struct dc_npy_writer *w = dc_npy_writer_create (
        tpath ("keep.npy"), DC_NPY_F4, 2, shape, false, &err);
    ck_assert_ptr_nonnull (w);
    ck_assert_int_eq (dc_npy_writer_write_f32 (w, 0, 2, rows, &err), 0);
    /* the temporary file: unnamed where the filesystem has O_TMPFILE */
    ck_assert_int_le (count_files (), 2);
    dc_npy_writer_destroy (w);
    ck_assert_int_eq (count_files (), 1);
    struct stat sb;
    ck_assert_int_eq (stat (tpath ("keep.npy"), &sb), 0);
    ck_assert_int_eq (sb.st_size, 3); /* the old file is untouched */

    /* a folder that does not exist */
    w = dc_npy_writer_create (tpath ("nope/y.npy"), DC_NPY_F4, 2, shape, false,
                              &err);
    ck_assert_ptr_null (w);
    ck_assert_ptr_nonnull (strstr (err.text, "temporary file"));
    /* bad arguments */
    int64_t neg[1] = {-1}, big[2] = {INT64_MAX, 4};
    ck_assert_ptr_null (
        dc_npy_writer_create (tpath ("z.npy"), DC_NPY_F4, 1, neg, false, &err));
    ck_assert_ptr_null (
        dc_npy_writer_create (tpath ("z.npy"), DC_NPY_F4, 2, big, false, &err));
    ck_assert_ptr_null (
        dc_npy_writer_create (tpath ("z.npy"), 99, 1, shape, false, &err));
    ck_assert_ptr_null (
        dc_npy_writer_create (NULL, DC_NPY_F4, 1, shape, false, &err));
    ck_assert_int_eq (count_files (), 1);
    dc_npy_writer_destroy (NULL);
    dc_npy_close (NULL);
}
END_TEST

START_TEST (t_atomicfile)
{
    dc_error_t err;
    struct dc_atomicfile *f = dc_atomicfile_create (tpath ("a.bin"), &err);
    ck_assert_ptr_nonnull (f);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "world", 5, 6, &err), 0);
    ck_assert_int_eq (dc_atomicfile_pwrite (f, "hello ", 6, 0, &err), 0);
    ck_assert (access (tpath ("a.bin"), F_OK) != 0);
    ck_assert_ptr_nonnull (strstr (dc_atomicfile_tmppath (f), "/.a.bin."));
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), 0);
    ck_assert_int_eq (dc_atomicfile_commit (f, &err), -1);
    dc_atomicfile_destroy (f);
    char buf[16] = {0};
    int fd = open (tpath ("a.bin"), O_RDONLY);
    ck_assert_int_eq (read (fd, buf, sizeof (buf)), 11);
    close (fd);
    ck_assert_str_eq (buf, "hello world");
    ck_assert_ptr_null (dc_atomicfile_create ("", &err));
    ck_assert_ptr_null (dc_atomicfile_create (NULL, &err));
    dc_atomicfile_destroy (NULL);
    ck_assert_int_eq (count_files (), 1);
}
END_TEST

#define F4_23 "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"

/* Hostile and broken files: version, dictionary, pad, data bytes, and a
 * word the error must contain. */
static const struct {
    const char *what;
    int version;
    const char *dict;
    int pad;
    size_t data;
    const char *want;
} bad[] = {
    {"shape vs data (short)", 1, "{" F4_23 ", }", 1, 20, "needs 24 bytes"},
    {"shape vs data (long)", 1, "{" F4_23 ", }", 1, 28, "needs 24 bytes"},
    {"fortran order", 1,
     "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 1, 24,
     "Fortran"},
    {"big-endian", 1,
     "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 24,
     "big-endian"},
    {"int32", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
     1, 24, "unsupported dtype '<i4'"},
    {"uint8", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (6,), }", 1,
     6, "unsupported dtype"},
    {"complex", 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
     1, 24, "unsupported dtype"},
    {"structured", 1,
     "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 1,
     12, "structured"},
    {"overflow product", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
     "4294967296), }",
     1, 0, "overflows"},
    {"overflow bytes", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,"
     "), }",
     1, 0, "overflows"},
    {"overflow digits", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': "
     "(99999999999999999999999,), }",
     1, 0, "overflows"},
    {"negative dim", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 1, 0,
     "negative"},
    {"no brace", 1, F4_23 ", }", 1, 24, "malformed"},
    {"unterminated", 1, "{'descr': '<f4", 1, 24, "malformed"},
    {"unknown key", 1, "{" F4_23 ", 'extra': 1, }", 1, 24, "unknown key"},
    {"duplicate key", 1, "{" F4_23 ", 'shape': (2, 3), }", 1, 24, "duplicate"},
    {"missing shape", 1, "{'descr': '<f4', 'fortran_order': False, }", 1, 24,
     "lacks 'shape'"},
    {"shape int", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': 6, }",
     1, 24, "malformed"},
    {"bool word", 1, "{'descr': '<f4', 'fortran_order': Nope, 'shape': (6,), }",
     1, 24, "malformed"},
    {"trailing junk", 1, "{" F4_23 ", } x", 1, 24, "malformed"},
    {"empty dict", 1, "", 1, 24, "malformed"},
    {"escape", 1, "{'des\\cr': '<f4', 'fortran_order': False, 'shape': (6,)}",
     1, 24, "malformed"},
    {"many dims", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,"
     "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
     1, 4, "dimensions"},
    {"version 4", 4, "{" F4_23 ", }", 1, 24, "version"},
    {"version 0", 0, "{" F4_23 ", }", 1, 24, "version"},
};

START_TEST (t_reject)
{
    int i = _i;
    dc_error_t err;
    make_npy (tpath ("bad.npy"), bad[i].version, bad[i].dict, bad[i].pad,
              bad[i].data);
    struct dc_npy *a = dc_npy_open (tpath ("bad.npy"), &err);
    ck_assert_msg (a == NULL, "%s: accepted", bad[i].what);
    ck_assert_msg (strstr (err.text, bad[i].want) != NULL,
                   "%s: error '%s' lacks '%s'", bad[i].what, err.text,
                   bad[i].want);
    ck_assert_msg (
        strncmp (err.text, tpath ("bad.npy"), strlen (tpath ("bad.npy"))) == 0,
        "%s: error does not name the file: %s", bad[i].what, err.text);
}
END_TEST

START_TEST (t_reject_raw)
{
    dc_error_t err;
    struct dc_npy a;
    /* bad magic, truncated preamble, header longer than the file */
    static const char zip[] = "PK\x03\x04 this is a zip";
    write_file (tpath ("m.npy"), zip, sizeof (zip) - 1);
    ck_assert_ptr_null (dc_npy_open (tpath ("m.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "bad magic"));
    write_file (tpath ("e.npy"), "", 0);
    ck_assert_ptr_null (dc_npy_open (tpath ("e.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    write_file (tpath ("t.npy"), "\x93NUMPY\x01", 7);
    ck_assert_ptr_null (dc_npy_open (tpath ("t.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    write_file (tpath ("t9.npy"), "\x93NUMPY\x01\x00v", 9);
    ck_assert_ptr_null (dc_npy_open (tpath ("t9.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    write_file (tpath ("t2.npy"), "\x93NUMPY\x02\x00vv\x00", 11);
    ck_assert_ptr_null (dc_npy_open (tpath ("t2.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    write_file (tpath ("l.npy"), "\x93NUMPY\x01\x00\xff\x00{'descr'", 18);
    ck_assert_ptr_null (dc_npy_open (tpath ("l.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "longer than the file"));
    write_file (tpath ("h.npy"), "\x93NUMPY\x02\x00\xff\xff\xff\xff{", 13);
    ck_assert_ptr_null (dc_npy_open (tpath ("h.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "over the limit"));
    /* a NUL inside the dictionary */
    write_file (tpath ("n.npy"), "\x93NUMPY\x01\x00\x04\x00{\0}\n", 14);
    ck_assert_ptr_null (dc_npy_open (tpath ("n.npy"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "NUL"));
    /* not there, not a file, NULL */
    ck_assert_ptr_null (dc_npy_open (tpath ("absent.npy"), &err));
    ck_assert_int_eq (errno, ENOENT);
    ck_assert_ptr_null (dc_npy_open (tmpdir, &err));
    ck_assert_ptr_null (dc_npy_open (NULL, &err));
    ck_assert_int_eq (dc_npy_parse (NULL, 0, 0, &a, &err), -1);
    ck_assert_int_eq (dc_npy_parse ("\x93NUMPY", 6, 6, &a, &err), -1);
}
END_TEST

/* Not regular files: refused at once, never waited on (a FIFO without a
 * writer blocked the open forever). */
START_TEST (t_not_regular)
{
    dc_error_t err;
    const char *paths[] = {tpath ("fifo.npy"), "/dev/zero", "/dev/null",
                           tmpdir};

    ck_assert_int_eq (mkfifo (paths[0], 0600), 0);
    for (size_t i = 0; i < sizeof (paths) / sizeof (paths[0]); i++) {
        ck_assert_ptr_null (dc_npy_open (paths[i], &err));
        ck_assert_msg (strstr (err.text, "not a regular file"), "%s: %s",
                       paths[i], err.text);
    }
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("npy");
    TCase *tc = tcase_create ("npy");
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_test (tc, t_header_as_numpy);
    tcase_add_loop_test (tc, t_roundtrip, 0,
                         sizeof (rt_cases) / sizeof (rt_cases[0]));
    tcase_add_test (tc, t_versions);
    tcase_add_test (tc, t_conversions);
    tcase_add_test (tc, t_writer_offsets_hash);
    tcase_add_test (tc, t_writer_abandoned);
    tcase_add_test (tc, t_atomicfile);
    tcase_add_loop_test (tc, t_reject, 0, sizeof (bad) / sizeof (bad[0]));
    tcase_add_test (tc, t_reject_raw);
    tcase_add_test (tc, t_not_regular);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
