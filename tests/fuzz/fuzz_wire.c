/* fuzz_wire.c - the payload decoders of lib/comm/wire.h.  Byte 0 picks
 * the message (CHUNK, RESULT, step, training result, pipeline step,
 * micro-batch, REDUCED, READY, JOB), bytes 1 and 2 the widths or counts
 * the receiver expects; the rest is the payload.  Whatever a decoder
 * accepts must encode back to the same bytes (binary) or decode again to
 * the same struct (JSON). */
#include "fuzz.h"
#include "lib/comm/wire.h"

/* blen by address: read after the encoder that sets it ran (the order in
 * which a call's arguments are evaluated is unspecified) */
static void same (const uint8_t *a, size_t alen, const uint8_t *b,
                  const size_t *blen)
{
    if (!b)
        return; /* out of memory */
    if (alen != *blen || memcmp (a, b, alen) != 0)
        abort ();
    free ((void *)b);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t w1 = (size_t)data[1] * 4, w2 = (size_t)data[2] * 4;
    const uint8_t *p = data + 3;
    size_t n = size - 3, len;
    dc_error_t e;

    switch (data[0] % 9) {
    case 0: {
        struct dc_wire_chunk m;
        if (dc_wire_chunk_get (p, n, w1, &m, &e) == 0)
            same (p, n, dc_wire_chunk_new (&m, w1, &len), &len);
        break;
    }
    case 1: {
        struct dc_wire_rows m;
        if (dc_wire_rows_get (p, n, w1, NULL, &m, &e) == 0)
            same (p, n, dc_wire_rows_new (&m, w1, &len), &len);
        break;
    }
    case 2: {
        struct dc_wire_step m;
        if (dc_wire_step_get (p, n, w1, w2, data[2], &m, &e) == 0)
            same (p, n, dc_wire_step_new (&m, w1, w2, &len), &len);
        break;
    }
    case 3: {
        struct dc_wire_tresult m;
        if (dc_wire_tresult_get (p, n, data[1], data[2] & 1, &m, &e) == 0)
            same (p, n, dc_wire_tresult_new (&m, &len), &len);
        break;
    }
    case 4: {
        struct dc_wire_pstep m;
        if (dc_wire_pstep_get (p, n, w1, &m, &e) == 0)
            same (p, n, dc_wire_pstep_new (&m, w1, &len), &len);
        break;
    }
    case 5: {
        struct dc_wire_pdata m;
        if (dc_wire_pdata_get (p, n, w1, w2, &m, &e) == 0)
            same (p, n,
                  dc_wire_pdata_new (&m, m.kind == DC_WIRE_FWD ? w1 : w2, &len),
                  &len);
        break;
    }
    case 6: {
        struct dc_wire_reduced m;
        if (dc_wire_reduced_get (p, n, data[1], &m, &e) == 0)
            same (p, n, dc_wire_reduced_new (&m, &len), &len);
        break;
    }
    case 7: {
        struct dc_wire_ready a, b;
        if (dc_wire_ready_decode (p, n, &a, &e) == 0) {
            char *s = dc_wire_ready_encode (&a);
            if (s) {
                if (dc_wire_ready_decode ((const uint8_t *)s, strlen (s), &b,
                                          &e) != 0 ||
                    memcmp (&a, &b, sizeof (a)) != 0)
                    abort ();
                free (s);
            }
        }
        break;
    }
    case 8: {
        struct dc_wire_job a, b;
        if (dc_wire_job_decode (p, n, &a, &e) == 0) {
            char *s = dc_wire_job_encode (&a);
            if (s) {
                if (dc_wire_job_decode ((const uint8_t *)s, strlen (s), &b,
                                        &e) != 0 ||
                    memcmp (&a, &b, sizeof (a)) != 0)
                    abort ();
                free (s);
            }
        }
        break;
    }
    }
    return 0;
}
