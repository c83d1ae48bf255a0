/*
 * Unit tests for expect.c: expect.status entries, substrings found across
 * chunk seams, regular expressions with their limits, headers, time and
 * certificate limits, and the verdict's order and first message.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "check_run.h"

static struct expect_spec *
spec_with_status(const char *const *texts)
{
	struct expect_spec *spec = expect_spec_new();
	char err[256];

	ck_assert_ptr_nonnull(spec);
	for (; *texts != NULL; texts++)
		ck_assert_msg(
		    expect_add_status_text(spec, *texts, err, sizeof(err)) == 0,
		    "%s: %s", *texts, err);
	return spec;
}

/* The verdict on status alone: the number of failures. */
static int
judge_status(struct expect_spec *spec, long status, char *msg)
{
	struct expect_answer a = {.status = status};
	struct expect_failure *f;
	int n = expect_verdict(spec, NULL, &a, &f, msg, 256);

	expect_failures_free(f, n > 0 ? (size_t)n : 0);
	return n;
}

START_TEST(status_entries)
{
	const char *const texts[] = {"2xx", "301", "400-404", NULL};
	struct expect_spec *spec = spec_with_status(texts);
	char msg[256];

	ck_assert_int_eq(judge_status(spec, 200, msg), 0);
	ck_assert_int_eq(judge_status(spec, 299, msg), 0);
	ck_assert_int_eq(judge_status(spec, 301, msg), 0);
	ck_assert_int_eq(judge_status(spec, 404, msg), 0);
	ck_assert_int_eq(judge_status(spec, 302, msg), 1);
	ck_assert_str_eq(msg, "status 302 not in [2xx, 301, 400-404]");
	ck_assert_int_eq(judge_status(spec, 405, msg), 1);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(status_default_rule)
{
	struct expect_spec *spec = expect_spec_new();
	char msg[256];

	ck_assert_int_eq(judge_status(spec, 399, msg), 0);
	ck_assert_int_eq(judge_status(spec, 200, msg), 0);
	ck_assert_int_eq(judge_status(spec, 500, msg), 1);
	ck_assert_str_eq(msg, "status 500 not in [200-399]");
	expect_spec_unref(spec);
}
END_TEST

static const char *const bad_status[] = {"", "2x", "2xxx", "0xx", "600-",
    "299-200", "abc", "2XX ", "099", "20", "1000", "200-2999"};

START_TEST(status_entries_refused)
{
	struct expect_spec *spec = expect_spec_new();
	char err[256] = "";

	ck_assert_int_eq(
	    expect_add_status_text(spec, bad_status[_i], err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no reason for %s", bad_status[_i]);
	ck_assert_int_eq(
	    expect_add_status_code(spec, 99, err, sizeof(err)), -1);
	ck_assert_int_eq(
	    expect_add_status_code(spec, 1000, err, sizeof(err)), -1);
	ck_assert_int_eq(
	    expect_add_status_code(spec, 599, err, sizeof(err)), 0);
	expect_spec_unref(spec);
}
END_TEST

/* Feed body in chunks of size step; the number of failures. */
static int
judge_body(struct expect_spec *spec, const char *body, size_t step, char *msg)
{
	struct expect_state *st = expect_state_new(spec, 1 << 20);
	struct expect_answer a = {.status = 200};
	struct expect_failure *f;
	size_t len = strlen(body), i;
	int n;

	ck_assert_ptr_nonnull(st);
	for (i = 0; i < len; i += step)
		ck_assert_int_eq(expect_feed_body(st, body + i,
		                     len - i < step ? len - i : step),
		    0);
	n = expect_verdict(spec, st, &a, &f, msg, 256);
	expect_failures_free(f, n > 0 ? (size_t)n : 0);
	expect_state_free(st);
	return n;
}

START_TEST(substrings_across_every_seam)
{
	struct expect_spec *spec = expect_spec_new();
	const char *body = "status: ok; version 1.2.3; all good";
	char err[256], msg[256];
	size_t step;

	ck_assert_int_eq(expect_add_text(spec, EXPECT_BODY_CONTAINS,
	                     "version 1.2.3", 13, err, sizeof(err)),
	    0);
	ck_assert_int_eq(expect_add_text(spec, EXPECT_BODY_CONTAINS, "ok", 2,
	                     err, sizeof(err)),
	    0);
	ck_assert_int_eq(expect_add_text(spec, EXPECT_BODY_NOT_CONTAINS,
	                     "DEGRADED", 8, err, sizeof(err)),
	    0);
	for (step = 1; step <= strlen(body); step++)
		ck_assert_msg(judge_body(spec, body, step, msg) == 0,
		    "step %zu: %s", step, msg);
	for (step = 1; step <= 9; step++) {
		ck_assert_int_eq(
		    judge_body(spec, "ok, DEGRADED mode", step, msg), 2);
		ck_assert_str_eq(
		    msg, "body does not contain \"version 1.2.3\"");
	}
	ck_assert_int_eq(judge_body(spec, "v1.2.3 ok DEGRADED", 3, msg), 2);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(regexes)
{
	struct expect_spec *spec = expect_spec_new();
	const char *re = "\"status\":\\s*\"(ok|up)\"";
	char err[256], msg[256];

	ck_assert_int_eq(expect_add_regex(spec, EXPECT_BODY_REGEX, re,
	                     strlen(re), err, sizeof(err)),
	    0);
	ck_assert_int_eq(expect_add_regex(spec, EXPECT_BODY_NOT_REGEX,
	                     "(?i)error", 9, err, sizeof(err)),
	    0);
	ck_assert_int_eq(judge_body(spec, "{\"status\": \"up\"}", 3, msg), 0);
	ck_assert_int_eq(judge_body(spec, "{\"status\": \"down\"}", 5, msg), 1);
	ck_assert_str_eq(
	    msg, "body does not match /\"status\":\\s*\"(ok|up)\"/");
	ck_assert_int_eq(
	    judge_body(spec, "{\"status\": \"ok\"} ERROR", 4, msg), 1);
	ck_assert_str_eq(msg, "body matches /(?i)error/");
	/* bytes that are not UTF-8 are a subject, not an error */
	ck_assert_int_eq(
	    judge_body(spec, "\xff\xfe{\"status\":\"ok\"}\xc3", 2, msg), 0);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(bad_regex_is_refused)
{
	struct expect_spec *spec = expect_spec_new();
	char err[256];

	ck_assert_int_eq(expect_add_regex(spec, EXPECT_BODY_REGEX, "(a", 2, err,
	                     sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "body_regex") != NULL &&
	                  strstr(err, "offset 2") != NULL,
	    "%s", err);
	ck_assert_int_eq(
	    expect_add_header(spec, "X", "[z-a]", 5, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "headers") != NULL, "%s", err);
	expect_spec_unref(spec);
}
END_TEST

/* A pattern that backtracks forever hits the limit and fails its check. */
START_TEST(regex_limit_fails_the_check)
{
	struct expect_spec *spec = expect_spec_new();
	char err[256], msg[256], body[64];

	memset(body, 'a', sizeof(body) - 2);
	body[sizeof(body) - 2] = 'b';
	body[sizeof(body) - 1] = '\0';
	ck_assert_int_eq(expect_add_regex(spec, EXPECT_BODY_NOT_REGEX,
	                     "^(a|aa)+$", 9, err, sizeof(err)),
	    0);
	ck_assert_int_eq(judge_body(spec, body, 7, msg), 1);
	ck_assert_msg(strstr(msg, "match limit") != NULL, "%s", msg);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(headers_last_value_and_missing)
{
	struct expect_spec *spec = expect_spec_new();
	struct expect_state *st;
	struct expect_answer a = {.status = 200};
	struct expect_failure *f;
	char err[256], msg[256];
	int n;

	ck_assert_int_eq(expect_add_header(spec, "Content-Type",
	                     "^application/json", 17, err, sizeof(err)),
	    0);
	ck_assert_int_eq(
	    expect_add_header(spec, "X-Version", "^2\\.", 4, err, sizeof(err)),
	    0);
	ck_assert(expect_wants_headers(spec));
	ck_assert_str_eq(expect_header_name(spec, 1), "X-Version");
	ck_assert_ptr_null(expect_header_name(spec, 2));
	st = expect_state_new(spec, 1024);
	expect_feed_header(st, "content-type: text/html\r\n", 25);
	expect_feed_header(st, "Content-Type:  application/json; x\r\n", 36);
	n = expect_verdict(spec, st, &a, &f, msg, sizeof(msg));
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(f[0].kind, EXPECT_HEADERS);
	ck_assert_uint_eq(f[0].entry, 1);
	ck_assert_ptr_null(f[0].actual_str);
	ck_assert_str_eq(msg, "header X-Version is missing");
	expect_failures_free(f, (size_t)n);
	expect_state_new_hop(st); /* a redirect: the last hop counts */
	expect_feed_header(st, "X-Version: 1.9\r\n", 16);
	n = expect_verdict(spec, st, &a, &f, msg, sizeof(msg));
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(f[1].actual_str, "1.9");
	expect_failures_free(f, (size_t)n);
	expect_state_free(st);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(limits_and_order)
{
	const char *const texts[] = {"2xx", NULL};
	struct expect_spec *spec = spec_with_status(texts);
	struct expect_answer a = {.status = 301,
	    .total_ms = 4123.4,
	    .has_cert = true,
	    .cert_days_left = 3.5};
	struct expect_failure *f;
	char msg[256];
	int n;

	expect_set_max_ms(spec, 200);
	expect_set_cert_days_left(spec, 5);
	n = expect_verdict(spec, NULL, &a, &f, msg, sizeof(msg));
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(f[0].kind, EXPECT_STATUS);
	ck_assert_int_eq(f[1].kind, EXPECT_MAX_MS);
	ck_assert_int_eq(f[2].kind, EXPECT_CERT_DAYS_LEFT);
	ck_assert(f[2].actual_num == 3.5);
	ck_assert_str_eq(msg, "status 301 not in [2xx]");
	expect_failures_free(f, (size_t)n);
	a.status = 204;
	a.has_cert = false; /* plain http: nothing to check */
	n = expect_verdict(spec, NULL, &a, &f, msg, sizeof(msg));
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(msg, "total 4123.4 ms is above max_ms 200");
	expect_failures_free(f, (size_t)n);
	expect_spec_unref(spec);
}
END_TEST

START_TEST(names_and_references)
{
	struct expect_spec *spec = expect_spec_new();

	ck_assert_str_eq(expect_name(EXPECT_BODY_NOT_REGEX), "body_not_regex");
	ck_assert_str_eq(expect_name(EXPECT_CERT_DAYS_LEFT), "cert_days_left");
	ck_assert_ptr_eq(expect_spec_ref(spec), spec);
	expect_spec_unref(spec);
	ck_assert(!expect_wants_body(spec));
	expect_spec_unref(spec);
	expect_spec_unref(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("expect");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, status_entries);
	tcase_add_test(tc, status_default_rule);
	tcase_add_loop_test(tc, status_entries_refused, 0,
	    sizeof(bad_status) / sizeof(bad_status[0]));
	tcase_add_test(tc, substrings_across_every_seam);
	tcase_add_test(tc, regexes);
	tcase_add_test(tc, bad_regex_is_refused);
	tcase_add_test(tc, regex_limit_fails_the_check);
	tcase_add_test(tc, headers_last_value_and_missing);
	tcase_add_test(tc, limits_and_order);
	tcase_add_test(tc, names_and_references);
	suite_add_tcase(s, tc);
	return check_run(s);
}
