/* proto.c - frame encoding and an incremental, bounded decoder */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/comm/proto.h"

static const char *const type_names[] = {
    [DC_MSG_HELLO] = "hello",         [DC_MSG_JOB] = "job",
    [DC_MSG_MODEL] = "model",         [DC_MSG_READY] = "ready",
    [DC_MSG_CHUNK] = "chunk",         [DC_MSG_RESULT] = "result",
    [DC_MSG_GRAD] = "grad",           [DC_MSG_REDUCED] = "reduced",
    [DC_MSG_HEARTBEAT] = "heartbeat", [DC_MSG_ERROR] = "error",
    [DC_MSG_DONE] = "done",           [DC_MSG_DATA] = "data",
};

const char *dc_proto_type_name (int type)
{
    if (type <= 0 || type >= DC_MSG_TYPE_MAX)
        return "unknown";
    return type_names[type];
}

static void put16 (uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16 (const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32 (const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void dc_proto_pack (uint8_t out[DC_PROTO_HDR_SIZE], enum dc_msg_type type,
                    uint32_t src, uint32_t dst, uint64_t len)
{
    put32 (out, DC_PROTO_MAGIC);
    put16 (out + 4, DC_PROTO_VERSION);
    put16 (out + 6, (uint16_t)type);
    put32 (out + 8, src);
    put32 (out + 12, dst);
    put64 (out + 16, len);
}

static int unpack_cap (const uint8_t in[DC_PROTO_HDR_SIZE],
                       struct dc_frame_hdr *hdr, uint64_t cap, dc_error_t *errp)
{
    uint32_t magic = get32 (in);

    errno = EPROTO;
    if (magic != DC_PROTO_MAGIC)
        return errprintf (errp,
                          "protocol: bad frame magic %02x %02x %02x %02x "
                          "(expected \"DCRF\"): the peer is not a dcrun "
                          "worker, or its output is mixed into the channel",
                          in[0], in[1], in[2], in[3]);
    hdr->version = get16 (in + 4);
    hdr->type = get16 (in + 6);
    hdr->src = get32 (in + 8);
    hdr->dst = get32 (in + 12);
    hdr->len = get64 (in + 16);
    if (hdr->version != DC_PROTO_VERSION)
        return errprintf (errp,
                          "protocol: the peer speaks protocol version %u, "
                          "this dcrun speaks version %u\nhint: install the "
                          "same dcrun version on every host",
                          hdr->version, DC_PROTO_VERSION);
    if (hdr->type == 0 || hdr->type >= DC_MSG_TYPE_MAX)
        return errprintf (errp, "protocol: unknown frame type %u", hdr->type);
    if (hdr->len > cap)
        return errprintf (errp,
                          "protocol: %s frame of %llu bytes exceeds the "
                          "limit of %llu bytes",
                          dc_proto_type_name (hdr->type),
                          (unsigned long long)hdr->len,
                          (unsigned long long)cap);
    errno = 0;
    return 0;
}

int dc_proto_unpack (const uint8_t in[DC_PROTO_HDR_SIZE],
                     struct dc_frame_hdr *hdr, dc_error_t *errp)
{
    return unpack_cap (in, hdr, DC_PROTO_MAX_PAYLOAD, errp);
}

int dc_proto_send (int fd, enum dc_msg_type type, uint32_t src, uint32_t dst,
                   const void *payload, uint64_t len, dc_error_t *errp)
{
    uint8_t hdr[DC_PROTO_HDR_SIZE];
    struct iovec iov[2];
    int iovcnt = len > 0 ? 2 : 1;

    if (len > DC_PROTO_MAX_PAYLOAD || (len > 0 && !payload)) {
        errno = EINVAL;
        return errprintf (errp, "protocol: cannot send a frame of %llu bytes",
                          (unsigned long long)len);
    }
    dc_proto_pack (hdr, type, src, dst, len);
    iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof (hdr)};
    iov[1] =
        (struct iovec){.iov_base = (void *)payload, .iov_len = (size_t)len};
    struct iovec *v = iov;
    while (iovcnt > 0) {
        ssize_t n = writev (fd, v, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errprintf (errp, "protocol: write: %s", strerror (errno));
        }
        while (iovcnt > 0 && (size_t)n >= v->iov_len) {
            n -= (ssize_t)v->iov_len;
            v++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            v->iov_base = (uint8_t *)v->iov_base + n;
            v->iov_len -= (size_t)n;
        }
    }
    return 0;
}

struct dc_proto_decoder {
    uint64_t cap;
    uint8_t hdrbuf[DC_PROTO_HDR_SIZE];
    size_t hdrlen;
    bool have_hdr;
    struct dc_frame_hdr hdr;
    uint8_t *payload;
    size_t size; /* bytes allocated for payload: grows with got, not len */
    uint64_t got;
    bool ready;
    bool failed;
    dc_error_t error;
};

struct dc_proto_decoder *dc_proto_decoder_create (uint64_t max_payload)
{
    struct dc_proto_decoder *d = calloc (1, sizeof (*d));

    if (!d)
        return NULL;
    d->cap = max_payload && max_payload < DC_PROTO_MAX_PAYLOAD
                 ? max_payload
                 : DC_PROTO_MAX_PAYLOAD;
    return d;
}

void dc_proto_decoder_destroy (struct dc_proto_decoder *d)
{
    if (d) {
        free (d->payload);
        free (d);
    }
}

static void reset (struct dc_proto_decoder *d)
{
    d->hdrlen = 0;
    d->have_hdr = false;
    d->payload = NULL;
    d->size = 0;
    d->got = 0;
    d->ready = false;
}

/* Make room for `need` payload bytes.  The buffer grows with the bytes
 * that arrived (doubling, at least DC_PROTO_GROW_MIN), never past the
 * announced length: a header alone allocates nothing, so a peer must send
 * the bytes it announces before they cost memory. */
#define DC_PROTO_GROW_MIN 4096

static int grow (struct dc_proto_decoder *d, size_t need)
{
    size_t len = d->hdr.len ? (size_t)d->hdr.len : 1;
    size_t size;
    uint8_t *p;

    if (need <= d->size)
        return 0;
    size = d->size > need / 2 ? d->size * 2 : need;
    if (size < DC_PROTO_GROW_MIN)
        size = DC_PROTO_GROW_MIN;
    if (size > len)
        size = len;
    if (size < need)
        size = need;
    if (!(p = realloc (d->payload, size))) {
        d->failed = true;
        errno = ENOMEM;
        return errprintf (&d->error,
                          "protocol: out of memory for a %s frame of %llu "
                          "bytes",
                          dc_proto_type_name (d->hdr.type),
                          (unsigned long long)d->hdr.len);
    }
    d->payload = p;
    d->size = size;
    return 0;
}

size_t dc_proto_decoder_capacity (const struct dc_proto_decoder *d)
{
    return d ? d->size : 0;
}

long dc_proto_feed (struct dc_proto_decoder *d, const void *buf, size_t n,
                    dc_error_t *errp)
{
    const uint8_t *p = buf;
    size_t used = 0;

    if (!d || (n > 0 && !buf)) {
        errno = EINVAL;
        return errprintf (errp, "protocol: no decoder or buffer");
    }
    if (d->failed) {
        errno = EPROTO;
        if (errp)
            *errp = d->error;
        return -1;
    }
    while (used < n && !d->ready) {
        if (!d->have_hdr) {
            size_t k = DC_PROTO_HDR_SIZE - d->hdrlen;
            if (k > n - used)
                k = n - used;
            memcpy (d->hdrbuf + d->hdrlen, p + used, k);
            d->hdrlen += k;
            used += k;
            if (d->hdrlen < DC_PROTO_HDR_SIZE)
                break;
            if (unpack_cap (d->hdrbuf, &d->hdr, d->cap, &d->error) < 0) {
                d->failed = true;
                if (errp)
                    *errp = d->error;
                errno = EPROTO;
                return -1;
            }
            d->have_hdr = true;
            if (d->hdr.len == 0) {
                d->ready = true;
                break;
            }
            continue;
        }
        uint64_t want = d->hdr.len - d->got;
        size_t k = (size_t)(want < (uint64_t)(n - used) ? want : n - used);
        if (grow (d, (size_t)d->got + k) < 0) {
            if (errp)
                *errp = d->error;
            return -1;
        }
        memcpy (d->payload + d->got, p + used, k);
        d->got += k;
        used += k;
        if (d->got == d->hdr.len)
            d->ready = true;
    }
    if (d->ready && !d->payload) {
        /* an empty payload still hands out a buffer the caller can free */
        if (grow (d, 1) < 0) {
            if (errp)
                *errp = d->error;
            return -1;
        }
    }
    return (long)used;
}

int dc_proto_next (struct dc_proto_decoder *d, struct dc_frame_hdr *hdr,
                   const uint8_t **payload)
{
    if (!d || !d->ready)
        return 0;
    if (hdr)
        *hdr = d->hdr;
    if (payload)
        *payload = d->payload;
    return 1;
}

uint8_t *dc_proto_take (struct dc_proto_decoder *d)
{
    uint8_t *p;

    if (!d || !d->ready)
        return NULL;
    p = d->payload;
    reset (d);
    return p;
}

void dc_proto_consume (struct dc_proto_decoder *d)
{
    if (d && d->ready) {
        free (d->payload);
        reset (d);
    }
}

int dc_proto_eof (struct dc_proto_decoder *d, dc_error_t *errp)
{
    if (!d)
        return 0;
    if (d->failed) {
        if (errp)
            *errp = d->error;
        errno = EPROTO;
        return -1;
    }
    if (d->ready || (!d->have_hdr && d->hdrlen == 0))
        return 0;
    errno = EPROTO;
    if (!d->have_hdr)
        return errprintf (errp,
                          "protocol: the stream ended inside a frame header "
                          "(%zu of %d bytes)",
                          d->hdrlen, DC_PROTO_HDR_SIZE);
    return errprintf (errp,
                      "protocol: the stream ended inside a %s frame (%llu of "
                      "%llu bytes)",
                      dc_proto_type_name (d->hdr.type),
                      (unsigned long long)d->got,
                      (unsigned long long)d->hdr.len);
}
