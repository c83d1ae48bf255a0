/*
 * metrics: counters and histograms of the daemon's work, rendered in the
 * Prometheus text exposition format.  Every update and the rendering run
 * on the loop thread (fetch outcomes are counted when their job comes
 * back), so the counters need no atomics; gauges, the process' own
 * figures among them, are read at render time.
 */
#ifndef FANOUTD_METRICS_H
#define FANOUTD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "fetch.h"

struct pool_stats;

/* A request was answered with this HTTP status. */
void metrics_request(int status);
/* A fetch completed (ok or not). */
void metrics_fetch(const struct fetch_result *result);
/* A pool job came back: it waited ms milliseconds for a worker. */
void metrics_queue_wait(double ms);
/*
 * The config file was loaded (ok: at start-up or on SIGHUP) or a reload
 * failed and the running config stays (!ok).
 */
void metrics_config_loaded(bool ok);

struct metrics_gauges {
	size_t queued, parked, running, threads, max_threads, inflight_requests;
};

/*
 * value as a label value of the text format: backslash, double quote and
 * newline escaped.  A heap string; NULL on allocation failure.
 */
char *metrics_label_value(const char *value);

/* The whole exposition as a heap string; NULL on allocation failure. */
char *metrics_render(const struct metrics_gauges *gauges);

#endif
