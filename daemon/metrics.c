/*
 * Prometheus text format, version 0.0.4: every family has HELP and TYPE
 * lines, every label value is escaped (backslash, double quote and
 * newline, as the format asks), histogram buckets are cumulative and end
 * with +Inf, followed by _sum and _count.
 *
 * The process_* families are read from /proc/self at render time: a
 * handful of small reads on the loop thread, none of which can block on
 * anything but the kernel.
 */
#include <sys/resource.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h"
#include "metrics.h"

/*
 * Bucket bounds, in seconds.  A fetch takes milliseconds to its timeout;
 * a queue wait is a few microseconds on an idle pool and grows to tens
 * of seconds when the pool is saturated.
 */
static const double metrics_fetch_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double metrics_wait_bounds[] = {0.0001, 0.00025, 0.0005, 0.001,
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

#define NELEM(a)            (sizeof(a) / sizeof((a)[0]))
#define METRICS_MAX_BUCKETS 20
_Static_assert(NELEM(metrics_fetch_bounds) <= METRICS_MAX_BUCKETS &&
                   NELEM(metrics_wait_bounds) <= METRICS_MAX_BUCKETS,
    "METRICS_MAX_BUCKETS is too small");

struct histogram {
	const char *name, *help;
	const double *bounds; /* ascending; +Inf is implied */
	size_t nbounds;
	unsigned long long counts[METRICS_MAX_BUCKETS]; /* not cumulative */
	unsigned long long count;
	double sum;
};

/* Everything counted since start-up; loop thread only. */
static struct {
	unsigned long long requests[600]; /* by HTTP status */
	unsigned long long fetches_ok, fetches_failed;
	unsigned long long errors[FETCH_E_COUNT];
	struct histogram fetch_duration, queue_wait;
	bool config_ok;
	double config_loaded_at; /* seconds since the epoch; 0: never */
} metrics_totals = {
    .fetch_duration =
        {
            .name = "fanoutd_fetch_duration_seconds",
            .help = "Time of each fetch, all redirect hops, without "
                    "queueing.",
            .bounds = metrics_fetch_bounds,
            .nbounds = NELEM(metrics_fetch_bounds),
        },
    .queue_wait =
        {
            .name = "fanoutd_queue_wait_seconds",
            .help = "Time of each fetch from admission to a worker "
                    "taking it up.",
            .bounds = metrics_wait_bounds,
            .nbounds = NELEM(metrics_wait_bounds),
        },
};

/* An observation lands in the first bucket whose bound is >= it. */
static void
histogram_observe(struct histogram *h, double v)
{
	size_t i;

	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	if (i < h->nbounds)
		h->counts[i]++;
	h->count++;
	h->sum += v;
}

void
metrics_request(int status)
{
	if (status >= 0 && status < 600)
		metrics_totals.requests[status]++;
}

void
metrics_fetch(const struct fetch_result *r)
{
	if (fetch_result_ok(r))
		metrics_totals.fetches_ok++;
	else
		metrics_totals.fetches_failed++;
	if (r->error != FETCH_OK)
		metrics_totals.errors[r->error]++;
	histogram_observe(
	    &metrics_totals.fetch_duration, r->time.total / 1000.0);
}

void
metrics_queue_wait(double ms)
{
	histogram_observe(&metrics_totals.queue_wait, ms / 1000.0);
}

void
metrics_config_loaded(bool ok)
{
	struct timespec now;

	metrics_totals.config_ok = ok;
	if (ok && clock_gettime(CLOCK_REALTIME, &now) == 0)
		metrics_totals.config_loaded_at =
		    (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* The process' own figures; the have_ flags say which /proc gave. */
struct metrics_process {
	bool have_stat, have_open_fds, have_max_fds;
	double cpu_seconds, start_time; /* start: seconds since the epoch */
	unsigned long long virtual_bytes, resident_bytes;
	unsigned long long open_fds, max_fds;
};

/* Up to size - 1 bytes of a small /proc file, NUL-terminated. */
static int
metrics_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (len < size - 1) {
		if ((n = read(fd, buf + len, size - 1 - len)) > 0)
			len += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	close(fd);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

/*
 * The wall-clock time of boot in whole seconds, which is what /proc/stat
 * says as btime: the kernel keeps it as the realtime clock less the
 * boottime clock, so two clock reads give it without /proc/stat, which
 * the unit hides (ProcSubset=pid) and which is costly to make on a big
 * machine.  Whole seconds, as btime, keep process_start_time_seconds the
 * same from scrape to scrape.
 */
static long long
metrics_boot_time(void)
{
	struct timespec boot, real;

	clock_gettime(CLOCK_BOOTTIME, &boot);
	clock_gettime(CLOCK_REALTIME, &real);
	return (long long)real.tv_sec - boot.tv_sec -
	       (real.tv_nsec < boot.tv_nsec ? 1 : 0);
}

/*
 * Fields 14 (utime) to 24 (rss) of /proc/self/stat, see proc(5): times
 * in clock ticks (the start since boot), rss in pages.  The command name
 * in field 2 may hold spaces and parentheses: fields count from the
 * last ')'.
 */
static void
metrics_read_stat(struct metrics_process *p)
{
	char buf[2048], *s, *end;
	unsigned long long f[25];
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int i;

	if (tick <= 0 || page <= 0 ||
	    metrics_read_file("/proc/self/stat", buf, sizeof(buf)) == -1 ||
	    (s = strrchr(buf, ')')) == NULL || s[1] != ' ' || s[2] == '\0')
		return;
	s += 3; /* past ") " and the state letter, field 3 */
	for (i = 4; i < 25; i++) {
		errno = 0;
		f[i] = strtoull(s, &end, 10);
		if (end == s || errno != 0)
			return;
		s = end;
	}
	p->cpu_seconds = (double)(f[14] + f[15]) / tick;
	p->start_time = (double)metrics_boot_time() + (double)f[22] / tick;
	p->virtual_bytes = f[23];
	p->resident_bytes = f[24] * (unsigned long long)page;
	p->have_stat = true;
}

/* Entries of /proc/self/fd but the one opendir() itself holds. */
static void
metrics_count_fds(struct metrics_process *p)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	char self[16];

	if (dir == NULL)
		return;
	snprintf(self, sizeof(self), "%d", dirfd(dir));
	p->open_fds = 0;
	errno = 0;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, self) != 0)
			p->open_fds++;
	p->have_open_fds = errno == 0;
	closedir(dir);
}

static void
metrics_process_read(struct metrics_process *p)
{
	struct rlimit rl;

	memset(p, 0, sizeof(*p));
	metrics_read_stat(p);
	metrics_count_fds(p);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		p->max_fds = (unsigned long long)rl.rlim_cur;
		p->have_max_fds = true;
	}
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
metrics_render_histogram(struct text *t, const struct histogram *h)
{
	unsigned long long cumulative = 0;
	char name[64], le[32];
	size_t i;

	metrics_family(t, h->name, "histogram", h->help);
	snprintf(name, sizeof(name), "%s_bucket", h->name);
	for (i = 0; i < h->nbounds; i++) {
		cumulative += h->counts[i];
		snprintf(le, sizeof(le), "%g", h->bounds[i]);
		metrics_sample(t, name, "le", le, cumulative);
	}
	metrics_sample(t, name, "le", "+Inf", h->count);
	text_add(t, "%s_sum %.6f\n", h->name, h->sum);
	text_add(t, "%s_count %llu\n", h->name, h->count);
}

static void
metrics_gauge(
    struct text *t, const char *name, const char *help, unsigned long long v)
{
	metrics_family(t, name, "gauge", help);
	text_add(t, "%s %llu\n", name, v);
}

/* A family of one sample without labels, its value a double. */
static void
metrics_scalar(struct text *t, const char *name, const char *type,
    const char *help, double v)
{
	metrics_family(t, name, type, help);
	text_add(t, "%s %.6f\n", name, v);
}

/* Named after Prometheus' own prometheus_config_last_reload_*. */
static void
metrics_render_config(struct text *t)
{
	metrics_gauge(t, "fanoutd_config_last_reload_successful",
	    "Whether the last configuration load (start-up or SIGHUP) "
	    "succeeded.",
	    metrics_totals.config_ok ? 1 : 0);
	metrics_scalar(t,
	    "fanoutd_config_last_reload_success_timestamp_seconds", "gauge",
	    "Time of the last successful configuration load, in seconds "
	    "since the epoch.",
	    metrics_totals.config_loaded_at);
}

/*
 * The process metrics of the Prometheus client libraries (names, types
 * and help as they export them), each left out when /proc cannot give it.
 */
static void
metrics_render_process(struct text *t)
{
	struct metrics_process p;

	metrics_process_read(&p);
	if (p.have_stat) {
		metrics_scalar(t, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.",
		    p.cpu_seconds);
		metrics_scalar(t, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.",
		    p.start_time);
		metrics_gauge(t, "process_virtual_memory_bytes",
		    "Virtual memory size in bytes.", p.virtual_bytes);
		metrics_gauge(t, "process_resident_memory_bytes",
		    "Resident memory size in bytes.", p.resident_bytes);
	}
	if (p.have_open_fds)
		metrics_gauge(t, "process_open_fds",
		    "Number of open file descriptors.", p.open_fds);
	if (p.have_max_fds)
		metrics_gauge(t, "process_max_fds",
		    "Maximum number of open file descriptors.", p.max_fds);
}

char *
metrics_render(const struct metrics_gauges *g)
{
	struct text t = {.cap = 4096};

	if ((t.buf = malloc(t.cap)) == NULL)
		return NULL;
	metrics_render_counters(&t);
	metrics_render_histogram(&t, &metrics_totals.fetch_duration);
	metrics_render_histogram(&t, &metrics_totals.queue_wait);
	metrics_gauge(&t, "fanoutd_queue_depth",
	    "Fetches waiting for a worker.", g->queued);
	metrics_gauge(&t, "fanoutd_queue_parked",
	    "Of those, fetches waiting for their host's turn "
	    "(fetch.max_per_host).",
	    g->parked);
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
	metrics_render_config(&t);
	metrics_render_process(&t);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	return t.buf;
}
