/* test_wire.c - every payload of lib/comm/wire.h: round trips, and hostile
 * bytes and JSON that the decoders must refuse with the message and the
 * field named */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/comm/wire.h"

enum kind { K_CHUNK, K_ROWS, K_STEP, K_TRES, K_PSTEP, K_PDATA, K_RED };

static const size_t hdr_of[] = {
    [K_CHUNK] = DC_CHUNK_HDR,     [K_ROWS] = DC_RESULT_HDR,
    [K_STEP] = DC_STEP_HDR,       [K_TRES] = DC_TRAIN_RESULT_HDR,
    [K_PSTEP] = DC_PIPE_STEP_HDR, [K_PDATA] = DC_PIPE_DATA_HDR,
    [K_RED] = DC_REDUCED_HDR,
};

#define NONE ((size_t)-1)
#define BIG ((uint64_t)1 << 62)

/* A binary payload: header words (f64 word at dslot when dslot >= 0),
 * then body bytes; len overrides the total when not NONE.  w1, w2, max:
 * the decoder's widths and limit (per kind: chunk/rows/pstep width w1;
 * step in w1 target w2 max rows; tresult nparams w1, optional grads
 * max; pdata fwd w1 bwd w2; reduced nparams w1). */
struct bcase {
    const char *name;
    enum kind k;
    uint64_t f[8]; /* header words: the longest header has 7 */
    int dslot;
    double d;
    size_t body;
    size_t len;
    size_t w1, w2;
    uint64_t max;
    const char *err; /* NULL: accepted */
};

static const struct bcase bcases[] = {
    /* round trips */
    {"chunk", K_CHUNK, {7, 100, 3}, -1, 0, 3 * 16, NONE, 16, 0, 0, NULL},
    {"result", K_ROWS, {7, 100, 3}, 3, 0.25, 3 * 8, NONE, 8, 0, 0, NULL},
    {"step", K_STEP, {2, 4, 8, 1}, -1, 0, 4 * (16 + 4), NONE, 16, 4, 8, NULL},
    {"step of no rows", K_STEP, {2, 0, 8, 0}, -1, 0, 0, NONE, 16, 4, 8, NULL},
    {"train result", K_TRES, {3, 0}, 2, 1.5, 5 * 4, NONE, 5, 0, 0, NULL},
    {"train result redo", K_TRES, {3, 1}, 2, 0, 0, NONE, 5, 0, 1, NULL},
    {"train result NaN loss", K_TRES, {3, 0}, 2, NAN, 20, NONE, 5, 0, 0, NULL},
    {"pipeline step",
     K_PSTEP,
     {1, 10, 20, 3},
     -1,
     0,
     10 * 12,
     NONE,
     12,
     0,
     0,
     NULL},
    {"forward", K_PDATA, {1, 1, 2, 4, 3}, -1, 0, 4 * 8, NONE, 8, 12, 0, NULL},
    {"backward", K_PDATA, {2, 1, 0, 4, 3}, -1, 0, 4 * 12, NONE, 8, 12, 0, NULL},
    {"reduced", K_RED, {9}, -1, 0, 6 * 4, NONE, 6, 0, 0, NULL},
    {"reduced empty", K_RED, {9}, -1, 0, 0, NONE, 0, 0, 0, NULL},
    /* short: inside the header */
    {"chunk empty",
     K_CHUNK,
     {1, 0, 1},
     -1,
     0,
     16,
     0,
     16,
     0,
     0,
     "CHUNK: 0 bytes"},
    {"chunk short",
     K_CHUNK,
     {1, 0, 1},
     -1,
     0,
     16,
     23,
     16,
     0,
     0,
     "CHUNK: 23 bytes"},
    {"result short", K_ROWS, {1, 0, 1}, 3, 0, 8, 31, 8, 0, 0, "RESULT: 31"},
    {"step short", K_STEP, {1, 1, 1, 0}, -1, 0, 20, 8, 16, 4, 8, "step: 8"},
    {"tresult short", K_TRES, {1, 0}, 2, 0, 0, 16, 0, 0, 1, "train RESULT: 16"},
    {"pstep short",
     K_PSTEP,
     {1, 1, 1, 1},
     -1,
     0,
     4,
     24,
     4,
     0,
     0,
     "pipeline step: 24"},
    {"pdata short",
     K_PDATA,
     {1, 0, 0, 1, 1},
     -1,
     0,
     4,
     39,
     4,
     4,
     0,
     "micro-batch: 39"},
    {"reduced short", K_RED, {1}, -1, 0, 0, 7, 0, 0, 0, "REDUCED: 7"},
    /* rows that do not fit the bytes */
    {"chunk rows short",
     K_CHUNK,
     {1, 0, 5},
     -1,
     0,
     4 * 16,
     NONE,
     16,
     0,
     0,
     "CHUNK: rows: 5 rows of 16 bytes need 80 bytes, 64 follow"},
    {"chunk overlong",
     K_CHUNK,
     {1, 0, 2},
     -1,
     0,
     3 * 16,
     NONE,
     16,
     0,
     0,
     "CHUNK: rows: 2 rows"},
    {"chunk no rows",
     K_CHUNK,
     {1, 0, 0},
     -1,
     0,
     0,
     NONE,
     16,
     0,
     0,
     "CHUNK: rows: 0"},
    {"chunk huge rows",
     K_CHUNK,
     {1, 0, BIG},
     -1,
     0,
     16,
     NONE,
     16,
     0,
     0,
     "CHUNK: rows: 4611686018427387904 is over the maximum"},
    {"chunk negative rows",
     K_CHUNK,
     {1, 0, (uint64_t)-1},
     -1,
     0,
     16,
     NONE,
     16,
     0,
     0,
     "CHUNK: rows: 18446744073709551615 is over"},
    {"chunk rows x width wraps",
     K_CHUNK,
     {1, 0, ((uint64_t)1 << 60) + 1},
     -1,
     0,
     16,
     NONE,
     16,
     0,
     0,
     "is over the maximum"},
    {"chunk row0 overflows",
     K_CHUNK,
     {1, (uint64_t)-1, 1},
     -1,
     0,
     16,
     NONE,
     16,
     0,
     0,
     "CHUNK: row0"},
    /* width 0: a header only, the rank reads its rows (direct I/O) */
    {"chunk width 0", K_CHUNK, {1, 0, 1}, -1, 0, 0, NONE, 0, 0, 0, NULL},
    {"result width 0", K_ROWS, {1, 0, 9}, 3, 0.5, 0, NONE, 0, 0, 0, NULL},
    {"chunk width 0 with rows",
     K_CHUNK,
     {1, 0, 1},
     -1,
     0,
     16,
     NONE,
     0,
     0,
     0,
     "16 bytes of rows where the rank reads"},
    {"result width 0 with rows",
     K_ROWS,
     {1, 0, 1},
     3,
     0.5,
     8,
     NONE,
     0,
     0,
     0,
     "8 bytes of rows where the rank reads"},
    {"result NaN seconds",
     K_ROWS,
     {1, 0, 1},
     3,
     NAN,
     8,
     NONE,
     8,
     0,
     0,
     "RESULT: seconds: nan"},
    {"result inf seconds",
     K_ROWS,
     {1, 0, 1},
     3,
     INFINITY,
     8,
     NONE,
     8,
     0,
     0,
     "RESULT: seconds: inf"},
    {"result negative seconds",
     K_ROWS,
     {1, 0, 1},
     3,
     -1,
     8,
     NONE,
     8,
     0,
     0,
     "RESULT: seconds: -1"},
    {"result huge rows",
     K_ROWS,
     {1, 0, BIG},
     3,
     0,
     8,
     NONE,
     8,
     0,
     0,
     "RESULT: rows"},
    {"step over the batch",
     K_STEP,
     {1, 9, 9, 0},
     -1,
     0,
     9 * 20,
     NONE,
     16,
     4,
     8,
     "step: rows: 9 is over the maximum of 8"},
    {"step scale 0",
     K_STEP,
     {1, 1, 0, 0},
     -1,
     0,
     20,
     NONE,
     16,
     4,
     8,
     "step: scale"},
    {"step scale below rows",
     K_STEP,
     {1, 4, 2, 0},
     -1,
     0,
     80,
     NONE,
     16,
     4,
     8,
     "step: scale"},
    {"step want_grads 2",
     K_STEP,
     {1, 1, 1, 2},
     -1,
     0,
     20,
     NONE,
     16,
     4,
     8,
     "step: want_grads"},
    {"step of no rows with bytes",
     K_STEP,
     {1, 0, 1, 0},
     -1,
     0,
     20,
     NONE,
     16,
     4,
     8,
     "step: rows: 0 rows in 52"},
    {"step huge widths",
     K_STEP,
     {1, 1, 1, 0},
     -1,
     0,
     20,
     NONE,
     (size_t)-1,
     4,
     8,
     "step: a row of"},
    {"tresult status 2",
     K_TRES,
     {1, 2},
     2,
     0,
     0,
     NONE,
     0,
     0,
     1,
     "train RESULT: status: 2"},
    {"tresult wrong gradient",
     K_TRES,
     {1, 0},
     2,
     0,
     16,
     NONE,
     5,
     0,
     1,
     "train RESULT: gradient: 16 bytes where 5 parameters need 20"},
    {"tresult gradient missing",
     K_TRES,
     {1, 0},
     2,
     0,
     0,
     NONE,
     5,
     0,
     0,
     "train RESULT: gradient: 0 bytes"},
    {"tresult huge nparams",
     K_TRES,
     {1, 0},
     2,
     0,
     0,
     NONE,
     (size_t)-1 / 2,
     0,
     0,
     "train RESULT: parameters"},
    {"pstep batch below rows",
     K_PSTEP,
     {1, 4, 2, 1},
     -1,
     0,
     16,
     NONE,
     4,
     0,
     0,
     "pipeline step: batch"},
    {"pstep micro 0",
     K_PSTEP,
     {1, 4, 4, 0},
     -1,
     0,
     16,
     NONE,
     4,
     0,
     0,
     "pipeline step: micro"},
    {"pstep micro over rows",
     K_PSTEP,
     {1, 4, 4, 5},
     -1,
     0,
     16,
     NONE,
     4,
     0,
     0,
     "pipeline step: micro"},
    {"pstep no rows",
     K_PSTEP,
     {1, 0, 4, 1},
     -1,
     0,
     0,
     NONE,
     4,
     0,
     0,
     "pipeline step: rows: 0"},
    {"pdata kind 3",
     K_PDATA,
     {3, 1, 0, 1, 1},
     -1,
     0,
     8,
     NONE,
     8,
     8,
     0,
     "micro-batch: kind: 3"},
    {"pdata index past",
     K_PDATA,
     {1, 1, 3, 1, 3},
     -1,
     0,
     8,
     NONE,
     8,
     8,
     0,
     "micro-batch: index: 3 of 3"},
    {"pdata forward width",
     K_PDATA,
     {1, 1, 0, 1, 1},
     -1,
     0,
     12,
     NONE,
     8,
     12,
     0,
     "micro-batch: rows: 1 rows of 8 bytes"},
    {"pdata huge rows",
     K_PDATA,
     {2, 1, 0, BIG, 1},
     -1,
     0,
     12,
     NONE,
     8,
     12,
     0,
     "micro-batch: rows"},
    {"reduced overlong",
     K_RED,
     {1},
     -1,
     0,
     8,
     NONE,
     1,
     0,
     0,
     "REDUCED: gradient: 8 bytes"},
    {"reduced huge nparams",
     K_RED,
     {1},
     -1,
     0,
     0,
     NONE,
     (size_t)-1 / 2,
     0,
     0,
     "REDUCED: parameters"},
};

static size_t nfields (enum kind k)
{
    return hdr_of[k] / 8;
}

/* The bytes of case c (caller frees). */
static uint8_t *build (const struct bcase *c, size_t *len)
{
    size_t hdr = hdr_of[c->k];
    size_t n = hdr + c->body;
    uint8_t *b = calloc (1, n + 1);

    ck_assert_ptr_nonnull (b);
    for (size_t i = 0; i < nfields (c->k); i++) {
        if ((int)i == c->dslot) {
            uint64_t u;
            memcpy (&u, &c->d, 8);
            dc_put_u64 (b + 8 * i, u);
        } else
            dc_put_u64 (b + 8 * i, c->f[i]);
    }
    for (size_t i = 0; i < c->body; i++)
        b[hdr + i] = (uint8_t)(i * 7 + 1);
    *len = c->len != NONE ? c->len : n;
    return b;
}

/* Decode; on success encode the result anew and compare the bytes. */
static int decode (const struct bcase *c, const uint8_t *b, size_t len,
                   dc_error_t *e, uint8_t **again, size_t *alen)
{
    int rc = -1;
    *again = NULL;
    switch (c->k) {
    case K_CHUNK: {
        struct dc_wire_chunk m;
        if ((rc = dc_wire_chunk_get (b, len, c->w1, &m, e)) == 0)
            *again = dc_wire_chunk_new (&m, c->w1, alen);
        break;
    }
    case K_ROWS: {
        struct dc_wire_rows m;
        if ((rc = dc_wire_rows_get (b, len, c->w1, NULL, &m, e)) == 0)
            *again = dc_wire_rows_new (&m, c->w1, alen);
        break;
    }
    case K_STEP: {
        struct dc_wire_step m;
        if ((rc = dc_wire_step_get (b, len, c->w1, c->w2, c->max, &m, e)) == 0)
            *again = dc_wire_step_new (&m, c->w1, c->w2, alen);
        break;
    }
    case K_TRES: {
        struct dc_wire_tresult m;
        if ((rc = dc_wire_tresult_get (b, len, c->w1, c->max != 0, &m, e)) == 0)
            *again = dc_wire_tresult_new (&m, alen);
        break;
    }
    case K_PSTEP: {
        struct dc_wire_pstep m;
        if ((rc = dc_wire_pstep_get (b, len, c->w1, &m, e)) == 0)
            *again = dc_wire_pstep_new (&m, c->w1, alen);
        break;
    }
    case K_PDATA: {
        struct dc_wire_pdata m;
        if ((rc = dc_wire_pdata_get (b, len, c->w1, c->w2, &m, e)) == 0)
            *again = dc_wire_pdata_new (
                &m, m.kind == DC_WIRE_FWD ? c->w1 : c->w2, alen);
        break;
    }
    case K_RED: {
        struct dc_wire_reduced m;
        if ((rc = dc_wire_reduced_get (b, len, c->w1, &m, e)) == 0)
            *again = dc_wire_reduced_new (&m, alen);
        break;
    }
    }
    return rc;
}

START_TEST (t_binary)
{
    const struct bcase *c = &bcases[_i];
    size_t len, alen = 0;
    uint8_t *b = build (c, &len), *again;
    dc_error_t e = {.text = ""};

    int rc = decode (c, b, len, &e, &again, &alen);
    if (c->err) {
        ck_assert_msg (rc == -1, "%s: accepted", c->name);
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->name,
                       e.text, c->err);
    } else {
        ck_assert_msg (rc == 0, "%s: %s", c->name, e.text);
        ck_assert_ptr_nonnull (again);
        ck_assert_uint_eq (alen, len);
        ck_assert_msg (!memcmp (again, b, len), "%s: bytes differ", c->name);
        /* every shorter length is refused, and no read goes past len */
        for (size_t n = 0; n < len; n++) {
            uint8_t *cut = malloc (n ? n : 1);
            dc_error_t e2;
            uint8_t *a2;
            size_t l2;
            memcpy (cut, b, n);
            if (decode (c, cut, n, &e2, &a2, &l2) == 0) {
                /* only a training result may drop its gradient */
                ck_assert_msg (c->k == K_TRES && n == hdr_of[c->k],
                               "%s: %zu bytes accepted", c->name, n);
                free (a2);
            }
            free (cut);
        }
    }
    free (again);
    free (b);
}
END_TEST

/* ---- JSON ---- */

struct jcase {
    const char *name;
    int job; /* 1 JOB, 0 READY */
    const char *json;
    const char *err; /* NULL: accepted */
};

static const struct jcase jcases[] = {
    {"ready empty (echo)", 0, "{}", NULL},
    {"ready full", 0,
     "{\"device\":\"cpu\",\"kernel\":\"Haswell\",\"inputs\":3,\"outputs\":2,"
     "\"parameters\":17}",
     NULL},
    {"ready not json", 0, "{\"device\":", "READY: not a JSON object"},
    {"ready array", 0, "[1]", "READY: not a JSON object"},
    {"ready empty bytes", 0, "", "READY: not a JSON object"},
    {"ready device number", 0, "{\"device\":3}", "READY: device: not a string"},
    {"ready device too long", 0,
     "{\"device\":"
     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xx\"}",
     "READY: device: longer than 127"},
    {"ready outputs string", 0, "{\"outputs\":\"2\"}",
     "READY: outputs: not a number"},
    {"ready outputs fraction", 0, "{\"outputs\":2.5}",
     "READY: outputs: 2.5 is not a whole number"},
    {"ready outputs negative", 0, "{\"outputs\":-2}", "READY: outputs: -2"},
    {"ready parameters huge", 0, "{\"parameters\":1e300}",
     "READY: parameters: 1e+300"},
    {"job infer", 1,
     "{\"mode\":\"infer\",\"device\":\"cpu\",\"dtype\":\"f16\",\"threads\":2,"
     "\"chunk_rows\":64,\"delay_ms\":0}",
     NULL},
    {"job echo", 1, "{\"mode\":\"echo\"}", NULL},
    {"job train", 1,
     "{\"mode\":\"train\",\"train\":{\"loss\":\"xent\",\"optimizer\":\"adam\","
     "\"lr\":0.1,\"batch_size\":32,\"seed\":5,\"resume\":true}}",
     NULL},
    {"job pipeline", 1,
     "{\"mode\":\"pipeline\",\"task\":\"infer\",\"stage\":1,\"stages\":3,"
     "\"group\":0,\"prev\":0,\"next\":2}",
     NULL},
    {"job not json", 1, "nope", "JOB: not a JSON object"},
    {"job no mode", 1, "{}", "JOB: mode: unknown ''"},
    {"job mode number", 1, "{\"mode\":1}", "JOB: mode: not a string"},
    {"job mode unknown", 1, "{\"mode\":\"dance\"}",
     "JOB: mode: unknown 'dance'"},
    {"job threads string", 1, "{\"mode\":\"infer\",\"threads\":\"2\"}",
     "JOB: threads: not a number"},
    {"job threads huge", 1, "{\"mode\":\"infer\",\"threads\":1e9}",
     "JOB: threads: 1e+09"},
    {"job delay negative", 1, "{\"mode\":\"infer\",\"delay_ms\":-1}",
     "JOB: delay_ms: -1"},
    {"job chunk rows huge", 1, "{\"mode\":\"infer\",\"chunk_rows\":1e20}",
     "JOB: chunk_rows"},
    {"job device object", 1, "{\"mode\":\"infer\",\"device\":{}}",
     "JOB: device: not a string"},
    {"job train without train", 1, "{\"mode\":\"train\"}",
     "JOB: train: not an object"},
    {"job train without batch", 1, "{\"mode\":\"train\",\"train\":{}}",
     "JOB: batch_size: missing"},
    {"job train batch negative", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":-3}}",
     "JOB: batch_size: -3"},
    {"job train lr string", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":3,\"lr\":\"x\"}}",
     "JOB: lr: not a number"},
    {"job train lr negative", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":3,\"lr\":-1}}",
     "JOB: lr: not a number >= 0"},
    {"job train loss unknown", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":3,\"loss\":\"l1\"}}",
     "JOB: loss: unknown 'l1'"},
    {"job train optimizer unknown", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":3,\"optimizer\":\"lbfgs\"}"
     "}",
     "JOB: optimizer: unknown 'lbfgs'"},
    {"job train resume number", 1,
     "{\"mode\":\"train\",\"train\":{\"batch_size\":3,\"resume\":1}}",
     "JOB: resume: not true or false"},
    {"job pipeline no task", 1,
     "{\"mode\":\"pipeline\",\"stage\":0,\"stages\":2,\"prev\":-1,\"next\":1}",
     "JOB: task: unknown pipeline task ''"},
    {"job pipeline no stage", 1, "{\"mode\":\"pipeline\",\"task\":\"infer\"}",
     "JOB: stage: -1 of -1"},
    {"job pipeline stage past", 1,
     "{\"mode\":\"pipeline\",\"task\":\"infer\",\"stage\":2,\"stages\":2,"
     "\"prev\":1,\"next\":-1}",
     "JOB: stage: 2 of 2"},
    {"job pipeline first with prev", 1,
     "{\"mode\":\"pipeline\",\"task\":\"infer\",\"stage\":0,\"stages\":2,"
     "\"prev\":3,\"next\":1}",
     "JOB: stage: 0 of 2"},
    {"job pipeline stage fraction", 1,
     "{\"mode\":\"pipeline\",\"task\":\"infer\",\"stage\":0.5,\"stages\":2,"
     "\"prev\":-1,\"next\":1}",
     "JOB: stage: 0.5"},
    {"job pipeline train without train", 1,
     "{\"mode\":\"pipeline\",\"task\":\"train\",\"stage\":0,\"stages\":2,"
     "\"prev\":-1,\"next\":1}",
     "JOB: train: not an object"},
};

START_TEST (t_json)
{
    const struct jcase *c = &jcases[_i];
    dc_error_t e = {.text = ""};
    const uint8_t *b = (const uint8_t *)c->json;
    size_t len = strlen (c->json);
    int rc;

    if (c->job) {
        struct dc_wire_job j, k;
        rc = dc_wire_job_decode (b, len, &j, &e);
        if (rc == 0) { /* round trip */
            char *s = dc_wire_job_encode (&j);
            ck_assert_ptr_nonnull (s);
            ck_assert_int_eq (
                dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
            ck_assert_msg (!memcmp (&j, &k, sizeof (j)), "%s: %s", c->name, s);
            free (s);
        }
    } else {
        struct dc_wire_ready r, q;
        rc = dc_wire_ready_decode (b, len, &r, &e);
        if (rc == 0) {
            char *s = dc_wire_ready_encode (&r);
            ck_assert_ptr_nonnull (s);
            ck_assert_int_eq (
                dc_wire_ready_decode ((const uint8_t *)s, strlen (s), &q, &e),
                0);
            ck_assert_msg (!memcmp (&r, &q, sizeof (r)), "%s: %s", c->name, s);
            free (s);
        }
    }
    if (c->err) {
        ck_assert_msg (rc == -1, "%s: accepted", c->name);
        ck_assert_msg (strstr (e.text, c->err), "%s: '%s' lacks '%s'", c->name,
                       e.text, c->err);
    } else
        ck_assert_msg (rc == 0, "%s: %s", c->name, e.text);
}
END_TEST

/* Structs encoded then decoded give back what went in. */
START_TEST (t_job_fields)
{
    struct dc_wire_job j = {.mode = DC_WIRE_PIPELINE,
                            .task = DC_WIRE_TRAIN,
                            .threads = 3,
                            .delay_ms = 40,
                            .stage = 1,
                            .stages = 2,
                            .group = 4,
                            .prev = 8,
                            .next = -1,
                            .has_train = true,
                            .train = {.loss = "xent",
                                      .optimizer = "adam",
                                      .lr = 0.01,
                                      .momentum = 0.5,
                                      .beta1 = 0.8,
                                      .beta2 = 0.99,
                                      .eps = 1e-7,
                                      .batch_size = 64,
                                      .seed = 123456789,
                                      .resume = true}};
    struct dc_wire_job k;
    dc_error_t e;

    snprintf (j.device, sizeof (j.device), "cuda");
    snprintf (j.dtype, sizeof (j.dtype), "bf16");
    char *s = dc_wire_job_encode (&j);
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (
        dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert_int_eq (k.mode, DC_WIRE_PIPELINE);
    ck_assert_int_eq (k.task, DC_WIRE_TRAIN);
    ck_assert_str_eq (k.device, "cuda");
    ck_assert_str_eq (k.dtype, "bf16");
    ck_assert_int_eq (k.threads, 3);
    ck_assert_int_eq (k.delay_ms, 40);
    ck_assert_int_eq (k.stage, 1);
    ck_assert_int_eq (k.group, 4);
    ck_assert_int_eq (k.prev, 8);
    ck_assert_int_eq (k.next, -1);
    ck_assert (k.has_train);
    ck_assert_str_eq (k.train.loss, "xent");
    ck_assert_str_eq (k.train.optimizer, "adam");
    ck_assert (k.train.lr == 0.01 && k.train.momentum == 0.5);
    ck_assert (k.train.beta1 == 0.8 && k.train.beta2 == 0.99);
    ck_assert (k.train.eps == 1e-7);
    ck_assert_uint_eq (k.train.batch_size, 64);
    ck_assert_uint_eq (k.train.seed, 123456789);
    ck_assert (k.train.resume);
    free (s);
    /* an unknown mode cannot be encoded */
    j.mode = 0;
    ck_assert_ptr_null (dc_wire_job_encode (&j));
}
END_TEST

/* Training doubles travel bit for bit (cJSON's own printer may drop the
 * last bit: found by fuzz_wire). */
START_TEST (t_job_doubles_exact)
{
    const double v[] = {7.7777777777777779e101, 0.1, 0.30000000000000004,
                        nextafter (0.01, 1.0), 4.9406564584124654e-324};
    for (size_t i = 0; i < sizeof (v) / sizeof (v[0]); i++) {
        struct dc_wire_job j = {.mode = DC_WIRE_TRAIN,
                                .has_train = true,
                                .train = {.lr = v[i],
                                          .momentum = v[i],
                                          .beta1 = 0.9,
                                          .beta2 = 0.999,
                                          .eps = v[i],
                                          .batch_size = 4}},
                           k;
        dc_error_t e;
        char *s = dc_wire_job_encode (&j);
        ck_assert_ptr_nonnull (s);
        ck_assert_int_eq (
            dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
        ck_assert_msg (memcmp (&k.train.lr, &v[i], sizeof (double)) == 0,
                       "lr %.17g came back as %.17g", v[i], k.train.lr);
        ck_assert (memcmp (&k.train.eps, &v[i], sizeof (double)) == 0);
        free (s);
    }
}
END_TEST

/* Direct I/O in JOB and READY: round trips; hostile values refused. */
START_TEST (t_direct_io)
{
    struct dc_wire_job j = {.mode = DC_WIRE_INFER}, k;
    struct dc_wire_ready r = {.inputs = 4, .outputs = 2, .parameters = -1}, q;
    dc_error_t e;

    j.io.on = j.io.required = true;
    snprintf (j.io.input, sizeof (j.io.input), "/data/x.npy");
    snprintf (j.io.output, sizeof (j.io.output), "/data/.y.npy.dcrun-abc123");
    snprintf (j.io.probe, sizeof (j.io.probe), "/data/.y.npy.dcrun-def456");
    snprintf (j.io.token, sizeof (j.io.token), "0123456789abcdef");
    j.io.input_size = 1 << 20;
    j.io.input_mtime_s = 1700000000;
    j.io.input_mtime_ns = 999999999;
    char *s = dc_wire_job_encode (&j);
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (
        dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert (k.io.on && k.io.required);
    ck_assert_str_eq (k.io.output, j.io.output);
    ck_assert_str_eq (k.io.token, j.io.token);
    ck_assert_uint_eq (k.io.input_size, 1 << 20);
    ck_assert_int_eq (k.io.input_mtime_ns, 999999999);
    free (s);
    snprintf (r.io, sizeof (r.io), "direct");
    snprintf (r.io_engine, sizeof (r.io_engine), "mpi-io");
    snprintf (r.io_why, sizeof (r.io_why), "because");
    r.clock = 12345.678901234567;
    s = dc_wire_ready_encode (&r);
    ck_assert_int_eq (
        dc_wire_ready_decode ((const uint8_t *)s, strlen (s), &q, &e), 0);
    ck_assert_str_eq (q.io, "direct");
    ck_assert_str_eq (q.io_engine, "mpi-io");
    ck_assert (q.clock == r.clock);
    free (s);
    /* a clock of -0 is 0, as encode writes it (fuzz_wire found it) */
    static const char nz[] = "{\"clock\":-0}";
    ck_assert_int_eq (
        dc_wire_ready_decode ((const uint8_t *)nz, strlen (nz), &q, &e), 0);
    ck_assert (q.clock == 0 && !signbit (q.clock));
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"mode\":\"infer\",\"io\":[]}", "io: not an object"},
        {"{\"mode\":\"infer\",\"io\":{\"mode\":\"side\"}}",
         "neither direct nor auto"},
        {"{\"mode\":\"infer\",\"io\":{\"mode\":\"auto\",\"input\":"
         "\"x.npy\",\"output\":\"/o\",\"probe\":\"/p\",\"token\":\"t\","
         "\"input_size\":1,\"input_mtime_s\":1,\"input_mtime_ns\":1}}",
         "absolute paths"},
        {"{\"mode\":\"infer\",\"io\":{\"mode\":\"auto\",\"input_mtime_ns\":"
         "1e9}}",
         "input_mtime_ns"},
        {"{\"io\":\"side\"}", "neither direct nor relay"},
        {"{\"clock\":1e13}", "not a clock"},
        {"{\"clock\":-1}", "clock: not a number"},
        {"{\"io_engine\":\"much-too-long\"}", "io_engine: longer"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        const uint8_t *b = (const uint8_t *)bad[i].json;
        int rc = bad[i].json[2] == 'm'
                     ? dc_wire_job_decode (b, strlen (bad[i].json), &k, &e)
                     : dc_wire_ready_decode (b, strlen (bad[i].json), &q, &e);
        ck_assert_msg (rc == -1 && strstr (e.text, bad[i].err),
                       "%s: rc %d, '%s'", bad[i].json, rc, e.text);
    }
}
END_TEST

/* NULL and hostile arguments: no crash, a refusal. */
START_TEST (t_null)
{
    struct dc_wire_job j;
    struct dc_wire_ready r;
    struct dc_wire_chunk c;

    ck_assert_int_eq (dc_wire_job_decode (NULL, 0, &j, NULL), -1);
    ck_assert_int_eq (dc_wire_ready_decode (NULL, 5, &r, NULL), -1);
    ck_assert_int_eq (dc_wire_chunk_get (NULL, 0, 4, &c, NULL), -1);
    /* a new message too large to describe */
    size_t len;
    struct dc_wire_chunk big = {.rows = BIG};
    ck_assert_ptr_null (dc_wire_chunk_new (&big, 4, &len));
    /* encoders of rows that come later leave room for them */
    struct dc_wire_rows m = {.id = 1, .row0 = 2, .rows = 3, .seconds = 0.5};
    uint8_t *b = dc_wire_rows_new (&m, 4, &len);
    ck_assert_ptr_nonnull (b);
    ck_assert_uint_eq (len, DC_RESULT_HDR + 12);
    free (b);
}
END_TEST

/* A train JOB's direct rows ("tio"): round trip, then hostile fields. */
START_TEST (t_job_tio)
{
    struct dc_wire_job j = {.mode = DC_WIRE_TRAIN,
                            .has_train = true,
                            .train = {.lr = 0.1, .batch_size = 8},
                            .tio = {.on = true,
                                    .required = true,
                                    .input = "/data/X.npy",
                                    .target = "/data/T.npy",
                                    .input_size = 4096,
                                    .input_mtime_s = 1700000000,
                                    .input_mtime_ns = 5,
                                    .target_size = 128,
                                    .target_mtime_s = 1700000001,
                                    .target_mtime_ns = 999999999}},
                       k;
    dc_error_t e;
    char *s = dc_wire_job_encode (&j);
    ck_assert_ptr_nonnull (s);
    ck_assert_int_eq (
        dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert (k.tio.on && k.tio.required);
    ck_assert_str_eq (k.tio.input, "/data/X.npy");
    ck_assert_str_eq (k.tio.target, "/data/T.npy");
    ck_assert_uint_eq (k.tio.input_size, 4096);
    ck_assert_int_eq (k.tio.input_mtime_ns, 5);
    ck_assert_uint_eq (k.tio.target_size, 128);
    ck_assert_int_eq (k.tio.target_mtime_ns, 999999999);
    free (s);
    /* absent: relayed rows */
    j.tio.on = false;
    s = dc_wire_job_encode (&j);
    ck_assert_int_eq (
        dc_wire_job_decode ((const uint8_t *)s, strlen (s), &k, &e), 0);
    ck_assert (!k.tio.on);
    free (s);
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"\"tio\":5", "tio: not an object"},
        {"\"tio\":{\"mode\":\"never\",\"input\":\"/x\",\"target\":\"/t\","
         "\"input_size\":1,\"input_mtime_s\":1,\"input_mtime_ns\":1,"
         "\"target_size\":1,\"target_mtime_s\":1,\"target_mtime_ns\":1}",
         "neither direct nor auto"},
        {"\"tio\":{\"mode\":\"auto\",\"input\":\"x\",\"target\":\"/t\","
         "\"input_size\":1,\"input_mtime_s\":1,\"input_mtime_ns\":1,"
         "\"target_size\":1,\"target_mtime_s\":1,\"target_mtime_ns\":1}",
         "absolute paths"},
        {"\"tio\":{\"mode\":\"auto\",\"input\":\"/x\",\"target\":\"/t\"}",
         "absolute paths"},
        {"\"tio\":{\"mode\":\"auto\",\"input\":\"/x\",\"target\":\"/t\","
         "\"input_size\":-1,\"input_mtime_s\":1,\"input_mtime_ns\":1,"
         "\"target_size\":1,\"target_mtime_s\":1,\"target_mtime_ns\":1}",
         "input_size"},
        {"\"tio\":{\"mode\":\"auto\",\"input\":\"/x\",\"target\":\"/t\","
         "\"input_size\":1,\"input_mtime_s\":1,\"input_mtime_ns\":1e10,"
         "\"target_size\":1,\"target_mtime_s\":1,\"target_mtime_ns\":1}",
         "input_mtime_ns"},
        {"\"tio\":{\"mode\":\"auto\",\"input\":7,\"target\":\"/t\"}", "input"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        char buf[1024];
        snprintf (buf, sizeof (buf),
                  "{\"mode\":\"train\",\"train\":{\"lr\":0.1,"
                  "\"batch_size\":8},%s}",
                  bad[i].json);
        ck_assert_int_eq (
            dc_wire_job_decode ((const uint8_t *)buf, strlen (buf), &k, &e),
            -1);
        ck_assert_msg (strstr (e.text, bad[i].err), "case %zu: '%s'", i,
                       e.text);
    }
}
END_TEST

/* A rank's trained state: round trip, then short, bad counts, wrong
 * lengths. */
START_TEST (t_tstate)
{
    uint8_t b[DC_TSTATE_HDR + 3 * 4 * 4];
    struct dc_wire_tstate m;
    dc_error_t e;

    memset (b, 0, sizeof (b));
    dc_wire_tstate_put (b, &(struct dc_wire_tstate){.step = 9, .nvec = 2});
    ck_assert_int_eq (
        dc_wire_tstate_get (b, DC_TSTATE_HDR + 2 * 4 * 4, 4, &m, &e), 0);
    ck_assert_uint_eq (m.step, 9);
    ck_assert_uint_eq (m.nvec, 2);
    ck_assert_ptr_eq (m.v, b + DC_TSTATE_HDR);
    static const struct {
        uint64_t step, nvec;
        size_t len, nparams;
        const char *err;
    } bad[] = {
        {9, 2, 8, 4, "train state"},
        {9, 0, DC_TSTATE_HDR, 4, "vectors: 0"},
        {9, 4, DC_TSTATE_HDR + 3 * 16, 4, "vectors: 4"},
        {9, 2, DC_TSTATE_HDR + 2 * 16 - 4, 4, "bytes where"},
        {9, 1, DC_TSTATE_HDR + 3 * 16, 4, "bytes where"},
        {9, 1, DC_TSTATE_HDR, 0, "parameters: 0"},
        {(uint64_t)1 << 63, 1, DC_TSTATE_HDR + 16, 4, "step"},
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        dc_wire_tstate_put (b, &(struct dc_wire_tstate){.step = bad[i].step,
                                                        .nvec = bad[i].nvec});
        ck_assert_int_eq (
            dc_wire_tstate_get (b, bad[i].len, bad[i].nparams, &m, &e), -1);
        ck_assert_msg (strstr (e.text, bad[i].err), "case %zu: '%s'", i,
                       e.text);
    }
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("wire");
    TCase *tc = tcase_create ("wire");

    tcase_add_loop_test (tc, t_binary, 0,
                         (int)(sizeof (bcases) / sizeof (bcases[0])));
    tcase_add_loop_test (tc, t_json, 0,
                         (int)(sizeof (jcases) / sizeof (jcases[0])));
    tcase_add_test (tc, t_job_fields);
    tcase_add_test (tc, t_job_doubles_exact);
    tcase_add_test (tc, t_direct_io);
    tcase_add_test (tc, t_null);
    tcase_add_test (tc, t_job_tio);
    tcase_add_test (tc, t_tstate);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
