/* test_proto.c - frame decoder: round trips and hostile bytes */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/proto.h"

/* Feed all bytes in pieces of `step`, collecting frames. */
static int feed_all (struct dc_proto_decoder *d, const uint8_t *buf, size_t n,
                     size_t step, struct dc_frame_hdr *hdrs, uint8_t **pays,
                     int max, dc_error_t *err)
{
    int nframes = 0;
    size_t off = 0;

    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        while (k > 0) {
            long used = dc_proto_feed (d, buf + off, k, err);
            if (used < 0)
                return -1;
            off += (size_t)used;
            k -= (size_t)used;
            const uint8_t *p;
            if (dc_proto_next (d, &hdrs[nframes], &p)) {
                ck_assert_int_lt (nframes, max);
                pays[nframes++] = dc_proto_take (d);
            }
        }
    }
    return nframes;
}

static size_t build (uint8_t *buf, int type, uint32_t src, uint32_t dst,
                     const char *payload)
{
    size_t len = payload ? strlen (payload) : 0;
    dc_proto_pack (buf, type, src, dst, len);
    if (len)
        memcpy (buf + DC_PROTO_HDR_SIZE, payload, len);
    return DC_PROTO_HDR_SIZE + len;
}

START_TEST (t_roundtrip)
{
    static const size_t steps[] = {1, 2, 7, 23, 24, 25, 1000};
    uint8_t buf[4096];
    size_t n = 0;

    n += build (buf + n, DC_MSG_HELLO, 3, 0, "hello there");
    n += build (buf + n, DC_MSG_HEARTBEAT, 1, 0, NULL);
    n += build (buf + n, DC_MSG_RESULT, 2, 0, "0123456789abcdef");
    for (size_t s = 0; s < sizeof (steps) / sizeof (steps[0]); s++) {
        struct dc_proto_decoder *d = dc_proto_decoder_create (0);
        struct dc_frame_hdr h[4];
        uint8_t *p[4];
        dc_error_t err;
        int k = feed_all (d, buf, n, steps[s], h, p, 4, &err);
        ck_assert_int_eq (k, 3);
        ck_assert_int_eq (h[0].type, DC_MSG_HELLO);
        ck_assert_int_eq (h[0].src, 3);
        ck_assert_uint_eq (h[0].len, 11);
        ck_assert_int_eq (memcmp (p[0], "hello there", 11), 0);
        ck_assert_int_eq (h[1].type, DC_MSG_HEARTBEAT);
        ck_assert_uint_eq (h[1].len, 0);
        ck_assert_int_eq (memcmp (p[2], "0123456789abcdef", 16), 0);
        ck_assert_int_eq (dc_proto_eof (d, &err), 0);
        for (int i = 0; i < k; i++)
            free (p[i]);
        dc_proto_decoder_destroy (d);
    }
}
END_TEST

/* Hostile headers: mutate one field, expect an error naming it. */
static const struct {
    int field; /* 0 magic, 1 version, 2 type, 3 length */
    uint64_t value;
    uint64_t cap;
    const char *msg;
} hostile[] = {
    {0, 0x12345678, 0, "bad frame magic 78 56 34 12"},
    {0, 0, 0, "bad frame magic"},
    {1, 2, 0, "peer speaks protocol version 2, this dcrun speaks version 1"},
    {1, 0, 0, "protocol version 0"},
    {2, 0, 0, "unknown frame type 0"},
    {2, 999, 0, "unknown frame type 999"},
    {3, DC_PROTO_MAX_PAYLOAD + 1, 0, "exceeds the limit"},
    {3, UINT64_MAX, 0, "exceeds the limit"},
    {3, 4097, 4096, "4097 bytes exceeds the limit of 4096"},
};

START_TEST (t_hostile)
{
    uint8_t buf[DC_PROTO_HDR_SIZE];
    dc_error_t err = {{0}};
    struct dc_proto_decoder *d = dc_proto_decoder_create (hostile[_i].cap);
    uint64_t v = hostile[_i].value;

    dc_proto_pack (buf, DC_MSG_CHUNK, 0, 1, 16);
    switch (hostile[_i].field) {
    case 0:
        for (int i = 0; i < 4; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
        break;
    case 1:
        buf[4] = (uint8_t)v;
        buf[5] = (uint8_t)(v >> 8);
        break;
    case 2:
        buf[6] = (uint8_t)v;
        buf[7] = (uint8_t)(v >> 8);
        break;
    case 3:
        for (int i = 0; i < 8; i++)
            buf[16 + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    ck_assert_int_eq (dc_proto_feed (d, buf, sizeof (buf), &err), -1);
    ck_assert_msg (strstr (err.text, hostile[_i].msg), "'%s' lacks '%s'",
                   err.text, hostile[_i].msg);
    /* the decoder stays failed */
    memset (&err, 0, sizeof (err));
    ck_assert_int_eq (dc_proto_feed (d, buf, 1, &err), -1);
    ck_assert_msg (strstr (err.text, hostile[_i].msg), "%s", err.text);
    ck_assert_int_eq (dc_proto_eof (d, &err), -1);
    /* unpack agrees with the decoder (default cap) */
    struct dc_frame_hdr h;
    if (hostile[_i].cap == 0)
        ck_assert_int_eq (dc_proto_unpack (buf, &h, &err), -1);
    dc_proto_decoder_destroy (d);
}
END_TEST

START_TEST (t_truncated)
{
    uint8_t buf[64];
    size_t n = build (buf, DC_MSG_RESULT, 1, 0, "abcdefgh");
    dc_error_t err;

    for (size_t cut = 1; cut < n; cut++) {
        struct dc_proto_decoder *d = dc_proto_decoder_create (0);
        ck_assert_int_eq (dc_proto_feed (d, buf, cut, &err), (long)cut);
        ck_assert_int_eq (dc_proto_next (d, NULL, NULL), 0);
        ck_assert_int_eq (dc_proto_eof (d, &err), -1);
        ck_assert_ptr_nonnull (strstr (err.text, "ended inside"));
        if (cut < DC_PROTO_HDR_SIZE)
            ck_assert_ptr_nonnull (strstr (err.text, "header"));
        else
            ck_assert_ptr_nonnull (strstr (err.text, "result frame"));
        dc_proto_decoder_destroy (d);
    }
}
END_TEST

START_TEST (t_pipe)
{
    int fds[2];
    dc_error_t err;
    char big[100000];
    uint8_t rbuf[8192];
    struct dc_proto_decoder *d = dc_proto_decoder_create (0);
    struct dc_frame_hdr h;
    const uint8_t *p;

    memset (big, 'x', sizeof (big));
    ck_assert_int_eq (pipe (fds), 0);
    if (fork () == 0) {
        close (fds[0]);
        int rc = dc_proto_send (fds[1], DC_MSG_MODEL, 0, 5, big, sizeof (big),
                                &err);
        _exit (rc == 0 ? 0 : 1);
    }
    close (fds[1]);
    int got = 0;
    ssize_t n;
    while ((n = read (fds[0], rbuf, sizeof (rbuf))) > 0) {
        size_t off = 0;
        while (off < (size_t)n) {
            long used = dc_proto_feed (d, rbuf + off, (size_t)n - off, &err);
            ck_assert_int_ge (used, 0);
            off += (size_t)used;
            if (dc_proto_next (d, &h, &p)) {
                ck_assert_uint_eq (h.len, sizeof (big));
                ck_assert_int_eq (h.dst, 5);
                ck_assert_int_eq (memcmp (p, big, sizeof (big)), 0);
                dc_proto_consume (d);
                got++;
            }
        }
    }
    ck_assert_int_eq (got, 1);
    ck_assert_int_eq (dc_proto_eof (d, &err), 0);
    close (fds[0]);
    dc_proto_decoder_destroy (d);
}
END_TEST

START_TEST (t_null)
{
    dc_error_t err;

    ck_assert_int_eq (dc_proto_feed (NULL, "x", 1, &err), -1);
    struct dc_proto_decoder *d = dc_proto_decoder_create (0);
    ck_assert_int_eq (dc_proto_feed (d, NULL, 1, &err), -1);
    ck_assert_int_eq (dc_proto_feed (d, NULL, 0, &err), 0);
    ck_assert_ptr_null (dc_proto_take (d));
    ck_assert_int_eq (dc_proto_next (NULL, NULL, NULL), 0);
    ck_assert_int_eq (dc_proto_send (-1, DC_MSG_DATA, 0, 0, NULL, 5, &err),
                      -1);
    ck_assert_int_eq (dc_proto_send (-1, DC_MSG_DATA, 0, 0, NULL, 0, &err),
                      -1);
    ck_assert_str_eq (dc_proto_type_name (0), "unknown");
    ck_assert_str_eq (dc_proto_type_name (DC_MSG_CHUNK), "chunk");
    dc_proto_decoder_destroy (d);
    dc_proto_decoder_destroy (NULL);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("proto");
    TCase *tc = tcase_create ("proto");

    tcase_add_test (tc, t_roundtrip);
    tcase_add_loop_test (tc, t_hostile, 0,
                         sizeof (hostile) / sizeof (hostile[0]));
    tcase_add_test (tc, t_truncated);
    tcase_add_test (tc, t_pipe);
    tcase_add_test (tc, t_null);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
