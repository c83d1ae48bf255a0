/*
 * Prometheus text format, version 0.0.4: every family has HELP and TYPE
 * lines, every label value is escaped (backslash, double quote and
 * newline, as the format asks), histogram buckets are cumulative and end
 * with +Inf, followed by _sum and _count.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconf.h"
#include "metrics.h"

/* Fetch duration buckets, in seconds. */
static const double metrics_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

/* Everything counted since start-up; loop thread only. */
static struct {
	unsigned long long requests[600]; /* by HTTP status */
	unsigned long long fetches_ok, fetches_failed;
	unsigned long long errors[FETCH_E_COUNT];
	unsigned long long buckets[NBUCKETS]; /* not cumulative */
	unsigned long long duration_count;
	double duration_sum;
} metrics_totals;

void
metrics_request(int status)
{
	if (status >= 0 && status < 600)
		metrics_totals.requests[status]++;
}

void
metrics_fetch(const struct fetch_result *r)
{
	double seconds = r->time.total / 1000.0;
	size_t i;

	if (fetch_result_ok(r))
		metrics_totals.fetches_ok++;
	else
		metrics_totals.fetches_failed++;
	if (r->error != FETCH_OK)
		metrics_totals.errors[r->error]++;
	for (i = 0; i < NBUCKETS && seconds > metrics_buckets[i]; i++)
		;
	if (i < NBUCKETS)
		metrics_totals.buckets[i]++;
	metrics_totals.duration_count++;
	metrics_totals.duration_sum += seconds;
}

/* A growing text buffer; on allocation failure it stays failed. */
struct text {
	char *buf;
	size_t len, cap;
	int failed;
};

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char *grown;
	int n;

	for (;;) {
		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1; /* before any realloc moves buf */
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		if ((grown = realloc(t->buf, t->cap * 2)) == NULL) {
			t->failed = 1;
			return;
		}
		t->buf = grown;
		t->cap *= 2;
	}
}

char *
metrics_label_value(const char *value)
{
	char *escaped = malloc(strlen(value) * 2 + 1), *q = escaped;

	if (escaped == NULL)
		return NULL;
	for (; *value != '\0'; value++) {
		if (*value == '\\' || *value == '"' || *value == '\n')
			*q++ = '\\';
		*q++ = *value == '\n' ? 'n' : *value;
	}
	*q = '\0';
	return escaped;
}

/* name{label="value"} count, with value escaped. */
static void
metrics_sample(struct text *t, const char *name, const char *label,
    const char *value, unsigned long long count)
{
	char *escaped = metrics_label_value(value);

	if (escaped == NULL) {
		t->failed = 1;
		return;
	}
	text_add(t, "%s{%s=\"%s\"} %llu\n", name, label, escaped, count);
	free(escaped);
}

static void
metrics_family(
    struct text *t, const char *name, const char *type, const char *help)
{
	text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_render_counters(struct text *t)
{
	char status[16];
	size_t i;

	metrics_family(t, "fanoutd_requests_total", "counter",
	    "HTTP requests answered, by status code.");
	for (i = 0; i < 600; i++) {
		if (metrics_totals.requests[i] == 0)
			continue;
		snprintf(status, sizeof(status), "%zu", i);
		metrics_sample(t, "fanoutd_requests_total", "code", status,
		    metrics_totals.requests[i]);
	}
	metrics_family(t, "fanoutd_fetches_total", "counter",
	    "Fetches completed, by result.");
	metrics_sample(t, "fanoutd_fetches_total", "result", "ok",
	    metrics_totals.fetches_ok);
	metrics_sample(t, "fanoutd_fetches_total", "result", "failed",
	    metrics_totals.fetches_failed);
	metrics_family(t, "fanoutd_fetch_errors_total", "counter",
	    "Failed fetches, by error code.");
	for (i = 1; i < FETCH_E_COUNT; i++)
		metrics_sample(t, "fanoutd_fetch_errors_total", "code",
		    fetch_error_code((enum fetch_error)i),
		    metrics_totals.errors[i]);
}

static void
metrics_render_histogram(struct text *t)
{
	unsigned long long cumulative = 0;
	char le[32];
	size_t i;

	metrics_family(t, "fanoutd_fetch_duration_seconds", "histogram",
	    "Time of each fetch, all redirect hops, without queueing.");
	for (i = 0; i < NBUCKETS; i++) {
		cumulative += metrics_totals.buckets[i];
		snprintf(le, sizeof(le), "%g", metrics_buckets[i]);
		metrics_sample(t, "fanoutd_fetch_duration_seconds_bucket", "le",
		    le, cumulative);
	}
	metrics_sample(t, "fanoutd_fetch_duration_seconds_bucket", "le", "+Inf",
	    metrics_totals.duration_count);
	text_add(t, "fanoutd_fetch_duration_seconds_sum %.6f\n",
	    metrics_totals.duration_sum);
	text_add(t, "fanoutd_fetch_duration_seconds_count %llu\n",
	    metrics_totals.duration_count);
}

static void
metrics_gauge(struct text *t, const char *name, const char *help, size_t v)
{
	metrics_family(t, name, "gauge", help);
	text_add(t, "%s %zu\n", name, v);
}

char *
metrics_render(const struct metrics_gauges *g)
{
	struct text t = {.cap = 4096};

	if ((t.buf = malloc(t.cap)) == NULL)
		return NULL;
	metrics_render_counters(&t);
	metrics_render_histogram(&t);
	metrics_gauge(&t, "fanoutd_queue_depth",
	    "Fetches waiting for a worker.", g->queued);
	metrics_gauge(
	    &t, "fanoutd_busy_workers", "Fetches running now.", g->running);
	metrics_gauge(&t, "fanoutd_worker_threads",
	    "Worker threads alive (started on demand).", g->threads);
	metrics_gauge(&t, "fanoutd_worker_threads_max",
	    "Most worker threads: workers.threads within the fd limit.",
	    g->max_threads);
	metrics_gauge(&t, "fanoutd_inflight_requests",
	    "Fan-outs admitted and not yet answered.", g->inflight_requests);
	metrics_family(&t, "fanoutd_build_info", "gauge",
	    "Always 1; the labels say which build runs.");
	metrics_sample(&t, "fanoutd_build_info", "version", PACKAGE_VERSION, 1);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	return t.buf;
}
