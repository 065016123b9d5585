/* control.c - the control channel of a remote rank's agent (control.h) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/launch/control.h"

/* One whole line (without its newline) into *m. */
static int ctl_line (struct dc_ctl_parser *p, struct dc_ctl_msg *m,
                     dc_error_t *errp)
{
    const char *s = p->line;
    char *end;

    if (!strncmp (s, "signal ", 7)) {
        long sig = strtol (s + 7, &end, 10);
        if (end != s + 7 && !*end && sig > 0 && sig < NSIG) {
            m->type = DC_CTL_SIGNAL;
            m->sig = (int)sig;
        }
        return 0;
    }
    if (!strcmp (s, "stdin-eof")) {
        m->type = DC_CTL_STDIN_EOF;
        return 0;
    }
    if (!strncmp (s, "stdin ", 6)) {
        errno = 0;
        unsigned long n = strtoul (s + 6, &end, 10);
        if (s[6] < '0' || s[6] > '9' || *end || errno || n < 1 ||
            n > DC_CTL_STDIN_MAX) {
            errno = EPROTO;
            return errprintf (errp, "control channel: bad stdin frame '%.40s'",
                              s);
        }
        p->left = n;
    }
    return 0; /* anything else: skipped */
}

ssize_t dc_ctl_parse (struct dc_ctl_parser *p, const char *buf, size_t len,
                      struct dc_ctl_msg *m, dc_error_t *errp)
{
    size_t used = 0;

    *m = (struct dc_ctl_msg){.type = DC_CTL_NONE};
    if (!p || (!buf && len > 0)) {
        errno = EINVAL;
        return errprintf (errp, "control channel: no parser or buffer");
    }
    if (p->left > 0) {
        size_t n = len < p->left ? len : p->left;
        if (n > 0)
            *m = (struct dc_ctl_msg){
                .type = DC_CTL_STDIN, .data = buf, .len = n};
        p->left -= n;
        return (ssize_t)n;
    }
    while (used < len) {
        char c = buf[used++];
        if (c != '\n') {
            if (p->linelen + 1 >= sizeof (p->line))
                p->skipping = true;
            else if (!p->skipping)
                p->line[p->linelen++] = c;
            continue;
        }
        bool skip = p->skipping;
        p->line[p->linelen] = '\0';
        p->linelen = 0;
        p->skipping = false;
        if (!skip && ctl_line (p, m, errp) < 0)
            return -1;
        if (m->type != DC_CTL_NONE || p->left > 0)
            break;
    }
    return (ssize_t)used;
}

int dc_ctl_signal (char *out, size_t cap, int sig)
{
    if (!out || sig <= 0 || sig >= NSIG)
        return -1;
    int n = snprintf (out, cap, "signal %d\n", sig);
    return n > 0 && (size_t)n < cap ? n : -1;
}

int dc_ctl_stdin_header (char *out, size_t cap, size_t len)
{
    if (!out || len < 1 || len > DC_CTL_STDIN_MAX)
        return -1;
    int n = snprintf (out, cap, "stdin %zu\n", len);
    return n > 0 && (size_t)n < cap ? n : -1;
}

int dc_ctl_stdin_eof (char *out, size_t cap)
{
    if (!out)
        return -1;
    int n = snprintf (out, cap, "stdin-eof\n");
    return n > 0 && (size_t)n < cap ? n : -1;
}
