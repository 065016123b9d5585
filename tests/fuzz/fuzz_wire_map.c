/* fuzz_wire_map.c - the decoders of `dcrun map` in lib/comm/wire.h.  Byte
 * 0 picks the message (map RESULT, files CHUNK/RESULT, MAP); the rest is
 * the payload.  What a binary decoder accepts must encode back to the same
 * bytes; a MAP it accepts must decode again to the same fields. */
#include "fuzz.h"
#include "lib/comm/wire.h"

static void same (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (!b)
        return; /* out of memory */
    if (alen != blen || memcmp (a, b, alen) != 0)
        abort ();
    free ((void *)b);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1, len;
    dc_error_t e;

    switch (data[0] % 3) {
    case 0: {
        struct dc_wire_mapres m;
        if (dc_wire_mapres_get (p, n, &m, &e) == 0) {
            uint8_t *b = dc_wire_mapres_new (&m, &len);
            same (p, n, b, len);
        }
        break;
    }
    case 1: {
        struct dc_wire_files m;
        if (dc_wire_files_get (p, n, "RESULT", &m, &e) == 0) {
            uint8_t *b = dc_wire_files_new (&m, &len);
            same (p, n, b, len);
            free (m.files);
        }
        break;
    }
    case 2: {
        struct dc_wire_map a, b;
        if (dc_wire_map_decode (p, n, &a, &e) == 0) {
            char *s = dc_wire_map_encode (&a);
            if (s) {
                if (dc_wire_map_decode ((const uint8_t *)s, strlen (s), &b,
                                        &e) != 0 ||
                    a.argc != b.argc || a.per_chunk != b.per_chunk ||
                    a.files != b.files || a.rows != b.rows ||
                    strcmp (a.descr, b.descr) != 0 || a.ndim != b.ndim ||
                    memcmp (a.shape, b.shape, sizeof (a.shape)) != 0 ||
                    a.row_bytes != b.row_bytes ||
                    a.chunk_timeout != b.chunk_timeout)
                    abort ();
                for (int i = 0; i < a.argc; i++)
                    if (strcmp (a.argv[i], b.argv[i]) != 0)
                        abort ();
                dc_wire_map_free (&b);
                free (s);
            }
            dc_wire_map_free (&a);
        }
        break;
    }
    }
    return 0;
}
