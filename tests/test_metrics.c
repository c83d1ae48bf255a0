/*
 * metrics.c: label values escaped as the Prometheus text format asks,
 * the exposition's lines for what was counted (histograms cumulative,
 * the reload gauges) and the process metrics against what the kernel
 * says.  The counters are global: every check compares a rendering with
 * one made before, so the tests hold in any order, forked or not.
 */
#include <sys/resource.h>
#include <sys/time.h>

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "metrics.h"
#include "check_run.h"

static void
assert_escaped(const char *value, const char *want)
{
	char *got = metrics_label_value(value);

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(label_values_are_escaped)
{
	assert_escaped("", "");
	assert_escaped("200", "200");
	assert_escaped("a\\b", "a\\\\b");
	assert_escaped("say \"hi\"", "say \\\"hi\\\"");
	assert_escaped("two\nlines", "two\\nlines");
	assert_escaped("\\\"\n\\", "\\\\\\\"\\n\\\\");
	/* nothing else is touched: tabs, CR, UTF-8 */
	assert_escaped("\t\r\xc3\xa9{}=,", "\t\r\xc3\xa9{}=,");
}
END_TEST

/* The exposition as lines, for strstr() of a whole line. */
static char *
render_lines(void)
{
	struct metrics_gauges g = {.queued = 3, .threads = 2};
	char *text = metrics_render(&g), *lines;

	ck_assert_ptr_nonnull(text);
	lines = malloc(strlen(text) + 2);
	ck_assert_ptr_nonnull(lines);
	lines[0] = '\n';
	memcpy(lines + 1, text, strlen(text) + 1);
	free(text);
	return lines;
}

/* Counted requests are labelled code="...", the Prometheus convention. */
START_TEST(requests_are_counted_by_code)
{
	struct fetch_result r = {.error = FETCH_E_TIMEOUT};
	char *text;

	metrics_request(200);
	metrics_request(200);
	metrics_request(503);
	metrics_fetch(&r);
	text = render_lines();
	ck_assert_ptr_nonnull(
	    strstr(text, "\nfanoutd_requests_total{code=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "\nfanoutd_requests_total{code=\"503\"} 1\n"));
	ck_assert_ptr_null(strstr(text, "{status="));
	ck_assert_ptr_nonnull(
	    strstr(text, "\nfanoutd_fetch_errors_total{code=\"timeout\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "\nfanoutd_fetches_total{result=\"failed\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(
	    text, "\nfanoutd_fetch_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nfanoutd_queue_depth 3\n"));
	free(text);
}
END_TEST

/*
 * Every line is a HELP or TYPE line of a fanoutd_ or process_ family, or
 * a sample: name{label="value"} number or name number.
 */
START_TEST(every_line_is_help_type_or_a_sample)
{
	char *text = render_lines(), *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *value = strrchr(line, ' ');
		bool comment = strncmp(line, "# HELP ", 7) == 0 ||
		               strncmp(line, "# TYPE ", 7) == 0;
		const char *name = comment ? line + 7 : line;

		ck_assert_msg(strncmp(name, "fanoutd_", 8) == 0 ||
		                  strncmp(name, "process_", 8) == 0,
		    "%s", line);
		if (comment)
			continue;
		ck_assert_msg(value != NULL && value[1] != '\0', "%s", line);
		ck_assert_msg(strtod(value + 1, NULL) >= 0, "%s", line);
		if (strchr(line, '{') != NULL)
			ck_assert_msg(
			    value[-1] == '}' && value[-2] == '"', "%s", line);
	}
	free(text);
}
END_TEST

/* The value of the sample line that starts with sample; NAN if none. */
static double
sample_value(const char *lines, const char *sample)
{
	char *want;
	const char *at;
	double v = NAN;

	ck_assert_int_ne(asprintf(&want, "\n%s ", sample), -1);
	if ((at = strstr(lines, want)) != NULL)
		v = strtod(at + strlen(want), NULL);
	free(want);
	return v;
}

/* value of sample now less its value in before. */
static double
grew(const char *before, const char *after, const char *sample)
{
	double a = sample_value(after, sample),
	       b = sample_value(before, sample);

	ck_assert_msg(!isnan(a) && !isnan(b), "no sample %s", sample);
	return a - b;
}

static const struct {
	const char *le;
	double grows;
} wait_buckets[] = {
    {"0.0001", 1},
    {"0.00025", 1},
    {"0.0005", 2},
    {"0.001", 3},
    {"0.0025", 3},
    {"0.005", 4},
    {"0.01", 4},
    {"0.025", 4},
    {"0.05", 4},
    {"0.1", 4},
    {"0.25", 5},
    {"0.5", 5},
    {"1", 5},
    {"2.5", 5},
    {"5", 5},
    {"10", 5},
    {"30", 5},
    {"+Inf", 6},
};

/*
 * Six waits, two of them exactly on a bound (le: "less or equal") and
 * one beyond the last: cumulative buckets in order, +Inf, _sum, _count.
 */
START_TEST(queue_wait_histogram_is_cumulative)
{
	static const double waits_ms[] = {0.05, 0.3, 1, 3, 250, 40000};
	char *before = render_lines(), *after, name[96];
	const char *at, *prev;
	size_t i;

	for (i = 0; i < sizeof(waits_ms) / sizeof(waits_ms[0]); i++)
		metrics_queue_wait(waits_ms[i]);
	after = render_lines();
	prev = strstr(after, "\n# TYPE fanoutd_queue_wait_seconds histogram\n");
	ck_assert_ptr_nonnull(prev);
	for (i = 0; i < sizeof(wait_buckets) / sizeof(wait_buckets[0]); i++) {
		snprintf(name, sizeof(name),
		    "fanoutd_queue_wait_seconds_bucket{le=\"%s\"}",
		    wait_buckets[i].le);
		ck_assert_double_eq_tol(
		    grew(before, after, name), wait_buckets[i].grows, 1e-9);
		at = strstr(after, name);
		ck_assert_msg(at > prev, "%s out of order", name);
		prev = at;
	}
	/* +Inf, then _sum, then _count, each on the next line */
	ck_assert_ptr_nonnull(prev = strchr(prev, '\n'));
	ck_assert_int_eq(
	    strncmp(prev, "\nfanoutd_queue_wait_seconds_sum ", 32), 0);
	ck_assert_ptr_nonnull(prev = strchr(prev + 1, '\n'));
	ck_assert_int_eq(
	    strncmp(prev, "\nfanoutd_queue_wait_seconds_count ", 34), 0);
	ck_assert_double_eq_tol(
	    grew(before, after, "fanoutd_queue_wait_seconds_sum"), 40.25435,
	    1e-5);
	ck_assert_double_eq_tol(
	    grew(before, after, "fanoutd_queue_wait_seconds_count"), 6, 1e-9);
	free(before);
	free(after);
}
END_TEST

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define RELOAD_OK "fanoutd_config_last_reload_successful"
#define RELOAD_AT "fanoutd_config_last_reload_success_timestamp_seconds"

/* A failed load sets 0 and keeps the time; a good one sets 1 and now. */
START_TEST(reload_gauges_follow_the_loads)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	double t0 = wall_now(), first, t1;
	char *text;

	metrics_config_loaded(true);
	t1 = wall_now();
	text = render_lines();
	ck_assert_ptr_nonnull(strstr(text, "\n# TYPE " RELOAD_OK " gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n# TYPE " RELOAD_AT " gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n" RELOAD_OK " 1\n"));
	first = sample_value(text, RELOAD_AT);
	ck_assert_msg(first >= t0 - 1e-6 && first <= t1 + 1e-6,
	    "timestamp %f not within [%f, %f]", first, t0, t1);
	free(text);

	metrics_config_loaded(false);
	text = render_lines();
	ck_assert_ptr_nonnull(strstr(text, "\n" RELOAD_OK " 0\n"));
	ck_assert_double_eq(sample_value(text, RELOAD_AT), first);
	free(text);

	nanosleep(&pause, NULL);
	metrics_config_loaded(true);
	text = render_lines();
	ck_assert_ptr_nonnull(strstr(text, "\n" RELOAD_OK " 1\n"));
	ck_assert_double_gt(sample_value(text, RELOAD_AT), first + 0.004);
	free(text);
}
END_TEST

/* The type line of family, e.g. "gauge"; asserts there is one. */
static void
assert_type(const char *lines, const char *family, const char *type)
{
	char *want;

	ck_assert_int_ne(asprintf(&want, "\n# TYPE %s %s\n", family, type), -1);
	ck_assert_msg(strstr(lines, want) != NULL, "no %s", want);
	free(want);
}

/*
 * This process' start in seconds since the epoch, as the Prometheus
 * client libraries compute it: /proc/stat's btime plus the start tick
 * of /proc/self/stat (field 22).  NAN when /proc/stat is hidden.
 */
static double
start_time_from_proc(void)
{
	char buf[4096], *p;
	unsigned long long btime = 0, start;
	FILE *f;
	size_t n;
	int i;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return NAN;
	while (fgets(buf, sizeof(buf), f) != NULL &&
	       sscanf(buf, "btime %llu", &btime) != 1)
		;
	fclose(f);
	ck_assert_ptr_nonnull(f = fopen("/proc/self/stat", "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(p = strrchr(buf, ')'));
	for (i = 2; i < 22; i++) /* to the space before field 22 */
		ck_assert_ptr_nonnull(p = strchr(p + 1, ' '));
	ck_assert_int_eq(sscanf(p, "%llu", &start), 1);
	ck_assert_uint_gt(btime, 0);
	return (double)btime + (double)start / sysconf(_SC_CLK_TCK);
}

static double
cpu_now(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Memory, start time and CPU time: types, and values the kernel agrees to. */
START_TEST(process_metrics_match_the_kernel)
{
	char *before = render_lines(), *after;
	double start = sample_value(before, "process_start_time_seconds");
	double want = start_time_from_proc(), until = cpu_now() + 0.1;
	volatile unsigned long spin = 0;

	assert_type(before, "process_cpu_seconds_total", "counter");
	assert_type(before, "process_start_time_seconds", "gauge");
	assert_type(before, "process_virtual_memory_bytes", "gauge");
	assert_type(before, "process_resident_memory_bytes", "gauge");
	ck_assert_double_gt(
	    sample_value(before, "process_resident_memory_bytes"), 100e3);
	ck_assert_double_ge(
	    sample_value(before, "process_virtual_memory_bytes"),
	    sample_value(before, "process_resident_memory_bytes"));
	ck_assert_double_le(start, wall_now());
	ck_assert_double_gt(start, wall_now() - 3600);
	if (!isnan(want)) /* the clocks give what btime gives */
		ck_assert_double_eq_tol(start, want, 1e-3);
	while (cpu_now() < until) /* 100 ms of CPU time */
		spin++;
	after = render_lines();
	ck_assert_double_ge(
	    grew(before, after, "process_cpu_seconds_total"), 0.05);
	ck_assert_double_eq(
	    sample_value(after, "process_start_time_seconds"), start);
	free(before);
	free(after);
}
END_TEST

/* Descriptors open below limit, asking each one (not /proc). */
static int
fds_open_below(int limit)
{
	int fd, n = 0;

	for (fd = 0; fd < limit; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * process_open_fds is the number of descriptors open while it is made
 * (not counting the one that reads /proc/self/fd); process_max_fds is
 * the soft RLIMIT_NOFILE.
 */
START_TEST(process_fds_follow_the_process)
{
	struct rlimit saved, lower;
	char *before, *after;
	int fds[3], i, open_before;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	ck_assert_uint_gt(saved.rlim_cur, 64);
	lower = saved;
	lower.rlim_cur = saved.rlim_cur > 4096 ? 4096 : saved.rlim_cur - 1;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lower), 0);
	open_before = fds_open_below((int)lower.rlim_cur);
	before = render_lines();
	for (i = 0; i < 3; i++)
		ck_assert_int_ge(fds[i] = dup(STDERR_FILENO), 0);
	after = render_lines();
	for (i = 0; i < 3; i++)
		close(fds[i]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_type(after, "process_open_fds", "gauge");
	assert_type(after, "process_max_fds", "gauge");
	ck_assert_double_eq(
	    sample_value(before, "process_open_fds"), open_before);
	ck_assert_double_eq(grew(before, after, "process_open_fds"), 3);
	ck_assert_double_eq(
	    sample_value(after, "process_max_fds"), (double)lower.rlim_cur);
	free(before);
	free(after);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, label_values_are_escaped);
	tcase_add_test(tc, requests_are_counted_by_code);
	tcase_add_test(tc, every_line_is_help_type_or_a_sample);
	tcase_add_test(tc, queue_wait_histogram_is_cumulative);
	tcase_add_test(tc, reload_gauges_follow_the_loads);
	tcase_add_test(tc, process_metrics_match_the_kernel);
	tcase_add_test(tc, process_fds_follow_the_process);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(metrics_suite());
}
