/* npy.c - NumPy .npy format 1.0/2.0/3.0, C order, little-endian */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util/file.h"
#include "lib/util/half.h"
#include "lib/formats/npy.h"
#include "lib/util/sha256.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian arrays on a little-endian host"
#endif

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *descr;
    size_t size;
} dtypes[] = {
    [DC_NPY_F4] = {"<f4", 4},
    [DC_NPY_F2] = {"<f2", 2},
    [DC_NPY_F8] = {"<f8", 8},
    [DC_NPY_I8] = {"<i8", 8},
};
#define NDTYPES (sizeof (dtypes) / sizeof (dtypes[0]))

const char *dc_npy_descr (enum dc_npy_dtype dtype)
{
    return (unsigned)dtype < NDTYPES ? dtypes[dtype].descr : NULL;
}

size_t dc_npy_itemsize (enum dc_npy_dtype dtype)
{
    return (unsigned)dtype < NDTYPES ? dtypes[dtype].size : 0;
}

/* ---- header dictionary: a Python literal of three known keys ---- */

struct lexer {
    const char *s;
    size_t len, pos;
};

static void skip_ws (struct lexer *lx)
{
    while (lx->pos < lx->len &&
           (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t' ||
            lx->s[lx->pos] == '\n' || lx->s[lx->pos] == '\r'))
        lx->pos++;
}

static int accept (struct lexer *lx, char c)
{
    skip_ws (lx);
    if (lx->pos < lx->len && lx->s[lx->pos] == c) {
        lx->pos++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes into buf (max size - 1 characters). */
static int lex_string (struct lexer *lx, char *buf, size_t size)
{
    skip_ws (lx);
    if (lx->pos >= lx->len || (lx->s[lx->pos] != '\'' && lx->s[lx->pos] != '"'))
        return -1;
    char q = lx->s[lx->pos++];
    size_t n = 0;
    while (lx->pos < lx->len && lx->s[lx->pos] != q) {
        char c = lx->s[lx->pos++];
        if (c == '\\' || c == '\n' || n + 1 >= size)
            return -1;
        buf[n++] = c;
    }
    if (lx->pos >= lx->len)
        return -1;
    lx->pos++;
    buf[n] = '\0';
    return 0;
}

static int lex_word (struct lexer *lx, const char *w)
{
    size_t n = strlen (w);
    skip_ws (lx);
    if (lx->len - lx->pos < n || memcmp (lx->s + lx->pos, w, n) != 0)
        return 0;
    lx->pos += n;
    return 1;
}

/* Non-negative integer (an old Python 2 'L' suffix allowed). */
static int lex_int (struct lexer *lx, int64_t *v, int *overflow)
{
    int64_t x = 0;
    size_t start;

    skip_ws (lx);
    start = lx->pos;
    if (lx->pos < lx->len && lx->s[lx->pos] == '-') {
        *overflow = -1; /* negative */
        return -1;
    }
    while (lx->pos < lx->len && lx->s[lx->pos] >= '0' &&
           lx->s[lx->pos] <= '9') {
        int d = lx->s[lx->pos++] - '0';
        if (x > (INT64_MAX - d) / 10) {
            *overflow = 1;
            return -1;
        }
        x = x * 10 + d;
    }
    if (lx->pos == start)
        return -1;
    if (lx->pos < lx->len && lx->s[lx->pos] == 'L')
        lx->pos++;
    *v = x;
    return 0;
}

#define BAD(...) errprintf (errp, __VA_ARGS__)

static int parse_dict (const char *s, size_t len, struct dc_npy *a,
                       dc_error_t *errp)
{
    struct lexer lx = {.s = s, .len = len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    char key[32], descr[64];

    if (!accept (&lx, '{'))
        goto garbage;
    for (;;) {
        if (accept (&lx, '}'))
            break;
        if (lex_string (&lx, key, sizeof (key)) < 0 || !accept (&lx, ':'))
            goto garbage;
        if (!strcmp (key, "descr") && !have_descr) {
            have_descr = 1;
            if (lex_string (&lx, descr, sizeof (descr)) < 0) {
                skip_ws (&lx);
                if (lx.pos < lx.len && lx.s[lx.pos] == '[')
                    return BAD ("structured dtypes are not supported "
                                "(expected <f4, <f2, <f8 or <i8)");
                goto garbage;
            }
        } else if (!strcmp (key, "fortran_order") && !have_order) {
            have_order = 1;
            if (lex_word (&lx, "True"))
                return BAD ("Fortran-order arrays are not supported "
                            "(save with np.ascontiguousarray)");
            if (!lex_word (&lx, "False"))
                goto garbage;
        } else if (!strcmp (key, "shape") && !have_shape) {
            have_shape = 1;
            if (!accept (&lx, '('))
                goto garbage;
            a->ndim = 0;
            for (;;) {
                int64_t v;
                int ovf = 0;
                if (accept (&lx, ')'))
                    break;
                if (a->ndim == DC_NPY_MAXDIM)
                    return BAD ("more than %d dimensions", DC_NPY_MAXDIM);
                if (lex_int (&lx, &v, &ovf) < 0) {
                    if (ovf > 0)
                        return BAD ("shape dimension overflows");
                    if (ovf < 0)
                        return BAD ("negative shape dimension");
                    goto garbage;
                }
                a->shape[a->ndim++] = v;
                if (accept (&lx, ')'))
                    break;
                if (!accept (&lx, ','))
                    goto garbage;
            }
            /* (n) without a comma is an int, not a tuple, in Python */
        } else {
            if (!strcmp (key, "descr") || !strcmp (key, "fortran_order") ||
                !strcmp (key, "shape"))
                return BAD ("duplicate key '%s' in the header", key);
            return BAD ("unknown key '%s' in the header", key);
        }
        if (accept (&lx, '}'))
            break;
        if (!accept (&lx, ','))
            goto garbage;
    }
    skip_ws (&lx);
    if (lx.pos != lx.len)
        goto garbage;
    if (!have_descr || !have_order || !have_shape)
        return BAD ("header lacks '%s'", !have_descr   ? "descr"
                                         : !have_order ? "fortran_order"
                                                       : "shape");
    for (size_t i = 0; i < NDTYPES; i++)
        if (!strcmp (descr, dtypes[i].descr)) {
            a->dtype = (enum dc_npy_dtype)i;
            a->itemsize = dtypes[i].size;
            return 0;
        }
    if (descr[0] == '>')
        return BAD ("big-endian dtype '%s' is not supported (save with "
                    "arr.astype('<%s'))",
                    descr, descr + 1);
    return BAD ("unsupported dtype '%s' (expected <f4, <f2, <f8 or <i8)",
                descr);
garbage:
    return BAD ("malformed header dictionary at byte %zu", lx.pos);
}

int dc_npy_parse (const void *buf, size_t len, uint64_t file_size,
                  struct dc_npy *a, dc_error_t *errp)
{
    const unsigned char *p = buf;
    uint64_t hlen, start;

    memset (a, 0, sizeof (*a));
    a->fd = -1;
    errno = EINVAL;
    if (!buf)
        return BAD ("no data");
    if (len > file_size)
        len = (size_t)file_size;
    if (len < 8) {
        if (len < 6 && memcmp (p, magic, len) == 0)
            return BAD ("truncated header (%zu bytes)", len);
        if (len < 6 || memcmp (p, magic, 6) != 0)
            return BAD ("not a .npy file (bad magic)");
        return BAD ("truncated header (%zu bytes)", len);
    }
    if (memcmp (p, magic, 6) != 0)
        return BAD ("not a .npy file (bad magic)");
    if ((p[6] != 1 && p[6] != 2 && p[6] != 3) || p[7] != 0)
        return BAD ("unsupported .npy format version %d.%d", p[6], p[7]);
    a->version = p[6];
    if (a->version == 1) {
        if (len < 10)
            return BAD ("truncated header (%zu bytes)", len);
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8;
        start = 10;
    } else {
        if (len < 12)
            return BAD ("truncated header (%zu bytes)", len);
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 |
               (uint64_t)p[11] << 24;
        start = 12;
    }
    if (hlen > DC_NPY_MAXHEADER)
        return BAD ("header of %" PRIu64 " bytes is over the limit of %d", hlen,
                    DC_NPY_MAXHEADER);
    if (start + hlen > file_size)
        return BAD ("header (%" PRIu64 " bytes) is longer than the file "
                    "(%" PRIu64 " bytes)",
                    hlen, file_size);
    if (start + hlen > len)
        return BAD ("truncated header (%zu of %" PRIu64 " bytes)", len,
                    start + hlen);
    if (memchr (p + start, '\0', hlen))
        return BAD ("malformed header dictionary (NUL byte)");
    if (parse_dict ((const char *)p + start, (size_t)hlen, a, errp) < 0)
        return -1;
    /* sizes: product of the shape times the item size, no overflow */
    uint64_t elems = 1, rowe = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (__builtin_mul_overflow (elems, (uint64_t)a->shape[i], &elems))
            return BAD ("shape overflows (more than 2^64 elements)");
        if (i > 0 &&
            __builtin_mul_overflow (rowe, (uint64_t)a->shape[i], &rowe))
            return BAD ("shape overflows (more than 2^64 elements)");
    }
    uint64_t bytes;
    if (__builtin_mul_overflow (elems, (uint64_t)a->itemsize, &bytes) ||
        bytes > (uint64_t)INT64_MAX || elems > SIZE_MAX)
        return BAD ("shape overflows (more than 2^63 bytes)");
    a->rows = a->ndim ? (size_t)a->shape[0] : 1;
    a->row_elems = a->ndim ? (size_t)rowe : 1;
    a->data_offset = start + hlen;
    a->data_bytes = bytes;
    if (file_size - a->data_offset != bytes) {
        char sh[256];
        size_t n = 0;
        sh[0] = '\0';
        for (int i = 0; i < a->ndim && n < sizeof (sh) - 32; i++)
            n += (size_t)snprintf (sh + n, sizeof (sh) - n, "%s%" PRId64,
                                   i ? ", " : "", a->shape[i]);
        return BAD ("shape (%s) of %s needs %" PRIu64 " bytes of data but "
                    "the file has %" PRIu64,
                    sh, dtypes[a->dtype].descr, bytes,
                    file_size - a->data_offset);
    }
    errno = 0;
    return 0;
}

struct dc_npy *dc_npy_open (const char *path, dc_error_t *errp)
{
    struct dc_npy *a = NULL;
    unsigned char *buf = NULL;
    struct stat st;
    int fd = -1, e = EINVAL;

    if (!path) {
        errno = EINVAL;
        errprintf (errp, "no array file given");
        return NULL;
    }
    /* a regular file only: a FIFO or device would block or never end */
    if ((fd = dc_file_open_regular (path, errp)) < 0) {
        e = errno;
        goto fail;
    }
    if (fstat (fd, &st) < 0) {
        e = errno;
        errprintf (errp, "%s: %s", path, strerror (e));
        goto fail;
    }
    size_t want = (size_t)st.st_size < 12 + DC_NPY_MAXHEADER
                      ? (size_t)st.st_size
                      : 12 + DC_NPY_MAXHEADER;
    if (!(buf = malloc (want ? want : 1)) || !(a = calloc (1, sizeof (*a)))) {
        e = ENOMEM;
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    /* read the 12-byte preamble, then as much header as it announces */
    size_t got = 0, need = want < 12 ? want : 12;
    for (int pass = 0; pass < 2; pass++) {
        while (got < need) {
            ssize_t r = pread (fd, buf + got, need - got, (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                e = r < 0 ? errno : EIO;
                errprintf (errp, "%s: read: %s", path,
                           r < 0 ? strerror (e) : "file shrank");
                goto fail;
            }
            got += (size_t)r;
        }
        if (pass == 0 && got >= 10) {
            uint64_t hl = buf[6] == 1
                              ? (buf[8] | (uint64_t)buf[9] << 8)
                              : (got >= 12 ? (buf[8] | (uint64_t)buf[9] << 8 |
                                              (uint64_t)buf[10] << 16 |
                                              (uint64_t)buf[11] << 24)
                                           : 0);
            uint64_t end = (buf[6] == 1 ? 10 : 12) + hl;
            need = end < want ? (size_t)end : want;
        }
    }
    if (dc_npy_parse (buf, got, (uint64_t)st.st_size, a, errp) < 0) {
        e = errno ? errno : EINVAL;
        errprefix (errp, "%s: ", path);
        goto fail;
    }
    if (!(a->path = strdup (path))) {
        e = ENOMEM;
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    a->fd = fd;
    free (buf);
    return a;
fail:
    if (fd >= 0)
        close (fd);
    free (buf);
    if (a)
        free (a->path);
    free (a);
    errno = e;
    return NULL;
}

void dc_npy_close (struct dc_npy *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close (a->fd);
    free (a->path);
    free (a);
}

struct dc_npy *dc_npy_open_write (const char *path, dc_error_t *errp)
{
    struct dc_npy *a = dc_npy_open (path, errp);
    struct stat s1, s2;
    int fd, e;

    if (!a)
        return NULL;
    if ((fd = open (path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0 ||
        fstat (fd, &s2) < 0 || fstat (a->fd, &s1) < 0) {
        e = errno;
        errprintf (errp, "%s: %s", path, strerror (e));
        goto fail;
    }
    if (s1.st_dev != s2.st_dev || s1.st_ino != s2.st_ino) {
        e = EAGAIN;
        errprintf (errp, "%s: changed while it was opened", path);
        goto fail;
    }
    close (a->fd);
    a->fd = fd;
    return a;
fail:
    if (fd >= 0)
        close (fd);
    dc_npy_close (a);
    errno = e;
    return NULL;
}

static int write_at (const struct dc_npy *a, const void *src, size_t n,
                     uint64_t off, dc_error_t *errp)
{
    const char *p = src;
    while (n > 0) {
        ssize_t w = pwrite (a->fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errprintf (errp, "%s: write: %s", a->path,
                              w < 0 ? strerror (errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int dc_npy_write_f32 (struct dc_npy *a, size_t row0, size_t nrows,
                      const float *src, dc_error_t *errp)
{
    if (!a || (nrows && !src) || row0 > a->rows || nrows > a->rows - row0 ||
        (a->dtype != DC_NPY_F4 && a->dtype != DC_NPY_F2)) {
        errno = EINVAL;
        return errprintf (errp, "%s: rows %zu..%zu: not writable as floats",
                          a ? a->path : "(null)", row0, row0 + nrows);
    }
    size_t n = nrows * a->row_elems;
    uint64_t off = a->data_offset + (uint64_t)row0 * a->row_elems * a->itemsize;
    if (a->dtype == DC_NPY_F4)
        return write_at (a, src, n * 4, off, errp);
    size_t block = 1 << 19;
    uint16_t *buf = malloc (block * 2);
    if (!buf) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    for (size_t i = 0; i < n; i += block) {
        size_t m = n - i < block ? n - i : block;
        dc_half_from_float_n (src + i, buf, m);
        if (write_at (a, buf, m * 2, off + i * 2, errp) < 0) {
            free (buf);
            return -1;
        }
    }
    free (buf);
    return 0;
}

static int read_at (const struct dc_npy *a, void *dst, size_t n, uint64_t off,
                    dc_error_t *errp)
{
    char *p = dst;
    while (n > 0) {
        ssize_t r = pread (a->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            errno = e;
            return errprintf (errp, "%s: read: %s", a->path,
                              r < 0 ? strerror (e) : "file shrank");
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int check_range (const struct dc_npy *a, size_t row0, size_t nrows,
                        const void *dst, dc_error_t *errp)
{
    if (!a || (nrows && !dst)) {
        errno = EINVAL;
        return errprintf (errp, "invalid read");
    }
    if (row0 > a->rows || nrows > a->rows - row0) {
        errno = ERANGE;
        return errprintf (errp, "%s: rows %zu..%zu out of range (%zu rows)",
                          a->path, row0, row0 + nrows, a->rows);
    }
    return 0;
}

int dc_npy_read_f32 (const struct dc_npy *a, size_t row0, size_t nrows,
                     float *dst, dc_error_t *errp)
{
    if (check_range (a, row0, nrows, dst, errp) < 0)
        return -1;
    size_t n = nrows * a->row_elems;
    uint64_t off = a->data_offset + (uint64_t)row0 * a->row_elems * a->itemsize;
    if (a->dtype == DC_NPY_F4)
        return read_at (a, dst, n * 4, off, errp);
    if (a->dtype == DC_NPY_I8) {
        errno = EINVAL;
        return errprintf (errp,
                          "%s: integer array (<i8) where floats are "
                          "expected",
                          a->path);
    }
    /* f2 and f8: read blocks and convert */
    size_t block = (1 << 20) / a->itemsize;
    void *buf = malloc (block * a->itemsize);
    if (!buf) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", a->path);
    }
    for (size_t i = 0; i < n; i += block) {
        size_t m = n - i < block ? n - i : block;
        if (read_at (a, buf, m * a->itemsize, off + i * a->itemsize, errp) <
            0) {
            free (buf);
            return -1;
        }
        if (a->dtype == DC_NPY_F2)
            dc_half_to_float_n (buf, dst + i, m);
        else
            for (size_t j = 0; j < m; j++)
                dst[i + j] = (float)((const double *)buf)[j];
    }
    free (buf);
    return 0;
}

int dc_npy_read_i64 (const struct dc_npy *a, size_t row0, size_t nrows,
                     int64_t *dst, dc_error_t *errp)
{
    if (check_range (a, row0, nrows, dst, errp) < 0)
        return -1;
    if (a->dtype != DC_NPY_I8) {
        errno = EINVAL;
        return errprintf (errp,
                          "%s: %s array where int64 (<i8) labels are "
                          "expected",
                          a->path, dtypes[a->dtype].descr);
    }
    return read_at (a, dst, nrows * a->row_elems * 8,
                    a->data_offset + (uint64_t)row0 * a->row_elems * 8, errp);
}

/* ---- writer ---- */

struct dc_npy_writer {
    struct dc_atomicfile *f;
    enum dc_npy_dtype dtype;
    size_t rows, row_elems;
    uint64_t data_offset, total;
    struct dc_sha256 *hash; /* over the bytes [0, hash_off) written in order */
    uint64_t hash_off;
    bool hash_inorder;
    bool committed;
    char hex[DC_SHA256_HEXLEN + 1];
};

/* The header exactly as NumPy 1.24's np.save writes it. */
static int make_header (enum dc_npy_dtype dtype, int ndim, const int64_t *shape,
                        char *out, size_t outsize, size_t *outlen)
{
    char dict[64 + DC_NPY_MAXDIM * 24];
    size_t n = 0;

    n += (size_t)snprintf (dict + n, sizeof (dict) - n,
                           "{'descr': '%s', 'fortran_order': False, "
                           "'shape': (",
                           dtypes[dtype].descr);
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf (dict + n, sizeof (dict) - n, "%s%" PRId64,
                               i ? ", " : "", shape[i]);
    n += (size_t)snprintf (dict + n, sizeof (dict) - n, "%s), }",
                           ndim == 1 ? "," : "");
    if (ndim > 0) { /* room to grow the first axis in place */
        char d0[24];
        int l = snprintf (d0, sizeof (d0), "%" PRId64, shape[0]);
        for (int i = l; i < 21 && n < sizeof (dict) - 1; i++)
            dict[n++] = ' ';
        dict[n] = '\0';
    }
    size_t hlen = n + 1; /* with the final newline */
    size_t pad = 64 - (6 + 2 + 2 + hlen) % 64;
    size_t total = 10 + hlen + pad;
    if (total > outsize || hlen + pad > 65535)
        return -1;
    memcpy (out, magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)((hlen + pad) & 0xff);
    out[9] = (char)((hlen + pad) >> 8);
    memcpy (out + 10, dict, n);
    memset (out + 10 + n, ' ', pad);
    out[total - 1] = '\n';
    *outlen = total;
    return 0;
}

static struct dc_npy_writer *writer_create (const char *path,
                                            enum dc_npy_dtype dtype, int ndim,
                                            const int64_t *shape, bool hash,
                                            bool shared, dc_error_t *errp)
{
    struct dc_npy_writer *w;
    char hdr[64 + 64 + DC_NPY_MAXDIM * 24];
    size_t hlen;
    uint64_t elems = 1;

    if ((unsigned)dtype >= NDTYPES || ndim < 0 || ndim > DC_NPY_MAXDIM ||
        (ndim && !shape)) {
        errno = EINVAL;
        errprintf (errp, "%s: invalid array description",
                   path ? path : "(null)");
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 ||
            __builtin_mul_overflow (elems, (uint64_t)shape[i], &elems)) {
            errno = EOVERFLOW;
            errprintf (errp, "%s: invalid or overflowing shape",
                       path ? path : "(null)");
            return NULL;
        }
    if (elems > (uint64_t)INT64_MAX / 8) {
        errno = EOVERFLOW;
        errprintf (errp, "%s: shape overflows", path ? path : "(null)");
        return NULL;
    }
    if (make_header (dtype, ndim, shape, hdr, sizeof (hdr), &hlen) < 0) {
        errno = EINVAL;
        errprintf (errp, "%s: header too long", path ? path : "(null)");
        return NULL;
    }
    if (!(w = calloc (1, sizeof (*w)))) {
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", path ? path : "(null)");
        return NULL;
    }
    w->dtype = dtype;
    w->rows = ndim ? (size_t)shape[0] : 1;
    w->row_elems = 1;
    for (int i = 1; i < ndim; i++)
        w->row_elems *= (size_t)shape[i];
    w->data_offset = hlen;
    w->total = hlen + elems * dtypes[dtype].size;
    w->hash_inorder = true;
    if (hash && !(w->hash = dc_sha256_create ())) {
        errprintf (errp, "%s: out of memory", path);
        goto fail;
    }
    if (!(w->f = shared ? dc_atomicfile_create_shared (path, errp)
                        : dc_atomicfile_create (path, errp)) ||
        dc_atomicfile_truncate (w->f, w->total, errp) < 0 ||
        dc_atomicfile_pwrite (w->f, hdr, hlen, 0, errp) < 0)
        goto fail;
    if (w->hash) {
        dc_sha256_update (w->hash, hdr, hlen);
        w->hash_off = hlen;
    }
    return w;
fail:
    dc_npy_writer_destroy (w);
    return NULL;
}

struct dc_npy_writer *dc_npy_writer_create (const char *path,
                                            enum dc_npy_dtype dtype, int ndim,
                                            const int64_t *shape, bool hash,
                                            dc_error_t *errp)
{
    return writer_create (path, dtype, ndim, shape, hash, false, errp);
}

struct dc_npy_writer *dc_npy_writer_create_shared (const char *path,
                                                   enum dc_npy_dtype dtype,
                                                   int ndim,
                                                   const int64_t *shape,
                                                   bool hash, dc_error_t *errp)
{
    struct dc_npy_writer *w =
        writer_create (path, dtype, ndim, shape, hash, true, errp);
    if (w)
        w->hash_inorder = false; /* others write: hash the file on commit */
    return w;
}

const char *dc_npy_writer_tmppath (const struct dc_npy_writer *w)
{
    return w ? dc_atomicfile_tmppath (w->f) : NULL;
}

uint64_t dc_npy_writer_data_offset (const struct dc_npy_writer *w)
{
    return w ? w->data_offset : 0;
}

size_t dc_npy_writer_row_bytes (const struct dc_npy_writer *w)
{
    return w ? w->row_elems * dtypes[w->dtype].size : 0;
}

static int check_wrange (struct dc_npy_writer *w, size_t row0, size_t nrows,
                         const void *src, dc_error_t *errp)
{
    if (!w || (nrows && !src) || w->committed) {
        errno = EINVAL;
        return errprintf (errp, "invalid write");
    }
    if (row0 > w->rows || nrows > w->rows - row0) {
        errno = ERANGE;
        return errprintf (errp, "%s: rows %zu..%zu out of range (%zu rows)",
                          dc_atomicfile_path (w->f), row0, row0 + nrows,
                          w->rows);
    }
    return 0;
}

static int write_bytes (struct dc_npy_writer *w, const void *p, size_t n,
                        uint64_t off, dc_error_t *errp)
{
    if (dc_atomicfile_pwrite (w->f, p, n, off, errp) < 0)
        return -1;
    if (w->hash && w->hash_inorder) {
        if (off == w->hash_off) {
            dc_sha256_update (w->hash, p, n);
            w->hash_off += n;
        } else {
            w->hash_inorder = false; /* hash the file on commit */
        }
    }
    return 0;
}

int dc_npy_writer_write_raw (struct dc_npy_writer *w, size_t row0, size_t nrows,
                             const void *src, dc_error_t *errp)
{
    if (check_wrange (w, row0, nrows, src, errp) < 0)
        return -1;
    size_t rb = w->row_elems * dtypes[w->dtype].size;
    return write_bytes (w, src, nrows * rb, w->data_offset + row0 * rb, errp);
}

int dc_npy_writer_write_f32 (struct dc_npy_writer *w, size_t row0, size_t nrows,
                             const float *src, dc_error_t *errp)
{
    if (check_wrange (w, row0, nrows, src, errp) < 0)
        return -1;
    if (w->dtype == DC_NPY_F4)
        return dc_npy_writer_write_raw (w, row0, nrows, src, errp);
    if (w->dtype == DC_NPY_I8) {
        errno = EINVAL;
        return errprintf (errp, "float rows for an int64 array");
    }
    size_t isz = dtypes[w->dtype].size;
    size_t n = nrows * w->row_elems;
    size_t block = (1 << 20) / isz;
    uint64_t off = w->data_offset + (uint64_t)row0 * w->row_elems * isz;
    void *buf = malloc (block * isz);
    if (!buf) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    for (size_t i = 0; i < n; i += block) {
        size_t m = n - i < block ? n - i : block;
        if (w->dtype == DC_NPY_F2)
            dc_half_from_float_n (src + i, buf, m);
        else
            for (size_t j = 0; j < m; j++)
                ((double *)buf)[j] = src[i + j];
        if (write_bytes (w, buf, m * isz, off + i * isz, errp) < 0) {
            free (buf);
            return -1;
        }
    }
    free (buf);
    return 0;
}

int dc_npy_writer_commit (struct dc_npy_writer *w, dc_error_t *errp)
{
    if (!w || w->committed) {
        errno = EINVAL;
        return errprintf (errp, "invalid commit");
    }
    if (w->hash) {
        if (w->hash_inorder && w->hash_off == w->total) {
            if (dc_sha256_final (w->hash, w->hex) < 0)
                return errprintf (errp, "sha256 failed");
        } else if (dc_sha256_fd (dc_atomicfile_fd (w->f), w->total, w->hex,
                                 errp) < 0)
            return -1;
    }
    if (dc_atomicfile_commit (w->f, errp) < 0)
        return -1;
    w->committed = true;
    return 0;
}

const char *dc_npy_writer_sha256 (const struct dc_npy_writer *w)
{
    return w && w->hash && w->committed ? w->hex : NULL;
}

void dc_npy_writer_destroy (struct dc_npy_writer *w)
{
    if (!w)
        return;
    dc_atomicfile_destroy (w->f);
    dc_sha256_destroy (w->hash);
    free (w);
}

int dc_npy_save (const char *path, enum dc_npy_dtype dtype, int ndim,
                 const int64_t *shape, const void *data, dc_error_t *errp)
{
    struct dc_npy_writer *w;
    int rc;

    if (!(w = dc_npy_writer_create (path, dtype, ndim, shape, false, errp)))
        return -1;
    if (dtype == DC_NPY_I8)
        rc = dc_npy_writer_write_raw (w, 0, w->rows, data, errp);
    else
        rc = dc_npy_writer_write_f32 (w, 0, w->rows, data, errp);
    if (rc == 0)
        rc = dc_npy_writer_commit (w, errp);
    dc_npy_writer_destroy (w);
    return rc;
}
