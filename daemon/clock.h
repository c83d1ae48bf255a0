/*
 * clock: the daemon's one notion of time.  Monotonic nanoseconds for
 * every duration and deadline (never the wall clock, which jumps), and
 * the wall clock only where a human or a certificate reads it.
 */
#ifndef FANOUTD_CLOCK_H
#define FANOUTD_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_MS 1000000ull

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_now_ns(void);
/* Milliseconds from a to b (b >= a), as a double. */
double clock_ms_between(uint64_t a, uint64_t b);
/* The CLOCK_MONOTONIC instant ms milliseconds from now, as a timespec. */
void clock_deadline_ts(struct timespec *ts, int ms);

#endif
