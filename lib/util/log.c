#include <errno.h>
#include <stdio.h>

#include "lib/util/log.h"

static dc_log_f log_handler;
static void *log_arg;
static enum dc_log_level log_level = DC_LOG_WARN;

void dc_log_set_handler (dc_log_f fn, void *arg)
{
    log_handler = fn;
    log_arg = arg;
}

void dc_log_set_level (enum dc_log_level level)
{
    log_level = level;
}

enum dc_log_level dc_log_get_level (void)
{
    return log_level;
}

void dc_vlog (enum dc_log_level level, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char buf[1024];

    if (log_handler && level <= log_level) {
        vsnprintf (buf, sizeof (buf), fmt, ap);
        log_handler (level, buf, log_arg);
    }
    errno = saved_errno;
}

void dc_log (enum dc_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    dc_vlog (level, fmt, ap);
    va_end (ap);
}
