/* strbuf.c - a growable text buffer with a maximum */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/strbuf.h"

/* Room for n more bytes and the NUL; 0, or -1 with the buffer failed. */
static int reserve (struct dc_strbuf *b, size_t n)
{
    if (!b || b->err)
        return -1;
    if (n > b->max || b->len > b->max - n) {
        b->err = E2BIG;
        return -1;
    }
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc (b->s, cap);
    if (!p) {
        b->err = ENOMEM;
        return -1;
    }
    b->s = p;
    b->cap = cap;
    return 0;
}

void dc_strbuf_add (struct dc_strbuf *b, const char *s, size_t n)
{
    if (b && !s && !b->err)
        b->err = EINVAL;
    if (reserve (b, n) < 0)
        return;
    memcpy (b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void dc_strbuf_str (struct dc_strbuf *b, const char *s)
{
    dc_strbuf_add (b, s, s ? strlen (s) : 0);
}

void dc_strbuf_printf (struct dc_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    if (!b || b->err)
        return;
    if (!fmt) {
        b->err = EINVAL;
        return;
    }
    va_start (ap, fmt);
    n = vsnprintf (small, sizeof (small), fmt, ap);
    va_end (ap);
    if (n < 0) {
        b->err = ENOMEM; /* vsnprintf's only failure here: no memory */
        return;
    }
    if ((size_t)n < sizeof (small)) {
        dc_strbuf_add (b, small, (size_t)n);
        return;
    }
    if (reserve (b, (size_t)n) < 0)
        return;
    va_start (ap, fmt);
    vsnprintf (b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end (ap);
    b->len += (size_t)n;
}

bool dc_strbuf_failed (const struct dc_strbuf *b)
{
    return !b || b->err != 0;
}

char *dc_strbuf_take (struct dc_strbuf *b)
{
    if (!b) {
        errno = EINVAL;
        return NULL;
    }
    char *s = b->s;
    int err = b->err;

    b->s = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    if (err) {
        free (s);
        errno = err;
        return NULL;
    }
    return s ? s : strdup ("");
}

void dc_strbuf_free (struct dc_strbuf *b)
{
    if (!b)
        return;
    free (b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
