/* layout.h - how a model is spread over the ranks: data, layers, hybrid
 *
 *   data    every rank holds the whole model; rows are split across ranks
 *   layers  each rank holds a run of consecutive layers (a stage); micro-
 *           batches flow stage to stage (one pipeline of `size` stages)
 *   hybrid  the ranks form size/S groups of S stages, each group a
 *           pipeline; the rows are split across the groups
 *   auto    data when the model and the working set of a chunk fit every
 *           rank's device memory with DC_LAYOUT_HEADROOM to spare; else the
 *           fewest stages S dividing the number of ranks for which every
 *           stage fits its ranks (size/S groups of S stages)
 *
 * Rank r of a pipeline layout is stage r mod S of group r / S.  Stage
 * boundaries are contiguous runs of layers that minimise the largest
 * stage's FLOPs subject to every stage fitting the memory of each rank
 * that holds it (a dynamic programme over the layers).
 *
 * Bytes a stage holds: its weights and biases (f32) and the activations of
 * one micro-batch of `rows` rows: rows x (inputs of its first layer + the
 * outputs of each of its layers) f32.  A rank's memory must hold them
 * times (1 + DC_LAYOUT_HEADROOM).
 */
#ifndef DC_LAYOUT_H
#define DC_LAYOUT_H

#include <stddef.h>

#include "lib/util/error.h"

#define DC_LAYOUT_HEADROOM 0.10

enum dc_split {
    DC_SPLIT_DATA = 0,
    DC_SPLIT_LAYERS,
    DC_SPLIT_HYBRID,
    DC_SPLIT_AUTO,
};

/* "data", "layers", "hybrid", "auto": 0, or -1 for anything else. */
int dc_split_parse (const char *s, enum dc_split *split);
const char *dc_split_name (enum dc_split split);

/* Parse a byte count with an optional suffix K, M, G, T (powers of 1024,
 * an optional trailing "B" or "iB"): 0, or -1 when s is not one or is 0. */
int dc_layout_parse_bytes (const char *s, long long *bytes);

/* "1.5 GiB", "12.0 KiB", "512 B" into buf; returns buf. */
const char *dc_layout_fmt_bytes (double bytes, char *buf, size_t len);

struct dc_layout_layer {
    const char *name; /* for messages, borrowed */
    int in, out;
};

struct dc_layout_opts {
    enum dc_split split;
    int stages;  /* hybrid: stages per group (required); layers: 0 or
                    the number of ranks */
    size_t rows; /* rows of a micro-batch (or chunk) held at once */
};

struct dc_layout {
    enum dc_split split; /* data, layers or hybrid: auto resolved */
    int size;            /* ranks */
    int nstages;         /* 1 for data */
    int ngroups;         /* size / nstages */
    int nlayers;
    int *l0, *l1;         /* [nstages]: layers [l0, l1) of each stage */
    double *weight_bytes; /* [nstages] */
    double *act_bytes;    /* [nstages], for rows rows */
    double *flops;        /* [nstages] per row */
    double total_flops;   /* per row, every layer */
    double total_bytes;   /* weights of every layer */
    long long *mem;       /* [size] device memory of each rank, -1 unknown */
};

/* Plan the layout of nlayers layers on size ranks whose device memory is
 * mem[size] bytes (<= 0: unknown, taken as enough).  NULL with errno and
 * errp: EINVAL for a bad request ("--split hybrid: 6 ranks do not form
 * groups of 4 stages"), EFBIG when the model does not fit (a layer alone
 * too large for every rank names the layer and its size). */
struct dc_layout *dc_layout_plan (const struct dc_layout_layer *layers,
                                  int nlayers, const long long *mem, int size,
                                  const struct dc_layout_opts *o,
                                  dc_error_t *errp);
void dc_layout_destroy (struct dc_layout *lo); /* accepts NULL */

/* Stage and group of rank r, and the rank holding stage s of group g. */
static inline int dc_layout_stage (const struct dc_layout *lo, int r)
{
    return r % lo->nstages;
}

static inline int dc_layout_group (const struct dc_layout *lo, int r)
{
    return r / lo->nstages;
}

static inline int dc_layout_rank (const struct dc_layout *lo, int g, int s)
{
    return g * lo->nstages + s;
}

/* Expected share of the work of rank r (0..1): its stage's FLOPs over the
 * model's, divided among the groups. */
double dc_layout_share (const struct dc_layout *lo, int r);

#endif
