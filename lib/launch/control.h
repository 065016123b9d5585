/* control.h - the control channel of a remote rank's agent (dcrun worker)
 *
 * After the environment block (launch_io.h), what the head writes on the
 * stdin of a remote `dcrun worker` is a stream of messages, each a text
 * line, stdin data framed by its line:
 *
 *   "signal N\n"          send signal N (1 .. NSIG-1) to the rank's group
 *   "stdin N\n" + N bytes bytes for the rank's stdin, 1 <= N <=
 *                         DC_CTL_STDIN_MAX (the worker was started with
 *                         --stdin; without it they are dropped)
 *   "stdin-eof\n"         close the rank's stdin
 *
 * A line that is none of these (an older or newer head), or longer than
 * DC_CTL_LINE_MAX, is skipped; a "stdin" line whose length is not a
 * number in range is an error, since the bytes after it cannot be told
 * apart.  EOF on the channel stops the rank (the head is gone).
 */
#ifndef DC_LAUNCH_CONTROL_H
#define DC_LAUNCH_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util/error.h"

#define DC_CTL_STDIN_MAX 32768
#define DC_CTL_LINE_MAX 64

enum dc_ctl_type {
    DC_CTL_NONE = 0, /* nothing complete yet */
    DC_CTL_SIGNAL,
    DC_CTL_STDIN, /* a piece of a frame's data */
    DC_CTL_STDIN_EOF,
};

struct dc_ctl_msg {
    enum dc_ctl_type type;
    int sig;          /* DC_CTL_SIGNAL */
    const char *data; /* DC_CTL_STDIN: points into the parsed buffer */
    size_t len;
};

/* Zero it to start. */
struct dc_ctl_parser {
    size_t left; /* bytes of stdin data still to come in this frame */
    char line[DC_CTL_LINE_MAX];
    size_t linelen;
    bool skipping; /* an overlong line: dropped up to its newline */
};

/* Take bytes of buf[0..len): returns how many were used and sets *m to the
 * message they completed (DC_CTL_NONE: none yet).  Stdin data comes in
 * pieces, each pointing into buf.  Call again with the rest.  -1 (errp
 * set) on a "stdin" line with a bad length: the stream cannot be
 * trusted after it. */
ssize_t dc_ctl_parse (struct dc_ctl_parser *p, const char *buf, size_t len,
                      struct dc_ctl_msg *m, dc_error_t *errp);

/* The messages into out (cap bytes): their length, -1 when they do not
 * fit or the value is out of range.  dc_ctl_stdin_header is the line
 * that goes before n bytes of data. */
int dc_ctl_signal (char *out, size_t cap, int sig);
int dc_ctl_stdin_header (char *out, size_t cap, size_t n);
int dc_ctl_stdin_eof (char *out, size_t cap);

#endif
