/* fuzz_control.c - the control channel of a remote rank's agent
 * (lib/launch/control.h).  Byte 0 picks the size of the pieces the stream
 * is fed in; every message is checked: stdin data within the piece, a
 * signal in range; the bytes of every piece are used up. */
#include <signal.h>

#include "fuzz.h"
#include "lib/launch/control.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct dc_ctl_parser p = {0};
    dc_error_t err;
    size_t off = 1;

    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] & 0x7f) + 1;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        const char *buf = (const char *)data + off;
        size_t pos = 0;
        while (pos < n) {
            struct dc_ctl_msg m;
            ssize_t u = dc_ctl_parse (&p, buf + pos, n - pos, &m, &err);
            if (u < 0)
                return 0; /* a bad frame: the stream ends here */
            if (u == 0 || (size_t)u > n - pos)
                abort ();
            if (m.type == DC_CTL_STDIN &&
                (m.data != buf + pos || m.len == 0 || m.len > (size_t)u))
                abort ();
            if (m.type == DC_CTL_SIGNAL && (m.sig <= 0 || m.sig >= NSIG))
                abort ();
            if (p.left > DC_CTL_STDIN_MAX || p.linelen >= DC_CTL_LINE_MAX)
                abort ();
            pos += (size_t)u;
        }
        off += n;
    }
    return 0;
}
