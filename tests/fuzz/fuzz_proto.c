/* fuzz_proto.c - the wire decoder.  Two bytes of settings, then the
 * stream: byte 0 picks the size of the pieces the stream is fed in, bit 6
 * of byte 1 a small payload cap (4096) instead of the default; frames are
 * taken or consumed in turn.  Run with -malloc_limit_mb: a header alone
 * must not make the decoder allocate the length it announces. */
#include "fuzz.h"
#include "lib/comm/proto.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = (size_t)(data[0] & 0x3f) + 1;
    uint64_t cap = data[1] & 0x40 ? 4096 : 0; /* 0: the default cap */
    struct dc_proto_decoder *d = dc_proto_decoder_create (cap);
    dc_error_t err;
    size_t off = 2;
    int k = 0;

    if (!d)
        return 0;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        long used = dc_proto_feed (d, data + off, n, &err);
        if (used < 0)
            break;
        if ((size_t)used > n)
            abort ();
        off += (size_t)used;
        struct dc_frame_hdr hdr;
        const uint8_t *payload;
        while (dc_proto_next (d, &hdr, &payload) == 1) {
            if (k++ % 2) {
                free (dc_proto_take (d));
            } else {
                volatile uint8_t sink = 0;
                for (uint64_t i = 0; i < hdr.len; i++)
                    sink ^= payload[i];
                (void)sink;
                dc_proto_consume (d);
            }
        }
        if (used == 0 && dc_proto_next (d, &hdr, &payload) == 0)
            break; /* no progress */
    }
    dc_proto_eof (d, &err);
    dc_proto_decoder_destroy (d);
    return 0;
}
