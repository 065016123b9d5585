/* test_layout.c - data, layers, hybrid and auto layouts under memory caps */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/model/layout.h"

/* Widths "64-128-128-32" give layers 64x128, 128x128, 128x32.  With 64-row
 * micro-batches their bytes (weights + activations) alone are 82432,
 * 131584 and 57472; the whole model needs 205952 (226547 with headroom). */
static const struct {
    const char *widths;
    const char *mem; /* comma-separated bytes per rank, "-" unknown */
    enum dc_split split;
    int stages;
    size_t rows;
    const char *want; /* "data 1:0-3" / "layers 3:0-1,1-2,2-3" / "ERR ..." */
} cases[] = {
    /* memory unknown: data fits by assumption */
    {"64-128-128-32", "-,-", DC_SPLIT_AUTO, 0, 64, "data 1:0-3"},
    {"64-128-128-32", "1000000,1000000", DC_SPLIT_AUTO, 0, 64, "data 1:0-3"},
    /* 2 stages cannot fit 150000; 3 can, one layer each */
    {"64-128-128-32", "150000,150000,150000", DC_SPLIT_AUTO, 0, 64,
     "layers 3:0-1,1-2,2-3"},
    /* 200000: 2 stages balanced by FLOPs (16384 | 40960 beats 49152 | 8192) */
    {"64-128-128-32", "200000,200000", DC_SPLIT_AUTO, 0, 64,
     "layers 2:0-1,1-3"},
    {"64-128-128-32", "200000,200000,200000,200000", DC_SPLIT_AUTO, 0, 64,
     "hybrid 2:0-1,1-3"},
    /* 3 stages would fit, but 4 ranks make no groups of 3: none fits */
    {"64-128-128-32", "150000,150000,150000,150000", DC_SPLIT_AUTO, 0, 64,
     "ERR does not fit 4 ranks"},
    /* the middle layer alone is too large for any rank */
    {"64-128-128-32", "100000,100000", DC_SPLIT_AUTO, 0, 64,
     "ERR layer 1 ('L1', 128 x 128) needs 128.5 KiB"},
    {"64-128-128-32", "100000,100000", DC_SPLIT_LAYERS, 0, 64, "ERR layer 1 ("},
    /* smaller micro-batches: 2 stages fit 150000 */
    {"64-128-128-32", "150000,150000", DC_SPLIT_AUTO, 0, 16,
     "layers 2:0-1,1-3"},
    /* explicit layouts */
    {"64-128-128-32", "-,-,-", DC_SPLIT_LAYERS, 0, 64, "layers 3:0-1,1-2,2-3"},
    {"64-128-128-32", "-,-,-,-", DC_SPLIT_HYBRID, 2, 64, "hybrid 2:0-1,1-3"},
    {"64-128-128-32", "-,-,-,-", DC_SPLIT_LAYERS, 0, 64,
     "ERR model has 3 layers"},
    {"64-128-128-32", "-,-,-", DC_SPLIT_HYBRID, 2, 64, "ERR multiple"},
    {"64-128-128-32", "-,-", DC_SPLIT_HYBRID, 0, 64, "ERR needs --stages"},
    {"64-128-128-32", "-,-", DC_SPLIT_LAYERS, 3, 64, "ERR differs"},
    {"64-128-128-32", "150000,150000", DC_SPLIT_DATA, 0, 64,
     "ERR --split data: the model and a chunk need 221.2 KiB"},
    {"64-128-128-32", "-,-", DC_SPLIT_DATA, 0, 64, "data 1:0-3"},
    /* one stage per group is data */
    {"64-128-128-32", "-,-", DC_SPLIT_HYBRID, 1, 64, "data 1:0-3"},
    {"64-128-128-32", "-", DC_SPLIT_LAYERS, 0, 64, "data 1:0-3"},
    /* equal layers: the largest stage is as small as can be */
    {"8-8-8-8-8-8", "-,-", DC_SPLIT_LAYERS, 0, 1, "layers 2:0-2,2-5"},
    {"8-8-8-8-8-8", "-,-,-,-,-", DC_SPLIT_LAYERS, 0, 1,
     "layers 5:0-1,1-2,2-3,3-4,4-5"},
    /* a small rank 0 takes one layer (352 bytes fit 400/1.1), rank 1 the
     * rest, whatever the FLOPs */
    {"8-8-8-8-8-8", "400,-", DC_SPLIT_LAYERS, 0, 1, "layers 2:0-1,1-5"},
    /* a group's stage must fit the smallest rank holding it */
    {"8-8-8-8-8-8", "-,-,400,-", DC_SPLIT_HYBRID, 2, 1, "hybrid 2:0-1,1-5"},
    /* hostile: a layer of no size, no layers, no ranks */
    {"8-0-8", "-", DC_SPLIT_AUTO, 0, 1, "ERR no size"},
    {"", "-", DC_SPLIT_AUTO, 0, 1, "ERR no layers"},
    {"8-8", "", DC_SPLIT_AUTO, 0, 1, "ERR no ranks"},
};

static int parse_widths (const char *s, struct dc_layout_layer *l, int max)
{
    int w[64], n = 0;
    char *end;

    while (*s && n < 64) {
        w[n++] = (int)strtol (s, &end, 10);
        s = *end == '-' ? end + 1 : end;
    }
    for (int i = 0; i + 1 < n && i < max; i++) {
        l[i].in = w[i];
        l[i].out = w[i + 1];
    }
    return n > 1 ? n - 1 : 0;
}

static int parse_mem (const char *s, long long *mem)
{
    int n = 0;
    char *end;

    while (*s && n < 64) {
        if (*s == '-') {
            mem[n++] = -1;
            s++;
        } else {
            mem[n++] = strtoll (s, &end, 10);
            s = end;
        }
        if (*s == ',')
            s++;
    }
    return n;
}

START_TEST (t_cases)
{
    static const char *names[] = {"L0", "L1", "L2", "L3", "L4", "L5", "L6"};
    struct dc_layout_layer l[64];
    long long mem[64];
    dc_error_t err = {{0}};
    int nl = parse_widths (cases[_i].widths, l, 64);
    int size = parse_mem (cases[_i].mem, mem);
    struct dc_layout_opts o = {
        .split = cases[_i].split,
        .stages = cases[_i].stages,
        .rows = cases[_i].rows,
    };
    for (int i = 0; i < nl && i < 7; i++)
        l[i].name = names[i];
    struct dc_layout *lo = dc_layout_plan (l, nl, mem, size, &o, &err);
    const char *want = cases[_i].want;
    if (!strncmp (want, "ERR ", 4)) {
        ck_assert_msg (lo == NULL, "case %d should fail", _i);
        ck_assert_msg (strstr (err.text, want + 4), "case %d: %s", _i,
                       err.text);
        ck_assert_int_ne (errno, 0);
        return;
    }
    ck_assert_msg (lo != NULL, "case %d: %s", _i, err.text);
    char got[256];
    int n = snprintf (got, sizeof (got), "%s %d:", dc_split_name (lo->split),
                      lo->nstages);
    for (int s = 0; s < lo->nstages; s++)
        n += snprintf (got + n, sizeof (got) - (size_t)n, "%s%d-%d",
                       s ? "," : "", lo->l0[s], lo->l1[s]);
    ck_assert_msg (!strcmp (got, want), "case %d: got '%s', want '%s'", _i, got,
                   want);
    ck_assert_int_eq (lo->ngroups * lo->nstages, lo->size);
    /* shares add up to 1 */
    double sum = 0;
    for (int r = 0; r < lo->size; r++)
        sum += dc_layout_share (lo, r);
    ck_assert_msg (sum > 0.999 && sum < 1.001, "case %d: shares %g", _i, sum);
    dc_layout_destroy (lo);
}
END_TEST

START_TEST (t_stats)
{
    struct dc_layout_layer l[3] = {
        {"a", 64, 128}, {"b", 128, 128}, {"c", 128, 32}};
    struct dc_layout_opts o = {.split = DC_SPLIT_LAYERS, .rows = 64};
    struct dc_layout *lo = dc_layout_plan (l, 3, NULL, 3, &o, NULL);

    ck_assert_ptr_nonnull (lo);
    ck_assert_int_eq ((int)lo->weight_bytes[1], 66048);
    ck_assert_int_eq ((int)lo->act_bytes[1], 65536);
    ck_assert_int_eq ((int)lo->flops[0], 16384);
    ck_assert_int_eq ((int)lo->total_bytes, 115840);
    ck_assert_int_eq (dc_layout_stage (lo, 2), 2);
    ck_assert_int_eq (dc_layout_group (lo, 2), 0);
    ck_assert_int_eq (dc_layout_rank (lo, 0, 1), 1);
    ck_assert (dc_layout_share (lo, 1) > 0.57 &&
               dc_layout_share (lo, 1) < 0.58);
    ck_assert (dc_layout_share (lo, 7) == 0);
    ck_assert (dc_layout_share (NULL, 0) == 0);
    dc_layout_destroy (lo);
    dc_layout_destroy (NULL);
    ck_assert_ptr_null (dc_layout_plan (NULL, 3, NULL, 3, &o, NULL));
    ck_assert_ptr_null (dc_layout_plan (l, 3, NULL, 3, NULL, NULL));
}
END_TEST

static const struct {
    const char *s;
    long long want; /* -1: an error */
} bytes_cases[] = {
    {"1", 1},
    {"4096", 4096},
    {"1K", 1024},
    {"1k", 1024},
    {"1KiB", 1024},
    {"2kb", 2048},
    {"1.5M", 1572864},
    {"2G", 2147483648LL},
    {"1T", 1099511627776LL},
    {"1e3", 1000},
    {"0", -1},
    {"-5", -1},
    {"+5", -1},
    {" 5", -1},
    {"5 G", -1},
    {"1X", -1},
    {"G", -1},
    {"", -1},
    {NULL, -1},
    {"1GG", -1},
    {"99999999999T", -1},
    {"nan", -1},
    {"0.5", -1},
};

START_TEST (t_bytes)
{
    long long v = 7;
    int rc = dc_layout_parse_bytes (bytes_cases[_i].s, &v);

    if (bytes_cases[_i].want < 0) {
        ck_assert_msg (rc < 0, "'%s' should fail", bytes_cases[_i].s);
        ck_assert_int_eq (v, 7);
    } else {
        ck_assert_msg (rc == 0, "'%s'", bytes_cases[_i].s);
        ck_assert_int_eq (v, bytes_cases[_i].want);
    }
}
END_TEST

START_TEST (t_names)
{
    enum dc_split s = DC_SPLIT_DATA;
    char buf[32];

    ck_assert_int_eq (dc_split_parse ("hybrid", &s), 0);
    ck_assert_int_eq (s, DC_SPLIT_HYBRID);
    ck_assert_int_eq (dc_split_parse ("auto", &s), 0);
    ck_assert_int_eq (s, DC_SPLIT_AUTO);
    ck_assert_int_eq (dc_split_parse ("Layers", &s), -1);
    ck_assert_int_eq (dc_split_parse ("", &s), -1);
    ck_assert_int_eq (dc_split_parse (NULL, &s), -1);
    ck_assert_str_eq (dc_split_name (DC_SPLIT_LAYERS), "layers");
    ck_assert_str_eq (dc_split_name ((enum dc_split)42), "?");
    ck_assert_str_eq (dc_layout_fmt_bytes (512, buf, sizeof (buf)), "512 B");
    ck_assert_str_eq (dc_layout_fmt_bytes (1536, buf, sizeof (buf)), "1.5 KiB");
    ck_assert_str_eq (dc_layout_fmt_bytes (3.0 * (1 << 30), buf, sizeof (buf)),
                      "3.0 GiB");
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("layout");
    TCase *tc = tcase_create ("layout");
    tcase_add_loop_test (tc, t_cases, 0, sizeof (cases) / sizeof (cases[0]));
    tcase_add_test (tc, t_stats);
    tcase_add_loop_test (tc, t_bytes, 0,
                         sizeof (bytes_cases) / sizeof (bytes_cases[0]));
    tcase_add_test (tc, t_names);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
