/* test_proto.c - frame decoder: round trips and hostile bytes */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "lib/comm/proto.h"

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
        int rc =
            dc_proto_send (fds[1], DC_MSG_MODEL, 0, 5, big, sizeof (big), &err);
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

/* Reproducers from a fuzzer (tests/fixtures/wire/oom-*): headers that
 * announce up to 1 GiB followed by a few bytes.  Fed from every start
 * offset and in pieces of several sizes, the decoder's buffer never holds
 * more than max(4096, 2 * bytes fed): memory follows the bytes received. */
static const char *const oom_files[] = {
    "oom-321a1b69fdd934eb581d15b6f84061be5c420859",
    "oom-65c2bb8055e168ea41f315f607aa4ded04e6a783",
    "oom-7a216cfdbf27d3b9b6387b7d350ec080281f89bc",
    "oom-9802f5e58d18fe4a067032466d125a60d1a9d58f",
    "oom-afca566a83a3bfd1c910914149b9a586fa9dff3e",
    "oom-bf017ca04e923f96f6fb924edb74e852ce0280a2",
    "oom-dd73c0aa38aa149776837a72de8ce20125811395",
    "oom-e052a52f5c04d5dac65e5a9500b9e4326616ce36",
    "oom-fe7abf030579e076ced4488dcab1002a6defded7",
};

static size_t bound (size_t fed)
{
    return fed * 2 > 4096 ? fed * 2 : 4096;
}

START_TEST (t_oom_reproducers)
{
    static const size_t steps[] = {1, 3, 24, 4096};
    char rel[256];
    uint8_t buf[4096];
    int fd;
    ssize_t n;
    int announced_big = 0;

    snprintf (rel, sizeof (rel), "tests/fixtures/wire/%s", oom_files[_i]);
    fd = open (dc_srcpath (rel), O_RDONLY);
    ck_assert_msg (fd >= 0, "open %s", rel);
    n = read (fd, buf, sizeof (buf));
    close (fd);
    ck_assert_int_gt (n, DC_PROTO_HDR_SIZE);
    for (size_t start = 0; start + DC_PROTO_HDR_SIZE <= (size_t)n; start++) {
        for (size_t s = 0; s < sizeof (steps) / sizeof (steps[0]); s++) {
            struct dc_proto_decoder *d = dc_proto_decoder_create (0);
            dc_error_t err;
            size_t off = start, fed = 0;
            ck_assert_ptr_nonnull (d);
            while (off < (size_t)n) {
                size_t k =
                    (size_t)n - off < steps[s] ? (size_t)n - off : steps[s];
                long used = dc_proto_feed (d, buf + off, k, &err);
                if (used < 0)
                    break; /* a hostile header: an error, not memory */
                off += (size_t)used;
                fed += (size_t)used;
                ck_assert_msg (dc_proto_decoder_capacity (d) <= bound (fed),
                               "%s from %zu: %zu bytes held after %zu fed",
                               oom_files[_i], start,
                               dc_proto_decoder_capacity (d), fed);
                struct dc_frame_hdr h;
                if (dc_proto_next (d, &h, NULL)) {
                    dc_proto_consume (d);
                    fed = 0;
                } else if (off == (size_t)n) {
                    /* the file ends inside a frame */
                    (void)dc_proto_eof (d, &err);
                }
            }
            dc_proto_decoder_destroy (d);
        }
        /* the header at this offset announces a large frame? */
        struct dc_frame_hdr h;
        dc_error_t err;
        if (dc_proto_unpack (buf + start, &h, &err) == 0 &&
            h.len >= ((uint64_t)1 << 20))
            announced_big = 1;
    }
    ck_assert_msg (announced_big, "%s holds no header announcing >= 1 MiB",
                   oom_files[_i]);
}
END_TEST

/* Frames that are cut short or announce too much: what feed says, how
 * many frames come out, what eof says and how much memory was held. */
static const struct {
    const char *name;
    uint64_t cap;         /* decoder cap (0 = default) */
    uint64_t announce;    /* length in the header */
    size_t send;          /* payload bytes actually sent */
    int frames;           /* whole frames expected */
    const char *feed_err; /* NULL: feed succeeds */
    const char *eof_err;  /* NULL: eof is clean */
} frame_cases[] = {
    {"1 GiB announced, nothing sent", 0, DC_PROTO_MAX_PAYLOAD, 0, 0, NULL,
     "ended inside a chunk frame (0 of 1073741824 bytes)"},
    {"1 GiB announced, 10000 sent", 0, DC_PROTO_MAX_PAYLOAD, 10000, 0, NULL,
     "ended inside a chunk frame (10000 of 1073741824 bytes)"},
    {"1 GiB + 1 announced", 0, DC_PROTO_MAX_PAYLOAD + 1, 0, 0,
     "exceeds the limit of 1073741824", "exceeds the limit"},
    {"at a small cap", 4096, 4096, 4096, 1, NULL, NULL},
    {"one past a small cap", 4096, 4097, 4097, 0,
     "4097 bytes exceeds the limit of 4096", "exceeds"},
    {"empty payload", 0, 0, 0, 1, NULL, NULL},
    {"one byte short", 0, 100, 99, 0, NULL, "(99 of 100 bytes)"},
    {"exact", 0, 70000, 70000, 1, NULL, NULL},
};

START_TEST (t_frames)
{
    static uint8_t payload[70000];
    uint8_t hdr[DC_PROTO_HDR_SIZE];
    struct dc_proto_decoder *d = dc_proto_decoder_create (frame_cases[_i].cap);
    dc_error_t err = {{0}};
    int frames = 0;
    size_t fed = 0;
    long used;

    memset (payload, 0xa5, sizeof (payload));
    ck_assert_uint_le (frame_cases[_i].send, sizeof (payload));
    dc_proto_pack (hdr, DC_MSG_CHUNK, 0, 1, frame_cases[_i].announce);
    used = dc_proto_feed (d, hdr, sizeof (hdr), &err);
    if (frame_cases[_i].feed_err) {
        ck_assert_int_eq (used, -1);
        ck_assert_msg (strstr (err.text, frame_cases[_i].feed_err), "%s: '%s'",
                       frame_cases[_i].name, err.text);
    } else {
        ck_assert_int_eq (used, DC_PROTO_HDR_SIZE);
        /* a header alone costs nothing (1 byte for an empty frame) */
        ck_assert_uint_le (dc_proto_decoder_capacity (d), 1);
        /* the payload in pieces of 1000 */
        while (fed < frame_cases[_i].send || frame_cases[_i].send == 0) {
            size_t k = frame_cases[_i].send - fed;
            if (k > 1000)
                k = 1000;
            used = dc_proto_feed (d, payload + fed, k, &err);
            ck_assert_int_eq (used, (long)k);
            fed += k;
            ck_assert_uint_le (dc_proto_decoder_capacity (d), bound (fed));
            if (dc_proto_next (d, NULL, NULL)) {
                uint8_t *p = dc_proto_take (d);
                ck_assert_ptr_nonnull (p);
                ck_assert_int_eq (memcmp (p, payload, fed), 0);
                free (p);
                frames++;
                ck_assert_uint_eq (dc_proto_decoder_capacity (d), 0);
            }
            if (frame_cases[_i].send == 0)
                break;
        }
    }
    ck_assert_int_eq (frames, frame_cases[_i].frames);
    memset (&err, 0, sizeof (err));
    if (frame_cases[_i].eof_err) {
        ck_assert_int_eq (dc_proto_eof (d, &err), -1);
        ck_assert_msg (strstr (err.text, frame_cases[_i].eof_err), "%s: '%s'",
                       frame_cases[_i].name, err.text);
    } else {
        ck_assert_int_eq (dc_proto_eof (d, &err), 0);
    }
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
    ck_assert_int_eq (dc_proto_send (-1, DC_MSG_DATA, 0, 0, NULL, 5, &err), -1);
    ck_assert_int_eq (dc_proto_send (-1, DC_MSG_DATA, 0, 0, NULL, 0, &err), -1);
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
    tcase_add_loop_test (tc, t_oom_reproducers, 0,
                         sizeof (oom_files) / sizeof (oom_files[0]));
    tcase_add_loop_test (tc, t_frames, 0,
                         sizeof (frame_cases) / sizeof (frame_cases[0]));
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
