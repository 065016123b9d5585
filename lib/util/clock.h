/* clock.h - the one clock for timeouts, phases, reports and traces
 *
 * CLOCK_MONOTONIC: never jumps with the wall clock (NTP, an admin's date),
 * the same clock in every process of a host (so local ranks' times line up
 * with the head's without an offset), and what condition variables wait on
 * (pthread_condattr_setclock).
 */
#ifndef DC_CLOCK_H
#define DC_CLOCK_H

#include <time.h>

/* Seconds, and milliseconds, on the monotonic clock. */
double dc_now (void);
double dc_now_ms (void);

/* *ts = now + ms on the monotonic clock (for timed waits). */
void dc_deadline (struct timespec *ts, long ms);

#endif
