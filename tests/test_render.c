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
#include "expect.h"
#include "fetch.h"
#include "render.h"
#include "request.h"
#include "check_run.h"
#include "test_sink.h"

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
assert_result(size_t index, const struct request_item *spec,
    const struct fetch_result *r, const char *want)
{
	struct sink sink = {.len = 0};

	ck_assert_int_eq(render_result(index, spec, r, sink_emit, &sink), 0);
	ck_assert_str_eq(sink.text, want);
}

/* render_result's text, parsed back: every answer must be valid JSON. */
static json_t *
result_json(
    size_t index, const struct request_item *spec, const struct fetch_result *r)
{
	struct sink sink = {.len = 0};
	json_error_t error;
	json_t *o;

	ck_assert_int_eq(render_result(index, spec, r, sink_emit, &sink), 0);
	o = json_loads(sink.text, JSON_ALLOW_NUL, &error);
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
	    .http_version = 11,
	};

	return r;
}

START_TEST(success_has_every_field_in_order)
{
	struct request_item spec = {.url = (char *)("http://a.example/")};
	struct fetch_result r = result_ok();

	spec.id = json_string("x1");
	assert_result(0, &spec, &r,
	    "{\"index\":0,\"url\":\"http://a.example/\",\"id\":\"x1\","
	    "\"status\":200,\"ok\":true,\"error\":null,\"bytes\":1234,"
	    "\"redirects\":1,\"effective_url\":\"http://a.example/b\","
	    "\"remote_ip\":\"127.0.0.1\",\"time_ms\":{\"queue\":0.01,"
	    "\"dns\":0.2,\"connect\":0.1,\"tls\":0.0,\"ttfb\":3.2,"
	    "\"transfer\":0.1,\"total\":3.612,\"retry_wait\":0.0},\"http_"
	    "version\":\"1.1\","
	    "\"tls\":null,\"attempts\":1}");
	json_decref(spec.id);
}
END_TEST

/* Issue 10: the certificate of a refused connection, and why. */
START_TEST(a_tls_failure_has_its_reason_and_certificate)
{
	static char san[] = "c.example\0"
	                    "10.0.0.1\0"
	                    "::1";
	struct request_item spec = {.url = (char *)("https://c.example/")};
	struct fetch_result r = {
	    .error = FETCH_E_TLS,
	    .message = "SSL certificate problem: certificate has expired",
	    .time = {.connect = 0.5, .tls = 2.25, .total = 2.75},
	    .tls = {.used = true,
	        .has_cert = true,
	        .reason = TLS_REASON_EXPIRED,
	        .cert = {.subject = "CN=c.example,O=Ex \"1\"",
	            .issuer = "CN=CA",
	            .san = san,
	            .nsan = 3,
	            .serial = "2002",
	            .not_before = 1600000000,
	            .not_after = 1700000000,
	            .days_left = -3}},
	};

	assert_result(1, &spec, &r,
	    "{\"index\":1,\"url\":\"https://c.example/\",\"status\":null,"
	    "\"ok\":false,\"error\":{\"code\":\"tls\",\"message\":"
	    "\"SSL certificate problem: certificate has expired\","
	    "\"reason\":\"expired\"},\"bytes\":0,\"redirects\":0,"
	    "\"effective_url\":null,\"remote_ip\":null,\"time_ms\":{"
	    "\"queue\":0.0,\"dns\":0.0,\"connect\":0.5,\"tls\":2.25,"
	    "\"ttfb\":0.0,\"transfer\":0.0,\"total\":2.75,\"retry_wait\":0.0},"
	    "\"http_version\":null,\"tls\":{\"version\":null,"
	    "\"cipher\":null,\"verified\":false,\"cert\":{"
	    "\"subject\":\"CN=c.example,O=Ex \\\"1\\\"\",\"issuer\":\"CN=CA\","
	    "\"serial\":\"2002\",\"not_before\":\"2020-09-13T12:26:40Z\","
	    "\"not_after\":\"2023-11-14T22:13:20Z\",\"days_left\":-3,"
	    "\"san\":[\"c.example\",\"10.0.0.1\",\"::1\"]}},\"attempts\":1}");
	/* a tls error with no reason known says handshake */
	r.tls.reason = TLS_REASON_NONE;
	r.tls.has_cert = false;
	r.tls.used = false;
	assert_result(1, &spec, &r,
	    "{\"index\":1,\"url\":\"https://c.example/\",\"status\":null,"
	    "\"ok\":false,\"error\":{\"code\":\"tls\",\"message\":"
	    "\"SSL certificate problem: certificate has expired\","
	    "\"reason\":\"handshake\"},\"bytes\":0,\"redirects\":0,"
	    "\"effective_url\":null,\"remote_ip\":null,\"time_ms\":{"
	    "\"queue\":0.0,\"dns\":0.0,\"connect\":0.5,\"tls\":2.25,"
	    "\"ttfb\":0.0,\"transfer\":0.0,\"total\":2.75,\"retry_wait\":0.0},"
	    "\"http_version\":null,\"tls\":null,\"attempts\":1}");
}
END_TEST

/* A verified HTTP/2 connection; no certificate seen shows as null. */
START_TEST(a_tls_success_has_version_cipher_and_verified)
{
	struct request_item spec = {.url = (char *)("https://d.example/")};
	struct fetch_result r = {
	    .status = 204,
	    .http_version = 20,
	    .tls = {.used = true,
	        .verified = true,
	        .version = "TLSv1.3",
	        .cipher = "TLS_AES_128_GCM_SHA256"},
	};
	json_t *o = result_json(0, &spec, &r), *tls;

	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "http_version")), "2");
	tls = json_object_get(o, "tls");
	ck_assert_str_eq(
	    json_string_value(json_object_get(tls, "version")), "TLSv1.3");
	ck_assert_str_eq(json_string_value(json_object_get(tls, "cipher")),
	    "TLS_AES_128_GCM_SHA256");
	ck_assert(json_is_true(json_object_get(tls, "verified")));
	ck_assert(json_is_null(json_object_get(tls, "cert")));
	ck_assert(json_is_null(json_object_get(o, "error")));
	json_decref(o);
	r.http_version = 10;
	o = result_json(0, &spec, &r);
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "http_version")), "1.0");
	json_decref(o);
}
END_TEST

START_TEST(failure_has_nulls_and_an_error_object)
{
	struct request_item spec = {.url = (char *)("http://b.example/")};
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
	    "\"tls\":0.0,\"ttfb\":0.0,\"transfer\":0.0,\"total\":1000.25,"
	    "\"retry_wait\":0.0},"
	    "\"http_version\":null,\"tls\":null,\"attempts\":1}");
}
END_TEST

/* Issue 11: failed_checks, every entry whole (two or more once lost
 * the text after the first seven bytes of each "check" key). */
START_TEST(failed_checks_are_listed_in_full)
{
	struct request_item spec = {.url = (char *)("http://c.example/")};
	struct fetch_result r = result_ok();
	struct expect_failure failed[3] = {
	    {.kind = EXPECT_STATUS, .has_actual = true, .actual_num = 301},
	    {.kind = EXPECT_BODY_CONTAINS, .entry = 0},
	    {.kind = EXPECT_HEADERS, .entry = 0, .has_actual = true},
	};
	struct expect_spec *e = expect_spec_new();
	char err[256], *text;
	json_t *o;

	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(expect_add_status_text(e, "2xx", err, sizeof(err)), 0);
	ck_assert_int_eq(
	    expect_add_text(e, EXPECT_BODY_CONTAINS, "up", 2, err, sizeof(err)),
	    0);
	ck_assert_int_eq(
	    expect_add_header(e, "X-V", "^1", 2, err, sizeof(err)), 0);
	spec.fetch.expect = e;
	r.error = FETCH_E_CHECK_FAILED;
	r.message = "status 301 not in [2xx]";
	r.status = 301;
	r.checked = true;
	r.failed = failed;
	r.nfailed = 3;
	o = result_json(0, &spec, &r);
	text = json_dumps(
	    json_object_get(o, "failed_checks"), JSON_COMPACT | JSON_EMBED);
	ck_assert_str_eq(text,
	    "{\"check\":\"status\",\"expected\":[\"2xx\"],\"actual\":301},"
	    "{\"check\":\"body_contains\",\"expected\":\"up\"},"
	    "{\"check\":\"headers\",\"expected\":{\"X-V\":\"^1\"},"
	    "\"actual\":null}");
	free(text);
	json_decref(o);
	expect_spec_unref(e);
}
END_TEST

/*
 * A capture that cuts a character in two is not text: body_base64, and
 * nothing is read past the captured bytes (an ASan build checks that:
 * the buffer is exactly the capture, with no NUL after it).
 */
START_TEST(a_capture_ending_inside_a_character_is_base64)
{
	static const char *const cases[][2] = {
	    {"h\xc3", "aMM="}, {"\xe2\x82", "4oI="},
	    {"ok\xf0\x9f\x98", "b2vwn5g="},
	    {"\xc3\xa9", NULL}, /* whole: text */
	};
	struct request_item spec = {.url = (char *)("http://c.example/")};
	struct fetch_result r = result_ok();
	size_t i, len;
	json_t *o;

	spec.fetch.capture = 8;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i][0]);
		r.body = malloc(len);
		ck_assert_ptr_nonnull(r.body);
		memcpy(r.body, cases[i][0], len);
		r.body_len = len;
		r.body_truncated = true;
		o = result_json(0, &spec, &r);
		if (cases[i][1] != NULL)
			ck_assert_str_eq(json_string_value(
			                     json_object_get(o, "body_base64")),
			    cases[i][1]);
		else
			ck_assert_str_eq(
			    json_string_value(json_object_get(o, "body")),
			    "\xc3\xa9");
		ck_assert(json_is_true(json_object_get(o, "body_truncated")));
		json_decref(o);
		free(r.body);
	}
}
END_TEST

START_TEST(invalid_item_has_null_url_and_empty_message)
{
	struct request_item spec = {.url = (char *)(NULL)};
	struct fetch_result r = {.error = FETCH_E_INVALID_URL};

	spec.id = json_pack("{s:[i,n]}", "k", 1);
	assert_result(2, &spec, &r,
	    "{\"index\":2,\"url\":null,\"id\":{\"k\":[1,null]},"
	    "\"status\":null,\"ok\":false,\"error\":{\"code\":"
	    "\"invalid_url\",\"message\":\"\"},\"bytes\":0,\"redirects\":0,"
	    "\"effective_url\":null,\"remote_ip\":null,\"time_ms\":{"
	    "\"queue\":0.0,\"dns\":0.0,\"connect\":0.0,\"tls\":0.0,"
	    "\"ttfb\":0.0,\"transfer\":0.0,\"total\":0.0,\"retry_wait\":0.0},"
	    "\"http_version\":null,\"tls\":null,\"attempts\":1}");
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

/* The id of item 0 of a request body, rendered and parsed back. */
static json_t *
echoed_id(const char *body, json_t **sent)
{
	struct config *cfg = config_default();
	struct request_error err;
	struct request_spec *spec;
	struct fetch_result r = {.error = FETCH_E_CANCELED};
	json_t *o, *id;

	ck_assert_ptr_nonnull(cfg);
	spec = request_parse(cfg, "application/json", body, strlen(body), &err);
	ck_assert_msg(spec != NULL, "%s: %s", body, err.message);
	o = result_json(0, &spec->items[0], &r);
	id = json_incref(json_object_get(o, "id"));
	ck_assert_ptr_nonnull(id);
	*sent = json_incref(spec->items[0].id);
	json_decref(o);
	request_spec_free(spec);
	config_unref(cfg);
	return id;
}

/*
 * A real id is written in the shortest of %.15g..%.17g that reads back
 * as the same double, marked as a real as jansson marks one; jansson's
 * own dump (10 digits) gave 1.23456789e11 for 123456789012.5.
 */
START_TEST(real_ids_read_back_as_the_same_double)
{
	static const struct {
		const char *in, *text;
	} cases[] = {
	    {"123456789012.5", "123456789012.5"},
	    {"1.2345678901234567", "1.2345678901234567"},
	    {"0.1", "0.1"},
	    {"0.30000000000000004", "0.30000000000000004"},
	    {"1e300", "1e300"},
	    {"1E+300", "1e300"},
	    {"5e-324", "4.94065645841247e-324"},
	    {"2.2250738585072014e-308", "2.2250738585072014e-308"},
	    {"1.7976931348623157e308", "1.7976931348623157e308"},
	    {"-0.0", "-0.0"},
	    {"1.0", "1.0"},
	    {"-2.5e0", "-2.5"},
	    {"100000.0", "100000.0"},
	    {"1e15", "1e15"},
	    {"123456789012345.0", "123456789012345.0"},
	    {"1e16", "1e16"},
	    {"1e-5", "1e-5"},
	    {"0.0001", "0.0001"},
	    {"9007199254740993.0", "9007199254740992.0"},
	};
	char body[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *sent, *got;
		double a, b;

		snprintf(body, sizeof(body),
		    "[{\"url\": \"http://a.example/\", \"id\": %s}]",
		    cases[i].in);
		got = echoed_id(body, &sent);
		ck_assert_msg(json_is_real(got), "%s: not a real", cases[i].in);
		a = json_real_value(sent);
		b = json_real_value(got);
		ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0,
		    "%s: %.17g came back as %.17g", cases[i].in, a, b);
		assert_dump(got, cases[i].text);
		json_decref(sent);
	}
}
END_TEST

/* Integers are json_int_t and stay exact, beyond 2^53 too. */
START_TEST(integer_ids_stay_exact)
{
	static const struct {
		const char *in, *text;
	} cases[] = {
	    {"9007199254740993", "9007199254740993"},
	    {"-9223372036854775808", "-9223372036854775808"},
	    {"9223372036854775807", "9223372036854775807"},
	    {"-0", "0"},
	    {"[1, -1.5, {\"k\": 12345678901234567}]",
	        "[1,-1.5,{\"k\":12345678901234567}]"},
	};
	char body[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *sent, *got;

		snprintf(body, sizeof(body),
		    "[{\"url\": \"http://a.example/\", \"id\": %s}]",
		    cases[i].in);
		got = echoed_id(body, &sent);
		ck_assert(json_equal(sent, got));
		assert_dump(got, cases[i].text);
		json_decref(sent);
	}
}
END_TEST

/* Strings, keys and every other kind of value, as jansson writes them. */
START_TEST(any_id_is_written_as_jansson_writes_it)
{
	json_t *sent, *got;

	got = echoed_id(
	    "[{\"url\": \"http://a.example/\", \"id\": {\"z\": 1, "
	    "\"q\\\"\\n\": "
	    "[true, false, null, \"\\u0000\\u001f\\u00e9/\", {}, []], "
	    "\"\\u20ac\": \"plain\", \"z\": 2}}]",
	    &sent);
	ck_assert(json_equal(sent, got));
	/* key order kept; a repeated key keeps its place, last value wins */
	assert_dump(json_incref(got), "{\"z\":2,\"q\\\"\\n\":[true,false,null,"
	                              "\"\\u0000\\u001F\xc3\xa9/\","
	                              "{},[]],\"\xe2\x82\xac\":\"plain\"}");
	json_decref(got);
	json_decref(sent);
}
END_TEST

/* As deep as jansson's parser allows, and no deeper. */
START_TEST(deep_ids_are_written_whole)
{
	enum { DEPTH = 2000 };
	static char body[2 * DEPTH + 64];
	struct sink sink = {.len = 0};
	json_t *sent, *got, *deep = json_array(), *a;
	size_t len;
	int i;

	len = (size_t)snprintf(
	    body, sizeof(body), "[{\"url\": \"http://a.example/\", \"id\": ");
	memset(body + len, '[', DEPTH);
	memset(body + len + DEPTH, ']', DEPTH);
	memcpy(body + len + 2 * DEPTH, "}]", 3);
	got = echoed_id(body, &sent);
	ck_assert(json_equal(sent, got));
	json_decref(got);
	json_decref(sent);
	/* a tree only code can build (maybe a cycle) is refused, not walked */
	for (i = 0, a = deep; i < JSON_PARSER_MAX_DEPTH + 1; i++) {
		json_t *inner = json_array();

		json_array_append_new(a, inner);
		a = inner;
	}
	ck_assert_int_eq(render_dump(deep, sink_emit, &sink), -1);
	json_decref(deep);
}
END_TEST

/* The message of a rendered error result whose message was in. */
static char *
rendered_message(const char *in)
{
	struct request_item spec = {.url = (char *)("http://a.example/")};
	struct fetch_result r = {.error = FETCH_E_OTHER, .message = (char *)in};
	json_t *o = result_json(0, &spec, &r);
	char *out = strdup(json_string_value(
	    json_object_get(json_object_get(o, "error"), "message")));

	json_decref(o);
	return out;
}

#define FFFD "\xef\xbf\xbd"

/*
 * Each maximal subpart of an invalid UTF-8 sequence is one U+FFFD
 * (Unicode's recommended practice); valid multi-byte text is kept.
 */
START_TEST(invalid_utf8_becomes_fffd_and_valid_text_stays)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xff",
	        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 " FFFD},
	    {"\x80", FFFD},
	    {"a\xbf"
	     "b",
	        "a" FFFD "b"},
	    {"\xc0\xaf", FFFD FFFD},                   /* overlong '/' */
	    {"\xc1\xbf", FFFD FFFD},                   /* overlong */
	    {"\xe0\x80\xaf", FFFD FFFD FFFD},          /* overlong, 3 bytes */
	    {"\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD}, /* overlong, 4 */
	    {"\xed\xa0\x80", FFFD FFFD FFFD},          /* surrogate D800 */
	    {"\xed\xbf\xbf", FFFD FFFD FFFD},          /* surrogate DFFF */
	    {"\xed\x9f\xbf", "\xed\x9f\xbf"},          /* U+D7FF is fine */
	    {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* U+110000 */
	    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},  /* U+10FFFF */
	    {"\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD},
	    {"\xe2\x82", FFFD}, /* truncated at the end */
	    {"\xe2\x82"
	     "A",
	        FFFD "A"}, /* truncated in the middle */
	    {"\xf0\x9f\x98"
	     "x\xf0\x9f",
	        FFFD "x" FFFD},
	    {"\xe2\xe2\x82\xac", FFFD "\xe2\x82\xac"},
	    {"\xef\xbf\xbd\xfe", FFFD FFFD}, /* U+FFFD itself stays */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = rendered_message(cases[i].in);

		ck_assert_msg(strcmp(got, cases[i].want) == 0,
		    "case %zu: got \"%s\"", i, got);
		free(got);
	}
}
END_TEST

START_TEST(elapsed_ms_is_rounded_like_times)
{
	static const struct {
		double ms;
		const char *text;
	} cases[] = {
	    {3.9004, "3.9"},
	    {12345678.9016, "12345678.902"},
	    {-5, "0.0"},
	    {NAN, "0.0"},
	    {INFINITY, "0.0"},
	    {1e300, "0.0"},
	};
	char want[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct summary s = {.elapsed_ms = cases[i].ms};

		snprintf(want, sizeof(want),
		    "{\"total\":0,\"ok\":0,\"failed\":0,\"status_counts\":{},"
		    "\"error_counts\":{},\"elapsed_ms\":%s,"
		    "\"earliest_cert_expiry\":null}",
		    cases[i].text);
		assert_summary(&s, want);
	}
}
END_TEST

/* The value of key in the rendered result for r. */
static json_t *
result_field(const struct fetch_result *r, const char *key)
{
	struct request_item spec = {.url = (char *)("http://a.example/")};
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
	    "too_large", "redirect_limit", "canceled", "check_failed", "other"};
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
	    "\"ttfb\":0.0,\"transfer\":60000.0,\"total\":123456.789,\"retry_"
	    "wait\":0.0}");
}
END_TEST

START_TEST(outside_text_with_bad_utf8_stays_valid_json)
{
	struct request_item spec = {.url = (char *)("http://a.example/")};
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
	    "bad \xef\xbf\xbd byte");
	ck_assert_str_eq(json_string_value(json_object_get(o, "effective_url")),
	    "http://a.example/\xef\xbf\xbd");
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
		struct request_item spec = {.url = (char *)(url)};
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
	    "\"dns\":1,\"timeout\":2,\"too_large\":1},\"elapsed_ms\":3.9,"
	    "\"earliest_cert_expiry\":null}");
}
END_TEST

/* The smallest not_after among the results that had a certificate. */
START_TEST(summary_has_the_earliest_certificate_expiry)
{
	struct fetch_result r = {.status = 200};
	struct summary s = {0};
	static const int64_t after[] = {2000000000, 1700000000, 1800000000};
	size_t i;

	summary_add(&s, &r); /* plain http: no certificate */
	r.tls.used = true;   /* TLS, but no certificate seen */
	summary_add(&s, &r);
	ck_assert(!s.has_cert_expiry);
	r.tls.has_cert = true;
	for (i = 0; i < 3; i++) {
		r.tls.cert.not_after = after[i];
		summary_add(&s, &r);
	}
	assert_summary(&s,
	    "{\"total\":5,\"ok\":5,\"failed\":0,\"status_counts\":{"
	    "\"200\":5},\"error_counts\":{},\"elapsed_ms\":0.0,"
	    "\"earliest_cert_expiry\":\"2023-11-14T22:13:20Z\"}");
	summary_reset(&s);
}
END_TEST

START_TEST(empty_summary_has_empty_counts)
{
	struct summary s = {0};

	assert_summary(&s,
	    "{\"total\":0,\"ok\":0,\"failed\":0,\"status_counts\":{},"
	    "\"error_counts\":{},\"elapsed_ms\":0.0,"
	    "\"earliest_cert_expiry\":null}");
}
END_TEST

/* Any three-digit status curl reports is counted; nothing else is. */
START_TEST(summary_counts_statuses_up_to_999)
{
	struct summary s = {0};
	int reserve;

	for (reserve = 0; reserve < 2; reserve++) {
		if (reserve)
			ck_assert_int_eq(summary_reserve(&s, 12), 0);
		add(&s, 999, FETCH_OK);
		add(&s, 600, FETCH_OK);
		add(&s, 999, FETCH_OK);
		add(&s, 100, FETCH_OK);
		add(&s, 1000, FETCH_OK);
		add(&s, -1, FETCH_OK);
		ck_assert_uint_eq(s.total, 6);
		ck_assert_uint_eq(s.failed, 6);
		assert_summary(&s,
		    "{\"total\":6,\"ok\":0,\"failed\":6,\"status_counts\":{"
		    "\"100\":1,\"600\":1,\"999\":2},\"error_counts\":{},"
		    "\"elapsed_ms\":0.0,\"earliest_cert_expiry\":null}");
		summary_reset(&s);
	}
}
END_TEST

/* More distinct statuses than the inline list holds, reserved or not. */
START_TEST(summary_counts_many_statuses)
{
	static const char want[] =
	    "{\"total\":12,\"ok\":12,\"failed\":0,\"status_counts\":{"
	    "\"200\":2,\"201\":1,\"202\":1,\"203\":1,\"204\":1,\"205\":1,"
	    "\"206\":1,\"207\":1,\"208\":1,\"209\":1,\"210\":1},"
	    "\"error_counts\":{},\"elapsed_ms\":0.0,"
	    "\"earliest_cert_expiry\":null}";
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
	                       "\"message\":\"near '\xef\xbf\xbd\\\"\\n'\"}}");
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
	tcase_add_test(tc, a_tls_failure_has_its_reason_and_certificate);
	tcase_add_test(tc, a_tls_success_has_version_cipher_and_verified);
	tcase_add_test(tc, invalid_item_has_null_url_and_empty_message);
	tcase_add_test(tc, failed_checks_are_listed_in_full);
	tcase_add_test(tc, a_capture_ending_inside_a_character_is_base64);
	tcase_add_test(tc, ids_from_the_request_are_echoed);
	tcase_add_test(tc, real_ids_read_back_as_the_same_double);
	tcase_add_test(tc, integer_ids_stay_exact);
	tcase_add_test(tc, any_id_is_written_as_jansson_writes_it);
	tcase_add_test(tc, deep_ids_are_written_whole);
	tcase_add_test(tc, invalid_utf8_becomes_fffd_and_valid_text_stays);
	tcase_add_test(tc, ok_means_completed_with_2xx_or_3xx);
	tcase_add_test(tc, a_status_with_an_error_shows_both);
	tcase_add_test(tc, every_error_has_its_code);
	tcase_add_test(tc, times_are_rounded_to_three_decimals);
	tcase_add_test(tc, outside_text_with_bad_utf8_stays_valid_json);
	tcase_add_test(tc, any_strings_and_numbers_round_trip_through_jansson);
	tcase_add_test(tc, summary_counts_statuses_and_errors);
	tcase_add_test(tc, summary_has_the_earliest_certificate_expiry);
	tcase_add_test(tc, empty_summary_has_empty_counts);
	tcase_add_test(tc, elapsed_ms_is_rounded_like_times);
	tcase_add_test(tc, summary_counts_statuses_up_to_999);
	tcase_add_test(tc, summary_counts_many_statuses);
	tcase_add_test(tc, error_body_shape);
	tcase_add_test(tc, dump_reports_a_failing_writer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(render_suite());
}
