/* layout.c - data, layers, hybrid: stage boundaries under memory limits */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/layout.h"

static const char *const split_names[] = {
    [DC_SPLIT_DATA] = "data",
    [DC_SPLIT_LAYERS] = "layers",
    [DC_SPLIT_HYBRID] = "hybrid",
    [DC_SPLIT_AUTO] = "auto",
};

int dc_split_parse (const char *s, enum dc_split *split)
{
    for (int i = 0; s && i <= DC_SPLIT_AUTO; i++)
        if (!strcmp (s, split_names[i])) {
            *split = (enum dc_split)i;
            return 0;
        }
    errno = EINVAL;
    return -1;
}

const char *dc_split_name (enum dc_split split)
{
    return (unsigned)split <= DC_SPLIT_AUTO ? split_names[split] : "?";
}

int dc_layout_parse_bytes (const char *s, long long *bytes)
{
    char *end;
    double v, mult = 1;

    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        goto bad;
    v = strtod (s, &end);
    if (errno || end == s || !(v > 0) || !isfinite (v))
        goto bad;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    }
    if (mult > 1 && *end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        goto bad;
    v *= mult;
    if (v < 1 || v > 9.0e18)
        goto bad;
    *bytes = (long long)v;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

const char *dc_layout_fmt_bytes (double bytes, char *buf, size_t len)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;

    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    if (i == 0)
        snprintf (buf, len, "%.0f B", bytes);
    else
        snprintf (buf, len, "%.1f %s", bytes, u[i]);
    return buf;
}

double dc_layout_share (const struct dc_layout *lo, int r)
{
    if (!lo || r < 0 || r >= lo->size || lo->ngroups < 1)
        return 0;
    if (lo->nstages == 1 || !(lo->total_flops > 0))
        return 1.0 / lo->size;
    int s = dc_layout_stage (lo, r);
    return lo->flops[s] / lo->total_flops / lo->ngroups;
}

/* Prefix sums over the layers: weights, outputs, FLOPs per row. */
struct sums {
    int n;
    double *w, *o, *f;
    const struct dc_layout_layer *layers;
    double rows;
};

static double st_weights (const struct sums *p, int i, int j)
{
    return p->w[j] - p->w[i];
}

static double st_act (const struct sums *p, int i, int j)
{
    return 4.0 * p->rows * ((double)p->layers[i].in + p->o[j] - p->o[i]);
}

static double st_bytes (const struct sums *p, int i, int j)
{
    return st_weights (p, i, j) + st_act (p, i, j);
}

static double st_flops (const struct sums *p, int i, int j)
{
    return p->f[j] - p->f[i];
}

/* Contiguous partition of the layers into S stages, stage s within
 * cap[s] bytes, minimising the largest stage's FLOPs.  Fills l0/l1;
 * -1 when no partition fits. */
static int partition (const struct sums *p, int S, const double *cap, int *l0,
                      int *l1)
{
    int L = p->n;
    double *dp = malloc (sizeof (double) * (size_t)(S + 1) * (size_t)(L + 1));
    int *from = malloc (sizeof (int) * (size_t)(S + 1) * (size_t)(L + 1));
    int rc = -1;

    if (!dp || !from)
        goto out;
#define DP(s, j) dp[(size_t)(s) * (size_t)(L + 1) + (size_t)(j)]
#define FROM(s, j) from[(size_t)(s) * (size_t)(L + 1) + (size_t)(j)]
    for (int s = 0; s <= S; s++)
        for (int j = 0; j <= L; j++) {
            DP (s, j) = INFINITY;
            FROM (s, j) = -1;
        }
    DP (0, 0) = 0;
    for (int s = 1; s <= S; s++)
        for (int j = s; j <= L - (S - s); j++)
            for (int i = s - 1; i < j; i++) {
                if (!isfinite (DP (s - 1, i)) ||
                    st_bytes (p, i, j) > cap[s - 1])
                    continue;
                double c = fmax (DP (s - 1, i), st_flops (p, i, j));
                if (c < DP (s, j)) {
                    DP (s, j) = c;
                    FROM (s, j) = i;
                }
            }
    if (!isfinite (DP (S, L)))
        goto out;
    for (int s = S, j = L; s >= 1; s--) {
        int i = FROM (s, j);
        l0[s - 1] = i;
        l1[s - 1] = j;
        j = i;
    }
    rc = 0;
#undef DP
#undef FROM
out:
    free (dp);
    free (from);
    return rc;
}

/* The memory stage s of S-stage groups may use: the smallest of its
 * ranks', less the headroom; INFINITY when unknown. */
static void stage_caps (const long long *mem, int size, int S, double *cap)
{
    for (int s = 0; s < S; s++) {
        cap[s] = INFINITY;
        for (int r = s; r < size; r += S)
            if (mem && mem[r] > 0)
                cap[s] =
                    fmin (cap[s], (double)mem[r] / (1.0 + DC_LAYOUT_HEADROOM));
    }
}

/* Free the per-stage arrays (fill makes them). */
static void unfill (struct dc_layout *lo)
{
    free (lo->l0);
    free (lo->l1);
    free (lo->weight_bytes);
    free (lo->act_bytes);
    free (lo->flops);
    lo->l0 = lo->l1 = NULL;
    lo->weight_bytes = lo->act_bytes = lo->flops = NULL;
}

void dc_layout_destroy (struct dc_layout *lo)
{
    if (lo) {
        unfill (lo);
        free (lo->mem);
        free (lo);
    }
}

static int fill (struct dc_layout *lo, int S)
{
    lo->nstages = S;
    lo->ngroups = lo->size / S;
    if (!(lo->l0 = calloc ((size_t)S, sizeof (int))) ||
        !(lo->l1 = calloc ((size_t)S, sizeof (int))) ||
        !(lo->weight_bytes = calloc ((size_t)S, sizeof (double))) ||
        !(lo->act_bytes = calloc ((size_t)S, sizeof (double))) ||
        !(lo->flops = calloc ((size_t)S, sizeof (double)))) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void fill_stats (struct dc_layout *lo, const struct sums *p)
{
    for (int s = 0; s < lo->nstages; s++) {
        lo->weight_bytes[s] = st_weights (p, lo->l0[s], lo->l1[s]);
        lo->act_bytes[s] = st_act (p, lo->l0[s], lo->l1[s]);
        lo->flops[s] = st_flops (p, lo->l0[s], lo->l1[s]);
    }
}

/* The largest memory of any rank, less the headroom (INFINITY: unknown). */
static double best_cap (const long long *mem, int size)
{
    double best = 0;
    for (int r = 0; r < size; r++) {
        if (!mem || mem[r] <= 0)
            return INFINITY;
        best = fmax (best, (double)mem[r] / (1.0 + DC_LAYOUT_HEADROOM));
    }
    return best;
}

/* A layer that fits no rank: EFBIG with its name and size. */
static int check_layers (const struct sums *p, const long long *mem, int size,
                         dc_error_t *errp)
{
    double best = best_cap (mem, size);
    char a[32], b[32];

    for (int i = 0; i < p->n; i++)
        if (st_bytes (p, i, i + 1) > best) {
            errno = EFBIG;
            return errprintf (
                errp,
                "layer %d ('%s', %d x %d) needs %s for its "
                "weights and activations, more than any rank's "
                "device memory (%s with %.0f%% headroom)",
                i, p->layers[i].name ? p->layers[i].name : "?",
                p->layers[i].out, p->layers[i].in,
                dc_layout_fmt_bytes (st_bytes (p, i, i + 1), a, sizeof (a)),
                dc_layout_fmt_bytes (best * (1.0 + DC_LAYOUT_HEADROOM), b,
                                     sizeof (b)),
                DC_LAYOUT_HEADROOM * 100);
        }
    return 0;
}

/* The prefix sums of the layers (p->w, p->o, p->f allocated). */
static void sums_fill (struct sums *p)
{
    for (int i = 0; i < p->n; i++) {
        double in = p->layers[i].in, out = p->layers[i].out;
        p->w[i + 1] = p->w[i] + 4.0 * (in * out + out);
        p->o[i + 1] = p->o[i] + out;
        p->f[i + 1] = p->f[i] + 2.0 * in * out;
    }
}

/* Data parallel: the whole model on every rank.  1 when it fits (lo
 * planned), 0 when it does not and split is auto, -1 with errp. */
static int plan_data (struct dc_layout *lo, const struct sums *p,
                      enum dc_split split, dc_error_t *errp)
{
    double need = st_bytes (p, 0, p->n);
    int worst = -1;
    char a[32], b[32];

    for (int r = 0; r < lo->size; r++)
        if (lo->mem[r] > 0 &&
            need * (1.0 + DC_LAYOUT_HEADROOM) > (double)lo->mem[r] &&
            (worst < 0 || lo->mem[r] < lo->mem[worst]))
            worst = r;
    if (worst < 0) {
        if (fill (lo, 1) < 0)
            return errprintf (errp, "out of memory");
        lo->split = DC_SPLIT_DATA;
        lo->l0[0] = 0;
        lo->l1[0] = p->n;
        fill_stats (lo, p);
        return 1;
    }
    if (split != DC_SPLIT_DATA)
        return 0;
    errno = EFBIG;
    return errprintf (
        errp,
        "--split data: the model and a chunk need %s (with "
        "%.0f%% headroom) but rank %d has %s of device memory",
        dc_layout_fmt_bytes (need * (1.0 + DC_LAYOUT_HEADROOM), a, sizeof (a)),
        DC_LAYOUT_HEADROOM * 100, worst,
        dc_layout_fmt_bytes ((double)lo->mem[worst], b, sizeof (b)));
}

/* Auto: the fewest stages (a divisor of the ranks) that fit. */
static int plan_auto (struct dc_layout *lo, const struct sums *p, double *cap,
                      dc_error_t *errp)
{
    int size = lo->size, nlayers = p->n;
    char a[32];

    for (int S = 2; S <= size && S <= nlayers; S++) {
        if (size % S)
            continue;
        stage_caps (lo->mem, size, S, cap);
        if (fill (lo, S) < 0)
            return errprintf (errp, "out of memory");
        if (partition (p, S, cap, lo->l0, lo->l1) == 0) {
            lo->split = S == size ? DC_SPLIT_LAYERS : DC_SPLIT_HYBRID;
            fill_stats (lo, p);
            return 0;
        }
        unfill (lo);
    }
    errno = EFBIG;
    return errprintf (errp,
                      "the model (%s of weights, %d layers) does not fit %d "
                      "rank%s in any layout",
                      dc_layout_fmt_bytes (lo->total_bytes, a, sizeof (a)),
                      nlayers, size, size == 1 ? "" : "s");
}

/* The stages of --split layers (one a rank) or hybrid (--stages). */
static int stage_count (enum dc_split split, const struct dc_layout_opts *o,
                        int size, int nlayers, int *Sp, dc_error_t *errp)
{
    int S = split == DC_SPLIT_LAYERS ? size : o->stages;

    if (split == DC_SPLIT_LAYERS && o->stages > 0 && o->stages != size) {
        errno = EINVAL;
        return errprintf (errp,
                          "--split layers: --stages %d differs from the %d "
                          "ranks (use --split hybrid for groups of stages)",
                          o->stages, size);
    }
    if (S < 1) {
        errno = EINVAL;
        return errprintf (errp, "--split hybrid needs --stages S");
    }
    if (size % S != 0) {
        errno = EINVAL;
        return errprintf (errp,
                          "--split %s: %d rank%s do not form groups of %d "
                          "stages (the number of ranks must be a multiple of "
                          "--stages)",
                          dc_split_name (split), size, size == 1 ? "" : "s", S);
    }
    if (S > nlayers) {
        errno = EINVAL;
        return errprintf (errp,
                          "--split %s: %d stage%s but the model has %d "
                          "layer%s (use fewer ranks or --stages)",
                          dc_split_name (split), S, S == 1 ? "" : "s", nlayers,
                          nlayers == 1 ? "" : "s");
    }
    *Sp = S;
    return 0;
}

/* --split layers or hybrid with S stages a group. */
static int plan_stages (struct dc_layout *lo, const struct sums *p,
                        enum dc_split split, int S, double *cap,
                        dc_error_t *errp)
{
    char a[32];

    stage_caps (lo->mem, lo->size, S, cap);
    if (fill (lo, S) < 0)
        return errprintf (errp, "out of memory");
    if (partition (p, S, cap, lo->l0, lo->l1) < 0) {
        errno = EFBIG;
        return errprintf (errp,
                          "--split %s: the model (%s of weights, %d layers) "
                          "does not fit %d stage%s of these ranks' device "
                          "memory",
                          dc_split_name (split),
                          dc_layout_fmt_bytes (lo->total_bytes, a, sizeof (a)),
                          p->n, S, S == 1 ? "" : "s");
    }
    lo->split = S == 1 ? DC_SPLIT_DATA : split;
    fill_stats (lo, p);
    return 0;
}

/* Resolve o->split on lo (sums and memory known). */
static int plan_split (struct dc_layout *lo, const struct sums *p,
                       const struct dc_layout_opts *o, double *cap,
                       dc_error_t *errp)
{
    enum dc_split split = o->split;
    int S = 0, rc;

    if (split == DC_SPLIT_DATA || split == DC_SPLIT_AUTO) {
        if ((rc = plan_data (lo, p, split, errp)) != 0)
            return rc < 0 ? -1 : 0;
    }
    if (check_layers (p, lo->mem, lo->size, errp) < 0)
        return -1;
    if (split == DC_SPLIT_AUTO)
        return plan_auto (lo, p, cap, errp);
    if (stage_count (split, o, lo->size, p->n, &S, errp) < 0)
        return -1;
    return plan_stages (lo, p, split, S, cap, errp);
}

struct dc_layout *dc_layout_plan (const struct dc_layout_layer *layers,
                                  int nlayers, const long long *mem, int size,
                                  const struct dc_layout_opts *o,
                                  dc_error_t *errp)
{
    struct dc_layout *lo = NULL;
    struct sums p = {.n = nlayers, .layers = layers};
    double *cap = NULL;
    int rc = -1;

    if (!layers || nlayers < 1 || size < 1 || !o ||
        (unsigned)o->split > DC_SPLIT_AUTO) {
        errno = EINVAL;
        errprintf (errp, "layout: no layers or no ranks");
        return NULL;
    }
    p.rows = (double)(o->rows ? o->rows : 1);
    if (!(lo = calloc (1, sizeof (*lo))) ||
        !(lo->mem = calloc ((size_t)size, sizeof (long long))) ||
        !(p.w = calloc ((size_t)nlayers + 1, sizeof (double))) ||
        !(p.o = calloc ((size_t)nlayers + 1, sizeof (double))) ||
        !(p.f = calloc ((size_t)nlayers + 1, sizeof (double))) ||
        !(cap = calloc ((size_t)size, sizeof (double)))) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        goto out;
    }
    lo->size = size;
    lo->nlayers = nlayers;
    for (int r = 0; r < size; r++)
        lo->mem[r] = mem && mem[r] > 0 ? mem[r] : -1;
    for (int i = 0; i < nlayers; i++)
        if (layers[i].in < 1 || layers[i].out < 1) {
            errno = EINVAL;
            errprintf (errp, "layout: layer %d has no size", i);
            goto out;
        }
    sums_fill (&p);
    lo->total_flops = p.f[nlayers];
    lo->total_bytes = p.w[nlayers];
    rc = plan_split (lo, &p, o, cap, errp);
out:
    free (p.w);
    free (p.o);
    free (p.f);
    free (cap);
    if (rc < 0) {
        dc_layout_destroy (lo);
        return NULL;
    }
    return lo;
}
