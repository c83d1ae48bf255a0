/*
 * render.c: the exact JSON text of results, summaries and error bodies.
 * Comparing whole dumped strings pins the key order, the nulls, the
 * number formats and the rounding at once.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "fetch.h"
#include "render.h"
#include "request.h"

/* A growing buffer for render_dump's callback. */
struct sink {
	char text[4096];
	size_t len;
};

static int
sink_emit(const char *data, size_t size, void *arg)
{
	struct sink *sink = arg;

	if (size >= sizeof(sink->text) - sink->len)
		return -1;
	memcpy(sink->text + sink->len, data, size);
	sink->len += size;
	sink->text[sink->len] = '\0';
	return 0;
}

/* Dump value (taking the reference) and compare with want. */
static void
assert_dump(json_t *value, const char *want)
{
	struct sink sink = {.len = 0};

	ck_assert_ptr_nonnull(value);
	ck_assert_int_eq(render_dump(value, sink_emit, &sink), 0);
	ck_assert_str_eq(sink.text, want);
	json_decref(value);
}

/* The text render_summary writes. */
static void
assert_summary(const struct summary *s, const char *want)
{
	struct sink sink = {.len = 0};

	ck_assert_int_eq(render_summary(s, sink_emit, &sink), 0);
	ck_assert_str_eq(sink.text, want);
}

/* The text render_result writes for item index. */
static void
assert_result(size_t index, const struct fetch_spec *spec,
    const struct fetch_result *r, const char *want)
{
	struct sink sink = {.len = 0};

	ck_assert_int_eq(render_result(index, spec, r, sink_emit, &sink), 0);
	ck_assert_str_eq(sink.text, want);
}

/* render_result's text, parsed back: every answer must be valid JSON. */
static json_t *
result_json(
    size_t index, const struct fetch_spec *spec, const struct fetch_result *r)
{
	struct sink sink = {.len = 0};
	json_error_t error;
	json_t *o;

	ck_assert_int_eq(render_result(index, spec, r, sink_emit, &sink), 0);
	o = json_loads(sink.text, 0, &error);
	ck_assert_msg(o != NULL, "not JSON: %s: %s", error.text, sink.text);
	return o;
}

static struct fetch_result
result_ok(void)
{
	struct fetch_result r = {
	    .error = FETCH_OK,
	    .status = 200,
	    .bytes = 1234,
	    .redirects = 1,
	    .effective_url = "http://a.example/b",
	    .remote_ip = "127.0.0.1",
	    .time = {0.0104, 0.2, 0.1, 0, 3.2, 0.0996, 3.6124},
	};

	return r;
}

START_TEST(success_has_every_field_in_order)
{
	struct fetch_spec spec = {.url = "http://a.example/"};
	struct fetch_result r = result_ok();

	spec.id = json_string("x1");
	assert_result(0, &spec, &r,
	    "{\"index\":0,\"url\":\"http://a.example/\",\"id\":\"x1\","
	    "\"status\":200,\"ok\":true,\"error\":null,\"bytes\":1234,"
	    "\"redirects\":1,\"effective_url\":\"http://a.example/b\","
	    "\"remote_ip\":\"127.0.0.1\",\"time_ms\":{\"queue\":0.01,"
	    "\"dns\":0.2,\"connect\":0.1,\"tls\":0.0,\"ttfb\":3.2,"
	    "\"transfer\":0.1,\"total\":3.612}}");
	json_decref(spec.id);
}
END_TEST

START_TEST(failure_has_nulls_and_an_error_object)
{
	struct fetch_spec spec = {.url = "http://b.example/"};
	struct fetch_result r = {
	    .error = FETCH_E_TIMEOUT,
	    .message = "Operation timed out after 1000 milliseconds",
	    .time = {.queue = 0.5, .total = 1000.25},
	};

	assert_result(7, &spec, &r,
	    "{\"index\":7,\"url\":\"http://b.example/\",\"status\":null,"
	    "\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":"
	    "\"Operation timed out after 1000 milliseconds\"},\"bytes\":0,"
	    "\"redirects\":0,\"effective_url\":null,\"remote_ip\":null,"
	    "\"time_ms\":{\"queue\":0.5,\"dns\":0.0,\"connect\":0.0,"
	    "\"tls\":0.0,\"ttfb\":0.0,\"transfer\":0.0,\"total\":1000.25}}");
}
END_TEST

START_TEST(invalid_item_has_null_url_and_empty_message)
{
	struct fetch_spec spec = {.url = NULL};
	struct fetch_result r = {.error = FETCH_E_INVALID_URL};

	spec.id = json_pack("{s:[i,n]}", "k", 1);
	assert_result(2, &spec, &r,
	    "{\"index\":2,\"url\":null,\"id\":{\"k\":[1,null]},"
	    "\"status\":null,\"ok\":false,\"error\":{\"code\":"
	    "\"invalid_url\",\"message\":\"\"},\"bytes\":0,\"redirects\":0,"
	    "\"effective_url\":null,\"remote_ip\":null,\"time_ms\":{"
	    "\"queue\":0.0,\"dns\":0.0,\"connect\":0.0,\"tls\":0.0,"
	    "\"ttfb\":0.0,\"transfer\":0.0,\"total\":0.0}}");
	json_decref(spec.id);
}
END_TEST

START_TEST(ids_from_the_request_are_echoed)
{
	static const char body[] =
	    "[{\"url\": \"http://a.example/\", \"id\": [\"a\", 1]},"
	    " {\"url\": \"file:///etc/passwd\", \"id\": 42},"
	    " \"http://b.example/\"]";
	struct config *cfg = config_default();
	struct request_error err;
	struct request_spec *spec;
	struct fetch_result r = {.error = FETCH_E_UNSUPPORTED_SCHEME};
	json_t *o;

	ck_assert_ptr_nonnull(cfg);
	spec = request_parse(cfg, "application/json", body, strlen(body), &err);
	ck_assert_ptr_nonnull(spec);
	o = result_json(0, &spec->items[0], &r);
	assert_dump(json_incref(json_object_get(o, "id")), "[\"a\",1]");
	json_decref(o);
	o = result_json(1, &spec->items[1], &r);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 42);
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "url")), "file:///etc/passwd");
	json_decref(o);
	/* no id given: no "id" key at all */
	o = result_json(2, &spec->items[2], &r);
	ck_assert_ptr_null(json_object_get(o, "id"));
	json_decref(o);
	request_spec_free(spec);
	config_unref(cfg);
}
END_TEST

/* The value of key in the rendered result for r. */
static json_t *
result_field(const struct fetch_result *r, const char *key)
{
	struct fetch_spec spec = {.url = "http://a.example/"};
	json_t *o = result_json(0, &spec, r), *v;

	ck_assert_ptr_nonnull(o);
	v = json_incref(json_object_get(o, key));
	json_decref(o);
	ck_assert_ptr_nonnull(v);
	return v;
}

static bool
result_is_ok(long status, enum fetch_error error)
{
	struct fetch_result r = {.error = error, .status = status};
	json_t *ok = result_field(&r, "ok");
	bool b = json_is_true(ok);

	ck_assert(json_is_boolean(ok));
	json_decref(ok);
	return b;
}

START_TEST(ok_means_completed_with_2xx_or_3xx)
{
	ck_assert(result_is_ok(200, FETCH_OK));
	ck_assert(result_is_ok(204, FETCH_OK));
	ck_assert(result_is_ok(302, FETCH_OK));
	ck_assert(result_is_ok(399, FETCH_OK));
	ck_assert(!result_is_ok(199, FETCH_OK));
	ck_assert(!result_is_ok(400, FETCH_OK));
	ck_assert(!result_is_ok(404, FETCH_OK));
	ck_assert(!result_is_ok(503, FETCH_OK));
	ck_assert(!result_is_ok(0, FETCH_OK));
	/* a status, then the transfer failed (body too large) */
	ck_assert(!result_is_ok(200, FETCH_E_TOO_LARGE));
}
END_TEST

START_TEST(a_status_with_an_error_shows_both)
{
	struct fetch_result r = {
	    .error = FETCH_E_TOO_LARGE, .status = 200, .bytes = 2048};
	json_t *status = result_field(&r, "status");
	json_t *error = result_field(&r, "error");

	ck_assert_int_eq(json_integer_value(status), 200);
	ck_assert_str_eq(
	    json_string_value(json_object_get(error, "code")), "too_large");
	json_decref(status);
	json_decref(error);
}
END_TEST

START_TEST(every_error_has_its_code)
{
	static const char *codes[FETCH_E_COUNT] = {NULL, "invalid_url",
	    "unsupported_scheme", "blocked", "dns", "connect", "tls", "timeout",
	    "too_large", "redirect_limit", "canceled", "other"};
	int e;

	for (e = FETCH_OK + 1; e < FETCH_E_COUNT; e++) {
		struct fetch_result r = {.error = e, .message = "m"};
		json_t *error = result_field(&r, "error");

		ck_assert_str_eq(
		    json_string_value(json_object_get(error, "code")),
		    codes[e]);
		ck_assert_str_eq(
		    json_string_value(json_object_get(error, "message")), "m");
		json_decref(error);
	}
}
END_TEST

START_TEST(times_are_rounded_to_three_decimals)
{
	struct fetch_result r = {
	    .time = {2.71828, 0.0004, 0.0126, NAN, INFINITY, 59999.9999,
	        123456.7894},
	};

	assert_dump(result_field(&r, "time_ms"),
	    "{\"queue\":2.718,\"dns\":0.0,\"connect\":0.013,\"tls\":0.0,"
	    "\"ttfb\":0.0,\"transfer\":60000.0,\"total\":123456.789}");
}
END_TEST

START_TEST(outside_text_with_bad_utf8_stays_valid_json)
{
	struct fetch_spec spec = {.url = "http://a.example/"};
	struct fetch_result r = {
	    .error = FETCH_E_OTHER,
	    .message = "bad \xff byte",
	    .effective_url = "http://a.example/\xc3",
	    .remote_ip = "::1",
	};
	json_t *o = result_json(0, &spec, &r);

	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(o, "error"), "message")),
	    "bad ? byte");
	ck_assert_str_eq(json_string_value(json_object_get(o, "effective_url")),
	    "http://a.example/?");
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "remote_ip")), "::1");
	json_decref(o);
}
END_TEST

/* A random valid UTF-8 string: ASCII, escapes, controls, DEL, 2-4 bytes. */
static void
random_text(char *buf, size_t size, unsigned int *seed)
{
	static const char *const pieces[] = {"a", "/", "\"", "\\", "\n", "\t",
	    "\x01", "\x1f", "\x7f", " ", "%", "\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80", "?", "{", "}"};
	size_t len = 0, n = (size_t)(rand_r(seed) % 24), i, k;

	for (i = 0; i < n; i++) {
		const char *p =
		    pieces[rand_r(seed) % (sizeof(pieces) / sizeof(*pieces))];

		k = strlen(p);
		if (len + k >= size)
			break;
		memcpy(buf + len, p, k);
		len += k;
	}
	buf[len] = '\0';
}

static void
assert_member_str(json_t *o, const char *key, const char *want)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	ck_assert_str_eq(json_string_value(v), want);
}

/*
 * The answer's skeleton is written as text and only strings that need
 * escaping go through jansson: whatever the strings and numbers, the
 * text must parse back, with jansson, to exactly what went in.
 */
START_TEST(any_strings_and_numbers_round_trip_through_jansson)
{
	char url[128], eff[128], msg[128];
	unsigned int seed = 20261125;
	int i;

	for (i = 0; i < 5000; i++) {
		struct fetch_spec spec = {.url = url};
		struct fetch_result r = {
		    .error = i % 3 == 0 ? FETCH_E_CONNECT : FETCH_OK,
		    .status = rand_r(&seed) % 600,
		    .bytes = (int64_t)rand_r(&seed) * rand_r(&seed),
		    .redirects = rand_r(&seed) % 20,
		    .effective_url = eff,
		    .message = msg,
		    .remote_ip = "127.0.0.1",
		};
		json_t *o;

		random_text(url, sizeof(url), &seed);
		random_text(eff, sizeof(eff), &seed);
		random_text(msg, sizeof(msg), &seed);
		o = result_json((size_t)i, &spec, &r);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(o, "index")), i);
		assert_member_str(o, "url", url);
		assert_member_str(o, "effective_url", eff);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(o, "bytes")), r.bytes);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(o, "redirects")),
		    r.redirects);
		if (r.error != FETCH_OK)
			assert_member_str(
			    json_object_get(o, "error"), "message", msg);
		json_decref(o);
	}
}
END_TEST

static void
add(struct summary *s, long status, enum fetch_error error)
{
	struct fetch_result r = {.error = error, .status = status};

	summary_add(s, &r);
}

START_TEST(summary_counts_statuses_and_errors)
{
	struct summary s = {0};

	add(&s, 200, FETCH_OK);
	add(&s, 500, FETCH_OK);
	add(&s, 200, FETCH_OK);
	add(&s, 0, FETCH_E_TIMEOUT);
	add(&s, 404, FETCH_OK);
	add(&s, 302, FETCH_OK);
	add(&s, 0, FETCH_E_DNS);
	add(&s, 200, FETCH_E_TOO_LARGE);
	add(&s, 0, FETCH_E_TIMEOUT);
	s.elapsed_ms = 3.9004;
	ck_assert_uint_eq(s.total, 9);
	ck_assert_uint_eq(s.ok, 3);
	ck_assert_uint_eq(s.failed, 6);
	assert_summary(&s,
	    "{\"total\":9,\"ok\":3,\"failed\":6,\"status_counts\":{"
	    "\"200\":3,\"302\":1,\"404\":1,\"500\":1},\"error_counts\":{"
	    "\"dns\":1,\"timeout\":2,\"too_large\":1},\"elapsed_ms\":3.9}");
}
END_TEST

START_TEST(empty_summary_has_empty_counts)
{
	struct summary s = {0};

	assert_summary(&s,
	    "{\"total\":0,\"ok\":0,\"failed\":0,\"status_counts\":{},"
	    "\"error_counts\":{},\"elapsed_ms\":0.0}");
}
END_TEST

START_TEST(summary_ignores_statuses_out_of_range)
{
	struct summary s = {0};

	add(&s, 999, FETCH_OK);
	add(&s, -1, FETCH_OK);
	ck_assert_uint_eq(s.total, 2);
	ck_assert_uint_eq(s.failed, 2);
	assert_summary(&s,
	    "{\"total\":2,\"ok\":0,\"failed\":2,\"status_counts\":{},"
	    "\"error_counts\":{},\"elapsed_ms\":0.0}");
}
END_TEST

/* More distinct statuses than the inline list holds, reserved or not. */
START_TEST(summary_counts_many_statuses)
{
	static const char want[] =
	    "{\"total\":12,\"ok\":12,\"failed\":0,\"status_counts\":{"
	    "\"200\":2,\"201\":1,\"202\":1,\"203\":1,\"204\":1,\"205\":1,"
	    "\"206\":1,\"207\":1,\"208\":1,\"209\":1,\"210\":1},"
	    "\"error_counts\":{},\"elapsed_ms\":0.0}";
	struct summary s = {0};
	int reserve, i;

	for (reserve = 0; reserve < 2; reserve++) {
		if (reserve)
			ck_assert_int_eq(summary_reserve(&s, 12), 0);
		for (i = 10; i >= 0; i--)
			add(&s, 200 + i, FETCH_OK);
		add(&s, 200, FETCH_OK);
		assert_summary(&s, want);
		summary_reset(&s);
	}
}
END_TEST

START_TEST(error_body_shape)
{
	char *text = render_error("invalid_json", "invalid JSON: x at line 1");

	ck_assert_str_eq(text, "{\"error\":{\"code\":\"invalid_json\","
	                       "\"message\":\"invalid JSON: x at line 1\"}}");
	free(text);
	text = render_error("not_found", NULL);
	ck_assert_str_eq(
	    text, "{\"error\":{\"code\":\"not_found\",\"message\":\"\"}}");
	free(text);
	/* jansson's error text may quote the client's invalid bytes */
	text = render_error("invalid_json", "near '\xff\"\n'");
	ck_assert_str_eq(text, "{\"error\":{\"code\":\"invalid_json\","
	                       "\"message\":\"near '?\\\"\\n'\"}}");
	free(text);
}
END_TEST

static int
emit_fails(const char *data, size_t size, void *arg)
{
	(void)data;
	(void)size;
	(void)arg;
	return -1;
}

START_TEST(dump_reports_a_failing_writer)
{
	json_t *o = json_pack("{s:i}", "a", 1);

	ck_assert_int_eq(render_dump(o, emit_fails, NULL), -1);
	ck_assert_int_eq(render_dump(NULL, emit_fails, NULL), -1);
	json_decref(o);
}
END_TEST

static Suite *
render_suite(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, success_has_every_field_in_order);
	tcase_add_test(tc, failure_has_nulls_and_an_error_object);
	tcase_add_test(tc, invalid_item_has_null_url_and_empty_message);
	tcase_add_test(tc, ids_from_the_request_are_echoed);
	tcase_add_test(tc, ok_means_completed_with_2xx_or_3xx);
	tcase_add_test(tc, a_status_with_an_error_shows_both);
	tcase_add_test(tc, every_error_has_its_code);
	tcase_add_test(tc, times_are_rounded_to_three_decimals);
	tcase_add_test(tc, outside_text_with_bad_utf8_stays_valid_json);
	tcase_add_test(tc, any_strings_and_numbers_round_trip_through_jansson);
	tcase_add_test(tc, summary_counts_statuses_and_errors);
	tcase_add_test(tc, empty_summary_has_empty_counts);
	tcase_add_test(tc, summary_ignores_statuses_out_of_range);
	tcase_add_test(tc, summary_counts_many_statuses);
	tcase_add_test(tc, error_body_shape);
	tcase_add_test(tc, dump_reports_a_failing_writer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(render_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
