/* log.h - leveled log messages; the CLI installs the handler that prints.
 *
 * lib/ never prints: dc_log() hands the formatted message to the handler the
 * program installed with dc_log_set_handler(), or drops it when there is none.
 */
#ifndef DC_LOG_H
#define DC_LOG_H

#include <stdarg.h>

enum dc_log_level {
    DC_LOG_ERR = 0,
    DC_LOG_WARN = 1,
    DC_LOG_INFO = 2,
    DC_LOG_DEBUG = 3,
};

typedef void (*dc_log_f) (enum dc_log_level level, const char *msg, void *arg);

/* Install handler (NULL drops messages).  Not thread-safe: call at start. */
void dc_log_set_handler (dc_log_f fn, void *arg);

/* Messages above level are dropped before formatting. Default DC_LOG_WARN. */
void dc_log_set_level (enum dc_log_level level);
enum dc_log_level dc_log_get_level (void);

void dc_log (enum dc_log_level level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void dc_vlog (enum dc_log_level level, const char *fmt, va_list ap);

#define dc_debug(...) dc_log (DC_LOG_DEBUG, __VA_ARGS__)
#define dc_info(...) dc_log (DC_LOG_INFO, __VA_ARGS__)
#define dc_warn(...) dc_log (DC_LOG_WARN, __VA_ARGS__)

#endif
