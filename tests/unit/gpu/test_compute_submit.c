/* test_compute_submit.c - the optional ops of compute.h on the cpu
 * back-end: host_alloc/host_free and mlp_submit/mlp_wait, through the
 * front functions, and the fall-backs of a back-end without them
 *
 * The contract: the bytes of a submitted chunk are mlp_infer's for the
 * same rows and row0, so a batch pipelined through the two slots in
 * chunks of any size gives the bytes of one mlp_infer of the whole batch
 * (issue 10's rule: GEMMs on 1024-row blocks aligned to row 0).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "gpu/compute.h"

static const struct dc_compute_ops *cpu;
static struct dc_compute_ops bare; /* the cpu ops without the optional ones */
static struct dc_compute *cc;
static struct dc_mlp_dev *net;
static struct dc_layer_view lv[3];

static const int dims[] = {37, 50, 24, 9};
#define NIN 37
#define NOUT 9

static uint64_t rng = 88172645463325252ULL;
static float urand (void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / (double)(1ULL << 52) - 1.0);
}

static float *rand_floats (size_t n, float scale)
{
    float *p = malloc (n * sizeof (float));
    ck_assert_ptr_nonnull (p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * urand ();
    return p;
}

static void setup (void)
{
    struct dc_compute_opts o = {.dtype = DC_DTYPE_F32, .threads = 2};
    static const enum dc_act acts[] = {DC_ACT_GELU, DC_ACT_TANH, DC_ACT_NONE};
    struct dc_mlp_view view = {.nlayers = 3, .layers = lv};
    dc_error_t err;

    cpu = dc_compute_find ("cpu", &err);
    ck_assert_msg (cpu != NULL, "%s", err.text);
    bare = *cpu;
    bare.host_alloc = NULL;
    bare.host_free = NULL;
    bare.mlp_submit = NULL;
    bare.mlp_wait = NULL;
    cc = cpu->create (&o, &err);
    ck_assert_msg (cc != NULL, "%s", err.text);
    for (int l = 0; l < 3; l++)
        lv[l] = (struct dc_layer_view){
            .in = dims[l],
            .out = dims[l + 1],
            .act = acts[l],
            .w = rand_floats ((size_t)dims[l] * (size_t)dims[l + 1], 0.3f),
            .b = rand_floats ((size_t)dims[l + 1], 0.5f)};
    net = cpu->mlp_load (cc, &view, &err);
    ck_assert_msg (net != NULL, "%s", err.text);
}

static void teardown (void)
{
    cpu->mlp_unload (cc, net);
    cpu->destroy (cc);
    for (int l = 0; l < 3; l++) {
        free ((float *)lv[l].w);
        free ((float *)lv[l].b);
    }
    net = NULL;
    cc = NULL;
}

/* _i: 0 the cpu ops, 1 the bare table (the fall-backs) */
static const struct dc_compute_ops *ops_of (int i)
{
    return i ? &bare : cpu;
}

/* One chunk: submit/wait gives mlp_infer's bytes, at odd row counts and at
 * offsets inside and across 1024-row blocks. */
START_TEST (test_submit_bytes)
{
    static const size_t rows[] = {1, 7, 1023, 1025, 2500};
    static const size_t row0s[] = {0, 3, 1021, 4101};
    const struct dc_compute_ops *ops = ops_of (_i);
    size_t maxr = 2500;
    float *x = rand_floats (maxr * NIN, 1.0f);
    float *ref = malloc (maxr * NOUT * sizeof (float));
    dc_error_t err;
    float *xs = dc_compute_host_alloc (ops, cc, maxr * NIN * 4, &err);
    float *ys = dc_compute_host_alloc (ops, cc, maxr * NOUT * 4, &err);

    ck_assert_ptr_nonnull (xs);
    ck_assert_ptr_nonnull (ys);
    memcpy (xs, x, maxr * NIN * sizeof (float));
    for (size_t r = 0; r < sizeof (rows) / sizeof (rows[0]); r++)
        for (size_t o = 0; o < sizeof (row0s) / sizeof (row0s[0]); o++) {
            int slot = (int)((r + o) % DC_COMPUTE_SLOTS);
            ck_assert_msg (
                cpu->mlp_infer (cc, net, x, rows[r], row0s[o], ref, &err) == 0,
                "%s", err.text);
            memset (ys, 0xff, rows[r] * NOUT * sizeof (float));
            ck_assert_msg (dc_compute_mlp_submit (ops, cc, net, slot, xs,
                                                  rows[r], row0s[o], ys,
                                                  &err) == 0,
                           "%s", err.text);
            ck_assert_msg (dc_compute_mlp_wait (ops, cc, net, slot, &err) == 0,
                           "%s", err.text);
            ck_assert_msg (!memcmp (ys, ref, rows[r] * NOUT * sizeof (float)),
                           "%s: %zu rows at row %zu: other bytes",
                           _i ? "fall-back" : "cpu", rows[r], row0s[o]);
        }
    dc_compute_host_free (ops, cc, xs);
    dc_compute_host_free (ops, cc, ys);
    free (x), free (ref);
}
END_TEST

/* A batch pipelined through both slots in chunks (the rank's loop: submit
 * k, fill k+1, wait k) has the bytes of one mlp_infer of the batch. */
START_TEST (test_pipeline_bytes)
{
    static const size_t chunks[] = {61, 333, 1024, 1500, 5000};
    const struct dc_compute_ops *ops = ops_of (_i / 5);
    const size_t n = 4099, chunk = chunks[_i % 5];
    float *x = rand_floats (n * NIN, 1.0f);
    float *ref = malloc (n * NOUT * sizeof (float));
    float *y = malloc (n * NOUT * sizeof (float));
    float *xs[DC_COMPUTE_SLOTS], *ys[DC_COMPUTE_SLOTS];
    size_t at[DC_COMPUTE_SLOTS] = {0}, cnt[DC_COMPUTE_SLOTS] = {0};
    dc_error_t err;

    ck_assert (cpu->mlp_infer (cc, net, x, n, 0, ref, &err) == 0);
    for (int s = 0; s < DC_COMPUTE_SLOTS; s++) {
        xs[s] = dc_compute_host_alloc (ops, cc, chunk * NIN * 4, &err);
        ys[s] = dc_compute_host_alloc (ops, cc, chunk * NOUT * 4, &err);
        ck_assert_ptr_nonnull (xs[s]);
        ck_assert_ptr_nonnull (ys[s]);
    }
    int k = 0;
    for (size_t r0 = 0; r0 < n; r0 += chunk, k = 1 - k) {
        /* this slot's previous chunk first */
        ck_assert (dc_compute_mlp_wait (ops, cc, net, k, &err) == 0);
        if (cnt[k])
            memcpy (y + at[k] * NOUT, ys[k], cnt[k] * NOUT * sizeof (float));
        at[k] = r0;
        cnt[k] = n - r0 < chunk ? n - r0 : chunk;
        memcpy (xs[k], x + r0 * NIN, cnt[k] * NIN * sizeof (float));
        ck_assert_msg (dc_compute_mlp_submit (ops, cc, net, k, xs[k], cnt[k],
                                              r0, ys[k], &err) == 0,
                       "%s", err.text);
    }
    for (int s = 0; s < DC_COMPUTE_SLOTS; s++) {
        ck_assert (dc_compute_mlp_wait (ops, cc, net, s, &err) == 0);
        memcpy (y + at[s] * NOUT, ys[s], cnt[s] * NOUT * sizeof (float));
        dc_compute_host_free (ops, cc, xs[s]);
        dc_compute_host_free (ops, cc, ys[s]);
    }
    ck_assert_msg (!memcmp (y, ref, n * NOUT * sizeof (float)),
                   "%s: chunks of %zu: other bytes than one mlp_infer",
                   _i / 5 ? "fall-back" : "cpu", chunk);
    free (x), free (ref), free (y);
}
END_TEST

/* host_alloc: 64-byte aligned and writable, with and without the op. */
START_TEST (test_host_alloc)
{
    static const size_t sizes[] = {1, 3, 63, 64, 65, 4096, 1 << 20};
    const struct dc_compute_ops *ops = ops_of (_i);
    dc_error_t err;

    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
        unsigned char *p = dc_compute_host_alloc (ops, cc, sizes[i], &err);
        ck_assert_msg (p != NULL, "%s", err.text);
        ck_assert_msg ((uintptr_t)p % 64 == 0, "%zu bytes at %p", sizes[i],
                       (void *)p);
        memset (p, 0xa5, sizes[i]);
        ck_assert_int_eq (p[sizes[i] - 1], 0xa5);
        dc_compute_host_free (ops, cc, p);
    }
    dc_compute_host_free (ops, cc, NULL); /* accepted */
    dc_compute_host_free (NULL, NULL, NULL);
    errno = 0;
    ck_assert_ptr_null (dc_compute_host_alloc (ops, cc, 0, &err));
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_msg (strstr (err.text, "zero bytes"), "%s", err.text);
    ck_assert_ptr_null (dc_compute_host_alloc (NULL, cc, 64, &err));
    ck_assert_ptr_null (dc_compute_host_alloc (ops, NULL, 64, &err));
    ck_assert_msg (strstr (err.text, "no back-end instance"), "%s", err.text);
}
END_TEST

/* Bad slots and arguments: -1 with EINVAL and a message, never a crash. */
START_TEST (test_hostile)
{
    static const int slots[] = {-1, DC_COMPUTE_SLOTS, 1000, -2147483647 - 1};
    const struct dc_compute_ops *ops = ops_of (_i);
    float x[NIN] = {0}, y[NOUT];
    dc_error_t err;

    for (size_t i = 0; i < sizeof (slots) / sizeof (slots[0]); i++) {
        errno = 0;
        ck_assert_int_eq (
            dc_compute_mlp_submit (ops, cc, net, slots[i], x, 1, 0, y, &err),
            -1);
        ck_assert_int_eq (errno, EINVAL);
        ck_assert_msg (strstr (err.text, "slot"), "%s", err.text);
        ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, net, slots[i], &err),
                          -1);
        ck_assert_msg (strstr (err.text, "out of range"), "%s", err.text);
    }
    ck_assert_int_eq (
        dc_compute_mlp_submit (NULL, cc, net, 0, x, 1, 0, y, &err), -1);
    ck_assert_int_eq (
        dc_compute_mlp_submit (ops, NULL, net, 0, x, 1, 0, y, &err), -1);
    ck_assert_int_eq (
        dc_compute_mlp_submit (ops, cc, NULL, 0, x, 1, 0, y, &err), -1);
    ck_assert_msg (strstr (err.text, "NULL argument"), "%s", err.text);
    ck_assert_int_eq (
        dc_compute_mlp_submit (ops, cc, net, 0, NULL, 1, 0, y, &err), -1);
    ck_assert_int_eq (
        dc_compute_mlp_submit (ops, cc, net, 1, x, 1, 0, NULL, &err), -1);
    ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, NULL, 0, &err), -1);
    /* nothing to do: zero rows, and a wait on an idle slot */
    ck_assert_int_eq (
        dc_compute_mlp_submit (ops, cc, net, 0, NULL, 0, 0, NULL, &err), 0);
    ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, net, 0, &err), 0);
    ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, net, 1, &err), 0);
    ck_assert_int_eq (dc_compute_mlp_wait (ops, cc, net, 1, NULL), 0);
}
END_TEST

int main (void)
{
    dc_error_t err;
    const struct dc_compute_ops *ops = dc_compute_find ("cpu", &err);
    Suite *s;
    TCase *tc;

    if (!ops || ops->probe (&err) != 1)
        return dc_check_skip (err.text); /* no BLAS on this host */
    s = suite_create ("compute_submit");
    tc = tcase_create ("submit");
    tcase_add_checked_fixture (tc, setup, teardown);
    tcase_add_loop_test (tc, test_submit_bytes, 0, 2);
    tcase_add_loop_test (tc, test_pipeline_bytes, 0, 10);
    tcase_add_loop_test (tc, test_host_alloc, 0, 2);
    tcase_add_loop_test (tc, test_hostile, 0, 2);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
