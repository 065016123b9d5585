/* test_control.c - the control channel of a remote rank's agent: messages
 * in one piece, byte by byte, hostile and overlong lines, the encoders */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "lib/launch/control.h"

/* Parse all of in with pieces of at most step bytes; what came out as
 * text: "S<n>" per signal, "<data>" per stdin piece, "E" per eof.  -1 on
 * an error (its text in err). */
static int run (const char *in, size_t len, size_t step, char *out, size_t cap,
                dc_error_t *err)
{
    struct dc_ctl_parser p = {0};
    size_t off = 0, o = 0;

    out[0] = '\0';
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t pos = 0;
        while (pos < n) {
            struct dc_ctl_msg m;
            ssize_t u = dc_ctl_parse (&p, in + off + pos, n - pos, &m, err);
            if (u < 0)
                return -1;
            ck_assert_int_gt (u, 0);
            pos += (size_t)u;
            if (m.type == DC_CTL_SIGNAL)
                o += (size_t)snprintf (out + o, cap - o, "S%d", m.sig);
            else if (m.type == DC_CTL_STDIN) {
                ck_assert_uint_le (m.len, cap - o - 1);
                memcpy (out + o, m.data, m.len);
                o += m.len;
                out[o] = '\0';
            } else if (m.type == DC_CTL_STDIN_EOF)
                o += (size_t)snprintf (out + o, cap - o, "E");
        }
        off += n;
    }
    return 0;
}

static const struct {
    const char *in;
    const char *out; /* NULL: an error */
} cases[] = {
    {"", ""},
    {"signal 15\n", "S15"},
    {"signal 15", ""}, /* no newline yet */
    {"signal 0\nsignal 99999\nsignal -1\nsignal x\nsignal 9x\n", ""},
    {"stdin 5\nhellosignal 2\n", "helloS2"},
    {"stdin 6\nab\ncd\nstdin-eof\n", "ab\ncd\nE"},
    {"stdin 10\nsignal 9\n", "signal 9\n"}, /* data, not a message */
    {"hello\nnosuch 1\n\nsignal 1\n", "S1"},
    {"stdin 0\nx", NULL},
    {"stdin -1\n", NULL},
    {"stdin 32769\n", NULL},
    {"stdin 99999999999999999999999\n", NULL},
    {"stdin 12abc\n", NULL},
    {"stdin \n", NULL},
    {"stdin-eof\nstdin-eof\n", "EE"},
    /* an overlong line is skipped up to its newline, the next one counts */
    {"signal 1111111111111111111111111111111111111111111111111111111111111"
     "1111111111111111111111 stdin 3\nsignal 3\n",
     "S3"},
};

START_TEST (test_cases)
{
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
        for (size_t step = 1; step <= 64; step *= 2) {
            char out[256];
            dc_error_t err = {{0}};
            int rc = run (cases[i].in, strlen (cases[i].in), step, out,
                          sizeof (out), &err);
            if (!cases[i].out) {
                ck_assert_msg (rc < 0, "case %zu: no error", i);
                ck_assert_ptr_nonnull (strstr (err.text, "bad stdin frame"));
            } else {
                ck_assert_msg (rc == 0, "case %zu: %s", i, err.text);
                ck_assert_msg (!strcmp (out, cases[i].out),
                               "case %zu step %zu: '%s'", i, step, out);
            }
        }
}
END_TEST

START_TEST (test_binary_data)
{
    /* every byte value, NULs and newlines included, in a full frame */
    char in[DC_CTL_STDIN_MAX + 64], hdr[32];
    char *out = malloc (DC_CTL_STDIN_MAX + 16);
    int h = dc_ctl_stdin_header (hdr, sizeof (hdr), DC_CTL_STDIN_MAX);
    ck_assert_int_gt (h, 0);
    memcpy (in, hdr, (size_t)h);
    for (size_t i = 0; i < DC_CTL_STDIN_MAX; i++)
        in[h + (int)i] = (char)(i * 7);
    struct dc_ctl_parser p = {0};
    size_t off = 0, got = 0, len = (size_t)h + DC_CTL_STDIN_MAX;
    while (off < len) {
        struct dc_ctl_msg m;
        ssize_t u = dc_ctl_parse (&p, in + off, len - off, &m, NULL);
        ck_assert_int_gt (u, 0);
        if (m.type == DC_CTL_STDIN) {
            memcpy (out + got, m.data, m.len);
            got += m.len;
        } else
            ck_assert_int_eq (m.type, DC_CTL_NONE);
        off += (size_t)u;
    }
    ck_assert_uint_eq (got, DC_CTL_STDIN_MAX);
    ck_assert_int_eq (memcmp (out, in + h, DC_CTL_STDIN_MAX), 0);
    free (out);
}
END_TEST

START_TEST (test_encode)
{
    char b[32];
    ck_assert_int_eq (dc_ctl_signal (b, sizeof (b), SIGTERM), 10);
    ck_assert_str_eq (b, "signal 15\n");
    ck_assert_int_eq (dc_ctl_signal (b, sizeof (b), 0), -1);
    ck_assert_int_eq (dc_ctl_signal (b, sizeof (b), NSIG), -1);
    ck_assert_int_eq (dc_ctl_signal (b, 5, SIGTERM), -1); /* too small */
    ck_assert_int_eq (dc_ctl_signal (NULL, 32, SIGTERM), -1);
    ck_assert_int_eq (dc_ctl_stdin_header (b, sizeof (b), 3), 8);
    ck_assert_str_eq (b, "stdin 3\n");
    ck_assert_int_eq (dc_ctl_stdin_header (b, sizeof (b), 0), -1);
    ck_assert_int_eq (dc_ctl_stdin_header (b, sizeof (b), DC_CTL_STDIN_MAX + 1),
                      -1);
    ck_assert_int_eq (dc_ctl_stdin_eof (b, sizeof (b)), 10);
    ck_assert_str_eq (b, "stdin-eof\n");
    ck_assert_int_eq (dc_ctl_stdin_eof (b, 4), -1);
    /* NULL parser or buffer: an error, not a crash */
    struct dc_ctl_msg m;
    struct dc_ctl_parser p = {0};
    ck_assert_int_eq (dc_ctl_parse (NULL, "x", 1, &m, NULL), -1);
    ck_assert_int_eq (dc_ctl_parse (&p, NULL, 1, &m, NULL), -1);
    ck_assert_int_eq (dc_ctl_parse (&p, NULL, 0, &m, NULL), 0);
}
END_TEST

int main (void)
{
    Suite *s = suite_create ("control");
    TCase *tc = tcase_create ("control");

    tcase_add_test (tc, test_cases);
    tcase_add_test (tc, test_binary_data);
    tcase_add_test (tc, test_encode);
    suite_add_tcase (s, tc);
    return dc_check_run (s);
}
