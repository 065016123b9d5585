/* test_safetensors.c - safetensors read/write: round trips, hostile files */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/util/half.h"
#include "lib/formats/safetensors.h"

#define DC_TMP_PREFIX "/tmp/test_st"
#include "tmpdir.h"

static size_t read_file (const char *path, char *buf, size_t size)
{
    int fd = open (path, O_RDONLY);
    ck_assert_int_ge (fd, 0);
    ssize_t n = read (fd, buf, size);
    close (fd);
    ck_assert_int_ge (n, 0);
    return (size_t)n;
}

/* A file with the given JSON header (length field = strlen, or hlen when
 * not 0) and data bytes 0, 1, 2, ... */
static void make_st (const char *path, const char *json, uint64_t hlen,
                     size_t data)
{
    size_t jl = strlen (json);
    unsigned char *b = calloc (1, 8 + jl + data + 1);
    uint64_t l = hlen ? hlen : jl;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(l >> (8 * i));
    memcpy (b + 8, json, jl);
    for (size_t i = 0; i < data; i++)
        b[8 + jl + i] = (unsigned char)i;
    write_file (path, b, 8 + jl + data);
    free (b);
}

START_TEST (t_roundtrip)
{
    struct dc_safetensors *st = dc_safetensors_create ();
    dc_error_t err;
    int64_t s2[2] = {3, 2}, s1[1] = {3};
    float w[6] = {1.0f, -2.0f, 0.333333f, 1e-3f, 65504.0f, -0.0f};
    float b[3] = {0.1f, 0.2f, 0.3f};

    ck_assert_ptr_nonnull (st);
    ck_assert_ptr_nonnull (
        dc_safetensors_add (st, "2.weight", "BF16", 2, s2, w, &err));
    ck_assert_ptr_nonnull (
        dc_safetensors_add (st, "0.weight", "F32", 2, s2, w, &err));
    ck_assert_ptr_nonnull (
        dc_safetensors_add (st, "0.bias", "F16", 1, s1, b, &err));
    ck_assert_ptr_nonnull (
        dc_safetensors_add (st, "scalar", "F32", 0, NULL, b, &err));
    ck_assert_ptr_nonnull (
        dc_safetensors_add (st, "empty", "F32", 1, (int64_t[]){0}, NULL, &err));
    ck_assert_int_eq (dc_safetensors_meta_set (st, "activation", "gelu"), 0);
    ck_assert_int_eq (dc_safetensors_meta_set (st, "format", "pt"), 0);
    ck_assert_int_eq (dc_safetensors_meta_set (st, "activation", "relu"), 0);
    /* add rejects duplicates, unknown dtypes and NULL */
    ck_assert_ptr_null (
        dc_safetensors_add (st, "0.bias", "F32", 1, s1, b, &err));
    ck_assert_ptr_nonnull (strstr (err.text, "duplicate"));
    ck_assert_ptr_null (dc_safetensors_add (st, "x", "I64", 1, s1, b, &err));
    ck_assert_ptr_null (dc_safetensors_add (st, NULL, "F32", 1, s1, b, &err));
    ck_assert_ptr_null (dc_safetensors_add (NULL, "y", "F32", 1, s1, b, &err));
    ck_assert_ptr_null (
        dc_safetensors_add (st, "__metadata__", "F32", 1, s1, b, &err));
    ck_assert_int_eq (dc_safetensors_save (st, tpath ("m.safetensors"), &err),
                      0);

    struct dc_safetensors *back =
        dc_safetensors_load (tpath ("m.safetensors"), &err);
    ck_assert_msg (back != NULL, "%s", err.text);
    ck_assert_uint_eq (back->n, 5);
    ck_assert_str_eq (dc_safetensors_meta_get (back, "activation"), "relu");
    ck_assert_str_eq (dc_safetensors_meta_get (back, "format"), "pt");
    ck_assert_ptr_null (dc_safetensors_meta_get (back, "nope"));
    const struct dc_tensor *t = dc_safetensors_find (back, "0.weight");
    ck_assert_ptr_nonnull (t);
    ck_assert_str_eq (t->dtype, "F32");
    ck_assert_int_eq (t->ndim, 2);
    ck_assert_int_eq (t->shape[0], 3);
    ck_assert_mem_eq (t->data, w, sizeof (w));
    t = dc_safetensors_find (back, "2.weight");
    ck_assert_str_eq (t->dtype, "BF16");
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq (t->data[i],
                            dc_bfloat_to_float (dc_bfloat_from_float (w[i])));
    t = dc_safetensors_find (back, "0.bias");
    ck_assert_str_eq (t->dtype, "F16");
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq (t->data[i],
                            dc_half_to_float (dc_half_from_float (b[i])));
    t = dc_safetensors_find (back, "scalar");
    ck_assert_int_eq (t->ndim, 0);
    ck_assert_uint_eq (t->nelem, 1);
    ck_assert_float_eq (t->data[0], b[0]);
    ck_assert_uint_eq (dc_safetensors_find (back, "empty")->nelem, 0);
    ck_assert_ptr_null (dc_safetensors_find (back, "absent"));
    ck_assert_ptr_null (dc_safetensors_find (NULL, "absent"));

    /* saving what was loaded gives the same bytes */
    ck_assert_int_eq (dc_safetensors_save (back, tpath ("n.safetensors"), &err),
                      0);
    static char b1[4096], b2[4096];
    size_t n1 = read_file (tpath ("m.safetensors"), b1, sizeof (b1));
    size_t n2 = read_file (tpath ("n.safetensors"), b2, sizeof (b2));
    ck_assert_uint_eq (n1, n2);
    ck_assert_mem_eq (b1, b2, n1);
    dc_safetensors_destroy (back);
    dc_safetensors_destroy (st);
    dc_safetensors_destroy (NULL);
}
END_TEST

START_TEST (t_layout_as_save_file)
{
    /* what safetensors.torch.save_file({"b": ..., "a": ...},
     * metadata={"k": "v"}) writes: compact JSON, __metadata__ first,
     * tensors by dtype (descending, F32 before F16) then name, the header
     * padded with spaces to a multiple of 8 */
    const char want[] = "{\"__metadata__\":{\"k\":\"v\"},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                        "\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],"
                        "\"data_offsets\":[8,12]},"
                        "\"c\":{\"dtype\":\"F16\",\"shape\":[1],"
                        "\"data_offsets\":[12,14]}}";
    struct dc_safetensors *st = dc_safetensors_create ();
    dc_error_t err;
    float v[2] = {1.0f, 2.0f};
    static char buf[1024];

    dc_safetensors_add (st, "c", "F16", 1, (int64_t[]){1}, v, &err);
    dc_safetensors_add (st, "b", "F32", 2, (int64_t[]){1, 1}, v, &err);
    dc_safetensors_add (st, "a", "F32", 1, (int64_t[]){2}, v, &err);
    dc_safetensors_meta_set (st, "k", "v");
    ck_assert_int_eq (dc_safetensors_save (st, tpath ("l.safetensors"), &err),
                      0);
    size_t n = read_file (tpath ("l.safetensors"), buf, sizeof (buf));
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (unsigned char)buf[i];
    ck_assert_uint_eq (hl % 8, 0);
    ck_assert_uint_eq (hl, (sizeof (want) - 1 + 7) / 8 * 8);
    ck_assert_mem_eq (buf + 8, want, sizeof (want) - 1);
    for (size_t i = 8 + sizeof (want) - 1; i < 8 + hl; i++)
        ck_assert_int_eq (buf[i], ' ');
    ck_assert_uint_eq (n, 8 + hl + 14);
    float a[2];
    memcpy (a, buf + 8 + hl, 8);
    ck_assert_mem_eq (a, v, 8);
    dc_safetensors_destroy (st);
}
END_TEST

START_TEST (t_other_dtypes_kept)
{
    dc_error_t err;
    make_st (tpath ("i.safetensors"),
             "{\"steps\":{\"dtype\":\"I64\",\"shape\":[2],"
             "\"data_offsets\":[0,16]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[16,20]}}  ",
             0, 20);
    struct dc_safetensors *st =
        dc_safetensors_load (tpath ("i.safetensors"), &err);
    ck_assert_msg (st != NULL, "%s", err.text);
    const struct dc_tensor *t = dc_safetensors_find (st, "steps");
    ck_assert_ptr_null (t->data);
    ck_assert_uint_eq (t->raw_bytes, 16);
    ck_assert_int_eq (((unsigned char *)t->raw)[15], 15);
    ck_assert_int_eq (dc_safetensors_save (st, tpath ("j.safetensors"), &err),
                      0);
    struct dc_safetensors *b =
        dc_safetensors_load (tpath ("j.safetensors"), &err);
    ck_assert_ptr_nonnull (b);
    ck_assert_mem_eq (dc_safetensors_find (b, "steps")->raw, t->raw, 16);
    ck_assert_mem_eq (dc_safetensors_find (b, "w")->data,
                      dc_safetensors_find (st, "w")->data, 4);
    dc_safetensors_destroy (b);
    dc_safetensors_destroy (st);
}
END_TEST

START_TEST (t_save_failure)
{
    struct dc_safetensors *st = dc_safetensors_create ();
    dc_error_t err;
    float v[1] = {1};
    dc_safetensors_add (st, "a", "F32", 1, (int64_t[]){1}, v, &err);
    ck_assert_int_eq (
        dc_safetensors_save (st, tpath ("no/such.safetensors"), &err), -1);
    ck_assert_int_eq (dc_safetensors_save (NULL, tpath ("x"), &err), -1);
    ck_assert_int_eq (dc_safetensors_save (st, NULL, &err), -1);
    ck_assert_int_eq (count_files (), 0);
    ck_assert_int_eq (dc_safetensors_meta_set (st, NULL, "v"), -1);
    dc_safetensors_destroy (st);
}
END_TEST

#define T1 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static const struct {
    const char *what;
    const char *json;
    uint64_t hlen; /* 0: strlen (json) */
    size_t data;
    const char *want;
} bad[] = {
    {"header over the limit", "{}", 100000001, 0, "over the limit"},
    {"header length 2^64-1", "{}", UINT64_MAX, 0, "over the limit"},
    {"header longer than the file", "{" T1 "}", 400, 8, "longer than the file"},
    {"not an object", "[1, 2]", 0, 0, "start with '{'"},
    {"empty header", "", 0, 8, "start with '{'"},
    {"malformed json", "{\"a\":{\"dtype\":", 0, 8, "malformed JSON"},
    {"trailing bytes", "{" T1 "} xx", 0, 8, "trailing"},
    {"tensor not object", "{\"a\":[1]}", 0, 8, "not an object"},
    {"unknown dtype",
     "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "unknown dtype 'F33'"},
    {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
     "unknown dtype (missing)"},
    {"shape not list",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":2,"
     "\"data_offsets\":[0,8]}}",
     0, 8, "shape is not a list"},
    {"negative shape",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "non-negative integer"},
    {"fractional shape",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "non-negative integer"},
    {"string shape",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "non-negative integer"},
    {"too many dims",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,"
     "1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
     0, 4, "dimensions"},
    {"shape overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
     "4294967296,4294967296],\"data_offsets\":[0,8]}}",
     0, 8, "overflows"},
    {"offsets missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 8,
     "data_offsets"},
    {"offsets one value",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[8]}}",
     0, 8, "data_offsets"},
    {"offsets reversed",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[8,0]}}",
     0, 8, "outside the data area"},
    {"offsets past the end",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[4,12]}}",
     0, 8, "outside the data area"},
    {"offsets huge",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,1e300]}}",
     0, 8, "data_offsets"},
    {"size mismatch",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
     "\"data_offsets\":[0,8]}}",
     0, 12, "need 12 bytes but data_offsets hold 8"},
    {"f16 size mismatch",
     "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "need 4 bytes"},
    {"overlap",
     "{" T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[4,12]}}",
     0, 12, "overlap"},
    {"same range",
     "{" T1 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}",
     0, 8, "overlap"},
    {"duplicate name", "{" T1 "," T1 "}", 0, 8, "duplicate tensor name 'a'"},
    {"metadata not object", "{\"__metadata__\":[1]," T1 "}", 0, 8,
     "__metadata__ is not an object"},
    {"metadata number", "{\"__metadata__\":{\"k\":1}," T1 "}", 0, 8,
     "not a string"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}," T1 "}", 0, 8,
     "duplicate __metadata__"},
};

START_TEST (t_reject)
{
    int i = _i;
    dc_error_t err;
    make_st (tpath ("bad.safetensors"), bad[i].json, bad[i].hlen, bad[i].data);
    struct dc_safetensors *st =
        dc_safetensors_load (tpath ("bad.safetensors"), &err);
    ck_assert_msg (st == NULL, "%s: accepted", bad[i].what);
    ck_assert_msg (strstr (err.text, bad[i].want) != NULL,
                   "%s: error '%s' lacks '%s'", bad[i].what, err.text,
                   bad[i].want);
    ck_assert_msg (strstr (err.text, "bad.safetensors: ") != NULL,
                   "%s: error does not name the file: %s", bad[i].what,
                   err.text);
}
END_TEST

START_TEST (t_reject_raw)
{
    dc_error_t err;
    write_file (tpath ("s"), "\x02\0\0\0", 4);
    ck_assert_ptr_null (dc_safetensors_load (tpath ("s"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    write_file (tpath ("e"), "", 0);
    ck_assert_ptr_null (dc_safetensors_load (tpath ("e"), &err));
    ck_assert_ptr_nonnull (strstr (err.text, "truncated"));
    /* a NUL inside the JSON */
    write_file (tpath ("n"), "\x08\0\0\0\0\0\0\0{\"a\0\":1}", 16);
    ck_assert_ptr_null (dc_safetensors_load (tpath ("n"), &err));
    ck_assert_ptr_null (dc_safetensors_load (tpath ("absent"), &err));
    ck_assert_int_eq (errno, ENOENT);
    ck_assert_ptr_null (dc_safetensors_load (tmpdir, &err));
    ck_assert_ptr_null (dc_safetensors_load (NULL, &err));
    /* deeply nested JSON does not blow the stack */
    size_t depth = 100000;
    char *deep = malloc (2 * depth + 16);
    strcpy (deep, "{\"a\":");
    size_t n = strlen (deep);
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    make_st (tpath ("d"), deep, 0, 0);
    free (deep);
    ck_assert_ptr_null (dc_safetensors_load (tpath ("d"), &err));
    /* an empty model and a zero-length tensor are fine */
    make_st (tpath ("z"),
             "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],"
             "\"data_offsets\":[0,0]}," T1 "}",
             0, 8);
    struct dc_safetensors *st = dc_safetensors_load (tpath ("z"), &err);
    ck_assert_msg (st != NULL, "%s", err.text);
    dc_safetensors_destroy (st);
    make_st (tpath ("em"), "{}      ", 0, 0);
    st = dc_safetensors_load (tpath ("em"), &err);
    ck_assert_ptr_nonnull (st);
    ck_assert_uint_eq (st->n, 0);
    dc_safetensors_destroy (st);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("safetensors");
    TCase *tc = tcase_create ("safetensors");
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_test (tc, t_roundtrip);
    tcase_add_test (tc, t_layout_as_save_file);
    tcase_add_test (tc, t_other_dtypes_kept);
    tcase_add_test (tc, t_save_failure);
    tcase_add_loop_test (tc, t_reject, 0, sizeof (bad) / sizeof (bad[0]));
    tcase_add_test (tc, t_reject_raw);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
