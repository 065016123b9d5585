/* clock.c - the one monotonic clock (clock.h) */
#include "lib/util/clock.h"

double dc_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double dc_now_ms (void)
{
    return dc_now () * 1e3;
}

void dc_deadline (struct timespec *ts, long ms)
{
    clock_gettime (CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
