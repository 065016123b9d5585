/* npytool.c - inputs and comparisons for bench/gpu-check.sh without NumPy
 *
 *   npytool mlp OUT.safetensors SIZES SEED
 *       an MLP of F32 Linear layers, SIZES "1024,4096,4096,1024", tensors
 *       0.weight [out][in], 0.bias, 2.weight, ... as PyTorch's
 *       nn.Sequential(Linear, ReLU, Linear, ...) names them; weights and
 *       biases uniform in +-1/sqrt(in) (torch.nn.Linear's default).
 *   npytool rows OUT.npy ROWS COLS SEED
 *       float32 [ROWS, COLS], uniform in [-1, 1).
 *   npytool cmp GOT REF TOL
 *       two files of float32 data (.npy <f4, or safetensors of F32 tensors
 *       written the same way): max |GOT - REF| / max |REF| against TOL.
 *       Prints one JSON object; exit 0 within TOL, 1 over it (or a NaN),
 *       3 bad input.
 *
 * Plain C99, no library but libc and libm; the same seed gives the same
 * bytes.  Exit status: 0 ok, 1 over tolerance, 2 usage, 3 bad input or I/O.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 64

static uint64_t rng_state;

static uint64_t next (void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform (float lo, float hi) /* [lo, hi) */
{
    return lo + (hi - lo) * (float)((next () >> 40) * (1.0 / 16777216.0));
}

static int fail (const char *what, const char *path)
{
    fprintf (stderr, "npytool: %s: %s\n", path, what);
    return 3;
}

static int write_floats (FILE *f, size_t n, float bound)
{
    float buf[4096];

    while (n) {
        size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++)
            buf[i] = uniform (-bound, bound);
        if (fwrite (buf, sizeof (float), k, f) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int parse_sizes (const char *s, long *v, int *n)
{
    char *end;

    *n = 0;
    while (*s) {
        errno = 0;
        long x = strtol (s, &end, 10);
        if (end == s || errno || x <= 0 || x > (1L << 20) || *n >= MAX_LAYERS)
            return -1;
        v[(*n)++] = x;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *n >= 2 ? 0 : -1;
}

static int cmd_mlp (const char *out, const char *sizes, const char *seed)
{
    long v[MAX_LAYERS];
    int n, nl;
    char hdr[16384], name[32];
    size_t len = 0, off = 0;
    FILE *f;
    uint64_t hl;

    if (parse_sizes (sizes, v, &n) < 0)
        return fail ("bad SIZES (want IN,HIDDEN...,OUT, each 1..1048576)",
                     sizes);
    nl = n - 1;
    rng_state = strtoull (seed, NULL, 10);
    /* header: names in sorted order ("0.bias" < "0.weight" < "10.bias"
     * < "2.bias"), data in the same order */
    int order[MAX_LAYERS];
    for (int i = 0; i < nl; i++)
        order[i] = i;
    for (int i = 0; i < nl; i++) /* sort layer indices by their name */
        for (int j = i + 1; j < nl; j++) {
            char a[16], b[16];
            snprintf (a, sizeof (a), "%d.", 2 * order[i]);
            snprintf (b, sizeof (b), "%d.", 2 * order[j]);
            if (strcmp (a, b) > 0) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
    len += (size_t)snprintf (hdr + len, sizeof (hdr) - len, "{");
    for (int i = 0; i < nl; i++) {
        int L = order[i];
        size_t wb = (size_t)v[L] * (size_t)v[L + 1] * 4,
               bb = (size_t)v[L + 1] * 4;
        snprintf (name, sizeof (name), "%d", 2 * L);
        len += (size_t)snprintf (
            hdr + len, sizeof (hdr) - len,
            "%s\"%s.bias\":{\"dtype\":\"F32\",\"shape\":[%ld],"
            "\"data_offsets\":[%zu,%zu]},"
            "\"%s.weight\":{\"dtype\":\"F32\",\"shape\":[%ld,%ld],"
            "\"data_offsets\":[%zu,%zu]}",
            i ? "," : "", name, v[L + 1], off, off + bb, name, v[L + 1], v[L],
            off + bb, off + bb + wb);
        off += bb + wb;
        if (len >= sizeof (hdr) - 8)
            return fail ("too many layers", out);
    }
    len += (size_t)snprintf (hdr + len, sizeof (hdr) - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    if (!(f = fopen (out, "wb")))
        return fail (strerror (errno), out);
    hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    int bad = fwrite (le, 1, 8, f) != 8 || fwrite (hdr, 1, len, f) != len;
    for (int i = 0; i < nl && !bad; i++) {
        int L = order[i];
        float bound = 1.0f / sqrtf ((float)v[L]);
        bad = write_floats (f, (size_t)v[L + 1], bound) < 0 ||
              write_floats (f, (size_t)v[L] * (size_t)v[L + 1], bound) < 0;
    }
    if (fclose (f) != 0 || bad)
        return fail ("write failed", out);
    return 0;
}

static int cmd_rows (const char *out, const char *rows, const char *cols,
                     const char *seed)
{
    char hdr[128];
    long r = strtol (rows, NULL, 10), c = strtol (cols, NULL, 10);
    FILE *f;
    int n;

    if (r <= 0 || c <= 0 || r > (1L << 31) || c > (1L << 20))
        return fail ("bad ROWS or COLS", rows);
    rng_state = strtoull (seed, NULL, 10) ^ 0x5EEDull;
    n = snprintf (hdr, sizeof (hdr),
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, "
                  "%ld), }",
                  r, c);
    /* magic (6) + version (2) + length (2) + header, padded to 64 with '\n' */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    if (!(f = fopen (out, "wb")))
        return fail (strerror (errno), out);
    unsigned short hl = (unsigned short)(n + pad + 1);
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    int bad = fwrite (pre, 1, 10, f) != 10 ||
              fwrite (hdr, 1, (size_t)n, f) != (size_t)n;
    for (size_t i = 0; i < pad && !bad; i++)
        bad = fputc (' ', f) == EOF;
    bad = bad || fputc ('\n', f) == EOF;
    bad = bad || write_floats (f, (size_t)r * (size_t)c, 1.0f) < 0;
    if (fclose (f) != 0 || bad)
        return fail ("write failed", out);
    return 0;
}

/* The float32 data of a .npy (<f4) or an all-F32 safetensors file. */
static float *load (const char *path, size_t *count, int *rc)
{
    FILE *f = fopen (path, "rb");
    unsigned char pre[12];
    size_t hlen, dstart, size;
    long end;
    char *h = NULL;
    float *d = NULL;

    *rc = 3;
    if (!f) {
        fail (strerror (errno), path);
        return NULL;
    }
    if (fseek (f, 0, SEEK_END) < 0 || (end = ftell (f)) < 12 ||
        fseek (f, 0, SEEK_SET) < 0 || fread (pre, 1, 12, f) != 12) {
        fail ("too short or unreadable", path);
        goto out;
    }
    size = (size_t)end;
    if (!memcmp (pre, "\x93NUMPY", 6)) {
        hlen = pre[6] == 1 ? (size_t)(pre[8] | pre[9] << 8)
                           : (size_t)pre[8] | (size_t)pre[9] << 8 |
                                 (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        dstart = (pre[6] == 1 ? 10 : 12) + hlen;
    } else {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = v << 8 | pre[i];
        if (v > (1u << 24) || v + 8 > size) {
            fail ("neither .npy nor safetensors", path);
            goto out;
        }
        hlen = (size_t)v;
        dstart = 8 + hlen;
    }
    if (dstart > size || hlen > (1u << 24) || !(h = malloc (hlen + 1))) {
        fail ("bad header", path);
        goto out;
    }
    if (fseek (f, (long)(dstart - hlen), SEEK_SET) < 0 ||
        fread (h, 1, hlen, f) != hlen) {
        fail ("cannot read the header", path);
        goto out;
    }
    h[hlen] = '\0';
    if (pre[0] == 0x93 ? !strstr (h, "'<f4'")
                       : (strstr (h, "\"F16\"") || strstr (h, "\"BF16\"") ||
                          strstr (h, "\"F64\"") || !strstr (h, "\"F32\""))) {
        fail ("not float32 data", path);
        goto out;
    }
    *count = (size - dstart) / 4;
    if (!(d = malloc (*count * 4 + 4)) || fread (d, 4, *count, f) != *count) {
        fail ("cannot read the data", path);
        free (d);
        d = NULL;
        goto out;
    }
    *rc = 0;
out:
    free (h);
    fclose (f);
    return d;
}

static int cmd_cmp (const char *got, const char *ref, const char *tols)
{
    size_t ng = 0, nr = 0, nan = 0, worst = 0;
    int rc;
    float *g = load (got, &ng, &rc), *r;
    double tol = strtod (tols, NULL), maxd = 0, maxr = 0, rel;

    if (!g)
        return rc;
    if (!(r = load (ref, &nr, &rc))) {
        free (g);
        return rc;
    }
    if (ng != nr) {
        fprintf (stderr, "npytool: %s: %zu floats, %s has %zu\n", got, ng, ref,
                 nr);
        free (g);
        free (r);
        return 3;
    }
    for (size_t i = 0; i < ng; i++) {
        double a = g[i], b = r[i];
        if (isnan (a) != isnan (b)) {
            nan++;
            continue;
        }
        if (fabs (b) > maxr)
            maxr = fabs (b);
        if (fabs (a - b) > maxd) {
            maxd = fabs (a - b);
            worst = i;
        }
    }
    rel = maxr > 0 ? maxd / maxr : maxd;
    rc = nan || !(rel <= tol) ? 1 : 0;
    printf ("{\"values\":%zu,\"max_abs_diff\":%.6g,\"max_abs_ref\":%.6g,"
            "\"rel_diff\":%.6g,\"tolerance\":%g,\"worst_index\":%zu,"
            "\"nan_mismatches\":%zu,\"ok\":%s}\n",
            ng, maxd, maxr, rel, tol, worst, nan, rc ? "false" : "true");
    free (g);
    free (r);
    return rc;
}

int main (int argc, char **argv)
{
    if (argc == 5 && !strcmp (argv[1], "mlp"))
        return cmd_mlp (argv[2], argv[3], argv[4]);
    if (argc == 6 && !strcmp (argv[1], "rows"))
        return cmd_rows (argv[2], argv[3], argv[4], argv[5]);
    if (argc == 5 && !strcmp (argv[1], "cmp"))
        return cmd_cmp (argv[2], argv[3], argv[4]);
    fprintf (stderr, "usage: npytool mlp OUT.safetensors SIZES SEED\n"
                     "       npytool rows OUT.npy ROWS COLS SEED\n"
                     "       npytool cmp GOT REF TOL\n");
    return 2;
}
