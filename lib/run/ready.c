/* ready.c - what a rank tells the hub in READY (ready.h) */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/run/ready.h"

int dc_ready_send (struct dc_comm *c, const struct dc_wire_ready *rd,
                   dc_error_t *errp)
{
    char *rs = dc_wire_ready_encode (rd);

    if (!rs)
        return errprintf (errp, "out of memory");
    int rc = dc_comm_send (c, DC_COMM_HUB, DC_MSG_READY, rs, strlen (rs), errp);
    free (rs);
    return rc < 0 ? -2 : 0;
}

void dc_ready_why (char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (why, len, fmt, ap);
    va_end (ap);
}

int dc_ready_probe (const struct dc_wire_io *io, char *why, size_t len)
{
    char tok[80];
    ssize_t n = -1;
    int fd = open (io->probe, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd >= 0) {
        n = pread (fd, tok, sizeof (tok) - 1, 0);
        close (fd);
    }
    if (fd < 0 || n < 0) {
        dc_ready_why (why, len, "%s: %s (the output's folder is not shared)",
                      io->probe, strerror (errno));
        return -1;
    }
    tok[n] = '\0';
    if (strcmp (tok, io->token)) {
        dc_ready_why (why, len,
                      "%s: another file than the head's (the output's folder "
                      "is not shared)",
                      io->probe);
        return -1;
    }
    return 0;
}
