/* report.c - run report JSON with cJSON */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "lib/util/clock.h"
#include "lib/util/file.h"
#include "lib/formats/npy.h"
#include "lib/formats/report.h"

static const char *const phase_names[DC_PHASE_COUNT] = {
    [DC_PHASE_LAUNCH] = "launch",     [DC_PHASE_LOAD] = "load",
    [DC_PHASE_COPY_IN] = "copy_in",   [DC_PHASE_COMPUTE] = "compute",
    [DC_PHASE_COPY_OUT] = "copy_out", [DC_PHASE_GATHER] = "gather",
    [DC_PHASE_WRITE] = "write",
};

const char *const dc_chunk_phase_names[DC_CHUNK_NPHASES] = {
    "read", "copy_in", "compute", "copy_out", "write",
};

void dc_chunk_phases_get (const struct dc_chunk_phases *p,
                          double v[DC_CHUNK_NPHASES])
{
    v[0] = p->read;
    v[1] = p->copy_in;
    v[2] = p->compute;
    v[3] = p->copy_out;
    v[4] = p->write;
}

struct dc_report {
    cJSON *root;
    cJSON *hosts, *ranks, *versions;
    double phase[DC_PHASE_COUNT];
    double seconds;
    double total_rows; /* < 0: the ranks' rows summed */
    double t0;         /* dc_report_now() at create: the timeline's zero */
    bool exec;         /* an exec report: no phases, no rows */
    struct dc_report_chunk *chunks; /* end < 0: no result (yet) */
    size_t nchunks, capchunks, dropped;
    struct dc_report_event *events;
    size_t nevents, capevents;
    struct rhost {
        int rank;
        char host[256];
    } * rhosts;
    size_t nrhosts;
};

double dc_report_now (void)
{
    return dc_now ();
}

struct dc_report *dc_report_create (const char *command)
{
    struct dc_report *r = calloc (1, sizeof (*r));

    if (!r)
        return NULL;
    r->t0 = dc_report_now ();
    r->total_rows = -1;
    r->exec = command && !strcmp (command, "exec");
    if (!(r->root = cJSON_CreateObject ()) ||
        !cJSON_AddStringToObject (r->root, "command", command ? command : "") ||
        !(r->hosts = cJSON_AddArrayToObject (r->root, "hosts")) ||
        (!r->exec && !cJSON_AddStringToObject (r->root, "layout", "data")) ||
        !(r->ranks = cJSON_AddArrayToObject (r->root, "ranks")) ||
        !(r->versions = cJSON_CreateObject ())) {
        dc_report_destroy (r);
        errno = ENOMEM;
        return NULL;
    }
    cJSON_AddStringToObject (r->versions, "dcrun", DCRUN_VERSION);
#ifdef DCRUN_CUDA_VERSION
    if (HAVE_CUDA && DCRUN_CUDA_VERSION[0]) {
        cJSON_AddStringToObject (r->versions, "cuda", DCRUN_CUDA_VERSION);
        cJSON_AddStringToObject (r->versions, "cublas", DCRUN_CUDA_VERSION);
    } else
#endif
    {
        cJSON_AddNullToObject (r->versions, "cuda");
        cJSON_AddNullToObject (r->versions, "cublas");
    }
#ifdef DCRUN_MPI_VERSION
    if (HAVE_MPI && DCRUN_MPI_VERSION[0])
        cJSON_AddStringToObject (r->versions, "openmpi", DCRUN_MPI_VERSION);
    else
#endif
        cJSON_AddNullToObject (r->versions, "openmpi");
    cJSON_AddStringToObject (r->versions, "hwloc", DCRUN_HWLOC_VERSION);
#ifdef DCRUN_OPENBLAS_VERSION
    cJSON_AddStringToObject (r->versions, "openblas", DCRUN_OPENBLAS_VERSION);
#endif
    return r;
}

void dc_report_destroy (struct dc_report *r)
{
    if (!r)
        return;
    cJSON_Delete (r->root);
    cJSON_Delete (r->versions);
    free (r->chunks);
    free (r->events);
    free (r->rhosts);
    free (r);
}

void dc_report_phase_add (struct dc_report *r, enum dc_phase p, double seconds)
{
    if (r && (unsigned)p < DC_PHASE_COUNT)
        r->phase[p] += seconds;
}

double dc_report_phase_get (const struct dc_report *r, enum dc_phase p)
{
    return r && (unsigned)p < DC_PHASE_COUNT ? r->phase[p] : 0.0;
}

int dc_report_add_host (struct dc_report *r, const char *host)
{
    if (!r || !host)
        return -1;
    cJSON *e;
    cJSON_ArrayForEach (e, r->hosts)
    {
        if (!strcmp (e->valuestring, host))
            return 0;
    }
    return cJSON_AddItemToArray (r->hosts, cJSON_CreateString (host)) ? 0 : -1;
}

int dc_report_set_layout (struct dc_report *r, const char *layout)
{
    if (!r || !layout)
        return -1;
    return cJSON_ReplaceItemInObjectCaseSensitive (r->root, "layout",
                                                   cJSON_CreateString (layout))
               ? 0
               : -1;
}

int dc_report_add_rank (struct dc_report *r, int rank, const char *host,
                        const char *device, size_t rows, double seconds,
                        double flop)
{
    cJSON *o;

    if (!r || !(o = cJSON_CreateObject ()))
        return -1;
    cJSON_AddNumberToObject (o, "rank", rank);
    cJSON_AddStringToObject (o, "host", host ? host : "");
    cJSON_AddStringToObject (o, "device", device ? device : "");
    cJSON_AddNumberToObject (o, "rows", (double)rows);
    cJSON_AddNumberToObject (o, "seconds", seconds);
    cJSON_AddNumberToObject (o, "flop", flop);
    cJSON_AddNumberToObject (o, "tflops",
                             seconds > 0 ? flop / seconds / 1e12 : 0.0);
    cJSON_AddItemToArray (r->ranks, o);
    if (host)
        dc_report_add_host (r, host);
    return 0;
}

int dc_report_set_rank_kernel (struct dc_report *r, int rank,
                               const char *kernel)
{
    cJSON *e;

    if (!r || !kernel || !kernel[0])
        return -1;
    cJSON_ArrayForEach (e, r->ranks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (cJSON_IsNumber (n) && (int)n->valuedouble == rank) {
            cJSON_DeleteItemFromObjectCaseSensitive (e, "blas_kernel");
            return cJSON_AddStringToObject (e, "blas_kernel", kernel) ? 0 : -1;
        }
    }
    errno = ENOENT;
    return -1;
}

int dc_report_kernels_differ (const struct dc_report *r, char *buf, size_t len)
{
    const char *first = NULL;
    int differ = 0;
    size_t used = 0;
    cJSON *e;

    if (buf && len)
        buf[0] = '\0';
    if (!r)
        return 0;
    cJSON_ArrayForEach (e, r->ranks)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive (e, "blas_kernel");
        if (!cJSON_IsString (k))
            continue;
        if (!first)
            first = k->valuestring;
        else if (strcmp (first, k->valuestring))
            differ = 1;
    }
    if (!differ || !buf || !len)
        return differ;
    /* name each rank's kernel, one entry per change along the ranks */
    const char *prev = NULL;
    cJSON_ArrayForEach (e, r->ranks)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive (e, "blas_kernel");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (!cJSON_IsString (k) || !cJSON_IsNumber (n) ||
            (prev && !strcmp (prev, k->valuestring)))
            continue;
        int w =
            snprintf (buf + used, len - used, "%srank %d: %s", prev ? ", " : "",
                      (int)n->valuedouble, k->valuestring);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        prev = k->valuestring;
    }
    return 1;
}

void dc_report_set_nonfinite_rows (struct dc_report *r, size_t rows)
{
    if (!r)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive (r->root, "nonfinite_rows");
    cJSON_AddNumberToObject (r->root, "nonfinite_rows", (double)rows);
}

size_t dc_nonfinite_rows (const float *y, size_t rows, size_t cols)
{
    size_t n = 0;

    if (!y)
        return 0;
    for (size_t i = 0; i < rows; i++) {
        const float *r = y + i * cols;
        for (size_t j = 0; j < cols; j++)
            if (!isfinite (r[j])) {
                n++;
                break;
            }
    }
    return n;
}

int dc_nonfinite_rows_file (const char *path, size_t *rows, dc_error_t *errp)
{
    struct dc_npy *a;
    float *buf = NULL;
    size_t n = 0, block;
    int rc = -1;

    if (!path || !rows) {
        errno = EINVAL;
        return errprintf (errp, "nonfinite rows: NULL argument");
    }
    if (!(a = dc_npy_open (path, errp)))
        return -1;
    size_t cols = a->row_elems;
    if (cols == 0 || a->ndim == 0) {
        /* no elements, or a 0-D array: no rows to count */
        *rows = 0;
        rc = 0;
        goto out;
    }
    block = ((size_t)4 << 20) / (cols * sizeof (float));
    if (block == 0)
        block = 1;
    if (!(buf = malloc (block * cols * sizeof (float)))) {
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", path);
        goto out;
    }
    for (size_t r0 = 0; r0 < a->rows; r0 += block) {
        size_t m = a->rows - r0 < block ? a->rows - r0 : block;
        if (dc_npy_read_f32 (a, r0, m, buf, errp) < 0)
            goto out;
        n += dc_nonfinite_rows (buf, m, cols);
    }
    *rows = n;
    rc = 0;
out:
    free (buf);
    dc_npy_close (a);
    return rc;
}

int dc_report_set_output (struct dc_report *r, const char *path, int ndim,
                          const int64_t *shape, const char *dtype,
                          const char *sha256)
{
    cJSON *o, *s;

    if (!r || !(o = cJSON_CreateObject ()))
        return -1;
    cJSON_AddStringToObject (o, "path", path ? path : "");
    s = cJSON_AddArrayToObject (o, "shape");
    for (int i = 0; i < ndim; i++)
        cJSON_AddItemToArray (s, cJSON_CreateNumber ((double)shape[i]));
    cJSON_AddStringToObject (o, "dtype", dtype ? dtype : "");
    if (sha256)
        cJSON_AddStringToObject (o, "sha256", sha256);
    else
        cJSON_AddNullToObject (o, "sha256");
    cJSON_DeleteItemFromObjectCaseSensitive (r->root, "output");
    cJSON_AddItemToObject (r->root, "output", o);
    return 0;
}

void dc_report_set_total_rows (struct dc_report *r, size_t rows)
{
    if (r)
        r->total_rows = (double)rows;
}

void dc_report_set_total_seconds (struct dc_report *r, double seconds)
{
    if (r)
        r->seconds = seconds;
}

int dc_report_set_version (struct dc_report *r, const char *what,
                           const char *version)
{
    if (!r || !what || !version)
        return -1;
    cJSON_DeleteItemFromObjectCaseSensitive (r->versions, what);
    return cJSON_AddStringToObject (r->versions, what, version) ? 0 : -1;
}

cJSON *dc_report_extra (struct dc_report *r, const char *name)
{
    cJSON *o;
    if (!r || !name)
        return NULL;
    if ((o = cJSON_GetObjectItemCaseSensitive (r->root, name)))
        return o;
    return cJSON_AddObjectToObject (r->root, name);
}

/* a new record at the end of the timeline, NULL when full */
static struct dc_report_chunk *chunk_new (struct dc_report *r)
{
    if (r->nchunks == r->capchunks) {
        size_t cap = r->capchunks ? 2 * r->capchunks : 256;
        struct dc_report_chunk *c;
        if (r->nchunks >= DC_REPORT_MAX_CHUNKS ||
            !(c = realloc (r->chunks, cap * sizeof (*c)))) {
            r->dropped++;
            return NULL;
        }
        r->chunks = c;
        r->capchunks = cap;
    }
    return &r->chunks[r->nchunks++];
}

void dc_report_chunk_sent (struct dc_report *r, int rank, uint64_t id)
{
    struct dc_report_chunk *c;

    if (!r || !(c = chunk_new (r)))
        return;
    *c = (struct dc_report_chunk){
        .rank = rank,
        .id = id,
        .start = dc_report_now () - r->t0,
        .end = -1,
        .compute = -1,
    };
}

void dc_report_chunk_done (struct dc_report *r, int rank, uint64_t id,
                           double compute_seconds)
{
    if (!r)
        return;
    /* the latest send of this chunk to this rank (a rank holds few) */
    for (size_t i = r->nchunks; i-- > 0;) {
        struct dc_report_chunk *c = &r->chunks[i];
        if (c->rank == rank && c->id == id && c->end < 0) {
            c->end = dc_report_now () - r->t0;
            c->compute = compute_seconds >= 0 && isfinite (compute_seconds)
                             ? compute_seconds
                             : 0;
            return;
        }
    }
}

static double secs (double s)
{
    return s > 0 && isfinite (s) ? s : 0;
}

void dc_report_chunk_phases (struct dc_report *r, int rank, uint64_t id,
                             const struct dc_chunk_phases *p)
{
    struct dc_report_chunk *c = NULL;

    if (!r || !p)
        return;
    for (size_t i = r->nchunks; i-- > 0;)
        if (r->chunks[i].rank == rank && r->chunks[i].id == id) {
            c = &r->chunks[i];
            break;
        }
    if (!c) {
        if (!(c = chunk_new (r)))
            return;
        *c = (struct dc_report_chunk){
            .rank = rank, .id = id, .end = -1, .compute = -1};
        c->start = isfinite (p->start) ? p->start - r->t0 : 0;
    }
    c->has_phases = true;
    c->phases = (struct dc_chunk_phases){
        .start = isfinite (p->start) ? p->start - r->t0 : c->start,
        .read = secs (p->read),
        .copy_in = secs (p->copy_in),
        .compute = secs (p->compute),
        .copy_out = secs (p->copy_out),
        .write = secs (p->write),
    };
}

void dc_report_chunk_measured (struct dc_report *r, int rank, uint64_t id,
                               const struct dc_chunk_phases *p)
{
    struct dc_report_chunk *c;
    double v[DC_CHUNK_NPHASES], tot = 0;

    if (!r || !p || !isfinite (p->start) || !(c = chunk_new (r)))
        return;
    dc_chunk_phases_get (p, v);
    for (int i = 0; i < DC_CHUNK_NPHASES; i++)
        tot += secs (v[i]);
    *c = (struct dc_report_chunk){
        .rank = rank,
        .id = id,
        .start = p->start - r->t0,
        .end = p->start - r->t0 + tot,
        .compute = secs (p->compute),
        .has_phases = true,
        .phases = {.start = p->start - r->t0,
                   .read = secs (p->read),
                   .copy_in = secs (p->copy_in),
                   .compute = secs (p->compute),
                   .copy_out = secs (p->copy_out),
                   .write = secs (p->write)},
    };
}

const struct dc_report_chunk *dc_report_chunks (const struct dc_report *r,
                                                size_t *n)
{
    if (n)
        *n = r ? r->nchunks : 0;
    return r ? r->chunks : NULL;
}

double dc_report_t0 (const struct dc_report *r)
{
    return r ? r->t0 : 0;
}

static struct dc_report_event *event_new (struct dc_report *r, int rank,
                                          char ph, const char *name,
                                          const char *cat)
{
    struct dc_report_event *e;

    if (!r || !name)
        return NULL;
    if (r->nevents == r->capevents) {
        size_t cap = r->capevents ? 2 * r->capevents : 64;
        if (r->nevents >= DC_REPORT_MAX_EVENTS ||
            !(e = realloc (r->events, cap * sizeof (*e))))
            return NULL;
        r->events = e;
        r->capevents = cap;
    }
    e = &r->events[r->nevents++];
    memset (e, 0, sizeof (*e));
    e->rank = rank;
    e->ph = ph;
    e->n = NAN;
    snprintf (e->name, sizeof (e->name), "%s", name);
    snprintf (e->cat, sizeof (e->cat), "%s", cat ? cat : "");
    return e;
}

void dc_report_span (struct dc_report *r, int rank, const char *name,
                     const char *cat, double start, double end, double n)
{
    struct dc_report_event *e = event_new (r, rank, 'X', name, cat);

    if (!e)
        return;
    e->start = isfinite (start) && start > r->t0 ? start - r->t0 : 0;
    e->end = isfinite (end) && end - r->t0 > e->start ? end - r->t0 : e->start;
    e->n = n;
}

void dc_report_instant (struct dc_report *r, int rank, const char *name,
                        const char *cat, const char *detail)
{
    struct dc_report_event *e = event_new (r, rank, 'i', name, cat);

    if (!e)
        return;
    e->start = e->end = dc_report_now () - r->t0;
    snprintf (e->detail, sizeof (e->detail), "%s", detail ? detail : "");
}

const struct dc_report_event *dc_report_events (const struct dc_report *r,
                                                size_t *n)
{
    if (n)
        *n = r ? r->nevents : 0;
    return r ? r->events : NULL;
}

void dc_report_rank_host (struct dc_report *r, int rank, const char *host)
{
    struct rhost *h;

    if (!r || !host)
        return;
    for (size_t i = 0; i < r->nrhosts; i++)
        if (r->rhosts[i].rank == rank) {
            snprintf (r->rhosts[i].host, sizeof (r->rhosts[i].host), "%s",
                      host);
            return;
        }
    if (r->nrhosts >= DC_REPORT_MAX_EVENTS ||
        !(h = realloc (r->rhosts, (r->nrhosts + 1) * sizeof (*h))))
        return;
    r->rhosts = h;
    h[r->nrhosts].rank = rank;
    snprintf (h[r->nrhosts].host, sizeof (h[r->nrhosts].host), "%s", host);
    r->nrhosts++;
}

const char *dc_report_host_of (const struct dc_report *r, int rank)
{
    const cJSON *e;

    if (!r)
        return NULL;
    /* told first: a training report's rank 0 is the head's trainer */
    for (size_t i = 0; i < r->nrhosts; i++)
        if (r->rhosts[i].rank == rank)
            return r->rhosts[i].host;
    cJSON_ArrayForEach (e, r->ranks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive (e, "host");
        if (cJSON_IsNumber (n) && (int)n->valuedouble == rank &&
            cJSON_IsString (h) && h->valuestring[0])
            return h->valuestring;
    }
    return NULL;
}

const cJSON *dc_report_root (const struct dc_report *r)
{
    return r ? r->root : NULL;
}

int dc_report_add_exec_rank (struct dc_report *r,
                             const struct dc_report_exec_rank *x)
{
    cJSON *o;

    if (!r || !x || !(o = cJSON_CreateObject ()))
        return -1;
    double start = x->start > 0 && isfinite (x->start) ? x->start : 0;
    double end = x->end > start && isfinite (x->end) ? x->end : start;
    cJSON_AddNumberToObject (o, "rank", x->rank);
    cJSON_AddStringToObject (o, "host", x->host ? x->host : "");
    if (x->failed_start)
        cJSON_AddStringToObject (o, "failed_start",
                                 x->reason ? x->reason : "failed to start");
    else if (x->signaled)
        cJSON_AddNumberToObject (o, "signal", x->sig);
    else
        cJSON_AddNumberToObject (o, "status", x->code);
    cJSON_AddNumberToObject (o, "start", start);
    cJSON_AddNumberToObject (o, "end", end);
    cJSON_AddNumberToObject (o, "seconds", end - start);
    cJSON_AddItemToArray (r->ranks, o);
    if (x->host)
        dc_report_add_host (r, x->host);
    return 0;
}

/* Each rank's "chunks" timeline, into the copy's rank objects: one pass
 * over the chunks, the rank's list found by its number. */
static void add_chunks (struct dc_report *r, cJSON *ranks)
{
    cJSON *e, **lists;
    int max = -1;

    if (r->nchunks == 0)
        return;
    cJSON_ArrayForEach (e, ranks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (cJSON_IsNumber (n) && n->valuedouble >= 0 && n->valuedouble < 1e7 &&
            (int)n->valuedouble > max)
            max = (int)n->valuedouble;
    }
    if (max < 0 || !(lists = calloc ((size_t)max + 1, sizeof (*lists))))
        return;
    cJSON_ArrayForEach (e, ranks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (cJSON_IsNumber (n) && n->valuedouble >= 0 && n->valuedouble < 1e7 &&
            !lists[(int)n->valuedouble])
            lists[(int)n->valuedouble] = cJSON_AddArrayToObject (e, "chunks");
    }
    double (*tot)[DC_CHUNK_NPHASES] = calloc ((size_t)max + 1, sizeof (*tot));
    bool *has = calloc ((size_t)max + 1, sizeof (*has));
    for (size_t i = 0; i < r->nchunks; i++) {
        const struct dc_report_chunk *c = &r->chunks[i];
        cJSON *o;
        if (c->rank < 0 || c->rank > max || !lists[c->rank] ||
            !(o = cJSON_CreateObject ()))
            continue;
        cJSON_AddNumberToObject (o, "id", (double)c->id);
        cJSON_AddNumberToObject (o, "start", c->start);
        if (c->end >= 0) {
            cJSON_AddNumberToObject (o, "end", c->end);
            cJSON_AddNumberToObject (o, "compute", c->compute);
        } else {
            cJSON_AddNullToObject (o, "end");
            cJSON_AddNullToObject (o, "compute");
        }
        if (c->has_phases) {
            double v[DC_CHUNK_NPHASES];
            cJSON *ph = cJSON_AddObjectToObject (o, "phases");
            dc_chunk_phases_get (&c->phases, v);
            cJSON_AddNumberToObject (ph, "start", c->phases.start);
            for (int k = 0; k < DC_CHUNK_NPHASES; k++) {
                cJSON_AddNumberToObject (ph, dc_chunk_phase_names[k], v[k]);
                if (tot)
                    tot[c->rank][k] += v[k];
            }
            if (has)
                has[c->rank] = true;
        }
        cJSON_AddItemToArray (lists[c->rank], o);
    }
    /* per rank totals of the measured phases, busy = their sum */
    cJSON_ArrayForEach (e, ranks)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (e, "rank");
        if (!tot || !has || !cJSON_IsNumber (n) || n->valuedouble < 0 ||
            n->valuedouble > max || !has[(int)n->valuedouble] ||
            cJSON_GetObjectItemCaseSensitive (e, "phases"))
            continue;
        int k = (int)n->valuedouble;
        double busy = 0;
        cJSON *ph = cJSON_AddObjectToObject (e, "phases");
        for (int j = 0; j < DC_CHUNK_NPHASES; j++) {
            cJSON_AddNumberToObject (ph, dc_chunk_phase_names[j], tot[k][j]);
            busy += tot[k][j];
        }
        cJSON_AddNumberToObject (ph, "busy", busy);
    }
    free (tot);
    free (has);
    free (lists);
}

/* Assemble phases, totals and versions (in that order) into a copy. */
static cJSON *assemble (struct dc_report *r)
{
    cJSON *root = cJSON_Duplicate (r->root, 1), *ph, *tot, *e;
    double rows = 0, flop = 0;

    if (!root)
        return NULL;
    add_chunks (r, cJSON_GetObjectItemCaseSensitive (root, "ranks"));
    if (r->dropped)
        cJSON_AddNumberToObject (root, "chunks_dropped", (double)r->dropped);
    if (!r->exec) {
        ph = cJSON_AddObjectToObject (root, "phases");
        for (int i = 0; i < DC_PHASE_COUNT; i++)
            cJSON_AddNumberToObject (ph, phase_names[i], r->phase[i]);
    }
    cJSON_ArrayForEach (e, r->ranks)
    {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive (e, "rows");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive (e, "flop");
        rows += cJSON_IsNumber (x) ? x->valuedouble : 0;
        flop += cJSON_IsNumber (f) ? f->valuedouble : 0;
    }
    tot = cJSON_AddObjectToObject (root, "totals");
    cJSON_AddNumberToObject (tot, "ranks", cJSON_GetArraySize (r->ranks));
    if (r->exec) {
        cJSON_AddNumberToObject (tot, "seconds", r->seconds);
        cJSON_AddItemToObject (root, "versions",
                               cJSON_Duplicate (r->versions, 1));
        return root;
    }
    cJSON_AddNumberToObject (tot, "rows",
                             r->total_rows >= 0 ? r->total_rows : rows);
    cJSON_AddNumberToObject (tot, "seconds", r->seconds);
    cJSON_AddNumberToObject (tot, "flop", flop);
    double cs = r->phase[DC_PHASE_COMPUTE];
    cJSON_AddNumberToObject (tot, "tflops", cs > 0 ? flop / cs / 1e12 : 0.0);
    cJSON_AddNumberToObject (tot, "tflops_end_to_end",
                             r->seconds > 0 ? flop / r->seconds / 1e12 : 0.0);
    cJSON_AddItemToObject (root, "versions", cJSON_Duplicate (r->versions, 1));
    return root;
}

char *dc_report_print (struct dc_report *r)
{
    cJSON *root;
    char *s;

    if (!r || !(root = assemble (r)))
        return NULL;
    s = cJSON_Print (root);
    cJSON_Delete (root);
    return s;
}

int dc_report_write (struct dc_report *r, const char *path, dc_error_t *errp)
{
    struct dc_atomicfile *f;
    char *s = dc_report_print (r);
    int rc = -1;

    if (!s) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", path ? path : "report");
    }
    size_t n = strlen (s);
    s[n] = '\n'; /* replaces the NUL; written with its length */
    if ((f = dc_atomicfile_create (path, errp)) &&
        dc_atomicfile_pwrite (f, s, n + 1, 0, errp) == 0 &&
        dc_atomicfile_commit (f, errp) == 0)
        rc = 0;
    dc_atomicfile_destroy (f);
    free (s);
    return rc;
}
