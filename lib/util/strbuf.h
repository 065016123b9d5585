/* strbuf.h - a growable text buffer with a maximum (curl dynbuf style)
 *
 *   struct dc_strbuf b = DC_STRBUF_INIT (1 << 20);
 *   dc_strbuf_str (&b, "rank ");
 *   dc_strbuf_printf (&b, "%d", r);
 *   char *s = dc_strbuf_take (&b);   // NULL: out of memory or over the max
 *
 * An append that finds no memory, or would make the text longer than max
 * bytes, marks the buffer failed: later appends do nothing and take gives
 * NULL (errno ENOMEM or E2BIG), so a caller checks once, at the end.
 * A NULL text or format fails the buffer too (EINVAL); a NULL buffer is
 * left alone (take: NULL, EINVAL).
 */
#ifndef DC_STRBUF_H
#define DC_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct dc_strbuf {
    char *s; /* NUL-terminated once anything was added */
    size_t len, cap;
    size_t max; /* the longest text allowed, in bytes */
    int err;    /* 0, or ENOMEM / E2BIG once failed */
};

#define DC_STRBUF_INIT(maxlen)                                                 \
    {                                                                          \
        .max = (maxlen)                                                        \
    }

void dc_strbuf_add (struct dc_strbuf *b, const char *s, size_t n);
void dc_strbuf_str (struct dc_strbuf *b, const char *s);
void dc_strbuf_printf (struct dc_strbuf *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Whether an append failed. */
bool dc_strbuf_failed (const struct dc_strbuf *b);

/* The text (malloc'd, "" when nothing was added; the buffer is left
 * empty), or NULL with errno when an append failed (the buffer freed). */
char *dc_strbuf_take (struct dc_strbuf *b);

/* Free the text and leave the buffer empty (its max kept). */
void dc_strbuf_free (struct dc_strbuf *b);

#endif
