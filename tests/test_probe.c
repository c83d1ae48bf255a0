/*
 * probe.c: GET /probe's Prometheus text.  One target's whole text is
 * compared exactly, which pins the families, their order, the help
 * texts and the number formats; the rest checks the target label (its
 * escaping and repair), the families that may be absent, and that no
 * value is ever NaN or infinite.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "test_sink.h"
#include "expect.h"
#include "fetch.h"
#include "probe.h"
#include "render.h"
#include "request.h"

static int
failing_emit(const char *data, size_t size, void *arg)
{
	return -1;
}

/* The text of n targets (items and results side by side). */
static void
render(struct sink *sink, struct request_item *items,
    struct fetch_result *results, size_t n)
{
	struct probe_target targets[8];
	struct render_out out;
	size_t i;

	ck_assert_uint_le(n, 8);
	for (i = 0; i < n; i++) {
		targets[i].item = &items[i];
		targets[i].result = &results[i];
	}
	sink->len = 0;
	sink->text[0] = '\0';
	render_out_init(&out, sink_emit, sink);
	probe_render(&out, targets, n);
	ck_assert_int_eq(render_out_flush(&out), 0);
}

/* A completed plain-http fetch: 200, HTTP/1.1, 2 redirects. */
static void
ok_result(struct fetch_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->bytes = 1234;
	r->redirects = 2;
	r->http_version = 11;
	snprintf(r->remote_ip, sizeof(r->remote_ip), "127.0.0.1");
	r->time = (struct fetch_timing){.queue = 0.5,
	    .dns = 0.25,
	    .connect = 1.5,
	    .tls = 0,
	    .ttfb = 12.125,
	    .transfer = 3,
	    .total = 17.0004};
}

/* How many times needle occurs in haystack. */
static int
count(const char *haystack, const char *needle)
{
	int n = 0;

	for (; (haystack = strstr(haystack, needle)) != NULL; haystack++)
		n++;
	return n;
}

START_TEST(one_target_has_every_family_and_no_target_label)
{
	struct request_item item = {.url = "http://a.example/"};
	struct fetch_result r;
	struct sink sink;

	ok_result(&r);
	render(&sink, &item, &r, 1);
	ck_assert_str_eq(sink.text,
	    "# HELP probe_dns_lookup_time_seconds Returns the time taken for "
	    "probe dns lookup in seconds\n"
	    "# TYPE probe_dns_lookup_time_seconds gauge\n"
	    "probe_dns_lookup_time_seconds 0.00025\n"
	    "# HELP probe_duration_seconds Returns how long the probe took to "
	    "complete in seconds\n"
	    "# TYPE probe_duration_seconds gauge\n"
	    "probe_duration_seconds 0.017\n"
	    "# HELP probe_failed_due_to_regex Indicates if probe failed due to "
	    "regex\n"
	    "# TYPE probe_failed_due_to_regex gauge\n"
	    "probe_failed_due_to_regex 0\n"
	    "# HELP probe_http_content_length Length of http content response\n"
	    "# TYPE probe_http_content_length gauge\n"
	    "probe_http_content_length 1234\n"
	    "# HELP probe_http_duration_seconds Duration of http request by "
	    "phase, summed over all redirects\n"
	    "# TYPE probe_http_duration_seconds gauge\n"
	    "probe_http_duration_seconds{phase=\"resolve\"} 0.00025\n"
	    "probe_http_duration_seconds{phase=\"connect\"} 0.0015\n"
	    "probe_http_duration_seconds{phase=\"tls\"} 0\n"
	    "probe_http_duration_seconds{phase=\"processing\"} 0.012125\n"
	    "probe_http_duration_seconds{phase=\"transfer\"} 0.003\n"
	    "# HELP probe_http_redirects The number of redirects\n"
	    "# TYPE probe_http_redirects gauge\n"
	    "probe_http_redirects 2\n"
	    "# HELP probe_http_ssl Indicates if SSL was used for the final "
	    "redirect\n"
	    "# TYPE probe_http_ssl gauge\n"
	    "probe_http_ssl 0\n"
	    "# HELP probe_http_status_code Response HTTP status code\n"
	    "# TYPE probe_http_status_code gauge\n"
	    "probe_http_status_code 200\n"
	    "# HELP probe_http_version Returns the version of HTTP of the "
	    "probe "
	    "response\n"
	    "# TYPE probe_http_version gauge\n"
	    "probe_http_version 1.1\n"
	    "# HELP probe_ip_protocol Specifies whether probe ip protocol is "
	    "IP4 "
	    "or IP6\n"
	    "# TYPE probe_ip_protocol gauge\n"
	    "probe_ip_protocol 4\n"
	    "# HELP probe_success Displays whether or not the probe was a "
	    "success\n"
	    "# TYPE probe_success gauge\n"
	    "probe_success 1\n");
}
END_TEST

START_TEST(an_https_target_has_its_certificate_expiry)
{
	struct request_item item = {.url = "https://a.example/"};
	struct fetch_result r;
	struct sink sink;

	ok_result(&r);
	r.http_version = 20;
	snprintf(r.remote_ip, sizeof(r.remote_ip), "::1");
	r.tls.used = true;
	r.tls.has_cert = true;
	r.tls.cert.not_after = 1798761600; /* 2027-01-01T00:00:00Z */
	render(&sink, &item, &r, 1);
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "# HELP probe_ssl_earliest_cert_expiry Returns last SSL chain "
	    "expiry in unixtime\n"
	    "# TYPE probe_ssl_earliest_cert_expiry gauge\n"
	    "probe_ssl_earliest_cert_expiry 1798761600\n"
	    "# HELP probe_success "));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_http_ssl 1\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_http_version 2\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_ip_protocol 6\n"));

	/* A failed handshake that still showed its (expired) certificate:
	 * no response, so no SSL, but the expiry is known. */
	memset(&r, 0, sizeof(r));
	r.error = FETCH_E_TLS;
	r.tls.used = true;
	r.tls.has_cert = true;
	r.tls.cert.not_after = 1000;
	render(&sink, &item, &r, 1);
	ck_assert_ptr_nonnull(
	    strstr(sink.text, "\nprobe_ssl_earliest_cert_expiry 1000\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_http_ssl 0\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_success 0\n"));
}
END_TEST

START_TEST(several_targets_label_every_sample_and_share_headers)
{
	struct request_item items[3] = {{.url = "http://a.example/x?a=1&b=2"},
	    {.url = "https://b.example/"}, {.url = "http://c.example:1/"}};
	struct fetch_result r[3];
	struct sink sink;
	const char *line, *end;
	int samples = 0;

	ok_result(&r[0]);
	ok_result(&r[1]);
	r[1].tls.used = r[1].tls.has_cert = true;
	r[1].tls.cert.not_after = 2000000000;
	memset(&r[2], 0, sizeof(r[2]));
	r[2].error = FETCH_E_CONNECT;
	render(&sink, items, r, 3);
	/* Every family once: 12 of them, the expiry included. */
	ck_assert_int_eq(count(sink.text, "# HELP "), 12);
	ck_assert_int_eq(count(sink.text, "# TYPE "), 12);
	for (line = sink.text; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		if (line[0] == '#')
			continue;
		samples++;
		ck_assert_msg(
		    memmem(line, (size_t)(end - line), "target=\"", 8) != NULL,
		    "a sample without a target label: %.*s", (int)(end - line),
		    line);
	}
	/* 10 one-sample families and 5 phases for 3 targets, and one
	 * expiry. */
	ck_assert_int_eq(samples, 3 * (10 + 5) + 1);
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "probe_http_duration_seconds{phase=\"tls\",target=\"http://"
	    "c.example:1/\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "\nprobe_ssl_earliest_cert_expiry{target=\"https://b.example/\"} "
	    "2000000000\n"
	    "# HELP probe_success"));
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "\nprobe_success{target=\"http://a.example/x?a=1&b=2\"} 1\n"
	    "probe_success{target=\"https://b.example/\"} 1\n"
	    "probe_success{target=\"http://c.example:1/\"} 0\n"));
}
END_TEST

START_TEST(without_a_certificate_the_expiry_family_is_absent)
{
	struct request_item items[2] = {{.url = "http://a/"}, {.url = "b"}};
	struct fetch_result r[2];
	struct sink sink;

	ok_result(&r[0]);
	ok_result(&r[1]);
	r[1].tls.used = true; /* https, but no certificate was sent */
	render(&sink, items, r, 2);
	ck_assert_ptr_null(strstr(sink.text, "probe_ssl_earliest_cert_expiry"));
	ck_assert_int_eq(count(sink.text, "# HELP "), 11);
}
END_TEST

START_TEST(target_labels_are_escaped_and_repaired)
{
	struct request_item items[5] = {{.url = "http://h/a\"b\\c\nd"},
	    {.url = "http://h/\xff\xc3(z"}, {.url = "http://h/caf\xc3\xa9"},
	    {.url = NULL}, {.url = "\\\\\"\n"}};
	struct fetch_result r[5];
	struct sink sink;
	size_t i;

	for (i = 0; i < 5; i++)
		ok_result(&r[i]);
	render(&sink, items, r, 5);
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "\nprobe_success{target=\"http://h/a\\\"b\\\\c\\nd\"} 1\n"
	    "probe_success{target=\"http://h/\xef\xbf\xbd\xef\xbf\xbd(z\"} 1\n"
	    "probe_success{target=\"http://h/caf\xc3\xa9\"} 1\n"
	    "probe_success{target=\"\"} 1\n"
	    "probe_success{target=\"\\\\\\\\\\\"\\n\"} 1\n"));
	/* No raw newline inside a label: every line is a comment or a
	 * sample of a probe_ family. */
	for (const char *line = sink.text; *line != '\0';
	     line = strchr(line, '\n') + 1)
		ck_assert(strncmp(line, "# ", 2) == 0 ||
		          strncmp(line, "probe_", 6) == 0);
}
END_TEST

/* Every sample value reads back as a finite number >= 0. */
static void
assert_values_finite(const char *text)
{
	const char *line, *end, *value;
	char *stop;
	double v;

	for (line = text; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		if (line[0] == '#')
			continue;
		value = memrchr(line, ' ', (size_t)(end - line));
		ck_assert_ptr_nonnull(value);
		v = strtod(value + 1, &stop);
		ck_assert_msg(stop == end && isfinite(v) && v >= 0,
		    "bad value: %.*s", (int)(end - line), line);
	}
}

START_TEST(values_are_never_nan_nor_infinite_nor_negative)
{
	struct request_item item = {.url = "http://a/"};
	struct fetch_result r;
	struct sink sink;

	ok_result(&r);
	r.time.dns = NAN;
	r.time.connect = INFINITY;
	r.time.tls = -INFINITY;
	r.time.ttfb = -3;
	r.time.transfer = DBL_MAX; /* in microseconds, it overflows */
	r.time.total = -NAN;
	render(&sink, &item, &r, 1);
	assert_values_finite(sink.text);
	ck_assert_ptr_null(strstr(sink.text, "nan"));
	ck_assert_ptr_null(strstr(sink.text, "inf"));
	ck_assert_ptr_nonnull(strstr(sink.text,
	    "probe_http_duration_seconds{phase=\"resolve\"} 0\n"
	    "probe_http_duration_seconds{phase=\"connect\"} 0\n"
	    "probe_http_duration_seconds{phase=\"tls\"} 0\n"
	    "probe_http_duration_seconds{phase=\"processing\"} 0\n"
	    "probe_http_duration_seconds{phase=\"transfer\"} "
	    "1.79769313e+305\n"));
	ck_assert_ptr_nonnull(
	    strstr(sink.text, "\nprobe_duration_seconds 0\n"));

	/* A fetch that never started: zeros throughout. */
	memset(&r, 0, sizeof(r));
	r.error = FETCH_E_INVALID_URL;
	render(&sink, &item, &r, 1);
	assert_values_finite(sink.text);
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_http_version 0\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_ip_protocol 0\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_success 0\n"));
}
END_TEST

START_TEST(http_versions_read_as_blackbox_reads_them)
{
	static const struct {
		int version;
		const char *line;
	} cases[] = {{10, "\nprobe_http_version 1\n"},
	    {11, "\nprobe_http_version 1.1\n"},
	    {20, "\nprobe_http_version 2\n"}, {30, "\nprobe_http_version 3\n"}};
	struct request_item item = {.url = "http://a/"};
	struct fetch_result r;
	struct sink sink;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ok_result(&r);
		r.http_version = cases[i].version;
		render(&sink, &item, &r, 1);
		ck_assert_ptr_nonnull(strstr(sink.text, cases[i].line));
	}
}
END_TEST

START_TEST(failed_body_and_header_checks_are_failed_due_to_regex)
{
	struct expect_failure status = {.kind = EXPECT_STATUS};
	struct expect_failure both[2] = {
	    {.kind = EXPECT_STATUS}, {.kind = EXPECT_BODY_REGEX}};
	struct expect_failure header = {.kind = EXPECT_HEADERS};
	struct request_item item = {.url = "http://a/"};
	struct fetch_result r;
	struct sink sink;

	ok_result(&r);
	r.checked = true;
	r.error = FETCH_E_CHECK_FAILED;
	r.failed = &status;
	r.nfailed = 1;
	render(&sink, &item, &r, 1);
	ck_assert_ptr_nonnull(
	    strstr(sink.text, "\nprobe_failed_due_to_regex 0\n"));
	ck_assert_ptr_nonnull(strstr(sink.text, "\nprobe_success 0\n"));
	r.failed = both;
	r.nfailed = 2;
	render(&sink, &item, &r, 1);
	ck_assert_ptr_nonnull(
	    strstr(sink.text, "\nprobe_failed_due_to_regex 1\n"));
	r.failed = &header;
	r.nfailed = 1;
	render(&sink, &item, &r, 1);
	ck_assert_ptr_nonnull(
	    strstr(sink.text, "\nprobe_failed_due_to_regex 1\n"));
}
END_TEST

START_TEST(a_failing_writer_is_reported)
{
	struct request_item item = {.url = "http://a/"};
	struct fetch_result r;
	struct probe_target t = {&item, &r};
	struct render_out out;

	ok_result(&r);
	render_out_init(&out, failing_emit, NULL);
	probe_render(&out, &t, 1);
	ck_assert_int_eq(render_out_flush(&out), -1);
}
END_TEST

static Suite *
probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, one_target_has_every_family_and_no_target_label);
	tcase_add_test(tc, an_https_target_has_its_certificate_expiry);
	tcase_add_test(
	    tc, several_targets_label_every_sample_and_share_headers);
	tcase_add_test(tc, without_a_certificate_the_expiry_family_is_absent);
	tcase_add_test(tc, target_labels_are_escaped_and_repaired);
	tcase_add_test(tc, values_are_never_nan_nor_infinite_nor_negative);
	tcase_add_test(tc, http_versions_read_as_blackbox_reads_them);
	tcase_add_test(
	    tc, failed_body_and_header_checks_are_failed_due_to_regex);
	tcase_add_test(tc, a_failing_writer_is_reported);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(probe_suite());
}
