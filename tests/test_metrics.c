/*
 * metrics.c: label values escaped as the Prometheus text format asks,
 * and the exposition's lines for what was counted.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "metrics.h"

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

/* Every sample line is name{label="value"} number or name number. */
START_TEST(every_line_is_help_type_or_a_sample)
{
	char *text = render_lines(), *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *value = strrchr(line, ' ');

		if (strncmp(line, "# HELP fanoutd_", 15) == 0 ||
		    strncmp(line, "# TYPE fanoutd_", 15) == 0)
			continue;
		ck_assert_msg(strncmp(line, "fanoutd_", 8) == 0, "%s", line);
		ck_assert_msg(value != NULL && value[1] != '\0', "%s", line);
		ck_assert_msg(strtod(value + 1, NULL) >= 0, "%s", line);
		if (strchr(line, '{') != NULL)
			ck_assert_msg(
			    value[-1] == '}' && value[-2] == '"', "%s", line);
	}
	free(text);
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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
