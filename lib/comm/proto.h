/* proto.h - framing of the messages between dcrun ranks (comm "stream")
 *
 * A frame is a 24-byte little-endian header and a payload:
 *
 *   u32 magic "DCRF"   u16 version   u16 type
 *   u32 src rank       u32 dst rank  u64 payload length
 *
 * Payload lengths are capped (DC_PROTO_MAX_PAYLOAD).  The decoder takes
 * bytes as they arrive (any split) and hands out whole frames; bad magic,
 * another protocol version, an unknown type, an oversized length and a
 * stream that ends inside a frame are errors with a message that says which.
 *
 * Memory follows the bytes that arrived, not the length a header announces:
 * the payload buffer grows (doubling) as payload bytes come in, so a peer
 * that sends a header announcing 1 GiB and then stalls costs nothing.
 */
#ifndef DC_PROTO_H
#define DC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DC_PROTO_MAGIC 0x46524344u /* "DCRF" read as little-endian u32 */
#define DC_PROTO_VERSION 1
#define DC_PROTO_HDR_SIZE 24
#define DC_PROTO_MAX_PAYLOAD ((uint64_t)1 << 30) /* 1 GiB */
#define DC_PROTO_ANY 0xffffffffu /* dst: the coordinator decides */

enum dc_msg_type {
    DC_MSG_HELLO = 1, /* worker -> coordinator: version, rank, device */
    DC_MSG_JOB,       /* coordinator -> worker: job description (JSON) */
    DC_MSG_MODEL,     /* coordinator -> worker: model bytes */
    DC_MSG_READY,     /* worker -> coordinator: loaded, asks for work */
    DC_MSG_CHUNK,     /* coordinator -> worker: rows to process */
    DC_MSG_RESULT,    /* worker -> coordinator: output rows of a chunk */
    DC_MSG_GRAD,      /* gradients for an allreduce */
    DC_MSG_REDUCED,   /* the reduced sum */
    DC_MSG_HEARTBEAT, /* either way: still alive */
    DC_MSG_ERROR,     /* either way: text of a fatal error */
    DC_MSG_DONE,      /* coordinator -> worker: no more work, exit */
    DC_MSG_DATA,      /* rank-to-rank payload relayed by the hub */
    DC_MSG_TYPE_MAX,  /* one past the last type */
};

struct dc_frame_hdr {
    uint16_t version;
    uint16_t type;
    uint32_t src;
    uint32_t dst;
    uint64_t len;
};

/* Write the 24 header bytes of a frame into out. */
void dc_proto_pack (uint8_t out[DC_PROTO_HDR_SIZE], enum dc_msg_type type,
                    uint32_t src, uint32_t dst, uint64_t len);

/* Parse and check 24 header bytes.  -1 with errp on bad magic, version,
 * type or length. */
int dc_proto_unpack (const uint8_t in[DC_PROTO_HDR_SIZE],
                     struct dc_frame_hdr *hdr, dc_error_t *errp);

/* Send a whole frame on a blocking fd (retries short writes and EINTR). */
int dc_proto_send (int fd, enum dc_msg_type type, uint32_t src, uint32_t dst,
                   const void *payload, uint64_t len, dc_error_t *errp);

const char *dc_proto_type_name (int type);

/* Incremental decoder. */
struct dc_proto_decoder;

/* max_payload 0 = DC_PROTO_MAX_PAYLOAD; a smaller cap suits control
 * channels. */
struct dc_proto_decoder *dc_proto_decoder_create (uint64_t max_payload);
void dc_proto_decoder_destroy (struct dc_proto_decoder *d);

/* Take n bytes.  Returns the number of bytes consumed (<= n; it stops after
 * completing a frame so the caller can take it with dc_proto_next), or -1
 * with errp on a bad header.  After an error the decoder stays failed. */
long dc_proto_feed (struct dc_proto_decoder *d, const void *buf, size_t n,
                    dc_error_t *errp);

/* When a whole frame is ready: 1, *hdr filled and *payload pointing at its
 * bytes (borrowed until the next feed or take).  0 when none is ready. */
int dc_proto_next (struct dc_proto_decoder *d, struct dc_frame_hdr *hdr,
                   const uint8_t **payload);

/* Give up the payload buffer of the ready frame (caller frees), so large
 * payloads need no copy; the decoder then moves on. */
uint8_t *dc_proto_take (struct dc_proto_decoder *d);

/* Mark the ready frame consumed (after dc_proto_next). */
void dc_proto_consume (struct dc_proto_decoder *d);

/* Bytes currently allocated for the payload of the frame being decoded
 * (0 for NULL).  Never more than max(4096, 2 * payload bytes received),
 * nor more than the announced length; for tests and reports. */
size_t dc_proto_decoder_capacity (const struct dc_proto_decoder *d);

/* The stream ended: -1 with errp when it ended inside a frame. */
int dc_proto_eof (struct dc_proto_decoder *d, dc_error_t *errp);

#endif
