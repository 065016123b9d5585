/* safetensors.c - safetensors read/write with a cJSON header, bounds checked */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/util/half.h"
#include "lib/formats/safetensors.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* In the order of the safetensors library's Dtype enum, which save_file
 * sorts by (descending), then by name. */
static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};
#define NDTYPES (sizeof (dtypes) / sizeof (dtypes[0]))

static int dtype_index (const char *name)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (!strcmp (dtypes[i].name, name))
            return (int)i;
    return -1;
}

size_t dc_safetensors_dtype_size (const char *dtype)
{
    int i = dtype ? dtype_index (dtype) : -1;
    return i < 0 ? 0 : dtypes[i].size;
}

static bool is_float (const char *dtype)
{
    return !strcmp (dtype, "F32") || !strcmp (dtype, "F16") ||
           !strcmp (dtype, "BF16");
}

struct dc_safetensors *dc_safetensors_create (void)
{
    return calloc (1, sizeof (struct dc_safetensors));
}

static void tensor_free (struct dc_tensor *t)
{
    free (t->name);
    free (t->data);
    free (t->raw);
}

void dc_safetensors_destroy (struct dc_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        tensor_free (&st->v[i]);
    free (st->v);
    for (size_t i = 0; i < st->nmeta; i++) {
        free (st->meta_keys[i]);
        free (st->meta_vals[i]);
    }
    free (st->meta_keys);
    free (st->meta_vals);
    free (st);
}

struct dc_tensor *dc_safetensors_find (const struct dc_safetensors *st,
                                       const char *name)
{
    for (size_t i = 0; st && name && i < st->n; i++)
        if (!strcmp (st->v[i].name, name))
            return &st->v[i];
    return NULL;
}

const char *dc_safetensors_meta_get (const struct dc_safetensors *st,
                                     const char *key)
{
    for (size_t i = 0; st && key && i < st->nmeta; i++)
        if (!strcmp (st->meta_keys[i], key))
            return st->meta_vals[i];
    return NULL;
}

int dc_safetensors_meta_set (struct dc_safetensors *st, const char *key,
                             const char *val)
{
    char *v, *k;

    if (!st || !key || !val) {
        errno = EINVAL;
        return -1;
    }
    if (!(v = strdup (val)))
        return -1;
    for (size_t i = 0; i < st->nmeta; i++)
        if (!strcmp (st->meta_keys[i], key)) {
            free (st->meta_vals[i]);
            st->meta_vals[i] = v;
            return 0;
        }
    char **nk = realloc (st->meta_keys, (st->nmeta + 1) * sizeof (char *));
    if (nk)
        st->meta_keys = nk;
    char **nv = realloc (st->meta_vals, (st->nmeta + 1) * sizeof (char *));
    if (nv)
        st->meta_vals = nv;
    if (!nk || !nv || !(k = strdup (key))) {
        free (v);
        errno = ENOMEM;
        return -1;
    }
    st->meta_keys[st->nmeta] = k;
    st->meta_vals[st->nmeta] = v;
    st->nmeta++;
    return 0;
}

/* nelem from a shape, 0 with *ok false on overflow */
static size_t shape_elems (int ndim, const int64_t *shape, bool *ok)
{
    uint64_t n = 1;
    *ok = true;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 ||
            __builtin_mul_overflow (n, (uint64_t)shape[i], &n) ||
            n > SIZE_MAX / 8) {
            *ok = false;
            return 0;
        }
    return (size_t)n;
}

static struct dc_tensor *append (struct dc_safetensors *st)
{
    struct dc_tensor *nv = realloc (st->v, (st->n + 1) * sizeof (*nv));
    if (!nv)
        return NULL;
    st->v = nv;
    memset (&st->v[st->n], 0, sizeof (st->v[0]));
    return &st->v[st->n++];
}

struct dc_tensor *dc_safetensors_add (struct dc_safetensors *st,
                                      const char *name, const char *dtype,
                                      int ndim, const int64_t *shape,
                                      const float *data, dc_error_t *errp)
{
    struct dc_tensor *t;
    bool ok;

    if (!st || !name || !dtype || !is_float (dtype) || ndim < 0 ||
        ndim > DC_SAFETENSORS_MAXDIM || (ndim && !shape)) {
        errno = EINVAL;
        errprintf (errp, "invalid tensor '%s'", name ? name : "(null)");
        return NULL;
    }
    if (dc_safetensors_find (st, name) || !strcmp (name, "__metadata__")) {
        errno = EEXIST;
        errprintf (errp, "duplicate tensor name '%s'", name);
        return NULL;
    }
    size_t n = shape_elems (ndim, shape, &ok);
    if (!ok) {
        errno = EOVERFLOW;
        errprintf (errp, "tensor '%s': shape overflows", name);
        return NULL;
    }
    if (!(t = append (st)))
        goto nomem;
    snprintf (t->dtype, sizeof (t->dtype), "%s", dtype);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nelem = n;
    if (!(t->name = strdup (name)) ||
        !(t->data = calloc (n ? n : 1, sizeof (float)))) {
        tensor_free (t);
        st->n--;
        goto nomem;
    }
    if (data && n)
        memcpy (t->data, data, n * sizeof (float));
    return t;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
    return NULL;
}

/* ---- load ---- */

static int read_at (int fd, void *dst, size_t n, uint64_t off)
{
    char *p = dst;
    while (n > 0) {
        ssize_t r = pread (fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* A JSON number that is an exact integer in [0, 2^53]. */
static int get_uint (const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber (j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d)
        return -1;
    *v = (uint64_t)d;
    return 0;
}

struct range {
    uint64_t begin, end;
    size_t idx;
};

static int cmp_range (const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

#define BAD(...) errprintf (errp, __VA_ARGS__)

static int parse_tensor (const cJSON *j, struct dc_tensor *t,
                         uint64_t data_size, struct range *r, dc_error_t *errp)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive (j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive (j, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive (j, "data_offsets");
    const cJSON *e;
    uint64_t b, en;
    bool ok;
    int di;

    if (!cJSON_IsObject (j))
        return BAD ("tensor '%s': not an object", t->name);
    if (!cJSON_IsString (dt) || (di = dtype_index (dt->valuestring)) < 0)
        return BAD ("tensor '%s': unknown dtype %s%s%s", t->name,
                    cJSON_IsString (dt) ? "'" : "",
                    cJSON_IsString (dt) ? dt->valuestring : "(missing)",
                    cJSON_IsString (dt) ? "'" : "");
    snprintf (t->dtype, sizeof (t->dtype), "%s", dtypes[di].name);
    if (!cJSON_IsArray (sh))
        return BAD ("tensor '%s': shape is not a list", t->name);
    if (cJSON_GetArraySize (sh) > DC_SAFETENSORS_MAXDIM)
        return BAD ("tensor '%s': more than %d dimensions", t->name,
                    DC_SAFETENSORS_MAXDIM);
    t->ndim = 0;
    cJSON_ArrayForEach (e, sh)
    {
        uint64_t v;
        if (get_uint (e, &v) < 0)
            return BAD ("tensor '%s': shape holds something other than a "
                        "non-negative integer",
                        t->name);
        t->shape[t->ndim++] = (int64_t)v;
    }
    t->nelem = shape_elems (t->ndim, t->shape, &ok);
    if (!ok)
        return BAD ("tensor '%s': shape overflows", t->name);
    if (!cJSON_IsArray (of) || cJSON_GetArraySize (of) != 2 ||
        get_uint (cJSON_GetArrayItem (of, 0), &b) < 0 ||
        get_uint (cJSON_GetArrayItem (of, 1), &en) < 0)
        return BAD ("tensor '%s': data_offsets is not [begin, end]", t->name);
    if (b > en || en > data_size)
        return BAD ("tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                    "] outside the data area (%" PRIu64 " bytes)",
                    t->name, b, en, data_size);
    uint64_t want;
    if (__builtin_mul_overflow ((uint64_t)t->nelem, (uint64_t)dtypes[di].size,
                                &want) ||
        want != en - b)
        return BAD ("tensor '%s': shape and dtype %s need %" PRIu64
                    " bytes but data_offsets hold %" PRIu64,
                    t->name, t->dtype, (uint64_t)t->nelem * dtypes[di].size,
                    en - b);
    r->begin = b;
    r->end = en;
    return 0;
}

static int parse_meta (const cJSON *j, struct dc_safetensors *st,
                       dc_error_t *errp)
{
    const cJSON *e;

    if (!cJSON_IsObject (j))
        return BAD ("__metadata__ is not an object");
    cJSON_ArrayForEach (e, j)
    {
        if (!cJSON_IsString (e))
            return BAD ("__metadata__ '%s': value is not a string", e->string);
        if (dc_safetensors_meta_get (st, e->string))
            return BAD ("__metadata__: duplicate key '%s'", e->string);
        if (dc_safetensors_meta_set (st, e->string, e->valuestring) < 0)
            return BAD ("out of memory");
    }
    return 0;
}

static int parse_header (const char *hdr, size_t hlen, uint64_t data_size,
                         struct dc_safetensors *st, struct range **rangesp,
                         dc_error_t *errp)
{
    const char *end = NULL;
    cJSON *root, *j;
    struct range *ranges = NULL;
    char **names = NULL;
    bool seen_meta = false;
    size_t n = 0;
    int rc = -1;

    if (hlen == 0 || hdr[0] != '{')
        return BAD ("header does not start with '{'");
    root = cJSON_ParseWithLengthOpts (hdr, hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr ();
        size_t pos =
            at && at >= hdr && at <= hdr + hlen ? (size_t)(at - hdr) : 0;
        return BAD ("malformed JSON header near byte %zu", 8 + pos);
    }
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
            BAD ("trailing bytes after the JSON header");
            goto out;
        }
    if (!cJSON_IsObject (root)) {
        BAD ("header is not a JSON object");
        goto out;
    }
    size_t count = (size_t)cJSON_GetArraySize (root);
    if (!(ranges = calloc (count ? count : 1, sizeof (*ranges))) ||
        !(names = calloc (count ? count : 1, sizeof (*names)))) {
        BAD ("out of memory");
        goto out;
    }
    cJSON_ArrayForEach (j, root)
    {
        if (!strcmp (j->string, "__metadata__")) {
            if (seen_meta) {
                BAD ("duplicate __metadata__");
                goto out;
            }
            seen_meta = true;
            if (parse_meta (j, st, errp) < 0)
                goto out;
            continue;
        }
        struct dc_tensor *t = append (st);
        if (!t || !(t->name = strdup (j->string))) {
            BAD ("out of memory");
            goto out;
        }
        if (parse_tensor (j, t, data_size, &ranges[n], errp) < 0)
            goto out;
        ranges[n].idx = st->n - 1;
        names[n++] = t->name;
    }
    qsort (names, n, sizeof (*names), cmp_name);
    for (size_t i = 1; i < n; i++)
        if (!strcmp (names[i - 1], names[i])) {
            BAD ("duplicate tensor name '%s'", names[i]);
            goto out;
        }
    struct range *sorted = malloc ((n ? n : 1) * sizeof (*sorted));
    if (!sorted) {
        BAD ("out of memory");
        goto out;
    }
    memcpy (sorted, ranges, n * sizeof (*sorted));
    qsort (sorted, n, sizeof (*sorted), cmp_range);
    uint64_t prev_end = 0;
    size_t prev = 0;
    bool have_prev = false;
    for (size_t i = 0; i < n; i++) {
        if (sorted[i].begin == sorted[i].end)
            continue; /* empty tensors overlap nothing */
        if (have_prev && sorted[i].begin < prev_end) {
            BAD ("tensors '%s' and '%s' overlap in the data area",
                 st->v[prev].name, st->v[sorted[i].idx].name);
            free (sorted);
            goto out;
        }
        prev_end = sorted[i].end;
        prev = sorted[i].idx;
        have_prev = true;
    }
    free (sorted);
    *rangesp = ranges;
    ranges = NULL;
    rc = 0;
out:
    free (ranges);
    free (names);
    cJSON_Delete (root);
    return rc;
}

static int load_data (int fd, uint64_t base, struct dc_safetensors *st,
                      const struct range *ranges, dc_error_t *errp)
{
    for (size_t i = 0; i < st->n; i++) {
        struct dc_tensor *t = &st->v[i];
        size_t bytes = (size_t)(ranges[i].end - ranges[i].begin);
        uint64_t off = base + ranges[i].begin;
        if (!strcmp (t->dtype, "F32")) {
            if (!(t->data = malloc (bytes ? bytes : 1)))
                return BAD ("out of memory");
            if (read_at (fd, t->data, bytes, off) < 0)
                return BAD ("read: %s", strerror (errno));
            continue;
        }
        void *buf = malloc (bytes ? bytes : 1);
        if (!buf)
            return BAD ("out of memory");
        if (read_at (fd, buf, bytes, off) < 0) {
            free (buf);
            return BAD ("read: %s", strerror (errno));
        }
        if (!is_float (t->dtype)) {
            t->raw = buf;
            t->raw_bytes = bytes;
            continue;
        }
        if (!(t->data = malloc (t->nelem ? t->nelem * sizeof (float) : 1))) {
            free (buf);
            return BAD ("out of memory");
        }
        if (!strcmp (t->dtype, "F16"))
            dc_half_to_float_n (buf, t->data, t->nelem);
        else
            dc_bfloat_to_float_n (buf, t->data, t->nelem);
        free (buf);
    }
    return 0;
}

struct dc_safetensors *dc_safetensors_load (const char *path, dc_error_t *errp)
{
    struct dc_safetensors *st = NULL;
    struct range *ranges = NULL;
    unsigned char len8[8];
    char *hdr = NULL;
    struct stat sb;
    int fd = -1, e = EINVAL;

    if (!path) {
        errno = EINVAL;
        errprintf (errp, "no model file given");
        return NULL;
    }
    /* a regular file only: a FIFO or device would block or never end */
    if ((fd = dc_file_open_regular (path, errp)) < 0) {
        e = errno;
        goto fail;
    }
    if (fstat (fd, &sb) < 0) {
        e = errno;
        errprintf (errp, "%s: %s", path, strerror (e));
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        errprintf (errp, "%s: truncated: %" PRIu64 " bytes, no header length",
                   path, size);
        goto fail;
    }
    if (read_at (fd, len8, 8, 0) < 0) {
        e = errno;
        errprintf (errp, "%s: read: %s", path, strerror (e));
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    if (hlen > DC_SAFETENSORS_MAXHEADER) {
        errprintf (errp,
                   "%s: header length %" PRIu64 " is over the limit "
                   "of %d bytes (not a safetensors file?)",
                   path, hlen, DC_SAFETENSORS_MAXHEADER);
        goto fail;
    }
    if (hlen > size - 8) {
        errprintf (errp,
                   "%s: header length %" PRIu64 " is longer than the "
                   "file (%" PRIu64 " bytes)",
                   path, hlen, size);
        goto fail;
    }
    if (!(hdr = malloc (hlen + 1)) || !(st = dc_safetensors_create ())) {
        e = ENOMEM;
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    if (read_at (fd, hdr, (size_t)hlen, 8) < 0) {
        e = errno;
        errprintf (errp, "%s: read: %s", path, strerror (e));
        goto fail;
    }
    hdr[hlen] = '\0';
    if (parse_header (hdr, (size_t)hlen, size - 8 - hlen, st, &ranges, errp) <
            0 ||
        load_data (fd, 8 + hlen, st, ranges, errp) < 0) {
        errprefix (errp, "%s: ", path);
        goto fail;
    }
    free (ranges);
    free (hdr);
    close (fd);
    return st;
fail:
    free (ranges);
    free (hdr);
    if (fd >= 0)
        close (fd);
    dc_safetensors_destroy (st);
    errno = e;
    return NULL;
}

/* ---- save ---- */

struct order {
    const struct dc_tensor *t;
    int dt;
};

static int cmp_order (const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->dt != y->dt)
        return y->dt - x->dt; /* dtype descending */
    return strcmp (x->t->name, y->t->name);
}

static size_t tensor_bytes (const struct dc_tensor *t)
{
    if (t->raw)
        return t->raw_bytes;
    return t->nelem * dc_safetensors_dtype_size (t->dtype);
}

static cJSON *raw_uint (uint64_t v)
{
    char s[32];
    snprintf (s, sizeof (s), "%" PRIu64, v);
    return cJSON_CreateRaw (s);
}

/* The header of the tensors in the order ord: metadata, then each
 * tensor's dtype, shape and data offsets.  NULL when out of memory. */
static cJSON *header_json (const struct dc_safetensors *st,
                           const struct order *ord)
{
    cJSON *root = cJSON_CreateObject ();
    uint64_t off = 0;

    if (!root)
        return NULL;
    if (st->nmeta) {
        cJSON *m = cJSON_AddObjectToObject (root, "__metadata__");
        if (!m)
            goto nomem;
        for (size_t i = 0; i < st->nmeta; i++)
            if (!cJSON_AddStringToObject (m, st->meta_keys[i],
                                          st->meta_vals[i]))
                goto nomem;
    }
    for (size_t i = 0; i < st->n; i++) {
        const struct dc_tensor *t = ord[i].t;
        cJSON *o = cJSON_CreateObject (), *sh, *of;
        if (!o)
            goto nomem;
        cJSON_AddItemToObject (root, t->name, o);
        if (!cJSON_AddStringToObject (o, "dtype", t->dtype) ||
            !(sh = cJSON_AddArrayToObject (o, "shape")))
            goto nomem;
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray (sh, raw_uint ((uint64_t)t->shape[d]));
        if (!(of = cJSON_AddArrayToObject (o, "data_offsets")))
            goto nomem;
        uint64_t nb = tensor_bytes (t);
        cJSON_AddItemToArray (of, raw_uint (off));
        cJSON_AddItemToArray (of, raw_uint (off + nb));
        off += nb;
    }
    return root;
nomem:
    cJSON_Delete (root);
    return NULL;
}

/* The 8-byte length and the header padded with spaces to 8 bytes, in a
 * new buffer of *sizep bytes.  NULL when out of memory. */
static char *header_bytes (const char *json, size_t *sizep)
{
    size_t jl = strlen (json);
    size_t hl = (jl + 7) / 8 * 8;
    size_t bufsize = 8 + hl;
    char *buf = malloc (bufsize);

    if (!buf)
        return NULL;
    for (int i = 0; i < 8; i++)
        buf[i] = (char)(((uint64_t)hl >> (8 * i)) & 0xff);
    memcpy (buf + 8, json, jl);
    memset (buf + 8 + jl, ' ', hl - jl);
    *sizep = bufsize;
    return buf;
}

/* Tensor t's bytes at pos of f (F16 and BF16 converted from its floats). */
static int write_tensor (struct dc_atomicfile *f, const struct dc_tensor *t,
                         uint64_t pos, const char *path, dc_error_t *errp)
{
    size_t nb = tensor_bytes (t);
    const void *src = t->raw ? t->raw : (const void *)t->data;
    void *conv = NULL;

    if (!t->raw && strcmp (t->dtype, "F32") != 0) {
        if (!(conv = malloc (nb ? nb : 1))) {
            errno = ENOMEM;
            return errprintf (errp, "%s: out of memory", path);
        }
        if (!strcmp (t->dtype, "F16"))
            dc_half_from_float_n (t->data, conv, t->nelem);
        else
            dc_bfloat_from_float_n (t->data, conv, t->nelem);
        src = conv;
    }
    int w = dc_atomicfile_pwrite (f, src, nb, pos, errp);
    free (conv);
    return w < 0 ? -1 : 0;
}

int dc_safetensors_save (const struct dc_safetensors *st, const char *path,
                         dc_error_t *errp)
{
    struct dc_atomicfile *f = NULL;
    struct order *ord = NULL;
    cJSON *root = NULL;
    char *json = NULL, *buf = NULL;
    size_t bufsize;
    int rc = -1;

    if (!st || !path) {
        errno = EINVAL;
        return errprintf (errp, "invalid save");
    }
    if (!(ord = calloc (st->n ? st->n : 1, sizeof (*ord))))
        goto nomem;
    for (size_t i = 0; i < st->n; i++) {
        const struct dc_tensor *t = &st->v[i];
        ord[i].t = t;
        ord[i].dt = dtype_index (t->dtype);
        if (ord[i].dt < 0 || (!t->raw && !t->data && t->nelem)) {
            errno = EINVAL;
            errprintf (errp, "%s: tensor '%s' has no data", path, t->name);
            goto out;
        }
    }
    qsort (ord, st->n, sizeof (*ord), cmp_order);
    if (!(root = header_json (st, ord)) ||
        !(json = cJSON_PrintUnformatted (root)) ||
        !(buf = header_bytes (json, &bufsize)))
        goto nomem;
    if (!(f = dc_atomicfile_create (path, errp)) ||
        dc_atomicfile_pwrite (f, buf, bufsize, 0, errp) < 0)
        goto out;
    uint64_t pos = bufsize;
    for (size_t i = 0; i < st->n; i++) {
        if (write_tensor (f, ord[i].t, pos, path, errp) < 0)
            goto out;
        pos += tensor_bytes (ord[i].t);
    }
    if (dc_atomicfile_commit (f, errp) < 0)
        goto out;
    rc = 0;
    goto out;
nomem:
    errno = ENOMEM;
    errprintf (errp, "%s: out of memory", path);
out:
    dc_atomicfile_destroy (f);
    free (buf);
    free (json);
    cJSON_Delete (root);
    free (ord);
    return rc;
}
