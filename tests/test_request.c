/*
 * request.c: body -> validated spec.  Whole-request errors (content type,
 * JSON syntax, envelope shape, count) are checked as status and code;
 * per-item errors as the item's fetch error, with its valid siblings
 * still valid.  Bodies are passed with explicit lengths throughout, as
 * server.c does, because a body may hold NUL bytes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "request.h"
#include "url.h"
#include "check_run.h"

static struct config *cfg;

static void
setup(void)
{
	cfg = config_default();
	ck_assert_ptr_nonnull(cfg);
}

static void
teardown(void)
{
	config_unref(cfg);
}

static struct request_spec *
parse_n(const char *type, const char *body, size_t len)
{
	struct request_error err = {0};
	struct request_spec *spec = request_parse(cfg, type, body, len, &err);

	ck_assert_msg(spec != NULL, "unexpected %d %s: %s", err.status,
	    err.code, err.message);
	return spec;
}

static struct request_spec *
parse(const char *type, const char *body)
{
	return parse_n(type, body, strlen(body));
}

/* The whole request must fail with status and code; returns the error. */
static struct request_error
refused_n(const char *type, const char *body, size_t len, int status,
    const char *code)
{
	struct request_error err = {0};
	struct request_spec *spec = request_parse(cfg, type, body, len, &err);

	ck_assert_msg(spec == NULL, "body accepted: %.80s", body);
	ck_assert_int_eq(err.status, status);
	ck_assert_str_eq(err.code, code);
	ck_assert_msg(err.message[0] != '\0', "empty message");
	return err;
}

static struct request_error
refused(const char *type, const char *body, int status, const char *code)
{
	return refused_n(type, body, strlen(body), status, code);
}

/* What curl itself makes of url: the URL it will fetch. */
static char *
curl_normalised(const char *url)
{
	CURLU *h = curl_url();
	char *text = NULL, *copy;

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(curl_url_set(h, CURLUPART_URL, url, 0), CURLUE_OK);
	ck_assert_int_eq(curl_url_get(h, CURLUPART_URL, &text, 0), CURLUE_OK);
	copy = strdup(text);
	curl_free(text);
	curl_url_cleanup(h);
	return copy;
}

/*
 * An item's verdict, as the client sees it: its parse error, or else what
 * url_parse() says of its URL on the worker.  Returns the checked
 * URL (heap) or NULL.
 */
static char *
verdict(const struct request_item *item, enum fetch_error *error,
    const char **message)
{
	enum url_verdict v;
	CURLU *h;

	*error = item->error;
	*message = item->error_message;
	if (item->error != FETCH_OK)
		return NULL;
	if ((h = url_parse(item->url, &v, message)) == NULL) {
		*error = v == URL_UNSUPPORTED ? FETCH_E_UNSUPPORTED_SCHEME
		                              : FETCH_E_INVALID_URL;
		return NULL;
	}
	curl_url_cleanup(h);
	return strdup(item->url);
}

/* Valid: fetched as given, and curl will fetch target. */
static void
assert_valid(const struct request_item *item, const char *target)
{
	enum fetch_error error;
	const char *message;
	char *checked = verdict(item, &error, &message), *fetched;

	ck_assert_msg(checked != NULL, "item %s failed: %s",
	    item->url ? item->url : "(null)", message ? message : "");
	ck_assert_str_eq(checked, item->url);
	fetched = curl_normalised(checked);
	ck_assert_str_eq(fetched, target);
	free(fetched);
	free(checked);
}

static void
assert_invalid(const struct request_item *item, enum fetch_error error)
{
	enum fetch_error got;
	const char *message;

	ck_assert_ptr_null(verdict(item, &got, &message));
	ck_assert_msg(got == error, "item %s: error %d, want %d",
	    item->url ? item->url : "(null)", got, error);
	if (item->error != FETCH_OK)
		ck_assert_ptr_null(item->fetch.headers);
	ck_assert_ptr_nonnull(message);
	ck_assert_msg(message[0] != '\0', "empty message");
}

/* The header list as "a|b|c", for one comparison. */
static void
assert_headers(const struct request_item *item, const char *want)
{
	char got[1024] = "";
	size_t used = 0;
	const struct curl_slist *h;

	for (h = item->fetch.headers; h != NULL; h = h->next) {
		int n = snprintf(got + used, sizeof(got) - used, "%s%s",
		    used ? "|" : "", h->data);

		ck_assert(n > 0 && (size_t)n < sizeof(got) - used);
		used += (size_t)n;
	}
	ck_assert_str_eq(got, want);
}

/* Parsed to one valid item: "[...]" is one only when read as JSON. */
static bool
one_valid_item(const char *type, const char *body)
{
	struct request_spec *spec = parse(type, body);
	enum fetch_error error;
	const char *message;
	char *checked;
	bool valid;

	ck_assert_uint_eq(spec->count, 1);
	checked = verdict(&spec->items[0], &error, &message);
	valid = checked != NULL;
	free(checked);
	request_spec_free(spec);
	return valid;
}

START_TEST(content_types_choose_the_parser)
{
	const char *json = "[\"http://a.example/\"]";
	const char *lines = "http://a.example/\n";

	ck_assert(one_valid_item("application/json", json));
	ck_assert(one_valid_item("Application/JSON; charset=utf-8", json));
	ck_assert(one_valid_item(" application/json ;charset=UTF-8", json));
	/* text/plain is never sniffed: "[..." is one (bad) URL line */
	ck_assert(!one_valid_item("text/plain", json));
	ck_assert(one_valid_item("TEXT/PLAIN; charset=utf-8", lines));
	/* no type, an empty one and the form type are sniffed */
	ck_assert(one_valid_item(NULL, json));
	ck_assert(one_valid_item(NULL, " \r\n\t[\"http://a.example/\"]"));
	ck_assert(one_valid_item(NULL, lines));
	ck_assert(one_valid_item("", json));
	ck_assert(one_valid_item("; charset=utf-8", lines));
	ck_assert(one_valid_item("application/x-www-form-urlencoded", json));
	ck_assert(one_valid_item("application/x-www-form-urlencoded", lines));
}
END_TEST

START_TEST(sniffed_object_is_json)
{
	struct request_spec *spec =
	    parse(NULL, "\n {\"urls\": [\"http://a.example/\"]}");

	ck_assert_uint_eq(spec->count, 1);
	assert_valid(&spec->items[0], "http://a.example/");
	request_spec_free(spec);
}
END_TEST

START_TEST(other_content_types_are_415)
{
	static const char *types[] = {"text/html", "application/xml",
	    "application/jsonx", "application/json-seq", "multipart/form-data",
	    "text", "*/*"};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		refused(types[i], "[]", 415, "unsupported_media_type");
}
END_TEST

START_TEST(json_array_of_strings_takes_config_defaults)
{
	struct request_spec *spec = parse("application/json",
	    "[\"http://a.example/x?y=1\", \"HTTPS://B.example:8443\"]");
	size_t i;

	ck_assert_uint_eq(spec->count, 2);
	assert_valid(&spec->items[0], "http://a.example/x?y=1");
	assert_valid(&spec->items[1], "https://B.example:8443/");
	ck_assert_str_eq(spec->items[1].url, "HTTPS://B.example:8443");
	for (i = 0; i < spec->count; i++) {
		ck_assert_int_eq(
		    spec->items[i].fetch.timeout_ms, cfg->timeout_ms);
		ck_assert(spec->items[i].fetch.follow_redirects ==
		          cfg->follow_redirects);
		ck_assert_int_eq(spec->items[i].fetch.method, FETCH_GET);
		ck_assert_ptr_null(spec->items[i].fetch.headers);
		ck_assert_ptr_null(spec->items[i].id);
	}
	request_spec_free(spec);
}
END_TEST

START_TEST(object_form_sets_every_request_field)
{
	struct request_spec *spec = parse("application/json",
	    "{\"urls\": [\"http://a.example/\", {\"url\": "
	    "\"http://b.example/\"}],"
	    " \"timeout_ms\": 500, \"follow_redirects\": false,"
	    " \"method\": \"HEAD\","
	    " \"headers\": {\"X-A\": \"1\", \"Accept\": \"text/html\"}}");
	size_t i;

	ck_assert_uint_eq(spec->count, 2);
	for (i = 0; i < spec->count; i++) {
		ck_assert_int_eq(spec->items[i].error, FETCH_OK);
		ck_assert_int_eq(spec->items[i].fetch.timeout_ms, 500);
		ck_assert(!spec->items[i].fetch.follow_redirects);
		ck_assert_int_eq(spec->items[i].fetch.method, FETCH_HEAD);
		assert_headers(&spec->items[i], "X-A: 1|Accept: text/html");
	}
	/* each item owns its own list */
	ck_assert_ptr_ne(
	    spec->items[0].fetch.headers, spec->items[1].fetch.headers);
	request_spec_free(spec);
}
END_TEST

START_TEST(item_fields_override_request_fields)
{
	struct request_spec *spec = parse("application/json",
	    "{\"urls\": [{\"url\": \"http://a.example/\", \"method\": \"GET\","
	    "  \"timeout_ms\": 200, \"headers\": {\"x-a\": \"2\", \"X-B\": "
	    "\"3\"}},"
	    " \"http://b.example/\"],"
	    " \"timeout_ms\": 500, \"method\": \"HEAD\","
	    " \"follow_redirects\": true,"
	    " \"headers\": {\"X-A\": \"1\", \"Accept\": \"text/html\"}}");

	ck_assert_uint_eq(spec->count, 2);
	ck_assert_int_eq(spec->items[0].fetch.method, FETCH_GET);
	ck_assert_int_eq(spec->items[0].fetch.timeout_ms, 200);
	ck_assert(spec->items[0].fetch.follow_redirects);
	/* same name in another case: the item's value wins, once */
	assert_headers(&spec->items[0], "Accept: text/html|x-a: 2|X-B: 3");
	ck_assert_int_eq(spec->items[1].fetch.method, FETCH_HEAD);
	ck_assert_int_eq(spec->items[1].fetch.timeout_ms, 500);
	assert_headers(&spec->items[1], "X-A: 1|Accept: text/html");
	request_spec_free(spec);
}
END_TEST

START_TEST(request_fields_override_config)
{
	struct request_spec *spec;

	cfg->follow_redirects = true;
	spec = parse("application/json",
	    "{\"urls\": [\"http://a.example/\"], \"follow_redirects\": false}");
	ck_assert(!spec->items[0].fetch.follow_redirects);
	ck_assert_int_eq(spec->items[0].fetch.timeout_ms, cfg->timeout_ms);
	request_spec_free(spec);
	cfg->follow_redirects = false;
	spec = parse("application/json",
	    "{\"urls\": [\"http://a.example/\"], \"follow_redirects\": true}");
	ck_assert(spec->items[0].fetch.follow_redirects);
	request_spec_free(spec);
	spec = parse("application/json", "[\"http://a.example/\"]");
	ck_assert(!spec->items[0].fetch.follow_redirects);
	request_spec_free(spec);
}
END_TEST

/* Issue 10: verify_tls from the config, the request, then the item. */
START_TEST(verify_tls_comes_from_config_request_and_item)
{
	struct request_spec *spec;

	spec = parse("application/json", "[\"https://a.example/\"]");
	ck_assert(spec->items[0].fetch.verify_tls);
	request_spec_free(spec);
	spec = parse("application/json",
	    "{\"urls\": [\"https://a.example/\", {\"url\": "
	    "\"https://b.example/\", \"verify_tls\": true}],"
	    " \"verify_tls\": false}");
	ck_assert(!spec->items[0].fetch.verify_tls);
	ck_assert(spec->items[1].fetch.verify_tls);
	ck_assert_int_eq(spec->items[1].error, FETCH_OK);
	request_spec_free(spec);
	cfg->verify_tls = false;
	spec = parse("application/json",
	    "[\"https://a.example/\", {\"url\": \"https://b.example/\", "
	    "\"verify_tls\": true}]");
	ck_assert(!spec->items[0].fetch.verify_tls);
	ck_assert(spec->items[1].fetch.verify_tls);
	request_spec_free(spec);
	spec = parse("text/plain", "https://a.example/\n");
	ck_assert(!spec->items[0].fetch.verify_tls);
	request_spec_free(spec);
	spec = parse("application/json",
	    "[{\"url\": \"https://a.example/\", \"verify_tls\": 1}]");
	ck_assert_str_eq(
	    spec->items[0].error_message, "\"verify_tls\" is not a boolean");
	request_spec_free(spec);
}
END_TEST

START_TEST(timeouts_are_capped_by_config)
{
	struct request_spec *spec;

	cfg->timeout_ms = 1000;
	spec = parse("application/json",
	    "{\"urls\": [\"http://a.example/\","
	    " {\"url\": \"http://b.example/\", \"timeout_ms\": 99999999999},"
	    " {\"url\": \"http://c.example/\", \"timeout_ms\": 1},"
	    " {\"url\": \"http://d.example/\", \"timeout_ms\": 0},"
	    " {\"url\": \"http://e.example/\", \"timeout_ms\": 1.5}],"
	    " \"timeout_ms\": 5000}");
	ck_assert_int_eq(spec->items[0].fetch.timeout_ms, 1000);
	ck_assert_int_eq(spec->items[1].fetch.timeout_ms, 1000);
	ck_assert_int_eq(spec->items[2].fetch.timeout_ms, 1);
	assert_invalid(&spec->items[3], FETCH_E_INVALID_URL);
	assert_invalid(&spec->items[4], FETCH_E_INVALID_URL);
	request_spec_free(spec);
	spec = parse("application/json",
	    "{\"urls\": [\"http://a.example/\"], \"timeout_ms\": 250}");
	ck_assert_int_eq(spec->items[0].fetch.timeout_ms, 250);
	request_spec_free(spec);
}
END_TEST

START_TEST(invalid_json_names_line_and_column)
{
	struct request_error err = refused("application/json",
	    "[\"http://a.example/\",\n  }", 400, "invalid_json");

	ck_assert_msg(
	    strstr(err.message, "line 2 column 3") != NULL, "%s", err.message);
	refused("application/json", "", 400, "invalid_json");
	/* jansson refuses a NUL in a key: no header name can hold one */
	refused("application/json",
	    "{\"urls\": [], \"headers\": {\"X\\u0000A\": \"1\"}}", 400,
	    "invalid_json");
	refused("application/json", "[\"http://a.example/\"] x", 400,
	    "invalid_json");
	refused("application/json", "{\"urls\": [1,]}", 400, "invalid_json");
	/* sniffed JSON is held to the same syntax */
	refused(NULL, "[\"http://a.example/\"", 400, "invalid_json");
	refused("application/x-www-form-urlencoded", "{urls: []}", 400,
	    "invalid_json");
}
END_TEST

START_TEST(deep_nesting_is_400_not_a_crash)
{
	size_t depth = 100000, i;
	char *body = malloc(2 * depth);

	ck_assert_ptr_nonnull(body);
	for (i = 0; i < depth; i++) {
		body[i] = '[';
		body[2 * depth - 1 - i] = ']';
	}
	refused_n("application/json", body, 2 * depth, 400, "invalid_json");
	refused_n(NULL, body, depth, 400, "invalid_json"); /* unclosed */
	memset(body, '{', depth);
	refused_n("application/json", body, depth, 400, "invalid_json");
	free(body);
}
END_TEST

START_TEST(invalid_utf8_is_400)
{
	refused("application/json", "[\"http://a.example/\xff\"]", 400,
	    "invalid_json");
	refused("application/json", "[\"http://a.example/\xc3\"]", 400,
	    "invalid_json");
	refused("application/json", "{\"urls\": [], \"\xe2\x82\": 1}", 400,
	    "invalid_json");
	/* overlong encoding of '/' */
	refused("application/json", "[\"http://a.example\xc0\xaf\"]", 400,
	    "invalid_json");
}
END_TEST

START_TEST(envelope_errors_are_400)
{
	static const struct {
		const char *body, *names;
	} cases[] = {
	    {"42", "array or object"},
	    {"\"http://a.example/\"", "array or object"},
	    {"null", "array or object"},
	    {"true", "array or object"},
	    {"{}", "urls"},
	    {"{\"url\": [\"http://a.example/\"]}", "url"},
	    {"{\"urls\": {}}", "urls"},
	    {"{\"urls\": \"http://a.example/\"}", "urls"},
	    {"{\"urls\": null}", "urls"},
	    {"{\"urls\": [], \"timeout_ms\": \"100\"}", "timeout_ms"},
	    {"{\"urls\": [], \"timeout_ms\": 0}", "timeout_ms"},
	    {"{\"urls\": [], \"timeout_ms\": -5}", "timeout_ms"},
	    {"{\"urls\": [], \"timeout_ms\": 10.0}", "timeout_ms"},
	    {"{\"urls\": [], \"timeout_ms\": null}", "timeout_ms"},
	    {"{\"urls\": [], \"follow_redirects\": 1}", "follow_redirects"},
	    {"{\"urls\": [], \"follow_redirects\": \"yes\"}",
	        "follow_redirects"},
	    {"{\"urls\": [], \"method\": \"FROB\"}", "method"},
	    {"{\"urls\": [], \"method\": \"get\"}", "method"},
	    {"{\"urls\": [], \"method\": 1}", "method"},
	    {"{\"urls\": [], \"method\": \"GET\\u0000\"}", "method"},
	    {"{\"urls\": [], \"headers\": []}", "headers"},
	    {"{\"urls\": [], \"headers\": \"X-A: 1\"}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X A\": \"1\"}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X:A\": \"1\"}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"\": \"1\"}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X\\nA\": \"1\"}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X-A\": 1}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X-A\": null}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X-A\": \"a\\r\\nHost: b\"}}",
	        "headers"},
	    {"{\"urls\": [], \"headers\": {\"X-A\": \"a\\nb\"}}", "headers"},
	    {"{\"urls\": [], \"headers\": {\"X-A\": \"a\\u0000b\"}}",
	        "headers"},
	    {"{\"urls\": [], \"verify_tls\": 0}", "verify_tls"},
	    {"{\"urls\": [], \"verify_tls\": \"false\"}", "verify_tls"},
	    {"{\"urls\": [], \"verify_tls\": null}", "verify_tls"},
	    {"{\"urls\": [], \"bogus\": 1}", "bogus"},
	    {"{\"urls\": [], \"id\": 1}", "id"},
	};
	struct request_error err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = refused(
		    "application/json", cases[i].body, 400, "invalid_request");
		ck_assert_msg(strstr(err.message, cases[i].names) != NULL,
		    "%s: message \"%s\" lacks \"%s\"", cases[i].body,
		    err.message, cases[i].names);
	}
}
END_TEST

START_TEST(request_headers_have_a_size_cap)
{
	size_t len = 9000;
	char *body = malloc(len + 64), *p;

	ck_assert_ptr_nonnull(body);
	p = body + snprintf(body, 64, "{\"urls\": [], \"headers\": {\"X\": \"");
	memset(p, 'a', len);
	memcpy(p + len, "\"}}", 4);
	refused("application/json", body, 400, "invalid_request");
	free(body);
}
END_TEST

/* A long URL: "http://a.example/" padded with 'a' to len bytes. */
static char *
long_url(size_t len)
{
	char *url = malloc(len + 1);

	ck_assert_ptr_nonnull(url);
	memcpy(url, "http://a.example/", 17);
	memset(url + 17, 'a', len - 17);
	url[len] = '\0';
	return url;
}

START_TEST(each_item_is_validated_alone)
{
	static const struct {
		const char *item;
		enum fetch_error error;
	} cases[] = {
	    {"1", FETCH_E_INVALID_URL},
	    {"null", FETCH_E_INVALID_URL},
	    {"true", FETCH_E_INVALID_URL},
	    {"[\"http://a.example/\"]", FETCH_E_INVALID_URL},
	    {"{}", FETCH_E_INVALID_URL},
	    {"{\"url\": 1}", FETCH_E_INVALID_URL},
	    {"{\"urls\": \"http://a.example/\"}", FETCH_E_INVALID_URL},
	    {"\"not a url\"", FETCH_E_INVALID_URL},
	    {"\"a.example/x\"", FETCH_E_INVALID_URL},
	    {"\"\"", FETCH_E_INVALID_URL},
	    {"\"http://\"", FETCH_E_INVALID_URL},
	    {"\"http://a.example:99999/\"", FETCH_E_INVALID_URL},
	    {"\"file:///etc/passwd\"", FETCH_E_UNSUPPORTED_SCHEME},
	    {"\"gopher://a.example/\"", FETCH_E_UNSUPPORTED_SCHEME},
	    {"\"dict://a.example/\"", FETCH_E_UNSUPPORTED_SCHEME},
	    {"\"ftp://a.example/\"", FETCH_E_UNSUPPORTED_SCHEME},
	    {"\"http://user:pass@a.example/\"", FETCH_E_INVALID_URL},
	    {"\"http://user@a.example/\"", FETCH_E_INVALID_URL},
	    {"\"http://@a.example/\"", FETCH_E_INVALID_URL},
	    {"\"http://a.example/\\r\\nX: y\"", FETCH_E_INVALID_URL},
	    {"\"http://a.example/\\n\"", FETCH_E_INVALID_URL},
	    {"\"http://a.example/\\u0000x\"", FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"bogus\": 1}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"method\": \"FROB\"}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"body\": \"x\"}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"method\": \"POST\", "
	     "\"retries\": 1}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"module\": \"nope\"}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"timeout_ms\": \"1\"}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"follow_redirects\": 1}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"headers\": []}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"https://a.example/\", \"verify_tls\": \"no\"}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"https://a.example/\", \"verify_tls\": 0}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"headers\": {\"a b\": \"1\"}}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"headers\": {\"X\": 1}}",
	        FETCH_E_INVALID_URL},
	    {"{\"url\": \"http://a.example/\", \"headers\": {\"X\": \"\\r\"}}",
	        FETCH_E_INVALID_URL},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[512];
		struct request_spec *spec;

		snprintf(body, sizeof(body),
		    "[\"http://first.example/\", %s, \"http://last.example/\"]",
		    cases[i].item);
		spec = parse("application/json", body);
		ck_assert_uint_eq(spec->count, 3);
		assert_valid(&spec->items[0], "http://first.example/");
		assert_invalid(&spec->items[1], cases[i].error);
		assert_valid(&spec->items[2], "http://last.example/");
		request_spec_free(spec);
	}
}
END_TEST

START_TEST(item_errors_carry_a_message)
{
	enum fetch_error error;
	const char *message;
	struct request_spec *spec = parse("application/json",
	    "[1, {\"id\": 7}, \"file:///etc/passwd\", \"http://a.example:x/\","
	    " {\"url\": \"http://a.example/\", \"headers\": {\"a b\": "
	    "\"1\"}}]");

	ck_assert_str_eq(
	    spec->items[0].error_message, "item is not a URL string or object");
	ck_assert_str_eq(
	    spec->items[1].error_message, "item has no string \"url\"");
	ck_assert_int_eq(json_integer_value(spec->items[1].id), 7);
	ck_assert_ptr_null(spec->items[1].url);
	ck_assert_str_eq(spec->items[2].url, "file:///etc/passwd");
	/* curl_url_strerror's text, from the check on the worker */
	ck_assert_ptr_null(verdict(&spec->items[3], &error, &message));
	ck_assert_ptr_nonnull(strstr(message, "ort"));
	ck_assert_str_eq(spec->items[4].error_message,
	    "\"headers\" a header name is not a token");
	ck_assert_str_eq(spec->items[4].url, "http://a.example/");
	request_spec_free(spec);
}
END_TEST

/*
 * A resolve address ip_version rules out: curl would drop the entry and
 * ask DNS for the name, so it is refused, at whichever level the two
 * fields meet.
 */
START_TEST(resolve_and_ip_version_must_agree)
{
	struct request_spec *spec = parse("application/json",
	    "{\"resolve\": {\"a.test:80\": \"::1\", \"b.test:81\": "
	    "\"127.0.0.1\"}, \"urls\": ["
	    "{\"url\": \"http://a.test/\", \"ip_version\": \"4\"},"
	    "{\"url\": \"http://b.test:81/\", \"ip_version\": \"6\"},"
	    "{\"url\": \"http://b.test:81/\", \"ip_version\": \"any\"},"
	    "{\"url\": \"http://a.test/\", \"ip_version\": \"4\", "
	    "\"resolve\": {\"[::1]:80\": \"127.0.0.2\"}}]}");
	struct request_error err;

	ck_assert_int_eq(spec->items[0].error, FETCH_E_INVALID_URL);
	ck_assert_str_eq(spec->items[0].error_message,
	    "\"resolve\": \"a.test:80\" maps to an IPv6 address, but "
	    "\"ip_version\" is \"4\" (the name would be looked up in DNS "
	    "instead)");
	ck_assert_int_eq(spec->items[1].error, FETCH_E_INVALID_URL);
	ck_assert_ptr_nonnull(strstr(
	    spec->items[1].error_message, "\"b.test:81\" maps to an IPv4"));
	ck_assert_int_eq(spec->items[2].error, FETCH_OK);
	ck_assert_int_eq(spec->items[3].error, FETCH_OK);
	request_spec_free(spec);
	err = refused("application/json",
	    "{\"ip_version\": \"6\", \"resolve\": {\"c.test:1\": "
	    "\"10.0.0.1\"}, \"urls\": []}",
	    400, "invalid_request");
	ck_assert_ptr_nonnull(
	    strstr(err.message, "\"c.test:1\" maps to an IPv4"));
}
END_TEST

/* resolve as an object of pairs, or as curl's "host:port:address" list
 * (the form a config module can write); curl gets the same lines. */
START_TEST(resolve_takes_pairs_or_curl_lines)
{
	struct request_spec *spec = parse("application/json",
	    "[{\"url\": \"http://a.test/\", \"resolve\": "
	    "{\"a.test:80\": \"::1\", \"b.test:8080\": \"10.0.0.1\"}},"
	    "{\"url\": \"http://a.test/\", \"resolve\": "
	    "[\"a.test:80:[::1]\", \"b.test:8080:10.0.0.1\", "
	    "\"[::2]:443:::3\"]},"
	    "{\"url\": \"http://a.test/\", \"resolve\": [\"a.test:80\"]},"
	    "{\"url\": \"http://a.test/\", \"resolve\": [\"a.test:x:::1\"]},"
	    "{\"url\": \"http://a.test/\", \"resolve\": [\"a:1:b\"]},"
	    "{\"url\": \"http://a.test/\", \"resolve\": []},"
	    "{\"url\": \"http://a.test/\", \"resolve\": [1]}]");
	const struct curl_slist *l;
	size_t i;

	l = spec->items[0].fetch.resolve;
	ck_assert_str_eq(l->data, "a.test:80:[::1]");
	ck_assert_str_eq(l->next->data, "b.test:8080:10.0.0.1");
	ck_assert_ptr_null(l->next->next);
	l = spec->items[1].fetch.resolve;
	ck_assert_str_eq(l->data, "a.test:80:[::1]");
	ck_assert_str_eq(l->next->data, "b.test:8080:10.0.0.1");
	ck_assert_str_eq(l->next->next->data, "[::2]:443:[::3]");
	for (i = 2; i < spec->count; i++) {
		ck_assert_int_eq(spec->items[i].error, FETCH_E_INVALID_URL);
		ck_assert_msg(strncmp(spec->items[i].error_message,
		                  "\"resolve\" ", 10) == 0,
		    "item %zu: %s", i, spec->items[i].error_message);
	}
	request_spec_free(spec);
}
END_TEST

START_TEST(url_length_limit_is_8192)
{
	char *ok = long_url(8192), *over = long_url(8193);
	char *body = malloc(2 * 8200);
	struct request_spec *spec;

	ck_assert_ptr_nonnull(body);
	snprintf(body, 2 * 8200, "[\"%s\", \"%s\"]", ok, over);
	spec = parse("application/json", body);
	assert_valid(&spec->items[0], ok);
	assert_invalid(&spec->items[1], FETCH_E_INVALID_URL);
	request_spec_free(spec);
	free(body);
	free(ok);
	free(over);
}
END_TEST

START_TEST(item_headers_have_a_size_cap)
{
	char value[5000], body[11000];
	struct request_spec *spec;

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	/* each side alone fits; together they exceed 8 KiB */
	snprintf(body, sizeof(body),
	    "{\"urls\": [\"http://a.example/\","
	    " {\"url\": \"http://b.example/\", \"headers\": {\"Y\": \"%s\"}}],"
	    " \"headers\": {\"X\": \"%s\"}}",
	    value, value);
	spec = parse("application/json", body);
	ck_assert_int_eq(spec->items[0].error, FETCH_OK);
	assert_invalid(&spec->items[1], FETCH_E_INVALID_URL);
	request_spec_free(spec);
}
END_TEST

START_TEST(header_values_are_trimmed_and_empty_ones_kept)
{
	struct request_spec *spec = parse("application/json",
	    "[{\"url\": \"http://a.example/\", \"headers\":"
	    " {\"X-A\": \"  padded\\t\", \"X-Empty\": \"\", \"X-Blank\": "
	    "\"  \","
	    "  \"X-Tab\": \"a\\tb\", \"X-Utf8\": \"caf\\u00e9\"}}]");

	/* "X-Empty:" would tell curl to drop the header; "X-Empty;" sends
	 * it empty */
	assert_headers(&spec->items[0],
	    "X-A: padded|X-Empty;|X-Blank;|X-Tab: a\tb|X-Utf8: caf\xc3\xa9");
	request_spec_free(spec);
}
END_TEST

START_TEST(text_plain_skips_blanks_and_comments)
{
	static const char body[] = "# targets\n"
	                           "\n"
	                           "http://a.example/\r\n"
	                           "  http://b.example/x \t\r\n"
	                           "\t# indented comment\n"
	                           "   \r\n"
	                           "\r\n"
	                           "not a url\n"
	                           "http://c.example/";
	struct request_spec *spec = parse("text/plain", body);

	ck_assert_uint_eq(spec->count, 4);
	assert_valid(&spec->items[0], "http://a.example/");
	assert_valid(&spec->items[1], "http://b.example/x");
	ck_assert_str_eq(spec->items[1].url, "http://b.example/x");
	assert_invalid(&spec->items[2], FETCH_E_INVALID_URL);
	ck_assert_str_eq(spec->items[2].url, "not a url");
	assert_valid(&spec->items[3], "http://c.example/");
	ck_assert_int_eq(spec->items[3].fetch.timeout_ms, cfg->timeout_ms);
	ck_assert(
	    spec->items[3].fetch.follow_redirects == cfg->follow_redirects);
	request_spec_free(spec);
}
END_TEST

START_TEST(text_plain_bad_lines_fail_alone)
{
	static const char body[] = "http://a.example/\n"
	                           "http://b.\0example/\n"
	                           "http://c.example/\rX: y\n"
	                           "http://d.example/\xff\n"
	                           "file:///etc/passwd\n"
	                           "http://u:p@e.example/\n"
	                           "http://f.example/\n";
	struct request_spec *spec =
	    parse_n("text/plain", body, sizeof(body) - 1);

	ck_assert_uint_eq(spec->count, 7);
	assert_valid(&spec->items[0], "http://a.example/");
	assert_invalid(&spec->items[1], FETCH_E_INVALID_URL);
	ck_assert_ptr_null(spec->items[1].url);
	assert_invalid(&spec->items[2], FETCH_E_INVALID_URL);
	assert_invalid(&spec->items[3], FETCH_E_INVALID_URL);
	ck_assert_ptr_null(spec->items[3].url); /* no invalid UTF-8 echoed */
	assert_invalid(&spec->items[4], FETCH_E_UNSUPPORTED_SCHEME);
	assert_invalid(&spec->items[5], FETCH_E_INVALID_URL);
	assert_valid(&spec->items[6], "http://f.example/");
	request_spec_free(spec);
}
END_TEST

START_TEST(text_plain_long_line_is_invalid)
{
	char *over = long_url(8193);
	struct request_spec *spec = parse("text/plain", over);

	ck_assert_uint_eq(spec->count, 1);
	assert_invalid(&spec->items[0], FETCH_E_INVALID_URL);
	request_spec_free(spec);
	free(over);
}
END_TEST

START_TEST(more_than_max_urls_is_413)
{
	struct request_spec *spec;

	cfg->max_urls = 3;
	refused("application/json", "[1, 2, 3, 4]", 413, "too_many_urls");
	refused("application/json", "{\"urls\": [1, 2, 3, 4]}", 413,
	    "too_many_urls");
	refused("text/plain", "http://a/\nhttp://b/\nhttp://c/\nhttp://d/", 413,
	    "too_many_urls");
	spec = parse("application/json", "[1, 2, 3]");
	ck_assert_uint_eq(spec->count, 3);
	request_spec_free(spec);
	/* comments and blank lines do not count */
	spec =
	    parse("text/plain", "# x\nhttp://a/\n\n# y\nhttp://b/\nhttp://c/");
	ck_assert_uint_eq(spec->count, 3);
	request_spec_free(spec);
}
END_TEST

START_TEST(empty_lists_are_valid)
{
	static const struct {
		const char *type, *body;
	} cases[] = {
	    {"application/json", "[]"},
	    {"application/json", " {\"urls\": []} "},
	    {"text/plain", ""},
	    {"text/plain", "\n\r\n# nothing\n  \t\n"},
	    {NULL, ""},
	    {NULL, " \n "},
	    {"application/x-www-form-urlencoded", "[]"},
	};
	struct request_error err;
	struct request_spec *spec;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spec = parse(cases[i].type, cases[i].body);
		ck_assert_uint_eq(spec->count, 0);
		request_spec_free(spec);
	}
	spec = request_parse(cfg, NULL, NULL, 0, &err);
	ck_assert_ptr_nonnull(spec);
	ck_assert_uint_eq(spec->count, 0);
	request_spec_free(spec);
}
END_TEST

START_TEST(ids_are_kept_for_valid_and_invalid_items)
{
	struct request_spec *spec = parse("application/json",
	    "[{\"url\": \"http://a.example/\", \"id\": {\"k\": [1, \"two\"]}},"
	    " {\"url\": \"gopher://a.example/\", \"id\": \"g\"},"
	    " {\"url\": \"http://a.example/\", \"id\": null},"
	    " \"http://b.example/\"]");
	json_t *want = json_pack("{s:[i,s]}", "k", 1, "two");

	ck_assert(json_equal(spec->items[0].id, want));
	ck_assert_str_eq(json_string_value(spec->items[1].id), "g");
	assert_invalid(&spec->items[1], FETCH_E_UNSUPPORTED_SCHEME);
	ck_assert(json_is_null(spec->items[2].id));
	ck_assert_ptr_null(spec->items[3].id);
	json_decref(want);
	request_spec_free(spec);
}
END_TEST

/* GET /probe's targets: each an item, under a module of the config. */
START_TEST(probe_targets_become_items_under_a_module)
{
	const char *targets[] = {"http://a.example/", "http://b.example/x?y=1"};
	struct config_module m = {.name = "fast",
	    .fields =
	        json_pack("{s:i, s:s}", "timeout_ms", 1234, "method", "HEAD")};
	struct request_error err = {0};
	struct request_spec *spec;
	size_t i;

	spec = request_from_targets(cfg, targets, 2, NULL, &err);
	ck_assert_ptr_nonnull(spec);
	ck_assert_uint_eq(spec->count, 2);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(spec->items[i].error, FETCH_OK);
		ck_assert_str_eq(spec->items[i].url, targets[i]);
		ck_assert_str_eq(spec->items[i].fetch.url, targets[i]);
		ck_assert_int_eq(
		    spec->items[i].fetch.timeout_ms, cfg->timeout_ms);
		ck_assert_int_eq(spec->items[i].fetch.method, FETCH_GET);
	}
	request_spec_free(spec);

	ck_assert_ptr_nonnull(m.fields);
	cfg->modules = &m;
	cfg->nmodules = 1;
	spec = request_from_targets(cfg, targets, 2, "fast", &err);
	ck_assert_ptr_nonnull(spec);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(spec->items[i].error, FETCH_OK);
		ck_assert_int_eq(spec->items[i].fetch.timeout_ms, 1234);
		ck_assert_int_eq(spec->items[i].fetch.method, FETCH_HEAD);
	}
	request_spec_free(spec);

	ck_assert_ptr_null(request_from_targets(cfg, targets, 2, "nope", &err));
	ck_assert_int_eq(err.status, 400);
	ck_assert_str_eq(err.code, "invalid_request");
	ck_assert_str_eq(err.message, "unknown module \"nope\"");
	cfg->modules = NULL; /* the config frees its own modules only */
	cfg->nmodules = 0;
	json_decref(m.fields);
}
END_TEST

START_TEST(probe_targets_are_counted_and_bad_ones_fail_alone)
{
	const char *targets[] = {
	    "http://a.example/", "\xff\xfe", "", "ftp://a.example/"};
	struct request_error err = {0};
	struct request_spec *spec;

	cfg->max_urls = 3;
	ck_assert_ptr_null(request_from_targets(cfg, targets, 4, NULL, &err));
	ck_assert_int_eq(err.status, 413);
	ck_assert_str_eq(err.code, "too_many_urls");

	spec = request_from_targets(cfg, targets, 3, NULL, &err);
	ck_assert_ptr_nonnull(spec);
	ck_assert_int_eq(spec->items[0].error, FETCH_OK);
	/* Not UTF-8: never fetched, its bytes kept for the probe's label. */
	ck_assert_int_eq(spec->items[1].error, FETCH_E_INVALID_URL);
	ck_assert_str_eq(
	    spec->items[1].error_message, "target is not valid UTF-8");
	ck_assert_str_eq(spec->items[1].url, "\xff\xfe");
	ck_assert_ptr_null(spec->items[1].fetch.url);
	/* Empty: a URL the worker refuses, like any bad URL. */
	ck_assert_str_eq(spec->items[2].url, "");
	request_spec_free(spec);
}
END_TEST

START_TEST(free_accepts_null)
{
	request_spec_free(NULL);
}
END_TEST

static Suite *
request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60); /* the deep-nesting case under valgrind */
	tcase_add_test(tc, content_types_choose_the_parser);
	tcase_add_test(tc, sniffed_object_is_json);
	tcase_add_test(tc, other_content_types_are_415);
	tcase_add_test(tc, json_array_of_strings_takes_config_defaults);
	tcase_add_test(tc, object_form_sets_every_request_field);
	tcase_add_test(tc, item_fields_override_request_fields);
	tcase_add_test(tc, request_fields_override_config);
	tcase_add_test(tc, verify_tls_comes_from_config_request_and_item);
	tcase_add_test(tc, timeouts_are_capped_by_config);
	tcase_add_test(tc, invalid_json_names_line_and_column);
	tcase_add_test(tc, deep_nesting_is_400_not_a_crash);
	tcase_add_test(tc, invalid_utf8_is_400);
	tcase_add_test(tc, envelope_errors_are_400);
	tcase_add_test(tc, request_headers_have_a_size_cap);
	tcase_add_test(tc, each_item_is_validated_alone);
	tcase_add_test(tc, item_errors_carry_a_message);
	tcase_add_test(tc, resolve_and_ip_version_must_agree);
	tcase_add_test(tc, resolve_takes_pairs_or_curl_lines);
	tcase_add_test(tc, url_length_limit_is_8192);
	tcase_add_test(tc, item_headers_have_a_size_cap);
	tcase_add_test(tc, header_values_are_trimmed_and_empty_ones_kept);
	tcase_add_test(tc, text_plain_skips_blanks_and_comments);
	tcase_add_test(tc, text_plain_bad_lines_fail_alone);
	tcase_add_test(tc, text_plain_long_line_is_invalid);
	tcase_add_test(tc, more_than_max_urls_is_413);
	tcase_add_test(tc, empty_lists_are_valid);
	tcase_add_test(tc, ids_are_kept_for_valid_and_invalid_items);
	tcase_add_test(tc, probe_targets_become_items_under_a_module);
	tcase_add_test(tc, probe_targets_are_counted_and_bad_ones_fail_alone);
	tcase_add_test(tc, free_accepts_null);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(request_suite());
}
