/* map_npy.c - .npy arrays of any plain dtype as raw rows (map_npy.h) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/run/map_npy.h"
#include "lib/util/file.h"
#include "lib/util/sha256.h"

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

size_t dc_map_itemsize (const char *descr, dc_error_t *errp)
{
    const char *p = descr;
    unsigned long long n = 0;
    char kind;

    if (!p || !*p) {
        errprintf (errp, "no dtype");
        return 0;
    }
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=')
        p++;
    kind = *p++;
    if (kind == 'O') {
        errprintf (errp, "dtype '%s': object arrays are pickled, not rows",
                   descr);
        return 0;
    }
    if (!strchr ("biufcSUVMm", kind) || !kind) {
        errprintf (errp, "dtype '%s': not a plain NumPy dtype", descr);
        return 0;
    }
    if (*p < '0' || *p > '9') {
        errprintf (errp, "dtype '%s': no item size", descr);
        return 0;
    }
    while (*p >= '0' && *p <= '9' && n < (1u << 24))
        n = n * 10 + (unsigned)(*p++ - '0');
    if ((kind == 'M' || kind == 'm') && *p == '[') { /* '<M8[ns]' */
        const char *q = strchr (p, ']');
        if (q && q[1] == '\0' && q > p + 1)
            p = q + 1;
    }
    if (*p || n == 0 || n >= (1u << 24)) {
        errprintf (errp, "dtype '%s': not a plain NumPy dtype", descr);
        return 0;
    }
    return kind == 'U' ? (size_t)n * 4 : (size_t)n;
}

/* ---- the header: a Python dict literal of descr, fortran_order, shape */

struct lex {
    const char *s, *end;
};

static void ws (struct lex *l)
{
    while (l->s < l->end && (*l->s == ' ' || *l->s == '\t' || *l->s == '\n'))
        l->s++;
}

static bool eat (struct lex *l, char c)
{
    ws (l);
    if (l->s < l->end && *l->s == c) {
        l->s++;
        return true;
    }
    return false;
}

static bool str (struct lex *l, char *buf, size_t size)
{
    ws (l);
    if (l->s >= l->end || (*l->s != '\'' && *l->s != '"'))
        return false;
    char q = *l->s++;
    size_t n = 0;
    while (l->s < l->end && *l->s != q) {
        if (*l->s == '\\' || n + 1 >= size)
            return false;
        buf[n++] = *l->s++;
    }
    if (l->s >= l->end)
        return false;
    l->s++;
    buf[n] = '\0';
    return true;
}

static bool word (struct lex *l, const char *w)
{
    size_t n = strlen (w);
    ws (l);
    if ((size_t)(l->end - l->s) >= n && !strncmp (l->s, w, n)) {
        l->s += n;
        return true;
    }
    return false;
}

static bool num (struct lex *l, int64_t *v)
{
    uint64_t x = 0;
    ws (l);
    if (l->s >= l->end || *l->s < '0' || *l->s > '9')
        return false;
    while (l->s < l->end && *l->s >= '0' && *l->s <= '9') {
        if (x > (uint64_t)INT64_MAX / 10)
            return false;
        x = x * 10 + (uint64_t)(*l->s++ - '0');
    }
    if (l->s < l->end && *l->s == 'L') /* Python 2 */
        l->s++;
    if (x > (uint64_t)INT64_MAX)
        return false;
    *v = (int64_t)x;
    return true;
}

static int parse_dict (const char *s, size_t len, struct dc_map_arr *a,
                       dc_error_t *errp)
{
    struct lex l = {s, s + len};
    bool have_d = false, have_f = false, have_s = false;
    char key[32];

    if (!eat (&l, '{'))
        return errprintf (errp, "header is not a dict");
    while (!eat (&l, '}')) {
        if (!str (&l, key, sizeof (key)) || !eat (&l, ':'))
            return errprintf (errp, "header: bad key");
        if (!strcmp (key, "descr") && !have_d) {
            ws (&l);
            if (l.s < l.end && *l.s == '[')
                return errprintf (errp, "structured dtypes are not rows "
                                        "dcrun map passes on");
            if (!str (&l, a->descr, sizeof (a->descr)))
                return errprintf (errp, "header: bad descr");
            have_d = true;
        } else if (!strcmp (key, "fortran_order") && !have_f) {
            if (word (&l, "True"))
                a->fortran = true;
            else if (word (&l, "False"))
                a->fortran = false;
            else
                return errprintf (errp, "header: bad fortran_order");
            have_f = true;
        } else if (!strcmp (key, "shape") && !have_s) {
            if (!eat (&l, '('))
                return errprintf (errp, "header: bad shape");
            a->ndim = 0;
            while (!eat (&l, ')')) {
                if (a->ndim >= DC_MAP_MAXDIM)
                    return errprintf (errp, "header: more than %d dimensions",
                                      DC_MAP_MAXDIM);
                if (!num (&l, &a->shape[a->ndim]))
                    return errprintf (errp, "header: bad shape");
                a->ndim++;
                if (!eat (&l, ',')) {
                    if (!eat (&l, ')'))
                        return errprintf (errp, "header: bad shape");
                    break;
                }
            }
            have_s = true;
        } else {
            return errprintf (errp, "header: unexpected key '%s'", key);
        }
        if (!eat (&l, ',')) {
            if (!eat (&l, '}'))
                return errprintf (errp, "header: bad dict");
            break;
        }
    }
    if (!have_d || !have_f || !have_s)
        return errprintf (errp, "header lacks '%s'",
                          !have_d   ? "descr"
                          : !have_f ? "fortran_order"
                                    : "shape");
    return 0;
}

int dc_map_npy_parse (const uint8_t *buf, size_t len, uint64_t file_size,
                      struct dc_map_arr *a, dc_error_t *errp)
{
    size_t hl, pre;
    dc_error_t e;

    memset (a, 0, sizeof (*a));
    if (len < 10 || memcmp (buf, magic, 6) != 0)
        return errprintf (errp, "not an .npy file (no magic string)");
    if (buf[6] == 1) {
        hl = (size_t)buf[8] | ((size_t)buf[9] << 8);
        pre = 10;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12)
            return errprintf (errp, "truncated header");
        hl = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) |
             ((size_t)buf[11] << 24);
        pre = 12;
    } else {
        return errprintf (errp, "unknown .npy version %d", buf[6]);
    }
    if (hl > DC_MAP_MAXHEADER || pre + hl > len)
        return errprintf (errp, "truncated or oversized header");
    if (parse_dict ((const char *)buf + pre, hl, a, errp) < 0)
        return -1;
    if (!(a->itemsize = dc_map_itemsize (a->descr, &e)))
        return errprintf (errp, "%s", e.text);
    if (a->ndim == 0)
        return errprintf (errp, "a 0-d array has no rows");
    if (a->fortran && a->ndim > 1)
        return errprintf (errp, "array in Fortran order: save a C-ordered "
                                "one (np.ascontiguousarray)");
    uint64_t rb = a->itemsize, total;
    for (int i = 1; i < a->ndim; i++)
        if (__builtin_mul_overflow (rb, (uint64_t)a->shape[i], &rb))
            return errprintf (errp, "shape overflows");
    a->rows = (uint64_t)a->shape[0];
    a->row_bytes = rb;
    a->data_offset = pre + hl;
    if (file_size < a->data_offset ||
        __builtin_mul_overflow (rb, a->rows, &total) ||
        total > file_size - a->data_offset)
        return errprintf (errp,
                          "data truncated: %" PRIu64 " rows of %" PRIu64
                          " bytes need %" PRIu64 " bytes after the header",
                          a->rows, rb, rb * a->rows);
    return 0;
}

int dc_map_npy_open (const char *path, struct dc_map_arr *a, dc_error_t *errp)
{
    uint8_t *buf = NULL;
    struct stat st;
    int fd = dc_file_open_regular (path, errp);
    dc_error_t e;

    if (fd < 0)
        return -1;
    if (fstat (fd, &st) < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto fail;
    }
    size_t want = DC_MAP_MAXHEADER + 12;
    if ((uint64_t)st.st_size < want)
        want = (size_t)st.st_size;
    if (!(buf = malloc (want ? want : 1))) {
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    ssize_t n = pread (fd, buf, want, 0);
    if (n < 0) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto fail;
    }
    if (dc_map_npy_parse (buf, (size_t)n, (uint64_t)st.st_size, a, &e) < 0) {
        errprintf (errp, "%s: %s", path, e.text);
        goto fail;
    }
    free (buf);
    return fd;
fail:
    free (buf);
    close (fd);
    return -1;
}

void dc_map_shape_str (int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t n = (size_t)snprintf (buf, len, "(rows");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf (buf + n, len - n, ", %" PRId64, shape[i]);
    if (n < len)
        snprintf (buf + n, len - n, ")");
}

size_t dc_map_npy_header (const char *descr, int ndim, const int64_t *shape,
                          uint8_t *out, size_t outsize)
{
    char dict[128 + DC_MAP_MAXDIM * 24];
    size_t n = 0;

    if (ndim < 0 || ndim > DC_MAP_MAXDIM || strlen (descr) > 64)
        return 0;
    n += (size_t)snprintf (dict + n, sizeof (dict) - n,
                           "{'descr': '%s', 'fortran_order': False, "
                           "'shape': (",
                           descr);
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf (dict + n, sizeof (dict) - n, "%s%" PRId64,
                               i ? ", " : "", shape[i]);
    n += (size_t)snprintf (dict + n, sizeof (dict) - n, "%s), }",
                           ndim == 1 ? "," : "");
    size_t hlen = n + 1;
    size_t pad = (64 - (10 + hlen) % 64) % 64;
    size_t total = 10 + hlen + pad;
    if (total > outsize || hlen + pad > 65535)
        return 0;
    memcpy (out, magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = (uint8_t)((hlen + pad) & 0xff);
    out[9] = (uint8_t)((hlen + pad) >> 8);
    memcpy (out + 10, dict, n);
    memset (out + 10 + n, ' ', pad);
    out[total - 1] = '\n';
    return total;
}

/* ---- the output ---- */

struct dc_map_out {
    struct dc_atomicfile *f;
    const char *path;
    uint64_t rows, row_bytes, data_offset, total;
};

struct dc_map_out *dc_map_out_open (const char *path, bool shared,
                                    dc_error_t *errp)
{
    struct dc_map_out *w = calloc (1, sizeof (*w));

    if (!w) {
        errprintf (errp, "%s: out of memory", path);
        return NULL;
    }
    w->path = path;
    if (!(w->f = shared ? dc_atomicfile_create_shared (path, errp)
                        : dc_atomicfile_create (path, errp))) {
        free (w);
        return NULL;
    }
    return w;
}

int dc_map_out_shape (struct dc_map_out *w, const char *descr, uint64_t rows,
                      int ndim, const int64_t *trailing, uint64_t row_bytes,
                      dc_error_t *errp)
{
    int64_t shape[DC_MAP_MAXDIM];
    uint8_t hdr[512 + DC_MAP_MAXDIM * 24];
    size_t hl;

    if (ndim < 0 || ndim + 1 > DC_MAP_MAXDIM || rows > (uint64_t)INT64_MAX)
        return errprintf (errp, "%s: invalid array description", w->path);
    shape[0] = (int64_t)rows;
    for (int i = 0; i < ndim; i++)
        shape[i + 1] = trailing[i];
    if (!(hl = dc_map_npy_header (descr, ndim + 1, shape, hdr, sizeof (hdr))))
        return errprintf (errp, "%s: header too long", w->path);
    w->rows = rows;
    w->row_bytes = row_bytes;
    w->data_offset = hl;
    if (__builtin_mul_overflow (rows, row_bytes, &w->total) ||
        __builtin_add_overflow (w->total, (uint64_t)hl, &w->total))
        return errprintf (errp, "%s: the output's size overflows", w->path);
    if (dc_atomicfile_truncate (w->f, w->total, errp) < 0 ||
        dc_atomicfile_pwrite (w->f, hdr, hl, 0, errp) < 0)
        return -1;
    return 0;
}

struct dc_map_out *dc_map_out_create (const char *path, const char *descr,
                                      uint64_t rows, int ndim,
                                      const int64_t *trailing,
                                      uint64_t row_bytes, dc_error_t *errp)
{
    struct dc_map_out *w = dc_map_out_open (path, false, errp);

    if (w && dc_map_out_shape (w, descr, rows, ndim, trailing, row_bytes,
                               errp) < 0) {
        dc_map_out_destroy (w);
        return NULL;
    }
    return w;
}

const char *dc_map_out_tmppath (const struct dc_map_out *w)
{
    return dc_atomicfile_tmppath (w->f);
}

uint64_t dc_map_out_data_offset (const struct dc_map_out *w)
{
    return w->data_offset;
}

int dc_map_out_write (struct dc_map_out *w, uint64_t row0, uint64_t rows,
                      const uint8_t *data, dc_error_t *errp)
{
    if (row0 > w->rows || rows > w->rows - row0)
        return errprintf (errp, "rows %" PRIu64 "..%" PRIu64 " out of range",
                          row0, row0 + rows);
    if (rows == 0 || w->row_bytes == 0)
        return 0;
    return dc_atomicfile_pwrite (w->f, data, (size_t)(rows * w->row_bytes),
                                 w->data_offset + row0 * w->row_bytes, errp);
}

int dc_map_out_commit (struct dc_map_out *w, char *sha256, dc_error_t *errp)
{
    if (sha256 &&
        dc_sha256_fd (dc_atomicfile_fd (w->f), w->total, sha256, errp) < 0)
        return -1;
    return dc_atomicfile_commit (w->f, errp);
}

void dc_map_out_destroy (struct dc_map_out *w)
{
    if (w) {
        dc_atomicfile_destroy (w->f);
        free (w);
    }
}
