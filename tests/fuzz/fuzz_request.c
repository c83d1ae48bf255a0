/*
 * libFuzzer harness for request_parse(): the first byte picks the
 * Content-Type, the rest is the body.  Whatever the input, parsing must
 * return a spec or an error, never crash, leak or read out of bounds; and
 * so must url_parse(), which the worker runs on each item's URL.
 * Each parsed request's answer is rendered too (every item with an empty
 * result, invalid items with the error batch_start() gives them) and
 * must parse back with jansson, each item's url and id as it was read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "render.h"
#include "request.h"
#include "url.h"
#include "fuzz_sink.h"

static const char *const content_types[] = {
    NULL,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "image/png",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what, const struct sink *sink)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_request: %s in %.*s\n", what, (int)sink->len,
	    sink->buf);
	abort();
}

/* One parsed item's result, as batch_start() leaves it before fetching. */
static void
answer_item(struct render_out *out, struct summary *summary, size_t i,
    const struct request_item *item)
{
	struct fetch_result r;

	memset(&r, 0, sizeof(r));
	if (item->error != FETCH_OK)
		fetch_result_set_error(&r, item->error, item->error_message);
	if (i > 0)
		RENDER_OUT_LITERAL(out, ",");
	render_result_out(out, i, item, &r);
	summary_add(summary, &r);
	fetch_result_reset(&r);
}

static void
check_item(json_t *o, size_t i, const struct request_item *item,
    const struct sink *sink)
{
	json_t *url = json_object_get(o, "url"), *id = json_object_get(o, "id");

	check(json_integer_value(json_object_get(o, "index")) == (json_int_t)i,
	    "index", sink);
	check(item->url == NULL
	          ? json_is_null(url)
	          : json_is_string(url) &&
	                strcmp(json_string_value(url), item->url) == 0,
	    "url", sink);
	check(item->id == NULL ? id == NULL : json_equal(item->id, id), "id",
	    sink);
	check(json_is_null(json_object_get(o, "error")) ==
	          (item->error == FETCH_OK),
	    "error", sink);
}

/* The whole answer as batch_write() writes it, parsed back. */
static void
answer_check(const struct request_spec *spec)
{
	struct sink sink = {NULL, 0, 0};
	struct summary summary = {0};
	struct render_out out;
	json_error_t jerr;
	json_t *answer, *results;
	size_t i;

	if (summary_reserve(&summary, spec->count) != 0)
		abort();
	render_out_init(&out, sink_emit, &sink);
	RENDER_OUT_LITERAL(&out, "{\"results\":[");
	for (i = 0; i < spec->count; i++)
		answer_item(&out, &summary, i, &spec->items[i]);
	RENDER_OUT_LITERAL(&out, "],\"summary\":");
	render_summary_out(&out, &summary);
	RENDER_OUT_LITERAL(&out, "}\n");
	check(render_out_flush(&out) == 0, "render failed", &sink);
	answer = json_loadb(sink.buf, sink.len, JSON_ALLOW_NUL, &jerr);
	check(answer != NULL, jerr.text, &sink);
	results = json_object_get(answer, "results");
	check(json_array_size(results) == spec->count, "results", &sink);
	for (i = 0; i < spec->count; i++)
		check_item(
		    json_array_get(results, i), i, &spec->items[i], &sink);
	check(json_integer_value(json_object_get(
	          json_object_get(answer, "summary"), "total")) ==
	          (json_int_t)spec->count,
	    "summary.total", &sink);
	json_decref(answer);
	summary_reset(&summary);
	free(sink.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *cfg;
	struct request_error err;
	struct request_spec *spec;
	const char *ctype, *why;
	enum url_verdict verdict;
	size_t i;

	if (cfg == NULL)
		cfg = config_default();
	if (size == 0)
		return 0;
	ctype = content_types[data[0] % (sizeof(content_types) /
	                                    sizeof(content_types[0]))];
	spec =
	    request_parse(cfg, ctype, (const char *)data + 1, size - 1, &err);
	if (spec == NULL && (err.status < 400 || err.code == NULL))
		abort(); /* a failure must say why */
	if (spec != NULL)
		answer_check(spec);
	for (i = 0; spec != NULL && i < spec->count; i++) {
		const struct request_item *item = &spec->items[i];

		if (item->error == FETCH_OK)
			curl_url_cleanup(url_parse(item->url, &verdict, &why));
	}
	request_spec_free(spec);
	return 0;
}
