/*
 * metrics: counters and a histogram of the daemon's work, rendered in the
 * Prometheus text exposition format.  Every update and the rendering run
 * on the loop thread (fetch outcomes are counted when their job comes
 * back), so the counters need no atomics; gauges are read at render time.
 */
#ifndef FANOUTD_METRICS_H
#define FANOUTD_METRICS_H

#include <stddef.h>

#include "fetch.h"

struct pool_stats;

/* A request was answered with this HTTP status. */
void metrics_request(int status);
/* A fetch completed (ok or not). */
void metrics_fetch(const struct fetch_result *result);

struct metrics_gauges {
	size_t queued, running, threads, max_threads, inflight_requests;
};

/*
 * value as a label value of the text format: backslash, double quote and
 * newline escaped.  A heap string; NULL on allocation failure.
 */
char *metrics_label_value(const char *value);

/* The whole exposition as a heap string; NULL on allocation failure. */
char *metrics_render(const struct metrics_gauges *gauges);

#endif
