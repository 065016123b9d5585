/* error.h - error text for the user, flux-core errprintf style
 *
 * Functions that can fail return -1 (or NULL) with errno set and, where the
 * user needs the reason, fill a caller-supplied dc_error_t:
 *
 *     if (n > max)
 *         return errprintf (errp, "%s:%d:%d: too many slots", file, l, c);
 *
 * errp may be NULL.  errprintf() preserves errno and returns -1.
 */
#ifndef DC_ERROR_H
#define DC_ERROR_H

#include <stdarg.h>

#define DC_ERROR_SIZE 512

typedef struct {
    char text[DC_ERROR_SIZE];
} dc_error_t;

/* Format into errp->text (truncated to fit).  Returns -1, errno unchanged. */
int errprintf (dc_error_t *errp, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

int verrprintf (dc_error_t *errp, const char *fmt, va_list ap);

/* Clear errp (text becomes ""). */
void dc_error_clear (dc_error_t *errp);

/* Prefix errp->text with a formatted string (for adding context such as
 * "node03: " to an error that came from below).  Returns -1. */
int errprefix (dc_error_t *errp, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
