/* progress.h - the progress line of infer and train, as text
 *
 *   "dcrun: WHAT: D/T rows (P%), R rows/s, ETA E[, EXTRA]"
 *   "dcrun: WHAT: D/T rows, R rows/s, took E[, EXTRA]"       (the last one)
 *
 * E is "12s", "3m05s", "1h02m", or "?" while the rate is unknown.  Only the
 * text and when it is due: the CLI writes it (redrawn in place on a
 * terminal).  Times are seconds on one clock (dc_now) passed in, so that the
 * line is a function of its inputs.
 */
#ifndef DC_PROGRESS_H
#define DC_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

struct dc_progress {
    const char *what; /* borrowed: "infer" */
    size_t total;     /* rows */
    double t0, last;  /* the start, the last line (0: none yet) */
    bool tty;         /* due every 0.2 s, else every second */
};

void dc_progress_init (struct dc_progress *p, bool tty, const char *what,
                       size_t total, double now);

/* Whether a line is due at now. */
bool dc_progress_due (const struct dc_progress *p, double now);

/* The line for done rows at now (extra: NULL or more to say; final: the
 * last one) into buf, cut to len - 1 bytes; now becomes the last line's
 * time.  Returns the line's length in buf. */
int dc_progress_line (struct dc_progress *p, double now, size_t done,
                      const char *extra, bool final, char *buf, size_t len);

#endif
