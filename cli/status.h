/* status.h - a lib/run status -> the exit code and its message, once */
#ifndef DC_CLI_STATUS_H
#define DC_CLI_STATUS_H

#include "cli.h"
#include "lib/run/status.h"
#include "lib/util/error.h"

/* The exit code of status (sig: the signal of DC_STATUS_SIGNAL). */
int cli_status_code (int status, int sig);

/* Print err (when it has text) as "dcrun: SUBJECT: text", or "dcrun: text"
 * when subject is NULL ("hint: " lines
 * after a newline as they are) and return the exit code of status.  A run
 * that succeeded may still say something. */
int cli_status (const char *subject, int status, int sig,
                const dc_error_t *err);

#endif
