/* test_wire_map.c - the payloads of `dcrun map` in lib/comm/wire.h: the
 * MAP message (JSON) and the map RESULT (binary): round trips, and
 * hostile input refused with the message and the field named */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/comm/wire.h"

struct jcase {
    const char *name, *json, *err; /* err NULL: accepted */
};

#define OK_REST                                                                \
    "\"rows\": 10, \"descr\": \"<f4\", \"shape\": [3], \"row_bytes\": 12"

static const struct jcase jcases[] = {
    {"plain", "{\"argv\": [\"python3\", \"w.py\"], " OK_REST "}", NULL},
    {"per chunk, timeout",
     "{\"argv\": [\"cp\", \"{in}\", \"{out}\"], \"per_chunk\": true, "
     "\"chunk_timeout\": 2.5, " OK_REST "}",
     NULL},
    {"1-D rows",
     "{\"argv\": [\"x\"], \"rows\": 1, \"descr\": \"|u1\", "
     "\"row_bytes\": 1}",
     NULL},
    {"not JSON", "argv", "MAP: not a JSON object"},
    {"an array", "[1]", "MAP: not a JSON object"},
    {"no argv", "{" OK_REST "}", "MAP: argv: not an array"},
    {"empty argv", "{\"argv\": [], " OK_REST "}", "MAP: argv: 0 arguments"},
    {"argv of numbers", "{\"argv\": [1], " OK_REST "}",
     "MAP: argv: argument 0: not a string"},
    {"argv of null", "{\"argv\": [\"a\", null], " OK_REST "}",
     "MAP: argv: argument 1"},
    {"per_chunk a string",
     "{\"argv\": [\"a\"], \"per_chunk\": \"yes\", " OK_REST "}",
     "MAP: per_chunk: not true or false"},
    {"no rows", "{\"argv\": [\"a\"], \"descr\": \"<f4\", \"row_bytes\": 4}",
     "MAP: rows: missing"},
    {"negative rows",
     "{\"argv\": [\"a\"], \"rows\": -1, \"descr\": \"<f4\", \"row_bytes\": 4}",
     "MAP: rows:"},
    {"fractional rows",
     "{\"argv\": [\"a\"], \"rows\": 1.5, \"descr\": \"<f4\", \"row_bytes\": 4}",
     "MAP: rows:"},
    {"no row_bytes", "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\"}",
     "MAP: row_bytes: missing"},
    {"huge row_bytes",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\", \"row_bytes\": "
     "1e12}",
     "MAP: row_bytes:"},
    {"no descr", "{\"argv\": [\"a\"], \"rows\": 1, \"row_bytes\": 4}",
     "MAP: descr: missing or not a dtype"},
    {"descr with a quote",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4'\", \"row_bytes\": 4}",
     "MAP: descr: missing or not a dtype"},
    {"descr with a newline",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f\\n4\", \"row_bytes\": "
     "4}",
     "MAP: descr: missing or not a dtype"},
    {"descr too long",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": "
     "\"<f4xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxx\", \"row_bytes\": 4}",
     "MAP: descr: longer than"},
    {"shape an object",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\", "
     "\"row_bytes\": 4, \"shape\": {}}",
     "MAP: shape: not an array"},
    {"shape negative",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\", "
     "\"row_bytes\": 4, \"shape\": [-1]}",
     "MAP: shape: dimension 0"},
    {"shape of strings",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\", "
     "\"row_bytes\": 4, \"shape\": [1, \"2\"]}",
     "MAP: shape: dimension 1"},
    {"33 dimensions",
     "{\"argv\": [\"a\"], \"rows\": 1, \"descr\": \"<f4\", \"row_bytes\": 4, "
     "\"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
     "1,1,1]}",
     "MAP: shape: more than 32"},
    {"negative timeout",
     "{\"argv\": [\"a\"], \"chunk_timeout\": -1, " OK_REST "}",
     "MAP: chunk_timeout: not a number >= 0"},
};

START_TEST (t_map_json)
{
    const struct jcase *c = &jcases[_i];
    dc_error_t e = {.text = ""};
    struct dc_wire_map m, k;
    int rc =
        dc_wire_map_decode ((const uint8_t *)c->json, strlen (c->json), &m, &e);

    if (c->err) {
        ck_assert_msg (rc == -1, "%s: accepted", c->name);
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->name,
                       e.text, c->err);
        ck_assert_ptr_null (m.argv);
        return;
    }
    ck_assert_msg (rc == 0, "%s: %s", c->name, e.text);
    char *s = dc_wire_map_encode (&m);
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (
        dc_wire_map_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert_int_eq (k.argc, m.argc);
    for (int i = 0; i < m.argc; i++)
        ck_assert_str_eq (k.argv[i], m.argv[i]);
    ck_assert_ptr_null (k.argv[k.argc]);
    ck_assert (k.per_chunk == m.per_chunk);
    ck_assert_uint_eq (k.rows, m.rows);
    ck_assert_str_eq (k.descr, m.descr);
    ck_assert_int_eq (k.ndim, m.ndim);
    for (int i = 0; i < m.ndim; i++)
        ck_assert_int_eq (k.shape[i], m.shape[i]);
    ck_assert_uint_eq (k.row_bytes, m.row_bytes);
    ck_assert (k.chunk_timeout == m.chunk_timeout);
    free (s);
    dc_wire_map_free (&m);
    dc_wire_map_free (&k);
}
END_TEST

/* The result of a chunk: shape, dtype and rows come back as they went. */
START_TEST (t_mapres_roundtrip)
{
    uint8_t rows[2 * 24];
    for (size_t i = 0; i < sizeof (rows); i++)
        rows[i] = (uint8_t)i;
    struct dc_wire_mapres m = {.id = 7,
                               .row0 = 70,
                               .rows = 2,
                               .seconds = 0.25,
                               .row_bytes = 24,
                               .ndim = 2,
                               .shape = {2, 3},
                               .text = "<f4",
                               .text_len = 3,
                               .data = rows},
                          d;
    size_t len;
    dc_error_t e;
    uint8_t *b = dc_wire_mapres_new (&m, &len);

    ck_assert_ptr_nonnull (b);
    ck_assert_uint_eq (len, DC_MAPRES_HDR + 16 + 8 + sizeof (rows));
    ck_assert_int_eq (dc_wire_mapres_get (b, len, &d, &e), 0);
    ck_assert_uint_eq (d.id, 7);
    ck_assert_uint_eq (d.row0, 70);
    ck_assert_uint_eq (d.rows, 2);
    ck_assert (d.seconds == 0.25);
    ck_assert_uint_eq (d.status, 0);
    ck_assert_uint_eq (d.row_bytes, 24);
    ck_assert_int_eq (d.ndim, 2);
    ck_assert_int_eq (d.shape[0], 2);
    ck_assert_int_eq (d.shape[1], 3);
    ck_assert_uint_eq (d.text_len, 3);
    ck_assert (!memcmp (d.text, "<f4", 3));
    ck_assert (!memcmp (d.data, rows, sizeof (rows)));
    ck_assert_uint_eq ((uintptr_t)(d.data - b) % 8, 0);
    free (b);

    /* a failed chunk: the reason, no rows */
    struct dc_wire_mapres f = {.id = 1,
                               .rows = 5,
                               .status = 1,
                               .text = "output has 4 rows, expected 5",
                               .text_len = 29};
    ck_assert_ptr_nonnull (b = dc_wire_mapres_new (&f, &len));
    ck_assert_int_eq (dc_wire_mapres_get (b, len, &d, &e), 0);
    ck_assert_uint_eq (d.status, 1);
    ck_assert (!memcmp (d.text, f.text, f.text_len));
    free (b);

    /* out of range: no message */
    struct dc_wire_mapres big = {.rows = (uint64_t)1 << 40, .row_bytes = 4};
    ck_assert_ptr_null (dc_wire_mapres_new (&big, &len));
    struct dc_wire_mapres dims = {.ndim = 33};
    ck_assert_ptr_null (dc_wire_mapres_new (&dims, &len));
}
END_TEST

/* Hostile RESULT bytes: each word of a valid message spoiled. */
struct bcase {
    const char *name;
    int word;   /* header word to set (-1: none) */
    uint64_t v; /* its value */
    int cut;    /* bytes cut from the end */
    int extra;  /* bytes added at the end */
    const char *err;
};

static const struct bcase bcases[] = {
    {"valid", -1, 0, 0, 0, NULL},
    {"seconds NaN", 3, 0x7ff8000000000000ull, 0, 0, "RESULT: seconds"},
    {"seconds negative", 3, 0xbff0000000000000ull, 0, 0, "RESULT: seconds"},
    {"status 4", 4, 4, 0, 0, "RESULT: status: 4"},
    {"written with rows", 4, DC_MAPRES_WRITTEN, 0, 0,
     "RESULT: rows written by the rank"},
    {"held with rows", 4, DC_MAPRES_HELD, 0, 0,
     "RESULT: rows written by the rank"},
    {"ndim 33", 6, 33, 0, 0, "RESULT: ndim: 33"},
    {"ndim huge", 6, (uint64_t)1 << 62, 0, 0, "RESULT: ndim:"},
    {"text huge", 7, (uint64_t)1 << 62, 0, 0, "RESULT: text:"},
    {"text past the end", 7, 4000, 0, 0, "shorter than its"},
    {"rows past the data", 2, 3, 0, 0, "RESULT: rows: 3 rows of 8 bytes"},
    {"rows huge", 2, (uint64_t)1 << 40, 0, 0, "RESULT: rows:"},
    {"row0 overflows", 1, UINT64_MAX, 0, 0, "RESULT: row0:"},
    {"row bytes huge", 5, (uint64_t)1 << 40, 0, 0, "RESULT: rows:"},
    {"a byte short", -1, 0, 1, 0, "RESULT: rows:"},
    {"a byte more", -1, 0, 0, 1, "RESULT: rows:"},
    {"header only", -1, 0, 16 + 8 + 8 + 16, 0, "shorter than its"},
    {"half a header", -1, 0, 16 + 8 + 8 + 16 + 40, 0, "shorter than its"},
    {"failed with rows", 4, 1, 0, 0, "a failed chunk with rows or a shape"},
    {"text padding", 10, 0x580000000032693Cull, 0, 0,
     "RESULT: text: padding is not zero"},
};

START_TEST (t_mapres_hostile)
{
    const struct bcase *c = &bcases[_i];
    uint8_t rows[16] = {0};
    struct dc_wire_mapres m = {.id = 1,
                               .rows = 2,
                               .row_bytes = 8,
                               .ndim = 2,
                               .shape = {2, 2},
                               .text = "<i2",
                               .text_len = 3,
                               .data = rows},
                          d;
    size_t len;
    dc_error_t e = {.text = ""};
    uint8_t *b = dc_wire_mapres_new (&m, &len);

    ck_assert_ptr_nonnull (b);
    uint8_t *buf = calloc (1, len + 8);
    memcpy (buf, b, len);
    free (b);
    if (c->word >= 0)
        dc_put_u64 (buf + 8 * c->word, c->v);
    len = len - (size_t)c->cut + (size_t)c->extra;
    int rc = dc_wire_mapres_get (buf, len, &d, &e);
    if (c->err) {
        ck_assert_msg (rc == -1, "%s: accepted", c->name);
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->name,
                       e.text, c->err);
    } else
        ck_assert_msg (rc == 0, "%s: %s", c->name, e.text);
    free (buf);
}
END_TEST

/* --io direct: header-only RESULTs and the output's place (DATA). */
START_TEST (t_direct)
{
    struct dc_wire_mapres m = {.id = 4,
                               .row0 = 40,
                               .rows = 10,
                               .status = DC_MAPRES_WRITTEN,
                               .row_bytes = 24,
                               .ndim = 1,
                               .shape = {3},
                               .text = "<f8",
                               .text_len = 3},
                          d;
    size_t hl = dc_wire_mapres_hdr_len (&m);
    uint8_t *buf = calloc (1, hl);
    dc_error_t e = {.text = ""};

    ck_assert_ptr_nonnull (buf);
    dc_wire_mapres_put (buf, &m);
    ck_assert_int_eq (dc_wire_mapres_get (buf, hl, &d, &e), 0);
    ck_assert (d.status == DC_MAPRES_WRITTEN && d.rows == 10 &&
               d.row_bytes == 24 && d.ndim == 1 && d.shape[0] == 3 &&
               d.text_len == 3 && !memcmp (d.text, "<f8", 3));
    ck_assert_ptr_null (d.data);
    m.text_len = 0; /* no dtype to check */
    hl = dc_wire_mapres_hdr_len (&m);
    dc_wire_mapres_put (buf, &m);
    ck_assert_int_eq (dc_wire_mapres_get (buf, hl, &d, &e), -1);
    free (buf);

    struct dc_wire_mapout o = {.descr = ">i4",
                               .ndim = 2,
                               .shape = {2, 5},
                               .row_bytes = 40,
                               .offset = 128},
                          od;
    char *js = dc_wire_mapout_encode (&o);
    ck_assert_ptr_nonnull (js);
    ck_assert_int_eq (
        dc_wire_mapout_decode ((const uint8_t *)js, strlen (js), &od, &e), 0);
    ck_assert (!strcmp (od.descr, ">i4") && od.ndim == 2 && od.shape[1] == 5 &&
               od.row_bytes == 40 && od.offset == 128);
    free (js);
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"descr\": \"<f8\", \"shape\": [], \"row_bytes\": 8}",
        "{\"descr\": \"<f8\", \"shape\": [], \"row_bytes\": 8, "
        "\"offset\": 0}",
        "{\"descr\": \"<f'8\", \"shape\": [], \"row_bytes\": 8, "
        "\"offset\": 64}",
        "{\"descr\": \"<f8\", \"shape\": [-1], \"row_bytes\": 8, "
        "\"offset\": 64}",
        "{\"descr\": \"<f8\", \"shape\": 3, \"row_bytes\": 8, "
        "\"offset\": 64}",
        "{\"descr\": \"<f8\", \"shape\": [], \"row_bytes\": -8, "
        "\"offset\": 64}",
        "{\"descr\": \"<f8\", \"shape\": [], \"row_bytes\": 8, "
        "\"offset\": 1e30}",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++)
        ck_assert_msg (dc_wire_mapout_decode ((const uint8_t *)bad[i],
                                              strlen (bad[i]), &od, &e) == -1,
                       "accepted: %s", bad[i]);
    ck_assert_int_eq (dc_wire_mapout_decode (NULL, 0, &od, NULL), -1);
}
END_TEST

START_TEST (t_null)
{
    struct dc_wire_map m;
    struct dc_wire_mapres r;

    ck_assert_int_eq (dc_wire_map_decode (NULL, 0, &m, NULL), -1);
    ck_assert_int_eq (dc_wire_mapres_get (NULL, 0, &r, NULL), -1);
    dc_wire_map_free (NULL);
    struct dc_wire_map none = {0};
    ck_assert_ptr_null (dc_wire_map_encode (&none));
    ck_assert (dc_wire_mode_name (DC_WIRE_MAP) != NULL);
    /* the JOB of a map */
    struct dc_wire_job j = {.mode = DC_WIRE_MAP}, k;
    char *s = dc_wire_job_encode (&j);
    dc_error_t e;
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (
        dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert_int_eq (k.mode, DC_WIRE_MAP);
    free (s);
}
END_TEST

/* --files: names and bytes of files both ways. */
START_TEST (t_files)
{
    struct dc_wire_file f[3] = {
        {.name = "a.jpg",
         .name_len = 5,
         .data = (const uint8_t *)"xyz",
         .len = 3},
        {.name = "empty", .name_len = 5, .data = NULL, .len = 0},
        {.name = "b",
         .name_len = 1,
         .data = (const uint8_t *)"12345678",
         .len = 8}};
    struct dc_wire_files m = {.id = 4,
                              .first = 40,
                              .count = 3,
                              .seconds = 1.5,
                              .nfiles = 3,
                              .files = f},
                         d;
    size_t len;
    dc_error_t e = {.text = ""};
    uint8_t *b = dc_wire_files_new (&m, &len);

    ck_assert_ptr_nonnull (b);
    ck_assert_uint_eq (len % 8, 0);
    ck_assert_int_eq (dc_wire_files_get (b, len, "CHUNK", &d, &e), 0);
    ck_assert_uint_eq (d.id, 4);
    ck_assert_uint_eq (d.first, 40);
    ck_assert_uint_eq (d.count, 3);
    ck_assert_uint_eq (d.nfiles, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq (d.files[i].name_len, f[i].name_len);
        ck_assert (!memcmp (d.files[i].name, f[i].name, f[i].name_len));
        ck_assert_uint_eq (d.files[i].len, f[i].len);
        ck_assert (!f[i].len || !memcmp (d.files[i].data, f[i].data, f[i].len));
    }
    free (d.files);
    /* every prefix and one byte more are refused */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq (dc_wire_files_get (b, n, "CHUNK", &d, &e), -1);
    uint8_t *c = calloc (1, len + 8);
    memcpy (c, b, len);
    ck_assert_int_eq (dc_wire_files_get (c, len + 8, "CHUNK", &d, &e), -1);
    ck_assert (strstr (e.text, "CHUNK: 8 bytes after the last file"));
    /* a spoiled name: a path */
    memcpy (c, b, len);
    c[DC_FILES_HDR + 16] = '/';
    ck_assert_int_eq (dc_wire_files_get (c, len, "RESULT", &d, &e), -1);
    ck_assert (strstr (e.text, "RESULT: file 0: not a plain file name"));
    /* counts out of range */
    memcpy (c, b, len);
    dc_put_u64 (c + 48, (uint64_t)1 << 19);
    ck_assert_int_eq (dc_wire_files_get (c, len, "RESULT", &d, &e), -1);
    ck_assert (strstr (e.text, "RESULT: files:"));
    memcpy (c, b, len);
    dc_put_u64 (c + 16, 0);
    ck_assert_int_eq (dc_wire_files_get (c, len, "RESULT", &d, &e), -1);
    ck_assert (strstr (e.text, "RESULT: count: 0"));
    memcpy (c, b, len); /* a byte of padding after a name */
    c[DC_FILES_HDR + 16 + 5] = 'x';
    ck_assert_int_eq (dc_wire_files_get (c, len, "RESULT", &d, &e), -1);
    ck_assert (strstr (e.text, "padding not zero"));
    memcpy (c, b, len);
    dc_put_u64 (c + 40, 1u << 20);
    ck_assert_int_eq (dc_wire_files_get (c, len, "RESULT", &d, &e), -1);
    ck_assert (strstr (e.text, "RESULT: text:"));
    free (c);
    free (b);

    /* names that are not file names: no message */
    static const char *const bad[] = {"", ".", "..", "a/b", "/"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        struct dc_wire_file g = {.name = bad[i], .name_len = strlen (bad[i])};
        struct dc_wire_files k = {.count = 1, .nfiles = 1, .files = &g};
        ck_assert_ptr_null (dc_wire_files_new (&k, &len));
        ck_assert (!dc_wire_file_name_ok (bad[i], strlen (bad[i])));
    }
    ck_assert (!dc_wire_file_name_ok ("a\0b", 3));
    ck_assert (dc_wire_file_name_ok ("...", 3));
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("wire_map");
    TCase *tc = tcase_create ("wire_map");

    tcase_add_loop_test (tc, t_map_json, 0,
                         (int)(sizeof (jcases) / sizeof (jcases[0])));
    tcase_add_test (tc, t_mapres_roundtrip);
    tcase_add_loop_test (tc, t_mapres_hostile, 0,
                         (int)(sizeof (bcases) / sizeof (bcases[0])));
    tcase_add_test (tc, t_direct);
    tcase_add_test (tc, t_null);
    tcase_add_test (tc, t_files);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
