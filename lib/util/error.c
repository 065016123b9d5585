#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util/error.h"

int verrprintf (dc_error_t *errp, const char *fmt, va_list ap)
{
    int saved_errno = errno;

    if (errp) {
        int n = vsnprintf (errp->text, sizeof (errp->text), fmt, ap);
        if (n < 0)
            errp->text[0] = '\0';
    }
    errno = saved_errno;
    return -1;
}

int errprintf (dc_error_t *errp, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    verrprintf (errp, fmt, ap);
    va_end (ap);
    return -1;
}

void dc_error_clear (dc_error_t *errp)
{
    if (errp)
        errp->text[0] = '\0';
}

int errprefix (dc_error_t *errp, const char *fmt, ...)
{
    int saved_errno = errno;

    if (errp) {
        char prefix[DC_ERROR_SIZE];
        char old[DC_ERROR_SIZE];
        va_list ap;

        va_start (ap, fmt);
        vsnprintf (prefix, sizeof (prefix), fmt, ap);
        va_end (ap);
        size_t n = strlen (prefix);
        memcpy (old, errp->text, sizeof (old));
        old[sizeof (old) - 1] = '\0';
        memcpy (errp->text, prefix, n + 1);
        if (n < sizeof (errp->text) - 1) {
            size_t room = sizeof (errp->text) - 1 - n;
            size_t m = strnlen (old, room);
            memcpy (errp->text + n, old, m);
            errp->text[n + m] = '\0';
        }
    }
    errno = saved_errno;
    return -1;
}
